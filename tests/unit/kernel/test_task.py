"""CPU time accounting: one function per kind moves the clock and books the time; rusage reads it."""

from __future__ import annotations

import pagelab as pl
from pagelab.hw.cost import SIGSEGV_NS
from pagelab.kernel.task import (
    account_iowait_time,
    account_system_time,
    account_user_time,
    io_schedule,
    task_cputime,
)
from pagelab.observe.summary import time_v

RW, ANON = pl.PROT_READ | pl.PROT_WRITE, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS


def test_user_and_system_time_move_the_clock_and_show_in_rusage():
    m = pl.Machine(ram="16MiB", seed=0)
    p = m.spawn("t")
    t0 = m.clock.now
    account_user_time(p.task, 2_600_000)  # 1 ms at 2.6 GHz
    account_system_time(p.task, 5_200_000)
    assert m.clock.now == t0 + 7_800_000
    assert task_cputime(p.task) == (2_600_000, 5_200_000)
    r = p.rusage()
    assert (r.ru_utime, r.ru_stime) == (0.001, 0.002)
    v = dict(line.strip().split(": ", 1) for line in time_v(p.task).splitlines())
    assert v["User time (seconds)"] == "0.00" and v["System time (seconds)"] == "0.00"
    account_system_time(p.task, 26_000_000)
    v = dict(line.strip().split(": ", 1) for line in time_v(p.task).splitlines())
    assert v["System time (seconds)"] == "0.01"


def test_io_wait_lets_events_run_and_is_neither_user_nor_system_time():
    m = pl.Machine(ram="16MiB", seed=0)
    p = m.spawn("t")
    seen: list[tuple[str, int]] = []
    t0 = m.clock.now
    m.clock.schedule(t0 + 100, lambda: seen.append(("daemon", m.clock.now)))
    io = m.clock.schedule(t0 + 300, lambda: seen.append(("io", m.clock.now)), name="io")
    m.clock.schedule(t0 + 301, lambda: seen.append(("later", m.clock.now)))
    assert io_schedule(p.task, io) == 300
    assert seen == [("daemon", t0 + 100), ("io", t0 + 300)] and io.done
    assert m.clock.now == t0 + 300 and p.task.iowait_cycles == 300
    assert task_cputime(p.task) == (0, 0) and p.rusage().ru_nvcsw == 1
    assert io_schedule(p.task, io) == 0  # already complete: no sleep
    assert account_iowait_time(p.task, t0 + 400) == 100 and seen[-1] == ("later", t0 + 301)
    v = dict(line.strip().split(": ", 1) for line in time_v(p.task).splitlines())
    assert v["Voluntary context switches"] == "2"


def test_a_fatal_signal_is_charged_as_system_time():
    m = pl.Machine(ram="16MiB", seed=0)
    p = m.spawn("t")
    a = p.mmap(None, 4096, pl.PROT_READ, ANON)
    before = m.clock.now
    try:
        p.store(a, 1)
    except pl.SegmentationFault:
        pass
    sigsegv = m.cost.cycles(SIGSEGV_NS)
    utime, stime = task_cputime(p.task)
    assert stime == sigsegv and m.clock.now == before + utime + stime


def test_clock_moves_only_by_booked_time_during_accesses():
    """Every cycle that passes while a task runs is booked to it as user or system time."""
    m = pl.Machine(ram="64MiB", seed=0)
    p = m.spawn("t")
    a = p.mmap(None, 8 * pl.MiB, RW, ANON)
    before = m.clock.now
    p.touch(a, 8 * pl.MiB)  # zero-page reads: faults in batches
    p.touch(a, 8 * pl.MiB, write=True, stride=1024)  # COW faults one at a time, and TLB hits
    p.access([a + 4096 * k for k in range(0, 2048, 7)], write=True)
    utime, stime = task_cputime(p.task)
    assert utime > 0 and stime > 0 and m.clock.now - before == utime + stime
