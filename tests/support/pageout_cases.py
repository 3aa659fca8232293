"""MADV_COLD / MADV_PAGEOUT cases of docs/facts/pageout.md, written once for both backends.

Each case takes a Machine (pagelab.Machine or pagelab.real.Machine) and a fresh Process on it, does its
calls through the Process API and returns what a user can see of the process: Rss and AnonHugePages of
the mapping (smaps), resident pages (mincore), bytes read back. ``run_case`` adds the /proc/vmstat
deltas around the advice (exact on the simulator; on the host other activity adds to them).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from typing import Any

from tests.support.smaps import smaps_field

import pagelab as pl

P = 4096
MiB = 1 << 20
N = 1024  # pages: 4 MiB regions
RW = pl.PROT_READ | pl.PROT_WRITE
ANON = pl.MAP_PRIVATE | pl.MAP_ANONYMOUS
SHANON = pl.MAP_SHARED | pl.MAP_ANONYMOUS
COLD, PAGEOUT = pl.MADV_COLD, pl.MADV_PAGEOUT
VMSTAT = ("pgactivate", "pgdeactivate", "pglazyfreed", "thp_split_page", "thp_split_pmd", "thp_swpout_fallback",
          "nr_vmscan_immediate_reclaim", "nr_active_anon", "nr_inactive_anon", "nr_active_file", "nr_inactive_file",
          "nr_file_pages", "nr_shmem", "nr_dirty", "pgpgout")



def resident(p: Any, addr: int, length: int) -> int:
    return int(p.mincore(addr, length).astype(int).sum())


FILLED = (0, 3, 64, 128, 192, 256, 320, 384, 448, 511)  # the THP pages given a non-zero byte


def fill(p: Any, addr: int, value: int = 7) -> None:
    """A non-zero byte in the pages FILLED of a THP, the others left zero-filled: a split maps the
    zero-filled pages of an anon THP to the zero page and frees them (RMP_USE_SHARED_ZEROPAGE), so Rss
    tells which pages were split out and kept."""
    for i in FILLED:
        p.store(addr + i * P, value)


def thp(p: Any) -> int:
    """A 2 MiB-aligned MADV_HUGEPAGE region of 2 MiB (inside a 4 MiB mapping), not yet touched."""
    raw = p.mmap(None, 4 * MiB, RW, ANON)
    h = (raw + 2 * MiB - 1) & ~(2 * MiB - 1)
    p.madvise(h, 2 * MiB, pl.MADV_HUGEPAGE)
    return h


class Case:
    """One case: ``prepare(m, p)`` returns (addr, length, advice, finish) where ``finish(m, p)`` returns the
    observations after the advice; the advice itself runs between them, inside the vmstat window."""

    def __init__(self, prepare: Callable[[Any, Any], tuple[int, int, int, Callable[[Any, Any], Any]]]) -> None:
        self.prepare = prepare


def _rss(addr: int, length: int, extra: Callable[[Any, Any], Any] | None = None) -> Callable[[Any, Any], Any]:
    def finish(m: Any, p: Any) -> Any:
        out = {"Rss": smaps_field(m, p, addr, "Rss"), "resident": resident(p, addr, length)}
        if extra is not None:
            out["extra"] = extra(m, p)
        return out
    return finish


def anon_pageout(m: Any, p: Any) -> tuple[int, int, int, Callable[[Any, Any], Any]]:
    a = p.mmap(None, N * P, RW, ANON)
    p.touch(a, N * P, write=True)
    p.store(a + 5, 9)
    return a, N * P, PAGEOUT, _rss(a, N * P, lambda m, p: p.load(a + 5))


def anon_cold_fresh(m: Any, p: Any) -> tuple[int, int, int, Callable[[Any, Any], Any]]:
    a = p.mmap(None, N * P, RW, ANON)
    p.touch(a, N * P, write=True)
    return a, N * P, COLD, _rss(a, N * P)


def anon_cold_after_pageout(m: Any, p: Any) -> tuple[int, int, int, Callable[[Any, Any], Any]]:
    """PAGEOUT activates the pages; COLD then deactivates 33 batches of 31: one page waits in the batch."""
    a = p.mmap(None, N * P, RW, ANON)
    p.touch(a, N * P, write=True)
    p.madvise(a, N * P, PAGEOUT)
    return a, N * P, COLD, _rss(a, N * P)


def _thp_case(length: int, advice: int, zero: bool) -> Callable[[Any, Any], tuple[int, int, int, Any]]:
    def prepare(m: Any, p: Any) -> tuple[int, int, int, Callable[[Any, Any], Any]]:
        h = thp(p)
        p.touch(h, 2 * MiB, write=True)
        if not zero:
            fill(p, h)
        ahp = smaps_field(m, p, h, "AnonHugePages")

        def finish(m: Any, p: Any) -> Any:
            return {"AnonHugePages before": ahp, "AnonHugePages": smaps_field(m, p, h, "AnonHugePages"),
                    "Rss": smaps_field(m, p, h, "Rss"), "byte": p.load(h + 3 * P)}
        return h, length, advice, finish
    return prepare


def _file(m: Any, p: Any, name: str, flags: int, prot: int = pl.PROT_READ) -> tuple[int, int]:
    m.fs.create(name, N * P, content=b"\x05")
    fd = p.open(name, os.O_RDWR)
    return fd, p.mmap(None, N * P, prot, flags, fd, 0)


def file_clean_pageout(m: Any, p: Any) -> tuple[int, int, int, Callable[[Any, Any], Any]]:
    _fd, f = _file(m, p, "/po_clean", pl.MAP_SHARED)
    p.touch(f, N * P)

    def after(m: Any, p: Any) -> Any:
        r0 = p.rusage()
        value = p.load(f + 7 * P)  # the page is read again from the file
        return value, p.rusage().ru_majflt - r0.ru_majflt > 0
    return f, N * P, PAGEOUT, _rss(f, N * P, after)


def file_clean_cold(m: Any, p: Any) -> tuple[int, int, int, Callable[[Any, Any], Any]]:
    _fd, f = _file(m, p, "/po_cold", pl.MAP_SHARED)
    p.touch(f, N * P)
    return f, N * P, COLD, _rss(f, N * P)


def file_half_shared(m: Any, p: Any) -> tuple[int, int, int, Callable[[Any, Any], Any]]:
    """Another process maps the first half: folio_maybe_mapped_shared() skips those pages."""
    _fd, f = _file(m, p, "/po_shared", pl.MAP_SHARED)
    p.touch(f, N * P)
    q = m.spawn("other")
    g = q.mmap(None, N * P, pl.PROT_READ, pl.MAP_SHARED, q.open("/po_shared"), 0)
    q.touch(g, N * P // 2)

    def after(m: Any, p: Any) -> Any:
        out = smaps_field(m, q, g, "Rss")
        q.exit()
        return out
    return f, N * P, PAGEOUT, _rss(f, N * P, after)


def file_dirty_pageout(m: Any, p: Any) -> tuple[int, int, int, Callable[[Any, Any], Any]]:
    """Written through a shared mapping: unmapped, not written back, activated; the data stays."""
    _fd, f = _file(m, p, "/po_dirty", pl.MAP_SHARED, RW)
    p.touch(f, N * P, write=True)
    p.store(f + 3 * P, 11)
    return f, N * P, PAGEOUT, _rss(f, N * P, lambda m, p: p.load(f + 3 * P))


def file_private_half_cow(m: Any, p: Any) -> tuple[int, int, int, Callable[[Any, Any], Any]]:
    """A private file mapping, first half written (anon COW copies, activated), second half read (dropped)."""
    _fd, f = _file(m, p, "/po_private", pl.MAP_PRIVATE, RW)
    p.touch(f, N * P // 2, write=True)
    p.touch(f + N * P // 2, N * P // 2)
    return f, N * P, PAGEOUT, _rss(f, N * P, lambda m, p: (p.load(f), p.load(f + N * P - 1)))


def shmem_written(m: Any, p: Any) -> tuple[int, int, int, Callable[[Any, Any], Any]]:
    s = p.mmap(None, N * P, RW, SHANON)
    p.touch(s, N * P, write=True)
    p.store(s + 2 * P, 13)
    return s, N * P, PAGEOUT, _rss(s, N * P, lambda m, p: p.load(s + 2 * P))


def shmem_read_only(m: Any, p: Any) -> tuple[int, int, int, Callable[[Any, Any], Any]]:
    """Never written: clean shmem folios leave the shmem file (nr_shmem drops)."""
    s = p.mmap(None, N * P, RW, SHANON)
    p.touch(s, N * P)
    return s, N * P, PAGEOUT, _rss(s, N * P, lambda m, p: p.load(s + 2 * P))


def anon_shared_with_child(m: Any, p: Any) -> tuple[int, int, int, Callable[[Any, Any], Any]]:
    a = p.mmap(None, N * P, RW, ANON)
    p.touch(a, N * P, write=True)
    child = p.fork()

    def after(m: Any, p: Any) -> Any:
        child.exit()
        p.wait(child.pid)
        return None
    return a, N * P, PAGEOUT, _rss(a, N * P, after)


def lazyfree_rewritten(m: Any, p: Any) -> tuple[int, int, int, Callable[[Any, Any], Any]]:
    """MADV_FREE'd, 10 pages written again: those are kept (activated), the rest discarded (pglazyfreed).

    992 = 32 x 31 pages, so no page waits in the per-CPU lazyfree batch: on the host that batch is the CPU's
    that ran MADV_FREE, and PAGEOUT's lru_add_drain() only drains its own CPU's (a page left in the other
    CPU's batch is still swap-backed: activated, not discarded; seen once with 1024 pages)."""
    n = 32 * 31
    a = p.mmap(None, n * P, RW, ANON)
    p.touch(a, n * P, write=True)
    p.madvise(a, n * P, pl.MADV_FREE)
    p.touch(a, 10 * P, write=True)
    return a, n * P, PAGEOUT, _rss(a, n * P)


CASES: dict[str, Callable[[Any, Any], tuple[int, int, int, Callable[[Any, Any], Any]]]] = {
    "anon_pageout": anon_pageout,
    "anon_cold_fresh": anon_cold_fresh,
    "anon_cold_after_pageout": anon_cold_after_pageout,
    "thp_pageout_whole": _thp_case(2 * MiB, PAGEOUT, zero=False),
    "thp_pageout_half": _thp_case(MiB, PAGEOUT, zero=False),
    "thp_cold_half": _thp_case(MiB, COLD, zero=False),
    "thp_zero_pageout_whole": _thp_case(2 * MiB, PAGEOUT, zero=True),
    "file_clean_pageout": file_clean_pageout,
    "file_clean_cold": file_clean_cold,
    "file_half_shared": file_half_shared,
    "file_dirty_pageout": file_dirty_pageout,
    "file_private_half_cow": file_private_half_cow,
    "shmem_written": shmem_written,
    "shmem_read_only": shmem_read_only,
    "anon_shared_with_child": anon_shared_with_child,
    "lazyfree_rewritten": lazyfree_rewritten,
}


class _Recorder:
    """The process as a case sees it: every call goes through, and what the case maps and opens is
    remembered so that a process shared by several cases gets it back (no VMA of one case can merge
    with another's and change its smaps figures)."""

    def __init__(self, p: Any) -> None:
        self._p = p
        self.mapped: list[tuple[int, int]] = []
        self.opened: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._p, name)

    def mmap(self, addr: int | None, length: int, prot: int, flags: int, fd: int = -1, offset: int = 0) -> int:
        a = int(self._p.mmap(addr, length, prot, flags, fd, offset))
        self.mapped.append((a, length))
        return a

    def open(self, path: str, flags: int = os.O_RDONLY) -> int:
        fd = int(self._p.open(path, flags))
        self.opened.append(fd)
        return fd

    def clean(self) -> None:
        for a, length in self.mapped:
            self._p.munmap(a, length)
        for fd in self.opened:
            self._p.close(fd)


def run_case(m: Any, name: str, check: Callable[[], None] | None = None, p: Any = None) -> tuple[Any, dict[str, int]]:
    """Run case ``name`` on ``m``: (observations, vmstat deltas around the advice). In a fresh process that
    exits after, or in ``p`` (left as it was: the case's mappings and descriptors are undone). ``check``
    (the simulator's check_machine) runs after the advice and at the end."""
    proc = _Recorder(m.spawn(name[:15]) if p is None else p)
    addr, length, advice, finish = CASES[name](m, proc)
    v0 = m.vmstat()
    proc.madvise(addr, length, advice)
    v1 = m.vmstat()
    if check is not None:
        check()
    seen = finish(m, proc)
    if p is None:
        proc.exit()
    else:
        proc.clean()
    if check is not None:
        check()
    return seen, {k: v1[k] - v0[k] for k in VMSTAT if k in v0}


def locked_errno(m: Any) -> list[str]:
    """COLD and PAGEOUT on an mlocked range, and at an unaligned address: errno names."""
    p = m.spawn("locked")
    a = p.mmap(None, 4 * P, RW, ANON)
    p.mlock(a, 4 * P)
    out = []
    for addr, advice in ((a, COLD), (a, PAGEOUT), (a + 1, COLD), (a + 1, PAGEOUT)):
        try:
            p.madvise(addr, P, advice)
            out.append("ok")
        except OSError as e:
            out.append(errno.errorcode[e.errno])
    p.exit()
    return out
