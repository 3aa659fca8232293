"""measure's diagnosis, on made-up timelines: the seed's categories."""

from __future__ import annotations

from pagelab.real.measure import Measurement, Sample, diagnose


def run(majors, *, huge=0, locked=0, refaults=0):
    samples = [Sample(i * 0.1, 100 * i, mj, 1000, huge, locked, 0, 0) for i, mj in enumerate(majors)]
    ru = {"ru_majflt": majors[-1] if majors else 0, "ru_minflt": 1000}
    return diagnose(Measurement(["x"], 0, 1.0, ru, None, samples, {"workingset_refault_file": refaults}))


def test_cold_start_takes_its_major_faults_early():
    d = run([0, 40, 50, 50, 50, 50, 50, 50])
    assert d[0].startswith("cold start: 50 major faults")


def test_persistent_major_faults_are_memory_pressure():
    d = run([0, 10, 20, 30, 40, 50, 60, 70], refaults=500)
    assert d[0].startswith("steady-state memory pressure")
    assert "refaults" in d[1]


def test_warm_thp_and_locked():
    assert run([0, 0, 0, 0])[0].startswith("warm")
    assert any(x.startswith("THP in use: up to 4096 kB") for x in run([0, 0, 0, 0], huge=4096))
    assert any(x.startswith("locked memory") for x in run([0, 0, 0, 0], locked=64))
    assert run([0, 0, 0, 0], refaults=99)[0].startswith("warm")  # others' refaults are not this command's
