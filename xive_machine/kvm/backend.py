"""The sPAPR XIVE controller backed by the KVM XIVE-native device model, driven as QEMU's spapr_xive_kvm.c does.

`KvmSpaprXive` is `SpaprXive` (QEMU keeps the same object, EAT and ENDT under KVM) whose data path lives in
the device: ESB and TIMA accesses go to the device's mmap'd pages (faulted in on first touch), device lines
become stores to the trigger pages, and the hcalls that change routing are mirrored into device attributes:

    H_INT_SET_SOURCE_CONFIG -> KVM_DEV_XIVE_GRP_SOURCE_CONFIG   (kvmppc_xive_set_source_config)
    H_INT_SET_QUEUE_CONFIG  -> KVM_DEV_XIVE_GRP_EQ_CONFIG set   (kvmppc_xive_set_queue_config)
    H_INT_GET_QUEUE_CONFIG  <- KVM_DEV_XIVE_GRP_EQ_CONFIG get   (kvmppc_xive_get_queue_config)
    H_INT_SYNC              -> KVM_DEV_XIVE_GRP_SOURCE_SYNC     (kvmppc_xive_sync_source)
    H_INT_RESET             -> KVM_DEV_XIVE_RESET               (kvmppc_xive_reset)
    H_INT_ESB               -> the ESB mapping                  (kvmppc_xive_esb_rw)

The hcall handlers are the shared ones of `xive_machine.hcalls.xive`; the mirroring is one wrapper per
routing hcall (`KVM_XIVE_HCALLS`), the place QEMU writes `if (spapr_xive_in_kernel(xive))`. A device error
becomes H_HARDWARE and the tables are left as they were, as in QEMU.

Deliberate differences from QEMU 7.2, chosen so both backends answer the same: SET_SOURCE_CONFIG with
priority 0xFF is mirrored too (QEMU skips it, leaving KVM routing to the old queue); an LSI line going low
does not trigger (QEMU stores to the trigger page on every level change); H_INT_RESET also turns every
claimed source off (PQ 01) as the emulated controller does; the LSI load-EOI answers 1 when it re-fired.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
from collections.abc import Callable
from typing import Any

from xive_machine.errors import ConfigError, KvmError
from xive_machine.hcalls.codes import H, Op
from xive_machine.hcalls.registry import HcallSpec, HcallTable
from xive_machine.hcalls.xive import XIVE_HCALLS
from xive_machine.intc.xive.regs import (
    EAS_END_DATA_MASK,
    EAS_END_INDEX_MASK,
    EAS_END_INDEX_SHIFT,
    EAS_MASKED,
    EAS_VALID,
    END_W0_ENQUEUE,
    END_W0_QSIZE_MASK,
    END_W0_QSIZE_SHIFT,
    END_W0_UCOND_NOTIFY,
    END_W0_VALID,
    END_W1_GENERATION,
    END_W1_PAGE_OFF_MASK,
    END_W1_PAGE_OFF_SHIFT,
    END_WORDS,
    SPAPR_XIVE_NR_IRQS,
    TM_REGION_SIZE,
    XIVE_ESB_GET,
    XIVE_ESB_LOAD_EOI,
    XIVE_ESB_OFF,
    XIVE_ESB_RESET,
    XIVE_ESB_SET_PQ_00,
    XIVE_STATUS_ASSERTED,
)
from xive_machine.intc.xive.router import end_qaddr
from xive_machine.intc.xive.source import XiveSource, size_mask
from xive_machine.intc.xive.spapr import STATE_VERSION, EqView, SourceView, SpaprXive, SpaprXiveState
from xive_machine.intc.xive.tctx import XiveTCTX
from xive_machine.kvm.device import DeviceMapping, VmFault
from xive_machine.kvm.uapi import (
    KVM_CAP_PPC_IRQ_XIVE,
    KVM_DEV_TYPE_XIVE,
    KVM_DEV_XIVE_EQ_SYNC,
    KVM_DEV_XIVE_GRP_CTRL,
    KVM_DEV_XIVE_GRP_EQ_CONFIG,
    KVM_DEV_XIVE_GRP_SOURCE,
    KVM_DEV_XIVE_GRP_SOURCE_CONFIG,
    KVM_DEV_XIVE_GRP_SOURCE_SYNC,
    KVM_DEV_XIVE_NR_SERVERS,
    KVM_DEV_XIVE_RESET,
    KVM_REG_PPC_VP_STATE,
    KVM_XIVE_EQ_ALWAYS_NOTIFY,
    KVM_XIVE_ESB_PAGE_OFFSET,
    KVM_XIVE_TIMA_PAGE_OFFSET,
    KvmPpcVpState,
    eq_id,
    source_config,
    source_state,
    xive_eq,
    xive_eq_decode,
)
from xive_machine.kvm.vm import KvmVm, vm_of
from xive_machine.kvm.xive_native import KvmXiveNative

_MGMT = 1 << 16  # odd page of a source's pair
_GEN_IDX = END_W1_GENERATION | (END_W1_PAGE_OFF_MASK << END_W1_PAGE_OFF_SHIFT)
_ALL_ONES = 0xFFFFFFFFFFFFFFFF
KVM_CONNECT_W01 = 0x00000000FF000000  # OS ring words 0-1 after connect_vcpu (ACK# = 0xFF)
TCG_RESET_W01 = 0x000000FFFF00FFFF  # QEMU xive_tctx_reset: LSMFB, ACK#, AGE, PIPR = 0xFF


class KvmXiveSource(XiveSource):
    """QEMU's XiveSource under KVM: LSI flags and line levels kept here, PQ lives in the device's ESB pages."""

    def __init__(self, nr_irqs: int, owner: KvmSpaprXive) -> None:
        super().__init__(nr_irqs, owner._no_route)
        self.owner = owner

    def _claimed(self, srcno: int) -> bool:
        """The source lives in the device (claimed, device connected); else QEMU's status byte holds PQ."""
        return (
            self.owner.esb_map is not None
            and 0 <= srcno < self.nr_irqs
            and bool(self.owner.router.eat[srcno] & EAS_VALID)
        )

    # -- ESB accesses: the device mapping (kvmppc_xive_esb_rw) ----------------------------------------------

    def esb_read(self, offset: int, size: int) -> int:
        srcno = offset >> self.esb_shift
        if offset & self.mgmt_bit and (offset & 0xFFF) < 0x800 and 0 <= srcno < self.nr_irqs and self.lsi[srcno]:
            return self._lsi_load_eoi(srcno)
        return self.owner.esb_load(offset, size)

    def esb_write(self, offset: int, size: int, value: int) -> None:
        self.owner.esb_store(offset, size, value)

    def _lsi_load_eoi(self, srcno: int) -> int:
        """QEMU's LSI EOI under KVM: PQ 00 through the ESB, then re-trigger if the line is still asserted."""
        self.owner.esb_load(self.esb_mgmt(srcno) + XIVE_ESB_SET_PQ_00, 8)
        if self.status[srcno] & XIVE_STATUS_ASSERTED:
            self.owner.esb_store(self.esb_page(srcno), 8, 0)
            return 1
        return 0

    # -- PQ operations --------------------------------------------------------------------------------------

    def get_pq(self, srcno: int) -> int:
        if not self._claimed(srcno):
            return self.status[srcno] & 3
        return self.owner.esb_load(self.esb_mgmt(srcno) + XIVE_ESB_GET, 8) & 3

    def set_pq(self, srcno: int, pq: int) -> int:
        if not self._claimed(srcno):
            return super().set_pq(srcno, pq)
        return self.owner.esb_load(self.esb_mgmt(srcno) + XIVE_ESB_SET_PQ_00 + ((pq & 3) << 8), 8) & 3

    def trigger(self, srcno: int) -> bool:
        fwd = self.get_pq(srcno) == XIVE_ESB_RESET
        self.owner.esb_store(self.esb_page(srcno), 8, 0)
        return fwd

    def eoi(self, srcno: int) -> bool:
        return bool(self.esb_read(self.esb_mgmt(srcno) + XIVE_ESB_LOAD_EOI, 8) & 1)

    def lsi_trigger(self, srcno: int) -> bool:
        self.status[srcno] |= XIVE_STATUS_ASSERTED
        return self.trigger(srcno)

    def set_irq(self, srcno: int, level: bool) -> None:
        """`kvmppc_xive_source_set_irq`: an MSI edge or an LSI level becomes a store to the trigger page."""
        if self.lsi[srcno]:
            if not level:
                self.status[srcno] &= ~XIVE_STATUS_ASSERTED & 0xFF
                return
            self.status[srcno] |= XIVE_STATUS_ASSERTED
        elif not level:
            return
        self.owner.esb_store(self.esb_page(srcno), 8, 0)

    def reset(self) -> None:
        """Line levels forgotten; PQ is reset by the device (GRP_SOURCE puts 01)."""
        super().reset()

    def describe_source(self, srcno: int) -> str:
        pq = self.get_pq(srcno)
        kind = "LSI" if self.lsi[srcno] else "MSI"
        return f"{kind} PQ={(pq >> 1) & 1}{pq & 1}" + (" asserted" if self.asserted(srcno) else "")


class KvmEqView(EqView):
    """An EqView whose producer index and toggle are fetched from the device (GRP_EQ_CONFIG get)."""

    def __init__(self, xive: KvmSpaprXive, server: int, prio: int) -> None:
        super().__init__(xive, server, prio)
        self._xive = xive

    def _w(self, i: int) -> int:
        if i == 1:
            self._xive.sync_end(self.end_idx)
        return super()._w(i)


class KvmSpaprXive(SpaprXive):
    """`spapr-xive` with the in-kernel XIVE (QEMU `kernel_irqchip=on`). Implements InterruptController."""

    name = "xive"

    def __init__(
        self,
        vm: KvmVm,
        nr_servers: int,
        line: Callable[[int, bool], None],
        nr_irqs: int = SPAPR_XIVE_NR_IRQS,
        *,
        tcg_ring_reset: bool = False,
        **kw: Any,
    ) -> None:
        """`tcg_ring_reset`: after connecting a vCPU, load QEMU TCG's reset OS ring (LSMFB/ACK#/AGE/PIPR 0xFF)
        through KVM_REG_PPC_VP_STATE, so raw TIMA reads match the emulated controller; KVM itself starts
        with only ACK# = 0xFF (`kvmppc_xive_native_connect_vcpu`), which is the default here."""
        if kw.pop("end_esb_mmio", False):
            raise ConfigError("XIVE: END ESB pages are not supported with the KVM device")
        self.vm = vm
        self.tcg_ring_reset = tcg_ring_reset
        self.dev: KvmXiveNative | None = None
        super().__init__(vm.ram, nr_servers, line, nr_irqs, **kw)
        old = self.xsrc
        self.xsrc = KvmXiveSource(nr_irqs, self)
        self.xsrc.lsi[:] = old.lsi
        self.active: set[int] = set()
        self.esb_map: DeviceMapping | None = None
        self.tima_map: DeviceMapping | None = None

    @property
    def trace(self) -> Any:
        return self._trace

    @trace.setter
    def trace(self, sink: Any) -> None:
        SpaprXive.trace.fset(self, sink)  # type: ignore[attr-defined]
        dev = self.dev
        if dev is not None:
            dev.trace = sink
            dev.presenter.trace = sink
            if dev.router is not None:
                dev.router.trace = sink

    # --- kvmppc_xive_connect / disconnect ------------------------------------------------------------------

    def _connect(self) -> None:
        """`kvmppc_xive_connect`: create the device, size the VP block, map ESB and TIMA, init the sources."""
        vm = self.vm
        if not vm.check_extension(KVM_CAP_PPC_IRQ_XIVE):
            raise ConfigError("XIVE: KVM_CAP_PPC_IRQ_XIVE not supported by the host")
        try:
            dev = vm.create_device(KVM_DEV_TYPE_XIVE)
            assert isinstance(dev, KvmXiveNative)
            self.dev = dev
            dev.trace = dev.presenter.trace = self._trace
            if dev.has_attr(KVM_DEV_XIVE_GRP_CTRL, KVM_DEV_XIVE_NR_SERVERS):
                dev.set_attr(KVM_DEV_XIVE_GRP_CTRL, KVM_DEV_XIVE_NR_SERVERS, self.nr_servers)
            self.esb_map = dev.mmap(KVM_XIVE_ESB_PAGE_OFFSET, self.xsrc.window_size)
            self.tima_map = dev.mmap(KVM_XIVE_TIMA_PAGE_OFFSET, TM_REGION_SIZE)
            for lisn in range(self.nr_irqs):
                if self.router.eat[lisn] & EAS_VALID:
                    self._source_reset_one(lisn)
                    # the PQ QEMU holds goes back into the ESB (its change-state handler at VM run)
                    self.xsrc.set_pq(lisn, self.xsrc.status[lisn] & 3)
        except KvmError as err:
            self._disconnect()
            raise ConfigError(f"XIVE: cannot set up the KVM device: {err}") from None

    def _push_server(self, server: int) -> None:
        """A vCPU just connected: routing QEMU's tables already hold for it (a re-activation) goes to KVM,
        its queues first, then the sources that target them."""
        for end_idx in range(server << 3, (server + 1) << 3):
            if self.router.endt[end_idx * END_WORDS] & END_W0_VALID:
                try:
                    self.push_queue_config(end_idx)
                except KvmError as err:
                    self.note("END not accepted by KVM", end=end_idx, why=str(err))
        for lisn in range(self.nr_irqs):
            eas = self.router.eat[lisn]
            if (
                eas & EAS_VALID
                and not eas & EAS_MASKED
                and ((eas >> EAS_END_INDEX_SHIFT) & EAS_END_INDEX_MASK) >> 3 == server
            ):
                try:
                    self.push_source_config(lisn)
                except KvmError as err:
                    self.note("EAS not accepted by KVM", lisn=lisn, why=str(err))

    def _disconnect(self) -> None:
        """`kvmppc_xive_disconnect`: unmap ESB and TIMA, close the fd (the device is then released). QEMU's
        tables stay: a later activation connects a new device and pushes them."""
        dev = self.dev
        if dev is None:
            return
        self._sync_ends()  # queue positions, as QEMU's pre_save
        st = self.xsrc.status
        for lisn in range(self.nr_irqs):
            if self.router.eat[lisn] & EAS_VALID and self.esb_map is not None:
                st[lisn] = (st[lisn] & 0xFC) | self.xsrc.get_pq(lisn)  # PQ saved as at a VM stop
        for m in (self.esb_map, self.tima_map):
            if m is not None:
                m.munmap()
        self.esb_map = self.tima_map = None
        if dev.fd_open:
            dev.close()
        self.dev = None
        self.active.clear()

    def close(self) -> None:
        """The controller is dropped (machine reset): the device goes with it."""
        self._disconnect()

    def _source_reset_one(self, lisn: int) -> None:
        """`kvmppc_xive_source_reset_one`: GRP_SOURCE with the LSI and asserted bits."""
        assert self.dev is not None
        self.dev.set_attr(
            KVM_DEV_XIVE_GRP_SOURCE, lisn, source_state(bool(self.xsrc.lsi[lisn]), self.xsrc.asserted(lisn))
        )

    def _no_route(self, lisn: int) -> None:  # the device routes; nothing reaches QEMU's router
        self.note("event routed outside the device", lisn=lisn)

    # --- data path: the device mappings --------------------------------------------------------------------

    def esb_load(self, offset: int, size: int) -> int:
        m = self.esb_map
        if m is None:
            return size_mask(size) or _ALL_ONES
        try:
            return m.load(offset, size)
        except VmFault as err:
            self.note("ESB access faulted (SIGBUS)", offset=offset, why=str(err))
            return size_mask(size) or _ALL_ONES

    def esb_store(self, offset: int, size: int, value: int) -> None:
        m = self.esb_map
        if m is None:
            return
        try:
            m.store(offset, size, value)
        except VmFault as err:
            self.note("ESB store faulted (SIGBUS)", offset=offset, why=str(err))

    def mmio_windows(self) -> list[Any]:
        """The ESB and TIMA windows at QEMU's addresses, served by the device's mappings (QEMU overlays the
        mmap'd regions on its MemoryRegions). Asking for them activates the device (`spapr_xive_activate`)."""
        from xive_machine.machine.irq import MmioWindow

        if self.dev is None:
            self._connect()
        note = self.note

        def esb_read(cpu: int, offset: int, size: int) -> int:
            m = self.esb_map
            try:
                if m is not None:
                    return m.load(offset, size, cpu)
            except VmFault as err:
                note("ESB access faulted (SIGBUS)", cpu=cpu, offset=offset, why=str(err))
            return size_mask(size) or _ALL_ONES

        def esb_write(cpu: int, offset: int, size: int, value: int) -> None:
            m = self.esb_map
            try:
                if m is not None:
                    m.store(offset, size, value, cpu)
            except VmFault as err:
                note("ESB store faulted (SIGBUS)", cpu=cpu, offset=offset, why=str(err))

        return [
            MmioWindow("esb", self.vc_base, self.xsrc.window_size, esb_read, esb_write),
            MmioWindow("tima", self.tm_base, TM_REGION_SIZE, self.tm_read, self.tm_write),
        ]

    def tm_read(self, cpu: int, offset: int, size: int) -> int:
        m = self.tima_map
        try:
            if m is not None:
                return m.load(offset, size, cpu)
        except VmFault as err:
            self.note("TIMA access faulted (SIGBUS)", cpu=cpu, offset=offset, why=str(err))
        return size_mask(size) or _ALL_ONES

    def tm_write(self, cpu: int, offset: int, size: int, value: int) -> None:
        m = self.tima_map
        try:
            if m is not None:
                m.store(offset, size, value, cpu)
        except VmFault as err:
            self.note("TIMA store faulted (SIGBUS)", cpu=cpu, offset=offset, why=str(err))

    # --- hcall side: mirror the QEMU tables into the device ---------------------------------------------------

    def hcall_tables(self) -> list[tuple[Any, object]]:
        return [(KVM_XIVE_HCALLS, self)]

    def push_source_config(self, lisn: int) -> None:
        """`kvmppc_xive_set_source_config`: the EAS as (server, priority, masked, EISN)."""
        assert self.dev is not None
        eas = self.router.eat[lisn]
        end_idx = (eas >> EAS_END_INDEX_SHIFT) & EAS_END_INDEX_MASK  # spapr_xive_end_to_target
        word = source_config(end_idx >> 3, end_idx & 7, bool(eas & EAS_MASKED), eas & EAS_END_DATA_MASK)
        self.dev.set_attr(KVM_DEV_XIVE_GRP_SOURCE_CONFIG, lisn, word)

    def push_queue_config(self, end_idx: int) -> None:
        """`kvmppc_xive_set_queue_config`: the END as a `struct kvm_ppc_xive_eq`."""
        assert self.dev is not None
        w = self.router.end_words(end_idx)
        flags = KVM_XIVE_EQ_ALWAYS_NOTIFY if w[0] & END_W0_UCOND_NOTIFY else 0
        if w[0] & END_W0_ENQUEUE:
            raw = xive_eq(
                flags=flags,
                qshift=((w[0] >> END_W0_QSIZE_SHIFT) & END_W0_QSIZE_MASK) + 12,
                qaddr=end_qaddr(w[2], w[3]),
                qtoggle=1 if w[1] & END_W1_GENERATION else 0,
                qindex=(w[1] >> END_W1_PAGE_OFF_SHIFT) & END_W1_PAGE_OFF_MASK,
            )
        else:
            raw = xive_eq(flags=flags)
        self.dev.set_attr(KVM_DEV_XIVE_GRP_EQ_CONFIG, eq_id(end_idx >> 3, end_idx & 7), raw)

    def sync_end(self, end_idx: int) -> None:
        """`kvmppc_xive_get_queue_config`: refresh END w1 (generation, index) from the device."""
        w = self.router.endt
        base = end_idx * END_WORDS
        if self.dev is None or not (w[base] & END_W0_VALID and w[base] & END_W0_ENQUEUE):
            return
        eq = xive_eq_decode(self.dev.get_attr(KVM_DEV_XIVE_GRP_EQ_CONFIG, eq_id(end_idx >> 3, end_idx & 7)))
        if not eq["qshift"]:
            return
        w1 = w[base + 1] & ~_GEN_IDX & 0xFFFFFFFF
        w1 |= (END_W1_GENERATION if eq["qtoggle"] & 1 else 0) | (
            (eq["qindex"] & END_W1_PAGE_OFF_MASK) << END_W1_PAGE_OFF_SHIFT
        )
        w[base + 1] = w1

    def sync_source(self, lisn: int) -> None:
        assert self.dev is not None
        self.dev.set_attr(KVM_DEV_XIVE_GRP_SOURCE_SYNC, lisn)

    def int_reset(self) -> None:
        """H_INT_RESET: QEMU's tables reset, then KVM_DEV_XIVE_RESET; every claimed source off (PQ 01)."""
        super().int_reset()
        if self.dev is None:
            return
        self.dev.set_attr(KVM_DEV_XIVE_GRP_CTRL, KVM_DEV_XIVE_RESET)
        for lisn in range(self.nr_irqs):
            if self.router.eat[lisn] & EAS_VALID:
                self.xsrc.set_pq(lisn, XIVE_ESB_OFF)

    # --- InterruptController protocol -----------------------------------------------------------------------

    def claim_irq(self, lisn: int, lsi: bool) -> None:
        super().claim_irq(lisn, lsi)
        if self.dev is not None:
            try:
                self._source_reset_one(lisn)
            except KvmError as err:
                self.router.eat[lisn] = 0
                raise ConfigError(f"XIVE: KVM refused source {lisn:#x}: {err}") from None

    def free_irq(self, lisn: int) -> None:
        if 0 <= lisn < self.nr_irqs and self.router.eat[lisn] & EAS_VALID and self.dev is not None:
            self.xsrc.set_pq(lisn, XIVE_ESB_OFF)
            self.dev.set_attr(KVM_DEV_XIVE_GRP_SOURCE_CONFIG, lisn, source_config(0, 0, True, 0))
        super().free_irq(lisn)

    def trigger(self, lisn: int) -> bool:
        if not 0 <= lisn < self.nr_irqs:
            self.note("trigger of an out-of-range LISN", lisn=lisn)
            return False
        return self.xsrc.trigger(lisn)

    def connect_cpu(self, cpu: int) -> None:
        """`kvmppc_xive_cpu_connect`: KVM_ENABLE_CAP(KVM_CAP_PPC_IRQ_XIVE, fd, vcpu id) once per vCPU; a
        vCPU parked by `disconnect_cpu` gets its context pushed back."""
        if self.dev is None:
            self._connect()
        assert self.dev is not None
        vcpu = self.vm.vcpus[cpu]
        fresh = vcpu.xive_vcpu is None
        if vcpu.xive_vcpu is None:
            try:
                vcpu.enable_cap(KVM_CAP_PPC_IRQ_XIVE, (self.dev.fd, vcpu.vcpu_id))
            except KvmError as err:
                hint = " (try a smaller -smp maxcpus)" if err.errno == errno.ENOSPC else ""
                raise ConfigError(f"XIVE: vCPU {cpu} cannot connect to the KVM device: {err}{hint}") from None
            if self.tcg_ring_reset:
                self._set_vp(cpu, TCG_RESET_W01)
        else:
            vcpu.push()
        self.active.add(cpu)
        if fresh:
            self._push_server(vcpu.vcpu_id)

    def disconnect_cpu(self, cpu: int) -> None:
        """A parked vCPU keeps its VP in KVM, its context pulled (events go to the NVT backlog); when the last
        one goes the controller is being deactivated and the device is disconnected (QEMU
        `spapr_xive_deactivate`)."""
        if cpu in self.active:
            self.active.discard(cpu)
            self.vm.vcpus[cpu].pull()
            if not self.active:
                self._disconnect()

    def reset(self) -> None:
        """Machine reset: tables reset, KVM_DEV_XIVE_RESET, sources re-initialised (PQ 01), VP states reset."""
        self.xsrc.reset()
        self._reset_tables()
        if self.dev is None:
            return
        self.dev.set_attr(KVM_DEV_XIVE_GRP_CTRL, KVM_DEV_XIVE_RESET)
        for lisn in range(self.nr_irqs):
            if self.router.eat[lisn] & EAS_VALID:
                self._source_reset_one(lisn)
        for cpu in sorted(self.active):
            self._set_vp(cpu, TCG_RESET_W01 if self.tcg_ring_reset else KVM_CONNECT_W01)

    def _set_vp(self, cpu: int, w01: int) -> None:
        vcpu = self.vm.vcpus[cpu]
        vcpu.pull()
        vcpu.set_one_reg(KVM_REG_PPC_VP_STATE, KvmPpcVpState.build(dict(w01=w01, unused=0)))
        vcpu.push()

    # --- migration (QEMU pre_save / post_load) -------------------------------------------------------------

    def get_state(self) -> SpaprXiveState:
        """The same state object as the emulated controller: PQ read through the ESB, EQ_SYNC, END w1 from
        GRP_EQ_CONFIG, OS ring from KVM_REG_PPC_VP_STATE."""
        status = bytearray(self.xsrc.status)
        for lisn in range(self.nr_irqs):
            if self.router.eat[lisn] & EAS_VALID:
                status[lisn] = (status[lisn] & ~3 & 0xFF) | self.xsrc.get_pq(lisn)
        tctx: list[tuple[int, bytes]] = []
        if self.dev is not None:
            self.dev.set_attr(KVM_DEV_XIVE_GRP_CTRL, KVM_DEV_XIVE_EQ_SYNC)
            for end_idx in range(self.nr_ends):
                self.sync_end(end_idx)
            for cpu in sorted(self.active):
                raw = self.vm.vcpus[cpu].get_one_reg(KVM_REG_PPC_VP_STATE)
                t = XiveTCTX(cpu, lambda c, lv: None)
                t.reset(self.os_cam(cpu))
                t.regs[0x10:0x18] = KvmPpcVpState.parse(raw).w01.to_bytes(8, "big")
                tctx.append((cpu, bytes(t.regs)))
        return SpaprXiveState(
            version=STATE_VERSION,
            nr_irqs=self.nr_irqs,
            nr_servers=self.nr_servers,
            status=bytes(status),
            lsi=bytes(self.xsrc.lsi),
            eat=tuple(self.router.eat),
            endt=tuple(self.router.endt),
            tctx=tuple(tctx),
        )

    def set_state(self, state: SpaprXiveState) -> None:
        """`kvmppc_xive_post_load`: EQs first, then every valid source (GRP_SOURCE + SOURCE_CONFIG), the
        VP states, and the saved PQ written back through the ESB."""
        if state.version != STATE_VERSION:
            raise ConfigError(f"XIVE state version {state.version}, expected {STATE_VERSION}")
        if (
            (state.nr_irqs, state.nr_servers) != (self.nr_irqs, self.nr_servers)
            or (len(state.status), len(state.lsi), len(state.eat), len(state.endt))
            != (self.nr_irqs, self.nr_irqs, self.nr_irqs, self.nr_ends * END_WORDS)
            or any(len(regs) != 64 for _, regs in state.tctx)
        ):
            raise ConfigError("XIVE state does not fit this machine")
        self.xsrc.status[:] = state.status
        self.xsrc.lsi[:] = state.lsi
        self.router.eat.assign(e & _ALL_ONES for e in state.eat)
        self.router.endt.assign(w & 0xFFFFFFFF for w in state.endt)
        if self.dev is None:
            return
        try:
            for cpu, _ in state.tctx:
                if cpu not in self.active:
                    self.connect_cpu(cpu)
            for end_idx in range(self.nr_ends):
                if self.router.endt[end_idx * END_WORDS] & END_W0_VALID:
                    self.push_queue_config(end_idx)
            for lisn in range(self.nr_irqs):
                if self.router.eat[lisn] & EAS_VALID:
                    self._source_reset_one(lisn)
                    self.push_source_config(lisn)
            for cpu, regs in state.tctx:
                self._set_vp(cpu, int.from_bytes(regs[0x10:0x18], "big"))
            for lisn in range(self.nr_irqs):
                if self.router.eat[lisn] & EAS_VALID:
                    self.xsrc.set_pq(lisn, state.status[lisn] & 3)
        except KvmError as err:
            raise ConfigError(f"XIVE: KVM refused the restored state: {err}") from None

    # --- inspection ---------------------------------------------------------------------------------------

    def source(self, lisn: int) -> SourceView:
        return dataclasses.replace(super().source(lisn), pq=self.xsrc.get_pq(lisn))

    def eq(self, server: int, prio: int) -> EqView:
        if not 0 <= server < self.nr_servers or not 0 <= prio <= 7:
            raise ValueError(f"no EQ for server {server} prio {prio}")
        return KvmEqView(self, server, prio)

    def thread_context(self, cpu: int) -> XiveTCTX:
        if self.dev is None:
            raise KeyError(cpu)
        return self.dev.presenter.tctxs[cpu]

    def _sync_ends(self) -> None:
        for end_idx in range(self.nr_ends):
            try:
                self.sync_end(end_idx)
            except KvmError as err:
                self.note("END position not readable from KVM", end=end_idx, why=str(err))

    def describe(self) -> str:
        self._sync_ends()
        out = super().describe()
        return out + ("\n" + self.dev.describe() if self.dev is not None else "\n(KVM device closed)")


# --------------------------------------------------------------------------------------------------------
# the hcall table: the shared handlers, with the KVM mirror around the routing hcalls


def _hardware(why: KvmError) -> tuple[int, ...]:
    return (H.HARDWARE,)


def _mirror_set_source_config(fn: Callable[..., tuple[int, ...]]) -> Callable[..., tuple[int, ...]]:
    @functools.wraps(fn)
    def h(xive: KvmSpaprXive, cpu: int, flags: int, lisn: int, target: int, priority: int, eisn: int):
        old = xive.router.eat[lisn] if 0 <= lisn < xive.nr_irqs else None
        res = fn(xive, cpu, flags, lisn, target, priority, eisn)
        if res[0] == H.SUCCESS and old is not None:
            try:
                xive.push_source_config(lisn)
            except KvmError as err:
                xive.router.eat[lisn] = old
                return _hardware(err)
        return res

    return h


def _mirror_set_queue_config(fn: Callable[..., tuple[int, ...]]) -> Callable[..., tuple[int, ...]]:
    @functools.wraps(fn)
    def h(xive: KvmSpaprXive, cpu: int, flags: int, target: int, priority: int, qpage: int, qsize: int):
        end_idx = None if xive.priority_is_reserved(priority) else xive.target_to_end(target, priority)
        old = xive.router.end_words(end_idx) if end_idx is not None else None
        res = fn(xive, cpu, flags, target, priority, qpage, qsize)
        if res[0] == H.SUCCESS and end_idx is not None and old is not None:
            try:
                xive.push_queue_config(end_idx)
            except KvmError as err:
                xive.router.set_end_words(end_idx, old)
                return _hardware(err)
        return res

    return h


def _mirror_get_queue_config(fn: Callable[..., tuple[int, ...]]) -> Callable[..., tuple[int, ...]]:
    @functools.wraps(fn)
    def h(xive: KvmSpaprXive, cpu: int, flags: int, target: int, priority: int):
        end_idx = None if xive.priority_is_reserved(priority) else xive.target_to_end(target, priority)
        if end_idx is not None and not flags & ~1:
            try:
                xive.sync_end(end_idx)
            except KvmError as err:
                return _hardware(err)
        return fn(xive, cpu, flags, target, priority)

    return h


def _mirror_sync(fn: Callable[..., tuple[int, ...]]) -> Callable[..., tuple[int, ...]]:
    @functools.wraps(fn)
    def h(xive: KvmSpaprXive, cpu: int, flags: int, lisn: int):
        res = fn(xive, cpu, flags, lisn)
        if res[0] == H.SUCCESS:
            try:
                xive.sync_source(lisn)
            except KvmError as err:
                return _hardware(err)
        return res

    return h


def _mirror_reset(fn: Callable[..., tuple[int, ...]]) -> Callable[..., tuple[int, ...]]:
    @functools.wraps(fn)
    def h(xive: KvmSpaprXive, cpu: int, flags: int):
        try:
            return fn(xive, cpu, flags)
        except KvmError as err:
            return _hardware(err)

    return h


_MIRRORS = {
    Op.H_INT_SET_SOURCE_CONFIG: _mirror_set_source_config,
    Op.H_INT_SET_QUEUE_CONFIG: _mirror_set_queue_config,
    Op.H_INT_GET_QUEUE_CONFIG: _mirror_get_queue_config,
    Op.H_INT_SYNC: _mirror_sync,
    Op.H_INT_RESET: _mirror_reset,
}


def _kvm_table() -> HcallTable:
    table = HcallTable("xive-kvm")
    for op, spec in XIVE_HCALLS.specs.items():
        wrap = _MIRRORS.get(op)
        fn = wrap(spec.fn) if wrap is not None else spec.fn
        table.specs[op] = HcallSpec(op, spec.name, spec.nargs, fn, spec.gate)
    return table


KVM_XIVE_HCALLS = _kvm_table()
"""XIVE_HCALLS with the device mirror around SET_SOURCE_CONFIG, SET/GET_QUEUE_CONFIG, SYNC and RESET."""


def make_kvm_xive(machine: Any, *, tcg_ring_reset: bool = False) -> KvmSpaprXive:
    """The `--irqchip kvm` XIVE controller of `machine` (`.ram`, `.nr_cpus`, `.irq_line`). The VM outlives
    controller switches (CAS, reset) and is kept on the machine as `machine.kvm_vm`. The device itself is
    created when the controller is activated (its windows asked for, or a vCPU connected) and released when
    the last vCPU is disconnected or the controller closed."""
    return KvmSpaprXive(vm_of(machine), machine.nr_cpus, machine.irq_line, tcg_ring_reset=tcg_ring_reset)


__all__ = ["KVM_XIVE_HCALLS", "KvmEqView", "KvmSpaprXive", "KvmXiveSource", "make_kvm_xive"]
