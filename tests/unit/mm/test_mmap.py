"""mmap() failures after MAP_FIXED has gathered what it replaces, as measured on Linux 6.18."""

from __future__ import annotations

import pytest

import pagelab as pl
from pagelab.observe.parse import parse_maps

P = 4096
B = 1 << 44


def _maps(m, p):
    return [f"{(v['start'] - B) // P}-{(v['end'] - B) // P} {v['perms']}"
            for v in parse_maps(m.read(f"/proc/{p.pid}/maps"))]


@pytest.mark.parametrize("flags, prot, left", [
    # private writable: the commit check fails before the old PTEs are cleared: the VMAs are put back, cut
    (pl.MAP_PRIVATE, pl.PROT_READ | pl.PROT_WRITE, ["0-2 rw-p", "2-8 rw-p"]),
    # shared: shmem's charge fails after they were cleared: a gap where the mapping failed
    (pl.MAP_SHARED, pl.PROT_READ | pl.PROT_WRITE, ["0-2 rw-p"]),
    (pl.MAP_SHARED, pl.PROT_NONE, ["0-2 rw-p"]),
])
def test_a_fixed_mapping_that_cannot_be_charged(flags, prot, left):
    m = pl.Machine(ram="1GiB", seed=0)
    p = m.spawn("fixed")
    p.mmap(B, 8 * P, pl.PROT_READ | pl.PROT_WRITE, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS | pl.MAP_FIXED)
    p.touch(B, 8 * P, write=True)
    with pytest.raises(OSError) as exc:
        p.mmap(B + 2 * P, 1 << 40, prot, flags | pl.MAP_ANONYMOUS | pl.MAP_FIXED)
    assert exc.value.errno == 12
    assert _maps(m, p) == left
    assert p.rusage().ru_minflt == 8 and p.mincore(B, 2 * P).tolist() == [1, 1]
