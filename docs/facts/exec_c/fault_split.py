"""Split a start-up profile's faults by the VMA (as /proc/PID/maps shows it at the exit stop) they hit.

usage: python fault_split.py PROGRAM ARGV...   (captures the profile if the cache has none)
"""
import collections
import os
import sys

from pagelab.fs.binfmt_elf import page_start, read_elf
from pagelab.workload import startup

prog, argv = sys.argv[1], sys.argv[2:]
p = startup.profile_for(prog, argv)
vmas = []
for line in p.maps:
    w = line.split()
    a, b = (int(x, 16) for x in w[0].split("-"))
    vmas.append((a, b, w[1], os.path.basename(w[5]) if len(w) > 5 else "anon"))
bases = {}
for line in p.maps:
    w = line.split()
    if len(w) > 5 and w[5].startswith("/") and w[5] not in bases:
        bases[w[5]] = int(w[0].split("-")[0], 16) - page_start(read_elf(w[5]).loads[0].p_vaddr)
heap = next(a for a, b, _, n in vmas if n == "[heap]") if any(n == "[heap]" for *_, n in vmas) else 0
stack_end = next(b for a, b, _, n in vmas if n == "[stack]")
split = collections.Counter()
for s in p.steps:
    if s.kind != "fault":
        continue
    acc, mode, region, *rest = s.args
    if region == "obj":
        addr = bases[rest[0]] + int(rest[1])
        v = next(((a, b, perm, n) for a, b, perm, n in vmas if a <= addr < b), None)
        if v is None:
            key = f"{os.path.basename(rest[0])} (gone)"
        else:
            prev = vmas[vmas.index(v) - 1]
            key = f"{v[3]} {v[2]}" if v[3] != "anon" else f"{prev[3]} .bss {v[2]}"
    elif region == "file":
        key = os.path.basename(rest[0]) + " (unmapped by exit)"
    elif region == "anon":
        key = f"ld.so anonymous mmap (step {rest[0]})"
    else:
        key = f"[{region}]"
    split[(key, acc + ("/kernel" if mode == "kernel" else ""))] += 1
print(f"{' '.join(argv)}: {p.faults} faults from the exec stop to the exit stop")
for (k, acc), n in sorted(split.items()):
    print(f"  {k:48s} {acc:9s} {n}")
