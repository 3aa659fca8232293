"""pagelab.real.diskcal on a small file: the record's keys and how they relate, its arguments, its cleanup."""

from __future__ import annotations

import os

import pytest

from pagelab.real import diskcal

MiB = 1024 * 1024


def test_a_small_calibration_has_every_figure_and_removes_its_file(tmp_path):
    cal = diskcal.calibrate_disk(tmp_path, size=8 * MiB, rand_reads=20, ra_passes=2)
    assert list(tmp_path.iterdir()) == []
    assert cal["file_bytes"] == 8 * MiB and cal["rand_reads"] == 20
    seq = {k: cal[f"seq_read_{k}_bytes_per_s"] for k in ("qd1", "qd4", "readahead")}
    assert all(v > 0 for v in seq.values())
    assert cal["seq_read_bytes_per_s"] == max(seq.values()) == seq[cal["seq_read_method"]]
    assert len(cal["seq_read_readahead_all"]) == 2
    assert sorted(cal["seq_read_readahead_all"])[0] <= seq["readahead"] <= sorted(cal["seq_read_readahead_all"])[1]
    assert cal["rand_read_4k_ns"] > 0 and cal["seq_read_4k_ns"] > 0
    assert set(cal["method"]) == {"rand_read_4k_ns", "seq_read_4k_ns", "qd1", "qd4", "readahead",
                                  "seq_read_bytes_per_s"}


def test_a_failing_reader_thread_raises_and_the_file_goes(tmp_path, monkeypatch):
    real_preadv = os.preadv
    calls = []

    def preadv(fd: int, bufs: list[memoryview], off: int) -> int:
        calls.append(off)
        if len(calls) > 3:  # past the QD1 pass of 4 MiB in 1 MiB reads: the QD4 threads fail
            raise OSError(5, "Input/output error")
        return real_preadv(fd, bufs, off)

    monkeypatch.setattr(diskcal.os, "preadv", preadv)
    with pytest.raises(OSError, match="Input/output"):
        diskcal.calibrate_disk(tmp_path, size=4 * MiB, rand_reads=5, ra_passes=1)
    assert list(tmp_path.iterdir()) == []


def test_default_size_shrinks_to_the_free_space(tmp_path, monkeypatch):
    class St:
        f_frsize = 4096
        f_bavail = 0

    st = St()
    monkeypatch.setattr(diskcal.os, "statvfs", lambda d: st)
    st.f_bavail = (10 << 30) // 4096
    assert diskcal.default_size(tmp_path) == 256 * MiB
    st.f_bavail = (600 * MiB) // 4096
    assert diskcal.default_size(tmp_path) == 128 * MiB
    st.f_bavail = 0
    assert diskcal.default_size(tmp_path) == diskcal.MIN_FILE_BYTES


@pytest.mark.parametrize("kwargs, exc", [({"size": 2 * MiB}, ValueError), ({"size": 6 * MiB}, ValueError),
                                         ({"size": 2 << 30}, ValueError), ({"size": 4.0 * MiB}, TypeError),
                                         ({"size": True}, TypeError), ({"ra_passes": 0}, ValueError),
                                         ({"ra_passes": 1.0}, ValueError), ({"rand_reads": 0}, ValueError)])
def test_bad_arguments(tmp_path, kwargs, exc):
    with pytest.raises(exc):
        diskcal.calibrate_disk(tmp_path, **kwargs)
    assert list(tmp_path.iterdir()) == []
