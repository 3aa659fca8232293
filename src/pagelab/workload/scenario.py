"""Scenarios: named regions and named phases of Process API calls, as plain data, for either backend.

A scenario maps each region at a 2 MiB-aligned address between PROT_NONE guards (so regions never
merge with anything and fault-around windows fall the same way on both backends), then runs its
phases in order. Each phase is one measured window (``run_phase``): the fault counts it caused, then
the Rss and resident pages of every region, or the signal it ended in.

A scenario may run several processes (fork/COW facts): the spawned one is ``main``; a ``fork`` control
step makes a child named by the step (its regions sit at the same addresses), ``exit`` ends the phase's
process and ``wait`` reaps a named child, recording its wait status. Each phase runs in one process
(``Phase.proc``) and may read other processes' smaps too (``Phase.observe``).

A region may map a file (``Region.file``, a ``FileSpec``): before the phases the file is made on the
machine's filesystem (``m.fs.create``, the same call on both backends), optionally warmed by read()s,
opened and mapped at the region's aligned address; it is unlinked when the scenario ends.
"""

from __future__ import annotations

import errno as _errno
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..constants import (
    MADV_HUGEPAGE,
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_PRIVATE,
    MAP_SHARED,
    MREMAP_FIXED,
    MREMAP_MAYMOVE,
    PAGE_SIZE,
    PMD_SIZE,
    PROT_NONE,
    PROT_READ,
    PROT_WRITE,
    MiB,
)
from ..errors import ScenarioError, SegmentationFault
from ..observe.parse import parse_smaps

Op = tuple[str, tuple[Any, ...], dict[str, Any]]  # a Process API call: (method, args, kwargs)
# summed over a region's VMAs after each phase
SMAPS_FIELDS = ("Rss", "Private_Dirty", "Anonymous", "LazyFree", "Swap", "AnonHugePages", "FilePmdMapped")
FILE_DIR = "/validate"  # a scenario's files are made under FILE_DIR/<scenario>/<region>
WARM_CHUNK = 1 * MiB  # warming reads the file front to back in read() calls of this size
WARMINGS = (None, "read", "random")


@dataclass(frozen=True, slots=True)
class Band:
    """A simulated value the kernel may show anywhere in ``[lo, hi]``, and why (``why`` is the tolerance).

    ``value`` is the model's own figure (the kernel's value with nothing else running); the band is what
    other activity on the host can legitimately make of it.
    """

    value: int
    lo: int
    hi: int
    why: str

    def admits(self, real: Any) -> bool:
        return isinstance(real, int) and self.lo <= real <= self.hi


@dataclass(frozen=True, slots=True)
class FileSpec:
    """The file a region maps, made before the phases (not measured).

    ``size``, ``written_in`` and ``cached`` are m.fs.create()'s: the file is written by write() calls of
    ``written_in`` bytes, then fsync'd and, unless ``cached``, evicted (cold). ``warm`` then reads it:
    None leaves it as made; "read" reads it front to back in 1 MiB read() calls (readahead's ramp of
    large folios); "random" does the same after POSIX_FADV_RANDOM on that descriptor (order-0 folios).
    Warming uses its own descriptor, closed before the mapping's is opened, so its readahead state
    (FMODE_RANDOM) does not carry over.
    """

    size: int
    written_in: int = MiB
    cached: bool = False
    warm: str | None = None
    sparse: bool = False  # made by ftruncate only: one hole, nothing written (m.fs.create(sparse=True))
    hole: tuple[int, int] | None = None  # (offset, length): a hole there, data (1 MiB write()s) around it

    def __post_init__(self) -> None:
        if self.warm not in WARMINGS:
            raise ScenarioError(f"FileSpec.warm must be one of {WARMINGS}, got {self.warm!r}")
        if self.hole is not None:
            off, length = self.hole
            if self.sparse or off % PAGE_SIZE or length % PAGE_SIZE or length <= 0 or off + length > self.size:
                raise ScenarioError(f"FileSpec.hole {self.hole} must be page-aligned, non-empty, inside the "
                                    "file, and not with sparse (which is all hole)")


@dataclass(frozen=True, slots=True)
class Region:
    """A mapping the scenario makes before its phases (not measured); with ``file``, a mapping of that file
    at offset 0 (``flags`` then hold MAP_SHARED or MAP_PRIVATE, without MAP_ANONYMOUS)."""

    size: int
    prot: int = PROT_READ | PROT_WRITE
    flags: int = MAP_PRIVATE | MAP_ANONYMOUS
    align: int = PMD_SIZE
    offset: int = 0  # placed this many bytes past the aligned address (to test misalignment)
    file: FileSpec | None = None

    def __post_init__(self) -> None:
        if self.file is not None and self.flags & MAP_ANONYMOUS:
            raise ScenarioError("a region that maps a file cannot be MAP_ANONYMOUS")


@dataclass(frozen=True, slots=True)
class Step:
    """One Process API call on a region: ``op`` is touch, access, store, load, madvise, mprotect, munmap,
    remap, mremap, mlock, mlock2 (``args = (flags,)``), munlock, or (no region) mlockall (``args = (flags,)``)
    and munlockall, or, on a region that maps a file, msync, fadvise, pread, pwrite, fsync or map; or a
    control step (``CONTROL_OPS``, no region: use ``fork()``, ``exit()`` and ``wait()`` below).

    ``offset``/``length`` select part of the region (length None = to its end); ``args`` are the call's
    other arguments (an advice, a prot, a value, msync's flags) and ``kwargs`` its keywords (write=,
    stride=). fadvise, pread and pwrite take ``offset``/``length`` as file offsets (the file is mapped
    at 0) on the region's descriptor; pread reads the range in 1 MiB calls, pwrite writes it in
    ``kwargs["chunk"]``-byte calls (1 MiB by default) of the byte ``args[0]`` (0 by default). ``map``
    mmaps the region's file (or, on an anonymous region, anonymous memory) again over that part
    (MAP_FIXED, file offset = ``offset``) with ``args = (prot, flags)``, inside the phase (so
    MAP_POPULATE is measured). ``mremap`` calls
    mremap(region + offset, length, ``args[0]`` (the new size), ``args[1]`` (the flags)); with MREMAP_FIXED
    the new address is region ``target``'s (plus ``kwargs["to_offset"]``), so the moved mapping is then
    measured as that region (a plain MREMAP_MAYMOVE, whose address the kernel picks, is refused).

    Control steps run as direct calls outside the measured window: ``fork`` (the phase's process forks
    the child named ``target``), ``exit`` (the phase's process exits with code ``args[0]``), ``wait``
    (the phase's process waits for its child ``target``: counter ``wait status[target]``, as hex),
    ``setrlimit`` (``args = (resource, soft, hard)``) and ``drop_capability`` (``args = (name,)``).
    """

    op: str
    region: str
    offset: int = 0
    length: int | None = None
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    target: str = ""  # fork and wait: the child's name; mremap with MREMAP_FIXED: the destination region


CONTROL_OPS = ("fork", "exit", "wait", "setrlimit", "drop_capability")
NO_REGION_OPS = ("mlockall", "munlockall")  # measured calls on the whole process
# glibc's allocator and brk (pagelab.libc.malloc over the Process API on both backends): see libc steps below
LIBC_OPS = ("malloc", "free", "fill", "malloc_trim", "mallopt", "brk")
CACHE_STATES = ("cold", "warm")  # an exec step's host cache state (see _prepare_cache)
MAIN = "main"  # the spawned process of every scenario


def fork(child: str) -> Step:
    """The phase's process forks; the child is called ``child`` in later phases."""
    return Step("fork", "", target=child)


def exit_(code: int = 0) -> Step:
    """The phase's process calls exit(code)."""
    return Step("exit", "", args=(code,))


def wait(child: str) -> Step:
    """The phase's process calls waitpid(child's pid); its wait status is recorded."""
    return Step("wait", "", target=child)


def setrlimit(res: int, soft: int, hard: int) -> Step:
    """The phase's process calls setrlimit(res, (soft, hard)) (not measured)."""
    return Step("setrlimit", "", args=(res, soft, hard))


def drop_capability(name: str) -> Step:
    """The phase's process drops capability ``name`` (e.g. "CAP_IPC_LOCK"; not measured)."""
    return Step("drop_capability", "", args=(name,))


def malloc(name: str, n: int) -> Step:
    """p.malloc(n); later steps name the returned address ``name`` (counter ``where[name]``: "heap+<offset
    from the heap start>" or "mmap+<offset in its page>", since the addresses themselves differ)."""
    return Step("malloc", "", args=(n,), target=name)


def free(name: str) -> Step:
    return Step("free", "", target=name)


def fill(name: str) -> Step:
    """memset() of allocation ``name``: one write in every page its ``n`` bytes span."""
    return Step("fill", "", target=name)


def malloc_trim(pad: int) -> Step:
    """p.malloc_trim(pad): counter ``malloc_trim`` (its return value)."""
    return Step("malloc_trim", "", args=(pad,))


def mallopt(param: int, value: int) -> Step:
    return Step("mallopt", "", args=(param, value))


def brk(offset: int) -> Step:
    """brk(heap start + ``offset``) (the heap start is brk(0) before the scenario's first libc step):
    counter ``brk``, the break it returns, relative to the heap start."""
    return Step("brk", "", args=(offset,))


def exec_(path: str, argv: tuple[str, ...], cache: str, dirs: tuple[str, ...] = ()) -> Step:
    """p.exec(path, argv): execve of a host program and its start-up, measured (minflt, majflt: execve and the
    start-up); the process is then stopped at its exit, and its maps are recorded as ``vma[i]`` = "perms name
    size" (the [stack]'s size left out: its strings' pages differ; addresses differ by randomization).
    ``cache`` is the host page cache of the program's files beforehand, mirrored into the simulated machine:
    "cold" (evicted as far as the shared host allows) or "warm" (after one launch). ``dirs`` are host
    directories the arguments name (``ls DIR``), made empty if missing before the launch."""
    if cache not in CACHE_STATES:
        raise ScenarioError(f"exec cache must be one of {CACHE_STATES}, got {cache!r}")
    return Step("exec", "", args=(path, tuple(argv)), kwargs={"cache": cache, "dirs": tuple(dirs)})


def mlockall(flags: int) -> Step:
    return Step("mlockall", "", args=(flags,))


def munlockall() -> Step:
    return Step("munlockall", "")


@dataclass(frozen=True, slots=True)
class Phase:
    """Steps run in process ``proc`` (``main``, or a child a fork step named). A phase holds either Process
    API calls (one measured window) or control steps only (then no fault counters: fork/exit/wait are not
    measured ops, and the real backend's fork makes the interpreter's own memory its own). Afterwards the
    smaps counters of ``proc`` (if still alive) and of each process in ``observe`` (as ``Pss[a@child] kB``)
    are recorded.

    With ``errno``, the phase's calls may fail: counter ``errno`` is the error's name (ENOMEM, EINVAL, ...)
    or "ok", and a failed phase records no fault counts (the real backend's measured window ends with the
    error), so a call expected to fail is best a phase of its own; its smaps counters still show what it
    left behind. Without it an OSError ends the scenario, as a bug would."""

    name: str
    steps: tuple[Step, ...]
    proc: str = MAIN
    observe: tuple[str, ...] = ()
    errno: bool = False


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    doc: str
    regions: dict[str, Region]
    phases: tuple[Phase, ...]
    source: str = ""  # where the expected behaviour is documented (kernel source, fact sheet)
    # {(phase, counter): (lo, hi, why)}: where the kernel's value varies from run to run (readahead timing),
    # the range measured over repeated real runs and how it was measured; both backends must lie in it
    bands: dict[tuple[str, str], tuple[int, int, str]] = field(default_factory=dict)
    smaps_fields: tuple[str, ...] = SMAPS_FIELDS  # the smaps fields recorded per region after each phase

    def __post_init__(self) -> None:
        names = [p.name for p in self.phases]
        if len(set(names)) != len(names):
            raise ScenarioError(f"scenario {self.name}: phase names must be unique, got {names}")
        procs = {MAIN}  # the processes made so far, in phase order
        for phase in self.phases:
            where = f"scenario {self.name}, phase {phase.name}"
            if phase.proc not in procs:
                raise ScenarioError(f"{where}: process {phase.proc!r} is not made by an earlier fork step "
                                    f"(known: {sorted(procs)})")
            control = [step.op in CONTROL_OPS for step in phase.steps]
            if any(control) and not all(control):
                raise ScenarioError(f"{where}: fork, exit and wait cannot share a phase with measured calls")
            if phase.proc != MAIN and any(step.op in LIBC_OPS for step in phase.steps):
                raise ScenarioError(f"{where}: libc steps run in the main process only")
            for step in phase.steps:
                if step.op == "fork":
                    if not step.target or step.target in procs:
                        raise ScenarioError(f"{where}: fork needs a new process name, got {step.target!r}")
                    procs.add(step.target)
                if step.op in CONTROL_OPS:
                    if step.op == "wait" and step.target not in procs:
                        raise ScenarioError(f"{where}: wait for unknown process {step.target!r}")
                    continue
                if step.op == "exec" and (len(phase.steps) > 1 or phase.proc != MAIN):
                    raise ScenarioError(f"{where}: exec is a phase of its own, in the main process")
                if step.op in NO_REGION_OPS or step.op in LIBC_OPS or step.op == "exec":
                    continue
                if step.op == "mremap" and step.target and step.target not in self.regions:
                    raise ScenarioError(f"{where}: mremap to unknown region {step.target!r}")
                if step.region not in self.regions:
                    raise ScenarioError(f"scenario {self.name}, phase {phase.name}: no region {step.region!r}")
                if step.op in FILE_OPS and step.op != "map" and self.regions[step.region].file is None:
                    raise ScenarioError(f"scenario {self.name}, phase {phase.name}: {step.op} needs a region "
                                        f"that maps a file, {step.region!r} does not")
            if not set(phase.observe) <= procs:
                raise ScenarioError(f"{where}: observed processes {phase.observe} are not all made by a fork "
                                    f"step (known: {sorted(procs)})")
        for (phase_name, counter), (lo, hi, _why) in self.bands.items():
            if phase_name not in names or lo > hi:
                raise ScenarioError(f"scenario {self.name}: band {lo}..{hi} of {phase_name}/{counter} "
                                    "names no phase or is empty")


FILE_OPS = ("msync", "fadvise", "pread", "pwrite", "fsync", "map")


def _calls(step: Step, base: dict[str, int], regions: dict[str, Region], fds: dict[str, int]) -> list[Op]:
    """The Process API calls of one step (several for a pread or pwrite of more than one chunk)."""
    if step.op not in FILE_OPS:
        return [_call(step, base, regions)]
    length = step.length if step.length is not None else regions[step.region].size - step.offset
    if step.op == "msync":
        return [("msync", (base[step.region] + step.offset, length, *step.args), {})]
    fd = fds.get(step.region, -1)
    if step.op == "fadvise":
        return [("fadvise", (fd, step.offset, length, *step.args), {})]
    if step.op == "fsync":
        return [("fsync", (fd,), {})]
    if step.op == "map":
        if len(step.args) != 2:
            raise ScenarioError(f"map takes args=(prot, flags), got {step.args!r}")
        prot, flags = step.args
        off = step.offset if fd >= 0 else 0
        return [("mmap", (base[step.region] + step.offset, length, prot, flags | MAP_FIXED, fd, off), {})]
    end = step.offset + length
    if step.op == "pread":
        return [("pread", (fd, min(WARM_CHUNK, end - off), off), {})
                for off in range(step.offset, end, WARM_CHUNK)]
    chunk = int(step.kwargs.get("chunk", WARM_CHUNK))
    if chunk <= 0:
        raise ScenarioError(f"pwrite chunk must be positive, got {chunk}")
    byte = step.args[0] if step.args else 0
    return [("pwrite", (fd, bytes([byte]) * min(chunk, end - off), off), {}) for off in range(step.offset, end, chunk)]


def _call(step: Step, base: dict[str, int], regions: dict[str, Region]) -> Op:
    if step.op in NO_REGION_OPS:
        return step.op, step.args, {}
    if step.region not in base:
        raise ScenarioError(f"step {step.op} names unknown region {step.region!r}")
    addr = base[step.region] + step.offset
    length = step.length if step.length is not None else regions[step.region].size - step.offset
    if step.op in ("touch", "madvise", "mprotect", "munmap", "mlock", "mlock2", "munlock"):
        return step.op, (addr, length, *step.args), dict(step.kwargs)
    if step.op in ("store", "load"):
        return step.op, (addr, *step.args), {}
    if step.op == "access":
        stride = step.kwargs.get("stride", PAGE_SIZE)
        addrs = list(range(addr, addr + length, stride))
        if "shuffle" in step.kwargs:  # the order a C probe gets from srand(seed) and a Fisher-Yates shuffle
            addrs = [addrs[i] for i in glibc_shuffle(len(addrs), step.kwargs["shuffle"])]
        write = step.kwargs.get("write", False)
        if write == "alternate":  # read then write each address: two accesses per address, in order
            return "access", ([a for a in addrs for _ in (0, 1)],), {"write": [False, True] * len(addrs)}
        return "access", (addrs,), {"write": write}
    if step.op == "mremap":
        if len(step.args) != 2:
            raise ScenarioError(f"mremap takes args=(new_size, flags), got {step.args!r}")
        new_size, flags = step.args
        if flags & MREMAP_FIXED and step.target in base:
            return "mremap", (addr, length, new_size, flags, base[step.target] + step.kwargs.get("to_offset", 0)), {}
        if flags & (MREMAP_MAYMOVE | MREMAP_FIXED):  # the kernel would pick the address: not comparable
            raise ScenarioError("a moving mremap step needs MREMAP_FIXED and a target region")
        return "mremap", (addr, length, new_size, flags), {}
    if step.op == "remap":  # mmap(MAP_FIXED) over part of the region, with the region's own prot and flags
        r = regions[step.region]
        return "mmap", (addr, length, r.prot, r.flags | MAP_FIXED), {}
    raise ScenarioError(f"unknown step {step.op!r}")


def glibc_shuffle(n: int, seed: int) -> list[int]:
    """range(n) in the order of the fact sheet's probes: ``srand(seed)``, then for i = n-1 down to 1 swap
    ord[i] with ord[rand() % (i + 1)].

    Mirrors glibc's random() (stdlib/random_r.c: the TYPE_3 additive feedback generator, r[i] = r[i-31] +
    r[i-3], seeded by 16807 * r mod 2^31-1 and 310 discarded outputs), so a scenario visits pages in the
    very order the measured C program did.
    """
    r = [seed]
    for i in range(1, 31):
        hi, lo = divmod(r[i - 1], 127773)
        word = 16807 * lo - 2836 * hi
        r.append(word + 2147483647 if word < 0 else word)
    r += [r[i - 31] for i in range(31, 34)]
    for i in range(34, 344):
        r.append((r[i - 31] + r[i - 3]) & 0xFFFFFFFF)

    def rand() -> int:
        r.append((r[-31] + r[-3]) & 0xFFFFFFFF)
        return r[-1] >> 1

    order = list(range(n))
    for i in range(n - 1, 0, -1):
        j = rand() % (i + 1)
        order[i], order[j] = order[j], order[i]
    return order


def _map_region(p: Any, r: Region, fd: int = -1) -> int:
    """Reserve PROT_NONE space, then map the region at an aligned address inside it (``fd`` at offset 0)."""
    reserve = p.mmap(None, r.size + r.align + r.offset + 2 * PAGE_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS)
    start = ((reserve + PAGE_SIZE + r.align - 1) & ~(r.align - 1)) + r.offset
    return int(p.mmap(start, r.size, r.prot, r.flags | MAP_FIXED, fd, 0))


def file_path(scenario: Scenario, region: str) -> str:
    return f"{FILE_DIR}/{scenario.name}/{region}"


def _make_file(machine: Any, p: Any, path: str, spec: FileSpec) -> int:
    """m.fs.create() the file, warm it as ``spec`` says, and open it O_RDWR for the mapping; the descriptor.

    A file with a ``hole`` is made sparse, then its data around the hole is written by ``written_in``-byte
    pwrite()s, fsync'd and (unless ``cached``) evicted with POSIX_FADV_DONTNEED, as the fact sheet's
    ``fc2 mkhole`` did.
    """
    sparse = spec.sparse or spec.hole is not None
    machine.fs.create(path, spec.size, written_in=spec.written_in, sparse=sparse,
                      cached=spec.cached and spec.hole is None)
    if spec.hole is not None:
        fd = p.open(path, os.O_RDWR)
        hole_start, hole_end = spec.hole[0], spec.hole[0] + spec.hole[1]
        for start, end in ((0, hole_start), (hole_end, spec.size)):
            for off in range(start, end, spec.written_in):
                p.pwrite(fd, bytes(min(spec.written_in, end - off)), off)
        p.fsync(fd)
        if not spec.cached:
            p.fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        p.close(fd)
    if spec.warm is not None:
        fd = p.open(path, os.O_RDONLY)
        if spec.warm == "random":
            p.fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
        while p.read(fd, WARM_CHUNK):
            pass
        p.close(fd)
    return int(p.open(path, os.O_RDWR))


def run_scenario(machine: Any, scenario: Scenario,
                 on_phase: Callable[[str, dict[str, int]], None] | None = None) -> dict[str, dict[str, Any]]:
    """Run ``scenario`` on a simulated or real machine; {phase: {counter: value}}.

    ``on_phase(name, region_addresses)`` is called before each phase runs (explain uses it). A SIGSEGV
    in a phase records ``signal`` and ``si_addr`` and kills that process; a scenario whose main process
    dies ends there. At the end, the processes still alive exit, children before parents, and every
    parent still alive reaps its exited children, so no zombie is left behind.
    """
    p = machine.spawn(scenario.name[:15])
    procs: dict[str, Any] = {MAIN: p}
    parent: dict[str, str] = {}  # child name -> parent name
    reaped: set[str] = set()
    libc_state: dict[str, Any] = {}  # the main process's allocations and heap start (libc steps)
    files = {name: (file_path(scenario, name), r.file) for name, r in scenario.regions.items() if r.file is not None}
    out: dict[str, dict[str, Any]] = {}
    try:
        fds = {name: _make_file(machine, p, path, spec) for name, (path, spec) in files.items()}
        base = {name: _map_region(p, r, fds.get(name, -1)) for name, r in scenario.regions.items()}
        for phase in scenario.phases:
            proc = procs[phase.proc]
            if not proc.alive:
                raise ScenarioError(f"scenario {scenario.name}, phase {phase.name}: process {phase.proc!r} "
                                    "has exited")
            if on_phase is not None:
                on_phase(phase.name, base)
            res: dict[str, Any] = {}
            if phase.steps and phase.steps[0].op in CONTROL_OPS:
                for step in phase.steps:
                    _control(step, phase.proc, procs, parent, reaped, res)
            elif not _measure(machine, scenario, phase, proc, base, fds, res, libc_state):
                out[phase.name] = res
                if not p.alive:
                    break
                continue
            _record_smaps(machine, scenario, proc, base, res, "")
            for other in phase.observe:
                _record_smaps(machine, scenario, procs[other], base, res, f"@{other}")
            out[phase.name] = res
    finally:
        _end_processes(procs, parent, reaped)
        for path, _spec in files.values():
            if machine.fs.exists(path):
                machine.fs.unlink(path)
    return out


def _control(step: Step, who: str, procs: dict[str, Any], parent: dict[str, str], reaped: set[str],
             res: dict[str, Any]) -> None:
    """Run one control step (fork, exit, wait, setrlimit, drop_capability) in process ``who`` (not measured)."""
    proc = procs[who]
    if step.op == "fork":
        procs[step.target] = proc.fork()
        parent[step.target] = who
    elif step.op == "exit":
        proc.exit(*step.args)
    elif step.op == "setrlimit":
        res, soft, hard = step.args
        proc.setrlimit(res, (soft, hard))
    elif step.op == "drop_capability":
        proc.drop_capability(*step.args)
    else:
        if parent.get(step.target) != who:
            raise ScenarioError(f"wait: {step.target!r} is not a child of {who!r}")
        _pid, status = proc.wait(procs[step.target].pid)
        reaped.add(step.target)
        res[f"wait status[{step.target}]"] = f"{status:#x}"


def _measure(machine: Any, scenario: Scenario, phase: Phase, proc: Any, base: dict[str, int],
             fds: dict[str, int], res: dict[str, Any], libc_state: dict[str, Any]) -> bool:
    """Run the phase's calls as one measured window in ``proc``: fault counts into ``res``; False if it
    ended in a signal (then ``signal`` and ``si_addr`` are recorded instead)."""
    if phase.steps and phase.steps[0].op == "exec":
        _run_exec(machine, proc, phase.steps[0], res)
        return True
    libc = any(s.op in LIBC_OPS for s in phase.steps)
    ops = [] if libc else [op for s in phase.steps for op in _calls(s, base, scenario.regions, fds)]
    perf0 = proc.perf_counts()
    try:
        if libc:
            before, after = _run_libc(proc, phase, base, scenario.regions, res, libc_state)
        else:
            before, after = proc.run_phase(ops)
    except SegmentationFault as sig:
        res["signal"] = f"SIGSEGV {sig.si_code}"
        res["si_addr"] = _where(sig.addr, base, scenario.regions)
        return False
    except OSError as err:
        if not phase.errno or err.errno is None:
            raise
        res["errno"] = _errno.errorcode.get(err.errno, str(err.errno))
        return True  # the process lives on: its smaps are recorded, no fault counts
    if phase.errno:
        res["errno"] = "ok"
    res["minflt"] = after.ru_minflt - before.ru_minflt
    res["majflt"] = after.ru_majflt - before.ru_majflt
    perf1 = proc.perf_counts() if perf0 is not None else None
    if perf0 is not None and perf1 is not None:
        for name in ("page-faults", "minor-faults", "major-faults"):
            res[f"perf {name}"] = perf1[name] - perf0[name]
    return True


def _run_libc(proc: Any, phase: Phase, base: dict[str, int], regions: dict[str, Region], res: dict[str, Any],
              state: dict[str, Any]) -> tuple[Any, Any]:
    """Run a phase holding libc steps as direct calls between two getrusage() readings: p.malloc() and
    friends are pagelab's glibc model issuing several calls each (brk, mmap, stores), which the real
    backend's one-message measured window cannot hold. Counters: ``where[name]`` per malloc, ``malloc_trim``,
    ``brk``; then ``break`` (the break above the heap start, in bytes) and ``resident[heap]`` (mincore of the heap's
    whole pages). ``state`` holds the allocations by name and the heap start (brk(0) before the first
    libc step), for the scenario's length."""
    if not state:
        state.update(allocs={}, heap0=proc.brk(0))
    allocs: dict[str, tuple[int, int]] = state["allocs"]
    heap0: int = state["heap0"]
    made = {s.target for s in phase.steps if s.op == "malloc"}
    for step in phase.steps:
        if step.op in ("fill", "free") and step.target not in allocs and step.target not in made:
            raise ScenarioError(f"{step.op} of unknown allocation {step.target!r}")
    placed: dict[str, int] = {}  # the phase's mallocs, by name
    before = proc.rusage()
    for step in phase.steps:
        if step.op == "fill":
            proc.access(_span(*allocs[step.target]), write=True)
        elif step.op == "malloc":
            placed[step.target] = proc.malloc(step.args[0])
            allocs[step.target] = (placed[step.target], step.args[0])
        elif step.op == "free":
            proc.free(allocs.pop(step.target)[0])
        elif step.op == "brk":
            res["brk"] = proc.brk(heap0 + step.args[0]) - heap0
        elif step.op == "malloc_trim":
            res["malloc_trim"] = proc.malloc_trim(*step.args)
        elif step.op == "mallopt":
            proc.mallopt(*step.args)
        else:
            op, args, kwargs = _call(step, base, regions)
            getattr(proc, op)(*args, **kwargs)
    after = proc.rusage()
    top = proc.brk(0)
    for name, addr in placed.items():
        res[f"where[{name}]"] = f"heap+{addr - heap0:#x}" if heap0 <= addr < top else f"mmap+{addr % PAGE_SIZE:#x}"
    res["break"] = top - heap0
    first = -(-heap0 // PAGE_SIZE) * PAGE_SIZE
    whole = (top - first) // PAGE_SIZE * PAGE_SIZE
    res["resident[heap]"] = int(proc.mincore(first, whole).sum()) if whole > 0 else 0
    return before, after


def _run_exec(machine: Any, proc: Any, step: Step, res: dict[str, Any]) -> None:
    """An exec step: the cache prepared (not measured), then p.exec() between two rusage() readings (perf is
    not read: the real process is stopped at its exit), then the maps at the exit stop as ``vma[i]``."""
    from ..workload.startup import profile_for, startup_files

    path, argv = step.args
    for d in step.kwargs.get("dirs", ()):
        os.makedirs(d, exist_ok=True)
    _prepare_cache(machine, startup_files(profile_for(path, list(argv))), path, list(argv), step.kwargs["cache"])
    before = proc.rusage()
    proc.exec(path, list(argv))
    after = proc.rusage()
    res["minflt"] = after.ru_minflt - before.ru_minflt
    res["majflt"] = after.ru_majflt - before.ru_majflt
    for i, vma in enumerate(maps_kinds(machine.read(f"/proc/{proc.pid}/maps"))):
        res[f"vma[{i}]"] = " ".join(map(str, vma))


def _prepare_cache(machine: Any, files: list[str], path: str, argv: list[str], cache: str) -> None:
    """The host's page cache of a program's files, made "cold" or "warm" on the host, and on a simulated
    machine mirrored from it (as tests/real/test_exec_real.py does).

    cold: the files are evicted on the host (POSIX_FADV_DONTNEED: the pages other processes map stay) and,
    on a simulated machine, in its page cache too, which then gets the pages the host kept
    (startup.prime_cache). warm: one real launch first (the facts' warm state); a simulated machine gets
    every page the host then has cached. Both backends do the host side, so each finds the host as the
    other did.
    """
    from ..real.startup import evict_host, host_residency, measure_launch
    from ..workload.startup import prime_cache

    if cache == "cold":
        evict_host(files)
    else:
        measure_launch(os.path.realpath(path), argv)
    kept = host_residency(files)
    if not hasattr(machine, "cpu_fbatches"):  # the real machine: the host is the cache
        return
    helper = machine.spawn("evict")
    for file in files:
        sim = file if machine.fs.exists(file) else machine.fs.import_host(file)
        fd = helper.open(sim)
        helper.fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        helper.close(fd)
    helper.exit()
    prime_cache(machine, kept)


def maps_kinds(maps_text: str) -> list[tuple[str, str, int]]:
    """(perms, name or "", size) of each VMA of /proc/PID/maps; the [stack]'s size is 0 (its strings' pages
    differ), addresses are left out (randomization)."""
    out = []
    for line in maps_text.splitlines():
        w = line.split()
        a, b = (int(x, 16) for x in w[0].split("-"))
        name = w[5] if len(w) > 5 else ""
        out.append((w[1], name, 0 if name == "[stack]" else b - a))
    return out


def _span(addr: int, n: int) -> list[int]:
    """One address in every page [addr, addr + n) touches: what memset() of the allocation writes to first."""
    first = (addr // PAGE_SIZE + 1) * PAGE_SIZE
    return [addr, *range(first, addr + n, PAGE_SIZE)] if n > 0 else []


def _record_smaps(machine: Any, scenario: Scenario, proc: Any, base: dict[str, int], res: dict[str, Any],
                  suffix: str) -> None:
    """The smaps fields, resident pages and VmFlags of every region in ``proc`` (nothing once it has
    exited); ``suffix`` ("@child") names another process than the phase's."""
    if not proc.alive:
        return
    vmas = parse_smaps(machine.read(f"/proc/{proc.pid}/smaps"))
    for name, start in base.items():
        end = start + scenario.regions[name].size
        inside = [v for v in vmas if v["start"] < end and v["end"] > start]  # its pieces, if split
        key = f"{name}{suffix}"
        for field_name in scenario.smaps_fields:
            res[f"{field_name}[{key}] kB"] = sum(v.get(field_name, 0) for v in inside)
        batched = _lazyfree_batched_kb(proc, start, end)
        if batched and "LazyFree" in scenario.smaps_fields:
            lazy = res[f"LazyFree[{key}] kB"]
            res[f"LazyFree[{key}] kB"] = Band(lazy, lazy, lazy + batched, LRU_BATCH_BAND)
        res[f"resident[{key}]"] = sum(int(proc.mincore(v["start"], v["end"] - v["start"]).sum()) for v in inside)
        res[f"VmFlags[{key}]"] = " | ".join(" ".join(v.get("VmFlags", [])) for v in inside)


def _end_processes(procs: dict[str, Any], parent: dict[str, str], reaped: set[str]) -> None:
    """Exit every process still alive, the last forked first (children before their parents), and let
    each parent still alive reap its child, so neither backend keeps a zombie (main, spawned, is reaped
    by the machine; a child whose parent exited before it is reaped as an orphan)."""
    for name in reversed(list(procs)):
        proc = procs[name]
        if proc.alive:
            proc.exit()
        up = parent.get(name)
        if up is not None and name not in reaped and procs[up].alive:
            procs[up].wait(proc.pid)
            reaped.add(name)


LRU_BATCH_BAND = "per-CPU lru batch"  # see _lazyfree_batched_kb


def _lazyfree_batched_kb(p: Any, start: int, end: int) -> int:
    """How much LazyFree (kB) in [start, end) a drain of the per-CPU lru_lazyfree batch would add.

    Why a band and not a drain on both sides: after MADV_FREE the kernel applies folios to the lazyfree
    LRU 31 at a time (FOLIO_BATCH_SIZE) and leaves the rest in a per-CPU batch until something drains it:
    any task's lru_add_drain() on that CPU, or lru_add_drain_all() (khugepaged's scan, compaction,
    drop_caches, MADV_COLLAPSE). On a quiet host smaps shows the undrained count (992 of 1024 kB), which
    is the model's figure; on a busy host another task may have drained it first. Draining on both sides
    would need an lru_add_drain_all() from the child (only MADV_COLLAPSE gives one, as a THP side effect)
    and would erase the fact the batch model exists to show. So the model's value is the lower end and
    its batched folios the width: the band is exactly what a drain can change, no wider. It assumes the
    phase's MADV_FREE ran on one CPU, as one call within one page table does (the PTE lock keeps the walk
    on its CPU), which holds for every built-in scenario.

    0 on the real kernel, whose batches cannot be read.
    """
    task = getattr(p, "task", None)
    machine = getattr(task, "machine", None)
    if task is None or machine is None or not hasattr(machine, "cpu_fbatches"):
        return 0
    from ..observe.procfs import lazyfree_batched

    return sum(lazyfree_batched(machine, v) for v in task.mm.vmas if v.vm_start < end and v.vm_end > start) >> 10


def _where(addr: int, base: dict[str, int], regions: dict[str, Region]) -> str:
    for name, start in base.items():
        if start <= addr < start + regions[name].size:
            return f"{name}+{addr - start:#x}"
    return "outside the regions"


# --- host settings the simulator does not model yet -----------------------------------------------

THP_DIR = "/sys/kernel/mm/transparent_hugepage"


def thp_sizes(host: dict[str, Any], *, shmem: bool, madvised: bool) -> dict[int, str]:
    """The folio sizes above 4 KiB (bytes) the host's THP settings let the kernel use in a VMA: {size: the
    setting that allows it}.

    Mirrors the sysfs half of thp_vma_allowable_orders() (mm/huge_memory.c): for private anonymous memory
    each ``hugepages-<size>kB/enabled`` is always, madvise (VMAs with VM_HUGEPAGE), never, or inherit
    (the top-level ``enabled``); shared anonymous memory is shmem, governed by ``shmem_enabled`` (always,
    within_size and force allow huge folios; advise only with VM_HUGEPAGE). A host without per-size files
    (before Linux 6.8) has only the 2 MiB size, governed by the top-level file.
    """
    kind = "shmem_enabled" if shmem else "enabled"
    top = host.get(f"{THP_DIR}/{kind}")
    prefix = f"{THP_DIR}/hugepages-"
    per_size = {int(k[len(prefix):-len(kind) - 3]): v for k, v in host.items()
                if k.startswith(prefix) and k.endswith(f"kB/{kind}")}
    if not per_size:
        per_size = {PMD_SIZE >> 10: "inherit"}
    allowed = ("always", "within_size", "force") + (("madvise", "advise") if madvised else ())
    out = {}
    for kb, mode in sorted(per_size.items()):
        if mode == "inherit" and top in allowed:
            out[kb << 10] = f"{kind}={top}"
        elif mode in allowed:
            out[kb << 10] = f"hugepages-{kb}kB/{kind}={mode}"
    return out


def _holds_aligned(start: int, length: int, size: int) -> bool:
    """Whether [start, start + length) contains a naturally aligned block of ``size`` bytes."""
    first = (start + size - 1) // size * size
    return first + size <= start + length


def thp_caveat(scenario: Scenario, host: dict[str, Any]) -> str:
    """Why this host's THP settings may make the kernel differ from the simulator here ("" if they cannot).

    PMD-sized THP of private anonymous memory is modelled; other sizes (mTHP) and huge shmem folios are
    not yet: where the host may back part of a region with one of those (its VMA holds an aligned block of
    an allowed size), the kernel takes one fault per folio and the simulator one per page. Regions are
    placed ``offset`` bytes past an ``align``-aligned address, so the geometry is known before the
    scenario runs.
    """
    hits: list[str] = []
    why: dict[str, None] = {}  # the settings responsible, in order, once each
    for name, r in scenario.regions.items():
        if not r.flags & MAP_ANONYMOUS:
            continue
        shmem = bool(r.flags & MAP_SHARED)
        advised = [(st.offset, st.length if st.length is not None else r.size - st.offset)
                   for ph in scenario.phases for st in ph.steps
                   if st.region == name and st.op == "madvise" and st.args[:1] == (MADV_HUGEPAGE,)]
        sizes = {size: w for size, w in thp_sizes(host, shmem=shmem, madvised=False).items()
                 if r.align % size == 0 and _holds_aligned(r.offset, r.size, size)}
        sizes |= {size: w for size, w in thp_sizes(host, shmem=shmem, madvised=True).items() for off, n in advised
                  if r.align % size == 0 and _holds_aligned(r.offset + off, n, size)}
        if not shmem:
            sizes.pop(PMD_SIZE, None)  # PMD-sized anonymous THP is modelled (mm/huge_memory.py)
        if sizes:
            hits.append(f"{name} ({', '.join(f'{size >> 10} kB' for size in sorted(sizes))})")
            why.update({w: None for w in sizes.values()})
    if not hits:
        return ""
    return (f"host THP ({', '.join(why)}) lets the kernel map huge folios in region {'; '.join(hits)}; "
            "the simulator models only PMD-sized anonymous THP, so its counts here can differ")
