"""Every guest image on xive-machine prints exactly what it prints on QEMU 7.2.

`EXPECTED` holds QEMU's console for each case (test_images_qemu.py checks QEMU still prints it); here the
same image runs on our machine with the same options, and, for the qemu-marked test, both run side by side.
"""

from __future__ import annotations

import os

import pytest

from xive_machine.machine.config import MachineConfig
from xive_machine.machine.spapr import SpaprMachine
from xive_machine.oracle.qemu import qemu_available, run_qemu

from .expected import EXPECTED, machine_config


def run_ours(path: str, kwargs: dict) -> tuple[str, str, int]:
    cfg = machine_config(kwargs)
    m = SpaprMachine(cfg)
    try:
        m.load(path)
        result = m.run(timeout=120)
    finally:
        m.close()
    return result.console, result.reason, result.exit_code


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_console_matches_qemu(image, case: str) -> None:
    name, kwargs, expected = EXPECTED[case]
    console, reason, code = run_ours(image(name), kwargs)
    assert console == expected
    assert (reason, code) == ("power-off", 0)


QEMU_SIDE_BY_SIDE = ["hello", "hello-le", "cas-dual-xive", "cas-dual-xics", "exceptions", "timer", "xive-ipi",
                     "xics-ipi", "smp-4", "xive-ipi-smp-2", "xive-errors"]


@pytest.mark.qemu
@pytest.mark.skipif(not qemu_available() and not os.environ.get("CI"),
                    reason="qemu-system-ppc64 not installed (apt-get install qemu-system-ppc; CI installs it)")
@pytest.mark.parametrize("case", QEMU_SIDE_BY_SIDE)
def test_side_by_side_with_qemu(image, case: str) -> None:
    name, kwargs, _ = EXPECTED[case]
    theirs = run_qemu(image(name), timeout=120, **kwargs)
    ours, reason, _ = run_ours(image(name), kwargs)
    assert not theirs.timed_out
    assert ours == theirs.console
    assert reason == "power-off" and theirs.exit_code == 0


def test_cas_for_an_unoffered_mode_stops_with_a_clear_reason(image) -> None:
    """QEMU exits the VM; we stop with exit code 5, the message naming the mode and the ic-mode to use."""
    m = SpaprMachine(MachineConfig(ic_mode="xics", echo_console=False))
    m.load(image("cas"))
    result = m.run(timeout=60)
    assert (result.reason, result.exit_code) == ("cas-mode", 5)
    assert "unavailable interrupt mode (XIVE)" in result.message and "ic-mode=xive" in result.message


@pytest.mark.qemu
@pytest.mark.skipif(not qemu_available() and not os.environ.get("CI"),
                    reason="qemu-system-ppc64 not installed (apt-get install qemu-system-ppc; CI installs it)")
def test_initrd_is_placed_as_qemu_places_it(image, tmp_path) -> None:
    """r3/r4 at entry = initrd base/size: (kernel end + 0x1ffff) & ~0xffff, as QEMU 7.2."""
    initrd = tmp_path / "initrd.bin"
    initrd.write_bytes(bytes(range(256)) * 20)
    theirs = run_qemu(image("hello"), extra=("-initrd", str(initrd)), timeout=60)
    m = SpaprMachine(MachineConfig(memory="512M", initrd=str(initrd), echo_console=False))
    m.load(image("hello"))
    ours = m.run(timeout=60)
    m.close()
    line = [x for x in ours.console.splitlines() if x.startswith("r3=")]
    assert line == [x for x in theirs.console.splitlines() if x.startswith("r3=")]
    assert line[0].endswith(f"r4={5120:#x}")
    assert m.ram.read(int(line[0].split()[0][3:], 16), 4) == bytes([0, 1, 2, 3])
