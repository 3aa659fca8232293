"""MemTotal and /proc/PID/statm held against this machine's kernel."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import pagelab as pl
from pagelab.observe.parse import parse_meminfo, parse_statm
from pagelab.real import Machine as RealMachine
from pagelab.real.probe import probe_host

pytestmark = [pytest.mark.real,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs a Linux kernel")]
RW, ANON, SHARED = pl.PROT_READ | pl.PROT_WRITE, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS, pl.MAP_SHARED | pl.MAP_ANONYMOUS


@pytest.fixture(scope="module")
def real():
    with RealMachine() as m:
        yield m


def _outcome(p, length: int) -> str:
    try:
        a = p.mmap(None, length, RW, ANON)
    except OSError as exc:
        return f"errno {exc.errno}"
    p.munmap(a, length)
    return "mapped"


def test_memtotal_is_the_hosts_and_an_mmap_of_exactly_it_is_admitted_alike(real):
    host = probe_host()
    if host["SwapTotal_kB"]:
        pytest.skip("this host has swap: overcommit 0 admits RAM + swap, and the simulator models no swap")
    sim = pl.Machine.from_host()
    memtotal = parse_meminfo(Path("/proc/meminfo").read_text())["MemTotal"]
    assert parse_meminfo(sim.read("/proc/meminfo"))["MemTotal"] == memtotal
    rp, sp = real.spawn("memtotal"), sim.spawn("memtotal")
    try:
        for length in (memtotal * 1024, memtotal * 1024 + 4096):
            # overcommit 0 (OVERCOMMIT_GUESS) admits up to totalram_pages: exactly MemTotal maps, one page more
            # does not; other modes give their own answers, copied by from_host()
            assert _outcome(rp, length) == _outcome(sp, length), length
        if host["/proc/sys/vm/overcommit_memory"] == 0:
            assert _outcome(sp, memtotal * 1024) == "mapped" and _outcome(sp, memtotal * 1024 + 4096) == "errno 12"
    finally:
        rp.exit()


def _statm_deltas(m) -> list[dict[str, int]]:
    p = m.spawn("statm")
    snaps = [parse_statm(m.read(f"/proc/{p.pid}/statm"))]
    a = p.mmap(None, 32 * 4096, RW, ANON)
    s = p.mmap(None, 8 * 4096, RW, SHARED)
    snaps.append(parse_statm(m.read(f"/proc/{p.pid}/statm")))
    p.touch(a, 16 * 4096, write=True)
    p.touch(a + 16 * 4096, 8 * 4096)  # zero page: not resident in statm
    p.touch(s, 4 * 4096)
    p.touch(s + 4 * 4096, 2 * 4096, write=True)
    snaps.append(parse_statm(m.read(f"/proc/{p.pid}/statm")))
    p.munmap(a, 8 * 4096)
    p.mprotect(a + 8 * 4096, 8 * 4096, pl.PROT_READ)  # no longer writable: no longer data
    snaps.append(parse_statm(m.read(f"/proc/{p.pid}/statm")))
    p.exit()
    return [{k: after[k] - before[k] for k in before} for before, after in zip(snaps, snaps[1:], strict=False)]


def test_statm_moves_as_the_kernels(real):
    """The real child's totals include its interpreter; what each call changes is deterministic."""
    real_deltas = _statm_deltas(real)
    assert real_deltas == _statm_deltas(pl.Machine(ram="256MiB", seed=0))
    assert real_deltas[0] == {"size": 40, "resident": 0, "shared": 0, "text": 0, "lib": 0, "data": 32, "dt": 0}
    assert real_deltas[1]["resident"] == 22 and real_deltas[1]["shared"] == 6
    assert real_deltas[2]["size"] == -8 and real_deltas[2]["data"] == -16


def test_statm_agrees_with_status_on_the_host(real):
    p = real.spawn("statm-status")
    try:
        statm = parse_statm(real.read(f"/proc/{p.pid}/statm"))
        status = Path(f"/proc/{p.pid}/status").read_text()
        vm = {line.split(":")[0]: int(line.split()[1]) for line in status.splitlines() if line.endswith(" kB")}
        assert statm["size"] * 4 == vm["VmSize"] and statm["data"] * 4 == vm["VmData"] + vm["VmStk"]
        assert statm["shared"] * 4 == vm["RssFile"] + vm["RssShmem"]
    finally:
        p.exit()
