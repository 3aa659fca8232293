"""Render /proc and /sys files from the simulated state, in Linux 6.18's exact text formats.

Mirrors fs/proc/meminfo.c (meminfo_proc_show), mm/vmstat.c (vmstat_show), fs/proc/array.c
(do_task_stat, proc_pid_status, proc_pid_statm), fs/proc/task_mmu.c (show_map_vma, show_smap,
show_smaps_rollup, smaps_account, task_statm), and the sysfs/sysctl files of the modelled tunables. Reads state only.
"""

from __future__ import annotations

import errno
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..arch.x86.pgtable import (
    _PAGE_ACCESSED,
    _PAGE_DIRTY,
    _PAGE_PRESENT,
    _PAGE_PROTNONE,
    _PAGE_SPECIAL,
    PTE_PFN_MASK,
    pmd_trans_huge,
)
from ..constants import HPAGE_PMD_NR, PAGE_SHIFT, PAGE_SIZE
from ..hw.physmem import PG
from ..mm.huge_memory import TvaType, thp_vma_allowable_order
from ..mm.page_alloc import NR_PAGE_ORDERS
from ..mm.pagewalk import ACTION_AGAIN, MmWalk, MmWalkOps, walk_page_vma
from ..mm.pgtable import get_ptes, pmdp_get, pte_offset_map
from ..mm.shmem import ShmemFile
from ..mm.types import MMF_DISABLE_THP_COMPLETELY, VM_FLAG_MNEMONICS, MmStruct, Vma, VmFlag
from ..settings import BY_PATH
from ..stats import MmCounter, NodeStat

if TYPE_CHECKING:
    from ..kernel.task import Task
    from ..machine import Machine

PSS_SHIFT = 12
USER_HZ = 100


def read_path(m: Machine, path: str) -> str:
    """The text of ``path``; FileNotFoundError (ENOENT) for files that do not exist here."""
    if path == "/proc/vmstat":
        return "".join(f"{k} {v}\n" for k, v in m.vmstat().items())
    if path == "/proc/meminfo":
        return meminfo(m)
    if path == "/proc/buddyinfo":
        return buddyinfo(m)
    if path in BY_PATH:
        return m.settings.render(path)
    match = re.fullmatch(r"/proc/(\d+)/(stat|statm|status|maps|smaps|smaps_rollup|io)", path)
    if match:
        task = m.tasks.get(int(match.group(1)))
        if task is not None and not task.alive:  # a zombie (reaped tasks leave m.tasks): no mm any more
            return proc_zombie(task, match.group(2))
        if task is not None:
            render = {"stat": proc_pid_stat, "statm": proc_pid_statm, "status": proc_pid_status,
                      "maps": proc_pid_maps, "smaps": proc_pid_smaps,
                      "smaps_rollup": proc_pid_smaps_rollup, "io": proc_pid_io}[match.group(2)]
            return render(task)
    raise FileNotFoundError(errno.ENOENT, "No such file (or not one pagelab renders)", path)


def _kb(label: str, pages: int) -> str:
    """show_val_kb(): a 16-column label, then the value in kB right-aligned in 8."""
    return f"{label:<16}{pages * 4:>8} kB\n"


def meminfo(m: Machine) -> str:
    """Mirrors meminfo_proc_show().

    Cached = NR_FILE_PAGES - total_swapcache_pages() - Buffers, as Linux computes it: shmem pages are in
    NR_FILE_PAGES and so in Cached (and also in Shmem). Buffers is 0 (the block device's own page cache is
    not modelled: ext4 metadata has no pages here), SwapCached 0 (no swap). Dirty = NR_FILE_DIRTY,
    Writeback = NR_WRITEBACK, Mapped = NR_FILE_MAPPED; FileHugePages / FilePmdMapped = NR_FILE_THPS /
    NR_FILE_PMDMAPPED (kept in pages here, so the kB need no ``* HPAGE_PMD_NR``).
    Simplified: no slab, no vmalloc, no watermark reserve, no shmem THP (ShmemHugePages 0).
    """
    g = m.counters.gauges
    free = g[NodeStat.NR_FREE_PAGES]  # the buddy lists' free pages: not those on per-CPU lists
    file_lru = g[NodeStat.NR_ACTIVE_FILE] + g[NodeStat.NR_INACTIVE_FILE]
    stack_pages = 4 * sum(1 for t in m.tasks.values() if t.alive)  # THREAD_SIZE = 16 KiB
    rows = [
        ("MemTotal:", m.totalram_pages), ("MemFree:", free), ("MemAvailable:", free + file_lru),
        ("Buffers:", 0), ("Cached:", max(g[NodeStat.NR_FILE_PAGES], 0)), ("SwapCached:", 0),
        ("Active:", g[NodeStat.NR_ACTIVE_ANON] + g[NodeStat.NR_ACTIVE_FILE]),
        ("Inactive:", g[NodeStat.NR_INACTIVE_ANON] + g[NodeStat.NR_INACTIVE_FILE]),
        ("Active(anon):", g[NodeStat.NR_ACTIVE_ANON]), ("Inactive(anon):", g[NodeStat.NR_INACTIVE_ANON]),
        ("Active(file):", g[NodeStat.NR_ACTIVE_FILE]), ("Inactive(file):", g[NodeStat.NR_INACTIVE_FILE]),
        ("Unevictable:", g[NodeStat.NR_UNEVICTABLE]), ("Mlocked:", g[NodeStat.NR_MLOCK]),
        ("SwapTotal:", 0), ("SwapFree:", 0), ("Zswap:", 0), ("Zswapped:", 0),
        ("Dirty:", g[NodeStat.NR_DIRTY]), ("Writeback:", g[NodeStat.NR_WRITEBACK]),
        ("AnonPages:", g[NodeStat.NR_ANON_MAPPED]),
        ("Mapped:", g[NodeStat.NR_FILE_MAPPED]), ("Shmem:", g[NodeStat.NR_SHMEM]),
        ("KReclaimable:", 0), ("Slab:", 0), ("SReclaimable:", 0), ("SUnreclaim:", 0),
        ("KernelStack:", stack_pages), ("PageTables:", g[NodeStat.NR_PAGETABLE]), ("SecPageTables:", 0),
        ("NFS_Unstable:", 0), ("Bounce:", 0), ("WritebackTmp:", 0),
        ("CommitLimit:", m.vm_commit_limit()), ("Committed_AS:", m.committed_pages),
    ]
    out = "".join(_kb(label, v) for label, v in rows)
    out += f"{'VmallocTotal:':<16}{34359738367:>8} kB\n"
    out += _kb("VmallocUsed:", 0) + _kb("VmallocChunk:", 0) + _kb("Percpu:", 0)
    out += _kb("AnonHugePages:", g[NodeStat.NR_ANON_THPS])
    out += _kb("ShmemHugePages:", 0) + _kb("ShmemPmdMapped:", 0)
    out += _kb("FileHugePages:", g[NodeStat.NR_FILE_THPS]) + _kb("FilePmdMapped:", g[NodeStat.NR_FILE_PMDMAPPED])
    out += _kb("Balloon:", 0)
    for label in ("HugePages_Total:", "HugePages_Free:", "HugePages_Rsvd:", "HugePages_Surp:"):
        out += f"{label:<16}{0:>8}\n"
    out += f"{'Hugepagesize:':<16}{2048:>8} kB\n" + _kb("Hugetlb:", 0)
    out += _kb("DirectMap4k:", 0) + _kb("DirectMap2M:", m.frames.nr_frames) + _kb("DirectMap1G:", 0)
    return out


def buddyinfo(m: Machine) -> str:
    """Mirrors frag_show() -> frag_show_print() (mm/vmstat.c): per populated zone, the number of free
    blocks of each order, 0 to MAX_PAGE_ORDER."""
    zone = m.zone
    counts = "".join(f"{zone.nr_free(order):6d} " for order in range(NR_PAGE_ORDERS))
    return f"Node {0}, zone {zone.name:>8s} {counts}\n"


EXT4_DEV = "fe:00"  # the simulated disk is vda (virtio-blk, major 254), as /var/tmp on this host


# --- /proc/PID/maps and smaps ------------------------------------------------------------------

def _vma_header(vma: Vma) -> str:
    """Mirrors show_vma_header_prefix() + the name column (padded to column 73)."""
    f = vma.vm_flags
    perms = ("r" if f & VmFlag.READ else "-") + ("w" if f & VmFlag.WRITE else "-") \
        + ("x" if f & VmFlag.EXEC else "-") + ("s" if f & VmFlag.MAYSHARE else "p")
    if vma.vm_file is not None:
        dev = "00:01" if isinstance(vma.vm_file, ShmemFile) else EXT4_DEV  # tmpfs's anonymous dev, or vda's
        ino, pgoff = vma.vm_file.ino, vma.vm_pgoff << PAGE_SHIFT
    else:
        dev, ino, pgoff = "00:00", 0, 0
    special = vma.vm_ops.name if vma.vm_ops is not None and vma.vm_ops.name.startswith("[") else ""
    if special:  # exec (issue #9): a special mapping (vm_special_mapping.name: [vdso], [vvar]...) has no file
        dev, ino, pgoff = "00:00", 0, 0
    head = f"{vma.vm_start:08x}-{vma.vm_end:08x} {perms} {pgoff:08x} {dev} {ino} "
    if special:
        head = f"{head:<72} {special}"
    elif vma.vm_start <= vma.mm.start_stack <= vma.vm_end and vma.vm_flags & VmFlag.GROWSDOWN:
        head = f"{head:<72} [stack]"  # exec (issue #9): vma_is_initial_stack()
    elif vma.vm_file is not None:
        head = f"{head:<72} {vma.vm_file.name}"
    elif vma.vm_start < vma.mm.brk and vma.vm_end > vma.mm.start_brk:  # brk (issue #9): vma_is_initial_heap()
        head = f"{head:<72} [heap]"
    return head + "\n"


# exec (issue #9): the x86-64 gate VMA, which show_map() lists last for every 64-bit process (vsyscall=xonly)
VSYSCALL_LINE = "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n"


def proc_pid_maps(task: Task) -> str:
    """Mirrors show_map() over the VMAs, then get_gate_vma()'s [vsyscall] (exec, issue #9). A process made by
    m.spawn() ran no program: its maps list what it mapped and nothing else (no image, stack or gate VMA)."""
    gate = VSYSCALL_LINE if task.mm.start_stack else ""
    return "".join(_vma_header(v) for v in task.mm.vmas) + gate


@dataclass(slots=True)
class MemSizeStats:
    """Mirrors struct mem_size_stats: the smaps sums (bytes; pss fields in bytes << PSS_SHIFT)."""

    resident: int = 0
    shared_clean: int = 0
    shared_dirty: int = 0
    private_clean: int = 0
    private_dirty: int = 0
    referenced: int = 0
    anonymous: int = 0
    lazyfree: int = 0
    swap: int = 0
    pss: int = 0
    pss_anon: int = 0
    pss_file: int = 0
    pss_shmem: int = 0
    pss_dirty: int = 0
    pss_locked: int = 0
    anonymous_thp: int = 0
    shmem_thp: int = 0
    file_thp: int = 0

    def add(self, other: MemSizeStats) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(slots=True)
class SmapsWalk:
    """What the smaps walk of one VMA found: its PTE tables' slices and its PMD leaves."""

    ptes: list[np.ndarray] = field(default_factory=list)
    pmds: list[int] = field(default_factory=list)


def smaps_pte_range(pmd: int, addr: int, end: int, walk: MmWalk) -> int:
    """Mirrors smaps_pte_range(), the smaps walk's pmd_entry: a PMD leaf goes to smaps_pmd_entry(), a
    PTE table's entries for [addr, end) to smaps_pte_entry() (here: gathered, accounted all at once)."""
    m, found = walk.machine, walk.private
    entry = pmdp_get(m, pmd, addr)
    if pmd_trans_huge(entry):  # pmd_trans_huge_lock()
        found.pmds.append(entry)
        return 0
    row = pte_offset_map(m, pmd, addr)
    if not row:
        walk.action = ACTION_AGAIN
        return 0
    found.ptes.append(get_ptes(m, row, addr, (end - addr) >> PAGE_SHIFT))
    return 0


SMAPS_WALK_OPS = MmWalkOps(pmd_entry=smaps_pte_range)


@dataclass(frozen=True, slots=True)
class MappedPages:
    """The normal pages (vm_normal_page()) mapped in one VMA, one row per 4 KiB page: the entry whose
    A/D bits apply (PTE or PMD), the page, its folio's first page, and whether a PMD maps it."""

    bits: np.ndarray
    pfn: np.ndarray
    head: np.ndarray
    huge: np.ndarray


def vma_mapped_pages(m: Machine, vma: Vma) -> MappedPages:
    """Walk ``vma`` (walk_page_vma() with smaps_walk_ops: empty upper levels cost nothing, so the smaps
    of a 64 TiB mapping costs what its page tables cost) and list its mapped normal pages.

    The zero page (a special PTE) and the huge zero page (a special PMD, or a PG_zero folio) have no
    normal page and are left out, as vm_normal_page() / vm_normal_page_pmd() leave them out.
    """
    found = SmapsWalk()
    walk_page_vma(vma, SMAPS_WALK_OPS, found)
    ptes = np.concatenate(found.ptes) if found.ptes else np.zeros(0, dtype=np.int64)
    ptes = ptes[((ptes & (_PAGE_PRESENT | _PAGE_PROTNONE)) != 0) & ((ptes & _PAGE_SPECIAL) == 0)]
    pfns = (ptes & PTE_PFN_MASK) >> PAGE_SHIFT
    pmds = np.array(found.pmds, dtype=np.int64)
    heads = (pmds & PTE_PFN_MASK) >> PAGE_SHIFT
    normal = ((pmds & _PAGE_SPECIAL) == 0) & ((m.frames.flags[heads] & PG.ZERO) == 0)
    pmds, heads = pmds[normal], heads[normal]
    sub = (heads[:, None] + np.arange(HPAGE_PMD_NR, dtype=np.int64)).ravel()
    big = np.repeat(heads, HPAGE_PMD_NR)
    return MappedPages(bits=np.concatenate([ptes, np.repeat(pmds, HPAGE_PMD_NR)]),
                       pfn=np.concatenate([pfns, sub]), head=np.concatenate([m.frames.compound_head(pfns), big]),
                       huge=np.concatenate([np.zeros(pfns.shape[0], dtype=bool), np.ones(sub.shape[0], dtype=bool)]))


def smap_gather_stats(m: Machine, vma: Vma) -> MemSizeStats:
    """Mirrors smap_gather_stats() -> smaps_pte_entry() / smaps_pmd_entry() -> smaps_account() ->
    smaps_page_accumulate() for one VMA, over all its pages at once.

    A page counts private when its folio has one reference or the page one mapping (its precise map count:
    PTEs mapping it plus PMDs mapping its whole folio, CONFIG_PAGE_MAPCOUNT); else its PSS is its size
    divided by that count. A PMD-mapped THP counts its 2 MiB in AnonHugePages (anon),
    ShmemPmdMapped (shmem) or FilePmdMapped, and each of its pages as above, with the PMD's A/D bits
    and the folio's flags (the per-page loop smaps_account() runs for a shared large folio).
    """
    mss = MemSizeStats()
    pages = vma_mapped_pages(m, vma)
    frames = m.frames
    fl = frames.flags[pages.head]
    anon = (fl & PG.ANON) != 0
    swapbacked = (fl & PG.SWAPBACKED) != 0
    dirty = ((pages.bits & _PAGE_DIRTY) != 0) | ((fl & PG.DIRTY) != 0)
    young = ((pages.bits & _PAGE_ACCESSED) != 0) | ((fl & PG.REFERENCED) != 0)
    large = (fl & PG.HEAD) != 0  # folio_precise_page_mapcount(): the page's PTE mappings + the folio's PMD ones
    mapcount = frames.mapcount[pages.pfn] + np.where(large, frames.entire_mapcount[pages.head], 0)
    private = (frames.refcount[pages.head] == 1) | (mapcount < 2)
    full = PAGE_SIZE << PSS_SHIFT
    pss = np.where(private, full, full // np.maximum(mapcount, 1)).astype(np.int64)
    mss.resident = PAGE_SIZE * int(pages.pfn.shape[0])
    mss.anonymous = PAGE_SIZE * int(anon.sum())
    mss.lazyfree = PAGE_SIZE * int((anon & ~swapbacked & ~dirty).sum())
    mss.referenced = PAGE_SIZE * int(young.sum())
    mss.anonymous_thp = PAGE_SIZE * int((pages.huge & anon).sum())
    mss.shmem_thp = PAGE_SIZE * int((pages.huge & ~anon & swapbacked).sum())
    mss.file_thp = PAGE_SIZE * int((pages.huge & ~anon & ~swapbacked).sum())
    mss.pss = int(pss.sum())
    mss.pss_anon = int(pss[anon].sum())
    mss.pss_shmem = int(pss[~anon & swapbacked].sum())
    mss.pss_file = int(pss[~anon & ~swapbacked].sum())
    mss.pss_dirty = int(pss[dirty].sum())
    if vma.vm_flags & VmFlag.LOCKED:
        mss.pss_locked = mss.pss
    mss.private_dirty = PAGE_SIZE * int((private & dirty).sum())
    mss.private_clean = PAGE_SIZE * int((private & ~dirty).sum())
    mss.shared_dirty = PAGE_SIZE * int((~private & dirty).sum())
    mss.shared_clean = PAGE_SIZE * int((~private & ~dirty).sum())
    return mss


def lazyfree_batched(m: Machine, vma: Vma) -> int:
    """Simulator-only: the bytes of ``vma`` smaps would add to LazyFree once this CPU's lru_lazyfree batch
    is applied (mm/swap.c: lru_add_drain() -> folio_batch_move_lru() -> lru_lazyfree()).

    The kernel applies that batch whenever any task on the CPU drains it, or anything calls
    lru_add_drain_all() (khugepaged's scan, compaction, drop_caches, MADV_COLLAPSE), so the LazyFree a
    reader sees lies between smaps' value and smaps' value plus this. Never rendered: no kernel file has it.
    """
    batch = np.asarray(m.cpu_fbatches.pending(), dtype=np.int64)
    if not batch.shape[0]:
        return 0
    pages = vma_mapped_pages(m, vma)
    fl = m.frames.flags[pages.head]
    # folio_batch_move_lru() skips folios off the LRU; lru_lazyfree() takes anon, swap-backed, evictable
    # ones and clears PG_dirty, so smaps counts them as LazyFree unless the PTE (or PMD) is dirty.
    need = PG.LRU | PG.ANON | PG.SWAPBACKED
    movable = ((fl & need) == need) & ((fl & PG.UNEVICTABLE) == 0)
    counted = np.isin(pages.head, batch) & movable & ((pages.bits & _PAGE_DIRTY) == 0)
    return PAGE_SIZE * int(counted.sum())


def _d(label: str, nbytes: int) -> str:
    """SEQ_PUT_DEC(): a 16-column label and the kB value right-aligned in 8."""
    return f"{label:<16}{nbytes >> 10:>8} kB\n"


def _show_smap_body(mss: MemSizeStats, rollup: bool) -> str:
    """Mirrors __show_smap(): the fields common to smaps and smaps_rollup."""
    out = _d("Rss:", mss.resident) + _d("Pss:", mss.pss >> PSS_SHIFT) + _d("Pss_Dirty:", mss.pss_dirty >> PSS_SHIFT)
    if rollup:
        out += _d("Pss_Anon:", mss.pss_anon >> PSS_SHIFT) + _d("Pss_File:", mss.pss_file >> PSS_SHIFT)
        out += _d("Pss_Shmem:", mss.pss_shmem >> PSS_SHIFT)
    out += _d("Shared_Clean:", mss.shared_clean) + _d("Shared_Dirty:", mss.shared_dirty)
    out += _d("Private_Clean:", mss.private_clean) + _d("Private_Dirty:", mss.private_dirty)
    out += _d("Referenced:", mss.referenced) + _d("Anonymous:", mss.anonymous) + _d("KSM:", 0)
    out += _d("LazyFree:", mss.lazyfree) + _d("AnonHugePages:", mss.anonymous_thp)
    out += _d("ShmemPmdMapped:", mss.shmem_thp) + _d("FilePmdMapped:", mss.file_thp)
    out += _d("Shared_Hugetlb:", 0) + _d("Private_Hugetlb:", 0)
    out += _d("Swap:", mss.swap) + _d("SwapPss:", 0) + _d("Locked:", mss.pss_locked >> PSS_SHIFT)
    return out


def thp_eligible(m: Machine, vma: Vma) -> bool:
    """Mirrors smaps' THPeligible: thp_vma_allowable_orders(vma, vm_flags, TVA_SMAPS, THP_ORDERS_ALL)
    (only the PMD order is modelled: every other mTHP size is ``never``, as on the reference host)."""
    return thp_vma_allowable_order(vma, vma.vm_flags, TvaType.SMAPS)


def proc_pid_smaps(task: Task) -> str:
    """Mirrors show_smap() for every VMA."""
    m = task.machine
    out = []
    for vma in task.mm.vmas:
        mss = smap_gather_stats(m, vma)
        size = vma.vm_end - vma.vm_start
        flags = "".join(f"{name} " for bit, name in VM_FLAG_MNEMONICS.items() if vma.vm_flags & bit)
        out.append(_vma_header(vma) + _d("Size:", size) + _d("KernelPageSize:", 4096)
                   + _d("MMUPageSize:", 4096) + _show_smap_body(mss, rollup=False)
                   + f"THPeligible:    {int(thp_eligible(m, vma)):>8}\n" + f"VmFlags: {flags}\n")
    return "".join(out)


def proc_pid_smaps_rollup(task: Task) -> str:
    """Mirrors show_smaps_rollup(): the sums over all VMAs under one [rollup] header."""
    m, mm = task.machine, task.mm
    total = MemSizeStats()
    for vma in mm.vmas:
        total.add(smap_gather_stats(m, vma))
    start = mm.vmas[0].vm_start if mm.vmas else 0
    end = mm.vmas[-1].vm_end if mm.vmas else 0
    head = f"{start:08x}-{end:08x} ---p 00000000 00:00 0 "
    return f"{head:<72} [rollup]\n" + _show_smap_body(total, rollup=True)


# --- /proc/PID/status and stat -------------------------------------------------------------------

def _status_kb(label: str, pages: int) -> str:
    """Mirrors seq_put_decimal_ull_width(m, label, kB, 8) in task_mem()."""
    return f"{label}\t{pages * 4:>8} kB\n"


def proc_pid_status(task: Task) -> str:
    """Mirrors proc_pid_status() (fs/proc/array.c) and task_mem() (fs/proc/task_mmu.c)."""
    mm: MmStruct = task.mm
    rss = mm.rss
    hiwater_rss = max(mm.hiwater_rss, mm.get_rss())
    pte_pages = mm.nr_ptes + mm.nr_pmds + mm.nr_puds
    out = (f"Name:\t{task.comm}\nUmask:\t0022\nState:\tR (running)\nTgid:\t{task.pid}\nNgid:\t0\n"
           f"Pid:\t{task.pid}\nPPid:\t{task.ppid}\nTracerPid:\t0\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n"
           f"FDSize:\t64\nGroups:\t \nNStgid:\t{task.pid}\nNSpid:\t{task.pid}\nNSpgid:\t{task.pid}\n"
           f"NSsid:\t{task.pid}\nKthread:\t0\n")
    out += _status_kb("VmPeak:", max(mm.hiwater_vm, mm.total_vm)) + _status_kb("VmSize:", mm.total_vm)
    out += _status_kb("VmLck:", mm.locked_vm) + _status_kb("VmPin:", 0)
    out += _status_kb("VmHWM:", hiwater_rss) + _status_kb("VmRSS:", mm.get_rss())
    out += _status_kb("RssAnon:", rss[MmCounter.MM_ANONPAGES])
    out += _status_kb("RssFile:", rss[MmCounter.MM_FILEPAGES])
    out += _status_kb("RssShmem:", rss[MmCounter.MM_SHMEMPAGES])
    out += _status_kb("VmData:", mm.data_vm) + _status_kb("VmStk:", 0) + _status_kb("VmExe:", 0)
    out += _status_kb("VmLib:", 0) + _status_kb("VmPTE:", pte_pages)
    out += _status_kb("VmSwap:", rss[MmCounter.MM_SWAPENTS]) + _status_kb("HugetlbPages:", 0)
    thp_enabled = 0 if task.mm.flags & MMF_DISABLE_THP_COMPLETELY else 1  # !MMF_DISABLE_THP_COMPLETELY
    out += f"CoreDumping:\t0\nTHP_enabled:\t{thp_enabled}\nuntag_mask:\t0xffffffffffffffff\nThreads:\t1\n"
    return out


def proc_zombie(task: Task, name: str) -> str:
    """A zombie's /proc/PID files (measured on 6.18): its mm is gone, so maps and smaps are empty, status
    has no Vm*/Rss* lines, statm is all zeros, stat says Z with no memory; smaps_rollup is ESRCH."""
    if name in ("maps", "smaps"):
        return ""
    if name == "smaps_rollup":
        raise ProcessLookupError(errno.ESRCH, "No such process", f"/proc/{task.pid}/smaps_rollup")
    if name == "statm":
        return "0 0 0 0 0 0 0\n"
    if name == "status":
        return (f"Name:\t{task.comm}\nUmask:\t0022\nState:\tZ (zombie)\nTgid:\t{task.pid}\nNgid:\t0\n"
                f"Pid:\t{task.pid}\nPPid:\t{task.ppid}\nTracerPid:\t0\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n"
                f"FDSize:\t0\nGroups:\t \nNStgid:\t{task.pid}\nNSpid:\t{task.pid}\nNSpgid:\t{task.pid}\n"
                f"NSsid:\t{task.pid}\nKthread:\t0\nThreads:\t1\n")
    if name == "stat":
        return proc_pid_stat(task, state="Z")
    return proc_pid_io(task)


def task_statm(mm: MmStruct) -> tuple[int, int, int, int, int]:
    """Mirrors task_statm() (fs/proc/task_mmu.c): (size, shared, text, data, resident), in pages.

    shared = MM_FILEPAGES + MM_SHMEMPAGES, resident = shared + MM_ANONPAGES, data = data_vm + stack_vm,
    text = the pages from start_code to end_code, size = total_vm.
    Simplified: a simulated process is spawned, not exec'd, and MAP_GROWSDOWN is not modelled, so it has
    no text (start_code = end_code = 0) and no VM_STACK mapping (stack_vm = 0).
    """
    rss = mm.rss
    shared = rss[MmCounter.MM_FILEPAGES] + rss[MmCounter.MM_SHMEMPAGES]
    text = 0
    stack_vm = 0
    data = mm.data_vm + stack_vm
    resident = shared + rss[MmCounter.MM_ANONPAGES]
    return mm.total_vm, shared, text, data, resident


def proc_pid_statm(task: Task) -> str:
    """Mirrors proc_pid_statm() (fs/proc/array.c): ``size resident shared text lib data dt`` in pages.

    lib and dt are always 0 (unused since Linux 2.6).
    """
    size, shared, text, data, resident = task_statm(task.mm)
    return f"{size} {resident} {shared} {text} 0 {data} 0\n"


def proc_pid_stat(task: Task, state: str = "R") -> str:
    """Mirrors do_task_stat(): the 52 fields of /proc/PID/stat (minflt is field 10, majflt 12)."""
    m, mm = task.machine, task.mm
    ticks = m.cpu.freq_mhz * 1_000_000 // USER_HZ
    fields = [
        task.pid, f"({task.comm})", state, task.ppid, task.pid, task.pid, 0, -1, 4194304,
        task.min_flt, 0, task.maj_flt, 0, task.utime_cycles // ticks, task.stime_cycles // ticks, 0, 0,
        20, 0, 1, 0, task.start_cycles // ticks, mm.total_vm << PAGE_SHIFT, mm.get_rss(),
        18446744073709551615, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 17, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0,
    ]
    return " ".join(str(f) for f in fields) + "\n"


# --- /proc/PID/io --------------------------------------------------------------------------------

def proc_pid_io(task: Task) -> str:
    """Mirrors proc_pid_io_accounting() -> do_io_accounting() (fs/proc/base.c) for a single-threaded task:
    the task's struct task_io_accounting (rchar/wchar: bytes returned by read()/written by write()
    syscalls, syscr/syscw: their calls; read_bytes/write_bytes: bytes this task caused to be fetched
    from / sent to the storage layer).

    Simplified: cancelled_write_bytes (dirty page-cache bytes a truncation threw away before writeback,
    task_io_account_cancelled_write()) is 0 unless the task records ``ioac_cancelled_write_bytes``.
    """
    cancelled = int(getattr(task, "ioac_cancelled_write_bytes", 0))
    return (f"rchar: {task.ioac_rchar}\nwchar: {task.ioac_wchar}\nsyscr: {task.ioac_syscr}\n"
            f"syscw: {task.ioac_syscw}\nread_bytes: {task.ioac_read_bytes}\n"
            f"write_bytes: {task.ioac_write_bytes}\ncancelled_write_bytes: {cancelled}\n")
