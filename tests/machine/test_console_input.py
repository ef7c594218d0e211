"""H_GET_TERM_CHAR: scripted input (--input FILE) and live input, as the hvc console hcalls see them."""

from __future__ import annotations

from xive_machine.hcalls.codes import H, Op
from xive_machine.machine.config import MachineConfig
from xive_machine.machine.spapr import SpaprMachine


def chars(res: tuple[int, ...]) -> bytes:
    rc, n, hi, lo = res
    assert rc == H.SUCCESS
    return ((hi << 64) | lo).to_bytes(16, "big")[:n]


def test_scripted_then_live_input_packed_big_endian() -> None:
    m = SpaprMachine(MachineConfig(echo_console=False, console_input=b"0123456789abcdefXY"))
    m.prepare()
    assert chars(m.hcall(0, Op.H_GET_TERM_CHAR, 0)) == b"0123456789abcdef"  # at most 16 per call
    assert chars(m.hcall(0, Op.H_GET_TERM_CHAR, 0x71000000)) == b"XY"  # the vty's reg works as termno
    assert chars(m.hcall(0, Op.H_GET_TERM_CHAR, 0)) == b""  # nothing pending: count 0
    m.console.set_live_input(lambda n: b"live"[:n])
    assert chars(m.hcall(0, Op.H_GET_TERM_CHAR, 0)) == b"live"
    assert m.hcall(0, Op.H_GET_TERM_CHAR, 5)[0] == H.PARAMETER  # no such vterm
    m.close()
