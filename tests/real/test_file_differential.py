"""File system calls, differentially: the same calls on this host's kernel (ext4 in /var/tmp) and on the simulator.

Hypothesis draws the files of an example and a sequence of file calls (tests/support/file_differential.py):
open/close/read/pread/write/pwrite/lseek/ftruncate/fsync/fdatasync/fadvise/cachestat, mmap of descriptors,
mprotect/munmap/msync, and loads/stores around EOF. After each call both backends must give the same errno
(or Python exception, fatal signal, or result) and leave the same file sizes and arena VMAs. CI runs a
bounded, derandomized profile; ``PAGELAB_LONG=1`` runs the long one and prints the count:

    PAGELAB_LONG=1 .venv/bin/python -m pytest tests/real/test_file_differential.py -q -s
"""

from __future__ import annotations

import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.support.file_differential import CASE_FILES, CASES, FILES, FilePair, file_calls
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
        pr = FilePair(real, pl.Machine.from_host(seed=0))
        yield pr
        c = pr.counts
        print(f"\nfile differential: {c.get('examples', 0)} examples, {c.get('calls', 0)} calls compared, "
              f"{c.get('errno', 0)} errno / {c.get('python', 0)} Python errors / {c.get('signal', 0)} signals / "
              f"{c.get('ok', 0)} successes, {c.get('notmodelled', 0)} not modelled")


@settings(max_examples=scale(25, 3_000), deadline=None, derandomize=not LONG, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.data_too_large])
@given(files=FILES, steps=st.lists(file_calls(), min_size=1, max_size=12))
def test_same_outcome_as_the_kernel(pair, files, steps):
    pair.count("examples")
    if LONG and pair.counts["examples"] % 250 == 0:
        print(f"file differential: {pair.counts}", file=sys.__stderr__, flush=True)
    pair.make(files)
    try:
        done = []
        for name, args in steps:
            real, sim = pair.call(name, args)
            done.append((name, args, real))
            pair.count("calls")
            if sim == ("notmodelled",):  # a NotModelled never stands in for an error
                assert real[0] == "ok", f"{name}{args}: the simulator says NotModelled, the kernel {real}"
                pair.count("notmodelled")
                break
            pair.count(real[0])
            assert real == sim, f"{name}{args}: kernel {real}, simulator {sim}; after {done[:-1]}"
            assert pair.sizes("real") == pair.sizes("sim"), f"after {name}{args} the file sizes differ"
            assert pair.vmas("real") == pair.vmas("sim"), f"after {name}{args} the VMAs differ"
            if real[0] == "signal":  # both processes are dead
                break
    finally:
        pair.clean()


@pytest.mark.parametrize("case", sorted(CASES))
def test_named_sequence_as_the_kernel(pair, case):
    """The edges found by the random test (and the fact sheet's errno table), one sequence each."""
    pair.make(CASE_FILES)
    try:
        seen = []
        for name, args in CASES[case]:
            real, sim = pair.call(name, args)
            seen.append((name, args, real, sim))
        diverged = [s for s in seen if s[2] != s[3]]
        assert not diverged, "kernel vs simulator:\n" + "\n".join(
            f"  {n}{a}: kernel {r}, simulator {s}" for n, a, r, s in diverged)
        assert pair.sizes("real") == pair.sizes("sim")
        assert pair.vmas("real") == pair.vmas("sim")
    finally:
        pair.clean()
