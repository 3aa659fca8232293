"""Fault records in words: the trap, what the handler did, the PTE or huge PMD before and after, the counts."""

from __future__ import annotations

import pagelab as pl
from pagelab.arch.x86.pgtable import (
    _PAGE_ACCESSED,
    _PAGE_DIRTY,
    _PAGE_NX,
    _PAGE_PRESENT,
    _PAGE_PSE,
    _PAGE_RW,
    _PAGE_SPECIAL,
    _PAGE_USER,
    PAGE_NONE,
    X86_PF_PROT,
    X86_PF_USER,
    X86_PF_WRITE,
    pfn_pte,
)
from pagelab.kernel.tracepoint import FaultTrace
from pagelab.mm.types import FaultKind
from pagelab.observe.trace import MEANING, describe, describe_pte, describe_trap

USER_RO = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED | _PAGE_NX


def trace(error_code: int, handler: str = "", before: int = 0, after: int = 0, outcome: str = "minor",
          address: int = 0x7F00_0000_1000) -> FaultTrace:
    return FaultTrace(0, 1000, address, error_code, ("exc_page_fault", "do_user_addr_fault"), handler, before,
                      after, outcome)


def test_the_trap_names_the_error_code_bits():
    assert describe_trap(trace(X86_PF_USER)) == "#PF(R,U)"
    assert describe_trap(trace(X86_PF_USER | X86_PF_WRITE)) == "#PF(W,U)"
    assert describe_trap(trace(X86_PF_PROT | X86_PF_WRITE | X86_PF_USER)) == "#PF(P,W,U)"
    assert describe_trap(trace(X86_PF_WRITE)) == "#PF(W,K)"
    assert describe_trap(trace(-1)) == "GUP"


def test_every_fault_kind_has_a_meaning():
    assert set(MEANING) == set(FaultKind)


def test_ptes_and_huge_pmds_in_words():
    assert describe_pte(0) == "none"
    assert describe_pte(pfn_pte(0, USER_RO | _PAGE_SPECIAL)) == "zero page RO A"
    assert describe_pte(pfn_pte(77, USER_RO | _PAGE_RW | _PAGE_DIRTY)) == "pfn 77 RW A D"
    assert describe_pte(pfn_pte(512, USER_RO | _PAGE_RW | _PAGE_DIRTY | _PAGE_PSE)) == "pfn 512 (2 MiB) RW A D"
    assert describe_pte(pfn_pte(1024, USER_RO | _PAGE_SPECIAL | _PAGE_PSE)) == "huge zero page RO A"
    assert describe_pte(pfn_pte(9, PAGE_NONE)) == "pfn 9 PROT_NONE A"
    assert describe_pte(0x1234_5000 | _PAGE_NX) == "0x8000000012345000 (not present)"  # all 64 bits, unsigned


def test_a_record_in_four_lines():
    before, after = pfn_pte(0, USER_RO | _PAGE_SPECIAL), pfn_pte(42, USER_RO | _PAGE_RW | _PAGE_DIRTY)
    text = describe(trace(X86_PF_PROT | X86_PF_WRITE | X86_PF_USER, FaultKind.WP_PAGE_COPY_ZERO, before, after),
                    base=0x7F00_0000_0000, label="a")
    assert text.splitlines() == [
        "#PF(P,W,U) at a+0x1000: exc_page_fault -> do_user_addr_fault",
        "    copy-on-write from the zero page: allocated a zeroed page",
        "    PTE zero page RO A  ->  pfn 42 RW A D",
        "    minor | pgfault+1, min_flt+1, perf page-faults+1, minor-faults+1",
    ]


def test_signals_gup_and_major_faults_say_what_they_counted():
    segv = describe(trace(X86_PF_USER | X86_PF_WRITE, outcome="SIGSEGV SEGV_MAPERR"))
    assert segv.splitlines()[0].startswith("#PF(W,U) at 0x7f0000001000: ")
    assert segv.splitlines()[1:] == ["    PTE none  ->  none",
                                     "    SIGSEGV SEGV_MAPERR | not counted in rusage; perf page-faults+1"]
    gup = describe(trace(-1, FaultKind.DO_ANONYMOUS_PAGE, outcome="minor"))
    assert gup.endswith("minor | pgfault+1, min_flt+1 (a GUP fault: perf does not see it)")
    assert describe(trace(X86_PF_USER, FaultKind.DO_READ_FAULT, outcome="major")).endswith(
        "major | pgfault+1, maj_flt+1")


def test_a_thp_read_then_write_reads_as_two_pmd_faults():
    m = pl.Machine(ram="64MiB", seed=0)
    m.fault_log = []
    p = m.spawn("t")
    a = p.mmap(None, 2 << 20, pl.PROT_READ | pl.PROT_WRITE, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS)
    p.madvise(a, 2 << 20, pl.MADV_HUGEPAGE)
    p.load(a + 4096)
    p.store(a + 8192)
    read, write = (describe(t, a, "a").splitlines() for t in m.fault_log)
    assert read[0].startswith("#PF(R,U) at a+0x1000: ") and read[2] == "    PMD none  ->  huge zero page RO A"
    assert read[1] == f"    {MEANING[FaultKind.HUGE_ZERO_PAGE]}"
    assert write[0].startswith("#PF(P,W,U) at a+0x2000: ")
    assert write[2].startswith("    PMD huge zero page RO A  ->  pfn ") and write[2].endswith(" (2 MiB) RW A D")
