"""pagelab.abi: Python values become C arguments as a C call converts them; misuse fails before anything runs."""

from __future__ import annotations

import time

import numpy as np
import pytest

import pagelab as pl
from pagelab import abi

P = 4096
RW, ANON = pl.PROT_READ | pl.PROT_WRITE, pl.MAP_PRIVATE | pl.MAP_ANONYMOUS


@pytest.mark.parametrize("value, expected", [(0, 0), (-4096, 2**64 - 4096), (-1, 2**64 - 1), (2**64 - 1, 2**64 - 1),
                                             (-(2**63), 2**63), (np.int64(-1), 2**64 - 1), (True, 1)])
def test_unsigned_long_converts_as_c_does(value, expected):
    assert abi.c_ulong(value, "length") == expected


@pytest.mark.parametrize("value, expected", [(0xFFFFFFFF, -1), (2**31, -(2**31)), (-(2**31), -(2**31)), (7, 7),
                                             (np.uint32(0xFFFFFFFF), -1)])
def test_int_converts_as_c_does(value, expected):
    assert abi.c_int(value, "prot") == expected


@pytest.mark.parametrize("value", [2**64, -(2**63) - 1, 2**70])
def test_integers_that_fit_no_64_bit_argument_overflow(value):
    with pytest.raises(OverflowError, match="does not fit a 64-bit C argument"):
        abi.c_ulong(value, "length")


@pytest.mark.parametrize("value", [2**32, -(2**31) - 1])
def test_integers_that_fit_no_int_overflow(value):
    with pytest.raises(OverflowError, match="32-bit"):
        abi.c_int(value, "prot")


@pytest.mark.parametrize("value", [1.5, 4096.0, "4096", None, b"x", np.float64(1.0), [1]])
def test_non_integers_are_type_errors(value):
    with pytest.raises(TypeError, match="length must be an integer"):
        abi.c_ulong(value, "length")


def test_mmap_takes_none_as_null_and_converts_offset_as_off_t():
    assert abi.mmap_args(None, -1, 0xFFFFFFFF, 0x22, -1, -4096) == (0, 2**64 - 1, -1, 0x22, -1, -4096)
    assert abi.mmap_args(0, 1, 1, 1, 2**32 - 1, 2**64 - 4096) == (0, 1, 1, 1, -1, -4096)


@pytest.fixture
def proc():
    m = pl.Machine(ram="64MiB", seed=0)
    p = m.spawn("abi")
    a = p.mmap(None, 4 * P, RW, ANON)
    return p, a


def test_a_float_store_value_faults_nothing_in(proc):
    p, a = proc
    with pytest.raises(TypeError, match="store value must be an integer, not float"):
        p.store(a, 1.5)
    assert p.rusage().ru_minflt == 0
    with pytest.raises(ValueError, match="0..255"):
        p.store(a, 256)
    assert p.rusage().ru_minflt == 0 and p.mincore(a, P).tolist() == [0]


@pytest.mark.parametrize("call", [lambda p, a: p.touch(float(a), P), lambda p, a: p.load(float(a)),
                                  lambda p, a: p.store(float(a)), lambda p, a: p.access([a + 0.5]),
                                  lambda p, a: p.access(np.array([a], dtype=np.float64)),
                                  lambda p, a: p.touch(a, float(P)), lambda p, a: p.touch(a, P, stride=4096.0),
                                  lambda p, a: p.touch(a, P, write=1), lambda p, a: p.access([a], write=[0.5])])
def test_float_addresses_are_never_truncated(proc, call):
    p, a = proc
    with pytest.raises(TypeError):
        call(p, a)
    assert p.rusage().ru_minflt == 0


@pytest.mark.parametrize("bad", [-1, 2**64, -(2**63)])
def test_one_rule_and_one_message_for_addresses_outside_the_address_space(proc, bad):
    p, _ = proc
    messages = set()
    for call in (lambda: p.load(bad), lambda: p.store(bad), lambda: p.touch(bad, P), lambda: p.access([bad]),
                 lambda: p.access(np.array([bad], dtype=object))):
        with pytest.raises(ValueError) as exc:
            call()
        messages.add(str(exc.value))
    assert messages == {f"address {bad} is outside the 64-bit address space [0, 2**64)"}
    with pytest.raises(ValueError, match="outside the 64-bit address space"):
        p.touch(2**64 - P, 2 * P)
    with pytest.raises(ValueError, match="outside the 64-bit address space"):
        p.access(np.array([-5], dtype=np.int64))


def test_a_two_dimensional_access_is_refused_at_once(proc):
    p, a = proc
    t = time.perf_counter()
    with pytest.raises(ValueError, match="one-dimensional"):
        p.access(np.array([[a, a + P]]))
    assert time.perf_counter() - t < 0.5  # no compilation of a loop for the wrong array type


def test_write_masks_must_match(proc):
    p, a = proc
    with pytest.raises(ValueError, match="one flag per address"):
        p.access([a, a + P], write=[True])
    p.access([a, a + P], write=np.array([1, 0]))
    assert p.rusage().ru_minflt == 2
    p.access([], write=False)


def test_exit_takes_an_int_status(proc):
    p, _ = proc
    with pytest.raises(TypeError, match="exit status must be an integer, not str"):
        p.exit("x")
    with pytest.raises(OverflowError):
        p.exit(2**40)
    assert p.alive
    p.exit(-1)
    assert not p.alive


@pytest.mark.parametrize("call", [lambda p, a: p.mmap(None, 4096.0, RW, ANON), lambda p, a: p.mmap("0", P, RW, ANON),
                                  lambda p, a: p.munmap(a, None), lambda p, a: p.mprotect(a, P, 1.0),
                                  lambda p, a: p.madvise(a, P, None), lambda p, a: p.mincore(a, "1"),
                                  lambda p, a: p.mmap(None, P, RW, ANON, fd=-1.0)])
def test_syscall_arguments_must_be_integers(proc, call):
    p, a = proc
    before = p.machine.read(f"/proc/{p.pid}/maps")
    with pytest.raises(TypeError):
        call(p, a)
    assert p.machine.read(f"/proc/{p.pid}/maps") == before


def test_negative_lengths_reach_the_kernel_as_size_t(proc):
    p, a = proc
    with pytest.raises(OSError) as exc:
        p.madvise(a + 2 * P, -4096, pl.MADV_RANDOM)
    assert exc.value.errno == 22
    assert [v.vm_start < v.vm_end for v in p.task.mm.vmas] == [True]
    with pytest.raises(OSError) as exc:
        p.mincore(a, -1)
    assert exc.value.errno == 12
