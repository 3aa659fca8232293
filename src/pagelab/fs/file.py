"""Open files and file descriptors.

Mirrors struct file (include/linux/fs.h: f_mode, f_flags, f_pos, f_ra, f_mapping; get_file()/fput())
and the descriptor table (fs/file.c: struct files_struct, alloc_fd() giving the lowest free number,
fget() failing with EBADF, close_fd()). A mapping of a file holds the struct file (vma->vm_file), so
readahead state is shared between read() on the descriptor and faults on its mappings, as in Linux.

Simplified: no dup()/fork sharing of descriptors yet, no O_CLOEXEC semantics (there is no exec), no
file locks; RLIMIT_NOFILE is the default soft limit, 1024.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from ..errors import syscall_error
from ..mm.readahead import FileRaState

if TYPE_CHECKING:
    from ..mm.filemap import AddressSpace
    from ..mm.types import Vma
    from .inode import Inode

FMODE_READ = 0x1
FMODE_WRITE = 0x2
FMODE_RANDOM = 0x1000  # POSIX_FADV_RANDOM: readahead reads only what is asked (include/linux/fs.h)
FMODE_NOREUSE = 0x800000  # POSIX_FADV_NOREUSE
FIRST_FD = 3  # a new process holds 0, 1 and 2 (the real backend's child too)
NR_OPEN_DEFAULT = 1024  # RLIMIT_NOFILE's default soft limit (include/asm-generic/resource.h: INR_OPEN_CUR)


class File:
    """Mirrors struct file: an open file of ``inode`` through ``path``.

    ``f_count`` counts the references (the descriptor, and each VMA mapping it); the inode's page cache
    is ``mapping``; ``f_ra`` the readahead state, its window ``ra_pages`` copied from the disk's
    read_ahead_kb when the file was opened (file_ra_state_init()); ``io_pages`` the disk's largest
    request in pages (bdi->io_pages).
    """

    def __init__(self, inode: Inode, path: str, flags: int, f_mode: int, ra_pages: int, io_pages: int) -> None:
        if inode.i_mapping is None:
            raise ValueError(f"{path}: an inode without a page cache")
        self.inode = inode
        self.path = path
        self.f_flags = flags
        self.f_mode = f_mode
        self.f_pos = 0
        self.f_ra = FileRaState(ra_pages=ra_pages)
        self.io_pages = io_pages
        self.f_count = 0
        inode.i_count += 1

    @property
    def mapping(self) -> AddressSpace:
        mapping = self.inode.i_mapping
        assert mapping is not None
        return mapping

    @property
    def ino(self) -> int:
        return self.inode.i_ino

    @property
    def name(self) -> str:
        """What /proc/PID/maps prints for a mapping of it."""
        return self.path if self.inode.i_nlink else f"{self.path} (deleted)"

    def get(self, vma: Vma) -> None:
        """``vma`` maps the file: get_file() + vma_link_file()."""
        self.f_count += 1
        self.mapping.vma_link(vma)

    def put(self, vma: Vma) -> None:
        """``vma`` went away: unlink_file_vma() + fput()."""
        self.mapping.vma_unlink(vma)
        self.fput()

    def fput(self) -> None:
        """Mirrors fput(): drop a reference; the last one releases the inode's hold (__fput() -> dput() ->
        iput()), and iput_final() evicts an unlinked inode nothing holds any more (its cache is freed,
        dirty pages and all, as evict() -> truncate_inode_pages_final() does)."""
        self.f_count -= 1
        if self.f_count == 0:
            inode = self.inode
            inode.i_count -= 1
            if inode.i_count == 0 and inode.i_nlink == 0 and inode.i_mapping is not None:
                inode.i_mapping.machine.fs.evict_inode(inode)


class FdTable:
    """Mirrors struct files_struct: descriptor number -> File."""

    def __init__(self) -> None:
        self.fds: dict[int, File] = {}

    def alloc_fd(self, f: File) -> int:
        """Mirrors alloc_fd() + fd_install(): the lowest free descriptor from 3 (0, 1 and 2 are the process's
        standard input, output and error, which are no files here: EBADF); EMFILE past RLIMIT_NOFILE."""
        fd = FIRST_FD
        while fd in self.fds:
            fd += 1
        if fd >= NR_OPEN_DEFAULT:
            raise syscall_error(errno.EMFILE, "open: too many open files (RLIMIT_NOFILE)")
        f.f_count += 1
        self.fds[fd] = f
        return fd

    def fget(self, fd: int) -> File:
        """Mirrors fget(): the File open as ``fd``, or EBADF."""
        f = self.fds.get(fd)
        if f is None:
            raise syscall_error(errno.EBADF, f"fd {fd} is not open")
        return f

    def close_fd(self, fd: int) -> None:
        """Mirrors close_fd() -> filp_close(): EBADF if ``fd`` is not open."""
        f = self.fds.pop(fd, None)
        if f is None:
            raise syscall_error(errno.EBADF, f"close: fd {fd} is not open")
        f.fput()

    def close_all(self) -> None:
        """Mirrors exit_files(): every descriptor is closed."""
        for fd in sorted(self.fds):
            self.close_fd(fd)
