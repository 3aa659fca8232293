"""pagelab.real: the Process API on this machine's kernel."""

from __future__ import annotations

import os
import signal
import sys

import pytest

import pagelab as pl
from pagelab.real import ChildDied
from pagelab.real import Machine as RealMachine
from pagelab.real.probe import probe_host

pytestmark = [pytest.mark.real,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs a Linux kernel")]
RW, ANON = pl.PROT_READ | pl.PROT_WRITE, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS


@pytest.fixture
def real():
    with RealMachine() as m:
        yield m


def test_a_measured_phase_counts_only_its_own_faults(real):
    p = real.spawn("phase")
    for _ in range(3):
        a = p.mmap(None, 64 * pl.MiB, RW, ANON)
        before, after = p.run_phase([("touch", (a, 64 * pl.MiB), {"write": True})])
        assert (after.ru_minflt - before.ru_minflt, after.ru_majflt - before.ru_majflt) == (16384, 0)
        p.munmap(a, 64 * pl.MiB)


def test_memory_round_trips_and_mincore(real):
    p = real.spawn("mem")
    a = p.mmap(None, 8 * 4096, RW, ANON)
    assert p.load(a + 100) == 0
    p.store(a + 100, 77)
    assert p.load(a + 100) == 77
    p.touch(a, 4 * 4096, write=True)
    assert p.mincore(a, 8 * 4096).tolist() == [1, 1, 1, 1, 0, 0, 0, 0]
    p.access([a + 4096 * 6, a + 4096 * 7], write=[True, False])
    assert p.mincore(a, 8 * 4096).tolist() == [1, 1, 1, 1, 0, 0, 1, 1]
    assert "Name:\tmem" in real.read(f"/proc/{p.pid}/status")


def test_errno_comes_from_the_kernel(real):
    p = real.spawn("errno")
    with pytest.raises(OSError) as exc:
        p.mmap(None, 0, RW, ANON)
    assert exc.value.errno == 22
    assert p.alive


@pytest.mark.parametrize("prot, munmap, si_code", [(pl.PROT_READ, False, "SEGV_ACCERR"), (RW, True, "SEGV_MAPERR")])
def test_sigsegv_carries_the_real_si_code_and_address(real, prot, munmap, si_code):
    p = real.spawn("segv")
    a = p.mmap(None, 4 * 4096, prot, ANON)
    if munmap:
        p.munmap(a, 4 * 4096)
    with pytest.raises(pl.SegmentationFault) as exc:
        p.store(a + 4096 + 8, 1)
    assert exc.value.si_code == si_code and exc.value.addr == a + 4096 + 8
    assert not p.alive
    with pytest.raises(ProcessLookupError):
        os.kill(p.pid, 0)  # reaped: the child is gone
    with pytest.raises(pl.ProcessDead):
        p.load(a)


def test_a_killed_child_is_reported_clearly_and_no_tunable_changes(real):
    before = probe_host()
    p = real.spawn("victim")
    a = p.mmap(None, 16 * pl.MiB, RW, ANON)
    p.touch(a, 8 * pl.MiB, write=True)
    os.kill(p.pid, signal.SIGKILL)  # mid-scenario
    with pytest.raises(ChildDied, match="killed by signal 9"):
        p.touch(a, 16 * pl.MiB, write=True)
    assert not p.alive
    assert probe_host() == before


def test_exit_then_rusage_is_the_final_one(real):
    p = real.spawn("exit")
    a = p.mmap(None, 4 * pl.MiB, RW, ANON)
    p.touch(a, 4 * pl.MiB, write=True)
    p.exit()
    assert not p.alive and p.rusage().ru_minflt >= 1024


@pytest.mark.parametrize("addr, si_code", [(0, "SEGV_MAPERR"), (0xFFFF_FFFF_8100_0000, "SEGV_MAPERR"),
                                           (1 << 50, "SI_KERNEL"), (0x7FFF_FFFF_F000, "SEGV_MAPERR")])
def test_wild_pointers_fault_alike_on_both_backends(real, addr, si_code):
    got = []
    for backend in (real, pl.Machine(ram="64MiB", seed=0)):
        p = backend.spawn("wild")
        with pytest.raises(pl.SegmentationFault) as exc:
            p.load(addr)
        got.append((exc.value.si_code, exc.value.addr))
    assert got[0] == got[1] == (si_code, 0 if si_code == "SI_KERNEL" else addr)
