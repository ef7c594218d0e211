"""Register ids, SPR numbers and MSR bits of the POWER core, in one place. Not what the registers mean to PAPR."""

from __future__ import annotations

from unicorn import ppc_const as P

REG_PC = P.UC_PPC_REG_PC
REG_MSR = P.UC_PPC_REG_MSR
REG_LR = P.UC_PPC_REG_LR
REG_CTR = P.UC_PPC_REG_CTR
REG_XER = P.UC_PPC_REG_XER
REG_CR = P.UC_PPC_REG_CR
GPR = [P.UC_PPC_REG_0 + i for i in range(32)]
FPR = [P.UC_PPC_REG_FPR0 + i for i in range(32)]
FPSCR = getattr(P, "UC_PPC_REG_FPSCR", None)

# MSR bits (64-bit numbering from the least significant bit)
MSR_SF = 1 << 63
MSR_HV = 1 << 60
MSR_VEC = 1 << 25
MSR_VSX = 1 << 23
MSR_EE = 1 << 15
MSR_PR = 1 << 14
MSR_FP = 1 << 13
MSR_ME = 1 << 12
MSR_FE0 = 1 << 11
MSR_SE = 1 << 10
MSR_BE = 1 << 9
MSR_FE1 = 1 << 8
MSR_IR = 1 << 5
MSR_DR = 1 << 4
MSR_PMM = 1 << 2
MSR_RI = 1 << 1
MSR_LE = 1 << 0

# SPR numbers
SPR_XER = 1
SPR_DSCR_U = 3
SPR_LR = 8
SPR_CTR = 9
SPR_DSCR = 17
SPR_DSISR = 18
SPR_DAR = 19
SPR_DEC = 22
SPR_SDR1 = 25
SPR_SRR0 = 26
SPR_SRR1 = 27
SPR_CFAR = 28
SPR_AMR = 29
SPR_PIDR = 48
SPR_CTRL_R = 136
SPR_CTRL_W = 152
SPR_FSCR = 153
SPR_UAMOR = 157
SPR_PSPB = 159
SPR_DPDES = 176
SPR_TBL_R = 268
SPR_TBU_R = 269
SPR_SPRG0 = 272
SPR_SPRG1 = 273
SPR_SPRG2 = 274
SPR_SPRG3 = 275
SPR_TBL_W = 284
SPR_TBU_W = 285
SPR_PVR = 287
SPR_HSPRG0 = 304
SPR_HSPRG1 = 305
SPR_HDEC = 310
SPR_PURR = 309
SPR_SPURR = 308
SPR_LPCR = 318
SPR_LPIDR = 319
SPR_HMER = 336
SPR_DAWR0 = 180
SPR_CIABR = 187
SPR_PPR = 896
SPR_PIR = 1023
SPR_VTB = 351
SPR_VRSAVE = 256
SPR_DABR = 1013
SPR_DABRX = 1015
SPR_IAMR = 61
SPR_TAR = 815
SPR_PSSCR = 855
SPR_VTB_ALT = 849  # the ISA's VTB number; Unicorn 2.1.4 crashes on it

# Unicorn interrupt numbers seen by UC_HOOK_INTR (QEMU's POWERPC_EXCP_* enumeration)
INTR_MCHECK = 1
INTR_DSI = 2
INTR_ISI = 3
INTR_EXTERNAL = 4
INTR_ALIGN = 5
INTR_PROGRAM = 6
INTR_FPU = 7
INTR_SYSCALL = 8
INTR_DECR = 10
INTR_TRACE = 15
INTR_HDSI = 16  # not used by a PR/LPAR core
INTR_VPU = 73
INTR_VSXU = 94
INTR_FU = 95
INTR_HV_FU = 98
INTR_HISI = 70
INTR_HV_EMU = 96

INSN_SC1 = 0x44000022
INSN_SC0 = 0x44000002


def mfspr(rt: int, spr: int) -> int:
    """Encode `mfspr rt, spr`."""
    return 0x7C0002A6 | (rt << 21) | ((spr & 0x1F) << 16) | ((spr >> 5) << 11)


def mtspr(spr: int, rs: int) -> int:
    """Encode `mtspr spr, rs`."""
    return 0x7C0003A6 | (rs << 21) | ((spr & 0x1F) << 16) | ((spr >> 5) << 11)


def spr_field(insn: int) -> int:
    """The SPR number of an mfspr/mtspr word (the two 5-bit halves swapped back)."""
    return ((insn >> 16) & 0x1F) | (((insn >> 11) & 0x1F) << 5)
