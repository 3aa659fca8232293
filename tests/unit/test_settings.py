"""Tunables: Linux paths and defaults, EINVAL-style validation, override and restore."""

from __future__ import annotations

import pytest

import pagelab as pl


def test_paths_and_attributes_read_the_same_value():
    s = pl.Settings()
    assert s["/proc/sys/vm/max_map_count"] == s.vm.max_map_count == 65530
    assert s.transparent_hugepage.enabled == "madvise"


def test_bad_values_are_rejected_like_the_kernel_store_handlers():
    s = pl.Settings()
    with pytest.raises(pl.SettingError, match="EINVAL"):
        s["/sys/kernel/mm/transparent_hugepage/enabled"] = "sometimes"
    with pytest.raises(pl.SettingError, match="EINVAL"):
        s.vm.overcommit_memory = 3
    with pytest.raises(pl.SettingError):
        s["/proc/sys/vm/no_such_file"] = 1



@pytest.mark.parametrize("text", ["65_530", "\u0661", "1.0", "0x10", "", "1 2"])
def test_integers_are_ascii_decimal_as_the_kernel_parses_them(text: str) -> None:
    """kstrtoul() and proc_dointvec() take ASCII digits only: Python's int() would read "65_530" as 65530
    and an Arabic-Indic one as 1, which the kernel refuses."""
    s = pl.Settings()
    with pytest.raises(pl.SettingError, match="EINVAL"):
        s.vm.max_map_count = text
    assert s.vm.max_map_count == 65530
    s.vm.max_map_count = "+70000\n"
    assert s.vm.max_map_count == 70000


def test_override_restores():
    s = pl.Settings()
    with s.override({"/proc/sys/vm/overcommit_memory": 2}):
        assert s.vm.overcommit_memory == 2
    assert s.vm.overcommit_memory == 0


def test_machine_renders_tunables_as_sysfs_text():
    m = pl.Machine(ram="64MiB", thp="always")
    assert m.read("/sys/kernel/mm/transparent_hugepage/enabled") == "[always] madvise never\n"
    assert m.read("/proc/sys/vm/mmap_min_addr") == "4096\n"


def test_strict_overcommit_limits_commit():
    m = pl.Machine(ram="64MiB", settings={"/proc/sys/vm/overcommit_memory": 2})
    p = m.spawn("commit")
    with pytest.raises(OSError) as exc:
        p.mmap(None, 48 * pl.MiB, pl.PROT_READ | pl.PROT_WRITE, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS)
    assert exc.value.errno == 12
    p.mmap(None, 16 * pl.MiB, pl.PROT_READ | pl.PROT_WRITE, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS)
    assert "Committed_AS:      16384 kB" in m.read("/proc/meminfo")


def test_thp_mode_files_take_the_word_exactly_as_sysfs_streq() -> None:
    from pagelab.settings import SettingError, Settings

    s = Settings()
    s["/sys/kernel/mm/transparent_hugepage/enabled"] = "always\n"  # what echo writes
    assert s["/sys/kernel/mm/transparent_hugepage/enabled"] == "always"
    for bad in (" always", "always ", "Always", "always\n\n"):
        with pytest.raises(SettingError):
            s["/sys/kernel/mm/transparent_hugepage/enabled"] = bad
