"""pagelab.real: fork, exit and wait on this machine's kernel (issue #9).

The fault counts are the forked process's own and exact: fork makes both processes' interpreter memory their
own before it returns (child.Server.fork), so a measured call counts only the workload's faults. The process
tree is the real one: a forked process is its real parent's child, a zombie (state Z) until that parent waits;
Machine.close() leaves no process and no zombie behind. The tests signal only processes they started.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import time
from collections.abc import Iterator

import pytest
from tests.support.interrupts import CallCounter, alarm_raises, interrupt_at_call

import pagelab as pl
from pagelab.errors import NotModelled, ProcessDead, SegmentationFault, WaitWouldBlock
from pagelab.real import ChildDied, RealProcess
from pagelab.real import Machine as RealMachine

pytestmark = [pytest.mark.real,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs a Linux kernel")]
P = pl.PAGE_SIZE
N = 16 * pl.MiB
RW, ANON = pl.PROT_READ | pl.PROT_WRITE, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS


@pytest.fixture(scope="module")
def root() -> Iterator[RealProcess]:
    """One spawned process for the module (a spawn takes seconds, a fork a fraction of one)."""
    with RealMachine() as m:
        yield m.spawn("root")


class Forker:
    """``spawn()`` gives a fresh fork of the module's root process; each is killed and reaped afterwards."""

    def __init__(self, root: RealProcess) -> None:
        self.root = root
        self.made: list[RealProcess] = []

    def spawn(self, name: str = "") -> RealProcess:
        p = self.root.fork()
        self.made.append(p)
        return p

    def close(self) -> None:
        for p in self.made:
            p.kill(signal.SIGKILL)
            while p.alive:
                time.sleep(0.001)
            self.root.wait(p.pid)


@pytest.fixture
def real(root: RealProcess) -> Iterator[Forker]:
    forker = Forker(root)
    yield forker
    forker.close()


def faults(p: RealProcess, op: str, *args: object, **kwargs: object) -> tuple[int, int]:
    """(minor, major) faults of one measured call."""
    before, after = p.run_phase([(op, args, kwargs)])
    return after.ru_minflt - before.ru_minflt, after.ru_majflt - before.ru_majflt


def state(pid: int) -> str:
    """The state letter in /proc/PID/stat, or "" once the process entry is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except FileNotFoundError:
        return ""
    return stat[stat.rindex(b")") + 2:][:1].decode()


def children_of(pid: int) -> set[int]:
    """The pids whose parent is ``pid`` (zombies too), from /proc/PID/task/*/children."""
    found: set[int] = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                found.update(int(x) for x in f.read().split())
        except FileNotFoundError:
            pass
    return found


def test_fork_then_the_child_writes_every_page_then_the_parent(real):
    p = real.spawn("cow")
    a = p.mmap(None, N, RW, ANON)
    p.madvise(a, N, pl.MADV_NOHUGEPAGE)
    assert faults(p, "touch", a, N, write=True) == (4096, 0)
    c = p.fork()
    assert c.ppid == p.pid and c.pid != p.pid
    assert c.rusage().ru_minflt > 0 and faults(c, "touch", a, N) == (0, 0)  # reads: page tables were copied
    perf = c.perf_counts()
    assert faults(c, "touch", a, N, write=True) == (4096, 0)  # every page copied
    if perf is not None:  # the child's own perf counters
        assert c.perf_counts()["page-faults"] - perf["page-faults"] == 4096
    assert faults(c, "touch", a, N, write=True) == (0, 0)
    assert faults(p, "touch", a, N, write=True) == (4096, 0)  # still write-protected: reused, one fault each
    assert faults(p, "touch", a, N, write=True) == (0, 0)
    c.exit(0)
    assert p.wait() == (c.pid, 0)
    assert faults(p, "touch", a, N, write=True) == (0, 0)


def test_after_the_child_exits_the_parent_still_faults_once_a_page(real):
    """The issue's fact: the child writes every page and exits; the parent's next write of every page takes
    4096 faults (wp_can_reuse_anon_folio: reuse, no copy, still a fault)."""
    p = real.spawn("reuse")
    a = p.mmap(None, N, RW, ANON)
    p.madvise(a, N, pl.MADV_NOHUGEPAGE)
    p.touch(a, N, write=True)
    c = p.fork()
    assert faults(c, "touch", a, N, write=True) == (4096, 0)
    c.exit(0)
    assert p.wait(c.pid) == (c.pid, 0)
    assert faults(p, "touch", a, N, write=True) == (4096, 0)
    assert faults(p, "touch", a, N, write=True) == (0, 0)


def test_a_child_refaults_file_and_zero_page_mappings(real):
    """dup_mmap() copies page tables only for VMAs with an anon_vma: a file mapping and an anonymous one only
    ever read (the zero page) are faulted again by the child, as often as by the parent."""
    p = real.spawn("refault")
    fd = p.open("/f", os.O_RDWR | os.O_CREAT)
    p.pwrite(fd, b"x" * N, 0)
    f = p.mmap(None, N, pl.PROT_READ, pl.MAP_PRIVATE, fd, 0)
    z = p.mmap(None, N, RW, ANON)
    p.madvise(z, N, pl.MADV_NOHUGEPAGE)
    file_faults = faults(p, "touch", f, N)
    assert file_faults[0] > 0 and faults(p, "touch", z, N) == (4096, 0)
    c = p.fork()
    assert faults(c, "touch", f, N) == file_faults
    assert faults(c, "touch", z, N) == (4096, 0)
    assert faults(c, "touch", z, N, write=True) == (4096, 0)  # the zero page replaced by a page of its own
    assert faults(c, "pread", fd, P, 0) == (0, 0)  # the descriptor is shared, the read buffer mapped
    assert faults(p, "touch", f, N) == (0, 0)


def test_wait_semantics(real):
    p = real.spawn("waiter")
    with pytest.raises(ChildProcessError):  # ECHILD: no children
        p.wait()
    with pytest.raises(ChildProcessError):
        p.wait(-1, os.WNOHANG)
    c1, c2 = p.fork(), p.fork()
    assert {c1.ppid, c2.ppid} == {p.pid} and children_of(p.pid) == {c1.pid, c2.pid}
    assert p.wait(-1, os.WNOHANG) == (0, 0)
    with pytest.raises(WaitWouldBlock):
        p.wait()
    with pytest.raises(WaitWouldBlock):
        p.wait(c1.pid)
    with pytest.raises(ChildProcessError):
        p.wait(os.getpid())  # not its child
    with pytest.raises(ChildProcessError):
        c1.wait()  # a child has no children
    c2.exit(300)
    assert not c2.alive and state(c2.pid) == "Z"  # a zombie until its parent waits
    with pytest.raises(WaitWouldBlock):
        p.wait(c1.pid)  # c2 has exited, but not c1
    pid, status = p.wait(-1, os.WNOHANG)
    assert (pid, os.waitstatus_to_exitcode(status)) == (c2.pid, 300 & 0xFF)
    assert state(c2.pid) == ""
    assert c2.exit_status == status and c2.rusage().ru_minflt > 0
    with pytest.raises(ProcessDead):
        c2.load(0x1000)
    with pytest.raises(ChildProcessError):
        p.wait(c2.pid)  # reaped already
    assert p.wait(-1, os.WNOHANG) == (0, 0)
    with pytest.raises(OSError) as exc:
        p.wait(-1, 0x10000000)  # an unknown option: the kernel's EINVAL
    assert exc.value.errno == 22
    for pid, options in ((0, 0), (-p.pid, 0), (-1, os.WUNTRACED), (-1, os.WCONTINUED)):
        with pytest.raises(NotModelled):  # as on the simulator
            p.wait(pid, options | os.WNOHANG)
    for pid, options, err in ((-1, os.WNOWAIT, errno.EINVAL), (-(1 << 31), 0, errno.ESRCH)):  # measured: wait4()
        with pytest.raises(OSError) as exc:
            p.wait(pid, options | os.WNOHANG)
        assert exc.value.errno == err
    assert real.root.ppid == 1  # a spawned process: its parent plays init
    c1.exit(7)
    assert p.wait() == (c1.pid, 7 << 8)
    with pytest.raises(ChildProcessError):
        p.wait()


def test_a_forked_process_fault_is_reported_and_its_parent_waits_for_it(real):
    p = real.spawn("segv")
    c = p.fork()
    with pytest.raises(SegmentationFault) as exc:
        c.store(0x1000, 1)
    assert exc.value.si_code == "SEGV_MAPERR" and exc.value.addr == 0x1000
    assert not c.alive and c.fault is not None and state(c.pid) == "Z"
    with pytest.raises(ProcessDead):
        c.load(0x1000)
    pid, status = p.wait()
    assert pid == c.pid and os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSEGV
    assert p.load(p.mmap(None, P, RW, ANON)) == 0  # the parent carries on


def test_a_forked_process_killed_from_outside(real):
    p = real.spawn("victim")
    c = p.fork()
    os.kill(c.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while c.alive and time.monotonic() < deadline:
        time.sleep(0.005)
    assert not c.alive
    with pytest.raises(ChildDied, match="its parent's wait"):
        c.load(0x1000)
    pid, status = p.wait()
    assert pid == c.pid and os.WTERMSIG(status) == signal.SIGKILL and c.exit_status == status
    c = p.fork()
    os.kill(c.pid, signal.SIGTERM)
    pid, status = p.wait()  # at once: the wait sees the child on its way out
    assert pid == c.pid and os.WTERMSIG(status) == signal.SIGTERM and not c.alive


def test_an_interrupted_wait_loses_no_child(real):
    """Interrupt wait() at points over its whole run: the child is reaped at most once, and what an interrupt
    kept from the caller is recorded by the next wait, which then says ECHILD."""
    p = real.spawn("waitintr")
    counter = CallCounter()
    c = p.fork()
    c.exit(0)
    sys.setprofile(counter)
    try:
        p.wait()
    finally:
        sys.setprofile(None)
    calls, landed = counter.count, 0
    with alarm_raises():
        for k in range(1, 7):
            c = p.fork()
            c.exit(k)
            try:
                interrupt_at_call(calls * k // 7)
                got = p.wait()
            except KeyboardInterrupt:
                got, landed = None, landed + 1
            finally:
                sys.setprofile(None)
            if got is None:
                try:
                    got = p.wait()
                except ChildProcessError:  # reaped by the interrupted wait, recorded by this one
                    pass
            assert state(c.pid) == "" and c.exit_status == k << 8 and c.rusage().ru_minflt > 0
            assert got in (None, (c.pid, k << 8))
            with pytest.raises(ChildProcessError):
                p.wait()
    assert landed >= 4


def test_orphans_are_reparented_here_and_reaped(real):
    p = real.spawn("tree")
    c = p.fork()
    g = c.fork()
    assert g.ppid == c.pid and c.ppid == p.pid
    c.exit(0)  # g is orphaned: reparented to this process, the subreaper
    assert g.alive and g.ppid == 1  # reparented: its real parent is this process, which plays init
    with open(f"/proc/{g.pid}/stat") as f:
        assert int(f.read().rsplit(")", 1)[1].split()[1]) == os.getpid()
    g.exit(5)
    assert not g.alive and state(g.pid) == "" and os.waitstatus_to_exitcode(g.exit_status) == 5
    assert p.wait() == (c.pid, 0)
    z = p.fork()
    z.exit(3)
    assert state(z.pid) == "Z"
    p.exit(0)
    assert state(p.pid) == "Z"  # a zombie of the module's root until the fixture waits
    assert state(z.pid) == "" and z.ppid == 1  # its zombie child was reparented here and reaped, as by init


def test_close_ends_every_process_and_leaves_no_zombie():
    before = children_of(os.getpid())
    m = RealMachine()
    p = m.spawn("top")
    a = p.mmap(None, N, RW, ANON)
    p.touch(a, N, write=True)
    c1 = p.fork()
    c2 = p.fork()
    g = c1.fork()
    c2.exit(1)  # a zombie of p
    os.kill(c1.pid, signal.SIGSTOP)  # a stopped one
    q = p.fork()
    h = q.fork()
    q.exit(0)  # h orphaned, q a zombie of p
    pids = [x.pid for x in (p, c1, c2, g, q, h)]
    m.close()
    assert [state(pid) for pid in pids] == [""] * len(pids)
    assert children_of(os.getpid()) == before


def test_an_interrupted_fork_leaves_no_process(real):
    """Interrupt fork() at points spread over its whole run (a profile hook counts the calls, see
    tests/support/interrupts.py): afterwards the parent's children are exactly the processes pagelab
    knows alive, the parent works, and a fork that follows works."""
    p = real.spawn("intr")
    a = p.mmap(None, 64 * P, RW, ANON)
    p.touch(a, 64 * P, write=True)
    counter = CallCounter()
    sys.setprofile(counter)
    try:
        c = p.fork()
    finally:
        sys.setprofile(None)
    c.exit(0)
    p.wait()
    calls, landed = counter.count, 0
    with alarm_raises():
        for k in range(1, 9):
            try:
                interrupt_at_call(calls * k // 9)
                p.fork()
            except KeyboardInterrupt:
                landed += 1
            finally:
                sys.setprofile(None)
            p.load(a)  # the next call to the parent kills and reaps a fork it made that was not claimed
            known = {c.pid for c in p.children if c.alive}
            assert children_of(p.pid) == known
            if known:
                assert p.wait(-1, os.WNOHANG) == (0, 0)
            else:
                with pytest.raises(ChildProcessError):
                    p.wait(-1, os.WNOHANG)
            assert all(c.alive or c._reaped for c in p.children)  # a claim cut short: recorded as reaped
    assert landed >= 6
    c = p.fork()
    assert faults(c, "touch", a, 64 * P, write=True) == (64, 0)
