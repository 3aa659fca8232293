"""kernel/exec.py and workload/startup.py: p.exec() on the simulator, with a start-up profile made here
(a hand-written one: these tests need neither perf nor root; tests/real/test_exec_real.py captures real ones)."""

from __future__ import annotations

import errno
import os

import pytest

import pagelab as pl
from pagelab.errors import ProcessDead
from pagelab.fs.binfmt_elf import page_align, page_start, read_elf
from pagelab.workload import startup
from pagelab.workload.ld_so import LD_SO_CACHE, needed_libraries, read_ld_so_cache
from pagelab.workload.startup import ProfileError, StartupProfile, Step, format_profile, parse_profile

TRUE = os.path.realpath("/bin/true")


def true_profile() -> StartupProfile:
    """A start-up of /bin/true shaped as glibc's ld.so runs it: its first allocation, the cache, libc,
    the TLS block, the RELRO mprotect()s, a heap; and one access in each kind of region."""
    exe = read_elf(TRUE)
    assert exe.interp is not None
    interp = read_elf(os.path.realpath(exe.interp))
    libs = needed_libraries(exe, read_ld_so_cache())
    steps = [Step("anon", ("8192", "rw-p")),
             Step("file", (LD_SO_CACHE, "0", str(page_align(os.path.getsize(LD_SO_CACHE))), "r--p")),
             Step("fault", ("R", "user", "file", LD_SO_CACHE, "16"))]
    steps += [Step("object", (lib.path,)) for lib in libs]
    steps.append(Step("anon", ("12288", "rw-p")))
    for obj in [*reversed(libs), exe, interp]:
        relro = obj.relro
        assert relro is not None
        start, end = page_start(relro.p_vaddr), page_start(relro.p_vaddr + relro.p_memsz)
        steps.append(Step("protect", ("obj", obj.path, str(start), str(end - start), "r--p")))
    steps += [Step("brk", ("135168",)),
              Step("fault", ("X", "user", "obj", TRUE, str(exe.e_entry))),
              Step("fault", ("R", "user", "obj", libs[0].path, "64")),
              Step("fault", ("W", "user", "heap", "8")),
              Step("fault", ("W", "user", "stack", str(3 * 4096 + 8))),
              Step("fault", ("W", "user", "anon", "0", "16")),
              Step("fault", ("R", "kernel", "vdso", "0"))]
    return StartupProfile(TRUE, ("true",), startup.sha256_of(TRUE), os.uname().release, (4, 0, 50, 0), 0, (),
                          tuple(steps))


@pytest.fixture
def profiled(monkeypatch: pytest.MonkeyPatch) -> StartupProfile:
    prof = true_profile()
    monkeypatch.setattr(startup, "profile_for", lambda path, argv, **kw: prof)
    return prof


def rows(m: pl.Machine, pid: int) -> list[tuple[str, str]]:
    out = []
    for line in m.read(f"/proc/{pid}/maps").splitlines():
        w = line.split()
        out.append((w[1], os.path.basename(w[5]) if len(w) > 5 else ""))
    return out


def test_profile_text_round_trips() -> None:
    prof = true_profile()
    assert parse_profile(format_profile(prof)) == prof
    with pytest.raises(ProfileError):
        parse_profile("# something else\n")
    text = format_profile(prof)
    with pytest.raises(ProfileError, match="unknown step"):
        parse_profile(text + "jump 1 2\n")
    with pytest.raises(ProfileError, match="arguments"):
        parse_profile(text + "brk\n")
    with pytest.raises(ProfileError, match="header"):
        parse_profile("\n".join(line for line in text.splitlines() if not line.startswith("counts")))


def test_exec_maps_what_ld_so_maps_in_its_order(machine: pl.Machine, profiled: StartupProfile) -> None:
    p = machine.spawn("sh")
    p.exec("/bin/true", ["true"])
    got = rows(machine, p.pid)
    libc = os.path.basename(needed_libraries(read_elf(TRUE), read_ld_so_cache())[0].path)
    ld = os.path.basename(os.path.realpath(read_elf(TRUE).interp or ""))
    exe = [(perm, os.path.basename(TRUE)) for perm in ("r--p", "r-xp", "r--p", "r--p", "rw-p")]
    lib = [(perm, libc) for perm in ("r--p", "r-xp", "r--p", "r--p", "rw-p")]
    assert got == [*exe, ("rw-p", "[heap]"), ("rw-p", ""), *lib, ("rw-p", ""), ("rw-p", ""),
                   ("r--p", "[vvar]"), ("r--p", "[vvar_vclock]"), ("r-xp", "[vdso]"),
                   *[(perm, ld) for perm in ("r--p", "r-xp", "r--p", "r--p", "rw-p")],
                   ("rw-p", "[stack]"), ("--xp", "[vsyscall]")]
    # the ld.so.cache mapping is gone (munmap() after the RELRO mprotects), leaving its hole
    assert LD_SO_CACHE not in machine.read(f"/proc/{p.pid}/maps")
    assert p.task.comm == "true"


def test_exec_counts_execve_and_each_replayed_fault(machine: pl.Machine, profiled: StartupProfile) -> None:
    p = machine.spawn("sh")
    p.exec("/bin/true", ["true"])
    cold = p.rusage()
    faults = sum(1 for s in profiled.steps if s.kind == "fault")
    assert cold.ru_minflt + cold.ru_majflt == 3 + faults  # padzero x2 and the argument page, then the profile
    assert cold.ru_majflt > 0  # a fresh machine: the program's files are read from disk
    p.exit()
    q = machine.spawn("sh")
    q.exec("/bin/true", ["true"])
    warm = q.rusage()
    assert (warm.ru_minflt, warm.ru_majflt) == (3 + faults, 0)  # launched again: major faults turned minor


def test_after_exec_the_process_is_stopped_at_its_exit(machine: pl.Machine, profiled: StartupProfile) -> None:
    p = machine.spawn("sh")
    p.exec("/bin/true", ["true"])
    with pytest.raises(ProcessDead, match="stopped at its exit"):
        p.mmap(None, 4096, pl.PROT_READ, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS)
    assert "[stack]" in machine.read(f"/proc/{p.pid}/maps")
    assert p.rusage().ru_minflt > 0
    p.exit(5)  # the program's own status, not 5
    assert not p.alive and p.task.exit_code == 0


def test_a_failed_exec_leaves_the_process_as_it_was(machine: pl.Machine, profiled: StartupProfile) -> None:
    p = machine.spawn("sh")
    a = p.mmap(None, 4096, pl.PROT_READ | pl.PROT_WRITE, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS)
    with pytest.raises(OSError) as exc:
        p.exec("/nonexistent/prog", ["prog"])
    assert exc.value.errno == errno.ENOENT
    with pytest.raises(OSError) as exc:
        p.exec("/bin/true", ["x" * (33 * 4096)])
    assert exc.value.errno == errno.E2BIG
    p.store(a, 7)
    assert p.load(a) == 7 and p.task.comm == "sh"


def test_a_profile_of_other_libraries_is_refused_before_exec(machine: pl.Machine,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    prof = true_profile()
    bad = StartupProfile(prof.program, prof.argv, prof.sha256, prof.kernel, prof.counts, prof.status, prof.maps,
                         tuple(s for s in prof.steps if s.kind != "object"))
    monkeypatch.setattr(startup, "profile_for", lambda path, argv, **kw: bad)
    p = machine.spawn("sh")
    with pytest.raises(ProfileError, match="libraries"):
        p.exec("/bin/true", ["true"])
    assert p.task.comm == "sh" and not p.exec_stopped


def test_exec_is_deterministic(profiled: StartupProfile) -> None:
    def run(seed: int) -> tuple[str, int]:
        m = pl.Machine(ram="256MiB", seed=seed)
        p = m.spawn("sh")
        p.exec("/bin/true", ["true"])
        return m.read(f"/proc/{p.pid}/maps"), p.rusage().ru_minflt

    assert run(3) == run(3)


def test_without_a_profile_or_perf_exec_says_so(machine: pl.Machine, tmp_path: os.PathLike[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", os.fspath(tmp_path))  # an empty profile cache
    monkeypatch.setattr("shutil.which", lambda name, *a, **k: None)  # no perf on PATH
    p = machine.spawn("sh")
    with pytest.raises(ProfileError, match="perf"):
        p.exec("/bin/true", ["true"])
    assert p.task.comm == "sh" and not p.exec_stopped
    p.mmap(None, 4096, pl.PROT_READ, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS)  # still usable


def test_argument_space_is_bounded_by_the_stack_limit(machine: pl.Machine, profiled: StartupProfile) -> None:
    """bprm_stack_limits(): the filename, argv and their NULs within min(6 MiB, RLIMIT_STACK / 4) (at least
    ARG_MAX) less 8 bytes per argument, measured at the byte on the host; an empty argv is NotModelled (the
    capture cannot launch it). Both leave the process as it was."""
    import resource

    from pagelab.errors import NotModelled
    from pagelab.kernel.exec import check_arg_space

    limit = 2 << 20  # RLIMIT_STACK 8 MiB
    n = 30
    budget = limit - n * 8 - len("/bin/true") - 1
    argv = ["a" * (budget // n - 1)] * (n - 1)
    argv.append("a" * (budget - sum(len(a) + 1 for a in argv) - 1))
    check_arg_space("/bin/true", argv, 8 << 20)  # exactly at the limit: runs
    with pytest.raises(OSError) as exc:
        check_arg_space("/bin/true", argv[:-1] + [argv[-1] + "a"], 8 << 20)
    assert exc.value.errno == errno.E2BIG
    check_arg_space("/bin/true", ["a" * 1000], 1 << 14)  # a tiny stack still allows ARG_MAX (32 pages)
    p = machine.spawn("sh")
    p.setrlimit(resource.RLIMIT_STACK, (1 << 20, resource.RLIM_INFINITY))  # 256 KiB of arguments
    with pytest.raises(OSError) as exc:
        p.exec("/bin/true", ["true"] + ["a" * 100000] * 3)
    assert exc.value.errno == errno.E2BIG
    for empty in ([], [""]):
        with pytest.raises(NotModelled):
            p.exec("/bin/true", empty)
    assert p.alive and p.task.comm == "sh"
