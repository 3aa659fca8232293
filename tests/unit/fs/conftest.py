"""Shared fixtures of the fs tests: a machine with one small file, and the errno of a failing call."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import pagelab as pl

SIZE = 2 * 4096 + 100  # two pages and a bit: a partial last page


def errno_of(fn: Callable[[], object]) -> int:
    """The errno of the OSError ``fn`` raises (the test fails if it raises none)."""
    with pytest.raises(OSError) as e:
        fn()
    assert e.value.errno is not None
    return e.value.errno


@pytest.fixture
def proc() -> tuple[pl.Machine, pl.Process]:
    """A machine with /d/f of SIZE bytes (cold) and a process."""
    m = pl.Machine(disk="virtio")
    m.fs.create("/d/f", SIZE)
    return m, m.spawn("t")
