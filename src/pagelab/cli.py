"""The ``pagelab`` command: small command classes over the library; ``main(argv) -> int``.

User errors print a one-line message and a usage hint and exit non-zero; they never print a
traceback. Each command's name comes from its class, its help from its docstring.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable

from . import __version__
from .constants import MADV_DONTNEED, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE, MiB
from .errors import PagelabError
from .machine import VERSION_MODELLED, Machine
from .observe.parse import parse_smaps
from .observe.summary import perf_stat, time_v
from .observe.trace import FaultTrace
from .workload.scenario import Scenario


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
        p.add_argument("--size-mib", type=int, default=64, help="size of the mapping (default 64)")
        p.add_argument("--ram", default="2GiB", help="simulated RAM (default 2GiB)")
        p.add_argument("--seed", type=int, default=0)

    def run(self, args: argparse.Namespace) -> int:
        if args.size_mib <= 0:
            raise PagelabError("--size-mib must be positive")
        m = Machine(ram=args.ram, seed=args.seed)
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
              f"free_after_exit={m.frames.nr_free == m.totalram_pages - 0}")
        return 0


class Validate(Command):
    """Run scenarios on this machine's real kernel and on Machine.from_host(); compare counter by counter."""

    name = "validate"

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--scenario", action="append", metavar="NAME", help="run only this scenario (repeatable)")
        p.add_argument("--list", action="store_true", help="list the scenarios and exit")
        p.add_argument("--json", action="store_true", help="print the results as JSON")

    def run(self, args: argparse.Namespace) -> int:
        from .real import Machine as RealMachine
        from .report.compare import compare, render_table, rows_as_dicts
        from .workload.library import SCENARIOS
        from .workload.scenario import run_scenario

        if args.list:
            for sc in SCENARIOS.values():
                print(f"{sc.name:<26} {sc.doc}")
            return 0
        names = args.scenario or list(SCENARIOS)
        unknown = [n for n in names if n not in SCENARIOS]
        if unknown:
            raise PagelabError(f"unknown scenario {', '.join(unknown)}; see pagelab validate --list")
        sim = Machine.from_host()
        rows = []
        with RealMachine() as real:
            for name in names:
                rows += compare(name, run_scenario(real, SCENARIOS[name]), run_scenario(sim, SCENARIOS[name]))
        misses = sum(not r.ok for r in rows)
        if args.json:
            print(json.dumps({"host": sim.host_config, "pagelab": __version__, "rows": rows_as_dicts(rows),
                              "misses": misses}, indent=1, default=str))
        else:
            h = sim.host_config
            print(f"# pagelab {__version__} validate  kernel={h.get('kernel')} "
                  f"thp={sim.settings.transparent_hugepage.enabled} ram={h.get('MemTotal_kB')}kB "
                  f"swap={h.get('SwapTotal_kB')}kB  (every probed host setting: --json)")
            print(render_table(rows))
            print(f"\nsummary: {len(rows) - misses} of {len(rows)} counters agree, {misses} differ "
                  f"({len(names)} scenarios)")
        return 1 if misses else 0


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
                out = open(args.output, "a" if args.append else "w", encoding="utf-8")
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
        p.add_argument("--seed", type=int, default=0)

    def run(self, args: argparse.Namespace) -> int:
        from .workload.library import SCENARIOS
        from .workload.scenario import run_scenario

        if args.scenario not in SCENARIOS:
            raise PagelabError(f"unknown scenario {args.scenario}; see pagelab validate --list")
        if args.limit < 0:
            raise PagelabError("--limit must not be negative")
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
        print(f"# pagelab {__version__} explain {sc.name}: {sc.doc}\n# source: {sc.source}")
        marks.append(("", len(log)))
        for (phase, start), (_, end) in zip(marks, marks[1:], strict=False):
            res = results.get(phase, {})
            print(f"\n== {phase}: {end - start} fault(s) " + ", ".join(f"{k}={v}" for k, v in res.items()))
            for t in log[start:min(end, start + args.limit)]:
                label, base = _region_of(t.address, bases, sc)
                print(t.describe(base, label))
            if end - start > args.limit:
                print(f"    ... {end - start - args.limit} more like these")
        return 0


def _region_of(addr: int, bases: dict[str, int], sc: Scenario) -> tuple[str, int]:
    for name, base in bases.items():
        if base <= addr < base + sc.regions[name].size:
            return name, base
    return "", 0


class SettingsCommand(Command):
    """List the tunables the simulator models: path, value, default; --host shows this host's beside them."""

    name = "settings"

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--host", action="store_true", help="add a column with this host's values")
        p.add_argument("--json", action="store_true")

    def run(self, args: argparse.Namespace) -> int:
        from .settings import TUNABLES

        host = Machine.from_host(ram="64MiB").host_config if args.host else {}
        rows = [{"path": t.path, "default": t.default, "host": host.get(t.path), "doc": t.doc, "mirrors": t.mirrors}
                for t in TUNABLES]
        if args.json:
            print(json.dumps(rows, indent=1))
            return 0
        width = max(len(t.path) for t in TUNABLES)
        for r in rows:
            host_col = f"  host={r['host']}" if args.host else ""
            print(f"{r['path']:<{width}}  default={r['default']}{host_col}  # {r['doc']}")
        return 0


COMMANDS: tuple[type[Command], ...] = (Demo, Validate, Measure, Explain, SettingsCommand)


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Command]]:
    parser = argparse.ArgumentParser(prog="pagelab", description="A laboratory for Linux demand paging.")
    parser.add_argument("--version", action="version", version=f"pagelab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands = {}
    for cls in COMMANDS:
        cmd = cls()
        p = sub.add_parser(cmd.name, help=(cls.__doc__ or "").splitlines()[0], description=cls.__doc__)
        cmd.add_arguments(p)
        commands[cmd.name] = cmd
    return parser, commands


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (2 for usage errors, as argparse does)."""
    parser, commands = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse printed usage and the error
        return int(exc.code or 0)
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
    except PagelabError as exc:
        print(f"pagelab {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except (OSError, ValueError) as exc:
        print(f"pagelab {args.command}: error: {exc}", file=sys.stderr)
        return 1


def entry() -> None:
    sys.exit(main())
