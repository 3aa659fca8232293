"""Random system-call sequences never break the kernel's bookkeeping (a hypothesis state machine).

Ranges include negative, wrapping and huge lengths and addresses; any step may be interrupted by a
host signal at a chosen point (a KeyboardInterrupt, as Ctrl-C). CI runs a short profile;
``PAGELAB_LONG=1`` runs at least 100,000 steps (2,200 programs of up to 50 steps).
"""

from __future__ import annotations

import os
import sys

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from tests.support.interrupts import alarm_raises, interrupt_at_call
from tests.support.profiles import LONG

import pagelab as pl
from pagelab.mm.debug import check_machine, check_rmap
from pagelab.mm.page_alloc import nr_free_frames

P = 4096
PROTS = [pl.PROT_NONE, pl.PROT_READ, pl.PROT_READ | pl.PROT_WRITE]
# Lengths and offsets as a careless or hostile caller passes them (the kernel sees them as unsigned).
ODD_LENGTHS = [-1, -P, -(1 << 63), 1, P - 1, P + 1, 1 << 47, (1 << 64) - P, 1 << 63]
ADVICE = [pl.MADV_DONTNEED, pl.MADV_FREE, pl.MADV_NORMAL, pl.MADV_RANDOM, pl.MADV_POPULATE_READ,
          pl.MADV_POPULATE_WRITE, pl.MADV_HUGEPAGE, pl.MADV_NOHUGEPAGE, pl.MADV_DONTFORK, pl.MADV_DOFORK,
          pl.MADV_WIPEONFORK, pl.MADV_KEEPONFORK]
# Most mappings are small; some are 2, 4 or 6 MiB (placed 2 MiB-aligned), where MADV_HUGEPAGE gives THPs.
PAGES = st.one_of(st.integers(1, 96), st.sampled_from([512, 1024, 1536]))


class MemoryMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.m = pl.Machine(ram="32MiB", seed=11)
        self.procs: list[pl.Process] = []
        self.regions: list[tuple[pl.Process, int, int]] = []
        self.free_at_boot = nr_free_frames(self.m)
        self.interrupt_at = 0
        self.interrupts = 0

    def _live(self):
        return [p for p in self.procs if p.alive]

    @rule()
    def spawn(self):
        if len(self._live()) < 3:
            self.procs.append(self.m.spawn(f"p{len(self.procs)}"))

    @precondition(lambda self: self._live())
    @rule(data=st.data(), pages=PAGES, prot=st.sampled_from(PROTS), shared=st.booleans())
    def mmap(self, data, pages, prot, shared):
        p = data.draw(st.sampled_from(self._live()))
        flags = (pl.MAP_SHARED if shared else pl.MAP_PRIVATE) | pl.MAP_ANONYMOUS
        a = p.mmap(None, pages * P, prot, flags)
        self.regions.append((p, a, pages))

    def _range(self, data):
        p, a, pages = data.draw(st.sampled_from(self.regions))
        start = data.draw(st.integers(-2, pages))
        n = data.draw(st.one_of(st.integers(0, pages + 2).map(lambda k: k * P), st.sampled_from(ODD_LENGTHS)))
        return p, a + start * P, n

    def _call(self, fn, *args):
        """Make one call; with probability 1/4 a host signal interrupts it at a drawn point."""
        with alarm_raises():
            try:
                if self.interrupt_at:
                    interrupt_at_call(self.interrupt_at)
                fn(*args)
            except (OSError, ValueError, pl.ProcessDead, pl.SegmentationFault, pl.BusError, pl.OutOfMemoryKill,
                    pl.WaitWouldBlock):
                pass
            except KeyboardInterrupt:
                self.interrupts += 1
            finally:
                self.interrupt_at = 0
                try:  # the hook may still count (the call made fewer calls than drawn): its last one is this
                    sys.setprofile(None)
                except KeyboardInterrupt:
                    pass  # after the call returned: nothing was interrupted

    @rule(at=st.integers(1, 3000))
    def interrupt_next_call(self, at):
        self.interrupt_at = at

    @precondition(lambda self: self.regions)
    @rule(data=st.data())
    def munmap(self, data):
        p, a, n = self._range(data)
        self._call(p.munmap, a, n)

    @precondition(lambda self: self.regions)
    @rule(data=st.data(), prot=st.sampled_from(PROTS))
    def mprotect(self, data, prot):
        p, a, n = self._range(data)
        self._call(p.mprotect, a, n, prot)

    @precondition(lambda self: self.regions)
    @rule(data=st.data(), advice=st.sampled_from(ADVICE))
    def madvise(self, data, advice):
        p, a, n = self._range(data)
        self._call(p.madvise, a, n, advice)

    @precondition(lambda self: self.regions)
    @rule(data=st.data(), write=st.booleans(), stride=st.sampled_from([1024, 4096, 12288]))
    def touch(self, data, write, stride):
        p, a, n = self._range(data)
        self._call(lambda: p.touch(a, n, write=write, stride=stride))

    @precondition(lambda self: self.regions)
    @rule(data=st.data(), value=st.integers(0, 255))
    def store(self, data, value):
        p, a, n = self._range(data)
        self._call(p.store, a, value)

    @precondition(lambda self: self._live())
    @rule(data=st.data(), disable=st.integers(0, 1), flags=st.sampled_from([0, pl.PR_THP_DISABLE_EXCEPT_ADVISED]))
    def prctl_thp_disable(self, data, disable, flags):
        p = data.draw(st.sampled_from(self._live()))
        self._call(p.prctl, pl.PR_SET_THP_DISABLE, disable, flags)

    # --- mremap (issue #9) ---
    @precondition(lambda self: self.regions)
    @rule(data=st.data(), new_pages=PAGES, flags=st.sampled_from([0, 1, 3, 5, 7, 8]))
    def mremap(self, data, new_pages, flags):
        p, a, n = self._range(data)
        _, dst, _ = data.draw(st.sampled_from(self.regions))
        dst += data.draw(st.integers(-4, 8)) * P
        out: list[int] = []
        self._call(lambda: out.append(p.mremap(a, n, new_pages * P, flags, dst)))
        if out:
            self.regions.append((p, out[0], new_pages))

    # --- mlock (issue #9): locked ranges are populated, unevictable, and not inherited by a child ---
    @precondition(lambda self: self.regions)
    @rule(data=st.data(), how=st.sampled_from(["mlock", "onfault", "munlock"]))
    def mlock(self, data, how):
        p, a, n = self._range(data)
        if how == "mlock":
            self._call(p.mlock, a, n)
        elif how == "onfault":
            self._call(p.mlock2, a, n, pl.MLOCK_ONFAULT)
        else:
            self._call(p.munlock, a, n)

    @precondition(lambda self: self._live())
    @rule(data=st.data(), flags=st.sampled_from([0, pl.MCL_CURRENT, pl.MCL_FUTURE, pl.MCL_CURRENT | pl.MCL_ONFAULT,
                                                  pl.MCL_FUTURE | pl.MCL_ONFAULT, 8]))
    def mlockall(self, data, flags):
        p = data.draw(st.sampled_from(self._live()))
        self._call(p.mlockall, flags) if flags != 0 else self._call(p.munlockall)

    # --- fork, wait (issue #9): a child shares every region of its parent; the checks above then cover pages
    # mapped by several processes (COW copies and reuse, THPs split under one side, zombies, orphans) ---
    @precondition(lambda self: 0 < len(self._live()) < 5)
    @rule(data=st.data())
    def fork(self, data):
        p = data.draw(st.sampled_from(self._live()))
        out: list[pl.Process] = []
        self._call(lambda: out.append(p.fork()))
        if out:
            self.procs.append(out[0])
            self.regions += [(out[0], a, n) for q, a, n in self.regions if q is p]

    @precondition(lambda self: self._live())
    @rule(data=st.data(), nohang=st.booleans())
    def wait(self, data, nohang):
        p = data.draw(st.sampled_from(self._live()))
        self._call(p.wait, -1, os.WNOHANG if nohang else 0)

    @precondition(lambda self: self._live())
    @rule(data=st.data())
    def exit(self, data):
        self._call(data.draw(st.sampled_from(self._live())).exit)

    steps = 0  # every step of every program, summed over the whole run (checked below)
    interrupted = 0

    @invariant()
    def bookkeeping_is_consistent(self):
        MemoryMachine.steps += 1
        check_machine(self.m)
        check_rmap(self.m)

    def teardown(self):
        MemoryMachine.interrupted += self.interrupts
        for p in self._live():
            p.exit()
        for task in list(self.m.tasks.values()):  # a child whose fork() returned into an interrupt: never seen
            if task.alive:
                pl.Process(self.m, task).exit()
        check_machine(self.m)
        huge_zero = 512 if self.m.huge_zero_folio >= 0 else 0  # kept until its shrinker frees it
        assert nr_free_frames(self.m) + huge_zero == self.free_at_boot
        assert self.m.ptpool.nr_tables == 0
        assert not self.m.mappings  # every anon_vma and address_space was freed with its last VMA
        assert not self.m.frames.nr_data_pages
        assert self.m.committed_pages == 0


# CI draws the same programs every run (derandomize): the check below that some calls were interrupted
# then cannot depend on luck; the long profile explores at random.
MemoryMachine.TestCase.settings = settings(max_examples=2200 if LONG else 60, derandomize=not LONG,
                                           stateful_step_count=50 if LONG else 30, deadline=None)

TestMemoryMachine = MemoryMachine.TestCase


def test_the_programs_ran_their_steps() -> None:
    """The run above really took its steps (>= 100,000 in the long profile), some of them interrupted."""
    print(f"state machine: {MemoryMachine.steps} steps, {MemoryMachine.interrupted} interrupted calls")
    assert MemoryMachine.steps >= (100_000 if LONG else 500)
    assert MemoryMachine.interrupted > 0
