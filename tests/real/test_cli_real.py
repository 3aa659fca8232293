"""pagelab validate and pagelab measure on this machine."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from pagelab.cli import main

pytestmark = [pytest.mark.real,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs a Linux kernel")]


def test_validate_agrees_on_every_deterministic_scenario(capsys):
    rc = main(["validate", "--json"])
    out = json.loads(capsys.readouterr().out)
    misses = [r for r in out["rows"] if not r["ok"]]
    assert rc == 0 and not misses, misses
    assert out["host"]["kernel"] and len(out["rows"]) > 100


def test_validate_rejects_unknown_scenarios(capsys):
    assert main(["validate", "--scenario", "no-such"]) == 1
    assert "unknown scenario" in capsys.readouterr().err


def _time_v(argv):
    err = subprocess.run(["/usr/bin/time", "-v", *argv], capture_output=True, text=True).stderr
    vals = {}
    for line in err.splitlines():
        if ":" in line:
            k, v = line.strip().rsplit(":", 1)
            vals[k.strip()] = v.strip()
    return vals


@pytest.mark.skipif(shutil.which("/usr/bin/time") is None, reason="GNU time is not installed")
def test_measure_matches_usr_bin_time_on_ls(capsys):
    runs = [_time_v(["/bin/ls", "/"]) for _ in range(3)]
    minor = [int(r["Minor (reclaiming a frame) page faults"]) for r in runs]
    maxrss = [int(r["Maximum resident set size (kbytes)"]) for r in runs]
    assert main(["measure", "--json", "--", "/bin/ls", "/"]) == 0
    out = capsys.readouterr().out
    m = json.loads(out[out.index("{"):])
    # GNU time's child is a fork of time itself; ours forks from a smaller launcher: allow the
    # command's own run-to-run spread plus that difference.
    assert 0.8 * min(minor) <= m["rusage"]["ru_minflt"] <= 1.2 * max(minor)
    assert 0.6 * min(maxrss) <= m["rusage"]["ru_maxrss"] <= 1.2 * max(maxrss)
    assert m["rusage"]["ru_majflt"] <= 5
    if m["perf"] is not None:
        assert m["perf"]["page-faults"] == m["perf"]["minor-faults"] + m["perf"]["major-faults"]


def test_measure_misuse_exits_non_zero(capsys):
    assert main(["measure"]) == 1
    assert "no command" in capsys.readouterr().err
    assert main(["measure", "--", "surely-not-a-command-xyz"]) == 127
    assert "command not found" in capsys.readouterr().err
