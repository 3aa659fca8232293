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

Simplified: the unsorted bin's FIFO pass, last_remainder and the bin lists' order are replaced by best fit
(the smallest free chunk that fits, lowest address first), which is what the small bins (exact size) and
large bins (best fit) give once the unsorted bin is sorted; list-link writes into neighbouring free chunks
(unlink_chunk()) are not stored; one arena (no threads); no brk-failure fallback to mmap'd non-contiguous
memory (malloc returns 0); no M_PERTURB, M_ARENA_*, realloc, calloc or memalign.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Protocol

from sortedcontainers import SortedDict, SortedList

from ..constants import MADV_DONTNEED, MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE
from ..errors import NotModelled

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
HEAP_MAX_SIZE = 2 * DEFAULT_MMAP_THRESHOLD_MAX
DEFAULT_MMAP_MAX = 65536
MAX_FAST_SIZE = 80 * SIZE_SZ // 4
DEFAULT_MXFAST = 64 * SIZE_SZ // 4  # 128 bytes
FASTBIN_CONSOLIDATION_THRESHOLD = 65536
MIN_LARGE_SIZE = 64 * MALLOC_ALIGNMENT  # 1024: chunks below it are small-bin sizes
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
    size; ``freed`` holds the binned free chunks by address; ``bins`` the same as (size, address) for best fit.
    """

    proc: ProcessLike
    mp: MallocPar = field(default_factory=MallocPar)
    top: int = 0
    top_size: int = 0
    brk: int = 0  # glibc's cached __curbrk (sbrk(0) makes no system call)
    system_mem: int = 0
    inuse: dict[int, int] = field(default_factory=dict)
    freed: SortedDict = field(default_factory=SortedDict)
    bins: SortedList = field(default_factory=SortedList)
    fastbins: dict[int, list[int]] = field(default_factory=dict)
    tcache: dict[int, list[int]] = field(default_factory=dict)
    tcache_ready: bool = False
    mmapped: dict[int, int] = field(default_factory=dict)  # chunk address -> size
    pending: list[int] = field(default_factory=list)  # header stores not yet made (_store())

    def fork_copy(self, proc: ProcessLike) -> Malloc:
        """The child's allocator after fork(): the same arena state (the memory it describes is copied by
        the kernel), driving the child process ``proc``."""
        return Malloc(proc, replace(self.mp), self.top, self.top_size, self.brk, self.system_mem, dict(self.inuse),
                      SortedDict(self.freed), SortedList(self.bins),
                      {k: list(v) for k, v in self.fastbins.items()}, {k: list(v) for k, v in self.tcache.items()},
                      self.tcache_ready, dict(self.mmapped))

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
        tc = self.tcache.get(csize2tidx(nb))
        if tc:
            chunk = tc.pop()  # tcache_get(): e->key = 0
            self._store(chunk + CHUNK_HDR_SZ + SIZE_SZ)
            return chunk + CHUNK_HDR_SZ
        chunk = self._int_malloc(nb)
        return chunk + CHUNK_HDR_SZ if chunk else 0

    def _int_malloc(self, nb: int) -> int:
        """Mirrors _int_malloc(): fastbin, exact small bin, best fit (consolidating fastbins first for a
        large request), the top chunk, else sysmalloc(). Returns the chunk address (0: none)."""
        fb = self.fastbins.get(nb)
        if nb <= self.mp.max_fast and fb:
            chunk = fb.pop()
            self._stash(nb, fb)
            return chunk
        if nb >= MIN_LARGE_SIZE and self._have_fastchunks():
            self.malloc_consolidate()
        while True:
            chunk = self._take_best_fit(nb)
            if chunk:
                return chunk
            if self.top and self.top_size >= nb + MINSIZE:
                return self._split_top(nb)
            if not self._have_fastchunks():
                return self.sysmalloc(nb)
            self.malloc_consolidate()

    def _stash(self, nb: int, chunks: list[int]) -> None:
        """_int_malloc()'s "stash them in the tcache": more chunks of the same size move to the tcache."""
        tidx = csize2tidx(nb)
        if tidx >= TCACHE_MAX_BINS:
            return
        tc = self.tcache.setdefault(tidx, [])
        while chunks and len(tc) < TCACHE_FILL_COUNT:
            chunk = chunks.pop()
            tc.append(chunk)
            self._store(chunk + CHUNK_HDR_SZ)  # tcache_put(): e->next, e->key

    def _take_best_fit(self, nb: int) -> int:
        """The small bin of exactly ``nb``, else the smallest free chunk that fits, split if the rest can be
        a chunk (the remainder stays free; set_head() of both, set_foot() of the remainder)."""
        i = self.bins.bisect_left((nb, 0))
        if i == len(self.bins):
            return 0
        size, chunk = (int(x) for x in self.bins[i])
        self._unbin(chunk, size)
        if size - nb >= MINSIZE:
            rem = chunk + nb
            self._set_head(chunk, nb)
            self._bin(rem, size - nb)
            self._set_head(rem, size - nb)
            self._set_foot(rem, size - nb)
        else:
            nb = size
            self._store(chunk + size + SIZE_SZ)  # set_inuse_bit_at_offset()
        self.inuse[chunk] = nb
        tidx = csize2tidx(nb)
        if size == nb and nb < MIN_LARGE_SIZE and tidx < TCACHE_MAX_BINS:  # an exact small-bin hit stashes
            room = TCACHE_FILL_COUNT - len(self.tcache.get(tidx, []))
            for _, c in list(self.bins.irange((nb, 0), (nb, ULONG_MASK)))[:room]:
                self._unbin(c, nb)
                self.inuse[c] = nb
                self._stash(nb, [c])
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
        """Mirrors sysmalloc(): an mmapped chunk at or over the threshold, else grow the heap with brk by
        nb + top_pad + MINSIZE (less the top chunk already there) rounded up to a page."""
        if nb >= self.mp.mmap_threshold and self.mp.n_mmaps < self.mp.n_mmaps_max:
            chunk = self.sysmalloc_mmap(nb)
            if chunk:
                return chunk
        size = nb + self.mp.top_pad + MINSIZE
        if self.top:
            size -= self.top_size
        size = _align_up(size, PAGE_SIZE)
        if not self.brk:
            self.brk = self._sys_brk(0)
        old_end = self.brk
        if size <= 0 or size > PTRDIFF_MAX or self._sys_brk(old_end + size) != old_end + size:
            if self._sys_brk(0) != old_end:  # a refused brk leaves the break where it was
                raise MallocError("sysmalloc: the break moved under the allocator")
            return 0
        self.brk = old_end + size
        self.system_mem += size
        if self.top and self.top + self.top_size == old_end:
            self.top_size += size  # contiguous: the top chunk grows in place
        else:
            self.top, self.top_size = old_end, size  # first call: the heap starts at the (aligned) break
        self._set_head(self.top, self.top_size)
        return self._split_top(nb)

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
        tidx = csize2tidx(size)
        if tidx < TCACHE_MAX_BINS:
            tc = self.tcache.setdefault(tidx, [])
            if chunk in tc:
                raise MallocError("free(): double free detected in tcache 2")
            if len(tc) < TCACHE_FILL_COUNT:
                tc.append(chunk)
                self._store(mem)  # tcache_put(): e->next and e->key
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
        """_int_free_merge_chunk(): merge with a free chunk below and above (or into the top chunk), then
        bin the result; returns its size."""
        i = self.freed.bisect_left(chunk)
        if i:
            bchunk, bsize = (int(x) for x in self.freed.peekitem(i - 1))
            if bchunk + bsize == chunk:
                self._unbin(bchunk, bsize)
                chunk, size = bchunk, bsize + size
        nxt = chunk + size
        if nxt == self.top:
            self.top, self.top_size = chunk, self.top_size + size
            self._set_head(chunk, self.top_size)
            return self.top_size
        nsize = self.freed.get(nxt)
        if nsize is not None:
            self._unbin(nxt, nsize)
            size += nsize
        else:
            self._store(nxt + SIZE_SZ)  # clear_inuse_bit_at_offset()
        self._bin(chunk, size)
        self._store(chunk + CHUNK_HDR_SZ)  # fd/bk of the unsorted bin
        self._set_head(chunk, size)
        self._set_foot(chunk, size)
        return size

    def _bin(self, chunk: int, size: int) -> None:
        self.freed[chunk] = size
        self.bins.add((size, chunk))

    def _unbin(self, chunk: int, size: int) -> None:
        del self.freed[chunk]
        self.bins.remove((size, chunk))

    def _have_fastchunks(self) -> bool:
        return any(self.fastbins.values())

    def malloc_consolidate(self) -> None:
        """Mirrors malloc_consolidate(): every fastbin chunk is freed for real (coalesced), lowest first."""
        chunks = sorted((c, s) for s, fb in self.fastbins.items() for c in fb)
        self.fastbins.clear()
        for chunk, size in chunks:
            del self.inuse[chunk]
            self._coalesce(chunk, size)

    def systrim(self, pad: int) -> int:
        """Mirrors systrim(): give back the top chunk's whole pages above ``pad`` + MINSIZE with a brk shrink."""
        top_area = self.top_size - MINSIZE - 1
        if not self.top or top_area <= pad:
            return 0
        extra = (top_area - pad) & ~(PAGE_SIZE - 1)
        if extra == 0 or self.brk != self.top + self.top_size:
            return 0
        new_brk = self._sys_brk(self.brk - extra)
        released = self.brk - new_brk
        if released <= 0:
            return 0
        self.brk = new_brk
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
        for chunk, size in list(self.freed.items()):
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
        elif param == M_MMAP_THRESHOLD:
            if value & ULONG_MASK > HEAP_MAX_SIZE // 2:
                return 0
            mp.mmap_threshold = value
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
