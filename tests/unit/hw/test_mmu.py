"""The MMU loop stops at the clock deadline, and runs unchanged without the JIT."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pagelab as pl

SCRIPT = """
import json, pagelab as pl
m = pl.Machine(ram="64MiB", seed=4)
p = m.spawn("nojit")
a = p.mmap(None, 64 * 4096, 3, 0x22)
p.touch(a, 64 * 4096)
p.touch(a, 64 * 4096, write=True, stride=2048)
p.access([a + 4096 * i for i in (3, 9, 3, 60, 9)] * 5)
q = m.spawn("segv")
b = q.mmap(None, 4096, 1, 0x22)
try:
    q.store(b, 1)  # SEGV_ACCERR: the fault path gets the MMU's address as it reports it
except pl.SegmentationFault as exc:
    segv = [exc.addr == b, exc.si_code]
print(json.dumps({"vmstat": m.vmstat(), "sim": m.counters.sim.tolist(), "now": m.now_ns,
                  "minflt": p.rusage().ru_minflt, "tlb": m.tlb.tag.tolist(), "segv": segv}))
"""


def run(env_extra):
    env = dict(os.environ, **env_extra)
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_same_results_with_numba_disabled():
    jit = run({})
    assert jit["segv"] == [True, "SEGV_ACCERR"]
    assert run({"NUMBA_DISABLE_JIT": "1"}) == jit


def test_a_timed_event_runs_mid_batch_at_its_time():
    m = pl.Machine(ram="64MiB", cpu="tiny", seed=0)
    p = m.spawn("clock")
    a = p.mmap(None, 4096, 3, 0x22)
    p.store(a, 1)
    fired = []
    start = int(m.clock_cycles[0])
    m.clock.schedule(start + 500, lambda: fired.append(int(m.clock_cycles[0])))
    p.access([a] * 1000)  # 1 cycle each on the tiny CPU
    assert fired == [start + 500]
    assert int(m.clock_cycles[0]) == start + 1000


def test_run_advances_time_and_runs_due_events():
    m = pl.Machine(ram="64MiB", seed=0)
    seen = []
    m.clock.schedule(m.clock.ns_to_cycles(2_000_000_000), lambda: seen.append(m.now_ns))
    m.run(seconds=1)
    assert not seen and m.now_ns == 1_000_000_000
    m.run(seconds=1.5)
    assert seen == [2_000_000_000] and m.now_ns == 2_500_000_000
