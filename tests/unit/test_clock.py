"""The event clock: deterministic order, cancellation, daemons that re-arm, and Machine.run()."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pagelab as pl
from pagelab.clock import NO_DEADLINE, Clock


def test_events_run_by_time_then_priority_then_scheduling_order():
    c = Clock(1000)
    ran: list[str] = []
    for name, at, prio in [("c", 20, 0), ("a", 10, 5), ("b", 10, -1), ("d", 10, 5), ("e", 5, 9)]:
        c.schedule(at, lambda name=name: ran.append(name), prio, name=name)
    assert [e.name for e in c.pending()] == ["e", "b", "a", "d", "c"]
    c.advance_to(30)
    assert ran == ["e", "b", "a", "d", "c"] and c.now == 30 and not c.pending()


def test_each_event_runs_at_its_time_and_the_clock_never_goes_back():
    c = Clock(1000)
    seen: list[tuple[str, int]] = []
    c.schedule(100, lambda: seen.append(("x", c.now)))
    c.schedule(250, lambda: seen.append(("y", c.now)))
    c.advance_to(200)
    assert seen == [("x", 100)] and c.now == 200
    c.cycles[0] = 300  # the CPU ran past the event before anyone looked
    c.run_due()
    assert seen == [("x", 100), ("y", 300)]
    c.advance_to(10)  # earlier than now: nothing moves back
    assert c.now == 300


def test_a_cancelled_event_never_runs_and_sets_no_deadline():
    c = Clock(1000)
    ran: list[int] = []
    early = c.schedule(10, lambda: ran.append(10), name="early")
    late = c.schedule(50, lambda: ran.append(50), name="late")
    assert c.next_deadline() == 10
    assert early.cancel() and not early.cancel()  # the second cancel finds nothing armed
    assert early.cancelled and not early.pending
    assert c.next_deadline() == 50
    late.cancel()
    assert c.next_deadline() == NO_DEADLINE
    c.advance_to(100)
    assert ran == [] and c.now == 100


def test_an_event_cancelled_by_an_earlier_one_at_the_same_time_does_not_run():
    c = Clock(1000)
    ran: list[str] = []
    victim = c.schedule(10, lambda: ran.append("victim"), 1)
    c.schedule(10, lambda: (ran.append("killer"), victim.cancel()), 0)
    c.advance_to(10)
    assert ran == ["killer"] and victim.cancelled


def test_events_armed_for_now_by_a_callback_run_in_the_same_pass():
    c = Clock(1000)
    ran: list[str] = []
    c.schedule(10, lambda: (ran.append("first"), c.schedule(c.now, lambda: ran.append("chained"))))
    c.cycles[0] = 10
    c.run_due()
    assert ran == ["first", "chained"]
    assert c.schedule(11, lambda: None).pending and c.next_deadline() == 11


def test_a_raising_callback_leaves_its_event_done_and_the_rest_armed():
    c = Clock(1000)
    ran: list[str] = []

    def boom() -> None:
        raise RuntimeError("boom")

    bad = c.schedule(5, boom)
    c.schedule(6, lambda: ran.append("next"))
    with pytest.raises(RuntimeError):
        c.advance_to(10)
    assert bad.done and c.now == 5 and c.next_deadline() == 6
    c.advance_to(10)
    assert ran == ["next"] and c.now == 10


def test_many_cancellations_do_not_grow_the_heap():
    c = Clock(1000)
    keep = c.schedule(10**6, lambda: None)
    for k in range(10_000):
        c.schedule(1000 + k, lambda: None).cancel()
    assert len(c._heap) < 200 and c.next_deadline() == keep.time


@pytest.mark.parametrize(("at", "error"), [
    (-1, ValueError), (NO_DEADLINE, ValueError), (1.5, TypeError), ("10", TypeError), (True, TypeError),
    (None, TypeError),
])
def test_bad_event_times_are_refused(at: object, error: type[Exception]) -> None:
    c = Clock(1000)
    with pytest.raises(error):
        c.schedule(at, lambda: None)  # type: ignore[arg-type]
    assert c.next_deadline() == NO_DEADLINE


def test_the_past_priorities_and_callbacks_are_checked():
    c = Clock(1000)
    c.advance_to(100)
    with pytest.raises(ValueError, match="past"):
        c.schedule(99, lambda: None)
    with pytest.raises(TypeError):
        c.schedule(100, lambda: None, priority=0.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        c.schedule(100, "not callable")  # type: ignore[arg-type]
    assert c.schedule(np.int64(100), lambda: None).time == 100  # numpy integers are integers


def test_a_daemon_runs_every_period_after_its_work_until_cancelled():
    c = Clock(1000)
    runs: list[int] = []
    d = c.every(100, lambda: runs.append(c.now), name="kdaemon")
    c.advance_to(450)
    assert runs == [100, 200, 300, 400] and d.runs == 4 and d.event.time == 500
    c.cycles[0] = 530  # it is looked at late: it sleeps a period from when it ran
    c.run_due()
    assert runs[-1] == 530 and d.event.time == 630
    d.cancel()
    c.advance_to(2000)
    assert len(runs) == 5 and not d.active and c.next_deadline() == NO_DEADLINE


def test_a_daemon_chooses_its_next_sleep_and_may_stop_itself():
    c = Clock(1000)
    runs: list[int] = []

    def work() -> int | None:
        runs.append(c.now)
        if len(runs) == 3:
            d.cancel()
        return 10 if len(runs) == 1 else None  # a short sleep once, then the period

    d = c.every(100, work, name="khugepaged", first=0)
    c.advance_to(1000)
    assert runs == [0, 10, 110]


@pytest.mark.parametrize("bad", [0, -5, 2.5])
def test_a_daemon_needs_a_positive_whole_period(bad: object) -> None:
    c = Clock(1000)
    with pytest.raises((ValueError, TypeError)):
        c.every(bad, lambda: None, name="d")  # type: ignore[arg-type]
    d = c.every(10, lambda: 0, name="busy")  # a callback asking for no sleep at all: no busy loop
    with pytest.raises(ValueError, match="positive number of cycles"):
        c.advance_to(10)
    assert d.runs == 1 and not d.active and c.next_deadline() == NO_DEADLINE


def test_a_daemon_that_asks_to_sleep_past_the_end_of_the_clock_stops() -> None:
    c = Clock(1000)
    d = c.every(10, lambda: NO_DEADLINE, name="sleepy")
    with pytest.raises(ValueError, match="beyond the end of the clock"):
        c.advance_to(10)
    assert d.runs == 1 and not d.active and c.next_deadline() == NO_DEADLINE  # was still "active", never to run


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50), st.integers(-2, 2), st.booleans()), max_size=30),
       st.lists(st.integers(0, 60), min_size=1, max_size=6))
def test_order_is_that_of_a_sorted_list(events: list[tuple[int, int, bool]], stops: list[int]) -> None:
    """Whatever the steps time takes, live events run in (time, priority, seq) order, each once."""
    c = Clock(1000)
    ran: list[int] = []
    armed = []
    for seq, (at, prio, cancel) in enumerate(events):
        e = c.schedule(at, lambda seq=seq: ran.append(seq), prio)
        armed.append((at, prio, seq, cancel))
        if cancel:
            e.cancel()
    for stop in sorted(stops):
        c.advance_to(stop)
    expect = [seq for at, prio, seq, cancel in sorted(armed) if not cancel and at <= max(stops)]
    assert ran == expect


# --- Machine.run ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("seconds", "error"), [
    (-1, ValueError), (-0.5, ValueError), (math.nan, ValueError), (math.inf, ValueError), (-math.inf, ValueError),
    ("1", TypeError), (None, TypeError), (True, TypeError), ([1], TypeError), (1j, TypeError),
    (Decimal("NaN"), ValueError), (1e12, ValueError),
])
def test_run_refuses_what_is_not_a_finite_nonnegative_number(seconds: object, error: type[Exception]) -> None:
    m = pl.Machine(ram="16MiB", seed=0)
    before = m.now_ns
    with pytest.raises(error):
        m.run(seconds=seconds)  # type: ignore[arg-type]
    assert m.now_ns == before


@pytest.mark.parametrize(("seconds", "ns"), [
    (0, 0), (1, 10**9), (0.3, 300_000_000), (Fraction(1, 3), 333_333_333), (Decimal("0.000000002"), 2),
    (np.float32(0.5), 500_000_000), (np.int64(2), 2 * 10**9),
])
def test_run_takes_any_real_number_of_seconds(seconds: object, ns: int) -> None:
    m = pl.Machine(ram="16MiB", seed=0)
    m.run(seconds=seconds)  # type: ignore[arg-type]
    assert m.clock.now == m.clock.ns_to_cycles(ns)  # whole nanoseconds, then whole cycles


def test_run_lets_a_daemon_work_with_no_process_running():
    m = pl.Machine(ram="16MiB", seed=0)
    runs: list[int] = []
    m.clock.every(m.clock.ns_to_cycles(10_000_000), lambda: runs.append(m.now_ns), name="kdaemon")
    m.run(seconds=0.1)
    assert runs == [k * 10_000_000 for k in range(1, 11)] and m.now_ns == 100_000_000
