"""Kernel tunables: one typed definition per file, keyed by its real path, with Linux's defaults.

Mirrors the sysctl tables of mm/ (kernel/sysctl.c, mm/util.c, mm/mmap.c) and the THP sysfs
handlers of mm/huge_memory.c: each tunable carries its type, bounds or choices, the modelled kernel's
default and the symbol it mirrors. Writes are validated as the kernel's store()/proc_handler would,
raising SettingError for what would be EINVAL. Both ``settings.vm.swappiness`` and
``settings["/proc/sys/vm/swappiness"]`` read the same value.

Only tunables the simulator acts on are listed; the next issues add theirs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .errors import SettingError

_DECIMAL = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True, slots=True)
class Tunable:
    path: str
    default: int | str
    doc: str
    mirrors: str
    lo: int | None = None
    hi: int | None = None
    choices: tuple[str, ...] = ()
    unit: str = ""

    @property
    def attr(self) -> str:
        return self.path.rsplit("/", 1)[1]

    def parse(self, value: Any) -> int | str:
        """Validate ``value`` like the kernel's store handler; SettingError (EINVAL) otherwise."""
        if self.choices:  # sysfs_streq(): the word exactly, a trailing newline allowed (what echo writes)
            text = str(value)
            text = text[:-1] if text.endswith("\n") else text
            if text not in self.choices:
                raise SettingError(f"{self.path}: {value!r} is not one of {', '.join(self.choices)} (EINVAL)")
            return text
        text = str(value).strip()
        if not _DECIMAL.fullmatch(text):  # kstrtoul()/proc_dointvec(): ASCII digits, no "1_0", no other scripts
            raise SettingError(f"{self.path}: {value!r} is not an integer (EINVAL)")
        number = int(text)
        if (self.lo is not None and number < self.lo) or (self.hi is not None and number > self.hi):
            raise SettingError(f"{self.path}: {number} is outside [{self.lo}, {self.hi}] (EINVAL)")
        return number

    def render(self, value: int | str) -> str:
        """The text the file shows: THP choice files mark the current choice as ``[x]``."""
        if self.choices and self.path.startswith("/sys/kernel/mm/transparent_hugepage"):
            return " ".join(f"[{c}]" if c == value else c for c in self.choices)
        return str(value)


_VM = "/proc/sys/vm/"
_THP = "/sys/kernel/mm/transparent_hugepage/"

TUNABLES: tuple[Tunable, ...] = (
    Tunable(_VM + "mmap_min_addr", 4096, "lowest address mmap may map without CAP_SYS_RAWIO",
            "mm/util.c: dac_mmap_min_addr (CONFIG_DEFAULT_MMAP_MIN_ADDR)", lo=0, unit="bytes"),
    Tunable(_VM + "max_map_count", 65530, "most VMAs one process may have",
            "mm/util.c: sysctl_max_map_count (DEFAULT_MAX_MAP_COUNT)", lo=0, hi=2**31 - 1),
    Tunable(_VM + "overcommit_memory", 0, "0 heuristic, 1 always, 2 strict commit limit",
            "mm/util.c: sysctl_overcommit_memory", lo=0, hi=2),
    Tunable(_VM + "overcommit_ratio", 50, "percent of RAM in the strict commit limit",
            "mm/util.c: sysctl_overcommit_ratio", lo=0, unit="percent"),
    Tunable(_VM + "overcommit_kbytes", 0, "commit limit in kB instead of the ratio (0 = use the ratio)",
            "mm/util.c: sysctl_overcommit_kbytes", lo=0, unit="kB"),
    Tunable(_VM + "dirty_ratio", 20, "percent of available memory a writer may dirty before it writes back itself",
            "mm/page-writeback.c: vm_dirty_ratio", lo=0, hi=100, unit="percent"),
    Tunable(_VM + "dirty_background_ratio", 10, "percent of available memory dirty before background writeback",
            "mm/page-writeback.c: dirty_background_ratio", lo=0, hi=100, unit="percent"),
    Tunable(_VM + "dirty_bytes", 0, "dirty_ratio as bytes (0 = use the ratio)",
            "mm/page-writeback.c: vm_dirty_bytes", lo=0, unit="bytes"),
    Tunable(_VM + "dirty_background_bytes", 0, "dirty_background_ratio as bytes (0 = use the ratio)",
            "mm/page-writeback.c: dirty_background_bytes", lo=0, unit="bytes"),
    Tunable(_VM + "dirty_expire_centisecs", 3000, "age at which dirty data is written back by the flusher",
            "mm/page-writeback.c: dirty_expire_interval", lo=0, unit="centisecs"),
    Tunable(_VM + "dirty_writeback_centisecs", 500, "how often the flusher wakes (0 = never)",
            "mm/page-writeback.c: dirty_writeback_interval", lo=0, unit="centisecs"),
    Tunable("/sys/kernel/debug/fault_around_bytes", 65536, "bytes of cached file pages a read fault maps around it",
            "mm/memory.c: fault_around_bytes_set() (rounded down to a power of two pages, at least one)",
            lo=0, hi=2097152, unit="bytes"),
    Tunable("/sys/block/vda/queue/read_ahead_kb", 128, "the largest readahead window of the disk files live on "
            "(the simulated machine's one disk is vda, whatever its model)",
            "mm/backing-dev.c: VM_READAHEAD_PAGES = 128 KiB (bdi->ra_pages); this host's udev sets 8192",
            lo=0, unit="kB"),
    Tunable(_THP + "enabled", "madvise", "when anonymous memory may get 2 MiB pages",
            "mm/huge_memory.c: enabled_store()", choices=("always", "madvise", "never")),
    Tunable(_THP + "defrag", "madvise", "whether a THP fault may stall in reclaim/compaction",
            "mm/huge_memory.c: defrag_store()",
            choices=("always", "defer", "defer+madvise", "madvise", "never")),
    Tunable(_THP + "use_zero_page", 1, "read faults map the huge zero page",
            "mm/huge_memory.c: use_zero_page_store()", lo=0, hi=1),
    Tunable(_THP + "shmem_enabled", "never", "when shmem/tmpfs (and shared anonymous memory) may get 2 MiB pages",
            "mm/shmem.c: shmem_enabled_store() (SHMEM_HUGE_NEVER by default)",
            choices=("always", "within_size", "advise", "never", "deny", "force")),
    Tunable(_THP + "hugepages-2048kB/enabled", "inherit", "PMD-sized anonymous THP: its own mode, or the top-level one",
            "mm/huge_memory.c: anon_enabled_store() (huge_anon_orders_inherit has PMD_ORDER at boot)",
            choices=("always", "inherit", "madvise", "never")),
)
BY_PATH = {t.path: t for t in TUNABLES}


class _Group:
    """Attribute access to one directory of tunables (``settings.vm.max_map_count``)."""

    def __init__(self, settings: Settings, prefix: str) -> None:
        object.__setattr__(self, "_s", settings)
        object.__setattr__(self, "_prefix", prefix)

    def __getattr__(self, name: str) -> Any:
        return self._s[self._prefix + name]

    def __setattr__(self, name: str, value: Any) -> None:
        self._s[self._prefix + name] = value


class Settings:
    """The current value of every tunable of one machine."""

    def __init__(self, overrides: dict[str, Any] | None = None) -> None:
        self._values: dict[str, int | str] = {t.path: t.default for t in TUNABLES}
        self.vm = _Group(self, _VM)
        self.transparent_hugepage = _Group(self, _THP)
        for path, value in (overrides or {}).items():
            self[path] = value

    def __getitem__(self, path: str) -> Any:
        if path not in self._values:
            raise KeyError(f"no such tunable: {path}")
        return self._values[path]

    def __setitem__(self, path: str, value: Any) -> None:
        if path not in BY_PATH:
            raise SettingError(f"no such tunable: {path} (ENOENT)")
        self._values[path] = BY_PATH[path].parse(value)

    def items(self) -> Iterator[tuple[str, int | str]]:
        return iter(sorted(self._values.items()))

    def render(self, path: str) -> str:
        return BY_PATH[path].render(self[path]) + "\n"

    @contextmanager
    def override(self, values: dict[str, Any]) -> Iterator[Settings]:
        """Set tunables for the duration of a ``with`` block, then restore the old values."""
        saved = dict(self._values)
        try:
            for path, value in values.items():
                self[path] = value
            yield self
        finally:
            self._values = saved

    def snapshot(self) -> dict[str, int | str]:
        return dict(self._values)
