"""MADV_COLD / MADV_PAGEOUT probe (run as root on the host: .venv/bin/python docs/facts/pageout_probe/probe.py).

Prints, for each case, the /proc/vmstat deltas that moved (global: other activity adds noise; the cases
are 1024 pages so the signal stands out), Rss/AnonHugePages of the region and mincore residency.
"""
import ctypes
import mmap
import os
import sys
import tempfile

from pagelab.real import libc

MADV_HUGEPAGE, MADV_COLD, MADV_PAGEOUT = 14, 20, 21
PAGE = 4096
N = 1024
KEYS = ("pgactivate", "pgdeactivate", "pglazyfree", "pglazyfreed", "pgrefill", "pgscan_anon", "pgscan_file", "pgsteal_anon", "pgsteal_file",
        "pgpgout", "nr_vmscan_write", "nr_vmscan_immediate_reclaim", "thp_split_page", "thp_split_pmd",
        "thp_swpout_fallback", "nr_active_anon", "nr_inactive_anon", "nr_active_file", "nr_inactive_file",
        "nr_file_pages", "nr_shmem", "nr_dirty", "nr_anon_transparent_hugepages")


def vmstat():
    return {k: int(v) for k, v in (ln.split() for ln in open("/proc/vmstat")) if k in KEYS}


def region(addr, size):
    out, cur = {}, False
    for ln in open("/proc/self/smaps"):
        f = ln.split()
        if "-" in f[0] and ":" not in f[0]:
            lo, hi = (int(x, 16) for x in f[0].split("-"))
            cur = lo <= addr < hi
        elif cur and f[0] in ("Rss:", "AnonHugePages:", "Private_Dirty:", "Shared_Clean:", "Private_Clean:", "Active(file):"):
            out[f[0][:-1]] = int(f[1])
    out["resident"] = sum(b & 1 for b in libc.mincore(addr, size))
    return out


def delta(a, b):
    return {k: b[k] - a[k] for k in KEYS if b[k] != a[k]}


def run(name, addr, size, advice, length=None):
    before, s0 = vmstat(), region(addr, size)
    libc.madvise(addr, length or size, advice)
    after, s1 = vmstat(), region(addr, size)
    print(f"{name}: {delta(before, after)}\n   before {s0}\n   after  {s1}", flush=True)


def touch(addr, size, write):
    buf = (ctypes.c_char * size).from_address(addr)
    for off in range(0, size, PAGE):
        if write:
            buf[off] = b"x"
        else:
            _ = buf[off]


def anon(size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, align=0):
    a = libc.mmap(0, size + align, 3, flags, -1, 0)
    return (a + align - 1) & ~(align - 1) if align else a


def tmpfile(d, size):
    fd, path = tempfile.mkstemp(dir=d)
    os.write(fd, b"y" * size)
    os.fsync(fd)
    os.close(fd)
    fd = os.open(path, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
    return path


def main(d):
    size = N * PAGE
    a = anon(size); touch(a, size, True)
    run("anon written COLD", a, size, MADV_COLD)
    run("anon written PAGEOUT", a, size, MADV_PAGEOUT)
    run("anon after PAGEOUT (active) COLD", a, size, MADV_COLD)
    run("anon PAGEOUT again", a, size, MADV_PAGEOUT)
    run("anon PAGEOUT again (active) COLD half", a, size, MADV_COLD, size // 2)
    # THP
    t = anon(4 << 20, align=2 << 20); libc.madvise(t, 2 << 20, MADV_HUGEPAGE); touch(t, 2 << 20, True)
    run("THP PAGEOUT first 1 MiB", t, 2 << 20, MADV_PAGEOUT, 1 << 20)
    t = anon(4 << 20, align=2 << 20); libc.madvise(t, 2 << 20, MADV_HUGEPAGE); touch(t, 2 << 20, True)
    run("THP PAGEOUT whole", t, 2 << 20, MADV_PAGEOUT, 2 << 20)
    run("THP after PAGEOUT COLD whole", t, 2 << 20, MADV_COLD, 2 << 20)
    t = anon(4 << 20, align=2 << 20); libc.madvise(t, 2 << 20, MADV_HUGEPAGE); touch(t, 2 << 20, True)
    run("THP COLD first 1 MiB", t, 2 << 20, MADV_COLD, 1 << 20)
    # file, clean
    path = tmpfile(d, size)
    fd = os.open(path, os.O_RDONLY)
    f = libc.mmap(0, size, 1, mmap.MAP_SHARED, fd, 0); touch(f, size, False)
    run("file mapped once-read COLD", f, size, MADV_COLD)
    run("file PAGEOUT", f, size, MADV_PAGEOUT)
    # read() twice -> active
    for _ in range(2):
        os.pread(fd, size, 0)
    touch(f, size, False)
    run("file read() twice + mapped COLD", f, size, MADV_COLD)
    run("file COLD'd PAGEOUT", f, size, MADV_PAGEOUT)
    for _ in range(2):
        os.pread(fd, size, 0)
    touch(f, size, False)
    run("file read() twice + mapped PAGEOUT", f, size, MADV_PAGEOUT)
    # mapped + touched twice (no read())
    touch(f, size, False); libc.madvise(f, size, 4)  # MADV_DONTNEED then re-touch
    touch(f, size, False)
    run("file faulted twice COLD", f, size, MADV_COLD)
    # shared by two processes
    touch(f, size, False)
    r, w = os.pipe(); r2, w2 = os.pipe()
    pid = os.fork()
    if pid == 0:
        g = libc.mmap(0, size, 1, mmap.MAP_SHARED, fd, 0); touch(g, size // 2, False)
        os.write(w, b"1"); os.read(r2, 1); os._exit(0)
    os.read(r, 1)
    run("file first half also mapped by another process PAGEOUT", f, size, MADV_PAGEOUT)
    os.write(w2, b"1"); os.waitpid(pid, 0)
    os.close(fd); os.unlink(path)
    # dirty shared file
    path = tmpfile(d, size)
    fd = os.open(path, os.O_RDWR)
    f = libc.mmap(0, size, 3, mmap.MAP_SHARED, fd, 0); touch(f, size, True)
    run("file dirty (mapped written) PAGEOUT", f, size, MADV_PAGEOUT)
    run("file dirty again PAGEOUT", f, size, MADV_PAGEOUT)
    os.fsync(fd)
    touch(f, size, False)
    run("file after fsync (clean, remapped) PAGEOUT", f, size, MADV_PAGEOUT)
    # private file, written (anon COW) + read
    f = libc.mmap(0, size, 3, mmap.MAP_PRIVATE, fd, 0); touch(f, size // 2, True); touch(f + size // 2, size // 2, False)
    run("private file half COWed PAGEOUT", f, size, MADV_PAGEOUT)
    os.close(fd); os.unlink(path)
    # shmem
    s = anon(size, mmap.MAP_SHARED | mmap.MAP_ANONYMOUS); touch(s, size, True)
    run("shmem written COLD", s, size, MADV_COLD)
    run("shmem written PAGEOUT", s, size, MADV_PAGEOUT)
    s = anon(size, mmap.MAP_SHARED | mmap.MAP_ANONYMOUS); touch(s, size, False)
    run("shmem read-only faulted PAGEOUT", s, size, MADV_PAGEOUT)
    # anon shared with a fork child (COW-shared)
    a = anon(size); touch(a, size, True)
    pid = os.fork()
    if pid == 0:
        os.read(r2, 1); os._exit(0)
    run("anon shared with fork child PAGEOUT", a, size, MADV_PAGEOUT)
    os.write(w2, b"1"); os.waitpid(pid, 0)
    # zero page
    z = anon(size); touch(z, size, False)
    run("anon zero-page read PAGEOUT", z, size, MADV_PAGEOUT)


def zero_thp_cases():
    """THPs written with zero bytes (what pagelab's touch(write=True) stores)."""
    for name, length in (("zero-filled THP PAGEOUT whole", 2 << 20), ("zero-filled THP PAGEOUT first 1 MiB", 1 << 20),
                         ("zero-filled THP COLD first 1 MiB", 1 << 20)):
        t = anon(4 << 20, align=2 << 20)
        libc.madvise(t, 2 << 20, MADV_HUGEPAGE)
        buf = (ctypes.c_char * (2 << 20)).from_address(t)
        for off in range(0, 2 << 20, PAGE):
            buf[off] = b"\0"
        run(name, t, 2 << 20, MADV_COLD if "COLD" in name else MADV_PAGEOUT, length)
        libc.munmap(t, 2 << 20)


def lazyfree_case():
    """MADV_FREE'd anon pages, 10 of them written again, then MADV_PAGEOUT."""
    size = N * PAGE
    z = anon(size)
    touch(z, size, True)
    libc.madvise(z, size, 8)  # MADV_FREE
    touch(z, 10 * PAGE, True)
    run("lazyfree (10 rewritten) PAGEOUT", z, size, MADV_PAGEOUT)
    libc.munmap(z, size)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/var/tmp")
    zero_thp_cases()
    lazyfree_case()
