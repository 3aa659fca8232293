"""Compare a scenario's counters on the real kernel and on the simulator, with stated tolerances.

Every counter these scenarios produce is deterministic on the host (fault counts, Rss, resident pages,
the signal and where it hit), so the tolerance is exact; a counter that the kernel lets vary run to run
gets a band here, with the reason, when such scenarios arrive (readahead timing, khugepaged).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

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


def compare(scenario: str, real: dict[str, dict[str, Any]], sim: dict[str, dict[str, Any]]) -> list[Row]:
    rows = []
    for phase in list(real) + [p for p in sim if p not in real]:
        r, s = real.get(phase, {}), sim.get(phase, {})
        for counter in list(r) + [c for c in s if c not in r]:
            rv, sv = r.get(counter, "-"), s.get(counter, "-")
            rows.append(Row(scenario, phase, counter, rv, sv, EXACT, rv == sv))
    return rows


def render_table(rows: list[Row]) -> str:
    head = ("scenario", "phase", "counter", "real", "simulated", "verdict")
    body = [(r.scenario, r.phase, r.counter, str(r.real), str(r.simulated),
             ("ok" if r.ok else "MISS") + f" ({r.tolerance})") for r in rows]
    # Column widths follow the cells, capped so one long value (VmFlags of a split VMA) widens only its row.
    widths = [min(max(len(x[i]) for x in [head, *body]), 40) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" if i < 3 else f"{{:>{w}}}" for i, w in enumerate(widths))
    lines = [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*b) for b in body]
    return "\n".join(lines)


def rows_as_dicts(rows: list[Row]) -> list[dict[str, Any]]:
    return [asdict(r) for r in rows]
