"""SpaprXics as an InterruptController: DT node, claims, reset, state, describe."""

from __future__ import annotations

from pathlib import Path

import fdt
import pytest

from xive_machine.errors import ConfigError
from xive_machine.intc.xics.icp import XICS_IPI
from xive_machine.intc.xics.ics import SPAPR_NR_XIRQS, XICS_IRQ_BASE, XICS_STATUS_REJECTED
from xive_machine.intc.xics.spapr import (
    PHANDLE_INTC,
    SPAPR_IRQ_EPOW,
    SPAPR_IRQ_HOTPLUG,
    SPAPR_IRQ_MSI,
    SPAPR_IRQ_PCI_LSI,
    SPAPR_IRQ_VIO,
    SpaprXics,
    XicsState,
    is_lsi,
)
from xive_machine.machine.irq import InterruptController

REF = Path("/work/shared/reference/qemu-7.2-pseries")


def make(n: int = 2):
    lines: list[tuple[int, bool]] = []
    x = SpaprXics(n, lambda c, lv: lines.append((c, lv)))
    for cpu in range(n):
        x.connect_cpu(cpu)
    return x, lines


def test_protocol_and_constants():
    x, _ = make()
    assert isinstance(x, object) and x.name == "xics" and x.mmio_windows() == []
    proto: InterruptController = x  # structural: type checkers verify this assignment
    assert proto.hcall_tables()[0][1] is x
    assert (XICS_IRQ_BASE, SPAPR_NR_XIRQS) == (0x1000, 0x1000)
    assert (SPAPR_IRQ_EPOW, SPAPR_IRQ_HOTPLUG, SPAPR_IRQ_VIO, SPAPR_IRQ_PCI_LSI, SPAPR_IRQ_MSI) == (
        0x1000, 0x1001, 0x1100, 0x1200, 0x1300)
    assert x.ics.valid_irq(0x1000) and x.ics.valid_irq(0x1FFF)
    assert not x.ics.valid_irq(0xFFF) and not x.ics.valid_irq(0x2000) and not x.ics.valid_irq(XICS_IPI)


@pytest.mark.parametrize("dts", ["p_xics.dts", "p_dual.dts"])
def test_dt_node_matches_qemu(dts):
    x, _ = make(1)
    ref = fdt.parse_dts((REF / dts).read_text()).get_node("/interrupt-controller")
    mine = x.dt_node(1)
    assert mine.to_dts() == ref.to_dts()
    assert [p.name for p in mine.props] == [p.name for p in ref.props]
    assert mine.get_property("phandle").value == PHANDLE_INTC
    assert list(x.dt_node(4).get_property("ibm,interrupt-server-ranges").data) == [0, 4]


def test_dt_node_in_a_tree_round_trips_as_a_blob():
    x, _ = make(1)
    tree = fdt.FDT()
    tree.add_item(x.dt_node(1))
    blob = tree.to_dtb(version=17)
    back = fdt.parse_dtb(blob).get_node("/interrupt-controller")
    assert back.get_property("compatible").value == "IBM,ppc-xicp"
    assert back.get_property("interrupt-controller") is not None


def test_claims():
    x, _ = make()
    x.claim_irq(0x1100, lsi=False)
    x.claim_irq(0x1200, lsi=True)
    assert is_lsi(x, 0x1100) is False and is_lsi(x, 0x1200) is True and is_lsi(x, 0x1101) is None
    assert is_lsi(x, 0x10) is None
    with pytest.raises(ConfigError, match="is not free"):
        x.claim_irq(0x1100, lsi=True)
    for bad in (0xFFF, 0x2000, 2):
        with pytest.raises(ConfigError):
            x.claim_irq(bad, lsi=False)
    x.free_irq(0x1100)
    x.claim_irq(0x1100, lsi=True)
    assert is_lsi(x, 0x1100) is True
    with pytest.raises(ConfigError):
        x.set_irq(0x2000, True)


def test_connect_errors():
    x, _ = make(2)
    with pytest.raises(ConfigError):
        x.connect_cpu(0)
    with pytest.raises(ConfigError):
        x.connect_cpu(2)
    with pytest.raises(ConfigError):
        SpaprXics(0, lambda c, lv: None)


def test_reset_keeps_claims_and_lowers_outputs():
    x, lines = make()
    x.claim_irq(0x1100, lsi=False)
    x.ics.write_xive(0x100, 1, 5, 5)
    x.icps[1].set_cppr(0xFF)
    x.set_irq(0x1100, True)
    assert lines == [(1, True)]
    x.reset()
    assert lines == [(1, True), (1, False)]
    assert x.icps[1].xirr == 0 and x.icps[1].pending_priority == 0xFF and x.icps[1].mfrr == 0xFF
    assert x.ics.priority[0x100] == 0xFF and x.ics.saved_priority[0x100] == 0xFF and x.ics.server[0x100] == 0
    assert is_lsi(x, 0x1100) is False and x.ics.resend_mask == 0


def test_disconnect_lowers_and_removes():
    x, lines = make()
    x.icps[0].set_cppr(0xFF)
    x.icps[0].set_mfrr(3)
    x.disconnect_cpu(0)
    assert lines == [(0, True), (0, False)] and x.icps[0] is None
    x.disconnect_cpu(0)  # idempotent
    x.connect_cpu(0)
    assert x.icps[0].xirr == 0


def test_source_routed_to_missing_server_is_rejected_not_lost():
    x, lines = make()
    x.claim_irq(0x1100, lsi=False)
    x.ics.write_xive(0x100, 1, 5, 5)
    x.disconnect_cpu(1)
    x.set_irq(0x1100, True)
    assert x.ics.status[0x100] & XICS_STATUS_REJECTED and not lines


def test_state_round_trip_restores_outputs():
    x, _ = make()
    x.claim_irq(0x1100, lsi=False)
    x.claim_irq(0x1200, lsi=True)
    x.ics.write_xive(0x100, 1, 5, 5)
    x.ics.write_xive(0x200, 0, 4, 4)
    for icp in x.icps:
        icp.set_cppr(0xFF)
    x.set_irq(0x1100, True)
    x.set_irq(0x1100, True)  # second edge is rejected while the first is latched
    x.set_irq(0x1200, True)
    state = x.get_state()
    assert isinstance(state, XicsState) and state.version == 1 and len(state.icps) == 2

    y, lines = make()
    y.set_state(state)
    assert lines == [(0, True), (1, True)]
    assert y.get_state() == state
    assert y.ics.resend_mask == x.ics.resend_mask
    # the rejected MSI edge still comes back after the first is handled
    assert y.icps[1].accept() == 0xFF001100
    y.icps[1].eoi(0xFF001100)
    assert y.icps[1].accept() == 0xFF001100


def test_set_state_validation():
    x, _ = make()
    state = x.get_state()
    with pytest.raises(ConfigError):
        make(3)[0].set_state(state)
    with pytest.raises(ConfigError):
        x.set_state(XicsState(**{**state.__dict__, "version": 9}))
    with pytest.raises(ConfigError):
        x.set_state(XicsState(**{**state.__dict__, "ics_flags": b"\0"}))
    x.disconnect_cpu(1)
    with pytest.raises(ConfigError, match="not connected"):
        x.set_state(state)


def test_describe():
    x, _ = make()
    x.claim_irq(0x1100, lsi=False)
    x.ics.write_xive(0x100, 1, 5, 5)
    text = x.describe()
    assert "XICS: 2 servers" in text and "CPU 0 server 0 XIRR=00000000 PP=ff MFRR=ff" in text
    assert "ICS 1000..1fff" in text and "1100 MSI server 1 prio 05" in text
