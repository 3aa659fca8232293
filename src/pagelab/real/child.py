"""The real backend's child: a fresh interpreter that performs Process API calls on the host kernel.

It reads pickled commands from a pipe (in PIPE_BUF chunks, see ``chunks``), runs each through libc or on
memory through a numpy view of the whole user address space, and writes the reply. Before each command it makes its own
memory resident (``Server.settle``), so the loop itself takes no page faults and a measured window counts
only the faults the caller's accesses cause.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import gc
import mmap as _mmap
import os
import pickle
import resource
import signal
import struct
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

from . import libc
from .perf import open_exec_counters

VIEW_BASE = 4096  # numpy will not view address 0; nothing below mmap_min_addr is reachable anyway
VIEW_END = 1 << 47  # the top of the 4-level user address space
READ_BUFFER = 2 << 20  # bytes of the child's one read buffer (page-aligned, resident from the start)
IOV_MAX = 1024  # UIO_MAXIOV
MAX_RW_COUNT = 0x7FFFF000  # INT_MAX & PAGE_MASK: the most one read()/write() transfers (fs/read_write.c)
FIRST_FD = 3  # the caller's descriptors are numbered from 3 up, lowest free first (0-2 are stdio)
MAP_ANONYMOUS = 0x20


def _signed(addr: int) -> int:
    """ctypes wants a signed pointer-sized value for addresses in the upper half."""
    return addr - (1 << 64) if addr >= 1 << 63 else addr


class _Span:
    """An __array_interface__ for every byte from VIEW_BASE up to the top of user space."""

    __array_interface__ = {"data": (VIEW_BASE, False), "shape": (VIEW_END - VIEW_BASE,),
                           "typestr": "|u1", "version": 3}


# --- the pipe protocol, shared with machine.py -----------------------------------------------------
# Both pipes carry chunks of exactly CHUNK bytes: a header (request id, kind, index, count, payload
# bytes) and a slice of a pickled message, zero-padded. CHUNK is PIPE_BUF, so each chunk is written
# with one write() that the kernel makes atomic (pipe_write(): all of it or, non-blocking, EAGAIN), and a
# read of CHUNK bytes returns exactly one chunk. A message of several chunks can be cut short (the parent
# interrupted while writing): the reader drops the incomplete message when the next one begins. The
# child announces each request (START) before running it, so a fault report, the one write that is not
# a chunk (FAULT_LEN bytes from libc.install_fault_reporter), follows the START of the request that
# faulted.
CHUNK = 4096  # PIPE_BUF on Linux
CHUNK_HEAD = struct.Struct("<QIIII")  # request id, kind, index of this chunk, number of chunks, payload bytes
ROOM = CHUNK - CHUNK_HEAD.size
REQUEST, START, REPLY = 0, 1, 2
FAULT_LEN = 4 + libc.FAULT_FRAME.size


def chunks(rid: int, kind: int, payload: bytes) -> list[bytes]:
    """``payload`` as the CHUNK-sized pieces of message ``rid``."""
    count = max(1, -(-len(payload) // ROOM))
    return [(CHUNK_HEAD.pack(rid, kind, i, count, len(part)) + part).ljust(CHUNK, b"\0")
            for i, part in enumerate(payload[k:k + ROOM] for k in range(0, count * ROOM, ROOM))]


def parse_chunk(chunk: bytes) -> tuple[int, int, int, int, bytes]:
    """(request id, kind, index, count, payload slice) of one chunk."""
    rid, kind, index, count, n = CHUNK_HEAD.unpack_from(chunk)
    return rid, kind, index, count, chunk[CHUNK_HEAD.size:CHUNK_HEAD.size + n]


def read_exact(fd: int, n: int) -> bytes | None:
    """Read exactly ``n`` bytes from a blocking ``fd``, or None at end of file."""
    buf = b""
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def read_request(fd: int) -> tuple[int, bytes] | None:
    """The next whole request (id, pickled payload); None at end of file. A request cut short is dropped."""
    rid, parts = -1, list[bytes]()
    while True:
        chunk = read_exact(fd, CHUNK)
        if chunk is None:
            return None
        r, _kind, index, count, body = parse_chunk(chunk)
        if index == 0:
            rid, parts = r, []
        elif r != rid or index != len(parts):
            rid, parts = -1, []  # the rest of a request whose start was dropped: never happens, but never run it
            continue
        parts.append(body)
        if len(parts) == count:
            return rid, b"".join(parts)


def send(fd: int, rid: int, kind: int, payload: bytes = b"") -> None:
    """Write message ``rid`` to a blocking ``fd``, one atomic write per chunk."""
    for chunk in chunks(rid, kind, payload):
        view = memoryview(chunk)
        while view:
            view = view[os.write(fd, view):]


class Server:
    """Runs in the child: the memory view and one method per command."""

    def __init__(self) -> None:
        self.mem = np.asarray(_Span())
        self.user_ranges: list[tuple[int, int]] = []  # what the caller mapped (and did not unmap whole)
        self.perf_counters = open_exec_counters(for_exec=False)  # perf's page-fault events on this process
        # The caller's open files: its descriptor -> this process's own. The caller sees only what it opened
        # (the pipes and perf counters are not its files: EBADF), numbered as alloc_fd() numbers them.
        self.files: dict[int, int] = {}
        self.roots: dict[str, int] = {}  # private root -> an O_PATH descriptor of it (openat2 dirfd)
        # read()/pread() land here: one page-aligned buffer (O_DIRECT works), touched now, and repeated in
        # the iovec so a read of any size (up to MAX_RW_COUNT) is one readv() that never faults on it.
        self.read_buffer = _mmap.mmap(-1, READ_BUFFER)
        np.frombuffer(self.read_buffer, dtype=np.uint8)[::4096] = 1
        self.read_view = memoryview(self.read_buffer)
        # --- fork (issue #9): this process's own pipes and fault record (serve() sets them), and a forked
        # process whose pipe ends the controller has not yet claimed: (pid, fds kept open for pidfd_getfd)
        self.cmd_fd, self.reply_fd, self.record_fd = -1, -1, -1
        self.unclaimed: tuple[int, list[int]] | None = None
        self.reaped: dict[int, tuple[int, tuple[float, ...]]] = {}  # pid -> (status, rusage) until recorded
        self.brk_base, self.brk_set = -1, -1  # brk (issue #9): see brk()
        self.brk_range = (0, 0)

    def _fd(self, fd: int) -> int:
        """This process's descriptor for the caller's ``fd``; EBADF if the caller has no such file open."""
        try:
            return self.files[fd]
        except KeyError:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF)) from None

    def mmap(self, addr: int, length: int, prot: int, flags: int, fd: int, offset: int) -> int:
        # A descriptor the caller did not open becomes -1, so the kernel answers EBADF at its own point in
        # its order of checks (after the offset's alignment); MAP_ANONYMOUS ignores it either way.
        a = libc.mmap(addr, length, prot, flags, self.files.get(fd, -1), offset)
        self.user_ranges.append((a, a + length))
        return a

    def munmap(self, addr: int, length: int) -> None:
        libc.munmap(addr, length)
        end = addr + length  # forget what is gone, so settle() does not slow down with every mapping ever made
        self.user_ranges = [(s, e) for s, e in self.user_ranges if not addr <= s < e <= end]

    def mprotect(self, addr: int, length: int, prot: int) -> None:
        libc.mprotect(addr, length, prot)

    def madvise(self, addr: int, length: int, advice: int) -> None:
        libc.madvise(addr, length, advice)

    def mincore(self, addr: int, length: int) -> bytes:
        return libc.mincore(addr, length)

    def prctl(self, option: int, arg2: int, arg3: int, arg4: int, arg5: int) -> int:
        return libc.prctl(option, arg2, arg3, arg4, arg5)

    # --- mlock, rlimits and capabilities (issue #9): on this process only ---
    def mlock(self, addr: int, length: int) -> None:
        libc.mlock(addr, length)

    def mlock2(self, addr: int, length: int, flags: int) -> None:
        libc.mlock2(addr, length, flags)

    def munlock(self, addr: int, length: int) -> None:
        libc.munlock(addr, length)

    def mlockall(self, flags: int) -> None:
        libc.mlockall(flags)  # MCL_CURRENT locks (and populates) this interpreter's memory too

    def munlockall(self) -> None:
        libc.munlockall()

    def getrlimit(self, res: int) -> tuple[int, int]:
        return libc.prlimit(res, None)

    def setrlimit(self, res: int, soft: int, hard: int) -> None:
        libc.prlimit(res, (soft, hard))

    def drop_capability(self, cap: int) -> None:
        libc.drop_capability(cap)

    # --- brk (issue #9): the caller's part of the break, above this interpreter's own glibc heap ---
    def brk(self, addr: int) -> int:
        """brk(2) for the caller. This interpreter's glibc owns the heap below the break the caller first
        found (brk_base): a break below it, or a break glibc has moved since the caller's last call, would
        cut into the interpreter's own objects, so those raise instead of reaching the kernel."""
        cur = libc.brk(0)
        if self.brk_base < 0:
            self.brk_base = cur
        if addr == 0:
            return cur
        if self.brk_set >= 0 and cur != self.brk_set:
            raise RuntimeError(f"brk: the interpreter's malloc moved the break ({self.brk_set:#x} -> {cur:#x})")
        if addr < self.brk_base:
            with open("/proc/self/stat") as f:
                start_brk = int(f.read().rsplit(")", 1)[1].split()[44])  # field 47: mm->start_brk
            if addr < start_brk:  # brk() refuses a break below mm->start_brk: the kernel answers, nothing moves
                return libc.brk(addr)
            raise RuntimeError(f"brk: {addr:#x} is below the interpreter's own heap (it ends at {self.brk_base:#x}); "
                               "the real backend cannot lower the break there")
        new = libc.brk(addr)
        self.brk_set = new
        self.user_ranges = [r for r in self.user_ranges if r != self.brk_range]
        self.brk_range = (self.brk_base & ~4095, (new + 4095) & ~4095)
        self.user_ranges.append(self.brk_range)  # settle() leaves the caller's heap pages alone
        return new

    # --- mremap (issue #9) ---
    def mremap(self, addr: int, old_len: int, new_len: int, flags: int, new_addr: int) -> int:
        a = libc.mremap(addr, old_len, new_len, flags, new_addr)
        if not flags & 4 and old_len:  # the old range is gone unless MREMAP_DONTUNMAP or a duplicate
            self._forget_range(addr, old_len)
        self.user_ranges.append((a, a + new_len))
        return a

    def _forget_range(self, addr: int, length: int) -> None:
        end = addr + length
        self.user_ranges = [(s, e) for s, e in self.user_ranges if not addr <= s < e <= end]

    # --- file calls: performed here, so their faults and I/O are this process's -----------------------
    def open(self, root: str, path: str, flags: int, mode: int) -> int:
        """open(2) of ``path`` inside the private ``root`` (openat2(RESOLVE_IN_ROOT): the kernel walks it,
        chroot-style), or of a host path when ``root`` is ""; the caller's descriptor is the lowest free
        number from FIRST_FD, as alloc_fd() gives the lowest free one."""
        if root:
            if root not in self.roots:
                self.roots[root] = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            own = libc.open_in_root(self.roots[root], path, flags, mode)
        else:
            own = os.open(path, flags, mode & 0o7777)  # the kernel keeps S_IALLUGO of the mode
        fd = FIRST_FD
        while fd in self.files:
            fd += 1
        self.files[fd] = own
        return fd

    def close(self, fd: int) -> None:
        own = self._fd(fd)
        del self.files[fd]
        os.close(own)

    def lseek(self, fd: int, offset: int, whence: int) -> int:
        return os.lseek(self._fd(fd), offset, whence)

    def read(self, fd: int, n: int) -> int:
        return self._reader(fd, n, None)()

    def pread(self, fd: int, n: int, offset: int) -> int:
        return self._reader(fd, n, offset)()

    def _reader(self, fd: int, n: int, offset: int | None) -> Callable[[], int]:
        """A thunk for read(fd, n) / pread(fd, n, offset) into the read buffer: one readv()/preadv() whose
        iovec repeats the buffer (the kernel sees one request of n bytes, as readahead must). The iovec is
        built here, outside any measured window. A negative offset is EINVAL before anything else;
        n >= 2**63 is EINVAL after the descriptor's checks
        (rw_verify_area(): (ssize_t)count < 0; with no user buffer there is no access_ok() EFAULT)."""
        count = min(n, MAX_RW_COUNT)
        whole, rest = divmod(count, READ_BUFFER)
        bufs = [self.read_view] * whole + ([self.read_view[:rest]] if rest else [])

        def run() -> int:
            if offset is not None and offset < 0:  # ksys_pread64() checks before the descriptor (and
                raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))  # preadv2 takes -1 as "no offset")
            own = self._fd(fd)
            if n >> 63:  # vfs_read(): EBADF without FMODE_READ, then rw_verify_area()'s EINVAL, before ->read
                if fcntl.fcntl(own, fcntl.F_GETFL) & os.O_ACCMODE not in (os.O_RDONLY, os.O_RDWR):
                    raise OSError(errno.EBADF, os.strerror(errno.EBADF))
                raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
            if n == 0:  # read(fd, buf, 0): every check of a read, and no transfer
                return len(os.read(own, 0) if offset is None else os.pread(own, 0, offset))
            return os.readv(own, bufs) if offset is None else os.preadv(own, bufs, offset)

        return run

    def write(self, fd: int, data: bytes) -> int:
        return os.write(self._fd(fd), data)

    def pwrite(self, fd: int, data: bytes, offset: int) -> int:
        if offset < 0:  # ksys_pwrite64() checks before the descriptor (which _fd() looks up here first)
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        return os.pwrite(self._fd(fd), data, offset)

    def ftruncate(self, fd: int, length: int) -> None:
        os.ftruncate(self._fd(fd), length)

    def fsync(self, fd: int) -> None:
        os.fsync(self._fd(fd))

    def fdatasync(self, fd: int) -> None:
        os.fdatasync(self._fd(fd))

    def msync(self, addr: int, length: int, flags: int) -> None:
        libc.msync(addr, length, flags)

    def fadvise(self, fd: int, offset: int, length: int, advice: int) -> None:
        os.posix_fadvise(self._fd(fd), offset, length, advice)

    def cachestat(self, fd: int, offset: int, length: int) -> dict[str, int]:
        return libc.cachestat(self._fd(fd), offset, length)

    def warm_files(self) -> None:
        """Run every file call once alone and once in a phase on a scratch memfd, so what the interpreter
        allocates on their first use is allocated before anything is measured."""
        own = os.memfd_create("pagelab-warm")
        fd = FIRST_FD
        while fd in self.files:
            fd += 1
        self.files[fd] = own
        try:
            ops: list[tuple[str, tuple[Any, ...]]] = [
                ("ftruncate", (fd, 8192)), ("write", (fd, b"x" * 4096)), ("pwrite", (fd, b"y", 4096)),
                ("lseek", (fd, 0, 0)), ("read", (fd, 4096)), ("pread", (fd, 4096, 0)), ("read", (fd, 0)),
                ("fsync", (fd,)), ("fdatasync", (fd,)), ("fadvise", (fd, 0, 0, 0)), ("cachestat", (fd, 0, 0))]
            for op, args in ops:
                getattr(self, op)(*args)
            self.phase(ops)
            a = libc.mmap(0, 8192, 3, 1, own, 0)
            try:
                self.msync(a, 8192, 4)
                self.phase([("msync", (a, 8192, 4))])
            finally:
                libc.munmap(a, 8192)
            self.close(self.open("", "/dev/null", os.O_RDONLY, 0))
            self.close(self.open("/", "/dev/null", os.O_RDONLY, 0))  # openat2(RESOLVE_IN_ROOT), as open() uses it
        finally:
            self.files.pop(fd, None)
            os.close(own)

    def load(self, addr: int) -> int:
        return int(ctypes.c_ubyte.from_address(_signed(addr)).value)  # any address: kernel ones fault too

    def store(self, addr: int, value: int) -> None:
        ctypes.c_ubyte.from_address(_signed(addr)).value = value

    def touch(self, addr: int, length: int, write: bool, stride: int) -> None:
        if VIEW_BASE <= addr < VIEW_END:
            inside = min(length, VIEW_END - addr)
            view = self.mem[addr - VIEW_BASE:addr - VIEW_BASE + inside:stride]
            if write:
                view[...] = 0
            elif view.size:
                np.bitwise_or.reduce(view)
            done = -(-inside // stride) * stride
            addr, length = addr + done, length - done
        # Outside the user view (page 0, kernel or non-canonical addresses): one access at a time, so
        # the first that faults kills the process here, as the same access does on the simulator.
        for a in range(addr, addr + max(length, 0), stride):
            if write:
                self.store(a, 0)
            else:
                self.load(a)

    def access(self, addrs: np.ndarray, writes: np.ndarray) -> None:
        self.prepare("access", (addrs, writes))()

    def prepare(self, op: str, args: tuple[Any, ...]) -> Callable[[], Any]:
        """A thunk that performs ``op``; for access(), read() and pread() every buffer is allocated here,
        not in the thunk."""
        if op in ("fork", "forked", "wait", "exit"):
            raise ValueError(f"{op} is a call of its own, not an operation of a measured phase")
        if op == "read":
            return self._reader(args[0], args[1], None)
        if op == "pread":
            return self._reader(args[0], args[1], args[2])
        if op != "access":
            fn = getattr(self, op)
            return lambda: fn(*args)
        addrs, writes = args
        if addrs.size and (int(addrs.min()) < VIEW_BASE or int(addrs.max()) >= VIEW_END):
            return lambda: self._access_slowly(addrs, writes)  # outside the user view: one by one
        addrs -= VIEW_BASE  # in place
        if writes.shape[0] == 1:
            runs = [(addrs, bool(writes[0]))]
        else:
            cuts = np.flatnonzero(np.diff(writes)) + 1
            runs = list(zip(np.split(addrs, cuts), (bool(w) for w in writes[np.r_[0, cuts]]), strict=True))
        out = np.empty(max(len(r) for r, _ in runs), dtype=np.uint8)
        mem = self.mem

        def run() -> None:
            for idx, write in runs:
                if write:
                    mem[idx] = 0
                else:
                    np.take(mem, idx, out=out[:idx.shape[0]])

        return run

    def _access_slowly(self, addrs: np.ndarray, writes: np.ndarray) -> None:
        for k, addr in enumerate(addrs.tolist()):
            if writes[0 if writes.shape[0] == 1 else k]:
                self.store(addr, 0)
            else:
                self.load(addr)

    def _overlaps_caller(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """For each span [lo, hi): does it overlap a range the caller mapped? O(log n) a span: the
        ranges sorted by start, with the running maximum of their ends."""
        if not self.user_ranges:
            return np.zeros(lo.shape[0], dtype=bool)
        ranges = np.array(sorted(self.user_ranges), dtype=np.uint64)
        reach = np.maximum.accumulate(ranges[:, 1])
        k = np.searchsorted(ranges[:, 0], hi, side="left")  # ranges starting below hi: [0, k)
        overlaps: np.ndarray = (k > 0) & (reach[np.maximum(k, 1) - 1] > lo)
        return overlaps

    def settle(self) -> None:
        """Make the interpreter's own memory resident so a measured window takes none of its faults.

        The child runs with PYTHONMALLOC=malloc and glibc told to keep its heap, so Python's objects
        live in the brk heap. MADV_POPULATE_WRITE on every private writable mapping that is not the
        caller's (the heap, the stack, libraries' .data and .bss, where numpy keeps its allocation
        cache) faults in any page not yet touched and keeps the contents. The caller's own mappings
        are never touched.
        """
        with open("/proc/self/maps") as f:
            lines = [line.split(maxsplit=2) for line in f.read().splitlines()]
        spans = [[int(x, 16) for x in f[0].split("-")] for f in lines if f[1] == "rw-p"]
        if not spans:
            return
        bounds = np.array(spans, dtype=np.uint64)
        ours = self._overlaps_caller(bounds[:, 0], bounds[:, 1])
        for (lo, hi), caller in zip(spans, ours.tolist(), strict=True):
            if caller:
                continue
            # Populate only what is missing: MADV_POPULATE_WRITE also drains this CPU's LRU batches
            # (lru_add_drain), which would disturb the caller's state (e.g. LazyFree after MADV_FREE).
            missing = np.flatnonzero((np.frombuffer(libc.mincore(lo, hi - lo), dtype=np.uint8) & 1) == 0)
            if missing.size == 0:
                continue
            try:
                libc.madvise(lo + int(missing[0]) * 4096, (int(missing[-1]) - int(missing[0]) + 1) * 4096, 23)
            except OSError:
                pass

    # --- fork, exit and wait (issue #9) ---------------------------------------------------------------
    def fork(self) -> tuple[int, int, int, int, int] | None:
        """fork(2) of this process. The new process gets its own command and reply pipes and fault record,
        made here before forking; it closes this process's, makes its interpreter's memory its own
        (settle_all) and serves its own pipes. In this process (the parent) the result is (pid, cmd_w,
        rep_r, record, pidfd): descriptors the controller duplicates with pidfd_getfd(2) and then claims
        ("forked"); until then they stay open here, and any other request first kills and reaps the new
        process (an interrupted fork leaves nothing behind). None in the new process.

        Both processes then make the interpreter's memory their own: after fork every private page is
        write-protected in both, and the file and shared mappings the new process did not get page tables
        for would fault on first use; only the caller's mappings keep their copy-on-write state."""
        mapped = self._mapped_runs()
        cmd_r, cmd_w = os.pipe()
        rep_r, rep_w = os.pipe()
        record = os.memfd_create("pagelab-fault", os.MFD_CLOEXEC)
        os.ftruncate(record, FAULT_LEN)
        try:
            pid = os.fork()
        except OSError:  # EAGAIN (RLIMIT_NPROC, pid_max), ENOMEM: the caller's OSError, nothing left open
            for fd in (cmd_r, cmd_w, rep_r, rep_w, record):
                os.close(fd)
            raise
        if pid == 0:
            try:
                for fd in (self.cmd_fd, self.reply_fd, self.record_fd, cmd_w, rep_r):
                    if fd >= 0:
                        os.close(fd)  # the parent's pipes: only the parent answers on them
                self.cmd_fd, self.reply_fd, self.record_fd, self.unclaimed = cmd_r, rep_w, record, None
                self.reaped = {}
                libc.install_fault_reporter(rep_w, record)
                if self.perf_counters is not None:
                    self.perf_counters.close()  # they count the parent
                self.perf_counters = open_exec_counters(for_exec=False)
                for lo, hi, write in mapped:  # what the parent had mapped, and only that
                    try:
                        libc.madvise(lo, hi - lo, 23 if write else 22)  # MADV_POPULATE_(WRITE|READ)
                    except OSError:
                        pass  # [vvar] and other VM_PFNMAP/VM_IO mappings
            except BaseException:  # noqa: BLE001 - nothing may reach the parent's pipes
                os._exit(70)
            return None
        os.close(cmd_r)
        os.close(rep_w)
        pidfd = os.pidfd_open(pid)
        self.unclaimed = (pid, [cmd_w, rep_r, record, pidfd])
        for lo, hi, write in mapped:
            if write:  # the private pages are write-protected here too: copy or reuse them now
                try:
                    libc.madvise(lo, hi - lo, 23)
                except OSError:
                    pass
        return pid, cmd_w, rep_r, record, pidfd

    def forked(self, pid: int) -> None:
        """The controller holds the new process's pipe ends: close this process's copies."""
        if self.unclaimed is None or self.unclaimed[0] != pid:
            raise OSError(errno.ESRCH, f"no fork of pid {pid} waits to be claimed")
        fds, self.unclaimed = self.unclaimed[1], None
        for fd in fds:
            os.close(fd)

    def drop_unclaimed(self) -> None:
        """A fork whose claim never came (the controller was interrupted): kill and reap that process."""
        if self.unclaimed is None:
            return
        pid, fds = self.unclaimed
        self.unclaimed = None
        signal.pidfd_send_signal(fds[3], signal.SIGKILL)
        for fd in fds:
            os.close(fd)
        _, status, usage = os.wait4(pid, 0)
        self.reaped[pid] = (status, tuple(usage))  # the controller may know it (the claim was cut short)

    def wait(self, pid: int, options: int, unrecorded: list[int]
             ) -> tuple[int, int, tuple[float, ...], dict[int, tuple[int, tuple[float, ...]]]]:
        """wait4(2): (pid, wait status, the child's rusage, earlier), pid 0 with WNOHANG and none exited,
        -ECHILD without such a child.
        ``earlier``: what earlier waits reaped of the children the controller has not recorded as reaped
        (``unrecorded``): their replies were lost to an interrupt. The rest is forgotten."""
        self.reaped = {k: v for k, v in self.reaped.items() if k in unrecorded}
        earlier = dict(self.reaped)
        try:
            wpid, status, usage = os.wait4(pid, options)
        except ChildProcessError:  # ECHILD as pid -ECHILD: ``earlier`` still reaches the controller
            return -errno.ECHILD, 0, (), earlier
        if wpid:
            self.reaped[wpid] = (status, tuple(usage))
        return wpid, status, tuple(usage), earlier

    def _mapped_runs(self) -> list[tuple[int, int, bool]]:
        """The runs of pages this process has mapped (present in /proc/self/pagemap) in every readable mapping
        that is not the caller's: (start, end, writable). After fork the new process populates them, for write
        where writable (its own copy of each private page), for read otherwise (the libraries' code and data
        it got no page tables for), and the parent populates its private writable runs for write (copy or
        reuse), so neither takes a fault of the interpreter's in a later measured call."""
        with open("/proc/self/maps") as f:
            fields = [line.split(maxsplit=2) for line in f.read().splitlines()]
        spans = [([int(x, 16) for x in f[0].split("-")], f[1]) for f in fields]
        bounds = np.array([s for s, _ in spans], dtype=np.uint64).reshape(-1, 2)
        ours = self._overlaps_caller(bounds[:, 0], bounds[:, 1])
        runs: list[tuple[int, int, bool]] = []
        with open("/proc/self/pagemap", "rb", buffering=0) as pagemap:
            for ((lo, hi), perms), caller in zip(spans, ours.tolist(), strict=True):
                if caller or perms[0] != "r" or hi - lo > 1 << 32:
                    continue
                entries = np.frombuffer(os.pread(pagemap.fileno(), (hi - lo) // 512, lo // 512), dtype=np.uint64)
                present = np.r_[False, (entries >> np.uint64(63)).astype(bool), False]
                edges = np.flatnonzero(np.diff(present.astype(np.int8)))
                runs += [(lo + int(a) * 4096, lo + int(b) * 4096, perms[1] == "w")
                         for a, b in zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True)]
        return runs

    def phase(self, ops: list[tuple[str, tuple[Any, ...]]]) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Run ``ops`` [(name, args), ...] back to back; return (rusage before, rusage after).

        The snapshots are taken right around the operations, so nothing of the pipe protocol or of
        unpickling falls inside the measured window.
        """
        thunks = [self.prepare(op, args) for op, args in ops]
        gc.collect()
        gc.disable()
        self.settle()
        try:
            before = resource.getrusage(resource.RUSAGE_SELF)
            for thunk in thunks:
                thunk()
            after = resource.getrusage(resource.RUSAGE_SELF)
        finally:
            gc.enable()
        return tuple(before), tuple(after)

    def perf(self) -> dict[str, int] | None:
        """perf's page-faults, minor-faults and major-faults of this process so far (None without perf)."""
        return self.perf_counters.read() if self.perf_counters else None

    def rusage(self) -> tuple[float, ...]:
        return tuple(resource.getrusage(resource.RUSAGE_SELF))

    def ping(self) -> int:
        return os.getpid()

    # --- exec (issue #9) ---
    def exec(self, path: str, argv: list[str]) -> None:
        """execve(path, argv) with an empty environment; returns only by exiting. The parent has seized this
        process with ptrace and stops it after the exec and at its exit. Every descriptor of this process
        closes on exec, so the program inherits none of the interpreter's files; an execve() that fails here
        (the parent checked the file first) ends the process with 127, as a shell's child does."""
        for name in os.listdir("/proc/self/fd"):
            if int(name) > 2:
                try:
                    os.set_inheritable(int(name), False)
                except OSError:
                    continue
        try:
            os.execve(path, argv, {})
        finally:
            os._exit(127)


def main() -> None:
    """Entry point of ``python -m pagelab.real.child CMD_FD REPLY_FD RECORD_FD NAME`` (started by machine.py)."""
    import sys

    serve(int(sys.argv[-4]), int(sys.argv[-3]), sys.argv[-1], int(sys.argv[-2]))


def serve(cmd_fd: int, reply_fd: int, name: str, record_fd: int = -1) -> None:
    """The child's main loop; never returns (exits through os._exit).

    SIGINT is ignored: Ctrl-C reaches the whole foreground process group, and it is the parent that
    decides what an interrupted call means. A closed command pipe (the parent is gone) or reply pipe
    ends the child.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    libc.set_comm(name)
    libc.keep_heap(64 << 20)
    libc.install_fault_reporter(reply_fd, record_fd)
    server = Server()
    server.cmd_fd, server.reply_fd, server.record_fd = cmd_fd, reply_fd, record_fd
    while True:  # the pipes are the server's: a forked process continues here on its own
        request = read_request(server.cmd_fd)
        if request is None:
            os._exit(0)
        rid, frame = request
        try:
            send(server.reply_fd, rid, START)
            reply = run(server, frame)
            if reply[0] == "exit":  # the reply carries the final rusage: a forked process's parent reaps it
                send(server.reply_fd, rid, REPLY, pickle.dumps(("ok", reply[2])))
                os._exit(reply[1])
            if reply[0] == "child":  # the new process of a fork: its first request comes on its own pipes
                continue
            send(server.reply_fd, rid, REPLY, pickle.dumps(reply))
        except BrokenPipeError:
            os._exit(0)


def run(server: Server, frame: bytes) -> tuple[Any, ...]:
    """Perform one pickled request: ("ok", value), ("oserror", errno, text), ("error", text), ("exit", code,
    rusage), or ("child",) in the new process of a fork."""
    try:
        op, args = pickle.loads(frame)
        if op != "forked":
            server.drop_unclaimed()
        if op == "exit":
            return ("exit", int(args[0]), tuple(resource.getrusage(resource.RUSAGE_SELF)))
        if op not in ("phase", "rusage", "ping"):
            server.settle()  # so that even a bare rusage(); op(); rusage() sees only op's faults
        if op == "fork":
            info = server.fork()
            return ("child",) if info is None else ("ok", info)
        return ("ok", getattr(server, op)(*args))
    except OSError as exc:
        return ("oserror", exc.errno, str(exc))
    except Exception:  # noqa: BLE001 - reported to the parent, which raises it there
        return ("error", traceback.format_exc())


if __name__ == "__main__":
    main()
