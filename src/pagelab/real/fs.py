"""``m.fs`` of the real backend: files in a private directory of this host, named as the simulator names them.

Every path given to ``create`` or to ``RealProcess.open`` lives under a private root directory that the
real Machine makes in /var/tmp (ext4 on this host, like the fact sheet's files) and removes at close(): the
user's ``/data/db`` is ``<root>/data/db`` on the host. Paths are absolute (a relative one is EINVAL, as the
simulator's fs/ext4.py answers) and resolved as a process chrooted to that root would resolve them (mirrors
fs/namei.c under chroot(2)): ``..`` at the root stays at the root, so nothing outside it is ever reached.
Paths registered by ``import_host`` are used as they are (read-only use is expected).

``open`` leaves the resolution to the kernel (openat2() with RESOLVE_IN_ROOT from the root: ``f/x`` is
ENOTDIR, ``missing/..`` ENOENT, as the kernel answers). Simplified: the other calls (create, unlink, size,
exists, evict) resolve ``.`` and ``..`` lexically (``/a/file/../b`` is ``/a/b``); no symlink can exist under
the root (only ``create`` makes files there), so that answer differs only for such odd paths.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
import weakref
from typing import Any

import numpy as np

from .sysfs_io import evict_file

MiB = 1 << 20
S_MAXBYTES = (1 << 44) - 4096  # ext4_max_size() with 4 KiB blocks (fs/read_write.py has the same figure)
ROOT_PREFIX = "pagelab-fs-"
ROOT_PARENT = "/var/tmp"


def _text(path: Any) -> str:
    """A path argument as str: str, bytes or os.PathLike, else TypeError (as os.open)."""
    p = os.fspath(path)
    return os.fsdecode(p)


def resolve(path: str) -> tuple[str, bool]:
    """The user ``path`` as a path relative to the private root, chroot-style, and whether it must name a
    directory (a final ``/``, ``.`` or ``..``: the kernel then answers ENOTDIR for a regular file).

    "" -> ENOENT (as every path lookup of an empty name); a relative path -> EINVAL (the simulated
    process has no working directory); ``..`` above the root stays at the root.
    """
    if path == "":
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
    if not path.startswith("/"):
        raise OSError(errno.EINVAL, "the file API takes absolute paths only", path)
    parts: list[str] = []
    names = path.split("/")
    for name in names:
        if name in ("", "."):
            continue
        if name == "..":
            if parts:
                parts.pop()
            continue
        parts.append(name)
    must_be_dir = names[-1] in ("", ".", "..")
    return "/".join(parts), must_be_dir


def _check_size(value: object, what: str) -> int:
    """A file size: an integer (numpy's too), ValueError if negative (as the simulator's m.fs.create),
    EFBIG beyond off_t."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{what} must be an integer, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{what} must not be negative, got {value}")
    if value >= 1 << 63:
        raise OSError(errno.EFBIG, f"{what} {value} does not fit off_t")
    return int(value)


class RealFs:
    """The real backend's ``m.fs``: create, import_host, evict, unlink, size, exists (the file API contract
    of issue #8), on real files under a private root directory."""

    def __init__(self) -> None:
        self._root: str | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self.imported: dict[str, str] = {}  # user path (absolute, normalised) -> host path

    @property
    def root(self) -> str:
        """The private root directory, made on first use; removed by close() (or when this object is
        collected, or at interpreter exit, if close() never ran)."""
        if self._root is None:
            root = tempfile.mkdtemp(prefix=ROOT_PREFIX, dir=ROOT_PARENT)
            self._finalizer = weakref.finalize(self, shutil.rmtree, root, ignore_errors=True)
            self._root = root
        return self._root

    @property
    def closed(self) -> bool:
        return self._finalizer is not None and not self._finalizer.alive

    def close(self) -> None:
        """Remove the private root and everything in it (open descriptors of children keep their files)."""
        if self._finalizer is not None:
            self._finalizer()

    def host_path(self, path: Any) -> str:
        """Where the user's ``path`` is on this host: an imported path as it is, else under the root."""
        text = _text(path)
        rel, must_be_dir = resolve(text)
        key = "/" + rel
        if key in self.imported and not must_be_dir:
            return self.imported[key]
        if self.closed:
            raise OSError(errno.ENOENT, "the real Machine is closed: its files are gone", text)
        host = os.path.join(self.root, rel) if rel else self.root
        return host + "/" if must_be_dir else host

    def open_target(self, path: Any) -> tuple[str, str]:
        """What the child opens for the user's ``path``: ("", host path) for an imported file, else (the
        private root, the path as given), which the child opens with openat2(RESOLVE_IN_ROOT) so the kernel
        resolves every component itself, chroot-style. EINVAL for a relative path, ENOENT for ""."""
        text = _text(path)
        rel, must_be_dir = resolve(text)
        key = "/" + rel
        if key in self.imported and not must_be_dir:
            return "", self.imported[key]
        if self.closed:
            raise OSError(errno.ENOENT, "the real Machine is closed: its files are gone", text)
        return self.root, text

    def create(self, path: Any, size: int, *, content: bytes | None = None, written_in: int = MiB,
               sparse: bool = False, cached: bool = False) -> str:
        """Make a regular file of ``size`` bytes by write() calls of ``written_in`` bytes each (``content``:
        None = zero bytes, else the bytes repeated and cut to ``size``), then fsync; ``sparse`` makes it by
        ftruncate alone (one hole). Unless ``cached``, the file is then made cold (fsync +
        POSIX_FADV_DONTNEED, as the fact sheet's ``fc mk``). Parent directories are made as needed.
        EEXIST if the path exists, EISDIR if it is a directory, ENOTDIR if a parent is a file. Returns the
        normalised path (``/a/../b`` -> ``/b``)."""
        text = _text(path)
        size = _check_size(size, "size")
        if size > S_MAXBYTES:  # as write() would fail past ext4's largest file, before writing anything
            raise OSError(errno.EFBIG, f"size {size} is past ext4's largest file ({S_MAXBYTES} bytes)")
        if isinstance(written_in, bool) or not isinstance(written_in, int):
            raise TypeError(f"written_in must be an integer, not {type(written_in).__name__}")
        if written_in <= 0:
            raise ValueError(f"written_in must be positive, not {written_in}")
        if content is not None:
            if not isinstance(content, (bytes, bytearray, memoryview)):
                raise TypeError(f"content must be bytes or None, not {type(content).__name__}")
            content = bytes(content)
            if not content:
                raise TypeError("content must be non-empty bytes (None means zero bytes)")
            if sparse:
                raise ValueError("a sparse file has no content: give content or sparse=True, not both")
        rel, must_be_dir = resolve(text)
        host = self.host_path(text)
        if self.exists(text) and not os.path.isdir(host):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), text)
        if must_be_dir or os.path.isdir(host):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), text)
        try:
            os.makedirs(os.path.dirname(host), exist_ok=True)
        except FileExistsError:  # the parent itself is a file (a file higher up gives ENOTDIR already)
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), text) from None
        fd = os.open(host, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            if sparse:
                os.ftruncate(fd, size)
            else:
                _write_all(fd, size, content, written_in)
            os.fsync(fd)
            if not cached:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
        return "/" + rel

    def import_host(self, path: Any) -> str:
        """Register a regular file of this host under its own absolute path (used as it is). Returns that
        path. ENOENT if it does not exist, EINVAL for anything not a regular file (a directory too)."""
        host = os.path.abspath(_text(path))
        st = os.stat(host)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "only a regular file can be imported", host)
        self.imported[os.path.normpath(host)] = host
        return host

    def evict(self, path: Any) -> None:
        """fsync + POSIX_FADV_DONTNEED over the whole file: its clean, unmapped folios leave the cache."""
        evict_file(self.host_path(path))

    def unlink(self, path: Any) -> None:
        """unlink(2) under the root; an imported path is only forgotten (the host file is never removed)."""
        text = _text(path)
        rel, must_be_dir = resolve(text)
        if "/" + rel in self.imported and not must_be_dir:
            del self.imported["/" + rel]
            return
        os.unlink(self.host_path(text))

    def size(self, path: Any) -> int:
        return os.stat(self.host_path(path)).st_size

    def exists(self, path: Any) -> bool:
        try:
            os.stat(self.host_path(path))
        except (FileNotFoundError, NotADirectoryError):
            return False
        return True


def _write_all(fd: int, size: int, content: bytes | None, written_in: int) -> None:
    """write() the file from offset 0 in calls of ``written_in`` bytes (the last one shorter)."""
    if content is None:
        pattern, period = bytes(written_in), 0
    else:
        period = len(content)
        pattern = content * (-(-written_in // period) + 1)  # any written_in-byte window of the repetition
    done = 0
    while done < size:
        n = min(written_in, size - done)
        start = done % period if period else 0
        view = memoryview(pattern)[start:start + n]
        while view:
            view = view[os.write(fd, view):]
        done += n
