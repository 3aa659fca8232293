"""Per-fault records: one per fault, the same counts as without them."""

from __future__ import annotations

import pagelab as pl


def test_every_fault_is_recorded_and_counts_do_not_change():
    counts = []
    for trace in (False, True):
        m = pl.Machine(ram="64MiB", seed=0)
        if trace:
            m.fault_log = []
        p = m.spawn("t")
        a = p.mmap(None, 64 * 4096, 3, 0x22)
        p.touch(a, 64 * 4096)
        p.touch(a, 64 * 4096, write=True)
        counts.append((p.rusage().ru_minflt, m.vmstat()))
        if trace:
            assert len(m.fault_log) == 128
            assert {t.handler for t in m.fault_log} == {"do_anonymous_page(zero)", "wp_page_copy(zero)"}
            assert m.fault_log[0].trap == "#PF(R,U)" and m.fault_log[64].trap == "#PF(P,W,U)"
    assert counts[0] == counts[1]
