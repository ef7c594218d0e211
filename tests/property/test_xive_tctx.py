"""Hypothesis: CPPR/IPB/PIPR/NSR of the OS ring under random deliveries, CPPR stores, SET_OS_PENDING and
acks through the TIMA, against a small reference model written from xive.md 3.4-3.5."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from xive_machine.intc.xive.regs import TM_QW1_OS
from xive_machine.intc.xive.tctx import XiveTCTX

OS, HV = 0x20000, 0x10000


class TctxMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.level = False
        self.t = XiveTCTX(0, self._line)
        self.t.reset(0x80000400)
        # model
        self.pending: set[int] = set()
        self.cppr = 0
        self.nsr = 0

    def _line(self, cpu, level):
        assert cpu == 0 and level != self.level
        self.level = level

    def _pipr(self):
        return min(self.pending) if self.pending else 0xFF

    def _signal(self):
        if self._pipr() < self.cppr:
            self.nsr = 0x80

    @rule(prio=st.integers(0, 7), fast=st.booleans())
    def deliver(self, prio, fast):
        if fast:
            self.t.present_os(prio)  # the presenter's inlined path must be the same operation
        else:
            self.t.ipb_update(TM_QW1_OS, prio)
        self.pending.add(prio)
        self._signal()

    @rule(prio=st.integers(0, 0xFF), page=st.sampled_from((OS, HV)))
    def set_os_pending(self, prio, page):
        self.t.tm_write(page + 0x812, 1, prio)
        if prio <= 7:
            self.pending.add(prio)
        self._signal()

    @rule(cppr=st.one_of(st.integers(0, 8), st.just(0xFF), st.integers(0, 0xFF)))
    def set_cppr(self, cppr):
        self.t.tm_write(OS + 0x11, 1, cppr)
        self.cppr = cppr if cppr <= 7 else 0xFF
        if self._pipr() < self.cppr:
            self.nsr = 0x80
        else:
            self.nsr = 0

    @rule()
    def ack(self):
        v = self.t.tm_read(OS + 0x810, 2)
        nsr = self.nsr
        if nsr & 0x80:
            self.cppr = self._pipr()
            self.pending.discard(self.cppr)
            self.nsr = 0
        assert v == (nsr << 8) | self.cppr
        assert not self.level

    @rule()
    def raw_read(self):
        v = self.t.tm_read(OS + 0x10, 8)
        assert v == (self.nsr << 56) | (self.cppr << 48) | (self._ipb() << 40) | (0xFFFF << 24) | self._pipr()

    def _ipb(self):
        return sum(0x80 >> p for p in self.pending)

    @invariant()
    def registers_match_model(self):
        t = self.t
        assert t.IPB == self._ipb()
        assert t.PIPR == self._pipr()
        assert t.CPPR == self.cppr
        assert t.NSR == self.nsr
        assert self.level == bool(self.nsr & 0x80) == (t.PIPR < t.CPPR)


TctxMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=40, deadline=None)
TestTctx = TctxMachine.TestCase
