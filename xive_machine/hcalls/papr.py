"""The core PAPR hcalls of QEMU 7.2's pseries machine (POWER9 under TCG, default capabilities): SPR setters,
H_PAGE_INIT, the logical load/store "debugger" calls, VPA registration, cede/confer/prod/join, H_SET_MODE,
H_RANDOM, H_GET_CPU_CHARACTERISTICS, H_SIGNAL_SYS_RESET and KVMPPC_H_LOGICAL_MEMOP.

Return codes and the order of the checks follow QEMU 7.2 hw/ppc/spapr_hcall.c (and spapr_rng.c for H_RANDOM),
confirmed where noted by running qemu-system-ppc64 7.2.22 (`-M pseries,x-vof=on -cpu POWER9`, TCG). The one
deliberate difference is H_PROD, which really wakes a ceded vCPU (QEMU 7.2 does not), and H_SET_MODE AIL, which
accepts only AIL = 0 because this machine delivers interrupts in real mode only.

Guest physical memory is accessed as QEMU's ld*_phys/st*_phys do on this machine: RAM is big-endian, bytes
outside RAM read as zero and stores to them are dropped (QEMU's unassigned memory, measured), so no address a
guest passes can raise.

The handlers use only this part of the machine `m`: `nr_cpus`, `ram` (GuestRam), `vcpus[i].msr` (read/write),
`vcpus[i].set_spr(n, v)`, `cpus[i]` (CpuState: `state`, `prod`, `vpa`, `dtl`, `slb_shadow`, `dispatch`),
`cede(cpu)`, `prod(target)`, `confer(cpu, target)`, `set_ile(bool)`, `config.rng`, `random_u64()` and
`signal_sys_reset(cpu)`.
"""

from __future__ import annotations

from typing import Any

from xive_machine.cpu.regs import MSR_EE, SPR_SPRG0
from xive_machine.hcalls.codes import H, Op
from xive_machine.hcalls.registry import HcallTable
from xive_machine.memory.ram import GuestRam

PAPR_HCALLS = HcallTable("papr")

MASK32 = 0xFFFF_FFFF
MASK64 = 0xFFFF_FFFF_FFFF_FFFF
RUNNING = "running"  # CpuState.state values (machine/spapr.py)

PAGE_SIZE = 4096  # TARGET_PAGE_SIZE of ppc64
DCACHE_LINE_SIZE = 128  # POWER9 env->dcache_line_size

# H_PAGE_INIT flags
H_ICACHE_INVALIDATE = 1 << 23
H_ICACHE_SYNCHRONIZE = 1 << 22
H_ZERO_PAGE = 1 << 15
H_COPY_PAGE = 1 << 14

# H_REGISTER_VPA sub-functions: flags must equal one of these exactly
FLAGS_REGISTER_VPA = 0x0000_2000_0000_0000
FLAGS_REGISTER_DTL = 0x0000_4000_0000_0000
FLAGS_REGISTER_SLBSHADOW = 0x0000_6000_0000_0000
FLAGS_DEREGISTER_VPA = 0x0000_A000_0000_0000
FLAGS_DEREGISTER_DTL = 0x0000_C000_0000_0000
FLAGS_DEREGISTER_SLBSHADOW = 0x0000_E000_0000_0000
VPA_MIN_SIZE = 640
VPA_SHARED_PROC_OFFSET = 0x9
VPA_SHARED_PROC_VAL = 0x2
VPA_DISPATCH_COUNTER = 0x100
DTL_MIN_SIZE = 48
SLB_SHADOW_MIN_SIZE = 8

# H_SET_MODE
H_SET_MODE_RESOURCE_SET_CIABR = 1
H_SET_MODE_RESOURCE_SET_DAWR0 = 2
H_SET_MODE_RESOURCE_ADDR_TRANS_MODE = 3
H_SET_MODE_RESOURCE_LE = 4
H_SET_MODE_ENDIAN_BIG = 0
H_SET_MODE_ENDIAN_LITTLE = 1

# H_SIGNAL_SYS_RESET broadcast targets
H_SIGNAL_SYS_RESET_ALL = -1
H_SIGNAL_SYS_RESET_ALLBUTSELF = -2


def ppc_bit(n: int) -> int:
    """PPC_BIT: bit n in MSB-0 numbering of a 64-bit word."""
    return 1 << (63 - n)


# H_GET_CPU_CHARACTERISTICS bits (include/hw/ppc/spapr.h)
H_CPU_CHAR_SPEC_BAR_ORI31 = ppc_bit(0)
H_CPU_CHAR_BCCTRL_SERIALISED = ppc_bit(1)
H_CPU_CHAR_L1D_FLUSH_ORI30 = ppc_bit(2)
H_CPU_CHAR_L1D_FLUSH_TRIG2 = ppc_bit(3)
H_CPU_CHAR_L1D_THREAD_PRIV = ppc_bit(4)
H_CPU_CHAR_HON_BRANCH_HINTS = ppc_bit(5)
H_CPU_CHAR_THR_RECONF_TRIG = ppc_bit(6)
H_CPU_CHAR_CACHE_COUNT_DIS = ppc_bit(7)
H_CPU_CHAR_BCCTR_FLUSH_ASSIST = ppc_bit(9)
H_CPU_BEHAV_FAVOUR_SECURITY = ppc_bit(0)
H_CPU_BEHAV_L1D_FLUSH_PR = ppc_bit(1)
H_CPU_BEHAV_BNDS_CHK_SPEC_BAR = ppc_bit(2)
H_CPU_BEHAV_FLUSH_COUNT_CACHE = ppc_bit(5)
H_CPU_BEHAV_NO_L1D_FLUSH_ENTRY = ppc_bit(7)
H_CPU_BEHAV_NO_L1D_FLUSH_UACCESS = ppc_bit(8)

# sPAPR capability values (cap-cfpc, cap-sbbc, cap-ibs, cap-ccf-assist)
SPAPR_CAP_BROKEN = 0x00
SPAPR_CAP_WORKAROUND = 0x01
SPAPR_CAP_FIXED = 0x02
SPAPR_CAP_FIXED_IBS = 0x02
SPAPR_CAP_FIXED_CCD = 0x03
SPAPR_CAP_FIXED_NA = 0x10
SPAPR_CAP_OFF = 0x00
SPAPR_CAP_ON = 0x01


def cpu_characteristics(cfpc: int, sbbc: int, ibs: int, ccf_assist: int) -> tuple[int, int]:
    """(characteristics, behaviour) for the given caps, as QEMU's h_get_cpu_characteristics computes them."""
    char = H_CPU_CHAR_HON_BRANCH_HINTS & ~H_CPU_CHAR_THR_RECONF_TRIG
    behav = H_CPU_BEHAV_FAVOUR_SECURITY
    if cfpc == SPAPR_CAP_WORKAROUND:
        char |= H_CPU_CHAR_L1D_FLUSH_ORI30 | H_CPU_CHAR_L1D_FLUSH_TRIG2 | H_CPU_CHAR_L1D_THREAD_PRIV
        behav |= H_CPU_BEHAV_L1D_FLUSH_PR
    elif cfpc == SPAPR_CAP_FIXED:
        behav |= H_CPU_BEHAV_NO_L1D_FLUSH_ENTRY | H_CPU_BEHAV_NO_L1D_FLUSH_UACCESS
    else:  # broken
        behav |= H_CPU_BEHAV_L1D_FLUSH_PR
    if sbbc == SPAPR_CAP_WORKAROUND:
        char |= H_CPU_CHAR_SPEC_BAR_ORI31
        behav |= H_CPU_BEHAV_BNDS_CHK_SPEC_BAR
    elif sbbc != SPAPR_CAP_FIXED:  # broken
        behav |= H_CPU_BEHAV_BNDS_CHK_SPEC_BAR
    if ibs == SPAPR_CAP_FIXED_CCD:
        char |= H_CPU_CHAR_CACHE_COUNT_DIS
    elif ibs == SPAPR_CAP_FIXED_IBS:
        char |= H_CPU_CHAR_BCCTRL_SERIALISED
    elif ibs == SPAPR_CAP_WORKAROUND:
        behav |= H_CPU_BEHAV_FLUSH_COUNT_CACHE
        if ccf_assist:
            char |= H_CPU_CHAR_BCCTR_FLUSH_ASSIST
    return char, behav


# pseries-7.2 defaults: cap-cfpc/sbbc/ibs=workaround, cap-ccf-assist=on. TCG only warns that it does not
# implement them and keeps the values, so the guest sees 0xbc40000000000000 / 0xe400000000000000 (measured).
CPU_CHARACTERISTICS, CPU_BEHAVIOUR = cpu_characteristics(
    SPAPR_CAP_WORKAROUND, SPAPR_CAP_WORKAROUND, SPAPR_CAP_WORKAROUND, SPAPR_CAP_ON)


# ------------------------------------------------------------------------------------------------------------
# guest physical memory as QEMU's address_space_* sees it on this machine
def _ram_windows(ram: GuestRam, addr: int, size: int):
    """(offset into the access, RAM address, length) of the parts of [addr, addr+size) mod 2^64 inside RAM."""
    for base in (addr, addr - (1 << 64)):  # the second catches an access that wraps past 2^64
        lo, hi = max(base, 0), min(base + size, ram.size)
        if lo < hi:
            yield lo - base, lo, hi - lo


def phys_read(ram: GuestRam, addr: int, size: int) -> bytes:
    """`size` bytes at guest physical `addr`; bytes outside RAM read as zero."""
    out = bytearray(size)
    for off, at, n in _ram_windows(ram, addr & MASK64, size):
        out[off:off + n] = ram.buf[at:at + n]
    return bytes(out)


def phys_write(ram: GuestRam, addr: int, data: bytes | bytearray) -> None:
    """Store `data` at guest physical `addr`; the part outside RAM is dropped. Marks the pages dirty."""
    for off, at, n in _ram_windows(ram, addr & MASK64, len(data)):
        ram.buf[at:at + n] = data[off:off + n]
        ram.mark_dirty(at, n)


def phys_ld(ram: GuestRam, addr: int, size: int) -> int:
    """Big-endian load of `size` bytes (ld*_phys)."""
    return int.from_bytes(phys_read(ram, addr, size), "big")


def phys_st(ram: GuestRam, addr: int, size: int, value: int) -> None:
    """Big-endian store of the low `size` bytes of `value` (st*_phys)."""
    phys_write(ram, addr, (value & ((1 << (8 * size)) - 1)).to_bytes(size, "big"))


def _signed64(value: int) -> int:
    value &= MASK64
    return value - (1 << 64) if value >> 63 else value


def find_cpu(m: Any, value: int) -> int | None:
    """spapr_find_cpu: QEMU passes the guest's value as a C int (low 32 bits, signed); ids are 0..nr_cpus-1."""
    cpu_id = value & MASK32
    if cpu_id >> 31:
        return None
    return cpu_id if cpu_id < m.nr_cpus else None


def _halted(m: Any, cpu: int) -> bool:
    """QEMU's cs->halted: stopped, ceded or waiting for a prod (anything but running)."""
    return m.cpus[cpu].state != RUNNING


# ------------------------------------------------------------------------------------------------------------
# processor register resources
@PAPR_HCALLS.hcall(Op.H_SET_SPRG0, "H_SET_SPRG0")
def h_set_sprg0(m: Any, cpu: int, value: int) -> tuple[int, ...]:
    """In: R4 new SPRG0. Out: nothing. Always H_SUCCESS (QEMU h_set_sprg0)."""
    m.vcpus[cpu].set_spr(SPR_SPRG0, value & MASK64)
    return (H.SUCCESS,)


@PAPR_HCALLS.hcall(Op.H_SET_DABR, "H_SET_DABR")
def h_set_dabr(m: Any, cpu: int, dabr: int) -> tuple[int, ...]:
    """In: R4 DABR value. Out: nothing.

    QEMU h_set_dabr first checks that the CPU has a DABR SPR; POWER9 (like POWER8 and POWER10) registers only
    the ISA 2.07 debug SPRs (DAWR0, DAWRX0, CIABR), so the answer is always H_HARDWARE (measured on 7.2).
    """
    return (H.HARDWARE,)


@PAPR_HCALLS.hcall(Op.H_SET_XDABR, "H_SET_XDABR")
def h_set_xdabr(m: Any, cpu: int, dabr: int, dabrx: int) -> tuple[int, ...]:
    """In: R4 DABR value, R5 DABRX. Out: nothing. H_HARDWARE on POWER9, which has no DABR/DABRX (QEMU
    h_set_xdabr checks the SPRs before the DABRX bits; measured on 7.2)."""
    return (H.HARDWARE,)


@PAPR_HCALLS.hcall(Op.H_PAGE_INIT, "H_PAGE_INIT")
def h_page_init(m: Any, cpu: int, flags: int, dst: int, src: int) -> tuple[int, ...]:
    """In: R4 flags (H_ICACHE_INVALIDATE, H_ICACHE_SYNCHRONIZE, H_ZERO_PAGE, H_COPY_PAGE), R5 destination,
    R6 source. Out: nothing.

    QEMU h_page_init order: unknown flag bits -> H_PARAMETER; destination outside RAM or not 4 KiB aligned ->
    H_PARAMETER; with H_COPY_PAGE the same test on the source, else H_ZERO_PAGE clears the page. H_COPY_PAGE
    wins when both are set. The icache flags need no action here (QEMU flushes its translation cache).
    """
    if flags & ~(H_ICACHE_SYNCHRONIZE | H_ICACHE_INVALIDATE | H_COPY_PAGE | H_ZERO_PAGE):
        return (H.PARAMETER,)
    ram = m.ram
    if dst >= ram.size or dst & (PAGE_SIZE - 1):
        return (H.PARAMETER,)
    if flags & H_COPY_PAGE:
        if src >= ram.size or src & (PAGE_SIZE - 1):
            return (H.PARAMETER,)
        phys_write(ram, dst, phys_read(ram, src, PAGE_SIZE))
    elif flags & H_ZERO_PAGE:
        phys_write(ram, dst, bytes(PAGE_SIZE))
    return (H.SUCCESS,)


# ------------------------------------------------------------------------------------------------------------
# the "debugger" hcalls: CI and cache variants behave alike, as in QEMU
_LOAD_SIZES = (1, 2, 4, 8)


@PAPR_HCALLS.hcall(Op.H_LOGICAL_CI_LOAD, "H_LOGICAL_CI_LOAD")
def h_logical_ci_load(m: Any, cpu: int, size: int, addr: int) -> tuple[int, ...]:
    """In: R4 size (1, 2, 4 or 8), R5 real address. Out: R4 the value (big-endian; 0 outside RAM).

    QEMU h_logical_load: any other size -> H_PARAMETER; no alignment check.
    """
    if size not in _LOAD_SIZES:
        return (H.PARAMETER,)
    return (H.SUCCESS, phys_ld(m.ram, addr, size))


@PAPR_HCALLS.hcall(Op.H_LOGICAL_CI_STORE, "H_LOGICAL_CI_STORE")
def h_logical_ci_store(m: Any, cpu: int, size: int, addr: int, value: int) -> tuple[int, ...]:
    """In: R4 size (1, 2, 4 or 8), R5 real address, R6 value (its low `size` bytes). Out: nothing.

    QEMU h_logical_store: any other size -> H_PARAMETER; a store outside RAM is dropped and succeeds.
    """
    if size not in _LOAD_SIZES:
        return (H.PARAMETER,)
    phys_st(m.ram, addr, size, value)
    return (H.SUCCESS,)


@PAPR_HCALLS.hcall(Op.H_LOGICAL_CACHE_LOAD, "H_LOGICAL_CACHE_LOAD")
def h_logical_cache_load(m: Any, cpu: int, size: int, addr: int) -> tuple[int, ...]:
    """In: R4 size, R5 real address. Out: R4 the value. Same handler as H_LOGICAL_CI_LOAD in QEMU."""
    return h_logical_ci_load(m, cpu, size, addr)


@PAPR_HCALLS.hcall(Op.H_LOGICAL_CACHE_STORE, "H_LOGICAL_CACHE_STORE")
def h_logical_cache_store(m: Any, cpu: int, size: int, addr: int, value: int) -> tuple[int, ...]:
    """In: R4 size, R5 real address, R6 value. Out: nothing. Same handler as H_LOGICAL_CI_STORE in QEMU."""
    return h_logical_ci_store(m, cpu, size, addr, value)


@PAPR_HCALLS.hcall(Op.H_LOGICAL_ICBI, "H_LOGICAL_ICBI")
def h_logical_icbi(m: Any, cpu: int) -> tuple[int, ...]:
    """In: (ignored). Out: nothing. A no-op under emulation: H_SUCCESS (QEMU h_logical_icbi)."""
    return (H.SUCCESS,)


@PAPR_HCALLS.hcall(Op.H_LOGICAL_DCBF, "H_LOGICAL_DCBF")
def h_logical_dcbf(m: Any, cpu: int) -> tuple[int, ...]:
    """In: (ignored). Out: nothing. A no-op under emulation: H_SUCCESS (QEMU h_logical_dcbf)."""
    return (H.SUCCESS,)


_INVERT = bytes(range(255, -1, -1))
MEMOP_CHUNK = 1 << 22  # bytes copied per step: bounded host memory, and the same result as QEMU's element loop


@PAPR_HCALLS.hcall(Op.KVMPPC_H_LOGICAL_MEMOP, "KVMPPC_H_LOGICAL_MEMOP")
def h_logical_memop(m: Any, cpu: int, dst: int, src: int, esize: int, count: int, op: int) -> tuple[int, ...]:
    """In: R4 destination, R5 source, R6 log2 of the element size (0..3), R7 element count, R8 op (0 copy,
    1 copy inverted). Out: nothing.

    QEMU h_logical_memop order: count > 0x80000000 -> H_PARAMETER; dst or src not aligned to the element, or
    op > 1 -> H_PARAMETER; esize > 3 -> H_PARAMETER, but only once an element is processed (count 0 succeeds).
    QEMU computes the alignment mask as a C `1 << esize` in a 32-bit int, which an x86 host takes modulo 32:
    matched here (measured: esize 32, count 0 -> H_SUCCESS; esize 31, odd dst -> H_PARAMETER). Source bytes
    outside RAM read as zero and destination bytes outside RAM are dropped, so the copy never fails on an
    address. The copy goes in chunks in QEMU's direction (backwards when dst lies inside the source range),
    which gives the same bytes as its element loop (memmove semantics for overlaps).
    """
    if count > 0x8000_0000:
        return (H.PARAMETER,)
    mask = ((1 << (esize & 31)) - 1) & MASK32 if esize > 3 else (1 << esize) - 1
    if (dst & mask) or (src & mask) or op > 1:
        return (H.PARAMETER,)
    if count == 0:
        return (H.SUCCESS,)
    if esize > 3:
        return (H.PARAMETER,)
    ram = m.ram
    nbytes = count << esize
    backward = src <= dst < ((src + nbytes) & MASK64)  # QEMU's test for walking the elements from the end
    for off, at, n in list(_ram_windows(ram, dst, nbytes)):  # only destination bytes inside RAM matter
        starts = range(0, n, MEMOP_CHUNK)
        for start in reversed(starts) if backward else starts:
            size = min(MEMOP_CHUNK, n - start)
            data = phys_read(ram, src + off + start, size)
            ram.buf[at + start:at + start + size] = data.translate(_INVERT) if op == 1 else data
            ram.mark_dirty(at + start, size)
    return (H.SUCCESS,)


# ------------------------------------------------------------------------------------------------------------
# hcall-splpar: VPA, cede, confer, prod; hcall-join
def _register_vpa(m: Any, target: int, vpa: int) -> int:
    """QEMU register_vpa."""
    if vpa == 0:
        return H.HARDWARE
    if vpa % DCACHE_LINE_SIZE:
        return H.PARAMETER
    ram = m.ram
    size = phys_ld(ram, vpa + 0x4, 2)
    if size < VPA_MIN_SIZE:
        return H.PARAMETER
    if vpa // PAGE_SIZE != ((vpa + size - 1) & MASK64) // PAGE_SIZE:  # must not cross a 4 KiB page
        return H.PARAMETER
    st = m.cpus[target]
    st.vpa = vpa
    shared = phys_ld(ram, vpa + VPA_SHARED_PROC_OFFSET, 1) | VPA_SHARED_PROC_VAL
    phys_st(ram, vpa + VPA_SHARED_PROC_OFFSET, 1, shared)
    phys_st(ram, vpa + VPA_DISPATCH_COUNTER, 4, st.dispatch)
    return H.SUCCESS


def _deregister_vpa(m: Any, target: int) -> int:
    """QEMU deregister_vpa: refused while an SLB shadow or a DTL is registered."""
    st = m.cpus[target]
    if st.slb_shadow or st.dtl:
        return H.RESOURCE
    st.vpa = 0
    return H.SUCCESS


def _register_slb_shadow(m: Any, target: int, addr: int) -> int:
    """QEMU register_slb_shadow: size (u32 at +4) >= 8, no 4 KiB crossing, a VPA first. No alignment check."""
    if addr == 0:
        return H.HARDWARE
    size = phys_ld(m.ram, addr + 0x4, 4)
    if size < SLB_SHADOW_MIN_SIZE:
        return H.PARAMETER
    if addr // PAGE_SIZE != ((addr + size - 1) & MASK64) // PAGE_SIZE:
        return H.PARAMETER
    st = m.cpus[target]
    if not st.vpa:
        return H.RESOURCE
    st.slb_shadow = addr
    return H.SUCCESS


def _register_dtl(m: Any, target: int, addr: int) -> int:
    """QEMU register_dtl: size (u32 at +4) >= 48 and a VPA first. No alignment or crossing check."""
    if addr == 0:
        return H.HARDWARE
    size = phys_ld(m.ram, addr + 0x4, 4)
    if size < DTL_MIN_SIZE:
        return H.PARAMETER
    st = m.cpus[target]
    if not st.vpa:
        return H.RESOURCE
    st.dtl = addr
    return H.SUCCESS


@PAPR_HCALLS.hcall(Op.H_REGISTER_VPA, "H_REGISTER_VPA")
def h_register_vpa(m: Any, cpu: int, flags: int, procno: int, addr: int) -> tuple[int, ...]:
    """In: R4 flags (sub-function in bits 16-18: 1 register VPA, 2 register DTL, 3 register SLB shadow,
    5/6/7 deregister them), R5 processor id, R6 the area's real address. Out: nothing.

    QEMU h_register_vpa order: unknown processor -> H_PARAMETER; flags other than the six exact values ->
    H_PARAMETER. Register VPA: address 0 -> H_HARDWARE, not 128-byte aligned or u16 size at +4 below 640 or
    crossing a 4 KiB page -> H_PARAMETER; on success byte +9 gets the shared-processor bit 0x02 and the
    dispatch counter is written at +0x100. DTL (u32 size >= 48) and SLB shadow (u32 size >= 8, no 4 KiB
    crossing) need a VPA (H_RESOURCE); deregistering a VPA while either is registered -> H_RESOURCE.
    """
    target = find_cpu(m, procno)
    if target is None:
        return (H.PARAMETER,)
    if flags == FLAGS_REGISTER_VPA:
        rc = _register_vpa(m, target, addr)
    elif flags == FLAGS_DEREGISTER_VPA:
        rc = _deregister_vpa(m, target)
    elif flags == FLAGS_REGISTER_SLBSHADOW:
        rc = _register_slb_shadow(m, target, addr)
    elif flags == FLAGS_DEREGISTER_SLBSHADOW:
        m.cpus[target].slb_shadow = 0
        rc = H.SUCCESS
    elif flags == FLAGS_REGISTER_DTL:
        rc = _register_dtl(m, target, addr)
    elif flags == FLAGS_DEREGISTER_DTL:
        m.cpus[target].dtl = 0
        rc = H.SUCCESS
    else:
        rc = H.PARAMETER
    return (rc,)


@PAPR_HCALLS.hcall(Op.H_CEDE, "H_CEDE")
def h_cede(m: Any, cpu: int) -> tuple[int, ...]:
    """In: nothing. Out: nothing. Always H_SUCCESS.

    QEMU h_cede: sets MSR[EE]; a pending prod is consumed and the call returns at once; otherwise the vCPU
    idles (m.cede) until an interrupt, a prod or its decrementer.
    """
    v = m.vcpus[cpu]
    v.msr = v.msr | MSR_EE
    st = m.cpus[cpu]
    if st.prod:
        st.prod = False
        return (H.SUCCESS,)
    m.cede(cpu)
    return (H.SUCCESS,)


def _confer_self(m: Any, cpu: int) -> tuple[int, ...]:
    """QEMU h_confer_self: consume a pending prod, else wait until prodded (m.confer with target == cpu)."""
    st = m.cpus[cpu]
    if st.prod:
        st.prod = False
        return (H.SUCCESS,)
    m.confer(cpu, cpu)
    return (H.SUCCESS,)


@PAPR_HCALLS.hcall(Op.H_CONFER, "H_CONFER")
def h_confer(m: Any, cpu: int, target: int, dispatch: int) -> tuple[int, ...]:
    """In: R4 target processor (-1: any), R5 the target's dispatch count. Out: nothing.

    QEMU h_confer: -1 yields (m.confer(cpu, -1)). Otherwise an unknown target -> H_PARAMETER; the caller itself
    waits until prodded (as H_JOIN); another target is yielded to only if it has a VPA, the (32-bit) count is
    odd and equals the counter at VPA+0x100, else the call returns at once. Always H_SUCCESS otherwise.
    """
    if _signed64(target) != -1:
        tcpu = find_cpu(m, target)
        if tcpu is None:
            return (H.PARAMETER,)
        if tcpu == cpu:
            return _confer_self(m, cpu)
        dispatch &= MASK32
        vpa = m.cpus[tcpu].vpa
        if not vpa or not dispatch & 1:
            return (H.SUCCESS,)
        if phys_ld(m.ram, vpa + VPA_DISPATCH_COUNTER, 4) != dispatch:
            return (H.SUCCESS,)
        m.confer(cpu, tcpu)
        return (H.SUCCESS,)
    m.confer(cpu, -1)
    return (H.SUCCESS,)


@PAPR_HCALLS.hcall(Op.H_PROD, "H_PROD")
def h_prod(m: Any, cpu: int, target: int) -> tuple[int, ...]:
    """In: R4 target processor. Out: nothing.

    QEMU h_prod: unknown target -> H_PARAMETER (the id is taken as a 32-bit int: 0x1_0000_0000 prods cpu 0,
    measured); else the prod flag is set and a ceded target really wakes (m.prod), where QEMU 7.2 leaves it
    asleep until its decrementer.
    """
    tcpu = find_cpu(m, target)
    if tcpu is None:
        return (H.PARAMETER,)
    m.prod(tcpu)
    return (H.SUCCESS,)


@PAPR_HCALLS.hcall(Op.H_JOIN, "H_JOIN")
def h_join(m: Any, cpu: int) -> tuple[int, ...]:
    """In: nothing. Out: nothing.

    QEMU h_join: MSR[EE] = 1 -> H_BAD_MODE; if every other vCPU is halted with MSR[EE] = 0 (joined), the
    caller is the last one and gets H_CONTINUE (measured with 1 vCPU); otherwise it waits until prodded.
    """
    if m.vcpus[cpu].msr & MSR_EE:
        return (H.BAD_MODE,)
    for other in range(m.nr_cpus):
        if other != cpu and (not _halted(m, other) or m.vcpus[other].msr & MSR_EE):
            return _confer_self(m, cpu)
    return (H.CONTINUE,)


# ------------------------------------------------------------------------------------------------------------
# H_SET_MODE
def _set_mode_le(m: Any, mflags: int, value1: int, value2: int) -> int:
    """QEMU h_set_mode_resource_le: value1 -> H_P3, value2 -> H_P4, mflags 0 big / 1 little endian."""
    if value1:
        return H.P3
    if value2:
        return H.P4
    if mflags == H_SET_MODE_ENDIAN_BIG:
        m.set_ile(False)
        return H.SUCCESS
    if mflags == H_SET_MODE_ENDIAN_LITTLE:
        m.set_ile(True)
        return H.SUCCESS
    return H.UNSUPPORTED_FLAG


def _set_mode_addr_trans(m: Any, mflags: int, value1: int, value2: int) -> int:
    """QEMU h_set_mode_resource_addr_trans_mode order (POWER9 has ISA 2.07S, so no H_P2): value1 -> H_P3,
    value2 -> H_P4, AIL 1 (reserved) -> H_UNSUPPORTED_FLAG.

    Decision: this machine delivers interrupts in real mode only, so it accepts only an effective AIL of 0 and
    refuses 2 and 3 with H_UNSUPPORTED_FLAG, the code QEMU >= 8.1 gives when it cannot provide AIL 3. QEMU 7.2
    applies `mflags << LPCR_AIL_SHIFT` under the AIL mask without a range check (measured: 2, 3, 4 and 5 all
    succeed), so the effective AIL is mflags & 3: 4, 8 ... are accepted as AIL 0, 5, 6, 7 ... refused.
    """
    if value1:
        return H.P3
    if value2:
        return H.P4
    if mflags & 3:  # AIL 1 (reserved, QEMU's own refusal), 2 and 3 (not provided here)
        return H.UNSUPPORTED_FLAG
    return H.SUCCESS


@PAPR_HCALLS.hcall(Op.H_SET_MODE, "H_SET_MODE")
def h_set_mode(m: Any, cpu: int, mflags: int, resource: int, value1: int, value2: int) -> tuple[int, ...]:
    """In: R4 mflags, R5 resource, R6 value1, R7 value2. Out: nothing.

    QEMU h_set_mode: resource 4 (LE) sets or clears LPCR[ILE] on every vCPU (m.set_ile), resource 3 is the
    address-translation mode (AIL); every other resource, CIABR (1) and DAWR0 (2) included, -> H_P2 (7.2).
    """
    if resource == H_SET_MODE_RESOURCE_LE:
        return (_set_mode_le(m, mflags, value1, value2),)
    if resource == H_SET_MODE_RESOURCE_ADDR_TRANS_MODE:
        return (_set_mode_addr_trans(m, mflags, value1, value2),)
    return (H.P2,)


# ------------------------------------------------------------------------------------------------------------
# the rest
@PAPR_HCALLS.hcall(Op.H_RANDOM, "H_RANDOM")
def h_random(m: Any, cpu: int) -> tuple[int, ...]:
    """In: nothing. Out: R4 64 random bits.

    QEMU registers H_RANDOM only with `-device spapr-rng` (spapr_rng.c h_random); without it the opcode is
    unknown: H_FUNCTION unless the machine is configured with an RNG (m.config.rng).
    """
    if not m.config.rng:
        return (H.FUNCTION,)
    return (H.SUCCESS, m.random_u64() & MASK64)


@PAPR_HCALLS.hcall(Op.H_GET_CPU_CHARACTERISTICS, "H_GET_CPU_CHARACTERISTICS")
def h_get_cpu_characteristics(m: Any, cpu: int) -> tuple[int, ...]:
    """In: nothing. Out: R4 characteristics, R5 behaviour.

    QEMU h_get_cpu_characteristics with pseries-7.2's default caps (workaround for cfpc, sbbc and ibs,
    ccf-assist on): R4 = 0xbc40000000000000, R5 = 0xe400000000000000 (measured under TCG).
    """
    return (H.SUCCESS, CPU_CHARACTERISTICS, CPU_BEHAVIOUR)


@PAPR_HCALLS.hcall(Op.H_SIGNAL_SYS_RESET, "H_SIGNAL_SYS_RESET")
def h_signal_sys_reset(m: Any, cpu: int, target: int) -> tuple[int, ...]:
    """In: R4 target: a processor id, -1 all processors, -2 all but the caller. Out: nothing.

    QEMU h_signal_sys_reset: a negative target below -2 -> H_PARAMETER; a unicast target is looked up as a
    32-bit int (unknown -> H_PARAMETER). The target(s) take a system-reset interrupt (m.signal_sys_reset).
    """
    t = _signed64(target)
    if t < 0:
        if t < H_SIGNAL_SYS_RESET_ALLBUTSELF:
            return (H.PARAMETER,)
        for c in range(m.nr_cpus):
            if t == H_SIGNAL_SYS_RESET_ALLBUTSELF and c == cpu:
                continue
            m.signal_sys_reset(c)
        return (H.SUCCESS,)
    tcpu = find_cpu(m, t)
    if tcpu is None:
        return (H.PARAMETER,)
    m.signal_sys_reset(tcpu)
    return (H.SUCCESS,)
