"""The x86 page-fault entry: from the hardware's trap to the generic fault path, or to SIGSEGV.

Mirrors arch/x86/mm/fault.c: exc_page_fault() -> handle_page_fault() -> do_user_addr_fault(),
access_error(), bad_area()/bad_area_access_error() and the #GP path for non-canonical addresses
(arch/x86/kernel/traps.c: exc_general_protection(), SIGSEGV with si_code SI_KERNEL, si_addr 0).

perf's ``page-faults`` event is counted for every #PF on a user address, including those that end in
SIGSEGV (perf_sw_event(PERF_COUNT_SW_PAGE_FAULTS) in do_user_addr_fault()); a user access to a kernel
address goes through do_kern_addr_fault() instead, which does not count it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

from ...errors import BusError, FatalSignal, OutOfMemoryKill, SegmentationFault
from ...mm.fault import handle_mm_fault
from ...mm.types import FAULT_FLAG_DEFAULT, FaultFlag, Vma, VmFault, VmFaultResult, VmFlag
from ...mm.vma import find_vma
from ...observe.trace import leaf_of, record
from ...stats import PerfEvent
from .pgtable import X86_PF_INSTR, X86_PF_PROT, X86_PF_WRITE

if TYPE_CHECKING:
    from ...kernel.task import Task


def exc_page_fault(task: Task, address: int, error_code: int) -> VmFault:
    """Mirrors exc_page_fault() for a user-mode #PF; raises SegmentationFault or OutOfMemoryKill.

    Returns the VmFault of a handled fault (for the cost model and ``explain``).
    """
    if task.machine.fault_log is None:
        if address < 0:  # fault_in_kernel_space() -> do_kern_addr_fault() -> bad_area_nosemaphore()
            bad_area(task, address, "SEGV_MAPERR")
        return do_user_addr_fault(task, error_code, address)
    before = leaf_of(task, address)
    try:
        if address < 0:
            bad_area(task, address, "SEGV_MAPERR")
        vmf = do_user_addr_fault(task, error_code, address)
    except FatalSignal as sig:
        record(task, address, error_code, before, None, f"{sig.signame} {sig.si_code}",
               ("exc_page_fault", "do_user_addr_fault", "bad_area"))
        raise
    record(task, address, error_code, before, vmf, "minor", ("exc_page_fault", "do_user_addr_fault", *vmf.path))
    return vmf


def do_user_addr_fault(task: Task, error_code: int, address: int) -> VmFault:
    """Mirrors do_user_addr_fault(): error code -> FaultFlag, find the VMA, check access, handle."""
    task.perf[PerfEvent.PAGE_FAULTS] += 1  # perf_sw_event(PERF_COUNT_SW_PAGE_FAULTS)
    flags = FAULT_FLAG_DEFAULT | FaultFlag.USER
    if error_code & X86_PF_WRITE:
        flags |= FaultFlag.WRITE
    if error_code & X86_PF_INSTR:
        flags |= FaultFlag.INSTRUCTION
    vma = find_vma(task.mm, address)  # lock_mm_and_find_vma(); no stack VMA to expand
    if vma is None or vma.vm_start > address:
        bad_area(task, address, "SEGV_MAPERR")
    if access_error(error_code, vma):
        bad_area(task, address, "SEGV_ACCERR")
    vmf = handle_mm_fault(vma, address, flags, regs=True)
    if vmf.result & VmFaultResult.OOM:
        task.kill_oom()
        raise OutOfMemoryKill(task.pid)
    if vmf.result & VmFaultResult.SIGSEGV:
        bad_area(task, address, "SEGV_MAPERR")
    if vmf.result & VmFaultResult.SIGBUS:  # do_sigbus()
        task.kill_signal(7)
        raise BusError(address, "BUS_ADRERR", task.pid)
    return vmf


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
