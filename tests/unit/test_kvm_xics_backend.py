"""KvmSpaprXics: how the sPAPR layer drives the XICS-on-XIVE device (QEMU xics_kvm.c), its errors, its life
across the CAS switch."""

from __future__ import annotations

import errno

import pytest

from xive_machine.errors import ConfigError, KvmError
from xive_machine.firmware.rtas import RTAS_TOKENS
from xive_machine.hcalls.codes import H, Op
from xive_machine.hcalls.registry import Dispatcher
from xive_machine.kvm import uapi as U
from xive_machine.kvm.vm import KVMPPC_IRQ_XICS, KvmHost, KvmHostConfig, KvmVm
from xive_machine.kvm.xics_backend import KVM_XICS_HCALLS, KVM_XICS_RTAS, KvmSpaprXics, make_kvm_xics
from xive_machine.kvm.xics_on_xive import KvmXicsOnXive
from xive_machine.memory.ram import GuestRam

XICS_RTAS_NAMES = ("ibm,set-xive", "ibm,get-xive", "ibm,int-off", "ibm,int-on")


class Machine:
    def __init__(self, nr_cpus: int = 2, host: KvmHost | None = None) -> None:
        self.nr_cpus = nr_cpus
        self.ram = GuestRam(1 << 20)
        self.lines: list[tuple[int, bool]] = []
        self.xive = False
        if host is not None:
            self.kvm_vm = KvmVm(self, host=host)

    def irq_line(self, cpu: int, level: bool) -> None:
        self.lines.append((cpu, level))


def spy_vm(vm: KvmVm, calls: list) -> None:
    """Record every uAPI call the backend makes, in order."""
    def wrap(obj, name, tag):
        real = getattr(obj, name)

        def f(*a, **kw):
            calls.append((tag, *a))
            res = real(*a, **kw)
            if name == "create_device" and res is not None:
                wrap(res, "set_attr", "set_attr")
                wrap(res, "get_attr", "get_attr")
            return res
        setattr(obj, name, f)

    wrap(vm, "define_rtas_token", "token")
    wrap(vm, "create_device", "create")
    for v in vm.vcpus:
        wrap(v, "enable_cap", f"enable_cap{v.index}")
        wrap(v, "set_one_reg", f"set_icp{v.index}")
        wrap(v, "get_one_reg", f"get_icp{v.index}")


def test_table_contents():
    assert {s.name for s in KVM_XICS_HCALLS.specs.values()} == {
        "H_CPPR", "H_IPI", "H_XIRR", "H_XIRR_X", "H_EOI", "H_IPOLL"}
    assert sorted(s.name for s in KVM_XICS_RTAS.specs.values()) == sorted(XICS_RTAS_NAMES)


def test_connect_sequence_like_qemu():
    m = Machine(2)
    x = make_kvm_xics(m, xive_active=lambda: m.xive)
    assert isinstance(x, KvmSpaprXics) and x.dev is None and m.kvm_vm.xive is None
    calls: list = []
    spy_vm(m.kvm_vm, calls)
    x.claim_irq(0x1100, False)
    x.claim_irq(0x1200, True)
    x.connect_cpu(0)  # the first vCPU activates the controller (xics_kvm_connect)
    dev = x.dev
    assert isinstance(dev, KvmXicsOnXive) and m.kvm_vm.xive is dev and dev.nr_servers == 2
    assert [c[0] for c in calls] == ["token"] * 4 + ["create", "set_attr", "enable_cap0", "enable_cap1",
                                                      "set_attr", "set_attr", "set_icp0", "set_icp1", "set_icp0"]
    assert [c[1] for c in calls[:4]] == list(XICS_RTAS_NAMES)
    assert calls[5][1:] == (U.KVM_DEV_XICS_GRP_CTRL, U.KVM_DEV_XICS_NR_SERVERS, 2)
    assert [c[2] for c in calls[8:10]] == [0x1100, 0x1200]  # GRP_SOURCES per claimed source
    assert U.xics_source_decode(calls[9][3])["lsi"] and calls[9][3] & U.KVM_XICS_MASKED
    assert all(v.irq_type == KVMPPC_IRQ_XICS for v in m.kvm_vm.vcpus)
    assert set(m.kvm_vm.rtas_tokens) == set(XICS_RTAS_NAMES)
    calls.clear()
    x.connect_cpu(1)
    assert [c[0] for c in calls] == ["set_icp1"]  # already enabled: its ICP state only
    x.claim_irq(0x1101, False)  # a claim once connected sets the source
    assert calls[-1][:3] == ("set_attr", U.KVM_DEV_XICS_GRP_SOURCES, 0x1101) and 0x1101 in [
        ics.offset + s for ics in dev.blocks.ordered for s in range(ics.nr_irqs) if ics.flags[s]]
    x.disconnect_cpu(1)  # a vCPU parked while another stays: its presenter back to the start
    assert dev.fd_open and calls[-1][0] == "set_icp1"
    x.disconnect_cpu(0)  # the last one: sources read back, fd closed, tokens removed
    assert dev.released and m.kvm_vm.xive is None and x.dev is None and m.kvm_vm.rtas_tokens == {}
    assert [c[0] for c in calls[-7:]] == ["get_attr"] * 3 + ["token"] * 4


def test_connect_failure_is_a_config_error():
    m = Machine(1, host=KvmHost(KvmHostConfig(vp_blocks=0)))
    x = make_kvm_xics(m)
    with pytest.raises(ConfigError, match="smaller -smp maxcpus"):
        x.connect_cpu(0)  # ENOSPC: no VP block
    assert x.dev is None and m.kvm_vm.xive is None and m.kvm_vm.rtas_tokens == {} and x.icps[0] is None


def run_calls(x, calls: list) -> list:
    d = Dispatcher()
    for table, target in x.hcall_tables():
        d.install(table, target)
    rtas = {s.name: s.fn for s in x.rtas_table().specs.values()}
    out = []
    for name, cpu, *args in calls:
        if name.startswith("ibm,"):
            out.append(rtas[name](x, cpu, list(args[:-1]), args[-1]))
        else:
            out.append(d.dispatch(cpu, getattr(Op, name), list(args) + [0] * 9))
    return out


def test_calls_go_to_the_kernel_while_xics_is_active():
    m = Machine(2)
    x = make_kvm_xics(m, xive_active=lambda: m.xive)
    for cpu in range(2):
        x.connect_cpu(cpu)
    dev = x.dev
    seen: list = []
    real = dev.xics_hcall
    dev.xics_hcall = lambda vcpu, op, args: seen.append(op) or real(vcpu, op, args)
    assert run_calls(x, [("H_CPPR", 1, 0xFF), ("H_IPI", 0, 1, 5), ("H_XIRR", 1),
                         ("ibm,get-xive", 0, 0x1000, 3)]) == [(H.SUCCESS,), (H.SUCCESS,), (H.SUCCESS, 0xFF000002),
                                                              [-3]]  # 0x1000: no source block (unclaimed)
    assert seen == [Op.H_CPPR, Op.H_IPI, Op.H_XIRR]
    assert x.icps[1].xirr == 0  # QEMU's copy is stale until a sync
    assert x.output(1) is False and x.get_state().icps[1].xirr == 0x05000000  # CPPR now 5
    assert "XIRR=05000000" in x.describe() and "kvm-xive fd" in x.describe()


def test_calls_handed_back_when_xive_is_negotiated():
    """CAS picked XIVE: the device is gone and the tokens too; QEMU's handlers refuse as the emulated XICS."""
    m = Machine(1)
    x = make_kvm_xics(m, xive_active=lambda: m.xive)
    x.connect_cpu(0)
    m.xive = True
    x.disconnect_cpu(0)
    assert run_calls(x, [("H_XIRR", 0), ("H_IPI", 0, 0, 5), ("ibm,set-xive", 0, 0x1000, 0, 5, 1)]) == [
        (H.HARDWARE,), (H.HARDWARE,), [-1]]


def test_device_lines_are_kvm_irq_line():
    m = Machine(1)
    x = make_kvm_xics(m)
    x.claim_irq(0x1100, False)
    x.connect_cpu(0)
    levels: list = []
    real = m.kvm_vm.irq_line
    m.kvm_vm.irq_line = lambda irq, level: levels.append((irq, level)) or real(irq, level)
    x.set_irq(0x1100, True)
    x.set_irq(0x1100, False)
    x.set_irq(0x1105, True)  # unclaimed: the kernel has no such source; noted, not raised
    assert levels == [(0x1100, U.KVM_INTERRUPT_SET), (0x1100, U.KVM_INTERRUPT_UNSET),
                      (0x1105, U.KVM_INTERRUPT_SET)]
    with pytest.raises(ConfigError):
        x.set_irq(0x3000, True)  # outside the ICS: the same error as the emulated controller


def machine(irqchip: str):
    from xive_machine.machine.config import MachineConfig
    from xive_machine.machine.spapr import SpaprMachine

    m = SpaprMachine(MachineConfig(irqchip=irqchip, ic_mode="dual", smp=2, echo_console=False))
    m.prepare()
    return m


def rtas(m, name: str, *args: int, nret: int = 1) -> list[int]:
    fn, _ = m.rtas.entries[RTAS_TOKENS[name]]
    return fn(0, list(args), nret)


@pytest.mark.parametrize("irqchip", ["emulated", "kvm"])
def test_cas_switch_loses_no_interrupt(irqchip):
    """A masked MSI fired under XICS is still pending after XICS -> XIVE -> XICS (the KVM device destroyed and
    created again) and goes out at int-on, on both backends."""
    from xive_machine.machine import platform

    m = machine(irqchip)
    x = m.controllers["xics"]
    assert rtas(m, "ibm,set-xive", 0x1001, 1, 5) == [0]
    assert rtas(m, "ibm,int-off", 0x1001) == [0]
    m.raise_irq(0x1001)  # masked: kept as pending
    first = m.kvm_vm.xive if irqchip == "kvm" else None
    platform.activate_controller(m, "xive")
    platform.activate_controller(m, "xics")
    if irqchip == "kvm":
        assert first.released and m.kvm_vm.xive is x.dev is not first
    d = Dispatcher()
    for table, target in x.hcall_tables():
        d.install(table, target)
    assert d.dispatch(1, Op.H_CPPR, [0xFF]) == (H.SUCCESS,)
    assert rtas(m, "ibm,int-on", 0x1001) == [0]
    assert m.cpus[1].irq and d.dispatch(1, Op.H_XIRR, []) == (H.SUCCESS, 0xFF001001)
    m.close()


def test_restore_refused_by_the_device_is_a_config_error():
    m = Machine(1)
    x = make_kvm_xics(m)
    x.claim_irq(0x1100, False)
    x.connect_cpu(0)
    state = x.get_state()

    def refuse(*args: object) -> None:
        raise KvmError(errno.EINVAL, "refused")

    x.dev.set_attr = refuse
    with pytest.raises(ConfigError, match="refused the restored state"):
        x.set_state(state)
    with pytest.raises(ConfigError):
        x.set_state(type(state)(**{**state.__dict__, "version": 99}))
    x.close()
    assert m.kvm_vm.xive is None
