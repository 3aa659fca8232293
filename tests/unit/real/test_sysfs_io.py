"""The host writer against a fake sysfs tree: save, write, restore on exit, exception and SIGINT."""

from __future__ import annotations

import os
import signal

import pytest

from pagelab.real.sysfs_io import HostWriteRefused, SysfsWriter

THP = "/sys/kernel/mm/transparent_hugepage/enabled"
SWAP = "/proc/sys/vm/swappiness"


@pytest.fixture
def tree(tmp_path):
    files = {THP: "always [madvise] never\n", SWAP: "60\n", "/proc/sys/vm/drop_caches": "0\n",
             "/sys/block/vda/queue/read_ahead_kb": "8192\n", "/proc/sys/kernel/panic": "0\n"}
    for path, text in files.items():
        f = tmp_path / path.lstrip("/")
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
    return tmp_path


def text(tree, path):
    return (tree / path.lstrip("/")).read_text().strip()


def test_writes_then_restores_on_exit(tree):
    with SysfsWriter(root=tree) as w:
        w.write(THP, "never")
        w.write(SWAP, 10)
        w.write(SWAP, 20)
        w.write("/sys/block/vda/queue/read_ahead_kb", 128)
        assert text(tree, THP) == "never" and text(tree, SWAP) == "20"
    assert text(tree, THP) == "madvise"  # the bracketed choice is what gets written back
    assert text(tree, SWAP) == "60" and text(tree, "/sys/block/vda/queue/read_ahead_kb") == "8192"


def test_restores_on_exception(tree):
    with pytest.raises(RuntimeError), SysfsWriter(root=tree) as w:
        w.write(SWAP, 1)
        raise RuntimeError("boom")
    assert text(tree, SWAP) == "60"


def test_restores_on_sigint(tree):
    with pytest.raises(KeyboardInterrupt), SysfsWriter(root=tree) as w:
        w.write(SWAP, 1)
        os.kill(os.getpid(), signal.SIGINT)
    assert text(tree, SWAP) == "60"


def test_dry_run_touches_nothing(tree):
    with SysfsWriter(root=tree, dry_run=True) as w:
        w.write(THP, "always")
        assert text(tree, THP) == "always [madvise] never"
    assert w.log == [f"would write {THP} = always", f"would restore {THP} = madvise"]


def test_refuses_what_is_not_an_mm_tunable_and_drop_caches_without_the_flag(tree):
    w = SysfsWriter(root=tree)
    with pytest.raises(HostWriteRefused):
        w.write("/proc/sys/kernel/panic", 1)
    with pytest.raises(HostWriteRefused):
        w.write("/proc/sys/vm/drop_caches", 1)
    SysfsWriter(root=tree, allow_drop_caches=True).write("/proc/sys/vm/drop_caches", 1)
    assert text(tree, "/proc/sys/vm/drop_caches") == "1"
