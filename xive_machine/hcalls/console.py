"""The hvc console hcalls, H_PUT_TERM_CHAR and H_GET_TERM_CHAR (QEMU hw/char/spapr_vty.c behaviour)."""

from __future__ import annotations

from xive_machine.errors import HcallError
from xive_machine.hcalls.codes import H, Op
from xive_machine.hcalls.registry import HcallTable
from xive_machine.machine.console import Console

CONSOLE_HCALLS = HcallTable("console")
VTY_REG = 0x71000000  # /vdevice/vty@71000000; vterm 0 means the lowest vty, as QEMU


def _check_vterm(termno: int) -> None:
    if termno not in (0, VTY_REG):
        raise HcallError(H.PARAMETER, "no such vterm")


@CONSOLE_HCALLS.hcall(Op.H_PUT_TERM_CHAR, "H_PUT_TERM_CHAR")
def h_put_term_char(con: Console, cpu: int, termno: int, length: int, hi: int, lo: int) -> tuple[int, ...]:
    """In: R4 vterm, R5 count (<= 16), R6/R7 the bytes packed big-endian (first byte = MSB of R6)."""
    _check_vterm(termno)
    if length > 16:
        return (H.PARAMETER,)
    con.write(((hi << 64) | lo).to_bytes(16, "big")[:length])
    return (H.SUCCESS,)


@CONSOLE_HCALLS.hcall(Op.H_GET_TERM_CHAR, "H_GET_TERM_CHAR")
def h_get_term_char(con: Console, cpu: int, termno: int) -> tuple[int, ...]:
    """In: R4 vterm. Out: R4 count (0..16), R5/R6 the bytes packed big-endian, unused bytes zero."""
    _check_vterm(termno)
    data = con.read(16)
    packed = int.from_bytes(data.ljust(16, b"\0"), "big")
    return (H.SUCCESS, len(data), packed >> 64, packed & 0xFFFF_FFFF_FFFF_FFFF)
