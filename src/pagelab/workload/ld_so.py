"""The dynamic loader's memory work (ld-linux-x86-64.so.2), done through a simulated Process's system calls.

Mirrors glibc's elf/rtld.c (dl_main()), elf/dl-load.c (_dl_map_object(), open_path(), the ld.so.cache
lookup in elf/dl-cache.c), elf/dl-map-segments.h (_dl_map_segments()) and elf/dl-reloc.c
(_dl_protect_relro()). The order of its system calls is the one strace shows here for every dynamically
linked program (docs/facts/exec.md): its first anonymous allocation, /etc/ld.so.cache opened and mapped,
each DT_NEEDED library in breadth-first order (open, read of the ELF header, one mapping of the whole
image with the first segment's protection, MAP_FIXED mappings of the other segments, the anonymous
.bss), the static TLS block, then the RELRO mprotect()s (libraries in reverse dependency order, the
program, ld.so itself), and the cache unmapped.

workload/startup.py drives these in the order of the program's captured start-up, which also supplies
what is not computed here: ld.so's anonymous allocations, the cache's mapping, and every user-mode
access (reading headers, relocating, memset() of a .bss tail): pagelab executes no machine code.

Simplified: DT_RUNPATH/DT_RPATH are searched but not $ORIGIN; no LD_LIBRARY_PATH or LD_PRELOAD (the
environment is empty); no hwcaps subdirectories; a library is found once by its soname.
"""

from __future__ import annotations

import os
import struct
from collections import deque
from typing import TYPE_CHECKING

from ..constants import MAP_ANONYMOUS, MAP_DENYWRITE, MAP_FIXED, MAP_PRIVATE, PROT_NONE, PROT_READ
from ..fs.binfmt_elf import ElfImage, make_prot, page_align, page_start, read_elf, total_mapping_size

if TYPE_CHECKING:
    from ..process import Process

LD_SO_CACHE = "/etc/ld.so.cache"
CACHE_MAGIC = b"glibc-ld.so.cache1.1"
FLAG_X8664_LIB64 = 0x0303  # FLAG_ELF_LIBC6 | FLAG_X8664_LIB64 (sysdeps/generic/ldconfig.h)
SYSTEM_DIRS = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib")  # SYSTEM_DIRS (Debian)
ELF_HEADER_READ = 832  # open_verify(): the first read() of a library, sizeof(fbp->buf)


def read_ld_so_cache(path: str = LD_SO_CACHE) -> dict[str, str]:
    """Mirrors _dl_load_cache_lookup()'s table: soname -> path for x86-64 libraries, first entry wins (the
    cache is sorted by ldconfig in its search order). Empty when the host has no (new-format) cache."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return {}
    if not data.startswith(CACHE_MAGIC) or len(data) < 48:
        return {}
    nlibs = struct.unpack_from("<I", data, 20)[0]
    out: dict[str, str] = {}
    for i in range(nlibs):
        flags, key, value, _, _ = struct.unpack_from("<iIIIQ", data, 48 + 24 * i)
        if flags != FLAG_X8664_LIB64:
            continue
        name = data[key:data.index(b"\0", key)].decode()
        out.setdefault(name, data[value:data.index(b"\0", value)].decode())
    return out


def find_library(soname: str, runpath: tuple[str, ...], cache: dict[str, str]) -> str:
    """Mirrors _dl_map_object()'s search: a name with a slash is a path; else DT_RUNPATH, ld.so.cache,
    then the system directories. Returns the host path; ENOENT-style NotModelled when none has it
    (the real ld.so prints "cannot open shared object file" and exits 127)."""
    if "/" in soname:
        return soname
    for d in runpath:
        if os.path.isfile(os.path.join(d, soname)):
            return os.path.join(d, soname)
    if soname in cache and os.path.isfile(cache[soname]):
        return cache[soname]
    for d in SYSTEM_DIRS:
        if os.path.isfile(os.path.join(d, soname)):
            return os.path.join(d, soname)
    raise FileNotFoundError(f"{soname}: cannot open shared object file: No such file or directory")


def needed_libraries(exe: ElfImage, cache: dict[str, str]) -> list[ElfImage]:
    """The libraries ld.so loads for ``exe``: DT_NEEDED breadth-first (_dl_map_object_deps()), each once,
    ld.so itself (already loaded by the kernel) skipped."""
    seen: set[str] = set()
    interp = os.path.realpath(exe.interp) if exe.interp else ""
    out: list[ElfImage] = []
    todo: deque[ElfImage] = deque([exe])
    while todo:
        obj = todo.popleft()
        for name in obj.needed:
            real = os.path.realpath(find_library(name, obj.runpath, cache))
            if real in seen or real == interp:
                continue
            seen.add(real)
            lib = read_elf(real)
            out.append(lib)
            todo.append(lib)
    return out


def map_object(p: Process, lib: ElfImage) -> int:
    """Mirrors _dl_map_object_from_fd() -> _dl_map_segments(): open, read the ELF header, one mapping of
    the whole image with the first segment's protection, MAP_FIXED mappings of the other segments (and
    PROT_NONE over any hole between them), the anonymous .bss. Returns l_addr (the load bias)."""
    sim = p.machine.fs.import_host(lib.path) if not p.machine.fs.exists(lib.path) else lib.path
    fd = p.open(sim, os.O_RDONLY)
    try:
        p.pread(fd, ELF_HEADER_READ, 0)
        loads = lib.loads
        first = loads[0]
        maplength = page_align(total_mapping_size(loads))
        start = p.mmap(None, maplength, make_prot(first.p_flags), MAP_PRIVATE | MAP_DENYWRITE, fd,
                       page_start(first.p_offset))
        l_addr = start - page_start(first.p_vaddr)
        prev_end = l_addr + page_align(first.p_vaddr + first.p_filesz)
        for i, seg in enumerate(loads):
            mapstart = l_addr + page_start(seg.p_vaddr)
            if i:
                if mapstart > prev_end:  # the hole between segments: PROT_NONE (l_contiguous == 0)
                    p.mprotect(prev_end, mapstart - prev_end, PROT_NONE)
                mapend = l_addr + page_align(seg.p_vaddr + seg.p_filesz)
                if mapend > mapstart:
                    p.mmap(mapstart, mapend - mapstart, make_prot(seg.p_flags), MAP_PRIVATE | MAP_FIXED
                           | MAP_DENYWRITE, fd, page_start(seg.p_offset))
            zeroend = l_addr + seg.p_vaddr + seg.p_memsz
            zeropage = l_addr + page_align(seg.p_vaddr + seg.p_filesz)
            if page_align(zeroend) > zeropage:
                p.mmap(zeropage, page_align(zeroend) - zeropage, make_prot(seg.p_flags),
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED)
            prev_end = l_addr + page_align(seg.p_vaddr + seg.p_memsz)
        return l_addr
    finally:
        p.close(fd)


def relro_range(obj: ElfImage) -> tuple[int, int] | None:
    """(offset from the load bias, length) that _dl_protect_relro() makes read-only: PT_GNU_RELRO with both
    ends rounded down to pages; None without one (or when it rounds to nothing)."""
    relro = obj.relro
    if relro is None:
        return None
    start, end = page_start(relro.p_vaddr), page_start(relro.p_vaddr + relro.p_memsz)
    return (start, end - start) if end > start else None


def protect_relro(p: Process, obj: ElfImage, l_addr: int) -> None:
    """Mirrors _dl_protect_relro(): PROT_READ over PT_GNU_RELRO (relro_range())."""
    r = relro_range(obj)
    if r is not None:
        p.mprotect(l_addr + r[0], r[1], PROT_READ)
