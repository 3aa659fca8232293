"""Calibrate a block-device model from this host's disk: 4 KiB random-read latency and sequential bandwidth.

What fio does with ``--direct=1 --rw=randread --bs=4k --iodepth=1`` and ``--rw=read --bs=1M``, in small:
a temporary file on the disk under test (real data written and fsync'd, then read back with O_DIRECT so
the page cache is bypassed and every read reaches the device), timed read by read with the monotonic
clock. Medians, not means: one read that meets a host hiccup should not move the model.

The file is at most 64 MiB, lives in ``/var/tmp`` (a disk-backed directory, unlike ``/tmp`` which may be
tmpfs) unless the caller names another directory, and is removed on every exit path (an exception, a
KeyboardInterrupt). Where the filesystem refuses O_DIRECT (tmpfs, some FUSE and overlay setups: open()
fails with EINVAL), the reads fall back to buffered reads after ``posix_fadvise(POSIX_FADV_DONTNEED)``
has dropped the file's pages, and the result says so (``direct: False`` and ``fallback_reason``).

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
from pathlib import Path
from typing import Any

CAL_FILE_BYTES = 64 * 1024 * 1024  # the largest file the calibration writes
SEQ_CHUNK = 1024 * 1024  # one sequential read (fio --bs=1M)
RAND_CHUNK = 4096  # one random read (fio --bs=4k)
RAND_READS = 200
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


def calibrate_disk(directory: str | os.PathLike[str] | None = None, *, size: int = CAL_FILE_BYTES,
                   rand_reads: int = RAND_READS, seed: int = 0) -> dict[str, Any]:
    """Measure the disk under ``directory`` (default /var/tmp): returns the calibration record.

    Keys: ``device`` (e.g. ``vda``), ``filesystem``, ``directory``, ``direct`` (O_DIRECT used),
    ``fallback_reason``, ``file_bytes``, ``rand_read_4k_ns`` (median of ``rand_reads`` 4 KiB reads at
    random 4 KiB-aligned offsets), ``rand_read_4k_p10_ns``/``p90``, ``seq_read_bytes_per_s`` (1 MiB
    reads front to back over the file, total bytes / total time), ``write_bytes_per_s`` (the
    write + fsync of the file: a buffered write then one flush, so a lower bound of the device's write
    bandwidth), ``elapsed_s``.
    """
    if isinstance(size, bool) or not isinstance(size, int):
        raise TypeError(f"size must be an int, got {type(size).__name__}")
    if not SEQ_CHUNK <= size <= CAL_FILE_BYTES or size % SEQ_CHUNK:
        raise ValueError(f"size must be a multiple of 1 MiB between 1 MiB and 64 MiB, got {size}")
    if isinstance(rand_reads, bool) or not isinstance(rand_reads, int) or not 1 <= rand_reads <= 10_000:
        raise ValueError(f"rand_reads must be an int in 1..10000, got {rand_reads!r}")
    directory = os.fspath(directory if directory is not None else DEFAULT_DIR)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"calibration directory {directory!r} does not exist")
    t0 = time.perf_counter()
    fd_w, path = tempfile.mkstemp(prefix="pagelab-diskcal-", dir=directory)
    fd = -1
    buf = mmap.mmap(-1, SEQ_CHUNK)  # page-aligned: what O_DIRECT wants of a buffer
    try:
        tw = time.perf_counter_ns()
        try:
            _fill(fd_w, size, seed)
        finally:
            os.close(fd_w)
        write_ns = time.perf_counter_ns() - tw
        fd, direct, reason = _open_for_reading(path)
        # sequential: 1 MiB reads front to back
        ts = time.perf_counter_ns()
        for off in range(0, size, SEQ_CHUNK):
            if os.preadv(fd, [buf], off) != SEQ_CHUNK:
                raise OSError(f"short read at {off} of the calibration file")
        seq_ns = time.perf_counter_ns() - ts
        if not direct:  # the sequential pass cached the file: drop it again before the random reads
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        # random: 4 KiB reads at aligned offsets, in a seeded order
        rng = random.Random(seed)
        view = memoryview(buf)[:RAND_CHUNK]
        lat: list[int] = []
        for _ in range(rand_reads):
            off = rng.randrange(size // RAND_CHUNK) * RAND_CHUNK
            t = time.perf_counter_ns()
            if os.preadv(fd, [view], off) != RAND_CHUNK:
                raise OSError(f"short read at {off} of the calibration file")
            lat.append(time.perf_counter_ns() - t)
        view.release()
    finally:
        if fd >= 0:
            os.close(fd)
        buf.close()
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    lat.sort()
    deciles = statistics.quantiles(lat, n=10) if len(lat) > 1 else [lat[0]] * 9
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
        "seq_read_bytes_per_s": int(size * 1_000_000_000 // max(seq_ns, 1)),
        "write_bytes_per_s": int(size * 1_000_000_000 // max(write_ns, 1)),
        "elapsed_s": round(time.perf_counter() - t0, 3),
    }


@functools.cache
def calibrate_disk_cached(directory: str = DEFAULT_DIR) -> dict[str, Any]:
    """``calibrate_disk(directory)``, measured once per process and directory (a copy is returned)."""
    return calibrate_disk(directory)


def disk_calibration(directory: str = DEFAULT_DIR) -> dict[str, Any]:
    """The cached calibration of ``directory``'s disk, as a fresh dict the caller may keep or change."""
    return dict(calibrate_disk_cached(directory))
