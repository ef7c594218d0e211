"""Serving the SPR instructions Unicorn gets wrong: TB and DEC reads (frozen), DEC writes, PURR/SPURR/VTB
reads (fatal to the host process in Unicorn 2.1.4), and SPRG0 (kept by the machine, see SHADOW_SPRS).

The C block hook scans every block before it first runs (real-mode code in RAM) and hands each such
instruction it has not met to `hook_site`, which puts a code hook on its address and drops the block's
translation; the hook does what the instruction should and steps over it. Code loaded, written or patched
at run time is therefore covered the same way as the kernel image.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from unicorn import UC_HOOK_CODE

from xive_machine.cpu import regs as R

if TYPE_CHECKING:
    from xive_machine.machine.spapr import SpaprMachine

MASK64 = (1 << 64) - 1
DEC_BITS = 56  # ibm,dec-bits: QEMU's POWER9 large decrementer
DEC_SIGN = 1 << (DEC_BITS - 1)
DEC_MASK = (1 << DEC_BITS) - 1

_MFSPR = 0x7C0002A6
_MTSPR = 0x7C0003A6
_MFTB = 0x7C0002E6
_OP_MASK = 0xFC0007FE

# SPRs whose reads we serve (value function chosen in `_read_value`)
# SPRs held by the machine rather than Unicorn (VCpu.shadow): SPRG0, which H_SET_SPRG0 writes on every call
# of the classic hcall loop; serving it here keeps that hcall as cheap as a no-op.
SHADOW_SPRS = {R.SPR_SPRG0}
# PIDR: the TLB-fill walker needs the guest's PID, and a new PID must drop quadrant-0 translations.
MMU_SPRS = {R.SPR_PIDR}
# PVR: Unicorn's only 64-bit server core is a POWER10; the machine presents QEMU 7.2's POWER9 DD2.0.
PRESENTED_PVR = 0x004E1200
TIME_READ_SPRS = ({R.SPR_TBL_R, R.SPR_TBU_R, R.SPR_DEC, R.SPR_PURR, R.SPR_SPURR, R.SPR_VTB_ALT, R.SPR_VTB}
                  | SHADOW_SPRS | MMU_SPRS | {R.SPR_PVR})
TIME_WRITE_SPRS = {R.SPR_DEC} | SHADOW_SPRS | MMU_SPRS
# reads that are the timebase itself (or its upper half): served in C under the deterministic clock
TB_READ_SPRS = {R.SPR_TBL_R, R.SPR_TBU_R, R.SPR_PURR, R.SPR_SPURR, R.SPR_VTB_ALT, R.SPR_VTB}


def classify(insn: int) -> tuple[str, int, int] | None:
    """('r'|'w', spr, gpr) for a time instruction we must serve, else None. Works on the BE word."""
    op = insn & _OP_MASK
    if op in (_MFSPR, _MFTB):
        spr = R.spr_field(insn)
        if spr in TIME_READ_SPRS:
            return ("r", spr, (insn >> 21) & 31)
    elif op == _MTSPR:
        spr = R.spr_field(insn)
        if spr in TIME_WRITE_SPRS:
            return ("w", spr, (insn >> 21) & 31)
    return None


PTESYNC = 0x7C4004AC


def site_word(kind: tuple[str, int, int]) -> int:
    """The instruction (BE word) a recorded site kind stands for (a snapshot keeps kinds, not words)."""
    rw, spr, gpr = kind
    if rw == "s":
        return PTESYNC
    if rw == "h":
        return 0x7C000378 | (gpr << 21) | (gpr << 16) | (gpr << 11)
    return R.mfspr(gpr, spr) if rw == "r" else R.mtspr(spr, gpr)


def is_priority_hint(word: int) -> bool:
    """`or rs,rs,rs` with rs != 0 (HMT_low, HMT_medium ... as cpu_relax and spin loops use them)."""
    rs = (word >> 21) & 31
    return word & 0xFC0007FF == 0x7C000378 and rs != 0 and (word >> 16) & 31 == rs and (word >> 11) & 31 == rs


def hook_site(m: SpaprMachine, addr: int, word: int) -> bool:
    """Hook one instruction (BE word given) on every vCPU and drop the translations that contain it."""
    if addr in m.time_sites:
        return False
    install: Callable[[Any], None]
    if word == PTESYNC:  # where a deferred tlbie completes (the MMU's flush, in C; the instruction runs)
        kind = ("s", 0, 0)  # kinds are one letter: r(ead), w(rite), s(ync), h(int)
        install = lambda v: v.hook_c_site(addr, "sync")  # noqa: E731
    elif is_priority_hint(word):  # or rN,rN,rN: stepped over in C (Unicorn would end the run on each one)
        kind = ("h", 0, (word >> 21) & 31)
        install = lambda v: v.hook_c_site(addr, "hint")  # noqa: E731
    else:
        found = classify(word)
        if found is None:
            return False
        kind = found
        rw, spr, gpr = kind
        if m.clock.mode == "deterministic" and rw == "r" and spr in TB_READ_SPRS:
            # a pure function of instructions retired: no Python on the way
            install = lambda v: v.hook_time_site(addr, spr == R.SPR_TBU_R, gpr)  # noqa: E731
        else:
            install = lambda v: v.uc.hook_add(UC_HOOK_CODE, _on_time_insn, (m, kind), addr, addr)  # noqa: E731
    m.time_sites[addr] = kind
    for v in m.vcpus:
        install(v)
        v.uc.ctl_remove_cache(addr, addr + 4)
    return True


def _on_time_insn(uc: Any, addr: int, size: int, ud: tuple[SpaprMachine, tuple[str, int, int]]) -> None:
    m, (rw, spr, gpr) = ud
    cpu = m.current.index if m.current is not None else 0
    reg = R.GPR[gpr]
    if spr in SHADOW_SPRS:
        shadow = m.vcpus[cpu].shadow
        if rw == "r":
            uc.reg_write(reg, shadow[spr])
        else:
            shadow[spr] = uc.reg_read(reg)
    elif spr == R.SPR_PVR:
        uc.reg_write(reg, PRESENTED_PVR)
    elif spr == R.SPR_PIDR:
        v = m.vcpus[cpu]
        if rw == "r":
            uc.reg_write(reg, v.pidr)
        else:
            v.pidr = uc.reg_read(reg)
    elif rw == "r":
        uc.reg_write(reg, read_spr(m, cpu, spr))
    else:
        write_dec(m, cpu, uc.reg_read(reg))
    uc.reg_write(R.REG_PC, addr + 4)


def read_spr(m: SpaprMachine, cpu: int, spr: int) -> int:
    m.sync_clock()
    tb = m.clock.tb()
    if spr in (R.SPR_TBL_R,):  # mftb / mfspr 268: the whole 64-bit timebase in 64-bit mode
        return tb & MASK64
    if spr == R.SPR_TBU_R:
        return (tb >> 32) & 0xFFFFFFFF
    if spr == R.SPR_DEC:
        return dec_now(m, cpu) & MASK64
    # PURR, SPURR, VTB: a dedicated LPAR's processor time = the timebase
    return tb & MASK64


def dec_now(m: SpaprMachine, cpu: int) -> int:
    """The DEC value now, sign-extended from 56 bits to 64."""
    st = m.cpus[cpu]
    elapsed = m.clock.tb() - st.dec_written_tb
    value = (st.dec_value - elapsed) & DEC_MASK
    if value & DEC_SIGN:
        value |= MASK64 ^ DEC_MASK
    return value


def write_dec(m: SpaprMachine, cpu: int, value: int) -> None:
    m.sync_clock()
    st = m.cpus[cpu]
    value &= DEC_MASK
    st.dec_value = value
    st.dec_written_tb = m.clock.tb()
    if value & DEC_SIGN:  # negative now: the exception condition exists at once
        st.dec_pending = True
        st.dec_deadline_tb = None
        m.request_irq_check(cpu)
    else:
        st.dec_pending = False
        st.dec_deadline_tb = st.dec_written_tb + value + 1
    m.update_deadline(cpu)
