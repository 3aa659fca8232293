"""Shared fixtures: machines always take a seed."""

from __future__ import annotations

import pytest

import pagelab as pl

RW = pl.PROT_READ | pl.PROT_WRITE
ANON = pl.MAP_PRIVATE | pl.MAP_ANONYMOUS
SHARED_ANON = pl.MAP_SHARED | pl.MAP_ANONYMOUS


@pytest.fixture
def machine() -> pl.Machine:
    return pl.Machine(ram="1GiB", seed=1)


@pytest.fixture
def small_machine() -> pl.Machine:
    return pl.Machine(ram="64MiB", seed=1)
