"""Measure a real command as /usr/bin/time -v and perf stat do, follow its process tree, and diagnose it.

The command is an argv, never a shell command line, resolved on PATH as execvp() resolves it. It
behaves as under GNU time: it inherits stdin, stdout and stderr, so its output is exactly its own,
and the report is written afterwards to stderr or a file; pagelab's exit status is the command's, or
128 + N after a death by signal N; a command that cannot run exits 127 (not found) or 126 (found but
not executable: "Permission denied", "Is a directory"), as shells and GNU time do.

How the command is found, started, timed and stopped is launch.py's (pagelab-launch, launch.c: a
small process that forks it as /usr/bin/time does, so ru_maxrss is the command's own, times it from
the go-ahead to wait4(), and opens perf's page-fault events on it as perf stat does).

While it runs, the command's process tree (/proc/PID/task/TID/children) is sampled: faults
(minflt + cminflt), RSS, RssAnon, RssShmem, AnonHugePages and VmLck, summed over the tree. /proc/vmstat
counts the whole host, so its deltas are kept apart and labelled ``host_``. The diagnosis uses the
seed's terms: a cold start, steady-state memory pressure, anonymous first touch, a warm page cache,
THP in use, locked memory.
"""

from __future__ import annotations

import math
import os
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..observe.parse import parse_smaps, parse_status, parse_vmstat
from ..observe.summary import gnu_time_v, perf_stat_block
from .launch import (
    CommandNotExecutable,
    CommandNotFound,
    CtrlC,
    Launched,
    MeasureError,
    Run,
    Spawned,
    children,
    exec_error,
    launcher,
    resolve,
    stat_if_child,
    stop,
)
from .probe import probe_host

__all__ = ["CommandNotExecutable", "CommandNotFound", "Measurement", "MeasureError", "Sample", "diagnose",
           "measure", "render", "time_v"]

FIRST_SAMPLE_S = 0.005  # the first sample; then 10, 20, 40 ms... up to the interval, so short runs are seen
HOST_VMSTAT_KEYS = ("pgfault", "pgmajfault", "workingset_refault_anon", "workingset_refault_file", "pswpin",
                    "pswpout", "thp_fault_alloc", "thp_collapse_alloc")


@dataclass
class Sample:
    """The command's process tree at time ``t`` (seconds after its exec), summed over its processes."""

    t: float
    procs: int  # processes in the tree
    minflt: int  # minflt + cminflt (children already reaped) of every process
    majflt: int
    rss_kb: int  # VmRSS summed (pages shared between the processes count once per process)
    rss_anon_kb: int  # RssAnon
    rss_shmem_kb: int  # RssShmem: shared anonymous memory and tmpfs
    anon_huge_kb: int  # AnonHugePages (smaps_rollup)
    locked_kb: int  # VmLck
    host_pgmajfault: int  # /proc/vmstat, the whole host, since the start of the run
    host_refaults: int  # workingset_refault_anon + _file, likewise


@dataclass
class Measurement:
    """One run: the wait status and struct rusage from wait4(), perf's counts, the samples."""

    argv: list[str]
    wait_status: int
    elapsed_ns: int  # from the go-ahead (just before execve) to wait4()'s return
    rusage: dict[str, float]  # struct rusage by field name; ru_utime and ru_stime in seconds
    perf: dict[str, int] | None  # perf's event names; None when perf_event_open was refused
    samples: list[Sample] = field(default_factory=list)
    host_vmstat_delta: dict[str, int] = field(default_factory=dict)  # system-wide, not the command's
    diagnosis: list[str] = field(default_factory=list)
    launcher: str = ""
    pid: int = 0  # the command's PID: the root of the sampled tree
    interrupted: bool = False  # Ctrl-C reached pagelab while the command ran
    host: dict[str, Any] = field(default_factory=dict)  # probe_host(): the settings this ran under

    @property
    def elapsed_s(self) -> float:
        return self.elapsed_ns / 1e9

    @property
    def exit_code(self) -> int:
        """What GNU time exits with: the command's status, or 128 + the signal that killed or stopped it."""
        st = self.wait_status
        if os.WIFSTOPPED(st):
            return 128 + os.WSTOPSIG(st)
        if os.WIFSIGNALED(st):
            return 128 + os.WTERMSIG(st)
        return os.WEXITSTATUS(st)

    @property
    def termination(self) -> str | None:
        """GNU time's line for an abnormal end (summarize() in time.c), or None."""
        st = self.wait_status
        if os.WIFSTOPPED(st):
            return f"Command stopped by signal {os.WSTOPSIG(st)}"
        if os.WIFSIGNALED(st):
            return f"Command terminated by signal {os.WTERMSIG(st)}"
        if os.WIFEXITED(st) and os.WEXITSTATUS(st):
            return f"Command exited with non-zero status {os.WEXITSTATUS(st)}"
        return None

    @property
    def sampled(self) -> str:
        return (f"the process tree of pid {self.pid} (the command and its descendants, summed); "
                "host_* columns are /proc/vmstat, the whole host")

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(exit_code=self.exit_code, termination=self.termination, elapsed_s=self.elapsed_s,
                 sampled=self.sampled, time_v=dict(time_v(self)))
        return d


def measure(argv: list[str], interval: float = 0.1, *, use_launcher: bool = True,
            record_host: bool = True) -> Measurement:
    """Run ``argv`` to completion, sampling its process tree every ``interval`` seconds, and measure it.

    Raises CommandNotFound / CommandNotExecutable when it cannot run, MeasureError for bad arguments. A
    Ctrl-C (SIGINT) while it runs stops the command (launch.stop) and returns its measurement with
    ``interrupted`` set; one before the command started raises KeyboardInterrupt, as one does when
    the command could not be reaped.
    """
    if not argv:
        raise MeasureError("missing program to run: pagelab measure [OPTIONS] -- CMD ARGS...")
    if not (math.isfinite(interval) and 0 < interval <= 86400):
        raise MeasureError(f"--interval must be a number of seconds in (0, 86400], not {interval}")
    file = resolve(argv[0])
    vm0 = _vmstat()
    with launcher() if use_launcher else nullcontext(None) as exe:
        run: Run
        try:
            run = Launched(exe, file, argv) if exe else Spawned(file, argv)
        except OSError:  # the launcher cannot be executed after all
            run = Spawned(file, argv)
        try:
            samples, interrupted = _follow(run, interval, vm0)
        finally:
            run.close()
    if run.exec_errno is not None:
        raise exec_error(argv[0], run.exec_errno)
    res = run.result
    if res is None:
        raise KeyboardInterrupt
    vm1 = _vmstat()
    m = Measurement(argv, res["status"], res["elapsed_ns"], res["rusage"], res["perf"], samples,
                    {k: vm1.get(k, 0) - vm0[k] for k in HOST_VMSTAT_KEYS if k in vm0}, launcher=run.how,
                    pid=run.pid, interrupted=interrupted)
    m.diagnosis = diagnose(m)
    if record_host:
        m.host = probe_host()
    return m


def _vmstat() -> dict[str, int]:
    try:
        return parse_vmstat(Path("/proc/vmstat").read_text())
    except (OSError, ValueError):
        return {}


def _follow(run: Run, interval: float, vm0: dict[str, int]) -> tuple[list[Sample], bool]:
    """Sample the command's tree until it is reaped; on Ctrl-C, stop it. Returns (samples, interrupted)."""
    samples: list[Sample] = []
    delay = min(interval, FIRST_SAMPLE_S)
    try:
        with CtrlC() as ctrl:
            while not run.wait(delay, ctrl.fd):
                if ctrl.count:
                    stop(run, ctrl)
                    return samples, True
                if run.started is not None and run.pid > 0:
                    s = _sample_tree(run.parent, run.pid, time.monotonic() - run.started, vm0)
                    if s is not None:
                        samples.append(s)
                    delay = min(interval, delay * 2)
            return samples, ctrl.count > 0  # a Ctrl-C as the command ended
    except KeyboardInterrupt:  # measuring from another thread, or a SIGINT just before CtrlC took over
        with CtrlC() as ctrl:
            stop(run, ctrl)
        return samples, True
    except BaseException:
        stop(run, grace=False)
        raise


def _sample_tree(parent: int, root: int, t: float, vm0: dict[str, int]) -> Sample | None:
    """One Sample of ``root``'s tree; None when the tree is gone."""
    tot = dict.fromkeys(("procs", "minflt", "majflt", "rss", "anon", "shmem", "huge", "locked"), 0)
    todo = [(parent, root)]
    while todo:
        ppid, pid = todo.pop()
        st = stat_if_child(pid, ppid)
        if st is None:
            continue
        tot["procs"] += 1
        tot["minflt"] += st["minflt"] + st["cminflt"]
        tot["majflt"] += st["majflt"] + st["cmajflt"]
        if st["state"] not in ("Z", "X"):
            try:
                status = parse_status(Path(f"/proc/{pid}/status").read_text())
                roll = parse_smaps(Path(f"/proc/{pid}/smaps_rollup").read_text())
            except (OSError, ValueError):  # it exited between the reads
                status, roll = {}, []
            tot["rss"] += int(status.get("VmRSS", 0))
            tot["anon"] += int(status.get("RssAnon", 0))
            tot["shmem"] += int(status.get("RssShmem", 0))
            tot["locked"] += int(status.get("VmLck", 0))
            tot["huge"] += int(roll[0].get("AnonHugePages", 0)) if roll else 0
        todo += [(pid, c) for c in children(pid)]
    if not tot["procs"]:
        return None
    vm = _vmstat()
    return Sample(t, tot["procs"], tot["minflt"], tot["majflt"], tot["rss"], tot["anon"], tot["shmem"], tot["huge"],
                  tot["locked"], vm.get("pgmajfault", 0) - vm0.get("pgmajfault", 0), _refaults(vm) - _refaults(vm0))


def _refaults(vm: dict[str, int]) -> int:
    return vm.get("workingset_refault_anon", 0) + vm.get("workingset_refault_file", 0)


# ---- diagnosis ----

def anon_first_touches(samples: list[Sample], page_size: int | None = None) -> int:
    """A lower bound on the faults that populated new anonymous memory: the growth of RssAnon plus
    RssShmem (shared anonymous memory) between samples, in faults: one per base page, one per
    PMD-mapped THP (a page of page-table entries' worth of pages: 2 MiB with 4 KiB pages).
    Simplified: RssShmem that grows by mapping a tmpfs file's existing pages counts too."""
    page_kb = (page_size or os.sysconf("SC_PAGE_SIZE")) // 1024
    pmd_kb = page_kb * (page_kb * 1024 // 8)
    total, prev = 0.0, 0.0
    for s in samples:
        faults = (s.rss_anon_kb + s.rss_shmem_kb - s.anon_huge_kb) / page_kb + s.anon_huge_kb / pmd_kb
        total += max(0.0, faults - prev)
        prev = faults
    return int(total)


def diagnose(m: Measurement) -> list[str]:
    """Name what the counters show, in the seed's terms. Fault totals are wait4()'s, or the last
    sample's where that saw more (descendants killed before their parent reaped them)."""
    last = m.samples[-1] if m.samples else None
    total_major = max(int(m.rusage["ru_majflt"]), last.majflt if last else 0)
    minor = max(int(m.rusage["ru_minflt"]), last.minflt if last else 0)
    out = _major_faults(m, total_major)
    out += _minor_faults(m, total_major, minor)
    if any(s.anon_huge_kb for s in m.samples):
        out.append(f"THP in use: up to {max(s.anon_huge_kb for s in m.samples)} kB AnonHugePages")
    if any(s.locked_kb for s in m.samples):
        out.append(f"locked memory: up to {max(s.locked_kb for s in m.samples)} kB VmLck (mlock)")
    return out or ["no page faults"]


def _major_faults(m: Measurement, total_major: int) -> list[str]:
    """A cold start takes its major faults early; memory pressure keeps taking them (the run split in halves)."""
    if not total_major:
        return []
    faults = f"{total_major} major fault{'s' if total_major != 1 else ''}"
    majors = [s.majflt for s in m.samples]
    late = majors[-1] - majors[len(majors) // 2] if len(majors) >= 4 else 0
    if len(majors) < 4:
        out = [f"cold start: {faults} (pages read from disk); the run was too short to tell early faults "
               "from late ones"]
    elif late > 0 and late >= total_major // 4:
        out = [f"steady-state memory pressure: major faults continue late in the run ({late} in the "
               f"second half of {total_major})"]
    else:
        out = [f"cold start: {faults}, taken early; minor faults after that"]
    refaults = _refaults(m.host_vmstat_delta)
    if refaults:
        out.append(f"refaults on the host while it ran: {refaults} (workingset_refault_*, system-wide): "
                   "pages evicted and needed again, which is what memory pressure looks like")
    return out


def _minor_faults(m: Measurement, total_major: int, minor: int) -> list[str]:
    """Anonymous first touch when it is at least half the minor faults; else a warm page cache, when
    the samples saw enough of the run (80% of its minor faults) to say so."""
    if not minor:
        return []
    anon = anon_first_touches(m.samples)
    peak = f"RssAnon reached {max((s.rss_anon_kb for s in m.samples), default=0)} kB"
    if any(s.rss_shmem_kb for s in m.samples):
        peak += f", RssShmem {max(s.rss_shmem_kb for s in m.samples)} kB"
    if 2 * anon >= minor:
        return [f"anonymous first touch: at least {anon} of the {minor} minor faults gave the command new "
                f"anonymous pages ({peak}): memory it allocated and touched for the first "
                "time, zero-filled by the kernel, not pages found in the page cache"]
    if total_major:
        return []
    seen = m.samples[-1].minflt if m.samples else 0
    if 10 * seen >= 8 * minor:
        return [f"warm page cache: minor faults only (no I/O); about {anon} of the {minor} were anonymous "
                f"first touches ({peak}), the rest mapped pages the page cache already held"]
    return [f"minor faults only (no I/O): nothing was read from disk; the samples saw {seen} of the {minor} "
            "minor faults, too few to tell anonymous first touches from page-cache hits"]


# ---- the report ----

def time_v(m: Measurement) -> list[tuple[str, str]]:
    """GNU time -v's lines for a measured command (observe.summary.gnu_time_v does the arithmetic)."""
    return gnu_time_v(" ".join(m.argv), m.rusage, m.elapsed_ns, os.WEXITSTATUS(m.wait_status),
                      os.sysconf("SC_PAGE_SIZE"))


def perf_stat(m: Measurement) -> str:
    """perf stat's block for the page-fault events, laid out as perf 6.1 lays it out."""
    if m.perf is None:
        return "\n(perf counters unavailable: perf_event_open was refused)\n"
    return perf_stat_block(" ".join(m.argv), m.perf, m.elapsed_s, m.rusage["ru_utime"], m.rusage["ru_stime"])


def render(m: Measurement) -> str:
    """GNU time -v's report (with its line for an abnormal end), perf stat's block, the timeline,
    the host's counters and the diagnosis."""
    out = f"{m.termination}\n" if m.termination else ""
    out += "".join(f"\t{label}: {value}\n" for label, value in time_v(m))
    out += perf_stat(m)
    if m.samples:
        out += (f"timeline: {m.sampled}\n  time_s  procs   minflt   majflt   rss_kB  anon_kB  shmem_kB  anonhuge_kB"
                "  locked_kB  host_pgmajfault  host_refaults\n")
        out += "".join(f"{s.t:8.3f} {s.procs:6d} {s.minflt:8d} {s.majflt:8d} {s.rss_kb:8d} {s.rss_anon_kb:8d}"
                       f" {s.rss_shmem_kb:9d} {s.anon_huge_kb:12d} {s.locked_kb:10d} {s.host_pgmajfault:16d}"
                       f" {s.host_refaults:14d}\n"
                       for s in m.samples)
    else:
        out += f"timeline: no samples (pid {m.pid} ended before the first, at {FIRST_SAMPLE_S * 1000:g} ms)\n"
    delta = ", ".join(f"{k} +{v}" for k, v in m.host_vmstat_delta.items() if v)
    out += f"\n/proc/vmstat over the run, the whole host (every process, not this command's): {delta or 'no change'}\n"
    out += f"launched by: {m.launcher}\n"
    out += "\ndiagnosis:\n" + "".join(f"  - {d}\n" for d in m.diagnosis)
    if m.interrupted:
        out += "\ninterrupted: Ctrl-C reached pagelab while the command ran; the command was stopped\n"
    return out
