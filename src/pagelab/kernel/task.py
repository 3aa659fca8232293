"""A task: the process side of the kernel, with its fault counters and its mm.

Mirrors the fields of struct task_struct that demand paging touches (include/linux/sched.h):
pid, comm, mm, min_flt/maj_flt (fed to getrusage() and /proc/PID/stat), the perf software
counters for this task, and the exit state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..hw.cost import SIGSEGV_NS
from ..stats import PerfEvent

if TYPE_CHECKING:
    from ..machine import Machine
    from ..mm.types import MmStruct, VmFault

# Capabilities a root process holds that the simulator consults (include/uapi/linux/capability.h).
ROOT_CAPS = frozenset({"CAP_SYS_RAWIO", "CAP_IPC_LOCK", "CAP_SYS_ADMIN"})


class Task:
    """One single-threaded process of the simulated machine."""

    def __init__(self, machine: Machine, pid: int, comm: str, mm: MmStruct, ppid: int = 1) -> None:
        self.machine = machine
        self.pid = pid
        self.ppid = ppid
        self.comm = comm[:15]  # TASK_COMM_LEN - 1
        self.mm: MmStruct = mm  # torn down at exit, kept for its high-water marks
        self.min_flt = 0
        self.maj_flt = 0
        self.perf: dict[PerfEvent, int] = dict.fromkeys(PerfEvent, 0)
        self.utime_cycles = 0
        self.stime_cycles = 0
        self.start_cycles = int(machine.clock_cycles[0])
        self.caps: set[str] = set(ROOT_CAPS)
        self.alive = True
        self.exit_signal = 0  # the signal that killed it, 0 for a normal exit
        self.exit_code = 0

    def capable(self, cap: str) -> bool:
        """Mirrors capable()."""
        return cap in self.caps

    def charge_fault(self, vmf: VmFault, gup: bool = False) -> None:
        """Advance the clock by what the kernel spent on this fault (system time)."""
        cycles = self.machine.cost.fault_cycles(vmf.handler, gup) if vmf.handler else 0
        self.machine.clock_cycles[0] += cycles
        self.stime_cycles += cycles

    def do_exit(self, code: int = 0, signal: int = 0) -> None:
        """Mirrors do_exit() -> exit_mm() -> mmput() -> exit_mmap(): free every frame and table."""
        from ..mm.memory import exit_mmap

        if not self.alive:
            return
        self.mm.update_hiwater_rss()
        exit_mmap(self.machine, self.mm)
        self.alive = False
        self.exit_code = code
        self.exit_signal = signal

    def kill_signal(self, sig: int) -> None:
        """A fatal signal with no handler: the task exits (its core dump is not modelled)."""
        self.machine.clock_cycles[0] += self.machine.cost.cycles(SIGSEGV_NS)
        self.do_exit(signal=sig)

    def kill_oom(self) -> None:
        """The OOM killer chose this task (SIGKILL)."""
        self.do_exit(signal=9)
