"""do_user_addr_fault's retry loop: VM_FAULT_RETRY -> the task sleeps on the I/O -> FAULT_FLAG_TRIED.

File faults (the next issue) return VM_FAULT_RETRY after starting a read; here a test handler does it,
in place of do_anonymous_page(), once per fault.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

import pagelab as pl
import pagelab.mm.fault as mm_fault
from pagelab.errors import KernelBug
from pagelab.mm.types import FaultFlag, VmFault, VmFaultResult
from pagelab.observe.trace import describe

RW, ANON = pl.PROT_READ | pl.PROT_WRITE, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS
IO_CYCLES = 260_000  # a 100 us read at 2.6 GHz


def retry_once(monkeypatch: pytest.MonkeyPatch, m: pl.Machine, log: list[tuple[str, int]],
               wait: bool = True) -> list[int]:
    """Make each anonymous fault start a 'read' and return VM_FAULT_MAJOR | VM_FAULT_RETRY (as filemap_fault()
    does when it issues the I/O); the retry (TRIED) maps the page. Returns the list of flags each call saw."""
    original: Callable[[VmFault], int] = mm_fault.do_anonymous_page
    calls: list[int] = []

    def do_anonymous_page(vmf: VmFault) -> int:
        calls.append(vmf.flags)
        if vmf.flags & FaultFlag.TRIED:
            return original(vmf)
        vmf.path.append("start_read")
        if wait:
            vmf.wait_for = m.clock.schedule(m.clock.now + IO_CYCLES, lambda: log.append(("io done", m.clock.now)),
                                            name="io completion")
        return VmFaultResult.MAJOR | VmFaultResult.RETRY

    monkeypatch.setattr(mm_fault, "do_anonymous_page", do_anonymous_page)
    return calls


def test_a_fault_that_waits_for_io_sleeps_then_retries_as_a_major_fault(monkeypatch):
    m = pl.Machine(ram="64MiB", seed=0)
    p = m.spawn("t")
    a = p.mmap(None, 4096, RW, ANON)
    log: list[tuple[str, int]] = []
    calls = retry_once(monkeypatch, m, log)
    t0 = m.clock.now
    m.clock.schedule(t0 + IO_CYCLES // 2, lambda: log.append(("daemon", m.clock.now)), name="daemon")
    p.store(a, 7)
    assert len(calls) == 2 and not calls[0] & FaultFlag.TRIED and calls[1] & FaultFlag.TRIED
    assert [name for name, _ in log] == ["daemon", "io done"]  # the wait ran the daemon, at its time
    io_time = log[1][1]
    assert log[0][1] == t0 + IO_CYCLES // 2 and io_time > t0
    r = p.rusage()
    assert (r.ru_majflt, r.ru_minflt, r.ru_nvcsw) == (1, 0, 1)
    assert m.vmstat()["pgfault"] == 1  # the RETRY attempt is not counted (mm_account_fault)
    assert p.perf_counts() == {"page-faults": 1, "minor-faults": 0, "major-faults": 1}
    t = p.task
    assert t.iowait_cycles == IO_CYCLES  # slept from the end of the first attempt to the completion
    assert t.stime_cycles == m.cost.fault_cycles("do_anonymous_page")  # the retried attempt's work
    assert m.clock.now == t0 + t.utime_cycles + t.stime_cycles + t.iowait_cycles
    assert p.load(a) == 7


def test_the_retry_looks_the_vma_up_again(monkeypatch):
    """An event that runs while the task sleeps unmaps the page: the retry finds no VMA -> SIGSEGV."""
    m = pl.Machine(ram="64MiB", seed=0)
    p = m.spawn("t")
    a = p.mmap(None, 4096, RW, ANON)
    log: list[tuple[str, int]] = []
    calls = retry_once(monkeypatch, m, log)
    m.clock.schedule(m.clock.now + 10, lambda: p.munmap(a, 4096), name="unmapper")
    with pytest.raises(pl.SegmentationFault) as exc:
        p.store(a, 7)
    assert exc.value.si_code == "SEGV_MAPERR" and len(calls) == 1 and not p.alive
    assert m.vmstat()["pgfault"] == 0 and p.perf_counts()["page-faults"] == 1


def test_a_retry_that_only_waited_is_minor_unless_it_waits_again(monkeypatch):
    """A first attempt (per-VMA lock) that waited for I/O someone else started returns RETRY without MAJOR:
    the retry is not FAULT_FLAG_TRIED and counts as minor; a second RETRY (under the mmap lock) makes the
    third attempt TRIED, a major fault (arch/x86/mm/fault.c after lock_vma_under_rcu())."""
    m = pl.Machine(ram="64MiB", seed=0)
    p = m.spawn("t")
    a = p.mmap(None, 4096, RW, ANON)
    original = mm_fault.do_anonymous_page
    seen: list[int] = []

    def waits(times: int):
        def do_anonymous_page(vmf: VmFault) -> int:
            seen.append(vmf.flags)
            if len(seen) <= times:
                vmf.wait_for = m.clock.schedule(m.clock.now + IO_CYCLES, lambda: None, name="someone's read")
                return VmFaultResult.RETRY
            return original(vmf)
        return do_anonymous_page

    monkeypatch.setattr(mm_fault, "do_anonymous_page", waits(1))
    p.store(a, 1)
    assert [bool(f & FaultFlag.TRIED) for f in seen] == [False, False]
    assert (p.rusage().ru_majflt, p.rusage().ru_minflt) == (0, 1)
    b = p.mmap(None, 4096, RW, ANON)
    seen.clear()
    monkeypatch.setattr(mm_fault, "do_anonymous_page", waits(2))
    p.store(b, 1)
    assert [bool(f & FaultFlag.TRIED) for f in seen] == [False, False, True]
    assert (p.rusage().ru_majflt, p.rusage().ru_minflt) == (1, 1)


def test_a_retry_that_would_never_end_is_a_kernel_bug(monkeypatch):
    m = pl.Machine(ram="64MiB", seed=0)
    p = m.spawn("t")
    a = p.mmap(None, 4096, RW, ANON)

    def always_retry(vmf: VmFault) -> int:
        return VmFaultResult.RETRY

    monkeypatch.setattr(mm_fault, "do_anonymous_page", always_retry)
    with pytest.raises(KernelBug, match="FAULT_FLAG_TRIED"):
        p.store(a, 1)


def test_a_retry_with_nothing_to_wait_for_goes_again_at_once(monkeypatch):
    m = pl.Machine(ram="64MiB", seed=0)
    p = m.spawn("t")
    a = p.mmap(None, 4096, RW, ANON)
    calls = retry_once(monkeypatch, m, [], wait=False)
    t0 = m.clock.now
    p.store(a, 3)
    assert len(calls) == 2 and p.rusage().ru_majflt == 1 and p.task.iowait_cycles == 0
    assert m.clock.now == t0 + p.task.utime_cycles + p.task.stime_cycles


def test_every_page_of_a_touch_waits_once(monkeypatch):
    """Many retried faults in one batch of accesses: each sleeps once, in order."""
    m = pl.Machine(ram="64MiB", seed=0, batch_faults=False)  # the batched path would bypass the test handler
    p = m.spawn("t")
    a = p.mmap(None, 64 * 4096, RW, ANON)
    log: list[tuple[str, int]] = []
    retry_once(monkeypatch, m, log)
    p.touch(a, 64 * 4096, write=True)
    r = p.rusage()
    assert (r.ru_majflt, r.ru_minflt, r.ru_nvcsw, len(log)) == (64, 0, 64, 64)
    assert p.task.iowait_cycles == 64 * IO_CYCLES  # each sleep starts right after its attempt


def test_a_traced_retry_is_one_major_record_at_the_trap(monkeypatch):
    m = pl.Machine(ram="64MiB", seed=0)
    m.fault_log = []
    p = m.spawn("t")
    a = p.mmap(None, 4096, RW, ANON)
    retry_once(monkeypatch, m, [])
    p.touch(a, 4096)  # untraced behaviour is the same: see above
    (rec,) = m.fault_log
    assert rec.outcome == "major" and rec.handler == "do_anonymous_page(zero)"
    assert rec.path[:2] == ("exc_page_fault", "do_user_addr_fault")
    assert "VM_FAULT_RETRY" in rec.path and rec.path.count("handle_mm_fault") == 2
    assert rec.time_ns < m.now_ns  # recorded at the trap, before the sleep
    assert "major | pgfault+1, maj_flt+1" in describe(rec)


@pytest.mark.parametrize("batch", [True, False])
def test_a_task_an_event_ends_runs_no_further_access(batch: bool) -> None:
    """An event (the timer interrupt) that ends the running task: the loop stops with ProcessDead. It once
    ran on through the freed page directory, which a process spawned by the same event had been given,
    and its stores of 0 wiped that process's bytes."""
    from pagelab.mm.debug import check_machine, check_rmap

    m = pl.Machine(ram="256MiB", seed=3, batch_faults=batch)
    a, size = 0x7F0000000000, 16 * pl.MiB
    r = m.spawn("r")
    r.mmap(a, size, RW, ANON | pl.MAP_FIXED)
    others: list[pl.Process] = []

    def end_r_and_start_s() -> None:
        r.exit(3)
        s = m.spawn("s")
        s.mmap(a, size, RW, ANON | pl.MAP_FIXED)
        for page in range(0, size, pl.PAGE_SIZE):
            s.store(a + page, 99)
        others.append(s)

    m.clock.schedule(m.clock.now + 20_000, end_r_and_start_s, name="end r")
    with pytest.raises(pl.ProcessDead):
        r.touch(a, size, write=True)
    assert not r.alive and r.task.exit_code == 3
    s = others[0]
    assert all(s.load(a + page) == 99 for page in range(0, size, pl.PAGE_SIZE))
    check_machine(m)
    check_rmap(m)
