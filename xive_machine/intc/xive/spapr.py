"""SpaprXive: the XIVE interrupt controller as a PAPR (pseries) guest sees it in exploitation mode.

Layering (data flows one way):

    device line / ESB store ──▶ XiveSource (PQ per LISN)  ──notify(lisn)──▶ XiveRouter
    XiveRouter: EAS (eat[lisn]) ──▶ END (endt) ──▶ EQ entry written big-endian into GuestRam
                                                   ──▶ XivePresenter ──▶ XiveTCTX (per vCPU, TIMA)
    XiveTCTX ──IrqLine──▶ the machine delivers the external exception; the guest ACKs through the TIMA.

`source.py`, `router.py`, `presenter.py`, `tctx.py` and `esb.py` are the architected core and know nothing
of PAPR: the KVM XIVE-native device model reuses them. This module adds only the sPAPR view: QEMU 7.2's
memory map and numbering (END index = server << 3 | prio, NVT = 0x400 + server, IPIs at LISN 0..n-1,
devices from 0x1000), the claim/free of LISNs, the device-tree node, machine reset, migration state and
the inspection API. The eleven H_INT_* hcalls that drive it live in `xive_machine/hcalls/xive.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import fdt

from xive_machine.errors import ConfigError
from xive_machine.intc.xive.presenter import XivePresenter
from xive_machine.intc.xive.regs import (
    EAS_MASKED,
    EAS_VALID,
    END_ESB_SHIFT,
    END_W0_ENQUEUE,
    END_W0_UCOND_NOTIFY,
    END_W0_VALID,
    END_W1_GENERATION,
    END_W1_PAGE_OFF_MASK,
    END_W1_PAGE_OFF_SHIFT,
    END_W6_NVT_INDEX_MASK,
    END_W6_NVT_INDEX_SHIFT,
    END_W7_F0_PRIORITY_MASK,
    END_W7_F0_PRIORITY_SHIFT,
    END_WORDS,
    SPAPR_IRQ_IPI,
    SPAPR_XIRQ_BASE,
    SPAPR_XIVE_BLOCK_ID,
    SPAPR_XIVE_HV_PRIO,
    SPAPR_XIVE_NR_IRQS,
    SPAPR_XIVE_NVT_BASE,
    SPAPR_XIVE_TM_BASE,
    SPAPR_XIVE_VC_BASE,
    TM_PAGE_SIZE,
    TM_QW1W2_VO,
    TM_REGION_SIZE,
    XIVE_ESB_64K_2PAGE,
)
from xive_machine.intc.xive.router import XiveRouter, XiveRouterState, end_qaddr, end_qshift
from xive_machine.intc.xive.source import XiveSource, XiveSourceState, size_mask
from xive_machine.intc.xive.tctx import XiveTCTX
from xive_machine.machine.irq import IrqLine, MmioWindow
from xive_machine.memory.ram import GuestRam

if TYPE_CHECKING:
    from xive_machine.hcalls.registry import HcallTable

STATE_VERSION = 1
PHANDLE = 0x1111  # what QEMU 7.2 gives the node (spapr `PHANDLE_INTC`)


@dataclass(frozen=True)
class SpaprXiveState:
    """Migration state: plain ints and bytes (EAS/END words in architected form, TIMA bytes in order)."""

    version: int
    nr_irqs: int
    nr_servers: int
    status: bytes  # per source: PQ bits 0-1, ASSERTED 0x4
    lsi: bytes  # per source: 1 = LSI
    eat: tuple[int, ...]
    endt: tuple[int, ...]
    tctx: tuple[tuple[int, bytes], ...]  # (cpu, 64 TIMA register bytes) per connected vCPU


@dataclass(frozen=True)
class SourceView:
    """One LISN as the user sees it (snapshot)."""

    lisn: int
    pq: int
    lsi: bool
    asserted: bool
    claimed: bool
    masked: bool
    end_idx: int
    eisn: int


class EqView:
    """One (server, prio) event queue, read live from the END and guest RAM."""

    def __init__(self, xive: SpaprXive, server: int, prio: int) -> None:
        self.server = server
        self.prio = prio
        self.end_idx = (server << 3) | prio
        self._router = xive.router
        self._ram = xive.ram

    def _w(self, i: int) -> int:
        return self._router.endt[self.end_idx * END_WORDS + i]

    @property
    def valid(self) -> bool:
        return bool(self._w(0) & END_W0_VALID)

    @property
    def enqueue(self) -> bool:
        return bool(self._w(0) & END_W0_ENQUEUE)

    @property
    def always_notify(self) -> bool:
        return bool(self._w(0) & END_W0_UCOND_NOTIFY)

    @property
    def qpage(self) -> int:
        return end_qaddr(self._w(2), self._w(3)) if self.enqueue else 0

    @property
    def qshift(self) -> int:
        """log2 of the queue size in bytes, 0 when queueing is disabled (as H_INT_GET_QUEUE_CONFIG)."""
        return end_qshift(self._w(0)) if self.enqueue else 0

    @property
    def nr_entries(self) -> int:
        return 1 << (self.qshift - 2) if self.enqueue else 0

    @property
    def index(self) -> int:
        """Producer index: the slot the next event goes to."""
        return (self._w(1) >> END_W1_PAGE_OFF_SHIFT) & END_W1_PAGE_OFF_MASK

    @property
    def toggle(self) -> int:
        """Producer generation bit written into the next entry (1 after configuration)."""
        return 1 if self._w(1) & END_W1_GENERATION else 0

    def entries(self) -> list[tuple[int, int]]:
        """Every slot of the queue in RAM as (generation bit, EISN), index order."""
        if not self.enqueue:
            return []
        base = self.qpage
        out = []
        for i in range(self.nr_entries):
            e = self._ram.read_u32(base + 4 * i)
            out.append((e >> 31, e & 0x7FFFFFFF))
        return out

    def last(self, n: int) -> list[int]:
        """EISNs of the last `n` entries written, oldest first (wraps are followed)."""
        if not self.enqueue or n <= 0:
            return []
        n = min(n, self.nr_entries)
        base, cnt, idx = self.qpage, self.nr_entries, self.index
        return [self._ram.read_u32(base + 4 * ((idx - k) % cnt)) & 0x7FFFFFFF for k in range(n, 0, -1)]

    def __repr__(self) -> str:
        return (
            f"EqView(server={self.server}, prio={self.prio}, qpage={self.qpage:#x}, "
            f"qshift={self.qshift}, index={self.index}, toggle={self.toggle})"
        )


class SpaprXive:
    """The sPAPR XIVE controller (QEMU 7.2 `spapr-xive`, TCG flavour). Implements InterruptController."""

    name = "xive"

    def __init__(
        self,
        ram: GuestRam,
        nr_servers: int,
        line: IrqLine,
        nr_irqs: int = SPAPR_XIVE_NR_IRQS,
        *,
        cpu_exists: Callable[[int], bool] | None = None,
        vc_base: int = SPAPR_XIVE_VC_BASE,
        tm_base: int = SPAPR_XIVE_TM_BASE,
        hv_prio: int = SPAPR_XIVE_HV_PRIO,
        store_eoi: bool = False,
        end_esb_mmio: bool = False,
    ) -> None:
        if nr_servers <= 0:
            raise ConfigError("XIVE needs at least one server")
        if nr_irqs < nr_servers:
            raise ConfigError(f"nr_irqs {nr_irqs} cannot hold {nr_servers} IPIs")
        self.ram = ram
        self.nr_servers = nr_servers
        self.nr_irqs = nr_irqs
        self.nr_ends = nr_servers << 3
        self.line = line
        self.cpu_exists = cpu_exists or (lambda server: 0 <= server < nr_servers)
        self.vc_base = vc_base
        self.tm_base = tm_base
        self.hv_prio = hv_prio
        self.end_base = vc_base + (nr_irqs << XIVE_ESB_64K_2PAGE)
        self.end_esb_mmio = end_esb_mmio
        self.presenter = XivePresenter(
            line,
            cpu_hint=SPAPR_XIVE_NVT_BASE,
            resend=self._nvt_resend,
        )
        # [lo, hi): the valid NVT indexes when they are exactly the servers' (block 0); None when a
        # `cpu_exists` callback decides (the machine's C fast path implements only the range)
        self.nvt_range: tuple[int, int] | None = None
        if cpu_exists is None:
            nvt_lo, nvt_hi = SPAPR_XIVE_NVT_BASE, SPAPR_XIVE_NVT_BASE + nr_servers
            self.nvt_range = (nvt_lo, nvt_hi)

            def nvt_valid(nvt_blk: int, nvt_idx: int) -> bool:
                return nvt_lo <= nvt_idx < nvt_hi and nvt_blk == SPAPR_XIVE_BLOCK_ID
        else:
            nvt_valid = self._nvt_valid
        self.router = XiveRouter(ram, nr_irqs, self.nr_ends, self.presenter, nvt_valid)
        self.xsrc = XiveSource(nr_irqs, self.router.notify, store_eoi=store_eoi)
        self._trace: Any = None
        for lisn in range(SPAPR_IRQ_IPI, SPAPR_IRQ_IPI + nr_servers):
            self.claim_irq(lisn, False)

    # --- tracing ---------------------------------------------------------------------------------------

    @property
    def trace(self) -> Any:
        return self._trace

    @trace.setter
    def trace(self, sink: Any) -> None:
        self._trace = sink
        self.xsrc.trace = sink
        self.router.trace = sink
        self.presenter.trace = sink

    def note(self, what: str, **fields: Any) -> None:
        if self._trace is not None:
            self._trace.emit("note", what="XIVE: " + what, **fields)

    # --- sPAPR numbering ---------------------------------------------------------------------------------

    def _nvt_valid(self, nvt_blk: int, nvt_idx: int) -> bool:
        return nvt_blk == SPAPR_XIVE_BLOCK_ID and self.cpu_exists(nvt_idx - SPAPR_XIVE_NVT_BASE)

    def _nvt_resend(self, nvt_blk: int, nvt_idx: int) -> int | None:
        # sPAPR NVTs hold no backlog IPB; an unknown NVT is reported as invalid.
        return 0 if self._nvt_valid(nvt_blk, nvt_idx) else None

    @staticmethod
    def os_cam(server: int) -> int:
        """QW1 word2 sPAPR pushes for a vCPU: VO | block 0 | NVT 0x400 + server."""
        return TM_QW1W2_VO | (SPAPR_XIVE_BLOCK_ID << 19) | (SPAPR_XIVE_NVT_BASE + server)

    def priority_is_reserved(self, prio: int) -> bool:
        """QEMU: the priority is taken as uint8, reserved from `hv_prio` (7) up."""
        return (prio & 0xFF) >= self.hv_prio

    def target_to_end(self, target: int, prio: int) -> int | None:
        """END index of (target vCPU, prio), None when no such vCPU (target taken as int32 as QEMU)."""
        server = target & 0xFFFFFFFF
        if server >= self.nr_servers or not self.cpu_exists(server):
            return None
        return (server << 3) + (prio & 0xFF)

    def lisn_valid(self, lisn: int) -> bool:
        return 0 <= lisn < self.nr_irqs and bool(self.router.eat[lisn] & EAS_VALID)

    def esb_mgmt_addr(self, lisn: int) -> int:
        return self.vc_base + self.xsrc.esb_mgmt(lisn)

    def esb_trigger_addr(self, lisn: int) -> int:
        return self.vc_base + self.xsrc.esb_page(lisn)

    def end_esb_addr(self, end_idx: int) -> int:
        return self.end_base + (end_idx << (END_ESB_SHIFT + 1))

    # --- InterruptController protocol --------------------------------------------------------------------

    def hcall_tables(self) -> list[tuple[HcallTable, object]]:
        from xive_machine.hcalls.xive import XIVE_HCALLS  # the front end is above the model

        return [(XIVE_HCALLS, self)]

    def mmio_windows(self) -> list[MmioWindow]:
        xsrc = self.xsrc

        def esb_read(cpu: int, offset: int, size: int) -> int:
            return xsrc.esb_read(offset, size)

        def esb_write(cpu: int, offset: int, size: int, value: int) -> None:
            xsrc.esb_write(offset, size, value)

        tctxs = self.presenter.tctxs
        bad_cpu = self._tima_no_context

        def tm_read(cpu: int, offset: int, size: int) -> int:
            t = tctxs.get(cpu)
            return bad_cpu(cpu, offset, size, None) if t is None else t.tm_read(offset, size)

        def tm_write(cpu: int, offset: int, size: int, value: int) -> None:
            t = tctxs.get(cpu)
            if t is None:
                bad_cpu(cpu, offset, size, value)
            else:
                t.tm_write(offset, size, value)

        windows = [
            MmioWindow("esb", self.vc_base, xsrc.window_size, esb_read, esb_write),
            MmioWindow("tima", self.tm_base, TM_REGION_SIZE, tm_read, tm_write),
        ]
        if self.end_esb_mmio:
            router = self.router
            windows.append(
                MmioWindow(
                    "end-esb",
                    self.end_base,
                    self.nr_ends << (END_ESB_SHIFT + 1),
                    lambda cpu, offset, size: router.end_esb_read(offset, size),
                    lambda cpu, offset, size, value: router.end_esb_write(offset, size, value),
                )
            )
        return windows

    def _tima_no_context(self, cpu: int, offset: int, size: int, value: int | None) -> int:
        self.note("TIMA access from a vCPU without thread context", cpu=cpu, offset=offset, store=value is not None)
        return size_mask(size) or 0xFFFFFFFFFFFFFFFF

    def tm_read(self, cpu: int, offset: int, size: int) -> int:
        """TIMA load by `cpu` (offset from the TIMA base, page index in bits 16-17)."""
        t = self.presenter.tctxs.get(cpu)
        return self._tima_no_context(cpu, offset, size, None) if t is None else t.tm_read(offset, size)

    def tm_write(self, cpu: int, offset: int, size: int, value: int) -> None:
        t = self.presenter.tctxs.get(cpu)
        if t is None:
            self._tima_no_context(cpu, offset, size, value)
        else:
            t.tm_write(offset, size, value)

    def claim_irq(self, lisn: int, lsi: bool) -> None:
        """Reserve a LISN (machine side): EAS = VALID|MASKED, source type set. ConfigError if taken."""
        if not 0 <= lisn < self.nr_irqs:
            raise ConfigError(f"XIVE: LISN {lisn:#x} out of range (nr_irqs {self.nr_irqs:#x})")
        eat = self.router.eat
        if eat[lisn] & EAS_VALID:
            raise ConfigError(f"XIVE: IRQ {lisn:#x} is not free")
        eat[lisn] |= EAS_VALID | EAS_MASKED
        self.xsrc.set_lsi(lisn, lsi)

    def claim_next(self, lsi: bool, base: int = SPAPR_XIRQ_BASE) -> int:
        """Claim the lowest free LISN from `base` (device sources start at 0x1000, as QEMU)."""
        eat = self.router.eat
        for lisn in range(base, self.nr_irqs):
            if not eat[lisn] & EAS_VALID:
                self.claim_irq(lisn, lsi)
                return lisn
        raise ConfigError(f"XIVE: no free LISN from {base:#x}")

    def free_irq(self, lisn: int) -> None:
        if 0 <= lisn < self.nr_irqs:
            self.router.eat[lisn] = 0
            self.xsrc.set_lsi(lisn, False)

    def set_irq(self, lisn: int, level: bool) -> None:
        if not 0 <= lisn < self.nr_irqs or not self.router.eat[lisn] & EAS_VALID:
            self.note("set_irq on an unclaimed LISN", lisn=lisn, level=bool(level))
            return
        self.xsrc.set_irq(lisn, level)

    def connect_cpu(self, cpu: int) -> None:
        self.presenter.connect(cpu, self.os_cam(cpu))

    def disconnect_cpu(self, cpu: int) -> None:
        self.presenter.disconnect(cpu)

    def reset(self) -> None:
        """Machine reset: sources off (PQ 01), claimed EASs masked, ENDs cleared, thread contexts reset."""
        self.xsrc.reset()
        self.router.reset()
        self.presenter.reset(self.os_cam)

    def int_reset(self) -> None:
        """H_INT_RESET as PAPR intends (QEMU 7.2 TCG does nothing): every source masked and off, every
        queue disabled. Line levels (ASSERTED) and thread contexts are kept: they are not guest config."""
        st = self.xsrc.status
        for i in range(self.nr_irqs):
            st[i] = (st[i] & 0xFC) | self.xsrc.reset_pq
        self.router.reset()

    def dt_node(self, nr_servers: int | None = None, phandle: int = PHANDLE) -> fdt.Node:
        """The node QEMU 7.2 emits (property order as in its DTB). The root also needs
        `plat_res_int_priorities()`; the tree builder adds it."""
        n = self.nr_servers if nr_servers is None else nr_servers
        user, os_page = self.tm_base + 3 * TM_PAGE_SIZE, self.tm_base + 2 * TM_PAGE_SIZE
        node = fdt.Node(f"interrupt-controller@{user:x}")
        node.append(fdt.PropWords("phandle", phandle))
        node.append(fdt.PropWords("linux,phandle", phandle))
        node.append(fdt.PropWords("#interrupt-cells", 2))
        node.append(fdt.Property("interrupt-controller"))
        node.append(fdt.PropWords("ibm,xive-lisn-ranges", SPAPR_IRQ_IPI, SPAPR_IRQ_IPI + n))
        node.append(fdt.PropWords("ibm,xive-eq-sizes", 16))
        node.append(fdt.PropStrings("compatible", "ibm,power-ivpe"))
        node.append(
            fdt.PropWords(
                "reg",
                user >> 32,
                user & 0xFFFFFFFF,
                0,
                TM_PAGE_SIZE,
                os_page >> 32,
                os_page & 0xFFFFFFFF,
                0,
                TM_PAGE_SIZE,
            )
        )
        node.append(fdt.PropStrings("device_type", "power-ivpe"))
        return node

    def plat_res_int_priorities(self) -> fdt.PropWords:
        """Root property `ibm,plat-res-int-priorities`: priorities hv_prio..0xFF reserved (<7 0xF8>)."""
        return fdt.PropWords("ibm,plat-res-int-priorities", self.hv_prio, 0xFF - self.hv_prio)

    # --- migration -------------------------------------------------------------------------------------

    def get_state(self) -> SpaprXiveState:
        return SpaprXiveState(
            version=STATE_VERSION,
            nr_irqs=self.nr_irqs,
            nr_servers=self.nr_servers,
            status=bytes(self.xsrc.status),
            lsi=bytes(self.xsrc.lsi),
            eat=tuple(self.router.eat),
            endt=tuple(self.router.endt),
            tctx=tuple((cpu, bytes(t.regs)) for cpu, t in sorted(self.presenter.tctxs.items())),
        )

    def set_state(self, state: SpaprXiveState) -> None:
        if state.version != STATE_VERSION:
            raise ConfigError(f"XIVE state version {state.version}, expected {STATE_VERSION}")
        if (state.nr_irqs, state.nr_servers) != (self.nr_irqs, self.nr_servers):
            raise ConfigError(
                f"XIVE state for {state.nr_irqs} irqs/{state.nr_servers} servers, "
                f"machine has {self.nr_irqs}/{self.nr_servers}"
            )
        if (len(state.status), len(state.lsi), len(state.eat), len(state.endt)) != (
            self.nr_irqs,
            self.nr_irqs,
            self.nr_irqs,
            self.nr_ends * END_WORDS,
        ) or any(len(regs) != 64 for _, regs in state.tctx):
            raise ConfigError("XIVE state has inconsistent table sizes")
        self.xsrc.set_state(XiveSourceState(state.status, state.lsi))
        self.router.set_state(XiveRouterState(state.eat, state.endt))
        for cpu, regs in state.tctx:
            t = self.presenter.tctxs.get(cpu) or self.presenter.connect(cpu, self.os_cam(cpu))
            t.set_state(regs)

    # --- inspection ------------------------------------------------------------------------------------

    def source(self, lisn: int) -> SourceView:
        eas = self.router.eat[lisn]
        return SourceView(
            lisn=lisn,
            pq=self.xsrc.get_pq(lisn),
            lsi=bool(self.xsrc.lsi[lisn]),
            asserted=self.xsrc.asserted(lisn),
            claimed=bool(eas & EAS_VALID),
            masked=bool(eas & EAS_MASKED),
            end_idx=(eas >> 32) & 0xFFFFFF,
            eisn=eas & 0x7FFFFFFF,
        )

    def eq(self, server: int, prio: int) -> EqView:
        if not 0 <= server < self.nr_servers or not 0 <= prio <= 7:
            raise ValueError(f"no EQ for server {server} prio {prio}")
        return EqView(self, server, prio)

    def thread_context(self, cpu: int) -> XiveTCTX:
        return self.presenter.tctxs[cpu]

    def trigger(self, lisn: int) -> bool:
        """Same as an ESB trigger store: PQ check then routing. Returns True if the event was forwarded."""
        if not 0 <= lisn < self.nr_irqs:
            self.note("trigger of an out-of-range LISN", lisn=lisn)
            return False
        fwd = self.xsrc.trigger(lisn)
        if fwd:
            self.router.notify(lisn)
        return fwd

    def end_info(self, end_idx: int) -> tuple[int, int, int]:
        """(NVT index, priority, flags word 0) of an END (GET_SOURCE_CONFIG needs the raw fields)."""
        w = self.router.endt
        base = end_idx * END_WORDS
        nvt_idx = (w[base + 6] >> END_W6_NVT_INDEX_SHIFT) & END_W6_NVT_INDEX_MASK
        prio = (w[base + 7] >> END_W7_F0_PRIORITY_SHIFT) & END_W7_F0_PRIORITY_MASK
        return nvt_idx, prio, w[base]

    def describe(self) -> str:
        out = [
            f"XIVE: {self.nr_servers} servers, {self.nr_irqs} LISNs, ESB @{self.vc_base:#x}, TIMA @{self.tm_base:#x}"
        ]
        eat = self.router.eat
        for lisn in range(self.nr_irqs):
            eas = eat[lisn]
            if not eas & EAS_VALID:
                continue
            if eas & EAS_MASKED:
                route = "masked"
            else:
                end_idx = (eas >> 32) & 0xFFFFFF
                route = f"-> END {end_idx:#x} (server {end_idx >> 3} prio {end_idx & 7}) eisn {eas & 0x7FFFFFFF:#x}"
            out.append(f"  LISN {lisn:#06x} {self.xsrc.describe_source(lisn)} {route}")
        for end_idx in range(self.nr_ends):
            eqv = EqView(self, end_idx >> 3, end_idx & 7)
            if eqv.valid:
                out.append(
                    f"  END {end_idx:#x}: server {eqv.server} prio {eqv.prio} qpage {eqv.qpage:#x} "
                    f"qshift {eqv.qshift} index {eqv.index} toggle {eqv.toggle}"
                    + (" notify" if eqv.always_notify else "")
                )
        for _cpu, t in sorted(self.presenter.tctxs.items()):
            out.append(t.describe())
        return "\n".join(out)
