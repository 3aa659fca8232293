"""pagelab: a laboratory for Linux demand paging.

    import pagelab as pl
    m = pl.Machine(ram="2GiB", seed=0)
    p = m.spawn("demo")
    a = p.mmap(None, 64 * pl.MiB, pl.PROT_READ | pl.PROT_WRITE, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS)
    p.touch(a, 64 * pl.MiB, write=True)
    p.rusage().ru_minflt            # 16384, as on the real kernel
    print(m.read(f"/proc/{p.pid}/smaps_rollup"))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .constants import (
    MADV_COLD,
    MADV_COLLAPSE,
    MADV_DODUMP,
    MADV_DOFORK,
    MADV_DONTDUMP,
    MADV_DONTFORK,
    MADV_DONTNEED,
    MADV_DONTNEED_LOCKED,
    MADV_FREE,
    MADV_HUGEPAGE,
    MADV_KEEPONFORK,
    MADV_MERGEABLE,
    MADV_NOHUGEPAGE,
    MADV_NORMAL,
    MADV_PAGEOUT,
    MADV_POPULATE_READ,
    MADV_POPULATE_WRITE,
    MADV_RANDOM,
    MADV_REMOVE,
    MADV_SEQUENTIAL,
    MADV_UNMERGEABLE,
    MADV_WILLNEED,
    MADV_WIPEONFORK,
    MAP_ANON,
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_FIXED_NOREPLACE,
    MAP_HUGETLB,
    MAP_LOCKED,
    MAP_NORESERVE,
    MAP_POPULATE,
    MAP_PRIVATE,
    MAP_SHARED,
    MAP_SHARED_VALIDATE,
    PAGE_SIZE,
    PR_GET_THP_DISABLE,
    PR_SET_THP_DISABLE,
    PR_THP_DISABLE_EXCEPT_ADVISED,
    PROT_EXEC,
    PROT_NONE,
    PROT_READ,
    PROT_WRITE,
    GiB,
    KiB,
    MiB,
)
from .errors import (
    BusError,
    KernelBug,
    NotModelled,
    OutOfMemoryKill,
    PagelabError,
    ProcessDead,
    ScenarioError,
    SegmentationFault,
    SettingError,
    WaitWouldBlock,
)

if TYPE_CHECKING:
    from .machine import Machine
    from .process import Process
    from .settings import Settings
    from .stats import MmCounter, NodeStat, PerfEvent, SimEvent, VmEvent

# The simulator's classes load on first use (PEP 562): the real backend's child process imports
# pagelab.real.child and would otherwise pay for the whole simulator (numba) at every spawn.
_LAZY = {"Machine": "machine", "Process": "process", "Settings": "settings", "MmCounter": "stats",
         "NodeStat": "stats", "PerfEvent": "stats", "SimEvent": "stats", "VmEvent": "stats"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__version__ = "0.1.0"

__all__ = [
    "Machine", "Process", "Settings", "VmEvent", "NodeStat", "MmCounter", "PerfEvent", "SimEvent",
    "PagelabError", "SegmentationFault", "BusError", "OutOfMemoryKill", "ProcessDead", "NotModelled",
    "SettingError", "ScenarioError", "KernelBug", "WaitWouldBlock", "PAGE_SIZE", "KiB", "MiB", "GiB",
    "PROT_NONE", "PROT_READ", "PROT_WRITE", "PROT_EXEC",
    "MAP_SHARED", "MAP_PRIVATE", "MAP_SHARED_VALIDATE", "MAP_ANONYMOUS", "MAP_ANON", "MAP_FIXED",
    "MAP_FIXED_NOREPLACE", "MAP_NORESERVE", "MAP_POPULATE", "MAP_LOCKED", "MAP_HUGETLB",
    "MADV_NORMAL", "MADV_RANDOM", "MADV_SEQUENTIAL", "MADV_WILLNEED", "MADV_DONTNEED", "MADV_FREE",
    "MADV_REMOVE", "MADV_DONTFORK", "MADV_DOFORK", "MADV_MERGEABLE", "MADV_UNMERGEABLE",
    "MADV_HUGEPAGE", "MADV_NOHUGEPAGE", "MADV_DONTDUMP", "MADV_DODUMP", "MADV_WIPEONFORK",
    "MADV_KEEPONFORK", "MADV_COLD", "MADV_PAGEOUT", "MADV_POPULATE_READ", "MADV_POPULATE_WRITE",
    "MADV_DONTNEED_LOCKED", "MADV_COLLAPSE", "PR_SET_THP_DISABLE", "PR_GET_THP_DISABLE",
    "PR_THP_DISABLE_EXCEPT_ADVISED", "__version__",
]

# --- mremap (issue #9) ---
from .constants import (  # noqa: E402
    MREMAP_DONTUNMAP,
    MREMAP_FIXED,
    MREMAP_MAYMOVE,
    PR_GET_MEMORY_MERGE,
    PR_SET_MEMORY_MERGE,
)

__all__ += ["MREMAP_MAYMOVE", "MREMAP_FIXED", "MREMAP_DONTUNMAP", "PR_SET_MEMORY_MERGE", "PR_GET_MEMORY_MERGE"]

# --- mlock, rlimits and capabilities (issue #9) ---
from .constants import MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT, MLOCK_ONFAULT, RLIMIT_MEMLOCK  # noqa: E402

__all__ += ["MLOCK_ONFAULT", "MCL_CURRENT", "MCL_FUTURE", "MCL_ONFAULT", "RLIMIT_MEMLOCK"]
