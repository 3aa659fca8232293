"""Host probing reads files only: /proc/swaps parsed as mm/swapfile.c prints it."""

from __future__ import annotations

from pagelab.real.probe import probe_host, swap_devices

SWAPS = """Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority
/dev/zram0                              partition\t8388604\t\t1024\t\t100
/var/swap\\040file                       file\t\t2097148\t\t0\t\t-2
"""


def test_swap_devices_parses_zram_and_files():
    assert swap_devices(SWAPS) == [
        {"name": "/dev/zram0", "type": "partition", "size_kB": 8388604, "used_kB": 1024, "priority": 100},
        {"name": "/var/swap file", "type": "file", "size_kB": 2097148, "used_kB": 0, "priority": -2}]
    assert swap_devices("Filename\tType\tSize\tUsed\tPriority\n") == []
    assert swap_devices("") == []


def test_probe_records_swap_and_cpus():
    facts = probe_host()
    assert isinstance(facts["swaps"], list) and facts["nr_cpus"] >= 1
    assert facts["SwapTotal_kB"] == sum(d["size_kB"] for d in facts["swaps"])  # meminfo and /proc/swaps agree
