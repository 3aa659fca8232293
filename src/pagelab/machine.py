"""The Machine: one simulated computer running Linux's memory manager.

Everything hangs off a Machine (no module-level state): the clock, the settings, the counters, the
hardware (frame table, page-table pool, TLB, CPU model) and the kernel's state (tasks, the zero page,
commit accounting). Two machines in one process never interfere.
"""

from __future__ import annotations

import random
from typing import Any

from .arch.x86.tlb import CpuTlbState
from .clock import Clock
from .constants import PAGE_SIZE, TASK_SIZE, MiB, parse_size
from .errors import NotModelled
from .hw.cost import CostModel
from .hw.cpu import CpuModel, get_cpu_model
from .hw.physmem import PG, FrameTable
from .hw.ptpool import PageTablePool
from .hw.tlb import Tlb
from .kernel.task import Task
from .mm.pgtable import pgtable_alloc
from .mm.swap import CpuFolioBatches
from .mm.types import MmStruct
from .observe.procfs import read_path
from .observe.trace import FaultTrace
from .process import Process
from .settings import BY_PATH, Settings
from .stats import Counters, NodeStat

VERSION_MODELLED = "6.18"
_THP_PATH = "/sys/kernel/mm/transparent_hugepage/enabled"


class Machine:
    """A simulated computer: ``ram`` of physical memory, one CPU of model ``cpu``, Linux 6.18's mm.

    ``seed`` drives every random choice (mmap base randomisation, workloads), so the same inputs and
    seed give the same outputs, bit for bit. ``batch_faults`` lets runs of first-touch faults take the
    batched path, which leaves exactly the state one-at-a-time faults leave (tests hold them equal).
    """

    def __init__(self, ram: int | str = "2GiB", swap: int | str | None = None, disk: str = "nvme",
                 thp: str = "madvise", cpu: str | CpuModel = "skylake", seed: int = 0,
                 settings: dict[str, Any] | None = None, batch_faults: bool = True) -> None:
        ram_bytes = parse_size(ram)
        if ram_bytes < 16 * MiB:
            raise ValueError(f"ram must be at least 16 MiB, got {ram!r}")
        if swap not in (None, 0, "0"):
            raise NotModelled("swap devices come with memory pressure (reclaim); use swap=None")
        self.config = {"ram": ram_bytes, "swap": 0, "disk": disk, "thp": thp,
                       "cpu": get_cpu_model(cpu).name, "seed": seed}
        self.seed = seed
        self.cpu: CpuModel = get_cpu_model(cpu)
        self.cost = CostModel(self.cpu.freq_mhz)
        self.clock = Clock(self.cpu.freq_mhz)
        self.clock_cycles = self.clock.cycles
        self.settings = Settings({_THP_PATH: thp, **(settings or {})})
        self.counters = Counters()
        self.batch_faults = batch_faults
        self.disk = disk
        self._rng = {"mmap": random.Random(f"{seed}:mmap")}
        # Hardware.
        self.frames = FrameTable(ram_bytes // PAGE_SIZE)
        self.ptpool = PageTablePool()
        self.tlb = Tlb(self.cpu)
        self.cpu_tlbstate = CpuTlbState()
        self.cpu_fbatches = CpuFolioBatches()
        # Kernel state.
        self.zero_pfn = 0
        self.frames.reserve(self.zero_pfn)  # the zero page lives in the kernel image
        self.frames.flags[self.zero_pfn] = PG.RESERVED | PG.ZERO
        self.totalram_pages = self.frames.nr_frames - 1
        self.counters.gauges[NodeStat.NR_FREE_PAGES] = self.frames.nr_free
        self.committed_pages = 0
        self.page_data: dict[int, bytearray] = {}  # bytes written by store(); absent = all zero
        self.tasks: dict[int, Task] = {}
        self._next_pid = 1000
        self._next_id = 1
        self._next_ino = 1024
        self.host_config: dict[str, Any] = {}  # what from_host() read off the host
        self.fault_log: list[FaultTrace] | None = None  # a list turns per-fault recording on (explain)

    @classmethod
    def from_host(cls, *, ram: int | str | None = None, cpu: str | CpuModel = "skylake", seed: int = 0,
                  **kwargs: Any) -> Machine:
        """A machine shaped like this host: its RAM and the tunables the simulator models, copied.

        Every probed host fact (kernel, THP and mTHP modes, khugepaged, KSM, read_ahead_kb, swappiness,
        watermarks, overcommit, dirty ratios, RLIMIT_MEMLOCK ...) is kept in ``host_config`` and
        recorded with every result, modelled or not.
        """
        from .real.probe import probe_host

        facts = probe_host()
        if facts["SwapTotal_kB"]:
            raise NotModelled("this host has swap; swap devices come with memory pressure (reclaim)")
        settings = {path: facts[path] for path in BY_PATH if facts.get(path) is not None}
        ram = ram if ram is not None else (facts["MemTotal_kB"] or 2 * 1024 * 1024) * 1024
        thp = settings.pop(_THP_PATH, "madvise")
        m = cls(ram=ram, cpu=cpu, seed=seed, thp=thp, settings=settings, **kwargs)
        m.host_config = facts
        return m

    # --- identities -----------------------------------------------------------------------------
    def next_object_id(self) -> int:
        """A fresh id for an anon_vma or a shmem file (what frame.mapping holds)."""
        self._next_id += 1
        return self._next_id

    def next_inode(self) -> int:
        self._next_ino += 1
        return self._next_ino

    def rng(self, stream: str) -> random.Random:
        """The named random stream (one per purpose, all derived from the seed)."""
        if stream not in self._rng:
            self._rng[stream] = random.Random(f"{self.seed}:{stream}")
        return self._rng[stream]

    # --- time -----------------------------------------------------------------------------------
    @property
    def now_ns(self) -> int:
        """Simulated time since boot, in nanoseconds."""
        return int(self.clock.now_ns)

    def run(self, seconds: float) -> None:
        """Let ``seconds`` of simulated time pass, running kernel daemons that are due."""
        if seconds < 0:
            raise ValueError("seconds must not be negative")
        self.clock.advance_to(int(self.clock_cycles[0]) + self.clock.ns_to_cycles(int(seconds * 1e9)))

    # --- processes ------------------------------------------------------------------------------
    def spawn(self, name: str = "proc") -> Process:
        """Start a process with an empty address space; returns its Process handle."""
        mm = MmStruct(machine=self, pgd=0, mmap_base=self._mmap_base())
        mm.pgd = pgtable_alloc(self, mm, 4)
        if not mm.pgd:
            raise MemoryError("no memory left for a page directory")
        pid = self._next_pid
        self._next_pid += 1
        task = Task(self, pid, name, mm)
        mm.owner = task
        self.tasks[pid] = task
        return Process(self, task)

    def _mmap_base(self) -> int:
        """Mirrors arch/x86/mm/mmap.c: mmap_base(): below the stack gap, randomised by mmap_rnd_bits."""
        gap = 128 * MiB  # RLIMIT_STACK 8 MiB + stack_guard_gap + padding, clamped to the 128 MiB minimum
        rnd = self.rng("mmap").getrandbits(28) << 12  # mmap_rnd_bits = 28 on x86-64
        return (TASK_SIZE - gap - rnd) & ~(PAGE_SIZE - 1)

    # --- commit accounting (mm/util.c: __vm_enough_memory) --------------------------------------
    def vm_enough_memory(self, pages: int) -> bool:
        """Mirrors __vm_enough_memory(): charge ``pages`` to Committed_AS if overcommit allows."""
        mode = self.settings.vm.overcommit_memory
        if mode == 0 and pages > self.totalram_pages:  # OVERCOMMIT_GUESS (+ swap, none here)
            return False
        if mode == 2 and self.committed_pages + pages > self.vm_commit_limit():
            return False
        self.committed_pages += pages
        return True

    def vm_unacct_memory(self, pages: int) -> None:
        self.committed_pages -= pages

    def vm_commit_limit(self) -> int:
        """Mirrors vm_commit_limit(): CommitLimit in pages."""
        kbytes = int(self.settings.vm.overcommit_kbytes)
        if kbytes:
            return kbytes // (PAGE_SIZE // 1024)
        return self.totalram_pages * int(self.settings.vm.overcommit_ratio) // 100

    # --- what users read ------------------------------------------------------------------------
    def vmstat(self) -> dict[str, int]:
        """/proc/vmstat as a dict of the modelled lines."""
        return self.counters.vmstat()

    def read(self, path: str) -> str:
        """The text of a /proc or /sys file, rendered from the simulated state in Linux's format."""
        return read_path(self, path)
