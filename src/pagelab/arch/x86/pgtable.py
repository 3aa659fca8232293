"""x86-64 page-table entry bits and helpers, 4-level geometry with the P4D folded.

Mirrors arch/x86/include/asm/pgtable_types.h (_PAGE_BIT_*, PAGE_* protections) and the pte_*()
helpers of arch/x86/include/asm/pgtable.h. PTE values are plain ints, as in xv6 and Linux, with
pure ``pte_mk*`` helpers. Entries are stored signed 64-bit (see hw/ptpool.py), so ``_PAGE_NX``
is bit 63 written as a negative number.
"""

from __future__ import annotations

from ...constants import PAGE_SHIFT

_PAGE_PRESENT = 1 << 0
_PAGE_RW = 1 << 1
_PAGE_USER = 1 << 2
_PAGE_PWT = 1 << 3
_PAGE_PCD = 1 << 4
_PAGE_ACCESSED = 1 << 5
_PAGE_DIRTY = 1 << 6
_PAGE_PSE = 1 << 7  # PS: a huge leaf in a PMD/PUD
_PAGE_GLOBAL = 1 << 8
_PAGE_PROTNONE = _PAGE_GLOBAL  # only when !PRESENT: PROT_NONE (and NUMA hinting) entries
_PAGE_SPECIAL = 1 << 9  # software: zero page, pfn maps
_PAGE_NX = -(1 << 63)  # bit 63, as a signed 64-bit value

PTE_PFN_MASK = ((1 << 52) - 1) & ~((1 << PAGE_SHIFT) - 1)  # bits 12..51
PTE_FLAGS_MASK = ~PTE_PFN_MASK

# What an upper-level entry pointing to a table carries (_PAGE_TABLE).
_PAGE_TABLE = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY

# x86's protection values (arch/x86/include/asm/pgtable_types.h).
PAGE_NONE = _PAGE_PROTNONE | _PAGE_ACCESSED
PAGE_SHARED = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED | _PAGE_NX
PAGE_SHARED_EXEC = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED
PAGE_COPY_NOEXEC = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED | _PAGE_NX
PAGE_COPY_EXEC = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED
PAGE_READONLY = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED | _PAGE_NX
PAGE_READONLY_EXEC = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED

PGDIR_SHIFT = 39
PUD_SHIFT = 30
PMD_SHIFT = 21
PTRS_PER_TABLE = 512

# x86 page-fault error code bits (arch/x86/include/asm/trap_pf.h: enum x86_pf_error_code).
X86_PF_PROT = 1 << 0
X86_PF_WRITE = 1 << 1
X86_PF_USER = 1 << 2
X86_PF_RSVD = 1 << 3
X86_PF_INSTR = 1 << 4


def pgd_index(addr: int) -> int:
    return (addr >> PGDIR_SHIFT) & 511


def pud_index(addr: int) -> int:
    return (addr >> PUD_SHIFT) & 511


def pmd_index(addr: int) -> int:
    return (addr >> PMD_SHIFT) & 511


def pte_index(addr: int) -> int:
    return (addr >> PAGE_SHIFT) & 511


def pfn_pte(pfn: int, prot: int) -> int:
    """Mirrors pfn_pte(): a PTE mapping ``pfn`` with protection bits ``prot``."""
    return (pfn << PAGE_SHIFT) | prot


def pte_pfn(pte: int) -> int:
    return (pte & PTE_PFN_MASK) >> PAGE_SHIFT


def pte_none(pte: int) -> bool:
    return pte == 0


def pte_present(pte: int) -> bool:
    """Mirrors pte_present(): present to the kernel, PROT_NONE entries included."""
    return bool(pte & (_PAGE_PRESENT | _PAGE_PROTNONE))


def pte_protnone(pte: int) -> bool:
    return (pte & (_PAGE_PRESENT | _PAGE_PROTNONE)) == _PAGE_PROTNONE


def pte_write(pte: int) -> bool:
    return bool(pte & _PAGE_RW)


def pte_dirty(pte: int) -> bool:
    return bool(pte & _PAGE_DIRTY)


def pte_young(pte: int) -> bool:
    return bool(pte & _PAGE_ACCESSED)


def pte_special(pte: int) -> bool:
    return bool(pte & _PAGE_SPECIAL)


def pte_mkwrite(pte: int) -> int:
    return pte | _PAGE_RW


def pte_wrprotect(pte: int) -> int:
    return pte & ~_PAGE_RW


def pte_mkdirty(pte: int) -> int:
    return pte | _PAGE_DIRTY


def pte_mkclean(pte: int) -> int:
    return pte & ~_PAGE_DIRTY


def pte_mkyoung(pte: int) -> int:
    return pte | _PAGE_ACCESSED


def pte_mkold(pte: int) -> int:
    return pte & ~_PAGE_ACCESSED


def pte_mkspecial(pte: int) -> int:
    return pte | _PAGE_SPECIAL


def pte_modify(pte: int, newprot: int) -> int:
    """Mirrors pte_modify(): keep PFN, A, D and SPECIAL, take every other bit from ``newprot``."""
    keep = PTE_PFN_MASK | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_SPECIAL
    return (pte & keep) | (newprot & ~keep)


# PMD entries (arch/x86/include/asm/pgtable.h). A PMD entry either points to a PTE table or, with
# _PAGE_PSE, maps a 2 MiB page itself (a PMD leaf: a THP, or the huge zero page). Sizes: constants.py
# (PMD_SIZE, HPAGE_PMD_NR).


def pmd_none(pmd: int) -> bool:
    return pmd == 0


def pmd_present(pmd: int) -> bool:
    """Mirrors x86 pmd_present(): PSE counts too (a huge PMD being split is present)."""
    return bool(pmd & (_PAGE_PRESENT | _PAGE_PROTNONE | _PAGE_PSE))


def pmd_leaf(pmd: int) -> bool:
    """Mirrors pmd_leaf(): the entry maps a huge page itself instead of pointing to a PTE table."""
    return bool(pmd & _PAGE_PSE)


def pmd_trans_huge(pmd: int) -> bool:
    """Mirrors pmd_trans_huge(): a PMD leaf of a transparent huge page (no DAX/devmap here)."""
    return bool(pmd & _PAGE_PSE)


def pmd_pfn(pmd: int) -> int:
    return (pmd & PTE_PFN_MASK) >> PAGE_SHIFT


def pfn_pmd(pfn: int, prot: int) -> int:
    """Mirrors pfn_pmd(): a PMD entry for ``pfn`` with ``prot`` (pmd_mkhuge() makes it a leaf)."""
    return (pfn << PAGE_SHIFT) | prot


def pmd_mkhuge(pmd: int) -> int:
    return pmd | _PAGE_PSE
