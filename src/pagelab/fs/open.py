"""open(), close() and ftruncate(): from a path to a struct file and a descriptor, and back.

Mirrors fs/open.c: do_sys_openat2() -> do_filp_open() (path lookup, O_CREAT / O_EXCL / O_TRUNC, the
access mode checks, O_DIRECTORY) -> fd_install(); close_fd(); do_ftruncate() -> do_truncate() ->
truncate_setsize() -> truncate_pagecache() (mm/truncate.c). The file's readahead window is the disk's
read_ahead_kb when it is opened (file_ra_state_init()).

Simplified: the caller is root (no permission bits are checked), no O_DIRECT, O_TMPFILE or O_PATH
semantics beyond the checks; a directory opens read-only onto an empty inode (no entries to read: read()
is EISDIR, as on ext4, and mmap() ENODEV).
"""

from __future__ import annotations

import errno
import os
import posixpath
from typing import TYPE_CHECKING

from ..block.bio import IO_PAGES
from ..constants import PAGE_SHIFT, PAGE_SIZE
from ..errors import NotModelled, syscall_error
from ..mm.filemap import filemap_get_folio, folio_file_page
from ..mm.truncate import truncate_inode_pages_range
from .ext4 import S_MAXBYTES
from .file import FMODE_READ, FMODE_WRITE, File

if TYPE_CHECKING:
    from ..kernel.task import Task
    from ..machine import Machine
    from .ext4 import Ext4
    from .inode import Inode

O_ACCMODE = 0o3
O_TMPFILE_BIT = 0o20000000  # __O_TMPFILE
O_DIRECT = 0o40000
O_PATH = 0o10000000

def bdi_ra_pages(m: Machine) -> int:
    """The disk's bdi->ra_pages: read_ahead_kb in pages."""
    return int(m.settings["/sys/block/vda/queue/read_ahead_kb"]) * 1024 >> PAGE_SHIFT


def do_sys_open(task: Task, path: str, flags: int, mode: int) -> int:
    """Mirrors do_sys_openat2(AT_FDCWD): open ``path`` with ``flags`` (os.O_*); returns the descriptor.

    ENOENT (no such file or directory on the way, no O_CREAT), EEXIST (O_CREAT | O_EXCL of an existing
    one), EISDIR (a directory opened for writing, or O_CREAT of a name ending in "/"), ENOTDIR (a file used
    as a directory), EINVAL (O_CREAT | O_DIRECTORY). Access mode 3 opens a descriptor that can neither
    read nor write, as Linux's does. NotModelled for O_DIRECT, O_TMPFILE and O_PATH.
    """
    m = task.machine
    fs: Ext4 = m.fs
    acc = flags & O_ACCMODE
    if flags & os.O_CREAT and flags & os.O_DIRECTORY and not flags & O_TMPFILE_BIT:  # build_open_flags(), 6.4+
        raise syscall_error(errno.EINVAL, "open: O_CREAT with O_DIRECTORY")
    if flags & (O_TMPFILE_BIT | O_DIRECT | O_PATH):  # reads past the page cache, unnamed files, path-only fds
        raise NotModelled("open: O_DIRECT, O_TMPFILE and O_PATH are not modelled")
    p, must_be_dir = path_walk(fs, path)
    if flags & os.O_CREAT and path.rstrip("/") != path and posixpath.basename(path.rstrip("/")) not in ("", ".", ".."):
        # open_last_lookups(): creating a name with trailing slashes is EISDIR, whatever is there
        raise syscall_error(errno.EISDIR, f"open: O_CREAT of {path!r}, a name ending in '/'")
    if must_be_dir and p in fs.inodes:
        raise syscall_error(errno.ENOTDIR, f"open: {p} is not a directory")
    if fs.is_dir(p):  # do_open() -> may_open(): a directory opens read-only, O_CREAT on it is EISDIR
        if acc != os.O_RDONLY or flags & (os.O_CREAT | os.O_TRUNC):
            raise syscall_error(errno.EISDIR, f"open: {p} is a directory")
        inode = fs.dir_inode(p)
    elif flags & os.O_DIRECTORY or must_be_dir:
        if p in fs.inodes:
            raise syscall_error(errno.ENOTDIR, f"open: {p} is not a directory")
        if flags & os.O_CREAT and not flags & os.O_DIRECTORY:
            raise syscall_error(errno.EISDIR, f"open: {p}: O_CREAT of a name ending in '/'")
        raise syscall_error(errno.ENOENT, f"open: {p}: no such directory")
    else:
        inode = _open_regular(fs, p, flags)
    # OPEN_FMODE(): access mode 3 gives neither FMODE_READ nor FMODE_WRITE (ACC_MODE() asks for both
    # permissions, which root has): the descriptor can do neither read() nor write() nor mmap()
    f_mode = {os.O_RDONLY: FMODE_READ, os.O_WRONLY: FMODE_WRITE, os.O_RDWR: FMODE_READ | FMODE_WRITE}.get(acc, 0)
    f = File(inode, p, flags, f_mode, bdi_ra_pages(m), IO_PAGES)
    fd = task.files.alloc_fd(f)
    if flags & os.O_TRUNC and not inode.is_dir:  # handle_truncate(): O_TRUNC asks MAY_WRITE, not FMODE_WRITE
        do_truncate(m, f, 0)
    return fd


def path_walk(fs: Ext4, path: str) -> tuple[str, bool]:
    """Mirrors link_path_walk() over the simulated namespace: the normalised path, and whether it must be
    a directory (it ends in "/", "/." or "/.."). ENOENT for a missing component, ENOTDIR for a file used
    as a directory ("f/x", "f/..", "f/"), EINVAL for a relative path, ENOENT for "" ."""
    if path == "":
        raise syscall_error(errno.ENOENT, "open: empty path")
    fs.normpath(path)  # EINVAL for a relative path
    parts = path.split("/")[1:]
    must_be_dir = parts[-1] in ("", ".", "..")
    last = len(parts) - 1
    while last > 0 and parts[last] == "":  # trailing slashes belong to the final component
        last -= 1
    cur = "/"
    for i, part in enumerate(parts):
        if part in ("", "."):
            continue
        if cur in fs.inodes:  # a component after a regular file
            raise syscall_error(errno.ENOTDIR, f"open: {cur} is not a directory")
        if part == "..":
            cur = posixpath.dirname(cur) or "/"
            continue
        cur = posixpath.join(cur, part)
        if i < last and cur not in fs.inodes and not fs.is_dir(cur):
            raise syscall_error(errno.ENOENT, f"open: {cur}: no such directory")
    return cur, must_be_dir


def _open_regular(fs: Ext4, p: str, flags: int) -> Inode:
    """The regular file at ``p``: looked up, or made by O_CREAT (ENOENT without it, or when the parent
    directory does not exist; ENOTDIR when a parent is a file; EEXIST with O_EXCL)."""
    inode = fs.inodes.get(p)
    if inode is None:
        if not flags & os.O_CREAT:
            raise syscall_error(errno.ENOENT, f"open: {p}: no such file")
        _p, inode = fs.new_inode(p)
    elif flags & os.O_CREAT and flags & os.O_EXCL:
        raise syscall_error(errno.EEXIST, f"open: {p} exists (O_CREAT | O_EXCL)")
    return inode


def do_truncate(m: Machine, f: File, length: int) -> None:
    """Mirrors do_truncate() -> ext4_setattr() -> truncate_setsize() + truncate_pagecache(): i_size
    becomes ``length``; mappings lose the pages past it (unmap_mapping_range()), the cache drops them,
    and the disk blocks past it become holes. Growing only moves i_size (the new part is a hole)."""
    from ..mm.memory import unmap_mapping_range

    inode = f.inode
    if length > S_MAXBYTES:  # inode_newsize_ok()
        raise syscall_error(errno.EFBIG, "truncate: past the largest file size (s_maxbytes)")
    old = inode.i_size
    inode.i_size = length
    if length >= old:
        return
    keep = (length + PAGE_SIZE - 1) >> PAGE_SHIFT
    unmap_mapping_range(m, f.mapping, keep)
    truncate_inode_pages_range(m, f.mapping, keep)
    inode.punch_from(keep)
    inode.truncate_data(length)
    if length & (PAGE_SIZE - 1):  # the tail of the last page reads as zeros, on the disk and in the cache
        tail = length & (PAGE_SIZE - 1)
        head = filemap_get_folio(f.mapping, keep - 1)  # truncate_inode_partial_folio(): folio_zero_range()
        if head >= 0:
            pfn = folio_file_page(m, head, keep - 1)
            data = m.frames.page_bytes(pfn)
            if data is not None:
                data[tail:] = 0
                m.frames.set_page_bytes(pfn, data)


def do_ftruncate(task: Task, fd: int, length: int) -> None:
    """Mirrors do_sys_ftruncate(): EINVAL for a negative length or a descriptor not open for writing
    (measured: EINVAL, not EBADF, on an O_RDONLY descriptor); EBADF for a closed one."""
    f = task.files.fget(fd)
    if length < 0:
        raise syscall_error(errno.EINVAL, "ftruncate: negative length")
    if not f.f_mode & FMODE_WRITE:
        raise syscall_error(errno.EINVAL, f"ftruncate: fd {fd} is not open for writing")
    do_truncate(task.machine, f, length)
