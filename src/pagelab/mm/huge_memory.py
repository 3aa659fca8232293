"""Transparent huge pages: what the page-table walkers call when they meet a PMD leaf.

Mirrors the PMD-level entry points of mm/huge_memory.c that the range walkers use: split_huge_pmd()
(a walk, zap or mprotect that covers part of a huge PMD), zap_huge_pmd() (zap of a whole one),
change_huge_pmd() (mprotect of a whole one) and madvise_free_huge_pmd() (MADV_FREE).

No PMD leaf can be made by the kernel yet: THP at fault time (do_huge_pmd_anonymous_page(), the huge
zero page, the deferred split queue) comes next. Until then each entry point does what the kernel does
when the PMD is not huge, and raises NotModelled when it is; readers of PMD leaves (smaps, mincore,
GUP's present check, check_machine) answer without help from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..arch.x86.pgtable import pmd_trans_huge
from ..errors import NotModelled
from .pgtable import pmdp_get

if TYPE_CHECKING:
    from ..machine import Machine
    from .types import Vma

_LATER = "comes with THP at fault time"


def split_huge_pmd(m: Machine, vma: Vma, pmd: int, address: int) -> None:
    """Mirrors split_huge_pmd(): if the entry for ``address`` in PMD table ``pmd`` is a PMD leaf, replace
    it by a PTE table (the deposited one) mapping the same 512 pages with the same bits; else nothing.

    Afterwards pte_offset_map() finds a table there. Callers: the walker (a pte_entry walk of a VMA),
    zap and mprotect of part of a huge PMD (zap_pmd_range(), change_pmd_range()).
    """
    if pmd_trans_huge(pmdp_get(m, pmd, address)):
        raise NotModelled(f"split_huge_pmd() {_LATER}")


def zap_huge_pmd(m: Machine, vma: Vma, pmd: int, addr: int) -> int:
    """Mirrors zap_huge_pmd(): clear the PMD leaf at ``addr`` (which the zap covers whole) and drop its
    folio's mapping, RSS and, for anon, the deposited PTE table; 1 if it did (the TLB must be flushed),
    0 if the entry was not a leaf (the caller then walks the PTE table)."""
    if not pmd_trans_huge(pmdp_get(m, pmd, addr)):
        return 0
    raise NotModelled(f"zap_huge_pmd() {_LATER}")


def change_huge_pmd(m: Machine, vma: Vma, pmd: int, addr: int, newprot: int) -> int:
    """Mirrors change_huge_pmd(): give the PMD leaf at ``addr`` (which the mprotect covers whole) the
    protection ``newprot`` (pmd_modify(), write kept off unless can_change_pmd_writable()). Returns 0 if
    the entry is not a leaf, 1 if unchanged, HPAGE_PMD_NR if changed (flush the TLB)."""
    if not pmd_trans_huge(pmdp_get(m, pmd, addr)):
        return 0
    raise NotModelled(f"change_huge_pmd() {_LATER}")


def madvise_free_huge_pmd(m: Machine, vma: Vma, pmd: int, addr: int, next_addr: int) -> bool:
    """Mirrors madvise_free_huge_pmd(): MADV_FREE of the PMD leaf at ``addr``: a whole, exclusively
    mapped THP is marked clean, old and lazily free; part of one is split (split_folio()) and False
    returned, so the caller goes on with the PTEs; False too if the entry is not a leaf."""
    if not pmd_trans_huge(pmdp_get(m, pmd, addr)):
        return False
    raise NotModelled(f"madvise_free_huge_pmd() {_LATER}")
