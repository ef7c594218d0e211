"""The Linux KVM XICS device as KVM offers it on a POWER9 host: "XICS-on-XIVE" (`kvm-xive`,
KVM_DEV_TYPE_XICS, arch/powerpc/kvm/book3s_xive.c), with its real uAPI.

The uAPI and its errnos are the kernel's: GRP_SOURCES set/get (`xive_set_source` / `xive_get_source`),
GRP_CTRL/NR_SERVERS (`kvmppc_xive_set_nr_servers`), HAS_ATTR (`xive_has_attr`), the vCPU connection through
KVM_ENABLE_CAP(KVM_CAP_IRQ_XICS) (`kvmppc_xive_connect_vcpu`, VP ids as `kvmppc_xive_compute_vp_id`),
KVM_REG_PPC_ICP_STATE (`kvmppc_xive_get_icp` / `set_icp`), KVM_IRQ_LINE (`kvmppc_xive_set_irq`), the
in-kernel XICS hcalls (`kvmppc_xive_xics_hcall`) and RTAS calls (`kvmppc_xive_set_xive` & co.), and release,
which clears every presenter so another device can be created.

What sits behind the uAPI is the machine's XICS model, not XIVE queues: one `ICS` per source block of 1024
(the kernel's `kvmppc_xive_src_block`) and one `ICP` per connected vCPU, the very classes the emulated XICS
uses. The guest-visible behaviour (hcall results, RTAS status, interrupts delivered) is therefore the
emulated XICS's, which is what the machine promises for both backends. The kernel's XIVE-backed emulation
differs in ways a guest can see, and those are not reproduced: it maps priorities 6 and 7 to 6, its H_IPOLL
leaves R5 alone, it moves a latched interrupt to a queue (so ICP_STATE reads XISR 0, PPRI 0xFF), its
set-xive checks the server only when it retargets, its int-on fails on a never-targeted source.

Other deliberate differences from book3s_xive.c:
  * ICP_STATE carries the latched XISR and its priority (as book3s_xics.c does, the uAPI being shared):
    the presenter here keeps one latched interrupt, and a restore must bring it back.
  * GRP_SOURCES set loads the source as saved; it does not re-send a pending one (the XICS model re-sends
    at its next CPPR change or EOI, as the emulated controller does after its own restore). It reads the
    value before creating the source block, so a bad pointer leaves the device unchanged.
  * The word encoding of source states is `xics_state.py`'s (lossless for XICS states).
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from xive_machine.errors import KvmError
from xive_machine.hcalls.codes import H, Op
from xive_machine.intc.xics.icp import ICP
from xive_machine.intc.xics.ics import ICS, XICS_FLAGS_IRQ_LSI, XICS_FLAGS_IRQ_MASK
from xive_machine.kvm.device import AttrValue, XiveBackedDevice, attr_u32, attr_u64
from xive_machine.kvm.uapi import (
    KVM_CAP_IRQ_XICS,
    KVM_DEV_XICS_GRP_CTRL,
    KVM_DEV_XICS_GRP_SOURCES,
    KVM_DEV_XICS_NR_SERVERS,
    KVM_INTERRUPT_SET_LEVEL,
    KVM_INTERRUPT_UNSET,
    KVMPPC_XICS_FIRST_IRQ,
    KVMPPC_XICS_ICS_SHIFT,
    KVMPPC_XICS_IRQ_PER_ICS,
    KVMPPC_XICS_MAX_ICS_ID,
    KVMPPC_XICS_NR_IRQS,
    u64,
)
from xive_machine.kvm.vm import KVMPPC_IRQ_DEFAULT, KVMPPC_IRQ_XICS, check_nr_servers
from xive_machine.kvm.xics_state import icp_word, load_icp_word, load_source_word, source_word

if TYPE_CHECKING:
    from xive_machine.kvm.vm import KvmVcpu, KvmVm

U64 = 0xFFFFFFFFFFFFFFFF
_SRC_MASK = KVMPPC_XICS_IRQ_PER_ICS - 1


def _c_int(value: int) -> int:
    """A u64 register narrowed to a C int, as the hcall layer passes a server number."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


@dataclass
class XicsVcpu:
    """`struct kvmppc_xive_vcpu` of a vCPU in XICS mode: its server, VP, IPI and (here) its presenter."""

    device: KvmXicsOnXive
    vcpu: KvmVcpu
    server_num: int
    vp_id: int
    vp_ipi: int  # host interrupt backing MFRR changes (allocated, as the kernel does)
    icp: ICP


class _Blocks:
    """The sources as the presenters see them (`IcsLink`): one ICS per block, looked up by number."""

    def __init__(self) -> None:
        self.by_id: dict[int, ICS] = {}
        self.ordered: list[ICS] = []  # ascending block ids: a resend walks sources in number order

    def add(self, bid: int, ics: ICS) -> None:
        self.by_id[bid] = ics
        self.ordered = [self.by_id[b] for b in sorted(self.by_id)]

    def clear(self) -> None:
        self.by_id.clear()
        self.ordered = []

    def owns(self, nr: int) -> bool:
        return (nr >> KVMPPC_XICS_ICS_SHIFT) in self.by_id

    def reject(self, nr: int) -> None:
        self.by_id[nr >> KVMPPC_XICS_ICS_SHIFT].reject(nr)

    def eoi(self, nr: int) -> None:
        self.by_id[nr >> KVMPPC_XICS_ICS_SHIFT].eoi(nr)

    def resend(self) -> None:
        for ics in self.ordered:
            if ics.resend_mask:
                ics.resend()


class KvmXicsOnXive(XiveBackedDevice):
    """One `kvm-xive` device of a VM (`kvmppc_xive_create`): at most one XIVE-backed device per VM."""

    name = "kvm-xive"
    irq_cap = KVM_CAP_IRQ_XICS  # KVM_ENABLE_CAP that connects a vCPU to it

    def __init__(self, vm: KvmVm, fd: int) -> None:
        super().__init__(fd)
        self.vm = vm
        self.host = vm.host
        self.nr_servers = self.host.config.max_vcpus  # default VP block size
        self.vp_base: int | None = None  # allocated at the first vCPU connect
        self.blocks = _Blocks()
        self.ipis: dict[int, int] = {}  # guest source -> host IPI backing it
        self.src_count = 0
        self.servers: dict[int, ICP] = {}  # server number -> presenter
        self._trace: Any = None

    @property
    def trace(self) -> Any:
        return self._trace

    @trace.setter
    def trace(self, sink: Any) -> None:
        self._trace = sink
        for ics in self.blocks.ordered:
            ics.trace = sink
        for icp in self.servers.values():
            icp.trace = sink

    # --- lookups ------------------------------------------------------------------------------------------

    def icp_get(self, server: int) -> ICP | None:
        """`kvmppc_xive_find_server`: the presenter of a connected server."""
        return self.servers.get(server)

    def find_source(self, irq: int) -> ICS | None:
        """`kvmppc_xive_find_source`: the block holding `irq`, if it was created."""
        bid = irq >> KVMPPC_XICS_ICS_SHIFT
        return self.blocks.by_id.get(bid) if 0 <= bid <= KVMPPC_XICS_MAX_ICS_ID else None

    def _valid(self, ics: ICS, irq: int) -> bool:
        return bool(ics.flags[irq & _SRC_MASK] & XICS_FLAGS_IRQ_MASK)

    def _xc(self, vcpu: KvmVcpu) -> XicsVcpu | None:
        xc = vcpu.xive_vcpu
        return xc if isinstance(xc, XicsVcpu) and xc.device is self else None

    # --- attributes ---------------------------------------------------------------------------------------

    def _set_attr(self, group: int, attr: int, value: AttrValue) -> None:
        """`xive_set_attr`: GRP_SOURCES, GRP_CTRL/NR_SERVERS; anything else ENXIO."""
        if group == KVM_DEV_XICS_GRP_SOURCES:
            self.set_source(attr, value)
            return
        if group == KVM_DEV_XICS_GRP_CTRL and attr == KVM_DEV_XICS_NR_SERVERS:
            self.nr_servers = check_nr_servers(self.host.config, attr_u32(value), self.vp_base is not None)
            return
        raise KvmError(errno.ENXIO, f"group {group} attr {attr:#x}")

    def _get_attr(self, group: int, attr: int) -> bytes:
        """`xive_get_attr`: only GRP_SOURCES can be read."""
        if group == KVM_DEV_XICS_GRP_SOURCES:
            return u64(self.get_source(attr))
        raise KvmError(errno.ENXIO, f"group {group} cannot be read")

    def _has_attr(self, group: int, attr: int) -> None:
        """`xive_has_attr`: sources FIRST_IRQ..NR_IRQS-1 and CTRL/NR_SERVERS."""
        if group == KVM_DEV_XICS_GRP_SOURCES and KVMPPC_XICS_FIRST_IRQ <= attr < KVMPPC_XICS_NR_IRQS:
            return
        if group == KVM_DEV_XICS_GRP_CTRL and attr == KVM_DEV_XICS_NR_SERVERS:
            return
        raise KvmError(errno.ENXIO, f"group {group} attr {attr:#x}")

    def set_source(self, irq: int, value: AttrValue) -> None:
        """`xive_set_source`: ENOENT outside FIRST_IRQ..NR_IRQS-1, EFAULT unreadable value. Creates the block
        and the source's IPI the first time, then loads the source as the word says (see module docstring)."""
        if not KVMPPC_XICS_FIRST_IRQ <= irq < KVMPPC_XICS_NR_IRQS:
            raise KvmError(errno.ENOENT, f"source {irq:#x}")
        val = attr_u64(value)
        ics = self.find_source(irq)
        if ics is None:
            bid = irq >> KVMPPC_XICS_ICS_SHIFT
            ics = ICS(self.icp_get, KVMPPC_XICS_IRQ_PER_ICS, bid << KVMPPC_XICS_ICS_SHIFT)
            ics.trace = self._trace
            self.blocks.add(bid, ics)
        if irq not in self.ipis:
            self.ipis[irq] = self.host.alloc_hw_irq()
        if not self._valid(ics, irq):
            self.src_count += 1
        load_source_word(ics, irq & _SRC_MASK, val, set_type=True)

    def get_source(self, irq: int) -> int:
        """`xive_get_source`: ENOENT when the block or the source does not exist."""
        ics = self.find_source(irq)
        if ics is None or not self._valid(ics, irq):
            raise KvmError(errno.ENOENT, f"source {irq:#x}")
        return source_word(ics, irq & _SRC_MASK)

    # --- vCPUs --------------------------------------------------------------------------------------------

    def connect_vcpu(self, vcpu: KvmVcpu, server_num: int) -> None:
        """`kvmppc_xive_connect_vcpu`: EPERM other VM / released device, EBUSY vCPU already on an irqchip,
        EINVAL server >= nr_servers, ENOSPC no VP block, EEXIST VP in use. The presenter starts as KVM's:
        CPPR 0, nothing latched, MFRR 0xFF."""
        self._vp_block_for(vcpu, server_num, "XICS")
        vp_id = self.vp_base + server_num
        if any(v.xive_vcpu is not None and v.xive_vcpu.vp_id == vp_id for v in self.vm.vcpus):
            raise KvmError(errno.EEXIST, f"VP of server {server_num} in use")
        icp = ICP(server_num, vcpu.index, self.blocks, self.vm.line)
        icp.trace = self._trace
        vcpu.xive_vcpu = XicsVcpu(self, vcpu, server_num, vp_id, self.host.alloc_hw_irq(), icp)
        vcpu.irq_type = KVMPPC_IRQ_XICS
        self.servers[server_num] = icp

    def cleanup_vcpu(self, vcpu: KvmVcpu) -> None:
        """`kvmppc_xive_cleanup_vcpu`: the presenter goes (its output dropped), the vCPU has no irqchip."""
        xc = self._xc(vcpu)
        if xc is None:
            return
        xc.icp.reset()
        self.servers.pop(xc.server_num, None)
        vcpu.irq_type = KVMPPC_IRQ_DEFAULT
        vcpu.xive_vcpu = None

    def pull_vcpu(self, vcpu: KvmVcpu) -> None:
        """Guest exit: nothing to save, the presenter is software here."""

    def push_vcpu(self, vcpu: KvmVcpu) -> None:
        """Guest entry: likewise."""

    def get_icp(self, vcpu: KvmVcpu) -> int:
        """`kvmppc_xive_get_icp`: CPPR, XISR, MFRR and PPRI of the vCPU's presenter (0 if it has none)."""
        xc = self._xc(vcpu)
        return icp_word(xc.icp) if xc is not None else 0

    def set_icp(self, vcpu: KvmVcpu, value: AttrValue) -> None:
        """`kvmppc_xive_set_icp`: ENOENT without a presenter or device; EFAULT unreadable. No consistency
        check (the kernel has none): the word is the presenter's state."""
        xc = self._xc(vcpu)
        if xc is None or self.vm.xive is not self:
            raise KvmError(errno.ENOENT, "vCPU has no XICS presenter")
        load_icp_word(xc.icp, attr_u64(value))

    # --- the in-kernel paths ------------------------------------------------------------------------------

    def set_irq(self, irq: int, level: int) -> None:
        """`kvmppc_xive_set_irq` (KVM_IRQ_LINE): EINVAL unknown or invalid source. 1 or SET_LEVEL holds an
        LSI high, 0 or UNSET drops it; any other level (KVM_INTERRUPT_SET) is an edge."""
        ics = self.find_source(irq)
        if ics is None or not self._valid(ics, irq):
            raise KvmError(errno.EINVAL, f"source {irq:#x}")
        s = irq & _SRC_MASK
        if level in (0, KVM_INTERRUPT_UNSET):
            ics.set_irq(s, False)
        elif ics.flags[s] & XICS_FLAGS_IRQ_LSI and level not in (1, KVM_INTERRUPT_SET_LEVEL):
            ics.set_irq(s, True)  # an edge on an LSI: raised, sent once, not held
            ics.set_irq(s, False)
        else:
            ics.set_irq(s, True)

    def xics_hcall(self, vcpu: KvmVcpu, req: int, args: tuple[int, ...]) -> tuple[int, ...] | None:
        """`kvmppc_xive_xics_hcall`: (rc, *outs), or None (H_TOO_HARD) when the vCPU is not in XICS mode and
        the hcall goes on to userspace. Arguments are narrowed as the XICS model's hcalls narrow them."""
        xc = self._xc(vcpu)
        if xc is None or vcpu.irq_type != KVMPPC_IRQ_XICS:
            return None
        icp = xc.icp
        if req == Op.H_XIRR:
            return (H.SUCCESS, icp.accept())
        if req == Op.H_XIRR_X:
            xirr = icp.accept()
            return (H.SUCCESS, xirr, self.vm.timebase() & U64)
        if req == Op.H_CPPR:
            icp.set_cppr(args[0] & 0xFF)
            return (H.SUCCESS,)
        if req == Op.H_EOI:
            icp.eoi(args[0] & 0xFFFFFFFF)
            return (H.SUCCESS,)
        if req in (Op.H_IPI, Op.H_IPOLL):
            name = "H_IPI" if req == Op.H_IPI else "H_IPOLL"
            server = _c_int(args[0])
            target = self.icp_get(server)
            if target is None:
                self._guest_error(f"{name}: no interrupt server {server}", server=server)
                return (H.PARAMETER,)
            if req == Op.H_IPI:
                target.set_mfrr(args[1] & 0xFF)
                return (H.SUCCESS,)
            return (H.SUCCESS, *target.ipoll())
        return (H.UNSUPPORTED,)

    def _guest_error(self, what: str, **fields: Any) -> None:
        if self._trace is not None:
            self._trace.emit("note", ctl="xics", guest_error=what, **fields)

    # RTAS back ends (book3s_rtas.c turns any errno into status -3)

    def _rtas_source(self, irq: int) -> tuple[ICS, int]:
        ics = self.find_source(irq)
        if ics is None:
            raise KvmError(errno.EINVAL, f"no source block for {irq:#x}")
        return ics, irq & _SRC_MASK

    def set_xive(self, irq: int, server: int, priority: int) -> None:
        """`kvmppc_xive_set_xive`: EINVAL no source block, unknown server or priority > 0xFF (checked before
        anything changes); sets server, priority and saved priority, delivering what the XICS model would."""
        ics, s = self._rtas_source(irq)
        if self.icp_get(_c_int(server)) is None or priority > 0xFF:
            raise KvmError(errno.EINVAL, f"server {server} priority {priority:#x}")
        ics.write_xive(s, server & 0xFFFFFFFF, priority, priority)

    def get_xive(self, irq: int) -> tuple[int, int]:
        """`kvmppc_xive_get_xive`: (server, priority); EINVAL no source block."""
        ics, s = self._rtas_source(irq)
        return ics.server[s], ics.priority[s]

    def int_off(self, irq: int) -> None:
        """`kvmppc_xive_int_off`: masked, the current priority saved."""
        ics, s = self._rtas_source(irq)
        ics.write_xive(s, ics.server[s], 0xFF, ics.priority[s])

    def int_on(self, irq: int) -> None:
        """`kvmppc_xive_int_on`: the saved priority back."""
        ics, s = self._rtas_source(irq)
        ics.write_xive(s, ics.server[s], ics.saved_priority[s], ics.saved_priority[s])

    # --- release ------------------------------------------------------------------------------------------

    def release(self) -> None:
        """`kvmppc_xive_release`: every presenter cleaned up, sources and VP block freed; the VM can create
        another XIVE-backed device."""
        for v in self.vm.vcpus:
            self.cleanup_vcpu(v)
        if self.vm.xive is self:
            self.vm.xive = None
        self.blocks.clear()
        self.ipis.clear()
        self.src_count = 0
        if self.vp_base is not None:
            self.host.free_vp_block(self.vp_base)
            self.vp_base = None

    # --- inspection ---------------------------------------------------------------------------------------

    def describe(self) -> str:
        out = [
            f"{self.name} fd {self.fd}: {self.src_count} sources, nr_servers {self.nr_servers}, "
            f"vp_base {self.vp_base if self.vp_base is None else hex(self.vp_base)}"
        ]
        for v in self.vm.vcpus:
            xc = self._xc(v)
            if xc is not None:
                i = xc.icp
                out.append(f"  vcpu {v.index} server {xc.server_num} vp {xc.vp_id:#x} XIRR={i.xirr:08x} "
                           f"PP={i.pending_priority:02x} MFRR={i.mfrr:02x} output={int(i.output)}")
        for ics in self.blocks.ordered:
            for s in range(ics.nr_irqs):
                if ics.flags[s] & XICS_FLAGS_IRQ_MASK:
                    out.append(f"  source {ics.offset + s:#x} {'LSI' if ics.flags[s] & XICS_FLAGS_IRQ_LSI else 'MSI'}"
                               f" server {ics.server[s]} prio {ics.priority[s]:02x} "
                               f"saved {ics.saved_priority[s]:02x} status {ics.status[s]:02x}")
        return "\n".join(out)
