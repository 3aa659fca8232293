"""vm.max_map_count on the simulator: the answers measured on Linux 6.18 (tests/real/test_max_map_count_vs_kernel.py
holds the simulator to the running kernel with the same trials)."""

from __future__ import annotations

from tests.support.max_map_count import TRIALS, SimProcess, scenario

import pagelab as pl

# Measured on Linux 6.18 with a process holding exactly vm.max_map_count VMAs (and one or two fewer).
EXPECTED = {
    "fill until mmap refuses": "ENOMEM",
    "mprotect one page inside": "ENOMEM",
    "mprotect the first page (one split)": "ENOMEM",
    "mprotect the first page to PROT_NONE (merges with the guard)": "ok",
    "mprotect the last page to PROT_NONE (merges with the guard)": "ok",
    "mprotect the whole VMA": "ok",
    "madvise(MADV_RANDOM) one page inside": "EAGAIN",
    "madvise(MADV_DONTNEED) one page inside (no flag change)": "ok",
    "munmap one page in the middle": "ENOMEM",
    "munmap the VMA's first page": "ok",
    "munmap the VMA's last page": "ok",
    "mmap MAP_FIXED over one page in the middle": "ENOMEM",
    "mmap MAP_FIXED over the whole VMA": "ok",
    "one below: munmap one page in the middle": "ok",
    "one below: mprotect one page in the middle (the second split fails)": "ENOMEM",
    "one below: madvise(MADV_RANDOM) one page inside (the second split fails)": "EAGAIN",
    "two below: mprotect one page in the middle": "ok",
}
# A failed second split leaves the first one in place, as in the kernel.
LEFTOVER = {
    "one below: mprotect one page in the middle (the second split fails)":
        ["0-1 ---p", "1-4 rw-p", "4-11 rw-p", "11-12 ---p"],
    "one below: madvise(MADV_RANDOM) one page inside (the second split fails)":
        ["0-1 ---p", "1-7 rw-p", "7-11 rw-p", "11-12 ---p"],
}


def test_the_limit_as_the_kernel_applies_it():
    m = pl.Machine(ram="256MiB", seed=0, settings={"/proc/sys/vm/max_map_count": 64})
    trace = scenario(SimProcess(m), 64)
    assert {name: result for name, result, _ in trace[:-1]} == EXPECTED
    assert len(trace) == len(TRIALS) + 2
    for name, _, vmas in trace:
        if name in LEFTOVER:
            assert vmas == LEFTOVER[name]
    assert trace[-1][1] == ["ok", "ENOMEM"]  # at the limit one more mmap works, the next does not
    assert len(m.tasks[next(iter(m.tasks))].mm.vmas) == 64 + 1
