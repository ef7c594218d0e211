"""H_CEDE, H_PROD, H_CONFER and the VPA dispatch counter on a real machine (no guest code: hcalls issued
through the machine as the vCPUs would issue them)."""

from __future__ import annotations

import pytest

from xive_machine.cpu import regs as R
from xive_machine.hcalls.codes import H, Op
from xive_machine.machine.config import MachineConfig
from xive_machine.machine.spapr import SpaprMachine

VPA = 0x10000
REGISTER_VPA = 1 << 45


@pytest.fixture
def m() -> SpaprMachine:
    machine = SpaprMachine(MachineConfig(smp=2, echo_console=False))
    machine.prepare()
    for st in machine.cpus:
        st.state = "running"
    yield machine
    machine.close()


def dispatch_count(m: SpaprMachine) -> int:
    return m.ram.read_u32(VPA + 0x100)


def test_cede_then_prod_wakes_and_the_vpa_counter_tracks_it(m: SpaprMachine) -> None:
    m.ram.write(VPA + 4, (640).to_bytes(2, "big"))
    assert m.hcall(0, Op.H_REGISTER_VPA, REGISTER_VPA, 1, VPA)[0] == H.SUCCESS
    assert dispatch_count(m) % 2 == 0  # running: even
    assert m.hcall(1, Op.H_CEDE)[0] == H.SUCCESS
    assert m.cpus[1].state == "ceded"
    assert m.vcpus[1].msr & R.MSR_EE  # H_CEDE enables external interrupts
    assert dispatch_count(m) % 2 == 1  # ceded: odd
    assert m.hcall(0, Op.H_PROD, 1)[0] == H.SUCCESS  # QEMU 7.2 does not wake it; PAPR says it must
    assert m.cpus[1].state == "running"
    assert dispatch_count(m) % 2 == 0


def test_prod_before_cede_makes_cede_return_at_once(m: SpaprMachine) -> None:
    assert m.hcall(0, Op.H_PROD, 1)[0] == H.SUCCESS
    assert m.hcall(1, Op.H_CEDE)[0] == H.SUCCESS
    assert m.cpus[1].state == "running" and not m.cpus[1].prod


def test_an_interrupt_wakes_a_ceded_vcpu(m: SpaprMachine) -> None:
    m.hcall(1, Op.H_CEDE)
    assert m.cpus[1].state == "ceded"
    m.irq_line(1, True)
    assert m.cpus[1].state == "running" and m.cpus[1].irq


def test_prod_of_an_unknown_vcpu_is_a_parameter_error(m: SpaprMachine) -> None:
    assert m.hcall(0, Op.H_PROD, 7)[0] == H.PARAMETER
    assert m.hcall(0, Op.H_CONFER, 7, 0)[0] == H.PARAMETER
