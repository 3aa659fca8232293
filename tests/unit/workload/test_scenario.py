"""Scenarios on the simulator: the LazyFree band, the host settings that explain a difference, and scenarios of
several processes (fork, exit, wait: issue #9)."""

from __future__ import annotations

import os

import pytest

from pagelab import Machine
from pagelab.constants import (
    MADV_DONTFORK,
    MADV_HUGEPAGE,
    MAP_ANONYMOUS,
    MAP_POPULATE,
    MAP_PRIVATE,
    MCL_CURRENT,
    MCL_FUTURE,
    MREMAP_FIXED,
    MREMAP_MAYMOVE,
    PROT_READ,
    PROT_WRITE,
    RLIMIT_MEMLOCK,
    MiB,
)
from pagelab.errors import ScenarioError
from pagelab.mm.page_alloc import nr_free_frames
from pagelab.workload.library import FORK_FIELDS, SCENARIOS
from pagelab.workload.scenario import (
    SMAPS_FIELDS,
    Band,
    Phase,
    Region,
    Scenario,
    Step,
    drop_capability,
    exec_,
    exit_,
    fill,
    fork,
    free,
    malloc,
    maps_kinds,
    mlockall,
    munlockall,
    run_scenario,
    setrlimit,
    thp_caveat,
    thp_sizes,
    wait,
)

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


# --- several processes: fork, exit, wait (issue #9) ---------------------------------------------------

RW = PROT_READ | PROT_WRITE
W = {"write": True}


def _fork_scenario(*phases: Phase, regions: dict[str, Region] | None = None) -> Scenario:
    return Scenario("forky", "fork machinery", regions or {"a": Region(1 * MiB)}, phases, smaps_fields=FORK_FIELDS)


def test_fork_phases_run_in_the_named_process_and_observe_others():
    sc = _fork_scenario(Phase("write", (Step("touch", "a", kwargs=W),)),
                        Phase("fork", (fork("child"),), observe=("child",)),
                        Phase("child-writes", (Step("touch", "a", kwargs=W),), proc="child", observe=("main",)),
                        Phase("child-exits", (exit_(3),), proc="child"),
                        Phase("wait", (wait("child"),)),
                        Phase("parent-writes", (Step("touch", "a", kwargs=W),)))
    m = Machine(ram="64MiB", seed=0)
    res = run_scenario(m, sc)
    assert "minflt" not in res["fork"] and res["fork"]["Pss[a] kB"] == 512  # not measured; half of 1 MiB each
    assert res["fork"]["Pss[a@child] kB"] == 512 and res["fork"]["Shared_Dirty[a@child] kB"] == 1024
    assert res["child-writes"]["minflt"] == 256  # COW copies, in the child's own rusage
    assert res["child-writes"]["Private_Dirty[a] kB"] == 1024 and res["child-writes"]["Pss[a@main] kB"] == 1024
    assert res["child-exits"] == {}  # the process has exited: nothing to read
    assert res["wait"]["wait status[child]"] == "0x300"
    assert res["parent-writes"]["minflt"] == 256  # reuse, still one fault per page
    assert not m.tasks  # every process reaped, no zombie left


def test_processes_left_alive_exit_children_first_and_leave_no_zombie():
    sc = _fork_scenario(Phase("write", (Step("touch", "a", kwargs=W),)),
                        Phase("fork", (fork("child"),)),
                        Phase("fork-again", (fork("grandchild"),), proc="child"),
                        Phase("orphan-maker", (fork("second"),)),
                        Phase("second-exits", (exit_(0),), proc="second"))  # exited, never waited for
    m = Machine(ram="64MiB", seed=0)
    run_scenario(m, sc)
    assert not m.tasks
    assert nr_free_frames(m) == m.totalram_pages  # every frame the four processes held is free again


def test_a_signal_ends_only_its_process_and_the_parent_reaps_it():
    sc = _fork_scenario(Phase("write", (Step("touch", "a", kwargs=W),)),
                        Phase("dontfork", (Step("madvise", "a", args=(MADV_DONTFORK,)),)),
                        Phase("fork", (fork("child"),)),
                        Phase("child-reads", (Step("load", "a", offset=8192),), proc="child"),
                        Phase("wait", (wait("child"),)),
                        Phase("parent-reads", (Step("touch", "a"),)))
    m = Machine(ram="64MiB", seed=0)
    res = run_scenario(m, sc)
    assert res["child-reads"] == {"signal": "SIGSEGV SEGV_MAPERR", "si_addr": "a+0x2000"}
    assert res["wait"]["wait status[child]"] == "0xb"
    assert res["parent-reads"]["minflt"] == 0 and res["parent-reads"]["Rss[a] kB"] == 1024
    assert not m.tasks


def test_a_single_process_scenario_records_only_the_default_fields():
    res = run_scenario(Machine(ram="64MiB", seed=0), SCENARIOS["anon-dontneed"])
    keys = {k.split("[")[0] for k in res["write"] if "[" in k}
    assert keys == set(SMAPS_FIELDS) | {"resident", "VmFlags"}
    assert not [k for k in res["write"] if "@" in k]


def test_mremap_to_a_target_region_moves_the_pages_there():
    sc = Scenario("mv", "move", {"a": Region(4 * 4096), "b": Region(8 * 4096)},
                  (Phase("write", (Step("touch", "a", kwargs=W),)),
                   Phase("mremap", (Step("mremap", "a", args=(8 * 4096, MREMAP_MAYMOVE | MREMAP_FIXED), target="b"),)),
                   Phase("read", (Step("touch", "b", length=4 * 4096),))))
    res = run_scenario(Machine(ram="64MiB", seed=0), sc)
    assert res["mremap"]["minflt"] == 0 and res["mremap"]["Rss[a] kB"] == 0 and res["mremap"]["Rss[b] kB"] == 16
    assert res["read"]["minflt"] == 0


def test_an_anonymous_map_step_measures_map_populate():
    sc = Scenario("pop", "populate", {"a": Region(1 * MiB)},
                  (Phase("populate", (Step("map", "a", args=(RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE)),)),))
    res = run_scenario(Machine(ram="64MiB", seed=0), sc)
    assert res["populate"]["minflt"] == 256 and res["populate"]["perf page-faults"] == 0
    assert res["populate"]["Rss[a] kB"] == 1024


def test_a_moving_mremap_without_a_target_is_refused():
    sc = Scenario("mv", "move", {"a": Region(4 * 4096)},
                  (Phase("mremap", (Step("mremap", "a", args=(8 * 4096, MREMAP_MAYMOVE)),)),))
    m = Machine(ram="64MiB", seed=0)
    with pytest.raises(ScenarioError, match="MREMAP_FIXED"):
        run_scenario(m, sc)
    assert not m.tasks


@pytest.mark.parametrize("phases, message", [
    ((Phase("x", (Step("touch", "a"),), proc="child"),), "not made by an earlier fork"),
    ((Phase("x", (fork("c"), Step("touch", "a"))),), "cannot share a phase"),
    ((Phase("x", (fork("c"),)), Phase("y", (fork("c"),))), "new process name"),
    ((Phase("x", (fork("main"),)),), "new process name"),
    ((Phase("x", (wait("nobody"),)),), "wait for unknown"),
    ((Phase("x", (Step("touch", "a"),), observe=("ghost",)),), "observed processes"),
    ((Phase("x", (Step("mremap", "a", args=(4096, 3), target="nowhere"),)),), "unknown region"),
])
def test_bad_multi_process_scenarios_are_refused(phases, message):
    with pytest.raises(ScenarioError, match=message):
        _fork_scenario(*phases)


def test_wait_for_a_process_that_is_not_ones_child_is_refused():
    sc = _fork_scenario(Phase("fork", (fork("c"),)), Phase("fork2", (fork("g"),), proc="c"),
                        Phase("g-exits", (exit_(0),), proc="g"), Phase("wait", (wait("g"),)))
    m = Machine(ram="64MiB", seed=0)
    with pytest.raises(ScenarioError, match="not a child"):
        run_scenario(m, sc)
    assert not m.tasks


def test_the_thp_after_fork_scenario_gives_the_fact_sheets_numbers():
    m = Machine(ram="256MiB", seed=0)
    res = run_scenario(m, SCENARIOS["thp-fork"])
    first = res["parent-writes-p-per-2m"]
    assert first["minflt"] == 4 and first["AnonHugePages[p] kB"] == 0 and first["AnonHugePages[p@child] kB"] == 8192
    assert first["Pss[p] kB"] == 4104 and first["Private_Dirty[p] kB"] == 16 and first["Shared_Dirty[p] kB"] == 8176
    assert res["child-writes-x"]["minflt"] == 2048 and res["child-writes-x"]["AnonHugePages[x] kB"] == 0
    assert res["parent-writes-p-all"]["minflt"] == 2040
    assert res["parent-writes-c-per-2m"]["AnonHugePages[c] kB"] == 8192
    assert res["parent-writes-e-all"]["minflt"] == 0
    assert res["wait"]["wait status[child]"] == "0x0"
    assert not m.tasks


def test_the_fork_tree_scenario_gives_pss_of_three_sharers_and_each_wait_status():
    m = Machine(ram="256MiB", seed=0)
    res = run_scenario(m, SCENARIOS["fork-tree"])
    three = res["fork-grandchild"]
    assert three["Pss[a] kB"] == three["Pss[a@main] kB"] == three["Pss[a@grandchild] kB"] == 1365  # 4096 / 3
    assert res["parent-writes-a"]["Pss[a@child] kB"] == res["parent-writes-a"]["Pss[a@grandchild] kB"] == 2048
    assert "Rss[d@child] kB" in res["fork"] and res["fork"]["Rss[d@child] kB"] == 0  # DONTFORK: no VMA
    assert res["fork"]["VmFlags[d@child]"] == "" and res["fork"]["Rss[w@child] kB"] == 0  # WIPEONFORK: empty
    assert res["grandchild-reads-d"] == {"signal": "SIGSEGV SEGV_MAPERR", "si_addr": "d+0x0"}
    assert res["child-waits"]["wait status[grandchild]"] == "0xb"
    assert res["wait"]["wait status[child]"] == "0x300" and res["wait-again"]["wait status[child2]"] == "0x700"
    assert res["child2-reads"]["minflt"] == 0
    assert not m.tasks


# --- errno phases, rlimit and capability control steps, mlock steps (issue #9) ---

def test_an_errno_phase_records_the_error_and_the_scenario_goes_on():
    sc = Scenario("e", "errno", {"a": Region(17 * 4096)},
                  (Phase("limit", (setrlimit(RLIMIT_MEMLOCK, 16 * 4096, 8 * MiB), drop_capability("CAP_IPC_LOCK"))),
                   Phase("too-much", (Step("mlock", "a"),), errno=True),
                   Phase("fits", (Step("mlock", "a", length=16 * 4096),), errno=True),
                   Phase("all", (mlockall(MCL_CURRENT),), errno=True)),
                  smaps_fields=("Rss", "Locked"))
    m = Machine(ram="64MiB", seed=0)
    res = run_scenario(m, sc)
    assert res["too-much"]["errno"] == "ENOMEM" and "minflt" not in res["too-much"]
    assert res["too-much"]["Rss[a] kB"] == 0 and res["too-much"]["resident[a]"] == 0  # nothing populated
    assert res["fits"]["errno"] == "ok" and res["fits"]["minflt"] == 16 and res["fits"]["perf page-faults"] == 0
    assert res["fits"]["Locked[a] kB"] == 64
    assert res["all"]["errno"] == "ENOMEM"
    assert not m.tasks


def test_an_error_outside_an_errno_phase_ends_the_scenario():
    sc = Scenario("e", "errno", {"a": Region(4096)}, (Phase("bad", (Step("madvise", "a", args=(12345,)),)),))
    m = Machine(ram="64MiB", seed=0)
    with pytest.raises(OSError):
        run_scenario(m, sc)
    assert not m.tasks


def test_mlockall_and_munlockall_steps_need_no_region():
    sc = Scenario("f", "future", {"f": Region(16 * 4096)},
                  (Phase("future", (mlockall(MCL_FUTURE), Step("map", "f", args=(RW, MAP_PRIVATE | MAP_ANONYMOUS)))),
                   Phase("unlock", (munlockall(),))), smaps_fields=("Rss", "Locked"))
    res = run_scenario(Machine(ram="64MiB", seed=0), sc)
    assert res["future"]["minflt"] == 16 and res["future"]["Locked[f] kB"] == 64 and "lo" in res["future"]["VmFlags[f]"]
    assert res["unlock"]["Locked[f] kB"] == 0 and "lo" not in res["unlock"]["VmFlags[f]"]


def test_the_mlock_scenarios_give_the_fact_sheets_numbers():
    m = Machine(ram="256MiB", seed=0)
    res = run_scenario(m, SCENARIOS["mlock-4mib"])
    assert res["mlock-a"]["minflt"] == 1024 and res["mlock-a"]["perf page-faults"] == 0
    assert res["mlock-a"]["Locked[a] kB"] == 4096 and res["write-a"]["minflt"] == 0
    assert res["dontneed-locked-a"]["errno"] == "EINVAL" and res["mlock-8m+4k-b"]["minflt"] == 2049
    res = run_scenario(m, SCENARIOS["mlock-limit"])
    assert res["mlock-8m+4k-b"]["errno"] == "ENOMEM" and res["mlock-8m+4k-b"]["Rss[b] kB"] == 0
    assert res["mlock-8m-b"]["minflt"] == 2048
    assert [res[p]["errno"] for p in ("mlock-17th-s", "map-locked-17-m", "mlockall-current")] == \
        ["ENOMEM", "EAGAIN", "ENOMEM"]
    assert res["relock-16-s"]["minflt"] == 0 and res["mlock-onfault-o"]["minflt"] == 0
    assert res["write-o"]["minflt"] == res["write-o"]["perf page-faults"] == 16
    assert not m.tasks


# --- libc steps: malloc/free/fill/malloc_trim/brk with named allocations (issue #9) ---

def test_libc_steps_name_their_allocations_and_record_where_they_are():
    m = Machine(ram="256MiB", seed=0)
    res = run_scenario(m, SCENARIOS["malloc"])
    assert res["malloc-1m-mmapped"]["where[x]"] == "mmap+0x10" and res["malloc-1m-mmapped"]["minflt"] == 258
    assert res["malloc-1m-heap"]["where[y]"].startswith("heap+") and res["malloc-1m-heap"]["minflt"] == 256
    assert res["malloc-1m-again"]["minflt"] == 0
    kept = res["free-all-but-last"]["resident[heap]"]
    assert kept == res["malloc-4k-chunks"]["resident[heap]"] > 200
    assert res["malloc-trim"]["malloc_trim"] == 1 and res["malloc-trim"]["resident[heap]"] < kept
    assert not m.tasks


def test_brk_steps_are_relative_to_the_heap_start():
    res = run_scenario(Machine(ram="64MiB", seed=0), SCENARIOS["brk"])
    assert [res[p]["brk"] for p in ("brk+1", "brk+5000", "brk+4096", "brk-past-task-size", "brk-start")] == \
        [1, 5000, 4096, 4096, 0]


@pytest.mark.parametrize("steps, message", [
    ((free("nothing"),), "unknown allocation"),
    ((fill("nothing"),), "unknown allocation"),
])
def test_libc_steps_on_unknown_allocations_are_refused(steps, message):
    m = Machine(ram="64MiB", seed=0)
    with pytest.raises(ScenarioError, match=message):
        run_scenario(m, Scenario("l", "libc", {}, (Phase("x", steps),)))
    assert not m.tasks


def test_libc_steps_only_in_the_main_process():
    with pytest.raises(ScenarioError, match="main process only"):
        Scenario("l", "libc", {}, (Phase("f", (fork("c"),)), Phase("x", (malloc("a", 10),), proc="c")))


# --- exec steps: the start-up measured, the maps at the exit stop recorded (issue #9) ---

def test_an_exec_phase_measures_the_start_up_and_records_the_maps(monkeypatch):
    from tests.unit.kernel.test_exec import true_profile

    from pagelab.real import startup as host
    from pagelab.workload import startup

    prof = true_profile()
    monkeypatch.setattr(startup, "profile_for", lambda path, argv, **kw: prof)
    calls = []  # the host side, kept off the host here
    monkeypatch.setattr(host, "evict_host", lambda files: calls.append(("evict", tuple(files))))
    monkeypatch.setattr(host, "measure_launch", lambda path, argv: calls.append(("launch", path)))
    monkeypatch.setattr(host, "host_residency", lambda files: {})
    m = Machine(ram="256MiB", seed=0)
    sc = Scenario("x", "exec", {}, (Phase("exec", (exec_("/bin/true", ("true",), "cold"),)),), smaps_fields=())
    res = run_scenario(m, sc)["exec"]
    faults = sum(1 for s in prof.steps if s.kind == "fault")
    assert res["minflt"] + res["majflt"] == 3 + faults and res["majflt"] > 0  # nothing cached: all cold
    vmas = [v for k, v in res.items() if k.startswith("vma[")]
    assert vmas[0].startswith(f"r--p {os.path.realpath('/bin/true')} ") and "rw-p [stack] 0" in vmas
    assert res["vma[0]"] == vmas[0] and len(vmas) > 10
    assert calls and calls[0][0] == "evict" and not m.tasks
    warm = Scenario("x", "exec", {}, (Phase("exec", (exec_("/bin/true", ("true",), "warm"),)),), smaps_fields=())
    monkeypatch.setattr(host, "host_residency",  # the host after a launch: every page cached
                        lambda files: {f: [(0, -(-os.path.getsize(f) // 4096))] for f in files})
    assert run_scenario(m, warm)["exec"]["majflt"] == 0
    assert calls[-1][0] == "launch"


def test_maps_kinds_leaves_out_addresses_and_the_stacks_size():
    text = ("55d0c0000000-55d0c0002000 r--p 00000000 fd:00 1 /usr/bin/true\n"
            "7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]\n7f0000000000-7f0000001000 rw-p 00000000 00:00 0")
    assert maps_kinds(text) == [("r--p", "/usr/bin/true", 8192), ("rw-p", "[stack]", 0), ("rw-p", "", 4096)]


@pytest.mark.parametrize("phases, message", [
    ((Phase("x", (exec_("/bin/true", ("true",), "warm"), Step("touch", "a"))),), "phase of its own"),
    ((Phase("f", (fork("c"),)), Phase("x", (exec_("/bin/true", ("true",), "warm"),), proc="c")), "phase of its own"),
])
def test_bad_exec_phases_are_refused(phases, message):
    with pytest.raises(ScenarioError, match=message):
        Scenario("e", "exec", {"a": Region(4096)}, phases)
    with pytest.raises(ScenarioError, match="cache"):
        exec_("/bin/true", ("true",), "tepid")
