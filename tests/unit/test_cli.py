"""The pagelab command: the demo runs; misuse prints usage and exits non-zero."""

from __future__ import annotations

import subprocess
import sys

from pagelab.cli import main


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
    assert main(["demo", "--size-mib", "0"]) == 1
    assert "error" in capsys.readouterr().err


def test_python_dash_m_runs():
    r = subprocess.run([sys.executable, "-m", "pagelab", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("pagelab ")


def test_explain_walks_one_fault_of_each_kind(capsys):
    assert main(["explain", "--limit", "1"]) == 0
    out = capsys.readouterr().out
    for text in ("do_anonymous_page", "wp_page_copy", "do_fault_around", "madvise_populate",
                 "SIGSEGV SEGV_ACCERR", "PTE zero page RO A  ->  pfn"):
        assert text in out, text
    assert main(["explain", "no-such-scenario"]) == 1


def test_settings_lists_the_modelled_tunables(capsys):
    assert main(["settings"]) == 0
    out = capsys.readouterr().out
    assert "/proc/sys/vm/overcommit_memory" in out and "default=madvise" in out
