"""Registers Unicorn's API gets wrong or does not reach, as VCpu serves them (snapshots depend on these)."""

from __future__ import annotations

import os

from xive_machine.cpu import regs as R
from xive_machine.machine.config import MachineConfig
from xive_machine.machine.spapr import SpaprMachine


def _vcpu(hello_elf: str):  # noqa: ANN202 - a VCpu
    m = SpaprMachine(MachineConfig(echo_console=False))
    m.load(hello_elf)
    return m, m.vcpus[0]


def test_vector_state_round_trips_and_reading_it_changes_nothing(image) -> None:  # noqa: ANN001
    _, v = _vcpu(image("hello"))
    state = bytearray(os.urandom(v.VSX_STATE_SIZE))
    state[-16:] = bytes(12) + b"\x00\x01\x00\x01"  # VSCR: NJ and SAT, the only defined bits
    v.set_vector_state(bytes(state))
    assert v.vector_state() == bytes(state)
    assert v.vector_state() == bytes(state)  # v0, used to read VSCR, is put back


def test_xer_carry_bits_round_trip_and_stay_live(image) -> None:  # noqa: ANN001
    """A raw register write would leave CA stuck in XER; through mtxer it behaves as a guest-set CA."""
    m, v = _vcpu(image("hello"))
    v.xer = 0x2004_0000  # CA and CA32
    assert v.xer == 0x2004_0000
    v.xer = 0
    assert v.xer == 0
    assert v.reg(R.REG_XER) == 0
    assert m.run(timeout=30).reason == "power-off"
