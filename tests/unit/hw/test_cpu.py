"""CPU models: valid geometry, where each keeps 2 MiB translations, and a source for every number."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pagelab.hw.cpu import CPU_MODELS, CpuModel, TlbLevel, TlbShare, get_cpu_model
from pagelab.hw.tlb import Tlb


def test_each_model_says_whether_its_stlb_holds_2m_entries_and_how_many():
    assert {name: m.stlb_2m_entries for name, m in CPU_MODELS.items()} == {
        "skylake": 1536, "skylake-nopcid": 1536, "nehalem": 0, "zen3": 2048, "tiny": 16}
    assert {name: m.l1_2m_entries for name, m in CPU_MODELS.items()} == {
        "skylake": 32, "skylake-nopcid": 32, "nehalem": 32, "zen3": 64, "tiny": 2}


def test_every_geometry_number_has_a_source():
    for m in CPU_MODELS.values():
        levels = [m.l1_dtlb_4k, m.stlb] + [lv for lv in (m.l1_dtlb_2m, m.stlb_2m) if lv is not None]
        assert all(lv.source for lv in levels), m.name
        assert m.sources
        text = m.describe()
        assert f"{m.stlb.entries} entries" in text and m.l1_dtlb_4k.source in text


@pytest.mark.parametrize("entries, ways", [(48, 4), (64, 0), (0, 4), (10, 4)])
def test_a_geometry_that_is_not_whole_power_of_two_sets_is_refused(entries, ways):
    with pytest.raises(ValueError, match="TLB geometry"):
        TlbLevel(entries, ways)


def test_a_2m_mode_must_agree_with_its_geometry():
    sky = get_cpu_model("skylake")
    fields = {f: getattr(sky, f) for f in CpuModel.__dataclass_fields__}
    with pytest.raises(ValueError, match="STLB 2 MiB mode separate"):
        CpuModel(**{**fields, "stlb_2m_mode": TlbShare.SEPARATE})
    with pytest.raises(ValueError, match="L1 dTLB 2 MiB mode shared"):
        CpuModel(**{**fields, "l1_2m": TlbShare.SHARED})  # with a separate geometry still given
    with pytest.raises(ValueError, match="caches 2 MiB translations in its L1"):
        CpuModel(**{**fields, "l1_dtlb_2m": None, "l1_2m": TlbShare.NONE})
    separate = CpuModel(**{**fields, "stlb_2m_mode": TlbShare.SEPARATE, "stlb_2m": TlbLevel(16, 4, "test")})
    assert separate.stlb_2m_entries == 16
    assert "STLB 2 MiB: 16 entries, 4-way  [test]" in separate.describe()
    # its own rows after the others: L1 4K 16 sets, L1 2M 8, STLB 128, then 4 sets of 4 ways
    assert Tlb(separate).geom.tolist() == [[0, 16, 4], [16, 8, 4], [24, 128, 12], [152, 4, 4]]


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(ValueError, match="known: nehalem, skylake"):
        get_cpu_model("pentium")


@pytest.mark.real
def test_zen3_l2_dtlb_matches_this_hosts_cpuinfo():
    """/proc/cpuinfo's 'TLB size' on AMD is the L2 DTLB plus the L2 ITLB for 4 KiB pages, from CPUID
    Fn8000_0006 EBX (arch/x86/kernel/cpu/common.c: cpu_detect_cache_sizes); the L2 ITLB is 512 entries
    (EBX[11:0] = 0x200 on this host)."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    family = re.search(r"^cpu family\s*:\s*(\d+)", info, re.M)
    model = re.search(r"^model\s*:\s*(\d+)", info, re.M)
    if "AuthenticAMD" not in info or not family or not model or (family[1], model[1]) != ("25", "1"):
        pytest.skip("not an AMD family 19h model 01h host")
    tlb_size = re.search(r"^TLB size\s*:\s*(\d+) 4K pages", info, re.M)
    assert tlb_size is not None
    assert int(tlb_size[1]) == get_cpu_model("zen3").stlb.entries + 512


@pytest.mark.parametrize("vendor, family, model, expected", [
    ("AuthenticAMD", 25, 0x01, "zen3"),  # EPYC Milan (this host)
    ("AuthenticAMD", 25, 0x21, "zen3"),  # Ryzen 5000 (Vermeer)
    ("AuthenticAMD", 25, 0x50, "zen3"),  # Ryzen 5000 APU (Cezanne)
    ("AuthenticAMD", 25, 0x11, None),  # EPYC Genoa: Zen 4
    ("AuthenticAMD", 23, 0x31, None),  # EPYC Rome: Zen 2
    ("GenuineIntel", 6, 0x55, "skylake"),  # Skylake-SP, Cascade Lake
    ("GenuineIntel", 6, 0x9E, "skylake"),  # Kaby Lake, Coffee Lake
    ("GenuineIntel", 6, 0xA6, "skylake"),  # Comet Lake
    ("GenuineIntel", 6, 0x1A, "nehalem"),
    ("GenuineIntel", 6, 0x2E, "nehalem"),
    ("GenuineIntel", 6, 0x25, None),  # Westmere
    ("GenuineIntel", 6, 0x6A, None),  # Ice Lake-SP
    ("GenuineIntel", 15, 0x55, None),  # the model number in another family
    ("HygonGenuine", 24, 0x01, None),
])
def test_x86_match_cpu_names_the_model_that_stands_for_a_cpu(vendor, family, model, expected):
    from pagelab.hw.cpu import X86_CPU_IDS, x86_match_cpu

    assert x86_match_cpu(vendor, family, model) == expected
    assert all(row.cpu_model in CPU_MODELS and row.source for row in X86_CPU_IDS)
