"""Per-fault records in words, for ``pagelab explain``: the trap, the path, what the handler did, the PTE.

The records themselves are captured on the kernel side (kernel/tracepoint.py: FaultTrace, the analogue of
the ``exceptions:page_fault_user`` tracepoint); this module is their print format, as a trace event's
TP_printk is read apart from the code that fires it. It reads a record and returns text; it changes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..arch.x86.pgtable import (
    _PAGE_ACCESSED,
    _PAGE_DIRTY,
    _PAGE_PRESENT,
    _PAGE_PROTNONE,
    _PAGE_PSE,
    _PAGE_RW,
    _PAGE_SPECIAL,
    X86_PF_PROT,
    X86_PF_USER,
    X86_PF_WRITE,
    pte_pfn,
)
from ..mm.types import FaultKind

if TYPE_CHECKING:
    from ..kernel.tracepoint import FaultTrace

MEANING: dict[str, str] = {
    FaultKind.DO_ANONYMOUS_PAGE_ZERO: "a read of a never-touched page: mapped the shared zero page read-only",
    FaultKind.DO_ANONYMOUS_PAGE: "first write to the page: allocated a zeroed page and mapped it writable",
    FaultKind.WP_PAGE_COPY_ZERO: "copy-on-write from the zero page: allocated a zeroed page",
    FaultKind.WP_PAGE_COPY: "copy-on-write: copied the shared page into a private one",
    FaultKind.WP_PAGE_REUSE: "write to a read-only PTE of a page nobody else holds: made it writable in place",
    FaultKind.DO_READ_FAULT: "read of a file or shmem page: found (or read) it in the page cache, mapped it",
    FaultKind.DO_FAULT_AROUND: "fault-around: mapped the cached pages of a 16-page window, this one among them",
    FaultKind.DO_SHARED_FAULT: "write to a shared page: mapped it writable and dirty",
    FaultKind.DO_COW_FAULT: "write to a private file mapping: copied the page-cache page into a private one",
    FaultKind.DO_SET_PMD: "a cached 2 MiB file folio: mapped it whole by one PMD",
    FaultKind.WP_PAGE_SHARED: "write to a read-only page of a shared file mapping: told the filesystem "
                              "(page_mkwrite), made it writable and dirty",
    FaultKind.SPURIOUS: "the PTE already allowed the access (stale TLB entry): only marked it young/dirty",
    FaultKind.DO_HUGE_PMD_ANONYMOUS_PAGE: "first write to a 2 MiB-aligned range: allocated a zeroed THP and "
                                          "mapped it with one PMD",
    FaultKind.HUGE_ZERO_PAGE: "a read of a never-touched 2 MiB-aligned range: mapped the huge zero page "
                              "read-only with one PMD",
    FaultKind.DO_HUGE_ZERO_WP_PMD: "write to the huge zero page: allocated a zeroed THP and mapped it in its place",
    FaultKind.DO_HUGE_PMD_WP_PAGE: "write to a read-only PMD of a THP nobody else holds: made it writable in place",
    FaultKind.HUGE_PMD_SET_ACCESSED: "the PMD already allowed the access (stale TLB entry): only marked it "
                                     "young/dirty",
}


def describe_trap(t: FaultTrace) -> str:
    """The trap in a few letters: ``#PF(P,W,U)`` (protection, write/read, user/kernel), or ``GUP``."""
    if t.error_code < 0:
        return "GUP"
    bits = ["P" if t.error_code & X86_PF_PROT else "",
            "W" if t.error_code & X86_PF_WRITE else "R", "U" if t.error_code & X86_PF_USER else "K"]
    return "#PF(" + ",".join(b for b in bits if b) + ")"


def describe(t: FaultTrace, base: int = 0, label: str = "") -> str:
    """One fault in four lines: trap and path, what the handler did, the entry before and after, the counts.

    With ``label``, the address is shown as an offset into that region (which starts at ``base``).
    """
    where = f"{label}+{t.address - base:#x}" if label else f"{t.address:#x}"
    lines = [f"{describe_trap(t)} at {where}: " + " -> ".join(t.path)]
    if t.handler:
        lines.append(f"    {MEANING.get(t.handler, t.handler)}")
    level = "PMD" if _huge(t.pte_before) or _huge(t.pte_after) else "PTE"
    lines.append(f"    {level} {describe_pte(t.pte_before)}  ->  {describe_pte(t.pte_after)}")
    gup = t.error_code < 0
    counted = {"minor": "pgfault+1, min_flt+1" + (" (a GUP fault: perf does not see it)" if gup
                                                  else ", perf page-faults+1, minor-faults+1"),
               "major": "pgfault+1, maj_flt+1"}.get(t.outcome, "not counted in rusage; perf page-faults+1")
    lines.append(f"    {t.outcome} | {counted}")
    return "\n".join(lines)


def _huge(entry: int) -> bool:
    """A huge PMD leaf (present or PROT_NONE, with PS set): a THP or the huge zero page."""
    return bool(entry & (_PAGE_PRESENT | _PAGE_PROTNONE)) and bool(entry & _PAGE_PSE)


def describe_pte(pte: int) -> str:
    """A PTE (or huge PMD) in words: none, the zero page, or pfn and the bits that matter here."""
    if pte == 0:
        return "none"
    if not pte & (_PAGE_PRESENT | _PAGE_PROTNONE):
        return f"{pte & 0xFFFF_FFFF_FFFF_FFFF:#x} (not present)"  # the 64 bits, though stored signed
    huge = _huge(pte)
    if pte & _PAGE_SPECIAL:
        what = "huge zero page" if huge else "zero page"
    else:
        what = f"pfn {pte_pfn(pte)}" + (" (2 MiB)" if huge else "")
    flags = ["RW" if pte & _PAGE_RW else "RO"]
    if pte & _PAGE_PROTNONE and not pte & _PAGE_PRESENT:
        flags = ["PROT_NONE"]
    flags += [n for n, b in (("A", _PAGE_ACCESSED), ("D", _PAGE_DIRTY)) if pte & b]
    return f"{what} {' '.join(flags)}"
