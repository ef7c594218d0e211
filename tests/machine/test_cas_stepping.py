"""Stepping through CAS, from Python and from the command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from xive_machine.firmware import ovec
from xive_machine.machine.config import MachineConfig
from xive_machine.machine.spapr import SpaprMachine


def test_run_until_cas_then_continue(image) -> None:
    m = SpaprMachine(MachineConfig(ic_mode="dual", echo_console=False))
    m.load(image("cas"))
    first = m.run(until="cas")
    assert first.reason == "until"
    assert "PASS" not in first.console
    rec = m.cas
    assert rec.result.ok and rec.result.intc == "xive"
    assert rec.request.vector(5) is not None  # the guest's OV5, decoded
    assert (rec.mode_before, rec.mode_after) == ("xics", "xive")
    assert m.intc.name == "xive" and m.xive_negotiated
    assert any("interrupt-controller@60302031b0000" in line for line in rec.diff)
    assert rec.dt_before is not rec.dt_after
    rest = m.run()
    assert rest.powered_off and rest.console.endswith("PASS\n")


def test_cas_command_shows_the_decision_and_the_tree_diff(image) -> None:
    proc = subprocess.run([sys.executable, "-m", "xive_machine.cli.main", "cas", "--ic-mode", "dual",
                           image("cas")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for needle in ("== CAS called by vCPU 0", "-- request", "byte 23 = 0x40: interrupt mode = XIVE exploitation",
                   "-- platform offer (ic-mode=dual)", "byte 23 = 0x80", "interrupt controller: xics -> xive",
                   "-- device-tree diff", "+ /interrupt-controller@60302031b0000/"):
        assert needle in out, needle
    assert out.endswith("PASS\n")


def test_cas_decode_of_a_vector_file(tmp_path: Path) -> None:
    ov5 = bytearray(26)
    ov5[23 - 1] = 0x40  # byte 23 (bytes are numbered from 1 after the length): XIVE exploitation
    av = ovec.ArchVector(pvrs=[ovec.PvrEntry(0xFFFF0000, 0x004E0000)], terminator=ovec.LINUX_TERMINATOR,
                         vectors=[bytes([0x00, 0x00, 0x80]), bytes(1), bytes(1), bytes(1), ov5])
    f = tmp_path / "vec.bin"
    f.write_bytes(ovec.build_arch_vector(av))
    proc = subprocess.run([sys.executable, "-m", "xive_machine.cli.main", "cas", "--decode", str(f)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "mask 0xffff0000 value 0x004e0000" in proc.stdout and "OV5 (26 bytes)" in proc.stdout
    assert "interrupt mode = XIVE exploitation" in proc.stdout
    f.write_bytes(ovec.build_arch_vector(av)[:-5])  # truncated: the length byte runs past the end
    proc = subprocess.run([sys.executable, "-m", "xive_machine.cli.main", "cas", "--decode", str(f)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stdout.startswith("error at byte")
