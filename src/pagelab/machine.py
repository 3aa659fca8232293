"""The Machine: one simulated computer running Linux's memory manager.

Everything hangs off a Machine (no module-level state): the clock, the settings, the counters, the
hardware (frame table, page-table pool, TLB, CPU model) and the kernel's state (tasks, the zero page,
commit accounting). Two machines in one process never interfere.
"""

from __future__ import annotations

import math
import numbers
import random
from decimal import Decimal
from fractions import Fraction
from typing import Any

from .arch.x86.tlb import CpuTlbState
from .clock import NO_DEADLINE, Clock, Periodic
from .constants import _SIZE_RE, _UNITS, PAGE_SIZE, TASK_SIZE, GiB, MiB, parse_size
from .errors import NotModelled
from .fs.ext4 import Ext4
from .hw.cost import CostModel
from .hw.cpu import CPU_MODELS, CpuModel, get_cpu_model
from .hw.devices import DEVICE_MODELS, BlockDevice, DeviceModel, device_model_from_calibration, get_device_model
from .hw.physmem import PG, FrameTable
from .hw.ptpool import PageTablePool
from .hw.tlb import Tlb
from .kernel.entry import KernelEntry
from .kernel.sys import CAPABILITIES
from .kernel.task import ROOT_CAPS, Task
from .kernel.tracepoint import FaultTrace
from .mm.filemap import AddressSpace
from .mm.mmap import spawn_brk_base
from .mm.page_alloc import Zone, page_alloc_init
from .mm.rmap import AnonVma
from .mm.swap import CpuFolioBatches
from .observe.procfs import read_path
from .process import Process
from .settings import BY_PATH, Settings
from .stats import Counters, VmEvent

VERSION_MODELLED = "6.18"
_THP_PATH = "/sys/kernel/mm/transparent_hugepage/enabled"
# Block devices the design names (ARCHITECTURE.md, hw/devices.py): what ``disk=`` may say (or a DeviceModel).
DISK_MODELS = tuple(DEVICE_MODELS)
MIN_RAM = 16 * MiB
# Host memory a simulated page costs (measured with VmRSS in a fresh interpreter: 13.1 bytes a page at
# boot for a 4 GiB machine, 57 once 3 GiB of it was written). FrameTable keeps 57 bytes per frame (flags,
# refcount, mapcount, three folio mapcounts, mapping, head_offset, next, prev int32; index, fingerprint
# int64; order int8), in lazily mapped columns: boot writes only the free blocks' first pages (flags,
# order, next, prev: 13 bytes, as a block's first page lies 1024 frames from the next and so touches
# every host page of those columns); the rest is written as frames are first used; a page table, 4 KiB
# of host memory, maps 512 pages.
HOST_BYTES_PER_PAGE_AT_BOOT = 4 + 1 + 8  # 3.3 MiB per simulated GiB
HOST_BYTES_PER_PAGE_IN_USE = 74 + 8  # 20.5 MiB per simulated GiB once every frame was used and mapped


def host_memory_cost(ram_bytes: int) -> tuple[int, int]:
    """Bytes of host memory a Machine of ``ram_bytes`` takes: at creation, and once all its memory is in use.

    Not counted: bytes written with store() (a host page per simulated page holding data), and page-table
    pages beyond one per 512 mapped pages (each costs the host 4 KiB, as it costs the simulated machine).
    """
    pages = ram_bytes // PAGE_SIZE
    return pages * HOST_BYTES_PER_PAGE_AT_BOOT, pages * HOST_BYTES_PER_PAGE_IN_USE


def host_mem_available() -> int | None:
    """This host's MemAvailable in bytes (/proc/meminfo), or None where there is no such file."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def seconds_to_ns(seconds: object) -> int:
    """``Machine.run``'s argument: a finite number of seconds >= 0, as whole nanoseconds (rounded)."""
    if isinstance(seconds, bool) or not isinstance(seconds, (numbers.Real, Decimal)):
        raise TypeError(f"seconds must be a number, got {type(seconds).__name__} {seconds!r}")
    if not math.isfinite(seconds):
        raise ValueError(f"seconds must be finite, got {seconds!r}")
    if seconds < 0:
        raise ValueError(f"seconds must not be negative, got {seconds!r}")
    exact = Fraction(seconds) if isinstance(seconds, (numbers.Rational, float, Decimal)) else Fraction(float(seconds))
    return round(exact * 10**9)


def _gib(n: int) -> str:
    return f"{n / GiB:.1f} GiB" if n >= GiB else f"{n / MiB:.0f} MiB"


def parse_ram(ram: object) -> int:
    """``ram=`` as a byte count: an int, or a size such as "2GiB"; a whole number of 4 KiB pages, >= 16 MiB."""
    if isinstance(ram, bool) or not isinstance(ram, (numbers.Integral, str)):
        raise TypeError(f"ram must be a byte count (int) or a size string such as '2GiB' or '512MiB', "
                        f"got {type(ram).__name__} {ram!r}")
    exact = _exact_size(ram) if isinstance(ram, str) else Fraction(int(ram))
    if exact < 0:
        raise ValueError(f"ram must not be negative, got {ram!r}")
    if exact.denominator != 1 or exact % PAGE_SIZE:
        raise ValueError(f"ram must be a whole number of 4 KiB pages, got {ram!r} ({float(exact):.1f} bytes)")
    if exact < MIN_RAM:
        raise ValueError(f"ram must be at least 16 MiB, got {ram!r}")
    return int(exact)


def _exact_size(text: str) -> Fraction:
    """parse_size()'s syntax, read exactly ("1.5GiB" is 1610612736 bytes; "1.1GiB" is no whole number)."""
    match = _SIZE_RE.match(text)
    if not match and text.strip().startswith("-"):
        raise ValueError(f"ram must not be negative, got {text!r}")
    if not match:
        raise ValueError(f"ram: not a size: {text!r} (write e.g. '2GiB', '512MiB', '1.5GiB' or a byte count "
                         f"such as '4294967296'; units K, M, G, T are binary)")
    return Fraction(match.group(1)) * _UNITS[match.group(2).upper()]


def check_machine_args(ram: object, swap: object, disk: object, thp: object, cpu: object, seed: object,
                       settings: object, batch_faults: object) -> int:
    """Check Machine()'s arguments before anything is allocated; returns ram in bytes.

    TypeError for a wrong type, ValueError (listing what is accepted) for a wrong value, NotModelled for
    swap, and a ValueError giving the host cost for a ``ram`` this host cannot hold (MemAvailable).
    """
    ram_bytes = parse_ram(ram)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an int, got {type(seed).__name__} {seed!r}")
    get_device_model(disk)  # TypeError / ValueError naming the known disks
    thp_modes = BY_PATH[_THP_PATH].choices
    if not isinstance(thp, str) or thp not in thp_modes:
        raise ValueError(f"thp must be one of {', '.join(thp_modes)} (as {_THP_PATH}), got {thp!r}")
    if not isinstance(cpu, (str, CpuModel)):
        raise TypeError(f"cpu must be a model name ({', '.join(sorted(CPU_MODELS))}) or a CpuModel, "
                        f"got {type(cpu).__name__} {cpu!r}")
    get_cpu_model(cpu)  # a ValueError listing the known models
    if settings is not None and not isinstance(settings, dict):
        raise TypeError(f"settings must be a dict of tunable path -> value, got {type(settings).__name__}")
    if not isinstance(batch_faults, bool):
        raise TypeError(f"batch_faults must be True or False, got {batch_faults!r}")
    if swap is not None and (isinstance(swap, bool) or not isinstance(swap, (int, str))):
        raise TypeError(f"swap must be None, or a size such as '1GiB', got {type(swap).__name__} {swap!r}")
    if swap is not None and parse_size(swap) != 0:
        raise NotModelled("swap devices come with memory pressure (reclaim); use swap=None")
    at_boot, in_use = host_memory_cost(ram_bytes)
    available = host_mem_available()
    if available is not None and in_use > available:
        per_gib = GiB // PAGE_SIZE / MiB
        raise ValueError(f"ram={ram!r} is more than this host can hold: a simulated GiB costs the host "
                         f"{HOST_BYTES_PER_PAGE_AT_BOOT * per_gib:.0f} MiB at once and "
                         f"{HOST_BYTES_PER_PAGE_IN_USE * per_gib:.0f} MiB once in use, {_gib(at_boot)} and "
                         f"{_gib(in_use)} here, and this host has {_gib(available)} available (MemAvailable): "
                         f"at most {available // HOST_BYTES_PER_PAGE_IN_USE * PAGE_SIZE // GiB} GiB")
    return ram_bytes


class Machine:
    """A simulated computer: ``ram`` of physical memory, one CPU of model ``cpu``, Linux 6.18's mm.

    ``seed`` drives every random choice (mmap base randomisation, workloads), so the same inputs and
    seed give the same outputs, bit for bit. ``batch_faults`` lets runs of first-touch faults take the
    batched path, which leaves exactly the state one-at-a-time faults leave (tests hold them equal).
    """

    def __init__(self, ram: int | str = "2GiB", swap: int | str | None = None, disk: str | DeviceModel = "nvme",
                 thp: str = "madvise", cpu: str | CpuModel = "skylake", seed: int = 0,
                 settings: dict[str, Any] | None = None, batch_faults: bool = True) -> None:
        ram_bytes = check_machine_args(ram, swap, disk, thp, cpu, seed, settings, batch_faults)
        seed = int(seed)
        disk_model = get_device_model(disk)
        self.config = {"ram": ram_bytes, "swap": 0, "disk": disk_model.name, "thp": thp,
                       "cpu": get_cpu_model(cpu).name, "seed": seed}
        self.seed = seed
        self.cpu: CpuModel = get_cpu_model(cpu)
        self.cost = CostModel(self.cpu.freq_mhz)
        self.clock = Clock(self.cpu.freq_mhz)
        self.clock_cycles = self.clock.cycles
        self.settings = Settings({_THP_PATH: thp, **(settings or {})})
        self.counters = Counters()
        self.batch_faults = batch_faults
        self.disk = disk_model.name
        self._rng = {"mmap": random.Random(f"{seed}:mmap")}
        # Hardware.
        self.frames = FrameTable(ram_bytes // PAGE_SIZE + 1)  # ram, plus the zero page's frame (below)
        self.ptpool = PageTablePool()
        self.tlb = Tlb(self.cpu)
        self.cpu_tlbstate = CpuTlbState()
        self.cpu_fbatches = CpuFolioBatches()
        self.blkdev = BlockDevice(disk_model)  # the disk files live on: it says how long each I/O takes
        # Kernel state.
        self.zero_pfn = 0  # the zero page lives in the kernel image: memblock keeps it from the buddy allocator
        self.huge_zero_folio = -1  # head PFN of the huge zero folio once a read fault needed it (huge_memory.py)
        self.deferred_split_queue: dict[int, None] = {}  # THP heads queued for the deferred-split shrinker
        self.frames.flags[self.zero_pfn] = PG.RESERVED | PG.ZERO
        self.frames.refcount[self.zero_pfn] = 1
        self.zone: Zone = page_alloc_init(self, reserved=1)  # the rest goes to the buddy free lists
        # MemTotal: totalram_pages counts the pages the buddy allocator manages. empty_zero_page is in
        # the kernel image's .bss (arch/x86/kernel/head_64.S), reserved by memblock and never freed to
        # buddy, so it is not one of them: ``ram`` is MemTotal, and the zero page is a frame beyond it.
        self.totalram_pages = ram_bytes // PAGE_SIZE
        self.committed_pages = 0
        self.tasks: dict[int, Task] = {}
        self.root_caps = ROOT_CAPS  # what a spawned process holds (root's; from_host(): the host's)
        self._next_pid = 1000
        self._next_mm_id = 0
        self._next_id = 1
        self.mappings: dict[int, AnonVma | AddressSpace] = {}  # mapping id -> its anon_vma or address_space
        self._next_ino = 1024
        self.host_config: dict[str, Any] = {}  # what from_host() read off the host
        self.fault_log: list[FaultTrace] | None = None  # a list turns per-fault recording on (explain)
        self.kernel_entry = KernelEntry()  # host signals wait while the simulated kernel runs
        self.flusher: Periodic | None = None  # the writeback flusher (wb_workfn), armed by the first dirty inode
        self.fs = Ext4(self)  # the ext4 filesystem on the disk: m.fs.create(path, size), m.fs.import_host(path)

    @classmethod
    def from_host(cls, *, ram: int | str | None = None, cpu: str | CpuModel | None = None, seed: int = 0,
                  without_swap: bool = False, thp: str | None = None, settings: dict[str, Any] | None = None,
                  **kwargs: Any) -> Machine:
        """A machine shaped like this host: its RAM (MemTotal) and the tunables the simulator models, copied.

        Every probed host fact (kernel, THP and mTHP modes, khugepaged, KSM, read_ahead_kb, swappiness,
        watermarks, overcommit, dirty ratios, swap devices, RLIMIT_MEMLOCK ...) is kept in ``host_config``
        and recorded with every result, modelled or not. With no ``cpu``, the model that stands for this
        host's CPU (``x86_match_cpu`` on /proc/cpuinfo: zen3 on an AMD EPYC Milan), else skylake.
        ``ram``, ``cpu``, ``thp`` and ``settings`` given by the caller win over the host's (``settings`` is
        merged over the host's tunables).

        Swap is not modelled yet. On a host with swap (a disk, a file or zram) this raises NotModelled
        unless ``without_swap=True``: then the machine has this host's RAM and no swap device, and
        ``host_config`` still records the host's swap (``SwapTotal_kB``, ``swaps``). What then differs
        from the host: whatever would be swapped out under memory pressure, and the commit checks that
        count swap (overcommit 0 admits RAM + swap; CommitLimit adds swap).

        With no ``disk``, the block device is calibrated from the host's disk (pagelab.real.diskcal: 4 KiB
        O_DIRECT random-read latency and sequential bandwidth on a temporary file in /var/tmp, measured
        once per process) and recorded as ``host_config["disk_calibration"]``; the machine's device is
        the "host" model built from it. If the calibration fails, the record says why and the machine
        gets the "virtio" model.
        """
        from .real.probe import cpu_model_of, probe_disk_calibration, probe_host

        disk = kwargs.pop("disk", None)
        facts = probe_host()
        if disk is None:
            if "disk_calibration" not in facts:
                facts["disk_calibration"] = probe_disk_calibration()
            cal = facts["disk_calibration"] or {}
            disk = "virtio" if cal.get("error") else device_model_from_calibration(cal, name="host")
        if facts.get("SwapTotal_kB") and not without_swap:
            devices = ", ".join(str(d.get("name")) for d in facts.get("swaps") or []) or "see /proc/swaps"
            raise NotModelled(f"this host has {facts['SwapTotal_kB']} kB of swap ({devices}); the simulator "
                              "models no swap yet: Machine.from_host(without_swap=True) models it without")
        host = {path: facts[path] for path in BY_PATH if facts.get(path) is not None}
        ram = ram if ram is not None else (facts["MemTotal_kB"] or 2 * 1024 * 1024) * 1024
        host_thp = host.pop(_THP_PATH, "madvise")
        thp = thp if thp is not None else host_thp
        if isinstance(settings, dict):
            settings = {**host, **settings}
        elif settings is None:
            settings = host  # anything else: Machine() says what it takes
        cpu = cpu if cpu is not None else cpu_model_of(facts.get("cpu")) or "skylake"
        m = cls(ram=ram, cpu=cpu, seed=seed, thp=thp, settings=settings, disk=disk, **kwargs)
        m.host_config = facts
        if facts.get("CapEff") is not None:  # root here may lack some (this VM's has no CAP_SYS_RESOURCE)
            m.root_caps = frozenset(c for c in ROOT_CAPS if facts["CapEff"] >> CAPABILITIES.index(c) & 1)
        return m

    # --- identities -----------------------------------------------------------------------------
    def register_mapping(self, owner: AnonVma | AddressSpace) -> int:
        """A fresh id for an anon_vma or an address_space: what the ``mapping`` column of its frames holds,
        and the key under which ``mappings`` finds it again (folio->mapping, for reverse-map walks)."""
        self._next_id += 1
        self.mappings[self._next_id] = owner
        return self._next_id

    def unregister_mapping(self, mapping_id: int) -> None:
        """The anon_vma or address_space ``mapping_id`` is freed."""
        del self.mappings[mapping_id]

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
        """Let ``seconds`` of simulated time pass with no process running, each kernel event that falls due
        (a daemon's run, an I/O completion) running at its time, in order.

        ``seconds`` is a finite real number >= 0 (int, float, Fraction, Decimal, numpy), rounded to the nearest
        nanosecond and then down to whole CPU cycles (the clock counts cycles: 1 ns is 2-3 of them);
        anything else is a TypeError or ValueError, and the clock does not move.
        """
        cycles = self.clock.ns_to_cycles(seconds_to_ns(seconds))
        if self.clock.now + cycles >= NO_DEADLINE:
            raise ValueError(f"run(seconds={seconds!r}) would go past the end of the simulated clock "
                             f"({NO_DEADLINE // self.cpu.freq_mhz // 10**6:,} s at {self.cpu.freq_mhz} MHz)")
        with self.kernel_entry:
            self.clock.advance_to(self.clock.now + cycles)

    # --- processes ------------------------------------------------------------------------------
    def spawn(self, name: str = "proc") -> Process:
        """Start a process with an empty address space; returns its Process handle."""
        from .kernel.fork import mm_alloc  # the kernel builds on the machine

        with self.kernel_entry:
            mm = mm_alloc(self, self._mmap_base())
            spawn_brk_base(self, mm)  # brk (issue #9): the heap's start, as exec of a small PIE places it
            task = Task(self, self.alloc_pid(), name, mm)
            mm.owner = task
            self.tasks[task.pid] = task
        return Process(self, task)

    def alloc_pid(self) -> int:
        """Mirrors alloc_pid(): the next process id (from 1000 here, in order)."""
        pid = self._next_pid
        self._next_pid += 1
        return pid

    def alloc_mm_id(self) -> int:
        """Mirrors mm_id_alloc(): a fresh mm id (never MM_ID_DUMMY, 0)."""
        self._next_mm_id += 1
        return self._next_mm_id

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

    # --- files --------------------------------------------------------------------------------------
    def drop_caches(self, level: int = 3) -> None:
        """echo LEVEL > /proc/sys/vm/drop_caches: 1 drops the clean, unused page cache, 2 slab objects
        (none are modelled), 3 both; bit 4 only silences the kernel log. ValueError (EINVAL) otherwise.
        Mirrors fs/drop_caches.c: drop_pagecache_sb() -> invalidate_mapping_pages() of every inode."""
        from .mm.truncate import invalidate_mapping_pages

        if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 4:
            raise ValueError(f"drop_caches takes 1, 2, 3 or 4 (EINVAL), got {level!r}")
        with self.kernel_entry:
            if level & 1:
                for inode in list(self.fs.inodes.values()):
                    if inode.i_mapping is not None:
                        invalidate_mapping_pages(self, inode.i_mapping, 0, 1 << 62)
                self.counters.count_vm_event(VmEvent.DROP_PAGECACHE)
            if level & 2:
                self.counters.count_vm_event(VmEvent.DROP_SLAB)

    # --- what users read ------------------------------------------------------------------------
    def vmstat(self) -> dict[str, int]:
        """/proc/vmstat as a dict of the modelled lines."""
        return self.counters.vmstat()

    def read(self, path: str) -> str:
        """The text of a /proc or /sys file, rendered from the simulated state in Linux's format."""
        return read_path(self, path)
