"""Process exit and wait: zombies, reaping, and orphans.

Mirrors kernel/exit.c: exit_notify() (a task that exits becomes a zombie for its parent to wait for;
its own children go to init, which reaps zombies at once), do_wait() / wait_task_zombie() (waitpid(2):
the child's wait status, and release_task() of the zombie), and the wait status encoding of
include/uapi/linux/wait.h: exit code << 8, or the terminating signal.

Simplified: no process groups (pid 0 and negative pids other than -1 are not modelled), no stopped or
continued children (WUNTRACED, WCONTINUED), no SIGCHLD and no threads.
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING

from ..errors import NotModelled, WaitWouldBlock, syscall_error

if TYPE_CHECKING:
    from .task import Task

# what wait4() accepts (kernel_wait4()): WNOHANG, WUNTRACED, WCONTINUED, __WNOTHREAD, __WCLONE, __WALL (WNOWAIT is
# waitid()'s only: EINVAL here)
WAIT_OPTIONS = os.WNOHANG | os.WUNTRACED | os.WCONTINUED | 0x20000000 | 0x40000000 | 0x80000000
INT_MIN = -(1 << 31)


def task_wait_status(task: Task) -> int:
    """The wait status of an exited task (include/uapi/linux/wait.h): ``code << 8`` for exit(code), the
    signal number for a task a signal killed."""
    return task.exit_signal & 0x7F if task.exit_signal else (task.exit_code & 0xFF) << 8


def release_task(task: Task) -> None:
    """Mirrors release_task(): the zombie is gone; its pid no longer names a process (/proc/PID)."""
    task.exit_state = "X"
    if task.parent is not None and task in task.parent.children:
        task.parent.children.remove(task)
    task.machine.tasks.pop(task.pid, None)


def exit_notify(task: Task) -> None:
    """Mirrors exit_notify(): the exiting task's children are reparented to init (forget_original_parent():
    its zombies are reaped at once); the task itself becomes a zombie for its parent, or, if its parent is
    init (a process the machine spawned, or an orphan), is reaped."""
    for child in list(task.children):
        child.parent = None
        child.ppid = 1
        if child.exit_state == "Z":
            release_task(child)
    task.children.clear()
    task.exit_state = "Z"
    if task.parent is None:
        release_task(task)


def check_wait(pid: int, options: int, children: list[int]) -> None:
    """wait4()'s answers that need no child to have exited, shared by both backends (``children``: the pids
    of the caller's unreaped children): EINVAL for an option wait4() does not take (kernel_wait4()), ESRCH
    for pid INT_MIN, ECHILD with no child at all (before anything pagelab does not model); NotModelled:
    process groups (pid 0 or < -1) and WUNTRACED/WCONTINUED (stopped and continued children)."""
    if options & ~WAIT_OPTIONS & 0xFFFFFFFF:
        raise syscall_error(errno.EINVAL, f"waitpid: unknown options {options:#x}")
    if pid == INT_MIN:
        raise syscall_error(errno.ESRCH, "waitpid: -INT_MIN is not a pid")
    if not children:
        raise syscall_error(errno.ECHILD, "waitpid: no children")
    if pid == 0 or pid < -1:
        raise NotModelled("waitpid of a process group")
    if options & (os.WUNTRACED | os.WCONTINUED):
        raise NotModelled("waitpid with WUNTRACED or WCONTINUED")


def do_wait(parent: Task, pid: int, options: int) -> tuple[int, int]:
    """Mirrors waitpid(2) -> kernel_wait4() -> do_wait(): (pid, wait status) of a child that has exited,
    which is reaped (release_task()); (0, 0) with os.WNOHANG while the children asked for all run.

    check_wait()'s errors first; ECHILD when ``parent`` has no such child. A blocking wait for a running
    child raises WaitWouldBlock (errors.py).
    """
    check_wait(pid, options, [c.pid for c in parent.children])
    children = [c for c in parent.children if pid == -1 or c.pid == pid]
    if not children:
        raise syscall_error(errno.ECHILD, f"waitpid: pid {pid} is no child of {parent.pid}")
    for child in children:
        if child.exit_state == "Z":
            status = task_wait_status(child)
            release_task(child)
            return child.pid, status
    if options & os.WNOHANG:
        return 0, 0
    running = ", ".join(str(c.pid) for c in children)
    raise WaitWouldBlock(f"waitpid({pid}) would wait for ever: child {running} runs only when called "
                         "(exit it first, or pass os.WNOHANG)")
