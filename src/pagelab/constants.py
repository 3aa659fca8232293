"""Linux's user-visible constants: page size, mmap/mprotect/madvise flags, size units.

Values are x86-64 Linux's (include/uapi/asm-generic/mman-common.h, mman.h, and
arch/x86/include/uapi/asm/mman.h), the same numbers Python's ``mmap`` module exposes.
"""

from __future__ import annotations

import re

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PAGE_MASK = ~(PAGE_SIZE - 1)
PMD_SHIFT = 21
PMD_SIZE = 1 << PMD_SHIFT
HPAGE_PMD_NR = PMD_SIZE // PAGE_SIZE

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30

# x86-64, 4-level paging: the user half ends one page below 2**47 (arch/x86/include/asm/page_64_types.h).
TASK_SIZE = (1 << 47) - PAGE_SIZE

PROT_NONE = 0x0
PROT_READ = 0x1
PROT_WRITE = 0x2
PROT_EXEC = 0x4
PROT_SEM = 0x8
PROT_GROWSDOWN = 0x01000000
PROT_GROWSUP = 0x02000000

MAP_SHARED = 0x01
MAP_PRIVATE = 0x02
MAP_SHARED_VALIDATE = 0x03
MAP_TYPE = 0x0F
MAP_FIXED = 0x10
MAP_ANONYMOUS = 0x20
MAP_ANON = MAP_ANONYMOUS
MAP_32BIT = 0x40
MAP_GROWSDOWN = 0x0100
MAP_DENYWRITE = 0x0800
MAP_EXECUTABLE = 0x1000
MAP_LOCKED = 0x2000
MAP_NORESERVE = 0x4000
MAP_POPULATE = 0x8000
MAP_NONBLOCK = 0x10000
MAP_STACK = 0x20000
MAP_HUGETLB = 0x40000
MAP_SYNC = 0x80000
MAP_FIXED_NOREPLACE = 0x100000
MAP_UNINITIALIZED = 0x4000000

MADV_NORMAL = 0
MADV_RANDOM = 1
MADV_SEQUENTIAL = 2
MADV_WILLNEED = 3
MADV_DONTNEED = 4
MADV_FREE = 8
MADV_REMOVE = 9
MADV_DONTFORK = 10
MADV_DOFORK = 11
MADV_MERGEABLE = 12
MADV_UNMERGEABLE = 13
MADV_HUGEPAGE = 14
MADV_NOHUGEPAGE = 15
MADV_DONTDUMP = 16
MADV_DODUMP = 17
MADV_WIPEONFORK = 18
MADV_KEEPONFORK = 19
MADV_COLD = 20
MADV_PAGEOUT = 21
MADV_POPULATE_READ = 22
MADV_POPULATE_WRITE = 23
MADV_DONTNEED_LOCKED = 24
MADV_COLLAPSE = 25
MADV_HWPOISON = 100
MADV_SOFT_OFFLINE = 101
MADV_GUARD_INSTALL = 102
MADV_GUARD_REMOVE = 103

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "K": KiB, "M": MiB, "G": GiB, "T": 1 << 40}


def parse_size(value: int | str) -> int:
    """Turn ``"2GiB"``, ``"512M"``, ``"4096"`` or an int into a byte count (binary units).

    Raises ValueError naming the text when it is not a size.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a size: {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"size must not be negative: {value}")
        return value
    m = _SIZE_RE.match(str(value))
    if not m:
        raise ValueError(f"not a size: {value!r} (write e.g. '2GiB', '512MiB', '4096')")
    number, unit = float(m.group(1)), m.group(2).upper()
    return int(number * _UNITS[unit])


def page_align(n: int) -> int:
    """PAGE_ALIGN(): round up to a page boundary (include/linux/mm.h)."""
    return (n + PAGE_SIZE - 1) & PAGE_MASK

# prctl(2) options this simulator models (include/uapi/linux/prctl.h).
PR_SET_THP_DISABLE = 41
PR_GET_THP_DISABLE = 42
PR_THP_DISABLE_EXCEPT_ADVISED = 1 << 1  # arg3 of PR_SET_THP_DISABLE (6.18): THPs only where MADV_HUGEPAGE asks

# --- mlock and rlimits (issue #9): include/uapi/asm-generic/mman-common.h, mman.h, resource.h ---
MLOCK_ONFAULT = 0x01
MCL_CURRENT = 1
MCL_FUTURE = 2
MCL_ONFAULT = 4
RLIMIT_MEMLOCK = 8  # = resource.RLIMIT_MEMLOCK

# --- mremap (issue #9) ---
# mremap(2) flags (include/uapi/linux/mman.h), prctl(2) KSM options (include/uapi/linux/prctl.h).
MREMAP_MAYMOVE = 1
MREMAP_FIXED = 2
MREMAP_DONTUNMAP = 4
PR_SET_MEMORY_MERGE = 67
PR_GET_MEMORY_MERGE = 68
