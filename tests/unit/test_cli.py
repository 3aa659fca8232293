"""The pagelab command: the demo runs; misuse prints usage and exits non-zero, never a traceback."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from pagelab.cli import COMMANDS, build_parser, main
from pagelab.settings import TUNABLES
from pagelab.workload.library import SCENARIOS


def test_demo_prints_what_linux_would(capsys):
    assert main(["demo", "--size-mib", "4", "--seed", "2"]) == 0
    out = capsys.readouterr().out
    assert "write one byte per page" in out and "1024" in out
    assert "Minor (reclaiming a frame) page faults: 3072" in out
    assert out.strip().splitlines()[-1].startswith("summary:")


def test_demo_is_deterministic(capsys):
    main(["demo", "--size-mib", "2", "--seed", "9"])
    first = capsys.readouterr().out
    main(["demo", "--size-mib", "2", "--seed", "9"])
    assert capsys.readouterr().out == first


def test_misuse_exits_non_zero_with_usage(capsys):
    assert main([]) == 2
    assert "usage" in capsys.readouterr().err
    assert main(["no-such-command"]) == 2
    assert "usage: pagelab" in capsys.readouterr().err


@pytest.mark.parametrize("argv, usage", [
    (["demo", "--bogus"], "usage: pagelab demo"),
    (["demo", "--size-mib", "0"], "usage: pagelab demo"),
    (["demo", "--size-mib", "x"], "usage: pagelab demo"),
    (["demo", "--ram", "banana"], "usage: pagelab demo"),
    (["demo", "--ram", "1MiB"], "usage: pagelab demo"),
    (["demo", "--seed"], "usage: pagelab demo"),
    (["explain", "no-such-scenario"], "usage: pagelab explain"),
    (["explain", "--limit", "-1"], "usage: pagelab explain"),
    (["explain", "tour", "extra"], "usage: pagelab explain"),
    (["settings", "--bogus"], "usage: pagelab settings"),
    (["validate", "--scenario"], "usage: pagelab validate"),
    (["validate", "--scenario", "no-such"], "usage: pagelab validate"),
    (["validate", "stray"], "usage: pagelab validate"),
    (["tlb", "--size-mib", "3"], "usage: pagelab tlb"),
    (["tlb", "--size-mib", "0"], "usage: pagelab tlb"),
    (["tlb", "--size-gib", "-4"], "usage: pagelab tlb"),
    (["tlb", "--size-gib", "1", "--size-mib", "64"], "usage: pagelab tlb"),
    (["tlb", "--size-gib", "1000000"], "usage: pagelab tlb"),
    (["tlb", "--loads", "0"], "usage: pagelab tlb"),
    (["tlb", "--loads", "1e6"], "usage: pagelab tlb"),
    (["tlb", "--loads", "99999999999999999999"], "usage: pagelab tlb"),
    (["tlb", "--cpu", "pentium"], "usage: pagelab tlb"),
    (["tlb", "--seed", "-1"], "usage: pagelab tlb"),
    (["tlb", "stray"], "usage: pagelab tlb"),
])
def test_every_misuse_shows_the_commands_own_usage_and_exits_2(capsys, argv, usage):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert usage in err and "error:" in err and "Traceback" not in err
    assert err.count("usage:") == 1


def test_demo_bogus_in_a_real_process_shows_demos_usage():
    r = subprocess.run([sys.executable, "-m", "pagelab", "demo", "--bogus"], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.startswith("usage: pagelab demo") and "unrecognized arguments: --bogus" in r.stderr


def test_python_dash_m_runs():
    r = subprocess.run([sys.executable, "-m", "pagelab", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("pagelab ")


def _actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if not isinstance(a, argparse._HelpAction | argparse._SubParsersAction)]


def test_every_option_of_every_command_has_help():
    parser, _, parsers = build_parser()
    assert {c.name for c in COMMANDS} == set(parsers)
    missing = [f"pagelab {a.dest}" for a in _actions(parser) if not a.help]
    for name, p in parsers.items():
        missing += [f"pagelab {name} {'/'.join(a.option_strings)}" for a in _actions(p)
                    if a.option_strings and not (a.help or "").strip()]
    assert not missing, missing


def test_help_shows_each_options_text(capsys):
    for argv, text in ((["demo", "--help"], "seed of every random choice"),
                       (["explain", "--help"], "seed of every random choice"),
                       (["settings", "--help"], "one JSON object per tunable")):
        assert main(argv) == 0
        assert text in capsys.readouterr().out


def test_explain_walks_one_fault_of_each_kind(capsys):
    assert main(["explain", "--limit", "1"]) == 0
    out = capsys.readouterr().out
    for text in ("do_anonymous_page", "wp_page_copy", "do_fault_around", "madvise_populate",
                 "SIGSEGV SEGV_ACCERR", "PTE zero page RO A  ->  pfn"):
        assert text in out, text


@pytest.mark.parametrize("scenario", ["tour", "vma-flags", "mprotect-split"])
def test_explain_lines_are_readable(capsys, scenario):
    assert main(["explain", scenario, "--limit", "2"]) == 0
    out = capsys.readouterr().out
    too_long = [line for line in out.splitlines() if len(line) > 100]
    assert not too_long, too_long
    phase = SCENARIOS[scenario].phases[0]
    assert f"== {phase.name}: " in out


def test_explain_names_the_calls_of_each_phase(capsys):
    assert main(["explain", "tour", "--limit", "0"]) == 0
    out = capsys.readouterr().out
    assert "== populate: madvise(a+0x2000, 8 KiB, MADV_POPULATE_WRITE)" in out
    assert "== write-read-only: mprotect(a, 4 KiB, PROT_READ); store(a, 3)" in out
    assert "   a: Rss 16 kB, Private_Dirty 16 kB" in out


def test_settings_prints_the_columns_its_help_promises(capsys):
    assert main(["settings"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["path", "default", "unit"] and lines[0].endswith("what it does")
    row = next(line for line in lines if line.startswith("/proc/sys/vm/overcommit_ratio"))
    assert row.split()[:3] == ["/proc/sys/vm/overcommit_ratio", "50", "percent"]
    assert len(lines) == 1 + len(TUNABLES)


def test_settings_json(capsys):
    assert main(["settings", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["path"] for r in rows] == [t.path for t in TUNABLES]
    assert set(rows[0]) == {"path", "default", "unit", "doc", "mirrors"}


def _fake_host(**changes):
    from pagelab.real.probe import probe_host

    facts = probe_host()
    facts.update(changes)
    return lambda: dict(facts)


def test_settings_host_only_reads_even_with_swap(capsys, monkeypatch):
    fake = _fake_host(**{"SwapTotal_kB": 8388604, "swaps": [{"name": "/dev/zram0", "type": "partition",
                                                               "size_kB": 8388604, "used_kB": 0, "priority": 100}],
                         "/sys/kernel/mm/transparent_hugepage/enabled": "always"})
    monkeypatch.setattr("pagelab.real.probe.probe_host", fake)
    assert main(["settings", "--host"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:4] == ["path", "default", "unit", "host"]
    row = next(line for line in out.splitlines() if line.startswith("/sys/kernel/mm/transparent_hugepage/enabled"))
    assert row.split()[1:5] == ["madvise", "-", "always", "*"]
    assert "differs from the modelled kernel's default" in out
    assert main(["settings", "--host", "--json"]) == 0
    rows = {r["path"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["/sys/kernel/mm/transparent_hugepage/enabled"]["host"] == "always"


def test_validate_list_aligns_every_name(capsys):
    assert main(["validate", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(SCENARIOS)
    width = max(map(len, SCENARIOS))
    for line, sc in zip(lines, SCENARIOS.values(), strict=True):
        assert line[width:width + 2] == "  " and line[width + 2:] == sc.doc


def test_validate_list_honours_json(capsys):
    assert main(["validate", "--list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in listed] == list(SCENARIOS)
    assert listed[0]["doc"] == SCENARIOS["tour"].doc and listed[0]["phases"][0] == "read-fresh"


def _interrupt_after(argv: list[str], ready: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m pagelab argv``, send SIGINT once ``ready`` is on its stdout, and collect it."""
    p = subprocess.Popen([sys.executable, "-m", "pagelab", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert p.stdout is not None and p.stderr is not None
    out = ""
    deadline = time.monotonic() + 120
    while ready not in out and time.monotonic() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        out += line
    time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    rest, err = p.communicate(timeout=60)
    return subprocess.CompletedProcess(p.args, p.returncode, out + rest, err)


def test_ctrl_c_exits_130_without_a_traceback():
    # a 1.5 GiB demo on 2 GiB takes seconds: the interrupt lands inside the simulated kernel's work
    r = _interrupt_after(["demo", "--size-mib", "1536"], ready="mmap(")
    assert r.returncode == 130, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "KeyboardInterrupt" not in r.stderr


SWALLOWING_FINALIZER = """
import signal, sys, threading, time
import pagelab.cli as cli

class Finalized:
    def __del__(self):  # Python swallows exceptions raised here ("Exception ignored in ...")
        t = time.monotonic()
        while time.monotonic() - t < 1.0:
            pass

def run(self, args):
    threading.Timer(0.3, signal.pthread_kill, (threading.main_thread().ident, signal.SIGINT)).start()
    obj = Finalized()
    del obj  # the SIGINT lands inside __del__
    time.sleep(5)
    return 0

cli.Demo.run = run
t = time.monotonic()
rc = cli.main(["demo"])
print(rc, round(time.monotonic() - t, 1))
"""


def test_ctrl_c_inside_a_finalizer_still_stops_the_command():
    r = subprocess.run([sys.executable, "-c", SWALLOWING_FINALIZER], capture_output=True, text=True, timeout=60)
    rc, seconds = r.stdout.split()
    assert rc == "130" and float(seconds) < 2.5, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "KeyboardInterrupt" not in r.stderr


def test_explain_shows_the_lazyfree_band_as_text(capsys):
    assert main(["explain", "madv-free", "--limit", "0"]) == 0
    out = capsys.readouterr().out
    assert "LazyFree 992 kB (1024 kB once the per-CPU lru batch is drained)" in out and "Band(" not in out


def test_tlb_shows_thp_removing_the_walks(capsys):
    assert main(["tlb", "--size-mib", "64", "--loads", "20000", "--cpu", "skylake", "--seed", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("# pagelab ") and "size=64MiB loads=20000 cpu=skylake (--cpu)" in out[0]
    assert any(line.startswith("  STLB 4 KiB: 1536 entries, 12-way  [Intel ORM") for line in out)
    rows = {line.split()[0]: line.split() for line in out if line.startswith(("  4 KiB ", "  THP "))}
    assert rows["THP"][1:3] == ["32", "64"]  # 32 faults, AnonHugePages 64 MiB
    last = dict(kv.split("=") for kv in out[-1].removeprefix("summary: ").split())
    assert out[-1].startswith("summary: ") and last["walks_thp"] == "0" and int(last["walks_4k"]) > 15_000


def test_tlb_json_parses_and_is_deterministic(capsys):
    argv = ["tlb", "--size-mib", "32", "--loads", "5000", "--cpu", "tiny", "--seed", "2", "--json"]
    assert main(argv) == 0
    first = capsys.readouterr().out
    data = json.loads(first)
    assert data["cpu"]["name"] == "tiny" and data["cpu_chosen_by"] == "--cpu" and data["size"] == 32 << 20
    assert data["results"]["4k"]["loads"] == data["results"]["thp"]["loads"] == 5000
    assert data["results"]["4k"]["walks"] > 4900 and data["results"]["thp"]["walks"] == 0
    assert main(argv) == 0
    assert capsys.readouterr().out == first


def test_tlb_defaults_to_the_hosts_cpu_model_else_skylake(capsys, monkeypatch):
    zen3 = {"vendor_id": "AuthenticAMD", "cpu_family": 25, "model": 1, "model_name": "AMD EPYC"}
    monkeypatch.setattr("pagelab.real.probe.cpu_identity", lambda: zen3)
    assert main(["tlb", "--size-mib", "4", "--loads", "100", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["cpu"]["name"] == "zen3" and data["cpu_chosen_by"].startswith("this host: AMD EPYC, family 0x19")
    monkeypatch.setattr("pagelab.real.probe.cpu_identity", lambda: None)  # not x86, or no /proc/cpuinfo
    assert main(["tlb", "--size-mib", "4", "--loads", "100"]) == 0
    assert "cpu=skylake (default: this host's CPU is none of the models)" in capsys.readouterr().out
