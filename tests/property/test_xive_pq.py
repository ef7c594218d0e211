"""Hypothesis: the PQ state machine, alone and through the XiveSource ESB pages (xive.md 2.3)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from xive_machine.intc.xive.esb import esb_eoi, esb_set, esb_trigger, lsi_eoi, lsi_trigger
from xive_machine.intc.xive.regs import XIVE_ESB_OFF, XIVE_ESB_VAL_P, XIVE_ESB_VAL_Q
from xive_machine.intc.xive.source import XiveSource

PAGE = 0x10000


@given(st.integers(0, 3))
def test_trigger_forwards_only_from_reset(pq):
    new, fwd = esb_trigger(pq)
    assert fwd == (pq == 0)
    if pq == XIVE_ESB_OFF:
        assert new == pq
    else:
        assert new & XIVE_ESB_VAL_P  # once pending, P stays set until an EOI
        assert bool(new & XIVE_ESB_VAL_Q) == (pq != 0)


@given(st.integers(0, 3))
def test_eoi_forwards_only_the_latched_q(pq):
    new, fwd = esb_eoi(pq)
    assert fwd == (pq == 0b11)
    assert not new & XIVE_ESB_VAL_Q or pq == XIVE_ESB_OFF


@given(st.integers(0, 3), st.integers(0, 3))
def test_set_is_idempotent(pq, new):
    a, old = esb_set(pq, new)
    assert (a, old) == (new, pq)
    assert esb_set(a, new) == (new, new)


@given(st.integers(0, 3), st.booleans())
def test_lsi_never_sets_q_from_a_level(pq, asserted):
    new, _ = lsi_trigger(pq)
    assert (new & 1) == (pq & 1)
    new2, fwd2 = lsi_eoi(pq, asserted)
    if asserted and fwd2:
        assert new2 == 0b10


class MsiSourceMachine(RuleBasedStateMachine):
    """A guest that unmasks, triggers and EOIs at random. Model: P means "one event is owned by the OS"."""

    def __init__(self):
        super().__init__()
        self.forwarded = 0
        self.s = XiveSource(4, self._fwd)
        self.srcno = 2
        self.mgmt = self.srcno * 0x20000 + PAGE
        self.trig = self.srcno * 0x20000
        self.owed = 0  # events the OS holds (delivered, not yet EOI'd)
        self.masked = True

    def _fwd(self, srcno):
        assert srcno == self.srcno
        self.forwarded += 1
        self.owed += 1

    @rule(size=st.sampled_from([1, 2, 4, 8]), via_mgmt=st.booleans(), off=st.integers(0, 0x3FF))
    def trigger(self, size, via_mgmt, off):
        before, pq = self.forwarded, self.s.get_pq(self.srcno)
        if via_mgmt:
            self.s.esb_write(self.mgmt + off, size, 0)
        else:
            self.s.esb_write(self.trig + off * 8, size, 0)
        assert self.forwarded - before == (1 if pq == 0 else 0)

    @precondition(lambda self: self.owed > 0)
    @rule(off=st.integers(0, 0x7FF))
    def eoi(self, off):
        self.owed -= 1
        pq = self.s.get_pq(self.srcno)
        ret = self.s.esb_read(self.mgmt + off, 8)
        assert ret == (1 if pq == 3 else 0)

    @rule(new=st.integers(0, 3), load=st.booleans(), delta=st.integers(0, 0xFF))
    def set_pq(self, new, load, delta):
        old = self.s.get_pq(self.srcno)
        if load:
            assert self.s.esb_read(self.mgmt + 0xC00 + (new << 8) + delta, 8) == old
        else:
            self.s.esb_write(self.mgmt + 0xC00 + (new << 8) + delta, 8, 0)
        # the guest takes responsibility for P when it rewrites it: resync the model
        self.owed = 1 if new & 2 else 0

    @rule()
    def get(self):
        assert self.s.esb_read(self.mgmt + 0x800, 8) == self.s.get_pq(self.srcno)

    @invariant()
    def coalesced(self):
        pq = self.s.get_pq(self.srcno)
        assert self.owed <= 1
        if pq != XIVE_ESB_OFF:
            assert bool(pq & XIVE_ESB_VAL_P) == (self.owed == 1)
        assert self.s.get_pq(0) == self.s.get_pq(1) == self.s.get_pq(3) == XIVE_ESB_OFF  # neighbours untouched


MsiSourceMachine.TestCase.settings = settings(max_examples=50, stateful_step_count=30, deadline=None)
TestMsiSource = MsiSourceMachine.TestCase


class LsiSourceMachine(RuleBasedStateMachine):
    """An LSI: while the line is high and the source unmasked, the OS always owns exactly one event."""

    def __init__(self):
        super().__init__()
        self.s = XiveSource(2, self._fwd)
        self.s.set_lsi(1, True)
        self.s.set_pq(1, 0)
        self.level = False
        self.owed = 0

    def _fwd(self, srcno):
        self.owed += 1

    @rule(level=st.booleans())
    def line(self, level):
        self.level = level
        self.s.set_irq(1, level)

    @precondition(lambda self: self.owed > 0)
    @rule()
    def eoi(self):
        self.owed -= 1
        self.s.esb_read(0x20000 + PAGE, 8)

    @invariant()
    def level_tracked(self):
        assert self.s.asserted(1) == self.level
        assert self.owed <= 1
        assert not self.s.get_pq(1) & XIVE_ESB_VAL_Q
        if self.level:
            assert self.owed == 1 and self.s.get_pq(1) == 0b10


LsiSourceMachine.TestCase.settings = settings(max_examples=30, stateful_step_count=30, deadline=None)
TestLsiSource = LsiSourceMachine.TestCase
