"""What a user reads after running a program: ``perf stat`` and ``/usr/bin/time -v`` summaries.

The labels are the real tools' own (perf's builtin-stat.c print format, GNU time's -v labels), so a
simulated summary can be diffed against a real one line by line. Sizes and counts come from the
same per-task counters getrusage() and perf read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..stats import PerfEvent

if TYPE_CHECKING:
    from ..kernel.task import Task


def perf_stat(task: Task, events: tuple[PerfEvent, ...] = tuple(PerfEvent)) -> str:
    """``perf stat -e page-faults,minor-faults,major-faults`` for one task (simulated time)."""
    m = task.machine
    freq = m.cpu.freq_mhz * 1e6
    out = f"\n Performance counter stats for 'pagelab pid {task.pid} ({task.comm})':\n\n"
    for ev in events:
        out += f"{task.perf[ev]:>18}      {ev.value:<61}\n"
    elapsed = (int(m.clock_cycles[0]) - task.start_cycles) / freq
    out += f"\n{elapsed:>18.9f} seconds time elapsed\n\n"
    out += f"{task.utime_cycles / freq:>18.9f} seconds user\n{task.stime_cycles / freq:>18.9f} seconds sys\n\n"
    return out


def time_v(task: Task) -> str:
    """GNU ``/usr/bin/time -v`` for one task: the same labels, simulated values."""
    m = task.machine
    freq = m.cpu.freq_mhz * 1e6
    user, system = task.utime_cycles / freq, task.stime_cycles / freq
    wall = (int(m.clock_cycles[0]) - task.start_cycles) / freq
    maxrss = max(task.mm.hiwater_rss, task.mm.get_rss())
    minutes, seconds = divmod(wall, 60)
    cpu = int(100 * (user + system) / wall) if wall > 0 else 0
    lines = [
        ("Command being timed", f'"pagelab pid {task.pid} ({task.comm})"'),
        ("User time (seconds)", f"{user:.2f}"), ("System time (seconds)", f"{system:.2f}"),
        ("Percent of CPU this job got", f"{cpu}%"),
        ("Elapsed (wall clock) time (h:mm:ss or m:ss)", f"{int(minutes)}:{seconds:05.2f}"),
        ("Average shared text size (kbytes)", 0), ("Average unshared data size (kbytes)", 0),
        ("Average stack size (kbytes)", 0), ("Average total size (kbytes)", 0),
        ("Maximum resident set size (kbytes)", maxrss * 4), ("Average resident set size (kbytes)", 0),
        ("Major (requiring I/O) page faults", task.maj_flt),
        ("Minor (reclaiming a frame) page faults", task.min_flt),
        ("Voluntary context switches", 0), ("Involuntary context switches", 0), ("Swaps", 0),
        ("File system inputs", 0), ("File system outputs", 0), ("Socket messages sent", 0),
        ("Socket messages received", 0), ("Signals delivered", 0), ("Page size (bytes)", 4096),
        ("Exit status", task.exit_code if not task.exit_signal else 128 + task.exit_signal),
    ]
    return "".join(f"\t{label}: {value}\n" for label, value in lines)
