"""Start-up profiles: what a real program does to memory from its execve() to its exit, captured once
from a real launch and replayed onto a simulated exec.

pagelab executes no machine code, so a program's start-up (the dynamic loader's work and the program's
own until exit) is captured from a real launch on this host and stored as data:

- Capture (real/startup.py ``capture()``, needs root, perf and ptrace): the program's files are evicted from the page
  cache (POSIX_FADV_DONTNEED; pages other processes map stay), so the launch is as cold as the host
  allows and its faults include the accesses fault-around serves on a warm launch (the simulator then
  decides which of them fault); the program is forked stopped, ``perf record``
  attaches to it with the tracepoints exceptions:page_fault_user and exceptions:page_fault_kernel and
  the mmap events (``-d``: every mmap(), mprotect() and brk() shows as a PERF_RECORD_MMAP2 with its
  range, protection, file and offset), then it runs under ptrace with PTRACE_O_TRACEEXEC|TRACEEXIT:
  events before its exec stop are execve()'s own (the kernel's mappings, padzero()'s faults: the
  simulated exec makes those itself); the rest is the start-up. Every fault is named relative to the
  mapping it hit (``obj PATH VADDR`` inside an ELF object's image, ``file PATH OFFSET``, ``anon EVENT
  OFFSET``, ``heap``/``stack``/``vdso`` offsets), every mapping event becomes a step (a library ld.so
  mapped, an anonymous or file mmap, an mprotect, the heap's size), and /proc/PID/maps at the exit stop
  is kept with the fault counts of the launch.
- Format: a versioned text file, one step a line (see ``format_profile``). Profiles live in the cache
  directory ($XDG_CACHE_HOME/pagelab/startup, else ~/.cache/pagelab/startup), captured on demand.
- Replay (``run_startup()``): the steps in order on the simulated process: ld.so's libraries mapped by
  workload/ld_so.py (checked against the profile: same libraries, same order), mmap/mprotect/brk
  replayed, and each captured fault replayed as one access (a read, a write, or an instruction fetch,
  simulated as a read) at the same place in the simulated mapping. Accesses that did not fault on the
  real kernel are not in the profile, so the simulated counts hold the real ones to the simulator's own
  fault-around, readahead and page-cache state: cold or warm as the simulated machine is.

Simplified: munmap() is not recorded by perf, so only ld.so's unmapping of /etc/ld.so.cache is replayed
(after its last RELRO mprotect, where glibc does it); a program that unmaps other memory during its
start-up is not modelled. GUP faults (execve()'s copy of the argument strings) are the simulated
exec's own.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import NotModelled, PagelabError

if TYPE_CHECKING:
    from ..fs.binfmt_elf import ElfImage
    from ..kernel.exec import Loaded
    from ..machine import Machine
    from ..process import Process

PROFILE_VERSION = 1
MAGIC = f"# pagelab start-up profile v{PROFILE_VERSION}"
X86_PF_WRITE, X86_PF_USER, X86_PF_INSTR = 0x2, 0x4, 0x10


class ProfileError(PagelabError):
    """A start-up profile that cannot be read, captured or replayed."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class Step:
    """One line of a profile: ``kind`` and its words.

    object PATH                      ld.so mapped this library (its reservation, segments and .bss)
    anon SIZE PROT                   an anonymous private mmap (placed where mmap() puts it)
    file PATH OFFSET SIZE PROT       a private file mmap that is not an ELF object (/etc/ld.so.cache)
    protect REGION... SIZE PROT      an mprotect() of a range that starts at REGION
    brk SIZE                         the heap ([heap]) now SIZE bytes long
    fault R|W|X user|kernel REGION...  one page fault; REGION is one of
        obj PATH VADDR | file PATH OFFSET | anon STEP OFFSET | heap OFFSET | stack OFFSET_BELOW_END |
        vdso OFFSET | vvar OFFSET | vvar_vclock OFFSET
    """

    kind: str
    args: tuple[str, ...]

    def line(self) -> str:
        return " ".join([self.kind, *(shlex.quote(a) for a in self.args)])


@dataclass(frozen=True, slots=True)
class StartupProfile:
    """A captured start-up: the program, its argv, a digest of the binary, where it was captured, the
    real fault counts of the capture (execve's own, then the start-up's), its maps at exit, the steps."""

    program: str
    argv: tuple[str, ...]
    sha256: str
    kernel: str
    counts: tuple[int, int, int, int]  # minflt, majflt of execve(); minflt, majflt exec stop -> exit
    status: int  # its exit code
    maps: tuple[str, ...]
    steps: tuple[Step, ...]

    @property
    def faults(self) -> int:
        return sum(1 for s in self.steps if s.kind == "fault")


def format_profile(p: StartupProfile) -> str:
    """The profile as text: a header of ``key value`` lines, the maps, then one step per line."""
    out = [MAGIC, f"program {shlex.quote(p.program)}", "argv " + " ".join(shlex.quote(a) for a in p.argv),
           f"sha256 {p.sha256}", f"kernel {p.kernel}", "counts " + " ".join(map(str, p.counts)),
           f"status {p.status}"]
    out += [f"maps {line}" for line in p.maps]
    out += [s.line() for s in p.steps]
    return "\n".join(out) + "\n"


STEP_ARITY = {"object": 1, "anon": 2, "file": 4, "brk": 1}


def parse_profile(text: str) -> StartupProfile:
    """Read ``format_profile``'s text back; ProfileError naming the line for anything else."""
    lines = text.splitlines()
    if not lines or lines[0] != MAGIC:
        raise ProfileError(f"not a pagelab start-up profile v{PROFILE_VERSION} (first line {lines[:1]!r})")
    head: dict[str, list[str]] = {}
    maps: list[str] = []
    steps: list[Step] = []
    for n, line in enumerate(lines[1:], 2):
        if line.startswith("maps "):
            maps.append(line[5:])
            continue
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise ProfileError(f"line {n}: {exc}") from None
        if not words:
            continue
        key, args = words[0], words[1:]
        if key in ("program", "argv", "sha256", "kernel", "counts", "status"):
            head[key] = args
        elif key in STEP_ARITY or key in ("protect", "fault"):
            if key in STEP_ARITY and len(args) != STEP_ARITY[key] or key == "fault" and len(args) < 4 \
                    or key == "protect" and len(args) < 4:
                raise ProfileError(f"line {n}: {key} with {len(args)} arguments")
            steps.append(Step(key, tuple(args)))
        else:
            raise ProfileError(f"line {n}: unknown step {key!r}")
    try:
        counts = tuple(int(c) for c in head["counts"])
        if len(counts) != 4:
            raise ValueError
        return StartupProfile(head["program"][0], tuple(head["argv"]), head["sha256"][0], " ".join(head["kernel"]),
                              (counts[0], counts[1], counts[2], counts[3]), int(head["status"][0]), tuple(maps),
                              tuple(steps))
    except (KeyError, IndexError, ValueError):
        raise ProfileError("profile header incomplete (program, argv, sha256, kernel, counts, status)") from None


def sha256_of(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --- where profiles live ---------------------------------------------------------------------------

def profile_dir() -> Path | None:
    from ..real.launch import cache_dir

    base = cache_dir()
    return None if base is None else base / "startup"


def profile_path(program: str, argv: list[str]) -> Path | None:
    d = profile_dir()
    if d is None:
        return None
    key = hashlib.sha256("\0".join([os.path.realpath(program), *argv]).encode()).hexdigest()[:16]
    return d / f"{os.path.basename(program)}-{key}.txt"


def profile_for(program: str, argv: list[str], *, capture_missing: bool = True) -> StartupProfile:
    """The start-up profile of ``program`` run with ``argv``: from the cache directory when one matches the
    binary's digest, else captured now (and stored there) when ``capture_missing``; else ProfileError."""
    path = profile_path(program, argv)
    real = os.path.realpath(program)
    if path is not None and path.is_file():
        prof = parse_profile(path.read_text())
        if prof.sha256 == sha256_of(real) and list(prof.argv) == list(argv):
            return prof
    if not capture_missing:
        raise ProfileError(f"no start-up profile of {program} {argv} in {path}")
    from ..real.startup import capture

    prof = capture(real, argv)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(format_profile(prof))
            tmp.replace(path)
        except OSError:
            pass  # an unwritable cache: the profile is used without being kept
    return prof


# --- replay on the simulator -----------------------------------------------------------------------

def layout_phase(profile: StartupProfile) -> tuple[int, int] | None:
    """The page index modulo 16 of the program's and the interpreter's first mapping in the captured
    launch (kernel/exec.py do_execveat_common()'s ``phase``); None when the maps do not show both."""
    firsts: dict[str, int] = {}
    for line in profile.maps:
        words = line.split()
        if len(words) >= 6 and words[5] not in firsts:
            firsts[words[5]] = int(words[0].split("-")[0], 16)
    try:
        from ..fs.binfmt_elf import read_elf

        interp = read_elf(profile.program).interp
        exe_start = firsts[profile.program]
        interp_start = firsts[os.path.realpath(interp)] if interp else 0
    except (KeyError, OSError):
        return None
    return (exe_start >> 12) % 16, (interp_start >> 12) % 16


@dataclass(slots=True)
class _Sim:
    """Where things are in the simulated process: object bases, the addresses of replayed mmaps."""

    p: Process
    loaded: Loaded
    bases: dict[str, int] = dataclasses.field(default_factory=dict)
    anon: dict[int, int] = dataclasses.field(default_factory=dict)
    files: dict[str, tuple[int, int, int]] = dataclasses.field(default_factory=dict)  # path -> (addr, off, size)

    def address(self, region: tuple[str, ...]) -> int:
        kind = region[0]
        mm = self.p.task.mm
        try:
            if kind == "obj":
                return self.bases[region[1]] + int(region[2])
            if kind == "file":
                addr, off, size = self.files[region[1]]
                return addr + int(region[2]) - off
            if kind == "anon":
                return self.anon[int(region[1])] + int(region[2])
            if kind == "heap":
                return mm.start_brk + int(region[1])
            if kind == "stack":
                stack = next(v for v in mm.vmas if v.vm_start <= mm.start_stack < v.vm_end)
                return stack.vm_end - int(region[1])
            special = next(v for v in mm.vmas if v.vm_ops is not None and v.vm_ops.name == f"[{kind}]")
            return special.vm_start + int(region[1])
        except (KeyError, StopIteration, ValueError, IndexError):
            raise ProfileError(f"profile region {' '.join(region)} has no counterpart here") from None


PROTS = {"r": 1, "w": 2, "x": 4}


def _prot(text: str) -> int:
    return sum(PROTS[c] for c in text[:3] if c in PROTS)


def check_libraries(profile: StartupProfile) -> list[ElfImage]:
    """The libraries ld.so finds here for the profile's program (workload/ld_so.py); ProfileError unless
    they are the ones, in the order, the captured launch mapped."""
    from ..fs.binfmt_elf import read_elf
    from .ld_so import needed_libraries, read_ld_so_cache

    exe = read_elf(profile.program)
    libs = needed_libraries(exe, read_ld_so_cache()) if exe.interp is not None else []
    wanted = [s.args[0] for s in profile.steps if s.kind == "object"]
    if wanted != [lib.path for lib in libs]:
        raise ProfileError(f"the profile's libraries {wanted} are not the ones ld.so finds here "
                           f"{[lib.path for lib in libs]}")
    return libs


def run_startup(p: Process, loaded: Loaded, profile: StartupProfile) -> None:
    """Replay ``profile``'s steps onto ``p`` right after its simulated execve() (``loaded``)."""
    from ..constants import MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE
    from ..mm.mmap import sys_brk
    from .ld_so import map_object, protect_relro, relro_range

    sim = _Sim(p, loaded)
    sim.bases[loaded.exe.path] = loaded.load_bias
    if loaded.interp is not None:
        sim.bases[loaded.interp.path] = loaded.interp_base
    by_path = {lib.path: lib for lib in check_libraries(profile)}
    objects = {loaded.exe.path: loaded.exe, **by_path}
    if loaded.interp is not None:
        objects[loaded.interp.path] = loaded.interp
    m = p.machine
    for i, step in enumerate(profile.steps):
        a = step.args
        if step.kind == "fault":
            addr = sim.address(a[2:])
            p.access([addr], write=a[0] == "W")
        elif step.kind == "object":
            sim.bases[a[0]] = map_object(p, by_path[a[0]])
        elif step.kind == "anon":
            sim.anon[i] = p.mmap(None, int(a[0]), _prot(a[1]), MAP_PRIVATE | MAP_ANONYMOUS)
        elif step.kind == "file":
            path = a[0] if m.fs.exists(a[0]) else m.fs.import_host(a[0])
            fd = p.open(path)
            try:
                sim.files[a[0]] = (p.mmap(None, int(a[2]), _prot(a[3]), MAP_PRIVATE, fd, int(a[1])), int(a[1]),
                                   int(a[2]))
            finally:
                p.close(fd)
        elif step.kind == "protect":
            obj = objects.get(a[1]) if a[0] == "obj" else None
            if obj is not None and relro_range(obj) == (int(a[2]), int(a[-2])) and a[-1].startswith("r--"):
                protect_relro(p, obj, sim.bases[a[1]])  # _dl_protect_relro(), from the object's PT_GNU_RELRO
            else:
                p.mprotect(sim.address(a[:-2]) & ~(PAGE_SIZE - 1), int(a[-2]), _prot(a[-1]))
            if a[0] == "obj" and loaded.interp is not None and a[1] == loaded.interp.path:
                _unmap_cache(sim)  # ld.so's last RELRO mprotect is its own; then munmap() of the cache
        elif step.kind == "brk":
            mm = p.task.mm
            sys_brk(p.task, mm.start_brk + int(a[0]))
        else:
            raise NotModelled(f"start-up step {step.kind}")


def _unmap_cache(sim: _Sim) -> None:
    from .ld_so import LD_SO_CACHE

    cache = sim.files.pop(LD_SO_CACHE, None)
    if cache is not None:
        sim.p.munmap(cache[0], cache[2])


# --- cold and warm: the files of a start-up and their page-cache state ----------------------------------

def startup_files(profile: StartupProfile) -> list[str]:
    """Every host file the start-up maps: the program, its interpreter, the libraries, other files (the
    ld.so cache)."""
    from ..fs.binfmt_elf import read_elf

    files = [profile.program]
    interp = read_elf(profile.program).interp
    if interp:
        files.append(os.path.realpath(interp))
    files += [s.args[0] for s in profile.steps if s.kind in ("object", "file")]
    return list(dict.fromkeys(files))


def prime_cache(m: Machine, residency: dict[str, list[tuple[int, int]]]) -> None:
    """Bring into the simulated page cache the pages ``residency`` lists (host_residency()'s runs), as a
    process reading them would: each run with POSIX_FADV_WILLNEED (it reads exactly the range), from a
    helper process that then exits. The host's "cold" start of a program finds what other processes keep
    cached (their mappings of libc, ld.so, a shell): this gives the simulated machine the same."""
    p = m.spawn("prime")
    for path, runs in residency.items():
        sim = path if m.fs.exists(path) else m.fs.import_host(path)
        fd = p.open(sim)
        for first, n in runs:
            p.fadvise(fd, first << 12, n << 12, os.POSIX_FADV_WILLNEED)
        p.close(fd)
    p.exit()
