"""perf's software page-fault counters, through perf_event_open(2) with ctypes.

The events are opened on the calling process, disabled, with ``inherit`` and ``enable_on_exec``: a
child spawned afterwards inherits them, they start counting when it execs, and its counts are added to
ours when it exits. That is what ``perf stat -e page-faults,minor-faults,major-faults -- CMD`` counts.
"""

from __future__ import annotations

import ctypes
import os
import struct

PERF_TYPE_SOFTWARE = 1
SW_EVENTS = {"page-faults": 2, "minor-faults": 5, "major-faults": 6}  # PERF_COUNT_SW_PAGE_FAULTS*
_NR_PERF_EVENT_OPEN = 298  # x86-64
_ATTR_SIZE = 128
_DISABLED, _INHERIT, _ENABLE_ON_EXEC = 1 << 0, 1 << 1, 1 << 12
_PERF_FLAG_FD_CLOEXEC = 1 << 3  # so that a command spawned from this process does not inherit the fds

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _attr(config: int, flags: int) -> ctypes.Array[ctypes.c_char]:
    buf = ctypes.create_string_buffer(_ATTR_SIZE)
    # struct perf_event_attr: u32 type, u32 size, u64 config, u64 sample_period, u64 sample_type,
    # u64 read_format, u64 flags (bitfield) ...
    struct.pack_into("<IIQQQQQ", buf, 0, PERF_TYPE_SOFTWARE, _ATTR_SIZE, config, 0, 0, 0, flags)
    return buf


class ExecCounters:
    """The three page-fault events, on this process: with ``for_exec`` (the default) disabled, inherited
    and enabled on exec, for the next child it spawns; otherwise counting this process from now on."""

    def __init__(self, for_exec: bool = True) -> None:
        self.fds: dict[str, int] = {}
        flags = (_DISABLED | _INHERIT | _ENABLE_ON_EXEC) if for_exec else 0
        for name, config in SW_EVENTS.items():
            fd = _libc.syscall(_NR_PERF_EVENT_OPEN, _attr(config, flags), 0, -1, -1, _PERF_FLAG_FD_CLOEXEC)
            if fd < 0:
                self.close()
                raise OSError(ctypes.get_errno(), f"perf_event_open: {os.strerror(ctypes.get_errno())}")
            self.fds[name] = fd

    def read(self) -> dict[str, int]:
        return {name: struct.unpack("<Q", os.read(fd, 8))[0] for name, fd in self.fds.items()}

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds = {}


def open_exec_counters(for_exec: bool = True) -> ExecCounters | None:
    try:
        return ExecCounters(for_exec)
    except OSError:
        return None
