"""Parsers: canned text in the kernel's formats, and bad text refused."""

from __future__ import annotations

import pytest

from pagelab.observe.parse import STATM_FIELDS, parse_statm


def test_statm_fields_are_proc5s_names_in_order():
    assert STATM_FIELDS == ("size", "resident", "shared", "text", "lib", "data", "dt")
    assert parse_statm("5413 1017 761 1 0 187 0\n") == {
        "size": 5413, "resident": 1017, "shared": 761, "text": 1, "lib": 0, "data": 187, "dt": 0}


@pytest.mark.parametrize("text", ["", "1 2 3\n", "1 2 3 4 5 6 7 8\n", "1 2 3 4 5 x 7\n", "1 2 3 4 -5 6 7\n"])
def test_statm_rejects_what_the_kernel_never_prints(text):
    with pytest.raises(ValueError, match="statm"):
        parse_statm(text)
