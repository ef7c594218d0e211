"""machine.raise_irq: a device line driven from the host side, as a device model would, through the
active controller: an LSI held high re-fires after each EOI until it is lowered."""

from __future__ import annotations

from xive_machine.hcalls.codes import H
from xive_machine.hypervisor import Hypervisor
from xive_machine.intc.xive.regs import XIVE_ESB_LOAD_EOI

LSI = 0x1200  # the first PCI LSI QEMU claims
QPAGE = 0x20_0000


def written(q) -> list[int]:
    """EISNs of the entries the router wrote on its first pass round the queue (generation bit 1)."""
    return [eisn for gen, eisn in q.entries() if gen == 1]


def test_lsi_raised_by_the_host_reaches_the_queue_and_refires_while_held() -> None:
    with Hypervisor(ic_mode="xive", smp=1) as hv:
        hv.cas("xive")
        m = hv.machine
        assert hv.hcall("H_INT_SET_QUEUE_CONFIG", 0, 0, 6, QPAGE, 16).rc == H.SUCCESS
        assert hv.hcall("H_INT_SET_SOURCE_CONFIG", 0x2, LSI, 0, 6, 0x42).rc == H.SUCCESS  # SET_EISN
        info = hv.hcall("H_INT_GET_SOURCE_INFO", 0, LSI)
        assert info.outs[0] & 0xC == 0xC  # LSI, and its ESB is reached through H_INT_ESB (as QEMU says)
        assert m.xive.source(LSI).lsi
        assert hv.hcall("H_INT_ESB", 0, LSI, 0xC00, 0).rc == H.SUCCESS  # XIVE_ESB_SET_PQ_00: enable it
        hv.tima_store(0, (2 << 16) + 0x11, 1, 0xFF)  # the OS CPPR opens to every priority
        m.raise_irq(LSI, True)
        assert m.cpus[0].irq  # the presenter asks for an external interrupt on vCPU 0
        q = m.xive.eq(0, 6)
        assert written(q) == [0x42]
        hv.tima_load(0, (2 << 16) + 0x810, 2)  # TM_SPC_ACK_OS_REG: the guest acknowledges
        hv.hcall("H_INT_ESB", 0, LSI, XIVE_ESB_LOAD_EOI, 0)  # EOI while the line is still high: fires again
        assert written(q) == [0x42, 0x42]
        m.raise_irq(LSI, False)
        hv.tima_load(0, (2 << 16) + 0x810, 2)
        hv.hcall("H_INT_ESB", 0, LSI, XIVE_ESB_LOAD_EOI, 0)  # lowered: no third event
        assert written(q) == [0x42, 0x42]
