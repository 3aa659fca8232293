"""The buddy allocator's sizes and text held against this machine's kernel: /proc/zoneinfo and /proc/buddyinfo."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import pagelab as pl
from pagelab.mm.page_alloc import MIN_PERCPU_PAGELIST_HIGH_FRACTION, zone_batchsize, zone_highsize, zone_watermarks

pytestmark = [pytest.mark.real,
              pytest.mark.skipif(not Path("/proc/zoneinfo").exists(), reason="needs /proc/zoneinfo")]


def host_zones() -> list[dict[str, object]]:
    """Each zone of /proc/zoneinfo: name, min/low/high, managed, and its pagesets' (batch, high_min, high_max)."""
    zones: list[dict[str, object]] = []
    for block in re.split(r"^Node \d+, zone\s+", Path("/proc/zoneinfo").read_text(), flags=re.M)[1:]:
        name = block.split()[0]
        field = {k: int(v) for k, v in re.findall(r"^\s+(min|low|high|managed)\s+(\d+)$", block, flags=re.M)}
        pagesets = re.findall(r"batch:\s+(\d+)\s+high_min:\s+(\d+)\s+high_max:\s+(\d+)", block)
        zones.append({"name": name, **field, "pagesets": [tuple(map(int, p)) for p in pagesets]})
    return zones


def test_zone_batch_and_high_match_the_hosts():
    """zone_batchsize() and zone_highsize() give every populated zone's pageset batch, high_min and high_max
    from its managed pages, low watermark and this host's CPU count."""
    zones = [z for z in host_zones() if z["managed"] and z["pagesets"]]
    assert zones
    for z in zones:
        cpus = len(z["pagesets"])
        batch = zone_batchsize(z["managed"])
        high_min = zone_highsize(z["managed"], z["low"], batch, cpus, 0)
        high_max = zone_highsize(z["managed"], z["low"], batch, cpus, MIN_PERCPU_PAGELIST_HIGH_FRACTION)
        assert set(z["pagesets"]) == {(batch, high_min, high_max)}, z["name"]


def test_zone_watermarks_match_the_hosts():
    """__setup_per_zone_wmarks() over the host's lowmem zones, min_free_kbytes and watermark_scale_factor."""
    kbytes = int(Path("/proc/sys/vm/min_free_kbytes").read_text())
    scale = int(Path("/proc/sys/vm/watermark_scale_factor").read_text())
    zones = [z for z in host_zones() if z["name"] in ("DMA", "DMA32", "Normal") and z["managed"]]
    lowmem = sum(int(z["managed"]) for z in zones)
    for z in zones:
        assert zone_watermarks(z["managed"], lowmem, kbytes, scale) == (z["min"], z["low"], z["high"]), z["name"]


def test_buddyinfo_lines_have_the_hosts_shape():
    """The simulator's /proc/buddyinfo line and the host's have the same layout: the same prefix width, eleven
    right-aligned 6-column counts, each followed by a space."""
    shape = re.compile(r"Node \d+, zone [ A-Za-z0-9]{8} (( {0,5}\d{1,6}) ){11}")
    host = Path("/proc/buddyinfo").read_text().splitlines()
    sim = pl.Machine(ram="64MiB", seed=0).read("/proc/buddyinfo").splitlines()
    assert host and all(shape.fullmatch(line) and len(line) == 22 + 7 * 11 for line in host + sim)
