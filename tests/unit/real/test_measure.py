"""measure's report, computed as GNU time's summarize() computes it, and finding the command as execvp() does."""

from __future__ import annotations

import json
import os
import signal

import pytest

from pagelab.real.launch import CommandNotExecutable, CommandNotFound, cache_dir, resolve
from pagelab.real.measure import Measurement, Sample, diagnose, render, time_v

RU = {"ru_utime": 0.0, "ru_stime": 0.0, "ru_maxrss": 1968, "ru_minflt": 120, "ru_majflt": 0}


def meas(status=0, elapsed_ns=2_000_000, **ru):
    m = Measurement(["ls", "-l", "/"], status, elapsed_ns, {**RU, **ru}, None)
    m.diagnosis = diagnose(m)
    return m


def tv(m):
    return dict(time_v(m))


def exited(code):
    return code << 8


def test_labels_are_gnu_times_in_its_order():
    labels = [k for k, _ in time_v(meas())]
    assert labels[0] == "Command being timed" and labels[-1] == "Exit status"
    assert labels[3:5] == ["Percent of CPU this job got", "Elapsed (wall clock) time (h:mm:ss or m:ss)"]
    assert "Minor (reclaiming a frame) page faults" in labels and len(labels) == 23
    assert tv(meas())["Command being timed"] == '"ls -l /"'


def test_times_are_truncated_to_hundredths_as_time_c_does():
    v = tv(meas(ru_utime=0.299999, ru_stime=1.0099, elapsed_ns=61_237_900_000))
    assert v["User time (seconds)"] == "0.29" and v["System time (seconds)"] == "1.00"
    assert v["Elapsed (wall clock) time (h:mm:ss or m:ss)"] == "1:01.23"
    assert tv(meas(elapsed_ns=3725_500_000_000))["Elapsed (wall clock) time (h:mm:ss or m:ss)"] == "1:02:05"


def test_cpu_percent_is_cpu_ms_over_elapsed_ms():
    assert tv(meas(ru_utime=0.003, ru_stime=0.001, elapsed_ns=8_000_000))["Percent of CPU this job got"] == "50%"
    assert tv(meas(ru_utime=0.003, elapsed_ns=999_999))["Percent of CPU this job got"] == "?%"  # 0 ms elapsed
    assert tv(meas(ru_utime=0.25, ru_stime=0.25, elapsed_ns=250_000_000))["Percent of CPU this job got"] == "200%"


def test_exit_status_and_the_abnormal_end_line():
    ok, false, segv = meas(0), meas(exited(1)), meas(signal.SIGSEGV)
    assert (ok.exit_code, ok.termination) == (0, None)
    assert (false.exit_code, false.termination) == (1, "Command exited with non-zero status 1")
    assert (segv.exit_code, segv.termination) == (139, "Command terminated by signal 11")
    assert tv(segv)["Exit status"] == "0"  # time.c prints WEXITSTATUS, which is 0 after a signal
    assert render(segv).startswith("Command terminated by signal 11\n\tCommand being timed: ")
    assert render(ok).startswith("\tCommand being timed: ")


def test_json_round_trips_with_the_derived_fields():
    m = meas(exited(3))
    m.samples = [Sample(0.005, 2, 80, 0, 1500, 200, 0, 0, 0, 5, 7)]
    d = json.loads(json.dumps(m.as_dict()))
    assert d["exit_code"] == 3 and d["termination"] == "Command exited with non-zero status 3"
    assert d["time_v"]["Exit status"] == "3" and d["elapsed_s"] == pytest.approx(0.002)
    assert d["samples"][0]["procs"] == 2 and d["samples"][0]["host_pgmajfault"] == 5
    assert "whole host" in d["sampled"]


def test_the_report_labels_host_counters_as_the_hosts():
    m = meas()
    m.host_vmstat_delta = {"pgfault": 5000, "pgmajfault": 3}
    m.samples = [Sample(0.005, 1, 80, 0, 1500, 200, 0, 0, 0, 3, 0)]
    out = render(m)
    assert "/proc/vmstat over the run, the whole host (every process, not this command's): pgfault +5000" in out
    assert "host_pgmajfault" in out and "perf counters unavailable" in out


def test_resolve_follows_execvp_and_the_shells(tmp_path, monkeypatch):
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\n")
    with pytest.raises(CommandNotExecutable, match="cannot run .*script: Permission denied"):
        resolve(str(script))
    with pytest.raises(CommandNotExecutable, match="Is a directory"):
        resolve(str(tmp_path))
    with pytest.raises(CommandNotFound, match="No such file or directory"):
        resolve(str(tmp_path / "missing"))
    monkeypatch.setenv("PATH", f"{tmp_path / 'none'}:{tmp_path}")
    with pytest.raises(CommandNotExecutable, match="cannot run script: Permission denied"):
        resolve("script")  # found on PATH but not executable: execvp's EACCES, 126
    with pytest.raises(CommandNotFound, match="cannot run nothing-here: command not found"):
        resolve("nothing-here")
    script.chmod(0o755)
    assert resolve("script") == str(script)
    assert CommandNotFound.exit_code == 127 and CommandNotExecutable.exit_code == 126


def test_cache_dir_honours_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "pagelab"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")  # ignored, as the XDG specification says
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "pagelab"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == tmp_path / "home" / ".cache" / "pagelab"


def test_page_size_is_the_hosts():
    assert tv(meas())["Page size (bytes)"] == str(os.sysconf("SC_PAGE_SIZE"))
