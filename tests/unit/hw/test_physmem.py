"""The frame table: compact columns, list heads, and page contents with content fingerprints."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pagelab as pl
from pagelab.hw.physmem import LIST_HEADS, PAGE_SIZE, PG, FrameTable


def test_columns_are_compact_and_sized_per_frame():
    ft = FrameTable(100)
    assert ft.flags.dtype == ft.refcount.dtype == ft.mapcount.dtype == np.int32
    assert ft.mapping.dtype == ft.head_offset.dtype == ft.links.dtype == np.int32
    assert ft.order.dtype == np.int8 and ft.index.dtype == np.int64 and ft.fingerprint.dtype == np.uint64
    for col in (ft.flags, ft.refcount, ft.mapcount, ft.large_mapcount, ft.entire_mapcount, ft.nr_pages_mapped,
                ft.mapping, ft.index, ft.order, ft.head_offset, ft.fingerprint):
        assert col.shape == (100,)
    assert ft.links.shape == (2, 100 + LIST_HEADS)
    assert ft.next is not None and np.shares_memory(ft.next, ft.links) and np.shares_memory(ft.prev, ft.links)
    assert ft.mm_id.shape == ft.mm_id_mapcount.shape == (2, 100) and ft.mm_ids_shared.shape == (100,)
    assert FrameTable.host_bytes_per_frame() == 74


def test_new_page_flags_are_distinct_bits():
    bits = list(PG.members().values())
    assert len(bits) == len(set(bits))
    assert all(b < 2**31 for b in bits)  # they fit the int32 column
    for name in ("HEAD", "BUDDY", "READAHEAD", "WRITEBACK", "MLOCKED", "KSM", "LARGE_RMAPPABLE"):
        assert name in PG.members()


def test_list_heads_start_empty_and_run_out_cleanly():
    ft = FrameTable(16)
    rows = [ft.alloc_list_head() for _ in range(LIST_HEADS)]
    assert rows == list(range(16, 16 + LIST_HEADS))
    assert all(ft.next[r] == r and ft.prev[r] == r for r in rows)
    with pytest.raises(pl.KernelBug):
        ft.alloc_list_head()


def test_compound_head_of_pages_and_arrays():
    ft = FrameTable(32)
    ft.head_offset[9:16] = np.arange(1, 8)  # pages 9..15 are tails of a head at 8
    assert ft.compound_head(8) == 8 and ft.compound_head(13) == 8 and ft.compound_head(3) == 3
    assert ft.compound_head(np.array([3, 8, 15, 16])).tolist() == [3, 8, 8, 16]


def test_bytes_read_back_and_clear_drops_them():
    ft = FrameTable(16)
    assert ft.read_byte(5, 100) == 0 and ft.nr_data_pages == 0
    ft.write_bytes(np.array([5, 5, 7]), np.array([100, 4095, 0]), 200)
    assert ft.read_byte(5, 100) == ft.read_byte(5, 4095) == ft.read_byte(7, 0) == 200
    assert ft.read_byte(5, 101) == 0 and ft.nr_data_pages == 2
    assert ft.fingerprint[5] != 0 and ft.fingerprint[7] != 0 and ft.fingerprint[6] == 0
    ft.clear(np.array([5, 6]))
    assert ft.read_byte(5, 100) == 0 and ft.fingerprint[5] == 0 and ft.nr_data_pages == 1
    ft.clear(7)
    assert ft.nr_data_pages == 0 and ft.fingerprint[7] == 0


def test_writing_zeros_to_a_zero_page_costs_nothing():
    ft = FrameTable(16)
    ft.write_bytes(np.arange(16), np.zeros(16, dtype=np.int64), 0)
    assert ft.nr_data_pages == 0 and not ft.fingerprint.any()
    ft.write_bytes(np.array([3]), np.array([9]), 1)
    ft.write_bytes(np.array([3]), np.array([9]), 0)  # back to all zeros: the storage goes, the fingerprint is 0
    assert ft.nr_data_pages == 0 and ft.fingerprint[3] == 0


def test_copy_data_copies_bytes_and_fingerprint():
    ft = FrameTable(16)
    ft.write_bytes(np.array([2, 2]), np.array([1, 2]), 7)
    ft.write_bytes(np.array([4]), np.array([3]), 9)
    ft.copy_data(4, 2)  # copy_user_highpage(): the old contents of 4 are gone
    assert ft.read_byte(4, 1) == ft.read_byte(4, 2) == 7 and ft.read_byte(4, 3) == 0
    assert ft.fingerprint[4] == ft.fingerprint[2]
    ft.write_bytes(np.array([4]), np.array([1]), 8)  # the copy is its own page
    assert ft.read_byte(2, 1) == 7
    ft.copy_data(2, 0)  # copying a zero page
    assert ft.fingerprint[2] == 0 and ft.read_byte(2, 1) == 0


def test_bad_byte_arguments_are_kernel_bugs():
    ft = FrameTable(16)
    with pytest.raises(pl.KernelBug):
        ft.write_bytes(np.array([1]), np.array([PAGE_SIZE]), 1)
    with pytest.raises(pl.KernelBug):
        ft.write_bytes(np.array([1]), np.array([0]), 256)
    with pytest.raises(pl.KernelBug):
        ft.read_byte(1, -1)


writes = st.lists(st.tuples(st.integers(0, 63), st.integers(0, 255)), max_size=40)


@settings(max_examples=60, deadline=None)
@given(a=writes, b=writes)
def test_fingerprint_is_a_function_of_the_contents(a, b):
    """Two pages written in any order, any number of times, have equal fingerprints exactly when their
    bytes are equal; a page of zeros has fingerprint 0."""
    ft = FrameTable(16)
    for pfn, history in ((1, a), (2, b)):
        for offset, value in history:
            ft.write_bytes(np.array([pfn]), np.array([offset]), value)
    contents = [bytes(ft.read_byte(p, o) for o in range(64)) for p in (1, 2)]
    assert (ft.fingerprint[1] == ft.fingerprint[2]) == (contents[0] == contents[1])
    for p, c in zip((1, 2), contents, strict=True):
        assert (ft.fingerprint[p] == 0) == (not any(c))
    final = dict(a)
    ft.write_bytes(np.array([3] * len(final)), np.array(list(final), dtype=np.int64), 5)
    ft.write_bytes(np.array([4] * len(final)), np.array(sorted(final, reverse=True), dtype=np.int64), 5)
    assert ft.fingerprint[3] == ft.fingerprint[4]  # equal writes to equal pages, whatever the order
