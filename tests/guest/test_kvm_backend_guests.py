"""--irqchip kvm: every guest prints what it prints on the emulated controllers (and on QEMU), and makes the
very same hcalls and RTAS calls with the very same results: the KVM device models behind the sPAPR layer (the
XICS-on-XIVE device while XICS is active, the XIVE-native device once CAS picked XIVE), as QEMU on KVM.
Where XICS stays active the whole trace is the same, down to each presenter's line changes."""

from __future__ import annotations

import pytest

from xive_machine.machine.spapr import SpaprMachine
from xive_machine.trace.events import ListSink

from .expected import EXPECTED, machine_config

CASES = sorted(EXPECTED)
XICS_CASES = [c for c in CASES if EXPECTED[c][0].startswith("xics-") or c.endswith("-xics")]
CALLS = ("hcall", "rtas", "cas", "mode")


def run(path: str, kwargs: dict, irqchip: str) -> tuple[str, list[dict], str]:
    sink = ListSink()
    cfg = machine_config({**kwargs, "memory": "512M"}, irqchip=irqchip)
    m = SpaprMachine(cfg, trace=sink)
    try:
        m.load(path)
        result = m.run(timeout=120)
        intc = m.intc.name
    finally:
        m.close()
    assert result.reason == "power-off", result.message
    return result.console, sink.events, intc


@pytest.mark.parametrize("case", CASES)
def test_kvm_backend_matches_emulated(image, case: str) -> None:
    name, kwargs, expected = EXPECTED[case]
    kvm_console, kvm_events, kvm_intc = run(image(name), kwargs, "kvm")
    emu_console, emu_events, emu_intc = run(image(name), kwargs, "emulated")
    assert kvm_console == expected
    assert [e for e in kvm_events if e["ev"] in CALLS] == [e for e in emu_events if e["ev"] in CALLS]
    assert kvm_intc == emu_intc
    if kvm_intc == "xics":  # XICS served by the XICS-on-XIVE device all along: every event matches
        assert kvm_events == emu_events


def test_xics_cases_cover_the_xics_images() -> None:
    assert {EXPECTED[c][0] for c in XICS_CASES} >= {"xics-ipi", "xics-ipi-smp", "xics-ipi-le", "cas"}
