"""Measure exec facts on this host (issue #9): maps at exit, cold/warm fault bands, fault split.

usage: python exec_facts.py PROBE N   (PROBE: exec_probe built from exec_probe.c)
Each program runs with an empty environment (env -i). Cold: every file the program maps (as its maps
at exit list them) plus /etc/ld.so.cache gets posix_fadvise(POSIX_FADV_DONTNEED) first; pages mapped by
another process stay cached (the kernel cannot drop a mapped page), so "cold" is what a launch sees
after the program's own files were evicted, as far as the host allows. Never drop_caches.
"""
import os
import statistics
import subprocess
import sys

PROGS = [("/bin/true", ["true"]), ("/bin/ls", ["ls", "/tmp/pagelab-exec-empty"]), ("/bin/bash", ["bash", "-c", "true"])]


def run(probe, prog, argv):
    out = subprocess.run([probe, prog, *argv], env={}, capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    nums = {l.split()[0]: tuple(map(int, l.split()[1:3])) for l in lines if l.split()[0] in ("pre", "exec", "exit")}
    maps = [l for l in lines if "-" in l.split()[0]]
    return nums, maps


def resident(path):
    import mmap, ctypes
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            return 0, 0
        n = (size + 4095) // 4096
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
        addr = libc.mmap(None, size, 1, 1, fd, 0)  # PROT_READ, MAP_SHARED
        vec = (ctypes.c_ubyte * n)()
        libc.mincore(ctypes.c_void_p(addr), ctypes.c_size_t(size), vec)
        libc.munmap(ctypes.c_void_p(addr), ctypes.c_size_t(size))
        return sum(v & 1 for v in vec), n
    finally:
        os.close(fd)


def evict(files):
    for f in files:
        fd = os.open(f, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)


def main():
    probe, n = sys.argv[1], int(sys.argv[2])
    os.makedirs("/tmp/pagelab-exec-empty", exist_ok=True)
    for prog, argv in PROGS:
        nums, maps = run(probe, prog, argv)
        files = sorted({l.split()[5] for l in maps if len(l.split()) > 5 and l.split()[5].startswith("/")})
        files.append("/etc/ld.so.cache")
        print(f"== {' '.join(argv)}: {len(maps)} VMAs")
        for l in maps:
            print("  ", l)
        for mode in ("cold", "warm"):
            rows = []
            for _ in range(n):
                if mode == "cold":
                    evict(files)
                    left = {f: resident(f) for f in files}
                nums, _ = run(probe, prog, argv)
                rows.append((nums["exit"][0] - nums["pre"][0], nums["exit"][1] - nums["pre"][1],
                             nums["exec"][0] - nums["pre"][0], nums["exec"][1] - nums["pre"][1]))
            for i, name in enumerate(("minflt", "majflt", "execve minflt", "execve majflt")):
                col = [r[i] for r in rows]
                print(f"  {mode} {name}: mean {statistics.mean(col):.1f} min {min(col)} max {max(col)}")
            if mode == "cold":
                print("  still cached after eviction (pages/total):", {os.path.basename(f): left[f] for f in files})


main()
