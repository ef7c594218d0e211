"""The C fast paths (the XIVE round trip, external-interrupt delivery in the block hook) change nothing a guest
or the host can see: every interrupt guest, run untraced with them and with them switched off (everything in
Python, as before they existed), prints the same, retires the same instructions, and leaves the interrupt
controller, the vCPUs' interrupt state and the host's dirty log in the same state."""

from __future__ import annotations

import pytest

from tests.guest.expected import EXPECTED, machine_config
from xive_machine.cpu import regs as R
from xive_machine.machine import xive_fast
from xive_machine.machine.config import MachineConfig
from xive_machine.machine.spapr import SpaprMachine

CASES = ["xive-ipi", "xive-ipi-xive", "xive-ipi-le", "xive-esb", "xive-esb-le", "xive-errors", "xive-ipi-smp-2",
         "xive-ipi-smp-4", "xive-ipi-smp-le-4", "xics-ipi", "xics-ipi-smp-4", "timer", "timer-le", "exceptions"]


def _run(path: str, kwargs: dict, fast: bool, monkeypatch: pytest.MonkeyPatch) -> tuple:
    with monkeypatch.context() as mp:
        if not fast:
            mp.setattr(xive_fast, "current", lambda m: None)
            mp.setattr(xive_fast, "sync_delivery", _python_delivery)
        cfg = machine_config(kwargs)
        m = SpaprMachine(cfg)
        try:
            m.load(path)
            r = m.run(timeout=120)
            bound = getattr(m, "_xive_fast", None) is not None, m.intc.name if m.intc is not None else None
            ic = m.intc.get_state() if m.intc is not None else None
            cpus = [(st.state, st.irq, st.dec_pending, v.trap.icount, v.pc, v.msr, v.gpr(1))
                    for st, v in zip(m.cpus, m.vcpus, strict=True)]
            return (r.console, r.reason, r.instructions, ic, cpus, sorted(m.ram.dirty_pages), m.lpcr_ile), bound
        finally:
            m.close()


def _python_delivery(m: SpaprMachine) -> None:
    for v in m.vcpus:
        v.irqx.fast = 0


@pytest.mark.parametrize("case", CASES)
def test_guest_runs_the_same_with_and_without_the_c_fast_path(image, case: str, monkeypatch) -> None:
    name, kwargs, expected = EXPECTED[case]
    fast, bound = _run(image(name), kwargs, True, monkeypatch)
    slow, unbound = _run(image(name), kwargs, False, monkeypatch)
    assert fast[0] == expected
    assert fast == slow
    assert not unbound[0]
    assert not bound[0] or bound[1] == "xive"
    if name.startswith(("xive-ipi", "xive-esb")):
        assert bound[0]  # the emulated XIVE, once negotiated and touched, is served in C


def _deliver_once(ile: bool, fast: bool, monkeypatch: pytest.MonkeyPatch) -> tuple:
    """An external interrupt taken once `mtmsrd` sets EE: the handler at 0x500 copies SRR0, SRR1, MSR, r0 and r10 (the
    registers the delivery trampoline borrows) to r20..r24 and spins."""
    with monkeypatch.context() as mp:
        if not fast:
            mp.setattr(xive_fast, "sync_delivery", _python_delivery)
        m = SpaprMachine(MachineConfig(echo_console=False))
        try:
            m.prepare()
            m.lpcr_ile = ile
            handler = [R.mfspr(20, R.SPR_SRR0), R.mfspr(21, R.SPR_SRR1), 0x7C0000A6 | (22 << 21),  # mfmsr r22
                       0x7C170378, 0x7D585378, 0x48000000]  # mr r23,r0; mr r24,r10; b .
            m.ram.write(0x500, b"".join(w.to_bytes(4, "little" if ile else "big") for w in handler))
            # mtmsrd r5,1 (EE on: the block hook, not the scheduler, takes the interrupt); b .
            m.ram.write(0x400000, b"".join(w.to_bytes(4, "big") for w in (0x7CA10164, 0x48000000)))
            v = m.vcpus[0]
            v.msr = R.MSR_SF | R.MSR_ME
            v.pc = 0x400000
            v.set_gpr(5, R.MSR_EE | R.MSR_RI)
            v.set_gpr(0, 0x0123456789ABCDEF)
            v.set_gpr(10, 0xFEDCBA9876543210)
            m.cpus[0].state = "running"
            m._booted = True  # noqa: SLF001 - a bare snippet, no guest image
            m.irq_line(0, True)
            m.run(max_insns=500)
            return (v.irqx.fast, v.pc, v.msr, [v.gpr(n) for n in (0, 10, 20, 21, 22, 23, 24)], m.cpus[0].irq,
                    v.trap.irq_waiting)
        finally:
            m.close()


@pytest.mark.parametrize("ile", [False, True])
def test_external_interrupt_delivered_in_c_is_the_python_delivery(ile: bool, monkeypatch) -> None:
    fast = _deliver_once(ile, True, monkeypatch)
    slow = _deliver_once(ile, False, monkeypatch)
    assert fast[0] == 1 and slow[0] == 0
    assert fast[1:] == slow[1:]
    regs = fast[3]
    assert regs[2] == 0x400004 and regs[3:5] == [R.MSR_SF | R.MSR_EE | R.MSR_ME | R.MSR_RI,
                                                  R.MSR_SF | R.MSR_ME | (R.MSR_LE if ile else 0)]
    assert regs[5:] == [0x0123456789ABCDEF, 0xFEDCBA9876543210]  # r0, r10 as the interrupted code had them


def test_external_interrupt_delivered_in_c_sets_srr0_srr1_and_the_vector(image) -> None:
    """One IPI taken through the C delivery: the handler sees what the Python delivery would give it."""
    m = SpaprMachine(MachineConfig(ic_mode="xive", append="n=1", echo_console=False))
    try:
        m.load(image("xive-ipi"))
        r = m.run(timeout=60)
        assert r.reason == "power-off" and "ipis received 1, spurious 0" in r.console
        v = m.vcpus[0]
        assert v.irqx.fast == 1 and v.irqx.entry[0] != 0  # it was armed (untraced run)
        assert not v.irqx.redirect and v.spr(R.SPR_SRR1) & R.MSR_SF
    finally:
        m.close()
