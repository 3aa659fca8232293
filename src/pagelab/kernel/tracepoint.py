"""Fault tracepoints: the record the kernel emits for each fault, read later by ``pagelab explain``.

The analogue of the ``exceptions:page_fault_user`` tracepoint (arch/x86/include/asm/trace/exceptions.h:
address, ip, error code; fired by trace_page_fault_entries() in arch/x86/mm/fault.c) joined with what
the fault did: the path of one fault through arch/x86/mm/fault.c and mm/memory.c, the PTE before and
after, and whether it counted as minor or major. A GUP-made fault (MADV_POPULATE_*, mlock) raises no
exception; it is recorded with error code -1, as no tracepoint fires for it in Linux.

The buffer is ``Machine.fault_log``: recording is off while it is None and on while it is a list (the
trace ring buffer's "tracing_on"). While it is on, every fault is taken one at a time (the batched
first-touch path would otherwise resolve runs of faults together; the counts are the same).

This module only captures. Turning a record into words (the trap as ``#PF(W,U)``, the handler's meaning,
the PTE in words) is observe/trace.py's work, as the trace event's print format lives apart from the
code that emits it.

Simplified: one event type for every fault; no ring buffer (an unbounded list), no per-event enable,
no filters, no ip (the simulated task has no instruction pointer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..hw.mmu import leaf_entries

if TYPE_CHECKING:
    from ..mm.types import VmFault
    from .task import Task


@dataclass(frozen=True, slots=True)
class FaultTrace:
    """One fault: where, why, through which functions, and with what result."""

    time_ns: int  # when the fault was taken: the tracepoint fires on entry
    pid: int
    address: int
    error_code: int  # x86 page-fault error code bits; -1 for a GUP-made fault (populate, mlock): no exception
    path: tuple[str, ...]  # the kernel functions the fault went through, in order, every attempt
    handler: str  # the FaultKind of the handler that resolved it ("" when none did: a signal)
    pte_before: int
    pte_after: int
    outcome: str  # "minor", "major", or the signal and its si_code


def leaf_of(task: Task, address: int) -> int:
    """The leaf entry (PTE, or huge PMD) that maps ``address`` in ``task``'s page tables; 0 when none does.

    Returns the entry signed, as the pool stores it (arch/x86/pgtable.py: NX is bit 63, a negative
    number), 0 for a dead task or a kernel (negative) address. Reads the tables only: no A/D bit changes.
    """
    if not task.alive or address < 0:
        return 0
    m = task.machine
    return int(leaf_entries(m.ptpool.tables, task.mm.pgd, np.array([address >> 12], dtype=np.int64))[0])


def record_fault(task: Task, address: int, error_code: int, pte_before: int, vmf: VmFault | None, outcome: str,
                 path: tuple[str, ...], time_ns: int | None = None) -> None:
    """Append one FaultTrace to the machine's log; does nothing while the log is off.

    ``vmf`` is the handled fault (None when it ended in a signal, which leaves the PTE as it was);
    ``time_ns`` is when the fault was taken (the tracepoint fires on entry), now if not given.
    """
    log = task.machine.fault_log
    if log is None:
        return
    after = leaf_of(task, address) if vmf is not None else pte_before  # a signal leaves the PTE as it was
    log.append(FaultTrace(task.machine.now_ns if time_ns is None else time_ns, task.pid, address, error_code, path,
                          (vmf.handler or "") if vmf is not None else "", pte_before, after, outcome))
