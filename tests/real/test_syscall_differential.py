"""System-call arguments, differentially: the same calls on this host's kernel and on the simulator.

Hypothesis draws an arena layout and a few calls over the whole argument space (tests/support/
differential.py); after each call both backends must give the same errno (or Python exception, or
result) and leave the same VMAs. CI runs a bounded, derandomized profile; ``PAGELAB_LONG=1`` runs the
long one (at least 10,000 argument tuples) and prints the count:

    PAGELAB_LONG=1 .venv/bin/python -m pytest tests/real/test_syscall_differential.py -q -s
"""

from __future__ import annotations

import sys

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from tests.support.differential import LAYOUTS, Pair, calls
from tests.support.profiles import LONG, scale

import pagelab as pl

pytestmark = [pytest.mark.real,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs a Linux kernel")]


@pytest.fixture(scope="module")
def pair():
    from pagelab.real import Machine as RealMachine
    from pagelab.real.probe import probe_host

    if probe_host().get("SwapTotal_kB"):
        pytest.skip("the simulator models no swap: Machine.from_host() needs a host without swap")
    with RealMachine() as real:
        pr = Pair(real, pl.Machine.from_host(seed=0))
        yield pr
        if LONG:  # every counter against the page tables: seconds on a machine of this host's size
            pr.check_machine()
        counts = pr.counts
        print(f"\ndifferential: {counts.get('examples', 0)} examples, {counts.get('calls', 0)} argument tuples "
              f"compared, {counts.get('skipped', 0)} skipped as unsafe for the host, "
              f"{counts.get('notmodelled', 0)} not modelled (the kernel carried them out), "
              f"{counts.get('errno', 0)} errno / {counts.get('python', 0)} Python errors / "
              f"{counts.get('ok', 0)} successes, 0 disagreements")


@settings(max_examples=scale(100, 10_000), deadline=None, derandomize=not LONG, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture, HealthCheck.data_too_large])
@given(layout=LAYOUTS, steps=st.lists(calls(), min_size=1, max_size=3))
def test_same_errno_and_layout_as_the_kernel(pair, layout, steps):
    if any(pair.unsafe(name, args) for name, args in steps):
        pair.count("skipped")
        assume(False)
    pair.count("examples")
    if LONG and pair.counts["examples"] % 500 == 0:
        print(f"differential: {pair.counts}", file=sys.__stderr__, flush=True)
    pair.lay_out(layout)
    try:
        assert pair.vmas("real") == pair.vmas("sim"), "the layouts differ before any call"
        for name, args in steps:
            real, sim = pair.call(name, args)
            pair.count("calls")
            if sim == ("notmodelled",):  # only where the kernel carried the call out (madvise: up to a hole)
                carried_out = real[0] == "ok" or (name == "madvise" and real == ("errno", "ENOMEM"))
                assert carried_out, f"{name}{args}: the simulator says NotModelled, the kernel {real}"
                pair.count("notmodelled")
                break
            pair.count(real[0])
            assert real == sim, f"{name}{args}: kernel {real}, simulator {sim}"
            assert pair.vmas("real") == pair.vmas("sim"), f"after {name}{args} the VMAs differ"
        pair.check_sim()
    finally:
        pair.clean()
