"""The hcall scripting API: hcalls by name and number, CAS without guest code, RTAS, ESB and TIMA accesses
through the guest's MMIO windows, and the trace it records."""

from __future__ import annotations

import pytest

from xive_machine.errors import ConfigError, GuestError
from xive_machine.hcalls.codes import H, Op
from xive_machine.hypervisor import HcallResult, Hypervisor, build_cas_vector
from xive_machine.intc.xive.regs import (
    TM_QW1_OS,
    XIVE_ESB_GET,
    XIVE_ESB_SET_PQ_00,
    XIVE_ESB_SET_PQ_10,
)

LISN = 0x1000
TM_HV_PAGE = 1 << 16  # the hypervisor view of the TIMA
TM_OS_PAGE = 2 << 16  # the OS view


@pytest.fixture
def xive_hv():
    with Hypervisor(ic_mode="xive", smp=2) as h:
        h.cas()
        yield h


def test_cas_switches_dual_machine_to_the_requested_mode():
    with Hypervisor(ic_mode="dual") as h:
        assert h.intc.name == "xics"  # before CAS, as QEMU's dual mode
        rec = h.cas("xive")
        assert rec.result.rc == H.SUCCESS and rec.result.intc == "xive" and h.intc.name == "xive"
        assert rec.result.compat_pvr == 0x0F000005
    with Hypervisor(ic_mode="dual") as h:
        assert h.cas("xics").result.intc == "xics" and h.intc.name == "xics"


def test_cas_for_an_unoffered_mode_stops_as_qemu_does():
    with Hypervisor(ic_mode="xics") as h, pytest.raises(GuestError, match="unavailable interrupt mode"):
        h.cas("xive")


def test_cas_vector_round_trips_through_the_parser():
    from xive_machine.firmware import ovec

    av = ovec.parse_arch_vector(build_cas_vector("xive", mmu="radix"), strict=True)
    assert ovec.ov_test(av.vector(5), ovec.OV5_XIVE_EXPLOIT)
    assert ovec.ov_test(av.vector(5), ovec.OV5_MMU_RADIX_300)
    assert not ovec.ov_test(ovec.parse_arch_vector(build_cas_vector("xics")).vector(5), ovec.OV5_XIVE_EXPLOIT)
    with pytest.raises(ConfigError):
        build_cas_vector("both")


def test_hcall_by_name_and_by_number_agree(xive_hv):
    by_name = xive_hv.hcall("H_INT_GET_SOURCE_INFO", 0, LISN)
    by_number = xive_hv.hcall(int(Op.H_INT_GET_SOURCE_INFO), 0, LISN)
    assert isinstance(by_name, HcallResult) and by_name == by_number
    rc, flags, eoi_page, trig_page, shift = by_name  # unpacks like the registers
    assert rc == H.SUCCESS and by_name.ok and eoi_page != trig_page and shift == 16
    assert "H_SUCCESS" in repr(by_name)


def test_hcall_return_codes_are_named(xive_hv):
    assert xive_hv.hcall("H_INT_SET_SOURCE_CONFIG", 0, LISN, 0, 7, 0).rc == H.P4  # prio 7 is reserved
    r = xive_hv.hcall("H_INT_SET_SOURCE_CONFIG", 0, LISN, 99, 5, 0)
    assert r.rc == H.P3 and not r.ok
    assert xive_hv.hcall(0x1000).rc == H.FUNCTION  # unknown opcode


def test_hcall_errors_are_config_errors(xive_hv):
    with pytest.raises(ConfigError, match="unknown hcall"):
        xive_hv.hcall("H_NO_SUCH_CALL")
    with pytest.raises(ConfigError, match="vCPU 5"):
        xive_hv.hcall("H_INT_SYNC", 0, LISN, cpu=5)
    with pytest.raises(ConfigError, match="at most 9"):
        xive_hv.hcall("H_INT_SYNC", *range(10))


def test_xive_hcalls_are_gated_until_cas():
    with Hypervisor(ic_mode="xive") as h:
        assert h.hcall("H_INT_GET_SOURCE_INFO", 0, LISN).rc == H.FUNCTION
        with pytest.raises(ConfigError, match="hv.cas"):
            h.esb_load(LISN, XIVE_ESB_GET)


def test_esb_pq_through_the_guest_window(xive_hv):
    assert xive_hv.esb_load(LISN, XIVE_ESB_GET) == 0b01  # claimed sources start masked (PQ=01)
    assert xive_hv.esb_load(LISN, XIVE_ESB_SET_PQ_00) == 0b01  # returns the old PQ
    assert xive_hv.intc.source(LISN).pq == 0b00
    assert xive_hv.esb_load(LISN, XIVE_ESB_SET_PQ_10) == 0b00
    assert xive_hv.esb_load(LISN, XIVE_ESB_GET) == 0b10
    with pytest.raises(ConfigError, match="not a valid source"):
        xive_hv.esb_load(0xFFF, XIVE_ESB_GET)


def test_trigger_page_store_reaches_the_source(xive_hv):
    xive_hv.esb_load(LISN, XIVE_ESB_SET_PQ_00)
    xive_hv.esb_store(LISN, 0, 0, page="trigger")  # an edge trigger: P set
    assert xive_hv.intc.source(LISN).pq & 0b10


def test_tima_loads_are_per_vcpu(xive_hv):
    w2 = [xive_hv.tima_load(cpu, TM_HV_PAGE + TM_QW1_OS + 8, 4) for cpu in (0, 1)]
    assert xive_hv.tima_load(0, TM_OS_PAGE + TM_QW1_OS + 8, 4) == 0xFFFFFFFF  # not in the OS view
    assert w2[0] != w2[1] and all(w & 0x80000000 for w in w2)  # VO set, one NVT per vCPU
    xive_hv.tima_store(0, TM_OS_PAGE + TM_QW1_OS + 1, 1, 0x05)  # CPPR
    qw1 = xive_hv.tima_load(0, TM_OS_PAGE + TM_QW1_OS, 8)  # NSR CPPR IPB LSMFB ACK# INC AGE PIPR
    assert (qw1 >> 48) & 0xFF == 0x05
    assert (xive_hv.tima_load(1, TM_OS_PAGE + TM_QW1_OS, 8) >> 48) & 0xFF == 0  # vCPU 1 untouched
    with pytest.raises(ConfigError, match="size 3"):
        xive_hv.tima_load(0, 0, 3)


def test_no_tima_on_xics():
    with Hypervisor(ic_mode="xics") as h, pytest.raises(ConfigError, match="no TIMA window.*xics"):
        h.tima_load(0, 0)


def test_rtas_through_the_argument_block():
    with Hypervisor(smp=2) as h:
        r = h.rtas("query-cpu-stopped-state", 1, nret=2)
        assert r.status == 0 and r.rets == (0, 0)  # vCPU 1: stopped
        assert h.rtas("query-cpu-stopped-state", 7, nret=2).status == -3
        with pytest.raises(ConfigError, match="unknown RTAS"):
            h.rtas("no-such-service")


def test_trace_records_what_the_script_did(xive_hv):
    xive_hv.hcall("H_INT_SYNC", 0, LISN)
    xive_hv.esb_load(LISN, XIVE_ESB_GET)
    t = xive_hv.trace()
    kinds = [e["ev"] for e in t.events]
    assert kinds[:2] == ["mode", "cas"] and "mmio" in kinds
    hc = [e for e in t.events if e["ev"] == "hcall"][-1]
    assert hc["name"] == "H_INT_SYNC" and hc["args"][:2] == [0, LISN] and hc["rc"] == 0
    mm = [e for e in t.events if e["ev"] == "mmio"][-1]
    assert mm["window"] == "esb" and mm["op"] == "load" and mm["value"] == 1
    assert t.header["config"]["ic_mode"] == "xive" and t.header["config"]["smp"] == 2


def test_untraced_hypervisor():
    with Hypervisor(trace=False) as h:
        assert h.hcall("H_SET_SPRG0", 1).rc == H.SUCCESS
        assert h.events == []


def test_xics_ipi_round_trip_by_script():
    with Hypervisor(ic_mode="xics", smp=2) as h:
        assert h.hcall("H_CPPR", 0xFF, cpu=1).ok
        assert h.hcall("H_IPI", 1, 5).ok  # vCPU 0 sends an IPI at priority 5 to server 1
        assert h.machine.cpus[1].irq  # the presenter raised vCPU 1's external-exception line
        rc, xirr = h.hcall("H_XIRR", cpu=1)
        assert rc == H.SUCCESS and xirr == 0xFF000002  # old CPPR 0xff, XISR 2 (the IPI source)
        assert h.hcall("H_IPI", 1, 0xFF).ok and h.hcall("H_EOI", xirr, cpu=1).ok
        assert not h.machine.cpus[1].irq
