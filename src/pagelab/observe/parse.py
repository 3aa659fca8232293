"""Parsers for the /proc formats pagelab renders; they read the host's real files unchanged.

One parser per format, used on simulated text and real text alike, so "simulated vs real" is a
comparison of two parsed snapshots. Sizes are returned in kB as Linux prints them.
"""

from __future__ import annotations

import re
from typing import Any

STAT_FIELDS = (
    "pid", "comm", "state", "ppid", "pgrp", "session", "tty_nr", "tpgid", "flags", "minflt", "cminflt",
    "majflt", "cmajflt", "utime", "stime", "cutime", "cstime", "priority", "nice", "num_threads",
    "itrealvalue", "starttime", "vsize", "rss", "rsslim", "startcode", "endcode", "startstack",
    "kstkesp", "kstkeip", "signal", "blocked", "sigignore", "sigcatch", "wchan", "nswap", "cnswap",
    "exit_signal", "processor", "rt_priority", "policy", "delayacct_blkio_ticks", "guest_time",
    "cguest_time", "start_data", "end_data", "start_brk", "arg_start", "arg_end", "env_start",
    "env_end", "exit_code",
)
_MAPS_RE = re.compile(
    r"^([0-9a-f]+)-([0-9a-f]+) ([r-][w-][x-][sp]) ([0-9a-f]+) ([0-9a-f]+:[0-9a-f]+) (\d+) ?\s*(.*)$")


def parse_vmstat(text: str) -> dict[str, int]:
    """``name value`` lines -> {name: value}."""
    out = {}
    for line in text.splitlines():
        if line.strip():
            name, value = line.split()
            out[name] = int(value)
    return out


def parse_meminfo(text: str) -> dict[str, int]:
    """``Label:   value kB`` lines -> {Label: value} (kB, or a count for HugePages_*)."""
    out = {}
    for line in text.splitlines():
        if ":" in line:
            label, rest = line.split(":", 1)
            out[label] = int(rest.split()[0])
    return out


def parse_status(text: str) -> dict[str, Any]:
    """/proc/PID/status -> {field: text}, with ``Vm*``/``Rss*`` sizes as int kB."""
    out: dict[str, Any] = {}
    for line in text.splitlines():
        if ":" not in line:
            continue
        key, value = line.split(":", 1)
        value = value.strip()
        out[key] = int(value.split()[0]) if value.endswith(" kB") else value
    return out


def parse_stat(text: str) -> dict[str, Any]:
    """/proc/PID/stat -> {field name: value}; ``comm`` may contain spaces and parentheses."""
    lpar, rpar = text.index("("), text.rindex(")")
    rest = text[rpar + 2:].split()
    values: list[Any] = [int(text[:lpar].strip()), text[lpar + 1:rpar], rest[0]]
    values += [int(v) for v in rest[1:]]
    return dict(zip(STAT_FIELDS, values, strict=False))


STATM_FIELDS = ("size", "resident", "shared", "text", "lib", "data", "dt")


def parse_statm(text: str) -> dict[str, int]:
    """/proc/PID/statm -> {size, resident, shared, text, lib, data, dt}, in pages (proc(5) names).

    ValueError unless the text is exactly seven non-negative integers.
    """
    values = text.split()
    if len(values) != len(STATM_FIELDS) or not all(v.isdigit() for v in values):
        raise ValueError(f"not /proc/PID/statm text: {text!r}")
    return dict(zip(STATM_FIELDS, (int(v) for v in values), strict=True))


def parse_maps(text: str) -> list[dict[str, Any]]:
    """/proc/PID/maps -> one dict per VMA: start, end, perms, offset, dev, inode, pathname."""
    out = []
    for line in text.splitlines():
        m = _MAPS_RE.match(line)
        if m:
            out.append({"start": int(m.group(1), 16), "end": int(m.group(2), 16), "perms": m.group(3),
                        "offset": int(m.group(4), 16), "dev": m.group(5), "inode": int(m.group(6)),
                        "pathname": m.group(7).strip()})
    return out


def parse_smaps(text: str) -> list[dict[str, Any]]:
    """/proc/PID/smaps (or smaps_rollup) -> one dict per VMA: the maps fields, kB fields, VmFlags."""
    out: list[dict[str, Any]] = []
    for line in text.splitlines():
        m = _MAPS_RE.match(line)
        if m and not line.startswith(("VmFlags", "THPeligible")):
            out.append({"start": int(m.group(1), 16), "end": int(m.group(2), 16), "perms": m.group(3),
                        "pathname": m.group(7).strip()})
            continue
        if not out or ":" not in line:
            continue
        key, value = line.split(":", 1)
        if key == "VmFlags":
            out[-1][key] = value.split()
        else:
            out[-1][key] = int(value.split()[0])
    return out
