"""What a user reads after running a program: ``perf stat`` and ``/usr/bin/time -v`` summaries.

The labels are the real tools' own (perf's builtin-stat.c print format, GNU time's -v labels and
arithmetic), so a simulated summary can be diffed against a real one line by line. One formatter
serves both backends: ``gnu_time_v`` and ``perf_stat_block`` take plain rusage figures, which
``pagelab measure`` reads off a real command and ``time_v``/``perf_stat`` take from a simulated task.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..constants import PAGE_SIZE
from ..kernel.task import task_cputime
from ..stats import PerfEvent

if TYPE_CHECKING:
    from ..kernel.task import Task


RU_FIELDS = ("ru_utime", "ru_stime", "ru_maxrss", "ru_ixrss", "ru_idrss", "ru_isrss", "ru_minflt", "ru_majflt",
             "ru_nswap", "ru_inblock", "ru_oublock", "ru_msgsnd", "ru_msgrcv", "ru_nsignals", "ru_nvcsw", "ru_nivcsw")


def _us(seconds: float) -> int:
    return round(seconds * 1_000_000)


def gnu_time_v(command: str, ru: Mapping[str, float], elapsed_ns: int, exit_status: int,
               page_size: int = PAGE_SIZE) -> list[tuple[str, str]]:
    """GNU time -v's lines, label and value, computed as summarize() in time.c computes them: times
    truncated to hundredths, CPU% = CPU ms * 100 / elapsed ms, averages over CPU ticks of 10 ms.

    ``ru`` holds struct rusage's fields by name (seconds for the times, kB for ru_maxrss; missing
    ones are 0); ``exit_status`` is WEXITSTATUS (0 after a signal, as time prints it)."""
    sec, usec = elapsed_ns // 1_000_000_000, elapsed_ns % 1_000_000_000 // 1000
    r_ms = sec * 1000 + usec // 1000
    v_ms = _us(ru.get("ru_utime", 0)) // 1000 + _us(ru.get("ru_stime", 0)) // 1000
    ticks = v_ms // 10

    def avg(*keys: str) -> str:
        return str(sum(int(ru.get(k, 0)) // ticks for k in keys) if ticks else 0)

    def secs(v: float) -> str:
        return f"{_us(v) // 1_000_000}.{_us(v) % 1_000_000 // 10_000:02d}"

    elapsed = (f"{sec // 3600}:{sec % 3600 // 60:02d}:{sec % 60:02d}" if sec >= 3600
               else f"{sec // 60}:{sec % 60:02d}.{usec // 10000:02d}")
    n = {k: str(int(ru.get(k, 0))) for k in RU_FIELDS}
    return [
        ("Command being timed", f'"{command}"'), ("User time (seconds)", secs(ru.get("ru_utime", 0))),
        ("System time (seconds)", secs(ru.get("ru_stime", 0))),
        ("Percent of CPU this job got", f"{v_ms * 100 // r_ms}%" if r_ms > 0 else "?%"),
        ("Elapsed (wall clock) time (h:mm:ss or m:ss)", elapsed),
        ("Average shared text size (kbytes)", avg("ru_ixrss")),
        ("Average unshared data size (kbytes)", avg("ru_idrss", "ru_isrss")),
        ("Average stack size (kbytes)", avg("ru_isrss")),
        ("Average total size (kbytes)", avg("ru_idrss", "ru_isrss", "ru_ixrss")),
        ("Maximum resident set size (kbytes)", n["ru_maxrss"]), ("Average resident set size (kbytes)", avg("ru_idrss")),
        ("Major (requiring I/O) page faults", n["ru_majflt"]),
        ("Minor (reclaiming a frame) page faults", n["ru_minflt"]),
        ("Voluntary context switches", n["ru_nvcsw"]), ("Involuntary context switches", n["ru_nivcsw"]),
        ("Swaps", n["ru_nswap"]), ("File system inputs", n["ru_inblock"]), ("File system outputs", n["ru_oublock"]),
        ("Socket messages sent", n["ru_msgsnd"]), ("Socket messages received", n["ru_msgrcv"]),
        ("Signals delivered", n["ru_nsignals"]), ("Page size (bytes)", str(page_size)),
        ("Exit status", str(exit_status)),
    ]


def perf_stat_block(command: str, counts: Mapping[str, int], elapsed_s: float, user_s: float, sys_s: float) -> str:
    """perf stat's block for the page-fault events, laid out as perf 6.1 lays it out."""
    out = f"\n Performance counter stats for '{command}':\n\n"
    out += "".join(f"{v:>18}      {k:<67}\n" for k, v in counts.items())
    out += f"\n{elapsed_s:18.9f} seconds time elapsed\n\n"
    return out + f"{user_s:18.9f} seconds user\n{sys_s:18.9f} seconds sys\n\n"


def _times(task: Task) -> tuple[float, float, int]:
    """A simulated task's user and system seconds and its elapsed nanoseconds, from the clock."""
    m = task.machine
    freq = m.cpu.freq_mhz * 1e6
    wall_cycles = int(m.clock_cycles[0]) - task.start_cycles
    utime, stime = task_cputime(task)
    return utime / freq, stime / freq, wall_cycles * 1000 // m.cpu.freq_mhz


def perf_stat(task: Task, events: tuple[PerfEvent, ...] = tuple(PerfEvent)) -> str:
    """``perf stat -e page-faults,minor-faults,major-faults`` for one task (simulated time)."""
    user, system, elapsed_ns = _times(task)
    return perf_stat_block(f"pagelab pid {task.pid} ({task.comm})", {ev.value: task.perf[ev] for ev in events},
                           elapsed_ns / 1e9, user, system)


def time_v(task: Task) -> str:
    """GNU ``/usr/bin/time -v`` for one task: the same labels and arithmetic, simulated values, and GNU
    time's "Command terminated by signal N" line first when a signal killed it."""
    user, system, elapsed_ns = _times(task)
    ru = {"ru_utime": user, "ru_stime": system, "ru_maxrss": max(task.mm.hiwater_rss, task.mm.get_rss()) * 4,
          "ru_minflt": task.min_flt, "ru_majflt": task.maj_flt, "ru_nvcsw": task.nvcsw}
    lines = gnu_time_v(f"pagelab pid {task.pid} ({task.comm})", ru, elapsed_ns,
                       0 if task.exit_signal else task.exit_code & 0xFF)
    out = f"Command terminated by signal {task.exit_signal}\n" if task.exit_signal else ""
    return out + "".join(f"\t{label}: {value}\n" for label, value in lines)
