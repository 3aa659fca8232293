"""The x86 page-fault entry: from the hardware's trap to the generic fault path, or to SIGSEGV.

Mirrors arch/x86/mm/fault.c: exc_page_fault() -> handle_page_fault() -> do_user_addr_fault(),
access_error(), bad_area()/bad_area_access_error() and the #GP path for non-canonical addresses
(arch/x86/kernel/traps.c: exc_general_protection(), SIGSEGV with si_code SI_KERNEL, si_addr 0).
The retry loop of do_user_addr_fault() is here too: VM_FAULT_RETRY -> sleep on the I/O -> retry with
FAULT_FLAG_TRIED. The run loop that takes the traps is arch/x86/entry.py.

perf's ``page-faults`` event is counted for every #PF on a user address, including those that end in
SIGSEGV (perf_sw_event(PERF_COUNT_SW_PAGE_FAULTS) in do_user_addr_fault()); a user access to a kernel
address goes through do_kern_addr_fault() instead, which does not count it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

from ...errors import BusError, FatalSignal, KernelBug, OutOfMemoryKill, ProcessDead, SegmentationFault
from ...kernel.task import io_schedule
from ...kernel.tracepoint import leaf_of, record_fault
from ...mm.fault import handle_mm_fault
from ...mm.mmap import expand_downwards
from ...mm.types import FAULT_FLAG_DEFAULT, FaultFlag, Vma, VmFault, VmFaultResult, VmFlag
from ...mm.vma import find_vma
from ...stats import PerfEvent
from .pgtable import X86_PF_INSTR, X86_PF_PROT, X86_PF_WRITE

if TYPE_CHECKING:
    from ...kernel.task import Task


def exc_page_fault(task: Task, address: int, error_code: int) -> VmFault:
    """Mirrors exc_page_fault() for a user-mode #PF; raises SegmentationFault, BusError or OutOfMemoryKill.

    Returns the VmFault of the handled fault (its last attempt), its kernel time already charged.
    Tracing costs one test: with ``Machine.fault_log`` on, the same handle_page_fault() runs between two
    records (trace_page_fault()); the run loop (entry.py) makes that test itself.
    """
    if task.machine.fault_log is not None:
        return trace_page_fault(task, address, error_code)
    return handle_page_fault(task, address, error_code)


def handle_page_fault(task: Task, address: int, error_code: int) -> VmFault:
    """Mirrors handle_page_fault(): a kernel address cannot be a user's (SIGSEGV), else do_user_addr_fault()."""
    if address < 0:  # fault_in_kernel_space() -> do_kern_addr_fault() -> bad_area_nosemaphore()
        bad_area(task, address, "SEGV_MAPERR")
    return do_user_addr_fault(task, error_code, address)


def trace_page_fault(task: Task, address: int, error_code: int) -> VmFault:
    """handle_page_fault() with a FaultTrace recorded (kernel/tracepoint.py): the tracepoint's view of it."""
    at_ns, before = task.machine.now_ns, leaf_of(task, address)
    try:
        vmf = handle_page_fault(task, address, error_code)
    except FatalSignal as sig:
        record_fault(task, address, error_code, before, None, f"{sig.signame} {sig.si_code}",
                     ("exc_page_fault", "do_user_addr_fault", "bad_area"), at_ns)
        raise
    major = vmf.result & VmFaultResult.MAJOR or vmf.flags & FaultFlag.TRIED
    record_fault(task, address, error_code, before, vmf, "major" if major else "minor",
                 ("exc_page_fault", "do_user_addr_fault", *vmf.path), at_ns)
    return vmf


def do_user_addr_fault(task: Task, error_code: int, address: int) -> VmFault:
    """Mirrors do_user_addr_fault(): error code -> FaultFlag, find the VMA, check access, handle, retry.

    Each attempt's kernel time is charged when it returns. A handler that has to wait for I/O returns
    VM_FAULT_RETRY with the completion in ``vmf.wait_for``: the task sleeps until it has run
    (io_schedule(): the clock advances through the events due, as I/O wait), then the fault starts over
    from the VMA lookup with FAULT_FLAG_TRIED (the ``retry:`` label), which mm_account_fault() counts as
    major. Returns the last attempt's VmFault; its ``path`` lists every attempt.

    Simplified: one path, under the mmap lock (no per-VMA lock attempt first); the simulated task
    receives no signals while it sleeps, so fault_signal_pending() is false unless it was killed.
    """
    task.perf[PerfEvent.PAGE_FAULTS] += 1  # perf_sw_event(PERF_COUNT_SW_PAGE_FAULTS)
    flags = FAULT_FLAG_DEFAULT | FaultFlag.USER
    if error_code & X86_PF_WRITE:
        flags |= FaultFlag.WRITE
    if error_code & X86_PF_INSTR:
        flags |= FaultFlag.INSTRUCTION
    tried: list[str] = []
    vma_lock = True  # the first attempt runs under the per-VMA lock (lock_vma_under_rcu(), CONFIG_PER_VMA_LOCK)
    while True:  # retry:
        vma = find_vma(task.mm, address)  # lock_mm_and_find_vma()
        if vma is not None and vma.vm_start > address and vma.vm_flags & VmFlag.GROWSDOWN:
            expand_downwards(task, vma, address)  # exec (issue #9): expand_stack_locked(); may move vm_start down
        if vma is None or vma.vm_start > address:
            bad_area(task, address, "SEGV_MAPERR")
        if access_error(error_code, vma):
            bad_area(task, address, "SEGV_ACCERR")
        vmf = handle_mm_fault(vma, address, flags, regs=True)
        task.charge_fault(vmf)
        if not vmf.result & VmFaultResult.RETRY:
            break
        tried += [*vmf.path, "VM_FAULT_RETRY"]
        wait_for_retry(task, vmf)
        if not task.alive:  # fault_signal_pending(): killed while it slept; nothing returns to user mode
            raise ProcessDead(f"process {task.pid} was killed while its page fault waited for I/O")
        # A retry after the per-VMA-lock attempt is FAULT_FLAG_TRIED only if that attempt was major (it
        # started I/O); it then runs under the mmap lock, where every further retry is TRIED. So a fault that
        # only waited for a folio someone else's readahead was reading counts as minor (measured: a cold
        # ascending scan has 1 major fault however often it catches up with readahead).
        if not vma_lock or vmf.result & VmFaultResult.MAJOR:
            flags |= FaultFlag.TRIED
        vma_lock = False
    vmf.path[:0] = tried
    if vmf.result & VmFaultResult.OOM:
        task.kill_oom()
        raise OutOfMemoryKill(task.pid)
    if vmf.result & VmFaultResult.SIGSEGV:
        bad_area(task, address, "SEGV_MAPERR")
    if vmf.result & VmFaultResult.SIGBUS:  # do_sigbus()
        task.kill_signal(7)
        raise BusError(address, "BUS_ADRERR", task.pid)
    return vmf


def wait_for_retry(task: Task, vmf: VmFault) -> None:
    """Sleep until what a VM_FAULT_RETRY attempt waits for has run (the waits inside filemap_fault() and
    __folio_lock_or_retry(), after the mmap lock was dropped). Nothing to wait for: retry at once, but only
    once, as a retry with FAULT_FLAG_TRIED set that asks for another without waiting would never end."""
    if vmf.wait_for is not None:
        io_schedule(task, vmf.wait_for)
    elif vmf.flags & FaultFlag.TRIED and not vmf.result & VmFaultResult.MAJOR:
        raise KernelBug(f"do_user_addr_fault: VM_FAULT_RETRY after FAULT_FLAG_TRIED with nothing to wait for "
                        f"({' -> '.join(vmf.path)})")


def access_error(error_code: int, vma: Vma) -> bool:
    """Mirrors access_error(): does the VMA forbid this access?"""
    if error_code & X86_PF_WRITE:
        return not vma.vm_flags & VmFlag.WRITE
    if error_code & X86_PF_PROT:  # a read of a present page that still faulted
        return True
    return not vma.vm_flags & (VmFlag.READ | VmFlag.WRITE | VmFlag.EXEC)  # !vma_is_accessible()


def bad_area(task: Task, address: int, si_code: str) -> NoReturn:
    """Mirrors __bad_area_nosemaphore() -> force_sig_fault(SIGSEGV): no handler, so the task dies."""
    task.kill_signal(11)
    raise SegmentationFault(int(address) & ((1 << 64) - 1), si_code, task.pid)  # si_addr is unsigned


def exc_general_protection(task: Task) -> NoReturn:
    """Mirrors exc_general_protection() for a user non-canonical access: SIGSEGV, SI_KERNEL, addr 0."""
    task.kill_signal(11)
    raise SegmentationFault(0, "SI_KERNEL", task.pid)
