"""Measure a real command: what /usr/bin/time -v and perf stat report, a timeline, and a diagnosis.

The command runs as an argv (never through a shell), spawned with posix_spawn so that almost nothing
runs in the child before execve(). While it runs, /proc/PID/stat, /proc/PID/status, smaps_rollup and
/proc/vmstat are sampled every ``interval`` seconds. The diagnosis uses the terms of the seed's
closing paragraph: a cold start (major faults early, then minor only), steady-state memory pressure
(a persistent major-fault rate, or refaults), THP in use (AnonHugePages), locked memory (VmLck).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import PagelabError
from ..observe.parse import parse_smaps, parse_stat, parse_status, parse_vmstat
from .perf import open_exec_counters
from .probe import probe_host


class CommandNotFound(PagelabError):
    exit_code = 127


@dataclass
class Sample:
    t: float
    minflt: int
    majflt: int
    rss_kb: int
    anon_huge_kb: int
    locked_kb: int
    vm_pgmajfault: int  # system-wide /proc/vmstat, counted from the start of the run
    vm_refaults: int  # workingset_refault_anon + _file, likewise


@dataclass
class Measurement:
    argv: list[str]
    exit_status: int
    wall_s: float
    rusage: dict[str, float]
    perf: dict[str, int] | None
    samples: list[Sample] = field(default_factory=list)
    vmstat_delta: dict[str, int] = field(default_factory=dict)
    diagnosis: list[str] = field(default_factory=list)
    launcher: str = ""
    host: dict[str, Any] = field(default_factory=dict)  # probe_host(): the settings this ran under

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _refaults(vm: dict[str, int]) -> int:
    return vm.get("workingset_refault_anon", 0) + vm.get("workingset_refault_file", 0)


def _sample(pid: int, t: float, vm0: dict[str, int]) -> Sample | None:
    try:
        stat = parse_stat(Path(f"/proc/{pid}/stat").read_text())
        status = parse_status(Path(f"/proc/{pid}/status").read_text())
        roll = parse_smaps(Path(f"/proc/{pid}/smaps_rollup").read_text())
        vm = parse_vmstat(Path("/proc/vmstat").read_text())
    except (OSError, ValueError):
        return None
    if stat.get("state") == "Z" or not roll:
        return None
    return Sample(t, int(stat["minflt"]), int(stat["majflt"]), int(status.get("VmRSS", 0)),
                  int(roll[0].get("AnonHugePages", 0)), int(status.get("VmLck", 0)),
                  vm.get("pgmajfault", 0) - vm0.get("pgmajfault", 0), _refaults(vm) - _refaults(vm0))


def launcher() -> str | None:
    """The compiled pagelab-launch (real/launch.c), built with the host's C compiler on first use."""
    src = Path(__file__).with_name("launch.c")
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        return None
    digest = hashlib.sha256(src.read_bytes()).hexdigest()[:12]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pagelab"
    exe = cache / f"pagelab-launch-{digest}"
    if not exe.exists():
        cache.mkdir(parents=True, exist_ok=True)
        tmp = exe.with_suffix(f".{os.getpid()}.tmp")
        r = subprocess.run([cc, "-O2", "-o", str(tmp), str(src)], capture_output=True, text=True)
        if r.returncode != 0:
            return None
        tmp.replace(exe)
    return str(exe)


def measure(argv: list[str], interval: float = 0.1, *, use_launcher: bool = True) -> Measurement:
    """Run ``argv`` to completion and measure it.

    With a C compiler at hand the command runs under pagelab-launch, which forks it from a small
    process as /usr/bin/time does, so ru_maxrss is the command's own. Without one, it is spawned from
    this Python process and ru_maxrss includes the interpreter's RSS (execve records the old mm's peak).
    """
    if not argv:
        raise PagelabError("no command given: pagelab measure -- CMD ARGS...")
    if interval <= 0:
        raise PagelabError("--interval must be positive")
    path = argv[0] if "/" in argv[0] else shutil.which(argv[0])
    if path is None or not os.access(path, os.X_OK) or os.path.isdir(path):
        raise CommandNotFound(f"command not found: {argv[0]}")
    vm0 = parse_vmstat(Path("/proc/vmstat").read_text())
    exe = launcher() if use_launcher else None
    t0 = time.monotonic()
    if exe:
        status, rusage, perf, samples = _run_launched(exe, [path, *argv[1:]], interval, t0, vm0)
        how = "pagelab-launch (forks the command from a small process, as /usr/bin/time does)"
    else:
        status, rusage, perf, samples = _run_spawned(path, argv, interval, t0, vm0)
        how = "posix_spawn from Python (no C compiler): ru_maxrss includes this interpreter's RSS"
    wall = time.monotonic() - t0
    vm1 = parse_vmstat(Path("/proc/vmstat").read_text())
    keys = ("pgfault", "pgmajfault", "workingset_refault_anon", "workingset_refault_file", "pswpin",
            "pswpout", "thp_fault_alloc", "thp_collapse_alloc")
    m = Measurement(argv, status, wall, rusage, perf, samples,
                    {k: vm1.get(k, 0) - vm0.get(k, 0) for k in keys if k in vm0}, launcher=how)
    m.diagnosis = diagnose(m)
    m.host = probe_host()
    return m


_RunResult = tuple[int, dict[str, Any], "dict[str, int] | None", "list[Sample]"]  # status, rusage, perf, samples
_RU_FIELDS = ("ru_utime", "ru_stime", "ru_maxrss", "ru_minflt", "ru_majflt", "ru_nswap", "ru_inblock",
              "ru_oublock", "ru_nvcsw", "ru_nivcsw", "ru_nsignals")


def _run_launched(exe: str, argv: list[str], interval: float, t0: float, vm0: dict[str, int]) -> _RunResult:
    r, w = os.pipe()
    proc = subprocess.Popen([exe, str(w), *argv], pass_fds=(w,), stdin=None)
    os.close(w)
    reader = os.fdopen(r)
    first = reader.readline().split()
    pid = int(first[1]) if first[:1] == ["pid"] else -1
    samples = []
    while proc.poll() is None:
        s = _sample(pid, time.monotonic() - t0, vm0)
        if s:
            samples.append(s)
        time.sleep(interval)
    last = reader.readline().split()
    reader.close()
    if last[:1] == ["execfail"]:
        raise CommandNotFound(f"cannot run {argv[0]}: {os.strerror(int(last[1]))}")
    if last[:1] != ["done"]:
        raise PagelabError(f"pagelab-launch failed (exit {proc.returncode})")
    values = [float(v) if "." in v else int(v) for v in last[2:]]
    rusage = dict(zip(_RU_FIELDS, values[:11], strict=True))
    perf = {k: int(v) for k, v in zip(("page-faults", "minor-faults", "major-faults"), values[11:], strict=True)}
    return int(last[1]), rusage, (perf if min(perf.values()) >= 0 else None), samples


def _run_spawned(path: str, argv: list[str], interval: float, t0: float, vm0: dict[str, int]) -> _RunResult:
    counters = open_exec_counters()
    try:
        pid = os.posix_spawn(path, argv, os.environ)
    except OSError as exc:
        if counters:
            counters.close()
        raise CommandNotFound(f"cannot run {argv[0]}: {exc.strerror}") from None
    samples = []
    while True:
        done, status, ru = os.wait4(pid, os.WNOHANG)
        if done:
            break
        s = _sample(pid, time.monotonic() - t0, vm0)
        if s:
            samples.append(s)
        time.sleep(interval)
    perf = counters.read() if counters else None
    if counters:
        counters.close()
    return status, {k: getattr(ru, k) for k in _RU_FIELDS}, perf, samples


def diagnose(m: Measurement) -> list[str]:
    """Name what the counters show, in the seed's terms."""
    out = []
    majors = [s.majflt for s in m.samples]
    total_major = m.rusage["ru_majflt"]
    if total_major:
        # Split the run in halves: a cold start takes its major faults early; pressure keeps taking them.
        late = majors[-1] - majors[len(majors) // 2] if len(majors) >= 4 else 0
        if late > 0 and late >= total_major // 4:
            out.append(f"steady-state memory pressure: major faults continue late in the run ({late} in the "
                       f"second half of {total_major})")
        else:
            out.append(f"cold start: {total_major} major faults, taken early; minor faults after that")
        refaults = m.vmstat_delta.get("workingset_refault_anon", 0) + m.vmstat_delta.get("workingset_refault_file", 0)
        if refaults:
            out.append(f"refaults on the host while it ran: {refaults} (workingset_refault_*, system-wide): "
                       "pages evicted and needed again, which is what memory pressure looks like")
    if any(s.anon_huge_kb for s in m.samples):
        out.append(f"THP in use: up to {max(s.anon_huge_kb for s in m.samples)} kB AnonHugePages")
    if any(s.locked_kb for s in m.samples):
        out.append(f"locked memory: up to {max(s.locked_kb for s in m.samples)} kB VmLck (mlock)")
    if not out:
        out.append("warm: minor faults only (no I/O); the page cache already held what it needed")
    return out


TIME_V_LABELS = (
    ("Command being timed", None), ("User time (seconds)", "ru_utime"), ("System time (seconds)", "ru_stime"),
    ("Percent of CPU this job got", None), ("Elapsed (wall clock) time (h:mm:ss or m:ss)", None),
    ("Average shared text size (kbytes)", 0), ("Average unshared data size (kbytes)", 0),
    ("Average stack size (kbytes)", 0), ("Average total size (kbytes)", 0),
    ("Maximum resident set size (kbytes)", "ru_maxrss"), ("Average resident set size (kbytes)", 0),
    ("Major (requiring I/O) page faults", "ru_majflt"), ("Minor (reclaiming a frame) page faults", "ru_minflt"),
    ("Voluntary context switches", "ru_nvcsw"), ("Involuntary context switches", "ru_nivcsw"),
    ("Swaps", "ru_nswap"), ("File system inputs", "ru_inblock"), ("File system outputs", "ru_oublock"),
    ("Socket messages sent", 0), ("Socket messages received", 0), ("Signals delivered", "ru_nsignals"),
    ("Page size (bytes)", None), ("Exit status", None),
)


def render(m: Measurement) -> str:
    """GNU time -v's block, perf stat's block, the timeline and the diagnosis."""
    cpu = (m.rusage["ru_utime"] + m.rusage["ru_stime"]) / m.wall_s if m.wall_s else 0
    minutes, seconds = divmod(m.wall_s, 60)
    st = m.exit_status
    code = os.WEXITSTATUS(st) if os.WIFEXITED(st) else 128 + os.WTERMSIG(st)
    special = {"Command being timed": '"' + " ".join(m.argv) + '"', "Percent of CPU this job got": f"{int(cpu * 100)}%",
               "Elapsed (wall clock) time (h:mm:ss or m:ss)": f"{int(minutes)}:{seconds:05.2f}",
               "Page size (bytes)": os.sysconf("SC_PAGE_SIZE"), "Exit status": code}
    lines = []
    for label, key in TIME_V_LABELS:
        if label in special:
            value = special[label]
        elif isinstance(key, str):
            v = m.rusage[key]
            value = f"{v:.2f}" if isinstance(v, float) else v
        else:
            value = key
        lines.append(f"\t{label}: {value}")
    out = "\n".join(lines) + "\n"
    if m.perf is not None:
        out += f"\n Performance counter stats for '{' '.join(m.argv)}':\n\n"
        out += "".join(f"{v:>18}      {k:<61}\n" for k, v in m.perf.items())
        out += f"\n{m.wall_s:>18.9f} seconds time elapsed\n"
    else:
        out += "\n(perf counters unavailable: perf_event_open was refused)\n"
    if m.samples:
        out += "\n  time_s   minflt   majflt   rss_kB  anonhuge_kB  locked_kB  sys_pgmajfault  sys_refaults\n"
        for s in m.samples:
            out += (f"{s.t:8.2f} {s.minflt:8d} {s.majflt:8d} {s.rss_kb:8d} {s.anon_huge_kb:12d} {s.locked_kb:10d}"
                    f" {s.vm_pgmajfault:15d} {s.vm_refaults:13d}\n")
    if m.vmstat_delta:
        out += "\n/proc/vmstat during the run (system-wide): " + \
               ", ".join(f"{k} +{v}" for k, v in m.vmstat_delta.items() if v) + "\n"
    out += f"\nlaunched by: {m.launcher}\n"
    out += "\ndiagnosis:\n" + "".join(f"  - {d}\n" for d in m.diagnosis)
    return out
