"""``pagelab.real.Machine``: the Process API on this machine's real Linux kernel.

``spawn()`` starts a child interpreter (real/child.py) that performs each call through libc on real
memory; the parent talks to it over two pipes, each request carrying an id that its reply carries back, so
an interrupted call (Ctrl-C) never leaves the next call reading its reply. ``rusage()`` is the child's own
getrusage(); a SIGSEGV in the child arrives as ``pagelab.SegmentationFault`` with the real si_code and
si_addr, and the child is gone afterwards, as with the simulator. A stopped child (SIGSTOP) makes a call
raise ``ChildStopped`` rather than hang; a child killed from outside makes ``alive`` False and the next call
raise ``ChildDied``. ``read()`` and ``vmstat()`` read the host's files.

Files (the file API contract of issue #8): ``m.fs`` (real/fs.py) makes files under a private root directory
in /var/tmp, removed at close(); ``p.open()`` translates the path there in the parent, and every file call
runs in the child, so its faults, I/O and rusage are the child's. ``m.drop_caches()`` writes the host's
/proc/sys/vm/drop_caches only for a Machine built with ``allow_host_changes=True``.

Processes (issue #9): ``p.fork()`` forks the real process itself (child.Server.fork): the new process serves
its own pipes and fault record, whose ends this process takes with pidfd_getfd(2), and both make the
interpreter's own memory theirs before fork() returns, so their counts stay the workload's. A forked
process is its real parent's child: after ``exit()`` (or a fault, or a kill) ``alive`` is False and it is a
zombie (state Z) until ``parent.wait()`` runs waitpid in the parent; ``fault`` and ChildDied mean what they
mean for a spawned process. This process becomes a child subreaper, so an orphan is reparented here and
reaped at once, as init reaps it (the host's init may reap late, or not at all). ``close()`` ends and
reaps every process of the tree.
"""

from __future__ import annotations

import errno
import inspect
import os
import pickle
import resource
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from itertools import count
from pathlib import Path
from typing import Any

import numpy as np

from .. import abi
from ..constants import PAGE_SIZE
from ..errors import (
    BusError,
    ChildStopped,
    FatalSignal,
    NotModelled,
    PagelabError,
    ProcessDead,
    SegmentationFault,
    WaitWouldBlock,
)
from ..kernel.exec import check_exec
from ..kernel.exit import check_wait
from ..kernel.sys import capability_number
from ..libc.malloc import Malloc
from ..observe.parse import parse_vmstat
from ..workload.scenario import Op
from . import child as _child
from . import libc
from .fs import RealFs
from .libc import FAULT_FRAME
from .ptrace import PTRACE_EVENT_EXEC, PTRACE_EVENT_EXIT, Tracee, stat_rusage
from .sysfs_io import DROP_CACHES, HostWriteRefused, SysfsWriter

SI_CODES = {(11, 1): "SEGV_MAPERR", (11, 2): "SEGV_ACCERR", (11, 4): "SEGV_PKUERR", (11, 0x80): "SI_KERNEL",
            (7, 1): "BUS_ADRALN", (7, 2): "BUS_ADRERR", (7, 3): "BUS_OBJERR"}


FAULT_MAGIC = b"\xff\xff\xff\xff"  # how libc.install_fault_reporter's report begins
_SIGNAMES = {int(s): s.name for s in signal.Signals}
# The child's program: SIGINT ignored first (serve() ignores it too), then the import of pagelab.
_CHILD_MAIN = ("import signal; signal.signal(signal.SIGINT, signal.SIG_IGN); "
               "from pagelab.real.child import main; main()")


class ChildDied(ProcessDead):
    """The real child process died outside the call being made: killed from outside, crashed, or of a fault in
    a call that was interrupted (then ``__cause__`` is that SegmentationFault or BusError)."""


def _exited(pidfd: int) -> bool:
    """Whether the process ``pidfd`` names has exited (a pidfd polls readable then). exec (issue #9)."""
    if pidfd < 0:
        return True
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(0))


def _wait_status(info: os.waitid_result) -> int:
    """The wait status word (as wait4 returns it) of a waitid() result."""
    if info.si_code == os.CLD_EXITED:
        return (info.si_status & 0xFF) << 8
    return info.si_status | (0x80 if info.si_code == os.CLD_DUMPED else 0)


def _fault_signal(report: bytes, pid: int) -> FatalSignal:
    """The SegmentationFault or BusError of a fault report (FAULT_MAGIC + libc.FAULT_FRAME)."""
    sig, code, addr = FAULT_FRAME.unpack(report[len(FAULT_MAGIC):])
    cls = SegmentationFault if sig == signal.SIGSEGV else BusError
    return cls(addr, SI_CODES.get((sig, code), f"si_code {code}"), pid)


class RealProcess:
    """A real child process of this machine, driven through the Process API.

    A call waits for the child as long as it runs; if the child is stopped (SIGSTOP) for ``stop_grace``
    seconds the call raises ChildStopped instead of hanging. ``alive`` notices a child killed from outside.
    """

    POLL_MS = 50  # how often a waiting call looks at the child's state
    stop_grace = 0.5  # seconds a child may stay stopped before a waiting call gives up
    pid: int

    def __init__(self, machine: Machine, name: str,
                 fork_of: tuple[RealProcess, int, list[int]] | None = None) -> None:
        self.machine = machine
        self.name = name
        # --- fork (issue #9): the process tree. A forked process is its real parent's child, not ours: it stays
        # a zombie until parent.wait(); if the parent dies first it is reparented to this process (a child
        # subreaper, see fork()), which reaps it as init would.
        self.parent: RealProcess | None = None if fork_of is None else fork_of[0]
        self.children: list[RealProcess] = []
        self._reaped = False  # the process entry is gone (waited by its parent, or reaped here)
        self._forking = False  # a fork() was sent whose new process may not be claimed yet
        self._ppid = os.getpid() if fork_of is None else fork_of[0].pid
        self._popen: subprocess.Popen[bytes] | None = None  # a spawned process's
        self._alive = False  # True while it runs
        self._death_told = False  # a call has reported the end (exit(), its own fault, Machine.close())
        self._rids = count(1)
        self._malloc: Malloc | None = None  # brk and malloc (issue #9): the glibc model, made on first use
        self._tracee: Tracee | None = None  # exec (issue #9): the exec'd program, traced, stopped at its exit
        self.exit_status: int | None = None
        self.fault: FatalSignal | None = None  # the SIGSEGV/SIGBUS the child died of, if it reported one
        self.discarded = 0  # replies of interrupted calls discarded
        self._final_rusage: resource.struct_rusage | None = None
        if fork_of is not None:
            self._attach_forked(fork_of[1], fork_of[2])
            return
        cmd_r, cmd_w = os.pipe()
        rep_r, rep_w = os.pipe()
        # A fresh interpreter, not a fork: nothing inherited, and PYTHONMALLOC=malloc puts Python's
        # objects in the brk heap that the child keeps resident (see child.Server.settle). SIGINT is
        # ignored before anything is imported: importing pagelab takes most of a second, and a Ctrl-C
        # meanwhile (it reaches the whole process group) would print the child's traceback.
        env = dict(os.environ, PYTHONMALLOC="malloc", PYTHONHASHSEED="0")
        # The child's fault report also goes to this memfd: reading it back (pread) is not lost to an interrupt.
        self._record = os.memfd_create("pagelab-fault", os.MFD_CLOEXEC)
        os.ftruncate(self._record, _child.FAULT_LEN)
        self._popen = subprocess.Popen(
            [sys.executable, "-c", _CHILD_MAIN, str(cmd_r), str(rep_w), str(self._record), name],
            pass_fds=(cmd_r, rep_w, self._record), env=env, stdin=subprocess.DEVNULL, close_fds=True)
        os.close(cmd_r)
        os.close(rep_w)
        self.pid = self._popen.pid
        # One CPU, as the simulated machine has: pages wait in per-CPU LRU batches, and a call that drains
        # only its own CPU's (MADV_PAGEOUT, COLD, FREE: lru_add_drain()) would miss those a child left on the
        # other CPU after a migration, at random (measured: 13 pages of a 4 MiB file stayed resident after
        # MADV_PAGEOUT). Forked and exec'd processes inherit it.
        os.sched_setaffinity(self.pid, {min(os.sched_getaffinity(0))})
        self._cmd, self._rep = cmd_w, rep_r
        self._pidfd = os.pidfd_open(self.pid)  # names this very process, even after its pid is reused
        os.set_blocking(cmd_w, False)
        os.set_blocking(rep_r, False)
        self._alive = True
        self._warm_up()

    def _attach_forked(self, pid: int, fds: list[int]) -> None:
        """Take over a forked process: ``fds`` are its command pipe's write end, its reply pipe's read end,
        its fault record and a pidfd, all duplicated into this process."""
        self.pid = pid
        self._cmd, self._rep, self._record, self._pidfd = fds
        os.set_blocking(self._cmd, False)
        os.set_blocking(self._rep, False)
        self._alive = True

    @property
    def alive(self) -> bool:
        """False once the child has exited, however it ended (reaped here if it was killed from outside)."""
        return not self._collect()

    def _warm_up(self) -> None:
        """Exercise every command, alone and inside a phase, on scratch memory, so that whatever the
        interpreter and numpy allocate on first use is allocated before anything is measured."""
        n = 64 * PAGE_SIZE
        a = self._call("mmap", 0, n, 3, 0x22, -1, 0)
        pages = np.arange(a, a + 8 * PAGE_SIZE, PAGE_SIZE, dtype=np.int64)
        ops = [("touch", (a, n, True, PAGE_SIZE)), ("touch", (a, n, False, PAGE_SIZE)),
               ("access", (pages.copy(), np.array([1, 0] * 4, bool))), ("access", (pages.copy(), np.ones(1, bool))),
               ("access", (pages.copy(), np.zeros(1, bool))), ("store", (a, 1)), ("load", (a,)),
               ("mincore", (a, 4 * PAGE_SIZE)), ("madvise", (a, n, 4)), ("mprotect", (a, PAGE_SIZE, 3))]
        self._call("warm_files")  # the file calls, once alone and once in a phase (about 0.1 s)
        for _ in range(3):
            for op, args in ops:
                self._call(op, *args)
            self._call("phase", [(op, tuple(x.copy() if isinstance(x, np.ndarray) else x for x in args))
                                 for op, args in ops])
            self._call("rusage")
        self._call("munmap", a, n)

    # --- the pipe protocol ----------------------------------------------------------------------
    # Requests carry ids and the child's START and REPLY carry them back, so whatever an interrupted call
    # left in the pipe is recognised and discarded by the next call. Both pipes carry whole PIPE_BUF chunks
    # (child.chunks), each written by one atomic write() and read by one read(), so an interrupt cannot
    # leave part of a chunk behind; a request cut short between chunks is dropped by the child. Nothing of
    # the stream is kept between calls but the next id: a KeyboardInterrupt raised by a signal handler
    # between any two bytecodes loses at most the current call's own chunks. (Blocking signals around the
    # writes would not do: the kernel then delivers the signal to numpy's BLAS thread, and Python runs the
    # handler in the main thread all the same.) The calls are not thread-safe: one caller at a time.
    def _call(self, op: str, *args: Any) -> Any:
        if self._tracee is not None and self._tracee.state == "exit":  # exec (issue #9)
            raise ProcessDead(f"real process {self.pid} ran a program and is stopped at its exit: read its /proc "
                              "files and rusage(), then exit()")
        if not self.alive:
            raise self._dead()
        rid = next(self._rids)
        payload = pickle.dumps((op, args))
        self._send(rid, payload)
        reply = self._receive(rid)
        if reply[0] == "ok":
            return reply[1]
        if reply[0] == "oserror":
            raise OSError(reply[1], reply[2])
        raise PagelabError(f"the real process {self.pid} failed running {op}:\n{reply[1]}")

    def _send(self, rid: int, payload: bytes) -> None:
        """Write request ``rid`` chunk by chunk, waiting while the pipe is full."""
        for chunk in _child.chunks(rid, _child.REQUEST, payload):
            while True:
                try:
                    written = os.write(self._cmd, chunk)
                except BlockingIOError:
                    self._wait(self._cmd, select.POLLOUT)
                    continue
                except BrokenPipeError:  # the child's end is closed: it is gone
                    raise self._gone() from None
                if written != _child.CHUNK:  # pipe_write() writes PIPE_BUF bytes whole or not at all
                    raise self._out_of_step(f"a write of {_child.CHUNK} bytes wrote {written}")
                break

    def _receive(self, rid: int) -> tuple[Any, ...]:
        """Read until the reply to request ``rid``, discarding what interrupted calls left in the pipe."""
        started, parts = False, list[bytes]()
        while True:
            try:
                data = os.read(self._rep, _child.CHUNK)
            except BlockingIOError:
                self._wait(self._rep, select.POLLIN)
                continue
            if len(data) == _child.CHUNK:
                r, kind, index, count, body = _child.parse_chunk(data)
                if r != rid:
                    self.discarded += kind == _child.REPLY and index + 1 == count
                elif kind == _child.START:
                    started = True
                elif kind == _child.REPLY and index == len(parts):
                    parts.append(body)
                    if len(parts) == count:
                        reply: tuple[Any, ...] = pickle.loads(b"".join(parts))
                        return reply
                else:
                    raise self._out_of_step(f"chunk {index} of {count} of reply {r} after {len(parts)}")
            elif len(data) == _child.FAULT_LEN and data[:4] == FAULT_MAGIC:
                raise self._faulted(data, started)
            elif not data:
                raise self._gone()
            else:
                raise self._out_of_step(f"a read of {_child.CHUNK} bytes returned {len(data)}")

    def _wait(self, fd: int, event: int) -> None:
        """Wait until ``fd`` is ready for ``event``, however long a running child takes (touching GiBs is no
        hang); raise ChildStopped once the child has stayed stopped (state T) ``stop_grace`` seconds.

        Waiting to write, it reads (and discards) what earlier calls' requests answer meanwhile: the child may
        be blocked writing those replies, and would never read the rest of this request otherwise.
        """
        poller = select.poll()
        poller.register(fd, event)
        if fd == self._cmd:
            poller.register(self._rep, select.POLLIN)
        stopped_since: float | None = None
        while True:
            ready = poller.poll(self.POLL_MS)
            if fd in [f for f, _ in ready]:  # no generator: an interrupt in its close() would be swallowed
                return
            if ready:
                self._discard_stale()
                continue
            if self._state() != "T":
                stopped_since = None
                continue
            now = time.monotonic()
            if stopped_since is None:
                stopped_since = now
            elif now - stopped_since >= self.stop_grace:
                raise ChildStopped(
                    f"the real process {self.pid} ({self.name}) is stopped (SIGSTOP or a terminal stop): the call "
                    f"gave up after {self.stop_grace:g} s. SIGCONT resumes it (kill -CONT {self.pid}); it then runs "
                    f"or drops this call's request, and the next call discards the reply")

    def _discard_stale(self) -> None:
        """Read what the reply pipe holds while this call's request is still being written: all of it answers
        earlier, interrupted calls (a fault report too: this request cannot have started)."""
        while True:
            try:
                data = os.read(self._rep, _child.CHUNK)
            except BlockingIOError:
                return
            if len(data) == _child.CHUNK:
                _, kind, index, count, _ = _child.parse_chunk(data)
                self.discarded += kind == _child.REPLY and index + 1 == count
            elif len(data) == _child.FAULT_LEN and data[:4] == FAULT_MAGIC:
                raise self._faulted(data, started=False)
            elif not data:
                raise self._gone()
            else:
                raise self._out_of_step(f"a read of {_child.CHUNK} bytes returned {len(data)}")

    def _state(self) -> str:
        """The child's state letter in /proc/PID/stat (R, S, D, T, Z...); the pid is ours until reaped."""
        try:
            with open(f"/proc/{self.pid}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            return "?"
        return stat[stat.rindex(b")") + 2:][:1].decode()

    def _faulted(self, report: bytes, started: bool) -> PagelabError:
        """The child reported SIGSEGV/SIGBUS and dies of it: the error of the call that caused it, or, if it was
        an earlier, interrupted call (this call's request had not started), the ChildDied of this one."""
        self.fault = _fault_signal(report, self.pid)
        self._await_exit(timeout=5.0)  # the re-executed access kills it; SIGKILL if it somehow lives on
        if started:
            self._death_told = True
            return self.fault
        return self._dead()

    def _gone(self) -> PagelabError:
        """The child closed its pipes, so it is exiting: reap it, and the error for the call."""
        self._await_exit(timeout=None)
        return self._dead()

    def _out_of_step(self, what: str) -> PagelabError:
        """Never expected: a pipe no longer holds whole chunks. The child is killed rather than trusted."""
        self._terminate()
        return PagelabError(f"the real process {self.pid} ({self.name}): pipe out of step ({what}); killed")

    def _dead(self) -> ProcessDead:
        """The error for a call to a child that is gone: ProcessDead if a call already reported its end (exit(),
        its own fault, Machine.close()), else ChildDied saying how it died."""
        if self._death_told:
            return ProcessDead(f"real process {self.pid} ({self.name}) has exited ({self._how()})")
        err = ChildDied(f"the real process {self.pid} ({self.name}) died: {self._how()}")
        err.__cause__ = self.fault
        return err

    def _how(self) -> str:
        if self.fault is not None:
            return f"{self.fault}, in a call that was interrupted" if not self._death_told else str(self.fault)
        st = self.exit_status
        if st is None and self.parent is not None:
            return "it has exited; its parent's wait() returns its status"
        if st is None:
            return "its exit status was lost to an interrupt"
        if os.WIFSIGNALED(st):
            sig = os.WTERMSIG(st)
            return f"killed by signal {sig} ({signal.strsignal(sig) if sig not in _SIGNAMES else _SIGNAMES[sig]})"
        return f"exited with status {os.WEXITSTATUS(st)}"

    def _collect(self) -> bool:
        """Reap the child if it has exited, recording its wait status, final rusage and any fault report it
        left in the pipe, then close its fds; True once it is gone. Never blocks. Each step can be cut short by
        an interrupt and is finished by the next call (the status is peeked before the reap, for that)."""
        if self.parent is not None:
            return self._collect_forked()
        if self._tracee is not None and self._tracee.state == "exit" and not _exited(self._pidfd):
            return False  # exec (issue #9): a ptrace stop that waitid() would report, not an exit
        if self._alive:
            try:
                peek = os.waitid(os.P_PIDFD, self._pidfd, os.WEXITED | os.WNOHANG | os.WNOWAIT)
                if peek is None:
                    return False
                self.exit_status = _wait_status(peek)
                _, self.exit_status, self._final_rusage = os.wait4(self.pid, 0)  # a zombie: returns at once
            except ChildProcessError:  # reaped already by a _collect that an interrupt cut short
                pass
            self._alive = False
            self._reaped = True
            if self._popen is not None:
                self._popen.returncode = (-1 if self.exit_status is None
                                          else os.waitstatus_to_exitcode(self.exit_status))
        self._read_leftovers()
        self._close_fds()
        return True

    def _collect_forked(self) -> bool:
        """_collect of a forked process: it has exited once its pidfd polls readable (a zombie too); it is
        reaped here only if its parent has died and it was reparented to this process."""
        if self._alive:
            poller = select.poll()
            if self._pidfd >= 0:
                poller.register(self._pidfd, select.POLLIN)
            if self._pidfd < 0 or not poller.poll(0):
                return False
            self._alive = False
        if not self._reaped and self._pidfd >= 0:
            try:
                peek = os.waitid(os.P_PIDFD, self._pidfd, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:  # its real parent's child, a zombie until that parent waits
                peek = None
            if peek is not None:  # reparented here: its parent has died
                _, status, usage = os.wait4(self.pid, 0)
                self._ppid = os.getpid()
                self._reaped_as(status, usage)
        self._read_leftovers()
        for name in ("_cmd", "_rep", "_record") if not self._reaped else ("_cmd", "_rep", "_record", "_pidfd"):
            fd = getattr(self, name)
            setattr(self, name, -1)
            if fd >= 0:
                os.close(fd)
        return True

    def _reaped_as(self, status: int, usage: resource.struct_rusage | None) -> None:
        """The process entry is gone: record its wait status and final rusage, drop its pidfd."""
        self.exit_status, self._reaped, self._alive = status, True, False
        if usage is not None:
            self._final_rusage = usage
        fd, self._pidfd = self._pidfd, -1
        if fd >= 0:
            os.close(fd)

    def _read_leftovers(self) -> None:
        """Read what a dead child left in the reply pipe (bounded: its end is closed) for a fault report, and
        its fault record, which keeps the report a read of the pipe lost to an interrupt."""
        if self.fault is None and self._record >= 0:
            report = os.pread(self._record, _child.FAULT_LEN, 0)
            if report[:4] == FAULT_MAGIC:
                self.fault = _fault_signal(report, self.pid)
        while self._rep >= 0:
            try:
                data = os.read(self._rep, _child.CHUNK)
            except OSError:
                return
            if not data:
                return
            if len(data) == _child.FAULT_LEN and data[:4] == FAULT_MAGIC and self.fault is None:
                self.fault = _fault_signal(data, self.pid)

    def _close_fds(self) -> None:
        for name in ("_cmd", "_rep", "_pidfd", "_record"):
            fd = getattr(self, name, -1)
            setattr(self, name, -1)  # first: an interrupt may leak the fd, never close a reused number twice
            if fd >= 0:
                os.close(fd)

    def _await_exit(self, timeout: float | None) -> None:
        """Wait for the child to exit and reap it; SIGKILL it if it has not exited after ``timeout`` seconds."""
        if self._collect():
            return
        poller = select.poll()
        poller.register(self._pidfd, select.POLLIN)  # a pidfd polls readable once its process has exited
        if not poller.poll(None if timeout is None else int(timeout * 1000)):
            self.kill(signal.SIGKILL)
            poller.poll(None)
        self._collect()

    def _terminate(self) -> None:
        """SIGKILL the child unless it is gone already, and reap it."""
        self.kill(signal.SIGKILL)
        self._await_exit(timeout=None)

    # --- the Process API ------------------------------------------------------------------------
    # Arguments are checked and converted here, in the parent, by the same pagelab.abi rules as the
    # simulator's, before anything reaches the child (_CHILD_ARGS).
    def mmap(self, addr: int | None, length: int, prot: int, flags: int, fd: int = -1, offset: int = 0) -> int:
        return int(self._call("mmap", *abi.mmap_args(addr, length, prot, flags, fd, offset)))

    def munmap(self, addr: int, length: int) -> None:
        self._call("munmap", *abi.munmap_args(addr, length))

    def mprotect(self, addr: int, length: int, prot: int) -> None:
        self._call("mprotect", *abi.mprotect_args(addr, length, prot))

    def madvise(self, addr: int, length: int, advice: int) -> None:
        self._call("madvise", *abi.madvise_args(addr, length, advice))

    def prctl(self, option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
        result: int = self._call("prctl", *abi.prctl_args(option, arg2, arg3, arg4, arg5))
        return result

    # --- brk and malloc (issue #9) ---
    def brk(self, addr: int) -> int:
        """brk(2), the raw system call in the child. The child's own glibc heap lies below the break the
        first call finds: lowering the break under it, or after the interpreter's malloc moved it, raises
        PagelabError instead (the simulator has no interpreter under its heap)."""
        result: int = self._call("brk", abi.c_ulong(addr, "addr"))
        return result

    @property
    def libc(self) -> Malloc:
        """pagelab's glibc model (pagelab.libc.malloc) driving this real process's brk, mmap, madvise and
        stores: the kernel underneath is real, the allocator is the model (the host's own glibc is compared
        with C probes: tests/real/test_malloc_real.py)."""
        if self._malloc is None:
            self._malloc = Malloc(self)
        return self._malloc

    def malloc(self, n: int) -> int:
        """malloc(n) of the glibc model over this process (see ``libc``); 0 if it fails."""
        return self.libc.malloc(abi.c_ulong(n, "size"))

    def free(self, addr: int) -> None:
        self.libc.free(abi.c_ulong(addr, "ptr"))

    def malloc_trim(self, pad: int) -> int:
        return self.libc.malloc_trim(abi.c_ulong(pad, "pad"))

    def mallopt(self, param: int, value: int) -> int:
        return self.libc.mallopt(abi.c_int(param, "param"), abi.c_int(value, "value"))

    # --- mremap (issue #9) ---
    def mremap(self, old_addr: int, old_size: int, new_size: int, flags: int = 0, new_addr: int = 0) -> int:
        result: int = self._call("mremap", *abi.mremap_args(old_addr, old_size, new_size, flags, new_addr))
        return result

    # --- mlock, rlimits and capabilities (issue #9): performed by the child on itself ---
    def mlock(self, addr: int, length: int) -> None:
        self._call("mlock", *abi.mlock_args(addr, length))

    def mlock2(self, addr: int, length: int, flags: int) -> None:
        self._call("mlock2", *abi.mlock2_args(addr, length, flags))

    def munlock(self, addr: int, length: int) -> None:
        self._call("munlock", *abi.mlock_args(addr, length))

    def mlockall(self, flags: int) -> None:
        """mlockall(2). MCL_CURRENT locks the child interpreter's own memory too (its VmLck differs from
        the simulator's), and MCL_FUTURE under a low RLIMIT_MEMLOCK can starve the child's own mmap()s:
        call munlockall() soon after."""
        self._call("mlockall", *abi.mlockall_args(flags))

    def munlockall(self) -> None:
        self._call("munlockall")

    def getrlimit(self, res: int) -> tuple[int, int]:
        soft, hard = self._call("getrlimit", abi.rlimit_resource(res))
        return abi.rlim_to_python(soft), abi.rlim_to_python(hard)

    def setrlimit(self, res: int, limits: tuple[int, int]) -> None:
        res = abi.rlimit_resource(res)
        self._call("setrlimit", res, *abi.rlimit_pair(limits))

    def drop_capability(self, name: str) -> None:
        """Drops ``name`` in the child only (prctl(PR_CAPBSET_DROP) + capset(2)); the host keeps it."""
        self._call("drop_capability", capability_number(name))

    def mincore(self, addr: int, length: int) -> np.ndarray:
        return np.frombuffer(self._call("mincore", *abi.mincore_args(addr, length)), dtype=np.uint8) & 1

    def load(self, addr: int) -> int:
        return int(self._call("load", *_CHILD_ARGS["load"](addr)))

    def store(self, addr: int, value: int = 0) -> None:
        self._call("store", *_CHILD_ARGS["store"](addr, value))

    def touch(self, addr: int, length: int, *, write: bool = False, stride: int = PAGE_SIZE) -> None:
        self._call("touch", *abi.touch_args(addr, length, write, stride))

    def access(self, addresses: Any, *, write: bool | np.ndarray = False) -> None:
        self._call("access", *_CHILD_ARGS["access"](addresses, write))

    # --- file calls (issue #8): checked here, performed by the child on its own descriptors -------------
    # The child numbers the caller's descriptors from 3 up, lowest free first, and knows no other: its pipes
    # are not the caller's files (EBADF). open() sends the path with the root to open it in (m.fs.open_target()).
    def open(self, path: Any, flags: int = os.O_RDONLY, mode: int = 0o644) -> int:
        return int(self._call("open", *self._open_args(path, flags, mode)))

    def close(self, fd: int) -> None:
        self._call("close", *_CHILD_ARGS["close"](fd))

    def lseek(self, fd: int, offset: int, whence: int) -> int:
        return int(self._call("lseek", *_CHILD_ARGS["lseek"](fd, offset, whence)))

    def read(self, fd: int, n: int) -> int:
        """read(2) of ``n`` bytes into the child's own resident buffer; the bytes read."""
        return int(self._call("read", *_CHILD_ARGS["read"](fd, n)))

    def pread(self, fd: int, n: int, offset: int) -> int:
        return int(self._call("pread", *_CHILD_ARGS["pread"](fd, n, offset)))

    def write(self, fd: int, data: bytes) -> int:
        return int(self._call("write", *_CHILD_ARGS["write"](fd, data)))

    def pwrite(self, fd: int, data: bytes, offset: int) -> int:
        return int(self._call("pwrite", *_CHILD_ARGS["pwrite"](fd, data, offset)))

    def ftruncate(self, fd: int, length: int) -> None:
        self._call("ftruncate", *_CHILD_ARGS["ftruncate"](fd, length))

    def fsync(self, fd: int) -> None:
        self._call("fsync", *_CHILD_ARGS["fsync"](fd))

    def fdatasync(self, fd: int) -> None:
        self._call("fdatasync", *_CHILD_ARGS["fdatasync"](fd))

    def msync(self, addr: int, length: int, flags: int) -> None:
        self._call("msync", *_CHILD_ARGS["msync"](addr, length, flags))

    def fadvise(self, fd: int, offset: int, length: int, advice: int) -> None:
        self._call("fadvise", *_CHILD_ARGS["fadvise"](fd, offset, length, advice))

    def cachestat(self, fd: int, offset: int = 0, length: int = 0) -> dict[str, int]:
        """cachestat(2) with flags 0: nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted."""
        stats: dict[str, int] = self._call("cachestat", *_CHILD_ARGS["cachestat"](fd, offset, length))
        return stats

    def _open_args(self, path: Any, flags: object, mode: object) -> tuple[str, str, int, int]:
        """``int open(const char *path, int flags, mode_t mode)``, the path as m.fs.open_target() gives it:
        (root, path) to open in the private root, or ("", host path) for an imported file."""
        _path, flags, mode = abi.open_args(path, flags, mode)  # TypeError / ValueError (a NUL byte) as the simulator
        return (*self.machine.fs.open_target(path), flags, mode)

    def run_phase(self, ops: list[Op]) -> tuple[resource.struct_rusage, resource.struct_rusage]:
        """Run Process API calls ``[(name, args, kwargs), ...]`` in the child as one measured phase."""
        before, after = self._call("phase", [self._child_op(name, args, kwargs) for name, args, kwargs in ops])
        return resource.struct_rusage(before), resource.struct_rusage(after)

    def _child_op(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
        """Translate a Process API call into the child's positional command, checked as the method checks it."""
        if name != "open" and name not in _CHILD_ARGS:
            return name, tuple(args) + tuple(kwargs.values())
        bound = inspect.signature(getattr(RealProcess, name)).bind(None, *args, **kwargs)
        bound.apply_defaults()
        values = list(bound.arguments.values())[1:]
        return name, self._open_args(*values) if name == "open" else _CHILD_ARGS[name](*values)

    def perf_counts(self) -> dict[str, int] | None:
        """perf's page-faults, minor-faults and major-faults of the child (None where perf is refused)."""
        counts: dict[str, int] | None = self._call("perf")
        return counts

    def rusage(self) -> resource.struct_rusage:
        if self._tracee is not None and self._tracee.state == "exit":  # exec (issue #9): stopped at its exit
            return stat_rusage(self.pid)
        if not self.alive and self._final_rusage is not None:
            return self._final_rusage
        return resource.struct_rusage(self._call("rusage"))

    def exit(self, code: int = 0) -> None:
        """exit(2). A spawned process is reaped at once (as init would); a forked one stays a zombie (state Z)
        until its parent waits, or, if its parent is gone, is reaped as an orphan is."""
        if self._tracee is not None and self._tracee.state == "exit":  # exec (issue #9)
            self._finish_exec()
            return
        code = abi.exit_status(code)
        usage = self._call("exit", code)
        self._final_rusage = resource.struct_rusage(usage)  # wait4's, when this process reaps it, replaces it
        if self.parent is not None:
            self.exit_status = (code & 0xFF) << 8
        self._death_told = True
        self._await_exit(timeout=None)
        for c in self.children:  # its zombies were reparented here (forget_original_parent()): reap them, as init
            if not c._reaped:
                c._collect()

    # --- exec (issue #9) ---
    def exec(self, path: str, argv: list[str]) -> None:
        """execve(2) of ``path`` with ``argv`` and an empty environment in the real process, which then runs
        the program under ptrace (seized from here: PTRACE_O_TRACEEXEC | TRACEEXIT) until it stops in
        exit_group(): its /proc files and rusage() (from /proc/PID/stat) can then be read, and exit() lets
        it finish. The same checks as the simulator's come first (kernel/exec.py check_exec())."""
        path, argv = check_exec(path, argv, self.getrlimit(resource.RLIMIT_STACK)[0] & ((1 << 64) - 1))
        if not self.alive:
            raise self._dead()
        if self.parent is not None:
            raise NotModelled("exec in a forked real process (it is not this process's child to trace)")
        tracee = Tracee.seize(self.pid)
        self._tracee = tracee
        self._send(next(self._rids), pickle.dumps(("exec", (path, argv))))
        if not tracee.wait_event(PTRACE_EVENT_EXEC) or not tracee.wait_event(PTRACE_EVENT_EXIT):
            self._reaped_as(tracee.status, None)
            self._close_fds()
            raise ChildDied(f"the real process {self.pid} ({self.name}) could not run {path}: {self._how()}")
        self.name = os.path.basename(path)

    def _finish_exec(self) -> None:
        """Let the exec'd program finish its exit_group() and reap it (its status is its own)."""
        assert self._tracee is not None
        status, usage = self._tracee.finish_rusage()
        self._death_told = True
        self._reaped_as(status, usage)
        if self._popen is not None:
            self._popen.returncode = os.waitstatus_to_exitcode(status)
        self._close_fds()

    # --- fork, wait and the process tree (issue #9) -------------------------------------------------
    @property
    def ppid(self) -> int:
        """getppid() of the process: the forking process's pid, or 1 (init) for a spawned or orphaned process,
        as on the simulator: its real parent is then this Python process, which plays init (it reaps them)."""
        if not self._reaped:
            try:
                with open(f"/proc/{self.pid}/stat", "rb") as f:
                    stat = f.read()
                self._ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
            except (OSError, ValueError, IndexError):
                pass
        return 1 if self._ppid == os.getpid() else self._ppid

    def fork(self) -> RealProcess:
        """fork(2): the real process forks itself; the child serves its own pipes (child.Server.fork).

        The child's rusage starts at zero, as fork gives; both processes make the interpreter's own memory
        theirs before this returns (the child maps every page the parent had mapped outside the caller's
        mappings; the parent copies or reuses its write-protected private ones), so the next measured calls of
        either count only the workload's faults: the child needs no warm-up, the interpreter's first-use
        allocations were made by the parent. This Python process becomes a child
        subreaper (prctl PR_SET_CHILD_SUBREAPER), so a forked process whose parent dies is reparented here
        and reaped, as by init, instead of lingering as a zombie of the host's init."""
        if not self.alive:
            raise self._dead()
        libc.prctl(libc.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        self._forking = True  # until claimed: an interrupted fork leaves the new process to be killed
        pid, *theirs = self._call("fork")
        fds: list[int] = []
        try:
            for fd in theirs:
                fds.append(libc.pidfd_getfd(self._pidfd, fd))
            child = RealProcess(self.machine, self.name, fork_of=(self, pid, fds))
        except BaseException:
            for fd in fds:  # the parent kills and reaps the unclaimed process at its next request
                os.close(fd)
            raise
        self.children.append(child)
        self.machine.procs.append(child)
        self._call("forked", pid)
        self._forking = False
        if child._call("ping") != pid:  # its pipes lead to the process its pidfd names
            child._terminate()
            raise PagelabError(f"the process forked by {self.pid} does not answer as {pid}")
        if self._malloc is not None:  # brk and malloc (issue #9): the child's libc state is a copy, like its memory
            child._malloc = self._malloc.fork_copy(child)
        return child

    def wait(self, pid: int = -1, options: int = 0) -> tuple[int, int]:
        """waitpid(2) in the real process: (pid, wait status) of an exited child, which is reaped; (0, 0) with
        os.WNOHANG while none has exited; ECHILD without such a child (EINVAL for unknown options).

        The real children run only the calls made to them, so a wait that would block (no WNOHANG, children,
        none exited) would block for good: WaitWouldBlock instead (the child runs wait4 with WNOHANG). The
        child keeps what it reaped until this side has recorded it, so a wait whose reply an interrupt lost
        still leaves that child reaped and its status recorded here (by the next wait). The checks that need
        no exited child are the simulator's (kernel/exit.py check_wait())."""
        pid, options = abi.wait_args(pid, options)
        check_wait(pid, options, [c.pid for c in self.children if not c._reaped])  # as the simulator checks
        deadline = time.monotonic() + 10.0
        while True:
            unrecorded = [c.pid for c in self.children if not c._reaped]
            wpid, status, usage, earlier = self._call("wait", pid, options | os.WNOHANG, unrecorded)
            for cpid, (st, ru) in earlier.items():
                self._record_reaped(cpid, st, ru)
            if wpid == -errno.ECHILD:
                raise OSError(errno.ECHILD, f"waitpid: pid {pid} is no child of {self.pid}")
            if wpid:
                self._record_reaped(wpid, status, usage)
                return int(wpid), int(status)
            if options & os.WNOHANG:
                return 0, 0
            # None has exited yet. A child that is not idle (sleeping in its pipe read, or stopped) is on its
            # way out (killed from outside: it runs nothing else meanwhile): wait for its pidfd.
            busy = [c for c in self.children if not c._reaped and (pid == -1 or c.pid == pid)
                    and c._pidfd >= 0 and c._state() not in ("S", "T", "t", "Z", "?")]
            if not busy or time.monotonic() > deadline:
                raise WaitWouldBlock(f"wait({pid}) in {self.pid} would block for good: none of its children has "
                                     f"exited, and they run only the calls made to them")
            poller = select.poll()
            for c in busy:
                poller.register(c._pidfd, select.POLLIN)
            poller.poll(50)

    def _record_reaped(self, pid: int, status: int, usage: tuple[float, ...]) -> None:
        for c in self.children:
            if c.pid == pid and not c._reaped:
                c._collect()
                c._reaped_as(status, resource.struct_rusage(usage))

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send the child a signal (through its pidfd: it is ours, and never another process)."""
        if self.alive:
            try:
                signal.pidfd_send_signal(self._pidfd, sig)
            except ProcessLookupError:  # exited, not yet reaped
                pass

    def __del__(self) -> None:
        try:
            if getattr(self, "_alive", False):
                self._terminate()
            self._close_fds()
        except Exception:  # noqa: BLE001 - nothing can be reported from a finalizer
            pass

    def __repr__(self) -> str:
        return f"<pagelab.real.Process pid={self.pid} {self.name!r} {'alive' if self._alive else 'dead'}>"


def _access_args(addresses: Any, write: Any) -> tuple[np.ndarray, np.ndarray]:
    addrs = abi.access_addresses(addresses).view(np.int64)
    return addrs, abi.access_writes(write, addrs.shape[0])


def _data(data: object) -> bytes:
    """The buffer of write()/pwrite(): bytes-like (bytes, bytearray, memoryview), else TypeError."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"data must be bytes-like, not {type(data).__name__}")


def _fd(fd: object) -> int:
    return abi.c_int(fd, "fd")


# Process API method -> its arguments checked (pagelab.abi) and laid out as the child's command takes them
# (open is checked by RealProcess._open_args: its path is translated by the Machine's fs).
# The C prototypes: off_t and loff_t are long, size_t is unsigned long, mode_t unsigned int;
# cachestat's range is two __u64.
_CHILD_ARGS: dict[str, Callable[..., tuple[Any, ...]]] = {
    "close": lambda fd: (_fd(fd),),
    "lseek": lambda fd, offset, whence: (_fd(fd), abi.c_long(offset, "offset"), abi.c_int(whence, "whence")),
    "read": lambda fd, n: (_fd(fd), abi.c_ulong(n, "count")),
    "pread": lambda fd, n, offset: (_fd(fd), abi.c_ulong(n, "count"), abi.c_long(offset, "offset")),
    "write": lambda fd, data: (_fd(fd), _data(data)),
    "pwrite": lambda fd, data, offset: (_fd(fd), _data(data), abi.c_long(offset, "offset")),
    "ftruncate": lambda fd, length: (_fd(fd), abi.c_long(length, "length")),
    "fsync": lambda fd: (_fd(fd),), "fdatasync": lambda fd: (_fd(fd),),
    "msync": lambda addr, length, flags: (abi.c_pointer(addr), abi.c_ulong(length, "length"),
                                          abi.c_int(flags, "flags")),
    "fadvise": lambda fd, offset, length, advice: (_fd(fd), abi.c_long(offset, "offset"),
                                                   abi.c_long(length, "len"), abi.c_int(advice, "advice")),
    "cachestat": lambda fd, offset, length: (_fd(fd), abi.c_ulong(offset, "off"), abi.c_ulong(length, "len")),
    "mmap": abi.mmap_args, "munmap": abi.munmap_args, "mprotect": abi.mprotect_args,
    "madvise": abi.madvise_args, "mincore": abi.mincore_args, "prctl": abi.prctl_args,
    "mremap": abi.mremap_args,  # mremap (issue #9)
    "mlock": abi.mlock_args, "mlock2": abi.mlock2_args, "munlock": abi.mlock_args,  # mlock (issue #9)
    "mlockall": abi.mlockall_args, "munlockall": lambda: (),
    "setrlimit": lambda res, limits: (abi.rlimit_resource(res), *abi.rlimit_pair(limits)),
    "drop_capability": lambda name: (capability_number(name),),
    "load": lambda addr: (abi.access_address(addr),),
    "store": lambda addr, value: (abi.access_address(addr), abi.store_value(value)),
    "touch": abi.touch_args, "access": _access_args,
}


class Machine:
    """This machine's real kernel behind the Process API.

    ``allow_host_changes`` permits the one host write the file API makes, ``drop_caches()``.
    """

    def __init__(self, allow_host_changes: bool = False) -> None:
        self.procs: list[RealProcess] = []
        self.allow_host_changes = bool(allow_host_changes)
        self.fs = RealFs()

    def spawn(self, name: str = "proc") -> RealProcess:
        p = RealProcess(self, name)
        self.procs.append(p)
        return p

    def read(self, path: str) -> str:
        """The host's own /proc or /sys file."""
        if not path.startswith(("/proc/", "/sys/")):
            raise FileNotFoundError(errno.ENOENT, "only /proc and /sys files are read", path)
        return Path(path).read_text()

    def vmstat(self) -> dict[str, int]:
        return parse_vmstat(self.read("/proc/vmstat"))

    def drop_caches(self, level: int = 3) -> None:
        """sync, then write ``level`` to /proc/sys/vm/drop_caches (1 page cache, 2 slab, 3 both): only for a
        Machine built with ``allow_host_changes=True``, else HostWriteRefused. Mirrors fs/drop_caches.c;
        level 4 (silence the kernel's message, a lasting host change) is refused like any other: EINVAL."""
        if not self.allow_host_changes:
            raise HostWriteRefused(f"drop_caches writes {DROP_CACHES} of this host: build the real Machine with "
                                   f"allow_host_changes=True to allow it")
        level = abi.c_int(level, "level")
        if level not in (1, 2, 3):
            raise OSError(errno.EINVAL, f"drop_caches level {level}: 1, 2 or 3")
        os.sync()
        with SysfsWriter(allow_drop_caches=True) as writer:
            writer.write(DROP_CACHES, level)

    def close(self) -> None:
        """SIGKILL and reap every child still running, then remove the private file root (m.fs)."""
        try:
            for p in self.procs:  # the next request of a parent kills and reaps a fork it made but never handed over
                if p._forking and p.alive:
                    try:
                        p._call("ping")
                    except PagelabError:
                        pass
            live = [p for p in self.procs if p.alive]
            for p in live:
                p._death_told = True
                p.kill(signal.SIGKILL)
            for p in live:
                p._await_exit(timeout=None)
            # Every parent has exited now, so each forked process not yet reaped is this process's child
            # (reparented to the subreaper): reap it.
            for p in self.procs:
                if not p._reaped:
                    p._collect()
        finally:
            self.fs.close()

    def __enter__(self) -> Machine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
