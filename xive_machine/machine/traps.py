"""The slow trap path: every synchronous stop that is not `sc 1`, turned into what an LPAR guest sees.

Unicorn reports the cause number but delivers nothing and hides the program-check reason; we decode the
instruction to recover it (illegal, privileged, trap) and deliver the interrupt to the guest's vector (the
instructions an LPAR guest may use but Unicorn refuses, tlbie & co., never get here: the C trap hook serves
them). A vector with no code
(a zero word) means the guest installed no handler: the run stops with a diagnostic instead of looping.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from unicorn import UC_MEM_FETCH_UNMAPPED, UC_MEM_WRITE_UNMAPPED

from xive_machine.cpu import regs as R
from xive_machine.cpu.vcpu import Q_MSR, Q_PC, W_INTNO, VCpu
from xive_machine.machine import exceptions as X
from xive_machine.machine.decode import effective_address

if TYPE_CHECKING:
    from xive_machine.machine.spapr import SpaprMachine

SC0_WORDS = (R.INSN_SC0, int.from_bytes(R.INSN_SC0.to_bytes(4, "big"), "little"))

# HV-only or privileged SPRs (mfspr/mtspr from supervisor state): program interrupt, privileged cause
_HV_SPRS = {R.SPR_HSPRG0, R.SPR_HSPRG1, R.SPR_HDEC, R.SPR_LPCR, R.SPR_LPIDR, R.SPR_HMER, 0x130, 0x131, 0x132,
            0x133, 0x134, 0x135, 0x136, 0x137, 0x138, 0x139, 0x13A, 0x13B, 0x13C, 0x13D, 0x13E, 0x13F}


def _fetch_word(m: SpaprMachine, vcpu: VCpu, addr: int, little: bool) -> int:
    try:
        raw = m.ram.read(addr, 4) if m.ram.contains(addr, 4) else bytes(vcpu.uc.mem_read(addr, 4))
    except Exception:  # noqa: BLE001 - unreadable: treat as no instruction
        return 0
    return int.from_bytes(raw, "little" if little else "big")


def program_cause(insn: int, msr: int) -> int:
    """SRR1 reason bits for a program interrupt Unicorn raised on `insn` (BE word)."""
    op = insn >> 26
    if op in (2, 3):  # tdi, twi
        return X.SRR1_PROGRAM_TRAP
    if op == 31:
        xo = (insn >> 1) & 0x3FF
        if xo in (4, 68):  # tw, td
            return X.SRR1_PROGRAM_TRAP
        if msr & R.MSR_PR and xo in (83, 146, 178, 339, 467, 274, 306, 434, 498):
            return X.SRR1_PROGRAM_PRIVILEGED  # mfmsr, mtmsr, mtmsrd, mfspr, mtspr, tlbie, tlbiel, slbie, slbia
        if xo in (339, 467):
            spr = R.spr_field(insn)
            if spr in _HV_SPRS or (msr & R.MSR_PR and spr not in (1, 8, 9, 256, 268, 269, 3, 13, 815)):
                return X.SRR1_PROGRAM_PRIVILEGED
        if xo in (274, 306, 566, 498, 434):  # tlbie, tlbiel, tlbsync, slbia, slbie: HV-privileged here
            return X.SRR1_PROGRAM_PRIVILEGED
    if op == 19 and ((insn >> 1) & 0x3FF) in (18, 274, 306):  # rfid (PR=1), hrfid, urfid
        return X.SRR1_PROGRAM_PRIVILEGED
    return X.SRR1_PROGRAM_ILLEGAL


def handle(m: SpaprMachine, vcpu: VCpu) -> None:
    """Called from the trap hook for everything but `sc 1`."""
    intno = vcpu.w[W_INTNO]
    pc = vcpu.q[Q_PC]
    msr = vcpu.q[Q_MSR]
    little = bool(msr & R.MSR_LE)
    if intno == R.INTR_SYSCALL:  # sc 0 (or an sc LEV the LPAR maps to the OS)
        deliver(m, vcpu, X.VEC_SYSCALL, pc, 0, msr)
        return
    if intno in (R.INTR_PROGRAM, R.INTR_HV_EMU):
        insn = _fetch_word(m, vcpu, pc - 4, little)
        cause = X.SRR1_PROGRAM_ILLEGAL if intno == R.INTR_HV_EMU else program_cause(insn, msr)
        deliver(m, vcpu, X.VEC_PROGRAM, pc - 4, cause, msr)
        return
    if intno == R.INTR_ALIGN:  # Unicorn leaves DAR unset: compute the EA from the instruction
        insn = _fetch_word(m, vcpu, pc - 4, little)
        ea = effective_address(insn, vcpu.gpr)
        if ea is not None and not msr & R.MSR_SF:
            ea &= 0xFFFF_FFFF
        deliver(m, vcpu, X.VEC_ALIGNMENT, pc - 4, 0, msr, dar=ea if ea is not None else vcpu.spr(R.SPR_DAR))
        return
    if intno == R.INTR_FPU:
        deliver(m, vcpu, X.VEC_FP_UNAVAILABLE, pc - 4, 0, msr)
        return
    if intno == R.INTR_VPU:
        deliver(m, vcpu, X.VEC_VMX_UNAVAILABLE, pc - 4, 0, msr)
        return
    if intno == R.INTR_VSXU:
        deliver(m, vcpu, X.VEC_VSX_UNAVAILABLE, pc - 4, 0, msr)
        return
    if intno in (R.INTR_FU, R.INTR_HV_FU):
        deliver(m, vcpu, X.VEC_FAC_UNAVAILABLE, pc - 4, 0, msr)
        return
    if intno in (R.INTR_DSI, R.INTR_ISI):
        vec = X.VEC_DSI if intno == R.INTR_DSI else X.VEC_ISI
        dar = vcpu.spr(R.SPR_DAR)
        dsisr = vcpu.spr(R.SPR_DSISR)
        deliver(m, vcpu, vec, pc - 4 if vec == X.VEC_DSI else pc, 0, msr, dar=dar, dsisr=dsisr)
        return
    m.guest_error(vcpu, f"unexpected Unicorn interrupt {intno} at {pc - 4:#x}")


def deliver(m: SpaprMachine, vcpu: VCpu, vector: int, srr0: int, cause: int, msr: int,
            dar: int | None = None, dsisr: int | None = None) -> None:
    """Deliver, unless the guest has no handler at `vector` (a zero word): then stop with a diagnostic."""
    if _fetch_word(m, vcpu, vector, m.lpcr_ile) == 0:
        name = X.VECTOR_NAMES.get(vector, hex(vector))
        m.guest_error(vcpu, f"{name} interrupt ({vector:#x}) at {srr0:#x} with no handler installed", srr0=srr0)
        return
    d = X.deliver(vcpu, vector, srr0, cause, ile=m.lpcr_ile, msr=msr, dar=dar, dsisr=dsisr)
    if m.trace is not None:
        m.trace.emit("exc", cpu=vcpu.index, vector=vector, name=X.VECTOR_NAMES.get(vector, ""),
                     srr0=srr0, srr1=d.srr1, **({"dar": dar} if dar is not None else {}))


def bad_access(m: SpaprMachine, vcpu: VCpu, access: int, addr: int, size: int) -> bool:
    """An access outside RAM and every device window: DSI (data) or ISI (fetch) for the guest."""
    pc = vcpu.pc
    msr = vcpu.msr
    if access == UC_MEM_FETCH_UNMAPPED:
        m.pending_fault = (X.VEC_ISI, pc, 0x40000000, None, None)
    else:
        dsisr = X.DSISR_NOPTE | (X.DSISR_STORE if access == UC_MEM_WRITE_UNMAPPED else 0)
        m.pending_fault = (X.VEC_DSI, pc, 0, addr, dsisr)
    m.pending_fault_msr = msr
    return False  # Unicorn aborts the access; the scheduler delivers the fault


def deliver_pending_fault(m: SpaprMachine, vcpu: VCpu) -> None:
    vec, srr0, cause, dar, dsisr = m.pending_fault
    m.pending_fault = None
    deliver(m, vcpu, vec, srr0, cause, m.pending_fault_msr, dar=dar, dsisr=dsisr)


def deliver_mmu_fault(m: SpaprMachine, vcpu: VCpu, fault: tuple[int, int, int, bool]) -> None:
    """A radix walk failed (the TLB-fill hook refused): DSI/ISI, or DSEG/ISEG for a bad quadrant or an EA
    beyond the tree. Unicorn reports only the page: DAR is recomputed from the faulting instruction."""
    page, access, cause, segment = fault
    pc = vcpu.pc
    msr = vcpu.msr
    if access == 18:  # instruction fetch: the cause goes into SRR1
        if segment:
            deliver(m, vcpu, X.VEC_ISEG, pc, 0, msr)
        else:
            deliver(m, vcpu, X.VEC_ISI, pc, cause & ~X.DSISR_STORE, msr)
        return
    dar = page
    pa = vcpu.translate(pc, 18)
    if pa is not None and m.ram.contains(pa, 4):
        insn = int.from_bytes(m.ram.read(pa, 4), "little" if msr & R.MSR_LE else "big")
        ea = effective_address(insn, vcpu.gpr)
        if ea is not None and (ea & ~0xFFF) == page:
            dar = ea
    if segment:
        deliver(m, vcpu, X.VEC_DSEG, pc, 0, msr, dar=dar)
    else:
        deliver(m, vcpu, X.VEC_DSI, pc, 0, msr, dar=dar, dsisr=cause)
