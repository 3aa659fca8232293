"""Fork and copy-on-write, differentially: the same program of forks, exits, waits, accesses and madvises on this
host's kernel and on the simulator (tests/support/fork_differential.py).

After each step both backends must give the same outcome (byte loaded, errno, wait status, ppid), the same
minflt/majflt of the step in the process that made it, and leave every live process with the same mincore of
its regions and the same smaps fields (Rss, Pss, Shared/Private Clean/Dirty, Anonymous, AnonHugePages) of the
arena's VMAs. CI runs a small derandomized profile (a real fork takes about half a second); ``PAGELAB_LONG=1``
runs the long one and prints the counts:

    PAGELAB_LONG=1 .venv/bin/python -m pytest tests/real/test_fork_differential.py -q -s
"""

from __future__ import annotations

import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from tests.support.fork_differential import CASES, PROGRAMS, XFAIL, ForkPair
from tests.support.profiles import LONG, scale

import pagelab as pl
from pagelab.mm.debug import check_machine

pytestmark = [pytest.mark.real,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs a Linux kernel")]


@pytest.fixture(scope="module")
def pair():
    from pagelab.real import Machine as RealMachine
    from pagelab.real.probe import probe_host

    if probe_host().get("SwapTotal_kB"):
        pytest.skip("the simulator models no swap: Machine.from_host() needs a host without swap")
    with RealMachine() as real:
        pr = ForkPair(real, pl.Machine.from_host(seed=0))
        yield pr
        check_machine(pr.sim_m)  # the simulator's frames, rmaps and mm ids consistent after every example
        c = pr.counts
        print(f"\nfork differential: {c.get('examples', 0)} examples, {c.get('steps', 0)} steps "
              f"({c.get('forks', 0)} forks, {c.get('exits', 0)} exits, {c.get('waits', 0)} waits, "
              f"{c.get('measured', 0)} measured calls) compared")


def run_program(pair: ForkPair, program: list[tuple[Any, ...]]) -> None:
    """Run ``program`` on both, comparing after every step; then the final sweep of loads."""
    pair.start()
    try:
        done: list[Any] = []
        assert pair.state("real") == pair.state("sim"), "right after the set-up"
        for step in program:
            outs = pair.run(step)
            if outs is None:
                continue
            real, sim = outs
            done.append((step, real))
            pair.count("steps")
            pair.count("forks", step[0] == "fork" and real[0] == "ok")
            assert real == sim, f"{step}: kernel {real}, simulator {sim}; after {done[:-1]}"
            rs, ss = pair.state("real"), pair.state("sim")
            assert rs == ss, f"after {step} the state differs:\n kernel    {rs}\n simulator {ss}\n after {done}"
        diverged = [s for s in pair.sweep() if s[1] != s[2]]
        assert not diverged, "final loads, kernel vs simulator:\n" + "\n".join(
            f"  {w}: kernel {r}, simulator {s}" for w, r, s in diverged) + f"\n after {done}"
    finally:
        pair.finish()


@settings(max_examples=scale(15, 1_500), deadline=None, derandomize=not LONG, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.data_too_large])
@given(program=PROGRAMS)
def test_same_as_the_kernel(pair, program):
    pair.count("examples")
    if LONG and pair.counts["examples"] % 50 == 0:
        print(f"fork differential: {pair.counts}", file=sys.__stderr__, flush=True)
    run_program(pair, program)


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=XFAIL[c]))
                                  if c in XFAIL else c for c in sorted(CASES)])
def test_named_program_as_the_kernel(pair, case):
    """The divergences found by the random test, one minimal program each."""
    run_program(pair, CASES[case])
