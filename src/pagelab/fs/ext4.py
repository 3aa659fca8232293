"""The ext4 filesystem on the simulated disk: its namespace (``m.fs``), its address_space_operations
and its file vm_ops.

Mirrors, for what decides page-cache behaviour: fs/ext4/inode.c (ext4_aops: ->readahead /
->read_folio through fs/ext4/readpage.c ext4_mpage_readpages(), which reads a hole by zeroing the folio
with no I/O and submits one bio per run of contiguous blocks; ext4_page_mkwrite(), which allocates the
blocks of a hole and dirties the folio; ext4_write_begin()'s folio size, which is the write's length
rounded down to a power of two, aligned to the index, up to the mapping's maximum),
fs/ext4/file.c (ext4_file_mmap(): ext4_file_vm_ops = filemap_fault, filemap_map_pages,
ext4_page_mkwrite), and ext4's large folios (mapping_set_large_folios(): orders up to
MAX_PAGECACHE_ORDER, measured on this host).

``m.fs`` is the filesystem's namespace: absolute paths to inodes, directories implied by the files in
them. Files come from ``create()`` (written through write(): say how, it decides the folio sizes the
cache keeps, docs/facts/files_page_cache.md item 1) or from ``import_host()`` (a real file's size and
contents, read from the host file when the simulated disk reads it).

Simplified: one filesystem, one disk; no journal, no delayed allocation (blocks are reserved when the
file is created); directories are names only (no directory inodes to read).
"""

from __future__ import annotations

import errno
import os
import posixpath
from typing import TYPE_CHECKING

import numpy as np

from ..block.bio import IO_PAGES, submit_bio
from ..constants import PAGE_SHIFT, PAGE_SIZE, MiB
from ..errors import syscall_error
from ..hw.physmem import PG
from ..mm.filemap import (
    MAX_PAGECACHE_ORDER,
    AddressSpace,
    filemap_add_folio,
    filemap_get_folio,
    filemap_range_has_folio,
    folio_end_read,
    folio_nr,
)
from ..mm.filemap_fault import filemap_fault, filemap_map_pages
from ..mm.page_alloc import folio_alloc
from ..mm.page_writeback import folio_mark_dirty
from ..mm.truncate import invalidate_mapping_pages
from ..mm.types import VmFault, VmFaultResult, VmOperations
from .inode import S_IFDIR, S_IFREG, Inode

if TYPE_CHECKING:
    from ..kernel.task import Task
    from ..machine import Machine
    from ..mm.types import Vma


PATH_MAX = 4096  # include/uapi/linux/limits.h, counting the terminating NUL
NAME_MAX = 255
S_MAXBYTES = (1 << 44) - PAGE_SIZE  # ext4_max_size() with 4 KiB blocks (as fs/read_write.py)


class Ext4Aops:
    """Mirrors ext4_aops (fs/ext4/inode.c) for one filesystem: ->readahead and ->read_folio."""

    name = "ext4_aops"

    def __init__(self, fs: Ext4) -> None:
        self.fs = fs

    def readahead(self, mapping: AddressSpace, folios: list[tuple[int, int]], task: Task | None) -> None:
        """Mirrors ext4_readahead() -> ext4_mpage_readpages(): the locked, new folios ``folios``
        ((index, head) in index order) are read: a folio wholly in a hole (or past EOF) is zeroed and
        finished at once; the others go to the disk as one bio per run of contiguous folios, each
        finished when its bio completes."""
        m = self.fs.machine
        inode: Inode = mapping.host
        run: list[tuple[int, int]] = []
        for index, folio in folios:
            nr = folio_nr(m, folio)
            if all(inode.is_hole(i) for i in range(index, min(index + nr, inode.nr_pages))):
                folio_end_read(m, mapping, folio)  # folio_zero_segment() + folio_end_read(): no I/O
                continue
            if run and run[-1][0] + folio_nr(m, run[-1][1]) != index:
                self._submit(mapping, run, task)
                run = []
            run.append((index, folio))
        if run:
            self._submit(mapping, run, task)

    read_folio = readahead

    def _submit(self, mapping: AddressSpace, run: list[tuple[int, int]], task: Task | None) -> None:
        """One bio for a run of contiguous folios; its completion fills and finishes them."""
        m = self.fs.machine
        inode: Inode = mapping.host
        first = run[0][0]
        nr = run[-1][0] + folio_nr(m, run[-1][1]) - first

        def end_io() -> None:  # mpage_end_io() -> folio_end_read() for each folio of the bio
            for index, folio in run:
                if int(m.frames.mapping[folio]) == mapping.id:  # not truncated meanwhile
                    self.fs.fill_folio(inode, index, folio)
                    folio_end_read(m, mapping, folio)

        event = submit_bio(m, task, inode.block_of(first), nr, False, end_io)
        for _index, folio in run:
            mapping.io[folio] = event


def ext4_page_mkwrite(vmf: VmFault) -> int:
    """Mirrors ext4_page_mkwrite(): a page of a shared mapping is about to be written: SIGBUS if it lies
    past EOF now; the blocks of a hole are allocated; the folio is dirtied (and waits for writeback to
    finish, folio_wait_stable(): not modelled, writeback completes at once for a waiting writer)."""
    vma = vmf.vma
    m = vma.mm.machine
    f = vma.vm_file
    if f is None or getattr(f, "inode", None) is None:
        return VmFaultResult.SIGBUS
    inode: Inode = f.inode  # type: ignore[union-attr]
    if vmf.pgoff >= inode.nr_pages:
        return VmFaultResult.SIGBUS
    folio = int(m.frames.compound_head(vmf.page))
    first = int(m.frames.index[folio])
    inode.allocate(first, first + folio_nr(m, folio))
    folio_mark_dirty(m, folio)
    return VmFaultResult.NONE


# Mirrors ext4_file_vm_ops (fs/ext4/file.c): a constant, as the kernel's is.
EXT4_FILE_VM_OPS = VmOperations(name="ext4_file_vm_ops", fault=filemap_fault, map_pages=filemap_map_pages,
                                page_mkwrite=ext4_page_mkwrite)


def ext4_file_mmap(vma: Vma) -> None:
    """Mirrors ext4_file_mmap(): the VMA's faults go through the page cache (ext4_file_vm_ops)."""
    vma.vm_ops = EXT4_FILE_VM_OPS


def write_begin_order(index: int, length: int, max_order: int) -> int:
    """The folio order ext4_write_begin() asks for (__filemap_get_folio(FGP_WRITEBEGIN |
    fgf_set_order(len))): ilog2 of the bytes left in the write, in pages, capped at the mapping's
    maximum, lowered until ``index`` is aligned to it."""
    pages = max(length >> PAGE_SHIFT, 1)
    order = min(pages.bit_length() - 1, max_order)
    if index & ((1 << order) - 1):
        order = (index & -index).bit_length() - 1  # __ffs(index)
    return order


def write_begin_folio(m: Machine, mapping: AddressSpace, index: int, length: int, flags: int) -> int:
    """Mirrors __filemap_get_folio(FGP_WRITEBEGIN | fgf_set_order(len)) as ext4_write_begin() calls it: the
    folio caching ``index`` if there is one, else a new folio (page flags ``flags``) starting at ``index``,
    of write_begin_order() or, while part of that range is cached already (filemap_add_folio()'s -EEXIST)
    or no free block of that order is left, of the next lower order. Returns its head PFN, -1 if not even
    an order-0 folio can be had."""
    head = filemap_get_folio(mapping, index)
    if head >= 0:
        return head
    order = write_begin_order(index, length, mapping.max_order)
    while True:
        if not filemap_range_has_folio(mapping, index, index + (1 << order)):
            head = folio_alloc(m, order, flags)
            if head >= 0:
                filemap_add_folio(m, mapping, head, index)
                return head
        if order == 0:
            return -1
        order -= 1


class Ext4:
    """One ext4 filesystem on the machine's disk (``m.fs``): paths to inodes, and the disk's free space.

    Errors are OSError with Linux's errno (ENOENT, EEXIST, EISDIR, ENOTDIR, EINVAL for a relative path).
    """

    def __init__(self, m: Machine) -> None:
        self.machine = m
        self.aops = Ext4Aops(self)
        self.inodes: dict[str, Inode] = {}  # regular files
        self.dirs: dict[str, Inode] = {}  # directories opened so far
        self.next_block = 0  # the disk's next free page: files get contiguous extents in creation order

    # --- paths -----------------------------------------------------------------------------------
    @staticmethod
    def normpath(path: object) -> str:
        """An absolute path, "." and ".." resolved ("/.." is "/"); EINVAL-style errors for anything else."""
        if not isinstance(path, (str, bytes, os.PathLike)):
            raise TypeError(f"a path must be str, bytes or os.PathLike, got {type(path).__name__}")
        text = os.fsdecode(os.fspath(path))
        if "\0" in text:
            raise ValueError("embedded null byte in path")
        if text == "":
            raise syscall_error(errno.ENOENT, "an empty path names no file")
        if len(os.fsencode(text)) >= PATH_MAX or any(len(os.fsencode(n)) > NAME_MAX for n in text.split("/")):
            raise syscall_error(errno.ENAMETOOLONG, f"{text[:40]!r}...: name or path too long")
        if not text.startswith("/"):
            raise syscall_error(errno.EINVAL, f"{text!r}: the simulated filesystem takes absolute paths only")
        out = posixpath.normpath(text)
        return "/" + out.lstrip("/")

    def lookup(self, path: object) -> Inode:
        """The inode at ``path``; ENOENT if there is none, EISDIR-free (directories have no inode here)."""
        p = self.normpath(path)
        inode = self.inodes.get(p)
        if inode is None:
            raise syscall_error(errno.ENOENT, f"{p}: no such file")
        return inode

    def is_dir(self, p: str) -> bool:
        """Whether the normalised path ``p`` is a directory: the root, or a prefix of some file's path."""
        prefix = p.rstrip("/") + "/"
        return p == "/" or any(name.startswith(prefix) for name in self.inodes)

    def dir_inode(self, p: str) -> Inode:
        """The inode of directory ``p`` (made on first open: directories are implied by their files)."""
        inode = self.dirs.get(p)
        if inode is None:
            inode = Inode(self.machine.next_inode(), S_IFDIR)
            inode.i_size = PAGE_SIZE  # ext4's smallest directory
            inode.i_mapping = AddressSpace(self.machine, inode, None, 0)
            self.dirs[p] = inode
        return inode

    def new_inode(self, path: object) -> tuple[str, Inode]:
        """A new empty regular file at ``path`` (EEXIST if taken, EISDIR if a directory, ENOTDIR if a
        parent is a file); its page cache takes folios up to MAX_PAGECACHE_ORDER."""
        p = self.normpath(path)
        if p in self.inodes:
            raise syscall_error(errno.EEXIST, f"{p}: file exists")
        if self.is_dir(p):
            raise syscall_error(errno.EISDIR, f"{p}: is a directory")
        parent = posixpath.dirname(p)
        while parent != "/":
            if parent in self.inodes:
                raise syscall_error(errno.ENOTDIR, f"{parent}: not a directory")
            parent = posixpath.dirname(parent)
        m = self.machine
        inode = Inode(m.next_inode(), S_IFREG)
        inode.i_mapping = AddressSpace(m, inode, self.aops, MAX_PAGECACHE_ORDER)
        self.inodes[p] = inode
        return p, inode

    def reserve(self, inode: Inode, nr_pages: int) -> None:
        """Give ``inode`` an extent of at least ``nr_pages`` disk pages (a new one, if it outgrew its own)."""
        if nr_pages <= inode.disk_pages:
            return
        inode.disk_start = self.next_block
        inode.disk_pages = max(nr_pages, 1)
        self.next_block += inode.disk_pages + IO_PAGES  # a gap: two files are never one sequential run

    # --- the API ---------------------------------------------------------------------------------
    def create(self, path: object, size: int, *, content: bytes | None = None, written_in: int = MiB,
               sparse: bool = False, cached: bool = False) -> str:
        """Make a regular file of ``size`` bytes as a program writing it with write() calls of
        ``written_in`` bytes and then fsync() would (``content`` repeated to fill it, zeros by default);
        ``sparse``: with ftruncate() only, one hole. Unless ``cached``, the file is then evicted (as
        fsync + POSIX_FADV_DONTNEED), so the next reader finds it cold. Returns the normalised path."""
        size = _check_size(size)
        if size > S_MAXBYTES:  # write() stops at s_maxbytes, ftruncate() refuses (inode_newsize_ok())
            raise syscall_error(errno.EFBIG, f"create: {size} bytes is past ext4's largest file size")
        if isinstance(written_in, bool) or not isinstance(written_in, (int, np.integer)):
            raise TypeError(f"written_in must be an integer, not {type(written_in).__name__}")
        if written_in <= 0:
            raise ValueError(f"written_in must be a positive number of bytes, got {written_in!r}")
        written_in = int(written_in)
        if content is not None:
            if not isinstance(content, (bytes, bytearray, memoryview)) or not bytes(content):
                raise TypeError("content must be non-empty bytes (or None for zeros)")
            if sparse:
                raise ValueError("a sparse file has no content: give content or sparse=True, not both")
            content = bytes(content)
        text = os.fsdecode(os.fspath(path)) if isinstance(path, (str, bytes, os.PathLike)) else ""
        if text.endswith("/") or text.rsplit("/", 1)[-1] in (".", ".."):  # open(O_CREAT) of a directory name
            raise syscall_error(errno.EISDIR, f"{text}: is a directory")
        p, inode = self.new_inode(path)
        inode.i_size = size
        self.reserve(inode, inode.nr_pages)
        if not sparse:
            inode.allocate(0, inode.nr_pages)
            if content is not None and any(content):
                inode.content, inode.content_end = content, size
            if cached:
                self._cache_as_written(inode, written_in)
        return p

    def _cache_as_written(self, inode: Inode, written_in: int) -> None:
        """The clean, uptodate folios write() calls of ``written_in`` bytes leave behind after fsync."""
        m = self.machine
        mapping = inode.i_mapping
        assert mapping is not None
        size = inode.i_size
        pos = 0
        while pos < size:  # pos is always where one write() starts: a multiple of written_in
            end = min(pos + written_in, size)
            index = pos >> PAGE_SHIFT
            while index < (end + PAGE_SIZE - 1) >> PAGE_SHIFT:
                cached = filemap_get_folio(mapping, index) >= 0
                folio = write_begin_folio(m, mapping, index, end - (index << PAGE_SHIFT), PG.UPTODATE)
                if folio < 0:
                    return  # out of memory: the rest stays on disk only
                first = int(m.frames.index[folio])
                if not cached:
                    self.fill_folio(inode, first, folio)
                index = first + folio_nr(m, folio)
            # the writes that fall wholly inside the folio just used find it cached and add nothing
            pos = max(end, min(index << PAGE_SHIFT, size) // written_in * written_in)

    def import_host(self, path: object) -> str:
        """Make a file with the size of this host's file ``path`` (followed if a link), whose contents the
        simulated disk reads from it, page by page, when they are read. Returns the path."""
        host = os.fspath(path)  # type: ignore[call-overload]
        st = os.stat(host)
        if not os.path.isfile(host):
            raise syscall_error(errno.EINVAL, f"{host}: not a regular file")
        p, inode = self.new_inode(os.path.abspath(host))
        inode.i_size = st.st_size
        self.reserve(inode, inode.nr_pages)
        inode.allocate(0, inode.nr_pages)
        inode.host_path = host  # type: ignore[attr-defined]
        return p

    def fill_folio(self, inode: Inode, index: int, folio: int) -> None:
        """The folio's pages get the bytes the disk holds for pages [index, index + nr) (zeros past EOF)."""
        m = self.machine
        host = getattr(inode, "host_path", None)
        for i in range(folio_nr(m, folio)):
            page = index + i
            data = inode.page_data(page)
            if data is None and host is not None and page < inode.nr_pages:
                data = _read_host_page(host, page)
            if data is not None:
                m.frames.set_page_bytes(folio + i, data)

    def evict(self, path: object) -> None:
        """fsync() then POSIX_FADV_DONTNEED over the whole file: its clean, unmapped folios leave the cache."""
        inode = self.lookup(path)
        from ..mm.page_writeback import write_inode_now

        write_inode_now(self.machine, inode, sync=True)
        assert inode.i_mapping is not None
        invalidate_mapping_pages(self.machine, inode.i_mapping, 0, (1 << 62))

    def unlink(self, path: object) -> None:
        """Remove the name; the inode and its cache go once nothing holds it open or mapped."""
        p = self.normpath(path)
        inode = self.inodes.pop(p, None)
        if inode is None:
            raise syscall_error(errno.ENOENT, f"{p}: no such file")
        inode.i_nlink = 0
        if inode.i_count == 0:
            self.evict_inode(inode)

    def evict_inode(self, inode: Inode) -> None:
        """Mirrors evict() -> truncate_inode_pages_final(): an unlinked, unused inode's cache is freed."""
        from ..mm.truncate import truncate_inode_pages_range

        mapping = inode.i_mapping
        if mapping is not None:
            truncate_inode_pages_range(self.machine, mapping, 0)
            mapping.release()
            inode.i_mapping = None

    def size(self, path: object) -> int:
        return self.lookup(path).i_size

    def exists(self, path: object) -> bool:
        return self.normpath(path) in self.inodes


def _check_size(size: object) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
        raise TypeError(f"size must be a number of bytes (int), got {type(size).__name__} {size!r}")
    if size < 0:
        raise ValueError(f"size must not be negative, got {size}")
    return int(size)


def _read_host_page(host: str, page: int) -> np.ndarray | None:
    """Page ``page`` of the host file (None if it holds only zeros or cannot be read any more)."""
    try:
        with open(host, "rb") as f:
            f.seek(page * PAGE_SIZE)
            chunk = f.read(PAGE_SIZE)
    except OSError:
        return None
    data = np.zeros(PAGE_SIZE, dtype=np.uint8)
    data[:len(chunk)] = np.frombuffer(chunk, dtype=np.uint8)
    return data if data.any() else None
