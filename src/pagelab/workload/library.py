"""The built-in scenarios: every behaviour the simulator models that the host kernel can show.

Each one is a measured fact of linux-mm-facts.md or of the foundation issue; ``pagelab validate`` runs
them on the real kernel and on ``Machine.from_host()`` and compares counter by counter.
"""

from __future__ import annotations

import os

from ..constants import (
    MADV_COLD,
    MADV_DODUMP,
    MADV_DOFORK,
    MADV_DONTDUMP,
    MADV_DONTFORK,
    MADV_DONTNEED,
    MADV_FREE,
    MADV_HUGEPAGE,
    MADV_KEEPONFORK,
    MADV_NOHUGEPAGE,
    MADV_NORMAL,
    MADV_PAGEOUT,
    MADV_POPULATE_READ,
    MADV_POPULATE_WRITE,
    MADV_RANDOM,
    MADV_REMOVE,
    MADV_SEQUENTIAL,
    MADV_WILLNEED,
    MADV_WIPEONFORK,
    MAP_ANONYMOUS,
    MAP_LOCKED,
    MAP_POPULATE,
    MAP_PRIVATE,
    MAP_SHARED,
    MCL_CURRENT,
    MCL_FUTURE,
    MLOCK_ONFAULT,
    MREMAP_DONTUNMAP,
    MREMAP_FIXED,
    MREMAP_MAYMOVE,
    PROT_NONE,
    PROT_READ,
    PROT_WRITE,
    RLIMIT_MEMLOCK,
    MiB,
)
from .scenario import (
    SMAPS_FIELDS,
    FileSpec,
    Phase,
    Region,
    Scenario,
    Step,
    brk,
    drop_capability,
    exec_,
    exit_,
    fill,
    fork,
    free,
    malloc,
    malloc_trim,
    mlockall,
    munlockall,
    setrlimit,
    wait,
)

RW = PROT_READ | PROT_WRITE
SHARED_ANON = MAP_SHARED | MAP_ANONYMOUS
W = {"write": True}


def _s(name: str, doc: str, regions: dict[str, Region], *phases: tuple[str, list[Step]],
       source: str = "linux-mm-facts.md section 3") -> Scenario:
    return Scenario(name, doc, regions, tuple(Phase(n, tuple(steps)) for n, steps in phases), source)


TOUR = _s(
    "tour", "one of each fault the seed's table names: zero page, COW from it, first write, shmem, fault-around, "
    "a populate, and a protection fault", {"a": Region(1 * MiB), "s": Region(1 * MiB, RW, SHARED_ANON)},
    ("read-fresh", [Step("load", "a")]),
    ("write-after-read", [Step("store", "a", args=(1,))]),
    ("write-fresh", [Step("store", "a", offset=4096, args=(1,))]),
    ("write-again", [Step("store", "a", offset=4096, args=(2,))]),
    ("populate", [Step("madvise", "a", offset=8192, length=2 * 4096, args=(MADV_POPULATE_WRITE,))]),
    ("shared-read", [Step("load", "s")]),
    ("shared-dontneed-reread", [Step("madvise", "s", args=(MADV_DONTNEED,)), Step("load", "s", offset=4096),
                                Step("load", "s")]),
    ("write-read-only", [Step("mprotect", "a", length=4096, args=(PROT_READ,)), Step("store", "a", args=(3,))]),
    source="the seed's fault table; linux-mm-facts.md sections 0, 1, 3 and 14")

THP_FACTS = "docs/facts/thp_at_fault_time.md"
HUGE = Step("madvise", "a", args=(MADV_HUGEPAGE,))


def _thp(name: str, doc: str, size: int, *phases: tuple[str, list[Step]], item: str, offset: int = 0) -> Scenario:
    """A THP scenario: region ``a`` (``size`` bytes, ``offset`` past a 2 MiB boundary) gets MADV_HUGEPAGE
    first, so it behaves the same under enabled=madvise and enabled=always."""
    return _s(name, doc, {"a": Region(size, offset=offset)}, ("madvise-hugepage", [HUGE]), *phases,
              source=f"{THP_FACTS} item {item}; mm/huge_memory.c")


THP_SCENARIOS = (
    _thp("thp-write", "64 MiB with MADV_HUGEPAGE, one write per page: one fault per 2 MiB (32), AnonHugePages "
         "65536 kB", 64 * MiB, ("write", [Step("touch", "a", kwargs=W)]), item="a"),
    _thp("thp-read-then-write", "reads map the huge zero page (32 faults, Rss 0); the writes then allocate THPs "
         "(32 faults, do_huge_zero_wp_pmd)", 64 * MiB, ("read", [Step("touch", "a")]),
         ("write", [Step("touch", "a", kwargs=W)]), item="c"),
    _thp("thp-unaligned", "5 MiB + 12 KiB one page past a 2 MiB boundary: only the aligned 2 MiB block inside "
         "gets a THP (772 faults)", 5 * MiB + 12 * 1024, ("write", [Step("touch", "a", kwargs=W)]),
         item="d", offset=4096),
    _thp("thp-unaligned-1m", "the same 1 MiB past the boundary: two THPs (261 faults)", 5 * MiB + 12 * 1024,
         ("write", [Step("touch", "a", kwargs=W)]), item="d", offset=1 * MiB),
    _thp("thp-split-munmap", "munmap of 4 KiB inside a THP splits its PMD (the deposited table becomes the PTE "
         "table): the rest stays mapped, no new faults", 4 * MiB, ("write", [Step("touch", "a", kwargs=W)]),
         ("munmap-4k", [Step("munmap", "a", offset=100 * 4096, length=4096)]),
         ("write-rest", [Step("touch", "a", length=100 * 4096, kwargs=W),
                         Step("touch", "a", offset=101 * 4096, kwargs=W)]), item="e"),
    _thp("thp-split-mprotect", "mprotect(PROT_READ) of 4 KiB inside a THP splits the PMD; Rss stays",
         4 * MiB, ("write", [Step("touch", "a", kwargs=W)]),
         ("mprotect-4k", [Step("mprotect", "a", offset=100 * 4096, length=4096, args=(PROT_READ,))]),
         ("read", [Step("touch", "a")]), item="e"),
    _thp("thp-split-dontneed", "MADV_DONTNEED of 4 KiB inside a THP splits the PMD; that page refaults as a "
         "4 KiB page", 4 * MiB, ("write", [Step("touch", "a", kwargs=W)]),
         ("dontneed-4k", [Step("madvise", "a", offset=100 * 4096, length=4096, args=(MADV_DONTNEED,))]),
         ("write-again", [Step("touch", "a", kwargs=W)]), item="e"),
    _thp("thp-dontneed-whole", "MADV_DONTNEED of a whole aligned 2 MiB zaps the PMD (no split); a write "
         "refaults a new THP", 4 * MiB, ("write", [Step("touch", "a", kwargs=W)]),
         ("dontneed-2m", [Step("madvise", "a", length=2 * MiB, args=(MADV_DONTNEED,))]),
         ("write-again", [Step("touch", "a", kwargs=W)]), item="e"),
    _thp("thp-dontneed-across", "MADV_DONTNEED from 4 KiB into the first THP to 4 KiB into the second: both PMDs "
         "split, AnonHugePages 0; rewriting takes 512 4 KiB faults", 4 * MiB,
         ("write", [Step("touch", "a", kwargs=W)]),
         ("dontneed", [Step("madvise", "a", offset=4096, length=2 * MiB, args=(MADV_DONTNEED,))]),
         ("write-again", [Step("touch", "a", kwargs=W)]), item="e"),
    _thp("thp-free-part", "MADV_FREE of 4 KiB inside a THP splits the folio at once; its pages hold only zeros, "
         "so the split maps them to the shared zero page (Rss drops by 2 MiB, mincore still says resident)",
         4 * MiB, ("write", [Step("touch", "a", kwargs=W)]),
         ("free-4k", [Step("madvise", "a", offset=100 * 4096, length=4096, args=(MADV_FREE,))]),
         ("read", [Step("touch", "a")]), item="e"),
    _thp("thp-huge-zero-split", "reads map the huge zero page; DONTNEED of 4 KiB splits it into zero-page PTEs; "
         "writing all then takes 512 + 1 faults", 4 * MiB, ("read", [Step("touch", "a")]),
         ("dontneed-4k", [Step("madvise", "a", offset=100 * 4096, length=4096, args=(MADV_DONTNEED,))]),
         ("write", [Step("touch", "a", kwargs=W)]), item="e"),
    _thp("thp-nohugepage", "MADV_HUGEPAGE then MADV_NOHUGEPAGE: the last wins, one fault per page",
         4 * MiB, ("nohugepage", [Step("madvise", "a", args=(MADV_NOHUGEPAGE,))]),
         ("write", [Step("touch", "a", kwargs=W)]), item="g"),
)

FILE_FACTS = "docs/facts/files_page_cache.md"
MS_ASYNC, MS_SYNC = 1, 4  # include/uapi/asm-generic/mman-common.h


def _f(name: str, doc: str, size: int, *phases: tuple[str, list[Step]], item: str, warm: str | None = None,
       cached: bool = False, flags: int = MAP_SHARED, prot: int = PROT_READ,
       bands: dict[tuple[str, str], tuple[int, int, str]] | None = None, written_in: int = MiB,
       sparse: bool = False, hole: tuple[int, int] | None = None) -> Scenario:
    """A file scenario: region ``f`` maps a ``size``-byte file (made by ``written_in``-byte write()s, then
    cold unless ``cached``; ``warm``, ``sparse`` and ``hole`` as FileSpec's) at offset 0 with ``prot`` and
    ``flags``."""
    spec = FileSpec(size, written_in=written_in, cached=cached, warm=warm, sparse=sparse, hole=hole)
    region = Region(size, prot, flags, file=spec)
    return Scenario(name, doc, {"f": region}, tuple(Phase(n, tuple(steps)) for n, steps in phases),
                    f"{FILE_FACTS} item {item}; mm/filemap.c, mm/readahead.c, mm/memory.c", bands or {})


READ_F = ("read", [Step("touch", "f")])
SHUFFLED_F = ("read", [Step("access", "f", kwargs={"shuffle": 1})])  # one byte per page, fc.c's srand(1) order
WRITE_F = ("write", [Step("touch", "f", kwargs=W)])
_COLD_WHY = ("cold readahead: fault-around skips folios still under I/O, so some 16-page windows fault twice; "
             "minflt 435-441 over 25 runs on this host (fact sheet items d and j), 442 once in 8 validate runs "
             "while other work loaded the host (H13); majflt exactly 1")
_RAND_WHY = ("cold read-around in random order: faults on folios still under I/O; range of minflt over 13 runs "
             "on this host (fact sheet items d and j), majflt exactly 12")
# minor faults 435-441 and the one major: perf's minor-faults as minflt, page-faults one more
COLD_ASC_BANDS = {("read", "minflt"): (435, 442, _COLD_WHY), ("read", "perf minor-faults"): (435, 442, _COLD_WHY),
                  ("read", "perf page-faults"): (436, 443, _COLD_WHY)}

_POPULATE_WHY = ("cold MAP_POPULATE: GUP faults with fault-around that meet folios still under I/O fault again; "
                 "minflt 436-441 over 6 runs of fc.c on this host (fact sheet items d and k: 441, 438, 441, "
                 "438, 436, 436); majflt exactly 0 (the populate's retries are not FAULT_FLAG_TRIED)")
_SEQ_RAND_WHY = ("cold read-around with MADV_SEQUENTIAL in random page order: faults on folios still under I/O; "
                 "minflt 1020-1024 over 13 runs on this host (fact sheet items d and j), majflt exactly 27")
_WILLNEED_WHY = ("WILLNEED reads 8 MiB asynchronously; fault-around skips its folios still under I/O, so the "
                 "pass right after takes 497-501 minor faults (12 runs of fc2.c on this host, fact sheet item "
                 "k: 501 x6 without a sleep, 497-500 after 500 ms); majflt exactly 1")
_POPREAD_WHY = ("cold MADV_POPULATE_READ: each GUP fault that waits on a folio under I/O retries with "
                "FAULT_FLAG_TRIED and counts major; 420-421 minor + 16 major in 5 of 5 runs of fc2.c (fact sheet "
                "item k) and 427 + 9 in a validate run (H16): which faults wait depends on I/O timing, so the total "
                "(436-437) is the tight figure and the split a band: minor 405-437, major 0-32")
_HOLE_WHY = ("cold 24 MiB + 24 MiB data around a 16 MiB hole: the same readahead timing as a cold file, "
             "minflt 438 in 2 of 2 runs of fc2.c (fact sheet item h), band as the cold ascending pass")


def _band(phase: str, lo: int, hi: int, why: str, *, major: int) -> dict[tuple[str, str], tuple[int, int, str]]:
    """minflt (and perf's minor-faults) in [lo, hi] in ``phase``; perf's page-faults ``major`` more."""
    return {(phase, "minflt"): (lo, hi, why), (phase, "perf minor-faults"): (lo, hi, why),
            (phase, "perf page-faults"): (lo + major, hi + major, why)}


FILE_SCENARIOS = (
    _f("file-warm-read", "64 MiB file warmed by 1 MiB read()s (readahead's folio ramp), MAP_SHARED read one "
       "byte per page: 281 faults (one per 16-page window, then one per large folio), 17 PMD-mapped folios "
       "(FilePmdMapped 34816 kB)", 64 * MiB, READ_F, item="b", warm="read"),
    _f("file-warm-read-nohugepage", "the same with MADV_NOHUGEPAGE: still 281 faults (a large folio is mapped "
       "whole by PTEs), FilePmdMapped 0", 64 * MiB,
       ("nohugepage", [Step("madvise", "f", args=(MADV_NOHUGEPAGE,))]), READ_F, item="b", warm="read"),
    _f("file-warm-fadv-random", "64 MiB warmed through a POSIX_FADV_RANDOM descriptor (order-0 folios only): "
       "1024 faults, 16 pages each", 64 * MiB, READ_F, item="c", warm="random"),
    _f("file-cold-read", "64 MiB cold (evicted) file read one byte per page ascending: 8 MiB read-around, then "
       "async windows of growing order; one major fault (the first), about 435 minor", 64 * MiB, READ_F,
       item="d", bands=COLD_ASC_BANDS),
    _f("file-cold-madv-random", "16 MiB cold file with MADV_RANDOM: no readahead, no fault-around; every page "
       "is a major fault (4096)", 16 * MiB, ("random", [Step("madvise", "f", args=(MADV_RANDOM,))]), READ_F,
       item="d"),
    _f("file-cold-sequential", "64 MiB cold file with MADV_SEQUENTIAL: the same windows as no advice, 435 minor "
       "and 1 major", 64 * MiB, ("sequential", [Step("madvise", "f", args=(MADV_SEQUENTIAL,))]), READ_F,
       item="d", bands=COLD_ASC_BANDS),
    _f("file-cold-hugepage", "64 MiB cold file with MADV_HUGEPAGE: every folio order 9, one fault per 2 MiB "
       "(31 minor + 1 major), all PMD-mapped", 64 * MiB,
       ("hugepage", [Step("madvise", "f", args=(MADV_HUGEPAGE,))]), READ_F, item="d"),
    _f("file-warm-read-shuffled", "the 1 MiB-read-warmed 64 MiB file read in random page order: still 281 "
       "(each fault maps its whole window or folio, whatever the order)", 64 * MiB, SHUFFLED_F, item="b",
       warm="read"),
    _f("file-warm-madv-random-shuffled", "the same with MADV_RANDOM: fault-around and PMD mapping still apply "
       "to cached folios (281, FilePmdMapped 34816 kB)", 64 * MiB,
       ("random", [Step("madvise", "f", args=(MADV_RANDOM,))]), SHUFFLED_F, item="b", warm="read"),
    _f("file-warm-fadv-random-shuffled", "order-0 folios (FADV_RANDOM warming), MADV_NOHUGEPAGE, random page "
       "order: 1024", 64 * MiB, ("nohugepage", [Step("madvise", "f", args=(MADV_NOHUGEPAGE,))]), SHUFFLED_F,
       item="c", warm="random"),
    _f("file-cold-shuffled", "64 MiB cold file read in random page order: read-around of order-0 folios, 12 "
       "major faults, about 1020 minor", 64 * MiB, SHUFFLED_F, item="d and j",
       bands={("read", "minflt"): (1020, 1022, _RAND_WHY), ("read", "perf minor-faults"): (1020, 1022, _RAND_WHY),
              ("read", "perf page-faults"): (1032, 1034, _RAND_WHY)}),
    _f("file-written-read", "16 MiB file just written by 1 MiB write()s (cached: order-8 folios by write size), "
       "read pass: 31 faults (the folio ending at EOF window by window)", 16 * MiB, READ_F,
       item="rule 11", cached=True),
    _f("file-private-write", "16 MiB warm file MAP_PRIVATE, one write per page: a COW fault per page (4096)",
       16 * MiB, WRITE_F, item="e", warm="read", flags=MAP_PRIVATE, prot=RW),
    _f("file-private-dontneed", "MAP_PRIVATE written (4096 COW faults), MADV_DONTNEED drops the anonymous "
       "copies; a read pass maps the page cache again (235, fault-around), a write COWs every page (4096)",
       16 * MiB, WRITE_F, ("dontneed", [Step("madvise", "f", args=(MADV_DONTNEED,))]),
       ("read-again", [Step("touch", "f")]), ("write-again", [Step("touch", "f", kwargs=W)]),
       item="e", warm="read", flags=MAP_PRIVATE, prot=RW),
    _f("file-shared-write", "16 MiB warm file MAP_SHARED, write first: one do_shared_fault per folio (904); "
       "msync(MS_ASYNC) does nothing (no faults after); msync(MS_SYNC) writes back and write-protects "
       "every PTE, so the next write pass faults once per page (4096)", 16 * MiB, WRITE_F,
       ("msync-async", [Step("msync", "f", args=(MS_ASYNC,))]), ("write-again", [Step("touch", "f", kwargs=W)]),
       ("msync-sync", [Step("msync", "f", args=(MS_SYNC,))]),
       ("write-after-sync", [Step("touch", "f", kwargs=W)]), item="e and m", warm="read", prot=RW),
    _f("file-shared-read-then-write", "16 MiB warm file MAP_SHARED: a read pass (235: the last order-6 folio "
       "ends at EOF and is mapped window by window), then a write per page, each a write-notify fault (4096)",
       16 * MiB, READ_F, WRITE_F, item="e", warm="read", prot=RW),
    # --- H16: the rest of the issue's grid ---
    _f("file-cold-populate", "64 MiB cold file mapped again with MAP_SHARED|MAP_POPULATE PROT_READ inside the "
       "phase: the populate reads the file with the mmap readahead ramp, 436-441 minor faults and no major "
       "(the task sees none; vmstat pgmajfault +1); the read pass after it takes none", 64 * MiB,
       ("populate", [Step("map", "f", args=(PROT_READ, MAP_SHARED | MAP_POPULATE))]), READ_F, item="d and k",
       bands={("populate", "minflt"): (436, 441, _POPULATE_WHY)}),  # GUP faults: no perf event (no regs)
    _f("file-private-populate", "16 MiB warm file mapped again MAP_PRIVATE|MAP_POPULATE PROT_READ|PROT_WRITE: "
       "GUP write faults COW every page at mmap time (4096; 64 MiB gives 16384), then a write pass takes none",
       16 * MiB, ("populate", [Step("map", "f", args=(RW, MAP_PRIVATE | MAP_POPULATE))]), WRITE_F, item="e",
       warm="read", flags=MAP_PRIVATE, prot=RW),
    _f("file-shared-populate", "16 MiB warm file mapped again MAP_SHARED|MAP_POPULATE PROT_READ|PROT_WRITE: the "
       "populate does read faults only (235), so the write pass still takes a write-notify fault per page (4096)",
       16 * MiB, ("populate", [Step("map", "f", args=(RW, MAP_SHARED | MAP_POPULATE))]), WRITE_F, item="e",
       warm="read", prot=RW),
    _f("file-cold-sequential-shuffled", "64 MiB cold file, MADV_SEQUENTIAL, random page order: read-around "
       "windows of order-0 folios, 27 major faults, about 1020 minor", 64 * MiB,
       ("sequential", [Step("madvise", "f", args=(MADV_SEQUENTIAL,))]), SHUFFLED_F, item="d and j",
       bands=_band("read", 1020, 1024, _SEQ_RAND_WHY, major=27)),
    _f("file-cold-fadv-willneed", "64 MiB cold file, POSIX_FADV_WILLNEED(0, 0): an asynchronous order-0 read of "
       "ra_pages (8 MiB), no faults; the ascending pass then takes about 497 minor and 1 major (the miss at "
       "8 MiB)", 64 * MiB, ("willneed", [Step("fadvise", "f", length=0, args=(os.POSIX_FADV_WILLNEED,))]),
       READ_F, item="k", bands=_band("read", 497, 501, _WILLNEED_WHY, major=1)),
    _f("file-cold-madv-willneed", "the same with MADV_WILLNEED over the whole mapping (madvise_willneed -> "
       "the same 8 MiB forced readahead): about 497 minor and 1 major after", 64 * MiB,
       ("willneed", [Step("madvise", "f", args=(MADV_WILLNEED,))]), READ_F, item="k",
       bands=_band("read", 497, 501, _WILLNEED_WHY, major=1)),
    _f("file-cold-populate-read", "64 MiB cold file, MADV_POPULATE_READ: the whole file read with the mmap "
       "readahead ramp by GUP faults (436-437 in all, about 16 of them major: retries after waiting on I/O), "
       "then a read pass takes none", 64 * MiB, ("populate", [Step("madvise", "f", args=(MADV_POPULATE_READ,))]),
       READ_F, item="k", bands={("populate", "minflt"): (405, 437, _POPREAD_WHY),
                                ("populate", "majflt"): (0, 32, _POPREAD_WHY)}),
    _f("file-sparse-read", "64 MiB sparse file (ftruncate only) read by mmap: the same readahead and faults as "
       "a cold file, 435 minor + 1 major, exactly (no I/O, so no timing spread)", 64 * MiB, READ_F, item="h",
       sparse=True),
    _f("file-sparse-pread", "the sparse file read by 1 MiB pread()s: read() never counts a fault (0 and 0), "
       "the mmap pass after it finds the read() ramp of folios (281)", 64 * MiB, ("pread", [Step("pread", "f")]),
       READ_F, item="h and i", sparse=True),
    _f("file-hole-read", "64 MiB file with a 16 MiB hole at 24 MiB (data written around it, fsync, evicted), "
       "mmap read pass: as a cold file, about 438 minor + 1 major", 64 * MiB, READ_F, item="h",
       hole=(24 * MiB, 16 * MiB), bands=_band("read", 435, 442, _HOLE_WHY, major=1)),
    _f("file-written-4k-read", "16 MiB file just written by 4 KiB write()s (cached: order-0 folios), read pass: "
       "256 faults (16 pages each)", 16 * MiB, READ_F, item="g", cached=True, written_in=4096),
    _f("file-pwrite-shared-write", "16 MiB cold file overwritten by 1 MiB pwrite()s (no fsync: 0 faults, order-8 "
       "folios, dirty), fsync, then a MAP_SHARED write pass: one do_shared_fault per folio (16); msync(MS_SYNC) "
       "write-protects them, the next pass faults per page (4096)", 16 * MiB,
       ("pwrite", [Step("pwrite", "f")]), ("fsync", [Step("fsync", "f")]), WRITE_F,
       ("msync-sync", [Step("msync", "f", args=(MS_SYNC,))]), ("write-again", [Step("touch", "f", kwargs=W)]),
       item="g and m", prot=RW),
    _f("file-pwrite-dirty-shared-write", "16 MiB cold file overwritten by 1 MiB pwrite()s, not synced (folios "
       "dirty), then a MAP_SHARED write pass: still one do_shared_fault per folio (16: page_mkwrite is called "
       "on a dirty folio too)", 16 * MiB, ("pwrite", [Step("pwrite", "f")]), WRITE_F, item="g and m", prot=RW),
    _f("file-shared-dontneed", "16 MiB warm file MAP_SHARED read (235), MADV_DONTNEED zaps the PTEs but the "
       "cache keeps the folios: a re-read maps them again by fault-around (235, 0 major)", 16 * MiB, READ_F,
       ("dontneed", [Step("madvise", "f", args=(MADV_DONTNEED,))]), ("read-again", [Step("touch", "f")]),
       item="e", warm="read"),
    _f("file-shared-mprotect-write", "16 MiB warm file MAP_SHARED PROT_READ read (235), mprotect to "
       "PROT_READ|PROT_WRITE: write-notify keeps the PTEs read-only, so the write pass takes one "
       "write-protect fault per page (4096)", 16 * MiB, READ_F,
       ("mprotect", [Step("mprotect", "f", args=(RW,))]), WRITE_F, item="e", warm="read"),
    _f("file-shared-mprotect-write-unread", "16 MiB warm file MAP_SHARED PROT_READ, mprotect to "
       "PROT_READ|PROT_WRITE before any access: the write pass finds no PTEs, one do_shared_fault per folio "
       "(904)", 16 * MiB, ("mprotect", [Step("mprotect", "f", args=(RW,))]), WRITE_F, item="e", warm="read"),
    _f("file-warm-sequential", "the 1 MiB-read-warmed 64 MiB file with MADV_SEQUENTIAL: advice changes "
       "readahead only, the cache is full, so 281 faults and 17 PMDs as without advice", 64 * MiB,
       ("sequential", [Step("madvise", "f", args=(MADV_SEQUENTIAL,))]), READ_F, item="b", warm="read"),
    _f("file-warm-fadv-random-madv-random", "order-0 folios (FADV_RANDOM warming) read ascending with "
       "MADV_RANDOM: fault-around still maps 16 cached pages per fault (16 MiB: 256; 64 MiB gives 1024)", 16 * MiB,
       ("random", [Step("madvise", "f", args=(MADV_RANDOM,))]), READ_F, item="b and c", warm="random"),
    _f("file-cold-nohugepage", "64 MiB cold file with MADV_NOHUGEPAGE: the same readahead and faults as no "
       "advice (435 minor + 1 major), but the order-9 folios are mapped by PTEs (FilePmdMapped 0)", 64 * MiB,
       ("nohugepage", [Step("madvise", "f", args=(MADV_NOHUGEPAGE,))]), READ_F, item="d", bands=COLD_ASC_BANDS),
    _f("file-cold-hugepage-shuffled", "64 MiB cold file with MADV_HUGEPAGE in random page order: order-9 "
       "windows, 19 minor + 13 major, all PMD-mapped", 64 * MiB,
       ("hugepage", [Step("madvise", "f", args=(MADV_HUGEPAGE,))]), SHUFFLED_F, item="d"),
    _f("file-munmap-half", "16 MiB warm file MAP_SHARED read (235), munmap of the first half: the other half "
       "keeps its PTEs, a read pass over it takes no fault", 16 * MiB, READ_F,
       ("munmap-first-half", [Step("munmap", "f", length=8 * MiB)]),
       ("read-second-half", [Step("touch", "f", offset=8 * MiB)]), item="e", warm="read"),
)


# --- processes: fork, COW, exit and wait (issue #9) ---------------------------------------------------

FORK_FACTS = "docs/facts/fork_cow.md"
# After fork, sharing shows in Pss and the Shared/Private split. Not Referenced: the sheet's child has 0 (its
# copied PTEs are old), the simulator too, but the real backend's forked interpreter shows 12-72 kB of a 4 MiB
# region and 6144-8192 kB of 8 MiB of THPs, varying from run to run.
FORK_FIELDS = SMAPS_FIELDS + ("Pss", "Shared_Clean", "Shared_Dirty", "Private_Clean")
MREMAP_FACTS = "docs/facts/mremap.md"
SZ = 16 * MiB  # the fact sheet's size: the issue's headline case (region a of fork-cow) and the files
SM = 4 * MiB  # the other anonymous cases, whose counts are one per page: the sheet's numbers / 4
PAGE = 4096
PMD = 2 * MiB


def _ph(name: str, *steps: Step, proc: str = "main", observe: tuple[str, ...] = ()) -> Phase:
    return Phase(name, steps, proc, observe)


def _fork_sc(name: str, doc: str, regions: dict[str, Region], *phases: Phase, section: str,
             source: str = FORK_FACTS, fields: tuple[str, ...] = FORK_FIELDS) -> Scenario:
    return Scenario(name, doc, regions, phases, f"{source} {section}; kernel/fork.c, mm/memory.c",
                    smaps_fields=fields)


FORKED = _ph("fork", fork("child"), observe=("child",))
FILE16 = FileSpec(SZ, cached=True)  # made by 1 MiB write()s and kept cached: 16 order-8 folios
FILE4 = FileSpec(SM, cached=True)  # where only COW write faults are counted: the file's size does not matter
MOVE = MREMAP_MAYMOVE | MREMAP_FIXED


def _t(op: str, region: str, **kwargs: object) -> Step:
    """touch of the whole region: ``_t("w", "a")`` writes one byte per page, ``_t("r", "a")`` reads."""
    return Step("touch", region, kwargs={"write": op == "w", **kwargs})


def _mremap(old: str, old_size: int, new_size: int, flags: int, to: str) -> Step:
    return Step("mremap", old, length=old_size, args=(new_size, flags), target=to)


# Each scenario gathers many cases (one region each) under one spawned process and one fork, since a real
# process takes seconds to spawn: the phases keep each case's counts apart.
FORK_SCENARIOS = (
    _fork_sc(
        "fork-cow", "one fork, a case per region. a (16 MiB written): the child's reads take 0 faults (page "
        "tables copied: anon_vma), its writes 4096 COW copies; after it exits the parent's writes still fault, "
        "reusing (4096). b (4 MiB written): the parent writes first while the child lives (1024 copies), the "
        "child's writes then reuse (1024). z (4 MiB only read: zero page, no anon_vma): the child re-faults "
        "(1024). fp, fs (16 MiB cached file, MAP_PRIVATE/MAP_SHARED, read: 31 faults each): no page tables "
        "copied, the child's reads fault the same 31; then Pss 8192, Shared_Clean 16384. fw (4 MiB MAP_PRIVATE "
        "window written: 1024 COW): PTEs copied, the child reads with 0 faults, writes 1024 (the parent's setup "
        "of b, z, fp, fs, fw: 1024 + 1024 + 31 + 31 + 1024 faults). Right after fork "
        "every written page is Shared_Dirty with half its size in each Pss",
        {"a": Region(SZ), "b": Region(SM), "z": Region(SM), "fp": Region(SZ, PROT_READ, MAP_PRIVATE, file=FILE16),
         "fs": Region(SZ, PROT_READ, MAP_SHARED, file=FILE16), "fw": Region(SM, RW, MAP_PRIVATE, file=FILE4)},
        _ph("write-a", _t("w", "a")),
        _ph("setup", _t("w", "b"), _t("r", "z"), _t("r", "fp"), _t("r", "fs"), _t("w", "fw")),  # 1024+1024+31+31+1024
        FORKED,
        _ph("child-reads-a", _t("r", "a"), proc="child"),
        _ph("child-writes-a", _t("w", "a"), proc="child", observe=("main",)),
        _ph("parent-writes-b", _t("w", "b"), observe=("child",)),
        _ph("child-writes-b", _t("w", "b"), proc="child"),
        _ph("child-reads-z", _t("r", "z"), proc="child"),
        _ph("child-reads-fp", _t("r", "fp"), proc="child"),
        _ph("child-reads-fs", _t("r", "fs"), proc="child", observe=("main",)),
        _ph("child-reads-fw", _t("r", "fw"), proc="child"),
        _ph("child-writes-fw", _t("w", "fw"), proc="child"),
        _ph("child-exits", exit_(0), proc="child"), _ph("wait", wait("child")),
        _ph("parent-writes-a", _t("w", "a")),
        section="sections 1a-1f (V1-V7: b, z and fw at 4 MiB, a quarter of the sheet's counts)"),
    _fork_sc(
        "fork-tree", "a (4 MiB written) shared by three: each Pss 1365 (4096/3), then the parent's writes (1024) "
        "leave the child and grandchild Pss 2048; d (MADV_DONTFORK) is absent from the children: the "
        "grandchild's read is SIGSEGV SEGV_MAPERR, wait status 0xb; w (MADV_WIPEONFORK) is there but empty: "
        "the child's reads fault (1024, zero page), its writes 1024; the child's exit(3) is status 0x300; after "
        "MADV_DOFORK and MADV_KEEPONFORK a second child reads both with 0 faults, its exit(263) is 0x700",
        {"a": Region(SM), "d": Region(SM), "w": Region(SM)},
        _ph("write-advise", _t("w", "a"), _t("w", "d"), _t("w", "w"), Step("madvise", "d", args=(MADV_DONTFORK,)),
            Step("madvise", "w", args=(MADV_WIPEONFORK,))),
        FORKED,
        _ph("fork-grandchild", fork("grandchild"), proc="child", observe=("main", "grandchild")),
        _ph("parent-writes-a", _t("w", "a"), observe=("child", "grandchild")),
        _ph("child-reads-w", _t("r", "w"), proc="child"),
        _ph("child-writes-w", _t("w", "w"), proc="child", observe=("main",)),
        _ph("grandchild-reads-d", _t("r", "d"), proc="grandchild"),
        _ph("child-waits", wait("grandchild"), proc="child"),
        _ph("child-exits", exit_(3), proc="child"), _ph("wait", wait("child")),
        _ph("undo", Step("madvise", "d", args=(MADV_DOFORK,)), Step("madvise", "w", args=(MADV_KEEPONFORK,))),
        _ph("fork-again", fork("child2")),
        _ph("child2-reads", _t("r", "d"), _t("r", "w"), proc="child2"),
        _ph("child2-exits", exit_(263), proc="child2"), _ph("wait-again", wait("child2")),
        section="sections 1g, 3 and 6 (V8, V14, V15, V19 at 4 MiB)"),
    _fork_sc(
        "thp-fork", "four 8 MiB regions of THPs written (4 faults each), one fork. p: the parent writes one byte "
        "per 2 MiB: 4 faults, each splits its PMD and copies one 4 KiB page (AnonHugePages 0, Pss 4104, "
        "Shared_Dirty 8176, Private_Dirty 16; the child keeps AnonHugePages 8192); after the child exits, page 1 "
        "of each 2 MiB: 4 faults (reuse), every page: 2040. c: the child writes first (4 faults, its "
        "AnonHugePages 0, the parent's 8192); the parent's later 4 writes reuse whole PMDs. e: untouched while "
        "the child lives: the parent's 4 writes after reuse the PMDs, every page after: 0. x: the child reads "
        "every page (0 faults), writes every page (2048 faults, AnonHugePages 0)",
        {"p": Region(8 * MiB), "c": Region(8 * MiB), "e": Region(8 * MiB), "x": Region(8 * MiB)},
        _ph("write", *(Step("madvise", r, args=(MADV_HUGEPAGE,)) for r in "pcex"), *(_t("w", r) for r in "pcex")),
        FORKED,
        _ph("parent-writes-p-per-2m", _t("w", "p", stride=PMD), observe=("child",)),
        _ph("child-writes-c-per-2m", _t("w", "c", stride=PMD), proc="child", observe=("main",)),
        _ph("child-reads-x", _t("r", "x"), proc="child"),
        _ph("child-writes-x", _t("w", "x"), proc="child", observe=("main",)),
        _ph("child-exits", exit_(0), proc="child"), _ph("wait", wait("child")),
        _ph("parent-writes-p-page-1", Step("touch", "p", offset=PAGE, kwargs={"write": True, "stride": PMD})),
        _ph("parent-writes-p-all", _t("w", "p")),
        _ph("parent-writes-c-per-2m", _t("w", "c", stride=PMD)),
        _ph("parent-writes-e-per-2m", _t("w", "e", stride=PMD)), _ph("parent-writes-e-all", _t("w", "e")),
        section="section 2 (V10-V13)"),
    _fork_sc(
        "populate-gup", "populate faults count in rusage but not in perf (GUP: no regs): 4096 and 0 for four 4 "
        "MiB populates. mw: mmap(MAP_POPULATE) RW: Rss 4096, writes after 0; mr: the same PROT_READ: zero-page "
        "mappings (Rss 0), reads 0, mprotect RW and writes 1024; pw: MADV_POPULATE_WRITE, writes after 0; pr: "
        "MADV_POPULATE_READ, Rss 0, writes 1024. f: a 4 MiB MAP_PRIVATE window of a cached 16 MiB file: "
        "writes COW 1024 pages; MADV_DONTNEED: Rss 0; reads map the file's folios again (4 faults, "
        "Private_Clean 4096, Anonymous 0); writes 1024",
        {"mw": Region(SM), "mr": Region(SM), "pw": Region(SM), "pr": Region(SM),
         "f": Region(SM, RW, MAP_PRIVATE, file=FILE16)},
        _ph("populate", Step("map", "mw", args=(RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE)),
            Step("map", "mr", args=(PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE)),
            Step("madvise", "pw", args=(MADV_POPULATE_WRITE,)), Step("madvise", "pr", args=(MADV_POPULATE_READ,))),
        _ph("access-populated", _t("w", "mw"), _t("r", "mr"), _t("w", "pw")),
        _ph("write-zero-page-populated", Step("mprotect", "mr", args=(RW,)), _t("w", "mr"), _t("w", "pr")),
        _ph("write-f", _t("w", "f")), _ph("dontneed-f", Step("madvise", "f", args=(MADV_DONTNEED,))),
        _ph("read-f", _t("r", "f")), _ph("write-f-again", _t("w", "f")),
        section="sections 4 and 5 (V16-V18 at 4 MiB)"),
    _fork_sc(
        "mremap-shmem", "mremap moves page tables, not pages: a (4 written pages) grown to 8 with "
        "MREMAP_MAYMOVE|FIXED onto b: 0 faults, Rss[a] 0, re-read 0, Rss[b] 16; a written 2 MiB THP (h) moved "
        "to a 2 MiB-aligned address (hb) keeps its PMD (AnonHugePages 2048), moved 4 KiB off one (hu) is split "
        "(AnonHugePages 0, Rss 2048), 0 faults; MREMAP_DONTUNMAP of d onto dn: the new range reads with 0 "
        "faults, the old one stays mapped but empty (Rss 0): 4 faults. Shared anonymous (4 MiB written): "
        "MADV_REMOVE (r) frees the pages: Rss 0, the re-read allocates new ones (1024 faults); MADV_DONTNEED "
        "(t) only unmaps them: the re-read maps the kept pages with fault-around (64). s (1 MiB): after fork "
        "the child's reads re-fault the shmem pages with fault-around (16; 16 MiB: 257 measured), its writes "
        "0, both Pss 512",
        {"a": Region(4 * PAGE), "b": Region(8 * PAGE), "h": Region(PMD), "hb": Region(PMD),
         "hu": Region(PMD, offset=PAGE), "d": Region(4 * PAGE), "dn": Region(4 * PAGE),
         "r": Region(SM, RW, SHARED_ANON), "t": Region(SM, RW, SHARED_ANON), "s": Region(MiB, RW, SHARED_ANON)},
        _ph("write", Step("madvise", "h", args=(MADV_HUGEPAGE,)), _t("w", "a"), _t("w", "d"), _t("w", "h")),
        _ph("mremap", _mremap("a", 4 * PAGE, 8 * PAGE, MOVE, "b"), _mremap("h", PMD, PMD, MOVE, "hb"),
            _mremap("d", 4 * PAGE, 4 * PAGE, MOVE | MREMAP_DONTUNMAP, "dn")),
        _ph("mremap-thp-unaligned", _mremap("hb", PMD, PMD, MOVE, "hu")),
        _ph("read-moved", Step("touch", "b", length=4 * PAGE), _t("r", "hu"), _t("r", "dn")),
        _ph("read-d", _t("r", "d")),
        _ph("write-shmem", _t("w", "r"), _t("w", "t"), _t("w", "s")),
        _ph("remove-r-dontneed-t", Step("madvise", "r", args=(MADV_REMOVE,)),
            Step("madvise", "t", args=(MADV_DONTNEED,))),
        _ph("read-r", _t("r", "r")), _ph("read-t", _t("r", "t")),
        FORKED, _ph("child-reads-s", _t("r", "s"), proc="child"),
        _ph("child-writes-s", _t("w", "s"), proc="child", observe=("main",)),
        section="mremap, MADV_REMOVE; fork_cow.md section 1h (V9)", source=MREMAP_FACTS, fields=FORK_FIELDS),
)


# --- mlock, RLIMIT_MEMLOCK and CAP_IPC_LOCK (issue #9) ------------------------------------------------

MLOCK_FACTS = "docs/facts/mlock.md"
MLOCK_FIELDS = ("Rss", "Locked", "Anonymous")  # VmFlags (lo) and resident pages are recorded for every region


def _ml(name: str, doc: str, regions: dict[str, Region], *phases: Phase, section: str) -> Scenario:
    return Scenario(name, doc, regions, phases, f"{MLOCK_FACTS} section '{section}'; mm/mlock.c, mm/gup.c",
                    smaps_fields=MLOCK_FIELDS)


def _fails(name: str, *steps: Step) -> Phase:
    """A phase whose call is expected to fail: counter ``errno``."""
    return Phase(name, steps, errno=True)


def _lock(region: str, length: int | None = None, offset: int = 0) -> Step:
    return Step("mlock", region, offset=offset, length=length)


def _unlock(region: str) -> Step:
    return Step("munlock", region)


P16 = 16 * PAGE  # 64 KiB: the lowered RLIMIT_MEMLOCK
MLOCK_SCENARIOS = (
    _ml("mlock-4mib", "with CAP_IPC_LOCK (root). a: mlock of 4 MiB of fresh anonymous memory populates it "
        "(1024 minflt, 0 perf page-faults: GUP), Locked 4096 kB; writes then take 0 faults; MADV_DONTNEED on the "
        "locked range is EINVAL; munlock: Locked 0. b: mlock of 8 MiB + 4 KiB, over the 8 MiB RLIMIT_MEMLOCK "
        "but CAP_IPC_LOCK bypasses it: 2049 faults. f: after mlockall(MCL_FUTURE) a new mmap is populated at "
        "mmap (16 GUP faults) and locked (Locked 64 kB); munlockall clears it",
        {"a": Region(SM), "b": Region(8 * MiB + PAGE), "f": Region(P16)},
        _ph("mlock-a", _lock("a")), _ph("write-a", _t("w", "a")),
        _fails("dontneed-locked-a", Step("madvise", "a", args=(MADV_DONTNEED,))),
        _ph("munlock-a", _unlock("a")),
        _ph("mlock-8m+4k-b", _lock("b")),
        _ph("mlockall-future-map-f", mlockall(MCL_FUTURE), Step("map", "f", args=(RW, MAP_PRIVATE | MAP_ANONYMOUS))),
        _ph("write-f", _t("w", "f")),
        _ph("munlockall", munlockall()),
        section="mlock of 4 MiB of fresh anonymous memory; The 8 MiB default; Other mappings (mlockall)"),
    _ml("mlock-limit", "without CAP_IPC_LOCK. RLIMIT_MEMLOCK 8 MiB: mlock of 8 MiB + 4 KiB (b) is ENOMEM with "
        "nothing populated (Rss 0); of 8 MiB, ok with 2048 faults (perf 0). The limit lowered to 64 KiB (soft; "
        "hard 8 MiB): s: 16 pages lock with 16 faults, the 17th is ENOMEM, relocking the 16 is ok (0 faults: "
        "pages already locked are not counted twice); o: mlock2(MLOCK_ONFAULT) of 16 pages populates nothing "
        "(Locked 0), the writes take 16 faults (perf 16), Locked 64; m: mmap(MAP_LOCKED) of 17 pages is EAGAIN "
        "(the old mapping stays); mlockall(MCL_CURRENT) is ENOMEM (on the real backend it would lock the "
        "interpreter too: only errno is compared)",
        {"b": Region(8 * MiB + PAGE), "s": Region(17 * PAGE), "o": Region(P16), "m": Region(17 * PAGE)},
        _ph("limit-8m-drop-cap", setrlimit(RLIMIT_MEMLOCK, 8 * MiB, 8 * MiB), drop_capability("CAP_IPC_LOCK")),
        _fails("mlock-8m+4k-b", _lock("b")),
        _ph("mlock-8m-b", _lock("b", 8 * MiB)),
        _ph("munlock-b", _unlock("b")),
        _ph("limit-64k", setrlimit(RLIMIT_MEMLOCK, P16, 8 * MiB)),
        _ph("mlock-16-s", _lock("s", P16)),
        _fails("mlock-17th-s", _lock("s", PAGE, offset=P16)),
        _fails("mlock-17-s", _lock("s")),
        _ph("relock-16-s", _lock("s", P16)),
        _ph("munlock-s", _unlock("s")),
        _ph("mlock-onfault-o", Step("mlock2", "o", args=(MLOCK_ONFAULT,))),
        _ph("write-o", _t("w", "o")),
        _ph("munlock-o", _unlock("o")),
        _fails("map-locked-17-m", Step("map", "m", args=(RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED))),
        _fails("mlockall-current", mlockall(MCL_CURRENT)),
        section="RLIMIT_MEMLOCK lowered to 64 KiB; The 8 MiB default"),
)


# --- MADV_COLD / MADV_PAGEOUT (issue #9) ---------------------------------------------------------------
# Counted per process: Rss and resident pages. The vmstat deltas of the fact sheet (pgactivate +1024, ...)
# are host-wide and move with other tasks' per-CPU batches on a shared host: tests/real/test_pageout_real.py
# compares them, with their tolerances; validate does not.

PAGEOUT_FACTS = "docs/facts/pageout.md"
FILLED = (0, 3, 64, 128, 192, 256, 320, 384, 448, 511)  # the THP pages given a non-zero byte, as the sheet's case
FILE4C = FileSpec(SM, cached=True)
PAGEOUT_SCENARIOS = (
    Scenario(
        "pageout", "MADV_PAGEOUT without swap. a (4 MiB private anonymous, written): nothing can be paged out, "
        "Rss 4096 kB kept, data kept (the pages are activated); c (4 MiB cached file, MAP_SHARED, read by "
        "faults): clean pages are dropped, Rss 0, resident 0, a read is then a major fault; d (the same file, "
        "written through MAP_SHARED: dirty): unmapped (Rss 0) but kept in the page cache (resident 1024); "
        "sw (4 MiB shmem, written): unmapped, Rss 0, resident 1024 (no swap: redirtied and kept); sr (4 MiB "
        "shmem, only read): clean shmem folios leave the file: Rss 0, resident 0. MADV_COLD of a first: nothing "
        "changes. h (a 2 MiB THP written by touch, whose bytes are 0): PAGEOUT splits it, and the split maps its "
        "zero-filled pages to the zero page (RMP_USE_SHARED_ZEROPAGE): AnonHugePages 0, Rss 0, resident still 512; "
        "hn (the same with 10 pages given a non-zero byte): only those survive, Rss 40 kB",
        {"a": Region(SM), "c": Region(SM, PROT_READ, MAP_SHARED, file=FILE4C),
         "d": Region(SM, RW, MAP_SHARED, file=FILE4C), "sw": Region(SM, RW, SHARED_ANON),
         "sr": Region(SM, RW, SHARED_ANON), "h": Region(PMD), "hn": Region(PMD)},
        (_ph("setup", _t("w", "a"), _t("r", "c"), _t("w", "d"), _t("w", "sw"), _t("r", "sr"),
             *(s for r in ("h", "hn") for s in (Step("madvise", r, args=(MADV_HUGEPAGE,)), _t("w", r))),
             *(Step("store", "hn", offset=i * PAGE, args=(7,)) for i in FILLED)),
         _ph("cold-a", Step("madvise", "a", args=(MADV_COLD,))),
         *(_ph(f"pageout-{r}", Step("madvise", r, args=(MADV_PAGEOUT,)))
           for r in ("a", "c", "d", "sw", "sr", "h", "hn")),
         _ph("reread-a", _t("r", "a"))),
        source=f"{PAGEOUT_FACTS} sections 'Anonymous memory', 'THP', 'Page cache', 'Shared anonymous memory'; "
               "mm/madvise.c: madvise_cold_or_pageout_pte_range(), mm/vmscan.c: reclaim_pages()",
        smaps_fields=("Rss", "Anonymous", "Private_Dirty", "AnonHugePages")),
)


# --- brk and glibc malloc (issue #9) --------------------------------------------------------------------
# pagelab.libc.malloc over the Process API on both backends: the allocator is the model on both (the host's
# glibc is compared with C probes in tests/real/test_malloc_real.py), the brk, mmap and faults are the kernel's.

MALLOC_FACTS = "docs/facts/malloc.md"
CHUNKS = 256  # pattern (c) at 1 MiB in 4 KiB chunks: each malloc is several round trips to the real child
MALLOC_SCENARIOS = (
    Scenario(
        "malloc", "the mmap threshold: malloc(1 MiB) is mmapped: writing it takes 258 faults (its 257 pages, and "
        "the heap's first page, mapped by the arena's first use); its free raises the threshold to 1 MiB + 4 KiB, "
        "so the next malloc(1 MiB) comes from the brk heap (256 faults: the heap grows by brk), and after free the "
        "third takes 0 (the trim threshold, now 2 MiB + 8 KiB, kept the pages). Then 256 chunks of 4 KiB written "
        "(in the freed heap: 1 fault), all freed but the last: resident pages unchanged (258: the last chunk pins "
        "the top, nothing is trimmed); malloc_trim(0) returns 1 and gives the free pages back (MADV_DONTNEED "
        "inside the heap, a brk shrink at its top): 3 resident",
        {}, (
            _ph("malloc-1m-mmapped", malloc("x", MiB), fill("x")),
            _ph("free-x", free("x")),
            _ph("malloc-1m-heap", malloc("y", MiB), fill("y")),
            _ph("free-y", free("y")),
            _ph("malloc-1m-again", malloc("z", MiB), fill("z")),
            _ph("free-z", free("z")),
            _ph("malloc-4k-chunks", *(s for i in range(CHUNKS) for s in (malloc(f"c{i}", PAGE), fill(f"c{i}")))),
            _ph("free-all-but-last", *(free(f"c{i}") for i in range(CHUNKS - 1))),
            _ph("malloc-trim", malloc_trim(0)),
        ), source=f"{MALLOC_FACTS} section 'glibc malloc' (patterns b1-b3 and c: b2 there is 224 after pattern "
                  "a's heap; c at 1 MiB in 4 KiB chunks); malloc/malloc.c (glibc 2.36)"),
    Scenario(
        "brk", "brk(2), the raw system call, relative to the heap start s (brk(0) first): brk(s + 1), brk(s + "
        "5000) and the shrink brk(s + 4096) return the new break (no faults: nothing is populated); brk past "
        "TASK_SIZE is refused (it returns the old break); brk(s) goes back to the start",
        {}, (
            _ph("brk+1", brk(1)), _ph("brk+5000", brk(5000)),
            _ph("brk+4096", brk(4096)), _ph("brk-past-task-size", brk(1 << 47)), _ph("brk-start", brk(0)),
        ), source=f"{MALLOC_FACTS} section 'brk(2), the raw system call'; mm/mmap.c: SYSCALL_DEFINE1(brk)"),
)


# --- exec of host programs, cold and warm (issue #9) -----------------------------------------------------

EXEC_FACTS = "docs/facts/exec.md"
EMPTY_DIR = "/tmp/pagelab-exec-empty"  # ls lists it, as tests/real/test_exec_real.py does
EXEC_PROGRAMS = {"true": ("/bin/true", ("true",)), "ls": ("/bin/ls", ("ls", EMPTY_DIR)),
                 "bash": ("/bin/bash", ("bash", "-c", "true"))}


def _exec_sc(prog: str, cache: str, band: tuple[int, int], major: tuple[int, int]) -> Scenario:
    path, argv = EXEC_PROGRAMS[prog]
    # measured: exec_probe's 10 launches (docs/facts/exec.md) and 3 runs of each scenario on pagelab.real, whose
    # child takes 1-3 faults of its own before execve; ASLR moves the fault-around windows from launch to launch
    why = "repeated real launches (exec.md)"
    return Scenario(f"exec-{prog}-{cache}", f"{' '.join(argv)}, {cache}: execve and its start-up ({band[0]}-"
                    f"{band[1]} minor faults, {major[0]}-{major[1]} major); the maps at its exit, in order, with "
                    "the real process's protections, names and sizes", {},
                    (Phase("exec", (exec_(path, argv, cache, dirs=(EMPTY_DIR,) if prog == "ls" else ()),)),),
                    f"{EXEC_FACTS} sections 'Fault counts over repeated launches' and 'The simulator against "
                    "these'; fs/exec.c, fs/binfmt_elf.c", bands={("exec", "minflt"): (*band, why),
                                                                 ("exec", "majflt"): (*major, why)},
                    smaps_fields=())


EXEC_SCENARIOS = (
    _exec_sc("true", "cold", (40, 56), (1, 5)), _exec_sc("true", "warm", (46, 56), (0, 0)),
    _exec_sc("ls", "cold", (70, 86), (2, 9)), _exec_sc("ls", "warm", (77, 86), (0, 0)),
    _exec_sc("bash", "cold", (112, 130), (2, 7)), _exec_sc("bash", "warm", (122, 131), (0, 0)),
)

SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    TOUR,
    _s("anon-write", "64 MiB private anonymous, one write per page: one fault per page",
       {"a": Region(64 * MiB)}, ("write", [Step("touch", "a", kwargs=W)]), ("rewrite", [Step("touch", "a", kwargs=W)])),
    _s("anon-read-write", "read every page (zero page, Rss 0), then write every page (a second fault each)",
       {"a": Region(64 * MiB)}, ("read", [Step("touch", "a")]), ("write", [Step("touch", "a", kwargs=W)])),
    _s("anon-dontneed", "MADV_DONTNEED drops written pages; writing again faults once per page",
       {"a": Region(16 * MiB)}, ("write", [Step("touch", "a", kwargs=W)]),
       ("dontneed", [Step("madvise", "a", args=(MADV_DONTNEED,))]), ("write-again", [Step("touch", "a", kwargs=W)]),
       source="linux-mm-facts.md section 14"),
    _s("anon-stride", "writes every 1 KiB: still one fault per page",
       {"a": Region(4 * MiB)}, ("write", [Step("touch", "a", kwargs={"write": True, "stride": 1024})])),
    _s("anon-random-access", "reads then writes of scattered pages, through access()",
       {"a": Region(8 * MiB)},
       ("read", [Step("access", "a", kwargs={"stride": 3 * 4096})]),
       ("write", [Step("access", "a", kwargs={"stride": 5 * 4096, "write": True})])),
    _s("shared-anon", "MAP_SHARED|MAP_ANONYMOUS: reads allocate shmem pages, later writes take no fault",
       {"s": Region(1 * MiB, RW, SHARED_ANON)}, ("read", [Step("touch", "s")]),
       ("write", [Step("touch", "s", kwargs=W)])),
    _s("shared-anon-fault-around", "shmem pages stay cached after MADV_DONTNEED; re-reads map 16 per fault",
       {"s": Region(1 * MiB, RW, SHARED_ANON)}, ("write", [Step("touch", "s", kwargs=W)]),
       ("dontneed", [Step("madvise", "s", args=(MADV_DONTNEED,))]), ("read", [Step("touch", "s")]),
       source="linux-mm-facts.md section 1"),
    _s("shared-anon-fault-around-unaligned", "the same with the VMA one page past a 64 KiB boundary: "
       "the first window is clamped to the VMA, so one more fault",
       {"s": Region(1 * MiB, RW, SHARED_ANON, offset=4096)}, ("write", [Step("touch", "s", kwargs=W)]),
       ("dontneed", [Step("madvise", "s", args=(MADV_DONTNEED,))]), ("read", [Step("touch", "s")]),
       source="linux-mm-facts.md section 1"),
    _s("shared-anon-write-after-dontneed", "writes never fault around: one do_shared_fault per page",
       {"s": Region(1 * MiB, RW, SHARED_ANON)}, ("write", [Step("touch", "s", kwargs=W)]),
       ("dontneed", [Step("madvise", "s", args=(MADV_DONTNEED,))]), ("write-again", [Step("touch", "s", kwargs=W)]),
       source="linux-mm-facts.md section 1"),
    _s("shared-anon-populate-read", "MADV_POPULATE_READ on shmem: one fault per new page, fault-around once cached",
       {"s": Region(1 * MiB, RW, SHARED_ANON)}, ("populate", [Step("madvise", "s", args=(MADV_POPULATE_READ,))]),
       ("dontneed", [Step("madvise", "s", args=(MADV_DONTNEED,))]),
       ("populate-again", [Step("madvise", "s", args=(MADV_POPULATE_READ,))]), source="linux-mm-facts.md section 0"),
    _s("prot-none", "PROT_NONE keeps the pages but any access is SIGSEGV SEGV_ACCERR",
       {"a": Region(1 * MiB)}, ("write", [Step("touch", "a", kwargs=W)]),
       ("mprotect", [Step("mprotect", "a", args=(PROT_NONE,))]), ("read", [Step("load", "a", offset=4096)]),
       source="linux-mm-facts.md section 14"),
    _s("mprotect-split", "mprotect of the middle of a VMA: the rest stays writable, the middle refuses writes",
       {"a": Region(1 * MiB)}, ("write-ends", [Step("touch", "a", length=256 * 1024, kwargs=W),
                                               Step("touch", "a", offset=768 * 1024, kwargs=W)]),
       ("mprotect", [Step("mprotect", "a", offset=256 * 1024, length=512 * 1024, args=(PROT_READ,))]),
       ("read-middle", [Step("touch", "a", offset=256 * 1024, length=512 * 1024)]),
       ("write-middle", [Step("store", "a", offset=300 * 1024, args=(1,))]), source="linux-mm-facts.md section 14"),
    _s("munmap-part", "munmap of the middle drops its pages; the ends keep theirs and take no new faults",
       {"a": Region(2 * MiB)}, ("write", [Step("touch", "a", kwargs=W)]),
       ("munmap-middle", [Step("munmap", "a", offset=512 * 1024, length=1 * MiB)]),
       ("write-ends", [Step("touch", "a", length=512 * 1024, kwargs=W),
                       Step("touch", "a", offset=1536 * 1024, kwargs=W)]), source="linux-mm-facts.md section 14"),
    _s("vma-flags", "advice and protections as VmFlags: each change splits the VMA where it applies",
       {"a": Region(2 * MiB), "b": Region(1 * MiB)},
       ("mprotect-unwritten", [Step("mprotect", "b", args=(PROT_READ,))]),
       ("mprotect-back", [Step("mprotect", "b", args=(RW,))]),
       ("advice", [Step("madvise", "a", length=256 * 1024, args=(MADV_HUGEPAGE,)),
                   Step("madvise", "a", offset=256 * 1024, length=256 * 1024, args=(MADV_RANDOM,)),
                   Step("madvise", "a", offset=512 * 1024, length=256 * 1024, args=(MADV_SEQUENTIAL,)),
                   Step("madvise", "a", offset=768 * 1024, length=256 * 1024, args=(MADV_DONTFORK,)),
                   Step("madvise", "a", offset=1024 * 1024, length=256 * 1024, args=(MADV_WIPEONFORK,)),
                   Step("madvise", "a", offset=1280 * 1024, length=256 * 1024, args=(MADV_DONTDUMP,)),
                   Step("madvise", "a", offset=1536 * 1024, length=256 * 1024, args=(MADV_NOHUGEPAGE,))]),
       ("undo", [Step("madvise", "a", offset=256 * 1024, length=512 * 1024, args=(MADV_NORMAL,)),
                 Step("madvise", "a", offset=768 * 1024, length=256 * 1024, args=(MADV_DOFORK,)),
                 Step("madvise", "a", offset=1024 * 1024, length=256 * 1024, args=(MADV_KEEPONFORK,)),
                 Step("madvise", "a", offset=1280 * 1024, length=256 * 1024, args=(MADV_DODUMP,))]),
       source="mm/madvise.c: madvise_vma_behavior(); mm/mprotect.c: mprotect_fixup(); fs/proc/task_mmu.c"),
    _s("mmap-fixed-replace", "MAP_FIXED over the middle of a written mapping: its pages are gone, the new "
       "ones fault again", {"a": Region(1 * MiB)}, ("write", [Step("touch", "a", kwargs=W)]),
       ("remap-middle", [Step("remap", "a", offset=256 * 1024, length=512 * 1024)]),
       ("write-again", [Step("touch", "a", kwargs=W)]), source="mm/vma.c: __mmap_region() unmaps what it covers"),
    _s("zero-page-mprotect", "zero-page PTEs stay read-only across mprotect RO -> RW: each write still faults",
       {"a": Region(1 * MiB)}, ("read", [Step("touch", "a")]),
       ("mprotect", [Step("mprotect", "a", args=(PROT_READ,)), Step("mprotect", "a", args=(RW,))]),
       ("write", [Step("touch", "a", kwargs=W)]), source="mm/mprotect.c: can_change_pte_writable()"),
    _s("read-then-write-interleaved", "read then write each page, interleaved in one batch: two faults per page",
       {"a": Region(1 * MiB)}, ("access", [Step("access", "a", kwargs={"write": "alternate"})])),
    _s("dontneed-part", "MADV_DONTNEED on a quarter: only that quarter refaults (to the zero page on read)",
       {"a": Region(1 * MiB)}, ("write", [Step("touch", "a", kwargs=W)]),
       ("dontneed-quarter", [Step("madvise", "a", offset=512 * 1024, length=256 * 1024, args=(MADV_DONTNEED,))]),
       ("read", [Step("touch", "a")]), ("write-again", [Step("touch", "a", kwargs=W)]),
       source="linux-mm-facts.md section 14"),
    _s("populate-write", "MADV_POPULATE_WRITE faults every page in inside the call; writes then take none",
       {"a": Region(1 * MiB)}, ("populate", [Step("madvise", "a", args=(MADV_POPULATE_WRITE,))]),
       ("write", [Step("touch", "a", kwargs=W)]), source="linux-mm-facts.md sections 0 and 3"),
    _s("populate-read", "MADV_POPULATE_READ maps the zero page, so every write still faults",
       {"a": Region(1 * MiB)}, ("populate", [Step("madvise", "a", args=(MADV_POPULATE_READ,))]),
       ("write", [Step("touch", "a", kwargs=W)]), source="linux-mm-facts.md sections 0 and 3"),
    _s("mprotect-ro-rw", "RW -> RO -> RW keeps exclusive anonymous pages writable: no faults after",
       {"a": Region(1 * MiB)}, ("write", [Step("touch", "a", kwargs=W)]),
       ("mprotect", [Step("mprotect", "a", args=(PROT_READ,)), Step("mprotect", "a", args=(RW,))]),
       ("write-again", [Step("touch", "a", kwargs=W)]), source="linux-mm-facts.md section 4"),
    _s("madv-free", "MADV_FREE pages that are not reclaimed keep their data: writes take no fault",
       {"a": Region(1 * MiB)}, ("write", [Step("touch", "a", kwargs=W)]),
       ("free", [Step("madvise", "a", args=(MADV_FREE,))]), ("write-again", [Step("touch", "a", kwargs=W)]),
       source="linux-mm-facts.md section 14"),
    _s("segv-accerr", "a write to a never-touched PROT_READ page: SIGSEGV SEGV_ACCERR, no fault counted",
       {"a": Region(1 * MiB, PROT_READ)}, ("read", [Step("touch", "a")]),
       ("write", [Step("store", "a", offset=8192, args=(1,))]), source="linux-mm-facts.md section 14"),
    _s("segv-maperr", "a read of an address that was munmapped: SIGSEGV SEGV_MAPERR",
       {"a": Region(1 * MiB)}, ("write", [Step("touch", "a", kwargs=W)]),
       ("munmap", [Step("munmap", "a", offset=512 * 1024)]),
       ("read", [Step("load", "a", offset=600 * 1024)]), source="linux-mm-facts.md section 14"),
    *THP_SCENARIOS,
    *FILE_SCENARIOS,
    *FORK_SCENARIOS,
    *MLOCK_SCENARIOS,
    *PAGEOUT_SCENARIOS,
    *MALLOC_SCENARIOS,
    *EXEC_SCENARIOS,
)}
