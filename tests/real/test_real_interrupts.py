"""pagelab.real under interrupts and outside signals: the pipe stays in step, and a stopped child is an error.

The random test arms a one-shot timer (setitimer(ITIMER_REAL)) whose SIGALRM handler raises KeyboardInterrupt,
as Ctrl-C does, at a random delay into a random Process API call (mmap, munmap, touch, access, madvise,
mprotect, mincore, load, rusage, a store that faults), and after every call checks that the next calls get
their own answers and that the child is alive, or dead of that fault and saying so. CI runs a few seeds;
``PAGELAB_LONG=1`` runs the issue's 100. The tests signal only the children they started.
"""

from __future__ import annotations

import math
import os
import random
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from tests.support.interrupts import alarm_raises
from tests.support.profiles import scale

import pagelab as pl
from pagelab.errors import ChildStopped, ProcessDead
from pagelab.real import ChildDied, RealProcess
from pagelab.real import Machine as RealMachine
from pagelab.real.child import CHUNK, REQUEST, chunks, read_request

pytestmark = [pytest.mark.real,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs a Linux kernel")]
P = pl.PAGE_SIZE
RW, ANON = pl.PROT_READ | pl.PROT_WRITE, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS
ADVICE = [pl.MADV_DONTNEED, pl.MADV_FREE, pl.MADV_RANDOM, pl.MADV_SEQUENTIAL, pl.MADV_NORMAL, pl.MADV_WILLNEED,
          pl.MADV_COLD]
STEPS = 40
SEEDS = scale(2, 100)  # the bar; CI runs two


@pytest.fixture
def real() -> Iterator[RealMachine]:
    with RealMachine() as m:
        yield m


def attempt(call: Callable[[], Any], delay: float) -> tuple[bool, Any]:
    """Run ``call`` with a KeyboardInterrupt due in ``delay`` seconds: (interrupted, result)."""
    try:
        signal.setitimer(signal.ITIMER_REAL, delay)
        try:
            result = call()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except KeyboardInterrupt:
        return True, None
    return False, result


@dataclass
class Region:
    length: int
    writable: bool  # known writable (after an interrupted mprotect it may not be: then it is not written)


class Run:
    """One seed: a child, the regions it surely has, and what the checks expect."""

    def __init__(self, machine: RealMachine, seed: int) -> None:
        self.machine, self.rng = machine, random.Random(seed)
        self.stats: Counter[str] = Counter()
        self.spawn()

    def spawn(self) -> None:
        self.p: RealProcess = self.machine.spawn("intr")
        self.check = self.p.mmap(None, P, RW, ANON)  # a page only the checks use
        self.guard = self.p.mmap(None, P, pl.PROT_NONE, ANON)  # a store here is SIGSEGV (SEGV_ACCERR)
        self.regions: dict[int, Region] = {}
        self.minflt = 0
        self.value = 0
        self.fault_pending = False  # a faulting store was interrupted: it may run before the next call

    def step(self) -> None:
        """One random call, with an interrupt at a random delay (log-uniform, 20 us to 200 ms)."""
        kind, call, done, maybe = self.pick()
        delay = math.exp(self.rng.uniform(math.log(20e-6), math.log(200e-3)))
        try:
            interrupted, result = attempt(call, delay)
        except pl.SegmentationFault as exc:  # the faulting store, not interrupted
            assert kind == "fault" and (exc.addr, exc.si_code) == (self.guard, "SEGV_ACCERR")
            assert not self.p.alive
            self.stats["faults"] += 1
            return self.respawn()
        except ProcessDead as exc:  # a faulting store interrupted earlier ran first
            assert self.fault_pending, exc
            return self.died()
        assert kind != "fault" or interrupted, "the store to a PROT_NONE page returned"
        self.stats["interrupted" if interrupted else "completed"] += 1
        self.stats[f"{kind} interrupted"] += interrupted
        if interrupted:
            maybe()
        else:
            done(result)
        self.verify()

    def pick(self) -> tuple[str, Callable[[], Any], Callable[[Any], None], Callable[[], None]]:
        """(kind, the call, the model update when it completed, the model update when it may have run)."""
        rng, p = self.rng, self.p
        total = sum(r.length for r in self.regions.values())
        kinds = ["mmap", "munmap", "touch", "access", "madvise", "mprotect", "mincore", "load", "rusage", "fault"]
        weights = [3 if total < 512 * pl.MiB else 0, 2 if total else 0] + [3 if self.regions else 0] * 6 + [2, 0.2]
        kind = rng.choices(kinds, weights)[0]
        nothing: Callable[[], None] = lambda: None  # noqa: E731
        if kind == "rusage":
            return kind, p.rusage, self.rusage_ok, nothing
        if kind == "fault":
            def fault_maybe() -> None:
                self.fault_pending = True
            return kind, lambda: p.store(self.guard, 1), lambda _: None, fault_maybe
        if kind == "mmap":
            n = rng.choice([1, 16, 256, 4096, 65536]) * P
            return kind, lambda: p.mmap(None, n, RW, ANON), lambda a: self.mapped(a, n), nothing
        a = rng.choice(sorted(self.regions))
        r = self.regions[a]
        pages = r.length // P
        if kind == "munmap":
            n = r.length if pages == 1 or rng.random() < 0.7 else (pages // 2) * P

            def unmapped(_: Any) -> None:
                del self.regions[a]
                if n < r.length:
                    self.regions[a + n] = Region(r.length - n, r.writable)

            def unmap_maybe() -> None:
                del self.regions[a]  # never touched again: it may be gone
            return kind, lambda: p.munmap(a, n), unmapped, unmap_maybe
        if kind == "touch":
            write = r.writable and rng.random() < 0.5
            n = rng.randint(1, pages) * P
            return kind, lambda: p.touch(a, n, write=write), lambda _: None, nothing
        if kind == "access":
            idx = rng.choices(range(pages), k=rng.choice([1, 100, 10_000, 200_000]))
            addrs = np.array(idx, dtype=np.int64) * P + a + rng.randrange(P)
            write: bool | np.ndarray = r.writable and rng.random() < 0.5
            if r.writable and rng.random() < 0.3:
                write = np.random.default_rng(rng.randrange(1 << 30)).random(len(idx)) < 0.5  # a mask
            return kind, lambda: p.access(addrs, write=write), lambda _: None, nothing
        if kind == "madvise":
            advice = rng.choice(ADVICE)
            return kind, lambda: p.madvise(a, r.length, advice), lambda _: None, nothing
        if kind == "mprotect":
            prot = rng.choice([pl.PROT_READ, RW])

            def protected(_: Any) -> None:
                r.writable = prot == RW

            def protect_maybe() -> None:
                r.writable = False
            return kind, lambda: p.mprotect(a, r.length, prot), protected, protect_maybe
        if kind == "mincore":
            def mincore_ok(vec: np.ndarray) -> None:
                assert vec.shape == (pages,) and set(vec.tolist()) <= {0, 1}
            return kind, lambda: p.mincore(a, r.length), mincore_ok, nothing
        off = rng.randrange(r.length)

        def load_ok(v: int) -> None:
            assert v == 0  # every write in these regions writes 0
        return kind, lambda: p.load(a + off), load_ok, nothing

    def mapped(self, a: int, n: int) -> None:
        assert a % P == 0 and all(a + n <= b or b + r.length <= a for b, r in self.regions.items())
        self.regions[a] = Region(n, True)

    def rusage_ok(self, ru: Any) -> None:
        assert ru.ru_minflt >= self.minflt
        self.minflt = ru.ru_minflt

    def verify(self) -> None:
        """Uninterrupted calls get their own answers (a fresh value stored and loaded back, mincore of that page,
        a rusage not older than the last); or the child is dead of the interrupted faulting store."""
        value = self.rng.choice([v for v in range(1, 256) if v != self.value])
        try:
            self.p.store(self.check, value)
            assert self.p.load(self.check) == value
            assert self.p.mincore(self.check, P).tolist() == [1]
            self.rusage_ok(self.p.rusage())
        except ProcessDead:
            assert self.fault_pending
            return self.died()
        self.value = value
        assert self.p.alive

    def died(self) -> None:
        """The child died of the faulting store of an interrupted call: cleanly, and it says so."""
        assert not self.p.alive
        fault = self.p.fault
        assert isinstance(fault, pl.SegmentationFault) and (fault.addr, fault.si_code) == (self.guard, "SEGV_ACCERR")
        with pytest.raises(pl.ProcessDead):
            self.p.load(self.check)
        self.stats["died of an interrupted fault"] += 1
        self.respawn()

    def respawn(self) -> None:
        self.stats["discarded"] += self.p.discarded
        self.spawn()


@pytest.mark.parametrize("seed", range(SEEDS))
def test_interrupts_at_random_points_leave_the_pipe_in_step(real, seed):
    t0 = time.monotonic()
    with alarm_raises():
        run = Run(real, seed)
        for _ in range(STEPS):
            run.step()
        run.respawn()
    s = run.stats
    print(f"seed {seed}: {dict(s)} in {time.monotonic() - t0:.1f}s")
    assert s["interrupted"] >= STEPS // 10 and s["completed"] >= STEPS // 10  # it interrupts, and not always


def test_a_stopped_child_is_an_error_not_a_hang(real):
    p = real.spawn("stopped")
    a = p.mmap(None, P, RW, ANON)
    p.store(a, 7)
    os.kill(p.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        with pytest.raises(ChildStopped, match="SIGCONT"):
            p.store(a, 9)
        assert time.monotonic() - t0 < p.stop_grace + 2
        assert p.alive
    finally:
        os.kill(p.pid, signal.SIGCONT)
    assert p.load(a) == 9 and p.discarded == 1  # the store ran once resumed; its reply was left behind


def test_a_child_stopped_in_the_middle_of_a_call(real):
    p = real.spawn("midcall")
    n = 256 * pl.MiB
    a = p.mmap(None, n, RW, ANON)
    threading.Timer(0.05, p.kill, (signal.SIGSTOP,)).start()  # by pidfd: only ever this child
    try:
        t0 = time.monotonic()
        with pytest.raises(ChildStopped):
            p.touch(a, n, write=True)
        assert time.monotonic() - t0 < 5
    finally:
        os.kill(p.pid, signal.SIGCONT)
    assert p.mincore(a, n).all()  # the touch finished once resumed, before this call ran
    assert p.discarded == 1


def test_a_request_cut_short_is_never_run(real):
    """A request longer than the pipe, to a stopped child: the call gives up with part of it written; the child
    drops that part when the next request begins, so none of its accesses happen."""
    p = real.spawn("cutshort")
    n = 512 * pl.MiB
    a = p.mmap(None, n, RW, ANON)
    addrs = np.arange(a, a + n, P, dtype=np.int64)  # 1 MiB of addresses: 257 chunks, the pipe holds 16
    os.kill(p.pid, signal.SIGSTOP)
    try:
        with pytest.raises(ChildStopped):
            p.access(addrs, write=True)
    finally:
        os.kill(p.pid, signal.SIGCONT)
    assert p.mincore(a, n).sum() == 0 and p.discarded == 0  # nothing of the access ran, and it left no reply


def test_a_long_call_is_not_taken_for_a_stopped_child(real):
    p = real.spawn("long")
    p.stop_grace = 0.01
    n = 256 * pl.MiB
    a = p.mmap(None, n, RW, ANON)
    t0 = time.monotonic()
    p.touch(a, n, write=True)
    assert time.monotonic() - t0 > 5 * p.stop_grace  # it ran far longer than the grace, and was waited for
    assert p.load(a + n - 1) == 0


def test_killed_from_outside_alive_turns_false_and_calls_raise_childdied(real):
    p = real.spawn("victim")
    a = p.mmap(None, P, RW, ANON)
    os.kill(p.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while p.alive and time.monotonic() < deadline:
        time.sleep(0.005)
    assert not p.alive and os.WIFSIGNALED(p.exit_status) and os.WTERMSIG(p.exit_status) == signal.SIGKILL
    for _ in range(2):
        with pytest.raises(ChildDied, match=r"killed by signal 9 \(SIGKILL\)"):
            p.load(a)
    with pytest.raises(ProcessLookupError):
        os.kill(p.pid, 0)  # reaped by alive


def test_a_fault_in_an_interrupted_call_is_told_by_the_next(real):
    p = real.spawn("latefault")
    a = p.mmap(None, P, RW, ANON)
    guard = p.mmap(None, P, pl.PROT_NONE, ANON)
    os.kill(p.pid, signal.SIGSTOP)
    try:
        with pytest.raises(ChildStopped):
            p.store(guard + 8, 1)
    finally:
        os.kill(p.pid, signal.SIGCONT)
    with pytest.raises(ChildDied, match="SIGSEGV .SEGV_ACCERR. at .*interrupted") as exc:
        p.load(a)
    assert isinstance(exc.value.__cause__, pl.SegmentationFault) and exc.value.__cause__.addr == guard + 8
    assert not p.alive and os.WTERMSIG(p.exit_status) == signal.SIGSEGV


def test_ctrl_c_reaching_the_child_is_ignored(real):
    p = real.spawn("sigint")
    a = p.mmap(None, P, RW, ANON)
    os.kill(p.pid, signal.SIGINT)  # a terminal's Ctrl-C goes to the whole foreground process group
    p.store(a, 3)
    assert p.load(a) == 3 and p.alive


def test_the_child_runs_whole_requests_only():
    """child.read_request: a request cut short between chunks is dropped when the next one begins."""
    r, w = os.pipe()
    try:
        big, small = bytes(range(256)) * 40, b"next"
        cut = chunks(7, REQUEST, big)
        assert len(cut) == 3 and all(len(c) == CHUNK for c in cut)
        for c in cut[:2] + chunks(8, REQUEST, small) + chunks(9, REQUEST, big):
            os.write(w, c)
        assert read_request(r) == (8, small)
        assert read_request(r) == (9, big)
        os.close(w)
        w = -1
        assert read_request(r) is None
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def test_an_ended_child_says_how(real):
    """exit() and a fault the call itself reported end the child plainly (ProcessDead, not ChildDied)."""
    p = real.spawn("exits")
    p.exit(3)
    assert not p.alive and os.WEXITSTATUS(p.exit_status) == 3
    with pytest.raises(ProcessDead, match="exited with status 3") as exc:
        p.load(0x10000)
    assert not isinstance(exc.value, ChildDied)


def test_close_reaps_a_stopped_child():
    with RealMachine() as m:
        p = m.spawn("stopped")
        os.kill(p.pid, signal.SIGSTOP)
    assert not p.alive and os.WTERMSIG(p.exit_status) == signal.SIGKILL
    with pytest.raises(ProcessLookupError):
        os.kill(p.pid, 0)


def test_replies_left_behind_never_block_a_long_request(real):
    """Calls that gave up leave replies until the reply pipe is full and the child blocks writing them; a request
    longer than the command pipe then needs the parent to read those replies while it writes, or both wait."""
    p = real.spawn("backlog")
    p.stop_grace = 0.05
    a = p.mmap(None, 64 * pl.MiB, RW, ANON)
    os.kill(p.pid, signal.SIGSTOP)
    try:
        for value in range(12):  # 12 requests; once resumed, their 24 chunks of replies overfill the 16-slot pipe
            with pytest.raises(ChildStopped):
                p.store(a, value)
    finally:
        os.kill(p.pid, signal.SIGCONT)
    time.sleep(0.3)
    watchdog = threading.Timer(60, p.kill)  # a deadlock fails the test instead of hanging it
    watchdog.start()
    try:
        p.access(np.arange(a, a + 64 * pl.MiB, P, dtype=np.int64), write=True)  # 16384 addresses: 33 chunks
    finally:
        watchdog.cancel()
    assert p.load(a) == 0 and p.discarded == 12 and p.mincore(a, 64 * pl.MiB).all()


def _sigint_handled(pid: int) -> bool:
    """Whether the process ``pid`` ignores or catches SIGINT yet (its SigIgn/SigCgt masks)."""
    fields = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status", encoding="ascii"))
    bit = 1 << (signal.SIGINT - 1)
    return bool((int(fields["SigIgn"], 16) | int(fields["SigCgt"], 16)) & bit)


def test_ctrl_c_while_the_child_imports_pagelab_does_not_kill_it() -> None:
    """Ctrl-C reaches the whole process group, the child too: even while it is still importing pagelab
    (most of a second), it ignores it (it once died then, printing a KeyboardInterrupt traceback)."""
    import subprocess

    from pagelab.real.machine import _CHILD_MAIN

    cmd_r, cmd_w = os.pipe()
    rep_r, rep_w = os.pipe()
    child = subprocess.Popen([sys.executable, "-c", _CHILD_MAIN, str(cmd_r), str(rep_w), "-1", "sigint-test"],
                             pass_fds=(cmd_r, rep_w), stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.close(cmd_r)
    os.close(rep_w)
    try:
        deadline = time.monotonic() + 10
        while not _sigint_handled(child.pid) and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(0.1)  # the interpreter is up (its SIGINT handler is in): the import of pagelab is under way
        os.kill(child.pid, signal.SIGINT)
        os.close(cmd_w)  # a closed command pipe ends the child: exit status 0
        _, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        os.close(rep_r)
    assert (child.returncode, err) == (0, b"")


def test_a_fault_report_whose_pipe_read_was_interrupted_is_not_lost(real, monkeypatch):
    """The interrupt of the CI failure: it lands after the parent read the fault report from the pipe and before
    it was recorded. The fault record (a memfd the child writes first) still tells what the child died of."""
    import pagelab.real.machine as rm
    p = real.spawn("lostreport")
    guard = p.mmap(None, P, pl.PROT_NONE, ANON)
    check = p.mmap(None, P, RW, ANON)
    real_signal, calls = rm._fault_signal, []

    def interrupted_once(report: bytes, pid: int) -> Any:
        calls.append(pid)
        if len(calls) == 1:
            raise KeyboardInterrupt  # what a SIGALRM handler does between the read and the assignment
        return real_signal(report, pid)
    monkeypatch.setattr(rm, "_fault_signal", interrupted_once)
    with pytest.raises(KeyboardInterrupt):
        p.store(guard, 1)
    assert p.fault is None  # the pipe's report is gone with the interrupted call
    with pytest.raises(ChildDied) as exc:
        p.load(check)
    assert isinstance(p.fault, pl.SegmentationFault) and (p.fault.addr, p.fault.si_code) == (guard, "SEGV_ACCERR")
    assert exc.value.__cause__ is p.fault and len(calls) == 2
