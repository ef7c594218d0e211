"""--irqchip kvm: every XIVE guest prints what it prints on the emulated XIVE (and on QEMU), and makes the
very same hcalls with the very same results (the KVM device model behind the sPAPR layer, as QEMU on KVM)."""

from __future__ import annotations

import pytest

from xive_machine.machine.config import MachineConfig
from xive_machine.machine.spapr import SpaprMachine
from xive_machine.trace.events import ListSink

from .expected import EXPECTED

XIVE_CASES = sorted(c for c in EXPECTED if c.startswith(("xive-", "cas-")))


def run(path: str, kwargs: dict, irqchip: str) -> tuple[str, list[dict]]:
    sink = ListSink()
    cfg = MachineConfig(smp=kwargs.get("smp", 1), memory="512M", ic_mode=kwargs.get("ic_mode", "dual"),
                        append=kwargs.get("append", "") or "", irqchip=irqchip, echo_console=False)
    m = SpaprMachine(cfg, trace=sink)
    try:
        m.load(path)
        result = m.run(timeout=120)
    finally:
        m.close()
    assert result.reason == "power-off", result.message
    return result.console, [e for e in sink.events if e["ev"] in ("hcall", "rtas", "cas", "mode")]


@pytest.mark.parametrize("case", XIVE_CASES)
def test_kvm_backend_matches_emulated(image, case: str) -> None:
    name, kwargs, expected = EXPECTED[case]
    kvm_console, kvm_calls = run(image(name), kwargs, "kvm")
    emu_console, emu_calls = run(image(name), kwargs, "emulated")
    assert kvm_console == expected
    assert kvm_calls == emu_calls
