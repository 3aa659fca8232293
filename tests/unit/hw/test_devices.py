"""Block-device models (hw/devices.py): service times, the queue model, the clock events, bad input."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pagelab as pl
from pagelab.clock import Clock
from pagelab.hw.devices import (
    DEVICE_MODELS,
    BlockDevice,
    device_model_from_calibration,
    get_device_model,
)

KiB, MiB = 1024, 1024 * 1024
NAMES = sorted(DEVICE_MODELS)


def test_every_existing_disk_name_is_still_a_model():
    for name in ("hdd", "ssd", "nvme", "zram", "virtio"):
        assert get_device_model(name).name == name
        assert pl.Machine(ram="64MiB", disk=name).blkdev.model is DEVICE_MODELS[name]


@pytest.mark.parametrize("name", NAMES)
def test_the_4k_random_read_is_the_stated_latency(name):
    model = DEVICE_MODELS[name]
    assert model.service_ns(4 * KiB, sequential=False) == model.rand_read_4k_ns
    assert model.source  # every model says where its figures come from


def test_the_figures_are_in_the_published_ranges():
    hdd, ssd, nvme = DEVICE_MODELS["hdd"], DEVICE_MODELS["ssd"], DEVICE_MODELS["nvme"]
    assert 8_000_000 <= hdd.rand_read_4k_ns <= 10_000_000 and 150e6 <= hdd.seq_read_bps <= 220e6
    assert 70_000 <= ssd.rand_read_4k_ns <= 100_000 and 500e6 <= ssd.seq_read_bps <= 600e6
    assert nvme.rand_read_4k_ns < ssd.rand_read_4k_ns < hdd.rand_read_4k_ns
    assert hdd.seq_read_bps < ssd.seq_read_bps < nvme.seq_read_bps
    # reading 1 MiB sequentially: ~5.5 ms on the disk, ~1.9 ms on SATA, ~0.15 ms on NVMe
    assert 5_000_000 < hdd.service_ns(MiB, sequential=True) < 6_000_000
    assert 150_000 < nvme.service_ns(MiB, sequential=True) < 160_000


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(NAMES), st.integers(1, 4096), st.integers(1, 4096), st.booleans(), st.booleans())
def test_service_time_is_monotone_in_size_and_random_is_slower(name, a, b, sequential, write):
    model = DEVICE_MODELS[name]
    small, large = sorted((a * 512, b * 512))
    assert model.service_ns(small, sequential, write) <= model.service_ns(large, sequential, write)
    if small < large:
        assert model.service_ns(small, sequential, write) < model.service_ns(large, sequential, write)
    assert model.service_ns(small, False, write) > model.service_ns(small, True, write)


def test_queue_depth_overlaps_latency_and_beyond_it_requests_wait():
    ssd = DEVICE_MODELS["ssd"]  # queue depth 32
    dev = BlockDevice(ssd)
    done = [dev.submit(0, 4 * KiB, sequential=False) for _ in range(ssd.queue_depth)]
    xfer = ssd.transfer_ns(4 * KiB)
    # all 32 start at once: their positioning overlaps, their transfers follow each other on the link
    assert done[0] == ssd.rand_read_4k_ns
    assert done == [ssd.rand_read_4k_ns + i * xfer for i in range(ssd.queue_depth)]
    assert dev.in_flight(0) == ssd.queue_depth
    # the 33rd waits for a tag (the first completion), then for the link, busy with the others' data
    extra = dev.submit(0, 4 * KiB, sequential=False)
    assert extra == max(done[0] + ssd.rand_read_4k_ns, done[-1] + xfer) == done[-1] + xfer
    # one at a time would have taken 33 full latencies
    assert extra < 33 * ssd.rand_read_4k_ns
    assert dev.in_flight(done[-1]) == 1 and dev.in_flight(extra) == 0


def test_beyond_the_queue_depth_a_request_waits_for_the_first_tag():
    nvme = DEVICE_MODELS["nvme"]  # queue depth 64; 64 4 KiB transfers take less than one latency
    dev = BlockDevice(nvme)
    done = [dev.submit(0, 4 * KiB, sequential=False) for _ in range(nvme.queue_depth)]
    assert done[-1] < 2 * nvme.rand_read_4k_ns
    assert dev.next_free_ns == done[0]
    assert dev.submit(0, 4 * KiB, sequential=False) == done[0] + nvme.rand_read_4k_ns


def test_a_queue_depth_of_one_serialises():
    hdd = DEVICE_MODELS["hdd"]
    dev = BlockDevice(hdd)
    times = [dev.submit(0, 4 * KiB, sequential=False) for _ in range(3)]
    assert times == [hdd.rand_read_4k_ns * (i + 1) for i in range(3)]
    # an idle device serves a later request at once
    assert dev.submit(times[-1] + 1000, 4 * KiB, True) == times[-1] + 1000 + hdd.service_ns(4 * KiB, True)


def test_bandwidth_is_the_cap_with_many_requests_in_flight():
    nvme = DEVICE_MODELS["nvme"]
    dev = BlockDevice(nvme)
    total = 256 * MiB
    last = max(dev.submit(0, MiB, sequential=True) for _ in range(total // MiB))
    bps = total * 1e9 / last
    assert 0.95 * nvme.seq_read_bps < bps <= nvme.seq_read_bps
    assert dev.bytes_read == total and dev.nr_requests == 256


def test_the_same_requests_take_the_same_time():
    def run() -> list[int]:
        dev = BlockDevice(DEVICE_MODELS["virtio"])
        out = []
        for i in range(500):
            out.append(dev.submit(i * 3000, (1 + i % 7) * 4 * KiB, sequential=i % 3 == 0, write=i % 5 == 0))
        return out
    assert run() == run()


def test_complete_io_arms_an_event_at_the_completion():
    m = pl.Machine(ram="64MiB", disk="ssd")
    seen: list[int] = []
    m.clock.advance_to(1000)
    ev = m.blkdev.complete_io(m.clock, 128 * KiB, False, lambda: seen.append(m.clock.now), name="read")
    assert ev.pending and ev.name == "read"
    want_ns = m.clock.now_ns + DEVICE_MODELS["ssd"].service_ns(128 * KiB, False)
    assert m.clock.cycles_to_ns(ev.time) >= want_ns > m.clock.cycles_to_ns(ev.time - 1) - 1
    m.clock.advance_to(ev.time - 1)
    assert not seen
    m.clock.advance_to(ev.time)
    assert ev.done and seen == [ev.time]


def test_from_a_calibration_record():
    cal = {"device": "vda", "filesystem": "ext4", "direct": True, "rand_read_4k_ns": 40_000,
           "seq_read_bytes_per_s": 600_000_000, "write_bytes_per_s": 400_000_000}
    model = device_model_from_calibration(cal)
    assert model.name == "host" and model.rand_read_4k_ns == 40_000
    assert model.seq_read_bps == 600_000_000 and model.seq_write_bps == 400_000_000
    assert "vda" in model.source
    m = pl.Machine(ram="64MiB", disk=model)
    assert m.disk == "host" and m.config["disk"] == "host" and m.blkdev.model is model
    # a latency too short for the default overhead: the overhead shrinks, the model stays consistent
    fast = device_model_from_calibration({**cal, "rand_read_4k_ns": 3_000, "seq_read_bytes_per_s": 10**10})
    assert fast.service_ns(4096, False) == 3_000
    with pytest.raises(ValueError, match="rand_read_4k_ns"):
        device_model_from_calibration({"seq_read_bytes_per_s": 1})
    with pytest.raises(ValueError):
        device_model_from_calibration({**cal, "rand_read_4k_ns": 0})


@pytest.mark.parametrize("nbytes, exc", [(0, ValueError), (-4096, ValueError), (1000, ValueError),
                                         (4096.0, TypeError), (True, TypeError), ("4096", TypeError),
                                         (1 << 41, ValueError)])
def test_bad_sizes_are_refused(nbytes, exc):
    dev = BlockDevice(DEVICE_MODELS["nvme"])
    with pytest.raises(exc):
        DEVICE_MODELS["nvme"].service_ns(nbytes, True)
    with pytest.raises(exc):
        dev.submit(0, nbytes, True)
    assert dev.nr_requests == 0 and dev.next_free_ns == 0


def test_bad_arguments_are_refused():
    dev = BlockDevice(DEVICE_MODELS["nvme"])
    with pytest.raises(TypeError):
        dev.submit(0, 4096, 1)  # sequential must be a bool
    with pytest.raises(TypeError):
        dev.submit(0, 4096, True, write="no")
    with pytest.raises(TypeError):
        dev.submit(1.5, 4096, True)
    with pytest.raises(ValueError):
        dev.submit(-1, 4096, True)
    dev.submit(10_000, 4096, True)
    with pytest.raises(ValueError, match="time order"):
        dev.submit(9_999, 4096, True)
    with pytest.raises(TypeError):
        dev.complete_io("clock", 4096, True, lambda: None)
    with pytest.raises(TypeError):
        BlockDevice("nvme")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="nvme"):
        get_device_model(3)
    with pytest.raises(ValueError, match="floppy.*hdd"):
        get_device_model("floppy")


def test_inconsistent_models_are_refused():
    nvme = DEVICE_MODELS["nvme"]
    with pytest.raises(ValueError, match="shorter than"):
        dataclasses.replace(nvme, rand_read_4k_ns=1_000)  # less than its own overhead
    for field, bad, exc in [("queue_depth", 0, ValueError), ("seq_read_bps", 0, ValueError),
                            ("overhead_ns", -1, ValueError), ("queue_depth", 2.0, TypeError),
                            ("rotational", 1, TypeError), ("name", "", TypeError)]:
        with pytest.raises(exc):
            dataclasses.replace(nvme, **{field: bad})
    with pytest.raises(dataclasses.FrozenInstanceError):
        nvme.queue_depth = 3  # type: ignore[misc]


def test_clock_import_keeps_hw_free_of_mm():
    import pagelab.hw.devices as devices
    src = open(devices.__file__).read()
    assert "from ..mm" not in src and "import pagelab.mm" not in src
    assert isinstance(Clock(1000).now, int)


def test_a_calibration_with_sequential_4k_latency_sets_the_overhead():
    """seq_read_4k_ns is what a request pays with no positioning: overhead = it less the 4 KiB transfer."""
    cal = {"device": "vda", "filesystem": "ext4", "direct": True, "rand_read_4k_ns": 45_000,
           "seq_read_4k_ns": 40_000, "seq_read_bytes_per_s": 2_048_000_000, "seq_read_method": "readahead"}
    model = device_model_from_calibration(cal)
    assert model.overhead_ns == 40_000 - 2_000 and model.positioning_ns == 5_000
    assert model.service_ns(4096, True) == 40_000 and model.service_ns(4096, False) == 45_000
    assert "readahead" in model.source
    # 4096 contiguous 4 KiB reads one at a time cost ~the random latency each, as on the reference VM
    dev = BlockDevice(model)
    t = 0
    for _ in range(4096):
        t = dev.submit(t, 4096, True)
    assert t == 4096 * 40_000
    # sequential slower than random (noise): clamped, the model stays consistent
    slow = device_model_from_calibration({**cal, "seq_read_4k_ns": 90_000})
    assert slow.overhead_ns == 45_000 - 2_000 and slow.positioning_ns == 0
    # 4 MiB requests, 8 in flight, reach the calibrated bandwidth: 64 MiB in ~32.8 ms + one overhead
    dev = BlockDevice(model)
    done = max(dev.submit(0, 4 << 20, True) for _ in range(16))
    assert done == 38_000 + 16 * model.transfer_ns(4 << 20)
    with pytest.raises(ValueError, match="seq_read_4k_ns"):
        device_model_from_calibration({**cal, "seq_read_4k_ns": 0})
    with pytest.raises(TypeError):
        device_model_from_calibration({**cal, "seq_read_4k_ns": 1.5})
