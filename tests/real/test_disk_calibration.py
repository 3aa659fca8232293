"""The host-disk calibration (pagelab.real.diskcal) on this machine: plausible figures, its file removed."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import time

import pytest

import pagelab as pl
from pagelab.hw.devices import DEVICE_MODELS
from pagelab.real import diskcal

pytestmark = [pytest.mark.real,
              pytest.mark.skipif(not os.path.isdir(diskcal.DEFAULT_DIR), reason="needs /var/tmp")]


def leftovers(directory: str) -> list[str]:
    return sorted(n for n in os.listdir(directory) if n.startswith("pagelab-diskcal-"))


def test_calibration_measures_the_disk_and_removes_its_file():
    # a directory of its own on the same filesystem: another process calibrating at the same time (a busy
    # host) has its own file in /var/tmp meanwhile, which is not this run's leftover
    own = tempfile.mkdtemp(prefix="pagelab-test-diskcal-", dir=diskcal.DEFAULT_DIR)
    try:
        t0 = time.perf_counter()
        cal = diskcal.calibrate_disk(own)
        assert time.perf_counter() - t0 < 10  # ~2 s on the reference VM (256 MiB written, read 3 ways)
        assert leftovers(own) == []
    finally:
        shutil.rmtree(own, ignore_errors=True)
    assert cal["direct"] is True and cal["fallback_reason"] is None  # ext4 on this host takes O_DIRECT
    assert cal["filesystem"] and cal["file_bytes"] == diskcal.default_size(diskcal.DEFAULT_DIR)
    # a real disk, not the page cache: a 4 KiB read between 2 us (fast NVMe) and 30 ms (a busy HDD),
    # 20 MB/s to 20 GB/s sequentially; random 4 KiB reads slower than streaming 4 KiB
    assert 2_000 < cal["rand_read_4k_ns"] < 30_000_000
    assert cal["rand_read_4k_p10_ns"] <= cal["rand_read_4k_ns"] <= cal["rand_read_4k_p90_ns"]
    assert 20e6 < cal["seq_read_bytes_per_s"] < 20e9
    assert cal["seq_read_bytes_per_s"] == max(cal["seq_read_qd1_bytes_per_s"], cal["seq_read_qd4_bytes_per_s"],
                                              cal["seq_read_readahead_bytes_per_s"])
    assert 2_000 < cal["seq_read_4k_ns"] < 30_000_000
    assert cal["rand_read_4k_ns"] > 4096 * 1e9 / cal["seq_read_bytes_per_s"]
    if cal["device"] == "vda":  # the reference VM: the "virtio" model's figures came from here
        virtio = DEVICE_MODELS["virtio"]
        assert virtio.rand_read_4k_ns / 5 < cal["rand_read_4k_ns"] < virtio.rand_read_4k_ns * 5
        assert virtio.seq_read_bps / 5 < cal["seq_read_bytes_per_s"] < virtio.seq_read_bps * 5
        # (which of readahead and O_DIRECT reads faster is left unasserted: on a busy host either can win)


def test_the_file_is_removed_on_error(tmp_path, monkeypatch):
    def fail(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(diskcal, "_open_for_reading", fail)
    with pytest.raises(KeyboardInterrupt):
        diskcal.calibrate_disk(tmp_path, size=4 * 1024 * 1024, rand_reads=5)
    assert list(tmp_path.iterdir()) == []


def test_without_o_direct_it_falls_back_and_says_why(tmp_path, monkeypatch):
    real_open = os.open

    def no_direct(path: str, flags: int, *args: int) -> int:
        if flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, *args)

    monkeypatch.setattr(diskcal.os, "open", no_direct)
    cal = diskcal.calibrate_disk(tmp_path, size=4 * 1024 * 1024, rand_reads=20)
    assert cal["direct"] is False and "O_DIRECT" in cal["fallback_reason"] and "errno 22" in cal["fallback_reason"]
    assert cal["rand_read_4k_ns"] > 0 and cal["seq_read_bytes_per_s"] > 0
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError):
        diskcal.calibrate_disk(tmp_path, size=2048 * 1024 * 1024)
    with pytest.raises(ValueError):
        diskcal.calibrate_disk(tmp_path, size=1000)
    with pytest.raises(TypeError):
        diskcal.calibrate_disk(tmp_path, size=2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        diskcal.calibrate_disk(tmp_path, rand_reads=0)
    with pytest.raises(FileNotFoundError):
        diskcal.calibrate_disk(tmp_path / "absent")


def test_from_host_uses_the_calibration_once_per_process():
    m = pl.Machine.from_host(ram="64MiB", without_swap=True)
    cal = m.host_config["disk_calibration"]
    assert m.disk == "host" and m.blkdev.model.rand_read_4k_ns == cal["rand_read_4k_ns"]
    assert m.blkdev.model.seq_read_bps == cal["seq_read_bytes_per_s"]
    t0 = time.perf_counter()
    m2 = pl.Machine.from_host(ram="64MiB", without_swap=True)
    assert time.perf_counter() - t0 < 0.25  # cached: no second 64 MiB file
    assert m2.host_config["disk_calibration"] == cal and m2.blkdev.model == m.blkdev.model
    assert m2.host_config["disk_calibration"] is not cal  # each machine has its own copy
    # an explicit disk skips the calibration
    m3 = pl.Machine.from_host(ram="64MiB", without_swap=True, disk="nvme")
    assert m3.disk == "nvme" and "disk_calibration" not in m3.host_config


def test_from_host_without_a_calibration_gets_the_virtio_model_and_says_why(monkeypatch):
    monkeypatch.setattr("pagelab.real.probe.probe_disk_calibration",
                        lambda: {"error": "calibrating the disk under /var/tmp failed: read-only"})
    m = pl.Machine.from_host(ram="64MiB", without_swap=True)
    assert m.disk == "virtio" and "read-only" in m.host_config["disk_calibration"]["error"]
