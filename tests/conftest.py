"""Shared fixtures: machines always take a seed."""

from __future__ import annotations

import signal

import pytest

import pagelab as pl

# A test run started in the background by a non-interactive shell (CI runners, `cmd &`) inherits SIGINT
# ignored, and so would every program the tests start: the Ctrl-C tests could not send one. Give this
# process Python's usual handler; the programs it starts then get the default disposition at exec.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

RW = pl.PROT_READ | pl.PROT_WRITE
ANON = pl.MAP_PRIVATE | pl.MAP_ANONYMOUS
SHARED_ANON = pl.MAP_SHARED | pl.MAP_ANONYMOUS


@pytest.fixture
def machine() -> pl.Machine:
    return pl.Machine(ram="1GiB", seed=1)


@pytest.fixture
def small_machine() -> pl.Machine:
    return pl.Machine(ram="64MiB", seed=1)
