"""sPAPR XICS front end (QEMU 7.2 hw/intc/xics_spapr.c + the XICS half of spapr_irq.c).

One ICS (sources 0x1000..0x1fff) and one ICP per interrupt server; server number = vCPU index (one thread per
core, as the machine builds it). Implements the machine's InterruptController protocol, the four XICS RTAS
services and the `/interrupt-controller` node.

`xive_active` is the machine's test for "CAS negotiated XIVE" (ov5_cas has OV5_XIVE_EXPLOIT). In dual mode QEMU
keeps the XICS hcalls and RTAS services registered after CAS picked XIVE and answers them with H_HARDWARE /
-1; keep this controller's tables installed to get the same behaviour.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import fdt

from xive_machine.errors import ConfigError
from xive_machine.firmware.rtas import RtasStatus, RtasTable
from xive_machine.intc.xics.icp import ICP, LOWEST_PRIORITY, XISR_MASK
from xive_machine.intc.xics.ics import (
    ICS,
    SPAPR_NR_XIRQS,
    XICS_FLAGS_IRQ_LSI,
    XICS_FLAGS_IRQ_MASK,
    XICS_IRQ_BASE,
)
from xive_machine.machine.irq import IrqLine, MmioWindow

if TYPE_CHECKING:
    from xive_machine.hcalls.registry import HcallTable

PHANDLE_INTC = 0x1111  # QEMU's fixed interrupt-controller phandle (also the PHB interrupt-map target)
XICS_STATE_VERSION = 1
SPAPR_TIMEBASE_FREQ = 512_000_000

# Fixed sPAPR source numbers (include/hw/ppc/spapr_irq.h)
SPAPR_IRQ_EPOW = XICS_IRQ_BASE + 0x0000
SPAPR_IRQ_HOTPLUG = XICS_IRQ_BASE + 0x0001
SPAPR_IRQ_VIO = XICS_IRQ_BASE + 0x0100  # + n; vty@71000000 = 0x1100
SPAPR_IRQ_PCI_LSI = XICS_IRQ_BASE + 0x0200
SPAPR_IRQ_MSI = XICS_IRQ_BASE + 0x0300


def _host_timebase() -> int:
    """Default H_XIRR_X timestamp: a 512 MHz count from the host clock (QEMU returns host ticks)."""
    return time.monotonic_ns() * 64 // 125


@dataclass(frozen=True)
class ICPStateData:
    server: int
    xirr: int
    pending_priority: int
    mfrr: int


@dataclass(frozen=True)
class XicsState:
    """Migration state: the ICPs of connected servers and the ICS arrays (QEMU vmstate icp/server, ics)."""

    version: int
    nr_servers: int
    nr_irqs: int
    icps: tuple[ICPStateData, ...]
    ics_server: bytes  # nr_irqs big-endian u32
    ics_priority: bytes
    ics_saved_priority: bytes
    ics_status: bytes
    ics_flags: bytes


def _never() -> bool:
    return False


class SpaprXics:
    """The emulated XICS of a pseries machine."""

    name = "xics"

    def __init__(self, nr_servers: int, line: IrqLine, *, nr_irqs: int = SPAPR_NR_XIRQS,
                 xive_active: Callable[[], bool] = _never, timebase: Callable[[], int] = _host_timebase) -> None:
        if nr_servers <= 0:
            raise ConfigError(f"XICS needs at least one interrupt server, not {nr_servers}")
        if nr_irqs <= 0:
            raise ConfigError("Number of interrupts needs to be greater 0")
        self.nr_servers = nr_servers
        self.line = line
        self.xive_active = xive_active
        self.timebase = timebase
        self.icps: list[ICP | None] = [None] * nr_servers
        self.ics = ICS(self.icp_get, nr_irqs)
        self._trace: Any = None

    # --- trace propagates to the parts ---

    @property
    def trace(self) -> Any:
        return self._trace

    @trace.setter
    def trace(self, sink: Any) -> None:
        self._trace = sink
        self.ics.trace = sink
        for icp in self.icps:
            if icp is not None:
                icp.trace = sink

    def guest_error(self, what: str, *args: Any, **fields: Any) -> None:
        """A refused guest request: one trace event (formatted only when tracing is on)."""
        if self._trace is not None:
            self._trace.emit("note", ctl="xics", guest_error=what % args if args else what, **fields)

    def output(self, cpu: int) -> bool:
        """Current level of vCPU `cpu`'s interrupt line (what the last IrqLine call said)."""
        icp = self.icp_of_cpu(cpu)
        return icp is not None and icp.output

    # --- lookups (xics_icp_get, ics_valid_irq) ---

    def icp_get(self, server: int) -> ICP | None:
        """The ICP of `server` (QEMU passes it as a C int: only 0 <= server < nr_servers can exist)."""
        return self.icps[server] if 0 <= server < self.nr_servers else None

    def icp_of_cpu(self, cpu: int) -> ICP | None:
        return self.icps[cpu] if 0 <= cpu < self.nr_servers else None

    # --- InterruptController protocol ---

    def hcall_tables(self) -> list[tuple[HcallTable, object]]:
        from xive_machine.hcalls.xics import XICS_HCALLS  # the table module imports this one for types

        return [(XICS_HCALLS, self)]

    def rtas_table(self) -> RtasTable:
        return XICS_RTAS

    def mmio_windows(self) -> list[MmioWindow]:
        return []

    def claim_irq(self, lisn: int, lsi: bool) -> None:
        """spapr_xics_claim_irq: a device takes source `lisn` as LSI or MSI."""
        if not self.ics.valid_irq(lisn):
            raise ConfigError(f"IRQ {lisn:#x} is outside the ICS range "
                              f"{self.ics.offset:#x}..{self.ics.offset + self.ics.nr_irqs - 1:#x}")
        srcno = lisn - self.ics.offset
        if not self.ics.is_free(srcno):
            raise ConfigError(f"IRQ {lisn} is not free")
        self.ics.set_irq_type(srcno, lsi)

    def free_irq(self, lisn: int) -> None:
        if self.ics.valid_irq(lisn):
            self.ics.free(lisn - self.ics.offset)

    def set_irq(self, lisn: int, level: bool) -> None:
        if not self.ics.valid_irq(lisn):
            raise ConfigError(f"set_irq on {lisn:#x}, outside the ICS")
        self.ics.set_irq(lisn - self.ics.offset, level)

    def connect_cpu(self, cpu: int) -> None:
        """Create (and reset) the ICP of vCPU `cpu`, server number = cpu."""
        if not 0 <= cpu < self.nr_servers:
            raise ConfigError(f"vCPU {cpu} has no XICS server (nr_servers {self.nr_servers})")
        if self.icps[cpu] is not None:
            raise ConfigError(f"vCPU {cpu} is already connected to XICS")
        icp = ICP(cpu, cpu, self.ics, self.line)
        icp.trace = self._trace
        self.icps[cpu] = icp

    def disconnect_cpu(self, cpu: int) -> None:
        icp = self.icp_of_cpu(cpu)
        if icp is not None:
            icp.reset()
            self.icps[cpu] = None

    def reset(self) -> None:
        for icp in self.icps:
            if icp is not None:
                icp.reset()
        self.ics.reset()

    def dt_node(self, nr_servers: int) -> fdt.Node:
        """`/interrupt-controller` as QEMU 7.2 xics_spapr_dt emits it (property order as in the blob)."""
        node = fdt.Node("interrupt-controller")
        node.append(fdt.PropWords("phandle", PHANDLE_INTC))
        node.append(fdt.PropWords("linux,phandle", PHANDLE_INTC))
        node.append(fdt.PropWords("#interrupt-cells", 2))
        node.append(fdt.PropWords("ibm,interrupt-server-ranges", 0, nr_servers))
        node.append(fdt.Property("interrupt-controller"))
        node.append(fdt.PropStrings("compatible", "IBM,ppc-xicp"))
        node.append(fdt.PropStrings("device_type", "PowerPC-External-Interrupt-Presentation"))
        return node

    # --- state ---

    def get_state(self) -> XicsState:
        ics = self.ics
        return XicsState(
            XICS_STATE_VERSION, self.nr_servers, ics.nr_irqs,
            tuple(ICPStateData(i.server, i.xirr, i.pending_priority, i.mfrr) for i in self.icps if i is not None),
            struct.pack(f">{ics.nr_irqs}I", *ics.server), bytes(ics.priority), bytes(ics.saved_priority),
            bytes(ics.status), bytes(ics.flags))

    def set_state(self, state: XicsState) -> None:
        if state.version != XICS_STATE_VERSION:
            raise ConfigError(f"XICS state version {state.version}, expected {XICS_STATE_VERSION}")
        ics = self.ics
        if state.nr_irqs != ics.nr_irqs or state.nr_servers != self.nr_servers:
            raise ConfigError(f"XICS state for {state.nr_servers} servers / {state.nr_irqs} sources does not fit "
                              f"{self.nr_servers} / {ics.nr_irqs}")
        n = ics.nr_irqs
        if not (len(state.ics_server) == 4 * n and len(state.ics_priority) == n == len(state.ics_saved_priority)
                and len(state.ics_status) == n == len(state.ics_flags)):
            raise ConfigError("XICS state arrays have the wrong length")
        for s in state.icps:
            if self.icp_get(s.server) is None:
                raise ConfigError(f"XICS state has server {s.server}, which is not connected")
        ics.server = list(struct.unpack(f">{n}I", state.ics_server))
        ics.priority[:] = state.ics_priority
        ics.saved_priority[:] = state.ics_saved_priority
        ics.status[:] = state.ics_status
        ics.flags[:] = state.ics_flags
        ics.rebuild_resend_mask()
        for s in state.icps:
            icp = self.icps[s.server]
            assert icp is not None
            icp.xirr, icp.pending_priority, icp.mfrr = s.xirr & 0xFFFFFFFF, s.pending_priority & 0xFF, s.mfrr & 0xFF
            icp._set_output(bool(icp.xirr & XISR_MASK))

    def describe(self) -> str:
        lines = [f"XICS: {self.nr_servers} servers, sources {self.ics.offset:#x}..."
                 f"{self.ics.offset + self.ics.nr_irqs - 1:#x}" + (" (XIVE negotiated)" if self.xive_active()
                                                                   else "")]
        lines += [icp.describe() for icp in self.icps if icp is not None]
        lines.append(self.ics.describe())
        return "\n".join(lines)


# --- RTAS: ibm,set-xive, ibm,get-xive, ibm,int-off, ibm,int-on (xics_spapr.c) ------------------------------

XICS_RTAS = RtasTable("xics")
_HW, _PARAM, _OK = int(RtasStatus.HARDWARE_ERROR), int(RtasStatus.PARAMETER_ERROR), int(RtasStatus.SUCCESS)


def _rtas_precheck(xics: SpaprXics, service: str, args: list[int], nret: int, nargs_want: int,
                   nret_want: int) -> int | None:
    """CHECK_EMULATED_XICS_RTAS, the argument counts and the irq number; returns a status to fail with."""
    if xics.xive_active():
        xics.guest_error("%s while XIVE is active", service)
        return _HW
    if len(args) != nargs_want or nret != nret_want:
        xics.guest_error("%s: nargs %d nret %d, expected %d/%d", service, len(args), nret, nargs_want, nret_want)
        return _PARAM
    if not xics.ics.valid_irq(args[0]):
        xics.guest_error("%s: irq %#x is not an ICS source", service, args[0])
        return _PARAM
    return None


@XICS_RTAS.rtas("ibm,set-xive")
def rtas_set_xive(xics: SpaprXics, cpu: int, args: list[int], nret: int) -> list[int]:
    """(irq, server, priority) -> status. Sets server, priority and saved priority."""
    bad = _rtas_precheck(xics, "ibm,set-xive", args, nret, 3, 1)
    if bad is not None:
        return [bad]
    nr, server, priority = args
    # QEMU hands the server to xics_icp_get() as a C int
    if xics.icp_get(server - (1 << 32) if server & 0x80000000 else server) is None or priority > 0xFF:
        xics.guest_error("ibm,set-xive: bad server or priority", irq=nr, server=server, priority=priority)
        return [_PARAM]
    xics.ics.write_xive(nr - xics.ics.offset, server, priority, priority)
    return [_OK]


@XICS_RTAS.rtas("ibm,get-xive")
def rtas_get_xive(xics: SpaprXics, cpu: int, args: list[int], nret: int) -> list[int]:
    """(irq) -> status, server, priority."""
    bad = _rtas_precheck(xics, "ibm,get-xive", args, nret, 1, 3)
    if bad is not None:
        return [bad]
    s = args[0] - xics.ics.offset
    return [_OK, xics.ics.server[s], xics.ics.priority[s]]


@XICS_RTAS.rtas("ibm,int-off")
def rtas_int_off(xics: SpaprXics, cpu: int, args: list[int], nret: int) -> list[int]:
    """(irq) -> status. Masks the source; QEMU stores the *current* priority as the saved one, so a second
    int-off saves 0xff."""
    bad = _rtas_precheck(xics, "ibm,int-off", args, nret, 1, 1)
    if bad is not None:
        return [bad]
    s = args[0] - xics.ics.offset
    ics = xics.ics
    ics.write_xive(s, ics.server[s], LOWEST_PRIORITY, ics.priority[s])
    return [_OK]


@XICS_RTAS.rtas("ibm,int-on")
def rtas_int_on(xics: SpaprXics, cpu: int, args: list[int], nret: int) -> list[int]:
    """(irq) -> status. Restores the saved priority."""
    bad = _rtas_precheck(xics, "ibm,int-on", args, nret, 1, 1)
    if bad is not None:
        return [bad]
    s = args[0] - xics.ics.offset
    ics = xics.ics
    ics.write_xive(s, ics.server[s], ics.saved_priority[s], ics.saved_priority[s])
    return [_OK]


def is_lsi(xics: SpaprXics, lisn: int) -> bool | None:
    """True/False for a claimed source, None if unclaimed or outside the ICS (for dumps and tests)."""
    if not xics.ics.valid_irq(lisn):
        return None
    f = xics.ics.flags[lisn - xics.ics.offset]
    return None if not f & XICS_FLAGS_IRQ_MASK else bool(f & XICS_FLAGS_IRQ_LSI)
