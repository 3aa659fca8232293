"""The Folio value, page_folio(), folio references, and splitting a large folio."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import pagelab as pl
from pagelab.hw.physmem import PG
from pagelab.mm.debug import check_compound_pages, check_free_lists
from pagelab.mm.folio import (
    Folio,
    folio_entire_mapcount,
    folio_get,
    folio_mapcount,
    folio_put,
    folio_ref_count,
    folio_test_large,
    page_folio,
    split_folio_to_order,
)
from pagelab.mm.page_alloc import alloc_page, drain_all_pages, folio_alloc


def test_folio_is_a_small_value():
    f = Folio(512, 9)
    assert f.nr_pages == 512 and f.page(0) == 512 and f.page(511) == 1023 and folio_test_large(f)
    assert f.pfns().tolist() == list(range(512, 1024))
    assert Folio(7).nr_pages == 1 and not folio_test_large(Folio(7))
    assert Folio(512, 9) == f and hash(Folio(512, 9)) == hash(f)
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.order = 3  # type: ignore[misc]
    with pytest.raises(pl.KernelBug):
        f.page(512)


def test_page_folio_finds_the_head():
    m = pl.Machine(ram="64MiB", seed=0)
    head = folio_alloc(m, 4, PG.ANON)
    single = alloc_page(m, PG.ANON)
    assert page_folio(m, head) == page_folio(m, head + 9) == Folio(head, 4)
    assert page_folio(m, single) == Folio(single, 0)
    with pytest.raises(pl.KernelBug):
        page_folio(m, m.frames.nr_frames)


def test_references_and_mapcounts_live_on_the_head():
    m = pl.Machine(ram="64MiB", seed=0)
    f = Folio(folio_alloc(m, 2, PG.ANON), 2)
    folio_get(m, f)
    assert folio_ref_count(m, f) == 2 and m.frames.refcount[f.pfn + 1] == 0
    m.frames.large_mapcount[f.pfn] = 3
    m.frames.entire_mapcount[f.pfn] = 1
    assert folio_mapcount(m, f) == 3 and folio_entire_mapcount(m, f) == 1
    m.frames.large_mapcount[f.pfn] = m.frames.entire_mapcount[f.pfn] = 0
    folio_put(m, f)
    assert folio_ref_count(m, f) == 1
    free = m.zone.free_pages
    folio_put(m, f)
    assert m.zone.free_pages == free + 4
    with pytest.raises(pl.KernelBug):
        folio_entire_mapcount(m, Folio(alloc_page(m, 0)))


@pytest.mark.parametrize("new_order", [0, 2])
def test_split_folio_to_order(new_order):
    """An order-4 folio becomes 16 >> new_order folios: flags in SPLIT_FLAGS, mapping and index + offset copied,
    per-page bits kept, compound metadata rewritten; freeing each new folio returns every page."""
    m = pl.Machine(ram="64MiB", seed=0)
    head = folio_alloc(m, 4, PG.ANON | PG.SWAPBACKED | PG.DIRTY | PG.LRU)
    m.frames.flags[head + 5] |= PG.ANON_EXCLUSIVE
    m.frames.mapping[head], m.frames.index[head] = 77, 1000
    m.frames.mapcount[head + 3] = 0
    new = split_folio_to_order(m, Folio(head, 4), new_order)
    step = 1 << new_order
    assert new == [Folio(head + i, new_order) for i in range(0, 16, step)]
    for f in new:
        flags = int(m.frames.flags[f.pfn])
        assert flags & (PG.ANON | PG.SWAPBACKED | PG.DIRTY) == PG.ANON | PG.SWAPBACKED | PG.DIRTY
        assert m.frames.mapping[f.pfn] == 77 and m.frames.index[f.pfn] == 1000 + f.pfn - head
        assert bool(flags & PG.HEAD) == bool(new_order) and page_folio(m, f.pfn + step - 1) == f
    assert not m.frames.flags[head + 4] & PG.LRU  # the caller puts the new folios on the LRU (lru_add_split_folio)
    assert m.frames.flags[head + 5] & PG.ANON_EXCLUSIVE  # per-page bits stay where they were
    check_compound_pages(m)
    free = m.zone.free_pages + m.zone.pcp.count
    m.frames.flags[head] &= ~PG.LRU  # (not on an LRU list in this test)
    for f in new:
        m.frames.refcount[f.pfn] = 1  # folio_ref_unfreeze(): the caller's
        folio_put(m, f)
    drain_all_pages(m)
    assert m.zone.free_pages == free + 16
    assert not m.frames.head_offset.any() and not (m.frames.flags & PG.HEAD).any()
    check_free_lists(m)


def test_split_refuses_what_is_not_a_large_unmapped_folio():
    m = pl.Machine(ram="64MiB", seed=0)
    head = folio_alloc(m, 3, PG.ANON)
    with pytest.raises(pl.KernelBug):
        split_folio_to_order(m, Folio(head, 3), 3)
    with pytest.raises(pl.KernelBug):
        split_folio_to_order(m, Folio(head + 1, 2), 0)
    m.frames.entire_mapcount[head] = 1
    with pytest.raises(pl.KernelBug):
        split_folio_to_order(m, Folio(head, 3), 0)
    assert np.array_equal(m.frames.head_offset[head:head + 8], np.arange(8))  # untouched
