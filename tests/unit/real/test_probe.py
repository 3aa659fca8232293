"""Host probing reads files only: /proc/swaps parsed as mm/swapfile.c prints it."""

from __future__ import annotations

from pagelab.real.probe import cpu_identity, cpu_model_of, probe_host, swap_devices

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


CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 1
model name\t: AMD EPYC 7763 64-Core Processor
flags\t\t: fpu vme pcid

processor\t: 1
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 85
"""


def test_cpu_identity_reads_the_first_cpu_of_cpuinfo():
    ident = cpu_identity(CPUINFO)
    assert ident == {"vendor_id": "AuthenticAMD", "cpu_family": 25, "model": 1,
                     "model_name": "AMD EPYC 7763 64-Core Processor"}
    assert cpu_model_of(ident) == "zen3"
    assert cpu_identity("processor\t: 0\nBogoMIPS\t: 48.00\nCPU implementer\t: 0x41\n") is None  # arm64
    assert cpu_identity("") is None and cpu_model_of(None) is None
    assert cpu_model_of({"vendor_id": "GenuineIntel", "cpu_family": 6, "model": 85, "model_name": ""}) == "skylake"


def test_probe_records_the_cpu():
    ident = probe_host()["cpu"]
    assert ident is None or {"vendor_id", "cpu_family", "model", "model_name"} <= set(ident)
