"""Run a command as /usr/bin/time and perf stat run it, and stop it cleanly.

Finding the command follows execvp() and the shells: a name with a slash is a path, else the first
executable regular file on PATH; one that is missing exits 127, one that exists but cannot be executed
126 ("Permission denied", "Is a directory"). With a C compiler at hand the command runs under
pagelab-launch (launch.c, compiled once into $XDG_CACHE_HOME/pagelab or ~/.cache/pagelab, else into a
temporary directory), which forks it from a small process as GNU time does and opens perf's page-fault
events on it as perf stat does; without one, it is spawned from this process. Either way the caller
reads ``pid``, ``started`` and, once ``wait()`` returns True, ``result``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import select
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from ..errors import PagelabError
from ..observe.parse import parse_stat
from ..observe.summary import RU_FIELDS
from .perf import SW_EVENTS, open_exec_counters


class MeasureError(PagelabError):
    """measure itself could not run the command (no command, bad option, a broken launcher).

    Exits 125, GNU time's EXIT_CANCELED for its own failures."""

    exit_code = 125


class CommandNotFound(PagelabError):
    """The command does not exist (execve's ENOENT): exit 127, as shells and GNU time."""

    exit_code = 127


class CommandNotExecutable(PagelabError):
    """The command exists but cannot be executed (EACCES, EISDIR, ENOEXEC...): exit 126, as shells."""

    exit_code = 126


# ---- finding the command, as execvp() and the shells do ----

def resolve(name: str) -> str:
    """The file execvp() runs for ``name``: ``name`` itself if it has a slash, else the first
    executable regular file of that name on PATH. Raises CommandNotFound (127) or
    CommandNotExecutable (126) with the shell's words ("Permission denied", "Is a directory")."""
    if "/" in name:
        return _executable(name)
    candidates = [os.path.join(d or ".", name) for d in os.environ.get("PATH", os.defpath).split(":")] if name else []
    for path in candidates:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    for path in candidates:  # a file that is there but not executable: execvp's EACCES
        if os.path.isfile(path):
            return _executable(path, name)
    raise CommandNotFound(f"cannot run {name or repr(name)}: command not found")


def _executable(path: str, name: str = "") -> str:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise exec_error(name or path, exc.errno or errno.ENOENT) from None
    if stat.S_ISDIR(st.st_mode):
        raise exec_error(name or path, errno.EISDIR)
    if not stat.S_ISREG(st.st_mode) or not os.access(path, os.X_OK):
        raise exec_error(name or path, errno.EACCES)
    return path


def exec_error(name: str, err: int) -> PagelabError:
    cls = CommandNotFound if err == errno.ENOENT else CommandNotExecutable
    return cls(f"cannot run {name}: {os.strerror(err)}")


# ---- pagelab-launch: compiled once into the cache directory ----

def cache_dir() -> Path | None:
    """$XDG_CACHE_HOME/pagelab, else ~/.cache/pagelab (a relative XDG_CACHE_HOME is ignored, as the
    XDG base directory specification says); None when there is no home directory."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(xdg):
        return Path(xdg) / "pagelab"
    try:
        return Path.home() / ".cache" / "pagelab"
    except RuntimeError:
        return None


def _build(cc: str, directory: Path) -> str | None:
    """pagelab-launch-<hash of launch.c> in ``directory``, compiled there unless present; None when the
    directory cannot hold it or run it (read-only, not a directory, mounted noexec...)."""
    src = Path(__file__).with_name("launch.c")
    exe = directory / f"pagelab-launch-{hashlib.sha256(src.read_bytes()).hexdigest()[:12]}"
    if not exe.is_file():
        tmp = directory / f"{exe.name}.{os.getpid()}.tmp"
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            r = subprocess.run([cc, "-O2", "-o", str(tmp), str(src)], capture_output=True, check=False)
            if r.returncode != 0:
                return None
            tmp.replace(exe)
        except OSError:
            return None
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
    return str(exe) if os.access(exe, os.X_OK) else None


@contextmanager
def launcher() -> Iterator[str | None]:
    """The compiled pagelab-launch: from the cache directory, else (that directory unusable) built in a
    temporary directory for this run; None without a C compiler or anywhere to run it from."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        yield None
        return
    cache = cache_dir()
    exe = _build(cc, cache) if cache is not None else None
    if exe is not None:
        yield exe
        return
    with tempfile.TemporaryDirectory(prefix="pagelab-") as tmp:
        yield _build(cc, Path(tmp))


# ---- running the command ----

class Run(Protocol):
    """A running command, as Launched and Spawned present it."""

    pid: int  # the command, once known (else -1)
    parent: int  # the process whose child it is
    started: float | None  # time.monotonic() when its exec was seen
    exec_errno: int | None
    result: dict[str, Any] | None  # once reaped: status, elapsed_ns, rusage, perf

    def wait(self, timeout: float | None, wake: int | None = None) -> bool: ...

    def close(self) -> None: ...


class Launched:
    """The command under pagelab-launch, whose report lines say what happens (see launch.c)."""

    how = "pagelab-launch (forks the command from a small process, as /usr/bin/time does)"

    def __init__(self, exe: str, file: str, argv: list[str]) -> None:
        r, w = os.pipe()
        try:
            self.proc = subprocess.Popen([exe, str(w), file, *argv], pass_fds=(w,))
        except OSError:
            os.close(r)
            raise
        finally:
            os.close(w)
        self.fd, self.buf = r, b""
        self.pid, self.parent = -1, self.proc.pid
        self.started: float | None = None
        self.exec_errno: int | None = None
        self.result: dict[str, Any] | None = None

    def wait(self, timeout: float | None, wake: int | None = None) -> bool:
        """Read report lines for up to ``timeout`` seconds (None: no limit), or until ``wake`` is readable;
        True once the command is reaped."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.result is None:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if self.fd not in _select(self.fd, wake, left):
                return False
            chunk = os.read(self.fd, 4096)
            if not chunk:
                self.proc.wait()
                raise MeasureError(f"pagelab-launch failed (exit status {self.proc.returncode})")
            self.buf += chunk
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                self._line(line.decode().split())
        self.proc.wait()
        return True

    def _line(self, words: list[str]) -> None:
        if words[:1] == ["pid"]:
            self.pid = int(words[1])
        elif words[:1] == ["exec"]:
            self.started = time.monotonic()
        elif words[:1] == ["execfail"]:
            self.exec_errno = int(words[1])
        elif words[:1] == ["done"]:
            kv = {k: int(v) for k, v in (w.split("=", 1) for w in words[1:])}
            ru: dict[str, float] = {k: v for k, v in kv.items() if k.startswith("ru_") and not k.endswith("_us")}
            ru["ru_utime"], ru["ru_stime"] = kv["ru_utime_us"] / 1e6, kv["ru_stime_us"] / 1e6
            perf = {k: kv[k] for k in SW_EVENTS}
            self.result = {"status": kv["status"], "elapsed_ns": kv["elapsed_ns"], "rusage": ru,
                           "perf": perf if min(perf.values()) >= 0 else None}

    def close(self) -> None:
        os.close(self.fd)




class Spawned:
    """The command spawned from this process (no C compiler, or nowhere to run pagelab-launch): perf's
    events are opened on this process, inherited and enabled on exec. Simplified: posix_spawn() runs no
    script without "#!" under /bin/sh, and ru_maxrss includes this interpreter's RSS (execve records
    the old mm's peak)."""

    how = "posix_spawn from Python (pagelab-launch unavailable): ru_maxrss includes this interpreter's RSS"

    def __init__(self, file: str, argv: list[str]) -> None:
        self.counters = open_exec_counters()
        self.parent = os.getpid()
        self.exec_errno: int | None = None
        self.result: dict[str, Any] | None = None
        self.pidfd: int | None = None
        self.t0 = time.monotonic_ns()
        try:
            self.pid = os.posix_spawn(file, argv, os.environ, setsigdef=(signal.SIGPIPE, signal.SIGXFSZ))
        except OSError as exc:
            self.close()
            raise exec_error(argv[0], exc.errno or errno.ENOEXEC) from None
        self.started: float | None = time.monotonic()
        self.pidfd = os.pidfd_open(self.pid)

    def wait(self, timeout: float | None, wake: int | None = None) -> bool:
        """Wait up to ``timeout`` seconds, or until ``wake`` is readable; True once the command is reaped."""
        if self.result is not None or self.pidfd is None:
            return self.result is not None
        if self.pidfd not in _select(self.pidfd, wake, timeout):
            return False
        t1 = time.monotonic_ns()
        _, status, ru = os.wait4(self.pid, 0)
        perf = self.counters.read() if self.counters else None
        self.result = {"status": status, "elapsed_ns": t1 - self.t0, "perf": perf,
                       "rusage": {k: getattr(ru, k) for k in RU_FIELDS}}
        return True

    def close(self) -> None:
        if self.counters:
            self.counters.close()
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None


def _select(fd: int, wake: int | None, timeout: float | None) -> list[int]:
    """The ready ones of ``fd`` and ``wake``; a readable ``wake`` is drained."""
    ready: list[int] = select.select([fd] if wake is None else [fd, wake], [], [], timeout)[0]
    if wake in ready:
        with contextlib.suppress(BlockingIOError):
            while os.read(wake, 64):
                pass
    return ready


class CtrlC:
    """SIGINT while the command runs, counted, and seen by select() through a self-pipe
    (signal.set_wakeup_fd), instead of a KeyboardInterrupt raised wherever the interpreter happens to
    be (in the middle of reading the launcher's report, say). Only in the main thread, where Python
    runs signal handlers, and only where SIGINT is not ignored (a background job keeps ignoring it);
    elsewhere ``fd`` is None and ``count`` stays 0."""

    def __init__(self) -> None:
        self.count = 0
        self.fd: int | None = None
        self._w = -1
        self._old_wakeup = -2  # not replaced yet
        self._old_handler: Any = None

    def __enter__(self) -> CtrlC:
        if threading.current_thread() is not threading.main_thread() or \
                signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, None):
            return self
        self.fd, self._w = os.pipe()
        try:
            os.set_blocking(self.fd, False)
            os.set_blocking(self._w, False)
            self._old_handler = signal.getsignal(signal.SIGINT)
            self._old_wakeup = signal.set_wakeup_fd(self._w)
            signal.signal(signal.SIGINT, self._on_sigint)
        except BaseException:  # a KeyboardInterrupt pending from just before
            self.__exit__()
            raise
        return self

    def _on_sigint(self, signum: int, frame: Any) -> None:
        self.count += 1

    def __exit__(self, *exc: object) -> None:
        if self.fd is None:
            return
        if self._old_handler is not None:
            signal.signal(signal.SIGINT, self._old_handler)
        if self._old_wakeup != -2:
            signal.set_wakeup_fd(self._old_wakeup)
        os.close(self.fd)
        os.close(self._w)
        self.fd = None


def stop(run: Run, ctrl: CtrlC | None = None, grace: bool = True) -> None:
    """Stop the command and reap it. A Ctrl-C at a terminal has already sent SIGINT to the whole
    foreground process group, the command included: give it 0.2 s to end of its own, then send its
    process tree SIGINT, then after 2 s SIGKILL. Another Ctrl-C moves on to the next step at once."""
    steps = ((0, 0.2), (signal.SIGINT, 2.0), (signal.SIGKILL, 5.0)) if grace else ((signal.SIGKILL, 5.0),)
    for sig, wait_s in steps:
        if sig:
            signal_tree(run.parent, run.pid, sig)
        seen, end = (ctrl.count if ctrl else 0), time.monotonic() + wait_s
        while (left := end - time.monotonic()) > 0 and (ctrl is None or ctrl.count == seen):
            if run.wait(left, ctrl.fd if ctrl else None):
                return
    if isinstance(run, Launched) and run.result is None:  # the command never appeared, or cannot be killed
        run.proc.kill()
        run.proc.wait()


# ---- the process tree ----

def children(pid: int) -> list[int]:
    """The children of every thread of ``pid``: /proc/PID/task/TID/children (CONFIG_PROC_CHILDREN),
    else a scan of every /proc/PID/stat for its ppid."""
    me = threading.get_native_id()
    if not os.path.exists(f"/proc/{os.getpid()}/task/{me}/children"):
        return _children_by_scan(pid)
    kids: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return kids
    for tid in tids:
        try:
            kids += [int(c) for c in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
        except OSError:
            continue
    return kids


def _children_by_scan(pid: int) -> list[int]:
    kids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if parse_stat(Path(f"/proc/{name}/stat").read_text())["ppid"] == pid:
                    kids.append(int(name))
            except (OSError, ValueError, KeyError):
                continue
    return kids


def stat_if_child(pid: int, ppid: int) -> dict[str, Any] | None:
    """/proc/PID/stat, if ``pid`` is still a child of ``ppid`` (not a reused PID)."""
    try:
        st = parse_stat(Path(f"/proc/{pid}/stat").read_text())
    except (OSError, ValueError):
        return None
    return st if st.get("ppid") == ppid else None


def signal_tree(parent: int, root: int, sig: int) -> None:
    """Send ``sig`` to ``root`` (a child of ``parent``) and all its descendants, parents first, so that a
    shell has its own SIGINT pending when it sees its child die of one, as after a terminal's Ctrl-C
    (which reaches the whole process group at once). Each process is pinned with a pidfd and checked
    to be its parent's child before its children are read, so a PID reused in between is never signalled."""
    pinned: list[int] = []
    todo = [(parent, root)] if root > 0 else []
    try:
        while todo:
            ppid, pid = todo.pop()
            try:
                fd = os.pidfd_open(pid)
            except OSError:
                continue
            if stat_if_child(pid, ppid) is None:
                os.close(fd)
                continue
            pinned.append(fd)
            todo += [(pid, c) for c in children(pid)]
        for fd in pinned:
            try:
                signal.pidfd_send_signal(fd, sig)
            except OSError:  # already gone
                pass
    finally:
        for fd in pinned:
            os.close(fd)
