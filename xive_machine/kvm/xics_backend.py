"""The sPAPR XICS controller backed by the KVM XICS-on-XIVE device model, driven as QEMU's xics_kvm.c does.

`KvmSpaprXics` is `SpaprXics` (QEMU keeps its ICS and ICP objects under KVM) whose live state is in the
device. QEMU's objects become copies, synchronised through the uAPI when QEMU does it:

    activation   `xics_kvm_connect`: KVM_CAP_IRQ_XICS; the four RTAS tokens defined in the kernel
                 (KVM_PPC_RTAS_DEFINE_TOKEN); KVM_CREATE_DEVICE(KVM_DEV_TYPE_XICS); CTRL/NR_SERVERS; per vCPU
                 KVM_ENABLE_CAP(KVM_CAP_IRQ_XICS, fd, vcpu id); GRP_SOURCES for every claimed source;
                 KVM_SET_ONE_REG(ICP_STATE) for every vCPU
    running      H_CPPR, H_EOI, H_XIRR, H_XIRR_X, H_IPI, H_IPOLL and ibm,set-xive/get-xive/int-on/int-off are
                 answered by the kernel; QEMU's handlers only see them when the kernel hands them back (a vCPU
                 not in XICS mode, no token defined), and then answer as the emulated XICS does. Device lines
                 are KVM_IRQ_LINE. A claim sets its source (GRP_SOURCES).
    save, show   GRP_SOURCES get per claimed source, ICP_STATE get per vCPU (`ics/icp_get_kvm_state`)
    restore      GRP_SOURCES set, then ICP_STATE set (`ics/icp_set_kvm_state`)
    deactivation `xics_kvm_disconnect`: the fd closed (the device is released, every presenter cleared) and
                 the tokens removed. The sources are read back first, so nothing pending is lost when the
                 device goes at the CAS switch and a later activation (reset, or the reverse switch) pushes
                 them again; QEMU skips that read.

Deliberate differences from QEMU 7.2, chosen so both backends answer the same: an MSI line going low is
passed to KVM_IRQ_LINE as UNSET (QEMU makes no ioctl; the kernel ignores it) so the trace shows the same
line events; a claim pushes the source as QEMU's ICS holds it (QEMU first resets its priorities to 0xFF); a
vCPU disconnected while others stay gets its kernel presenter reset (QEMU keeps it as it was).
"""

from __future__ import annotations

import errno
import functools
from collections.abc import Callable
from typing import Any

from xive_machine.errors import ConfigError, KvmError
from xive_machine.firmware.rtas import RTAS_TOKENS, RtasSpec, RtasTable
from xive_machine.hcalls.registry import HcallSpec, HcallTable
from xive_machine.hcalls.xics import XICS_HCALLS
from xive_machine.intc.xics.ics import XICS_FLAGS_IRQ_LSI, XICS_FLAGS_IRQ_MASK
from xive_machine.intc.xics.spapr import XICS_RTAS, SpaprXics, XicsState
from xive_machine.kvm.rtas import KERNEL_RTAS
from xive_machine.kvm.uapi import (
    KVM_CAP_IRQ_XICS,
    KVM_DEV_TYPE_XICS,
    KVM_DEV_XICS_GRP_CTRL,
    KVM_DEV_XICS_GRP_SOURCES,
    KVM_DEV_XICS_NR_SERVERS,
    KVM_INTERRUPT_SET,
    KVM_INTERRUPT_SET_LEVEL,
    KVM_INTERRUPT_UNSET,
    KVM_REG_PPC_ICP_STATE,
    HostU64,
    icp_state,
)
from xive_machine.kvm.vm import KvmVm, vm_of
from xive_machine.kvm.xics_on_xive import KvmXicsOnXive
from xive_machine.kvm.xics_state import icp_word, load_icp_word, load_source_word, source_word

ICP_START = icp_state(cppr=0, xisr=0, mfrr=0xFF, ppri=0xFF)  # a presenter as KVM creates it, as icp_reset


def _no_line(cpu: int, level: bool) -> None:
    """QEMU's ICP copies drive nothing: the kernel's presenters do."""


class KvmSpaprXics(SpaprXics):
    """`xics` with the in-kernel XICS (QEMU `kernel_irqchip=on`). Implements InterruptController."""

    name = "xics"

    def __init__(self, vm: KvmVm, nr_servers: int, **kw: Any) -> None:
        super().__init__(nr_servers, _no_line, **kw)
        self.vm = vm
        self.dev: KvmXicsOnXive | None = None
        self.active: set[int] = set()

    @property
    def trace(self) -> Any:
        return self._trace

    @trace.setter
    def trace(self, sink: Any) -> None:
        """Only the device traces: QEMU's copies change on syncs, which are not events."""
        self._trace = sink
        if self.dev is not None:
            self.dev.trace = sink

    # --- xics_kvm_connect / disconnect ---------------------------------------------------------------------

    def _connect(self) -> None:
        vm = self.vm
        if not vm.check_extension(KVM_CAP_IRQ_XICS):
            raise ConfigError("XICS: KVM and the IRQ_XICS capability are needed for the in-kernel XICS")
        for name in KERNEL_RTAS:
            vm.define_rtas_token(name, RTAS_TOKENS[name])
        dev = vm.create_device(KVM_DEV_TYPE_XICS)
        assert isinstance(dev, KvmXicsOnXive)
        self.dev = dev
        dev.trace = self._trace
        try:
            dev.has_attr(KVM_DEV_XICS_GRP_CTRL, KVM_DEV_XICS_NR_SERVERS)
        except KvmError as err:  # an older kernel: no NR_SERVERS control
            if err.errno != errno.ENXIO:
                raise
        else:
            dev.set_attr(KVM_DEV_XICS_GRP_CTRL, KVM_DEV_XICS_NR_SERVERS, self.nr_servers)
        for vcpu in vm.vcpus:  # icp_kvm_realize, every vCPU of the VM
            vcpu.enable_cap(KVM_CAP_IRQ_XICS, (dev.fd, vcpu.vcpu_id))
        self._push_sources()
        for vcpu in vm.vcpus:
            icp = self.icp_of_cpu(vcpu.index)
            vcpu.set_one_reg(KVM_REG_PPC_ICP_STATE, icp_word(icp) if icp is not None else ICP_START)

    def _disconnect(self, sync: bool = True) -> None:
        dev = self.dev
        if dev is not None:
            if sync:
                try:
                    self._sync_sources()
                except KvmError as err:
                    self.guest_error("XICS sources not readable from KVM: %s", err)
            if dev.fd_open:
                dev.close()
        for name in KERNEL_RTAS:
            if name in self.vm.rtas_tokens:
                self.vm.define_rtas_token(name, 0)
        self.dev = None
        self.active.clear()

    def close(self) -> None:
        """The controller is dropped (machine reset): the device goes with it."""
        self._disconnect()

    # --- QEMU's copies <-> the device -------------------------------------------------------------------------

    def _claimed(self) -> list[int]:
        flags = self.ics.flags
        return [s for s in range(self.ics.nr_irqs) if flags[s] & XICS_FLAGS_IRQ_MASK]

    def _push_sources(self) -> None:
        """`ics_set_kvm_state`: GRP_SOURCES for every claimed source."""
        assert self.dev is not None
        for s in self._claimed():
            self.dev.set_attr(KVM_DEV_XICS_GRP_SOURCES, s + self.ics.offset, source_word(self.ics, s))

    def _sync_sources(self) -> None:
        """`ics_get_kvm_state`: QEMU's ICS from the device (claims stay QEMU's)."""
        assert self.dev is not None
        for s in self._claimed():
            raw = self.dev.get_attr(KVM_DEV_XICS_GRP_SOURCES, s + self.ics.offset)
            load_source_word(self.ics, s, HostU64.parse(raw), set_type=False)

    def _push_icp(self, cpu: int) -> None:
        """`icp_set_kvm_state`."""
        icp = self.icp_of_cpu(cpu)
        assert icp is not None
        self.vm.vcpus[cpu].set_one_reg(KVM_REG_PPC_ICP_STATE, icp_word(icp))

    def _sync(self) -> None:
        """QEMU's copies from the device (`ics/icp_synchronize_state`): before a save or a dump."""
        if self.dev is None:
            return
        self._sync_sources()
        for cpu in self.active:
            icp = self.icp_of_cpu(cpu)
            if icp is not None:
                load_icp_word(icp, HostU64.parse(self.vm.vcpus[cpu].get_one_reg(KVM_REG_PPC_ICP_STATE)))

    # --- InterruptController protocol -----------------------------------------------------------------------

    def hcall_tables(self) -> list[tuple[Any, object]]:
        return [(KVM_XICS_HCALLS, self)]

    def rtas_table(self) -> RtasTable:
        return KVM_XICS_RTAS

    def connect_cpu(self, cpu: int) -> None:
        """QEMU's ICP copy (reset), the device connected on the first vCPU, the copy pushed to the kernel."""
        super().connect_cpu(cpu)
        icp = self.icps[cpu]
        assert icp is not None
        icp.trace = None
        try:
            if self.dev is None:
                self._connect()
            self._push_icp(cpu)
        except KvmError as err:
            self._disconnect(sync=False)
            super().disconnect_cpu(cpu)
            hint = " (try a smaller -smp maxcpus)" if err.errno == errno.ENOSPC else ""
            raise ConfigError(f"XICS: vCPU {cpu} cannot connect to the KVM device: {err}{hint}") from None
        self.active.add(cpu)

    def disconnect_cpu(self, cpu: int) -> None:
        """The emulated ICP is reset and dropped; here the kernel presenter is reset, and the device goes
        with the last vCPU (the controller is being deactivated: `xics_kvm_disconnect`)."""
        if cpu in self.active:
            self.active.discard(cpu)
            if self.active:
                self.vm.vcpus[cpu].set_one_reg(KVM_REG_PPC_ICP_STATE, ICP_START)
            else:
                self._disconnect()
        super().disconnect_cpu(cpu)

    def claim_irq(self, lisn: int, lsi: bool) -> None:
        super().claim_irq(lisn, lsi)
        if self.dev is not None:
            s = lisn - self.ics.offset
            try:
                self.dev.set_attr(KVM_DEV_XICS_GRP_SOURCES, lisn, source_word(self.ics, s))
            except KvmError as err:
                self.ics.free(s)
                raise ConfigError(f"XICS: KVM refused source {lisn:#x}: {err}") from None

    def set_irq(self, lisn: int, level: bool) -> None:
        """`ics_kvm_set_irq`: KVM_IRQ_LINE, SET for an MSI edge, SET_LEVEL / UNSET for an LSI."""
        if self.dev is None or not self.ics.valid_irq(lisn):
            super().set_irq(lisn, level)
            return
        lsi = self.ics.flags[lisn - self.ics.offset] & XICS_FLAGS_IRQ_LSI
        code = KVM_INTERRUPT_UNSET if not level else (KVM_INTERRUPT_SET_LEVEL if lsi else KVM_INTERRUPT_SET)
        try:
            self.vm.irq_line(lisn, code)
        except KvmError as err:  # QEMU: perror("kvm_irq_line")
            self.guest_error("KVM_IRQ_LINE %#x refused: %s", lisn, err)

    def output(self, cpu: int) -> bool:
        if self.dev is not None and cpu in self.active:
            xc = self.vm.vcpus[cpu].xive_vcpu
            return xc is not None and xc.icp.output
        return super().output(cpu)

    def reset(self) -> None:
        """`ics_reset` / `icp_reset`: QEMU's copies reset, then pushed to the kernel."""
        super().reset()
        if self.dev is None:
            return
        self._push_sources()
        for cpu in sorted(self.active):
            self._push_icp(cpu)

    # --- migration (QEMU pre_save / post_load) -------------------------------------------------------------

    def get_state(self) -> XicsState:
        """The emulated controller's state object, read from the device first."""
        try:
            self._sync()
        except KvmError as err:
            raise ConfigError(f"XICS: KVM state not readable: {err}") from None
        return super().get_state()

    def set_state(self, state: XicsState) -> None:
        """Into QEMU's copies (checked there), then sources and presenters into the device."""
        super().set_state(state)
        if self.dev is None:
            return
        try:
            self._push_sources()
            for cpu in sorted(self.active):
                self._push_icp(cpu)
        except KvmError as err:
            raise ConfigError(f"XICS: KVM refused the restored state: {err}") from None

    def describe(self) -> str:
        try:
            self._sync()
        except KvmError as err:
            return f"XICS: KVM state not readable: {err}"
        out = super().describe()
        return out + ("\n" + self.dev.describe() if self.dev is not None else "\n(KVM device closed)")


# --------------------------------------------------------------------------------------------------------
# the hcall and RTAS tables: the kernel first, QEMU's handlers when it hands the call back


def _kernel_hcall(op: int, fn: Callable[..., tuple[int, ...]]) -> Callable[..., tuple[int, ...]]:
    @functools.wraps(fn)
    def h(xics: KvmSpaprXics, cpu: int, *args: int) -> tuple[int, ...]:
        dev = xics.dev
        if dev is not None:
            res = dev.xics_hcall(xics.vm.vcpus[cpu], op, args)
            if res is not None:
                return res
        return fn(xics, cpu, *args)

    return h


def _kernel_rtas(token: int, fn: Callable[..., list[int]]) -> Callable[..., list[int]]:
    @functools.wraps(fn)
    def h(xics: KvmSpaprXics, cpu: int, args: list[int], nret: int) -> list[int]:
        rets = xics.vm.rtas_call(token, args, nret)
        return rets if rets is not None else fn(xics, cpu, args, nret)

    return h


def _tables() -> tuple[HcallTable, RtasTable]:
    hcalls = HcallTable("xics-kvm")
    for op, spec in XICS_HCALLS.specs.items():
        hcalls.specs[op] = HcallSpec(op, spec.name, spec.nargs, _kernel_hcall(op, spec.fn), spec.gate)
    rtas = RtasTable("xics-kvm")
    for token, r in XICS_RTAS.specs.items():
        rtas.specs[token] = RtasSpec(token, r.name, _kernel_rtas(token, r.fn))
    return hcalls, rtas


KVM_XICS_HCALLS, KVM_XICS_RTAS = _tables()
"""XICS_HCALLS and XICS_RTAS, each call offered to the kernel first."""


def make_kvm_xics(machine: Any, **kw: Any) -> KvmSpaprXics:
    """The `--irqchip kvm` XICS controller of `machine` (`.ram`, `.nr_cpus`, `.irq_line`), on the machine's VM
    (shared with the XIVE controller). The device is created when the controller is activated (its first
    vCPU connected) and released when the last vCPU is disconnected or the controller closed. `kw`:
    SpaprXics options (xive_active, timebase, nr_irqs)."""
    vm = vm_of(machine)
    kw.setdefault("timebase", vm.timebase)
    return KvmSpaprXics(vm, machine.nr_cpus, **kw)


__all__ = ["KVM_XICS_HCALLS", "KVM_XICS_RTAS", "KvmSpaprXics", "make_kvm_xics"]
