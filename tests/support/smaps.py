"""smaps figures of one VMA, as the tests of either backend read them (pagelab.observe.parse.parse_smaps)."""

from __future__ import annotations

from typing import Any

from pagelab.observe.parse import parse_smaps


def smaps_field(m: Any, p: Any, addr: int, field: str) -> int:
    """The kB value of ``field`` in the smaps entry of the VMA holding ``addr`` (AssertionError if none)."""
    for vma in parse_smaps(m.read(f"/proc/{p.pid}/smaps")):
        if vma["start"] <= addr < vma["end"] and field in vma:
            return int(vma[field])
    raise AssertionError(f"no {field} for {addr:#x}")
