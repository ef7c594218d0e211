"""A guest must never kill the host: reads Unicorn 2.1.4 dies on (SPURR 308, PURR 309, VTB 849/351) and the
frozen timebase are served by the machine, found by the block scan even in code written at run time."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from xive_machine.cpu import regs as R

SNIPPET = textwrap.dedent("""
    import struct, sys
    from xive_machine.cpu import regs as R
    from xive_machine.machine.config import MachineConfig
    from xive_machine.machine.spapr import SpaprMachine
    m = SpaprMachine(MachineConfig(echo_console=False))
    m.prepare()
    words = [int(w, 16) for w in sys.argv[1:]] + [0x48000000]  # ... then b .
    m.ram.write(0x400000, b"".join(struct.pack(">I", w) for w in words))
    v = m.vcpus[0]
    v.msr = R.MSR_SF | R.MSR_ME
    v.pc = 0x400000
    m.cpus[0].state = "running"
    m._booted = True
    m.run(max_insns=100000)
    print(" ".join(hex(v.gpr(n)) for n in (3, 4, 5)), m.stop_reason)
""")


def run_guest_words(*words: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SNIPPET, *[hex(w) for w in words]], capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("spr", [R.SPR_SPURR, R.SPR_PURR, R.SPR_VTB_ALT, R.SPR_VTB])
def test_fatal_spr_reads_are_served(spr: int) -> None:
    proc = run_guest_words(0x3860FFFF, R.mfspr(3, spr))  # li r3,-1; mfspr r3,spr
    assert proc.returncode == 0, f"host process died: {proc.returncode} {proc.stderr[-500:]}"
    r3 = int(proc.stdout.split()[0], 16)
    assert r3 != 0xFFFF_FFFF_FFFF_FFFF  # the instruction was served (the value is the timebase)
    assert proc.stdout.split()[-1] == "max-insns"


def test_timebase_advances_in_code_written_at_run_time() -> None:
    mftb = lambda rt: 0x7C0C42E6 | (rt << 21)  # noqa: E731 - mftb rt (TBR 268)
    loop = [0x38A00000 | 1000, 0x7CA903A6, 0x60000000, 0x4200FFFC]  # li r5,1000; mtctr r5; nop; bdnz .-4
    proc = run_guest_words(mftb(3), *loop, mftb(4))
    assert proc.returncode == 0, proc.stderr[-500:]
    r3, r4 = (int(x, 16) for x in proc.stdout.split()[:2])
    assert 0 < r3 < r4  # the machine's clock, not Unicorn's frozen zero
