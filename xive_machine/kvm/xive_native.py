"""The Linux KVM "XIVE native" device (`kvm-xive-native`, KVM_DEV_TYPE_XIVE) as a model with its real uAPI.

Follows `arch/powerpc/kvm/book3s_xive_native.c` (v5.3 structure plus the later NR_SERVERS control, lazy VP
block allocation and the "source valid" check in the ESB fault handler) and the helpers it shares with
`book3s_xive.c` (`kvmppc_xive_select_target`, `xive_try_pick_queue`, `kvmppc_xive_set_mapped`). Function
names in docstrings are the kernel's. The hardware underneath is the emulated XIVE core of
`xive_machine.intc.xive` reused as is: every guest source is backed by a host interrupt (`HwIrq`: an IPI
allocated by the device, or a pass-through device interrupt) whose ESB pages are what the guest's mapping
shows; events go through an `XiveRouter` into the guest's event queues (written in guest RAM) and to the
`XiveTCTX` of the vCPU the VP is dispatched on, whose OS TIMA page the TIMA mapping shows.

Deliberate differences from the kernel, each to keep the rule "an invalid attribute leaves the device
unchanged": GRP_SOURCE reads its value before creating the source block (the kernel creates the block first,
visible only as EINVAL instead of ENOENT on a later SOURCE_CONFIG of that block); an EQ_CONFIG whose
toggle/index restore the firmware would refuse fails with EIO before the queue is touched (the kernel
disables the queue in its error path).
"""

from __future__ import annotations

import errno
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from xive_machine.errors import KvmError
from xive_machine.intc.xive.presenter import XivePresenter
from xive_machine.intc.xive.regs import (
    END_W0_ENQUEUE,
    END_W0_QSIZE_SHIFT,
    END_W0_UCOND_NOTIFY,
    END_W0_VALID,
    END_W1_ESE_Q,
    END_W1_ESN_Q,
    END_W1_GENERATION,
    END_W1_PAGE_OFF_MASK,
    END_W1_PAGE_OFF_SHIFT,
    END_W6_NVT_INDEX_SHIFT,
    END_W7_F0_PRIORITY_SHIFT,
    END_WORDS,
    TM_CPPR,
    TM_IPB,
    TM_NSR,
    TM_PIPR,
    TM_QW1_NSR_EO,
    TM_QW1_OS,
    TM_QW1W2_VO,
    XIVE_ESB_OFF,
    XIVE_ESB_VAL_P,
    XIVE_ESB_VAL_Q,
)
from xive_machine.intc.xive.router import XiveRouter
from xive_machine.intc.xive.source import XiveSource, size_mask
from xive_machine.intc.xive.tctx import IPB_TO_PIPR, PRIO_TO_IPB, XiveTCTX
from xive_machine.kvm.device import AttrValue, DeviceMapping, VmFault, XiveBackedDevice, attr_struct, attr_u32, attr_u64
from xive_machine.kvm.uapi import (
    HOST_PAGE_SHIFT,
    KVM_CAP_PPC_IRQ_XIVE,
    KVM_DEV_XIVE_EQ_SYNC,
    KVM_DEV_XIVE_GRP_CTRL,
    KVM_DEV_XIVE_GRP_EQ_CONFIG,
    KVM_DEV_XIVE_GRP_SOURCE,
    KVM_DEV_XIVE_GRP_SOURCE_CONFIG,
    KVM_DEV_XIVE_GRP_SOURCE_SYNC,
    KVM_DEV_XIVE_NR_SERVERS,
    KVM_DEV_XIVE_RESET,
    KVM_REG_PPC_VP_STATE_SIZE,
    KVM_XIVE_EQ_ALWAYS_NOTIFY,
    KVM_XIVE_ESB_PAGE_OFFSET,
    KVM_XIVE_LEVEL_ASSERTED,
    KVM_XIVE_LEVEL_SENSITIVE,
    KVM_XIVE_TIMA_PAGE_OFFSET,
    KVMPPC_XICS_ICS_SHIFT,
    KVMPPC_XICS_MAX_ICS_ID,
    KVMPPC_XIVE_FIRST_IRQ,
    KVMPPC_XIVE_NR_IRQS,
    KVMPPC_XIVE_Q_COUNT,
    MASKED,
    XIVE_Q_GAP,
    KvmPpcVpState,
    KvmPpcXiveEq,
    eq_id_decode,
    source_config_decode,
    xive_eq,
)
from xive_machine.kvm.vm import KVMPPC_IRQ_DEFAULT, KVMPPC_IRQ_XIVE, check_nr_servers

if TYPE_CHECKING:
    from xive_machine.kvm.vm import KvmVcpu, KvmVm

_U64BE = struct.Struct(">Q")
TIMA_OS_PAGE = 2
TM_W01 = TM_QW1_OS  # OS ring word0+1: bytes 0x10..0x17 of the thread context
KVM_INITIAL_W01 = 0x00000000FF000000  # connect_vcpu: only ACK# = 0xFF (`xive_saved_state.w01`)
QSHIFT_SUPPORTED = 16  # xive_native_validate_queue_size: 64 KiB queues only (plus 0 = reset)


def xive_prio_from_guest(prio: int) -> int:
    """book3s_xive.h: 0..5 and 0xFF kept, anything else becomes 6 (7 is the host's escalation priority)."""
    return prio if prio == 0xFF or prio < 6 else 6


# --------------------------------------------------------------------------------------------------------
# host hardware underneath the device


class HwIrq:
    """A host XIVE interrupt and its two real ESB pages (trigger, EOI/management).

    The device allocates one per guest source (the IPI backing it); a pass-through device's interrupt is
    another instance whose line the device side drives with `set_level`. `xive_native_configure_irq` sets
    where its events go (an END of the device's router and the EISN), or masks it (events dropped).
    """

    def __init__(self, hw_num: int, lsi: bool = False) -> None:
        self.hw_num = hw_num
        self.src = XiveSource(1, self._forward)  # two 64 KiB pages, PQ reset 01
        self.src.set_lsi(0, lsi)
        self.router: XiveRouter | None = None
        self.end_idx: int | None = None
        self.eisn = 0
        self.dropped = 0  # events forwarded while the hardware EAS was masked

    def configure(self, router: XiveRouter | None, end_idx: int | None, eisn: int) -> None:
        """`xive_native_configure_irq(hw, vp, prio, eisn)`; `end_idx` None = MASKED."""
        self.router, self.end_idx, self.eisn = router, end_idx, eisn & 0x7FFFFFFF

    def _forward(self, _srcno: int) -> None:
        if self.end_idx is None or self.router is None:
            self.dropped += 1
            return
        self.router.end_notify(self.end_idx, self.eisn)

    @property
    def pq(self) -> int:
        return self.src.get_pq(0)

    def set_pq(self, pq: int) -> int:
        """ESB load at SET_PQ_xx: returns the old PQ."""
        return self.src.set_pq(0, pq)

    def esb_load(self, eoi_page: bool, offset: int, size: int) -> int:
        return self.src.esb_read((1 << 16 if eoi_page else 0) | offset, size)

    def esb_store(self, eoi_page: bool, offset: int, size: int, value: int) -> None:
        self.src.esb_write((1 << 16 if eoi_page else 0) | offset, size, value)

    def trigger(self) -> None:
        """A store to the trigger page (what an MSI from the device does)."""
        self.src.esb_write(0, 8, 0)

    def set_level(self, level: bool) -> None:
        """The device side of a pass-through interrupt: MSI edge on 1, LSI level."""
        self.src.set_irq(0, level)


class EsbPage:
    """One ESB page of a host interrupt, as inserted by the ESB fault handler."""

    __slots__ = ("hw", "eoi")

    def __init__(self, hw: HwIrq, eoi: bool) -> None:
        self.hw, self.eoi = hw, eoi

    def load(self, offset: int, size: int, cpu: int) -> int:
        return self.hw.esb_load(self.eoi, offset, size)

    def store(self, offset: int, size: int, value: int, cpu: int) -> None:
        self.hw.esb_store(self.eoi, offset, size, value)


class TimaOsPage:
    """The host's OS TIMA page: each hardware thread sees the context pushed on it."""

    __slots__ = ("tctxs",)

    def __init__(self, tctxs: dict[int, XiveTCTX]) -> None:
        self.tctxs = tctxs

    def load(self, offset: int, size: int, cpu: int) -> int:
        t = self.tctxs.get(cpu)
        if t is None:
            return size_mask(size) or 0xFFFFFFFFFFFFFFFF
        return t.tm_read((TIMA_OS_PAGE << 16) | offset, size)

    def store(self, offset: int, size: int, value: int, cpu: int) -> None:
        t = self.tctxs.get(cpu)
        if t is not None:
            t.tm_write((TIMA_OS_PAGE << 16) | offset, size, value)


class _NvtPresenter(XivePresenter):
    """The presenter with the hardware's backlog: an event for a VP not dispatched on any thread sets the
    priority in the NVT's backed-up IPB, merged back when the VP is pushed (and into VP_STATE)."""

    def __init__(self, line: Any, cpu_hint: int | None) -> None:
        super().__init__(line, cpu_hint=cpu_hint)
        self.backlog: dict[int, int] = {}

    def notify(self, fmt: int, nvt_blk: int, nvt_idx: int, prio: int) -> bool:
        if super().notify(fmt, nvt_blk, nvt_idx, prio):
            return True
        self.backlog[nvt_idx] = self.backlog.get(nvt_idx, 0) | PRIO_TO_IPB[prio & 0xFF]
        return True


# --------------------------------------------------------------------------------------------------------
# per-source and per-vCPU state


@dataclass
class IrqState:
    """`struct kvmppc_xive_irq_state` (the fields native mode uses)."""

    number: int
    ipi: HwIrq
    valid: bool = False
    lsi: bool = False
    asserted: bool = False
    act_server: int = 0
    act_priority: int = MASKED
    eisn: int = 0
    pt: HwIrq | None = None  # pass-through interrupt mapped onto this source

    def hw(self) -> HwIrq:
        """`kvmppc_xive_select_irq`: the pass-through interrupt if any, else the IPI."""
        return self.pt if self.pt is not None else self.ipi


@dataclass
class XiveQ:
    """`struct xive_q` plus the guest view KVM keeps (guest_qaddr / guest_qshift)."""

    qpage: bool = False  # a guest page is pinned (queue enabled)
    guest_qaddr: int = 0
    guest_qshift: int = 0
    count: int = 0  # sources targeted here (xive_try_pick_queue; never decremented in native mode)
    msk: int = 0


@dataclass
class XiveVcpu:
    """`struct kvmppc_xive_vcpu`."""

    device: KvmXiveNative
    vcpu: KvmVcpu
    server_num: int
    vp_id: int
    queues: list[XiveQ] = field(default_factory=lambda: [XiveQ() for _ in range(KVMPPC_XIVE_Q_COUNT)])
    pushed: bool = True  # context on the thread (the model's vCPUs run unless pulled)
    saved_w01: int = KVM_INITIAL_W01  # `vcpu->arch.xive_saved_state.w01`, TIMA byte order


# --------------------------------------------------------------------------------------------------------
# the device


class KvmXiveNative(XiveBackedDevice):
    """One `kvm-xive-native` device of a VM (`kvmppc_xive_native_create`): at most one per VM."""

    name = "kvm-xive-native"
    irq_cap = KVM_CAP_PPC_IRQ_XIVE  # KVM_ENABLE_CAP that connects a vCPU to it

    def __init__(self, vm: KvmVm, fd: int) -> None:
        super().__init__(fd)
        self.vm = vm
        self.host = vm.host
        self.ram = vm.ram
        cfg = self.host.config
        self.nr_servers = cfg.max_vcpus  # default VP block size
        self.vp_base: int | None = None  # allocated at the first vCPU connect
        self.single_escalation = True
        self.src_blocks: set[int] = set()
        self.sources: dict[int, IrqState] = {}
        self.src_count = 0
        self.presenter = _NvtPresenter(vm.line, None)
        self.router: XiveRouter | None = None  # built with the VP block
        self.trace: Any = None

    # --- numbering --------------------------------------------------------------------------------------

    def _end_idx(self, server: int, prio: int) -> int:
        return (server << 3) | prio

    def find_server(self, server: int) -> KvmVcpu | None:
        """`kvmppc_xive_find_server`: the vCPU connected with that server number."""
        for v in self.vm.vcpus:
            xc = v.xive_vcpu
            if xc is not None and xc.device is self and xc.server_num == server:
                return v
        return None

    def find_source(self, irq: int) -> tuple[bool, IrqState | None]:
        """`kvmppc_xive_find_source`: (block exists, source state if created)."""
        bid = irq >> KVMPPC_XICS_ICS_SHIFT
        if bid > KVMPPC_XICS_MAX_ICS_ID or bid not in self.src_blocks:
            return False, None
        return True, self.sources.get(irq)

    def _nvt_valid(self, nvt_blk: int, nvt_idx: int) -> bool:
        if nvt_blk != 0 or self.vp_base is None:
            return False
        v = self.find_server(nvt_idx - self.vp_base)
        return v is not None

    # --- attributes -------------------------------------------------------------------------------------

    def _set_attr(self, group: int, attr: int, value: AttrValue) -> None:
        if group == KVM_DEV_XIVE_GRP_CTRL:
            if attr == KVM_DEV_XIVE_RESET:
                self.reset()
                return
            if attr == KVM_DEV_XIVE_EQ_SYNC:
                self.eq_sync()
                return
            if attr == KVM_DEV_XIVE_NR_SERVERS:
                self.set_nr_servers(attr_u32(value))
                return
        elif group == KVM_DEV_XIVE_GRP_SOURCE:
            self.set_source(attr, value)
            return
        elif group == KVM_DEV_XIVE_GRP_SOURCE_CONFIG:
            self.set_source_config(attr, value)
            return
        elif group == KVM_DEV_XIVE_GRP_EQ_CONFIG:
            self.set_queue_config(attr, value)
            return
        elif group == KVM_DEV_XIVE_GRP_SOURCE_SYNC:
            self.sync_source(attr)
            return
        raise KvmError(errno.ENXIO, f"group {group} attr {attr:#x}")

    def _get_attr(self, group: int, attr: int) -> bytes:
        if group == KVM_DEV_XIVE_GRP_EQ_CONFIG:
            return self.get_queue_config(attr)
        raise KvmError(errno.ENXIO, f"group {group} cannot be read")

    def _has_attr(self, group: int, attr: int) -> None:
        if group == KVM_DEV_XIVE_GRP_CTRL:
            if attr in (KVM_DEV_XIVE_RESET, KVM_DEV_XIVE_EQ_SYNC, KVM_DEV_XIVE_NR_SERVERS):
                return
        elif group in (KVM_DEV_XIVE_GRP_SOURCE, KVM_DEV_XIVE_GRP_SOURCE_CONFIG, KVM_DEV_XIVE_GRP_SOURCE_SYNC):
            if KVMPPC_XIVE_FIRST_IRQ <= attr < KVMPPC_XIVE_NR_IRQS:
                return
        elif group == KVM_DEV_XIVE_GRP_EQ_CONFIG:
            return
        raise KvmError(errno.ENXIO, f"group {group} attr {attr:#x}")

    # --- CTRL ---------------------------------------------------------------------------------------------

    def set_nr_servers(self, nr_servers: int) -> None:
        """`kvmppc_xive_set_nr_servers`: EINVAL for 0 or > KVM_MAX_VCPU_IDS, EBUSY once the VP block exists;
        values above KVM_MAX_VCPUS are clamped."""
        self.nr_servers = check_nr_servers(self.host.config, nr_servers, self.vp_base is not None)

    def reset(self) -> None:
        """`kvmppc_xive_reset`: every vCPU's queues released, every unmasked source masked (PQ 01)."""
        for v in self.vm.vcpus:
            xc = v.xive_vcpu
            if xc is None or xc.device is not self:
                continue
            for prio in range(KVMPPC_XIVE_Q_COUNT):
                if prio == 7 and self.single_escalation:
                    break
                self._cleanup_queue(xc, prio)
        for st in self.sources.values():
            if not st.valid or st.act_priority == MASKED:
                continue
            st.eisn = 0
            st.act_server = 0
            st.act_priority = MASKED
            st.ipi.set_pq(XIVE_ESB_OFF)
            st.ipi.configure(None, None, 0)
            if st.pt is not None:
                st.pt.set_pq(XIVE_ESB_OFF)
                st.pt.configure(None, None, 0)

    def eq_sync(self) -> None:
        """`kvmppc_xive_native_eq_sync`: nothing is in flight in the model (routing is synchronous); every
        configured EQ is marked dirty for migration (one 64 KiB host page = the whole queue)."""
        for v in self.vm.vcpus:
            xc = v.xive_vcpu
            if xc is None or xc.device is not self:
                continue
            for q in xc.queues:
                if q.qpage:
                    self.ram.mark_dirty(q.guest_qaddr, 1 << q.guest_qshift)

    # --- sources ------------------------------------------------------------------------------------------

    def set_source(self, irq: int, value: AttrValue) -> None:
        """`kvmppc_xive_native_set_source`: E2BIG out of range, EFAULT unreadable value; allocates the IPI the
        first time, records LSI/asserted (never cleared here, as the kernel), then masks: PQ 01, EAS masked."""
        if not KVMPPC_XIVE_FIRST_IRQ <= irq < KVMPPC_XIVE_NR_IRQS:
            raise KvmError(errno.E2BIG, f"source {irq:#x}")
        val = attr_u64(value)
        self.src_blocks.add(irq >> KVMPPC_XICS_ICS_SHIFT)
        st = self.sources.get(irq)
        if st is None:
            st = IrqState(irq, HwIrq(self.host.alloc_hw_irq()))
            self.sources[irq] = st
        if val & KVM_XIVE_LEVEL_SENSITIVE:
            st.lsi = True
            if val & KVM_XIVE_LEVEL_ASSERTED:
                st.asserted = True
        st.act_server = 0
        st.act_priority = MASKED
        st.ipi.set_pq(XIVE_ESB_OFF)
        st.ipi.configure(None, None, 0)
        if not st.valid:
            self.src_count += 1
        st.valid = True

    def _valid_source(self, irq: int) -> IrqState:
        block, st = self.find_source(irq)
        if not block:
            raise KvmError(errno.ENOENT, f"no source block for {irq:#x}")
        if st is None or not st.valid:
            raise KvmError(errno.EINVAL, f"source {irq:#x} not initialised")
        return st

    def set_source_config(self, irq: int, value: AttrValue) -> None:
        """`kvmppc_xive_native_set_source_config` + `_update_source_config`: ENOENT no block, EINVAL source not
        valid / priority 7 / server unknown, EFAULT, EBUSY when no vCPU has a queue with room at that
        priority. Unchanged (server, priority, EISN) is a no-op (the masked bit is not compared, as the
        kernel). The requested server's queue must be provisioned, else another vCPU's is picked."""
        st = self._valid_source(irq)
        server, prio, masked, eisn = source_config_decode(attr_u64(value))
        if prio != xive_prio_from_guest(prio):
            raise KvmError(errno.EINVAL, f"priority {prio}")
        if st.act_server == server and st.act_priority == prio and st.eisn == eisn:
            return
        hw = st.hw()
        if prio != MASKED and not masked:
            server = self.select_target(server, prio)
            st.act_priority, st.act_server, st.eisn = prio, server, eisn
            hw.configure(self.router, self._end_idx(server, prio), eisn)
        else:
            st.act_priority, st.act_server, st.eisn = MASKED, 0, 0
            hw.configure(None, None, 0)

    def select_target(self, server: int, prio: int) -> int:
        """`kvmppc_xive_select_target`: EINVAL unknown server; the server itself if its queue has room,
        else the first vCPU whose queue has; EBUSY if none."""
        v = self.find_server(server)
        if v is None:
            raise KvmError(errno.EINVAL, f"server {server} not found")
        if self._try_pick_queue(v.xive_vcpu, prio):
            return server
        for v in self.vm.vcpus:
            xc = v.xive_vcpu
            if xc is not None and xc.device is self and self._try_pick_queue(xc, prio):
                return xc.server_num
        raise KvmError(errno.EBUSY, f"no queue with room at priority {prio}")

    @staticmethod
    def _try_pick_queue(xc: XiveVcpu, prio: int) -> bool:
        """`xive_try_pick_queue`: room left = entries - XIVE_Q_GAP."""
        q = xc.queues[prio]
        if not q.qpage:
            return False
        if q.count >= (q.msk + 1) - XIVE_Q_GAP:
            return False
        q.count += 1
        return True

    def sync_source(self, irq: int) -> None:
        """`kvmppc_xive_native_sync_source`: ENOENT no block, EINVAL not valid; routing is synchronous."""
        self._valid_source(irq)

    # --- queues -------------------------------------------------------------------------------------------

    def _queue_of(self, attr: int) -> tuple[XiveVcpu, int]:
        server, prio = eq_id_decode(attr)
        v = self.find_server(server)
        if v is None:
            raise KvmError(errno.ENOENT, f"server {server} not found")
        if prio != xive_prio_from_guest(prio):
            raise KvmError(errno.EINVAL, f"priority {prio}")
        return v.xive_vcpu, prio

    def set_queue_config(self, attr: int, value: AttrValue) -> None:
        """`kvmppc_xive_native_set_queue_config`: EFAULT, ENOENT server, EINVAL priority; qshift 0 resets the
        queue; otherwise flags must be ALWAYS_NOTIFY, qshift 16, qaddr aligned and in guest RAM (EINVAL).
        The hardware queue starts at toggle 1 index 0 unless (qtoggle, qindex) asks for a restore."""
        eq = attr_struct(value, KvmPpcXiveEq)
        xc, prio = self._queue_of(attr)
        if not eq.qshift:
            q = xc.queues[prio]
            q.guest_qaddr = q.guest_qshift = 0
            self._cleanup_queue(xc, prio)
            return
        if eq.flags != KVM_XIVE_EQ_ALWAYS_NOTIFY:
            raise KvmError(errno.EINVAL, f"flags {eq.flags:#x}")
        if eq.qshift != QSHIFT_SUPPORTED:
            raise KvmError(errno.EINVAL, f"queue size {eq.qshift}")
        size = 1 << eq.qshift
        if eq.qaddr & (size - 1):
            raise KvmError(errno.EINVAL, f"queue page {eq.qaddr:#x} not aligned")
        if not self.ram.contains(eq.qaddr, size) or size > (1 << HOST_PAGE_SHIFT):
            raise KvmError(errno.EINVAL, f"queue page {eq.qaddr:#x} not in guest RAM")
        entries = size >> 2
        restore = (eq.qtoggle, eq.qindex) != (1, 0)
        if restore and (eq.qtoggle > 1 or eq.qindex >= entries):
            raise KvmError(errno.EIO, f"queue state {eq.qtoggle}/{eq.qindex} refused by the firmware")
        q = xc.queues[prio]
        q.guest_qaddr, q.guest_qshift = eq.qaddr, eq.qshift
        q.qpage = True
        q.msk = entries - 1
        toggle, index = (eq.qtoggle, eq.qindex) if restore else (1, 0)
        w = [0] * END_WORDS
        w[0] = END_W0_VALID | END_W0_ENQUEUE | END_W0_UCOND_NOTIFY | ((eq.qshift - 12) << END_W0_QSIZE_SHIFT)
        w[1] = END_W1_ESN_Q | END_W1_ESE_Q | (END_W1_GENERATION if toggle else 0) | (index << END_W1_PAGE_OFF_SHIFT)
        w[2] = (eq.qaddr >> 32) & 0x0FFFFFFF
        w[3] = eq.qaddr & 0xFFFFFFFF
        w[6] = xc.vp_id << END_W6_NVT_INDEX_SHIFT
        w[7] = prio << END_W7_F0_PRIORITY_SHIFT
        assert self.router is not None
        self.router.set_end_words(self._end_idx(xc.server_num, prio), w)

    def get_queue_config(self, attr: int) -> bytes:
        """`kvmppc_xive_native_get_queue_config`: zeroed when the queue is off; else the guest's qshift/qaddr
        and the live toggle/index of the hardware queue."""
        xc, prio = self._queue_of(attr)
        q = xc.queues[prio]
        if not q.qpage:
            return xive_eq()
        assert self.router is not None
        w = self.router.end_words(self._end_idx(xc.server_num, prio))
        return xive_eq(
            flags=KVM_XIVE_EQ_ALWAYS_NOTIFY if w[0] & END_W0_UCOND_NOTIFY else 0,
            qshift=q.guest_qshift,
            qaddr=q.guest_qaddr,
            qtoggle=1 if w[1] & END_W1_GENERATION else 0,
            qindex=(w[1] >> END_W1_PAGE_OFF_SHIFT) & END_W1_PAGE_OFF_MASK,
        )

    def _cleanup_queue(self, xc: XiveVcpu, prio: int) -> None:
        """`kvmppc_xive_native_cleanup_queue`: hardware queue disabled, guest page released."""
        xc.queues[prio].qpage = False
        if self.router is not None:
            self.router.reset_end(self._end_idx(xc.server_num, prio))

    # --- vCPUs --------------------------------------------------------------------------------------------

    def connect_vcpu(self, vcpu: KvmVcpu, server_num: int) -> None:
        """`kvmppc_xive_native_connect_vcpu` (+ `kvmppc_xive_compute_vp_id`): EPERM other VM / released device,
        EBUSY vCPU already on an irqchip, EINVAL server >= nr_servers, ENOSPC no VP block, EEXIST VP in use."""
        if self._vp_block_for(vcpu, server_num, "XIVE"):
            base = self.vp_base
            self.router = XiveRouter(self.ram, 1, self.nr_servers << 3, self.presenter, self._nvt_valid)
            self.router.trace = self.trace
            self.presenter.cpu_hint = base  # fast path when vCPU index == server (the CAM is still checked)
        if self.find_server(server_num) is not None:
            raise KvmError(errno.EEXIST, f"VP of server {server_num} in use")
        vp_id = self.vp_base + server_num
        xc = XiveVcpu(self, vcpu, server_num, vp_id)
        vcpu.xive_vcpu = xc
        vcpu.irq_type = KVMPPC_IRQ_XIVE
        t = self.presenter.connect(vcpu.index, TM_QW1W2_VO | vp_id)
        self._load_w01(t, KVM_INITIAL_W01)

    @staticmethod
    def _load_w01(t: XiveTCTX, w01: int) -> None:
        """Put saved OS-ring words on the thread: PIPR is derived by hardware from IPB, NSR re-evaluated."""
        r = t.regs
        _U64BE.pack_into(r, TM_W01, w01)
        r[TM_QW1_OS + TM_PIPR] = IPB_TO_PIPR[r[TM_QW1_OS + TM_IPB]]
        r[TM_QW1_OS + TM_NSR] &= ~TM_QW1_NSR_EO & 0xFF
        t._set_os_output(False)
        t.notify(TM_QW1_OS)

    def cleanup_vcpu(self, vcpu: KvmVcpu) -> None:
        """`kvmppc_xive_native_cleanup_vcpu`: VP disabled, queues freed, the vCPU back to no irqchip."""
        xc = vcpu.xive_vcpu
        if xc is None or xc.device is not self:
            return
        for prio in range(KVMPPC_XIVE_Q_COUNT):
            self._cleanup_queue(xc, prio)
        self.presenter.disconnect(vcpu.index)
        self.presenter.backlog.pop(xc.vp_id, None)
        vcpu.irq_type = KVMPPC_IRQ_DEFAULT
        vcpu.xive_vcpu = None

    def pull_vcpu(self, vcpu: KvmVcpu) -> None:
        """`kvmppc_xive_pull_vcpu`: save OS-ring words, invalidate the CAM line; later events go to the backlog."""
        xc = vcpu.xive_vcpu
        if xc is None or not xc.pushed:
            return
        t = self.presenter.tctxs[vcpu.index]
        xc.saved_w01 = _U64BE.unpack_from(t.regs, TM_W01)[0]
        t.set_os_cam(t.os_cam() & ~TM_QW1W2_VO)
        t.regs[TM_QW1_OS + TM_NSR] &= ~TM_QW1_NSR_EO & 0xFF
        t._set_os_output(False)
        xc.pushed = False

    def push_vcpu(self, vcpu: KvmVcpu) -> None:
        """`kvmppc_xive_push_vcpu`: restore the OS-ring words, set the CAM line, merge the NVT backlog IPB."""
        xc = vcpu.xive_vcpu
        if xc is None or xc.pushed:
            return
        t = self.presenter.tctxs[vcpu.index]
        backlog = self.presenter.backlog.pop(xc.vp_id, 0)
        t.set_os_cam(TM_QW1W2_VO | xc.vp_id)
        self._load_w01(t, xc.saved_w01 | (backlog << 40))
        xc.pushed = True

    def get_vp(self, vcpu: KvmVcpu) -> bytes:
        """`kvmppc_xive_native_get_vp`: OS-ring word0-1 with the NVT's backed-up IPB ORed in (128 bits)."""
        xc = vcpu.xive_vcpu
        w01 = _U64BE.unpack_from(self.presenter.tctxs[vcpu.index].regs, TM_W01)[0] if xc.pushed else xc.saved_w01
        w01 |= self.presenter.backlog.get(xc.vp_id, 0) << 40
        return KvmPpcVpState.build(dict(w01=w01, unused=0))

    def set_vp(self, vcpu: KvmVcpu, value: AttrValue) -> None:
        """`kvmppc_xive_native_set_vp`: EBUSY while the context is pushed; EFAULT unreadable. Only the saved
        words change; they reach the thread at the next push. An int value is `w01 << 64 | word1`."""
        xc = vcpu.xive_vcpu
        if isinstance(value, int) and not isinstance(value, bool):
            raw = (value & ((1 << 128) - 1)).to_bytes(KVM_REG_PPC_VP_STATE_SIZE, "big")
        else:
            raw = value
        st = attr_struct(raw, KvmPpcVpState)
        if xc.pushed:
            raise KvmError(errno.EBUSY, "vCPU context is pushed")
        xc.saved_w01 = st.w01
        self.presenter.backlog.pop(xc.vp_id, None)

    # --- mmap ---------------------------------------------------------------------------------------------

    def _mmap(self, pgoff: int, npages: int) -> DeviceMapping:
        """`kvmppc_xive_native_mmap`: TIMA at pgoff 0 (<= 4 pages), ESB at pgoff 4 (<= 2 * NR_IRQS pages)."""
        if pgoff == KVM_XIVE_TIMA_PAGE_OFFSET:
            if npages > 4:
                raise KvmError(errno.EINVAL, "TIMA mapping larger than 4 pages")
            return DeviceMapping(self, pgoff, npages, self._tima_fault, "tima")
        if pgoff == KVM_XIVE_ESB_PAGE_OFFSET:
            if npages > KVMPPC_XIVE_NR_IRQS * 2:
                raise KvmError(errno.EINVAL, "ESB mapping too large")
            return DeviceMapping(self, pgoff, npages, self._esb_fault, "esb")
        raise KvmError(errno.EINVAL, f"no mapping at page offset {pgoff}")

    def _max_pages(self, pgoff: int) -> int:
        if pgoff == KVM_XIVE_TIMA_PAGE_OFFSET:
            return 4
        return KVMPPC_XIVE_NR_IRQS * 2 if pgoff == KVM_XIVE_ESB_PAGE_OFFSET else 0

    def _tima_fault(self, rel: int) -> TimaOsPage:
        """`xive_native_tima_fault`: only the OS page; HW, HV and USER pages are SIGBUS."""
        if rel != TIMA_OS_PAGE:
            raise VmFault(KVM_XIVE_TIMA_PAGE_OFFSET + rel, ("HW", "HV", "OS", "USER")[rel] + " TIMA page")
        return TimaOsPage(self.presenter.tctxs)

    def _esb_fault(self, rel: int) -> EsbPage:
        """`xive_native_esb_fault`: page 2n = trigger page, 2n+1 = EOI page of source n's selected interrupt."""
        pgoff = KVM_XIVE_ESB_PAGE_OFFSET + rel
        block, st = self.find_source(rel >> 1)
        if not block:
            raise VmFault(pgoff, "no source block")
        if st is None or not st.valid:
            raise VmFault(pgoff, "source not valid")
        return EsbPage(st.hw(), bool(rel & 1))

    def reset_mapped(self, irq: int) -> None:
        """`kvmppc_xive_native_reset_mapped`: zap the two ESB pages of `irq` in every mapping of the device."""
        if irq >= KVMPPC_XIVE_NR_IRQS:
            raise KvmError(errno.EINVAL, f"source {irq:#x}")
        first = KVM_XIVE_ESB_PAGE_OFFSET + 2 * irq
        for m in self.mappings:
            if m.pgoff == KVM_XIVE_ESB_PAGE_OFFSET:
                m.invalidate(first, 2)

    # --- pass-through -------------------------------------------------------------------------------------

    def set_mapped(self, irq: int, hw: HwIrq) -> None:
        """`kvmppc_xive_set_mapped` (VFIO maps a host device interrupt onto guest source `irq`).

        The IPI is turned hard off, the two ESB pages zapped, the device interrupt takes the source's
        routing and its PQ state: a pending guest EOI then lands on the new EOI page with P set, a Q latched
        on the IPI fires at that EOI, and an event the device raised before the switch (its P) is replayed.
        EINVAL: unknown or invalid source, or already mapped."""
        st = self._mapped_source(irq)
        if st.pt is not None:
            raise KvmError(errno.EINVAL, f"source {irq:#x} already mapped")
        self._switch(st, st.ipi, hw)
        st.pt = hw

    def clr_mapped(self, irq: int) -> HwIrq:
        """`kvmppc_xive_clr_mapped`: the source goes back to its IPI with the device interrupt's PQ state;
        the device interrupt is masked (PQ 01) and returned to the host."""
        st = self._mapped_source(irq)
        if st.pt is None:
            raise KvmError(errno.EINVAL, f"source {irq:#x} not mapped")
        pt = st.pt
        st.pt = None
        self._switch(st, pt, st.ipi)
        return pt

    def _mapped_source(self, irq: int) -> IrqState:
        if irq >= KVMPPC_XIVE_NR_IRQS:
            raise KvmError(errno.EINVAL, f"source {irq:#x}")
        block, st = self.find_source(irq)
        if not block or st is None or not st.valid:
            raise KvmError(errno.EINVAL, f"source {irq:#x} not initialised")
        return st

    def _switch(self, st: IrqState, old: HwIrq, new: HwIrq) -> None:
        guest_pq = old.set_pq(XIVE_ESB_OFF)  # old interrupt hard off; its state is the guest's
        old.configure(None, None, 0)
        self.reset_mapped(st.number)
        pending = bool(new.pq & XIVE_ESB_VAL_P)  # an event the interrupt raised before it was ours
        if st.act_priority != MASKED:
            new.configure(self.router, self._end_idx(st.act_server, st.act_priority), st.eisn)
        else:
            new.configure(None, None, 0)
        new.set_pq(guest_pq)
        if pending:
            if guest_pq & XIVE_ESB_VAL_P:
                new.set_pq(guest_pq | XIVE_ESB_VAL_Q)
            elif guest_pq == 0:
                new.trigger()

    # --- release ------------------------------------------------------------------------------------------

    def release(self) -> None:
        """`kvmppc_xive_native_release`: vCPU presenters cleaned up, sources and VP block freed, the VM can
        create a new XIVE device."""
        for v in self.vm.vcpus:
            self.cleanup_vcpu(v)
        if self.vm.xive is self:
            self.vm.xive = None
        for st in self.sources.values():  # kvmppc_xive_free_sources: nothing routes into the VM any more
            st.ipi.configure(None, None, 0)
            if st.pt is not None:
                st.pt.configure(None, None, 0)
        self.sources.clear()
        self.src_blocks.clear()
        self.src_count = 0
        if self.vp_base is not None:
            self.host.free_vp_block(self.vp_base)
            self.vp_base = None
        self.router = None

    # --- inspection ---------------------------------------------------------------------------------------

    def describe(self) -> str:
        out = [
            f"{self.name} fd {self.fd}: {self.src_count} sources, nr_servers {self.nr_servers}, "
            f"vp_base {self.vp_base if self.vp_base is None else hex(self.vp_base)}"
        ]
        for irq in sorted(self.sources):
            st = self.sources[irq]
            hw = st.hw()
            route = "masked" if st.act_priority == MASKED else f"server {st.act_server} prio {st.act_priority}"
            out.append(
                f"  source {irq:#x} {'LSI' if st.lsi else 'MSI'} PQ={hw.pq:02b} {route} eisn {st.eisn:#x}"
                + (f" pt hw {hw.hw_num:#x}" if st.pt is not None else "")
            )
        for v in self.vm.vcpus:
            xc = v.xive_vcpu
            if xc is None or xc.device is not self:
                continue
            t = self.presenter.tctxs[v.index]
            r = t.regs
            out.append(
                f"  vcpu {v.index} server {xc.server_num} vp {xc.vp_id:#x} CPPR={r[TM_QW1_OS + TM_CPPR]:02x} "
                f"IPB={r[TM_QW1_OS + TM_IPB]:02x} PIPR={r[TM_QW1_OS + TM_PIPR]:02x}"
                + ("" if xc.pushed else " (pulled)")
            )
        return "\n".join(out)
