"""Every system-call argument case gives the errno the real kernel gives (table in tests/support)."""

from __future__ import annotations

import pytest
from tests.support.errno_cases import CASES, run_case

import pagelab as pl


@pytest.mark.parametrize("name", sorted(CASES))
def test_simulator_errno(name):
    p = pl.Machine(ram="256MiB", seed=3).spawn("errno")
    assert run_case(p, name) == CASES[name][1]


def test_fixed_below_mmap_min_addr_needs_cap_sys_rawio():
    m = pl.Machine(ram="256MiB", seed=3)
    p = m.spawn("root")
    assert p.mmap(0, 4096, pl.PROT_READ, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS | pl.MAP_FIXED) == 0
    q = m.spawn("nobody")
    q.task.caps.clear()
    with pytest.raises(OSError) as exc:
        q.mmap(0, 4096, pl.PROT_READ, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS | pl.MAP_FIXED)
    assert exc.value.errno == 1  # EPERM
    assert q.mmap(0x1000, 4096, pl.PROT_READ, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS | pl.MAP_FIXED) == 0x1000


def test_madvise_not_yet_modelled_is_said_not_guessed():
    p = pl.Machine(ram="256MiB", seed=3).spawn("x")
    a = p.mmap(None, 4096, pl.PROT_READ | pl.PROT_WRITE, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS)
    with pytest.raises(pl.NotModelled):
        p.madvise(a, 4096, pl.MADV_COLLAPSE)
