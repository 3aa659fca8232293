"""File faults through mmap, the simulator beside the real kernel (a benchmark, not a test).

Two phases on one file (1 GiB by default, ``--size``), mapped MAP_SHARED PROT_READ, one load per page:
- cold sequential: the file just made cold (fsync + POSIX_FADV_DONTNEED), pages read in ascending order
  (readahead, fault-around, PMD-mapped large folios);
- warm random: a fresh mapping of the now cached file, pages read in a seeded random order.

The simulator is ``Machine.from_host()`` (its disk calibrated from this host's: pagelab.real.diskcal), or
``Machine(ram=..., settings={read_ahead_kb: 8192})`` with ``--no-host``; the real kernel is
pagelab.real.Machine (the file in its private root under /var/tmp, made cold by m.fs.evict). Each phase
prints one JSON line per side: file faults (ru_minflt + ru_majflt), host wall seconds, file faults per
host second, and the elapsed time of the phase: simulated (m.now_ns) on the simulator; on the real
kernel the wall time of the phase less that of the same phase run again with every page mapped (the
pipe round trip to the child and the access loop, no fault), with utime+stime of the child's rusage.
A summary gives the rate ratio and simulated / real elapsed (issue #8: the cold scan's simulated I/O
time within a factor of 2 of the real).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import numpy as np

import pagelab as pl
import pagelab.real as real
from pagelab.constants import MAP_SHARED, PROT_READ

MiB = 1 << 20
PAGE = 4096
PATH = "/bench/file"


def _size(text: str) -> int:
    units = {"k": 1 << 10, "m": MiB, "g": 1 << 30}
    t = text.strip().lower().removesuffix("ib").removesuffix("b")
    n = int(t[:-1]) * units[t[-1]] if t and t[-1] in units else int(t)
    if n <= 0 or n % (2 * MiB):
        raise argparse.ArgumentTypeError(f"size must be a positive multiple of 2 MiB, got {text!r}")
    return n


def _order(size: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).permutation(size // PAGE).astype(np.int64) * PAGE


def _faults(r0: Any, r1: Any) -> tuple[int, int]:
    return r1.ru_minflt - r0.ru_minflt, r1.ru_majflt - r0.ru_majflt


def _row(side: str, phase: str, minflt: int, majflt: int, wall: float, **extra: Any) -> dict[str, Any]:
    faults = minflt + majflt
    return {"side": side, "phase": phase, "minflt": minflt, "majflt": majflt, "faults": faults,
            "wall_s": round(wall, 4), "faults_per_s": round(faults / wall) if wall > 0 else None, **extra}


def run_sim(size: int, seed: int, host: bool, advice: int | None = None) -> list[dict[str, Any]]:
    """The two phases on the simulator; host wall time and simulated elapsed of each."""
    if host:
        m = pl.Machine.from_host(ram=max(2 * size + 512 * MiB, 1 << 30), without_swap=True)
    else:
        m = pl.Machine(ram=max(2 * size + 512 * MiB, 1 << 30),
                       settings={"/sys/block/vda/queue/read_ahead_kb": 8192}, disk="virtio")
    m.fs.create(PATH, size)
    rows = []
    for phase in ("cold sequential", "warm random"):
        p = m.spawn("bench")
        fd = p.open(PATH, os.O_RDONLY)
        a = p.mmap(None, size, PROT_READ, MAP_SHARED, fd, 0)
        if advice is not None:
            p.madvise(a, size, advice)
        r0, s0, t0 = p.rusage(), m.now_ns, time.perf_counter()
        if phase == "cold sequential":
            p.touch(a, size)
        else:
            p.access(_order(size, seed) + a)
        wall = time.perf_counter() - t0
        mi, ma = _faults(r0, p.rusage())
        rows.append(_row("pagelab", phase, mi, ma, wall, simulated_ms=round((m.now_ns - s0) / 1e6, 3),
                         disk=m.blkdev.model.name, seq_read_MBps=round(m.blkdev.model.seq_read_bps / 1e6),
                         rand_read_4k_us=round(m.blkdev.model.rand_read_4k_ns / 1e3, 1)))
        p.exit()
    return rows


def run_real(size: int, seed: int, advice: int | None = None) -> list[dict[str, Any]]:
    """The two phases on this host's kernel (pagelab.real.Machine), wall time in the parent + child rusage."""
    rows = []
    with real.Machine() as m:
        m.fs.create(PATH, size)
        m.fs.evict(PATH)
        for phase in ("cold sequential", "warm random"):
            p = m.spawn("bench")
            fd = p.open(PATH, os.O_RDONLY)
            a = p.mmap(None, size, PROT_READ, MAP_SHARED, fd, 0)
            ops: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
            if advice is not None:
                ops.append(("madvise", (a, size, advice), {}))
            addrs = _order(size, seed) + a
            ops.append(("touch", (a, size), {}) if phase == "cold sequential" else ("access", (addrs,), {}))
            t0 = time.perf_counter()
            r0, r1 = p.run_phase(ops)
            wall = time.perf_counter() - t0
            # the same phase again, every page now mapped: the pipe round trip and the loop itself, no fault
            t0 = time.perf_counter()
            p.run_phase(ops)
            base = time.perf_counter() - t0
            mi, ma = _faults(r0, r1)
            cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
            rows.append(_row("linux", phase, mi, ma, max(wall - base, 1e-6),
                             elapsed_ms=round(max(wall - base, 1e-6) * 1e3, 3), cpu_ms=round(cpu * 1e3, 3),
                             phase_wall_ms=round(wall * 1e3, 3), unfaulted_wall_ms=round(base * 1e3, 3)))
            p.exit()
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=_size, default=1 << 30, help="file size (default 1GiB)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random page order")
    ap.add_argument("--no-host", action="store_true",
                    help="simulate Machine(settings={read_ahead_kb: 8192}, disk='virtio') instead of from_host()")
    ap.add_argument("--madv-random", action="store_true", help="MADV_RANDOM on both mappings")
    args = ap.parse_args(argv)
    advice = pl.MADV_RANDOM if args.madv_random else None
    sim = run_sim(args.size, args.seed, not args.no_host, advice)
    rl = run_real(args.size, args.seed, advice)
    for s, r in zip(sim, rl, strict=True):
        print(json.dumps(s))
        print(json.dumps(r))
    for s, r in zip(sim, rl, strict=True):
        rate = (f"{s['faults_per_s'] / r['faults_per_s']:.3g}" if s["faults_per_s"] and r["faults_per_s"]
                else "n/a")
        print(f"{s['phase']:16s} {args.size // MiB} MiB: faults pagelab {s['faults']} linux {r['faults']}; "
              f"faults/s pagelab {s['faults_per_s']} linux {r['faults_per_s']} (ratio {rate}); "
              f"elapsed simulated {s['simulated_ms']} ms vs real {r['elapsed_ms']} ms "
              f"(x{s['simulated_ms'] / r['elapsed_ms']:.2f}); pagelab wall {s['wall_s']} s")


if __name__ == "__main__":
    main()
