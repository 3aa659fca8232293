"""Scenarios: named regions and named phases of Process API calls, as plain data, for either backend.

A scenario maps each region at a 2 MiB-aligned address between PROT_NONE guards (so regions never
merge with anything and fault-around windows fall the same way on both backends), then runs its
phases in order. Each phase is one measured window (``run_phase``): the fault counts it caused, then
the Rss and resident pages of every region, or the signal it ended in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..constants import MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PAGE_SIZE, PMD_SIZE, PROT_NONE, PROT_READ, PROT_WRITE
from ..errors import ScenarioError, SegmentationFault
from ..observe.parse import parse_smaps

Op = tuple[str, tuple[Any, ...], dict[str, Any]]  # a Process API call: (method, args, kwargs)
SMAPS_FIELDS = ("Rss", "Private_Dirty", "Anonymous", "LazyFree")  # summed over a region's VMAs after each phase


@dataclass(frozen=True, slots=True)
class Region:
    """A mapping the scenario makes before its phases (not measured)."""

    size: int
    prot: int = PROT_READ | PROT_WRITE
    flags: int = MAP_PRIVATE | MAP_ANONYMOUS
    align: int = PMD_SIZE
    offset: int = 0  # placed this many bytes past the aligned address (to test misalignment)


@dataclass(frozen=True, slots=True)
class Step:
    """One Process API call on a region: ``op`` is touch, access, store, load, madvise, mprotect or munmap.

    ``offset``/``length`` select part of the region (length None = to its end); ``args`` are the call's
    other arguments (an advice, a prot, a value) and ``kwargs`` its keywords (write=, stride=).
    """

    op: str
    region: str
    offset: int = 0
    length: int | None = None
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Phase:
    name: str
    steps: tuple[Step, ...]


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    doc: str
    regions: dict[str, Region]
    phases: tuple[Phase, ...]
    source: str = ""  # where the expected behaviour is documented (kernel source, fact sheet)

    def __post_init__(self) -> None:
        names = [p.name for p in self.phases]
        if len(set(names)) != len(names):
            raise ScenarioError(f"scenario {self.name}: phase names must be unique, got {names}")
        for phase in self.phases:
            for step in phase.steps:
                if step.region not in self.regions:
                    raise ScenarioError(f"scenario {self.name}, phase {phase.name}: no region {step.region!r}")


def _call(step: Step, base: dict[str, int], regions: dict[str, Region]) -> Op:
    if step.region not in base:
        raise ScenarioError(f"step {step.op} names unknown region {step.region!r}")
    addr = base[step.region] + step.offset
    length = step.length if step.length is not None else regions[step.region].size - step.offset
    if step.op in ("touch", "madvise", "mprotect", "munmap"):
        return step.op, (addr, length, *step.args), dict(step.kwargs)
    if step.op in ("store", "load"):
        return step.op, (addr, *step.args), {}
    if step.op == "access":
        stride = step.kwargs.get("stride", PAGE_SIZE)
        addrs = list(range(addr, addr + length, stride))
        write = step.kwargs.get("write", False)
        if write == "alternate":  # read then write each address: two accesses per address, in order
            return "access", ([a for a in addrs for _ in (0, 1)],), {"write": [False, True] * len(addrs)}
        return "access", (addrs,), {"write": write}
    if step.op == "remap":  # mmap(MAP_FIXED) over part of the region, with the region's own prot and flags
        r = regions[step.region]
        return "mmap", (addr, length, r.prot, r.flags | MAP_FIXED), {}
    raise ScenarioError(f"unknown step {step.op!r}")


def _map_region(p: Any, r: Region) -> int:
    """Reserve PROT_NONE space, then map the region at an aligned address inside it."""
    reserve = p.mmap(None, r.size + r.align + r.offset + 2 * PAGE_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS)
    start = ((reserve + PAGE_SIZE + r.align - 1) & ~(r.align - 1)) + r.offset
    return int(p.mmap(start, r.size, r.prot, r.flags | MAP_FIXED))


def run_scenario(machine: Any, scenario: Scenario,
                 on_phase: Callable[[str, dict[str, int]], None] | None = None) -> dict[str, dict[str, Any]]:
    """Run ``scenario`` on a simulated or real machine; {phase: {counter: value}}.

    ``on_phase(name, region_addresses)`` is called before each phase runs (explain uses it).
    """
    p = machine.spawn(scenario.name[:15])
    base = {name: _map_region(p, r) for name, r in scenario.regions.items()}
    out: dict[str, dict[str, Any]] = {}
    try:
        for phase in scenario.phases:
            ops = [_call(s, base, scenario.regions) for s in phase.steps]
            if on_phase is not None:
                on_phase(phase.name, base)
            res: dict[str, Any] = {}
            perf0 = p.perf_counts()
            try:
                before, after = p.run_phase(ops)
            except SegmentationFault as sig:
                res["signal"] = f"SIGSEGV {sig.si_code}"
                res["si_addr"] = _where(sig.addr, base, scenario.regions)
                out[phase.name] = res
                break
            res["minflt"] = after.ru_minflt - before.ru_minflt
            res["majflt"] = after.ru_majflt - before.ru_majflt
            perf1 = p.perf_counts() if perf0 is not None else None
            if perf0 is not None and perf1 is not None:
                for name in ("page-faults", "minor-faults", "major-faults"):
                    res[f"perf {name}"] = perf1[name] - perf0[name]
            vmas = parse_smaps(machine.read(f"/proc/{p.pid}/smaps"))
            for name, start in base.items():
                end = start + scenario.regions[name].size
                inside = [v for v in vmas if v["start"] < end and v["end"] > start]  # its pieces, if split
                for field_name in SMAPS_FIELDS:
                    res[f"{field_name}[{name}] kB"] = sum(v.get(field_name, 0) for v in inside)
                res[f"resident[{name}]"] = sum(int(p.mincore(v["start"], v["end"] - v["start"]).sum()) for v in inside)
                res[f"VmFlags[{name}]"] = " | ".join(" ".join(v.get("VmFlags", [])) for v in inside)
            out[phase.name] = res
    finally:
        if p.alive:
            p.exit()
    return out


def _where(addr: int, base: dict[str, int], regions: dict[str, Region]) -> str:
    for name, start in base.items():
        if start <= addr < start + regions[name].size:
            return f"{name}+{addr - start:#x}"
    return "outside the regions"
