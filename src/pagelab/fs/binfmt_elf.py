"""The ELF loader: map a program's PT_LOAD segments, its interpreter, the stack and the vDSO.

Mirrors fs/binfmt_elf.c (load_elf_binary(), load_elf_interp(), elf_load(), elf_map(), padzero(),
total_mapping_size(), create_elf_tables()), fs/exec.c (setup_arg_pages(), the stack VMA), and
arch/x86/entry/vdso/vma.c (map_vdso(): [vvar], [vvar_vclock], [vdso]). The ELF headers are read with
pyelftools from the host file the simulated one was imported from (fs/ext4.py import_host()).

What a program looks like once loaded (a PIE with PT_INTERP, as every distribution binary here):
the image at ELF_ET_DYN_BASE + arch_mmap_rnd(), one private file VMA per PT_LOAD segment with the
segment's protections (r--, r-x, r--, rw-), the .bss as the zero-filled tail of the last file page
(padzero(): one write fault at exec) plus an anonymous VMA for the rest (vm_brk_flags()); the
interpreter (ld-linux) mapped the same way top-down below mmap_base; the vDSO below it; the stack at
the top of the address space, randomized, VM_GROWSDOWN, holding the argument strings; brk after the
.bss (mm/mmap.py set_brk_base()).
"""

from __future__ import annotations

import errno
import os
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from ..constants import (
    MAP_ANONYMOUS,
    MAP_DENYWRITE,
    MAP_FIXED,
    MAP_PRIVATE,
    PAGE_MASK,
    PAGE_SHIFT,
    PAGE_SIZE,
    PROT_EXEC,
    PROT_READ,
    PROT_WRITE,
    TASK_SIZE,
)
from ..errors import syscall_error

if TYPE_CHECKING:
    from ..kernel.task import Task

PT_LOAD, PT_DYNAMIC, PT_INTERP, PT_GNU_RELRO, PT_TLS = 1, 2, 3, 0x6474E552, 7
PF_X, PF_W, PF_R = 1, 2, 4
ET_EXEC, ET_DYN = 2, 3
EM_X86_64 = 62
ELF_ET_DYN_BASE = ((1 << 47) - PAGE_SIZE) // 3 * 2  # arch/x86/include/asm/elf.h: DEFAULT_MAP_WINDOW / 3 * 2
STACK_TOP = TASK_SIZE  # STACK_TOP = TASK_SIZE_LOW
STACK_RND_MASK = 0x3FFFFF  # arch/x86/include/asm/elf.h: 22 bits of pages (16 GiB) on x86-64
MMAP_RND_BITS = 28  # arch_mmap_rnd(): mmap_rnd_bits on x86-64
STACK_EXPAND = 131072  # fs/exec.c setup_arg_pages(): stack_expand, 128 KiB
VVAR_PAGES, VVAR_VCLOCK_PAGES, VDSO_PAGES = 4, 2, 2  # measured on this host's 6.18 (docs/facts/exec.md)


@dataclass(frozen=True, slots=True)
class Segment:
    """One program header: p_type, p_flags, p_offset, p_vaddr, p_filesz, p_memsz, p_align."""

    p_type: int
    p_flags: int
    p_offset: int
    p_vaddr: int
    p_filesz: int
    p_memsz: int
    p_align: int


@dataclass(frozen=True, slots=True)
class ElfImage:
    """What the loaders need of one ELF file (the host's), parsed once with pyelftools."""

    path: str  # the host file (its real path, as /proc/PID/maps names it)
    e_type: int
    e_entry: int
    phdrs: tuple[Segment, ...]
    interp: str | None  # PT_INTERP's path
    needed: tuple[str, ...]  # DT_NEEDED, in order
    runpath: tuple[str, ...]  # DT_RUNPATH (else DT_RPATH) directories

    @property
    def loads(self) -> tuple[Segment, ...]:
        return tuple(p for p in self.phdrs if p.p_type == PT_LOAD)

    @property
    def relro(self) -> Segment | None:
        return next((p for p in self.phdrs if p.p_type == PT_GNU_RELRO), None)


def read_elf(host_path: str) -> ElfImage:
    """Parse ``host_path``'s ELF header, program headers and dynamic section. ENOEXEC when it is not a
    64-bit x86-64 ELF executable or shared object (search_binary_handler() finds no handler)."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    try:
        with open(host_path, "rb") as f:
            elf = ELFFile(f)
            if elf.elfclass != 64 or elf["e_machine"] != "EM_X86_64" or \
                    elf["e_type"] not in ("ET_EXEC", "ET_DYN"):
                raise syscall_error(errno.ENOEXEC, f"{host_path}: not an x86-64 ELF program")
            phdrs, interp = [], None
            needed: list[str] = []
            runpath: list[str] = []
            dynamic: tuple[int, int] | None = None
            # The program headers, read as load_elf_phdrs() does (pyelftools' segment objects would parse
            # the section headers too, which the loaders never read).
            f.seek(elf["e_phoff"])
            table = f.read(elf["e_phentsize"] * elf["e_phnum"])
            for k in range(elf["e_phnum"]):
                p_type, p_flags, p_offset, p_vaddr, _, p_filesz, p_memsz, p_align = \
                    struct.unpack_from("<IIQQQQQQ", table, k * elf["e_phentsize"])
                phdrs.append(Segment(p_type, p_flags, p_offset, p_vaddr, p_filesz, p_memsz, p_align))
                if p_type == PT_INTERP:
                    f.seek(p_offset)
                    interp = f.read(p_filesz).split(b"\0")[0].decode(errors="replace")
                elif p_type == PT_DYNAMIC:
                    dynamic = (p_offset, p_filesz)
            if dynamic is not None:
                needed, runpath = read_dynamic(f, dynamic, phdrs)
            return ElfImage(os.path.realpath(host_path), ET_DYN if elf["e_type"] == "ET_DYN" else ET_EXEC,
                            elf["e_entry"], tuple(phdrs), interp, tuple(needed), tuple(p for p in runpath if p))
    except (ELFError, struct.error, UnicodeDecodeError):  # not ELF, or headers cut short by EOF
        raise syscall_error(errno.ENOEXEC, f"{host_path}: not an ELF file") from None
    except IsADirectoryError:
        raise syscall_error(errno.EACCES, f"{host_path}: is a directory") from None


DT_NULL, DT_NEEDED, DT_STRTAB, DT_RPATH, DT_RUNPATH = 0, 1, 5, 15, 29


def read_dynamic(f: BinaryIO, dynamic: tuple[int, int], phdrs: list[Segment]) -> tuple[list[str], list[str]]:
    """DT_NEEDED and DT_RUNPATH/DT_RPATH of the PT_DYNAMIC at (file offset, size), as ld.so reads them
    (elf/get-dynamic-info.h): Elf64_Dyn entries up to DT_NULL, names in the DT_STRTAB string table (a
    virtual address, found in the file through the PT_LOAD that maps it)."""
    f.seek(dynamic[0])
    raw = f.read(dynamic[1])
    entries = [struct.unpack_from("<qQ", raw, i) for i in range(0, len(raw) - 15, 16)]
    strtab = next((v for t, v in entries if t == DT_STRTAB), None)
    seg = next((p for p in phdrs if p.p_type == PT_LOAD and strtab is not None
                and p.p_vaddr <= strtab < p.p_vaddr + p.p_filesz), None)
    if strtab is None or seg is None:
        return [], []
    base = seg.p_offset + strtab - seg.p_vaddr

    def string(off: int) -> str:
        f.seek(base + off)
        data = f.read(4096)
        return data[:data.find(b"\0") if b"\0" in data else len(data)].decode(errors="replace")

    needed, runpath = [], []
    for tag, val in entries:
        if tag == DT_NULL:
            break
        if tag == DT_NEEDED:
            needed.append(string(val))
        elif tag in (DT_RUNPATH, DT_RPATH):
            runpath += string(val).split(":")
    return needed, runpath


def make_prot(p_flags: int) -> int:
    """Mirrors make_prot(): PF_R/W/X -> PROT_READ/WRITE/EXEC."""
    return (PROT_READ if p_flags & PF_R else 0) | (PROT_WRITE if p_flags & PF_W else 0) \
        | (PROT_EXEC if p_flags & PF_X else 0)


def page_start(v: int) -> int:
    return v & PAGE_MASK


def page_offset(v: int) -> int:
    return v & ~PAGE_MASK


def page_align(v: int) -> int:
    return (v + PAGE_SIZE - 1) & PAGE_MASK


def total_mapping_size(loads: tuple[Segment, ...]) -> int:
    """Mirrors total_mapping_size(): from the first PT_LOAD's page to the end of the last one's memsz."""
    return loads[-1].p_vaddr + loads[-1].p_memsz - page_start(loads[0].p_vaddr)


def elf_map(task: Task, fd: int, addr: int, seg: Segment, prot: int, flags: int, total_size: int) -> int:
    """Mirrors elf_map(): map the file part of ``seg`` at ``addr``; with ``total_size`` the whole image is
    mapped first (so it gets one hole big enough for every segment) and the part past this segment is
    unmapped again. Returns the mapping's start."""
    from ..mm.mmap import do_mmap, do_munmap

    size = seg.p_filesz + page_offset(seg.p_vaddr)
    off = seg.p_offset - page_offset(seg.p_vaddr)
    addr = page_start(addr)
    size = page_align(size)
    if not size:
        return addr
    if total_size:
        total_size = page_align(total_size)
        map_addr = do_mmap(task, addr, total_size, prot, flags, fd, off)
        if total_size > size:
            do_munmap(task, map_addr + size, total_size - size)
        return map_addr
    return do_mmap(task, addr, size, prot, flags, fd, off)


def elf_load(task: Task, fd: int, addr: int, seg: Segment, prot: int, flags: int, total_size: int) -> int:
    """Mirrors elf_load(): elf_map() the file part, then the .bss: padzero() clears the rest of the last
    file page (a write, so a fault, as clear_user() takes one), and vm_brk_flags() maps the pages past it
    as an anonymous VMA. Returns the start of the file mapping."""
    from ..mm.mmap import do_mmap

    map_addr = elf_map(task, fd, addr, seg, prot, flags, total_size)
    if seg.p_memsz > seg.p_filesz:
        zero_start = map_addr + page_offset(seg.p_vaddr) + seg.p_filesz
        zero_end = map_addr + page_offset(seg.p_vaddr) + seg.p_memsz
        if prot & PROT_WRITE and seg.p_filesz and page_offset(zero_start):
            padzero(task, zero_start)
        if page_align(zero_end) > page_align(zero_start):
            start = page_align(zero_start)
            do_mmap(task, start, page_align(zero_end) - start, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0)
    return map_addr


def padzero(task: Task, address: int) -> None:
    """Mirrors padzero(): clear_user() from ``address`` to the end of its page (one write access).

    Simplified: the kernel's write runs as a user-mode store (the same fault, counted the same in rusage;
    perf's page-faults counts it too, as it does for a kernel-mode fault on a user address)."""
    import numpy as np

    from ..arch.x86.entry import run_user_mode

    run_user_mode(task, np.array([address], dtype=np.int64), np.ones(1, dtype=np.uint8), 0)


def load_image(task: Task, image: ElfImage, fd: int, load_bias: int, fixed: bool) -> tuple[int, int]:
    """Map every PT_LOAD of ``image`` from descriptor ``fd``, the first with the image's total size, the
    rest MAP_FIXED after it, as load_elf_binary()'s loop (``fixed``: at ``load_bias``) and
    load_elf_interp() (not ``fixed``: wherever get_unmapped_area() puts it, top-down) do.
    Returns (load_bias, end of the image: the end of its last segment's memsz)."""
    loads = image.loads
    if not loads:
        raise syscall_error(errno.ENOEXEC, f"{image.path}: no PT_LOAD segment")
    total = total_mapping_size(loads)
    end = 0
    for i, seg in enumerate(loads):
        flags = MAP_PRIVATE | MAP_DENYWRITE | (MAP_FIXED if i or fixed else 0)
        map_addr = elf_load(task, fd, load_bias + seg.p_vaddr, seg, make_prot(seg.p_flags), flags,
                            0 if i else total)
        if i == 0 and not fixed:
            load_bias = map_addr - page_start(seg.p_vaddr)
        end = max(end, load_bias + seg.p_vaddr + seg.p_memsz)
    return load_bias, end


def et_dyn_load_bias(task: Task, image: ElfImage) -> int:
    """Mirrors load_elf_binary()'s load_bias for an ET_DYN with an interpreter: ELF_ET_DYN_BASE plus
    arch_mmap_rnd() (randomize_va_space 2), less the first segment's page, aligned to the largest
    p_align (maximum_alignment())."""
    if image.e_type == ET_EXEC:
        return 0
    rnd = task.machine.rng("exec").getrandbits(MMAP_RND_BITS) << PAGE_SHIFT
    align = max([PAGE_SIZE] + [s.p_align for s in image.loads if s.p_align & (s.p_align - 1) == 0])
    bias = (ELF_ET_DYN_BASE + rnd) & ~(align - 1)
    return page_start(bias - page_start(image.loads[0].p_vaddr))


def randomize_stack_top(task: Task) -> int:
    """Mirrors randomize_stack_top(STACK_TOP) and arch_align_stack(): up to 16 GiB lower, page-aligned,
    then up to 8 KiB less, 16-byte aligned."""
    rng = task.machine.rng("exec")
    top = page_align(STACK_TOP) - ((rng.getrandbits(64) & STACK_RND_MASK) << PAGE_SHIFT)
    return (top - (rng.getrandbits(64) % 8192)) & ~0xF


def setup_stack(task: Task, stack_top: int, strings: int) -> int:
    """Mirrors bprm_mm_init()'s stack VMA and setup_arg_pages(): one VM_GROWSDOWN VMA holding the
    argument and environment strings below ``stack_top``, expanded to STACK_EXPAND (128 KiB) below them,
    as the kernel leaves it. The strings' pages are written (copy_strings() -> get_arg_page(): a GUP
    fault each). Returns the lowest address of the strings (the initial stack pointer lies below)."""
    import numpy as np

    from ..arch.x86.entry import run_user_mode
    from ..mm.mmap import mmap_region
    from ..mm.types import VmFlag

    end = page_align(stack_top)
    sp = stack_top - strings
    start = page_start(sp) - STACK_EXPAND
    flags = VmFlag.READ | VmFlag.WRITE | VmFlag.MAYREAD | VmFlag.MAYWRITE | VmFlag.MAYEXEC \
        | VmFlag.GROWSDOWN | VmFlag.ACCOUNT
    mmap_region(task, start, end - start, flags, start >> PAGE_SHIFT)
    task.mm.start_stack = sp
    pages = np.arange(page_start(sp), end, PAGE_SIZE, dtype=np.int64)[::-1].copy()
    run_user_mode(task, pages, np.ones(1, dtype=np.uint8), 0)
    return sp


VVAR_NAMES = (("[vvar]", VVAR_PAGES), ("[vvar_vclock]", VVAR_VCLOCK_PAGES))


def map_vdso(task: Task) -> int:
    """Mirrors arch/x86/entry/vdso/vma.c map_vdso(): one hole for the data pages and the vDSO text,
    top-down below the interpreter; [vvar] (4 pages) and [vvar_vclock] (2), read-only and
    VM_PFNMAP, then [vdso] (2 pages, r-x). Returns the vDSO's address (AT_SYSINFO_EHDR).

    Simplified: each special mapping is backed by its own in-memory object (shmem pages, zero-filled),
    where the kernel maps its shared vDSO image and, with VM_PFNMAP | VM_IO, the vvar data pages (no
    struct page); the faults are the same minor ones, smaps shows no "pf io" for [vvar], and the pages
    count in RssShmem (Linux: the vDSO's in RssFile, vvar's nowhere)."""
    from ..mm.mmap import _get_unmapped_area, vm_stat_account
    from ..mm.shmem import SHMEM_ANON_VM_OPS, ShmemFile
    from ..mm.types import Vma, VmFlag, VmOperations
    from ..mm.vma import vm_get_page_prot, vma_link

    total = (VVAR_PAGES + VVAR_VCLOCK_PAGES + VDSO_PAGES) << PAGE_SHIFT
    addr = _get_unmapped_area(task, 0, total, 0)
    ro = VmFlag.READ | VmFlag.MAYREAD
    at = addr
    for name, pages, flags in (*((n, p, ro | VmFlag.DONTEXPAND | VmFlag.DONTDUMP)
                                 for n, p in VVAR_NAMES),
                               ("[vdso]", VDSO_PAGES, ro | VmFlag.EXEC | VmFlag.MAYWRITE | VmFlag.MAYEXEC
                                | VmFlag.DONTEXPAND)):
        backing = ShmemFile(task.machine, pages, charged=False)
        vma = Vma(mm=task.mm, vm_start=at, vm_end=at + (pages << PAGE_SHIFT), vm_flags=flags, vm_pgoff=0,
                  vm_page_prot=vm_get_page_prot(flags), vm_file=backing,
                  vm_ops=VmOperations(name=name, fault=SHMEM_ANON_VM_OPS.fault))
        vma_link(task.mm, vma)  # _install_special_mapping() -> insert_vm_struct()
        backing.get(vma)
        vm_stat_account(task.mm, flags, pages)
        at += pages << PAGE_SHIFT
    return addr + ((VVAR_PAGES + VVAR_VCLOCK_PAGES) << PAGE_SHIFT)
