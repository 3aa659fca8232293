"""Start-up profiles, the host's side: capture one from a real launch, count a real launch's faults,
evict a program's files and read what the host keeps cached (issue #9, exec).

See workload/startup.py for what a profile is and how the simulator replays it. Capturing needs root
(ptrace of a forked child, perf's tracepoints) and perf on PATH.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..workload.startup import X86_PF_INSTR, X86_PF_WRITE, ProfileError, StartupProfile, Step, sha256_of

if TYPE_CHECKING:
    from ..fs.binfmt_elf import ElfImage


# --- capture ----------------------------------------------------------------------

MMAP_RE = re.compile(r"PERF_RECORD_MMAP2 (\d+)/\d+: \[(0x[0-9a-f]+)\((0x[0-9a-f]+)\) @ (\S+) \S+ \d+ \d+\]: "
                     r"([r-][w-][x-][ps]) ?(.*)$")
FAULT_RE = re.compile(r"exceptions:page_fault_(user|kernel): address=(0x[0-9a-f]+) ip=\S+ error_code=(0x[0-9a-f]+)")
HEAD_RE = re.compile(r"^\s*(\S.*?)\s+(\d+)\s+(\d+)\.(\d+):\s")


def capture(program: str, argv: list[str]) -> StartupProfile:
    """Launch ``program`` with ``argv`` and an empty environment under perf and ptrace, and make its
    start-up profile (see workload/startup.py). ProfileError when perf or ptrace is unavailable."""
    from .ptrace import faults, spawn_stopped

    perf = shutil.which("perf")
    if perf is None:
        raise ProfileError("capturing a start-up profile needs perf (linux-perf) on PATH")
    evict_host(elf_files(program))  # a cold launch: its faults include those fault-around covers when warm
    with tempfile.TemporaryDirectory(prefix="pagelab-startup-") as tmp:
        ctl, ack, data = f"{tmp}/ctl", f"{tmp}/ack", f"{tmp}/perf.data"
        os.mkfifo(ctl)
        os.mkfifo(ack)
        try:
            t = spawn_stopped(program, argv)
        except OSError as exc:
            raise ProfileError(f"cannot trace {program}: {exc}") from None
        rec = subprocess.Popen([perf, "record", "-q", "-d", "-k", "CLOCK_MONOTONIC", "-D", "-1",
                                f"--control=fifo:{ctl},{ack}", "-e", "exceptions:page_fault_user",
                                "-e", "exceptions:page_fault_kernel", "-p", str(t.pid), "-o", data],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            cfd = os.open(ctl, os.O_WRONLY)
            afd = os.open(ack, os.O_RDONLY)
            os.write(cfd, b"enable\n")
            os.read(afd, 16)
            os.close(cfd)
            os.close(afd)
            pre = faults(t.pid)
            t.cont()
            if not t.wait_event(4):
                raise ProfileError(f"{program}: execve() failed (status {t.status:#x})")
            at_exec = faults(t.pid)
            t.cont()
            if not t.wait_event(6):
                raise ProfileError(f"{program}: ended without an exit stop")
            at_exit = faults(t.pid)
            maps = Path(f"/proc/{t.pid}/maps").read_text().splitlines()
            status = os.waitstatus_to_exitcode(t.finish()) & 0xFF
            rec.wait(timeout=60)
        finally:
            if t.state != "gone":
                t.finish()
            if rec.poll() is None:
                rec.kill()
                rec.wait()
        script = subprocess.run([perf, "script", "-i", data, "--show-mmap-events", "-F",
                                 "comm,pid,time,event,trace"], capture_output=True, text=True, check=False)
    if script.returncode != 0:
        raise ProfileError(f"perf script failed: {script.stderr.strip()[:200]}")
    steps = steps_from_trace(script.stdout, t.pid, t.exec_ns, program, maps)
    counts = (at_exec[0] - pre[0], at_exec[1] - pre[1], at_exit[0] - at_exec[0], at_exit[1] - at_exec[1])
    return StartupProfile(program, tuple(argv), sha256_of(program), os.uname().release, counts, status,
                          tuple(maps), tuple(steps))


@dataclass(slots=True)
class _Map:
    start: int
    end: int
    region: tuple[str, ...]  # how to name an address in it: ("obj", path, base), ("file", path, off0) ...


def steps_from_trace(text: str, pid: int, exec_ns: int, program: str, maps: list[str]) -> list[Step]:
    """The profile's steps from ``perf script`` output: the events of ``pid``; those stamped before the
    exec stop (``exec_ns``) are execve()'s and only tell where the kernel put things."""
    from ..fs.binfmt_elf import page_start, read_elf

    heap = next((_range(m) for m in maps if m.endswith("[heap]")), None)
    exe = read_elf(program)
    interp = os.path.realpath(exe.interp) if exe.interp else ""
    objects: dict[str, ElfImage] = {}
    live: list[_Map] = []  # mappings, newest last
    steps: list[Step] = []
    pending: list[int] = []  # events of the library being mapped: how many are left in its group
    for line in text.splitlines():
        head = HEAD_RE.match(line)
        if head is None or int(head.group(2)) != pid:
            continue
        ns = int(head.group(3)) * 10**9 + int(head.group(4).ljust(9, "0")[:9])
        if (mm := MMAP_RE.search(line)) is not None:
            start, size = int(mm.group(2), 16), int(mm.group(3), 16)
            pgoff, prot, name = int(mm.group(4), 16), mm.group(5), mm.group(6).strip()
            end = start + size
            if ns < exec_ns:  # the kernel's: the stack, the program and ld.so, the vDSO
                if name in (program, interp) and pgoff == 0 and name not in objects:
                    objects[name] = read_elf(name)
                    base = start - page_start(objects[name].loads[0].p_vaddr)
                    live.append(_Map(start, end, ("obj", name, str(base))))
                elif name.startswith("["):
                    live.append(_Map(start, end, (name.strip("[]"), str(end if name == "[stack]" else start))))
                elif name == "//anon":
                    prev = _inside(live, start - 1)  # vm_brk_flags()'s .bss, right after its image
                    live.append(_Map(start, end, prev.region if prev is not None else ("anon", "-1", str(start))))
                continue
            if pending:  # the rest of a library's mappings (its segments and .bss)
                pending[0] -= 1
                if not pending[0]:
                    pending.clear()
                continue
            inside = _covering(live, start, end)
            if heap is not None and start == heap[0] and name in ("//anon", "[heap]"):
                steps.append(Step("brk", (str(size),)))
                live = [m for m in live if m.region[0] != "heap"] + [_Map(start, end, ("heap", str(start)))]
            elif inside is not None:
                steps.append(Step("protect", (*_name(inside, start), str(size), prot)))
            elif name.startswith("/") and not name.startswith("//") and pgoff == 0 and _is_elf(name) \
                    and name not in objects:
                lib = objects[name] = read_elf(name)
                steps.append(Step("object", (name,)))
                base = start - page_start(lib.loads[0].p_vaddr)
                live.append(_Map(start, base + _image_end(lib), ("obj", name, str(base))))
                n = _group_events(lib) - 1
                if n:
                    pending.append(n)
            elif name.startswith("/") and not name.startswith("//"):  # "//anon" is perf's anonymous memory
                steps.append(Step("file", (name, str(pgoff), str(size), prot)))
                live.append(_Map(start, end, ("file", name, str(pgoff - 0), str(start))))
            else:
                steps.append(Step("anon", (str(size), prot)))
                live.append(_Map(start, end, ("anon", str(len(steps) - 1), str(start))))
        elif (fm := FAULT_RE.search(line)) is not None and ns >= exec_ns:
            addr, code = int(fm.group(2), 16), int(fm.group(3), 16)
            where = _inside(live, addr)
            if where is None:
                raise ProfileError(f"fault at {addr:#x} in no mapping the trace shows")
            access = "X" if code & X86_PF_INSTR else "W" if code & X86_PF_WRITE else "R"
            steps.append(Step("fault", (access, fm.group(1), *_name(where, addr))))
    return steps


def _range(line: str) -> tuple[int, int]:
    a, b = line.split()[0].split("-")
    return int(a, 16), int(b, 16)


def _is_elf(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def _image_end(lib: ElfImage) -> int:
    from ..fs.binfmt_elf import page_align

    last = lib.loads[-1]
    return page_align(last.p_vaddr + last.p_memsz)


def _group_events(lib: ElfImage) -> int:
    """How many mmap() calls _dl_map_segments() makes for ``lib`` (workload/ld_so.py map_object())."""
    from ..fs.binfmt_elf import page_align, page_start

    n = 1
    prev_end = page_align(lib.loads[0].p_vaddr + lib.loads[0].p_filesz)
    for i, seg in enumerate(lib.loads):
        if i:
            n += page_start(seg.p_vaddr) > prev_end  # the PROT_NONE hole: an mprotect, which perf shows too
            n += page_align(seg.p_vaddr + seg.p_filesz) > page_start(seg.p_vaddr)
        n += page_align(seg.p_vaddr + seg.p_memsz) > page_align(seg.p_vaddr + seg.p_filesz)
        prev_end = page_align(seg.p_vaddr + seg.p_memsz)
    return n


def _covering(live: list[_Map], start: int, end: int) -> _Map | None:
    for m in reversed(live):
        if m.start <= start and end <= m.end:
            return m
    return None


def _inside(live: list[_Map], addr: int) -> _Map | None:
    for m in reversed(live):
        if m.start <= addr < m.end:
            return m
    for m in reversed(live):  # below the stack: a fault the stack grows for
        if m.region[0] == "stack" and m.start - (8 << 20) <= addr < m.start:
            return m
    return None


def _name(m: _Map, addr: int) -> tuple[str, ...]:
    """The profile's name of ``addr`` inside mapping ``m``."""
    kind = m.region[0]
    if kind == "obj":
        return ("obj", m.region[1], str(addr - int(m.region[2])))
    if kind == "file":
        return ("file", m.region[1], str(int(m.region[2]) + addr - int(m.region[3])))
    if kind == "anon":
        return ("anon", m.region[1], str(addr - int(m.region[2])))
    if kind == "stack":
        return ("stack", str(int(m.region[1]) - addr))
    return (kind, str(addr - int(m.region[1])))


def elf_files(program: str) -> list[str]:
    """The files ld.so will map for ``program`` (itself, its interpreter, its libraries) and the ld.so
    cache, as host paths, known before it runs."""
    from ..fs.binfmt_elf import read_elf
    from ..workload.ld_so import LD_SO_CACHE, needed_libraries, read_ld_so_cache

    exe = read_elf(program)
    files = [exe.path]
    if exe.interp:
        files += [os.path.realpath(exe.interp), *(lib.path for lib in needed_libraries(exe, read_ld_so_cache()))]
        if os.path.isfile(LD_SO_CACHE):
            files.append(LD_SO_CACHE)
    return files


def evict_host(paths: list[str]) -> None:
    """posix_fadvise(POSIX_FADV_DONTNEED) over each host file: its clean pages that no process maps leave
    the page cache (never drop_caches: the host is shared). Pages other processes map stay."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def host_residency(paths: list[str]) -> dict[str, list[tuple[int, int]]]:
    """Which pages of each host file are in the host's page cache: runs of (first page, pages), from
    mincore() over a shared read-only mapping of the file (which faults nothing in)."""
    import numpy as np

    from ..real import libc as _libc

    out: dict[str, list[tuple[int, int]]] = {}
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            vec: np.ndarray = np.zeros(0, dtype=np.uint8)
            if size:
                addr = _libc.mmap(0, size, 1, 1, fd, 0)  # PROT_READ, MAP_SHARED
                try:
                    vec = np.frombuffer(_libc.mincore(addr, size), dtype=np.uint8) & 1
                finally:
                    _libc.munmap(addr, size)
        finally:
            os.close(fd)
        runs: list[tuple[int, int]] = []
        for page in np.flatnonzero(vec):
            if runs and runs[-1][0] + runs[-1][1] == page:
                runs[-1] = (runs[-1][0], runs[-1][1] + 1)
            else:
                runs.append((int(page), 1))
        out[path] = runs
    return out


@dataclass(frozen=True, slots=True)
class LaunchCounts:
    """One real launch's fault counts: execve()'s own (from the stopped child to its exec stop) and the
    start-up's (exec stop to exit stop), with /proc/PID/maps at the exit stop."""

    execve: tuple[int, int]  # minflt, majflt
    startup: tuple[int, int]
    maps: tuple[str, ...]


def measure_launch(program: str, argv: list[str]) -> LaunchCounts:
    """Launch ``program`` on the host with an empty environment under ptrace and count its faults
    (/proc/PID/stat fields 10 and 12) at the exec and exit stops. The execve() window includes the few
    faults the forked child takes before its execve() (Python's os.execve path)."""
    from .ptrace import faults, spawn_stopped

    t = spawn_stopped(program, argv)
    try:
        pre = faults(t.pid)
        if not t.wait_event(4):
            raise ProfileError(f"{program}: execve() failed (status {t.status:#x})")
        at_exec = faults(t.pid)
        if not t.wait_event(6):
            raise ProfileError(f"{program}: ended without an exit stop")
        at_exit = faults(t.pid)
        maps = tuple(Path(f"/proc/{t.pid}/maps").read_text().splitlines())
    finally:
        t.finish()
    return LaunchCounts((at_exec[0] - pre[0], at_exec[1] - pre[1]),
                        (at_exit[0] - at_exec[0], at_exit[1] - at_exec[1]), maps)


def main(argv: list[str] | None = None) -> int:
    """``python -m pagelab.real.startup PROGRAM ARGV0 ARGS...``: the program's start-up profile (captured
    now unless the cache holds one of this binary) on stdout."""
    import sys

    from ..workload.startup import format_profile, profile_for

    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2:
        print("usage: python -m pagelab.real.startup PROGRAM ARGV0 [ARGS...]", file=sys.stderr)
        return 2
    try:
        sys.stdout.write(format_profile(profile_for(args[0], args[1:])))
    except (ProfileError, OSError) as exc:
        print(f"pagelab.real.startup: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
