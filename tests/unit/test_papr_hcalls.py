"""The core PAPR hcalls (hcalls/papr.py) on a fake machine, through the real Dispatcher. Expected values marked
"measured" were read from qemu-system-ppc64 7.2.22 (-M pseries,x-vof=on -cpu POWER9, TCG)."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xive_machine.cpu.regs import MSR_EE, SPR_SPRG0
from xive_machine.hcalls import papr as P
from xive_machine.hcalls.codes import H, Op
from xive_machine.hcalls.registry import Dispatcher
from xive_machine.memory.ram import GuestRam

RAM_SIZE = 1 << 20
M64 = (1 << 64) - 1


@dataclass
class FakeCpuState:
    state: str = "running"
    prod: bool = False
    vpa: int = 0
    dtl: int = 0
    slb_shadow: int = 0
    dispatch: int = 0


class FakeVCpu:
    def __init__(self) -> None:
        self.msr = 0
        self.sprs: dict[int, int] = {}

    def spr(self, n: int) -> int:
        return self.sprs.get(n, 0)

    def set_spr(self, n: int, value: int) -> None:
        self.sprs[n] = value


@dataclass
class FakeMachine:
    """The part of SpaprMachine hcalls/papr.py uses, with the machine's semantics and a call log."""

    nr_cpus: int = 2
    rng: bool = False
    log: list[tuple] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ram = GuestRam(RAM_SIZE)
        self.vcpus = [FakeVCpu() for _ in range(self.nr_cpus)]
        self.cpus = [FakeCpuState() for _ in range(self.nr_cpus)]
        self.config = SimpleNamespace(rng=self.rng)
        self.ile = False

    def cede(self, cpu: int) -> None:
        self.log.append(("cede", cpu))
        self.cpus[cpu].state = "ceded"
        self.cpus[cpu].dispatch += 1

    def prod(self, target: int) -> None:
        self.log.append(("prod", target))
        st = self.cpus[target]
        st.prod = True
        if st.state == "ceded":
            st.prod = False
            st.state = "running"
            st.dispatch += 1

    def confer(self, cpu: int, target: int) -> None:
        self.log.append(("confer", cpu, target))

    def set_ile(self, little: bool) -> None:
        self.log.append(("ile", little))
        self.ile = little

    def random_u64(self) -> int:
        return 0x0123_4567_89AB_CDEF

    def signal_sys_reset(self, cpu: int) -> None:
        self.log.append(("sreset", cpu))


def hcall(m: FakeMachine, opcode: int, *args: int, cpu: int = 0) -> tuple[int, ...]:
    d = Dispatcher()
    d.install(P.PAPR_HCALLS, m)
    return tuple(int(x) for x in d.dispatch(cpu, opcode, [a & M64 for a in args] + [0] * (9 - len(args))))


@pytest.fixture
def m() -> FakeMachine:
    return FakeMachine()


def test_table_holds_the_brief_hcalls() -> None:
    want = {Op.H_SET_SPRG0, Op.H_SET_DABR, Op.H_SET_XDABR, Op.H_PAGE_INIT, Op.H_LOGICAL_CI_LOAD,
            Op.H_LOGICAL_CI_STORE, Op.H_LOGICAL_CACHE_LOAD, Op.H_LOGICAL_CACHE_STORE, Op.H_LOGICAL_ICBI,
            Op.H_LOGICAL_DCBF, Op.H_REGISTER_VPA, Op.H_CEDE, Op.H_CONFER, Op.H_PROD, Op.H_JOIN, Op.H_SET_MODE,
            Op.H_RANDOM, Op.H_GET_CPU_CHARACTERISTICS, Op.H_SIGNAL_SYS_RESET, Op.KVMPPC_H_LOGICAL_MEMOP}
    assert set(P.PAPR_HCALLS.specs) == {int(o) for o in want}
    for op, spec in P.PAPR_HCALLS.specs.items():
        assert spec.name == Op(op).name


# ---------------------------------------------------------------------------------------------------------
def test_set_sprg0(m: FakeMachine) -> None:
    assert hcall(m, Op.H_SET_SPRG0, 0xDEAD_BEEF_0000_0001, cpu=1) == (H.SUCCESS,)
    assert m.vcpus[1].sprs[SPR_SPRG0] == 0xDEAD_BEEF_0000_0001
    assert SPR_SPRG0 not in m.vcpus[0].sprs


def test_set_dabr_and_xdabr_have_no_dabr_on_power9(m: FakeMachine) -> None:  # measured
    assert hcall(m, Op.H_SET_DABR, 0) == (H.HARDWARE,)
    assert hcall(m, Op.H_SET_XDABR, 0, 3) == (H.HARDWARE,)
    assert hcall(m, Op.H_SET_XDABR, 0, 0xFF) == (H.HARDWARE,)


# ---------------------------------------------------------------------------------------------------------
def fill_pattern(m: FakeMachine, addr: int, size: int, seed: int = 1) -> bytes:
    data = bytes((seed + 7 * i) & 0xFF for i in range(size))
    m.ram.write(addr, data)
    return data


def test_page_init_flag_and_address_checks(m: FakeMachine) -> None:
    assert hcall(m, Op.H_PAGE_INIT, 1, 0x1000, 0) == (H.PARAMETER,)  # unknown flag
    assert hcall(m, Op.H_PAGE_INIT, P.H_ZERO_PAGE | (1 << 63), 0x1000, 0) == (H.PARAMETER,)
    assert hcall(m, Op.H_PAGE_INIT, P.H_ZERO_PAGE, RAM_SIZE, 0) == (H.PARAMETER,)  # dst outside RAM
    assert hcall(m, Op.H_PAGE_INIT, P.H_ZERO_PAGE, 0x1008, 0) == (H.PARAMETER,)  # dst not page aligned
    assert hcall(m, Op.H_PAGE_INIT, P.H_COPY_PAGE, 0x1000, RAM_SIZE) == (H.PARAMETER,)
    assert hcall(m, Op.H_PAGE_INIT, P.H_COPY_PAGE, 0x1000, 0x2010) == (H.PARAMETER,)
    assert hcall(m, Op.H_PAGE_INIT, 0, 1 << 40, 0) == (H.PARAMETER,)


def test_page_init_zero_copy_and_icache_only(m: FakeMachine) -> None:
    src = fill_pattern(m, 0x3000, 0x1000, seed=3)
    old = fill_pattern(m, 0x5000, 0x1000, seed=9)
    assert hcall(m, Op.H_PAGE_INIT, P.H_ICACHE_INVALIDATE | P.H_ICACHE_SYNCHRONIZE, 0x5000, 0x3000) == (H.SUCCESS,)
    assert m.ram.read(0x5000, 0x1000) == old
    assert hcall(m, Op.H_PAGE_INIT, P.H_COPY_PAGE | P.H_ZERO_PAGE, 0x5000, 0x3000) == (H.SUCCESS,)  # copy wins
    assert m.ram.read(0x5000, 0x1000) == src
    assert 5 in m.ram.dirty_pages
    assert hcall(m, Op.H_PAGE_INIT, P.H_ZERO_PAGE, 0x5000, 0x123) == (H.SUCCESS,)  # src ignored without copy
    assert m.ram.read(0x5000, 0x1000) == bytes(0x1000)
    fill_pattern(m, 0x6000, 0x1000)
    assert hcall(m, Op.H_PAGE_INIT, P.H_COPY_PAGE, 0x6000, 0x2008) == (H.PARAMETER,)
    assert m.ram.read(0x6000, 4) != bytes(4)  # a refused copy leaves the destination alone


# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("load,store", [(Op.H_LOGICAL_CI_LOAD, Op.H_LOGICAL_CI_STORE),
                                        (Op.H_LOGICAL_CACHE_LOAD, Op.H_LOGICAL_CACHE_STORE)])
def test_logical_load_store(m: FakeMachine, load: int, store: int) -> None:
    m.ram.write(0x100, bytes.fromhex("0102030405060708"))
    assert hcall(m, load, 1, 0x101) == (H.SUCCESS, 0x02)
    assert hcall(m, load, 2, 0x101) == (H.SUCCESS, 0x0203)  # no alignment check
    assert hcall(m, load, 4, 0x100) == (H.SUCCESS, 0x01020304)
    assert hcall(m, load, 8, 0x100) == (H.SUCCESS, 0x0102030405060708)
    for bad in (0, 3, 5, 16, 1 << 63):
        assert hcall(m, load, bad, 0x100) == (H.PARAMETER,)
        assert hcall(m, store, bad, 0x100, 1) == (H.PARAMETER,)
    assert hcall(m, store, 2, 0x200, 0xAABBCCDD) == (H.SUCCESS,)
    assert m.ram.read(0x200, 3) == bytes.fromhex("ccdd00")
    assert hcall(m, store, 8, 0x208, M64) == (H.SUCCESS,)
    assert m.ram.read(0x208, 8) == b"\xff" * 8


def test_logical_load_store_outside_ram(m: FakeMachine) -> None:  # measured: reads 0, stores dropped, success
    assert hcall(m, Op.H_LOGICAL_CI_LOAD, 8, 1 << 32) == (H.SUCCESS, 0)
    assert hcall(m, Op.H_LOGICAL_CI_LOAD, 8, M64) == (H.SUCCESS, 0)
    assert hcall(m, Op.H_LOGICAL_CI_STORE, 8, 1 << 32, 5) == (H.SUCCESS,)
    m.ram.write(RAM_SIZE - 2, b"\x11\x22")
    assert hcall(m, Op.H_LOGICAL_CI_LOAD, 4, RAM_SIZE - 2) == (H.SUCCESS, 0x11220000)
    assert hcall(m, Op.H_LOGICAL_CI_STORE, 4, RAM_SIZE - 1, 0xAABBCCDD) == (H.SUCCESS,)
    assert m.ram.read(RAM_SIZE - 2, 2) == b"\x11\xaa"


def test_icbi_dcbf_are_noops(m: FakeMachine) -> None:
    assert hcall(m, Op.H_LOGICAL_ICBI, 1, 2, 3) == (H.SUCCESS,)
    assert hcall(m, Op.H_LOGICAL_DCBF, M64) == (H.SUCCESS,)
    assert m.ram.dirty_pages == set()


# ---------------------------------------------------------------------------------------------------------
def memop(m: FakeMachine, dst: int, src: int, esize: int, count: int, op: int) -> tuple[int, ...]:
    return hcall(m, Op.KVMPPC_H_LOGICAL_MEMOP, dst, src, esize, count, op)


def test_memop_checks_in_qemu_order(m: FakeMachine) -> None:
    assert memop(m, 1, 3, 1, 0x8000_0001, 5) == (H.PARAMETER,)  # count first
    assert memop(m, 0x102, 0x200, 2, 1, 0) == (H.PARAMETER,)  # dst alignment
    assert memop(m, 0x100, 0x204, 3, 1, 0) == (H.PARAMETER,)  # src alignment
    assert memop(m, 0x100, 0x200, 3, 1, 2) == (H.PARAMETER,)  # op
    assert memop(m, 0x100, 0x200, 4, 0, 0) == (H.SUCCESS,)  # measured: esize > 3 with count 0
    assert memop(m, 0x100, 0x200, 4, 1, 0) == (H.PARAMETER,)  # measured
    assert memop(m, 0x100, 0x200, 32, 0, 0) == (H.SUCCESS,)  # measured: 1 << 32 is 1 on x86, mask 0
    assert memop(m, 0x101, 0x200, 31, 0, 0) == (H.PARAMETER,)  # measured: mask 0x7fffffff
    assert memop(m, 0x101, 0x200, 33, 0, 0) == (H.PARAMETER,)  # 33 & 31 = 1: mask 1
    assert memop(m, 0x100, 0x200, 0, 0x8000_0000, 0) == (H.SUCCESS,)  # the largest count is allowed


def test_memop_copy_and_invert(m: FakeMachine) -> None:
    data = fill_pattern(m, 0x1000, 64)
    assert memop(m, 0x2000, 0x1000, 3, 8, 0) == (H.SUCCESS,)
    assert m.ram.read(0x2000, 64) == data
    assert m.ram.read(0x2040, 8) == bytes(8)
    assert memop(m, 0x3000, 0x1000, 0, 5, 1) == (H.SUCCESS,)
    assert m.ram.read(0x3000, 6) == bytes(b ^ 0xFF for b in data[:5]) + b"\0"
    assert 3 in m.ram.dirty_pages


def test_memop_outside_ram_reads_zero_and_drops_stores(m: FakeMachine) -> None:
    assert memop(m, 0x100, 1 << 40, 2, 4, 1) == (H.SUCCESS,)
    assert m.ram.read(0x100, 16) == b"\xff" * 16
    m.ram.write(RAM_SIZE - 8, b"ABCDEFGH")
    assert memop(m, RAM_SIZE - 4, RAM_SIZE - 8, 2, 2, 0) == (H.SUCCESS,)  # half the destination is outside
    assert m.ram.read(RAM_SIZE - 8, 8) == b"ABCDABCD"
    m.ram.write(0, b"WXYZ")
    assert memop(m, 0x40, (1 << 64) - 4, 2, 2, 0) == (H.SUCCESS,)  # the source wraps past 2^64 to 0
    assert m.ram.read(0x40, 8) == b"\0\0\0\0WXYZ"


def qemu_memop_reference(mem: bytearray, dst: int, src: int, esize: int, count: int, op: int) -> None:
    """QEMU h_logical_memop's element loop on a flat memory (all addresses inside it)."""
    step = 1 << esize
    if src <= dst < src + (count << esize):
        dst, src, step = dst + ((count - 1) << esize), src + ((count - 1) << esize), -step
    for _ in range(count):
        v = int.from_bytes(mem[src:src + (1 << esize)], "big")
        if op == 1:
            v = ~v & ((1 << (8 << esize)) - 1)
        mem[dst:dst + (1 << esize)] = v.to_bytes(1 << esize, "big")
        dst, src = dst + step, src + step


@settings(max_examples=200, deadline=None)
@given(esize=st.integers(0, 3), count=st.integers(0, 40), d=st.integers(0, 64), s=st.integers(0, 64),
       op=st.integers(0, 1), chunk=st.sampled_from([1, 8, 24, P.MEMOP_CHUNK]))
def test_memop_matches_qemu_element_loop(esize: int, count: int, d: int, s: int, op: int, chunk: int) -> None:
    m = FakeMachine()
    dst, src = 0x1000 + (d << esize), 0x1000 + (s << esize)
    init = bytes((i * 37 + 11) & 0xFF for i in range(0x800))
    m.ram.write(0x1000, init)
    model = bytearray(init)
    qemu_memop_reference(model, dst - 0x1000, src - 0x1000, esize, count, op)
    saved, P.MEMOP_CHUNK = P.MEMOP_CHUNK, chunk  # small chunks: the overlap direction matters between them
    try:
        assert memop(m, dst, src, esize, count, op) == (H.SUCCESS,)
    finally:
        P.MEMOP_CHUNK = saved
    assert m.ram.read(0x1000, 0x800) == bytes(model)


# ---------------------------------------------------------------------------------------------------------
REG_VPA, REG_DTL, REG_SLB = P.FLAGS_REGISTER_VPA, P.FLAGS_REGISTER_DTL, P.FLAGS_REGISTER_SLBSHADOW
DEREG_VPA, DEREG_DTL, DEREG_SLB = P.FLAGS_DEREGISTER_VPA, P.FLAGS_DEREGISTER_DTL, P.FLAGS_DEREGISTER_SLBSHADOW


def make_area(m: FakeMachine, addr: int, size: int, width: int) -> None:
    m.ram.write(addr + 4, size.to_bytes(width, "big"))


def test_register_vpa_checks(m: FakeMachine) -> None:
    for procno in (2, 0xFFFF_FFFF, 1 << 31, M64):
        assert hcall(m, Op.H_REGISTER_VPA, REG_VPA, procno, 0x1000) == (H.PARAMETER,)
    make_area(m, 0x1000, 640, 2)
    for flags in (0, 1, REG_VPA | 1, 0x0000_8000_0000_0000, 0x0000_2000_0000_0000 << 3):
        assert hcall(m, Op.H_REGISTER_VPA, flags, 0, 0x1000) == (H.PARAMETER,)
    assert hcall(m, Op.H_REGISTER_VPA, REG_VPA, 0, 0) == (H.HARDWARE,)
    make_area(m, 0x1040, 640, 2)
    assert hcall(m, Op.H_REGISTER_VPA, REG_VPA, 0, 0x1040) == (H.PARAMETER,)  # not 128-byte aligned
    make_area(m, 0x2000, 639, 2)
    assert hcall(m, Op.H_REGISTER_VPA, REG_VPA, 0, 0x2000) == (H.PARAMETER,)  # too small
    make_area(m, 0x2E00, 640, 2)
    assert hcall(m, Op.H_REGISTER_VPA, REG_VPA, 0, 0x2E00) == (H.PARAMETER,)  # crosses 0x3000
    assert hcall(m, Op.H_REGISTER_VPA, REG_VPA, 0, 1 << 40) == (H.PARAMETER,)  # size reads 0 outside RAM
    assert m.cpus[0].vpa == 0


def test_register_vpa_success_marks_shared_and_dispatch(m: FakeMachine) -> None:
    make_area(m, 0x2D80, 640, 2)  # ends exactly at 0x3000
    m.ram.write_u8(0x2D80 + 9, 0x81)
    m.cpus[1].dispatch = 0x1_0000_0007
    assert hcall(m, Op.H_REGISTER_VPA, REG_VPA, 1, 0x2D80) == (H.SUCCESS,)
    assert m.cpus[1].vpa == 0x2D80 and m.cpus[0].vpa == 0
    assert m.ram.read_u8(0x2D80 + 9) == 0x83
    assert m.ram.read_u32(0x2D80 + 0x100) == 7
    # measured: the processor id is a 32-bit int, 0x1_0000_0000 is cpu 0
    make_area(m, 0x4000, 0x405, 2)
    assert hcall(m, Op.H_REGISTER_VPA, REG_VPA, 1 << 32, 0x4000) == (H.SUCCESS,)
    assert m.cpus[0].vpa == 0x4000


def test_register_dtl_and_slb_shadow(m: FakeMachine) -> None:
    make_area(m, 0x5000, 48, 4)
    make_area(m, 0x6000, 8, 4)
    assert hcall(m, Op.H_REGISTER_VPA, REG_DTL, 0, 0) == (H.HARDWARE,)
    assert hcall(m, Op.H_REGISTER_VPA, REG_SLB, 0, 0) == (H.HARDWARE,)
    make_area(m, 0x5100, 47, 4)
    assert hcall(m, Op.H_REGISTER_VPA, REG_DTL, 0, 0x5100) == (H.PARAMETER,)  # size before the VPA test
    make_area(m, 0x6100, 7, 4)
    assert hcall(m, Op.H_REGISTER_VPA, REG_SLB, 0, 0x6100) == (H.PARAMETER,)
    make_area(m, 0x6FF0, 0x20, 4)
    assert hcall(m, Op.H_REGISTER_VPA, REG_SLB, 0, 0x6FF0) == (H.PARAMETER,)  # crosses a page
    assert hcall(m, Op.H_REGISTER_VPA, REG_DTL, 0, 0x5000) == (H.RESOURCE,)  # no VPA yet
    assert hcall(m, Op.H_REGISTER_VPA, REG_SLB, 0, 0x6000) == (H.RESOURCE,)
    make_area(m, 0x1000, 640, 2)
    assert hcall(m, Op.H_REGISTER_VPA, REG_VPA, 0, 0x1000) == (H.SUCCESS,)
    assert hcall(m, Op.H_REGISTER_VPA, REG_DTL, 0, 0x5000) == (H.SUCCESS,)
    make_area(m, 0x6003, 8, 4)
    assert hcall(m, Op.H_REGISTER_VPA, REG_SLB, 0, 0x6003) == (H.SUCCESS,)  # no alignment rule
    make_area(m, 0x7FF0, 0x10000, 4)
    assert hcall(m, Op.H_REGISTER_VPA, REG_DTL, 0, 0x7FF0) == (H.SUCCESS,)  # the DTL may cross pages
    assert (m.cpus[0].dtl, m.cpus[0].slb_shadow) == (0x7FF0, 0x6003)


def test_deregister_order(m: FakeMachine) -> None:
    make_area(m, 0x1000, 640, 2)
    make_area(m, 0x5000, 48, 4)
    make_area(m, 0x6000, 8, 4)
    for flags, addr in ((REG_VPA, 0x1000), (REG_DTL, 0x5000), (REG_SLB, 0x6000)):
        assert hcall(m, Op.H_REGISTER_VPA, flags, 1, addr) == (H.SUCCESS,)
    assert hcall(m, Op.H_REGISTER_VPA, DEREG_VPA, 1, 0) == (H.RESOURCE,)
    assert hcall(m, Op.H_REGISTER_VPA, DEREG_SLB, 1, 0) == (H.SUCCESS,)
    assert hcall(m, Op.H_REGISTER_VPA, DEREG_VPA, 1, 0) == (H.RESOURCE,)  # the DTL is still there
    assert hcall(m, Op.H_REGISTER_VPA, DEREG_DTL, 1, 12345) == (H.SUCCESS,)
    assert hcall(m, Op.H_REGISTER_VPA, DEREG_VPA, 1, 0) == (H.SUCCESS,)
    assert (m.cpus[1].vpa, m.cpus[1].dtl, m.cpus[1].slb_shadow) == (0, 0, 0)
    assert hcall(m, Op.H_REGISTER_VPA, DEREG_DTL, 5, 0) == (H.PARAMETER,)


# ---------------------------------------------------------------------------------------------------------
def test_cede_sets_ee_and_idles(m: FakeMachine) -> None:
    assert hcall(m, Op.H_CEDE, cpu=1) == (H.SUCCESS,)
    assert m.vcpus[1].msr & MSR_EE
    assert m.log == [("cede", 1)] and m.cpus[1].state == "ceded"


def test_cede_consumes_a_pending_prod(m: FakeMachine) -> None:
    m.cpus[0].prod = True
    assert hcall(m, Op.H_CEDE) == (H.SUCCESS,)
    assert m.vcpus[0].msr & MSR_EE and not m.cpus[0].prod
    assert m.log == []


def test_prod_really_wakes_a_ceded_cpu(m: FakeMachine) -> None:
    assert hcall(m, Op.H_CEDE, cpu=1) == (H.SUCCESS,)
    assert hcall(m, Op.H_PROD, 1) == (H.SUCCESS,)
    assert m.cpus[1].state == "running" and not m.cpus[1].prod
    assert hcall(m, Op.H_PROD, 0, cpu=1) == (H.SUCCESS,)  # a running target keeps the prod for later
    assert m.cpus[0].prod
    assert hcall(m, Op.H_PROD, (1 << 32) | 1) == (H.SUCCESS,)  # measured: 32-bit id
    assert m.log[-1] == ("prod", 1)
    for bad in (2, 0xFFFF_FFFF, M64, 1 << 31):
        assert hcall(m, Op.H_PROD, bad) == (H.PARAMETER,)


def test_confer(m: FakeMachine) -> None:
    assert hcall(m, Op.H_CONFER, M64, 0) == (H.SUCCESS,)
    assert m.log == [("confer", 0, -1)]
    assert hcall(m, Op.H_CONFER, 0xFFFF_FFFF, 0) == (H.PARAMETER,)  # 32-bit -1 is not the 64-bit -1
    assert hcall(m, Op.H_CONFER, 2, 0) == (H.PARAMETER,)
    m.cpus[0].prod = True
    assert hcall(m, Op.H_CONFER, 0, 0) == (H.SUCCESS,)  # to self with a prod pending: returns at once
    assert not m.cpus[0].prod and len(m.log) == 1
    assert hcall(m, Op.H_CONFER, 0, 0) == (H.SUCCESS,)
    assert m.log[-1] == ("confer", 0, 0)  # to self: wait until prodded


def test_confer_to_another_cpu_checks_its_dispatch_count(m: FakeMachine) -> None:
    assert hcall(m, Op.H_CONFER, 1, 3) == (H.SUCCESS,)  # no VPA: returns
    make_area(m, 0x1000, 640, 2)
    assert hcall(m, Op.H_REGISTER_VPA, REG_VPA, 1, 0x1000) == (H.SUCCESS,)
    m.ram.write_u32(0x1100, 5)
    assert hcall(m, Op.H_CONFER, 1, 4) == (H.SUCCESS,)  # even count: the target is running
    assert hcall(m, Op.H_CONFER, 1, 3) == (H.SUCCESS,)  # stale count
    assert m.log == []
    assert hcall(m, Op.H_CONFER, 1, (7 << 32) | 5) == (H.SUCCESS,)  # a 32-bit count
    assert m.log == [("confer", 0, 1)]


def test_join(m: FakeMachine) -> None:
    m.vcpus[0].msr = MSR_EE
    assert hcall(m, Op.H_JOIN) == (H.BAD_MODE,)
    m.vcpus[0].msr = 0
    assert hcall(m, Op.H_JOIN) == (H.SUCCESS,)  # cpu 1 runs: wait for a prod
    assert m.log == [("confer", 0, 0)]
    m.cpus[1].state = "ceded"
    m.vcpus[1].msr = MSR_EE
    assert hcall(m, Op.H_JOIN) == (H.SUCCESS,)  # a ceded cpu (EE = 1) has not joined
    m.vcpus[1].msr = 0
    assert hcall(m, Op.H_JOIN) == (H.CONTINUE,)  # halted with EE = 0: we are the last
    m.cpus[1].state = "stopped"
    assert hcall(m, Op.H_JOIN) == (H.CONTINUE,)
    m.cpus[1].state = "running"
    m.cpus[0].prod = True
    assert hcall(m, Op.H_JOIN) == (H.SUCCESS,)
    assert not m.cpus[0].prod and len(m.log) == 2


def test_join_alone_continues() -> None:  # measured with one vCPU
    assert hcall(FakeMachine(nr_cpus=1), Op.H_JOIN) == (H.CONTINUE,)


# ---------------------------------------------------------------------------------------------------------
def set_mode(m: FakeMachine, mflags: int, resource: int, v1: int = 0, v2: int = 0) -> int:
    return hcall(m, Op.H_SET_MODE, mflags, resource, v1, v2)[0]


def test_set_mode_le(m: FakeMachine) -> None:
    assert set_mode(m, 1, 4) == H.SUCCESS and m.ile
    assert set_mode(m, 0, 4) == H.SUCCESS and not m.ile
    assert set_mode(m, 2, 4) == H.UNSUPPORTED_FLAG  # measured
    assert set_mode(m, 0, 4, v1=1) == H.P3  # measured
    assert set_mode(m, 0, 4, v2=1) == H.P4  # measured
    assert set_mode(m, 7, 4, v1=1, v2=1) == H.P3  # measured: value1 first
    assert m.log == [("ile", True), ("ile", False)]


def test_set_mode_addr_trans_mode(m: FakeMachine) -> None:
    assert set_mode(m, 0, 3) == H.SUCCESS  # measured
    assert set_mode(m, 1, 3) == H.UNSUPPORTED_FLAG  # measured
    assert set_mode(m, 1, 3, v1=1) == H.P3  # measured: values before the AIL
    assert set_mode(m, 0, 3, v2=9) == H.P4
    for ail in (2, 3, 5, 7, M64):
        assert set_mode(m, ail, 3) == H.UNSUPPORTED_FLAG  # no AIL relocation on this machine
    assert set_mode(m, 4, 3) == H.SUCCESS  # QEMU 7.2 masks mflags into the AIL field: 4 is AIL 0
    assert m.log == []


@pytest.mark.parametrize("resource", [0, 1, 2, 5, 6, 1 << 32, M64])
def test_set_mode_other_resources(m: FakeMachine, resource: int) -> None:  # measured for 1
    assert set_mode(m, 0, resource) == H.P2


# ---------------------------------------------------------------------------------------------------------
def test_random_needs_an_rng() -> None:
    assert hcall(FakeMachine(), Op.H_RANDOM) == (H.FUNCTION,)  # measured
    assert hcall(FakeMachine(rng=True), Op.H_RANDOM) == (H.SUCCESS, 0x0123_4567_89AB_CDEF)


def test_cpu_characteristics(m: FakeMachine) -> None:  # measured
    assert hcall(m, Op.H_GET_CPU_CHARACTERISTICS) == (H.SUCCESS, 0xBC40_0000_0000_0000, 0xE400_0000_0000_0000)


def test_cpu_characteristics_for_other_caps() -> None:
    broken = P.cpu_characteristics(P.SPAPR_CAP_BROKEN, P.SPAPR_CAP_BROKEN, P.SPAPR_CAP_BROKEN, 0)
    assert broken == (P.H_CPU_CHAR_HON_BRANCH_HINTS,
                      P.H_CPU_BEHAV_FAVOUR_SECURITY | P.H_CPU_BEHAV_L1D_FLUSH_PR | P.H_CPU_BEHAV_BNDS_CHK_SPEC_BAR)
    fixed = P.cpu_characteristics(P.SPAPR_CAP_FIXED, P.SPAPR_CAP_FIXED, P.SPAPR_CAP_FIXED_CCD, 1)
    assert fixed == (P.H_CPU_CHAR_HON_BRANCH_HINTS | P.H_CPU_CHAR_CACHE_COUNT_DIS,
                     P.H_CPU_BEHAV_FAVOUR_SECURITY | P.H_CPU_BEHAV_NO_L1D_FLUSH_ENTRY
                     | P.H_CPU_BEHAV_NO_L1D_FLUSH_UACCESS)
    ibs = P.cpu_characteristics(P.SPAPR_CAP_BROKEN, P.SPAPR_CAP_FIXED, P.SPAPR_CAP_FIXED_IBS, 0)
    assert ibs[0] == P.H_CPU_CHAR_HON_BRANCH_HINTS | P.H_CPU_CHAR_BCCTRL_SERIALISED
    no_assist = P.cpu_characteristics(P.SPAPR_CAP_BROKEN, P.SPAPR_CAP_FIXED, P.SPAPR_CAP_WORKAROUND, 0)
    assert no_assist[0] == P.H_CPU_CHAR_HON_BRANCH_HINTS
    assert no_assist[1] & P.H_CPU_BEHAV_FLUSH_COUNT_CACHE


def test_signal_sys_reset() -> None:
    m = FakeMachine(nr_cpus=3)
    assert hcall(m, Op.H_SIGNAL_SYS_RESET, M64, cpu=1) == (H.SUCCESS,)
    assert m.log == [("sreset", 0), ("sreset", 1), ("sreset", 2)]
    m.log.clear()
    assert hcall(m, Op.H_SIGNAL_SYS_RESET, M64 - 1, cpu=1) == (H.SUCCESS,)
    assert m.log == [("sreset", 0), ("sreset", 2)]
    m.log.clear()
    assert hcall(m, Op.H_SIGNAL_SYS_RESET, 2) == (H.SUCCESS,)
    assert hcall(m, Op.H_SIGNAL_SYS_RESET, (1 << 32) | 1) == (H.SUCCESS,)  # 32-bit id
    assert m.log == [("sreset", 2), ("sreset", 1)]
    m.log.clear()
    for bad in (3, M64 - 2, 1 << 63, 0xFFFF_FFFF, (1 << 32) | 5):  # measured for (1 << 32) | 5
        assert hcall(m, Op.H_SIGNAL_SYS_RESET, bad) == (H.PARAMETER,)
    assert m.log == []


def test_find_cpu_takes_a_c_int() -> None:
    m = FakeMachine(nr_cpus=4)
    assert [P.find_cpu(m, v) for v in (0, 3, 4, 1 << 32, (1 << 32) + 3, 0x8000_0000, M64)] == \
        [0, 3, None, 0, 3, None, None]
