"""measure's diagnosis, on made-up timelines: the seed's categories, anonymous first touch among them."""

from __future__ import annotations

from pagelab.real.measure import Measurement, Sample, anon_first_touches, diagnose


def sample(i, *, minflt, majflt=0, anon_kb=0, shmem_kb=0, huge_kb=0, locked_kb=0):
    return Sample(t=i * 0.1, procs=1, minflt=minflt, majflt=majflt, rss_kb=anon_kb + 1000, rss_anon_kb=anon_kb,
                  rss_shmem_kb=shmem_kb, anon_huge_kb=huge_kb, locked_kb=locked_kb, host_pgmajfault=0,
                  host_refaults=0)


def run(majors, *, minflt=1000, anon_kb=0, huge=0, locked=0, refaults=0):
    """Samples spread evenly over a run of ``minflt`` minor faults, RssAnon growing to ``anon_kb``."""
    n = len(majors)
    samples = [sample(i, minflt=minflt * (i + 1) // n, majflt=mj, anon_kb=anon_kb * (i + 1) // n, huge_kb=huge,
                      locked_kb=locked) for i, mj in enumerate(majors)]
    ru = {"ru_majflt": majors[-1] if majors else 0, "ru_minflt": minflt}
    return diagnose(Measurement(["x"], 0, 10**9, ru, None, samples, {"workingset_refault_file": refaults}))


def test_cold_start_takes_its_major_faults_early():
    d = run([0, 40, 50, 50, 50, 50, 50, 50])
    assert d[0].startswith("cold start: 50 major faults, taken early")


def test_a_short_run_with_major_faults_is_not_timed():
    d = run([1])
    assert d[0].startswith("cold start: 1 major fault (pages read from disk); the run was too short")


def test_persistent_major_faults_are_memory_pressure():
    d = run([0, 10, 20, 30, 40, 50, 60, 70], refaults=500)
    assert d[0].startswith("steady-state memory pressure")
    assert "refaults" in d[1] and "system-wide" in d[1]


def test_zero_fill_faults_are_anonymous_first_touch_not_a_warm_page_cache():
    # 1000 minor faults, RssAnon grows by 3200 kB = 800 pages: mostly zero-fill.
    d = run([0, 0, 0, 0], anon_kb=3200)
    assert d[0].startswith("anonymous first touch: at least 800 of the 1000 minor faults")
    assert not any("warm" in x for x in d)


def test_few_anonymous_pages_and_good_coverage_is_a_warm_page_cache():
    d = run([0, 0, 0, 0], anon_kb=400)  # 100 of 1000 faults anonymous
    assert d[0].startswith("warm page cache: minor faults only (no I/O); about 100 of the 1000")


def test_no_claim_when_the_samples_saw_too_little():
    m = Measurement(["x"], 0, 10**6, {"ru_majflt": 0, "ru_minflt": 1000}, None, [sample(0, minflt=100)])
    assert diagnose(m)[0].startswith("minor faults only (no I/O): nothing was read from disk; the samples saw 100")
    m.samples = []
    assert "saw 0 of the 1000" in diagnose(m)[0]


def test_others_refaults_are_not_this_commands():
    d = run([0, 0, 0, 0], anon_kb=400, refaults=99)
    assert d[0].startswith("warm") and not any("refault" in x for x in d)


def test_thp_and_locked():
    assert any(x.startswith("THP in use: up to 4096 kB") for x in run([0, 0, 0, 0], huge=4096))
    assert any(x.startswith("locked memory: up to 64 kB") for x in run([0, 0, 0, 0], locked=64))


def test_a_thp_is_one_fault():
    # 4 MiB in two PMD-mapped THPs plus 16 kB in base pages: 2 + 4 faults.
    s = [sample(0, minflt=10, anon_kb=4096 + 16, huge_kb=4096)]
    assert anon_first_touches(s, page_size=4096) == 6


def test_shared_anonymous_memory_counts_as_anonymous_first_touch():
    m = Measurement(["x"], 0, 10**9, {"ru_majflt": 0, "ru_minflt": 1000}, None,
                    [sample(i, minflt=250 * (i + 1), shmem_kb=800 * (i + 1)) for i in range(4)])
    assert diagnose(m)[0].startswith("anonymous first touch: at least 800 of the 1000")
    assert "RssShmem 3200 kB" in diagnose(m)[0]


def test_anon_first_touches_counts_growth_not_the_level():
    # 400 kB, freed to 0, then 400 kB again: 200 faults, although RssAnon never exceeds 400 kB.
    s = [sample(i, minflt=10 * i, anon_kb=kb) for i, kb in enumerate([400, 0, 400])]
    assert anon_first_touches(s, page_size=4096) == 200
