"""Kernel objects of memory management: VMA flags, the VMA, the mm, and the fault state.

Mirrors include/linux/mm_types.h (struct vm_area_struct, struct mm_struct, struct vm_fault) and
include/linux/mm.h (VM_* flags, FAULT_FLAG_*, VM_FAULT_*).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..flags import Flags
from .vma_tree import VmaTree

if TYPE_CHECKING:
    from ..clock import Event
    from ..fs.file import File
    from ..kernel.task import Task
    from ..machine import Machine
    from .rmap import AnonVma
    from .shmem import ShmemFile


class VmFlag(Flags):
    """vm_flags bits (include/linux/mm.h), x86-64 values."""

    NONE = 0
    READ = 0x1
    WRITE = 0x2
    EXEC = 0x4
    SHARED = 0x8
    MAYREAD = 0x10
    MAYWRITE = 0x20
    MAYEXEC = 0x40
    MAYSHARE = 0x80
    GROWSDOWN = 0x100
    PFNMAP = 0x400
    LOCKED = 0x2000
    IO = 0x4000
    SEQ_READ = 0x8000
    RAND_READ = 0x10000
    DONTCOPY = 0x20000
    DONTEXPAND = 0x40000
    LOCKONFAULT = 0x80000
    ACCOUNT = 0x100000
    NORESERVE = 0x200000
    HUGETLB = 0x400000
    WIPEONFORK = 0x2000000
    DONTDUMP = 0x4000000
    MIXEDMAP = 0x10000000
    HUGEPAGE = 0x20000000
    NOHUGEPAGE = 0x40000000
    MERGEABLE = 0x80000000


# fs/proc/task_mmu.c: show_smap_vma_flags() mnemonics, printed in bit order.
VM_FLAG_MNEMONICS: dict[int, str] = {
    VmFlag.READ: "rd", VmFlag.WRITE: "wr", VmFlag.EXEC: "ex", VmFlag.SHARED: "sh",
    VmFlag.MAYREAD: "mr", VmFlag.MAYWRITE: "mw", VmFlag.MAYEXEC: "me", VmFlag.MAYSHARE: "ms",
    VmFlag.GROWSDOWN: "gd", VmFlag.PFNMAP: "pf", VmFlag.LOCKED: "lo", VmFlag.IO: "io",
    VmFlag.SEQ_READ: "sr", VmFlag.RAND_READ: "rr", VmFlag.DONTCOPY: "dc", VmFlag.DONTEXPAND: "de",
    VmFlag.LOCKONFAULT: "lf", VmFlag.ACCOUNT: "ac", VmFlag.NORESERVE: "nr", VmFlag.HUGETLB: "ht",
    VmFlag.WIPEONFORK: "wf", VmFlag.DONTDUMP: "dd", VmFlag.MIXEDMAP: "mm", VmFlag.HUGEPAGE: "hg",
    VmFlag.NOHUGEPAGE: "nh", VmFlag.MERGEABLE: "mg",
}

# Flags that do not stop two VMAs from merging (VM_IGNORE_MERGE is VM_SOFTDIRTY, not modelled).
VM_ACCESS_FLAGS = VmFlag.READ | VmFlag.WRITE | VmFlag.EXEC


@dataclass(frozen=True, slots=True)
class VmOperations:
    """Mirrors struct vm_operations_struct: what a file-backed VMA does on a fault.

    ``fault`` fills ``vmf.page`` with a referenced page (or reports why not); ``map_pages`` maps the
    cached pages of [start_pgoff, end_pgoff] around a fault without I/O (fault-around) and returns
    VmFaultResult bits. A VMA with no vm_ops is anonymous (vma_is_anonymous()).
    """

    name: str
    fault: Callable[[VmFault], int]
    map_pages: Callable[[VmFault, int, int], int] | None = None
    page_mkwrite: Callable[[VmFault], int] | None = None


@dataclass(slots=True, eq=False)
class Vma:
    """Mirrors struct vm_area_struct: one mapped range [vm_start, vm_end) of an address space.

    Once linked, its bounds change only through mm/vma.py: vma_set_range() (the VMA tree is keyed by them).
    """

    mm: MmStruct
    vm_start: int
    vm_end: int
    vm_flags: int  # VmFlag bits
    vm_pgoff: int
    vm_page_prot: int
    vm_file: ShmemFile | File | None = None
    anon_vma: AnonVma | None = None  # set once an anonymous page exists (anon_vma_prepare)
    # anon_vma_chain: every anon_vma this VMA is linked into: its own, and after fork() its ancestors'
    # (anon_vma_clone()), whose pages it may map; a reverse-map walk from any of them finds it
    anon_vma_chain: list[AnonVma] = field(default_factory=list)
    vm_ops: VmOperations | None = None  # None: an anonymous VMA

    @property
    def pages(self) -> int:
        return (self.vm_end - self.vm_start) >> 12


@dataclass(slots=True, eq=False)
class MmStruct:
    """Mirrors struct mm_struct: the VMAs, the page-table root, RSS counters and high-water marks."""

    machine: Machine
    pgd: int  # row of the PGD in the page-table pool (CR3)
    mmap_base: int
    mm_id: int = 0  # mm->mm_id (CONFIG_MM_ID): what large folios record of the mms mapping them; 0 = MM_ID_DUMMY
    vmas: VmaTree = field(default_factory=VmaTree)  # in address order (Linux: the maple tree mm_mt)
    rss: list[int] = field(default_factory=lambda: [0, 0, 0, 0])  # indexed by MmCounter
    hiwater_rss: int = 0
    hiwater_vm: int = 0
    total_vm: int = 0
    data_vm: int = 0
    locked_vm: int = 0
    nr_ptes: int = 0  # page-table pages below the PGD, by level (mm_pgtables_bytes)
    nr_pmds: int = 0
    nr_puds: int = 0
    asid: int = -1  # PCID slot while loaded on the CPU, -1 when it holds none
    owner: Task | None = None
    flags: int = 0  # MMF_* bits (mm->flags)
    def_flags: int = 0  # mm->def_flags: VmFlag bits every new VMA gets (VM_LOCKED after mlockall(MCL_FUTURE))
    pmd_huge_pte: dict[int, int] = field(default_factory=dict)  # deposited PTE tables: PMD entry -> table row
    start_brk: int = 0  # brk (issue #9): where the heap starts (set at exec/spawn: mm/mmap.py arch_randomize_brk())
    brk: int = 0  # brk (issue #9): the current program break (SYSCALL_DEFINE1(brk))
    start_stack: int = 0  # exec (issue #9): the initial stack pointer's page is in [stack] (setup_arg_pages())

    def get_rss(self) -> int:
        """Mirrors get_mm_rss(): file + anon + shmem pages mapped."""
        return self.rss[0] + self.rss[1] + self.rss[3]

    def update_hiwater_rss(self) -> None:
        """Mirrors update_hiwater_rss(): remember the peak before RSS goes down."""
        self.hiwater_rss = max(self.hiwater_rss, self.get_rss())

    def update_hiwater_vm(self) -> None:
        self.hiwater_vm = max(self.hiwater_vm, self.total_vm)


# mm->flags bits (include/linux/mm_types.h: MMF_*); values are ours, the names are Linux's.
MMF_HUGE_ZERO_FOLIO = 1 << 0  # this mm holds a reference to the huge zero folio
MMF_DISABLE_THP_EXCEPT_ADVISED = 1 << 1  # prctl(PR_SET_THP_DISABLE, 1, PR_THP_DISABLE_EXCEPT_ADVISED)
MMF_DISABLE_THP_COMPLETELY = 1 << 2  # prctl(PR_SET_THP_DISABLE, 1, 0)
MMF_VM_MERGE_ANY = 1 << 30  # prctl(PR_SET_MEMORY_MERGE, 1): every KSM-compatible VMA is VM_MERGEABLE (issue #9, mremap)
# What a child's mm keeps of the parent's flags at fork (mmf_init_flags(): MMF_INIT_MASK)
MMF_INIT_MASK = MMF_DISABLE_THP_EXCEPT_ADVISED | MMF_DISABLE_THP_COMPLETELY | MMF_VM_MERGE_ANY


def vma_is_anonymous(vma: Vma) -> bool:
    """Mirrors vma_is_anonymous(): a VMA without vm_ops."""
    return vma.vm_ops is None


def add_mm_counter(mm: MmStruct, member: int, value: int) -> None:
    """Mirrors add_mm_counter(): move RSS counter ``member`` (stats.MmCounter) of ``mm`` by ``value`` pages."""
    mm.rss[member] += value


class FaultKind(enum.StrEnum):
    """How a fault was resolved: the leaf handler that ran, by its kernel name.

    Keys the cost model (hw/cost.py FAULT_NS, by value) and ``explain``'s text (observe/trace.py).
    """

    DO_ANONYMOUS_PAGE = "do_anonymous_page"  # new zeroed page on a write
    DO_ANONYMOUS_PAGE_ZERO = "do_anonymous_page(zero)"  # the zero page mapped on a read
    WP_PAGE_COPY_ZERO = "wp_page_copy(zero)"  # a write to the zero page: new zeroed page
    WP_PAGE_COPY = "wp_page_copy"  # copy-on-write of a shared page
    WP_PAGE_REUSE = "wp_page_reuse"  # write to an exclusive read-only page: made writable
    DO_READ_FAULT = "do_read_fault"  # read of a file page, mapped alone
    DO_FAULT_AROUND = "do_read_fault(around)"  # read of a file page, mapped with its cached neighbours
    DO_SHARED_FAULT = "do_shared_fault"  # write to a shared file page
    DO_COW_FAULT = "do_cow_fault"  # write to a private file mapping: a private copy of the cache page
    DO_SET_PMD = "do_set_pmd"  # a PMD-sized page-cache folio mapped by one PMD
    WP_PAGE_SHARED = "wp_page_shared"  # write to a read-only PTE of a shared file mapping (write-notify)
    SPURIOUS = "spurious"  # the PTE already allowed it: only A/D bits set
    DO_HUGE_PMD_ANONYMOUS_PAGE = "do_huge_pmd_anonymous_page"  # a new 2 MiB THP mapped by one PMD
    HUGE_ZERO_PAGE = "do_huge_pmd_anonymous_page(zero)"  # a read: the huge zero page mapped by one PMD
    DO_HUGE_ZERO_WP_PMD = "do_huge_zero_wp_pmd"  # a write to the huge zero page: a new THP replaces it
    DO_HUGE_PMD_WP_PAGE = "do_huge_pmd_wp_page"  # a write to an exclusive read-only THP: made writable
    HUGE_PMD_SET_ACCESSED = "huge_pmd_set_accessed"  # the PMD already allowed it: only A/D bits set


class FaultFlag(Flags):
    """Mirrors enum fault_flag (include/linux/mm_types.h)."""

    NONE = 0
    WRITE = 1 << 0
    MKWRITE = 1 << 1
    ALLOW_RETRY = 1 << 2
    RETRY_NOWAIT = 1 << 3
    KILLABLE = 1 << 4
    TRIED = 1 << 5
    USER = 1 << 6
    REMOTE = 1 << 7
    INSTRUCTION = 1 << 8
    INTERRUPTIBLE = 1 << 9
    UNSHARE = 1 << 10
    ORIG_PTE_VALID = 1 << 11
    VMA_LOCK = 1 << 12


FAULT_FLAG_DEFAULT = FaultFlag.ALLOW_RETRY | FaultFlag.KILLABLE | FaultFlag.INTERRUPTIBLE


class VmFaultResult(Flags):
    """Mirrors enum vm_fault_reason (include/linux/mm_types.h): what a fault handler reports."""

    NONE = 0
    OOM = 0x000001
    SIGBUS = 0x000002
    MAJOR = 0x000004
    HWPOISON = 0x000010
    HWPOISON_LARGE = 0x000020
    SIGSEGV = 0x000040
    NOPAGE = 0x000100
    LOCKED = 0x000200
    RETRY = 0x000400
    FALLBACK = 0x000800
    DONE_COW = 0x001000
    NEEDDSYNC = 0x002000
    COMPLETED = 0x004000


VM_FAULT_ERROR = (VmFaultResult.OOM | VmFaultResult.SIGBUS | VmFaultResult.SIGSEGV
                  | VmFaultResult.HWPOISON | VmFaultResult.HWPOISON_LARGE)


@dataclass(slots=True, eq=False)
class VmFault:
    """Mirrors struct vm_fault: the state one fault carries through the handlers.

    Inputs (``vma``, ``address``, ``real_address``, ``pgoff``, ``flags``) are fixed after construction;
    the handlers fill ``pmd`` (the row of the PTE table, 0 if none yet), ``orig_pte`` and ``page``.
    ``handler`` is the FaultKind of the leaf handler that ran, for the cost model and for ``explain``.
    """

    vma: Vma
    address: int
    real_address: int
    pgoff: int
    flags: int  # FaultFlag bits
    pmd: int = 0
    orig_pmd: int = 0
    orig_pte: int = 0
    page: int = -1
    cow_page: int = -1
    handler: FaultKind | None = None
    result: int = 0  # VmFaultResult bits
    path: list[str] = field(default_factory=list)
    wait_for: Event | None = None  # with VM_FAULT_RETRY: the I/O completion to sleep on before the retry
