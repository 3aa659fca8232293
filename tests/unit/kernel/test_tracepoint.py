"""Fault tracepoints: one record per fault while Machine.fault_log is a list, the same counts as without."""

from __future__ import annotations

import pytest

import pagelab as pl
from pagelab.arch.x86.pgtable import _PAGE_NX, _PAGE_PSE, _PAGE_RW, X86_PF_USER, X86_PF_WRITE, pte_pfn
from pagelab.errors import SegmentationFault
from pagelab.kernel.tracepoint import FaultTrace, leaf_of, record_fault
from pagelab.mm.types import FaultKind
from pagelab.stats import PerfEvent

RW, ANON = pl.PROT_READ | pl.PROT_WRITE, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS
PAGE = 4096


def test_every_fault_is_recorded_and_counts_do_not_change():
    counts = []
    for trace in (False, True):
        m = pl.Machine(ram="64MiB", seed=0)
        if trace:
            m.fault_log = []
        p = m.spawn("t")
        a = p.mmap(None, 64 * PAGE, RW, ANON)
        p.touch(a, 64 * PAGE)
        p.touch(a, 64 * PAGE, write=True)
        counts.append((p.rusage().ru_minflt, m.vmstat(), m.now_ns))
        if trace:
            assert len(m.fault_log) == 128
            assert [t.handler for t in m.fault_log] == ([FaultKind.DO_ANONYMOUS_PAGE_ZERO] * 64
                                                       + [FaultKind.WP_PAGE_COPY_ZERO] * 64)
            assert [t.address for t in m.fault_log] == [a + i * PAGE for i in range(64)] * 2
        else:
            assert m.fault_log is None  # off by default: nothing recorded, nothing allocated
    assert counts[0] == counts[1]


def test_a_record_holds_the_trap_the_path_and_the_pte_before_and_after():
    m = pl.Machine(ram="64MiB", seed=0)
    m.fault_log = []
    p = m.spawn("t")
    a = p.mmap(None, PAGE, RW, ANON)
    p.load(a)
    p.store(a)
    read, write = m.fault_log
    assert isinstance(read, FaultTrace) and read.pid == p.pid and read.address == a
    assert read.error_code == X86_PF_USER and read.outcome == "minor"
    assert read.path == ("exc_page_fault", "do_user_addr_fault", "handle_mm_fault", "handle_pte_fault",
                         "do_anonymous_page")
    assert write.path[-2:] == ("do_wp_page", "wp_page_copy")
    assert read.pte_before == 0 and pte_pfn(read.pte_after) == m.zero_pfn
    assert not read.pte_after & _PAGE_RW and read.pte_after & _PAGE_NX  # stored signed: NX is the sign bit
    assert write.error_code & X86_PF_WRITE and write.pte_before == read.pte_after
    assert write.pte_after & _PAGE_RW and pte_pfn(write.pte_after) != m.zero_pfn
    assert write.pte_after == leaf_of(p.task, a)
    assert read.time_ns < write.time_ns <= m.now_ns


def test_a_fault_that_ends_in_a_signal_leaves_the_pte_as_it_was():
    m = pl.Machine(ram="64MiB", seed=0)
    m.fault_log = []
    p = m.spawn("t")
    a = p.mmap(None, PAGE, pl.PROT_READ, ANON)
    p.load(a)
    with pytest.raises(SegmentationFault):
        p.store(a)
    read, segv = m.fault_log
    assert segv.outcome == "SIGSEGV SEGV_ACCERR" and segv.handler == ""
    assert segv.path == ("exc_page_fault", "do_user_addr_fault", "bad_area")
    assert segv.pte_before == segv.pte_after == read.pte_after != 0


def test_a_gup_fault_is_recorded_with_no_error_code():
    m = pl.Machine(ram="64MiB", seed=0)
    m.fault_log = []
    p = m.spawn("t")
    a = p.mmap(None, 4 * PAGE, RW, ANON)
    p.madvise(a, 4 * PAGE, pl.MADV_POPULATE_WRITE)
    assert [(t.error_code, t.path[0], t.handler) for t in m.fault_log] == [
        (-1, "madvise_populate", FaultKind.DO_ANONYMOUS_PAGE)] * 4
    assert p.task.perf[PerfEvent.PAGE_FAULTS] == 0  # no exception was raised


def test_a_huge_pmd_is_the_leaf_of_every_address_it_maps():
    m = pl.Machine(ram="64MiB", seed=0)
    p = m.spawn("t")
    size = 2 << 20
    a = p.mmap(None, size, RW, ANON)
    p.madvise(a, size, pl.MADV_HUGEPAGE)
    assert leaf_of(p.task, a) == 0  # nothing mapped yet
    p.store(a)
    pmd = leaf_of(p.task, a)
    assert pmd & _PAGE_PSE and leaf_of(p.task, a + size - PAGE) == pmd
    assert leaf_of(p.task, -PAGE) == 0  # a kernel address has no user leaf
    p.exit()
    assert leaf_of(p.task, a) == 0  # a dead task has no tables


def test_recording_with_the_log_off_does_nothing():
    m = pl.Machine(ram="64MiB", seed=0)
    p = m.spawn("t")
    record_fault(p.task, 0, X86_PF_USER, 0, None, "minor", ("exc_page_fault",))
    assert m.fault_log is None
    m.fault_log = []
    record_fault(p.task, 4096, X86_PF_USER, 5, None, "SIGSEGV SEGV_MAPERR", ("exc_page_fault",), time_ns=7)
    assert m.fault_log == [FaultTrace(7, p.pid, 4096, X86_PF_USER, ("exc_page_fault",), "", 5, 5,
                                      "SIGSEGV SEGV_MAPERR")]
