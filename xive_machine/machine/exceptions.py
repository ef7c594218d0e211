"""Interrupt delivery as POWER does it for an LPAR guest (AIL = 0: real-mode vectors).

Unicorn reports synchronous exceptions but delivers nothing; this module computes SRR0, SRR1 and the new
MSR and moves the vCPU to the vector, in either interrupt endianness (LPCR[ILE], set with H_SET_MODE).
"""

from __future__ import annotations

from dataclasses import dataclass

from xive_machine.cpu import regs as R
from xive_machine.cpu.vcpu import VCpu

VEC_SYSTEM_RESET = 0x100
VEC_MACHINE_CHECK = 0x200
VEC_DSI = 0x300
VEC_DSEG = 0x380
VEC_ISI = 0x400
VEC_ISEG = 0x480
VEC_EXTERNAL = 0x500
VEC_ALIGNMENT = 0x600
VEC_PROGRAM = 0x700
VEC_FP_UNAVAILABLE = 0x800
VEC_DECREMENTER = 0x900
VEC_SYSCALL = 0xC00
VEC_TRACE = 0xD00
VEC_PERF = 0xF00
VEC_VMX_UNAVAILABLE = 0xF20
VEC_VSX_UNAVAILABLE = 0xF40
VEC_FAC_UNAVAILABLE = 0xF60

VECTOR_NAMES = {
    VEC_SYSTEM_RESET: "system reset", VEC_MACHINE_CHECK: "machine check", VEC_DSI: "data storage",
    VEC_DSEG: "data segment", VEC_ISI: "instruction storage", VEC_ISEG: "instruction segment",
    VEC_EXTERNAL: "external", VEC_ALIGNMENT: "alignment", VEC_PROGRAM: "program",
    VEC_FP_UNAVAILABLE: "floating-point unavailable", VEC_DECREMENTER: "decrementer",
    VEC_SYSCALL: "system call", VEC_TRACE: "trace", VEC_PERF: "performance monitor",
    VEC_VMX_UNAVAILABLE: "vector unavailable", VEC_VSX_UNAVAILABLE: "VSX unavailable",
    VEC_FAC_UNAVAILABLE: "facility unavailable",
}

# SRR1 cause bits of a program interrupt (ISA bits 43..46)
SRR1_PROGRAM_FP = 0x100000
SRR1_PROGRAM_ILLEGAL = 0x80000
SRR1_PROGRAM_PRIVILEGED = 0x40000
SRR1_PROGRAM_TRAP = 0x20000
SRR1_PROGRAM_NEXT = 0x10000  # SRR0 holds the next instruction's address

# MSR bits copied to SRR1 (ISA bits 0:32, 37:41, 48:63); the rest of SRR1 carries the cause.
SRR1_MSR_MASK = 0xFFFF_FFFF_87C0_FFFF
# bits an interrupt keeps from the old MSR; everything else is cleared, then SF set and LE = ILE
MSR_KEEP_ON_INTERRUPT = R.MSR_ME | R.MSR_HV

# DSISR bits
DSISR_NOPTE = 0x40000000  # translation not found
DSISR_PROTFAULT = 0x08000000
DSISR_STORE = 0x02000000


@dataclass(slots=True)
class Delivered:
    vector: int
    srr0: int
    srr1: int
    msr: int


def deliver(vcpu: VCpu, vector: int, srr0: int, cause: int = 0, *, ile: bool = False,
            msr: int | None = None, dar: int | None = None, dsisr: int | None = None) -> Delivered:
    """Take an interrupt on `vcpu`: SRR0 = srr0, SRR1 = MSR bits | cause, new MSR, PC = vector."""
    old = vcpu.guest_msr if msr is None else msr
    srr1 = (old & SRR1_MSR_MASK) | cause
    new = (old & MSR_KEEP_ON_INTERRUPT) | R.MSR_SF | (R.MSR_LE if ile else 0)
    writes = [(R.SPR_SRR0, srr0), (R.SPR_SRR1, srr1)]
    if dar is not None:
        writes.append((R.SPR_DAR, dar))
    if dsisr is not None:
        writes.append((R.SPR_DSISR, dsisr))
    if not vcpu.write_sprs_and_jump(writes, vector, new):
        vcpu.write_sprs(writes, then_pc=vector, then_msr=new)
    return Delivered(vector, srr0, srr1, new)
