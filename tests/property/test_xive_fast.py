"""Hypothesis: the XIVE fast path in C against the Python model. Two identical machines get the same random
configuration hcalls, ESB/TIMA accesses (from either vCPU, any page, offset and size) and device lines; on
one the accesses go through the C handler first (falling back to Python exactly as the memory hook does),
on the other through Python only. Every loaded value and, after every step, the whole controller state,
the event queues in RAM, the dirty log and the vCPUs' interrupt state must be the same."""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from xive_machine.cpu.fast import ffi, lib
from xive_machine.hypervisor import Hypervisor
from xive_machine.machine import xive_fast

QPAGES = (0x20_0000, 0x21_0000, 0x30_0000)  # 64 KiB aligned queue pages (and a 4 KiB one inside the first)
LISNS = (0, 1, 2, 0x1000, 0x1200, 0x1201, 0x1FFF)  # IPIs, an MSI, two LSIs, an unclaimed LISN
ESB_OFFSETS = (0x000, 0x004, 0x400, 0x800, 0xC00, 0xD00, 0xE00, 0xF00, 0xE40, 0x3FF)
TIMA_OPS = (  # (offset from the TIMA base, size, store): special ops on each page, raw registers, junk
    (0x20810, 2, False), (0x20011, 1, True), (0x20812, 1, True), (0x20010, 4, False), (0x20010, 8, False),
    (0x20010, 1, False), (0x20810, 4, False), (0x10810, 2, False), (0x10011, 1, True), (0x30011, 1, True),
    (0x30810, 2, False), (0x00810, 2, False), (0x20818, 4, False), (0x20C10, 1, True), (0x20011, 2, True),
    (0x20812, 2, True), (0x20010, 4, True), (0x20810, 2, True), (0x20011, 1, False),
)

hcalls = st.one_of(
    st.tuples(st.just("H_INT_SET_QUEUE_CONFIG"), st.sampled_from((0, 1)), st.integers(0, 2), st.integers(0, 7),
              st.sampled_from(QPAGES), st.sampled_from((12, 16, 16, 0))),
    st.tuples(st.just("H_INT_SET_SOURCE_CONFIG"), st.sampled_from((0, 1, 2, 2, 3)), st.sampled_from(LISNS),
              st.integers(0, 1), st.sampled_from((0, 5, 6, 6, 7, 0xFF)), st.integers(0, 0xFFFFFFFF)),
    st.tuples(st.just("H_INT_RESET"), st.just(0)),
)
cpus = st.integers(0, 1)
lisns = st.one_of(st.sampled_from((0, 0, 1)), st.sampled_from(LISNS))
# the round trip's own accesses, most of the time; any page, offset and size otherwise
trigger = st.tuples(st.just("esb"), cpus, lisns, st.just(False), st.just(0), st.just(8), st.just(True),
                    st.just(0))
eoi = st.tuples(st.just("esb"), cpus, lisns, st.just(True), st.sampled_from((0x000, 0xC00, 0x800)), st.just(8),
                st.just(False), st.just(0))
esb = st.tuples(st.just("esb"), cpus, lisns, st.booleans(), st.sampled_from(ESB_OFFSETS),
                st.sampled_from((8, 8, 4, 2, 1, 3)), st.booleans(), st.integers(0, (1 << 64) - 1))
ack = st.tuples(st.just("tima"), cpus, st.just(TIMA_OPS[0]), st.just(0))
cppr = st.tuples(st.just("tima"), cpus, st.just(TIMA_OPS[1]), st.sampled_from((0xFF, 0, 5, 6, 7, 8)))
tima = st.tuples(st.just("tima"), cpus, st.sampled_from(TIMA_OPS), st.sampled_from((0xFF, 0, 5, 6, 7, 8)))
line = st.tuples(st.just("line"), st.sampled_from((0x1200, 0x1201, 0x1000, 0)), st.booleans())
steps = st.lists(st.one_of(trigger, eoi, ack, cppr, esb, tima, hcalls, line), min_size=1, max_size=80)


class Side:
    """One machine; `fast` drives accesses through the C handler (Python when it declines)."""

    def __init__(self, fast: bool) -> None:
        self.hv = Hypervisor(ic_mode="xive", smp=2, trace=False)
        self.hv.cas("xive")
        m = self.m = self.hv.machine
        self.ic = m.xive
        self.windows = {w.name: w for w in m.windows}
        self.pages: dict[tuple[str, int], object] = {}
        self.fast = fast
        if fast:
            self.fp = xive_fast.current(m)
            assert self.fp is not None and self.fp.x.enabled
            for name, win in self.windows.items():
                for cpu, v in enumerate(m.vcpus):
                    page = ffi.new("struct xm_mmio *")
                    page.base, page.size = win.base, win.size
                    assert self.fp.bind_page(page, v, win)
                    self.pages[name, cpu] = page

    def access(self, name: str, cpu: int, offset: int, size: int, store: bool, value: int) -> int | None:
        win = self.windows[name]
        if self.fast:
            out = ffi.new("uint64_t *")
            if lib.xm_xive_access(self.pages[name, cpu], win.base + offset, size, int(store), value, out):
                return None if store else int(out[0])
        if not 0 < size <= 8:
            return None  # the memory hook ignores such an access
        if store:
            win.write(cpu, offset, size, value & ((1 << (8 * size)) - 1))
            return None
        return win.read(cpu, offset, size) & ((1 << 64) - 1)

    def step(self, op: tuple) -> object:
        kind = op[0]
        if kind == "esb":
            _, cpu, lisn, mgmt, off, size, store, value = op
            offset = (lisn << 17) | (mgmt << 16) | off
            return self.access("esb", cpu, offset, size, store, value)
        if kind == "tima":
            _, cpu, (off, size, store), value = op
            return self.access("tima", cpu, off, size, store, value)
        if kind == "line":
            self.m.raise_irq(op[1], op[2])
            return None
        return tuple(self.hv.hcall(op[0], *op[1:]))

    def state(self) -> tuple:
        m = self.m
        eqs = tuple(m.ram.read(q, 1 << 16) for q in QPAGES)
        cpus = tuple((st.irq, st.dec_pending, st.state, v.trap.irq_waiting) for st, v in
                     zip(m.cpus, m.vcpus, strict=True))
        outs = tuple((c, t.os_output) for c, t in sorted(self.ic.presenter.tctxs.items()))
        return self.ic.get_state(), eqs, frozenset(m.ram.dirty_pages), cpus, outs

    def close(self) -> None:
        self.hv.close()


TRIG0 = ("esb", 0, 0, False, 0, 8, True, 0)  # vCPU 0 triggers LISN 0 (routed to vCPU 0)
TRIG1 = ("esb", 0, 1, False, 0, 8, True, 0)  # vCPU 0 triggers LISN 1 (routed to vCPU 1: an IPI)
EOI0, EOI1 = ("esb", 0, 0, True, 0, 8, False, 0), ("esb", 1, 1, True, 0, 8, False, 0)
ACK0, ACK1 = ("tima", 0, TIMA_OPS[0], 0), ("tima", 1, TIMA_OPS[0], 0)
CPPR0, CPPR1 = ("tima", 0, TIMA_OPS[1], 0xFF), ("tima", 1, TIMA_OPS[1], 0xFF)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(hcalls, min_size=0, max_size=6), steps)
@example([], [TRIG0, ACK0, EOI0, CPPR0] * 3)  # the benchmark's round trip
@example([], [TRIG0, TRIG0, EOI0, ACK0, TRIG0, ACK0, EOI0, EOI0, CPPR0])  # Q latched, EOI forwards it again
@example([], [TRIG1, ACK1, TRIG1, EOI1, CPPR1, ACK1, EOI1, CPPR1])  # IPIs to the other vCPU
@example([], [("tima", 0, TIMA_OPS[1], 7), TRIG0, ("tima", 0, TIMA_OPS[1], 0), ("tima", 0, TIMA_OPS[1], 8),
              ACK0, ("tima", 0, TIMA_OPS[2], 3), ACK0, CPPR0])  # CPPR above/below the pending priority
@example([], [("line", 0x1200, True), ACK1, ("esb", 1, 0x1200, True, 0, 8, False, 0), ACK1,
              ("line", 0x1200, False), ("esb", 1, 0x1200, True, 0, 8, False, 0)])  # an LSI held, then lowered
@example([("H_INT_SET_QUEUE_CONFIG", 1, 0, 6, QPAGES[2], 12)], [TRIG0, ACK0, EOI0] * 1030)  # 4 KiB queue wraps
def test_c_fast_path_matches_the_python_model(setup, ops) -> None:
    fast, slow = Side(True), Side(False)
    try:
        base = [("H_INT_SET_QUEUE_CONFIG", 1, 0, 6, QPAGES[0], 16), ("H_INT_SET_QUEUE_CONFIG", 1, 1, 6, QPAGES[1], 16),
                ("H_INT_SET_SOURCE_CONFIG", 2, 0, 0, 6, 0x10), ("H_INT_SET_SOURCE_CONFIG", 2, 1, 1, 6, 0x11),
                ("H_INT_SET_SOURCE_CONFIG", 2, 0x1200, 1, 5, 0x12)]
        for op in base + list(setup):
            assert fast.step(op) == slow.step(op)
        for side in (fast, slow):  # open both CPPRs and unmask the sources, as a guest would
            for cpu in (0, 1):
                side.access("tima", cpu, 0x20011, 1, True, 0xFF)
            for lisn in (0, 1, 0x1200):
                side.access("esb", 0, (lisn << 17) | (1 << 16) | 0xC00, 8, False, 0)
        assert fast.state() == slow.state()
        for op in ops:
            assert fast.step(op) == slow.step(op), op
            assert fast.state() == slow.state(), op
    finally:
        fast.close()
        slow.close()


def test_the_fast_path_is_off_while_traced() -> None:
    hv = Hypervisor(ic_mode="xive", smp=1, trace=True)
    try:
        hv.cas("xive")
        fp = xive_fast.current(hv.machine)
        assert fp is not None and not fp.x.enabled  # bound but disabled: every access goes to Python
    finally:
        hv.close()
