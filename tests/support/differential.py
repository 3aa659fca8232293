"""The same system calls on pagelab.real and on the simulator, from the same layout: a differential harness.

``Pair`` holds a real child (pagelab.real) and a simulated process (``Machine.from_host()``). Each example
lays out the same arena of pages on both (holes, PROT_NONE, read-only, read-write, shared, touched or
not) at ``ARENA_BASE``, runs a few calls drawn from ``calls()`` (negative, zero, unaligned, wrapping and
huge lengths; addresses inside, around and far outside the arena; unknown prot, flag and advice bits;
values that are not integers at all), and after each call demands the same outcome (errno, Python
exception type, or result) and the same VMAs (bounds, perms, VmFlags, Rss, Anonymous) everywhere outside
the real child's own memory. Afterwards it unmaps everything it made on both sides.

The child's own memory (its binary, heap, libraries, stack: the "band") must never be touched: a call
the kernel would accept over a range that reaches the band is skipped (``Pair.unsafe``), and so are
calls that would populate huge ranges. MADV_HWPOISON and MADV_SOFT_OFFLINE are never sent to the kernel.

Where the simulator raises NotModelled the kernel must have succeeded (a NotModelled never stands in for an
error); the example ends there, since the two states now differ by design.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

import pagelab as pl
from pagelab import abi
from pagelab import constants as C
from pagelab.mm.debug import check_machine
from pagelab.mm.types import VM_FLAG_MNEMONICS
from pagelab.observe.parse import parse_smaps

P = 4096
TASK_SIZE = C.TASK_SIZE
ARENA_BASE = 1 << 44  # 16 TiB: free in the real child, whose binary, heap, libraries and stack are far above
ARENA_PAGES = 16
RW = C.PROT_READ | C.PROT_WRITE
ANON = C.MAP_PRIVATE | C.MAP_ANONYMOUS
SHARED = C.MAP_SHARED | C.MAP_ANONYMOUS
BIG_POPULATE = 64 * P  # calls that fault pages in are kept this small (the host's memory is real)
BIG_MINCORE = 1024 * P

# Page kinds of an arena layout: (prot, flags, access afterwards).
KINDS: dict[str, tuple[int, int, str] | None] = {
    "hole": None,
    "none": (C.PROT_NONE, ANON, ""),
    "r": (C.PROT_READ, ANON, ""),
    "r-read": (C.PROT_READ, ANON, "read"),
    "rw": (RW, ANON, ""),
    "rw-dirty": (RW, ANON, "write"),
    "rwx": (RW | C.PROT_EXEC, ANON, ""),
    "shared": (RW, SHARED, ""),
    "shared-dirty": (RW, SHARED, "write"),
    "shared-r": (C.PROT_READ, SHARED, ""),
}
MODELLED_MNEMONICS = frozenset(VM_FLAG_MNEMONICS.values())

# --- the argument space --------------------------------------------------------------------------

SUB = st.sampled_from([0, 0, 0, 0, 1, 2048, 4095])
NOT_INTEGERS = st.sampled_from([1.5, float(ARENA_BASE), None, "4096", b"\x00", 2 ** 64 + 5, -(2 ** 63) - 1])
SPECIAL_ADDRS = [0, 1, P - 1, P, 0x10000, TASK_SIZE - 16 * P, TASK_SIZE - P, TASK_SIZE, TASK_SIZE + P,
                 1 << 47, 1 << 48, 1 << 63, (1 << 64) - P, (1 << 64) - 1, -P, -1, -(1 << 63), ARENA_BASE - 1]
SPECIAL_LENGTHS = [0, 1, P - 1, P + 1, -1, -P, -2 * P, -P + 1, -(1 << 63), 1 << 47, (1 << 47) - P, 1 << 63,
                   (1 << 64) - 1, (1 << 64) - P, 1 << 40, 1 << 34, 1 << 35, 2 << 20, TASK_SIZE, 1 << 46]
PROTS = [0, 1, 2, 3, 4, 5, 6, 7, C.PROT_SEM | 1, C.PROT_GROWSDOWN | 1, C.PROT_GROWSUP | 1,
         C.PROT_GROWSDOWN | C.PROT_GROWSUP | 1, C.PROT_GROWSDOWN, 0x10 | 1, 0x80, -1, 1 << 31, 0x7FFFFFFF]
MODELLED_ADVICE = [C.MADV_NORMAL, C.MADV_RANDOM, C.MADV_SEQUENTIAL, C.MADV_WILLNEED, C.MADV_DONTNEED,
                   C.MADV_FREE, C.MADV_DONTFORK, C.MADV_DOFORK, C.MADV_MERGEABLE, C.MADV_UNMERGEABLE,
                   C.MADV_HUGEPAGE, C.MADV_NOHUGEPAGE, C.MADV_DONTDUMP, C.MADV_DODUMP, C.MADV_WIPEONFORK,
                   C.MADV_KEEPONFORK, C.MADV_POPULATE_READ, C.MADV_POPULATE_WRITE, C.MADV_DONTNEED_LOCKED,
                   C.MADV_REMOVE, C.MADV_COLD, C.MADV_PAGEOUT]
INVALID_ADVICE = [5, 6, 7, 26, 27, 99, 104, 255, 1000, -1, 0x7FFFFFFF, 1 << 31]
# Never on the host: memory-failure injection (100, 101). MADV_COLLAPSE and the guard advices answer
# per VMA in ways the simulator does not model yet (they are in errno_cases where their answer is known).
NEVER_ADVICE = {C.MADV_HWPOISON, C.MADV_SOFT_OFFLINE, C.MADV_COLLAPSE, C.MADV_GUARD_INSTALL,
                C.MADV_GUARD_REMOVE}
MAP_KNOWN = [C.MAP_FIXED, C.MAP_FIXED_NOREPLACE, C.MAP_NORESERVE, C.MAP_STACK, C.MAP_SYNC, C.MAP_32BIT,
             C.MAP_DENYWRITE, C.MAP_EXECUTABLE, C.MAP_NONBLOCK, C.MAP_UNINITIALIZED, C.MAP_POPULATE,
             C.MAP_LOCKED, C.MAP_GROWSDOWN]
# MAP_HUGETLB (with its size bits) is left out of random flags: hugetlbfs has checks of its own.
RANDOM_FLAG_BITS = 0xFFFFFFFF & ~(C.MAP_HUGETLB | (0x3F << 26) | C.MAP_TYPE)


def _maybe_weird(s: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly ``s``; now and then a value that is not an integer, or does not fit a C argument."""
    return st.one_of(s, s, s, s, s, s, s, s, s, NOT_INTEGERS)


IN_ARENA = st.builds(lambda k: ARENA_BASE + k * P, st.integers(-2, ARENA_PAGES + 2))
AROUND_ARENA = st.builds(lambda k, sub: ARENA_BASE + k * P + sub, st.integers(-4, ARENA_PAGES + 4), SUB)
# Weighted towards calls the kernel carries out (page-aligned, in or around the arena), so that layouts
# change and get compared, with the edges (special values, any 64-bit value) in about one draw in four.
ANY_ADDR = st.one_of(st.sampled_from(SPECIAL_ADDRS), st.integers(-(1 << 63), (1 << 64) - 1))


@st.composite
def weighted(draw: st.DrawFn, *choices: tuple[int, st.SearchStrategy[Any]]) -> Any:
    """One of ``choices`` (weight, strategy), picked by weight (one_of alone gives the edges far more)."""
    k = draw(st.integers(0, sum(w for w, _ in choices) - 1))
    for w, strategy in choices:
        if k < w:
            return draw(strategy)
        k -= w
    raise AssertionError("unreachable")


ADDRS = weighted((12, IN_ARENA), (2, AROUND_ARENA), (2, ANY_ADDR))
MAP_TYPES = weighted((10, st.just(C.MAP_PRIVATE)), (4, st.just(C.MAP_SHARED)),
                     (2, st.sampled_from([C.MAP_SHARED_VALIDATE, 0, 4, 8, 0xF])))


@st.composite
def lengths(draw: st.DrawFn, addr: Any) -> Any:
    pages = st.builds(lambda k: k * P, st.integers(1, ARENA_PAGES + 2))
    odd = st.builds(lambda k, sub: k * P + sub, st.integers(0, ARENA_PAGES + 4), SUB)
    edges = st.one_of(st.sampled_from(SPECIAL_LENGTHS), st.integers(-(1 << 63), (1 << 64) - 1))
    if isinstance(addr, int):  # up to the end of user space, or of the 64-bit range, and just past it
        a = addr & ((1 << 64) - 1)
        edges = st.one_of(edges, st.sampled_from([TASK_SIZE - a + d for d in (-P, 0, 1, P)]
                                                 + [(1 << 64) - a + d for d in (-P, 0, P)]))
    return draw(weighted((12, pages), (2, odd), (3, edges)))


VALID_PROTS = st.sampled_from([0, 1, 3, 3, 5, 7, 4])
PROT = weighted((12, VALID_PROTS), (2, st.sampled_from(PROTS)), (1, st.integers(-(1 << 31), (1 << 32) - 1)))
ADVICE = weighted((12, st.sampled_from(MODELLED_ADVICE)), (1, st.sampled_from(INVALID_ADVICE)),
                  (1, st.integers(-(1 << 31), (1 << 32) - 1))).filter(
                      lambda a: abi.c_int(a, "advice") not in NEVER_ADVICE)


@st.composite
def map_flags(draw: st.DrawFn) -> int:
    flags = draw(MAP_TYPES)
    flags |= draw(weighted((12, st.just(C.MAP_ANONYMOUS)), (1, st.just(0))))
    if draw(st.booleans()):
        flags |= draw(st.sampled_from([C.MAP_FIXED, C.MAP_FIXED_NOREPLACE]))
    for bit in draw(st.lists(st.sampled_from(MAP_KNOWN), max_size=2)):
        flags |= bit
    flags |= draw(weighted((8, st.just(0)), (1, st.integers(0, (1 << 32) - 1)))) & RANDOM_FLAG_BITS
    return flags


@st.composite
def calls(draw: st.DrawFn) -> tuple[str, tuple[Any, ...]]:
    """One system call with its arguments: (name, args); one call in 16 has an argument that is not a C integer."""
    name = draw(st.sampled_from(["mmap", "munmap", "mprotect", "madvise", "mincore"]))
    addr = draw(ADDRS)
    length = draw(lengths(addr))
    args: tuple[Any, ...]
    if name == "mmap":
        hint = draw(st.one_of(st.just(None), st.just(addr)))
        fd = draw(st.sampled_from([-1, -1, -1, 1000, 0x7FFFFFFF]))
        offset = draw(weighted((12, st.just(0)), (2, st.sampled_from([P, 1, -P, 1 << 62, -1, (1 << 63) - P])),
                               (1, st.integers(-(1 << 63), (1 << 63) - 1))))
        args = (hint, length, draw(PROT), draw(map_flags()), fd, offset)
    elif name in ("munmap", "mincore"):
        args = (addr, length)
    elif name == "mprotect":
        args = (addr, length, draw(PROT))
    else:
        args = (addr, length, draw(ADVICE))
    if draw(weighted((15, st.just(False)), (1, st.just(True)))):
        k = draw(st.integers(0, len(args) - 1))
        args = args[:k] + (draw(NOT_INTEGERS),) + args[k + 1:]
    return name, args


LAYOUTS = st.lists(st.sampled_from(sorted(KINDS)), min_size=ARENA_PAGES, max_size=ARENA_PAGES)


# --- running both backends -----------------------------------------------------------------------

@dataclass
class Pair:
    """A real child and a simulated process, with the real child's own memory (the band) fenced off."""

    real: Any  # pagelab.real.Machine
    sim: pl.Machine
    rp: Any = None
    sp: Any = None
    band: tuple[int, int] = (0, 0)
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rp = self.real.spawn("differential")
        self.sp = self.sim.spawn("differential")
        starts, ends = [], []
        for v in parse_smaps(self.real.read(f"/proc/{self.rp.pid}/smaps")):
            if v["end"] <= TASK_SIZE + P:
                starts.append(v["start"])
                ends.append(v["end"])
        lo = min(starts) & ~((1 << 40) - 1)
        hi = max(ends)
        top = (hi + (1 << 30)) & ~((1 << 21) - 1)  # above the stack and the vDSO: the high window
        self.band = (lo, top if top < TASK_SIZE - 64 * P else TASK_SIZE)
        if not ARENA_BASE + (1 << 40) <= lo:
            raise RuntimeError(f"the real child's memory starts at {lo:#x}, too close to the arena")

    def count(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1

    # --- layout ---------------------------------------------------------------------------------
    def lay_out(self, kinds: list[str]) -> None:
        """The same arena on both: one MAP_FIXED mmap per run of equal pages, then the touches."""
        maps: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        touches: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        i = 0
        while i < len(kinds):
            j = i
            while j < len(kinds) and kinds[j] == kinds[i]:
                j += 1
            kind = KINDS[kinds[i]]
            if kind is not None:
                prot, flags, access = kind
                a = ARENA_BASE + i * P
                maps.append(("mmap", (a, (j - i) * P, prot, flags | C.MAP_FIXED), {}))
                if access:
                    touches.append(("touch", (a, (j - i) * P), {"write": access == "write"}))
            i = j
        for p in (self.rp, self.sp):
            if maps:
                p.run_phase(maps + touches)

    def clean(self) -> None:
        """Unmap everything outside the band, on both."""
        lo, hi = self.band
        for p in (self.rp, self.sp):
            p.munmap(0, lo)
            if hi < TASK_SIZE:
                p.munmap(hi, TASK_SIZE - hi)

    # --- one call -------------------------------------------------------------------------------
    def unsafe(self, name: str, args: tuple[Any, ...]) -> bool:
        """Would the kernel accept this call over a range that reaches the band, or populate a lot?

        Computed from the C values with the kernel's first checks only (alignment, wrap-around, length
        0): a call those checks reject is always safe to send, and shows how the kernel rejects it.
        """
        try:
            cargs = _CONVERT[name](*args)
        except (TypeError, ValueError, OverflowError):
            return False
        start, length = cargs[0], cargs[1]
        size = C.page_align(length) & ((1 << 64) - 1)
        if name == "mmap":
            flags = cargs[3]
            if not flags & C.MAP_ANONYMOUS or size == 0 or size > TASK_SIZE:
                return False
            if flags & (C.MAP_POPULATE | C.MAP_LOCKED) and size > BIG_POPULATE:
                return True
            if not flags & (C.MAP_FIXED | C.MAP_FIXED_NOREPLACE):
                # A hint is taken only when free: in the arena the backends agree, in the band they cannot
                # (the band is occupied only on the real side); huge mappings fit only the simulator's layout.
                return size > 1 << 44 or (start != 0 and self._crosses(start & C.PAGE_MASK, size))
            if start & ~C.PAGE_MASK or start > TASK_SIZE - size:
                return False
            return self._touches_band(start, size)
        if start & ~C.PAGE_MASK or length == 0 or size == 0 or start + size > (1 << 64) - 1:
            return False
        if name == "munmap":
            return start <= TASK_SIZE and length <= TASK_SIZE - start and self._touches_band(start, size)
        if name == "mincore":
            return start + length <= TASK_SIZE and (size > BIG_MINCORE or self._touches_band(start, size))
        if name == "mprotect":  # the walk stops at the first hole, and the band starts after one
            growsdown = cargs[2] & C.PROT_GROWSDOWN  # ... but PROT_GROWSDOWN looks at the first VMA found
            return self._in_band(start) or bool(growsdown and self._touches_band(start, size))
        advice = cargs[2]
        if advice in (C.MADV_POPULATE_READ, C.MADV_POPULATE_WRITE) and size > BIG_POPULATE:
            return True
        return self._touches_band(start, size)

    def _in_band(self, addr: int) -> bool:
        return self.band[0] <= addr < self.band[1]

    def _touches_band(self, start: int, size: int) -> bool:
        lo, hi = self.band
        return start < hi and start + size > lo and start < TASK_SIZE

    def _crosses(self, start: int, size: int) -> bool:
        """Does [start, start + size) lie partly inside and partly outside the band, or reach above it?"""
        return self._touches_band(start, size) or (start < self.band[0] < start + size)

    def call(self, name: str, args: tuple[Any, ...]) -> tuple[Any, Any]:
        """Run the call on both; return (real outcome, simulated outcome)."""
        if name == "madvise" and isinstance(args[2], int) and -(1 << 31) <= args[2] < 1 << 32:
            assert abi.c_int(args[2], "advice") not in (C.MADV_HWPOISON, C.MADV_SOFT_OFFLINE)
        real = _outcome(getattr(self.rp, name), args)
        sim = _outcome(getattr(self.sp, name), args)
        for p, out in ((self.rp, real), (self.sp, sim)):
            if name == "mmap" and out[0] == "ok" and out[1] == "elsewhere":
                p.munmap(out[2], out[3])
        return _public(real), _public(sim)

    # --- what both must agree on ----------------------------------------------------------------
    def vmas(self, which: str) -> list[tuple[Any, ...]]:
        """Every VMA outside the band: bounds, perms, modelled VmFlags, Rss and Anonymous (kB)."""
        text = self.real.read(f"/proc/{self.rp.pid}/smaps") if which == "real" \
            else self.sim.read(f"/proc/{self.sp.pid}/smaps")
        out = []
        for v in parse_smaps(text):
            if v["end"] > TASK_SIZE + P or self._in_band(v["start"]):
                continue
            flags = tuple(f for f in v.get("VmFlags", []) if f in MODELLED_MNEMONICS)
            out.append((hex(v["start"]), hex(v["end"]), v["perms"], flags, v.get("Rss"), v.get("Anonymous")))
        return out

    def check_sim(self) -> None:
        """The simulator's VMA set: a sound tree of page-aligned, non-empty, non-overlapping user ranges.

        (check_machine() recomputes every counter from the page tables; on a machine of this host's size
        that takes seconds, so the test runs it once at the end.)
        """
        mm = self.sp.task.mm
        mm.vmas.check()
        last = 0
        for v in mm.vmas:
            assert last <= v.vm_start < v.vm_end <= TASK_SIZE and not (v.vm_start | v.vm_end) & ~C.PAGE_MASK, v
            last = v.vm_end

    def check_machine(self) -> None:
        check_machine(self.sim)


_CONVERT = {"mmap": abi.mmap_args, "munmap": abi.munmap_args, "mprotect": abi.mprotect_args,
            "madvise": abi.madvise_args, "mincore": abi.mincore_args}


def _outcome(fn: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """("errno", e) / ("python", type) / ("notmodelled",) / ("ok", result...) for one call."""
    try:
        result = fn(*args)
    except OSError as exc:
        return ("errno", errno.errorcode.get(exc.errno or 0, exc.errno))
    except pl.NotModelled:
        return ("notmodelled",)
    except (TypeError, ValueError, OverflowError) as exc:
        return ("python", type(exc).__name__)
    if result is None:
        return ("ok", None)
    if hasattr(result, "tolist"):
        return ("ok", tuple(result.tolist()))
    # mmap: the address the caller asked for (MAP_FIXED, or a free hint), or somewhere of the kernel's choosing
    hint, length, _prot, flags = abi.mmap_args(*args)[:4]
    size = C.page_align(length)
    if flags & (C.MAP_FIXED | C.MAP_FIXED_NOREPLACE) or (hint and result == hint & C.PAGE_MASK):
        return ("ok", hex(result))
    return ("ok", "elsewhere", result, size)


def _public(out: tuple[Any, ...]) -> tuple[Any, ...]:
    return out[:2]
