"""First-touch faults with kernel daemons armed on the clock, beside the real kernel (a benchmark, not a test).

64 MiB of fresh private anonymous memory written one byte per page (16,384 first-write faults):
- by the simulator's batched path with no event pending;
- by the same path with a daemon-like periodic event armed (a callback that re-arms itself every
  ``period`` of simulated time, as kswapd, khugepaged, ksmd or the vmstat worker will): the batches run up
  to each event and resume after it;
- by the simulator one fault at a time (what the batched path did before with any event pending);
- by this machine's real kernel (bench/first_touch.c, compiled here with gcc), the same writes.

Prints one JSON line per measurement (best of ``--repeats`` runs) and a summary of the ratios to the kernel.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pagelab as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_mmu import bench_first_touch_kernel  # noqa: E402

HERE = Path(__file__).resolve().parent
# Periods of simulated time for the armed daemon: the scheduler tick at HZ=1000, ksmd's default
# sleep_millisecs (20 ms), and one event per 100 us to stress the path.
PERIODS_NS = {"tick 1 ms": 1_000_000, "ksmd 20 ms": 20_000_000, "100 us": 100_000}


def first_touch_sim(mib: int, batch: bool, period_ns: int | None, repeats: int) -> dict[str, object]:
    """Seconds (best of ``repeats``) for the simulator to take ``mib`` MiB of first writes."""
    best, faults, runs, sim_ns = 1e9, 0, 0, 0
    for _ in range(repeats):
        m = pl.Machine(ram=f"{2 * mib + 64}MiB", seed=0, batch_faults=batch)
        p = m.spawn("touch")
        a = p.mmap(None, mib * pl.MiB, pl.PROT_READ | pl.PROT_WRITE, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS)
        daemon = None
        if period_ns is not None:
            daemon = m.clock.every(m.clock.ns_to_cycles(period_ns), lambda: None, name="kdaemon")
        start_ns = m.now_ns
        t0 = time.perf_counter()
        p.touch(a, mib * pl.MiB, write=True)
        best = min(best, time.perf_counter() - t0)
        faults = p.rusage().ru_minflt
        runs = daemon.runs if daemon is not None else 0
        sim_ns = m.now_ns - start_ns
    label = "no event" if period_ns is None else f"daemon every {period_ns / 1e6:g} ms"
    return {"engine": "pagelab " + ("batched" if batch else "one fault at a time"), "events": label,
            "mib": mib, "faults": faults, "daemon_runs": runs, "simulated_ms": round(sim_ns / 1e6, 3),
            "seconds": round(best, 6), "faults_per_s": round(faults / best)}


def first_touch_kernel(mib: int, repeats: int) -> dict[str, object] | None:
    """The real kernel doing the same writes (bench_mmu's runner; None without a C compiler or Linux)."""
    r: dict[str, object] | None = bench_first_touch_kernel(mib, repeats)
    if r is not None:
        r["events"] = "the host's own"
    return r


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mib", type=int, default=64, help="MiB of first writes (default 64)")
    ap.add_argument("--repeats", type=int, default=5, help="runs per measurement; the best is kept (default 5)")
    a = ap.parse_args(argv)
    if a.mib < 1 or a.repeats < 1:
        ap.error("--mib and --repeats must be at least 1")
    first_touch_sim(4, True, 1_000_000, 1)  # load the compiled code before timing
    results: list[dict[str, object]] = []
    runs = [first_touch_sim(a.mib, True, None, a.repeats)]
    runs += [first_touch_sim(a.mib, True, ns, a.repeats) for ns in PERIODS_NS.values()]
    runs += [first_touch_sim(a.mib, False, 1_000_000, 1), first_touch_kernel(a.mib, a.repeats)]
    for r in runs:
        if r is not None:
            print(json.dumps(r), flush=True)
            results.append(r)
    kernel = next((r for r in results if r["engine"] == "linux"), None)
    print("\nsummary:")
    for r in results:
        line = f"  {r['engine']:30s} {r['events']:24s} {float(r['faults_per_s']) / 1e6:7.3f} M faults/s"  # type: ignore[arg-type]
        if r is not kernel and kernel is not None:
            line += f"   ratio to the kernel {float(r['faults_per_s']) / float(kernel['faults_per_s']):.2f}"  # type: ignore[arg-type]
        if r.get("daemon_runs"):
            line += f"   ({r['daemon_runs']} daemon runs in {r['simulated_ms']} simulated ms)"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
