"""ptrace(2) for exec (issue #9): stop a real program right after its execve() and at its exit.

A program launched this way is traced with PTRACE_O_TRACEEXEC | PTRACE_O_TRACEEXIT: it stops once its
execve() has finished (PTRACE_EVENT_EXEC: the new image is mapped, no instruction has run yet) and
again when it calls exit_group() (PTRACE_EVENT_EXIT: its mm is still whole), so /proc/PID/maps and its
fault counts (/proc/PID/stat fields 10 and 12) can be read at both points. Only the thread that attached
may wait for the stops, so a Tracee is used from one thread.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import time
from pathlib import Path

from ..observe.parse import parse_stat

_libc = ctypes.CDLL(None, use_errno=True)
_libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
_libc.ptrace.restype = ctypes.c_long

PTRACE_TRACEME, PTRACE_CONT, PTRACE_DETACH = 0, 7, 17
PTRACE_SETOPTIONS, PTRACE_SEIZE, PTRACE_INTERRUPT = 0x4200, 0x4206, 0x4207
PTRACE_O_TRACEEXEC, PTRACE_O_TRACEEXIT, PTRACE_O_EXITKILL = 0x10, 0x40, 1 << 20
PTRACE_EVENT_EXEC, PTRACE_EVENT_EXIT = 4, 6
OPTIONS = PTRACE_O_TRACEEXEC | PTRACE_O_TRACEEXIT | PTRACE_O_EXITKILL
WALL = 0x40000000  # __WALL: wait for a traced process whatever its kind


def ptrace(request: int, pid: int, addr: int = 0, data: int = 0) -> int:
    r = int(_libc.ptrace(request, pid, ctypes.c_void_p(addr), ctypes.c_void_p(data)))
    if r == -1:
        e = ctypes.get_errno()
        raise OSError(e, f"ptrace({request:#x}, {pid}): {os.strerror(e)}")
    return r


def faults(pid: int) -> tuple[int, int]:
    """(minflt, majflt) of ``pid`` so far: /proc/PID/stat fields 10 and 12."""
    st = parse_stat(Path(f"/proc/{pid}/stat").read_text())
    return int(st["minflt"]), int(st["majflt"])


class Tracee:
    """A traced process and where it stands: "running", "exec" (stopped after execve), "exit" (stopped in
    exit_group()), "gone" (reaped: ``status`` holds its wait status)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.state = "running"
        self.status = -1
        self.exec_ns = 0  # CLOCK_MONOTONIC when the exec stop was seen

    @classmethod
    def seize(cls, pid: int) -> Tracee:
        """PTRACE_SEIZE a running process (root, or its parent under Yama's default)."""
        ptrace(PTRACE_SEIZE, pid, 0, OPTIONS)
        return cls(pid)

    def wait_event(self, event: int) -> bool:
        """Let the tracee run until the ptrace event ``event``; signals it receives on the way are
        passed on. False when it ended first (``state`` is then "gone"). A stopped tracee is continued first."""
        if self.state in ("stopped", "exec"):
            self.cont()
        while True:
            _, st = os.waitpid(self.pid, WALL)
            if os.WIFEXITED(st) or os.WIFSIGNALED(st):
                self.state, self.status = "gone", st
                return False
            if os.WIFSTOPPED(st) and st >> 16 == event:
                if event == PTRACE_EVENT_EXEC:
                    self.state, self.exec_ns = "exec", time.clock_gettime_ns(time.CLOCK_MONOTONIC)
                else:
                    self.state = "exit"
                return True
            sig = os.WSTOPSIG(st) if os.WIFSTOPPED(st) else 0
            if st >> 16 or sig in (signal.SIGTRAP, signal.SIGSTOP):  # another event, or a group stop
                sig = 0
            ptrace(PTRACE_CONT, self.pid, 0, sig)

    def cont(self) -> None:
        ptrace(PTRACE_CONT, self.pid, 0, 0)
        self.state = "running"

    def finish_rusage(self) -> tuple[int, resource.struct_rusage | None]:
        """finish(), with wait4()'s rusage of the reaped process (None if it was reaped before)."""
        usage = None
        if self.state != "gone":
            if self.state != "running":
                self.cont()
            while self.state != "gone":
                _, st, ru = os.wait4(self.pid, WALL)
                if os.WIFEXITED(st) or os.WIFSIGNALED(st):
                    self.state, self.status, usage = "gone", st, ru
                elif os.WIFSTOPPED(st):
                    ptrace(PTRACE_CONT, self.pid, 0, 0)
        return self.status, usage

    def finish(self) -> int:
        """Let a tracee stopped at its exit end, reap it, and return its wait status."""
        if self.state != "gone":
            if self.state != "running":
                self.cont()
            while self.state != "gone":
                self.wait_event(-1)
        return self.status


def spawn_stopped(path: str, argv: list[str]) -> Tracee:
    """Fork a child that stops itself (SIGSTOP) under PTRACE_TRACEME and then, once continued, runs
    execve(path, argv) with an empty environment. Returns it stopped before its execve (state "stopped")."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            ptrace(PTRACE_TRACEME, 0)
            os.kill(os.getpid(), signal.SIGSTOP)
            os.execve(path, argv, {})
        finally:
            os._exit(127)
    os.waitpid(pid, 0)
    ptrace(PTRACE_SETOPTIONS, pid, 0, OPTIONS)
    t = Tracee(pid)
    t.state = "stopped"
    return t


def stat_rusage(pid: int) -> resource.struct_rusage:
    """getrusage(RUSAGE_SELF) as another process can read it, from /proc/PID/stat and status: user and
    system time, ru_maxrss (VmHWM, kB), ru_minflt and ru_majflt; the rest 0. For a process stopped at
    its exit after an exec, which can no longer be asked."""
    st = parse_stat(Path(f"/proc/{pid}/stat").read_text())
    hz = os.sysconf("SC_CLK_TCK")
    hwm = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            hwm = int(line.split()[1])
    return resource.struct_rusage((int(st["utime"]) / hz, int(st["stime"]) / hz, hwm, 0, 0, 0,
                                   int(st["minflt"]), int(st["majflt"]), 0, 0, 0, 0, 0, 0, 0, 0))
