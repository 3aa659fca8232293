"""Submitting I/O to the disk: a bio of contiguous sectors, read or written, completing as a clock event.

Mirrors block/blk-core.c: submit_bio() (PGPGIN / PGPGOUT, task_io_account_read()) and the request's
completion (bio_endio() -> the filesystem's end_io callback). The device model (hw/devices.py) says
how long the request takes; whether it is sequential is whether it starts where the previous request
ended, which is what an elevator and a disk's read-ahead cache see.

Simplified: no plugging or merging of separate bios, no I/O scheduler, no errors; requests larger
than the device's largest request (max_sectors_kb) are split, each piece a request of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..constants import PAGE_SHIFT, PAGE_SIZE
from ..stats import VmEvent

if TYPE_CHECKING:
    from ..clock import Event
    from ..kernel.task import Task
    from ..machine import Machine

MAX_SECTORS_KB = 4096  # /sys/block/vda/queue/max_sectors_kb on this host (docs/facts/files_page_cache.md)
IO_PAGES = MAX_SECTORS_KB * 1024 >> PAGE_SHIFT  # bdi->io_pages: the largest request, in pages


def submit_bio(m: Machine, task: Task | None, block: int, nr_pages: int, write: bool,
               end_io: Callable[[], object]) -> Event:
    """Mirrors submit_bio(): read (or write) ``nr_pages`` pages at disk page ``block``; ``end_io`` runs
    when the last piece completes. Counts pgpgin / pgpgout (KiB) and the task's read_bytes /
    write_bytes (/proc/PID/io). Returns the completion Event (what a task waiting on the I/O sleeps on).
    """
    dev = m.blkdev
    nbytes = nr_pages * PAGE_SIZE
    m.counters.count_vm_event(VmEvent.PGPGOUT if write else VmEvent.PGPGIN, nbytes // 1024)
    if task is not None:
        if write:
            task.ioac_write_bytes += nbytes
        else:
            task.ioac_read_bytes += nbytes
    event: Event | None = None
    done = block
    while done < block + nr_pages:
        piece = min(IO_PAGES, block + nr_pages - done)
        sequential = done == dev.next_sector
        dev.next_sector = done + piece
        last = done + piece >= block + nr_pages
        event = dev.complete_io(m.clock, piece * PAGE_SIZE, sequential, end_io if last else _nothing,
                                write=write, name="bio_endio")
        done += piece
    assert event is not None
    return event


def _nothing() -> None:
    """The completion of a piece of a split bio that is not the last: the bio ends with its last piece."""
