"""vm.max_map_count at work: the same calls on a process holding exactly the limit of VMAs, on either backend.

``scenario(b, limit)`` fills the address space with one-page VMAs until mmap() refuses (the mm then holds
limit + 1: do_mmap() refuses only above the limit), gives back as many as each trial needs (to hold
exactly the limit, or one below), and runs one call on a test region: a read-write VMA between two
PROT_NONE guards. It returns, per trial, the errno (or "ok") and the region's VMAs afterwards, relative
to the region. It recalibrates before every trial, so whatever else the process maps meanwhile does not
matter.

``b`` has mmap/munmap/mprotect/madvise raising OSError, and ``maps(lo, hi)`` (the VMAs in [lo, hi) as
"start-end perms" in pages from lo). On the host this module runs as a script in a fresh interpreter
(``PYTHONMALLOC=malloc python -m tests.support.max_map_count``: every Python object from the brk heap, so
the interpreter maps nothing into the hole it fills) at the host's own limit, and prints the trace as JSON.
"""

from __future__ import annotations

import errno
import json
from typing import Any

P = 4096
NONE, READ, RW = 0, 1, 3
ANON = 0x22  # MAP_PRIVATE | MAP_ANONYMOUS
FIXED, NOREPLACE, NORESERVE = 0x10, 0x100000, 0x4000
MADV_RANDOM, MADV_DONTNEED = 1, 4
REGION = 12  # pages: guard, 10 pages read-write, guard

# (name, VMAs below the limit when the call runs, call on the region as (method, page, pages, arg))
TRIALS: list[tuple[str, int, tuple[str, int, int, int]]] = [
    ("mprotect one page inside", 0, ("mprotect", 4, 1, READ)),
    ("mprotect the first page (one split)", 0, ("mprotect", 1, 1, READ)),
    ("mprotect the first page to PROT_NONE (merges with the guard)", 0, ("mprotect", 1, 1, NONE)),
    ("mprotect the last page to PROT_NONE (merges with the guard)", 0, ("mprotect", 10, 1, NONE)),
    ("mprotect the whole VMA", 0, ("mprotect", 1, 10, READ)),
    ("madvise(MADV_RANDOM) one page inside", 0, ("madvise", 4, 1, MADV_RANDOM)),
    ("madvise(MADV_DONTNEED) one page inside (no flag change)", 0, ("madvise", 4, 1, MADV_DONTNEED)),
    ("munmap one page in the middle", 0, ("munmap", 4, 1, 0)),
    ("munmap the VMA's first page", 0, ("munmap", 1, 1, 0)),
    ("munmap the VMA's last page", 0, ("munmap", 10, 1, 0)),
    ("mmap MAP_FIXED over one page in the middle", 0, ("mmap", 5, 1, READ)),
    ("mmap MAP_FIXED over the whole VMA", 0, ("mmap", 1, 10, READ)),
    ("one below: munmap one page in the middle", 1, ("munmap", 5, 1, 0)),
    ("one below: mprotect one page in the middle (the second split fails)", 1, ("mprotect", 4, 1, READ)),
    ("one below: madvise(MADV_RANDOM) one page inside (the second split fails)", 1, ("madvise", 7, 1, MADV_RANDOM)),
    ("two below: mprotect one page in the middle", 2, ("mprotect", 7, 1, READ)),
]


def scenario(b: Any, limit: int) -> list[Any]:
    """Run every trial; returns [(trial, "ok" or errno name, region VMAs), ...] and the fill's own answers."""
    hole = b.mmap(0, 2 * (limit + 64) * P, NONE, ANON | NORESERVE, -1, 0)  # room for the one-page fillers
    b.munmap(hole, 2 * (limit + 64) * P)
    fillers: list[int] = []
    region = b.mmap(0, REGION * P, NONE, ANON, -1, 0)
    b.mprotect(region + P, (REGION - 2) * P, RW)
    out: list[Any] = []

    def fill() -> str:
        """One-page VMAs until mmap() refuses: the mm then holds limit + 1."""
        while True:
            try:
                fillers.append(b.mmap(hole + 2 * len(fillers) * P, P, READ, ANON | NOREPLACE, -1, 0))
            except OSError as exc:
                return errno.errorcode[exc.errno or 0]

    out.append(("fill until mmap refuses", fill(), b.maps(region, region + REGION * P)))
    for name, below, (method, page, pages, arg) in TRIALS:
        fill()
        for _ in range(1 + below):  # back to the limit, or below it
            b.munmap(fillers.pop(), P)
        addr, length = region + page * P, pages * P
        try:
            if method == "mmap":
                b.mmap(addr, length, arg, ANON | FIXED, -1, 0)
            elif method == "munmap":
                b.munmap(addr, length)
            else:
                getattr(b, method)(addr, length, arg)
            result = "ok"
        except OSError as exc:
            result = errno.errorcode[exc.errno or 0]
        out.append((name, result, b.maps(region, region + REGION * P)))
        b.munmap(region, REGION * P)  # a fresh region for the next trial, where the last one was
        b.mmap(region, REGION * P, NONE, ANON | FIXED, -1, 0)
        b.mprotect(region + P, (REGION - 2) * P, RW)
    out.append(("at the limit, one more mmap", _one_more(b, fillers, hole), []))
    return out


def _one_more(b: Any, fillers: list[int], hole: int) -> list[str]:
    """At exactly the limit: the next mmap() works (limit + 1), the one after it is refused."""
    while True:  # fill to limit + 1, then give one back
        try:
            fillers.append(b.mmap(hole + 2 * len(fillers) * P, P, READ, ANON | NOREPLACE, -1, 0))
        except OSError:
            break
    b.munmap(fillers.pop(), P)
    answers = []
    for _ in range(2):
        try:
            fillers.append(b.mmap(hole + 2 * len(fillers) * P, P, READ, ANON | NOREPLACE, -1, 0))
            answers.append("ok")
        except OSError as exc:
            answers.append(errno.errorcode[exc.errno or 0])
    return answers


def maps_in(lines: list[tuple[int, int, str]], lo: int, hi: int) -> list[str]:
    """VMAs overlapping [lo, hi), as "start-end perms" in pages from lo."""
    return [f"{(max(s, lo) - lo) // P}-{(min(e, hi) - lo) // P} {perms}" for s, e, perms in lines if s < hi and e > lo]


class HostProcess:
    """This process on the host kernel, through the real backend's ctypes bindings."""

    def __init__(self) -> None:
        from pagelab.real import libc

        self.libc = libc

    def mmap(self, addr: int, length: int, prot: int, flags: int, fd: int, offset: int) -> int:
        return self.libc.mmap(addr, length, prot, flags, fd, offset)

    def munmap(self, addr: int, length: int) -> None:
        self.libc.munmap(addr, length)

    def mprotect(self, addr: int, length: int, prot: int) -> None:
        self.libc.mprotect(addr, length, prot)

    def madvise(self, addr: int, length: int, advice: int) -> None:
        self.libc.madvise(addr, length, advice)

    def maps(self, lo: int, hi: int) -> list[str]:
        lines = []
        with open("/proc/self/maps") as f:
            for line in f:
                rng, perms = line.split()[:2]
                s, e = (int(x, 16) for x in rng.split("-"))
                if s < hi and e > lo:
                    lines.append((s, e, perms))
        return maps_in(lines, lo, hi)


class SimProcess:
    """A simulated process with the same methods (``m``: a pagelab.Machine)."""

    def __init__(self, m: Any) -> None:
        self.m = m
        self.p = m.spawn("max_map_count")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.p, name)

    def maps(self, lo: int, hi: int) -> list[str]:
        from pagelab.observe.parse import parse_maps

        vmas = parse_maps(self.m.read(f"/proc/{self.p.pid}/maps"))
        return maps_in([(v["start"], v["end"], v["perms"]) for v in vmas], lo, hi)


def main() -> None:
    from pagelab.real import libc

    libc.keep_heap(64 << 20)  # Python's own allocations come from the heap, not from new mappings
    with open("/proc/sys/vm/max_map_count") as f:
        limit = int(f.read())
    print(json.dumps({"limit": limit, "trace": scenario(HostProcess(), limit)}))


if __name__ == "__main__":
    main()
