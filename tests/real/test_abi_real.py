"""Python-level misuse raises the same exception, with the same message, on both backends; pagelab.real
checks in the parent, so nothing reaches the child."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import pagelab as pl

pytestmark = [pytest.mark.real,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs a Linux kernel")]
P = 4096
RW, ANON = pl.PROT_READ | pl.PROT_WRITE, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS
ARENA = 1 << 44
MISUSE = {
    "store a float": lambda p, a: p.store(a, 1.5),
    "store 256": lambda p, a: p.store(a, 256),
    "load a float address": lambda p, a: p.load(float(a)),
    "load -1": lambda p, a: p.load(-1),
    "load 2**64": lambda p, a: p.load(2**64),
    "touch a float address": lambda p, a: p.touch(float(a), P),
    "touch -1": lambda p, a: p.touch(-1, P),
    "touch past 2**64": lambda p, a: p.touch(2**64 - P, 2 * P),
    "touch length -1": lambda p, a: p.touch(a, -1),
    "touch stride 0": lambda p, a: p.touch(a, P, stride=0),
    "touch write=1": lambda p, a: p.touch(a, P, write=1),
    "access 2-D": lambda p, a: p.access(np.array([[a, a + P]])),
    "access floats": lambda p, a: p.access([a + 0.5]),
    "access -1": lambda p, a: p.access([-1]),
    "access a short mask": lambda p, a: p.access([a, a + P], write=[True]),
    "exit 'x'": lambda p, a: p.exit("x"),
    "exit 2**40": lambda p, a: p.exit(2**40),
    "mmap a float length": lambda p, a: p.mmap(None, 4096.0, RW, ANON),
    "mmap length 2**64": lambda p, a: p.mmap(None, 2**64, RW, ANON),
    "munmap length None": lambda p, a: p.munmap(a, None),
    "mprotect a float prot": lambda p, a: p.mprotect(a, P, 1.0),
    "madvise advice None": lambda p, a: p.madvise(a, P, None),
    "madvise advice 2**32": lambda p, a: p.madvise(a, P, 2**32),
    "mincore a str length": lambda p, a: p.mincore(a, "1"),
    "run_phase store a float": lambda p, a: p.run_phase([("store", (a, 1.5), {})]),
    "run_phase touch -1": lambda p, a: p.run_phase([("touch", (-1, P), {"write": True})]),
}


@pytest.fixture(scope="module")
def procs():
    from pagelab.real import Machine as RealMachine

    with RealMachine() as real:
        out = []
        for m in (real, pl.Machine(ram="256MiB", seed=0)):
            p = m.spawn("misuse")
            p.mmap(ARENA, 4 * P, RW, ANON | pl.MAP_FIXED_NOREPLACE)  # the same address on both
            out.append(p)
        yield out


@pytest.mark.parametrize("name", sorted(MISUSE))
def test_misuse_is_refused_alike_before_anything_happens(procs, name, monkeypatch):
    got = []
    for p in procs:
        minflt = p.rusage().ru_minflt
        if hasattr(p, "_call"):
            def refuse(*args, **kwargs):
                raise AssertionError(f"{name} reached the child: {args}")
            monkeypatch.setattr(p, "_call", refuse)
        with pytest.raises((TypeError, ValueError, OverflowError)) as exc:
            MISUSE[name](p, ARENA)
        got.append((type(exc.value).__name__, str(exc.value)))
        monkeypatch.undo()
        assert p.alive and p.rusage().ru_minflt == minflt, f"{name}: faults before the refusal"
    assert got[0] == got[1]


@pytest.mark.parametrize("addr, si_code", [(0, "SEGV_MAPERR"), (1 << 50, "SI_KERNEL"), (2**64 - 2 * P, "SEGV_MAPERR"),
                                           ((1 << 47) - P, "SEGV_MAPERR")])
def test_touch_outside_user_space_faults_alike(addr, si_code):
    """Every address in [0, 2**64) is accepted, and one that is not user memory faults on both backends."""
    from pagelab.real import Machine as RealMachine

    got = []
    with RealMachine() as real:
        for m in (real, pl.Machine(ram="64MiB", seed=0)):
            p = m.spawn("wild-touch")
            with pytest.raises(pl.SegmentationFault) as exc:
                p.touch(addr, 2 * P, write=True)
            got.append((exc.value.si_code, exc.value.addr))
    assert got[0] == got[1] and got[0][0] == si_code
