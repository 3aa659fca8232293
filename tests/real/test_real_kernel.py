"""The foundation's scenarios on the host kernel and on the simulator: the counts must be equal.

The host side runs tests/real/host_faults.py in a fresh Python process; the simulated side runs the
same steps on ``pagelab.Machine``. Deterministic counts are compared exactly.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import pagelab as pl
from pagelab.observe.parse import parse_smaps

pytestmark = [pytest.mark.real,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs a Linux kernel")]
HOST = Path(__file__).with_name("host_faults.py")
MiB = pl.MiB
RW, ANON, SHARED_ANON = 3, 0x22, 0x21


def simulate() -> dict[str, object]:
    m = pl.Machine(ram="4GiB", seed=0)
    p = m.spawn("faults")

    def region(n, flags=ANON, prot=RW):
        g = p.mmap(None, n + 8192, prot, flags)
        p.mprotect(g, 4096, pl.PROT_NONE)
        p.mprotect(g + 4096 + n, 4096, pl.PROT_NONE)
        return g + 4096

    def measure(fn):
        r0 = p.rusage()
        fn()
        r1 = p.rusage()
        return [r1.ru_minflt - r0.ru_minflt, r1.ru_majflt - r0.ru_majflt]

    def rss_kb(a):
        return next(v["Rss"] for v in parse_smaps(m.read(f"/proc/{p.pid}/smaps")) if v["start"] == a)

    out: dict[str, object] = {}
    a = region(64 * MiB)
    out["write_64mib"] = measure(lambda: p.touch(a, 64 * MiB, write=True)) + [rss_kb(a)]
    a = region(64 * MiB)
    out["read_64mib"] = measure(lambda: p.touch(a, 64 * MiB)) + [rss_kb(a)]
    out["write_after_read_64mib"] = measure(lambda: p.touch(a, 64 * MiB, write=True)) + [rss_kb(a)]
    a = region(16 * MiB)
    p.touch(a, 16 * MiB, write=True)
    p.madvise(a, 16 * MiB, pl.MADV_DONTNEED)
    out["dontneed_rss_16mib"] = rss_kb(a)
    out["write_after_dontneed_16mib"] = measure(lambda: p.touch(a, 16 * MiB, write=True))
    a = region(1 * MiB, SHARED_ANON)
    out["shared_read_1mib"] = measure(lambda: p.touch(a, 1 * MiB))
    out["shared_write_after_read_1mib"] = measure(lambda: p.touch(a, 1 * MiB, write=True))
    a = region(1 * MiB)
    out["populate_write_1mib"] = measure(lambda: p.madvise(a, 1 * MiB, pl.MADV_POPULATE_WRITE))
    out["write_after_populate_1mib"] = measure(lambda: p.touch(a, 1 * MiB, write=True))
    a = region(1 * MiB)
    p.touch(a, 1 * MiB, write=True)
    p.mprotect(a, 1 * MiB, pl.PROT_READ)
    p.mprotect(a, 1 * MiB, RW)
    out["write_after_mprotect_ro_rw_1mib"] = measure(lambda: p.touch(a, 1 * MiB, write=True))
    return out


def test_fault_counts_match_the_host_kernel():
    host = json.loads(subprocess.run([sys.executable, str(HOST)], check=True, capture_output=True,
                                     text=True, timeout=120).stdout)
    sim = simulate()
    assert sim.keys() == host.keys()
    mismatches = {k: (host[k], sim[k]) for k in host if host[k] != sim[k]}
    assert not mismatches, f"host vs simulated: {mismatches}"


@pytest.mark.parametrize("kind, si_code", [("segv_accerr", "SEGV_ACCERR"), ("segv_maperr", "SEGV_MAPERR")])
def test_sigsegv_cases_kill_on_both(kind, si_code):
    rc = subprocess.run([sys.executable, str(HOST), kind], capture_output=True, timeout=60).returncode
    assert rc == -signal.SIGSEGV
    p = pl.Machine(ram="256MiB", seed=0).spawn(kind)
    if kind == "segv_accerr":
        a = p.mmap(None, 4096, pl.PROT_READ, ANON)
        touch = lambda: p.store(a, 1)  # noqa: E731
    else:
        a = p.mmap(None, 8192, RW, ANON)
        p.munmap(a, 8192)
        touch = lambda: p.load(a + 4096)  # noqa: E731
    with pytest.raises(pl.SegmentationFault) as exc:
        touch()
    assert exc.value.si_code == si_code
    assert not p.alive
