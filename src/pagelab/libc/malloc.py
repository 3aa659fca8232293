"""glibc's malloc (ptmalloc2, the main arena) over the Process API: where chunks go and which system calls it makes.

Mirrors glibc 2.36 malloc/malloc.c (this host's libc: Debian GLIBC 2.36-9+deb12u14): __libc_malloc(),
_int_malloc(), sysmalloc(), sysmalloc_mmap(), _int_free(), munmap_chunk(), malloc_consolidate(), systrim(),
mtrim() (malloc_trim), __libc_mallopt(), and the tcache (tcache_init(), tcache_get(), tcache_put()).

The allocator decides addresses and system calls the way glibc does: chunks of 16-byte granules with an
8-byte size header (request2size()), a per-thread tcache of up to 7 chunks per size up to 1032 bytes (its
640-byte tcache_perthread_struct is the heap's first chunk), fastbins up to 128 bytes that do not coalesce,
free chunks that coalesce with free neighbours and the top chunk, a main arena grown with brk by the request
plus M_TOP_PAD (128 KiB) plus MINSIZE rounded up to a page, requests that the top chunk cannot satisfy and
that are at least M_MMAP_THRESHOLD served by their own mmap (request2size(n) + SIZE_SZ rounded up to a page),
the dynamic threshold (freeing an mmapped chunk larger than the threshold, up to 32 MiB, raises
M_MMAP_THRESHOLD to its size and M_TRIM_THRESHOLD to twice that), the top chunk trimmed with a brk shrink
when a free leaves it at M_TRIM_THRESHOLD or more, and malloc_trim() giving the whole pages inside free chunks
back with madvise(MADV_DONTNEED). Each header glibc writes is a store into the process's memory, so a header
on a fresh page faults it, as in the real allocator: that is what makes fault counts agree. The stores write
the byte 0 (as p.touch(write=True) does): the page is faulted and dirtied, its contents stay zero.

The bins are glibc's lists in glibc's orders (libc/bins.py): the unsorted bin's pass from its tail with
the last-remainder rule, FIFO small bins, size-sorted large bins with their skip list, the binmap search;
held to the host's glibc address by address by tests/real/test_malloc_real.py (random sequences replayed
by docs/facts/malloc_c/malloc_replay.c: 150 sequences of 1500 calls, no difference).

Simplified: one arena (no threads); no realloc, calloc or memalign; M_PERTURB and the glibc.malloc.*
tunables are not modelled; the allocator's reads of its headers are not modelled (they are on pages it has
written).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

from ..constants import MADV_DONTNEED, MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE
from ..errors import NotModelled
from .bins import (
    NBINS,
    UNSORTED,
    Bins,
    bin_at,
    bin_index,
    in_smallbin_range,
    largebin_index,
    smallbin_index,
)

SIZE_SZ = 8
MALLOC_ALIGNMENT = 16
MALLOC_ALIGN_MASK = MALLOC_ALIGNMENT - 1
CHUNK_HDR_SZ = 2 * SIZE_SZ
MINSIZE = 32
SIZEOF_MALLOC_CHUNK = 6 * SIZE_SZ  # sizeof(struct malloc_chunk): mtrim()'s offset
PTRDIFF_MAX = (1 << 63) - 1
DEFAULT_MMAP_THRESHOLD = 128 * 1024
DEFAULT_TOP_PAD = 128 * 1024
DEFAULT_MMAP_THRESHOLD_MAX = 4 * 1024 * 1024 * SIZE_SZ  # 32 MiB on 64-bit
DEFAULT_MMAP_MAX = 65536
MAX_FAST_SIZE = 80 * SIZE_SZ // 4
DEFAULT_MXFAST = 64 * SIZE_SZ // 4  # 128 bytes
FASTBIN_CONSOLIDATION_THRESHOLD = 65536
MAX_ITERS = 10000  # _int_malloc(): unsorted chunks sorted per pass
MMAP_AS_MORECORE_SIZE = 1024 * 1024
TCACHE_MAX_BINS = 64
TCACHE_FILL_COUNT = 7
TCACHE_STRUCT_SIZE = 2 * TCACHE_MAX_BINS + SIZE_SZ * TCACHE_MAX_BINS  # counts (uint16) + entries
ULONG_MASK = (1 << 64) - 1

# mallopt() parameters (malloc.h)
M_MXFAST = 1
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3
M_MMAP_MAX = -4
M_CHECK_ACTION = -5
M_PERTURB = -6
M_ARENA_TEST = -7
M_ARENA_MAX = -8


class MallocError(ValueError):
    """A call glibc answers with malloc_printerr() and abort() (e.g. "free(): invalid pointer")."""


class ProcessLike(Protocol):
    """What the allocator needs of a process: the system calls and a store (either backend's Process)."""

    def brk(self, addr: int) -> int: ...
    def mmap(self, addr: int | None, length: int, prot: int, flags: int, fd: int = -1, offset: int = 0) -> int: ...
    def munmap(self, addr: int, length: int) -> None: ...
    def madvise(self, addr: int, length: int, advice: int) -> None: ...
    def access(self, addresses: list[int], *, write: bool = False) -> None: ...


def request2size(req: int) -> int:
    """Mirrors request2size(): the chunk size serving a request of ``req`` bytes."""
    return max(MINSIZE, (req + SIZE_SZ + MALLOC_ALIGN_MASK) & ~MALLOC_ALIGN_MASK)


def csize2tidx(size: int) -> int:
    """Mirrors csize2tidx(): the tcache bin of a chunk size."""
    return (size - MINSIZE + MALLOC_ALIGNMENT - 1) // MALLOC_ALIGNMENT


def _align_up(n: int, a: int) -> int:
    return (n + a - 1) & ~(a - 1)


@dataclass(slots=True)
class MallocPar:
    """Mirrors struct malloc_par (mp_): the tunables mallopt() sets and the mmap counts."""

    trim_threshold: int = 128 * 1024
    top_pad: int = DEFAULT_TOP_PAD
    mmap_threshold: int = DEFAULT_MMAP_THRESHOLD
    n_mmaps_max: int = DEFAULT_MMAP_MAX
    no_dyn_threshold: bool = False
    n_mmaps: int = 0
    max_fast: int = DEFAULT_MXFAST


@dataclass
class Malloc:
    """One process's glibc allocator state: the main arena (struct malloc_state), mp_ and the tcache.

    Addresses are user pointers (chunk + 16) on the API and chunk addresses inside. ``inuse`` maps every
    chunk handed out (and those parked in the tcache or fastbins, which glibc keeps marked in use) to its
    size; ``bins`` holds the free chunks in glibc's lists (libc/bins.py).
    """

    proc: ProcessLike
    mp: MallocPar = field(default_factory=MallocPar)
    top: int = 0
    top_size: int = 0
    brk: int = 0  # glibc's cached __curbrk (sbrk(0) makes no system call)
    system_mem: int = 0
    last_remainder: int = 0
    contiguous: bool = True  # the heap is one brk region (cleared once mmap stood in for sbrk)
    inuse: dict[int, int] = field(default_factory=dict)
    bins: Bins = field(init=False)
    fastbins: dict[int, list[int]] = field(default_factory=dict)  # size -> chunks, the head last
    tcache: dict[int, list[int]] = field(default_factory=dict)  # tc_idx -> chunks, the head last
    tcache_ready: bool = False
    mmapped: dict[int, int] = field(default_factory=dict)  # chunk address -> size
    pending: list[int] = field(default_factory=list)  # header stores not yet made (_store())

    def __post_init__(self) -> None:
        self.bins = Bins(self._store)

    @property
    def freed(self) -> dict[int, int]:
        """The binned free chunks: address -> size."""
        return self.bins.size

    def fork_copy(self, proc: ProcessLike) -> Malloc:
        """The child's allocator after fork(): the same arena state (the memory it describes is copied by
        the kernel), driving the child process ``proc``."""
        child = Malloc(proc, mp=replace(self.mp), top=self.top, top_size=self.top_size, brk=self.brk,
                       system_mem=self.system_mem, last_remainder=self.last_remainder, contiguous=self.contiguous,
                       inuse=dict(self.inuse), fastbins={k: list(v) for k, v in self.fastbins.items()},
                       tcache={k: list(v) for k, v in self.tcache.items()}, tcache_ready=self.tcache_ready,
                       mmapped=dict(self.mmapped))
        child.bins = self.bins.copy(child._store)
        return child

    # --- the headers glibc writes -------------------------------------------------------------------
    def _store(self, addr: int) -> None:
        """A header write: queued, and made (one access() batch, in order) before the next system call or when
        the public call returns, so a call costs the backend one batch of stores, not one call per header."""
        self.pending.append(addr)

    def _flush(self) -> None:
        if self.pending:
            addrs, self.pending = self.pending, []
            self.proc.access(addrs, write=True)

    def _sys_brk(self, addr: int) -> int:
        self._flush()
        return self.proc.brk(addr)

    def _sys_mmap(self, addr: int | None, length: int, prot: int, flags: int) -> int:
        self._flush()
        return self.proc.mmap(addr, length, prot, flags)

    def _sys_munmap(self, addr: int, length: int) -> None:
        self._flush()
        self.proc.munmap(addr, length)

    def _sys_madvise(self, addr: int, length: int, advice: int) -> None:
        self._flush()
        self.proc.madvise(addr, length, advice)

    def _set_head(self, chunk: int, size: int) -> None:
        """set_head(): the size word at chunk + 8, a store that faults its page if absent."""
        self._store(chunk + SIZE_SZ)

    def _set_foot(self, chunk: int, size: int) -> None:
        """set_foot(): the next chunk's prev_size word."""
        self._store(chunk + size)

    # --- malloc ---------------------------------------------------------------------------------------
    def _malloc(self, n: int) -> int:
        """Mirrors __libc_malloc(): the tcache first, then _int_malloc(); 0 on failure (errno ENOMEM)."""
        if n > PTRDIFF_MAX:
            return 0
        if not self.tcache_ready:
            self.tcache_ready = True  # tcache_init(): its struct is the arena's first chunk
            self._int_malloc(request2size(TCACHE_STRUCT_SIZE))
        nb = request2size(n)
        tidx = csize2tidx(nb)
        if self.tcache.get(tidx):
            return self._tcache_get(tidx) + CHUNK_HDR_SZ
        chunk = self._int_malloc(nb)
        return chunk + CHUNK_HDR_SZ if chunk else 0

    def _int_malloc(self, nb: int) -> int:
        """Mirrors _int_malloc(): a fastbin (LIFO), the exact small bin (FIFO), then the unsorted bin's pass
        (exact fits, the last remainder, every other chunk sorted into its bin), a large request's best fit
        in its own bin, the next non-empty bin (binmap), the top chunk, else sysmalloc(). Chunks of the
        request's size met on the way fill its tcache bin. Returns the chunk address (0: none)."""
        fb = self.fastbins.get(nb)
        if nb <= self.mp.max_fast and fb:
            victim = fb.pop()
            self._stash(nb, lambda: fb.pop() if fb else 0)
            return victim
        small = in_smallbin_range(nb)
        if small:
            b = bin_at(smallbin_index(nb))
            victim = self.bins.last(b)
            if victim != b:
                self._take(victim, nb)
                self._stash(nb, lambda: self._take_last(b, nb))
                return victim
        elif self._have_fastchunks():
            self.malloc_consolidate()
        while True:
            victim = self._unsorted_pass(nb)
            if victim:
                return victim
            idx = smallbin_index(nb) if small else largebin_index(nb)
            if not small:
                victim = self.bins.large_best_fit(idx, nb)
                if victim:
                    return self._split_binned(victim, nb, set_last_remainder=False)
            for i in self.bins.nonempty_from(idx + 1):  # the binmap search
                return self._split_binned(self.bins.last(bin_at(i)), nb, set_last_remainder=small)
            if self.top and self.top_size >= nb + MINSIZE:
                return self._split_top(nb)
            if not self._have_fastchunks():
                return self.sysmalloc(nb)
            self.malloc_consolidate()

    def _unsorted_pass(self, nb: int) -> int:
        """The unsorted bin, from its tail: a small request takes the last remainder when it is the only chunk
        there, an exact fit is returned (or parked in the tcache while it has room: the last one parked is
        returned after the pass), every other chunk goes to its bin. MAX_ITERS 10000 per pass."""
        unsorted = bin_at(UNSORTED)
        tidx = csize2tidx(nb)
        use_tcache = tidx < TCACHE_MAX_BINS
        cached = 0
        for _ in range(MAX_ITERS):
            victim = self.bins.last(unsorted)
            if victim == unsorted:
                break
            size = self.bins.size[victim]
            if in_smallbin_range(nb) and self.bins.bk[victim] == unsorted and victim == self.last_remainder \
                    and size > nb + MINSIZE:
                return self._split_binned(victim, nb, set_last_remainder=True)
            self.bins.unlink_chunk(victim)
            if size == nb:
                self._store(victim + size + SIZE_SZ)  # set_inuse_bit_at_offset()
                self.inuse[victim] = size
                if use_tcache and len(self.tcache.get(tidx, [])) < TCACHE_FILL_COUNT:
                    self._tcache_put(victim, tidx)
                    cached = 1
                    continue
                return victim
            self.bins.place(victim, size)
        if cached:
            return self._tcache_get(tidx)
        return 0

    def _take(self, victim: int, size: int) -> None:
        """A binned chunk of exactly the size handed out: unlinked, the next chunk's PREV_INUSE set."""
        self.bins.unlink_chunk(victim)
        self._store(victim + size + SIZE_SZ)  # set_inuse_bit_at_offset()
        self.inuse[victim] = size

    def _take_last(self, b: int, nb: int) -> int:
        victim = self.bins.last(b)
        if victim == b:
            return 0
        self._take(victim, nb)
        return victim

    def _split_binned(self, victim: int, nb: int, *, set_last_remainder: bool) -> int:
        """Hand out ``nb`` bytes of the binned chunk ``victim``: all of it when the rest could not be a chunk,
        else the remainder goes to the head of the unsorted bin (and becomes the last remainder for a small
        request served from the binmap search or from the last remainder itself)."""
        size = self.bins.size[victim]
        self.bins.unlink_chunk(victim)
        if size - nb < MINSIZE:
            self._store(victim + size + SIZE_SZ)  # set_inuse_bit_at_offset()
            self.inuse[victim] = size
            return victim
        rem = victim + nb
        self.bins.insert_unsorted(rem, size - nb)
        if set_last_remainder:
            self.last_remainder = rem
        self._set_head(victim, nb)
        self._set_head(rem, size - nb)
        self._set_foot(rem, size - nb)
        self.inuse[victim] = nb
        return victim

    def _stash(self, nb: int, take: Callable[[], int]) -> None:
        """_int_malloc()'s "stash them in the tcache": more chunks of the request's size, while its tcache bin
        has room."""
        tidx = csize2tidx(nb)
        if tidx >= TCACHE_MAX_BINS:
            return
        while len(self.tcache.get(tidx, [])) < TCACHE_FILL_COUNT:
            chunk = take()
            if not chunk:
                return
            self._tcache_put(chunk, tidx)

    def _tcache_put(self, chunk: int, tidx: int) -> None:
        """Mirrors tcache_put(): e->next and e->key written in the chunk's user memory."""
        self.tcache.setdefault(tidx, []).append(chunk)
        self._store(chunk + CHUNK_HDR_SZ)

    def _tcache_get(self, tidx: int) -> int:
        """Mirrors tcache_get(): the most recently put chunk; e->key = 0."""
        chunk = self.tcache[tidx].pop()
        self._store(chunk + CHUNK_HDR_SZ + SIZE_SZ)
        return chunk

    def _split_top(self, nb: int) -> int:
        """_int_malloc()'s use_top: the chunk is cut from the bottom of the top chunk."""
        chunk = self.top
        self.top, self.top_size = chunk + nb, self.top_size - nb
        self._set_head(chunk, nb)
        self._set_head(self.top, self.top_size)
        self.inuse[chunk] = nb
        return chunk

    def sysmalloc(self, nb: int) -> int:
        """Mirrors sysmalloc(): an mmapped chunk at or over the threshold, else grow the heap with sbrk by
        nb + top_pad + MINSIZE (less the top chunk, while the heap is contiguous) rounded up to a page. When
        the break cannot move (a mapping above it, RLIMIT_DATA/AS), the arena continues in mmap'd memory and is
        non-contiguous from then on: the old top is fenced off and freed."""
        if nb >= self.mp.mmap_threshold and self.mp.n_mmaps < self.mp.n_mmaps_max:
            chunk = self.sysmalloc_mmap(nb)
            if chunk:
                return chunk
        old_top, old_size = self.top, self.top_size
        # size_t arithmetic, as glibc's: a huge M_TOP_PAD (mallopt(M_TOP_PAD, -1)) wraps around
        size = (nb + self.mp.top_pad + MINSIZE - (old_size if self.contiguous else 0)) & ULONG_MASK
        size = _align_up(size, PAGE_SIZE) & ULONG_MASK
        brk = self._sbrk(size) if 0 < size <= PTRDIFF_MAX else -1
        snd_brk = -1
        if brk < 0:  # sysmalloc_mmap_fallback(&size, nb, old_size, pagesize, MMAP_AS_MORECORE_SIZE, ...): 2.36
            # passes minsize and pagesize swapped, so the first fallback is rounded up to 1 MiB (with the old top
            # added back) and later ones are only page-sized multiples (measured: 1048576, then 217088 ...)
            if self.contiguous:
                size = _align_up(size + old_size, MMAP_AS_MORECORE_SIZE) & ULONG_MASK
            size = max(size, PAGE_SIZE)
            if size > nb:
                try:
                    brk = self._sys_mmap(None, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
                    snd_brk = brk + size
                    self.contiguous = False
                except OSError:
                    return 0
        if brk < 0:
            return 0
        self.system_mem += size
        if old_top and brk == old_top + old_size and snd_brk < 0:
            self.top_size += size  # the break moved on from the top chunk: it grows in place
            self._set_head(self.top, self.top_size)
            return self._split_top(nb)
        correction = 0
        if self.contiguous:  # the first heap, or the break moved by someone else (foreign sbrk)
            if old_top:
                self.system_mem += brk - (old_top + old_size)
            correction = old_size + _align_up(brk + size + old_size, PAGE_SIZE) - (brk + size + old_size)
            snd_brk = self._sbrk(correction) if correction else self._sbrk(0)
            if snd_brk < 0:
                correction, snd_brk = 0, self._sbrk(0)
        elif snd_brk < 0:
            snd_brk = self._sbrk(0)
        self.top, self.top_size = brk, snd_brk - brk + correction
        self.system_mem += correction
        self._set_head(self.top, self.top_size)
        if old_top:
            self._fence_off(old_top, old_size)  # its free may trim the new top again (systrim())
        return self._split_top(nb) if self.top_size >= nb + MINSIZE else 0  # "catch all failure paths": ENOMEM

    def _fence_off(self, old_top: int, old_size: int) -> None:
        """sysmalloc()'s double fencepost at the end of the old top chunk (two in-use 16-byte chunks that no
        free can coalesce across), then _int_free() of what is left of it."""
        old_size = (old_size - 2 * CHUNK_HDR_SZ) & ~MALLOC_ALIGN_MASK
        self._set_head(old_top, old_size)
        self._set_head(old_top + old_size, CHUNK_HDR_SZ)
        self._set_head(old_top + old_size + CHUNK_HDR_SZ, CHUNK_HDR_SZ)
        if old_size >= MINSIZE:
            self.inuse[old_top] = old_size
            self._int_free(old_top, old_size)

    def _sbrk(self, increment: int) -> int:
        """glibc's __sbrk(): the old break, having asked brk(2) for old + increment; -1 if refused. __curbrk
        (self.brk) is read from the kernel once and then kept: sbrk(0) makes no system call."""
        if not self.brk:
            self.brk = self._sys_brk(0)
        if increment == 0:
            return self.brk
        old = self.brk
        if old + increment > ULONG_MASK or old + increment < 0:
            return -1
        self.brk = self._sys_brk(old + increment)  # __brk(): __curbrk = what the kernel returned
        return old if self.brk >= old + increment else -1

    def sysmalloc_mmap(self, nb: int) -> int:
        """Mirrors sysmalloc_mmap(): mmap(request + SIZE_SZ rounded to a page); prev_size 0, IS_MMAPPED."""
        size = _align_up(nb + SIZE_SZ, PAGE_SIZE)
        try:
            chunk = self._sys_mmap(None, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
        except OSError:
            return 0
        self._store(chunk)  # set_prev_size(p, 0); set_head(p, size | IS_MMAPPED)
        self.mmapped[chunk] = size
        self.mp.n_mmaps += 1
        return chunk

    # --- free ----------------------------------------------------------------------------------------
    def _free(self, mem: int) -> None:
        """Mirrors __libc_free(): mmapped chunks are unmapped (adjusting the dynamic threshold), others go to
        the tcache, a fastbin, or are coalesced into the bins or the top chunk (_int_free())."""
        if mem == 0:
            return
        chunk = mem - CHUNK_HDR_SZ
        if chunk in self.mmapped:
            self.munmap_chunk(chunk)
            return
        size = self.inuse.get(chunk)
        if size is None:
            raise MallocError(f"free(): invalid pointer {mem:#x}")
        self._int_free(chunk, size)

    def _int_free(self, chunk: int, size: int) -> None:
        """Mirrors _int_free(): the tcache, a fastbin, or coalesced into the unsorted bin or the top chunk, with
        a trim of the top when a chunk of 64 KiB or more came free."""
        mem = chunk + CHUNK_HDR_SZ
        tidx = csize2tidx(size)
        if tidx < TCACHE_MAX_BINS:
            tc = self.tcache.setdefault(tidx, [])
            if chunk in tc:
                raise MallocError("free(): double free detected in tcache 2")
            if len(tc) < TCACHE_FILL_COUNT:
                self._tcache_put(chunk, tidx)
                return
        if size <= self.mp.max_fast:
            fb = self.fastbins.setdefault(size, [])
            if fb and fb[-1] == chunk:
                raise MallocError("double free or corruption (fasttop)")
            fb.append(chunk)
            self._store(mem)  # p->fd
            return
        del self.inuse[chunk]
        size = self._coalesce(chunk, size)
        if size >= FASTBIN_CONSOLIDATION_THRESHOLD:
            if self._have_fastchunks():
                self.malloc_consolidate()
            if self.top_size >= self.mp.trim_threshold:
                self.systrim(self.mp.top_pad)

    def munmap_chunk(self, chunk: int) -> None:
        """Mirrors free()'s mmapped branch: the dynamic threshold, then munmap_chunk()."""
        size = self.mmapped.pop(chunk)
        mp = self.mp
        if not mp.no_dyn_threshold and size > mp.mmap_threshold and size <= DEFAULT_MMAP_THRESHOLD_MAX:
            mp.mmap_threshold = size
            mp.trim_threshold = 2 * size
        mp.n_mmaps -= 1
        self._sys_munmap(chunk, size)

    def _coalesce(self, chunk: int, size: int) -> int:
        """_int_free_merge_chunk(): merge with a free chunk below (!prev_inuse) and above (or into the top
        chunk), then put the result at the head of the unsorted bin; returns its size."""
        prev = self.bins.below.get(chunk)
        if prev is not None:
            size += self.bins.size[prev]
            self.bins.unlink_chunk(prev)
            chunk = prev
        nxt = chunk + size
        if nxt == self.top:
            self.top, self.top_size = chunk, self.top_size + size
            self._set_head(chunk, self.top_size)
            return self.top_size
        nsize = self.bins.size.get(nxt)
        if nsize is not None:
            self.bins.unlink_chunk(nxt)
            size += nsize
        else:
            self._store(nxt + SIZE_SZ)  # clear_inuse_bit_at_offset()
        self.bins.insert_unsorted(chunk, size)
        self._set_head(chunk, size)
        self._set_foot(chunk, size)
        return size

    def _have_fastchunks(self) -> bool:
        return any(self.fastbins.values())

    def malloc_consolidate(self) -> None:
        """Mirrors malloc_consolidate(): every fastbin chunk is freed for real (coalesced into the unsorted bin
        or the top), the smallest fastbin first, each from its head."""
        for size in sorted(self.fastbins):
            fb = self.fastbins[size]
            while fb:
                chunk = fb.pop()
                del self.inuse[chunk]
                self._coalesce(chunk, size)
        self.fastbins.clear()

    def systrim(self, pad: int) -> int:
        """Mirrors systrim(): give back the top chunk's whole pages above ``pad`` + MINSIZE with a brk shrink.

        In C's arithmetic, as glibc 2.36 computes it: ``top_area <= pad`` compares the signed top_area as
        unsigned, so a top chunk of exactly MINSIZE (top_area -1) passes, and the "extra" to release comes
        out negative: sbrk(-extra) then grows the heap by a page (more with a pad). Measured here
        (malloc_replay.c): malloc_trim(0) with a 32-byte top chunk moves the break up 4096 bytes.
        """
        top_area = (self.top_size - MINSIZE - 1) & ULONG_MASK
        if not self.top or top_area <= pad:
            return 0
        extra = ((top_area - pad) & ULONG_MASK) & ~(PAGE_SIZE - 1)
        if extra >= 1 << 63:
            extra -= 1 << 64  # assigned to a long
        current_brk = self._sbrk(0)
        if extra == 0 or current_brk != self.top + self.top_size:
            return 0
        self._sbrk(-extra)
        released = current_brk - self._sbrk(0)
        if released == 0:
            return 0
        self.system_mem -= released
        self.top_size -= released
        self._set_head(self.top, self.top_size)
        return 1

    # --- malloc_trim, mallopt -------------------------------------------------------------------------
    def _malloc_trim(self, pad: int) -> int:
        """Mirrors malloc_trim() -> mtrim(): consolidate, MADV_DONTNEED the whole pages inside each free
        chunk (past its list links), then systrim(pad). Returns 1 if any memory was released."""
        self.malloc_consolidate()
        result = 0
        psindex = bin_index(PAGE_SIZE)
        walk = [c for i in range(1, NBINS) if i == UNSORTED or i >= psindex for c in self.bins.chunks(i)]
        for chunk in walk:
            size = self.bins.size[chunk]
            if size <= PAGE_SIZE - 1 + SIZEOF_MALLOC_CHUNK:
                continue
            paligned = _align_up(chunk + SIZEOF_MALLOC_CHUNK, PAGE_SIZE)
            rest = size - (paligned - chunk)
            if rest > PAGE_SIZE - 1:
                self._sys_madvise(paligned, rest & ~(PAGE_SIZE - 1), MADV_DONTNEED)
                result = 1
        return result | self.systrim(pad & ULONG_MASK)

    def _mallopt(self, param: int, value: int) -> int:
        """Mirrors __libc_mallopt(): 1 on success, 0 if refused. Setting a threshold, the top pad or the mmap
        maximum turns the dynamic threshold off (no_dyn_threshold)."""
        self.malloc_consolidate()
        mp = self.mp
        if param == M_MXFAST:
            if not 0 <= value <= MAX_FAST_SIZE:
                return 0
            mp.max_fast = (value + SIZE_SZ) & ~MALLOC_ALIGN_MASK if value else MINSIZE // 2  # set_max_fast()
            return 1
        if param == M_TRIM_THRESHOLD:
            mp.trim_threshold = value & ULONG_MASK
        elif param == M_TOP_PAD:
            mp.top_pad = value & ULONG_MASK
        elif param == M_MMAP_THRESHOLD:  # do_set_mmap_threshold(): any value (measured: 33 MiB and -1 return 1)
            mp.mmap_threshold = value & ULONG_MASK
        elif param == M_MMAP_MAX:
            mp.n_mmaps_max = value
        elif param == M_PERTURB and value:
            raise NotModelled("mallopt(M_PERTURB) (filling memory on malloc/free) is not modelled")
        else:
            return 1  # M_CHECK_ACTION, M_ARENA_TEST, M_ARENA_MAX, M_PERTURB 0: nothing modelled changes
        mp.no_dyn_threshold = True
        return 1

    # --- the public calls: each ends with its header stores made ----------------------------------------
    def malloc(self, n: int) -> int:
        """malloc(3); see _malloc()."""
        try:
            return self._malloc(n)
        finally:
            self._flush()

    def free(self, mem: int) -> None:
        """free(3); see _free()."""
        try:
            self._free(mem)
        finally:
            self._flush()

    def malloc_trim(self, pad: int) -> int:
        """malloc_trim(3); see _malloc_trim()."""
        try:
            return self._malloc_trim(pad)
        finally:
            self._flush()

    def mallopt(self, param: int, value: int) -> int:
        """mallopt(3); see _mallopt()."""
        try:
            return self._mallopt(param, value)
        finally:
            self._flush()
