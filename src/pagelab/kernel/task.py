"""A task: the process side of the kernel, with its fault counters, its CPU times and its mm.

Mirrors the fields of struct task_struct that demand paging touches (include/linux/sched.h):
pid, comm, mm, min_flt/maj_flt (fed to getrusage() and /proc/PID/stat), utime/stime, the perf
software counters for this task, and the exit state.

Time is charged in one place per kind, named as kernel/sched/cputime.c names them:
``account_user_time()`` (cycles the CPU ran the task's code: the MMU loop's accesses),
``account_system_time()`` (cycles the kernel spent for it: faults, signal delivery) and
``account_iowait_time()`` (time it slept waiting for I/O, io_schedule()). Each moves the machine's
clock and books the time to the task; nothing else advances the clock for a task. getrusage() and
``time -v`` read the totals through ``task_cputime()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..fs.file import FdTable
from ..hw.cost import SIGSEGV_NS
from ..stats import PerfEvent

if TYPE_CHECKING:
    from ..clock import Event
    from ..machine import Machine
    from ..mm.types import MmStruct, VmFault

# Capabilities a root process holds that the simulator consults (include/uapi/linux/capability.h).
ROOT_CAPS = frozenset({"CAP_SYS_RAWIO", "CAP_IPC_LOCK", "CAP_SYS_ADMIN", "CAP_SYS_RESOURCE"})

RLIM_INFINITY = (1 << 64) - 1  # include/uapi/asm-generic/resource.h (Python's resource.RLIM_INFINITY is -1)
# The resource limits a spawned process starts with: the kernel's INIT_RLIMITS (include/asm-generic/resource.h)
# for those the simulator consults, as a login shell here has them: RLIMIT_MEMLOCK 8 MiB (MLOCK_LIMIT),
# RLIMIT_STACK 8 MiB soft, RLIMIT_DATA and RLIMIT_AS unlimited; RLIMIT_NOFILE's soft 1024 (fs/file.py).
RLIMIT_DATA, RLIMIT_STACK, RLIMIT_NOFILE, RLIMIT_MEMLOCK, RLIMIT_AS = 2, 3, 7, 8, 9
INIT_RLIMITS: dict[int, tuple[int, int]] = {
    RLIMIT_DATA: (RLIM_INFINITY, RLIM_INFINITY),
    RLIMIT_STACK: (8 << 20, RLIM_INFINITY),
    RLIMIT_NOFILE: (1024, 4096),
    RLIMIT_MEMLOCK: (8 << 20, 8 << 20),
    RLIMIT_AS: (RLIM_INFINITY, RLIM_INFINITY),
}


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
        # struct task_io_accounting (/proc/PID/io): bytes through read()/write() and bytes of block I/O
        self.ioac_rchar = self.ioac_wchar = self.ioac_syscr = self.ioac_syscw = 0
        self.ioac_read_bytes = self.ioac_write_bytes = 0
        self.files: FdTable = FdTable()  # struct files_struct: the open descriptors
        self.perf: dict[PerfEvent, int] = dict.fromkeys(PerfEvent, 0)
        self.utime_cycles = 0  # utime, stime and the I/O wait: written only by the account_*_time() functions
        self.stime_cycles = 0
        self.iowait_cycles = 0  # delayacct's blkio_delay: time asleep in io_schedule()
        self.nvcsw = 0  # voluntary context switches: each sleep (getrusage's ru_nvcsw)
        self.start_cycles = int(machine.clock_cycles[0])
        self.caps: set[str] = set(machine.root_caps)
        self.rlim: dict[int, tuple[int, int]] = dict(INIT_RLIMITS)  # signal->rlim: (soft, hard), bytes or count
        self.alive = True
        self.exit_signal = 0  # the signal that killed it, 0 for a normal exit
        self.exit_code = 0
        # The process tree: ``parent`` None is init (pid 1): the machine, which reaps at once what it owns
        self.parent: Task | None = None
        self.children: list[Task] = []
        self.exit_state = ""  # "" while running, "Z" a zombie its parent has not waited for, "X" reaped

    def capable(self, cap: str) -> bool:
        """Mirrors capable()."""
        return cap in self.caps

    def charge_fault(self, vmf: VmFault, gup: bool = False) -> None:
        """Charge what the kernel spent on this fault (the cost model's figure for its handler) as system time."""
        if vmf.handler:
            account_system_time(self, self.machine.cost.fault_cycles(vmf.handler, gup))

    def do_exit(self, code: int = 0, signal: int = 0) -> None:
        """Mirrors do_exit() -> exit_mm() -> mmput() -> exit_mmap(): free every frame and table; then
        exit_notify(): the task is a zombie until its parent waits (kernel/exit.py)."""
        from ..mm.memory import exit_mmap
        from .exit import exit_notify

        if not self.alive:
            return
        self.files.close_all()  # exit_files()
        self.mm.update_hiwater_rss()
        exit_mmap(self.machine, self.mm)
        self.alive = False
        self.exit_code = code
        self.exit_signal = signal
        exit_notify(self)

    def kill_signal(self, sig: int) -> None:
        """A fatal signal with no handler: the task exits (its core dump is not modelled)."""
        account_system_time(self, self.machine.cost.cycles(SIGSEGV_NS))
        self.do_exit(signal=sig)

    def kill_oom(self) -> None:
        """The OOM killer chose this task (SIGKILL)."""
        self.do_exit(signal=9)


# --- CPU time accounting (kernel/sched/cputime.c) -------------------------------------------------------

def account_user_time(task: Task, cycles: int) -> None:
    """Mirrors account_user_time(): ``cycles`` the CPU spent running the task's own code.

    The time passes on the machine's clock and is booked as the task's utime. Called by the entry code
    with what the MMU loop counted (vtime_user_exit() on each kernel entry), and by the batched
    first-touch path for the trapping walks it stands in for.
    """
    task.machine.clock_cycles[0] += cycles
    task.utime_cycles += cycles


def account_system_time(task: Task, cycles: int) -> None:
    """Mirrors account_system_time(): ``cycles`` the kernel spent on the task's behalf (a fault, a signal).

    The time passes on the machine's clock and is booked as the task's stime. The cost model
    (hw/cost.py) says how many cycles; this is the one place that charges them.
    """
    task.machine.clock_cycles[0] += cycles
    task.stime_cycles += cycles


def account_iowait_time(task: Task, until: int) -> int:
    """The task sleeps in I/O wait until the clock reads ``until`` (cycles); returns the cycles it slept.

    Time passes through the events due on the way, each run at its time (an I/O completion, a daemon),
    as other work runs while a task sleeps. The sleep is neither user nor system time: it is booked as
    the task's I/O wait (delayacct_blkio_end() -> blkio_delay) and shows in the elapsed time only.
    Mirrors the accounting of io_schedule() (kernel/sched/core.c: in_iowait, CPUTIME_IOWAIT).
    """
    clock = task.machine.clock
    start = clock.now
    clock.advance_to(until)
    slept = clock.now - start
    task.iowait_cycles += slept
    task.nvcsw += 1  # schedule() away from a task that sleeps: a voluntary switch
    return slept


def io_schedule(task: Task, completion: Event) -> int:
    """Mirrors io_schedule() waiting on an I/O completion: sleep until ``completion`` has run.

    Returns the cycles slept (0 if it had already run or was cancelled).
    """
    if not completion.pending:
        return 0
    return account_iowait_time(task, completion.time)


def task_cputime(task: Task) -> tuple[int, int]:
    """Mirrors task_cputime(): the task's (utime, stime) in cycles, what getrusage() and /proc/PID/stat report."""
    return task.utime_cycles, task.stime_cycles
