"""mlock, mlock2, munlock, mlockall, munlockall, MAP_LOCKED, RLIMIT_MEMLOCK and CAP_IPC_LOCK on the simulator
(mm/mlock.py, kernel/sys.py), against the numbers measured on the host kernel (docs/facts/mlock.md);
mm/debug.check_machine after each story."""

from __future__ import annotations

import errno
import os
import re
import resource

import pytest

import pagelab as pl
from pagelab.mm.debug import check_machine

P = 4096
KiB, MiB = 1 << 10, 1 << 20
RW = pl.PROT_READ | pl.PROT_WRITE
ANON = pl.MAP_PRIVATE | pl.MAP_ANONYMOUS
UNEVICTABLE_EVENTS = ("unevictable_pgs_culled", "unevictable_pgs_scanned", "unevictable_pgs_rescued",
                      "unevictable_pgs_mlocked", "unevictable_pgs_munlocked", "unevictable_pgs_cleared",
                      "unevictable_pgs_stranded", "nr_mlock", "nr_unevictable")


@pytest.fixture
def m():
    return pl.Machine(ram="1GiB", seed=0)


@pytest.fixture
def p(m):
    return m.spawn("mlock")


@pytest.fixture
def limited(p):
    """The issue's setting: RLIMIT_MEMLOCK lowered to 64 KiB, no CAP_IPC_LOCK."""
    p.drop_capability("CAP_IPC_LOCK")
    p.setrlimit(pl.RLIMIT_MEMLOCK, (64 * KiB, 64 * KiB))
    return p


def counted(p, fn):
    """(errno name or 'ok', minor faults, perf page-faults) of one call."""
    r0, pf0 = p.rusage().ru_minflt, p.perf_counts()["page-faults"]
    try:
        fn()
        res = "ok"
    except OSError as exc:
        res = errno.errorcode[exc.errno]
    return res, p.rusage().ru_minflt - r0, p.perf_counts()["page-faults"] - pf0


def smaps_field(m, p, addr, field):
    """``field`` (kB) of the VMA holding ``addr`` in /proc/PID/smaps, and its VmFlags."""
    text = m.read(f"/proc/{p.pid}/smaps")
    for block in re.split(r"\n(?=[0-9a-f]+-[0-9a-f]+ )", text):
        lo, hi = (int(x, 16) for x in block.split()[0].split("-"))
        if lo <= addr < hi:
            return int(re.search(rf"^{field}:\s+(\d+)", block, re.M).group(1)), \
                re.search(r"^VmFlags:(.*)$", block, re.M).group(1).split()
    raise AssertionError(f"no VMA at {addr:#x}")


def vmlck(m, p):
    return int(re.search(r"VmLck:\s+(\d+)", m.read(f"/proc/{p.pid}/status")).group(1))


def deltas(m, before):
    after = m.vmstat()
    return {k: after[k] - before[k] for k in UNEVICTABLE_EVENTS}


def test_mlock_4mib_fresh_anon_populates_outside_perf_and_goes_unevictable(m, p):
    a = p.mmap(None, 4 * MiB, RW, ANON)
    v0, pgfault0 = m.vmstat(), m.vmstat()["pgfault"]
    assert counted(p, lambda: p.mlock(a, 4 * MiB)) == ("ok", 1024, 0)
    assert m.vmstat()["pgfault"] - pgfault0 == 1024
    assert deltas(m, v0) == {"unevictable_pgs_culled": 1024, "unevictable_pgs_scanned": 0,
                             "unevictable_pgs_rescued": 0, "unevictable_pgs_mlocked": 1024,
                             "unevictable_pgs_munlocked": 0, "unevictable_pgs_cleared": 0,
                             "unevictable_pgs_stranded": 0, "nr_mlock": 1024, "nr_unevictable": 1024}
    locked, flags = smaps_field(m, p, a, "Locked")
    assert locked == 4096 and "lo" in flags and vmlck(m, p) == 4096
    meminfo = m.read("/proc/meminfo")
    assert re.search(r"Unevictable:\s+4096 kB", meminfo) and re.search(r"Mlocked:\s+4096 kB", meminfo)
    assert counted(p, lambda: p.touch(a, 4 * MiB, write=True)) == ("ok", 0, 0)
    check_machine(m)
    v0 = m.vmstat()
    p.munlock(a, 4 * MiB)
    d = deltas(m, v0)
    assert (d["unevictable_pgs_munlocked"], d["unevictable_pgs_rescued"], d["nr_mlock"]) == (1024, 1024, -1024)
    locked, flags = smaps_field(m, p, a, "Locked")
    assert locked == 0 and "lo" not in flags and vmlck(m, p) == 0
    p.mlock(a, 4 * MiB)
    v0 = m.vmstat()
    p.munmap(a, 4 * MiB)  # unmapping munlocks: munlocked and rescued, nothing "cleared"
    d = deltas(m, v0)
    assert (d["unevictable_pgs_munlocked"], d["unevictable_pgs_rescued"], d["unevictable_pgs_cleared"]) == \
        (1024, 1024, 0)
    assert vmlck(m, p) == 0 and m.vmstat()["nr_mlock"] == 0 and m.vmstat()["nr_unevictable"] == 0
    check_machine(m)


def test_madvise_dontneed_on_locked_range(m, p):
    a = p.mmap(None, 4 * MiB, RW, ANON)
    p.mlock(a, 4 * MiB)
    assert counted(p, lambda: p.madvise(a, P, pl.MADV_DONTNEED))[0] == "EINVAL"
    assert counted(p, lambda: p.madvise(a, P, pl.MADV_DONTNEED_LOCKED)) == ("ok", 0, 0)
    assert counted(p, lambda: p.store(a, 1)) == ("ok", 1, 1)
    assert smaps_field(m, p, a, "Locked")[0] == 4096
    check_machine(m)


def test_limit_64k_without_cap_ipc_lock(m, limited):
    p = limited
    a = p.mmap(None, MiB, RW, ANON)
    assert counted(p, lambda: p.mlock(a, 16 * P)) == ("ok", 16, 0)
    assert counted(p, lambda: p.mlock(a + 16 * P, P)) == ("ENOMEM", 0, 0)
    assert counted(p, lambda: p.mlock(a, 17 * P)) == ("ENOMEM", 0, 0)
    assert counted(p, lambda: p.mlock(a, 16 * P)) == ("ok", 0, 0)  # already locked pages count once
    assert counted(p, lambda: p.mlock(a, 8 * P)) == ("ok", 0, 0)
    assert vmlck(m, p) == 64
    p.munlock(a, 16 * P)
    assert vmlck(m, p) == 0
    b = p.mmap(None, 16 * P, RW, ANON)
    assert counted(p, lambda: p.mlock2(b, 16 * P, pl.MLOCK_ONFAULT)) == ("ok", 0, 0)
    assert smaps_field(m, p, b, "Locked")[0] == 0 and vmlck(m, p) == 64
    v0 = m.vmstat()
    assert counted(p, lambda: p.touch(b, 16 * P, write=True)) == ("ok", 16, 16)
    assert smaps_field(m, p, b, "Locked")[0] == 64
    assert deltas(m, v0)["nr_mlock"] == 16  # folio_add_lru_vma() -> mlock_new_folio() at each fault
    p.munlock(b, 16 * P)
    assert counted(p, lambda: p.mmap(None, 17 * P, RW, ANON | pl.MAP_LOCKED))[0] == "EAGAIN"
    box = []
    assert counted(p, lambda: box.append(p.mmap(None, 16 * P, RW, ANON | pl.MAP_LOCKED))) == ("ok", 16, 0)
    assert smaps_field(m, p, box[0], "Locked")[0] == 64 and vmlck(m, p) == 64
    p.munmap(box[0], 16 * P)
    assert vmlck(m, p) == 0
    assert counted(p, lambda: p.mlockall(pl.MCL_CURRENT)) == ("ENOMEM", 0, 0)
    assert vmlck(m, p) == 0
    assert counted(p, lambda: p.mlockall(pl.MCL_FUTURE)) == ("ok", 0, 0)
    assert counted(p, lambda: p.mmap(None, 17 * P, RW, ANON))[0] == "EAGAIN"
    box.clear()
    assert counted(p, lambda: box.append(p.mmap(None, 8 * P, RW, ANON))) == ("ok", 8, 0)
    locked, flags = smaps_field(m, p, box[0], "Locked")
    assert locked == 32 and "lo" in flags
    p.munlockall()
    check_machine(m)


def test_setrlimit_errnos_and_limit_zero(m, limited):
    p = limited
    a = p.mmap(None, 16 * P, RW, ANON)
    with pytest.raises(OSError) as e:
        p.setrlimit(pl.RLIMIT_MEMLOCK, (128 * KiB, 64 * KiB))
    assert e.value.errno == errno.EINVAL
    p.drop_capability("CAP_SYS_RESOURCE")  # root here has none (docs/facts/mlock.md)
    with pytest.raises(OSError) as e:
        p.setrlimit(pl.RLIMIT_MEMLOCK, (64 * KiB, 256 * KiB))
    assert e.value.errno == errno.EPERM
    p.setrlimit(pl.RLIMIT_MEMLOCK, (32 * KiB, 32 * KiB))  # lowering needs nothing
    assert p.getrlimit(pl.RLIMIT_MEMLOCK) == (32 * KiB, 32 * KiB)
    p.setrlimit(pl.RLIMIT_MEMLOCK, (0, 0))
    assert counted(p, lambda: p.mlock(a, P)) == ("EPERM", 0, 0)
    assert counted(p, lambda: p.mlockall(pl.MCL_FUTURE))[0] == "EPERM"
    assert counted(p, lambda: p.mmap(None, P, RW, ANON | pl.MAP_LOCKED))[0] == "EPERM"
    with pytest.raises(OSError) as e:
        p.getrlimit(16)
    assert e.value.errno == errno.EINVAL


def test_rlimits_default_and_infinity(p):
    assert p.getrlimit(pl.RLIMIT_MEMLOCK) == (8 * MiB, 8 * MiB)
    assert p.getrlimit(resource.RLIMIT_STACK) == (8 * MiB, resource.RLIM_INFINITY)
    assert p.getrlimit(resource.RLIMIT_CORE) == (0, resource.RLIM_INFINITY)
    p.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    assert p.getrlimit(resource.RLIMIT_CORE) == (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
    with pytest.raises(ValueError):
        p.drop_capability("CAP_NOT_A_THING")
    with pytest.raises(TypeError):
        p.drop_capability(14)
    with pytest.raises(ValueError):
        p.setrlimit(pl.RLIMIT_MEMLOCK, 5)


@pytest.mark.parametrize("cap", [False, True])
def test_8mib_boundary(m, p, cap):
    if not cap:
        p.drop_capability("CAP_IPC_LOCK")
    a = p.mmap(None, 8 * MiB + P, RW, ANON)
    rss0 = p.rusage().ru_maxrss
    if cap:
        assert counted(p, lambda: p.mlock(a, 8 * MiB + P)) == ("ok", 2049, 0)
        assert vmlck(m, p) == 8196
        return
    assert counted(p, lambda: p.mlock(a, 8 * MiB + P)) == ("ENOMEM", 0, 0)
    assert p.rusage().ru_maxrss == rss0 and vmlck(m, p) == 0
    assert counted(p, lambda: p.mlock(a, 8 * MiB)) == ("ok", 2048, 0)
    assert vmlck(m, p) == 8192
    check_machine(m)


def test_mlock_read_only_prot_none_and_holes(m, p):
    ro = p.mmap(None, 16 * P, pl.PROT_READ, ANON)
    assert counted(p, lambda: p.mlock(ro, 16 * P)) == ("ok", 16, 0)
    assert smaps_field(m, p, ro, "Locked")[0] == 0  # the zero page: not counted, not mlocked
    assert m.vmstat()["nr_mlock"] == 0
    none = p.mmap(None, 16 * P, pl.PROT_NONE, ANON)
    assert counted(p, lambda: p.mlock(none, 16 * P)) == ("ENOMEM", 0, 0)
    assert "lo" in smaps_field(m, p, none, "Locked")[1] and vmlck(m, p) == 128  # locked and charged
    p.munlockall()
    a = p.mmap(None, 16 * P, RW, ANON)
    p.munmap(a + 4 * P, 4 * P)
    assert counted(p, lambda: p.mlock(a, 16 * P)) == ("ENOMEM", 0, 0)
    assert smaps_field(m, p, a, "Locked")[0] == 0 and smaps_field(m, p, a + 12 * P, "Locked")[0] == 0
    assert counted(p, lambda: p.munlock(a, 16 * P))[0] == "ENOMEM"
    b = p.mmap(None, 16 * P, RW, ANON)
    for call, err in ((lambda: p.mlock2(b, P, 2), "EINVAL"), (lambda: p.mlockall(0), "EINVAL"),
                      (lambda: p.mlockall(pl.MCL_ONFAULT), "EINVAL"), (lambda: p.mlockall(8), "EINVAL"),
                      (lambda: p.mlock(b, 0), "ok"), (lambda: p.mlock(b, -4096), "EINVAL"),
                      (lambda: p.munlock(0x10000, P), "ENOMEM")):
        assert counted(p, call)[0] == err
    assert counted(p, lambda: p.mlock(b + 1, 1)) == ("ok", 1, 0)
    assert smaps_field(m, p, b, "Locked")[0] == 4
    check_machine(m)


def test_mlock_file_mappings(m, p):
    m.fs.create("/data", size=64 * P)
    fd = p.open("/data", os.O_RDWR)
    p.pread(fd, 64 * P, 0)  # cached
    ro = p.mmap(None, 64 * P, pl.PROT_READ, pl.MAP_PRIVATE, fd, 0)
    windows = len({x >> 16 for x in range(ro, ro + 64 * P, P)})  # fault-around: one fault per 64 KiB window
    assert counted(p, lambda: p.mlock(ro, 64 * P)) == ("ok", windows, 0)
    assert smaps_field(m, p, ro, "Locked")[0] == 256
    cow = p.mmap(None, 64 * P, RW, pl.MAP_PRIVATE, fd, 0)
    assert counted(p, lambda: p.mlock(cow, 64 * P)) == ("ok", 64, 0)  # written: every page COW-copied
    sh = p.mmap(None, 64 * P, RW, pl.MAP_SHARED, fd, 0)
    p.mlock(sh, 64 * P)
    assert smaps_field(m, p, sh, "Locked")[0] == 128  # Pss: the page cache is mapped twice
    assert counted(p, lambda: p.touch(sh, 64 * P, write=True)) == ("ok", 64, 64)  # read-populated: write-notify
    p.munlockall()
    assert m.vmstat()["nr_mlock"] == 0
    check_machine(m)


def test_mlockall_future_and_onfault(m, p):
    assert counted(p, lambda: p.mlockall(pl.MCL_CURRENT | pl.MCL_FUTURE))[0] == "ok"
    box = []
    assert counted(p, lambda: box.append(p.mmap(None, 16 * P, RW, ANON))) == ("ok", 16, 0)
    assert "lo" in smaps_field(m, p, box[0], "Locked")[1]
    assert counted(p, lambda: p.touch(box[0], 16 * P, write=True)) == ("ok", 0, 0)
    p.munlockall()
    assert "lo" not in smaps_field(m, p, box[0], "Locked")[1] and vmlck(m, p) == 0
    p.mlockall(pl.MCL_FUTURE | pl.MCL_ONFAULT)
    box.clear()
    assert counted(p, lambda: box.append(p.mmap(None, 16 * P, RW, ANON))) == ("ok", 0, 0)
    assert smaps_field(m, p, box[0], "Locked")[0] == 0 and vmlck(m, p) == 64
    assert counted(p, lambda: p.touch(box[0], 16 * P, write=True)) == ("ok", 16, 16)
    assert smaps_field(m, p, box[0], "Locked")[0] == 64
    p.munlockall()
    c = p.mmap(None, 16 * P, RW, ANON)
    assert counted(p, lambda: p.mlockall(pl.MCL_CURRENT | pl.MCL_ONFAULT)) == ("ok", 0, 0)
    assert smaps_field(m, p, c, "Locked")[0] == 64 and "lo" in smaps_field(m, p, c, "Locked")[1]
    p.munlockall()
    check_machine(m)


def test_mlock_thp(m, p):
    a = p.mmap(None, 4 * MiB, RW, ANON)
    a2 = (a + 2 * MiB - 1) & ~(2 * MiB - 1)
    p.madvise(a2, 2 * MiB, pl.MADV_HUGEPAGE)
    assert counted(p, lambda: p.mlock(a2, 2 * MiB)) == ("ok", 1, 0)
    assert smaps_field(m, p, a2, "Locked")[0] == 2048
    assert m.vmstat()["nr_mlock"] == 512
    p.munmap(a, 4 * MiB)
    assert m.vmstat()["nr_mlock"] == 0
    check_machine(m)


def test_exit_with_locked_memory(m, p):
    a = p.mmap(None, MiB, RW, ANON)
    p.mlock(a, MiB)
    v0 = m.vmstat()
    p.exit()  # exit_mmap() zaps: each folio munlocked at rmap removal, none freed still mlocked
    d = deltas(m, v0)
    assert (d["unevictable_pgs_munlocked"], d["unevictable_pgs_rescued"], d["unevictable_pgs_cleared"]) == \
        (256, 256, 0)
    assert m.vmstat()["nr_mlock"] == 0 and m.vmstat()["nr_unevictable"] == 0
    check_machine(m)


def test_fork_does_not_inherit_locks_and_cow_munlocks_the_old_page(m, p):
    """Measured with 1024 pages on the real backend: the parent's COW writes mlock the new copies and munlock
    the old pages the child keeps; the child's exit then clears nothing."""
    a = p.mmap(None, 16 * P, RW, ANON)
    p.mlock(a, 16 * P)
    p.mlockall(pl.MCL_FUTURE)
    child = p.fork()
    assert vmlck(m, child) == 0 and "lo" not in smaps_field(m, child, a, "Locked")[1]
    assert child.getrlimit(pl.RLIMIT_MEMLOCK) == (8 * MiB, 8 * MiB)
    b = child.mmap(None, P, RW, ANON)
    assert "lo" not in smaps_field(m, child, b, "Locked")[1]  # mlockall(MCL_FUTURE) is not inherited
    v0 = m.vmstat()
    assert counted(p, lambda: p.touch(a, 16 * P, write=True))[:2] == ("ok", 16)
    d = deltas(m, v0)
    assert (d["unevictable_pgs_mlocked"], d["unevictable_pgs_munlocked"], d["nr_mlock"]) == (16, 16, 0)
    child.exit()
    p.wait()
    assert deltas(m, v0)["unevictable_pgs_cleared"] == 0
    p.munlockall()
    check_machine(m)


def test_mprotect_writable_populates_locked_private_vma(m, p):
    a = p.mmap(None, 16 * P, pl.PROT_READ, ANON)
    p.mlock(a, 16 * P)
    assert counted(p, lambda: p.mprotect(a, 16 * P, RW)) == ("ok", 16, 0)  # mprotect_fixup(): COW now
    assert counted(p, lambda: p.touch(a, 16 * P, write=True)) == ("ok", 0, 0)
    assert m.vmstat()["nr_mlock"] == 16
    check_machine(m)
