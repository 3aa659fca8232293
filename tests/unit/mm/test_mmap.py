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


def test_rlimit_data_and_as_bound_mappings_as_may_expand_vm():
    """may_expand_vm() (measured on the host with ctypes, relative to the process's VmData/VmSize): with
    RLIMIT_DATA 16 pages above the data already mapped, 8 private writable pages map, 16 more do not (ENOMEM),
    read-only and shared ones do; mprotect of 16 read-only pages to writable is ENOMEM, of 4 it works; mremap
    growing 8 data pages to 20, or MREMAP_DONTUNMAP of 8, is ENOMEM; MAP_FIXED over 8 data pages works; a soft
    limit of 0 allows all (the Valgrind exception). RLIMIT_AS bounds every mapping."""
    import errno
    import resource

    from pagelab.mm.debug import check_machine

    m = pl.Machine(ram="256MiB", seed=0)
    p = m.spawn("rlim")
    K = 4096
    p.setrlimit(resource.RLIMIT_DATA, (16 * K, resource.RLIM_INFINITY))
    a = p.mmap(None, 8 * K, pl.PROT_READ | pl.PROT_WRITE, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS)
    for args in [(None, 16 * K, pl.PROT_READ | pl.PROT_WRITE, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS)]:
        with pytest.raises(OSError) as e:
            p.mmap(*args)
        assert e.value.errno == errno.ENOMEM
    p.mmap(None, 16 * K, pl.PROT_READ, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS)
    p.mmap(None, 16 * K, pl.PROT_READ | pl.PROT_WRITE, pl.MAP_SHARED | pl.MAP_ANONYMOUS)
    b = p.mmap(None, 16 * K, pl.PROT_READ, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS)
    rw = pl.PROT_READ | pl.PROT_WRITE
    with pytest.raises(OSError) as e:
        p.mprotect(b, 16 * K, rw)
    assert e.value.errno == errno.ENOMEM
    p.mprotect(b, 4 * K, rw)  # 12 data pages now
    for flags, new in [(pl.MREMAP_MAYMOVE, 20 * K), (pl.MREMAP_MAYMOVE | pl.MREMAP_DONTUNMAP, 8 * K)]:
        with pytest.raises(OSError) as e:
            p.mremap(a, 8 * K, new, flags)
        assert e.value.errno == errno.ENOMEM
    assert p.mmap(a, 8 * K, pl.PROT_READ | pl.PROT_WRITE, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS | pl.MAP_FIXED) == a
    p.setrlimit(resource.RLIMIT_DATA, (0, resource.RLIM_INFINITY))
    p.mmap(None, 16 * K, pl.PROT_READ | pl.PROT_WRITE, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS)
    p.setrlimit(resource.RLIMIT_DATA, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    total = int(m.read(f"/proc/{p.pid}/status").split("VmSize:")[1].split()[0]) * 1024
    p.setrlimit(resource.RLIMIT_AS, (total + 16 * K, resource.RLIM_INFINITY))
    p.mmap(None, 8 * K, pl.PROT_READ, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS)
    with pytest.raises(OSError) as e:
        p.mmap(None, 16 * K, pl.PROT_READ, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS)
    assert e.value.errno == errno.ENOMEM
    check_machine(m)
