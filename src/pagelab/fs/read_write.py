"""read(), pread(), write(), pwrite() and lseek() on regular files, through the page cache.

Mirrors fs/read_write.c (ksys_read(), ksys_pread64(), ksys_write(), ksys_pwrite64(), ksys_lseek() with
SEEK_DATA / SEEK_HOLE) over mm/filemap.c: filemap_read() -> filemap_get_pages() (filemap_get_read_batch(),
page_cache_sync_ra() on a miss, page_cache_async_ra() on a PG_readahead folio, waiting for a folio
under I/O) and generic_perform_write() with ext4_write_begin()'s folio sizes. A read copies out of the
cache and never faults the file's pages into any mapping; /proc/PID/io counts rchar/wchar and syscr/syscw,
the block layer read_bytes.

Simplified: the copy to or from user memory is not modelled as accesses to a user buffer (the Process
API has none: see its read()), its CPU time is charged at a flat rate per page; no O_DIRECT, no
O_APPEND, no balance_dirty_pages() throttling of writers.
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING

import numpy as np

from ..constants import PAGE_SHIFT, PAGE_SIZE
from ..errors import syscall_error
from ..hw.cost import COPY_PAGE_NS, SYSCALL_NS
from ..hw.physmem import PG
from ..kernel.task import account_system_time, io_schedule
from ..mm.filemap import (
    cached_folios,
    filemap_add_folio,
    filemap_get_folio,
    filemap_read_folios,
    folio_end_read,
    folio_nr,
    folio_wait_locked,
)
from ..mm.page_alloc import folio_alloc
from ..mm.page_writeback import folio_mark_dirty
from ..mm.readahead import ReadaheadControl, page_cache_async_ra, page_cache_sync_ra
from .ext4 import S_MAXBYTES, write_begin_folio
from .file import FMODE_RANDOM, FMODE_READ, FMODE_WRITE, File

if TYPE_CHECKING:
    from ..kernel.task import Task

MAX_RW_COUNT = 0x7FFFF000  # INT_MAX & PAGE_MASK: the most one read()/write() moves (include/linux/fs.h)
SEEK_DATA, SEEK_HOLE = 3, 4
LLONG_MAX = (1 << 63) - 1


def _ractl(task: Task, f: File, index: int) -> ReadaheadControl:
    return ReadaheadControl(mapping=f.mapping, ra=f.f_ra, index=index, random=bool(f.f_mode & FMODE_RANDOM),
                            task=task)


def filemap_get_read_batch(f: File, index: int, last: int) -> list[tuple[int, int]]:
    """Mirrors filemap_get_read_batch(): the cached folios from ``index`` on, contiguous, up to ``last``,
    stopping after one that is not uptodate or carries PG_readahead."""
    m = f.mapping.machine
    out: list[tuple[int, int]] = []
    expect = index
    for first, head in cached_folios(f.mapping, index, last + 1):
        if first > expect:
            break
        out.append((first, head))
        flags = int(m.frames.flags[head])
        if not flags & PG.UPTODATE or flags & PG.READAHEAD:
            break
        expect = first + folio_nr(m, head)
    return out


def filemap_get_pages(task: Task, f: File, pos: int, count: int) -> list[tuple[int, int]]:
    """Mirrors filemap_get_pages(): the uptodate folios holding [pos, pos + count), reading and reading
    ahead as needed; the task sleeps on a folio under I/O."""
    m = task.machine
    index = pos >> PAGE_SHIFT
    last_index = (pos + count + PAGE_SIZE - 1) >> PAGE_SHIFT
    batch = filemap_get_read_batch(f, index, last_index - 1)
    if not batch:
        page_cache_sync_ra(m, _ractl(task, f, index), last_index - index, f.io_pages)
        batch = filemap_get_read_batch(f, index, last_index - 1)
    if not batch:  # filemap_create_folio(): readahead made nothing (no memory, or disabled)
        folio = folio_alloc(m, 0, PG.LOCKED)
        if folio < 0:
            raise syscall_error(errno.ENOMEM, "read: no memory for the page cache")
        filemap_add_folio(m, f.mapping, folio, index)
        filemap_read_folios(f.mapping, [(index, folio)], task)
        batch = [(index, folio)]
    first, head = batch[-1]
    if m.frames.flags[head] & PG.READAHEAD:  # filemap_readahead()
        page_cache_async_ra(m, _ractl(task, f, first), head, last_index - first, f.io_pages)
    wait = folio_wait_locked(m, f.mapping, head)  # filemap_update_page()
    if wait is not None:
        io_schedule(task, wait)
    return batch


def filemap_read(task: Task, f: File, pos: int, count: int) -> int:
    """Mirrors filemap_read(): copy up to ``count`` bytes from ``pos`` (not past EOF) out of the cache;
    returns the bytes read (a short count if an error, ENOMEM, comes after some bytes were read).
    ra->prev_pos ends at the position after the last byte."""
    inode = f.inode
    done = 0
    count = min(count, MAX_RW_COUNT)
    while done < count and pos < inode.i_size:
        try:
            batch = filemap_get_pages(task, f, pos, count - done)
        except OSError:
            if not done:
                raise
            break  # "return already_read ? already_read : error": a short read, the error is lost
        m = task.machine
        for first, head in batch:
            end = min((first + folio_nr(m, head)) << PAGE_SHIFT, pos + count - done, inode.i_size)
            if end <= pos or not m.frames.flags[head] & PG.UPTODATE:
                break
            pages = ((end - 1) >> PAGE_SHIFT) - (pos >> PAGE_SHIFT) + 1
            account_system_time(task, m.cost.cycles(COPY_PAGE_NS * pages))
            done += end - pos
            pos = end
    f.f_ra.prev_pos = pos
    return done


def generic_perform_write(task: Task, f: File, pos: int, data: bytes) -> int:
    """Mirrors generic_perform_write() with ext4_write_begin() / ext4_write_end(): for each chunk, the
    folio that caches it (a new one of write_begin_order() if none; read first if the write covers
    it partly and it holds data on the disk), the bytes copied in, the folio dirtied, i_size moved."""
    m = task.machine
    inode = f.inode
    mapping = f.mapping
    written = 0
    while written < len(data):
        index = (pos + written) >> PAGE_SHIFT
        head = filemap_get_folio(mapping, index)
        if head < 0:
            head = write_begin_folio(m, mapping, index,
                                     len(data) - written + ((pos + written) & (PAGE_SIZE - 1)), PG.LOCKED)
            if head < 0:
                break
            first = index
            order = int(m.frames.order[head]) if m.frames.flags[head] & PG.HEAD else 0
            at = pos + written
            if at <= first << PAGE_SHIFT and at + len(data) - written >= (first + (1 << order)) << PAGE_SHIFT \
                    or first << PAGE_SHIFT >= inode.i_size:
                folio_end_read(m, mapping, head)  # the write covers it all (or it is past EOF): nothing to read
            else:
                filemap_read_folios(mapping, [(first, head)], task)  # ext4_block_write_begin(): read it first
        wait = folio_wait_locked(m, mapping, head)
        if wait is not None:
            io_schedule(task, wait)
        first = int(m.frames.index[head])
        folio_end = (first + folio_nr(m, head)) << PAGE_SHIFT
        chunk = data[written:written + folio_end - (pos + written)]
        _copy_into_folio(task, head, first, pos + written, chunk)
        folio_mark_dirty(m, head)
        written += len(chunk)
        if pos + written > inode.i_size:
            inode.i_size = pos + written
    return written


def _copy_into_folio(task: Task, head: int, first: int, pos: int, chunk: bytes) -> None:
    """copy_page_from_iter_atomic(): ``chunk`` lands at file position ``pos`` in the folio at ``first``."""
    m = task.machine
    frames = m.frames
    src = np.frombuffer(chunk, dtype=np.uint8)
    off = 0
    while off < len(src):
        page = (pos + off) >> PAGE_SHIFT
        in_page = (pos + off) & (PAGE_SIZE - 1)
        n = min(PAGE_SIZE - in_page, len(src) - off)
        pfn = head + page - first
        piece = src[off:off + n]
        if piece.any() or frames.page_bytes(pfn) is not None:
            data = frames.page_bytes(pfn)
            data = np.zeros(PAGE_SIZE, dtype=np.uint8) if data is None else data
            data[in_page:in_page + n] = piece
            frames.set_page_bytes(pfn, data)
        off += n
    account_system_time(task, m.cost.cycles(COPY_PAGE_NS * ((len(src) + PAGE_SIZE - 1) // PAGE_SIZE)))


def rw_verify_area(pos: int, count: int) -> None:
    """Mirrors rw_verify_area(): EINVAL when the position plus the count overflows loff_t (a negative
    position was refused already, by ksys_pread64()/ksys_pwrite64(), before the descriptor was looked up)."""
    if pos + count > LLONG_MAX:
        raise syscall_error(errno.EINVAL, "read/write: position + count overflows")


def ksys_read(task: Task, fd: int, count: int, pos: int | None) -> int:
    """Mirrors ksys_read() / ksys_pread64() -> vfs_read(): EINVAL for a negative pread offset (before the
    descriptor), EBADF unless open for reading, EINVAL past loff_t (rw_verify_area()), EISDIR on a
    directory; reads at ``pos`` (pread) or the file position (read, which then moves on), nothing at or
    past s_maxbytes."""
    if pos is not None and pos < 0:
        raise syscall_error(errno.EINVAL, "pread: negative offset")
    f = task.files.fget(fd)
    if not f.f_mode & FMODE_READ:
        raise syscall_error(errno.EBADF, f"read: fd {fd} is not open for reading")
    at = f.f_pos if pos is None else pos
    rw_verify_area(at, count)
    if f.inode.is_dir:
        raise syscall_error(errno.EISDIR, f"read: fd {fd} is a directory")
    account_system_time(task, task.machine.cost.cycles(SYSCALL_NS))
    n = filemap_read(task, f, at, count) if at < S_MAXBYTES else 0
    if pos is None:
        f.f_pos += n
    task.ioac_rchar += n
    task.ioac_syscr += 1
    return n


def ksys_write(task: Task, fd: int, data: bytes, pos: int | None) -> int:
    """Mirrors ksys_write() / ksys_pwrite64() -> vfs_write() -> ext4_file_write_iter(): EINVAL for a
    negative pwrite offset (before the descriptor), EBADF unless open for writing, EINVAL past loff_t;
    O_APPEND writes at the end, pwrite too (generic_write_checks_count(), the bug pwrite(2) documents);
    EFBIG at or past s_maxbytes, and a write reaching it is cut short (generic_write_check_limits())."""
    if pos is not None and pos < 0:
        raise syscall_error(errno.EINVAL, "pwrite: negative offset")
    f = task.files.fget(fd)
    if not f.f_mode & FMODE_WRITE:
        raise syscall_error(errno.EBADF, f"write: fd {fd} is not open for writing")
    at = f.f_pos if pos is None else pos
    rw_verify_area(at, len(data))
    account_system_time(task, task.machine.cost.cycles(SYSCALL_NS))
    if f.f_flags & os.O_APPEND:
        at = f.inode.i_size
    if not data:
        return 0
    if at >= S_MAXBYTES:
        raise syscall_error(errno.EFBIG, "write: at or past the largest file size (s_maxbytes)")
    data = data[:min(MAX_RW_COUNT, S_MAXBYTES - at)]
    task.machine.fs.reserve(f.inode, (at + len(data) + PAGE_SIZE - 1) >> PAGE_SHIFT)
    n = generic_perform_write(task, f, at, data)
    if pos is None:
        f.f_pos = at + n
    task.ioac_wchar += n
    task.ioac_syscw += 1
    return n


def ksys_lseek(task: Task, fd: int, offset: int, whence: int) -> int:
    """Mirrors ksys_lseek() -> ext4_llseek() / ext4_dir_llseek() -> generic_file_llseek_size(): SEEK_SET,
    SEEK_CUR, SEEK_END; SEEK_DATA / SEEK_HOLE over the file's holes (ENXIO at or past EOF); EINVAL for
    another whence, a negative result or one past the largest size (s_maxbytes for a file; a directory's
    is EXT4_HTREE_EOF_64BIT, which is also its "end")."""
    f = task.files.fget(fd)
    inode = f.inode
    maxsize, eof = (LLONG_MAX, LLONG_MAX) if inode.is_dir else (S_MAXBYTES, inode.i_size)
    if whence == os.SEEK_SET:
        new = offset
    elif whence == os.SEEK_CUR:
        if offset == 0:
            return f.f_pos  # "position-querying operation": no checks
        new = f.f_pos + offset
    elif whence == os.SEEK_END:
        new = eof + offset
    elif whence in (SEEK_DATA, SEEK_HOLE):
        if offset < 0 or offset >= eof:
            raise syscall_error(errno.ENXIO, "lseek: offset at or past the end of the file")
        if inode.is_dir:
            new = offset if whence == SEEK_DATA else eof
        else:
            new = _seek_data_hole(f, offset, whence == SEEK_DATA)
    else:
        raise syscall_error(errno.EINVAL, f"lseek: whence {whence}")
    if new < 0 or new > maxsize:  # vfs_setpos()
        raise syscall_error(errno.EINVAL, "lseek: position negative or past the largest file size")
    f.f_pos = new
    return new


def _seek_data_hole(f: File, offset: int, data: bool) -> int:
    """The next byte >= ``offset`` in data (SEEK_DATA; ENXIO if none) or in a hole (SEEK_HOLE; EOF if none).

    Mirrors ext4_llseek() -> iomap_seek_data()/iomap_seek_hole() over ext4_iomap_report_ops: a page is data
    if it has a block on disk, or if a dirty folio (or one under writeback) caches it (a delayed
    allocation: IOMAP_DELALLOC); a clean folio over a hole (read, or read ahead, as zeros) is a hole.
    Walks extents and folios, not pages (a 16 TiB sparse file costs as little as a small one)."""
    inode = f.inode
    m = f.mapping.machine
    busy = PG.DIRTY | PG.WRITEBACK
    end = inode.nr_pages
    page = offset >> PAGE_SHIFT

    def data_run(index: int) -> int:
        """The end of the run of data starting at ``index`` (``index`` itself if it is a hole)."""
        while index < end:
            ext = inode.extents
            k = ext.bisect_right(index) - 1
            if k >= 0 and int(ext.peekitem(k)[1]) > index:
                index = int(ext.peekitem(k)[1])
                continue
            head = filemap_get_folio(f.mapping, index)
            if head >= 0 and m.frames.flags[head] & busy:
                index = int(m.frames.index[head]) + folio_nr(m, head)
                continue
            return index
        return end

    if not data:
        hole = data_run(page)
        return inode.i_size if hole >= end else max(offset, hole << PAGE_SHIFT)
    candidates = [end]
    ext = inode.extents
    k = ext.bisect_right(page) - 1
    if k >= 0 and int(ext.peekitem(k)[1]) > page:
        candidates.append(page)
    elif k + 1 < len(ext):
        candidates.append(int(ext.peekitem(k + 1)[0]))
    for first, head in cached_folios(f.mapping, page, end):
        if m.frames.flags[head] & busy:
            candidates.append(max(first, page))
            break
    found = min(candidates)
    if found >= end:
        raise syscall_error(errno.ENXIO, "lseek(SEEK_DATA): no data past the offset")
    return max(offset, found << PAGE_SHIFT)
