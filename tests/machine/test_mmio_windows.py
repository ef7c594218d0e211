"""Device windows: faulted in on first touch, every access at its real size, loads served by the model."""

from __future__ import annotations

import struct

import pytest

from xive_machine.cpu import regs as R
from xive_machine.machine.config import MachineConfig
from xive_machine.machine.irq import MmioWindow
from xive_machine.machine.spapr import SpaprMachine

BASE = 0x0006_0000_0000_0000


def _li64(reg: int, value: int) -> list[int]:
    """lis/ori/sldi/oris/ori: load a 64-bit constant."""
    return [0x3C000000 | (reg << 21) | ((value >> 48) & 0xFFFF),
            0x60000000 | (reg << 21) | (reg << 16) | ((value >> 32) & 0xFFFF),
            0x78000000 | (reg << 21) | (reg << 16) | (0 << 11) | (31 << 6) | 0x4 | 0x2,  # rldicr r,r,32,31
            0x64000000 | (reg << 21) | (reg << 16) | ((value >> 16) & 0xFFFF),
            0x60000000 | (reg << 21) | (reg << 16) | (value & 0xFFFF)]


class Recorder:
    def __init__(self) -> None:
        self.log: list[tuple] = []

    def read(self, cpu: int, off: int, size: int) -> int:
        self.log.append(("r", cpu, off, size))
        return {1: 0xA1, 2: 0xB2B2, 4: 0xC4C4C4C4, 8: 0xD8D8D8D8D8D8D8D8}[size]

    def write(self, cpu: int, off: int, size: int, value: int) -> None:
        self.log.append(("w", cpu, off, size, value))


@pytest.fixture
def machine() -> SpaprMachine:
    m = SpaprMachine(MachineConfig(echo_console=False))
    m.prepare()
    yield m
    m.close()


def run_snippet(m: SpaprMachine, words: list[int]) -> None:
    code = words + [0x48000000]  # b .
    m.ram.write(0x400000, b"".join(struct.pack(">I", w) for w in code))
    v = m.vcpus[0]
    v.msr = R.MSR_SF | R.MSR_ME
    v.pc = 0x400000
    m.cpus[0].state = "running"
    m._booted = True
    m.run(max_insns=2000)  # counted per block entry: MMIO accesses restart blocks


def test_first_access_store_then_every_size(machine: SpaprMachine) -> None:
    rec = Recorder()
    machine.add_window(MmioWindow("test", BASE, 0x20000, rec.read, rec.write))
    r5 = 0x1122334455667788
    words = _li64(3, BASE + 0x10000) + _li64(5, r5) + [
        0x98A30011,  # stb r5,0x11(r3)   first touch is a store
        0xB0A30020,  # sth r5,0x20(r3)
        0x90A30040,  # stw r5,0x40(r3)
        0xF8A30080,  # std r5,0x80(r3)
        0x88C30001,  # lbz r6,1(r3)
        0xA0E30002,  # lhz r7,2(r3)
        0x81030004,  # lwz r8,4(r3)
        0xE9230008,  # ld  r9,8(r3)
    ]
    run_snippet(machine, words)
    assert rec.log == [
        ("w", 0, 0x10011, 1, 0x88), ("w", 0, 0x10020, 2, 0x7788), ("w", 0, 0x10040, 4, 0x55667788),
        ("w", 0, 0x10080, 8, r5),
        ("r", 0, 0x10001, 1), ("r", 0, 0x10002, 2), ("r", 0, 0x10004, 4), ("r", 0, 0x10008, 8)]
    v = machine.vcpus[0]
    assert (v.gpr(6), v.gpr(7), v.gpr(8), v.gpr(9)) == (0xA1, 0xB2B2, 0xC4C4C4C4, 0xD8D8D8D8D8D8D8D8)


def test_access_outside_ram_and_windows_is_a_storage_interrupt(machine: SpaprMachine) -> None:
    words = _li64(3, 0x0007_0000_0000_0000) + [0xE8830000]  # ld r4,0(r3)
    run_snippet(machine, words)
    assert machine.stop_reason == "guest-error"  # no 0x300 handler installed
    assert "data storage interrupt (0x300)" in machine.stop_message
