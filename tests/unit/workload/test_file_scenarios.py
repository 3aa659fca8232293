"""File scenarios on the simulator: FileSpec setup and cleanup, file steps, declared bands in compare."""

from __future__ import annotations

import os

import pytest

from pagelab import Machine
from pagelab.constants import MADV_DONTNEED, MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE, MiB
from pagelab.errors import ScenarioError
from pagelab.report.compare import compare
from pagelab.workload.library import FILE_SCENARIOS, MS_SYNC, SCENARIOS
from pagelab.workload.scenario import FileSpec, Phase, Region, Scenario, Step, file_path, run_scenario

RW = PROT_READ | PROT_WRITE
RA = "/sys/block/vda/queue/read_ahead_kb"


def _machine() -> Machine:
    return Machine(ram="256MiB", seed=0, settings={RA: 8192}, disk="virtio")


def _sc(region: Region, *phases: tuple[str, list[Step]],
        bands: dict[tuple[str, str], tuple[int, int, str]] | None = None) -> Scenario:
    return Scenario("t-file", "test", {"f": region}, tuple(Phase(n, tuple(s)) for n, s in phases), bands=bands or {})


def test_file_scenarios_are_registered_and_named_file():
    assert FILE_SCENARIOS and all(sc.name.startswith("file-") and SCENARIOS[sc.name] is sc for sc in FILE_SCENARIOS)
    assert all(r.file is not None for sc in FILE_SCENARIOS for r in sc.regions.values())


def test_a_warm_private_file_mapping_on_the_simulator_and_the_file_is_removed_after():
    m = _machine()
    sc = _sc(Region(4 * MiB, RW, MAP_PRIVATE, file=FileSpec(4 * MiB, warm="read")),
             ("pread", [Step("pread", "f")]), ("write", [Step("touch", "f", kwargs={"write": True})]),
             ("dontneed", [Step("madvise", "f", args=(MADV_DONTNEED,))]), ("read", [Step("touch", "f")]))
    res = run_scenario(m, sc)
    assert res["pread"]["minflt"] == 0 and res["pread"]["majflt"] == 0  # read()s never count faults
    assert res["write"]["minflt"] == 1024 and res["write"]["Anonymous[f] kB"] == 4096  # a COW per page
    assert res["dontneed"]["Rss[f] kB"] == 0
    assert res["read"]["minflt"] < 1024 and res["read"]["Anonymous[f] kB"] == 0  # the cache again, fault-around
    assert res["read"]["VmFlags[f]"].split()[:2] == ["rd", "wr"]
    assert not m.fs.exists(file_path(sc, "f"))
    assert run_scenario(m, sc) == res  # the same path again: made afresh, deterministic


def test_shared_write_then_msync_sync_write_protects_again():
    sc = _sc(Region(2 * MiB, RW, MAP_SHARED, file=FileSpec(2 * MiB, cached=True)),
             ("write", [Step("touch", "f", kwargs={"write": True})]), ("sync", [Step("msync", "f", args=(MS_SYNC,))]),
             ("write-again", [Step("touch", "f", kwargs={"write": True})]))
    res = run_scenario(_machine(), sc)
    assert res["write"]["Private_Dirty[f] kB"] == 2048 and res["sync"]["Private_Dirty[f] kB"] == 0
    assert res["write-again"]["minflt"] == 512


def test_fadvise_step_uses_the_regions_descriptor():
    sc = _sc(Region(2 * MiB, PROT_READ, MAP_SHARED, file=FileSpec(2 * MiB, cached=True)),
             ("dontneed", [Step("fadvise", "f", args=(os.POSIX_FADV_DONTNEED,))]), ("read", [Step("touch", "f")]))
    res = run_scenario(_machine(), sc)
    assert res["dontneed"]["resident[f]"] == 0  # clean, unmapped: evicted
    assert res["read"]["majflt"] >= 1


@pytest.mark.parametrize("make", [
    lambda: FileSpec(MiB, warm="sideways"),
    lambda: Region(MiB, RW, MAP_SHARED | MAP_ANONYMOUS, file=FileSpec(MiB)),
    lambda: _sc(Region(MiB), ("sync", [Step("msync", "f", args=(MS_SYNC,))])),
    lambda: _sc(Region(MiB, PROT_READ, MAP_SHARED, file=FileSpec(MiB)), ("read", [Step("touch", "f")]),
                bands={("nope", "minflt"): (1, 2, "x")}),
    lambda: _sc(Region(MiB, PROT_READ, MAP_SHARED, file=FileSpec(MiB)), ("read", [Step("touch", "f")]),
                bands={("read", "minflt"): (3, 2, "x")}),
])
def test_bad_declarations_are_refused(make):
    with pytest.raises(ScenarioError):
        make()


def test_declared_band_needs_both_sides_inside():
    bands = {("read", "minflt"): (435, 441, "readahead timing")}
    real, sim = {"read": {"minflt": 438, "majflt": 1}}, {"read": {"minflt": 436, "majflt": 1}}
    rows = {r.counter: r for r in compare("s", real, sim, bands=bands)}
    assert rows["minflt"].ok and rows["minflt"].tolerance == "435..441, readahead timing"
    assert rows["majflt"].ok and rows["majflt"].tolerance == "exact"
    assert not compare("s", {"read": {"minflt": 442}}, sim, bands=bands)[0].ok
    assert not compare("s", real, {"read": {"minflt": 427}}, bands=bands)[0].ok
    assert not compare("s", {"read": {"minflt": "-"}}, sim, bands=bands)[0].ok


def test_glibc_shuffle_is_the_c_probes_order():
    """Values printed by a C program: srand(1), Fisher-Yates with rand() % (i + 1) (glibc 2.x, this host)."""
    from pagelab.workload.scenario import glibc_shuffle

    assert glibc_shuffle(10, 1) == [9, 8, 4, 2, 0, 6, 5, 1, 7, 3]
    assert glibc_shuffle(16384, 1)[:5] == [2566, 13868, 7280, 14507, 12367]
    assert sorted(glibc_shuffle(1000, 7)) == list(range(1000)) and glibc_shuffle(1, 1) == [0]


def test_map_step_remaps_the_file_inside_the_phase_and_populate_is_measured():
    from pagelab.constants import MAP_POPULATE

    sc = _sc(Region(4 * MiB, RW, MAP_PRIVATE, file=FileSpec(4 * MiB, warm="read")),
             ("populate", [Step("map", "f", args=(RW, MAP_PRIVATE | MAP_POPULATE))]),
             ("write", [Step("touch", "f", kwargs={"write": True})]))
    res = run_scenario(_machine(), sc)
    assert res["populate"]["minflt"] == 1024 and res["populate"]["Anonymous[f] kB"] == 4096  # COW at mmap time
    assert res["write"]["minflt"] == 0


def test_pwrite_and_fsync_steps_write_through_the_descriptor():
    sc = _sc(Region(4 * MiB, RW, MAP_SHARED, file=FileSpec(4 * MiB)),
             ("pwrite", [Step("pwrite", "f", kwargs={"chunk": MiB})]), ("fsync", [Step("fsync", "f")]),
             ("write", [Step("touch", "f", kwargs={"write": True})]))
    m = _machine()
    res = run_scenario(m, sc)
    assert res["pwrite"]["minflt"] == 0 and res["pwrite"]["resident[f]"] == 1024
    assert res["write"]["minflt"] == 4  # one do_shared_fault per 1 MiB folio made by the writes


def test_sparse_and_hole_files():
    sparse = _sc(Region(8 * MiB, PROT_READ, MAP_SHARED, file=FileSpec(8 * MiB, sparse=True)),
                 ("read", [Step("touch", "f")]))
    m = _machine()
    res = run_scenario(m, sparse)
    assert res["read"]["majflt"] == 1 and res["read"]["resident[f]"] == 2048
    hole = _sc(Region(8 * MiB, PROT_READ, MAP_SHARED, file=FileSpec(8 * MiB, hole=(2 * MiB, 4 * MiB))),
               ("read", [Step("touch", "f")]))
    assert run_scenario(m, hole)["read"]["majflt"] == 1


@pytest.mark.parametrize("make", [
    lambda: FileSpec(MiB, hole=(100, 4096)),
    lambda: FileSpec(MiB, hole=(0, 2 * MiB)),
    lambda: FileSpec(MiB, hole=(0, 0)),
    lambda: FileSpec(MiB, sparse=True, hole=(0, 4096)),
])
def test_bad_holes_are_refused(make):
    with pytest.raises(ScenarioError):
        make()


def test_bad_map_and_pwrite_steps_are_refused():
    m = _machine()
    for step in (Step("map", "f", args=(PROT_READ,)), Step("pwrite", "f", kwargs={"chunk": 0})):
        sc = _sc(Region(MiB, RW, MAP_SHARED, file=FileSpec(MiB)), ("bad", [step]))
        with pytest.raises(ScenarioError):
            run_scenario(m, sc)
        assert not m.fs.exists(file_path(sc, "f"))


def test_declared_bands_name_real_phases_and_the_model_lies_inside_them():
    """Every declared band of a file scenario admits the simulator's own figure (checked on the fast ones)."""
    fast = ("file-cold-populate", "file-cold-fadv-willneed", "file-cold-populate-read", "file-hole-read")
    m = _machine()  # this host's read_ahead_kb, as the bands were measured with
    for name in fast:
        sc = SCENARIOS[name]
        res = run_scenario(m, sc)
        for (phase, counter), (lo, hi, why) in sc.bands.items():
            assert why and counter in res[phase] and lo <= res[phase][counter] <= hi, (name, phase, counter)
