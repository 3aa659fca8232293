"""Calibrate a block-device model from this host's disk: 4 KiB random-read latency and sequential bandwidth.

What fio does with ``--direct=1 --rw=randread --bs=4k --iodepth=1`` and ``--rw=read --bs=4M
--numjobs=4``, in small: a temporary file on the disk under test (real data written and fsync'd), read
back so that every read reaches the device, timed with the monotonic clock. Three sequential figures and
one random one:

- ``seq_read_qd1_bytes_per_s``: 1 MiB O_DIRECT reads front to back, one at a time (fio --bs=1M
  --iodepth=1), over the first 64 MiB;
- ``seq_read_qd4_bytes_per_s``: 4 MiB O_DIRECT reads (max_sectors_kb on this host) by 4 threads, each
  reading its own quarter of the file front to back: four requests in flight;
- ``seq_read_readahead_bytes_per_s``: the file made cold (POSIX_FADV_DONTNEED) then read front to back with
  buffered 4 MiB read() calls: the kernel's own readahead (read_ahead_kb windows, large folios, several
  bios in flight); the median of ``ra_passes`` passes;
- ``rand_read_4k_ns``: 4 KiB O_DIRECT reads at random aligned offsets, one at a time (the median);
- ``seq_read_4k_ns``: 4 KiB O_DIRECT reads front to back, one at a time (the median): what a request
  costs with no positioning, so the model can tell its per-request overhead from positioning (on the
  reference VM the two are alike: a virtio request is a round trip to the host, not a seek).

``seq_read_bytes_per_s``, the figure the device model takes as its link bandwidth, is the largest of the
three sequential ones (``seq_read_method`` says which): what large, overlapped requests get. On the
reference VM (virtio-blk vda, Linux 6.18) O_DIRECT stays at 560-710 MB/s whatever the request size
(1 or 4 MiB), the number of threads (1, 2, 4, 8) or the buffer (4 KiB or 2 MiB pages), while the page
cache's readahead reads the same file at 0.9-2.5 GB/s, and a cold mmap scan of 64 MiB takes 32-84 ms
there: a model capped at the O_DIRECT figure made that scan ~105 ms.

The file is ``size`` bytes (256 MiB by default, less when the filesystem has not four times that free),
lives in ``/var/tmp`` (a disk-backed directory, unlike ``/tmp`` which may be tmpfs) unless the caller
names another directory, and is removed on every exit path (an exception, a KeyboardInterrupt). Where
the filesystem refuses O_DIRECT (tmpfs, some FUSE and overlay setups: open() fails with EINVAL), the
reads are buffered after ``posix_fadvise(POSIX_FADV_DONTNEED)`` has dropped the file's pages before
each pass, and the result says so (``direct: False`` and ``fallback_reason``).

``calibrate_disk_cached()`` keeps one result per directory for the life of the process (functools.cache,
the only state this module has), so that ``Machine.from_host()`` measures the disk once, not once per
machine. Nothing here runs at import.
"""

from __future__ import annotations

import functools
import mmap
import os
import random
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

MiB = 1024 * 1024
CAL_FILE_BYTES = 256 * MiB  # the default size of the calibration file
MAX_FILE_BYTES = 1024 * MiB  # the largest the caller may ask for
MIN_FILE_BYTES = 4 * MiB
QD1_BYTES = 64 * MiB  # the QD1 1 MiB pass reads at most this much (it is the slow one)
SEQ_CHUNK = MiB  # one QD1 sequential read (fio --bs=1M), and the write size
BIG_CHUNK = 4 * MiB  # one read of the QD4 and readahead passes (max_sectors_kb 4096 on the reference VM)
QD_THREADS = 4
RAND_CHUNK = 4096  # one random read (fio --bs=4k)
RAND_READS = 200
RA_PASSES = 3
DEFAULT_DIR = "/var/tmp"


def block_device_of(path: str | os.PathLike[str]) -> str | None:
    """The whole disk (``vda``, ``nvme0n1``) that holds ``path``, from /sys/dev/block; None if not a block device."""
    try:
        dev = os.stat(path).st_dev
    except OSError:
        return None
    link = Path(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}")
    if not link.exists():
        return None
    target = link.resolve()
    return target.parent.name if (target / "partition").exists() else target.name


def filesystem_of(path: str | os.PathLike[str]) -> str | None:
    """The filesystem type mounted at the longest /proc/self/mounts prefix of ``path`` (``ext4``)."""
    real = os.path.realpath(path)
    best, fstype = "", None
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        mnt = fields[1].replace("\\040", " ")
        if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
            best, fstype = mnt, fields[2]
    return fstype


def default_size(directory: str | os.PathLike[str]) -> int:
    """CAL_FILE_BYTES, halved (down to MIN_FILE_BYTES) until the filesystem has four times it free."""
    st = os.statvfs(directory)
    free = st.f_bavail * st.f_frsize
    size = CAL_FILE_BYTES
    while size > MIN_FILE_BYTES and 4 * size > free:
        size //= 2
    return size


def _fill(fd: int, size: int, seed: int) -> None:
    """Write ``size`` bytes of incompressible data (a compressing or deduplicating layer cannot skip it)."""
    rng = random.Random(seed)
    block = rng.randbytes(SEQ_CHUNK)
    written = 0
    while written < size:
        n = min(SEQ_CHUNK, size - written)
        # vary each MiB so no two blocks are identical (dedup), cheaply: a counter in the first 8 bytes
        os.write(fd, written.to_bytes(8, "little") + block[8:n])
        written += n
    os.fsync(fd)


def _open_for_reading(path: str) -> tuple[int, bool, str | None]:
    """Open with O_DIRECT, or buffered after dropping the file's cached pages; (fd, direct, why not direct)."""
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECT), True, None
    except OSError as e:
        reason = f"open(O_DIRECT) failed: {e.strerror or e} (errno {e.errno})"
    fd = os.open(path, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    return fd, False, reason


def _read_range(fd: int, start: int, end: int, chunk: int) -> None:
    """Read [start, end) of ``fd`` front to back in ``chunk``-byte preadv() calls into a page-aligned buffer."""
    buf = mmap.mmap(-1, chunk)  # page-aligned: what O_DIRECT wants of a buffer
    try:
        for off in range(start, end, chunk):
            n = min(chunk, end - off)
            view = memoryview(buf)[:n]
            try:
                if os.preadv(fd, [view], off) != n:
                    raise OSError(f"short read at {off} of the calibration file")
            finally:
                view.release()
    finally:
        buf.close()


def _bps(nbytes: int, ns: int) -> int:
    return int(nbytes * 1_000_000_000 // max(ns, 1))


def calibrate_disk(directory: str | os.PathLike[str] | None = None, *, size: int | None = None,
                   rand_reads: int = RAND_READS, ra_passes: int = RA_PASSES, seed: int = 0) -> dict[str, Any]:
    """Measure the disk under ``directory`` (default /var/tmp): returns the calibration record.

    Keys: ``device`` (e.g. ``vda``), ``filesystem``, ``directory``, ``direct`` (O_DIRECT used),
    ``fallback_reason``, ``file_bytes``, ``rand_read_4k_ns`` (median of ``rand_reads`` 4 KiB reads at
    random 4 KiB-aligned offsets, queue depth 1), ``rand_read_4k_p10_ns``/``p90``, ``seq_read_4k_ns``,
    ``seq_read_qd1_bytes_per_s``, ``seq_read_qd4_bytes_per_s``, ``seq_read_readahead_bytes_per_s`` (and
    ``seq_read_readahead_all`` of every pass), ``seq_read_bytes_per_s`` (the largest of the three) with
    ``seq_read_method``, ``method`` (how each figure was measured, in words), ``write_bytes_per_s`` (the
    write + fsync of the file: a buffered write then one flush, so a lower bound of the device's write
    bandwidth), ``elapsed_s``. ``size`` (default: ``default_size(directory)``) is a multiple of 4 MiB
    between 4 MiB and 1 GiB.
    """
    if rand_reads is not None and (isinstance(rand_reads, bool) or not isinstance(rand_reads, int)
                                   or not 1 <= rand_reads <= 10_000):
        raise ValueError(f"rand_reads must be an int in 1..10000, got {rand_reads!r}")
    if isinstance(ra_passes, bool) or not isinstance(ra_passes, int) or not 1 <= ra_passes <= 20:
        raise ValueError(f"ra_passes must be an int in 1..20, got {ra_passes!r}")
    directory = os.fspath(directory if directory is not None else DEFAULT_DIR)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"calibration directory {directory!r} does not exist")
    if size is None:
        size = default_size(directory)
    if isinstance(size, bool) or not isinstance(size, int):
        raise TypeError(f"size must be an int, got {type(size).__name__}")
    if not MIN_FILE_BYTES <= size <= MAX_FILE_BYTES or size % BIG_CHUNK:
        raise ValueError(f"size must be a multiple of 4 MiB between 4 MiB and 1 GiB, got {size}")
    t0 = time.perf_counter()
    fd_w, path = tempfile.mkstemp(prefix="pagelab-diskcal-", dir=directory)
    fd = -1
    try:
        tw = time.perf_counter_ns()
        try:
            _fill(fd_w, size, seed)
        finally:
            os.close(fd_w)
        write_ns = time.perf_counter_ns() - tw
        fd, direct, reason = _open_for_reading(path)

        def drop() -> None:  # buffered fallback: every pass starts from a cold file
            if not direct:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)

        # queue depth 1: 1 MiB reads front to back
        qd1_bytes = min(size, QD1_BYTES)
        ts = time.perf_counter_ns()
        _read_range(fd, 0, qd1_bytes, SEQ_CHUNK)
        qd1_ns = time.perf_counter_ns() - ts
        drop()
        # queue depth 4: 4 threads, each 4 MiB reads over its own quarter (os.preadv releases the GIL)
        part = size // QD_THREADS // BIG_CHUNK * BIG_CHUNK
        ranges = [(k * part, size if k == QD_THREADS - 1 else (k + 1) * part) for k in range(QD_THREADS)]
        with ThreadPoolExecutor(max_workers=QD_THREADS, thread_name_prefix="pagelab-diskcal") as pool:
            ts = time.perf_counter_ns()
            futures = [pool.submit(_read_range, fd, a, b, BIG_CHUNK) for a, b in ranges if b > a]
            for f in futures:
                f.result()  # re-raises a thread's OSError here
            qd4_ns = time.perf_counter_ns() - ts
        drop()
        # the kernel's readahead: cold buffered 4 MiB read() passes
        ra_ns: list[int] = []
        fd_b = os.open(path, os.O_RDONLY)
        try:
            for _ in range(ra_passes):
                os.posix_fadvise(fd_b, 0, 0, os.POSIX_FADV_DONTNEED)
                ts = time.perf_counter_ns()
                _read_range(fd_b, 0, size, BIG_CHUNK)
                ra_ns.append(time.perf_counter_ns() - ts)
            os.posix_fadvise(fd_b, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd_b)
        # random: 4 KiB reads at aligned offsets, in a seeded order
        rng = random.Random(seed)
        buf = mmap.mmap(-1, RAND_CHUNK)
        view = memoryview(buf)
        lat: list[int] = []
        seq4k: list[int] = []
        try:
            # sequential 4 KiB reads at QD1: the per-request cost with no positioning (overhead + transfer)
            drop()
            for i in range(rand_reads):
                t = time.perf_counter_ns()
                if os.preadv(fd, [view], (size // 2) + i * RAND_CHUNK) != RAND_CHUNK:
                    raise OSError("short read of the calibration file")
                seq4k.append(time.perf_counter_ns() - t)
            drop()
            for _ in range(rand_reads):
                off = rng.randrange(size // RAND_CHUNK) * RAND_CHUNK
                t = time.perf_counter_ns()
                if os.preadv(fd, [view], off) != RAND_CHUNK:
                    raise OSError(f"short read at {off} of the calibration file")
                lat.append(time.perf_counter_ns() - t)
        finally:
            view.release()
            buf.close()
    finally:
        if fd >= 0:
            os.close(fd)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    lat.sort()
    deciles = statistics.quantiles(lat, n=10) if len(lat) > 1 else [lat[0]] * 9
    seq = {"qd1": _bps(qd1_bytes, qd1_ns), "qd4": _bps(size, qd4_ns),
           "readahead": _bps(size, int(statistics.median(ra_ns)))}
    best = max(seq, key=lambda k: seq[k])
    how = "O_DIRECT" if direct else "buffered after POSIX_FADV_DONTNEED"
    return {
        "device": block_device_of(directory),
        "filesystem": filesystem_of(directory),
        "directory": directory,
        "direct": direct,
        "fallback_reason": reason,
        "file_bytes": size,
        "rand_reads": rand_reads,
        "rand_read_4k_ns": int(statistics.median(lat)),
        "rand_read_4k_p10_ns": int(deciles[0]),
        "rand_read_4k_p90_ns": int(deciles[-1]),
        "seq_read_4k_ns": int(statistics.median(seq4k)),
        "seq_read_qd1_bytes_per_s": seq["qd1"],
        "seq_read_qd4_bytes_per_s": seq["qd4"],
        "seq_read_readahead_bytes_per_s": seq["readahead"],
        "seq_read_readahead_all": [_bps(size, ns) for ns in ra_ns],
        "seq_read_bytes_per_s": seq[best],
        "seq_read_method": best,
        "method": {
            "rand_read_4k_ns": f"median of {rand_reads} {how} 4 KiB preadv at random aligned offsets, QD1",
            "seq_read_4k_ns": f"median of {rand_reads} {how} 4 KiB preadv front to back from mid-file, QD1",
            "qd1": f"{how} 1 MiB preadv front to back over {qd1_bytes // MiB} MiB, QD1",
            "qd4": f"{how} 4 MiB preadv, {QD_THREADS} threads each over its own quarter of "
                   f"{size // MiB} MiB (QD{QD_THREADS})",
            "readahead": f"median of {ra_passes} passes of buffered 4 MiB read() over {size // MiB} MiB "
                         "after POSIX_FADV_DONTNEED (the kernel's readahead)",
            "seq_read_bytes_per_s": "the largest of qd1, qd4 and readahead",
        },
        "write_bytes_per_s": _bps(size, write_ns),
        "elapsed_s": round(time.perf_counter() - t0, 3),
    }


@functools.cache
def calibrate_disk_cached(directory: str = DEFAULT_DIR) -> dict[str, Any]:
    """``calibrate_disk(directory)``, measured once per process and directory (a copy is returned)."""
    return calibrate_disk(directory)


def disk_calibration(directory: str = DEFAULT_DIR) -> dict[str, Any]:
    """The cached calibration of ``directory``'s disk, as a fresh dict the caller may keep or change."""
    return dict(calibrate_disk_cached(directory))
