"""Machine.from_host() with a faked probe: swap, THP and MemTotal as the host reports them."""

from __future__ import annotations

import pytest

import pagelab as pl
from pagelab.errors import NotModelled
from pagelab.observe.parse import parse_meminfo

ZRAM = [{"name": "/dev/zram0", "type": "partition", "size_kB": 8388604, "used_kB": 0, "priority": 100}]


def _host(**changes):
    facts = {"kernel": "6.18.0", "machine": "x86_64", "page_size": 4096, "MemTotal_kB": 262144, "SwapTotal_kB": 0,
             "swaps": [], "nr_cpus": 2, "/proc/sys/vm/overcommit_memory": 0,
             "/sys/kernel/mm/transparent_hugepage/enabled": "madvise"}
    facts.update(changes)
    return lambda: dict(facts)


def test_memtotal_is_the_hosts_to_the_kilobyte(monkeypatch):
    monkeypatch.setattr("pagelab.real.probe.probe_host", _host(MemTotal_kB=262140))  # not a MiB multiple
    m = pl.Machine.from_host()
    assert parse_meminfo(m.read("/proc/meminfo"))["MemTotal"] == 262140
    assert m.totalram_pages == 262140 // 4


def test_a_host_with_swap_needs_the_flag(monkeypatch):
    monkeypatch.setattr("pagelab.real.probe.probe_host", _host(SwapTotal_kB=8388604, swaps=ZRAM))
    with pytest.raises(NotModelled, match=r"8388604 kB of swap \(/dev/zram0\).*without_swap=True"):
        pl.Machine.from_host()
    m = pl.Machine.from_host(without_swap=True)
    assert m.host_config["SwapTotal_kB"] == 8388604 and m.host_config["swaps"] == ZRAM
    assert parse_meminfo(m.read("/proc/meminfo"))["SwapTotal"] == 0  # the machine itself has none
    p = m.spawn("runs")
    a = p.mmap(None, 1 << 20, pl.PROT_READ | pl.PROT_WRITE, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS)
    p.touch(a, 1 << 20, write=True)
    assert p.rusage().ru_minflt == 256


def test_host_thp_always_is_copied(monkeypatch):
    monkeypatch.setattr("pagelab.real.probe.probe_host",
                        _host(**{"/sys/kernel/mm/transparent_hugepage/enabled": "always"}))
    m = pl.Machine.from_host(ram="64MiB")
    assert m.settings.transparent_hugepage.enabled == "always"
    assert m.host_config["/sys/kernel/mm/transparent_hugepage/enabled"] == "always"



def test_the_callers_thp_and_settings_win_over_the_hosts(monkeypatch):
    """from_host(thp=..., settings=...) once failed with "got multiple values for keyword argument"."""
    t = "/sys/kernel/mm/transparent_hugepage/"
    monkeypatch.setattr("pagelab.real.probe.probe_host", _host(**{t + "enabled": "always", t + "use_zero_page": 1}))
    m = pl.Machine.from_host(ram="64MiB", thp="never", settings={t + "use_zero_page": 0})
    assert (m.settings.transparent_hugepage.enabled, m.settings.transparent_hugepage.use_zero_page) == ("never", 0)
    assert m.settings.vm.overcommit_memory == 0  # the host's, still
    with pytest.raises(pl.SettingError, match="EINVAL"):
        pl.Machine.from_host(ram="64MiB", settings={t + "enabled": "bad"})
    with pytest.raises(TypeError, match="settings must be a dict"):
        pl.Machine.from_host(ram="64MiB", settings=[1])  # type: ignore[arg-type]


ZEN3 = {"vendor_id": "AuthenticAMD", "cpu_family": 25, "model": 1, "model_name": "AMD EPYC"}


def test_the_cpu_model_is_the_hosts_when_one_stands_for_it(monkeypatch):
    monkeypatch.setattr("pagelab.real.probe.probe_host", _host(cpu=ZEN3))
    assert pl.Machine.from_host(ram="64MiB").cpu.name == "zen3"
    assert pl.Machine.from_host(ram="64MiB", cpu="nehalem").cpu.name == "nehalem"  # the caller's choice wins
    assert pl.Machine(ram="64MiB").cpu.name == "skylake"  # Machine() itself does not look at the host
    monkeypatch.setattr("pagelab.real.probe.probe_host",
                        _host(cpu={**ZEN3, "cpu_family": 26, "model": 0x44}))  # Zen 5: no model of it
    assert pl.Machine.from_host(ram="64MiB").cpu.name == "skylake"
    monkeypatch.setattr("pagelab.real.probe.probe_host", _host(cpu=None))  # no /proc/cpuinfo, or not x86
    m = pl.Machine.from_host(ram="64MiB")
    assert m.cpu.name == "skylake" and m.host_config["cpu"] is None
