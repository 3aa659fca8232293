"""The perf stat and /usr/bin/time -v views use the real tools' labels."""

from __future__ import annotations

import shutil
import subprocess

import pytest

import pagelab as pl
from pagelab.observe.summary import perf_stat, time_v


@pytest.fixture
def task():
    m = pl.Machine(ram="64MiB", seed=0)
    p = m.spawn("sum")
    a = p.mmap(None, 16 * 4096, 3, 0x22)
    p.touch(a, 16 * 4096, write=True)
    p.exit()
    return p.task


def labels(text: str) -> list[str]:
    return [line.split(":")[0].strip() for line in text.splitlines() if ":" in line]


@pytest.mark.skipif(shutil.which("/usr/bin/time") is None, reason="GNU time is not installed")
def test_time_v_labels_are_gnu_times(task):
    real = subprocess.run(["/usr/bin/time", "-v", "true"], capture_output=True, text=True).stderr
    assert labels(time_v(task)) == labels(real)


def test_time_v_values(task):
    out = time_v(task)
    assert "\tMinor (reclaiming a frame) page faults: 16\n" in out
    assert "\tMaximum resident set size (kbytes): 64\n" in out
    assert "\tExit status: 0\n" in out


def test_perf_stat_lines(task):
    rows = {line.split()[1]: int(line.split()[0]) for line in perf_stat(task).splitlines()
            if line.strip() and line.split()[0].isdigit()}
    assert rows == {"page-faults": 16, "minor-faults": 16, "major-faults": 0}


def test_time_v_after_a_signal_is_gnu_times():
    """A task killed by SIGSEGV: GNU time's termination line first, and Exit status 0 (WEXITSTATUS)."""
    m = pl.Machine(ram="64MiB", seed=0)
    p = m.spawn("segv")
    with pytest.raises(pl.SegmentationFault):
        p.load(0x1000)
    out = time_v(p.task)
    assert out.startswith("Command terminated by signal 11\n")
    assert "\tExit status: 0\n" in out


def test_time_v_truncates_as_gnu_time_does():
    """summarize() in time.c truncates times to hundredths and computes CPU% from milliseconds."""
    from pagelab.observe.summary import gnu_time_v

    v = dict(gnu_time_v("x", {"ru_utime": 0.019, "ru_stime": 0.0}, elapsed_ns=29_999_000, exit_status=0))
    assert v["User time (seconds)"] == "0.01"
    assert v["Percent of CPU this job got"] == "65%"  # 19 ms * 100 // 29 ms
    assert v["Elapsed (wall clock) time (h:mm:ss or m:ss)"] == "0:00.02"
    assert dict(gnu_time_v("x", {}, elapsed_ns=0, exit_status=1))["Percent of CPU this job got"] == "?%"
