"""The user-mode run loop: the CPU runs a task's memory accesses; a trap enters the kernel, and the CPU
resumes at the access that trapped, as it re-executes a faulting instruction.

    run_user_mode(task, addrs, writes)
      loop, one step at a time:
        deliver pending host signals              exit_to_user_mode_loop()
        the MMU runs up to MMU_CHUNK accesses     hw/mmu.py mmu_run(); the cycles are user time
          -> done                                 next chunk
          -> clock reached the next event         the timer interrupt: run the due events
          -> #GP (non-canonical address)          exc_general_protection(): SIGSEGV
          -> #PF                                  exc_page_fault() (arch/x86/fault.py), or a batch of
                                                  first-touch faults (mm/fault_batch.py)

Each step is atomic: host signals are held back while it runs (``KernelEntry``) and delivered between
two steps, so an interrupt never leaves a fault half done. A fault that waits for I/O sleeps inside
exc_page_fault() (VM_FAULT_RETRY, then FAULT_FLAG_TRIED), the clock running through the events due.

Mirrors the shape of arch/x86/entry/entry_64.S + kernel/entry/common.c (irqentry_enter_from_user_mode(),
exit_to_user_mode_loop()) for the exceptions a memory access raises, and vtime accounting: the cycles the
CPU spent in user mode are booked on each kernel entry (vtime_user_exit() -> account_user_time()).
Simplified: one CPU, one task running at a time, no preemption (a due event runs on this CPU, between
two accesses of the task), stores write one byte each.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ...constants import PAGE_SHIFT, PAGE_SIZE
from ...errors import ProcessDead
from ...hw.mmu import MMU_DEADLINE, MMU_DONE, MMU_GP_FAULT, leaf_pfns, mmu_run
from ...kernel.task import account_user_time
from ...mm.fault_batch import try_fault_batch
from .fault import exc_general_protection, handle_page_fault, trace_page_fault
from .tlb import switch_mm

if TYPE_CHECKING:
    from ...kernel.task import Task

MMU_CHUNK = 1 << 18  # accesses per atomic step of a batch: host signals are delivered between steps


def run_user_mode(task: Task, addrs: np.ndarray, writes: np.ndarray, value: int = 0) -> None:
    """Run the accesses ``addrs`` (int64 virtual addresses) of ``task`` in order, taking each trap on the way.

    ``writes`` holds one flag per access, or one flag for all (uint8); write accesses store the byte
    ``value``. Returns when every access completed; a fatal signal raises (SegmentationFault, BusError,
    OutOfMemoryKill) with the accesses before the faulting one done, and a task that a due event ended
    (exit, kill) raises ProcessDead: its page tables are gone, and may already serve another process.
    The batch runs as a sequence of atomic steps (a chunk of at most MMU_CHUNK accesses up to its first
    trap or the next event, then the kernel's handling of that trap), with host signals delivered only
    between steps.
    """
    m = task.machine
    entry = m.kernel_entry
    one_flag = writes.shape[0] == 1
    cpu_cycles = np.zeros(1, dtype=np.int64)  # the CPU's cycle counter while it runs user code
    i, n = 0, addrs.shape[0]
    with entry:
        while i < n:
            entry.deliver_pending()
            start, end = i, min(n, i + MMU_CHUNK)
            outcome, i, va, err = _user_mode(task, addrs[:end], writes if one_flag else writes[:end], start,
                                             cpu_cycles)
            if i > start:
                _store_bytes(task, addrs[start:i], writes if one_flag else writes[start:i], value)
            if outcome == MMU_DONE:
                continue
            if outcome == MMU_DEADLINE:
                m.clock.run_due()  # the timer interrupt: kernel work that is due runs now
                if not task.alive:  # an event ended the task: it never returns to user mode
                    raise ProcessDead(f"process {task.pid} was ended by a kernel event while it ran")
            elif outcome == MMU_GP_FAULT:
                exc_general_protection(task)
            elif m.fault_log is not None:  # tracing: every fault alone, recorded; the one test it costs
                trace_page_fault(task, va, err)
            elif not (m.batch_faults and try_fault_batch(task, addrs, writes, i, va, err)):
                handle_page_fault(task, va, err)


def _user_mode(task: Task, addrs: np.ndarray, writes: np.ndarray, start: int,
               cpu_cycles: np.ndarray) -> tuple[int, int, int, int]:
    """The CPU runs ``addrs[start:]`` through the MMU until a trap or the next event's time; the cycles it
    spent are the task's user time. Returns mmu_run()'s (outcome, index, address, error code)."""
    m = task.machine
    tlb, clock = m.tlb, m.clock
    asid = switch_mm(m, task.mm)
    now = clock.now
    cpu_cycles[0] = now
    outcome, i, va, err = mmu_run(m.ptpool.tables, task.mm.pgd, asid, addrs, writes, start, tlb.tag, tlb.val,
                                  tlb.age, tlb.geom, tlb.lat, tlb.tick, m.counters.sim, cpu_cycles,
                                  clock.next_deadline())
    account_user_time(task, int(cpu_cycles[0]) - now)  # vtime_user_exit() on the kernel entry
    return outcome, i, va, err


def _store_bytes(task: Task, addrs: np.ndarray, writes: np.ndarray, value: int) -> None:
    """Store ``value`` at every address of a completed write access (page bytes live in the frame table)."""
    frames = task.machine.frames
    if not frames.nr_data_pages and not value:
        return  # every page reads as zero already
    if writes.shape[0] == 1:
        targets = addrs if writes[0] else addrs[:0]
    else:
        targets = addrs[writes.astype(bool)]
    if targets.shape[0] == 0:
        return
    frames.write_bytes(_pfns_of(task, targets), targets & (PAGE_SIZE - 1), value)


def load_byte(task: Task, addr: int) -> int:
    """The byte at ``addr``, whose access has completed (so a leaf entry maps it)."""
    pfn = user_pfn(task, addr)
    return task.machine.frames.read_byte(pfn, addr & (PAGE_SIZE - 1))


def user_pfn(task: Task, addr: int) -> int:
    """The frame that the mapped user address ``addr`` lies in (what the MMU would translate it to)."""
    return int(_pfns_of(task, np.array([addr], dtype=np.int64))[0])


def _pfns_of(task: Task, addrs: np.ndarray) -> np.ndarray:
    """The frame each (mapped) address lies in: the PTE's, or the 4 KiB subpage of a PMD leaf's."""
    return leaf_pfns(task.machine.ptpool.tables, task.mm.pgd, addrs >> PAGE_SHIFT)
