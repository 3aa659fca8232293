"""``pagelab.real.Machine``: the Process API on this machine's real Linux kernel.

``spawn()`` starts a child interpreter (real/child.py) that performs each call through libc on real
memory; the parent talks to it over two pipes. ``rusage()`` is the child's own getrusage(); a SIGSEGV in the child
arrives as ``pagelab.SegmentationFault`` with the real si_code and si_addr, and the child is gone
afterwards, as with the simulator. ``read()`` and ``vmstat()`` read the host's files.
"""

from __future__ import annotations

import errno
import os
import pickle
import resource
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..constants import PAGE_SIZE
from ..errors import BusError, PagelabError, ProcessDead, SegmentationFault
from ..observe.parse import parse_vmstat
from ..workload.scenario import Op
from . import child as _child
from .libc import FAULT_FRAME

SI_CODES = {(11, 1): "SEGV_MAPERR", (11, 2): "SEGV_ACCERR", (11, 4): "SEGV_PKUERR", (11, 0x80): "SI_KERNEL",
            (7, 1): "BUS_ADRALN", (7, 2): "BUS_ADRERR", (7, 3): "BUS_OBJERR"}


class ChildDied(PagelabError):
    """The real child process disappeared without a fault report (killed, or crashed)."""


class RealProcess:
    """A real child process of this machine, driven through the Process API."""

    def __init__(self, machine: Machine, name: str) -> None:
        self.machine = machine
        self.name = name
        cmd_r, cmd_w = os.pipe()
        rep_r, rep_w = os.pipe()
        # A fresh interpreter, not a fork: nothing inherited, and PYTHONMALLOC=malloc puts Python's
        # objects in the brk heap that the child keeps resident (see child.Server.settle).
        env = dict(os.environ, PYTHONMALLOC="malloc", PYTHONHASHSEED="0")
        self._popen = subprocess.Popen(
            [sys.executable, "-c", "from pagelab.real.child import main; main()", str(cmd_r), str(rep_w), name],
            pass_fds=(cmd_r, rep_w), env=env, stdin=subprocess.DEVNULL, close_fds=True)
        os.close(cmd_r)
        os.close(rep_w)
        self.pid = self._popen.pid
        self._cmd, self._rep = cmd_w, rep_r
        self._alive = True
        self.exit_status: int | None = None
        self._final_rusage: resource.struct_rusage | None = None
        self._warm_up()

    @property
    def alive(self) -> bool:
        return self._alive

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
        for _ in range(3):
            for op, args in ops:
                self._call(op, *args)
            self._call("phase", [(op, tuple(x.copy() if isinstance(x, np.ndarray) else x for x in args))
                                 for op, args in ops])
            self._call("rusage")
        self._call("munmap", a, n)

    # --- the pipe protocol ----------------------------------------------------------------------
    def _call(self, op: str, *args: Any) -> Any:
        if not self._alive:
            raise ProcessDead(f"real process {self.pid} ({self.name}) has exited")
        try:
            _child.write_frame(self._cmd, pickle.dumps((op, args)))
        except BrokenPipeError:
            self._reap()
            raise self._death() from None
        head = _child.read_exact(self._rep, 4)
        if head is None:
            self._reap()
            raise self._death()
        body = _child.read_exact(self._rep, FAULT_FRAME.size if head == b"\xff\xff\xff\xff"
                                  else int.from_bytes(head, "little"))
        if body is None:
            self._reap()
            raise self._death()
        if head == b"\xff\xff\xff\xff":
            sig, code, addr = FAULT_FRAME.unpack(body)
            self._reap()
            exc = SegmentationFault if sig == signal.SIGSEGV else BusError
            raise exc(addr, SI_CODES.get((sig, code), f"si_code {code}"), self.pid)
        reply = pickle.loads(body)
        if reply[0] == "ok":
            return reply[1]
        if reply[0] == "oserror":
            raise OSError(reply[1], reply[2])
        raise PagelabError(f"the real process {self.pid} failed running {op}:\n{reply[1]}")

    def _reap(self) -> None:
        if not self._alive:
            return
        self._alive = False
        _, status, ru = os.wait4(self.pid, 0)
        self._popen.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by subprocess
        self.exit_status = status
        self._final_rusage = ru
        os.close(self._cmd)
        os.close(self._rep)

    def _death(self) -> ChildDied:
        st = self.exit_status or 0
        how = f"killed by signal {os.WTERMSIG(st)} ({signal.Signals(os.WTERMSIG(st)).name})" \
            if os.WIFSIGNALED(st) else f"exited with status {os.WEXITSTATUS(st)}"
        return ChildDied(f"the real process {self.pid} ({self.name}) died: {how}")

    # --- the Process API ------------------------------------------------------------------------
    def mmap(self, addr: int | None, length: int, prot: int, flags: int, fd: int = -1, offset: int = 0) -> int:
        return int(self._call("mmap", addr or 0, length, prot, flags, fd, offset))

    def munmap(self, addr: int, length: int) -> None:
        self._call("munmap", addr, length)

    def mprotect(self, addr: int, length: int, prot: int) -> None:
        self._call("mprotect", addr, length, prot)

    def madvise(self, addr: int, length: int, advice: int) -> None:
        self._call("madvise", addr, length, advice)

    def mincore(self, addr: int, length: int) -> np.ndarray:
        return np.frombuffer(self._call("mincore", addr, length), dtype=np.uint8) & 1

    def load(self, addr: int) -> int:
        return int(self._call("load", addr))

    def store(self, addr: int, value: int = 0) -> None:
        if not 0 <= value <= 255:
            raise ValueError(f"store writes one byte: value must be 0..255, got {value}")
        self._call("store", addr, value)

    def touch(self, addr: int, length: int, *, write: bool = False, stride: int = PAGE_SIZE) -> None:
        if length < 0 or stride <= 0:
            raise ValueError("touch needs length >= 0 and stride > 0")
        self._call("touch", addr, length, write, stride)

    def access(self, addresses: Any, *, write: bool | np.ndarray = False) -> None:
        addrs = np.ascontiguousarray(np.asarray(addresses, dtype=np.uint64)).view(np.int64)
        if isinstance(write, (bool, np.bool_)):
            flags = np.array([bool(write)])
        else:
            flags = np.ascontiguousarray(np.asarray(write, dtype=bool))
            if flags.shape != addrs.shape:
                raise ValueError("write mask must have one flag per address")
        self._call("access", addrs, flags)

    def run_phase(self, ops: list[Op]) -> tuple[resource.struct_rusage, resource.struct_rusage]:
        """Run Process API calls ``[(name, args, kwargs), ...]`` in the child as one measured phase."""
        before, after = self._call("phase", [self._child_op(name, args, kwargs) for name, args, kwargs in ops])
        return resource.struct_rusage(before), resource.struct_rusage(after)

    @staticmethod
    def _child_op(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
        """Translate a Process API call into the child's positional command."""
        if name == "touch":
            return "touch", (*args, kwargs.get("write", False), kwargs.get("stride", PAGE_SIZE))
        if name == "access":
            addrs = np.ascontiguousarray(np.asarray(args[0], dtype=np.uint64)).view(np.int64)
            write = kwargs.get("write", False)
            flags = np.array([bool(write)]) if isinstance(write, (bool, np.bool_)) else np.asarray(write, bool)
            return "access", (addrs, flags)
        if name == "mmap":
            addr, length, prot, flags, *rest = args
            fd = rest[0] if rest else kwargs.get("fd", -1)
            offset = rest[1] if len(rest) > 1 else kwargs.get("offset", 0)
            return "mmap", (addr or 0, length, prot, flags, fd, offset)
        return name, tuple(args) + tuple(kwargs.values())

    def perf_counts(self) -> dict[str, int] | None:
        """perf's page-faults, minor-faults and major-faults of the child (None where perf is refused)."""
        counts: dict[str, int] | None = self._call("perf")
        return counts

    def rusage(self) -> resource.struct_rusage:
        if not self._alive and self._final_rusage is not None:
            return self._final_rusage
        return resource.struct_rusage(self._call("rusage"))

    def exit(self, code: int = 0) -> None:
        self._call("exit", code)
        self._reap()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send the child a signal (it is ours: we started it)."""
        if self._alive:
            os.kill(self.pid, sig)

    def __del__(self) -> None:
        if getattr(self, "_alive", False):
            try:
                os.kill(self.pid, signal.SIGKILL)
                self._reap()
            except Exception:  # noqa: BLE001 - nothing can be reported from a finalizer
                pass

    def __repr__(self) -> str:
        return f"<pagelab.real.Process pid={self.pid} {self.name!r} {'alive' if self._alive else 'dead'}>"


class Machine:
    """This machine's real kernel behind the Process API."""

    def __init__(self) -> None:
        self.procs: list[RealProcess] = []

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

    def close(self) -> None:
        for p in self.procs:
            if p.alive:
                p.kill()
                p._reap()

    def __enter__(self) -> Machine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
