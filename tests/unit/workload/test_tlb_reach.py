"""TLB reach through the simulated kernel: THP cuts page walks when the STLB reaches the working set in
2 MiB pages and not in 4 KiB ones; the figures follow the CPU model and are the same for the same seed."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from pagelab.constants import MiB
from pagelab.hw.cpu import get_cpu_model
from pagelab.workload.tlb_reach import (
    check_tlb_args,
    check_tlb_machine,
    offset_chunks,
    random_offsets,
    render,
    run_kernel,
    tlb_ram,
    tlb_reach,
)

LOADS = 20_000


@pytest.fixture(scope="module")
def tiny32():
    """32 MiB on the teaching model: its STLB (16 entries) reaches 64 KiB in 4 KiB pages, 32 MiB in 2 MiB."""
    return tlb_reach(size=32 * MiB, loads=LOADS, cpu="tiny", seed=3)


def test_thp_removes_the_walks_when_the_stlb_reaches_the_working_set(tiny32):
    small, huge = tiny32.small, tiny32.huge
    assert small.label == "4 KiB" and huge.label == "THP"
    assert small.loads == huge.loads == LOADS
    assert small.walks > 0.99 * LOADS  # 64 KiB of reach over 32 MiB: nearly every load walks
    assert huge.walks == 0  # 16 huge pages in 16 STLB entries
    assert small.faults == 32 * MiB // 4096 and huge.faults == 16  # one fault per page mapped
    assert small.anon_huge_kb == 0 and huge.anon_huge_kb == 32 * 1024
    assert tiny32.ratio("walks") is None and tiny32.ratio("ns") > 5


def test_thp_helps_only_as_far_as_the_stlb_reaches():
    """64 MiB is twice the tiny STLB's reach in 2 MiB pages: about half the loads still walk."""
    r = tlb_reach(size=64 * MiB, loads=LOADS, cpu="tiny", seed=3)
    assert r.small.walks > 0.99 * LOADS
    assert 0.4 * LOADS < r.huge.walks < 0.6 * LOADS


def test_an_stlb_without_2m_entries_leaves_the_l1_to_cover_huge_pages():
    """nehalem's STLB holds 4 KiB translations only; its 32 L1 entries for 2 MiB pages reach 64 MiB."""
    cpu = get_cpu_model("nehalem")
    small = run_kernel(cpu, False, 128 * MiB, LOADS, seed=1)
    huge = run_kernel(cpu, True, 128 * MiB, LOADS, seed=1)
    assert huge.stlb_hits == 0  # nothing 2 MiB is ever cached there
    assert 0.35 * LOADS < huge.walks < 0.65 * LOADS  # half the 64 huge pages fit in the L1
    assert small.walks > 0.95 * LOADS


def test_cycles_are_the_models_latencies(tiny32):
    """Translation time: one L1 lookup per load, an STLB lookup per L1 miss, a walk per STLB miss."""
    cpu = tiny32.cpu
    for r in (tiny32.small, tiny32.huge):
        assert r.l1_misses == r.stlb_hits + r.walks
        assert r.cycles == r.loads * cpu.l1_hit_cycles + r.l1_misses * cpu.stlb_hit_cycles + r.walk_cycles
        assert r.walk_cycles == r.walks * cpu.walk_cycles
        assert r.ns == pytest.approx(r.cycles * 1000 / cpu.freq_mhz)
        assert r.ns_per_load == pytest.approx(r.ns / r.loads)


def test_same_seed_same_figures_other_seed_other_loads(tiny32):
    again = tlb_reach(size=32 * MiB, loads=LOADS, cpu="tiny", seed=3)
    assert again.small == tiny32.small and again.huge == tiny32.huge
    assert render(again) == render(tiny32)
    other = run_kernel("tiny", False, 32 * MiB, LOADS, seed=4)
    assert other != tiny32.small


def test_a_cpu_model_object_is_accepted_and_named():
    cpu = replace(get_cpu_model("tiny"), name="tiny-copy")
    r = run_kernel(cpu, True, 4 * MiB, 1000, seed=0, warm=0)
    assert r.cpu == "tiny-copy" and r.loads == 1000 and r.walks == 0  # 2 huge pages: two STLB entries


def test_offsets_are_one_stream_whatever_the_chunk():
    whole = random_offsets(64 * MiB, 10_000, seed=5)
    assert whole.dtype == np.int64 and len(whole) == 10_000
    assert (whole % 8 == 0).all() and whole.min() >= 0 and whole.max() < 64 * MiB
    for chunk in (1, 333, 10_000, 1 << 20):
        assert np.array_equal(np.concatenate(list(offset_chunks(64 * MiB, 10_000, 5, chunk))), whole)
    assert len(random_offsets(64 * MiB, 0, 5)) == 0
    assert not np.array_equal(random_offsets(64 * MiB, 100, 6), whole[:100])


@pytest.mark.parametrize("args, error, match", [
    ((0, 10, 0, 0), ValueError, "multiple of 2 MiB"),
    ((3 * MiB, 10, 0, 0), ValueError, "multiple of 2 MiB"),
    ((-2 * MiB, 10, 0, 0), ValueError, "multiple of 2 MiB"),
    ((2 * MiB, 0, 0, 0), ValueError, "loads must be in 1.."),
    ((2 * MiB, 10, -1, 0), ValueError, "warm must not be negative"),
    ((2 * MiB, 10, 0, -1), ValueError, "seed must not be negative"),
    ((2.0 * MiB, 10, 0, 0), TypeError, "size must be an int"),
    ((2 * MiB, True, 0, 0), TypeError, "loads must be an int"),
    ((2 * MiB, 10, 0, "0"), TypeError, "seed must be an int"),
])
def test_bad_arguments_are_refused_before_any_machine_is_built(args, error, match):
    with pytest.raises(error, match=match):
        check_tlb_args(*args)
    size, loads, warm, seed = args
    with pytest.raises(error, match=match):
        run_kernel("tiny", True, size, loads, seed, warm)


def test_a_working_set_the_host_cannot_hold_is_refused_up_front():
    assert tlb_ram(4 * MiB) == 64 * MiB and tlb_ram(4 << 30) == 5 << 30
    check_tlb_machine(64 * MiB, "zen3")
    with pytest.raises(ValueError, match="more than this host can hold"):
        check_tlb_machine(1 << 50, "zen3")
    with pytest.raises(ValueError, match="unknown cpu model 'pentium'"):
        check_tlb_machine(64 * MiB, "pentium")


def test_report_shows_geometry_sources_and_ends_with_the_summary(tiny32):
    lines = render(tiny32)
    text = "\n".join(lines)
    assert "invented for teaching" in text and "TLB reach: L1 dTLB 16 KiB with 4 KiB pages" in text
    assert "STLB 64 KiB with 4 KiB pages, 32 MiB with 2 MiB" in text
    assert lines[-1] == (f"summary: cpu=tiny size=32MiB loads={LOADS} seed=3 "
                         f"l1_misses_4k={tiny32.small.l1_misses} l1_misses_thp={tiny32.huge.l1_misses} "
                         f"walks_4k={tiny32.small.walks} walks_thp=0 "
                         f"ns_per_load_4k={tiny32.small.ns_per_load:.2f} ns_per_load_thp={tiny32.huge.ns_per_load:.2f} "
                         f"time_ratio={tiny32.ratio('ns'):.2f}")
    data = json.loads(json.dumps(tiny32.as_dict()))
    assert data["results"]["4k"]["walks"] == tiny32.small.walks and data["ratios"]["walks"] is None
    assert data["cpu"]["stlb"] == {"entries": 16, "ways": 4, "source": "invented for teaching",
                                   "reach_bytes": 64 * 1024}
