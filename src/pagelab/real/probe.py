"""What this host is: kernel version, memory, and every tunable that changes fault counts.

Reads files only (psutil-style detection); a file that is absent or unreadable gives None. The
result is recorded with every comparison, since THP mode, mTHP sizes, read_ahead_kb, swap and the
kernel version all change counts (linux-mm-facts.md, "host configuration drift").
"""

from __future__ import annotations

import os
import platform
import re
import resource
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..hw.cpu import x86_match_cpu
from .diskcal import block_device_of

THP = Path("/sys/kernel/mm/transparent_hugepage")
VM = Path("/proc/sys/vm")
KSM = Path("/sys/kernel/mm/ksm")
VM_TUNABLES = ("swappiness", "min_free_kbytes", "watermark_scale_factor", "overcommit_memory",
               "overcommit_ratio", "overcommit_kbytes", "dirty_ratio", "dirty_background_ratio",
               "dirty_expire_centisecs", "dirty_writeback_centisecs", "page-cluster", "mmap_min_addr",
               "max_map_count")
KSM_TUNABLES = ("run", "pages_to_scan", "sleep_millisecs", "max_page_sharing", "merge_across_nodes",
                "use_zero_pages", "smart_scan", "advisor_mode")
KHUGEPAGED = ("pages_to_scan", "scan_sleep_millisecs", "alloc_sleep_millisecs", "max_ptes_none",
              "max_ptes_swap", "max_ptes_shared", "defrag")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _choice(text: str | None) -> str | None:
    """``always [madvise] never`` -> ``madvise``."""
    if text is None:
        return None
    m = re.search(r"\[([^\]]+)\]", text)
    return m.group(1) if m else text


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def meminfo_kb(field: str) -> int | None:
    text = _read(Path("/proc/meminfo")) or ""
    m = re.search(rf"^{re.escape(field)}:\s+(\d+)", text, re.M)
    return int(m.group(1)) if m else None


def root_block_device() -> str | None:
    """The block device that holds the root filesystem (e.g. ``vda``; a partition's parent disk)."""
    return block_device_of("/")


def swap_devices(text: str | None = None) -> list[dict[str, Any]]:
    """The active swap areas: name, type, size and used in kB, priority.

    Reads /proc/swaps as mm/swapfile.c: swap_show() writes it (a header line, then one area a line; a
    space in a name is ``\\040``). A zram device is listed like any partition (``/dev/zram0 partition``).
    """
    text = _read(Path("/proc/swaps")) if text is None else text
    out: list[dict[str, Any]] = []
    for line in (text or "").splitlines()[1:]:  # the first line is the header
        fields = line.rsplit(None, 4)
        if len(fields) == 5 and all(f.lstrip("-").isdigit() for f in fields[2:]):
            name, kind, size, used, prio = fields
            out.append({"name": name.replace("\\040", " "), "type": kind, "size_kB": int(size),
                        "used_kB": int(used), "priority": int(prio)})
    return out


def cpu_identity(text: str | None = None) -> dict[str, Any] | None:
    """The first CPU of /proc/cpuinfo: ``vendor_id``, ``cpu_family``, ``model`` (ints) and ``model_name``.

    Reads the lines arch/x86/kernel/cpu/proc.c: show_cpuinfo() writes (``cpu family\t: 25``); None when the
    file is absent or is not an x86 one (no vendor_id, family or model).
    """
    text = _read(Path("/proc/cpuinfo")) if text is None else text
    fields: dict[str, str] = {}
    for line in (text or "").splitlines():
        if not line.strip():
            if fields:
                break  # the end of the first processor's block
            continue
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    family, model = _int(fields.get("cpu family")), _int(fields.get("model"))
    if "vendor_id" not in fields or family is None or model is None:
        return None
    return {"vendor_id": fields["vendor_id"], "cpu_family": family, "model": model,
            "model_name": fields.get("model name", "")}


def cpu_model_of(identity: Mapping[str, Any] | None) -> str | None:
    """The simulator's CPU model (hw/cpu.py) that stands for a ``cpu_identity()``, or None if none does."""
    if not identity:
        return None
    return x86_match_cpu(str(identity["vendor_id"]), int(identity["cpu_family"]), int(identity["model"]))


def _cap_eff() -> int | None:
    """This process's effective capabilities (the CapEff bit mask of /proc/self/status), None if unreadable."""
    for line in (_read(Path("/proc/self/status")) or "").splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return None


def probe_host(*, calibrate_disk: bool = False) -> dict[str, Any]:
    """Every host fact pagelab records, keyed by the real path (or a plain name for non-files).

    ``calibrate_disk`` adds ``disk_calibration``: the host disk's measured 4 KiB random-read latency and
    sequential bandwidth (pagelab.real.diskcal, once per process), or ``{"error": why}`` if it failed.
    """
    facts: dict[str, Any] = {
        "kernel": platform.release(),
        "machine": platform.machine(),
        "page_size": os.sysconf("SC_PAGE_SIZE"),
        "MemTotal_kB": meminfo_kb("MemTotal"),
        "SwapTotal_kB": meminfo_kb("SwapTotal"),
        "swaps": swap_devices(),
        "nr_cpus": os.cpu_count(),
        "cpu": cpu_identity(),
        "RLIMIT_MEMLOCK": resource.getrlimit(resource.RLIMIT_MEMLOCK),
        "euid": os.geteuid(),
        "CapEff": _cap_eff(),
    }
    for name in VM_TUNABLES:
        facts[str(VM / name)] = _int(_read(VM / name))
    for name in ("enabled", "defrag", "shmem_enabled"):
        facts[str(THP / name)] = _choice(_read(THP / name))
    facts[str(THP / "use_zero_page")] = _int(_read(THP / "use_zero_page"))
    for d in sorted(THP.glob("hugepages-*kB")):
        facts[str(d / "enabled")] = _choice(_read(d / "enabled"))
        if (d / "shmem_enabled").exists():
            facts[str(d / "shmem_enabled")] = _choice(_read(d / "shmem_enabled"))
    for name in KHUGEPAGED:
        facts[str(THP / "khugepaged" / name)] = _int(_read(THP / "khugepaged" / name))
    for name in KSM_TUNABLES:
        text = _read(KSM / name)
        facts[str(KSM / name)] = _int(text) if _int(text) is not None else _choice(text)
    dev = root_block_device()
    if dev:
        facts[f"/sys/block/{dev}/queue/read_ahead_kb"] = _int(_read(Path(f"/sys/block/{dev}/queue/read_ahead_kb")))
    if calibrate_disk:
        facts["disk_calibration"] = probe_disk_calibration()
    return facts


def probe_disk_calibration() -> dict[str, Any]:
    """The host disk's calibration (pagelab.real.diskcal, measured once per process), or ``{"error": why}``."""
    from .diskcal import DEFAULT_DIR, disk_calibration

    try:
        return disk_calibration()
    except OSError as e:  # no /var/tmp, a read-only or full filesystem ...
        return {"error": f"calibrating the disk under {DEFAULT_DIR} failed: {e}"}
