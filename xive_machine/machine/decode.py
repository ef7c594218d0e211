"""Effective-address decoding of load/store instructions, for the interrupts where Unicorn does not give us
the data address (alignment: DAR must hold the EA of the access; the ISA leaves DSISR undefined)."""

from __future__ import annotations

from collections.abc import Callable

MASK64 = (1 << 64) - 1

# primary opcodes of D-form loads/stores (EA = (RA|0) + EXTS(D))
_D_FORM = {32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55}
# DS-form (EA = (RA|0) + EXTS(DS || 0b00)): ld/ldu/lwa (58), std/stdu/stq (62), lq (56)
_DS_FORM = {56, 58, 62}


def _exts16(v: int) -> int:
    return v - 0x10000 if v & 0x8000 else v


def effective_address(insn: int, gpr: Callable[[int], int]) -> int | None:
    """EA of the load/store `insn` (BE word) given a GPR reader, or None if it is not one we decode."""
    op = insn >> 26
    ra = (insn >> 16) & 31
    base = gpr(ra) if ra else 0
    if op in _D_FORM:
        return (base + _exts16(insn & 0xFFFF)) & MASK64
    if op in _DS_FORM:
        return (base + _exts16(insn & 0xFFFC)) & MASK64
    if op == 31:  # X-form indexed: EA = (RA|0) + RB (lwarx, ldarx, stwcx., lwzx, stdx, lhbrx, ...)
        rb = (insn >> 11) & 31
        return (base + gpr(rb)) & MASK64
    return None
