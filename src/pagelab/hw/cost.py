"""How long kernel work takes, in nanoseconds: the one cost model (fault code does no timing).

Figures measured on the reference VM (Linux 6.18, KVM "Intel Xeon Processor" at 2.6 GHz) with small C
programs, from linux-mm-facts.md section 12, unless marked as an estimate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Cost of one fault, by the leaf handler that resolved it (VmFault.handler), in ns.
FAULT_NS: dict[str, int] = {
    "do_anonymous_page": 1450,  # write-first anon fault: alloc + zero + map [VM]
    "do_anonymous_page(zero)": 500,  # zero-page read fault [VM]
    "wp_page_copy(zero)": 2200,  # write to a zero-page PTE: wp + alloc [VM]
    "wp_page_copy": 3400,  # COW copy of a 4 KiB page [VM]
    "wp_page_reuse": 800,  # COW reuse [VM]
    "do_read_fault": 1000,  # shmem/page-cache hit, one page: estimate (between the two above)
    "do_read_fault(around)": 1300,  # fault-around of up to 16 cached pages: estimate (0.13 us/page [VM])
    "do_shared_fault": 1450,  # shmem write fault allocating a page: estimate (as anon write-first)
    "do_cow_fault": 3400,  # copy of a cached file page into a private one: as wp_page_copy (estimate)
    "do_set_pmd": 1300,  # a cached 2 MiB folio mapped by one PMD: as fault-around (estimate)
    "wp_page_shared": 1000,  # write-notify: page_mkwrite + dirtying, the PTE made writable (estimate)
    "spurious": 300,  # stale-TLB fault: estimate
    # THP faults, measured on this VM by docs/facts/thp_at_fault_time.md, item j: a THP
    # write fault cost 259-353 us against 2.5-3.7 us for a 4 KiB one (71-142x; ~ zeroing 2 MiB at 10 GB/s
    # plus 50-150 us): 100x our 4 KiB figure. A huge-zero read fault cost 3.5-3.9x a 4 KiB zero-page read
    # (it allocates and zeroes the deposited table); the write replacing it 1.3-1.5x a THP fault.
    "do_huge_pmd_anonymous_page": 145_000,
    "do_huge_pmd_anonymous_page(zero)": 1_850,
    "do_huge_zero_wp_pmd": 200_000,
    "do_huge_pmd_wp_page": 800,  # reuse of an exclusive THP: as wp_page_reuse (estimate)
    "huge_pmd_set_accessed": 300,  # as a spurious 4 KiB fault (estimate)
}
SIGSEGV_NS = 2000  # delivering a fatal SIGSEGV: estimate
SYSCALL_NS = 150  # the entry and exit of one system call (read(), write()): estimate
COPY_PAGE_NS = 250  # copy_page_to_iter() / copy_page_from_iter() of 4 KiB at ~16 GB/s: estimate
FORK_NS = 55_000  # fork() of a small C program, the page-table copying aside: 54.9 us measured here (best of 30)
FORK_PTE_NS = 75  # copy_present_ptes() per entry copied: 16 MiB written 349 us, 64 MiB 1504 us here (72-88 ns)
GUP_DISCOUNT_NS = 450  # a GUP-made fault skips the exception entry: 1.0 us vs 1.45 us per page [VM]


@dataclass(frozen=True, slots=True)
class CostModel:
    """Nanosecond costs of kernel work; ``cycles()`` converts them at the CPU's frequency."""

    freq_mhz: int
    fault_ns: dict[str, int] = field(default_factory=lambda: dict(FAULT_NS))

    def cycles(self, ns: int) -> int:
        return ns * self.freq_mhz // 1000

    def fork_cycles(self, entries: int) -> int:
        """What fork() costs the parent: copy_process() plus ``entries`` page-table entries copied."""
        return self.cycles(FORK_NS + FORK_PTE_NS * entries)

    def fault_cycles(self, handler: str, gup: bool = False) -> int:
        ns = self.fault_ns[handler]
        if gup:
            ns = max(ns - GUP_DISCOUNT_NS, 0)
        return self.cycles(ns)
