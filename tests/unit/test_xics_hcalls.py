"""XICS hcalls through the real Dispatcher (hcalls/xics.py), with QEMU 7.2's return codes."""

from __future__ import annotations

import pytest

from xive_machine.hcalls.codes import H, Op
from xive_machine.hcalls.registry import Dispatcher
from xive_machine.hcalls.xics import XICS_HCALLS
from xive_machine.intc.xics.spapr import SPAPR_IRQ_EPOW, SPAPR_IRQ_PCI_LSI, SPAPR_IRQ_VIO, SpaprXics
from xive_machine.trace.events import ListSink

VTY = SPAPR_IRQ_VIO  # 0x1100


class Machine:
    """Just enough machine: a XICS, a dispatcher and a record of the vCPU interrupt lines."""

    def __init__(self, nr_servers: int = 2, **kw) -> None:
        self.lines: list[tuple[int, bool]] = []
        self.level: dict[int, bool] = {}
        self.xive = False
        self.xics = SpaprXics(nr_servers, self._line, xive_active=lambda: self.xive, **kw)
        for cpu in range(nr_servers):
            self.xics.connect_cpu(cpu)
        self.d = Dispatcher()
        for table, target in self.xics.hcall_tables():
            self.d.install(table, target)

    def _line(self, cpu: int, level: bool) -> None:
        self.lines.append((cpu, level))
        self.level[cpu] = level

    def h(self, cpu: int, op: int, *args: int) -> tuple[int, ...]:
        return self.d.dispatch(cpu, op, list(args) + [0] * 9)


@pytest.fixture
def m() -> Machine:
    return Machine()


def test_table_contents():
    assert {s.name: op for op, s in XICS_HCALLS.specs.items()} == {
        "H_CPPR": 0x68, "H_IPI": 0x6C, "H_XIRR": 0x74, "H_XIRR_X": 0x2FC, "H_EOI": 0x64, "H_IPOLL": 0x70}
    assert all(s.gate is None for s in XICS_HCALLS.specs.values())


def test_observed_qemu_sequence(m):
    """spapr-cas-rtas-xics.md 5.3 'Observed sequence' [EXP]."""
    assert m.h(0, Op.H_XIRR) == (H.SUCCESS, 0x00000000)
    assert m.h(0, Op.H_CPPR, 0xFF) == (H.SUCCESS,)
    assert m.h(0, Op.H_IPI, 0, 5) == (H.SUCCESS,)
    assert m.h(0, Op.H_IPOLL, 0) == (H.SUCCESS, 0xFF000002, 5)
    assert m.level[0] is True
    assert m.h(0, Op.H_XIRR) == (H.SUCCESS, 0xFF000002)
    assert m.xics.icps[0].cppr == 5 and m.level[0] is False
    assert m.h(0, Op.H_IPI, 0, 0xFF) == (H.SUCCESS,)
    assert m.h(0, Op.H_EOI, 0xFF000002) == (H.SUCCESS,)
    assert m.h(0, Op.H_XIRR) == (H.SUCCESS, 0xFF000000)
    assert m.lines == [(0, True), (0, False)]


def test_ipi_refires_if_mfrr_not_cleared_before_eoi(m):
    m.h(0, Op.H_CPPR, 0xFF)
    m.h(1, Op.H_IPI, 0, 4)  # from another vCPU
    assert m.h(0, Op.H_XIRR) == (H.SUCCESS, 0xFF000002)
    m.h(0, Op.H_EOI, 0xFF000002)
    assert m.level[0] is True and m.h(0, Op.H_IPOLL, 0) == (H.SUCCESS, 0xFF000002, 4)


def test_ipi_blocked_by_cppr_then_resent_when_cppr_drops(m):
    assert m.h(0, Op.H_IPI, 0, 5) == (H.SUCCESS,)  # CPPR 0 after reset: blocked
    assert m.level.get(0) is None and m.h(0, Op.H_IPOLL, 0) == (H.SUCCESS, 0, 5)
    m.h(0, Op.H_CPPR, 5)  # not less favoured than MFRR: still blocked
    assert m.level.get(0) is None
    m.h(0, Op.H_CPPR, 6)
    assert m.level[0] is True and m.h(0, Op.H_IPOLL, 0) == (H.SUCCESS, 0x06000002, 5)
    m.h(0, Op.H_CPPR, 5)  # more favoured than the pending IPI: dropped, output lowered
    assert m.level[0] is False and m.h(0, Op.H_IPOLL, 0) == (H.SUCCESS, 0x05000000, 5)


def test_argument_narrowing(m):
    m.h(0, Op.H_CPPR, 0x1FF)  # u8
    assert m.xics.icps[0].cppr == 0xFF
    assert m.h(1, Op.H_IPI, 1 << 32, 0x105) == (H.SUCCESS,)  # server is a C int, MFRR a u8
    assert m.h(1, Op.H_IPOLL, 0) == (H.SUCCESS, 0xFF000002, 5)
    assert m.h(0, Op.H_EOI, 0xAB_FF000000) == (H.SUCCESS,)  # XIRR is a u32
    assert m.xics.icps[0].cppr == 0xFF


@pytest.mark.parametrize("server", [2, 0xFFFFFFFF, 0x80000000, 0xFFFFFFFFFFFFFFFF])
def test_unknown_server(m, server):
    sink = ListSink()
    m.xics.trace = sink
    assert m.h(0, Op.H_IPI, server, 5) == (H.PARAMETER,)
    assert m.h(0, Op.H_IPOLL, server) == (H.PARAMETER,)
    assert [e["ev"] for e in sink.events] == ["note", "note"]


def test_disconnected_server_is_unknown(m):
    m.xics.disconnect_cpu(1)
    assert m.h(0, Op.H_IPI, 1, 5) == (H.PARAMETER,)
    assert m.h(1, Op.H_XIRR) == (H.HARDWARE,)  # a vCPU without an ICP never raises out of the model


@pytest.mark.parametrize("op,args", [(Op.H_CPPR, (0xFF,)), (Op.H_IPI, (0, 5)), (Op.H_XIRR, ()),
                                     (Op.H_XIRR_X, ()), (Op.H_EOI, (0xFF000000,)), (Op.H_IPOLL, (0,)),
                                     (Op.H_IPI, (7, 5)), (Op.H_IPOLL, (7,))])
def test_h_hardware_once_xive_is_negotiated(m, op, args):
    m.xive = True
    assert m.h(0, op, *args) == (H.HARDWARE,)
    assert m.xics.icps[0].xirr == 0 and m.xics.icps[0].mfrr == 0xFF


def test_xirr_x_returns_the_timebase():
    ticks = iter([1234, 5678])
    mm = Machine(1, timebase=lambda: next(ticks))
    assert mm.h(0, Op.H_XIRR_X) == (H.SUCCESS, 0, 1234)
    mm.h(0, Op.H_CPPR, 0xFF)
    mm.h(0, Op.H_IPI, 0, 3)
    assert mm.h(0, Op.H_XIRR_X) == (H.SUCCESS, 0xFF000002, 5678)


def test_msi_linux_flow(m):
    xics = m.xics
    xics.claim_irq(VTY, lsi=False)
    xics.ics.write_xive(VTY - 0x1000, 1, 5, 5)  # as ibm,set-xive(0x1100, 1, 5)
    m.h(1, Op.H_CPPR, 0xFF)
    xics.set_irq(VTY, True)
    xics.set_irq(VTY, False)  # an MSI only acts on the edge
    assert m.level[1] is True and m.level.get(0) is None
    assert m.h(1, Op.H_XIRR) == (H.SUCCESS, 0xFF001100)
    assert m.h(1, Op.H_EOI, 0xFF001100) == (H.SUCCESS,)
    assert m.h(1, Op.H_XIRR) == (H.SUCCESS, 0xFF000000)


def test_lsi_refires_after_eoi_while_asserted(m):
    xics = m.xics
    lsi = SPAPR_IRQ_PCI_LSI
    xics.claim_irq(lsi, lsi=True)
    xics.ics.write_xive(lsi - 0x1000, 0, 5, 5)
    m.h(0, Op.H_CPPR, 0xFF)
    xics.set_irq(lsi, True)
    assert m.h(0, Op.H_XIRR) == (H.SUCCESS, 0xFF001200)
    m.h(0, Op.H_EOI, 0xFF001200)
    assert m.level[0] is True  # still asserted: presented again
    assert m.h(0, Op.H_XIRR) == (H.SUCCESS, 0xFF001200)
    xics.set_irq(lsi, False)
    m.h(0, Op.H_EOI, 0xFF001200)
    assert m.level[0] is False and m.h(0, Op.H_XIRR) == (H.SUCCESS, 0xFF000000)


def test_more_favoured_source_displaces_and_rejected_one_comes_back(m):
    xics = m.xics
    for irq in (SPAPR_IRQ_EPOW, VTY):
        xics.claim_irq(irq, lsi=False)
    xics.ics.write_xive(0, 0, 6, 6)  # EPOW prio 6
    xics.ics.write_xive(0x100, 0, 3, 3)  # vty prio 3
    m.h(0, Op.H_CPPR, 0xFF)
    xics.set_irq(SPAPR_IRQ_EPOW, True)
    assert m.h(0, Op.H_IPOLL, 0)[1] == 0xFF001000
    xics.set_irq(VTY, True)  # displaces EPOW, which is rejected
    assert m.h(0, Op.H_IPOLL, 0)[1] == 0xFF001100
    assert m.lines == [(0, True)]  # the output stayed up
    assert m.h(0, Op.H_XIRR) == (H.SUCCESS, 0xFF001100)  # CPPR now 3
    assert m.level[0] is False
    m.h(0, Op.H_EOI, 0xFF001100)  # back to 0xff: EPOW is resent
    assert m.h(0, Op.H_XIRR) == (H.SUCCESS, 0xFF001000)
    m.h(0, Op.H_EOI, 0xFF001000)
    assert m.h(0, Op.H_XIRR) == (H.SUCCESS, 0xFF000000)


def test_ipi_versus_source_priority(m):
    xics = m.xics
    xics.claim_irq(VTY, lsi=False)
    xics.ics.write_xive(0x100, 0, 5, 5)
    m.h(0, Op.H_CPPR, 0xFF)
    xics.set_irq(VTY, True)
    m.h(0, Op.H_IPI, 0, 5)  # equal priority: the source stays
    assert m.h(0, Op.H_IPOLL, 0)[1] == 0xFF001100
    m.h(0, Op.H_IPI, 0, 4)  # more favoured IPI: the source is rejected
    assert m.h(0, Op.H_IPOLL, 0)[1] == 0xFF000002
    assert m.h(0, Op.H_XIRR) == (H.SUCCESS, 0xFF000002)
    m.h(0, Op.H_IPI, 0, 0xFF)
    m.h(0, Op.H_EOI, 0xFF000002)
    assert m.h(0, Op.H_XIRR) == (H.SUCCESS, 0xFF001100)


def test_trace_events(m):
    sink = ListSink()
    m.xics.trace = sink
    m.h(0, Op.H_CPPR, 0xFF)
    m.h(0, Op.H_IPI, 0, 5)
    m.h(0, Op.H_XIRR)
    ops = [e["op"] for e in sink.events if e["ev"] == "irq"]
    assert ops == ["raise", "lower", "accept"]
    m.xics.trace = None
    m.h(0, Op.H_EOI, 0xFF000002)
    assert len(sink.events) == 3
