"""The errno table of tests/support/errno_cases.py, checked against this machine's kernel."""

from __future__ import annotations

import sys

import pytest
from tests.support.errno_cases import CASES, run_case

pytestmark = [pytest.mark.real,
              pytest.mark.skipif(sys.platform != "linux", reason="needs a Linux kernel")]


@pytest.fixture
def host():
    from tests.support.hostlibc import HostSyscalls

    h = HostSyscalls()
    yield h
    h.cleanup()


@pytest.mark.parametrize("name", sorted(CASES))
def test_kernel_errno(host, name):
    assert run_case(host, name) == CASES[name][1]
