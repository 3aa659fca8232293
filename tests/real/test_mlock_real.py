"""mlock, RLIMIT_MEMLOCK and CAP_IPC_LOCK on both backends: the same calls give the same numbers (faults,
perf page-faults, errno, Locked:, VmLck:, VmFlags, the unevictable events) on the simulator and on this
host's kernel (docs/facts/mlock.md). The real child drops its capabilities and lowers its limits itself;
the host keeps its own."""

from __future__ import annotations

import errno
import re

import pytest

import pagelab as pl
from pagelab.real import Machine as RealMachine

pytestmark = pytest.mark.real

P = 4096
KiB, MiB = 1 << 10, 1 << 20
RW = pl.PROT_READ | pl.PROT_WRITE
ANON = pl.MAP_PRIVATE | pl.MAP_ANONYMOUS


@pytest.fixture(scope="module")
def real():
    with RealMachine() as m:
        yield m


def backends(real):
    return [("sim", pl.Machine(ram="1GiB", seed=0)), ("real", real)]


class Probe:
    """One process on one backend and what its calls did."""

    def __init__(self, m, name):
        self.m = m
        self.p = m.spawn(name)

    def call(self, fn):
        """(result or errno name, minor faults, perf page-faults) of one call."""
        p = self.p
        r0, pf0 = p.rusage().ru_minflt, (p.perf_counts() or {}).get("page-faults", 0)
        try:
            value = fn()
            res = "ok" if value is None else value
        except OSError as exc:
            res = errno.errorcode[exc.errno]
        return res, p.rusage().ru_minflt - r0, (p.perf_counts() or {}).get("page-faults", 0) - pf0

    def vma(self, addr):
        """(Locked kB, 'lo' in VmFlags) of the VMA holding ``addr``."""
        text = self.m.read(f"/proc/{self.p.pid}/smaps")
        for block in re.split(r"\n(?=[0-9a-f]+-[0-9a-f]+ )", text):
            lo, hi = (int(x, 16) for x in block.split()[0].split("-"))
            if lo <= addr < hi:
                locked = int(re.search(r"^Locked:\s+(\d+)", block, re.M).group(1))
                return locked, "lo" in re.search(r"^VmFlags:(.*)$", block, re.M).group(1).split()
        raise AssertionError(f"no VMA at {addr:#x}")

    def vmlck(self):
        return int(re.search(r"VmLck:\s+(\d+)", self.m.read(f"/proc/{self.p.pid}/status")).group(1))

    def events(self):
        v = self.m.vmstat()
        return v["unevictable_pgs_mlocked"], v["unevictable_pgs_culled"], v["unevictable_pgs_munlocked"], \
            v["unevictable_pgs_rescued"]


def both(real, story):
    """Run ``story(probe) -> list`` on each backend; assert the records are equal; return the simulator's."""
    out = {}
    for name, m in backends(real):
        probe = Probe(m, f"mlock-{name}")
        try:
            out[name] = story(probe)
        finally:
            probe.p.exit()
    assert out["sim"] == out["real"]
    return out["sim"]


def test_mlock_4mib_populates_outside_perf(real):
    events = {}

    def story(s):
        p = s.p
        a = p.mmap(None, 4 * MiB, RW, ANON)
        e0 = s.events()
        rec = [s.call(lambda: p.mlock(a, 4 * MiB)), s.vma(a), s.vmlck()]
        e1 = s.events()
        rec.append(s.call(lambda: p.touch(a, 4 * MiB, write=True)))
        rec.append(s.call(lambda: p.madvise(a, P, pl.MADV_DONTNEED)))
        rec.append(s.call(lambda: p.munlock(a, 4 * MiB)))
        e2 = s.events()
        rec += [s.vma(a), s.vmlck()]
        events[s.m] = [tuple(y - x for x, y in zip(e0, e1, strict=True)),
                       tuple(y - x for x, y in zip(e1, e2, strict=True))]
        return rec

    rec = both(real, story)
    assert rec[0] == ("ok", 1024, 0) and rec[1] == (4096, True) and rec[2] == 4096
    assert rec[3] == ("ok", 0, 0) and rec[4][0] == "EINVAL" and rec[6:] == [(0, False), 0]
    # (mlocked, culled, munlocked, rescued): exact on the simulator; the host's are system-wide, so
    # another process's mlock in the same window can only add to them
    expected = [(1024, 1024, 0, 0), (0, 0, 1024, 1024)]
    sim, host = (events[m] for m in events)
    assert sim == expected
    assert all(h >= e for hs, es in zip(host, expected, strict=True) for h, e in zip(hs, es, strict=True))


def test_limit_64k_story(real):
    def story(s):
        p = s.p
        p.drop_capability("CAP_IPC_LOCK")
        p.setrlimit(pl.RLIMIT_MEMLOCK, (64 * KiB, 64 * KiB))
        rec = [p.getrlimit(pl.RLIMIT_MEMLOCK)]
        a = p.mmap(None, MiB, RW, ANON)
        rec += [s.call(lambda: p.mlock(a, 16 * P)), s.call(lambda: p.mlock(a + 16 * P, P)),
                s.call(lambda: p.mlock(a, 16 * P)), s.vmlck()]
        p.munlock(a, 16 * P)
        b = p.mmap(None, 16 * P, RW, ANON)
        rec += [s.call(lambda: p.mlock2(b, 16 * P, pl.MLOCK_ONFAULT)), s.vma(b), s.vmlck(),
                s.call(lambda: p.touch(b, 16 * P, write=True)), s.vma(b)]
        p.munlock(b, 16 * P)
        rec.append(s.call(lambda: p.mmap(None, 17 * P, RW, ANON | pl.MAP_LOCKED))[0])
        r = s.call(lambda: p.mmap(None, 16 * P, RW, ANON | pl.MAP_LOCKED))
        rec += [r[1:], s.vma(r[0]), s.vmlck()]
        p.munmap(r[0], 16 * P)
        rec += [s.vmlck(), s.call(lambda: p.mlockall(pl.MCL_CURRENT)),
                s.call(lambda: p.setrlimit(pl.RLIMIT_MEMLOCK, (128 * KiB, 64 * KiB)))]
        p.drop_capability("CAP_SYS_RESOURCE")  # the simulator's root has it; this host's has not
        rec.append(s.call(lambda: p.setrlimit(pl.RLIMIT_MEMLOCK, (64 * KiB, 256 * KiB))))
        p.setrlimit(pl.RLIMIT_MEMLOCK, (0, 0))
        rec += [s.call(lambda: p.mlock(a, P)), s.call(lambda: p.mlockall(pl.MCL_FUTURE)),
                s.call(lambda: p.getrlimit(16))]
        return rec

    rec = both(real, story)
    assert rec[:5] == [(64 * KiB, 64 * KiB), ("ok", 16, 0), ("ENOMEM", 0, 0), ("ok", 0, 0), 64]
    assert rec[5:10] == [("ok", 0, 0), (0, True), 64, ("ok", 16, 16), (64, True)]
    assert rec[10:14] == ["EAGAIN", (16, 0), (64, True), 64]
    assert rec[14:] == [0, ("ENOMEM", 0, 0), ("EINVAL", 0, 0), ("EPERM", 0, 0), ("EPERM", 0, 0),
                        ("EPERM", 0, 0), ("EINVAL", 0, 0)]


@pytest.mark.parametrize("cap", [False, True])
def test_8mib_boundary(real, cap):
    def story(s):
        p = s.p
        if not cap:
            p.drop_capability("CAP_IPC_LOCK")
        a = p.mmap(None, 8 * MiB + P, RW, ANON)
        rec = [p.getrlimit(pl.RLIMIT_MEMLOCK), s.call(lambda: p.mlock(a, 8 * MiB + P)), s.vmlck()]
        rec += [s.call(lambda: p.mlock(a, 8 * MiB)), s.vmlck()]
        return rec

    rec = both(real, story)
    if cap:
        assert rec == [(8 * MiB, 8 * MiB), ("ok", 2049, 0), 8196, ("ok", 0, 0), 8196]
    else:
        assert rec == [(8 * MiB, 8 * MiB), ("ENOMEM", 0, 0), 0, ("ok", 2048, 0), 8192]


def test_mappings_and_arguments(real):
    def story(s):
        p = s.p
        ro = p.mmap(None, 16 * P, pl.PROT_READ, ANON)
        rec = [s.call(lambda: p.mlock(ro, 16 * P)), s.vma(ro)]
        none = p.mmap(None, 16 * P, pl.PROT_NONE, ANON)
        rec += [s.call(lambda: p.mlock(none, 16 * P)), s.vma(none), s.vmlck()]
        p.munlock(ro, 16 * P)
        p.munlock(none, 16 * P)
        a = p.mmap(None, 16 * P, RW, ANON)
        p.munmap(a + 4 * P, 4 * P)
        rec += [s.call(lambda: p.mlock(a, 16 * P)), s.vma(a + 12 * P), s.call(lambda: p.munlock(a, 16 * P))]
        b = p.mmap(None, 16 * P, RW, ANON)
        rec += [s.call(lambda: p.mlock2(b, P, 2)), s.call(lambda: p.mlockall(0)),
                s.call(lambda: p.mlockall(pl.MCL_ONFAULT)), s.call(lambda: p.mlockall(8)),
                s.call(lambda: p.mlock(b, 0)), s.call(lambda: p.mlock(b, -4096)),
                s.call(lambda: p.mlock(b + 1, 1)), s.vma(b)]
        p.munlock(b, P)
        c = p.mmap(None, 2 * MiB, RW, ANON)  # 2 MiB-aligned: thp_get_unmapped_area()
        p.madvise(c, 2 * MiB, pl.MADV_HUGEPAGE)
        rec += [c % (2 * MiB), s.call(lambda: p.mlock(c, 2 * MiB)), s.vma(c)]
        d = p.mmap(None, 16 * P, pl.PROT_READ, ANON)
        p.mlock(d, 16 * P)  # the zero page, read-only
        rec += [s.call(lambda: p.mprotect(d, 16 * P, RW)), s.call(lambda: p.touch(d, 16 * P, write=True))]
        return rec

    rec = both(real, story)
    assert rec[0] == ("ok", 16, 0) and rec[1] == (0, True)
    assert rec[2] == ("ENOMEM", 0, 0) and rec[3] == (0, True) and rec[4] == 128
    assert rec[5] == ("ENOMEM", 0, 0) and rec[7][0] == "ENOMEM"
    assert [r[0] for r in rec[8:14]] == ["EINVAL", "EINVAL", "EINVAL", "EINVAL", "ok", "EINVAL"]
    assert rec[14] == ("ok", 1, 0) and rec[15] == (4, True)
    assert rec[16:19] == [0, ("ok", 1, 0), (2048, True)]
    assert rec[19:] == [("ok", 16, 0), ("ok", 0, 0)]  # mprotect_fixup() populates a locked private VMA made writable


def test_mlockall_future_onfault(real):
    def story(s):
        p = s.p
        rec = [s.call(lambda: p.mlockall(pl.MCL_FUTURE | pl.MCL_ONFAULT))]
        r = s.call(lambda: p.mmap(None, 16 * P, RW, ANON))
        rec += [r[1:], s.call(lambda: p.touch(r[0], 16 * P, write=True))]
        p.munlockall()
        rec.append(s.call(lambda: p.mlockall(pl.MCL_FUTURE)))
        r = s.call(lambda: p.mmap(None, 16 * P, RW, ANON))
        p.munlockall()
        rec += [r[1:], s.vma(r[0])]
        return rec

    assert both(real, story) == [("ok", 0, 0), (0, 0), ("ok", 16, 16), ("ok", 0, 0), (16, 0), (0, False)]
