"""execve(2): replace a process's program with a host ELF binary.

Mirrors fs/exec.c: do_execveat_common() -> bprm_execve() -> exec_binprm() -> search_binary_handler()
-> load_elf_binary() (fs/binfmt_elf.py), with begin_new_exec() -> exec_mmap() (a new mm replaces the
old one, which is torn down as at exit) and __set_task_comm() (comm from the file name). The program's
files come from the host: the binary and its interpreter are imported into the simulated filesystem
(m.fs.import_host(), contents read from the host when the simulated disk reads them) on first use,
under their real paths (/bin/true is /usr/bin/true here, as /proc/PID/maps names it).

Simplified: no set-user-ID, no capabilities from file xattrs, no "#!" scripts (binfmt_script), no
close-on-exec descriptors (the simulated task's descriptors stay open, as without O_CLOEXEC); the
environment is empty (both backends run the program as `env -i` would). The argument strings are the
only contents of the stack.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..constants import PAGE_SHIFT
from ..errors import NotModelled, syscall_error
from ..fs.binfmt_elf import (
    ElfImage,
    et_dyn_load_bias,
    load_image,
    map_vdso,
    page_align,
    page_start,
    randomize_stack_top,
    read_elf,
    setup_stack,
    total_mapping_size,
)

if TYPE_CHECKING:
    from ..kernel.task import Task
    from ..machine import Machine

BINPRM_BUF_SIZE = 256  # include/linux/binfmts.h: the header bytes prepare_binprm() reads
MAX_ARG_STRLEN = 32 * 4096  # include/uapi/linux/binfmts.h
MAX_ARG_STRINGS = 0x7FFFFFFF
FAULT_AROUND_PAGES = 16  # mm/memory.c: fault_around_bytes 64 KiB


@dataclass(frozen=True, slots=True)
class Loaded:
    """Where exec put the program: what ld.so is told in the auxiliary vector (AT_BASE, AT_ENTRY,
    AT_PHDR via load_bias, AT_SYSINFO_EHDR) and what the dynamic loader then works from."""

    exe: ElfImage
    interp: ElfImage | None
    load_bias: int
    interp_base: int
    vdso: int
    stack_pointer: int


def may_exec(path: str) -> None:
    """do_open_execat()'s checks on host file ``path``: ENOENT, ENOTDIR, EACCES when it is not a regular
    file or not executable by anyone (S_ISREG and path_noexec; may_open(MAY_EXEC))."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise syscall_error(errno.ENOENT, f"{path}: no such file") from None
    except NotADirectoryError:
        raise syscall_error(errno.ENOTDIR, f"{path}: a component is not a directory") from None
    if not stat.S_ISREG(st.st_mode) or not st.st_mode & 0o111:
        raise syscall_error(errno.EACCES, f"{path}: not an executable regular file")


def host_file(m: Machine, path: str) -> str:
    """The simulated path of host file ``path`` (its real path), imported on first use; may_exec()'s errors."""
    may_exec(path)
    real = os.path.realpath(path)
    if not m.fs.exists(real):
        m.fs.import_host(real)
    return real


def check_argv(argv: object) -> list[str]:
    """argv as execve() takes it: a sequence of str (bytes decoded); E2BIG for a string longer than
    MAX_ARG_STRLEN (copy_strings()), TypeError for anything else."""
    if isinstance(argv, (str, bytes)) or not hasattr(argv, "__iter__"):
        raise TypeError("argv must be a list of strings")
    out = []
    for a in argv:
        if isinstance(a, bytes):
            a = os.fsdecode(a)
        if not isinstance(a, str):
            raise TypeError(f"argv items must be str or bytes, got {type(a).__name__}")
        if "\0" in a:
            raise ValueError("embedded null byte in argv")
        if len(os.fsencode(a)) + 1 > MAX_ARG_STRLEN:
            raise syscall_error(errno.E2BIG, "execve: an argument is longer than MAX_ARG_STRLEN")
        out.append(a)
    return out


def check_arg_space(path: str, argv: list[str], stack_limit: int) -> None:
    """Mirrors bprm_stack_limits() and copy_strings(): the filename, the (empty) environment and argv, each
    with its NUL, must fit in min(3/4 of _STK_LIM, RLIMIT_STACK / 4), at least ARG_MAX (32 pages), less a
    pointer per argument (argc counted as at least 1); else E2BIG. Measured on the host at the byte: with
    RLIMIT_STACK 8 MiB, 1 MiB and 64 MiB, a total one byte past the limit is E2BIG, at the limit it runs."""
    limit = max(min(6 << 20, stack_limit // 4), 32 * 4096)
    ptr_size = max(len(argv), 1) * 8
    used = len(os.fsencode(path)) + 1 + sum(len(os.fsencode(a)) + 1 for a in argv)
    if limit <= ptr_size or used > limit - ptr_size:
        raise syscall_error(errno.E2BIG, f"execve: {used} bytes of arguments, the stack limit allows "
                                         f"{max(limit - ptr_size, 0)}")


def check_exec(path: object, argv: object, stack_limit: int = 8 << 20) -> tuple[str, list[str]]:
    """The checks execve(2) makes before the point of no return, on the host's file, shared by both
    backends: TypeError/ValueError for a bad path or argv, E2BIG (``stack_limit``: the soft RLIMIT_STACK),
    ENOENT, ENOTDIR, EACCES (not a regular executable file), ENOEXEC (not an x86-64 ELF program).
    Returns (path, argv) as str."""
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, str):
        raise TypeError(f"path must be str, got {type(path).__name__}")
    if "\0" in path:
        raise ValueError("embedded null byte in path")
    if not path:
        raise syscall_error(errno.ENOENT, "execve: empty path")
    args = check_argv(argv)
    if not args or not args[0]:  # Linux runs it (an empty argv gets argv[0] "", 5.18's bprm->argc fix-up), but
        # the launch that captures and runs the program (Python's os.execv) refuses it: never half-done
        raise NotModelled("execve with an empty argv or argv[0] \"\": pass the program's name as argv[0]")
    may_exec(path)
    with open(path, "rb") as f:
        if f.read(2) == b"#!":  # binfmt_script would run the interpreter it names
            raise NotModelled(f"execve of a #! script ({path}): binfmt_script is not modelled")
    if not read_elf(path).loads:  # ENOEXEC: not an ELF program, or one with nothing to load
        raise syscall_error(errno.ENOEXEC, f"{path}: no PT_LOAD segment")
    check_arg_space(path, args, stack_limit)
    return path, args


def do_execveat_common(task: Task, path: str, argv: list[str], phase: tuple[int, int] | None = None) -> Loaded:
    """Mirrors do_execveat_common(): open and check the binary, read its headers, then (past the point
    of no return) exec_mmap() a new mm, set comm, and load_elf_binary() into it.

    ``phase``: when a captured start-up is replayed, the page index modulo FAULT_AROUND_PAGES of the
    program's and the interpreter's load addresses in that launch. The random bits of the layout come
    from m.rng("exec") as always, but their low four bits are those, so the fault-around windows (16
    pages aligned by virtual address) cut the images where they cut them in the captured launch.

    Errors before the point of no return (ENOENT, EACCES, ENOEXEC, E2BIG) leave the process as it was."""
    m = task.machine
    argv = check_argv(argv)
    sim_path = host_file(m, path)
    exe = read_elf(sim_path)  # prepare_binprm() + load_elf_binary()'s header checks
    interp = None
    if exe.interp is not None:
        interp_sim = host_file(m, exe.interp)
        interp = read_elf(interp_sim)
        if interp.e_type != 3 or interp.interp is not None:
            raise syscall_error(errno.ELIBBAD, f"{exe.interp}: not a usable ELF interpreter")
    # --- the point of no return: begin_new_exec() ---
    mmap_phase = None
    if phase is not None and interp is not None:  # the interpreter is the first mapping below mmap_base
        mmap_phase = (phase[1] + (page_align(total_mapping_size(interp.loads)) >> PAGE_SHIFT)) % FAULT_AROUND_PAGES
    exec_mmap(task, mmap_phase)
    task.comm = os.path.basename(path)[:15]  # __set_task_comm(me, kbasename(bprm->filename))
    return load_elf_binary(task, exe, interp, argv, None if phase is None else phase[0])


def with_phase(addr: int, phase: int | None) -> int:
    """``addr`` with its page index modulo FAULT_AROUND_PAGES set to ``phase`` (None: unchanged)."""
    if phase is None:
        return addr
    page = addr >> PAGE_SHIFT
    return (page - page % FAULT_AROUND_PAGES + phase) << PAGE_SHIFT


def exec_mmap(task: Task, mmap_phase: int | None = None) -> None:
    """Mirrors exec_mmap(): the task gets a fresh mm (mm_alloc() with a new PGD and mmap_base, as
    arch_pick_mmap_layout() places it) and the old one goes (mmput() -> exit_mmap())."""
    from ..mm.memory import exit_mmap
    from ..mm.pgtable import pgtable_alloc
    from ..mm.types import MmStruct

    m, old = task.machine, task.mm
    mm = MmStruct(machine=m, pgd=0, mmap_base=with_phase(m._mmap_base(), mmap_phase))
    mm.pgd = pgtable_alloc(m, mm, 4)
    if not mm.pgd:
        raise syscall_error(errno.ENOMEM, "execve: no memory for a page directory")
    old.update_hiwater_rss()
    hiwater = max(old.hiwater_rss, old.get_rss())
    exit_mmap(m, old)
    mm.owner = task
    mm.hiwater_rss = hiwater  # setmax_mm_hiwater_rss(): getrusage's ru_maxrss keeps the old mm's peak
    task.mm = mm


def load_elf_binary(task: Task, exe: ElfImage, interp: ElfImage | None, argv: list[str],
                    exe_phase: int | None = None) -> Loaded:
    """Mirrors load_elf_binary() after begin_new_exec(): setup_new_exec()'s stack top, the image at its
    load bias, brk after its .bss, the interpreter top-down, the vDSO below it, the stack strings."""
    from ..fs.open import do_sys_open
    from ..mm.mmap import set_brk_base

    strings = sum(len(os.fsencode(a)) + 1 for a in argv) + len(os.fsencode(exe.path)) + 1
    stack_top = randomize_stack_top(task)
    # setup_arg_pages() comes first in the kernel; the stack VMA is made here with the same bounds
    sp = setup_stack(task, stack_top, strings)
    fd = do_sys_open(task, exe.path, os.O_RDONLY, 0)
    try:
        read_header(task, fd)
        bias = et_dyn_load_bias(task, exe)
        if exe.e_type == 3:
            bias = with_phase(bias + page_start(exe.loads[0].p_vaddr), exe_phase) - page_start(exe.loads[0].p_vaddr)
        load_bias, image_end = load_image(task, exe, fd, bias, fixed=True)
    finally:
        task.files.close_fd(fd)
    set_brk_base(task.machine, task.mm, image_end)  # mm->start_brk = mm->brk = ELF_PAGEALIGN(elf_brk), randomized
    interp_base = 0
    if interp is not None:
        fd = do_sys_open(task, interp.path, os.O_RDONLY, 0)
        try:
            read_header(task, fd)
            interp_base, _ = load_image(task, interp, fd, 0, fixed=False)
        finally:
            task.files.close_fd(fd)
    vdso = map_vdso(task)  # ARCH_SETUP_ADDITIONAL_PAGES
    return Loaded(exe, interp, load_bias, interp_base, vdso, sp)


def read_header(task: Task, fd: int) -> None:
    """prepare_binprm()'s kernel_read() of the first BINPRM_BUF_SIZE bytes (then elf_read() of the program
    headers, in the same page): a read through the page cache, with its readahead on a cold file.

    kernel_read() is not a read(2): no rchar or syscr for the task."""
    from ..fs.read_write import filemap_read

    filemap_read(task, task.files.fget(fd), 0, BINPRM_BUF_SIZE)
