"""compare(): exact counters, bands with their reason, and misses a host setting explains."""

from __future__ import annotations

from pagelab.report.compare import compare, render_table
from pagelab.workload.scenario import Band

SIM = {"write": {"minflt": 256, "Swap[a] kB": 0},
       "free": {"minflt": 0, "LazyFree[a] kB": Band(992, 992, 1024, "per-CPU lru batch"), "Swap[a] kB": 0}}


def _real(lazy: int, minflt: int = 256, swap: int = 0) -> dict:
    return {"write": {"minflt": minflt, "Swap[a] kB": swap}, "free": {"minflt": 0, "LazyFree[a] kB": lazy,
                                                                       "Swap[a] kB": 0}}


def test_a_drained_batch_is_inside_the_band_and_anything_else_is_not():
    for lazy, ok in ((992, True), (1024, True), (1000, True), (988, False), (1028, False)):
        row = next(r for r in compare("madv-free", _real(lazy), SIM) if r.counter.startswith("LazyFree"))
        assert row.ok is ok and row.simulated == 992 and row.tolerance == "992..1024, per-CPU lru batch"
    assert all(r.tolerance == "exact" for r in compare("madv-free", _real(992), SIM)
               if not r.counter.startswith("LazyFree"))


def test_a_caveat_annotates_misses_only():
    rows = compare("anon-write", _real(992, minflt=8), SIM, caveat="host THP (enabled=always) ...")
    miss = next(r for r in rows if not r.ok)
    assert miss.counter == "minflt" and miss.note.startswith("host THP")
    assert all(not r.note for r in rows if r.ok)
    table = render_table(rows)
    assert "differs (exact) *" in table and "* anon-write: host THP (enabled=always) ..." in table
    assert "MISS" not in table


def test_a_miss_nothing_explains_is_a_miss():
    rows = compare("anon-write", _real(992, minflt=8), SIM)
    assert [r.counter for r in rows if not r.ok] == ["minflt"] and not rows[0].note
    assert "MISS (exact)" in render_table(rows)


def test_a_phase_the_host_swapped_is_annotated():
    rows = compare("anon-write", _real(992, minflt=300, swap=64), SIM)
    swap_row = next(r for r in rows if r.counter == "Swap[a] kB" and r.phase == "write")
    assert not swap_row.ok and "swapped out 64 kB" in swap_row.note and "models no swap" in swap_row.note
    assert all(not r.note for r in rows if r.phase == "free")
