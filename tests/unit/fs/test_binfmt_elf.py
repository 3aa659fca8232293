"""fs/binfmt_elf.py: the ELF loader's mappings (exec without a start-up: the kernel's part only)."""

from __future__ import annotations

import errno
import os

import pytest

import pagelab as pl
from pagelab.fs.binfmt_elf import (
    ELF_ET_DYN_BASE,
    PT_LOAD,
    STACK_EXPAND,
    STACK_TOP,
    make_prot,
    read_elf,
    total_mapping_size,
)
from pagelab.kernel import syscalls
from pagelab.kernel.exec import check_exec
from pagelab.mm.types import VmFlag

TRUE = os.path.realpath("/bin/true")
BASH = os.path.realpath("/bin/bash")


def maps(m: pl.Machine, pid: int) -> list[list[str]]:
    return [line.split() for line in m.read(f"/proc/{pid}/maps").splitlines()]


def exec_only(m: pl.Machine, path: str, argv: list[str]) -> pl.Process:
    """The kernel's execve() alone: no dynamic loader, no start-up."""
    p = m.spawn("sh")
    syscalls.sys_execve(p.task, path, argv)
    return p


def test_read_elf_of_a_distribution_binary() -> None:
    img = read_elf("/bin/true")
    assert img.path == TRUE and img.e_type == 3  # a PIE (ET_DYN)
    loads = img.loads
    assert [make_prot(s.p_flags) for s in loads][:2] == [pl.PROT_READ, pl.PROT_READ | pl.PROT_EXEC]
    assert all(s.p_type == PT_LOAD for s in loads)
    assert img.interp is not None and img.interp.endswith("ld-linux-x86-64.so.2")
    assert "libc.so.6" in img.needed
    assert total_mapping_size(loads) >= loads[-1].p_vaddr + loads[-1].p_memsz - loads[0].p_vaddr


def test_not_elf_is_enoexec_and_missing_is_enoent(tmp_path: os.PathLike[str]) -> None:
    script = os.path.join(os.fspath(tmp_path), "script")
    with open(script, "w") as f:
        f.write("echo hi\n")
    os.chmod(script, 0o755)
    with pytest.raises(OSError) as exc:
        check_exec(script, ["script"])
    assert exc.value.errno == errno.ENOEXEC
    with pytest.raises(OSError) as exc:
        check_exec(os.path.join(os.fspath(tmp_path), "none"), ["none"])
    assert exc.value.errno == errno.ENOENT
    with pytest.raises(OSError) as exc:
        check_exec(os.fspath(tmp_path), ["dir"])
    assert exc.value.errno == errno.EACCES
    shebang = os.path.join(os.fspath(tmp_path), "shebang")
    with open(shebang, "w") as f:
        f.write("#!/bin/sh\ntrue\n")
    os.chmod(shebang, 0o755)
    with pytest.raises(pl.NotModelled, match="script"):  # Linux runs it (binfmt_script): never ENOEXEC here
        check_exec(shebang, ["shebang"])
    cut = os.path.join(os.fspath(tmp_path), "cut")
    with open("/bin/true", "rb") as src, open(cut, "wb") as dst:
        dst.write(src.read(70))  # the ELF header and part of one program header
    os.chmod(cut, 0o755)
    for path in (cut, os.devnull):
        with pytest.raises(OSError) as exc:
            check_exec(path, ["x"]) if path == cut else read_elf(path)
        assert exc.value.errno in (errno.ENOEXEC, errno.EACCES)
    os.chmod(script, 0o644)
    with pytest.raises(OSError) as exc:
        check_exec(script, ["script"])
    assert exc.value.errno == errno.EACCES
    with pytest.raises(TypeError):
        check_exec("/bin/true", "true")


def test_the_kernels_mappings_of_a_pie(machine: pl.Machine) -> None:
    p = exec_only(machine, "/bin/bash", ["bash", "-c", "true"])
    rows = maps(machine, p.pid)
    names = [r[5] if len(r) > 5 else "" for r in rows]
    perms = [r[1] for r in rows]
    exe = [i for i, n in enumerate(names) if n == BASH]
    assert [perms[i] for i in exe] == ["r--p", "r-xp", "r--p", "rw-p"]  # RELRO is ld.so's mprotect, later
    assert names[exe[-1] + 1] == "" and perms[exe[-1] + 1] == "rw-p"  # the .bss past the last file page
    interp = [i for i, n in enumerate(names) if n.endswith("ld-linux-x86-64.so.2")]
    assert [perms[i] for i in interp] == ["r--p", "r-xp", "r--p", "rw-p"]
    assert names[interp[0] - 3:interp[0]] == ["[vvar]", "[vvar_vclock]", "[vdso]"]  # just below the interpreter
    assert perms[interp[0] - 3:interp[0]] == ["r--p", "r--p", "r-xp"]
    assert names[-2:] == ["[stack]", "[vsyscall]"]
    start = int(rows[exe[0]][0].split("-")[0], 16)
    assert ELF_ET_DYN_BASE <= start < ELF_ET_DYN_BASE + (1 << 40)  # + arch_mmap_rnd(): 28 bits of pages
    mm = p.task.mm
    assert mm.start_brk == mm.brk and mm.start_brk > int(rows[exe[-1] + 1][0].split("-")[1], 16)
    assert mm.start_brk - int(rows[exe[-1] + 1][0].split("-")[1], 16) <= 1 << 30  # arch_randomize_brk(): 1 GiB
    stack = next(v for v in mm.vmas if v.vm_flags & VmFlag.GROWSDOWN)
    assert stack.vm_end <= STACK_TOP and STACK_TOP - stack.vm_end < 16 << 30
    assert stack.vm_end - stack.vm_start == STACK_EXPAND + 4096  # 128 KiB below the page of strings
    assert p.task.comm == "bash"


def test_execve_faults_padzero_and_the_argument_page(machine: pl.Machine) -> None:
    # padzero() clears the tail of the program's and ld.so's last file page (a write fault each, major on a
    # cold cache), and the argument strings are copied into the stack's top page (one GUP fault)
    p = exec_only(machine, "/bin/bash", ["bash", "-c", "true"])
    r = p.rusage()
    assert (r.ru_minflt + r.ru_majflt, r.ru_majflt) == (3, 2)
    q = exec_only(machine, "/bin/bash", ["bash", "-c", "true"])
    r = q.rusage()
    assert (r.ru_minflt, r.ru_majflt) == (3, 0)  # cached now


def test_layout_is_the_seeds() -> None:
    def layout(seed: int) -> str:
        m = pl.Machine(ram="256MiB", seed=seed)
        return m.read(f"/proc/{exec_only(m, '/bin/true', ['true']).pid}/maps")

    assert layout(5) == layout(5)
    assert layout(5) != layout(6)


def test_exec_replaces_the_address_space(machine: pl.Machine) -> None:
    p = machine.spawn("sh")
    a = p.mmap(None, 64 << 12, pl.PROT_READ | pl.PROT_WRITE, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS)
    p.touch(a, 64 << 12, write=True)
    anon = machine.vmstat()["nr_anon_pages"]
    syscalls.sys_execve(p.task, "/bin/true", ["true"])
    assert all(not (v.vm_start <= a < v.vm_end) for v in p.task.mm.vmas)
    # the old mm's 64 pages are freed; the new one has 3: two padzero() copies and the stack's top page
    assert machine.vmstat()["nr_anon_pages"] == anon - 64 + 3


def test_stack_grows_down_to_rlimit_stack(machine: pl.Machine) -> None:
    p = exec_only(machine, "/bin/true", ["true"])
    mm = p.task.mm
    stack = next(v for v in mm.vmas if v.vm_flags & VmFlag.GROWSDOWN)
    end = stack.vm_end
    p.store(stack.vm_start - 10 * 4096)  # expand_stack(): the VMA grows to the faulting page
    assert stack.vm_start == end - STACK_EXPAND - 4096 - 10 * 4096
    assert "[stack]" in machine.read(f"/proc/{p.pid}/maps")
    p.store(end - (8 << 20))  # RLIMIT_STACK is 8 MiB: the last page allowed
    with pytest.raises(pl.SegmentationFault) as exc:
        p.store(end - (8 << 20) - 4096)
    assert exc.value.si_code == "SEGV_MAPERR"


def test_stack_guard_gap_refuses_growth_next_to_a_mapping(machine: pl.Machine) -> None:
    p = exec_only(machine, "/bin/true", ["true"])
    stack = next(v for v in p.task.mm.vmas if v.vm_flags & VmFlag.GROWSDOWN)
    below = stack.vm_start - (300 << 12)
    p.mmap(below - 4096, 4096, pl.PROT_READ, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS | pl.MAP_FIXED)
    p.store(stack.vm_start - (40 << 12))  # still more than stack_guard_gap (256 pages) above it
    with pytest.raises(pl.SegmentationFault):
        p.store(below + (10 << 12))  # within the gap
