"""Compare a scenario's counters on the real kernel and on the simulator, with stated tolerances.

Almost every counter these scenarios produce is deterministic on the host (fault counts, Rss, resident
pages, the signal and where it hit), so the tolerance is exact. Where the kernel lets a value vary with
what else runs on the host, the simulator reports a ``Band`` naming why (LazyFree after MADV_FREE: the
per-CPU lru_lazyfree batch, see workload/scenario.py), and the real value must lie inside it. A
scenario may also declare a band for a counter (``Scenario.bands``: the range measured over repeated
real runs where readahead timing varies, e.g. a cold file's fault count); then both the real and the
simulated value must lie inside it.

A miss the simulator cannot help, because this host runs something it does not model yet (THP that
may back a region with huge folios, swap that took a region's pages), carries a ``note`` saying so:
it is reported, with its reason, apart from the misses nothing explains.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from ..workload.scenario import Band

EXACT = "exact"


@dataclass(frozen=True, slots=True)
class Row:
    scenario: str
    phase: str
    counter: str
    real: Any
    simulated: Any
    tolerance: str
    ok: bool
    note: str = ""  # why a miss is expected on this host (a setting the simulator does not model yet)


def _swapped_kb(results: dict[str, Any]) -> int:
    return sum(v for k, v in results.items() if k.startswith("Swap[") and isinstance(v, int))


def compare(scenario: str, real: dict[str, dict[str, Any]], sim: dict[str, dict[str, Any]],
            caveat: str = "", bands: dict[tuple[str, str], tuple[int, int, str]] | None = None) -> list[Row]:
    """One Row per (phase, counter) of either side; ``caveat`` annotates this scenario's misses; ``bands``
    ({(phase, counter): (lo, hi, why)}, the scenario's declared bands) widen those counters' tolerance.

    A phase in which the host swapped out some of the scenario's pages (smaps ``Swap`` > 0: memory
    pressure on a host with swap) annotates its misses too, since the simulator models no swap.
    """
    rows = []
    for phase in list(real) + [p for p in sim if p not in real]:
        r, s = real.get(phase, {}), sim.get(phase, {})
        swapped = _swapped_kb(r)
        note = caveat
        if swapped:
            note = "; ".join(filter(None, [f"the host swapped out {swapped} kB of these regions (memory "
                                           "pressure); the simulator models no swap", caveat]))
        for counter in list(r) + [c for c in s if c not in r]:
            rv, sv = r.get(counter, "-"), s.get(counter, "-")
            declared = (bands or {}).get((phase, counter))
            if declared is not None and not isinstance(sv, Band):
                band = Band(sv if isinstance(sv, int) else -1, *declared)
                row = Row(scenario, phase, counter, rv, sv, f"{band.lo}..{band.hi}, {band.why}",
                          band.admits(rv) and band.admits(sv))
            elif isinstance(sv, Band):
                row = Row(scenario, phase, counter, rv, sv.value, f"{sv.lo}..{sv.hi}, {sv.why}", sv.admits(rv))
            else:
                row = Row(scenario, phase, counter, rv, sv, EXACT, rv == sv)
            rows.append(row if row.ok or not note else replace(row, note=note))
    return rows


def render_table(rows: list[Row]) -> str:
    head = ("scenario", "phase", "counter", "real", "simulated", "verdict")
    body = [(r.scenario, r.phase, r.counter, str(r.real), str(r.simulated),
             ("ok" if r.ok else "MISS" if not r.note else "differs") + f" ({r.tolerance})"
             + (" *" if r.note and not r.ok else "")) for r in rows]
    # Column widths follow the cells, capped so one long value (VmFlags of a split VMA) widens only its row.
    widths = [min(max(len(x[i]) for x in [head, *body]), 40) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" if i < 3 else f"{{:>{w}}}" for i, w in enumerate(widths))
    lines = [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*b) for b in body]
    notes = {(r.scenario, r.note) for r in rows if r.note and not r.ok}
    for scenario, note in sorted(notes):
        lines.append(f"* {scenario}: {note}")
    return "\n".join(lines)


def rows_as_dicts(rows: list[Row]) -> list[dict[str, Any]]:
    return [asdict(r) for r in rows]
