"""Reverse maps: anon_vmas and address_spaces find every PTE that maps a frame, and go away with their VMAs."""

from __future__ import annotations

import numpy as np
import pytest

from pagelab import Machine
from pagelab import constants as C
from pagelab.arch.x86.pgtable import PTE_PFN_MASK
from pagelab.hw.mmu import leaf_entries
from pagelab.mm.debug import check_rmap
from pagelab.mm.filemap import AddressSpace
from pagelab.mm.rmap import AnonVma, rmap_walk

PAGE = 4096
RW = C.PROT_READ | C.PROT_WRITE


def _pfn(m: Machine, p, addr: int) -> int:
    """The frame the PTE of ``addr`` maps (a read-only page-table lookup, as /proc/PID/pagemap gives)."""
    leaf = int(leaf_entries(m.ptpool.tables, p.task.mm.pgd, np.array([addr >> 12], dtype=np.int64))[0])
    return (leaf & PTE_PFN_MASK) >> 12


def test_anon_pages_lead_back_to_their_pte_through_the_anon_vma() -> None:
    m = Machine(ram="64MiB")
    p = m.spawn()
    a = p.mmap(None, 8 * PAGE, RW, C.MAP_PRIVATE | C.MAP_ANONYMOUS)
    p.touch(a, 8 * PAGE, write=True)
    vma = p.task.mm.vmas.find(a)
    assert isinstance(vma.anon_vma, AnonVma) and m.mappings[vma.anon_vma.id] is vma.anon_vma
    p.mprotect(a + 2 * PAGE, PAGE, C.PROT_READ)  # a split: three VMAs share one anon_vma
    assert len(vma.anon_vma.vmas) == 3
    for k in range(8):
        found = rmap_walk(m, _pfn(m, p, a + k * PAGE))
        assert [(v.vm_start <= a + k * PAGE < v.vm_end, addr) for v, addr in found] == [(True, a + k * PAGE)]
    check_rmap(m)
    p.munmap(a, 8 * PAGE)
    assert not m.mappings


def test_shared_pages_lead_to_every_mapping_through_the_address_space() -> None:
    m = Machine(ram="64MiB")
    p = m.spawn()
    a = p.mmap(None, 4 * PAGE, RW, C.MAP_SHARED | C.MAP_ANONYMOUS)
    p.touch(a, 4 * PAGE, write=True)
    vma = p.task.mm.vmas.find(a)
    mapping = vma.vm_file.mapping
    assert isinstance(mapping, AddressSpace) and mapping.nrpages == 4 and list(mapping.i_mmap) == [vma]
    p.mprotect(a, PAGE, C.PROT_READ)  # the file is now mapped by two VMAs
    assert len(mapping.i_mmap) == 2
    pfn = int(mapping.i_pages[0])
    assert [addr for _v, addr in rmap_walk(m, pfn)] == [a]
    check_rmap(m)
    p.exit()
    assert not m.mappings and mapping.nrpages == 0


def test_a_vma_with_ops_but_no_fault_handler_is_sigbus() -> None:
    """do_fault(): a VMA whose vm_ops have no ->fault gets VM_FAULT_SIGBUS."""
    import dataclasses

    from pagelab.errors import BusError

    m = Machine(ram="64MiB")
    p = m.spawn()
    a = p.mmap(None, PAGE, RW, C.MAP_SHARED | C.MAP_ANONYMOUS)
    vma = p.task.mm.vmas.find(a)
    vma.vm_ops = dataclasses.replace(vma.vm_ops, fault=None)
    with pytest.raises(BusError):
        p.load(a)
