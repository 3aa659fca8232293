"""MADV_COLD / MADV_PAGEOUT on both backends: the cases of docs/facts/pageout.md (tests/support/pageout_cases.py)
give the same Rss, AnonHugePages, mincore residency and data on the host kernel as on the simulator. The host's
/proc/vmstat is shared with everything else running, so only the counters nothing else moves here are compared
exactly (pglazyfreed, thp_swpout_fallback); the events pgactivate and thp_split_page must at least grow by the
simulator's amount, and the gauge nr_vmscan_immediate_reclaim by nearly as much (/proc/vmstat does not fold the
per-CPU differentials in: measured 1023 for 1024 pages). One real process runs every case (a spawn costs seconds
on a loaded host); each case unmaps what it mapped."""

from __future__ import annotations

import os

import pytest
from tests.support.pageout_cases import CASES, locked_errno, run_case

import pagelab as pl
from pagelab.real import Machine as RealMachine

pytestmark = pytest.mark.real

EXACT = ("pglazyfreed", "thp_swpout_fallback")
AT_LEAST = ("pgactivate", "thp_split_page")
GAUGE_DRIFT = 32  # nr_vmscan_immediate_reclaim may lag by up to the per-CPU stat threshold


@pytest.fixture(scope="module")
def real():
    with RealMachine() as m:
        yield m


@pytest.fixture(scope="module")
def proc(real):
    p = real.spawn("pageout")
    assert len(os.sched_getaffinity(p.pid)) == 1  # the real backend pins its children: no batch on another CPU
    yield p
    p.exit()


@pytest.mark.parametrize("name", list(CASES))
def test_both_backends_see_the_same(real, proc, name):
    sim_seen, sim_d = run_case(pl.Machine(ram="256MiB"), name)
    real_seen, real_d = run_case(real, name, p=proc)
    assert real_seen == sim_seen
    for key in EXACT:
        assert real_d[key] == sim_d[key], key
    for key in AT_LEAST:
        assert real_d[key] >= sim_d[key], key
    key = "nr_vmscan_immediate_reclaim"
    assert real_d[key] >= sim_d[key] - GAUGE_DRIFT, key


def test_locked_and_unaligned_errnos(real):
    assert locked_errno(real) == locked_errno(pl.Machine(ram="256MiB")) == ["EINVAL"] * 4
