"""Machine(): its arguments are checked before anything is allocated, and a machine bigger than this
host can hold is refused at once with the host cost."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import pagelab as pl
import pagelab.machine as machine_mod
from pagelab.errors import NotModelled
from pagelab.hw.physmem import FrameTable

GOOD = {"ram": "16MiB"}


@pytest.fixture
def no_allocation(monkeypatch):
    """Building the frame table fails the test: every bad argument must be refused before it."""
    def boom(*_a, **_k):
        raise AssertionError("Machine() allocated before checking its arguments")
    monkeypatch.setattr(machine_mod, "FrameTable", boom)


@pytest.mark.parametrize(("kwargs", "exc", "words"), [
    ({"disk": "floppy"}, ValueError, ["floppy", "hdd", "ssd", "nvme", "zram"]),
    ({"disk": 3}, TypeError, ["disk", "nvme"]),
    ({"seed": "x"}, TypeError, ["seed", "int"]),
    ({"seed": 1.5}, TypeError, ["seed"]),
    ({"seed": True}, TypeError, ["seed"]),
    ({"thp": "sometimes"}, ValueError, ["always", "madvise", "never"]),
    ({"thp": None}, ValueError, ["always", "madvise", "never"]),
    ({"cpu": "pentium"}, ValueError, ["pentium", "skylake"]),
    ({"cpu": 7}, TypeError, ["cpu", "skylake"]),
    ({"ram": -4096}, ValueError, ["negative"]),
    ({"ram": "-1GiB"}, ValueError, ["negative"]),
    ({"ram": "1.5"}, ValueError, ["whole number of 4 KiB pages"]),
    ({"ram": "1.1GiB"}, ValueError, ["whole number of 4 KiB pages"]),
    ({"ram": 20_000_001}, ValueError, ["whole number of 4 KiB pages"]),
    ({"ram": 1.5}, TypeError, ["ram", "2GiB"]),
    ({"ram": None}, TypeError, ["ram"]),
    ({"ram": True}, TypeError, ["ram"]),
    ({"ram": "lots"}, ValueError, ["not a size", "GiB"]),
    ({"ram": "2 GiBs"}, ValueError, ["not a size"]),
    ({"ram": "8MiB"}, ValueError, ["16 MiB"]),
    ({"ram": 0}, ValueError, ["16 MiB"]),
    ({"swap": "x"}, ValueError, ["not a size"]),
    ({"swap": 1.0}, TypeError, ["swap"]),
    ({"batch_faults": 1}, TypeError, ["batch_faults"]),
    ({"settings": ["vm.swappiness"]}, TypeError, ["settings", "dict"]),
])
def test_bad_arguments_are_refused_before_any_allocation(no_allocation, kwargs, exc, words):
    with pytest.raises(exc) as info:
        pl.Machine(**{**GOOD, **kwargs})
    for word in words:
        assert word in str(info.value)


def test_swap_is_refused_as_not_modelled(no_allocation):
    with pytest.raises(NotModelled):
        pl.Machine(ram="16MiB", swap="1GiB")


@pytest.mark.parametrize(("ram", "pages"), [("16MiB", 4096), ("1.5GiB", 393216), (32 * pl.MiB, 8192),
                                            (np.int64(16 * pl.MiB), 4096), ("17301504", 4224)])
def test_good_sizes(ram, pages):
    m = pl.Machine(ram=ram, disk="hdd", thp="never", cpu="tiny", seed=np.int64(3), swap=0)
    assert m.config["ram"] == pages * pl.PAGE_SIZE


def test_ram_beyond_the_host_fails_at_once_with_the_host_cost(monkeypatch):
    monkeypatch.setattr(machine_mod, "host_mem_available", lambda: 100 * pl.MiB)
    with pytest.raises(ValueError) as info:
        pl.Machine(ram="16GiB")  # 20.5 MiB per GiB in use: 328 MiB > 100 MiB
    text = str(info.value)
    assert "MemAvailable" in text and "3 MiB at once" in text and "20 MiB once in use" in text
    assert "328 MiB" in text and "at most 4 GiB" in text
    assert pl.Machine(ram="4GiB").config["ram"] == 4 * pl.GiB  # 65 MiB fits


def test_ram_beyond_this_real_host_is_refused():
    available = machine_mod.host_mem_available()
    assert available is not None  # Linux: /proc/meminfo has MemAvailable
    most = available // machine_mod.HOST_BYTES_PER_PAGE_IN_USE * pl.PAGE_SIZE // pl.GiB
    with pytest.raises(ValueError, match="more than this host can hold"):
        pl.Machine(ram=f"{most + 64}GiB")


def test_the_stated_host_cost_is_the_frame_tables():
    """HOST_BYTES_PER_PAGE_*: the frame table's columns (57 bytes a frame; boot writes flags, order and the two
    links of free blocks' first pages) plus a page table per 512 pages; a 4 GiB machine's boot cost shows in a
    fresh interpreter's VmRSS."""
    ft = FrameTable(16)
    assert machine_mod.HOST_BYTES_PER_PAGE_IN_USE == FrameTable.host_bytes_per_frame() + pl.PAGE_SIZE // 512
    assert machine_mod.HOST_BYTES_PER_PAGE_AT_BOOT == ft.flags.itemsize + ft.order.itemsize + ft.links.itemsize * 2

    probe = ("import pagelab as pl\n"
             "def rss():\n"
             "    with open('/proc/self/status') as f:\n"
             "        return next(int(l.split()[1]) * 1024 for l in f if l.startswith('VmRSS:'))\n"
             "pl.Machine(ram='16MiB')\n"
             "before = rss()\n"
             "m = pl.Machine(ram='4GiB')\n"
             "print(rss() - before)\n")
    grown = int(subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout)
    at_boot, _ = machine_mod.host_memory_cost(4 * pl.GiB)
    assert 0.75 * at_boot <= grown <= 2 * at_boot
