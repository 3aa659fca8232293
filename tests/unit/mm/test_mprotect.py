"""mprotect's commit accounting, as measured on Linux 6.18 (VmFlags "ac" and Committed_AS)."""

from __future__ import annotations

import pagelab as pl
from pagelab.observe.parse import parse_meminfo, parse_smaps

GiB = 1 << 30


def _state(m, p, a):
    vma = next(v for v in parse_smaps(m.read(f"/proc/{p.pid}/smaps")) if v["start"] <= a < v["end"])
    return "ac" in vma["VmFlags"], parse_meminfo(m.read("/proc/meminfo"))["Committed_AS"]


def test_commit_follows_write_permission_as_on_the_kernel():
    m = pl.Machine(ram="4GiB", seed=0)
    p = m.spawn("acct")
    a = p.mmap(None, GiB, pl.PROT_READ | pl.PROT_WRITE, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS)
    ac, base = _state(m, p, a)
    assert ac
    p.mprotect(a, GiB, 7)  # still writable: the charge stays (it used to be dropped here)
    assert _state(m, p, a) == (True, base)
    p.mprotect(a, GiB, pl.PROT_READ)  # read-only and never touched: the charge goes back
    assert _state(m, p, a) == (False, base - GiB // 1024)
    p.mprotect(a, GiB, pl.PROT_READ | pl.PROT_WRITE)  # writable again: charged again
    assert _state(m, p, a) == (True, base)
    p.store(a, 1)  # an anon_vma now exists: making it read-only keeps the charge
    p.mprotect(a, GiB, pl.PROT_READ)
    assert _state(m, p, a) == (True, base)
