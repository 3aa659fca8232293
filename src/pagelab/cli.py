"""The ``pagelab`` command: small command classes over the library; ``main(argv) -> int``.

User errors print the command's usage and a one-line message and exit 2 (as argparse does); other
failures print one line and exit 1 (or the error's own code); Ctrl-C exits 130, as a shell reports
SIGINT. None of them prints a traceback. Each command's name comes from its class, its help from its
docstring.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import textwrap
from collections.abc import Callable, Iterable
from typing import Any

from . import __version__
from .constants import MADV_DONTNEED, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE, MiB
from .errors import PagelabError
from .kernel.tracepoint import FaultTrace
from .machine import VERSION_MODELLED, Machine
from .mm.page_alloc import nr_free_frames
from .observe.parse import parse_smaps
from .observe.summary import perf_stat, time_v
from .observe.trace import describe
from .workload.scenario import Band, Scenario

WIDTH = 100  # explain and validate wrap their prose to this many columns


class UsageError(PagelabError):
    """A bad command line that argparse could not catch: the command's usage, the message, exit 2."""

    exit_code = 2


class Command:
    """Base: subclasses set ``name`` and implement ``add_arguments`` and ``run``."""

    name = ""

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        pass

    def run(self, args: argparse.Namespace) -> int:
        raise NotImplementedError


class Demo(Command):
    """Map 64 MiB of anonymous memory, read it, write it, drop it, and show what Linux would report."""

    name = "demo"

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--size-mib", type=int, default=64, help="size of the mapping in MiB (default 64)")
        p.add_argument("--ram", default="2GiB", help="simulated RAM, e.g. 512MiB or 4GiB (default 2GiB)")
        p.add_argument("--seed", type=int, default=0,
                       help="seed of every random choice (mmap placement); same seed, same output (default 0)")

    def run(self, args: argparse.Namespace) -> int:
        if args.size_mib <= 0:
            raise UsageError("--size-mib must be positive")
        try:
            m = Machine(ram=args.ram, seed=args.seed)
        except (ValueError, TypeError) as exc:  # a --ram the machine refuses
            raise UsageError(f"--ram {args.ram}: {exc}") from None
        p = m.spawn("demo")
        size = args.size_mib * MiB
        print(f"# pagelab {__version__} demo (models Linux {VERSION_MODELLED})  seed={args.seed} ram={args.ram} "
              f"cpu={m.cpu.name} thp={m.settings.transparent_hugepage.enabled}")
        a = p.mmap(None, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
        print(f"mmap({size >> 20} MiB, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS) = {a:#x}")
        steps: list[tuple[str, Callable[[], None]]] = [
            ("read one byte per page", lambda: p.touch(a, size)),
            ("write one byte per page", lambda: p.touch(a, size, write=True)),
            ("write again", lambda: p.touch(a, size, write=True)),
            ("madvise(MADV_DONTNEED)", lambda: p.madvise(a, size, MADV_DONTNEED)),
            ("write again", lambda: p.touch(a, size, write=True)),
        ]
        print(f"\n{'step':<28}{'minflt':>8}{'majflt':>8}{'Rss kB':>10}{'PageTables kB':>15}{'sim ms':>10}")
        for what, step in steps:
            before = p.rusage().ru_minflt
            step()
            rss = parse_smaps(m.read(f"/proc/{p.pid}/smaps"))[0]["Rss"]
            pt = int(m.read("/proc/meminfo").split("PageTables:")[1].split()[0])
            print(f"{what:<28}{p.rusage().ru_minflt - before:>8}{p.rusage().ru_majflt:>8}{rss:>10}"
                  f"{pt:>15}{m.now_ns / 1e6:>10.3f}")
        print(f"\n$ cat /proc/{p.pid}/smaps_rollup")
        print(m.read(f"/proc/{p.pid}/smaps_rollup"), end="")
        print(f"\n$ perf stat -e page-faults,minor-faults,major-faults  (pid {p.pid})")
        print(perf_stat(p.task), end="")
        vm = m.vmstat()
        print(f"$ grep -E 'pgfault|pgmajfault' /proc/vmstat\npgfault {vm['pgfault']}\npgmajfault {vm['pgmajfault']}")
        tlb = m.counters.sim_events()
        print("\n# the simulated TLB (simulator-only figures, not kernel counters)")
        print(" ".join(f"{k}={v}" for k, v in tlb.items() if k.startswith(("sim_dtlb", "sim_stlb", "sim_walk"))))
        p.exit()
        print(f"\n$ /usr/bin/time -v  (pid {p.task.pid}, after exit)")
        print(time_v(p.task), end="")
        print(f"\nsummary: minflt={p.task.min_flt} majflt={p.task.maj_flt} "
              f"free_after_exit={nr_free_frames(m) == m.totalram_pages}")
        return 0


class Validate(Command):
    """Run scenarios on this machine's real kernel and on Machine.from_host(); compare counter by counter.

    Exits 0 when every counter agrees (within its stated tolerance), 1 when one differs for no known
    reason. A difference this host's settings explain, because they enable what the simulator does not
    model yet (THP, swap), is shown with its reason and does not fail the run.
    """

    name = "validate"

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--scenario", action="append", metavar="NAME",
                       help="run only this scenario (repeatable; see --list)")
        p.add_argument("--list", action="store_true", help="list the scenarios and exit")
        p.add_argument("--json", action="store_true",
                       help="print the results (or, with --list, the scenarios) as JSON")

    def run(self, args: argparse.Namespace) -> int:
        from .workload.library import SCENARIOS

        if args.list:
            return _list_scenarios(SCENARIOS.values(), args.json)
        names = list(dict.fromkeys(args.scenario or SCENARIOS))  # a name given twice runs once
        unknown = [n for n in names if n not in SCENARIOS]
        if unknown:
            raise UsageError(f"unknown scenario {', '.join(unknown)}; see pagelab validate --list")
        return _validate([SCENARIOS[n] for n in names], args.json)


def _list_scenarios(scenarios: Iterable[Scenario], as_json: bool) -> int:
    scenarios = list(scenarios)
    if as_json:
        print(json.dumps([{"name": sc.name, "doc": sc.doc, "source": sc.source,
                           "phases": [ph.name for ph in sc.phases]} for sc in scenarios], indent=1))
        return 0
    width = max(len(sc.name) for sc in scenarios)
    for sc in scenarios:  # one line each, so the list greps
        print(f"{sc.name:<{width}}  {sc.doc}")
    return 0


def _validate(scenarios: list[Scenario], as_json: bool) -> int:
    from .real import Machine as RealMachine
    from .report.compare import compare, render_table, rows_as_dicts
    from .workload.scenario import run_scenario, thp_caveat
    from .workload.startup import ProfileError

    sim = Machine.from_host(without_swap=True)  # swap is not modelled; a swapped-out phase is flagged below
    host = sim.host_config
    warnings = _host_warnings(host)
    caveats = {sc.name: thp_caveat(sc, host) for sc in scenarios}
    affected = [name for name, why in caveats.items() if why]
    if affected:
        warnings.append(f"mTHP sizes and huge shmem folios are not modelled yet (PMD-sized anonymous THP is) "
                        f"and this host's settings let the kernel use them in "
                        f"{_count(len(affected), 'scenario')} ({', '.join(affected)}): their differences "
                        f"are shown with the reason and do not fail the run")
    for w in warnings:
        print(textwrap.fill(f"warning: {w}", WIDTH, subsequent_indent="  "), file=sys.stderr)
    rows = []
    not_run: list[str] = []
    with RealMachine() as real:
        for sc in scenarios:
            try:
                rows += compare(sc.name, run_scenario(real, sc), run_scenario(sim, sc), caveats[sc.name], sc.bands)
            except ProfileError as err:  # an exec scenario on a host that cannot capture the program's start-up
                not_run.append(sc.name)
                warnings.append(f"scenario {sc.name} not run: {err}")
                print(textwrap.fill(f"warning: {warnings[-1]}", WIDTH, subsequent_indent="  "), file=sys.stderr)
    misses = sum(not r.ok and not r.note for r in rows)
    explained = sum(not r.ok and bool(r.note) for r in rows)
    if as_json:
        print(json.dumps({"host": host, "pagelab": __version__, "warnings": warnings, "rows": rows_as_dicts(rows),
                          "misses": misses, "explained": explained, "not_run": not_run}, indent=1, default=str))
    else:
        print(f"# pagelab {__version__} validate  kernel={host.get('kernel')} "
              f"thp={host.get('/sys/kernel/mm/transparent_hugepage/enabled')} ram={host.get('MemTotal_kB')}kB "
              f"swap={host.get('SwapTotal_kB')}kB  (every probed host setting: --json)")
        print(render_table(rows))
        agree = len(rows) - misses - explained
        tail = f", {explained} explained by this host's settings (marked *)" if explained else ""
        tail += f"; not run here: {', '.join(not_run)}" if not_run else ""
        print(f"\nsummary: {agree} of {_count(len(rows), 'counter')} agree, {misses} differ{tail} "
              f"({_count(len(scenarios), 'scenario')})")
    return 1 if misses else 0


def _host_warnings(host: dict[str, Any]) -> list[str]:
    """What on this host the simulator leaves out, for the top of a validate run."""
    out = []
    if host.get("SwapTotal_kB"):
        devices = ", ".join(f"{d['name']} ({d['type']})" for d in host.get("swaps") or []) or "see /proc/swaps"
        out.append(f"this host has {host['SwapTotal_kB']} kB of swap ({devices}); the simulator models none. "
                   "No scenario needs swap, so all run; a phase in which the host swaps a scenario's pages "
                   "out is marked with that reason")
    return out


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


class Measure(Command):
    """Run a real command and report what /usr/bin/time -v and perf stat would, with a timeline and a diagnosis.

    As GNU time: the command's stdout and stderr are its own, the report goes to stderr (or -o FILE),
    and the exit status is the command's (128+N after a death by signal N; 126 when it cannot be
    executed, 127 when it is not found; 125 when measure itself fails).
    """

    name = "measure"

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--interval", type=float, default=0.1,
                       help="sampling interval in seconds (default 0.1; the first samples come at 5, 10, 20... ms)")
        p.add_argument("--json", action="store_true",
                       help="write the report as one line of JSON (to stderr, after the command's own output, "
                            "or to -o FILE)")
        p.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE instead of stderr (as time -o)")
        p.add_argument("-a", "--append", action="store_true", help="with -o FILE, append instead of overwriting")
        p.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- CMD ARGS...")

    def run(self, args: argparse.Namespace) -> int:
        from .real.measure import MeasureError, measure, render

        argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
        if not argv:
            raise MeasureError("missing program to run: pagelab measure [OPTIONS] -- CMD ARGS...")
        out = sys.stderr
        if args.output is not None:  # opened before the command runs, as GNU time does
            try:
                out = open(args.output, "a" if args.append else "w", encoding="utf-8",
                           errors="surrogateescape")  # argv bytes that are not UTF-8 are written back raw
            except OSError as exc:
                raise MeasureError(f"{args.output}: {exc.strerror}") from None
        try:
            try:
                m = measure(argv, args.interval, record_host=args.json)
            except KeyboardInterrupt:  # before the command started (e.g. while the launcher compiled)
                return 130
            out.write(json.dumps(m.as_dict()) + "\n" if args.json else render(m))
            out.flush()
        finally:
            if out is not sys.stderr:
                out.close()
        return 130 if m.interrupted else m.exit_code


class Explain(Command):
    """Run a scenario on the simulator and explain each fault: the trap, the kernel path, the PTE, the counts."""

    name = "explain"

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("scenario", nargs="?", default="tour", help="a scenario of pagelab validate --list "
                                                                  "(default: tour, one fault of each kind)")
        p.add_argument("--limit", type=int, default=4, help="faults shown per phase (default 4)")
        p.add_argument("--seed", type=int, default=0,
                       help="seed of every random choice (mmap placement); same seed, same output (default 0)")

    def run(self, args: argparse.Namespace) -> int:
        from .workload.library import SCENARIOS
        from .workload.scenario import MAIN, run_scenario

        if args.scenario not in SCENARIOS:
            raise UsageError(f"unknown scenario {args.scenario}; see pagelab validate --list")
        if args.limit < 0:
            raise UsageError("--limit must not be negative")
        sc = SCENARIOS[args.scenario]
        m = Machine(ram="1GiB", seed=args.seed)
        log: list[FaultTrace] = []
        marks: list[tuple[str, int]] = []  # (phase, index of its first fault in the log)
        bases: dict[str, int] = {}

        def on_phase(name: str, base: dict[str, int]) -> None:
            marks.append((name, len(log)))
            bases.update(base)

        m.fault_log = log
        results = run_scenario(m, sc, on_phase=on_phase)
        print(textwrap.fill(f"# pagelab {__version__} explain {sc.name}: {sc.doc}", WIDTH, subsequent_indent="#   "))
        print(textwrap.fill(f"# source: {sc.source}", WIDTH, subsequent_indent="#   "))
        marks.append(("", len(log)))
        phases = {ph.name: ph for ph in sc.phases}
        for (phase, start), (_, end) in zip(marks, marks[1:], strict=False):
            print()
            ph = phases[phase]
            title = phase if ph.proc == MAIN else f"{phase} (in {ph.proc})"
            for line in _phase_header(title, ph.steps, end - start, results.get(phase, {})):
                print(line)
            for t in log[start:min(end, start + args.limit)]:
                label, base = _region_of(t.address, bases, sc)
                print("\n".join(_wrap(line, indent="        ") for line in describe(t, base, label).splitlines()))
            if end - start > args.limit:
                print(f"    ... {end - start - args.limit} more like these")
        return 0


def _phase_header(phase: str, steps: Iterable[Any], faults: int, res: dict[str, Any]) -> list[str]:
    """A phase's header for explain: its calls, its counts, then each region's state, wrapped to WIDTH.

    The counters the scenario records per region (``Rss[a] kB``, ``VmFlags[a]`` ...) are grouped by
    region, so a line reads ``a: Rss 4 kB, Private_Dirty 4 kB ...`` instead of one long list.
    """
    lines = [_wrap(f"== {phase}: " + "; ".join(_describe_step(st) for st in steps), indent="     ")]
    if "signal" in res:
        lines.append(_wrap(f"   ended in {res['signal']} at {res.get('si_addr')}", indent="     "))
        return lines
    perf = " ".join(f"{k[5:]}={v}" for k, v in res.items() if k.startswith("perf "))
    counts = f"minflt={res.get('minflt')} majflt={res.get('majflt')}" + (f" | perf {perf}" if perf else "")
    if "minflt" in res:  # a phase of fork/exit/wait steps is not measured
        lines.append(_wrap(f"   {_count(faults, 'fault')}: {counts}", indent="     "))
    results = [f"{k} {v}" for k, v in res.items() if k in ("errno", "malloc_trim", "brk", "break")]
    if results:  # what the calls returned, and the break after them (issue #9)
        lines.append(_wrap("   results: " + ", ".join(results), indent="     "))
    regions: dict[str, list[str]] = {}
    for k, v in res.items():
        if "[" in k:
            field, rest = k.split("[", 1)
            name, unit = rest.split("]", 1)
            if isinstance(v, Band):  # LazyFree after MADV_FREE: the model's value, and what a drain makes it
                v = f"{v.value}{unit} ({v.hi}{unit} once the {v.why} is drained)"
                unit = ""
            pieces = f"{field} {v}{unit}".split(" | ")  # a VMA split in pieces: break between them only
            regions.setdefault(name, []).append(" | ".join(piece.replace(" ", "\u00a0") for piece in pieces))
    lines += [_wrap(f"   {name}: " + ", ".join(fields), indent="     ").replace("\u00a0", " ")
              for name, fields in regions.items()]
    return lines


def _wrap(text: str, indent: str) -> str:
    """``text`` wrapped to WIDTH columns, breaking only between words of the text's own spaces.

    Values that contain spaces (VmFlags ``rd wr mr``) stay on one line: they are joined with no-break
    spaces, which textwrap does not split on, and given their spaces back after.
    """
    if len(text) <= WIDTH:
        return text
    lead = len(text) - len(text.lstrip(" "))
    return "\n".join(textwrap.wrap(text[lead:], WIDTH, initial_indent=" " * lead, subsequent_indent=indent,
                                    break_long_words=False, break_on_hyphens=False))


def _describe_step(st: Any) -> str:
    """``touch(a+0x1000, 8 KiB, write=True)``: a scenario step as the call it makes."""
    if st.op in ("fork", "wait"):
        return f"{st.op}() -> {st.target}" if st.op == "fork" else f"wait({st.target})"
    if st.op == "exit":
        return f"exit({', '.join(map(str, st.args))})"
    if not st.region:  # a whole-process call (issue #9: mlockall, rlimits, malloc, brk, exec)
        return _describe_process_step(st)
    where = f"{st.region}+{st.offset:#x}" if st.offset else st.region
    size = "" if st.length is None else f", {_size(st.length)}"
    args = [_constant_name(st.op, a) if i == 0 else str(a) for i, a in enumerate(st.args)]
    extra = "".join(f", {a}" for a in args) + "".join(f", {k}={v}" for k, v in st.kwargs.items())
    if st.op in ("store", "load"):
        size = ""
    if st.op == "mremap" and st.target:
        extra += f", to {st.target}"
    return f"{st.op}({where}{size}{extra})"


def _describe_process_step(st: Any) -> str:
    """A step on no region: ``x = malloc(1 MiB)``, ``fill(x)``, ``brk(s + 0x1388)``, ``exec(/bin/ls ls DIR) [cold]``."""
    if st.op == "malloc":
        return f"{st.target} = malloc({_size(st.args[0])})"
    if st.op in ("free", "fill"):
        return f"{st.op}({st.target})"
    if st.op == "brk":
        return f"brk(s + {st.args[0]:#x})"
    if st.op == "exec":
        return f"exec({st.args[0]} {' '.join(st.args[1])}) [{st.kwargs['cache']}]"
    if st.op == "setrlimit":
        res, soft, hard = st.args
        return f"setrlimit({'RLIMIT_MEMLOCK' if res == 8 else res}, ({_size(soft)}, {_size(hard)}))"
    if st.op in ("mlockall", "munlockall"):
        from . import constants
        flags = st.args[0] if st.args else 0
        names = [k for k in ("MCL_CURRENT", "MCL_FUTURE", "MCL_ONFAULT") if flags & getattr(constants, k)]
        return f"{st.op}({'|'.join(names)})"
    return f"{st.op}({', '.join(map(str, st.args))})"


def _constant_name(op: str, value: Any) -> str:
    """An advice or a protection by its Linux name (``MADV_POPULATE_WRITE``, ``PROT_READ|PROT_WRITE``)."""
    from . import constants

    if op == "madvise":
        names = [k for k in dir(constants) if k.startswith("MADV_") and getattr(constants, k) == value]
        return names[0] if names else str(value)
    if op == "mprotect" and isinstance(value, int):
        bits = [k for k in ("PROT_READ", "PROT_WRITE", "PROT_EXEC") if value & getattr(constants, k)]
        return "|".join(bits) if bits and sum(getattr(constants, k) for k in bits) == value else \
            "PROT_NONE" if value == 0 else str(value)
    return str(value)


def _size(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} B"


def _region_of(addr: int, bases: dict[str, int], sc: Scenario) -> tuple[str, int]:
    for name, base in bases.items():
        if base <= addr < base + sc.regions[name].size:
            return name, base
    return "", 0


class TlbCommand(Command):
    """Random loads over a large working set with 4 KiB pages and with THP: TLB misses, page walks, time.

    The seed's TLB claim, through the simulated kernel: one private anonymous mapping, written once, with
    madvise(MADV_NOHUGEPAGE) (4 KiB pages) and again with madvise(MADV_HUGEPAGE) (THP at fault time,
    transparent_hugepage/enabled=madvise), then random 8-byte loads through the simulated MMU. Prints per
    page size the L1 dTLB misses, STLB misses (page walks, perf's dTLB-load-misses), walk cycles and the
    estimated translation time per load, with the CPU model's TLB geometry and its sources. The default
    run (4 GiB, 10 M loads) takes 5-15 s on 2 busy cores (more the first time, while numba compiles) and
    0.3 GiB of this host's memory; a run costs about 40 MiB of host memory per GiB of working set.
    """

    name = "tlb"

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        from .hw.cpu import CPU_MODELS

        size = p.add_mutually_exclusive_group()
        size.add_argument("--size-gib", type=int, help="working set in GiB (default 4)")
        size.add_argument("--size-mib", type=int, help="working set in MiB, a multiple of 2 (instead of --size-gib)")
        p.add_argument("--loads", type=int, default=10_000_000,
                       help="random loads counted per page size, after loads/10 that warm the TLB (default 10000000)")
        p.add_argument("--cpu", choices=sorted(CPU_MODELS), metavar="MODEL",
                       help=f"CPU model: {', '.join(sorted(CPU_MODELS))} (default: this host's if it is one of "
                            "them, from /proc/cpuinfo, else skylake)")
        p.add_argument("--seed", type=int, default=0,
                       help="seed of the random loads and of mmap placement; same seed, same output (default 0)")
        p.add_argument("--json", action="store_true", help="print the results as one JSON object")

    def run(self, args: argparse.Namespace) -> int:
        from .real.probe import cpu_identity, cpu_model_of
        from .workload.tlb_reach import MAX_LOADS, check_tlb_machine, render, tlb_reach

        for option, value in (("--size-gib", args.size_gib), ("--size-mib", args.size_mib), ("--loads", args.loads)):
            if value is not None and value <= 0:
                raise UsageError(f"{option} must be positive")
        if args.loads > MAX_LOADS:
            raise UsageError(f"--loads must be at most {MAX_LOADS} (about 10 minutes), got {args.loads}")
        if args.size_mib is not None and args.size_mib % 2:
            raise UsageError(f"--size-mib must be a multiple of 2 (whole 2 MiB huge pages), got {args.size_mib}")
        if args.seed < 0:
            raise UsageError("--seed must not be negative")
        size = args.size_mib * MiB if args.size_mib is not None else (args.size_gib or 4) << 30
        size_text = f"{size >> 30}GiB" if size % (1 << 30) == 0 else f"{size >> 20}MiB"
        if args.cpu is not None:
            cpu, chosen = args.cpu, "--cpu"
        else:
            ident = cpu_identity()
            detected = cpu_model_of(ident)
            cpu, chosen = detected or "skylake", (
                f"this host: {ident['model_name'] or ident['vendor_id']}, family {ident['cpu_family']:#x} model "
                f"{ident['model']:#x}" if detected and ident else "default: this host's CPU is none of the models")
        try:
            check_tlb_machine(size, cpu, args.seed)
        except ValueError as exc:  # a working set this host cannot simulate
            raise UsageError(f"a {size_text} working set: {exc}") from None
        header = (f"# pagelab {__version__} tlb (models Linux {VERSION_MODELLED})  seed={args.seed} "
                  f"size={size_text} loads={args.loads} cpu={cpu} ({chosen}) thp=madvise")
        if not args.json:
            print(header, flush=True)
        report = tlb_reach(size, args.loads, cpu, args.seed)
        if args.json:
            print(json.dumps({"pagelab": __version__, "models_linux": VERSION_MODELLED, "cpu_chosen_by": chosen}
                             | report.as_dict(), indent=1))
        else:
            print("\n".join(render(report)))
        return 0


class SettingsCommand(Command):
    """List the tunables the simulator models: path, default (the modelled kernel's), unit, and what it does.

    With --host, a host column (this host's value) comes after the unit, and a * marks each value that
    differs (Machine.from_host() copies the host's values). It only reads the host.
    """

    name = "settings"

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--host", action="store_true", help="add a column with this host's values (read-only)")
        p.add_argument("--json", action="store_true",
                       help="print one JSON object per tunable: path, default, unit, host (with --host), doc, mirrors")

    def run(self, args: argparse.Namespace) -> int:
        from .real.probe import probe_host
        from .settings import TUNABLES

        host = probe_host() if args.host else {}
        rows: list[dict[str, Any]] = []
        for t in TUNABLES:
            row: dict[str, Any] = {"path": t.path, "default": t.default, "unit": t.unit}
            if args.host:
                row["host"] = host.get(t.path)
            rows.append(row | {"doc": t.doc, "mirrors": t.mirrors})
        if args.json:
            print(json.dumps(rows, indent=1))
            return 0
        head = ["path", "default", "unit"] + (["host", ""] if args.host else []) + ["what it does"]
        table = []
        for r in rows:
            cells = [r["path"], str(r["default"]), r["unit"] or "-"]
            if args.host:
                differs = r["host"] is not None and str(r["host"]) != str(r["default"])
                cells += ["-" if r["host"] is None else str(r["host"]), "*" if differs else ""]
            table.append(cells + [r["doc"]])
        widths = [max(len(c[i]) for c in [head, *table]) for i in range(len(head) - 1)]
        for cells in [head, *table]:
            print("  ".join(f"{c:<{w}}" for c, w in zip(cells, widths, strict=False)) + "  " + cells[-1])
        if any(cells[4:5] == ["*"] for cells in table):
            print("\n* the host's value differs from the modelled kernel's default")
        return 0


COMMANDS: tuple[type[Command], ...] = (Demo, Validate, Measure, Explain, TlbCommand, SettingsCommand)


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Command], dict[str, argparse.ArgumentParser]]:
    """The top-level parser, the commands by name, and each command's own parser (for its usage)."""
    parser = argparse.ArgumentParser(prog="pagelab", description="A laboratory for Linux demand paging.")
    parser.add_argument("--version", action="version", version=f"pagelab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands, parsers = {}, {}
    for cls in COMMANDS:
        cmd = cls()
        p = sub.add_parser(cmd.name, help=(cls.__doc__ or "").splitlines()[0], description=cls.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        cmd.add_arguments(p)
        commands[cmd.name] = cmd
        parsers[cmd.name] = p
    return parser, commands, parsers


def _interrupted(exc: BaseException | None) -> bool:
    """Whether ``exc`` is, or was raised while handling, a KeyboardInterrupt (cleanup after Ctrl-C)."""
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, KeyboardInterrupt):
            return True
        exc, seen = exc.__context__, seen + 1
    return False


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (2 for usage errors, as argparse does; 130 after Ctrl-C)."""
    previous_hook = sys.unraisablehook
    sys.unraisablehook = _RedeliverInterrupt(previous_hook)
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C: no traceback; 128 + SIGINT, as a shell reports it
        return 130
    finally:
        sys.unraisablehook = previous_hook
        if isinstance(signal.getsignal(signal.SIGALRM), _RedeliverInterrupt):
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, signal.SIG_DFL)


class _RedeliverInterrupt:
    """Ctrl-C must stop the command even when it lands where Python swallows exceptions.

    A KeyboardInterrupt raised inside a finalizer or a C callback (numba's compile-cache notifier,
    a weakref callback) is "ignored": Python prints a traceback and carries on. As sys.unraisablehook
    this catches that case and raises the interrupt again 10 ms later from a SIGALRM handler, in the
    code that was running, which then stops as after any Ctrl-C (exit 130, no traceback).
    """

    def __init__(self, previous: Callable[[Any], object]) -> None:
        self.previous = previous

    def __call__(self, unraisable: Any, *rest: Any) -> None:
        if rest:  # called as the SIGALRM handler (signum, frame): deliver the interrupt here
            raise KeyboardInterrupt
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            self.previous(unraisable)
            return
        signal.signal(signal.SIGALRM, self)
        signal.setitimer(signal.ITIMER_REAL, 0.01)


def _main(argv: list[str] | None) -> int:
    parser, commands, parsers = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra and args.command is not None:  # the command's own usage, not the top-level one
            parsers[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
        elif extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exc:  # argparse printed usage and the error (or --help, --version)
        return 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 2
    if args.command is None:
        parser.print_usage(sys.stderr)
        print("pagelab: error: a command is required", file=sys.stderr)
        return 2
    try:
        return commands[args.command].run(args)
    except BrokenPipeError:  # the reader went away (| head): stop quietly, as coreutils do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except UsageError as exc:
        parsers[args.command].print_usage(sys.stderr)
        print(f"pagelab {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except (PagelabError, OSError, ValueError) as exc:
        if _interrupted(exc):  # a failure while cleaning up after Ctrl-C (e.g. a real child gone)
            raise KeyboardInterrupt from None
        print(f"pagelab {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code if isinstance(exc, PagelabError) else 1


def entry() -> None:
    sys.exit(main())
