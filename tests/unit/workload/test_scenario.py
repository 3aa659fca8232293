"""Scenarios on the simulator: the LazyFree band, and the host settings that explain a difference."""

from __future__ import annotations

import pytest

from pagelab import Machine
from pagelab.constants import MADV_HUGEPAGE, PROT_READ, PROT_WRITE, MiB
from pagelab.workload.library import SCENARIOS
from pagelab.workload.scenario import Band, Phase, Region, Scenario, Step, run_scenario, thp_caveat, thp_sizes

THP = "/sys/kernel/mm/transparent_hugepage"
QUIET_HOST = {f"{THP}/enabled": "madvise", f"{THP}/shmem_enabled": "never",
              **{f"{THP}/hugepages-{kb}kB/enabled": "never" for kb in (16, 32, 64, 128, 256, 512, 1024)},
              f"{THP}/hugepages-2048kB/enabled": "inherit",
              **{f"{THP}/hugepages-{kb}kB/shmem_enabled": "never" for kb in (16, 32, 64, 128, 256, 512, 1024)},
              f"{THP}/hugepages-2048kB/shmem_enabled": "inherit"}


def test_lazyfree_after_madv_free_is_a_band_of_one_batch():
    res = run_scenario(Machine(ram="64MiB", seed=0), SCENARIOS["madv-free"])
    band = res["free"]["LazyFree[a] kB"]
    # 256 pages: 8 full batches of 31 applied (992 kB), 8 folios (32 kB) left in this CPU's batch
    assert band == Band(992, 992, 1024, "per-CPU lru batch")
    assert band.admits(992) and band.admits(1024) and not band.admits(988) and not band.admits(1028)
    assert not band.admits("992")
    assert res["write"]["LazyFree[a] kB"] == 0 and res["write-again"]["LazyFree[a] kB"] == 0  # exact


def test_swap_is_sampled_for_every_region():
    res = run_scenario(Machine(ram="64MiB", seed=0), SCENARIOS["tour"])
    assert res["read-fresh"]["Swap[a] kB"] == 0 and res["read-fresh"]["Swap[s] kB"] == 0


def test_no_builtin_scenario_is_affected_on_a_host_with_thp_madvise():
    assert not [name for name, sc in SCENARIOS.items() if thp_caveat(sc, QUIET_HOST)]


def test_pmd_sized_thp_is_modelled_so_enabled_always_flags_no_scenario():
    """PMD-sized anonymous THP is modelled (mm/huge_memory.py): enabled=always explains no difference."""
    host = QUIET_HOST | {f"{THP}/enabled": "always"}
    assert not {name for name, sc in SCENARIOS.items() if thp_caveat(sc, host)}


def test_an_mthp_size_set_to_always_reaches_small_regions():
    host = QUIET_HOST | {f"{THP}/hugepages-64kB/enabled": "always"}
    assert thp_sizes(host, shmem=False, madvised=False) == {64 * 1024: "hugepages-64kB/enabled=always"}
    assert "hugepages-64kB/enabled=always" in thp_caveat(SCENARIOS["madv-free"], host)
    assert not thp_caveat(SCENARIOS["shared-anon"], host)  # shmem follows shmem_enabled


def test_shmem_enabled_governs_shared_anonymous_regions():
    host = QUIET_HOST | {f"{THP}/hugepages-1024kB/shmem_enabled": "always"}
    assert "region s (1024 kB)" in thp_caveat(SCENARIOS["shared-anon"], host)
    assert not thp_caveat(SCENARIOS["anon-stride"], host)


def test_madvise_mode_counts_only_madv_hugepage_ranges_that_hold_a_folio():
    host = QUIET_HOST | {f"{THP}/hugepages-1024kB/enabled": "madvise"}  # an mTHP size: not modelled
    sc = Scenario("huge", "MADV_HUGEPAGE on an aligned 1 MiB", {"a": Region(4 * MiB)},
                  (Phase("advise", (Step("madvise", "a", length=1 * MiB, args=(MADV_HUGEPAGE,)),)),))
    assert "hugepages-1024kB/enabled=madvise" in thp_caveat(sc, host)
    assert not thp_caveat(sc, QUIET_HOST)  # the 2 MiB size is modelled
    small = Scenario("small", "MADV_HUGEPAGE on 512 KiB", {"a": Region(4 * MiB)},
                     (Phase("advise", (Step("madvise", "a", length=512 * 1024, args=(MADV_HUGEPAGE,)),)),))
    assert not thp_caveat(small, host)
    assert not thp_caveat(SCENARIOS["vma-flags"], host)  # its MADV_HUGEPAGE covers 256 KiB


@pytest.mark.parametrize("offset, size, holds", [(0, 1 * MiB, True), (4096, 1 * MiB, False),
                                                 (4096, 2 * MiB, True), (0, 1 * MiB - 4096, False)])
def test_region_geometry_decides(offset, size, holds):
    sc = Scenario("g", "geometry", {"a": Region(size, PROT_READ | PROT_WRITE, offset=offset)},
                  (Phase("touch", (Step("touch", "a"),)),))
    assert bool(thp_caveat(sc, QUIET_HOST | {f"{THP}/hugepages-1024kB/enabled": "always"})) == holds


def test_a_host_without_per_size_files_has_only_the_pmd_size():
    old = {f"{THP}/enabled": "always", f"{THP}/shmem_enabled": "never"}
    assert thp_sizes(old, shmem=False, madvised=False) == {2 * MiB: "enabled=always"}
    assert thp_sizes(old, shmem=True, madvised=True) == {}
    assert thp_sizes({}, shmem=False, madvised=False) == {}
