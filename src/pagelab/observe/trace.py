"""Per-fault records: what the hardware trapped on, the kernel functions that ran, and the PTE they left.

The analogue of the tracepoints ``exceptions:page_fault_user`` (address, ip, error code) joined with the
path of one fault through arch/x86/mm/fault.c and mm/memory.c, for ``pagelab explain``. Recording is
off unless ``Machine.fault_log`` is a list; while it is on, every fault is taken one at a time (the
batched first-touch path would otherwise resolve runs of faults together; the counts are the same).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..arch.x86.pgtable import (
    _PAGE_ACCESSED,
    _PAGE_DIRTY,
    _PAGE_PRESENT,
    _PAGE_PROTNONE,
    _PAGE_RW,
    _PAGE_SPECIAL,
    X86_PF_PROT,
    X86_PF_USER,
    X86_PF_WRITE,
    pte_pfn,
)
from ..hw.mmu import leaf_entries
from ..mm.types import FaultKind

if TYPE_CHECKING:
    from ..kernel.task import Task
    from ..mm.types import VmFault

MEANING: dict[str, str] = {
    FaultKind.DO_ANONYMOUS_PAGE_ZERO: "a read of a never-touched page: mapped the shared zero page read-only",
    FaultKind.DO_ANONYMOUS_PAGE: "first write to the page: allocated a zeroed page and mapped it writable",
    FaultKind.WP_PAGE_COPY_ZERO: "copy-on-write from the zero page: allocated a zeroed page",
    FaultKind.WP_PAGE_COPY: "copy-on-write: copied the shared page into a private one",
    FaultKind.WP_PAGE_REUSE: "write to a read-only PTE of a page nobody else holds: made it writable in place",
    FaultKind.DO_READ_FAULT: "read of a shmem page: found or allocated it in the page cache, mapped it",
    FaultKind.DO_FAULT_AROUND: "fault-around: mapped the cached pages of a 16-page window, this one among them",
    FaultKind.DO_SHARED_FAULT: "write to a shared page: mapped it writable and dirty",
    FaultKind.SPURIOUS: "the PTE already allowed the access (stale TLB entry): only marked it young/dirty",
}


@dataclass(frozen=True, slots=True)
class FaultTrace:
    """One fault: where, why, through which functions, and with what result."""

    time_ns: int
    pid: int
    address: int
    error_code: int  # -1 for a GUP-made fault (populate, mlock): no exception
    path: tuple[str, ...]
    handler: str
    pte_before: int
    pte_after: int
    outcome: str  # "minor", "major", or the signal

    @property
    def trap(self) -> str:
        if self.error_code < 0:
            return "GUP"
        bits = ["P" if self.error_code & X86_PF_PROT else "",
                "W" if self.error_code & X86_PF_WRITE else "R", "U" if self.error_code & X86_PF_USER else "K"]
        return "#PF(" + ",".join(b for b in bits if b) + ")"

    def describe(self, base: int = 0, label: str = "") -> str:
        where = f"{label}+{self.address - base:#x}" if label else f"{self.address:#x}"
        lines = [f"{self.trap} at {where}: " + " -> ".join(self.path)]
        if self.handler:
            lines.append(f"    {MEANING.get(self.handler, self.handler)}")
        lines.append(f"    PTE {describe_pte(self.pte_before)}  ->  {describe_pte(self.pte_after)}")
        gup = self.error_code < 0
        counted = {"minor": "pgfault+1, min_flt+1" + (" (a GUP fault: perf does not see it)" if gup
                                                      else ", perf page-faults+1, minor-faults+1"),
                   "major": "pgfault+1, maj_flt+1"}.get(self.outcome, "not counted in rusage; perf page-faults+1")
        lines.append(f"    {self.outcome} | {counted}")
        return "\n".join(lines)


def describe_pte(pte: int) -> str:
    """A PTE in words: none, the zero page, or pfn and the bits that matter here."""
    if pte == 0:
        return "none"
    if not pte & (_PAGE_PRESENT | _PAGE_PROTNONE):
        return f"{pte:#x} (not present)"
    what = "zero page" if pte & _PAGE_SPECIAL else f"pfn {pte_pfn(pte)}"
    flags = ["RW" if pte & _PAGE_RW else "RO"]
    if pte & _PAGE_PROTNONE and not pte & _PAGE_PRESENT:
        flags = ["PROT_NONE"]
    flags += [n for n, b in (("A", _PAGE_ACCESSED), ("D", _PAGE_DIRTY)) if pte & b]
    return f"{what} {' '.join(flags)}"


def leaf_of(task: Task, address: int) -> int:
    if not task.alive or address < 0:
        return 0
    m = task.machine
    return int(leaf_entries(m.ptpool.tables, task.mm.pgd, np.array([address >> 12], dtype=np.int64))[0])


def record(task: Task, address: int, error_code: int, pte_before: int, vmf: VmFault | None, outcome: str,
           path: tuple[str, ...], time_ns: int | None = None) -> None:
    """Append one FaultTrace to the machine's log (the caller checks the log is on).

    ``time_ns`` is when the fault was taken (the tracepoint fires on entry); now if not given."""
    log = task.machine.fault_log
    if log is None:
        return
    after = leaf_of(task, address) if vmf is not None else pte_before  # a signal leaves the PTE as it was
    log.append(FaultTrace(task.machine.now_ns if time_ns is None else time_ns, task.pid, address, error_code, path,
                          (vmf.handler or "") if vmf is not None else "", pte_before, after, outcome))
