"""XICS hcalls (QEMU 7.2 hw/intc/xics_spapr.c): H_CPPR, H_EOI, H_IPI, H_IPOLL, H_XIRR, H_XIRR_X.

Every one answers H_HARDWARE while XIVE is the negotiated mode (QEMU's CHECK_EMULATED_XICS_HCALL). Arguments
are narrowed as QEMU's C prototypes narrow them: CPPR and MFRR to u8, the XIRR of H_EOI to u32, a server number
to a C int. The caller's ICP is the one of its vCPU index.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xive_machine.errors import HcallError
from xive_machine.hcalls.codes import H, Op
from xive_machine.hcalls.registry import HcallTable

if TYPE_CHECKING:
    from xive_machine.intc.xics.icp import ICP
    from xive_machine.intc.xics.spapr import SpaprXics

XICS_HCALLS = HcallTable("xics")


def _own_icp(xics: SpaprXics, cpu: int, name: str) -> ICP:
    if xics.xive_active():
        xics.guest_error("%s while XIVE is active", name, cpu=cpu)
        raise HcallError(H.HARDWARE, "must only be called for emulated XICS")
    icp = xics.icp_of_cpu(cpu)
    if icp is None:  # cannot happen for a vCPU the machine connected; never raise a Python error for it
        xics.guest_error("%s from a vCPU without an ICP", name, cpu=cpu)
        raise HcallError(H.HARDWARE, "no ICP for this vCPU")
    return icp


def _server_icp(xics: SpaprXics, server: int, name: str) -> ICP:
    if xics.xive_active():
        xics.guest_error("%s while XIVE is active", name, server=server)
        raise HcallError(H.HARDWARE, "must only be called for emulated XICS")
    server &= 0xFFFFFFFF
    if server & 0x80000000:
        server -= 1 << 32
    icp = xics.icp_get(server)
    if icp is None:
        xics.guest_error("%s: no interrupt server %d", name, server, server=server)
        raise HcallError(H.PARAMETER, "no such interrupt server")
    return icp


@XICS_HCALLS.hcall(Op.H_CPPR, "H_CPPR")
def h_cppr(xics: SpaprXics, cpu: int, cppr: int) -> tuple[int, ...]:
    """In: R4 new CPPR (low byte). Out: none."""
    _own_icp(xics, cpu, "H_CPPR").set_cppr(cppr & 0xFF)
    return (H.SUCCESS,)


@XICS_HCALLS.hcall(Op.H_IPI, "H_IPI")
def h_ipi(xics: SpaprXics, cpu: int, server: int, mfrr: int) -> tuple[int, ...]:
    """In: R4 server, R5 MFRR (low byte). Out: none. H_PARAMETER for an unknown server."""
    _server_icp(xics, server, "H_IPI").set_mfrr(mfrr & 0xFF)
    return (H.SUCCESS,)


@XICS_HCALLS.hcall(Op.H_XIRR, "H_XIRR")
def h_xirr(xics: SpaprXics, cpu: int) -> tuple[int, ...]:
    """In: none (Linux passes its CPPR in R4; QEMU ignores it). Out: R4 XIRR, accepted."""
    return (H.SUCCESS, _own_icp(xics, cpu, "H_XIRR").accept())


@XICS_HCALLS.hcall(Op.H_XIRR_X, "H_XIRR_X")
def h_xirr_x(xics: SpaprXics, cpu: int) -> tuple[int, ...]:
    """In: none. Out: R4 XIRR (accepted), R5 timebase at the accept."""
    xirr = _own_icp(xics, cpu, "H_XIRR_X").accept()
    return (H.SUCCESS, xirr, xics.timebase() & 0xFFFFFFFFFFFFFFFF)


@XICS_HCALLS.hcall(Op.H_EOI, "H_EOI")
def h_eoi(xics: SpaprXics, cpu: int, xirr: int) -> tuple[int, ...]:
    """In: R4 XIRR as returned by H_XIRR (CPPR to restore | source). Out: none."""
    _own_icp(xics, cpu, "H_EOI").eoi(xirr & 0xFFFFFFFF)
    return (H.SUCCESS,)


@XICS_HCALLS.hcall(Op.H_IPOLL, "H_IPOLL")
def h_ipoll(xics: SpaprXics, cpu: int, server: int) -> tuple[int, ...]:
    """In: R4 server. Out: R4 XIRR, R5 MFRR; no side effects. H_PARAMETER for an unknown server."""
    xirr, mfrr = _server_icp(xics, server, "H_IPOLL").ipoll()
    return (H.SUCCESS, xirr, mfrr)
