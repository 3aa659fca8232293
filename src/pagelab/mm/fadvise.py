"""posix_fadvise(): what a program tells the kernel about how it will read a file.

Mirrors mm/fadvise.c: generic_fadvise(). NORMAL restores the readahead window; RANDOM sets FMODE_RANDOM
(readahead reads only what is asked, in order-0 folios); SEQUENTIAL doubles the window; WILLNEED starts
readahead of the range now (force_page_cache_readahead(): at most max(io_pages, ra_pages) pages, 8 MiB
on this host whatever the length, measured); NOREUSE sets FMODE_NOREUSE; DONTNEED starts writeback of
dirty folios and drops the clean, unused folios lying wholly in the range (mapped, dirty, locked or
under-writeback ones stay; measured: nothing leaves while the file is mapped).
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING

from ..constants import PAGE_SHIFT, PAGE_SIZE
from ..errors import syscall_error
from .readahead import ReadaheadControl, force_page_cache_ra
from .truncate import invalidate_mapping_pages

if TYPE_CHECKING:
    from ..fs.file import File
    from ..kernel.task import Task

LLONG_MAX = (1 << 63) - 1
U64 = (1 << 64) - 1


def generic_fadvise(task: Task, f: File, offset: int, length: int, advice: int) -> None:
    """Mirrors generic_fadvise(): EINVAL for a negative length or an unknown advice."""
    from ..fs.file import FMODE_NOREUSE, FMODE_RANDOM
    from ..fs.open import bdi_ra_pages
    from .page_writeback import write_inode_now

    m = task.machine
    if length < 0:
        raise syscall_error(errno.EINVAL, "posix_fadvise: negative length")
    endbyte = (offset + length) & U64  # (u64)offset + (u64)len: wraps for a negative offset
    endbyte = LLONG_MAX if not length or endbyte < length else endbyte - 1
    if advice == os.POSIX_FADV_NORMAL:
        f.f_ra.ra_pages = bdi_ra_pages(m)
        f.f_mode &= ~(FMODE_RANDOM | FMODE_NOREUSE)
    elif advice == os.POSIX_FADV_RANDOM:
        f.f_mode |= FMODE_RANDOM
    elif advice == os.POSIX_FADV_SEQUENTIAL:
        f.f_ra.ra_pages = bdi_ra_pages(m) * 2
        f.f_mode &= ~FMODE_RANDOM
    elif advice == os.POSIX_FADV_WILLNEED:
        start = (offset >> PAGE_SHIFT) & U64  # pgoff_t: a negative offset is an index past any file
        nr = ((endbyte >> PAGE_SHIFT) - start + 1) & U64 or U64
        ractl = ReadaheadControl(mapping=f.mapping, ra=f.f_ra, index=start, task=task)
        force_page_cache_ra(m, ractl, nr, f.io_pages)
    elif advice == os.POSIX_FADV_NOREUSE:
        f.f_mode |= FMODE_NOREUSE
    elif advice == os.POSIX_FADV_DONTNEED:
        write_inode_now(m, f.inode, sync=False, task=task)  # __filemap_fdatawrite_range(WB_SYNC_NONE)
        start = ((offset + PAGE_SIZE - 1) >> PAGE_SHIFT) & U64
        end = endbyte >> PAGE_SHIFT
        if endbyte & (PAGE_SIZE - 1) != PAGE_SIZE - 1:
            if end == 0:
                return
            end -= 1
        if end >= start:
            invalidate_mapping_pages(m, f.mapping, start, end)
    else:
        raise syscall_error(errno.EINVAL, f"posix_fadvise: advice {advice}")
