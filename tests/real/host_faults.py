"""Run the foundation's scenarios on this machine's kernel and print their fault counts as JSON.

Run as a script in a fresh process (so nothing else faults in the measured windows): each scenario
maps fresh anonymous memory through libc, touches it through numpy views made before measuring,
and reports ru_minflt/ru_majflt deltas and smaps Rss. ``python host_faults.py segv_accerr`` etc.
instead touch a forbidden address and die of SIGSEGV.
"""

from __future__ import annotations

import ctypes
import json
import resource
import sys

import numpy as np

from pagelab.real.libc import _libc as libc  # the same ctypes bindings the real backend uses

MiB = 1 << 20
RW, ANON, SHARED_ANON = 3, 0x22, 0x21


def faults() -> tuple[int, int]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_minflt, r.ru_majflt


def rss_kb(addr: int) -> int:
    lines = open("/proc/self/smaps").read().splitlines()
    for i, line in enumerate(lines):
        if line.startswith(f"{addr:x}-"):
            return int(lines[i + 4].split()[1])
    raise LookupError(hex(addr))


def region(n: int, flags: int = ANON, prot: int = RW):
    """A fresh mapping between two PROT_NONE guard pages, so it never merges with its neighbours."""
    g = libc.mmap(None, n + 8192, prot, flags, -1, 0)
    libc.mprotect(g, 4096, 0)
    libc.mprotect(g + 4096 + n, 4096, 0)
    a = g + 4096
    pages = np.ctypeslib.as_array((ctypes.c_uint8 * n).from_address(a))[::4096]
    return a, pages


def read_all(pages) -> None:
    np.sum(pages, out=SINK)


SINK = np.zeros((), dtype=np.uint64)


def measure(fn) -> list[int]:
    m0, j0 = faults()
    fn()
    m1, j1 = faults()
    return [m1 - m0, j1 - j0]


def main() -> None:
    out: dict[str, object] = {}
    _, warm = region(64 * MiB)
    read_all(warm)  # let numpy allocate whatever buffers a strided reduction needs, outside the windows
    a, pages = region(64 * MiB)
    out["write_64mib"] = measure(lambda: pages.fill(1)) + [rss_kb(a)]
    a, pages = region(64 * MiB)
    out["read_64mib"] = measure(lambda: read_all(pages)) + [rss_kb(a)]
    out["write_after_read_64mib"] = measure(lambda: pages.fill(1)) + [rss_kb(a)]
    a, pages = region(16 * MiB)
    pages.fill(1)
    libc.madvise(a, 16 * MiB, 4)
    out["dontneed_rss_16mib"] = rss_kb(a)
    out["write_after_dontneed_16mib"] = measure(lambda: pages.fill(1))
    a, pages = region(1 * MiB, SHARED_ANON)
    out["shared_read_1mib"] = measure(lambda: read_all(pages))
    out["shared_write_after_read_1mib"] = measure(lambda: pages.fill(1))
    a, pages = region(1 * MiB)
    out["populate_write_1mib"] = measure(lambda: libc.madvise(a, 1 * MiB, 23))
    out["write_after_populate_1mib"] = measure(lambda: pages.fill(1))
    a, pages = region(1 * MiB)
    pages.fill(1)
    libc.mprotect(a, 1 * MiB, 1)
    libc.mprotect(a, 1 * MiB, RW)
    out["write_after_mprotect_ro_rw_1mib"] = measure(lambda: pages.fill(2))
    print(json.dumps(out))


def die(kind: str) -> None:
    if kind == "segv_accerr":
        a, pages = region(4096, prot=1)
        pages[0] = 1
    elif kind == "segv_maperr":
        a, pages = region(8192)
        libc.munmap(a, 8192)
        int(pages[1])


if __name__ == "__main__":
    if len(sys.argv) > 1:
        die(sys.argv[1])
    else:
        main()
