"""pagelab measure beside GNU time (/usr/bin/time -v), command by command, on this machine.

Both run as separate processes, as a user runs them, so that the command's stdout and stderr are
compared byte for byte with what it writes under GNU time: the report goes to stderr (its last line
with --json) or to -o FILE, and pagelab's exit status is the one GNU time exits with.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pagelab.cli import main
from pagelab.real.measure import measure

pytestmark = [pytest.mark.real,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs a Linux kernel")]

GNU_TIME = "/usr/bin/time"
PAGELAB = [sys.executable, "-m", "pagelab", "measure"]
ALLOC = (f"{shlex.quote(sys.executable)} -c 'import mmap, time; m = mmap.mmap(-1, 64 << 20, mmap.MAP_PRIVATE); "
         "m.madvise(mmap.MADV_NOHUGEPAGE); [m.__setitem__(i, 1) for i in range(0, 64 << 20, 4096)]; time.sleep(0.3)'")
CASES = {
    "true": ["true"],
    "false": ["false"],
    "ls": ["ls", "-a", "/"],
    "sigsegv": ["sh", "-c", "kill -SEGV $$"],
    "shell-runs-a-child": ["sh", "-c", "sleep 0.2; true"],
    "shell-runs-a-child-that-allocates": ["sh", "-c", ALLOC + "; true"],
    "stdout-and-stderr": ["sh", "-c", "echo out; echo err >&2; exit 3"],
}


def _gnu_time_or_skip() -> str:
    try:
        version = subprocess.run([GNU_TIME, "--version"], capture_output=True, text=True, check=False)
    except OSError:
        pytest.skip(f"GNU time is not installed at {GNU_TIME} (apt-get install time)")
    if "GNU" not in version.stdout + version.stderr:
        pytest.skip(f"{GNU_TIME} is not GNU time")
    return GNU_TIME


def _time_v(stderr: str) -> tuple[str | None, dict[str, str]]:
    """GNU time's report: the abnormal-end line (if any) and the tab-indented "label: value" lines."""
    lines = stderr.splitlines()
    first = next((x for x in lines if x.startswith("Command ")), None)
    values = {}
    for x in lines:
        if x.startswith("\t") and ": " in x:
            k, v = x.strip().split(": ", 1)
            values[k] = v
    return first, values


def _seconds(elapsed: str) -> float:
    parts = [float(p) for p in elapsed.split(":")]
    return parts[-1] + 60 * parts[-2] + (3600 * parts[-3] if len(parts) == 3 else 0)


@pytest.mark.parametrize("name", list(CASES))
def test_measure_matches_gnu_time(name):
    time_bin, argv = _gnu_time_or_skip(), CASES[name]
    ref = subprocess.run([time_bin, "-v", *argv], capture_output=True, text=True, check=False)
    ours = subprocess.run([*PAGELAB, "--json", "--", *argv], capture_output=True, text=True, check=False)
    ref_end, ref_v = _time_v(ref.stderr)
    assert ours.returncode == ref.returncode, (ours.returncode, ref.returncode, ours.stderr[-2000:])
    assert ours.stdout == ref.stdout  # the command's stdout, exactly, and nothing else
    report = json.loads(ours.stderr.splitlines()[-1])  # the report is the last line of stderr
    own = ours.stderr[:ours.stderr.rindex("\n", 0, len(ours.stderr) - 1) + 1] if "\n" in ours.stderr[:-1] else ""
    assert ref.stderr.startswith(own)  # what the command wrote to stderr comes first, unchanged
    assert report["exit_code"] == ref.returncode and report["termination"] == ref_end
    assert list(report["time_v"]) == list(ref_v)  # the same labels, in the same order
    assert report["time_v"]["Exit status"] == ref_v["Exit status"]
    assert report["time_v"]["Command being timed"] == ref_v["Command being timed"]
    ours_s, ref_s = report["elapsed_s"], _seconds(ref_v["Elapsed (wall clock) time (h:mm:ss or m:ss)"])
    # GNU time prints hundredths, and the host is shared: allow for the scheduler (a loaded 2-core host
    # stretches a Python start by half), not for padding, which the fast commands show.
    assert abs(ours_s - ref_s) < 0.15 + 0.5 * ref_s, (ours_s, ref_s)
    if name in ("true", "false", "sigsegv"):
        assert ours_s < 0.08  # not padded to the sampling interval (it was 0.10 s and more)
    if name == "shell-runs-a-child":
        assert ours_s >= 0.2  # the child's sleep is the command's time too


def test_text_report_goes_to_stderr_in_gnu_times_words():
    _gnu_time_or_skip()
    ours = subprocess.run([*PAGELAB, "--", "sh", "-c", "kill -SEGV $$"], capture_output=True, text=True, check=False)
    assert ours.returncode == 139 and ours.stdout == ""
    assert ours.stderr.startswith("Command terminated by signal 11\n\tCommand being timed: \"sh -c kill -SEGV $$\"\n")
    assert "\tExit status: 0\n" in ours.stderr and "Performance counter stats for" in ours.stderr


def test_minor_faults_and_maxrss_are_the_commands_as_under_gnu_time():
    time_bin = _gnu_time_or_skip()
    runs = [_time_v(subprocess.run([time_bin, "-v", "ls", "/"], capture_output=True, text=True).stderr)[1]
            for _ in range(3)]
    minor = [int(r["Minor (reclaiming a frame) page faults"]) for r in runs]
    maxrss = [int(r["Maximum resident set size (kbytes)"]) for r in runs]
    m = measure(["ls", "/"], record_host=False)
    assert 0.8 * min(minor) <= m.rusage["ru_minflt"] <= 1.2 * max(minor)
    assert 0.6 * min(maxrss) <= m.rusage["ru_maxrss"] <= 1.2 * max(maxrss)
    if m.perf is not None:
        assert m.perf["page-faults"] == m.perf["minor-faults"] + m.perf["major-faults"]


def test_the_timeline_follows_the_process_tree():
    m = measure(["sh", "-c", "sleep 0.3; true"], record_host=False)
    assert m.exit_code == 0 and 0.3 <= m.elapsed_s < 2.0
    assert max(s.procs for s in m.samples) == 2  # sh and its sleep
    assert all(s.t < m.elapsed_s + 0.05 for s in m.samples)


def test_zero_fill_memory_is_diagnosed_as_anonymous_first_touch():
    m = measure(["sh", "-c", ALLOC], record_host=False)
    assert m.exit_code == 0 and m.rusage["ru_minflt"] >= 16384
    assert m.diagnosis[0].startswith("anonymous first touch"), m.diagnosis
    assert max(s.rss_anon_kb for s in m.samples) >= 64 * 1024
    assert not any(d.startswith("warm") for d in m.diagnosis)


def test_cannot_run_exits_as_shells_do(tmp_path, capsys):
    plain = tmp_path / "plain"
    plain.write_text("echo hi\n")
    for argv, code, words in (([str(plain)], 126, "Permission denied"), ([str(tmp_path)], 126, "Is a directory"),
                              (["surely-not-a-command-xyz"], 127, "command not found"),
                              ([str(tmp_path / "missing")], 127, "No such file or directory")):
        assert main(["measure", "--", *argv]) == code
        assert capsys.readouterr() == ("", f"pagelab measure: error: cannot run {argv[0]}: {words}\n")


def test_measure_itself_failing_exits_125_as_gnu_time(tmp_path, capsys):
    for args in ([], ["--interval", "nan", "--", "true"], ["-o", str(tmp_path / "no" / "such"), "--", "true"]):
        assert main(["measure", *args]) == 125
        err = capsys.readouterr().err
        assert err.startswith("pagelab measure: error:") and err.count("\n") == 1


def test_output_file_holds_the_json_and_nothing_else(tmp_path):
    out = tmp_path / "report.json"
    r = subprocess.run([*PAGELAB, "--json", "-o", str(out), "--", "sh", "-c", "echo out; echo err >&2"],
                       capture_output=True, text=True, check=False)
    assert (r.returncode, r.stdout, r.stderr) == (0, "out\n", "err\n")
    assert json.loads(out.read_text())["argv"] == ["sh", "-c", "echo out; echo err >&2"]
    subprocess.run([*PAGELAB, "-a", "-o", str(out), "--", "true"], check=True)
    assert out.read_text().count("\tCommand being timed: \"true\"") == 1  # appended after the JSON line


def test_an_unusable_cache_directory_falls_back(tmp_path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    env = {**os.environ, "XDG_CACHE_HOME": str(not_a_dir)}
    r = subprocess.run([*PAGELAB, "--", "true"], capture_output=True, text=True, env=env, check=False)
    assert r.returncode == 0 and "launched by: pagelab-launch" in r.stderr, r.stderr[-500:]


def test_without_the_launcher_the_status_is_still_the_commands():
    for argv, code in ((["false"], 1), (["sh", "-c", "kill -SEGV $$"], 139), (["sh", "-c", "sleep 0.1"], 0)):
        m = measure(argv, use_launcher=False, record_host=False)
        assert m.exit_code == code and m.elapsed_s < 2.0 and "posix_spawn" in m.launcher


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                kids = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            out += kids
            todo += kids
    return out


def _interrupt(script: str, group: bool, times: int = 1) -> tuple[subprocess.CompletedProcess[str], list[int], float]:
    """Start measure on ``sh -c script``, wait for its sleep, send SIGINT ``times`` times (to pagelab alone,
    or to its whole process group as a terminal's Ctrl-C does); returns the result, the tree's PIDs, the
    seconds taken."""
    p = subprocess.Popen([*PAGELAB, "--", "sh", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, start_new_session=True)
    deadline = time.monotonic() + 30
    while len(tree := _descendants(p.pid)) < 3 and time.monotonic() < deadline:  # launcher, sh, sleep
        time.sleep(0.05)
    t0 = time.monotonic()
    for _ in range(times):
        os.killpg(p.pid, signal.SIGINT) if group else p.send_signal(signal.SIGINT)
        time.sleep(0.05)
    out, err = p.communicate(timeout=30)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err), tree, time.monotonic() - t0


def _gone(pids: list[int]) -> bool:
    """None of ``pids`` is a sleep still running (a PID reused since by another program does not count)."""
    for pid in pids:
        try:
            if "sleep" in Path(f"/proc/{pid}/cmdline").read_text():
                return False
        except OSError:
            continue
    return True


@pytest.mark.parametrize("group", [False, True], ids=["sigint-to-pagelab", "ctrl-c-to-the-group"])
def test_ctrl_c_stops_the_command_and_exits_130(group):
    r, tree, took = _interrupt("sleep 30; true", group)
    why = (r.returncode, took, tree, r.stderr[:300], r.stderr[-300:])
    assert r.returncode == 130 and "Traceback" not in r.stderr, why
    assert "Command terminated by signal 2" in r.stderr and took < 5, why
    assert len(tree) >= 3 and _gone(tree), why


def test_ctrl_c_kills_a_command_that_ignores_sigint():
    r, tree, took = _interrupt("trap '' INT; sleep 30; true", group=False)
    why = (r.returncode, took, tree, r.stderr[:300], r.stderr[-300:])
    assert r.returncode == 130 and "Traceback" not in r.stderr, why
    assert "Command terminated by signal 9" in r.stderr and took < 10, why
    assert _gone(tree), why


def test_each_further_ctrl_c_moves_on_to_the_next_signal():
    r, tree, took = _interrupt("trap '' INT; sleep 30; true", group=False, times=3)
    why = (r.returncode, took, tree, r.stderr[:300], r.stderr[-300:])
    assert r.returncode == 130 and "Command terminated by signal 9" in r.stderr and took < 2, why
    assert _gone(tree), why
