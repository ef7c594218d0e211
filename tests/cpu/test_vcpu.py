"""The vCPU layer on Unicorn with hand-assembled snippets: the sc 1 path, SPR access, instruction counting."""

from __future__ import annotations

import struct

import pytest
from unicorn import UcError

from xive_machine.cpu import regs as R
from xive_machine.cpu.vcpu import Q_MSR, Q_PC, Q_R3, W_INSN, W_INTNO, W_NOUT, VCpu
from xive_machine.memory.ram import GuestRam

LI = lambda rt, imm: 0x38000000 | (rt << 21) | (imm & 0xFFFF)  # noqa: E731 - addi rt,0,imm
SC1 = 0x44000022
NOP = 0x60000000
B_SELF = 0x48000000


def code(ram: GuestRam, addr: int, words: list[int]) -> int:
    ram.write(addr, b"".join(struct.pack(">I", w) for w in words))
    return addr + 4 * len(words)


@pytest.fixture
def ram() -> GuestRam:
    return GuestRam(16 << 20)


def test_sc1_reaches_the_trap_with_registers_and_writes_back(ram: GuestRam) -> None:
    seen = []

    def on_trap(v: VCpu) -> None:
        seen.append((v.w[W_INTNO], v.w[W_INSN], list(v.q[Q_R3:Q_R3 + 3]), v.q[Q_PC], v.q[Q_MSR]))
        v.q[Q_R3] = 0x1111
        v.q[Q_R3 + 1] = 0x2222
        v.w[W_NOUT] = 2

    end = code(ram, 0x1000, [LI(3, 0x58), LI(4, 7), LI(5, 9), SC1, NOP])
    v = VCpu(0, ram, on_trap)
    v.run(0x1000, until=end - 4)
    intno, insn, regs, pc, msr = seen[0]
    assert (intno, insn) == (R.INTR_SYSCALL, SC1)
    assert regs == [0x58, 7, 9]
    assert pc == 0x1010  # PC is already past the sc
    assert msr & R.MSR_SF
    assert (v.gpr(3), v.gpr(4), v.gpr(5)) == (0x1111, 0x2222, 9)  # r5 untouched: nout = 2


def test_spr_read_and_write_through_the_stub(ram: GuestRam) -> None:
    v = VCpu(0, ram, lambda v: None)
    v.pc = 0x2000
    v.set_gpr(3, 0xABCD)
    v.set_spr(R.SPR_SPRG0, 0x1234_5678_9ABC_DEF0)
    v.set_spr(R.SPR_SRR0, 0x4000)
    assert v.spr(R.SPR_SPRG0) == 0x1234_5678_9ABC_DEF0
    assert v.spr(R.SPR_SRR0) == 0x4000
    assert v.gpr(3) == 0xABCD and v.pc == 0x2000  # the stub restores what it borrows


def test_purr_read_is_refused_not_executed(ram: GuestRam) -> None:
    v = VCpu(0, ram, lambda v: None)
    for spr in (R.SPR_PURR, R.SPR_SPURR, R.SPR_VTB_ALT):
        with pytest.raises(ValueError):
            v.spr(spr)


def test_block_hook_counts_instructions_and_stops_at_the_deadline(ram: GuestRam) -> None:
    from xive_machine.cpu.fast import lib

    # 3-instruction loop forever: addi r3,r3,1; addi r4,r4,1; b -8
    code(ram, 0x3000, [0x38630001, 0x38840001, 0x4BFFFFF8])
    v = VCpu(0, ram, lambda v: None)
    lib.xm_hook_blocks(v.trap)
    v.trap.deadline = 3000
    v.run(0x3000)
    assert 3000 <= v.trap.icount <= 3003
    assert v.gpr(3) in (1000, 1001)


def test_exceptions_raised_in_the_trap_handler_come_back_from_run(ram: GuestRam) -> None:
    def boom(v: VCpu) -> None:
        raise RuntimeError("handler bug")

    end = code(ram, 0x1000, [SC1, NOP])
    v = VCpu(0, ram, boom)
    with pytest.raises(RuntimeError, match="handler bug"):
        v.run(0x1000, until=end)


STW = lambda rs, ra, d: (36 << 26) | (rs << 21) | (ra << 16) | (d & 0xFFFF)  # noqa: E731 - stw rs,d(ra)


def B(frm: int, to: int) -> int:
    return 0x48000000 | ((to - frm) & 0x03FFFFFC)


def test_code_patched_through_another_address_runs_as_patched(ram: GuestRam) -> None:
    """Stores skip Unicorn's translated-code check off the pages a vCPU ran code on (the store guard), not on
    them: a patch through an alias (real mode ignores EA bits 0:3) after another store to the page, which is
    all Unicorn checks on a page no hook covers, still drops the stale translation."""
    code(ram, 0x6000, [LI(3, 1), B(0x6004, 0x7000)])
    code(ram, 0x8000, [STW(5, 4, 0x100), STW(5, 4, 0), B(0x8008, 0x7000)])
    v = VCpu(0, ram, lambda v: None)
    v.run(0x6000, until=0x7000)  # `until` elsewhere: Unicorn drops the block that ends at it
    assert v.gpr(3) == 1
    v.set_gpr(4, 0xC000_0000_0000_6000)
    v.set_gpr(5, LI(3, 2))
    v.run(0x8000, until=0x7000)
    assert ram.read_u32(0x6000) == LI(3, 2)
    v.run(0x6000, until=0x7000)
    assert v.gpr(3) == 2


def test_store_guard_covers_code_pages_only(ram: GuestRam) -> None:
    """Pages only stored to stay outside the guard (their stores take Unicorn's fast path); code written there
    and then run joins it."""
    data = 0x40000
    code(ram, 0x6000, [STW(5, 4, 0), STW(5, 4, 4), B(0x6008, 0x7000)])
    v = VCpu(0, ram, lambda v: None)
    v.set_gpr(4, data)
    v.set_gpr(5, LI(3, 7))
    v.run(0x6000, until=0x7000)
    assert not any(lo <= data < hi for lo, hi in v.code_ranges())
    code(ram, data + 8, [B(data + 8, 0x7000)])
    v.run(data, until=0x7000)
    assert v.gpr(3) == 7
    assert any(lo <= data < hi for lo, hi in v.code_ranges())


def test_block_scan_asks_for_the_msr_once_translation_was_used(ram: GuestRam) -> None:
    """Until a TLB fill runs with MSR[IR] or [DR] set, every block runs in real mode (the block scan does not
    read the MSR); the first such fill, here a data access that faults (no process table), ends that."""
    LWZ = 0x80640000  # lwz r3,0(r4)
    code(ram, 0x6000, [LI(3, 1), B(0x6004, 0x7000)])
    v = VCpu(0, ram, lambda v: None)
    v.run(0x6000, until=0x7000)
    assert v.mmu.virt_seen == 0
    code(ram, 0x6100, [LWZ, B(0x6104, 0x7000)])
    v.msr = v.msr | R.MSR_DR
    with pytest.raises(UcError):  # the translation fault stops the core
        v.run(0x6100, until=0x7000)
    assert v.mmu.virt_seen == 1
