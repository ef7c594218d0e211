"""Hypothesis: EQ index/toggle against a consumer written from xive.md 4.2, and whole-system interleavings."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from xive_machine.hcalls.codes import Op
from xive_machine.hcalls.registry import Dispatcher
from xive_machine.hcalls.xive import XIVE_HCALLS
from xive_machine.intc.xive.spapr import SpaprXive
from xive_machine.memory.ram import GuestRam

QPAGE = 0x10000
OS = 0x20000


class Consumer:
    """The guest side of one EQ (xive.md 4.2): idx=0, toggle=0, empty when the entry's top bit == toggle."""

    def __init__(self, ram: GuestRam, qpage: int, qshift: int) -> None:
        self.ram, self.qpage = ram, qpage
        self.msk = (1 << (qshift - 2)) - 1
        self.idx = 0
        self.toggle = 0

    def pop(self) -> int | None:
        e = self.ram.read_u32(self.qpage + 4 * self.idx)
        if (e >> 31) == self.toggle:
            return None
        self.idx = (self.idx + 1) & self.msk
        if self.idx == 0:
            self.toggle ^= 1
        return e & 0x7FFFFFFF


def make(qshift: int, nr_servers: int = 1):
    ram = GuestRam(1 << 20)
    x = SpaprXive(ram, nr_servers, lambda c, lv: None)
    d = Dispatcher()
    d.add_gate("xive", lambda: True)
    d.install(XIVE_HCALLS, x)
    assert d.dispatch(0, Op.H_INT_SET_QUEUE_CONFIG, [1, 0, 6, QPAGE, qshift]) == (0,)
    return ram, x


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 1100), min_size=1, max_size=12), st.data())
def test_consumer_sees_every_event_in_order(bursts, data):
    ram, x = make(12)  # 1024 entries
    c = Consumer(ram, QPAGE, 12)
    outstanding: list[int] = []
    n = 0
    for burst in bursts:
        burst = min(burst, 1023 - len(outstanding))  # the guest never lets the queue overflow
        for _ in range(burst):
            eisn = data.draw(st.integers(0, 0x7FFFFFFF)) if n % 97 == 0 else n & 0x7FFFFFFF
            x.router.end_notify(6, eisn)
            outstanding.append(eisn)
            n += 1
        take = data.draw(st.integers(0, len(outstanding)))
        for _ in range(take):
            assert c.pop() == outstanding.pop(0)
        eq = x.eq(0, 6)
        assert eq.index == n % 1024
        assert eq.toggle == (1 ^ ((n // 1024) & 1))
    while outstanding:
        assert c.pop() == outstanding.pop(0)
    assert c.pop() is None
    assert (c.idx, c.toggle) == (x.eq(0, 6).index, x.eq(0, 6).toggle ^ 1)


class SystemMachine(RuleBasedStateMachine):
    """Random interleavings of IPIs, device MSIs/LSIs, acks, EOIs and CPPR stores on 2 vCPUs, with a
    Linux-like guest: ack, drain the queue, EOI each source, restore CPPR. Nothing is lost or duplicated."""

    LISNS = (0, 1, 0x1000, 0x1001, 0x1200)

    def __init__(self):
        super().__init__()
        self.ram = GuestRam(1 << 20)
        self.level = {0: False, 1: False}
        self.x = SpaprXive(self.ram, 2, self._line)
        d = Dispatcher()
        d.add_gate("xive", lambda: True)
        d.install(XIVE_HCALLS, self.x)
        self.x.claim_irq(0x1000, False)
        self.x.claim_irq(0x1001, False)
        self.x.claim_irq(0x1200, True)
        self.target = {0: 0, 1: 1, 0x1000: 0, 0x1001: 1, 0x1200: 1}
        self.consumers = {}
        for cpu in (0, 1):
            self.x.connect_cpu(cpu)
            qpage = QPAGE + cpu * 0x10000
            assert d.dispatch(cpu, Op.H_INT_SET_QUEUE_CONFIG, [1, cpu, 6, qpage, 16]) == (0,)
            self.consumers[cpu] = Consumer(self.ram, qpage, 16)
            self.x.tm_write(cpu, OS + 0x11, 1, 0xFF)
        for lisn in self.LISNS:
            assert d.dispatch(0, Op.H_INT_SET_SOURCE_CONFIG, [2, lisn, self.target[lisn], 6, lisn + 1]) == (0,)
            self.x.xsrc.esb_read((lisn << 17) + 0x10000 + 0xC00, 8)
        esb = self.x.mmio_windows()[0]
        self.esb_read, self.esb_write = esb.read, esb.write
        self.in_flight = dict.fromkeys(self.LISNS, 0)  # events delivered to a queue, not yet EOI'd
        self.latched = dict.fromkeys(self.LISNS, False)  # triggered again while in flight
        self.handling: dict[int, list[int]] = {0: [], 1: []}
        self.lsi_high = False

    def _line(self, cpu, level):
        assert self.level[cpu] != level  # level changes only
        self.level[cpu] = level

    @rule(lisn=st.sampled_from((0, 1, 0x1000, 0x1001)), by_store=st.booleans())
    def trigger_msi(self, lisn, by_store):
        if by_store:
            self.esb_write(0, lisn << 17, 8, 0)
        else:
            self.x.set_irq(lisn, True)
        if self.in_flight[lisn]:
            self.latched[lisn] = True
        else:
            self.in_flight[lisn] = 1

    @rule(level=st.booleans())
    def lsi_line(self, level):
        self.x.set_irq(0x1200, level)
        if level and not self.lsi_high and not self.in_flight[0x1200]:
            self.in_flight[0x1200] = 1
        self.lsi_high = level

    @precondition(lambda self: self.level[0] or self.level[1])
    @rule(cpu=st.sampled_from((0, 1)))
    def take_interrupt(self, cpu):
        if not self.level[cpu]:
            return
        v = self.x.tm_read(cpu, OS + 0x810, 2)
        assert v == 0x8006
        c = self.consumers[cpu]
        while (e := c.pop()) is not None:
            self.handling[cpu].append(e - 1)
        for lisn in self.handling[cpu]:
            assert self.target[lisn] == cpu
            assert self.in_flight[lisn] == 1
            self.in_flight[lisn] = 0
            was_latched, self.latched[lisn] = self.latched[lisn], False
            ret = self.esb_read(cpu, (lisn << 17) + 0x10000, 8)  # LOAD_EOI
            if lisn == 0x1200:
                assert ret == int(self.lsi_high)
                self.in_flight[lisn] = int(self.lsi_high)
            else:
                assert ret == int(was_latched)
                self.in_flight[lisn] = int(was_latched)
        self.handling[cpu] = []
        self.x.tm_write(cpu, OS + 0x11, 1, 0xFF)

    @rule(cpu=st.sampled_from((0, 1)), cppr=st.sampled_from((0, 3, 6, 7, 0xFF)))
    def cppr(self, cpu, cppr):
        self.x.tm_write(cpu, OS + 0x11, 1, cppr)
        self.x.tm_write(cpu, OS + 0x11, 1, 0xFF)

    @invariant()
    def consistent(self):
        for cpu in (0, 1):
            t = self.x.thread_context(cpu)
            assert self.level[cpu] == bool(t.NSR & 0x80) == (t.PIPR < t.CPPR)
            pending = [lisn for lisn in self.LISNS if self.target[lisn] == cpu and self.in_flight[lisn]]
            if pending:
                assert t.IPB & 0x02  # priority 6 pending until the guest acks
        for lisn in self.LISNS:
            pq = self.x.source(lisn).pq
            assert (pq >> 1) == self.in_flight[lisn]
            assert (pq & 1) == int(self.latched[lisn])


SystemMachine.TestCase.settings = settings(max_examples=50, stateful_step_count=40, deadline=None)
TestSystem = SystemMachine.TestCase
