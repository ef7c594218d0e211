"""KvmSpaprXive: how the sPAPR front end drives the KVM device (QEMU spapr_xive_kvm.c), its errors, its life."""

from __future__ import annotations

import pytest

from xive_machine.errors import ConfigError
from xive_machine.hcalls.codes import H, Op
from xive_machine.hcalls.registry import Dispatcher
from xive_machine.hcalls.xive import XIVE_HCALLS
from xive_machine.kvm import uapi as U
from xive_machine.kvm.backend import KVM_XIVE_HCALLS, KvmSpaprXive, make_kvm_xive
from xive_machine.kvm.vm import KVMPPC_IRQ_XIVE
from xive_machine.memory.ram import GuestRam

QPAGE = 0x100000
OS = 0x20000
U64 = (1 << 64) - 1


class Machine:
    def __init__(self, nr_cpus: int = 2) -> None:
        self.nr_cpus = nr_cpus
        self.ram = GuestRam(4 << 20)
        self.lines: list[tuple[int, bool]] = []

    def irq_line(self, cpu: int, level: bool) -> None:
        self.lines.append((cpu, level))


class Rig:
    def __init__(self, m: Machine | None = None) -> None:
        self.m = m or Machine()
        self.x = make_kvm_xive(self.m)
        self.calls: list[tuple] = []
        w = {w.name: w for w in self.x.mmio_windows()}  # activation: the device is connected
        self.esb, self.tima = w["esb"], w["tima"]
        dev = self.x.dev
        real = dev.set_attr

        def spy(group, attr, value=None):
            self.calls.append((group, attr, value))
            return real(group, attr, value)

        dev.set_attr = spy
        for cpu in range(self.m.nr_cpus):
            self.x.connect_cpu(cpu)
        self.d = Dispatcher()
        self.d.add_gate("xive", lambda: True)
        for table, target in self.x.hcall_tables():
            self.d.install(table, target)

    def hc(self, op, *args):
        rc, *outs = self.d.dispatch(0, op, list(args) + [0] * (9 - len(args)))
        return (int(rc), *[o & U64 for o in outs])


def test_connect_sequence_like_qemu():
    m = Machine(3)
    x = make_kvm_xive(m)
    assert x.dev is None and m.kvm_vm.xive is None  # built at reset, connected at activation
    x.claim_irq(0x1200, True)
    wins = x.mmio_windows()  # spapr_xive_activate -> kvmppc_xive_connect
    dev = x.dev
    assert m.kvm_vm.xive is dev and dev.nr_servers == 3
    assert sorted(dev.sources) == [0, 1, 2, 0x1200] and dev.sources[0x1200].lsi  # GRP_SOURCE per claimed LISN
    assert [(mp.name, mp.size) for mp in dev.mappings] == [("esb", 0x2000 << 17), ("tima", 4 << 16)]
    assert [(w.name, w.base) for w in wins] == [("esb", x.vc_base), ("tima", x.tm_base)]
    for cpu in range(3):
        x.connect_cpu(cpu)
    assert [v.irq_type for v in m.kvm_vm.vcpus] == [KVMPPC_IRQ_XIVE] * 3
    x.claim_irq(0x1201, False)
    assert 0x1201 in dev.sources
    other = make_kvm_xive(m)  # same VM: a second XIVE device cannot be connected (EEXIST)
    assert other.vm is x.vm
    with pytest.raises(ConfigError):
        other.mmio_windows()
    for cpu in range(3):
        x.disconnect_cpu(cpu)  # spapr_xive_deactivate -> kvmppc_xive_disconnect
    assert dev.released and m.kvm_vm.xive is None and x.dev is None
    assert [v.irq_type for v in m.kvm_vm.vcpus] == [0] * 3
    other.mmio_windows()
    assert m.kvm_vm.xive is other.dev
    other.close()
    x.close()


def test_reactivation_keeps_routing_and_pq():
    g = Rig()
    assert g.hc(Op.H_INT_SET_QUEUE_CONFIG, 1, 0, 6, QPAGE, 16) == (0,)
    assert g.hc(Op.H_INT_SET_SOURCE_CONFIG, 2, 0, 0, 6, 0x21) == (0,)
    g.esb.read(0, 0x10000 + 0xC00, 8)
    g.esb.write(0, 0, 8, 0)
    assert g.x.source(0).pq == 2
    for cpu in range(2):
        g.x.disconnect_cpu(cpu)
    assert g.x.dev is None and g.x.source(0).pq == 2  # saved in QEMU's status byte
    w = {w.name: w for w in g.x.mmio_windows()}
    for cpu in range(2):
        g.x.connect_cpu(cpu)
    assert g.x.source(0).pq == 2
    w["tima"].write(0, OS + 0x11, 1, 0xFF)
    assert w["esb"].read(0, 0x10000, 8) == 0  # EOI
    w["esb"].write(0, 0, 8, 0)
    assert g.m.ram.read_u32(QPAGE + 4) == 0x80000021  # routing pushed again, the queue goes on
    g.x.close()


def test_reactivation_pushes_every_server():
    g = Rig()
    assert g.hc(Op.H_INT_SET_QUEUE_CONFIG, 1, 1, 6, QPAGE + 0x10000, 16) == (0,)
    assert g.hc(Op.H_INT_SET_SOURCE_CONFIG, 2, 1, 1, 6, 0x31) == (0,)
    assert g.hc(Op.H_INT_SET_SOURCE_CONFIG, 2, 0, 1, 6, 0x30) == (0,)
    for cpu in range(2):
        g.x.disconnect_cpu(cpu)
    w = {w.name: w for w in g.x.mmio_windows()}
    for cpu in range(2):
        g.x.connect_cpu(cpu)
    src = g.x.dev.sources
    assert (src[0].act_server, src[0].eisn, src[1].act_server, src[1].eisn) == (1, 0x30, 1, 0x31)
    assert g.x.eq(1, 6).qpage == QPAGE + 0x10000
    w["esb"].read(0, 0x10000 + 0xC00, 8)
    w["esb"].write(0, 0, 8, 0)
    assert g.m.ram.read_u32(QPAGE + 0x10000) == 0x80000030
    g.x.close()


def test_hcalls_are_mirrored_into_attributes():
    g = Rig()
    assert g.hc(Op.H_INT_SET_QUEUE_CONFIG, 1, 1, 6, QPAGE, 16) == (0,)
    assert g.hc(Op.H_INT_SET_SOURCE_CONFIG, 2, 1, 1, 6, 0x77) == (0,)
    assert g.hc(Op.H_INT_SYNC, 0, 1) == (0,)
    assert g.hc(Op.H_INT_RESET, 0) == (0,)
    groups = [(c[0], c[1]) for c in g.calls]
    assert groups == [
        (U.KVM_DEV_XIVE_GRP_EQ_CONFIG, U.eq_id(1, 6)),
        (U.KVM_DEV_XIVE_GRP_SOURCE_CONFIG, 1),
        (U.KVM_DEV_XIVE_GRP_SOURCE_SYNC, 1),
        (U.KVM_DEV_XIVE_GRP_CTRL, U.KVM_DEV_XIVE_RESET),
    ]
    assert U.xive_eq_decode(g.calls[0][2]) == dict(flags=1, qshift=16, qaddr=QPAGE, qtoggle=1, qindex=0)
    assert U.source_config_decode(g.calls[1][2]) == (1, 6, False, 0x77)


def test_device_refusals_become_h_hardware_and_leave_tables_alone():
    g = Rig()
    # The emulated controller accepts 4 KiB queues and queues without ALWAYS_NOTIFY; KVM does not.
    assert g.hc(Op.H_INT_SET_QUEUE_CONFIG, 1, 0, 6, QPAGE, 12) == (H.HARDWARE,)
    assert g.hc(Op.H_INT_SET_QUEUE_CONFIG, 0, 0, 6, QPAGE, 16) == (H.HARDWARE,)
    assert g.hc(Op.H_INT_GET_QUEUE_CONFIG, 0, 0, 6) == (0, 0, 0, 0, 0)
    # No queue at priority 5 anywhere: KVM cannot pick a target (EBUSY).
    assert g.hc(Op.H_INT_SET_SOURCE_CONFIG, 2, 0, 0, 5, 0x55) == (H.HARDWARE,)
    assert g.hc(Op.H_INT_GET_SOURCE_CONFIG, 0, 0)[2:] == (0xFF, 0)
    assert g.hc(Op.H_INT_SET_QUEUE_CONFIG, 1, 0, 6, QPAGE, 16) == (0,)
    assert g.hc(Op.H_INT_SET_SOURCE_CONFIG, 2, 0, 0, 6, 0x55) == (0,)


def test_table_shares_the_handlers():
    assert set(KVM_XIVE_HCALLS.specs) == set(XIVE_HCALLS.specs)
    same = {op for op, s in KVM_XIVE_HCALLS.specs.items() if s.fn is XIVE_HCALLS.specs[op].fn}
    assert same == {
        Op.H_INT_GET_SOURCE_INFO,
        Op.H_INT_GET_SOURCE_CONFIG,
        Op.H_INT_GET_QUEUE_INFO,
        Op.H_INT_SET_OS_REPORTING_LINE,
        Op.H_INT_GET_OS_REPORTING_LINE,
        Op.H_INT_ESB,
    }
    for op, s in KVM_XIVE_HCALLS.specs.items():
        assert (s.nargs, s.gate, s.name) == (XIVE_HCALLS.specs[op].nargs, "xive", XIVE_HCALLS.specs[op].name)


def test_parked_vcpu_keeps_its_events():
    g = Rig()
    assert g.hc(Op.H_INT_SET_QUEUE_CONFIG, 1, 1, 6, QPAGE, 16) == (0,)
    g.tima.write(1, OS + 0x11, 1, 0xFF)
    assert g.hc(Op.H_INT_SET_SOURCE_CONFIG, 2, 1, 1, 6, 0x11) == (0,)
    g.esb.read(0, (1 << 17) + 0x10000 + 0xC00, 8)
    g.x.disconnect_cpu(1)
    g.esb.write(0, 1 << 17, 8, 0)
    assert g.m.lines == [] and g.m.ram.read_u32(QPAGE) == 0x80000011
    g.x.connect_cpu(1)
    assert g.m.lines == [(1, True)]
    assert g.tima.read(1, OS + 0x810, 2) == 0x8006


def test_faulting_pages_read_all_ones():
    g = Rig()
    assert g.esb.read(0, (0x1500 << 17) + 0x10800, 8) == U64  # unclaimed source: SIGBUS in QEMU
    assert g.tima.read(0, 0x10, 4) == 0xFFFFFFFF  # HW page
    assert g.tima.read(0, 0x30010, 8) == U64  # USER page
    g.tima.write(0, 0x10011, 1, 0)  # dropped
    assert g.x.source(0x1500).pq == 1  # not claimed: QEMU's own status


def test_restore_refused_by_the_device_is_a_config_error():
    g = Rig()
    st = g.x.get_state()
    endt = list(st.endt)
    endt[6 * 8] = 0xC0000000 | (4 << 16)  # valid + enqueue, 64 KiB, no ALWAYS_NOTIFY: KVM says EINVAL
    endt[6 * 8 + 3] = QPAGE
    bad = type(st)(**{**st.__dict__, "endt": tuple(endt)})
    with pytest.raises(ConfigError):
        g.x.set_state(bad)
    with pytest.raises(ConfigError):
        g.x.set_state(type(st)(**{**st.__dict__, "version": 99}))


def test_machine_switches_device_with_the_interrupt_mode():
    """The CAS switch: the XICS-on-XIVE device is released before the XIVE-native one is created, and back."""
    from xive_machine.kvm.xics_on_xive import KvmXicsOnXive
    from xive_machine.machine import platform
    from xive_machine.machine.config import MachineConfig
    from xive_machine.machine.spapr import SpaprMachine

    m = SpaprMachine(MachineConfig(irqchip="kvm", ic_mode="dual", smp=2, echo_console=False))
    m.prepare()
    x = m.controllers["xive"]
    xics_dev = m.kvm_vm.xive
    assert isinstance(x, KvmSpaprXive) and m.intc.name == "xics" and isinstance(xics_dev, KvmXicsOnXive)
    platform.activate_controller(m, "xive")  # what CAS does when the guest picks XIVE
    first = x.dev
    assert xics_dev.released and m.intc is x and m.kvm_vm.xive is first
    assert all(v.xive_vcpu is not None for v in m.kvm_vm.vcpus)
    assert "kvm-xive-native" in x.describe()
    platform.activate_controller(m, "xics")
    assert first.released and isinstance(m.kvm_vm.xive, KvmXicsOnXive)
    platform.activate_controller(m, "xive")
    assert m.kvm_vm.xive is x.dev is not first
    m.prepare()  # machine reset: controllers rebuilt, the old devices closed, XICS active again
    assert x.dev is None and isinstance(m.kvm_vm.xive, KvmXicsOnXive)
    m.close()
