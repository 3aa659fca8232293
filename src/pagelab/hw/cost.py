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
    "spurious": 300,  # stale-TLB fault: estimate
}
SIGSEGV_NS = 2000  # delivering a fatal SIGSEGV: estimate
GUP_DISCOUNT_NS = 450  # a GUP-made fault skips the exception entry: 1.0 us vs 1.45 us per page [VM]


@dataclass(frozen=True, slots=True)
class CostModel:
    """Nanosecond costs of kernel work; ``cycles()`` converts them at the CPU's frequency."""

    freq_mhz: int
    fault_ns: dict[str, int] = field(default_factory=lambda: dict(FAULT_NS))

    def cycles(self, ns: int) -> int:
        return ns * self.freq_mhz // 1000

    def fault_cycles(self, handler: str, gup: bool = False) -> int:
        ns = self.fault_ns[handler]
        if gup:
            ns = max(ns - GUP_DISCOUNT_NS, 0)
        return self.cycles(ns)
