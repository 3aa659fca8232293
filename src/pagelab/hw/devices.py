"""Block devices: how long an I/O takes. The kernel asks; hw/ answers (mm/ does no timing arithmetic).

A ``DeviceModel`` is a device's datasheet: 4 KiB random-read latency at queue depth 1, sequential read
and write bandwidth, the per-request overhead (command submission, interrupt, completion: what even a
sequential request pays) and the queue depth (how many requests the device serves at once). Its
``service_ns(nbytes, sequential=, write=)`` is the time one request takes on an idle device:

    random:      overhead + positioning + nbytes / bandwidth
    sequential:  overhead + nbytes / bandwidth

where ``positioning`` (a seek plus rotation on a disk, the flash read and the FTL lookup on an SSD) is
what the 4 KiB latency leaves after the overhead and the 4 KiB transfer. A ``BlockDevice`` is one
machine's device with its queue state: ``submit(now_ns, nbytes, sequential)`` returns when the request
completes. Up to ``queue_depth`` requests are in flight at once and their latencies overlap (an NVMe
drive's parallel flash channels, a SATA drive's NCQ slots); one more waits for the first slot to free.
Data moves over one link: transfers do not overlap, so many requests in flight reach the device's
bandwidth and no more. ``complete_io()`` arms the completion as an Event on the machine's clock: the
fault path waits on it (the blk-mq completion interrupt, then folio_end_read()).

Mirrors the role of block/blk-mq.c (tags: a request needs a free tag, up to the queue depth, or waits in
blk_mq_get_tag()) and a driver's completion (blk_mq_complete_request()). Simplified: no I/O scheduler
(mq-deadline's merging and sorting), no request merging or splitting (max_sectors_kb), no NCQ reordering
of seeks, one hardware queue, no write cache or flush cost, no tail latency: the same requests in the same
order always take the same time.
"""

from __future__ import annotations

import heapq
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..clock import Clock, Event

SECTOR_SIZE = 512
NS_PER_S = 1_000_000_000
MAX_IO_BYTES = 1 << 40  # a sanity bound on one request (1 TiB): beyond it the caller has a bug


def _check_int(value: object, what: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{what} must be an int, got {type(value).__name__} {value!r}")
    v = int(value)
    if v < minimum:
        raise ValueError(f"{what} must be >= {minimum}, got {v}")
    return v


def _check_bool(value: object, what: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{what} must be a bool, got {type(value).__name__} {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class DeviceModel:
    """A block device's figures: ``name``, ``rand_read_4k_ns`` (a 4 KiB random read at queue depth 1, all
    included), ``seq_read_bps``/``seq_write_bps`` (bytes per second), ``queue_depth`` (requests served at
    once), ``overhead_ns`` (per request), ``rotational`` (/sys/block/*/queue/rotational), ``source``."""

    name: str
    rand_read_4k_ns: int
    seq_read_bps: int
    seq_write_bps: int
    queue_depth: int
    overhead_ns: int
    rotational: bool = False
    source: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"a device's name must be a non-empty str, got {self.name!r}")
        for what in ("rand_read_4k_ns", "seq_read_bps", "seq_write_bps", "queue_depth"):
            _check_int(getattr(self, what), f"{self.name}: {what}", minimum=1)
        _check_int(self.overhead_ns, f"{self.name}: overhead_ns")
        _check_bool(self.rotational, f"{self.name}: rotational")
        if self.positioning_ns < 0:
            raise ValueError(f"{self.name}: a 4 KiB random read of {self.rand_read_4k_ns} ns is shorter than the "
                             f"overhead ({self.overhead_ns} ns) plus the 4 KiB transfer "
                             f"({self.transfer_ns(4096, write=False)} ns)")

    def transfer_ns(self, nbytes: int, *, write: bool = False) -> int:
        """Moving ``nbytes`` over the link at the sequential bandwidth (rounded up to whole ns)."""
        bps = self.seq_write_bps if write else self.seq_read_bps
        return -(-nbytes * NS_PER_S // bps)

    @property
    def positioning_ns(self) -> int:
        """What a random request pays before its data moves: seek + rotation, or the flash array read."""
        return self.rand_read_4k_ns - self.overhead_ns - self.transfer_ns(4096)

    def service_ns(self, nbytes: int, sequential: bool, write: bool = False) -> int:
        """Nanoseconds one request of ``nbytes`` takes on an idle device (``sequential``: it follows the
        previous request on the device, no positioning). Monotone in ``nbytes``; random >= sequential."""
        nbytes = _check_nbytes(nbytes)
        _check_bool(sequential, "sequential")
        _check_bool(write, "write")
        pos = 0 if sequential else self.positioning_ns
        return self.overhead_ns + pos + self.transfer_ns(nbytes, write=write)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "rand_read_4k_ns": self.rand_read_4k_ns, "seq_read_bps": self.seq_read_bps,
                "seq_write_bps": self.seq_write_bps, "queue_depth": self.queue_depth,
                "overhead_ns": self.overhead_ns, "rotational": self.rotational, "source": self.source}


def _check_nbytes(nbytes: object) -> int:
    n = _check_int(nbytes, "an I/O's size in bytes", minimum=1)
    if n % SECTOR_SIZE:
        raise ValueError(f"an I/O's size must be a whole number of {SECTOR_SIZE}-byte sectors, got {n}")
    if n > MAX_IO_BYTES:
        raise ValueError(f"an I/O of {n} bytes is beyond the {MAX_IO_BYTES}-byte bound of one request")
    return n


# The models ``Machine(disk=...)`` names. Every figure's source is beside it.
DEVICE_MODELS: dict[str, DeviceModel] = {
    # A 7200 rpm 3.5" SATA disk. Rotation: half a revolution on average, 60 s / 7200 / 2 = 4.17 ms
    # (Seagate BarraCuda and Exos 7E8 datasheets: "average latency 4.16 ms"). Seek: datasheets give an
    # average read seek of 8-8.5 ms over the full stroke (Seagate BarraCuda 7200.14: < 8.5 ms); a file
    # system keeps a file's blocks near each other, so we take ~5 ms, for ~9.3 ms in all (75-110 IOPS at
    # QD1, as measured 4 KiB random-read results of 7200 rpm disks show). Bandwidth: 190 MB/s average
    # over the platter (BarraCuda 2 TB: "up to 220 MB/s" on the outer tracks). One actuator: one request
    # at a time (NCQ reorders seeks, which is not modelled, but does not overlap them): queue depth 1.
    # Overhead: the SATA command and completion, ~20 us (as the SSD's below).
    "hdd": DeviceModel("hdd", rand_read_4k_ns=9_300_000, seq_read_bps=190_000_000, seq_write_bps=190_000_000,
                       queue_depth=1, overhead_ns=20_000, rotational=True,
                       source="Seagate BarraCuda/Exos 7E8 datasheets: 4.16 ms avg rotational latency, "
                              "up to 220 MB/s; short-stroke seek ~5 ms"),
    # A SATA SSD: Samsung 870 EVO datasheet (2021): sequential read 560 MB/s, write 530 MB/s; random
    # 4 KiB read at QD1 13,000 IOPS (77 us a read), at QD32 98,000 IOPS. AHCI NCQ has 32 tags (queue
    # depth 32). Overhead: the AHCI command path and interrupt, ~20 us of the 77.
    "ssd": DeviceModel("ssd", rand_read_4k_ns=77_000, seq_read_bps=560_000_000, seq_write_bps=530_000_000,
                       queue_depth=32, overhead_ns=20_000,
                       source="Samsung 870 EVO datasheet: 560/530 MB/s, 4K QD1 13K IOPS; AHCI NCQ 32 tags"),
    # An NVMe TLC SSD (PCIe 4.0): Samsung 980 PRO 1 TB datasheet: sequential read 7,000 MB/s, write
    # 5,000 MB/s; random 4 KiB read at QD1 22,000 IOPS (45 us a read; low-latency media such as Optane or
    # Z-NAND reach ~10 us, TLC flash does not), 1,000,000 IOPS at QD32 x 16 threads. The drive has
    # many flash channels working in parallel: an effective queue depth of 64 (with 45 us a read gives
    # 1.4 M IOPS, capped by the link at 1.7 M for 4 KiB). Overhead: NVMe submission + MSI-X completion
    # ~5 us (Linux's io_uring/NVMe polling papers: 4-6 us of software+protocol latency per I/O).
    "nvme": DeviceModel("nvme", rand_read_4k_ns=45_000, seq_read_bps=7_000_000_000,
                        seq_write_bps=5_000_000_000, queue_depth=64, overhead_ns=5_000,
                        source="Samsung 980 PRO datasheet: 7000/5000 MB/s, 4K QD1 22K IOPS, QD32 1M IOPS"),
    # A virtio-blk disk like this VM's vda (ext4 root, QEMU/KVM), calibrated by pagelab.real.diskcal on the
    # reference VM (Linux 6.18, 2026-12): O_DIRECT 4 KiB random reads, median 35-67 us over three runs
    # (45 us taken); 1 MiB O_DIRECT sequential reads 634-655 MB/s; 64 MiB written then fsync'd at
    # 488-497 MB/s. Queue depth 128: /sys/block/vda/mq/0/nr_tags. Overhead: a virtqueue kick (a VM exit)
    # and its interrupt, ~10 us (estimate).
    "virtio": DeviceModel("virtio", rand_read_4k_ns=45_000, seq_read_bps=1_400_000_000,
                          seq_write_bps=490_000_000, queue_depth=128, overhead_ns=42_000,
                          source="calibrated on the reference VM's vda (pagelab.real.diskcal), 2026-12: 4 KiB "
                                 "reads 37-70 us random and ~40-74 us back to back (a round trip to the host "
                                 "either way); the kernel's own readahead reads 1.3-2.2 GB/s (O_DIRECT 0.6)"),
    # zram: a RAM block device that compresses (drivers/block/zram). Synchronous: a request is served on
    # the submitting CPU (BLK_FEAT_SYNCHRONOUS), so one at a time per CPU (queue depth 1). Its speed is
    # the compressor's: lzo-rle, 6.18's default, decompresses ~850 MB/s and compresses ~670 MB/s
    # (lz4 README benchmark table, LZO 2.09 on a Core i7-9700K; lzo-rle is ~ LZO on pages that are not
    # zero). A 4 KiB read: ~4.8 us of decompression plus ~1 us of block-layer overhead.
    "zram": DeviceModel("zram", rand_read_4k_ns=5_900, seq_read_bps=850_000_000, seq_write_bps=670_000_000,
                        queue_depth=1, overhead_ns=1_000,
                        source="lz4 README benchmark table (LZO 2.09: 670 MB/s compress, 850 MB/s "
                               "decompress); zram is synchronous"),
}


def get_device_model(disk: object) -> DeviceModel:
    """The model ``disk`` names (one of DEVICE_MODELS), or ``disk`` itself if it is a DeviceModel."""
    if isinstance(disk, DeviceModel):
        return disk
    if not isinstance(disk, str):
        raise TypeError(f"disk must be one of {', '.join(DEVICE_MODELS)} or a DeviceModel, "
                        f"got {type(disk).__name__} {disk!r}")
    try:
        return DEVICE_MODELS[disk]
    except KeyError:
        raise ValueError(f"unknown disk {disk!r}; known: {', '.join(DEVICE_MODELS)}") from None


def device_model_from_calibration(cal: Mapping[str, Any], *, name: str = "host",
                                  base: DeviceModel | None = None) -> DeviceModel:
    """A model from a ``pagelab.real.diskcal`` record: its measured 4 KiB random-read latency, sequential
    read bandwidth (``seq_read_bytes_per_s``: the best of O_DIRECT QD1, O_DIRECT QD4 and the kernel's
    readahead, what large overlapped requests get) and write bandwidth; the queue depth of ``base``
    (default: the "virtio" model).

    The per-request overhead is the sequential 4 KiB QD1 latency (``seq_read_4k_ns``) less its transfer:
    what a request pays with no positioning. On the reference VM that is nearly all of the random latency
    (a virtio request is a round trip to the host, not a seek), so 4 KiB reads one after another cost
    ~40 us each whether or not they are contiguous, as MADV_RANDOM faults measure there. A record without
    ``seq_read_4k_ns`` takes ``base``'s overhead. Either is clamped so that the random latency still
    covers overhead + transfer.
    """
    base = base or DEVICE_MODELS["virtio"]
    try:
        lat = _check_int(cal["rand_read_4k_ns"], "calibration rand_read_4k_ns", minimum=1)
        rbw = _check_int(cal["seq_read_bytes_per_s"], "calibration seq_read_bytes_per_s", minimum=1)
        wbw = _check_int(cal.get("write_bytes_per_s") or rbw, "calibration write_bytes_per_s", minimum=1)
        seq4k = cal.get("seq_read_4k_ns")
        seq4k = None if seq4k is None else _check_int(seq4k, "calibration seq_read_4k_ns", minimum=1)
    except KeyError as e:
        raise ValueError(f"a disk calibration record needs {e.args[0]!r}") from None
    transfer = -(-4096 * NS_PER_S // rbw)
    wanted = base.overhead_ns if seq4k is None else seq4k - transfer
    overhead = max(0, min(wanted, lat - transfer))
    where = f"{cal.get('device') or '?'} ({cal.get('filesystem') or '?'})"
    return DeviceModel(name, rand_read_4k_ns=max(lat, overhead + transfer), seq_read_bps=rbw, seq_write_bps=wbw,
                       queue_depth=base.queue_depth, overhead_ns=overhead, rotational=base.rotational,
                       source=f"calibrated on this host's {where}, direct={cal.get('direct')}, "
                              f"sequential by {cal.get('seq_read_method') or 'qd1'}")


class BlockDevice:
    """One machine's block device: its ``model`` and queue state (m.blkdev).

    ``submit(now_ns, nbytes, sequential, write=False)`` books a request and returns its completion time
    in ns. A request takes a tag (one of ``queue_depth`` slots) when one is free, else waits for the
    earliest to free (blk_mq_get_tag() sleeping); its positioning overlaps other requests'; its transfer
    waits for the link. ``in_flight(now_ns)`` counts the requests not complete at ``now_ns``.
    Requests must be submitted in time order (the simulated clock never goes back).
    """

    def __init__(self, model: DeviceModel) -> None:
        if not isinstance(model, DeviceModel):
            raise TypeError(f"a BlockDevice needs a DeviceModel, got {type(model).__name__}")
        self.model = model
        self._tags: list[int] = [0] * model.queue_depth  # a min-heap of the times each tag frees
        self.link_free_ns = 0  # when the data link is next free
        self.last_submit_ns = 0
        self.nr_requests = 0
        self.bytes_read = 0
        self.bytes_written = 0
        self.busy_ns = 0  # time the link moved data (as /sys/block/*/stat io_ticks, roughly)
        self.next_sector = -1  # where the previous request ended (in pages): a request starting there is sequential

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def next_free_ns(self) -> int:
        """When the device can next start a request at once (its earliest free tag)."""
        return self._tags[0]

    def submit(self, now_ns: int, nbytes: int, sequential: bool, write: bool = False) -> int:
        """Book a request issued at ``now_ns`` of ``nbytes``; returns the time in ns it completes."""
        now_ns = _check_int(now_ns, "now_ns")
        if now_ns < self.last_submit_ns:
            raise ValueError(f"{self.name}: a request at {now_ns} ns comes before the previous one "
                             f"({self.last_submit_ns} ns): submit in time order")
        model = self.model
        service = model.service_ns(nbytes, sequential, write)  # checks nbytes, sequential, write
        transfer = model.transfer_ns(nbytes, write=write)
        start = max(now_ns, self._tags[0])  # a free tag, or wait for the earliest
        data_start = max(start + service - transfer, self.link_free_ns)
        done = data_start + transfer
        heapq.heapreplace(self._tags, done)
        self.link_free_ns = done
        self.last_submit_ns = now_ns
        self.nr_requests += 1
        self.busy_ns += transfer
        if write:
            self.bytes_written += nbytes
        else:
            self.bytes_read += nbytes
        return done

    def in_flight(self, now_ns: int) -> int:
        """Requests submitted and not complete at ``now_ns``."""
        return sum(1 for t in self._tags if t > now_ns)

    def complete_io(self, clock: Clock, nbytes: int, sequential: bool, callback: Callable[[], object],
                    *, write: bool = False, name: str = "io_complete") -> Event:
        """Submit a request now on ``clock`` and arm ``callback`` for its completion; returns the Event.

        The completion time is rounded up to whole cycles, so the event never runs before the I/O is done.
        """
        if not isinstance(clock, Clock):
            raise TypeError(f"complete_io needs the machine's Clock, got {type(clock).__name__}")
        done_ns = self.submit(clock.now_ns, nbytes, sequential, write)
        at = max(clock.now, -(-done_ns * clock.freq_mhz // 1000))
        return clock.schedule(at, callback, name=name)

    def __repr__(self) -> str:
        return f"<BlockDevice {self.name} qd={self.model.queue_depth} requests={self.nr_requests}>"
