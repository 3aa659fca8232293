"""The file calls of issue #8 on pagelab.real and on the simulator, from the same files: a differential harness.

``FilePair`` holds a real Machine (files under its private root in /var/tmp) and ``Machine.from_host()``, one
process on each. Each example makes the same files on both under a fresh directory (a regular file ``f`` of a
drawn size and content, a sparse file ``s``, a directory ``d`` holding ``d/g``), then runs a random sequence
of calls drawn by ``file_calls()``: open (access modes including the invalid 3, O_CREAT, O_EXCL, O_TRUNC,
O_DIRECTORY, O_APPEND; existing files, directories, missing names, missing parents, a file used as a
directory), close, read/pread (descriptors 0-2, closed, never opened, negative; negative offsets; counts up to
2**64 - 1), write/pwrite, lseek (SEEK_SET/CUR/END/DATA/HOLE, negative results, past EOF), ftruncate,
fsync/fdatasync, fadvise (unknown advice, negative length), cachestat, mmap of a descriptor (MAP_SHARED /
MAP_PRIVATE / MAP_SHARED_VALIDATE, every prot, unaligned and huge offsets, offsets past EOF), mprotect, munmap,
msync (flags, alignment, gaps, unmapped ranges) and loads/stores in and past the page holding EOF (zeros vs
SIGBUS). Descriptors number from 3 on both backends, so an fd drawn as an integer names the same file on both.

After every call both must give the same outcome (errno name, Python exception type, fatal signal and its
si_code, or result: bytes read/written, offsets, cachestat's counters, the byte loaded) and leave the same
file sizes and the same VMAs (bounds and perms) in the arena. A fatal signal ends the example (both processes
are dead: the pair spawns new ones).

Left out: cachestat's flags argument (the Process API passes flags 0; the kernel's EINVAL for flags != 0 is
in the fact sheet), O_DIRECT and O_TMPFILE, and calls that take the real child's own memory.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st
from tests.support.differential import ARENA_BASE, P, weighted

import pagelab as pl
from pagelab import constants as C
from pagelab.errors import FatalSignal

ARENA_PAGES = 12
MS_ASYNC, MS_INVALIDATE, MS_SYNC = 1, 2, 4  # include/uapi/asm-generic/mman-common.h
ARENA_END = ARENA_BASE + (ARENA_PAGES + 8) * P
SIZES = [0, 1, 100, P - 1, P, P + 100, 2 * P + 100, 3 * P, 5 * P + 7, 16 * P]
CONTENTS = [None, b"\x5a", b"pagelab\x00\xff"]
NAMES = ["f", "f", "f", "s", "d", "d/g", "new", "d/new", "missing/new", "f/x", "d/", "f/", "s/..", ""]

# --- the argument space --------------------------------------------------------------------------

FDS = weighted((12, st.sampled_from([3, 3, 3, 4, 4, 5, 6])),
               (3, st.sampled_from([0, 1, 2, -1, 7, 1000, 0x7FFFFFFF, -(1 << 31)])))
OFFSETS = weighted((10, st.sampled_from([0, 0, 1, 100, P - 1, P, P + 1, 2 * P, 2 * P + 100, 3 * P, 16 * P])),
                   (3, st.sampled_from([-1, -P, 1 << 30, 1 << 40, (1 << 62), (1 << 63) - 1, -(1 << 63),
                                        (1 << 63) - P])),
                   (1, st.integers(-(1 << 63), (1 << 63) - 1)))
COUNTS = weighted((10, st.sampled_from([0, 1, 100, P, 2 * P + 50, 64 * P, 1 << 20])),
                  (2, st.sampled_from([(1 << 31), (1 << 31) - 1, (1 << 63) - 1, 1 << 63, (1 << 64) - 1])))
DATA = st.sampled_from([b"", b"x", b"\x01" * 100, b"\x02" * P, b"\x03" * (P + 5), b"\x04" * (3 * P)])
ACC = weighted((10, st.sampled_from([os.O_RDONLY, os.O_WRONLY, os.O_RDWR])), (1, st.just(3)))
OPEN_BITS = [os.O_CREAT, os.O_EXCL, os.O_TRUNC, os.O_DIRECTORY, os.O_APPEND, os.O_NONBLOCK, os.O_CLOEXEC,
             os.O_NOFOLLOW, os.O_NOATIME, os.O_SYNC, os.O_DSYNC, os.O_NOCTTY]
WHENCE = weighted((10, st.sampled_from([os.SEEK_SET, os.SEEK_CUR, os.SEEK_END, os.SEEK_DATA, os.SEEK_HOLE])),
                  (1, st.sampled_from([5, 99, -1])))
ADVICE = weighted((10, st.sampled_from([os.POSIX_FADV_NORMAL, os.POSIX_FADV_RANDOM, os.POSIX_FADV_SEQUENTIAL,
                                        os.POSIX_FADV_WILLNEED, os.POSIX_FADV_DONTNEED,
                                        os.POSIX_FADV_NOREUSE])),
                  (1, st.sampled_from([6, 8, 99, -1])))
FADV_LENGTHS = weighted((10, st.sampled_from([0, 1, P, 3 * P, 1 << 30])),
                        (2, st.sampled_from([-1, -P, (1 << 63) - 1])))
CS_VALUES = weighted((10, st.sampled_from([0, 0, 1, P, 2 * P, 3 * P, 16 * P])),
                     (2, st.sampled_from([1 << 40, (1 << 63), (1 << 64) - 1, (1 << 64) - P])))
PROTS = weighted((10, st.sampled_from([C.PROT_READ, C.PROT_READ | C.PROT_WRITE, C.PROT_WRITE])),
                 (2, st.sampled_from([C.PROT_NONE, C.PROT_READ | C.PROT_EXEC, 7])))
MAP_TYPES = weighted((10, st.sampled_from([C.MAP_SHARED, C.MAP_PRIVATE])),
                     (2, st.sampled_from([C.MAP_SHARED_VALIDATE, C.MAP_SHARED_VALIDATE | C.MAP_SYNC, 0])))
MAP_OFFSETS = weighted((10, st.sampled_from([0, 0, P, 2 * P, 16 * P])),
                       (2, st.sampled_from([1, 100, P - 1, -P, 1 << 30, (1 << 63) - P, (1 << 62)])))
ARENA_ADDR = st.builds(lambda k: ARENA_BASE + k * P, st.integers(0, ARENA_PAGES))
MAP_LENGTHS = weighted((10, st.builds(lambda k: k * P, st.integers(1, 6))),
                       (2, st.sampled_from([0, 1, P + 1, 1 << 47, (1 << 64) - P])))
MSYNC_FLAGS = weighted((10, st.sampled_from([MS_ASYNC, MS_SYNC, MS_INVALIDATE,
                                             MS_ASYNC | MS_INVALIDATE, MS_SYNC | MS_INVALIDATE])),
                       (2, st.sampled_from([0, MS_ASYNC | MS_SYNC, 8, 7, -1])))
MSYNC_ADDR = weighted((10, ARENA_ADDR), (2, st.sampled_from([ARENA_BASE + 100, 0, 1 << 40, ARENA_BASE - P])))
MSYNC_LENGTHS = weighted((10, st.builds(lambda k: k * P, st.integers(0, ARENA_PAGES))),
                         (2, st.sampled_from([1, P - 1, P + 1, (1 << 64) - P, -P])))
ACCESS_ADDR = st.builds(lambda k, sub: ARENA_BASE + k * P + sub, st.integers(0, 6),
                        st.sampled_from([0, 0, 1, 99, 100, 101, P - 1]))


@st.composite
def open_flags(draw: st.DrawFn) -> int:
    flags = draw(ACC)
    for bit in draw(st.lists(st.sampled_from(OPEN_BITS), max_size=3)):
        flags |= bit
    return flags


@st.composite
def file_calls(draw: st.DrawFn) -> tuple[str, tuple[Any, ...]]:
    """One call: (name, args). ``open``'s path is a name relative to the example's directory (resolved by
    FilePair.call); everything else is as the Process API takes it."""
    name = draw(weighted((6, st.just("open")), (2, st.just("close")), (3, st.just("read")),
                         (3, st.just("pread")), (2, st.just("write")), (2, st.just("pwrite")),
                         (3, st.just("lseek")), (2, st.just("ftruncate")), (1, st.just("fsync")),
                         (1, st.just("fdatasync")), (2, st.just("fadvise")), (2, st.just("cachestat")),
                         (5, st.just("mmap")), (1, st.just("mprotect")), (1, st.just("munmap")),
                         (3, st.just("msync")), (2, st.just("load")), (1, st.just("store"))))
    fd = draw(FDS)
    args: tuple[Any, ...]
    if name == "open":
        args = (draw(st.sampled_from(NAMES)), draw(open_flags()), 0o644)
    elif name in ("close", "fsync", "fdatasync"):
        args = (fd,)
    elif name == "read":
        args = (fd, draw(COUNTS))
    elif name == "pread":
        args = (fd, draw(COUNTS), draw(OFFSETS))
    elif name == "write":
        args = (fd, draw(DATA))
    elif name == "pwrite":
        args = (fd, draw(DATA), draw(OFFSETS))
    elif name == "lseek":
        args = (fd, draw(OFFSETS), draw(WHENCE))
    elif name == "ftruncate":
        args = (fd, draw(weighted((10, st.sampled_from(SIZES)), (2, st.sampled_from([-1, -P, 1 << 62])))))
    elif name == "fadvise":
        args = (fd, draw(OFFSETS), draw(FADV_LENGTHS), draw(ADVICE))
    elif name == "cachestat":
        args = (fd, draw(CS_VALUES), draw(CS_VALUES))
    elif name == "mmap":
        fixed = draw(weighted((6, st.just(True)), (1, st.just(False))))
        addr = draw(ARENA_ADDR) if fixed else None
        flags = draw(MAP_TYPES) | (C.MAP_FIXED if fixed else 0)
        args = (addr, draw(MAP_LENGTHS), draw(PROTS), flags, fd, draw(MAP_OFFSETS))
    elif name == "mprotect":
        args = (draw(ARENA_ADDR), draw(st.builds(lambda k: k * P, st.integers(1, 6))), draw(PROTS))
    elif name == "munmap":
        args = (draw(ARENA_ADDR), draw(st.builds(lambda k: k * P, st.integers(1, 4))))
    elif name == "msync":
        args = (draw(MSYNC_ADDR), draw(MSYNC_LENGTHS), draw(MSYNC_FLAGS))
    elif name == "load":
        args = (draw(ACCESS_ADDR),)
    else:
        args = (draw(ACCESS_ADDR), 0xA5)
    return name, args


@dataclass(frozen=True)
class Files:
    """The files an example starts from: ``f`` (size, content), the sparse ``s``, and ``d/g``."""

    f_size: int
    content: bytes | None
    s_size: int


FILES = st.builds(Files, st.sampled_from(SIZES), st.sampled_from(CONTENTS), st.sampled_from(SIZES))


# --- running both backends -----------------------------------------------------------------------

@dataclass
class FilePair:
    """A real Machine and a simulated one, one process on each, and the example's directory."""

    real: Any  # pagelab.real.Machine
    sim: pl.Machine
    rp: Any = None
    sp: Any = None
    n: int = 0
    fds: set[int] = field(default_factory=set)
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.respawn()

    def respawn(self) -> None:
        for p in (self.rp, self.sp):
            if p is not None and p.alive:
                p.exit(0)
        self.rp = self.real.spawn("filediff")
        self.sp = self.sim.spawn("filediff")

    def count(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1

    @property
    def dir(self) -> str:
        return f"/fd{self.n}"

    def paths(self) -> list[str]:
        return [f"{self.dir}/{name}" for name in ("f", "s", "d/g", "new", "d/new")]

    def make(self, files: Files) -> None:
        """A fresh directory with the example's files, the same on both."""
        self.n += 1
        for m in (self.real, self.sim):
            m.fs.create(f"{self.dir}/f", files.f_size, content=files.content, written_in=P)
            m.fs.create(f"{self.dir}/s", files.s_size, sparse=True)
            m.fs.create(f"{self.dir}/d/g", P, content=b"g")

    def clean(self) -> None:
        """Close every descriptor, unmap the arena, remove the example's files, on both."""
        for p in (self.rp, self.sp):
            if not p.alive:
                continue
            for fd in sorted(self.fds):
                try:
                    p.close(fd)
                except OSError:
                    pass
            p.munmap(ARENA_BASE - 16 * P, ARENA_END - ARENA_BASE + 16 * P)
        for m in (self.real, self.sim):
            for path in self.paths():
                if m.fs.exists(path):
                    m.fs.unlink(path)
        self.fds.clear()
        if not (self.rp.alive and self.sp.alive):
            self.respawn()

    def call(self, name: str, args: tuple[Any, ...]) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        """Run the call on both; return (real outcome, simulated outcome)."""
        if name == "open":
            args = (f"{self.dir}/{args[0]}",) + args[1:]
        real = _outcome(getattr(self.rp, name), args)
        sim = _outcome(getattr(self.sp, name), args)
        for out in (real, sim):
            if name == "open" and out[0] == "ok":
                self.fds.add(out[1])
        for p, out in ((self.rp, real), (self.sp, sim)):
            if name == "mmap" and out[0] == "ok" and args[0] is None and p.alive:
                p.munmap(out[1], args[1])  # somewhere of the kernel's choosing: compared as "elsewhere"
        if name == "mmap" and args[0] is None:
            real, sim = (("ok", "elsewhere") if o[0] == "ok" else o for o in (real, sim))
        return real, sim

    def sizes(self, which: str) -> list[int | None]:
        m = self.real if which == "real" else self.sim
        return [m.fs.size(p) if m.fs.exists(p) else None for p in self.paths()]

    def vmas(self, which: str) -> list[tuple[Any, ...]]:
        """The arena's VMAs: bounds, perms and file offset (/proc/PID/maps)."""
        m, p = (self.real, self.rp) if which == "real" else (self.sim, self.sp)
        if not p.alive:
            return []
        out = []
        for line in m.read(f"/proc/{p.pid}/maps").splitlines():
            bounds, perms, offset = line.split()[:3]
            start, end = (int(x, 16) for x in bounds.split("-"))
            if ARENA_BASE - 16 * P <= start < ARENA_END:
                out.append((hex(start), hex(end), perms, offset))
        return out


def _outcome(fn: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """("errno", name) / ("python", type) / ("signal", name, si_code) / ("notmodelled",) / ("ok", result)."""
    try:
        result = fn(*args)
    except OSError as exc:
        return ("errno", errno.errorcode.get(exc.errno or 0, exc.errno))
    except pl.NotModelled:
        return ("notmodelled",)
    except FatalSignal as exc:
        return ("signal", exc.signame, exc.si_code)
    except pl.ProcessDead:
        return ("dead",)
    except (TypeError, ValueError, OverflowError) as exc:
        return ("python", type(exc).__name__)
    if isinstance(result, dict):
        return ("ok", tuple(sorted(result.items())))
    return ("ok", result)


# --- named sequences: the edges found so far, one example each ------------------------------------
# Files(2 pages + 100 bytes of b"ab", sparse 16 pages); fds from 3. Each step's outcome is compared.
CASE_FILES = Files(2 * P + 100, b"ab", 16 * P)
RDONLY, WRONLY, RDWR = os.O_RDONLY, os.O_WRONLY, os.O_RDWR
MAXOFF = (1 << 63) - 1
CASES: dict[str, list[tuple[str, tuple[Any, ...]]]] = {
    "open-accmode-3-file": [("open", ("f", 3, 0o644)), ("read", (3, 1)), ("write", (3, b"x")),
                            ("mmap", (ARENA_BASE, P, C.PROT_READ, C.MAP_SHARED | C.MAP_FIXED, 3, 0))],
    "open-accmode-3-dir": [("open", ("d", 3, 0o644))],
    "open-accmode-3-missing-parent": [("open", ("missing/new", 3 | os.O_CREAT, 0o644))],
    "open-file-as-directory": [("open", ("f/x", RDONLY, 0o644)), ("open", ("f/x", RDWR | os.O_CREAT, 0o644))],
    "open-trailing-slash-on-file": [("open", ("f/", RDONLY, 0o644)), ("open", ("f/", os.O_WRONLY, 0o644)),
                                    ("open", ("d/", RDONLY, 0o644))],
    "pread-negative-offset-on-bad-fd": [("pread", (9, 0, -1)), ("pwrite", (9, b"x", -1))],
    "open-rdonly-trunc": [("open", ("f", RDONLY | os.O_TRUNC, 0o644)), ("lseek", (3, 0, os.SEEK_END))],
    "pwrite-o-append": [("open", ("f", RDWR | os.O_APPEND, 0o644)), ("pwrite", (3, b"xy", 0)),
                        ("lseek", (3, 0, os.SEEK_END)), ("pread", (3, P, 0))],
    "pread-negative-offset-on-directory": [("open", ("d", RDONLY, 0o644)), ("pread", (3, 1, -1))],
    # found by the long random run: rw_verify_area()'s EINVAL comes before a directory's ->read EISDIR
    "read-count-past-loff_t-on-directory": [("open", ("d", RDONLY, 0o644)), ("read", (3, 1 << 63)),
                                            ("open", ("f", os.O_WRONLY, 0o644)), ("read", (4, 1 << 63))],
    "mmap-validate-sync-on-directory": [("open", ("d", RDONLY, 0o644)),
                                        ("mmap", (0, P, 1, 0x3 | 0x80000, 3, 0))],
    "open-creat-trailing-slash": [("open", ("f/", os.O_CREAT, 0o644)), ("open", ("new/", os.O_CREAT, 0o644)),
                                  ("open", ("f", os.O_CREAT | os.O_DIRECTORY, 0o644))],
    "pwrite-negative-offset-on-rdonly": [("open", ("f", RDONLY, 0o644)), ("pwrite", (3, b"x", -1))],
    "pread-offset-plus-count-overflows": [("open", ("f", RDONLY, 0o644)), ("pread", (3, 1, MAXOFF)),
                                          ("pread", (3, 2, MAXOFF - 1))],
    "pwrite-past-s_maxbytes": [("open", ("f", RDWR, 0o644)), ("pwrite", (3, b"x", 1 << 62)),
                               ("pwrite", (3, b"x", 1 << 44))],
    "pwrite-offset-plus-count-overflows": [("open", ("f", RDWR, 0o644)), ("pwrite", (3, b"xy", MAXOFF))],
    "ftruncate-past-s_maxbytes": [("open", ("f", RDWR, 0o644)), ("ftruncate", (3, 1 << 62)),
                                  ("ftruncate", (3, 1 << 44))],
    "lseek-past-s_maxbytes": [("open", ("f", RDONLY, 0o644)), ("lseek", (3, 1 << 62, os.SEEK_SET)),
                              ("lseek", (3, MAXOFF, os.SEEK_SET)), ("lseek", (3, 1 << 44, os.SEEK_SET))],
    "lseek-directory": [("open", ("d", RDONLY, 0o644)), ("lseek", (3, 0, os.SEEK_END)),
                        ("lseek", (3, 0, os.SEEK_DATA)), ("lseek", (3, 0, os.SEEK_HOLE)),
                        ("lseek", (3, 100, os.SEEK_SET))],
    "seek-data-hole-after-write-into-sparse": [("open", ("s", RDWR, 0o644)), ("pwrite", (3, b"x", 2 * P)),
                                               ("lseek", (3, 0, os.SEEK_DATA)), ("lseek", (3, 0, os.SEEK_HOLE)),
                                               ("fsync", (3,)), ("lseek", (3, 0, os.SEEK_DATA)),
                                               ("lseek", (3, 3 * P, os.SEEK_HOLE))],
    "mmap-map-sync-on-ext4": [("open", ("f", RDWR, 0o644)),
                              ("mmap", (ARENA_BASE, P, C.PROT_READ, C.MAP_SHARED_VALIDATE | C.MAP_SYNC
                                        | C.MAP_FIXED, 3, 0))],
    "mmap-shared-write-of-rdonly-then-mprotect": [
        ("open", ("f", RDONLY, 0o644)),
        ("mmap", (ARENA_BASE, 3 * P, C.PROT_READ | C.PROT_WRITE, C.MAP_SHARED | C.MAP_FIXED, 3, 0)),
        ("mmap", (ARENA_BASE, 3 * P, C.PROT_READ, C.MAP_SHARED | C.MAP_FIXED, 3, 0)),
        ("mprotect", (ARENA_BASE, P, C.PROT_READ | C.PROT_WRITE)),
        ("mmap", (ARENA_BASE + 4 * P, P, C.PROT_READ | C.PROT_WRITE, C.MAP_PRIVATE | C.MAP_FIXED, 3, 0)),
        ("mmap", (ARENA_BASE + 6 * P, P, C.PROT_READ, C.MAP_SHARED | C.MAP_FIXED, 3, 100)),
        ("open", ("d", RDONLY, 0o644)),
        ("mmap", (ARENA_BASE + 6 * P, P, C.PROT_READ, C.MAP_PRIVATE | C.MAP_FIXED, 4, 0)),
        ("mmap", (ARENA_BASE + 6 * P, P, C.PROT_READ, C.MAP_PRIVATE | C.MAP_FIXED, 9, 0))],
    "access-around-eof": [
        ("open", ("f", RDWR, 0o644)),
        ("mmap", (ARENA_BASE, 4 * P, C.PROT_READ | C.PROT_WRITE, C.MAP_SHARED | C.MAP_FIXED, 3, 0)),
        ("load", (ARENA_BASE + 2 * P + 99,)), ("load", (ARENA_BASE + 2 * P + 100,)),
        ("load", (ARENA_BASE + 3 * P - 1,)), ("store", (ARENA_BASE + 2 * P + 200, 7)),
        ("load", (ARENA_BASE + 3 * P,))],
    "access-after-truncate": [
        ("open", ("f", RDWR, 0o644)),
        ("mmap", (ARENA_BASE, 3 * P, C.PROT_READ, C.MAP_PRIVATE | C.MAP_FIXED, 3, 0)),
        ("load", (ARENA_BASE + P,)), ("ftruncate", (3, P)), ("load", (ARENA_BASE,)), ("load", (ARENA_BASE + P,))],
    "msync-edges": [
        ("open", ("f", RDWR, 0o644)),
        ("mmap", (ARENA_BASE, 2 * P, C.PROT_READ | C.PROT_WRITE, C.MAP_SHARED | C.MAP_FIXED, 3, 0)),
        ("mmap", (ARENA_BASE + 3 * P, P, C.PROT_READ | C.PROT_WRITE, C.MAP_SHARED | C.MAP_FIXED, 3, 0)),
        ("msync", (ARENA_BASE + 100, P, MS_SYNC)), ("msync", (ARENA_BASE, P, MS_SYNC | MS_ASYNC)),
        ("msync", (ARENA_BASE, P, 8)), ("msync", (ARENA_BASE, 0, MS_SYNC)),
        ("msync", (ARENA_BASE, 4 * P, MS_SYNC)), ("msync", (ARENA_BASE, 4 * P, MS_ASYNC)),
        ("msync", (ARENA_BASE + 8 * P, P, MS_ASYNC)), ("msync", (ARENA_BASE, 2 * P, MS_INVALIDATE)),
        ("msync", (ARENA_BASE, (1 << 64) - P, MS_SYNC)), ("msync", (ARENA_BASE, P - 1, MS_SYNC))],
    "fadvise-willneed-negative-offset": [
        ("open", ("f", RDONLY, 0o644)), ("fadvise", (3, -1, P, os.POSIX_FADV_WILLNEED)), ("cachestat", (3, 0, 0))],
    "fadvise-cachestat-edges": [
        ("open", ("f", RDONLY, 0o644)), ("fadvise", (3, 0, -1, os.POSIX_FADV_WILLNEED)),
        ("fadvise", (3, 0, 0, 6)), ("fadvise", (3, 0, 0, 99)),
        ("fadvise", (9, 0, 0, os.POSIX_FADV_NORMAL)), ("cachestat", (3, 0, 0)), ("cachestat", (9, 0, 0)),
        ("cachestat", (3, 1 << 40, 0)), ("cachestat", (3, (1 << 64) - P, (1 << 64) - 1)),
        ("open", ("d", RDONLY, 0o644)), ("fadvise", (4, 0, 0, os.POSIX_FADV_DONTNEED)),
        ("cachestat", (4, 0, 0)), ("fsync", (4,)), ("ftruncate", (4, 0)), ("ftruncate", (3, -1))],
    "bad-descriptors": [(name, (fd,) + rest) for fd in (0, 1, 2, -1, 3, 1000)
                        for name, rest in (("read", (1,)), ("pread", (1, 0)), ("write", (b"x",)),
                                           ("lseek", (0, os.SEEK_SET)), ("fsync", ()), ("fdatasync", ()),
                                           ("ftruncate", (0,)), ("close", ()))],
}
