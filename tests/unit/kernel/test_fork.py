"""fork(), copy-on-write, exit and wait on the simulator, against docs/facts/fork_cow.md (measured on 6.18)."""

from __future__ import annotations

import errno
import os
import re

import numpy as np
import pytest

import pagelab as pl
from pagelab.errors import WaitWouldBlock
from pagelab.mm.debug import check_machine

P = pl.PAGE_SIZE
M = pl.MiB
RW = pl.PROT_READ | pl.PROT_WRITE
ANON = pl.MAP_PRIVATE | pl.MAP_ANONYMOUS
N = 16 * M


@pytest.fixture
def m() -> pl.Machine:
    return pl.Machine(ram="1GiB")


def faults(p: pl.Process, fn) -> int:  # type: ignore[no-untyped-def]
    before = p.rusage()
    fn()
    after = p.rusage()
    return int(after.ru_minflt - before.ru_minflt + after.ru_majflt - before.ru_majflt)


def pfns(m: pl.Machine, p: pl.Process, addr: int, length: int) -> np.ndarray:
    """The frame each page of [addr, addr + length) maps (what /proc/PID/pagemap shows root)."""
    from pagelab.hw.mmu import leaf_entries

    vpns = np.arange(addr >> 12, (addr + length) >> 12, dtype=np.int64)
    return leaf_entries(m.ptpool.tables, p.task.mm.pgd, vpns) >> 12 & ((1 << 40) - 1)


def smaps_of(m: pl.Machine, p: pl.Process, addr: int) -> dict[str, int]:
    out: dict[str, int] = {}
    inside = False
    for line in m.read(f"/proc/{p.pid}/smaps").splitlines():
        head = re.match(r"([0-9a-f]+)-[0-9a-f]+ ", line)
        if head:
            inside = int(head.group(1), 16) == addr
        elif inside and line.endswith(" kB"):
            key, value = line.split(":", 1)
            out[key] = int(value.split()[0])
    return out


def written(p: pl.Process, length: int = N, flags: int = ANON) -> int:
    a = p.mmap(None, length, RW, flags)
    p.touch(a, length, write=True)
    return a


def test_1a_child_writes_copy_then_parent_reuses(m):
    p = m.spawn("par")
    a = written(p)
    before = pfns(m, p, a, N)
    c = p.fork()
    assert (c.ppid, c.pid) == (p.pid, p.pid + 1)
    sp, sc = smaps_of(m, p, a), smaps_of(m, c, a)
    assert sp["Pss"] == sc["Pss"] == 8192 and sp["Shared_Dirty"] == sc["Shared_Dirty"] == 16384
    assert sc["Referenced"] == 0  # the child's copies of the PTEs are old
    assert faults(c, lambda: c.touch(a, N, write=True)) == 4096
    assert (pfns(m, c, a, N) != before).sum() == 4096  # every page copied
    assert smaps_of(m, p, a)["Private_Dirty"] == smaps_of(m, c, a)["Private_Dirty"] == 16384
    check_machine(m)
    c.exit(3)
    assert p.wait() == (c.pid, 3 << 8)
    reuse = m.vmstat()["pgreuse"]
    assert faults(p, lambda: p.touch(a, N, write=True)) == 4096  # reuse still costs a fault
    assert (pfns(m, p, a, N) == before).all() and m.vmstat()["pgreuse"] - reuse == 4096
    check_machine(m)


def test_1b_parent_writes_first(m):
    p = m.spawn("par")
    a = written(p)
    c = p.fork()
    before = pfns(m, c, a, N)
    assert faults(p, lambda: p.touch(a, N, write=True)) == 4096
    assert (pfns(m, p, a, N) != before).sum() == 4096
    assert faults(c, lambda: c.touch(a, N, write=True)) == 4096
    assert (pfns(m, c, a, N) == before).all()  # the child reuses the originals
    check_machine(m)


def test_1c_1d_child_reads_written_anon_but_refaults_the_zero_page(m):
    p = m.spawn("par")
    a = written(p)
    z = p.mmap(None, N, RW, ANON | pl.MAP_NORESERVE)  # VM_NORESERVE: it does not merge with ``a``
    p.touch(z, N)  # the zero page only: no anon_vma, so nothing is copied at fork
    c = p.fork()
    assert faults(c, lambda: c.touch(a, N)) == 0
    assert faults(c, lambda: c.touch(z, N)) == 4096
    assert p.task.mm.nr_ptes > 0 and c.task.mm.nr_ptes > 0
    check_machine(m)


def test_1e_1f_file_mappings(m):
    m.fs.create("/data/f", N, content=b"A", cached=True)
    p = m.spawn("par")
    fd = p.open("/data/f", os.O_RDWR)
    ro = p.mmap(None, N, pl.PROT_READ, pl.MAP_PRIVATE, fd, 0)
    sh = p.mmap(None, N, pl.PROT_READ, pl.MAP_SHARED, fd, 0)
    wr = p.mmap(None, 4 * M, RW, pl.MAP_PRIVATE, fd, 0)
    assert faults(p, lambda: p.touch(ro, N)) == 31  # one per 1 MiB folio; the last one ends at EOF: 16
    assert faults(p, lambda: p.touch(sh, N)) == 31
    p.store(wr, 1)  # one COW copy: the VMA has an anon_vma, so all its entries are copied at fork
    p.touch(wr, 4 * M)
    c = p.fork()
    assert faults(c, lambda: c.touch(ro, N)) == 31  # re-faulted (no anon_vma: not copied)
    assert faults(c, lambda: c.touch(sh, N)) == 31
    assert faults(c, lambda: c.touch(wr, 4 * M)) == 0
    assert c.load(wr) == 1 and c.load(wr + P) == ord("A")
    s = smaps_of(m, c, ro)
    assert s["Shared_Clean"] == 16384 and s["Pss"] < 8192  # mapped by ro, sh (and wr) in both processes
    check_machine(m)


def test_three_sharers_split_pss(m):
    p = m.spawn("par")
    a = written(p)
    c1, c2 = p.fork(), p.fork()
    assert smaps_of(m, p, a)["Pss"] == smaps_of(m, c1, a)["Pss"] == smaps_of(m, c2, a)["Pss"] == 5461
    p.touch(a, N, write=True)
    assert smaps_of(m, p, a)["Pss"] == 16384 and smaps_of(m, c1, a)["Pss"] == 8192
    check_machine(m)


def thp_region(p: pl.Process) -> int:
    res = p.mmap(None, 10 * M, pl.PROT_NONE, ANON)
    a = p.mmap((res + 2 * M - 1) & ~(2 * M - 1), 8 * M, RW, ANON | pl.MAP_FIXED)
    p.madvise(a, 8 * M, pl.MADV_HUGEPAGE)
    p.touch(a, 8 * M, write=True)
    return a


def test_2_thp_written_after_fork_is_split_and_one_page_copied(m):
    p = m.spawn("par")
    a = thp_region(p)
    c = p.fork()
    v0 = m.vmstat()
    assert faults(p, lambda: [p.store(a + i * 2 * M, 1) for i in range(4)]) == 4
    v1 = m.vmstat()
    assert v1["thp_split_pmd"] - v0["thp_split_pmd"] == 4
    sp, sc = smaps_of(m, p, a), smaps_of(m, c, a)
    assert (sp["AnonHugePages"], sp["Pss"], sp["Private_Dirty"], sp["Shared_Dirty"]) == (0, 4104, 16, 8176)
    assert sc["AnonHugePages"] == 8192
    check_machine(m)
    c.exit()
    p.wait(c.pid)
    v2 = m.vmstat()
    assert v2["thp_deferred_split_page"] - v1["thp_deferred_split_page"] == 4
    assert v2["nr_anon_transparent_hugepages"] - v1["nr_anon_transparent_hugepages"] == -4
    before = pfns(m, p, a, 8 * M)
    assert faults(p, lambda: [p.store(a + i * 2 * M + 7 * P, 1) for i in range(4)]) == 4
    assert (pfns(m, p, a, 8 * M) == before).all()
    assert smaps_of(m, p, a)["Private_Dirty"] == 8192
    check_machine(m)


def test_2_thp_child_exits_before_any_write_keeps_the_thp(m):
    p = m.spawn("par")
    a = thp_region(p)
    c = p.fork()
    c.exit()
    p.wait()
    v0 = m.vmstat()
    assert faults(p, lambda: [p.store(a + i * 2 * M, 1) for i in range(4)]) == 4
    assert m.vmstat()["thp_split_pmd"] == v0["thp_split_pmd"]
    assert smaps_of(m, p, a)["AnonHugePages"] == 8192
    assert faults(p, lambda: p.touch(a, 8 * M, write=True)) == 0
    check_machine(m)


def test_2_thp_child_writes_every_page(m):
    p = m.spawn("par")
    a = thp_region(p)
    c = p.fork()
    assert faults(c, lambda: c.touch(a, 8 * M)) == 0
    assert faults(c, lambda: c.touch(a, 8 * M, write=True)) == 2048
    check_machine(m)


def test_3_dontfork_and_wipeonfork(m):
    p = m.spawn("par")
    gone, wiped, kept = written(p), written(p), written(p)
    p.madvise(gone, N, pl.MADV_DONTFORK)
    p.madvise(wiped, N, pl.MADV_WIPEONFORK)
    p.madvise(kept, N, pl.MADV_WIPEONFORK)
    p.madvise(kept, N, pl.MADV_KEEPONFORK)
    c = p.fork()
    assert f"{gone:x}-" not in m.read(f"/proc/{c.pid}/maps")
    assert smaps_of(m, c, wiped)["Rss"] == 0 and "wf" in m.read(f"/proc/{c.pid}/smaps")
    assert faults(c, lambda: c.touch(wiped, N)) == 4096
    assert faults(c, lambda: c.touch(kept, N)) == 0
    with pytest.raises(pl.SegmentationFault):
        c.load(gone)
    assert p.wait() == (c.pid, 11)  # killed by SIGSEGV
    fd_m = m.fs.create("/data/w", M, cached=True)
    fd = p.open(fd_m, os.O_RDWR)
    f = p.mmap(None, M, RW, pl.MAP_PRIVATE, fd, 0)
    with pytest.raises(OSError) as exc:
        p.madvise(f, M, pl.MADV_WIPEONFORK)
    assert exc.value.errno == errno.EINVAL
    check_machine(m)


def test_private_file_after_dontneed_reads_the_file_again(m):
    m.fs.create("/data/f", N, content=b"B", cached=True)  # 16 MiB in 1 MiB folios; 4 MiB of it mapped
    p = m.spawn("par")
    fd = p.open("/data/f", os.O_RDWR)
    a = p.mmap(None, 4 * M, RW, pl.MAP_PRIVATE, fd, 0)
    assert faults(p, lambda: p.touch(a, 4 * M, write=True)) == 1024
    assert smaps_of(m, p, a)["Anonymous"] == 4096
    p.madvise(a, 4 * M, pl.MADV_DONTNEED)
    assert faults(p, lambda: p.touch(a, 4 * M)) == 4
    s = smaps_of(m, p, a)
    assert (s["Private_Clean"], s["Anonymous"]) == (4096, 0) and p.load(a) == ord("B")
    assert faults(p, lambda: p.touch(a, 4 * M, write=True)) == 1024


def test_zombie_until_waited_then_gone(m):
    p = m.spawn("par")
    c = p.fork()
    pid = c.pid
    assert p.wait(options=os.WNOHANG) == (0, 0)
    with pytest.raises(WaitWouldBlock):
        p.wait()
    c.exit(263)
    assert m.read(f"/proc/{pid}/stat").split()[2] == "Z"
    assert m.read(f"/proc/{pid}/maps") == "" and "VmRSS" not in m.read(f"/proc/{pid}/status")
    assert "State:\tZ (zombie)" in m.read(f"/proc/{pid}/status")
    assert p.wait(pid) == (pid, 0x700)
    with pytest.raises(FileNotFoundError):
        m.read(f"/proc/{pid}/stat")
    with pytest.raises(OSError) as exc:
        p.wait()
    assert exc.value.errno == errno.ECHILD
    with pytest.raises(pl.ProcessDead):
        c.load(0x1000)


def test_orphans_go_to_init_and_are_reaped(m):
    p = m.spawn("par")
    c = p.fork()
    g = c.fork()
    c.exit()
    assert p.wait() == (c.pid, 0)
    assert g.ppid == 1
    g.exit()
    with pytest.raises(FileNotFoundError):
        m.read(f"/proc/{g.pid}/stat")  # init reaped it at once
    with pytest.raises(OSError) as exc:
        p.wait(g.pid)
    assert exc.value.errno == errno.ECHILD


def test_fork_costs_the_parent_no_fault_and_the_child_starts_at_zero(m):
    p = m.spawn("par")
    written(p)
    assert faults(p, p.fork) == 0
    c = p.fork()
    ru = c.rusage()
    assert (ru.ru_minflt, ru.ru_majflt) == (0, 0)


def test_children_do_not_inherit_mlock_but_do_rlimits_and_files(m):
    p = m.spawn("par")
    a = p.mmap(None, 4 * P, RW, ANON | pl.MAP_LOCKED)
    m.fs.create("/data/x", M, cached=True)
    fd = p.open("/data/x")
    c = p.fork()
    assert "lo" not in re.findall(r"VmFlags: (.*)", m.read(f"/proc/{c.pid}/smaps"))[0].split()
    assert c.task.mm.locked_vm == 0 and p.task.mm.locked_vm == 4
    assert c.read(fd, 4096) == 4096  # the same open file
    p.close(fd)
    assert c.read(fd, 4096) == 4096  # the child's reference keeps it open
    assert faults(c, lambda: c.touch(a, 4 * P)) == 0


def test_fork_under_strict_overcommit_fails_with_enomem_and_leaves_nothing(m):
    m.settings.vm.overcommit_memory = 2
    p = m.spawn("par")
    committed = m.committed_pages
    n = m.vm_commit_limit() * P // 2 + 16 * M  # more than half the limit: a second copy does not fit
    a = p.mmap(None, n, RW, ANON)
    p.touch(a, 4 * M, write=True)
    with pytest.raises(OSError) as exc:
        p.fork()
    assert exc.value.errno == errno.ENOMEM
    assert len(m.tasks) == 1 and p.task.children == []
    assert m.committed_pages == committed + n // P  # the half-made child's charges were given back
    check_machine(m)
    p.exit()
    assert m.committed_pages == committed


def test_fork_charges_the_parent_for_the_entries_it_copies(m):
    """Measured here (a C program, best of 30): fork() 54.9 us bare, 349 us with 16 MiB written (4096 PTEs)."""
    p = m.spawn("par")
    a = p.mmap(None, N, RW, ANON)
    t0 = p.rusage().ru_stime
    p.fork()
    bare = p.rusage().ru_stime - t0
    p.touch(a, N, write=True)
    t1 = p.rusage().ru_stime
    p.fork()
    full = p.rusage().ru_stime - t1
    assert bare == pytest.approx(55e-6, rel=0.01) and full == pytest.approx(362e-6, rel=0.05)


def test_wait_answers_as_wait4(m):
    """Measured with os.waitpid (wait4): WNOWAIT EINVAL, pid INT_MIN ESRCH, no children ECHILD (even for a
    process group or WUNTRACED, which pagelab does not model)."""
    p = m.spawn("par")
    for pid, options, err in ((-1, os.WNOWAIT, errno.EINVAL), (-(1 << 31), 0, errno.ESRCH), (0, 0, errno.ECHILD),
                              (-1, os.WUNTRACED, errno.ECHILD), (-5, 0, errno.ECHILD)):
        with pytest.raises(OSError) as exc:
            p.wait(pid, options)
        assert exc.value.errno == err
    p.fork()
    for pid, options in ((0, 0), (-p.pid, 0), (-1, os.WUNTRACED), (-1, os.WCONTINUED)):
        with pytest.raises(pl.NotModelled):
            p.wait(pid, options | os.WNOHANG)


def test_an_mm_taking_a_freed_mm_id_slot_starts_short_and_the_folio_stays_maybe_shared(m):
    """Found by a fresh user: after g1 exits, g2 takes g1's freed slot when its PMD is split, with the
    mappings it had already not counted (as the kernel's folio_add_return_large_mapcount() does)."""
    p = m.spawn("a")
    a = thp_region(p)
    g1, g2 = p.fork(), p.fork()
    g1.exit()
    g2.store(a + P)
    check_machine(m)
    head = int(pfns(m, p, a, P)[0])
    assert m.frames.mm_ids_shared[head]
