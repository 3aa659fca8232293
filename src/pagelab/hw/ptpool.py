"""The page-table pool: every page-table page of every process, as rows of one numpy array.

``tables[i]`` is one 4 KiB page-table page (512 eight-byte entries). A process's CR3 is the row of
its PGD. An upper-level entry (PGD/PUD/PMD) holds, in bits 12-51 where x86 holds the PFN of the next
table, the *row* of the next table; the frame backing each row is ``pfn[row]``, which is how the kernel
counts page-table memory (``PageTables:``, ``VmPTE:``). Leaf entries hold real PFNs.

Entries are stored as signed 64-bit integers: bit 63 (NX) is the sign bit, which keeps every bit
operation in the compiled MMU loop in one integer type.

``used[i]`` counts the non-zero entries of table ``i`` so that emptied tables can be found and freed.
"""

from __future__ import annotations

import numpy as np

from ..errors import kernel_bug

ENTRIES = 512


class PageTablePool:
    """Rows of page-table pages, grown on demand; row 0 is never used (it stands for 'no table')."""

    def __init__(self, capacity: int = 64) -> None:
        self.tables = np.zeros((capacity, ENTRIES), dtype=np.int64)
        self.pfn = np.full(capacity, -1, dtype=np.int64)
        self.level = np.zeros(capacity, dtype=np.int8)  # 4 = PGD ... 1 = PTE table
        self.used = np.zeros(capacity, dtype=np.int32)
        self._free: list[int] = list(range(capacity - 1, 0, -1))
        self.nr_tables = 0

    def alloc(self, pfn: int, level: int) -> int:
        """Give a zeroed row for a page-table page backed by frame ``pfn``; returns the row."""
        if not self._free:
            self._grow()
        row = self._free.pop()
        self.tables[row, :] = 0
        self.pfn[row] = pfn
        self.level[row] = level
        self.used[row] = 0
        self.nr_tables += 1
        return row

    def free(self, row: int) -> int:
        """Release ``row`` (it must be empty); returns the PFN of its backing frame."""
        kernel_bug(self.used[row] != 0, f"free_pgtables: table row {row} still has entries")
        pfn = int(self.pfn[row])
        self.pfn[row] = -1
        self.level[row] = 0
        self._free.append(row)
        self.nr_tables -= 1
        return pfn

    def _grow(self) -> None:
        old = self.tables.shape[0]
        new = old * 2
        tables = np.zeros((new, ENTRIES), dtype=np.int64)
        tables[:old] = self.tables
        self.tables = tables
        self.pfn = np.concatenate([self.pfn, np.full(new - old, -1, dtype=np.int64)])
        self.level = np.concatenate([self.level, np.zeros(new - old, dtype=np.int8)])
        self.used = np.concatenate([self.used, np.zeros(new - old, dtype=np.int32)])
        self._free.extend(range(new - 1, old - 1, -1))
