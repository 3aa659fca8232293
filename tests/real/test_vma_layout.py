"""VMA split and merge: the same calls on the host kernel and the simulator give the same VMAs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import pagelab as pl
from pagelab.observe.parse import parse_maps

pytestmark = [pytest.mark.real,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs a Linux kernel")]
P = 4096


def simulate() -> dict[str, list[str]]:
    m = pl.Machine(ram="256MiB", seed=0)
    p = m.spawn("vmas")

    def vmas_in(lo, hi):
        out = []
        for v in parse_maps(m.read(f"/proc/{p.pid}/maps")):
            s, e = v["start"], v["end"]
            if s < hi and e > lo:
                out.append(f"{max(s, lo) - lo:x}-{min(e, hi) - lo:x} {v['perms']}")
        return out

    g = p.mmap(None, 64 * P, 0, 0x22)
    lo, hi = g + 8 * P, g + 56 * P
    p.munmap(lo, hi - lo)
    res = {}
    a = p.mmap(lo + 16 * P, 16 * P, 3, 0x22 | pl.MAP_FIXED_NOREPLACE)
    b = p.mmap(lo, 16 * P, 3, 0x22 | pl.MAP_FIXED)
    p.mmap(lo + 32 * P, 8 * P, 3, 0x22 | pl.MAP_FIXED)
    res["three adjacent anon mmaps"] = vmas_in(lo, hi)
    p.mprotect(a + 4 * P, 4 * P, 1)
    res["mprotect RO in the middle"] = vmas_in(lo, hi)
    p.mprotect(a + 4 * P, 4 * P, 3)
    res["mprotect back to RW"] = vmas_in(lo, hi)
    p.store(b, 1)
    p.mprotect(b + 8 * P, 8 * P, 1)
    p.mprotect(b + 8 * P, 8 * P, 3)
    res["mprotect back after a write"] = vmas_in(lo, hi)
    p.madvise(a, 4 * P, pl.MADV_HUGEPAGE)
    res["madvise HUGEPAGE on part"] = vmas_in(lo, hi)
    p.munmap(a + 8 * P, 2 * P)
    res["munmap a hole"] = vmas_in(lo, hi)
    p.mmap(lo + 44 * P, 4 * P, 3, 0x21 | pl.MAP_FIXED)
    res["shared anon beside"] = vmas_in(lo, hi)
    return res


def test_vma_split_and_merge_match_the_host():
    script = Path(__file__).with_name("host_vmas.py")
    host = json.loads(subprocess.run([sys.executable, str(script)], check=True, capture_output=True,
                                     text=True, timeout=60).stdout)
    assert simulate() == host
