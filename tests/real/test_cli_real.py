"""pagelab validate on this machine (pagelab measure: test_measure_vs_gnu_time.py)."""

from __future__ import annotations

import json
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


# pagelab measure beside GNU time: tests/real/test_measure_vs_gnu_time.py
