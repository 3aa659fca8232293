"""THP at fault time: each number is the kernel's, measured on the reference host (docs/facts/thp_at_fault_time.md)."""

from __future__ import annotations

import pytest

import pagelab as pl
from pagelab import constants as C
from pagelab.mm.debug import check_machine, check_rmap

P = 4096
MiB = 1 << 20
RW = C.PROT_READ | C.PROT_WRITE
ANON = C.MAP_PRIVATE | C.MAP_ANONYMOUS
THP = "/sys/kernel/mm/transparent_hugepage/"


def _machine(**settings: object) -> pl.Machine:
    return pl.Machine(ram="256MiB", seed=3, settings={THP + k: v for k, v in settings.items()})


def _region(p: pl.Process, size: int, *, offset: int = 0, advise: bool = True) -> int:
    """``size`` bytes mapped ``offset`` past a 2 MiB boundary (as validate's regions), MADV_HUGEPAGE."""
    reserve = p.mmap(None, size + 4 * MiB, C.PROT_NONE, ANON)
    start = ((reserve + 2 * MiB - 1) & ~(2 * MiB - 1)) + offset
    a = p.mmap(start, size, RW, ANON | C.MAP_FIXED)
    if advise:
        p.madvise(a, size, C.MADV_HUGEPAGE)
    return a


def _faults(p: pl.Process, fn) -> int:
    before = p.rusage().ru_minflt
    fn()
    return p.rusage().ru_minflt - before


def _smaps(m: pl.Machine, p: pl.Process, a: int, size: int) -> dict[str, int]:
    from pagelab.observe.parse import parse_smaps

    out: dict[str, int] = {}
    for v in parse_smaps(m.read(f"/proc/{p.pid}/smaps")):
        if v["start"] < a + size and v["end"] > a:
            for k in ("Rss", "AnonHugePages", "Private_Dirty"):
                out[k] = out.get(k, 0) + v.get(k, 0)
    return out


def _vmpte(m: pl.Machine, p: pl.Process) -> int:
    line = next(x for x in m.read(f"/proc/{p.pid}/status").splitlines() if x.startswith("VmPTE:"))
    return int(line.split()[1])


def _check(m: pl.Machine) -> None:
    check_machine(m)
    check_rmap(m)


def test_a_write_per_page_of_64_mib_with_madv_hugepage_takes_32_faults() -> None:
    """Item a: 32 faults, thp_fault_alloc 32, AnonHugePages 65536 kB, one deposited table per THP."""
    m = _machine()
    p = m.spawn()
    a = _region(p, 64 * MiB)
    pte0 = _vmpte(m, p)
    assert _faults(p, lambda: p.touch(a, 64 * MiB, write=True)) == 32
    v = m.vmstat()
    assert v["thp_fault_alloc"] == 32 and v["nr_anon_transparent_hugepages"] == 32 and v["thp_fault_fallback"] == 0
    assert _smaps(m, p, a, 64 * MiB) == {"Rss": 65536, "AnonHugePages": 65536, "Private_Dirty": 65536}
    assert pte0 == 0 and _vmpte(m, p) == 128 + 8  # 32 deposits, and a PUD and a PMD table (a fresh 512 GiB)
    assert "AnonHugePages:     65536 kB" in m.read("/proc/meminfo")
    _check(m)
    p.munmap(a, 64 * MiB)
    assert m.vmstat()["nr_anon_transparent_hugepages"] == 0
    assert _vmpte(m, p) == 8  # the deposits are freed; the reserve around keeps the PUD and PMD tables
    _check(m)


def test_without_the_madvise_every_page_faults() -> None:
    """Item b: enabled=madvise and no MADV_HUGEPAGE: 16384 faults, THPeligible 0."""
    m = _machine()
    p = m.spawn()
    a = _region(p, 64 * MiB, advise=False)
    assert _faults(p, lambda: p.touch(a, 64 * MiB, write=True)) == 16384
    assert m.vmstat()["thp_fault_alloc"] == 0
    assert "THPeligible:           0" in m.read(f"/proc/{p.pid}/smaps")


def test_reads_map_the_huge_zero_page_and_writes_replace_it_with_thps() -> None:
    """Item c: 32 read faults (Rss 0, a table deposited each), then 32 write faults allocating THPs."""
    m = _machine()
    p = m.spawn()
    a = _region(p, 64 * MiB)
    pte0 = _vmpte(m, p)
    assert _faults(p, lambda: p.touch(a, 64 * MiB)) == 32
    assert m.vmstat()["thp_zero_page_alloc"] == 1
    assert _smaps(m, p, a, 64 * MiB)["Rss"] == 0 and _vmpte(m, p) - pte0 == 136
    assert _faults(p, lambda: p.touch(a, 64 * MiB)) == 0
    assert _faults(p, lambda: p.touch(a, 64 * MiB, write=True)) == 32
    v = m.vmstat()
    assert v["thp_fault_alloc"] == 32 and v["thp_split_pmd"] == 0 and _vmpte(m, p) - pte0 == 136
    assert _smaps(m, p, a, 64 * MiB)["AnonHugePages"] == 65536
    _check(m)
    q = m.spawn()  # the huge zero folio is allocated once per machine
    b = _region(q, 2 * MiB)
    q.load(b)
    assert m.vmstat()["thp_zero_page_alloc"] == 1
    assert m.frames.refcount[m.huge_zero_folio] == 3  # its own (the shrinker's) and one per mm that mapped it
    p.exit()
    q.exit()
    assert m.frames.refcount[m.huge_zero_folio] == 1  # each mm gave its reference back at exit
    _check(m)


def test_use_zero_page_0_makes_a_read_allocate_the_thp() -> None:
    m = _machine(use_zero_page=0)
    p = m.spawn()
    a = _region(p, 4 * MiB)
    assert _faults(p, lambda: p.touch(a, 4 * MiB)) == 2
    assert _faults(p, lambda: p.touch(a, 4 * MiB, write=True)) == 0
    assert m.vmstat()["thp_fault_alloc"] == 2


@pytest.mark.parametrize("offset, faults, thps", [(4096, 772, 1), (MiB, 261, 2), (0, 261, 2)])
def test_only_aligned_blocks_inside_the_vma_get_thps(offset: int, faults: int, thps: int) -> None:
    """Item d: 5 MiB + 12 KiB at various offsets from a 2 MiB boundary."""
    m = _machine()
    p = m.spawn()
    size = 5 * MiB + 12 * 1024
    a = _region(p, size, offset=offset)
    assert _faults(p, lambda: p.touch(a, size, write=True)) == faults
    assert m.vmstat()["thp_fault_alloc"] == thps
    _check(m)


def _two_thps(m: pl.Machine) -> tuple[pl.Process, int]:
    p = m.spawn()
    a = _region(p, 4 * MiB)
    p.touch(a, 4 * MiB, write=True)
    assert m.vmstat()["thp_fault_alloc"] == 2
    return p, a


@pytest.mark.parametrize("op, split_pmd, deferred, anon_huge, rss, pte, refault", [
    (lambda p, a: p.munmap(a + 100 * P, P), 1, 1, 2048, 4092, 0, None),
    (lambda p, a: p.mprotect(a + 100 * P, P, C.PROT_READ), 1, 0, 2048, 4096, 0, None),
    (lambda p, a: p.madvise(a + 100 * P, P, C.MADV_DONTNEED), 1, 1, 2048, 4092, 0, 1),
    (lambda p, a: p.madvise(a, 2 * MiB, C.MADV_DONTNEED), 0, 0, 2048, 2048, -4, 1),
    (lambda p, a: p.munmap(a, 2 * MiB), 0, 0, 2048, 2048, -4, None),
    (lambda p, a: p.mprotect(a, 2 * MiB, C.PROT_READ), 0, 0, 4096, 4096, 0, None),
    (lambda p, a: p.madvise(a + P, 2 * MiB, C.MADV_DONTNEED), 2, 2, 0, 2048, 0, 512),
])
def test_splits_counted_as_the_kernel_counts_them(op, split_pmd, deferred, anon_huge, rss, pte, refault) -> None:
    """Item e: partial munmap/mprotect/DONTNEED split the PMD; whole-PMD ones do not."""
    m = _machine()
    p, a = _two_thps(m)
    pte0 = _vmpte(m, p)
    op(p, a)
    v = m.vmstat()
    assert (v["thp_split_pmd"], v["thp_deferred_split_page"], v["thp_split_page"]) == (split_pmd, deferred, 0)
    s = _smaps(m, p, a, 4 * MiB)
    assert (s["AnonHugePages"], s["Rss"], _vmpte(m, p) - pte0) == (anon_huge, rss, pte)
    assert v["nr_anon_transparent_hugepages"] == anon_huge // 2048
    _check(m)
    if refault is not None:
        assert _faults(p, lambda: p.touch(a, 4 * MiB, write=True)) == refault
        _check(m)
    p.exit()
    _check(m)


def test_splitting_the_huge_zero_page_gives_zero_page_ptes() -> None:
    """Item e (zero): DONTNEED of 4 KiB in a huge-zero PMD splits it; writing all then takes 512 + 1."""
    m = _machine()
    p = m.spawn()
    a = _region(p, 4 * MiB)
    p.touch(a, 4 * MiB)
    p.madvise(a + 100 * P, P, C.MADV_DONTNEED)
    assert m.vmstat()["thp_split_pmd"] == 1 and m.vmstat()["thp_deferred_split_page"] == 0
    assert _faults(p, lambda: p.touch(a, 4 * MiB, write=True)) == 513
    _check(m)


def test_madv_free_of_part_of_a_thp_splits_the_folio_at_once() -> None:
    """The split remaps pages holding only zeros to the shared zero page (RMP_USE_SHARED_ZEROPAGE), as
    measured on the host: only the page with data stays; MADV_FREE then finds nothing to free."""
    m = _machine()
    p, a = _two_thps(m)
    p.store(a + 5, 9)
    p.madvise(a + 100 * P, P, C.MADV_FREE)
    v = m.vmstat()
    assert (v["thp_split_pmd"], v["thp_split_page"], v["pglazyfree"]) == (1, 1, 0)
    assert _smaps(m, p, a, 4 * MiB)["Rss"] == 4 + 2048  # page 0 (it holds a 9) and the other THP
    assert p.mincore(a, 2 * MiB).all()  # the zero page is resident
    assert p.load(a + 5) == 9 and p.load(a + 100 * P) == 0
    _check(m)
    assert _faults(p, lambda: p.touch(a, 2 * MiB, write=True)) == 511  # COW from the zero page
    _check(m)
    p.exit()
    _check(m)


def test_bytes_written_to_a_thp_land_in_their_own_subpage() -> None:
    m = _machine()
    p, a = _two_thps(m)
    p.store(a + 3 * P + 7, 42)
    p.store(a + 2 * MiB + 511 * P, 17)
    assert p.load(a + 3 * P + 7) == 42 and p.load(a + 7) == 0 and p.load(a + 2 * MiB + 511 * P) == 17
    p.mprotect(a + P, P, C.PROT_READ)  # split: the bytes stay where they were
    assert p.load(a + 3 * P + 7) == 42


def test_a_4_kib_range_that_has_a_page_table_never_gets_a_thp_at_fault_time() -> None:
    m = _machine()
    p = m.spawn()
    a = _region(p, 2 * MiB, advise=False)
    p.store(a, 1)  # a PTE table now covers the 2 MiB
    p.madvise(a, 2 * MiB, C.MADV_HUGEPAGE)
    assert _faults(p, lambda: p.touch(a, 2 * MiB, write=True)) == 511
    assert m.vmstat()["thp_fault_alloc"] == 0


def test_no_free_order_9_block_falls_back_to_4_kib_pages() -> None:
    """thp_fault_fallback: the fault goes on as a 4 KiB one (nothing is compacted first)."""
    m = pl.Machine(ram="16MiB", seed=3)
    p = m.spawn()
    hog = p.mmap(None, 15 * MiB, RW, ANON)
    p.touch(hog, 15 * MiB, write=True)
    for k in range(0, 15 * MiB, 8 * P):  # free one page in eight: plenty free, no 2 MiB block
        p.madvise(hog + k, P, C.MADV_DONTNEED)
    a = _region(p, 2 * MiB)
    assert _faults(p, lambda: p.store(a, 1)) == 1
    v = m.vmstat()
    assert v["thp_fault_fallback"] == 1 and v["thp_fault_alloc"] == 0
    assert _smaps(m, p, a, 2 * MiB)["Rss"] == 4
    _check(m)


@pytest.mark.parametrize("flag, eligible, faults", [(0, 0, 1024), (C.PR_THP_DISABLE_EXCEPT_ADVISED, 1, 2)])
def test_pr_set_thp_disable(flag: int, eligible: int, faults: int) -> None:
    """Item g: the prctl sets an mm flag (no VM_NOHUGEPAGE); EXCEPT_ADVISED keeps MADV_HUGEPAGE ranges."""
    m = _machine()
    p = m.spawn()
    a = _region(p, 4 * MiB)
    assert p.prctl(C.PR_SET_THP_DISABLE, 1, flag) == 0
    assert p.prctl(C.PR_GET_THP_DISABLE) == (3 if flag else 1)
    smaps = m.read(f"/proc/{p.pid}/smaps")
    assert f"THPeligible:           {eligible}" in smaps and " nh" not in smaps
    assert f"THP_enabled:\t{1 if flag else 0}" in m.read(f"/proc/{p.pid}/status")
    assert _faults(p, lambda: p.touch(a, 4 * MiB, write=True)) == faults
    assert p.prctl(C.PR_SET_THP_DISABLE, 0) == 0 and p.prctl(C.PR_GET_THP_DISABLE) == 0
    for bad in [(C.PR_SET_THP_DISABLE, 0, 2), (C.PR_SET_THP_DISABLE, 1, 1), (C.PR_GET_THP_DISABLE, 1)]:
        with pytest.raises(OSError) as e:
            p.prctl(*bad)
        assert e.value.errno == 22


@pytest.mark.parametrize("enabled, advise, nohuge, eligible", [
    ("madvise", True, False, 1), ("madvise", False, False, 0), ("always", False, False, 1),
    ("always", False, True, 0), ("never", True, False, 0),
])
def test_thpeligible_follows_the_mode_and_the_vma_flags(enabled, advise, nohuge, eligible) -> None:
    m = _machine(enabled=enabled)
    p = m.spawn()
    a = _region(p, 4 * MiB, advise=advise)
    if nohuge:
        p.madvise(a, 4 * MiB, C.MADV_NOHUGEPAGE)
    assert f"THPeligible:           {eligible}" in m.read(f"/proc/{p.pid}/smaps")
    assert _faults(p, lambda: p.touch(a, 4 * MiB, write=True)) == (2 if eligible else 1024)


def test_a_vma_cut_inside_a_thp_splits_its_pmd() -> None:
    """vma_adjust_trans_huge(): MADV_NOHUGEPAGE on 4 KiB of a THP splits the VMA, and so the PMD."""
    m = _machine()
    p, a = _two_thps(m)
    p.madvise(a + 100 * P, P, C.MADV_NOHUGEPAGE)
    assert m.vmstat()["thp_split_pmd"] == 1
    assert _smaps(m, p, a, 4 * MiB)["AnonHugePages"] == 2048
    _check(m)


def test_madv_dontneed_frees_the_pte_tables_it_covers_whole() -> None:
    """CONFIG_PT_RECLAIM (y on 6.18 here): MADV_DONTNEED over a whole 2 MiB frees its emptied PTE table
    (VmPTE -4 kB each; measured: -16 kB for 8 MiB, -4 kB for [0, 2 MiB) and for [4 KiB, 4 MiB + 4 KiB),
    nothing for [0, 2 MiB - 4 KiB)); 4 KiB re-reads fault as before."""
    m = _machine()
    p = m.spawn()
    a = _region(p, 8 * MiB, advise=False)
    p.touch(a, 8 * MiB, write=True)
    base = _vmpte(m, p)
    for start, length, freed in ((0, 2 * MiB - P, 0), (P, 4 * MiB, 4), (0, 2 * MiB, 4), (0, 8 * MiB, 8)):
        before = _vmpte(m, p)
        p.madvise(a + start, length, C.MADV_DONTNEED)
        assert before - _vmpte(m, p) == freed, (start, length)
        _check(m)
    assert _faults(p, lambda: p.touch(a, 8 * MiB)) == 2048 and _vmpte(m, p) == base
    _check(m)


def test_a_thp_range_emptied_whole_by_dontneed_faults_a_new_thp() -> None:
    """A split THP (PTE table) then MADV_DONTNEED of its whole 2 MiB: the table is freed, so the next write
    maps a new THP in one fault, as on the host (it took 512 4 KiB faults when the table stayed)."""
    m = _machine()
    p = m.spawn()
    a = _region(p, 4 * MiB)
    p.touch(a, 2 * MiB, write=True)
    p.madvise(a + 5 * P, P, C.MADV_DONTNEED)  # splits the PMD: the deposit becomes the PTE table
    before = _vmpte(m, p)
    p.madvise(a, 2 * MiB, C.MADV_DONTNEED)
    assert before - _vmpte(m, p) == 4
    alloc = m.vmstat()["thp_fault_alloc"]
    assert _faults(p, lambda: p.touch(a, 2 * MiB, write=True)) == 1
    assert m.vmstat()["thp_fault_alloc"] == alloc + 1 and _smaps(m, p, a, 4 * MiB)["AnonHugePages"] == 2048
    _check(m)


@pytest.mark.parametrize("merged_back, op, deferred", [
    (False, "munmap", 1), (False, "dontneed", 1), (True, "munmap", 0), (True, "dontneed", 0), (True, "part", 1)])
def test_a_pte_mapped_thp_zapped_whole_in_one_vma_is_not_queued(merged_back: bool, op: str, deferred: int) -> None:
    """zap_present_ptes() removes a folio's run of PTEs at once (folio_remove_rmap_ptes()): a PTE-mapped THP
    zapped whole inside one VMA is never partly mapped, so no thp_deferred_split_page; across VMAs (the
    mprotect not undone) or in part it is. Measured on 6.18 (2 of 2 each); pagelab counted 1 every time."""
    m = _machine()
    p = m.spawn()
    a = _region(p, 4 * MiB)
    p.touch(a, 4 * MiB, write=True)
    p.mprotect(a + 100 * P, P, C.PROT_READ)  # splits the PMD: the THP is PTE-mapped from now on
    if merged_back:
        p.mprotect(a + 100 * P, P, RW)  # one VMA again
    before = m.vmstat()["thp_deferred_split_page"]
    if op == "munmap":
        p.munmap(a, 2 * MiB)
    else:
        p.madvise(a, 2 * MiB if op == "dontneed" else 200 * P, C.MADV_DONTNEED)
    assert m.vmstat()["thp_deferred_split_page"] - before == deferred
    assert len(m.deferred_split_queue) == (op == "part")  # a folio freed whole leaves the queue
    _check(m)
    p.exit()
    _check(m)


def test_prctl_options_that_do_not_exist_are_einval() -> None:
    """kernel/sys.c: the switch's default is -EINVAL (checked on the host: -1, 0, 1000, 2**31-1)."""
    p = _machine().spawn()
    for option in (-1, 0, 1000, 2**31 - 1):
        with pytest.raises(OSError) as e:
            p.prctl(option)
        assert e.value.errno == 22
    with pytest.raises(pl.NotModelled):
        p.prctl(15)  # PR_SET_NAME exists but is not modelled
