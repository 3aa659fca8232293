"""vm.max_map_count as the kernel applies it: the same trials on the host kernel (at its own limit, 65,530 by
default) and on the simulator (at a lowered limit, and at the host's limit in the long profile)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.support.max_map_count import SimProcess, scenario
from tests.support.profiles import LONG

import pagelab as pl

pytestmark = [pytest.mark.real,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs a Linux kernel")]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def host():
    # PYTHONMALLOC=malloc, as the real backend's child: with keep_heap() every Python object then comes from
    # the brk heap, so nothing the interpreter allocates during the fill lands in the hole being filled
    # (pymalloc maps its arenas with mmap(): once pagelab loaded lazily, a new arena mid-fill was an EEXIST)
    out = subprocess.run([sys.executable, "-m", "tests.support.max_map_count"], cwd=ROOT, check=True,
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONMALLOC": "malloc"}).stdout
    return json.loads(out)


@pytest.mark.parametrize("limit", [64, 1000] + (["host"] if LONG else []))
def test_simulator_meets_the_limit_where_the_kernel_does(host, limit):
    limit = host["limit"] if limit == "host" else limit
    m = pl.Machine(ram="256MiB", seed=0, settings={"/proc/sys/vm/max_map_count": limit})
    trace = scenario(SimProcess(m), limit)
    assert [list(t[:2]) + [list(t[2])] for t in trace] == host["trace"]
