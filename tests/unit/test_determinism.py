"""Same inputs and seed, same outputs; two machines in one process never interfere."""

from __future__ import annotations

import numpy as np

import pagelab as pl
from pagelab.workload.library import SCENARIOS
from pagelab.workload.scenario import run_scenario


class Workload:
    """A small workload in steps, so that two machines can be driven interleaved."""

    def __init__(self, m: pl.Machine) -> None:
        self.m = m
        self.p = m.spawn("det")
        self.a = self.p.mmap(None, 4 * pl.MiB, 3, 0x22)

    def step(self, i: int) -> None:
        if i == 0:
            self.p.touch(self.a, 4 * pl.MiB, stride=3 * 4096)
        elif i == 1:
            self.p.access(self.a + (np.random.default_rng(5).integers(0, 1024, 5000) << 12), write=True)
        else:
            self.p.madvise(self.a, pl.MiB, pl.MADV_DONTNEED)


def state(m: pl.Machine) -> tuple:
    pid = next(iter(m.tasks))
    return (m.read("/proc/vmstat"), m.read(f"/proc/{pid}/smaps"), m.read(f"/proc/{pid}/stat"),
            m.now_ns, m.frames.flags.tobytes(), m.tlb.tag.tobytes(), m.counters.sim.tobytes())


def test_same_seed_same_everything_and_machines_do_not_interfere():
    alone = []
    for _ in range(2):
        w = Workload(pl.Machine(ram="256MiB", seed=3))
        for i in range(3):
            w.step(i)
        alone.append(state(w.m))
    assert alone[0] == alone[1]
    x, y = Workload(pl.Machine(ram="256MiB", seed=3)), Workload(pl.Machine(ram="256MiB", seed=3))
    for i in range(3):  # interleaved
        x.step(i)
        y.step(i)
    assert state(x.m) == state(y.m) == alone[0]


def test_seed_changes_the_layout_not_the_counts():
    results = [run_scenario(pl.Machine(ram="512MiB", seed=s), SCENARIOS["anon-read-write"]) for s in (1, 2)]
    assert results[0] == results[1]
    bases = [pl.Machine(ram="64MiB", seed=s).spawn("x").mmap(None, 4096, 3, 0x22) for s in (1, 2)]
    assert bases[0] != bases[1]


def test_scenarios_reject_duplicate_phases_and_unknown_regions():
    import pytest

    from pagelab.workload.scenario import Phase, Region, Scenario, Step

    with pytest.raises(pl.ScenarioError):
        Scenario("x", "", {"a": Region(4096)}, (Phase("p", ()), Phase("p", ())))
    with pytest.raises(pl.ScenarioError):
        Scenario("x", "", {"a": Region(4096)}, (Phase("p", (Step("touch", "b"),)),))
