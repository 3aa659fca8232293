"""Kernel entry: a host signal never cuts a syscall or a fault in half (issue #6, item 2)."""

from __future__ import annotations

import random
import signal
import sys
from collections.abc import Callable

import pytest
from tests.support.interrupts import CallCounter, alarm_raises, blocked_signals, interrupt_at_call
from tests.support.profiles import scale

import pagelab as pl
from pagelab.mm.debug import check_machine
from pagelab.mm.page_alloc import nr_free_frames

P = 4096
RW = pl.PROT_READ | pl.PROT_WRITE
EXPECTED = (OSError, pl.SegmentationFault, pl.ProcessDead, pl.OutOfMemoryKill)


def test_a_signal_waits_until_the_kernel_returns() -> None:
    m = pl.Machine(ram="64MiB", seed=1)
    before = blocked_signals()
    with alarm_raises():
        handler = signal.getsignal(signal.SIGALRM)
        with pytest.raises(KeyboardInterrupt):
            with m.kernel_entry:
                signal.raise_signal(signal.SIGALRM)  # pending, not delivered
                with m.kernel_entry:  # nested entries change nothing
                    assert m.kernel_entry.signal_pending()
                reached = True
        assert reached
        assert signal.getsignal(signal.SIGALRM) is handler and m.kernel_entry.depth == 0
    assert blocked_signals() == before


def test_delivery_point_delivers_only_at_the_outer_level() -> None:
    m = pl.Machine(ram="64MiB", seed=1)
    entry = m.kernel_entry
    with alarm_raises():
        with entry:
            signal.raise_signal(signal.SIGALRM)
            with entry:
                entry.deliver_pending()  # inside a step: still held back
            with pytest.raises(KeyboardInterrupt):
                entry.deliver_pending()
            assert not entry.signal_pending()
        assert entry.depth == 0
    assert signal.SIGALRM not in blocked_signals()


def _ops(rng: random.Random) -> list[Callable[[list[pl.Process], list[tuple[pl.Process, int, int]]], None]]:
    """A random program: mmap, touch, store, madvise, mprotect, munmap, exit, in some order."""

    def mmap(procs: list[pl.Process], regions: list[tuple[pl.Process, int, int]]) -> None:
        p = rng.choice(procs)
        pages = rng.randint(1, 600)
        kind = pl.MAP_SHARED if rng.random() < 0.4 else pl.MAP_PRIVATE
        regions.append((p, p.mmap(None, pages * P, rng.choice([RW, pl.PROT_READ]), kind | pl.MAP_ANONYMOUS), pages))

    def on_region(fn: Callable[[pl.Process, int, int], None]) -> Callable[..., None]:
        def op(procs: list[pl.Process], regions: list[tuple[pl.Process, int, int]]) -> None:
            if regions:
                p, a, pages = rng.choice(regions)
                lo = rng.randint(0, pages - 1)
                fn(p, a + lo * P, rng.randint(1, pages - lo) * P)
        return op

    choices = [
        mmap,
        on_region(lambda p, a, n: p.touch(a, n, write=rng.random() < 0.6)),
        on_region(lambda p, a, n: p.touch(a, n, write=True, stride=rng.choice([64, 4096, 12288]))),
        on_region(lambda p, a, n: p.store(a + rng.randrange(n), rng.randint(0, 255))),
        on_region(lambda p, a, n: p.madvise(a, n, rng.choice([pl.MADV_DONTNEED, pl.MADV_FREE,
                                                              pl.MADV_POPULATE_WRITE, pl.MADV_RANDOM]))),
        on_region(lambda p, a, n: p.mprotect(a, n, rng.choice([pl.PROT_NONE, pl.PROT_READ, RW]))),
        on_region(lambda p, a, n: p.munmap(a, n)),
    ]
    return [mmap] + [rng.choice(choices) for _ in range(24)]


def count_calls(m: pl.Machine, seed: int) -> int:
    """How many function calls the seeded program makes (to choose an interrupt point inside it)."""
    hook = CallCounter()
    _run_program(m, seed, lambda: sys.setprofile(hook))
    return hook.count


def _run_program(m: pl.Machine, seed: int, arm: Callable[[], None]) -> bool:
    """Run a seeded program; ``arm()`` starts the interrupt (or the call count) right before it.

    Returns True if an interrupt landed inside the program."""
    rng = random.Random(seed)
    procs = [m.spawn("a"), m.spawn("b")]
    regions: list[tuple[pl.Process, int, int]] = []
    ops = _ops(rng)
    landed = False
    arm()
    for op in ops:
        try:
            op([p for p in procs if p.alive] or procs, regions)
        except EXPECTED:
            pass
        except KeyboardInterrupt:
            landed = True
            check_machine(m)  # right after the interrupt: nothing half done
    sys.setprofile(None)
    for p in procs:
        if p.alive:
            p.exit()
    return landed


@pytest.mark.parametrize("batch", [True, False], ids=["batched", "one-by-one"])
def test_interrupts_at_random_points_leave_the_machine_consistent(batch: bool) -> None:
    """Interrupt a random program at a random call: the machine checks out, keeps working, leaks nothing."""
    seeds = scale(10, 100)
    landed = 0
    with alarm_raises():
        for seed in range(seeds):
            calls = count_calls(pl.Machine(ram="64MiB", seed=seed, batch_faults=batch), seed)
            m = pl.Machine(ram="64MiB", seed=seed, batch_faults=batch)
            free_at_boot = nr_free_frames(m)
            point = random.Random(f"point{seed}").randint(1, calls)
            landed += _run_program(m, seed, lambda point=point: interrupt_at_call(point))
            check_machine(m)
            assert nr_free_frames(m) == free_at_boot
            assert m.committed_pages == 0 and m.ptpool.nr_tables == 0 and not m.frames.nr_data_pages
    assert landed >= seeds * 3 // 4  # the interrupts really landed inside the programs


def test_an_interrupted_program_matches_where_it_stopped() -> None:
    """State after an interrupt is exactly that of a program which stopped at that point: the same
    program run without interrupts, then cut at the last completed step, gives the same counters."""
    with alarm_raises():
        m = pl.Machine(ram="64MiB", seed=3)
        p = m.spawn()
        a = p.mmap(None, 256 * P, RW, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS)
        interrupt_at_call(3000)
        with pytest.raises(KeyboardInterrupt):
            for k in range(256):
                p.store(a + k * P, 1)
        done = p.rusage().ru_minflt
        assert 0 < done < 256
        assert int(p.mincore(a, 256 * P).sum()) == done  # every counted fault mapped exactly one page
        # Each completed store wrote its byte; the last fault may have completed without its store
        # retiring (Linux too delivers the signal before the faulting instruction is re-executed).
        stored = [p.load(a + k * P) for k in range(done)]
        assert stored[:-1] == [1] * (done - 1) and stored[-1] in (0, 1)
        check_machine(m)


def test_a_timer_interrupts_long_batches_cleanly() -> None:
    """A real asynchronous timer (SIGALRM at random times) during big touches and madvise calls."""
    rng = random.Random(5)
    hits = 0
    with alarm_raises():
        for k in range(scale(6, 40)):
            m = pl.Machine(ram="256MiB", seed=k)
            p = m.spawn()
            shared = pl.MAP_SHARED if k % 2 else pl.MAP_PRIVATE
            a = p.mmap(None, 32 * pl.MiB, RW, shared | pl.MAP_ANONYMOUS)
            signal.setitimer(signal.ITIMER_REAL, rng.uniform(0.0005, 0.05))
            try:
                for _ in range(3):
                    p.touch(a, 32 * pl.MiB, write=True)
                    p.madvise(a, 32 * pl.MiB, pl.MADV_DONTNEED)
                signal.setitimer(signal.ITIMER_REAL, 0)
            except KeyboardInterrupt:
                hits += 1
            check_machine(m)
            p.exit()
            check_machine(m)
    assert hits > 0


def test_an_interrupt_while_the_entry_looks_at_the_handlers_leaves_the_next_entry_holding_them() -> None:
    """Found by the long state machine: a signal during the entry's own look at the handlers (the first
    entry after a new SIGALRM handler) left a stale list behind, so the next syscall ran unprotected and a
    second signal cut a munmap in half (total_vm no longer the VMAs' pages). Every interrupt point of the
    look, then a second interrupt in the next call: the machine stays consistent."""
    looks = []
    for at in range(1, 120):
        m = pl.Machine(ram="32MiB", seed=11)
        p = m.spawn("p")
        a = p.mmap(None, 33 * P, pl.PROT_NONE, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS)
        p.mmap(None, P, pl.PROT_NONE, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS)
        with alarm_raises():  # a new handler: the next entry looks at every handler again
            for name, args in (("madvise", (a, 0, pl.MADV_DONTNEED)), ("munmap", (a - P, P))):
                try:
                    try:
                        interrupt_at_call(at)
                        getattr(p, name)(*args)
                    finally:
                        sys.setprofile(None)
                except KeyboardInterrupt:
                    pass
        looks.append(m.kernel_entry._seen != ())
        check_machine(m)
    assert any(looks)
