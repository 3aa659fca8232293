"""The one place in pagelab that may write a host tunable: save, write, and always restore.

Mirrors the discipline of damo and the kernel's own selftests (tools/testing/selftests/mm/thp_settings.c):
every value written is first read and saved; ``restore()`` writes the saved values back in reverse
order, and runs on normal exit, on an exception, and on SIGINT. ``dry_run`` logs what would be written
and touches nothing. Only the tunables of memory management may be written, and
``/proc/sys/vm/drop_caches`` only when the caller passes ``allow_drop_caches=True`` (a user's explicit flag).
"""

from __future__ import annotations

import atexit
import os
import signal
from pathlib import Path
from types import FrameType
from typing import Any

from ..errors import PagelabError

ALLOWED_PREFIXES = ("/sys/kernel/mm/transparent_hugepage/", "/sys/kernel/mm/ksm/", "/proc/sys/vm/")
DROP_CACHES = "/proc/sys/vm/drop_caches"


class HostWriteRefused(PagelabError):
    """A write pagelab will not make to the host."""


def _is_read_ahead(path: str) -> bool:
    parts = path.split("/")
    return len(parts) == 6 and path.startswith("/sys/block/") and parts[4:] == ["queue", "read_ahead_kb"]


class SysfsWriter:
    """Write host tunables for the length of a ``with`` block, then put every one of them back.

    ``root`` re-roots every path (tests point it at a fake tree); ``log`` lists each action taken.
    """

    def __init__(self, *, root: str | Path = "/", dry_run: bool = False, allow_drop_caches: bool = False) -> None:
        self.root = Path(root)
        self.dry_run = dry_run
        self.allow_drop_caches = allow_drop_caches
        self.saved: dict[str, str] = {}  # path -> original text, in the order first written
        self.log: list[str] = []
        self._old_sigint: Any = None
        self._active = False

    def _file(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def read(self, path: str) -> str:
        return self._file(path).read_text().strip()

    def check(self, path: str) -> None:
        if path == DROP_CACHES:
            if not self.allow_drop_caches:
                raise HostWriteRefused(f"{DROP_CACHES} is written only with an explicit flag (allow_drop_caches)")
            return
        if not (path.startswith(ALLOWED_PREFIXES) or _is_read_ahead(path)):
            raise HostWriteRefused(f"{path} is not a memory-management tunable pagelab may write")

    def write(self, path: str, value: str | int) -> None:
        """Save the current value (first time only), then write ``value`` (unless dry-run)."""
        self.check(path)
        text = str(value)
        if path != DROP_CACHES and path not in self.saved:
            self.saved[path] = _current_choice(self.read(path))
        self.log.append(f"{'would write' if self.dry_run else 'write'} {path} = {text}")
        if not self.dry_run:
            self._file(path).write_text(text + "\n")

    def restore(self) -> None:
        """Write every saved value back, last written first; runs once."""
        for path in reversed(list(self.saved)):
            self.log.append(f"{'would restore' if self.dry_run else 'restore'} {path} = {self.saved[path]}")
            if not self.dry_run:
                try:
                    self._file(path).write_text(self.saved[path] + "\n")
                except OSError as exc:
                    self.log.append(f"restore of {path} failed: {exc}")
        self.saved.clear()

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        self.restore()
        raise KeyboardInterrupt

    def __enter__(self) -> SysfsWriter:
        self._active = True
        atexit.register(self.restore)
        try:
            self._old_sigint = signal.signal(signal.SIGINT, self._on_sigint)
        except ValueError:  # not the main thread: atexit and __exit__ still restore
            self._old_sigint = None
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()
        atexit.unregister(self.restore)
        if self._old_sigint is not None:
            signal.signal(signal.SIGINT, self._old_sigint)
        self._active = False


def _current_choice(text: str) -> str:
    """``always [madvise] never`` -> ``madvise`` (what must be written back); plain values unchanged."""
    if "[" in text and "]" in text:
        return text[text.index("[") + 1:text.index("]")]
    return text


def evict_file(path: str | Path) -> None:
    """Make a file's pages cold without privileges: POSIX_FADV_DONTNEED on the whole file.

    It misses mapped, dirty or locked pages (linux-mm-facts.md section 2); drop_caches is the
    thorough way and needs allow_drop_caches.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
