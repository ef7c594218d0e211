"""One Unicorn PPC64 instance per vCPU: registers, SPR access, and the synchronous trap path.

Knows nothing of sPAPR. The owner (the machine) gives an `on_trap(vcpu)` callable, called for every
synchronous stop Unicorn reports through UC_HOOK_INTR (sc, program, DSI ...). The C hook has already read
r3..r12, PC, MSR and the instruction word into the trap block; Python sees the block through two flat
views (cffi struct field access costs ~0.2 us each, a memoryview index ~0.03 us):
`vcpu.q[Q_R3 + i]` = r(3+i), `vcpu.q[Q_PC]`, `vcpu.q[Q_MSR]`, `vcpu.w[W_INTNO]`, `vcpu.w[W_INSN]`.
To return values, write `q[Q_R3 + i]` and set `w[W_NOUT]` = how many registers from r3 to write back.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from unicorn import UC_ARCH_PPC, UC_MODE_BIG_ENDIAN, UC_MODE_PPC64, UC_PROT_ALL, Uc, UcError
from unicorn import unicorn_const as UCC

from xive_machine.cpu import regs as R
from xive_machine.cpu.fast import ffi, lib
from xive_machine.memory.ram import GuestRam

STUB_BASE = 0x0000_3FFF_FFFF_0000  # a page outside any guest address range, for one-instruction SPR stubs
STUB_SIZE = 0x1000
MASK64 = 0xFFFF_FFFF_FFFF_FFFF

TrapHandler = Callable[["VCpu"], None]

_OFF = {name: ffi.offsetof("struct xm_trap", name) for name in ("intno", "nout", "r", "pc", "msr", "insn")}
Q_R3 = _OFF["r"] // 8
Q_PC = _OFF["pc"] // 8
Q_MSR = _OFF["msr"] // 8
W_INTNO = _OFF["intno"] // 4
W_NOUT = _OFF["nout"] // 4
W_INSN = _OFF["insn"] // 4


@ffi.def_extern()
def xm_py_trap(trap: Any) -> None:  # pragma: no cover - exercised by every guest
    vcpu: VCpu = ffi.from_handle(trap.owner)
    try:
        vcpu.on_trap(vcpu)
    except BaseException as exc:  # must not unwind through C
        vcpu.pending_exception = exc
        vcpu.uc.emu_stop()


class VCpu:
    """A POWER10 core (Unicorn's only PPC64 server model) presented to the guest as an LPAR vCPU."""

    def __init__(self, index: int, ram: GuestRam, on_trap: TrapHandler) -> None:
        self.index = index
        self.ram = ram
        self.on_trap = on_trap
        self.pending_exception: BaseException | None = None
        uc = Uc(UC_ARCH_PPC, UC_MODE_PPC64 | UC_MODE_BIG_ENDIAN)
        uc.ctl_set_tlb_mode(UCC.UC_TLB_VIRTUAL)
        uc.mem_map_ptr(0, ram.size, UC_PROT_ALL, ram.address)
        uc.mem_map(STUB_BASE, STUB_SIZE, UC_PROT_ALL)
        self.uc = uc
        self._handle = ffi.new_handle(self)
        self.trap = ffi.new("struct xm_trap *")
        self.trap.uc = ffi.cast("void *", uc._uch.value)
        self.trap.owner = self._handle
        self.trap.ram = ffi.cast("unsigned char *", ram.address)
        self.trap.ram_size = ram.size
        view = memoryview(ffi.buffer(self.trap))
        self.q = view.cast("Q")  # host byte order; the block is host memory
        self.w = view.cast("I")
        if lib.xm_hook_trap(self.trap) != 0:
            raise RuntimeError("cannot install the trap hook")
        self._stub_cache: dict[int, None] = {}

    # --- general registers -------------------------------------------------------------------------
    def gpr(self, n: int) -> int:
        return self.uc.reg_read(R.GPR[n])

    def set_gpr(self, n: int, value: int) -> None:
        self.uc.reg_write(R.GPR[n], value & MASK64)

    @property
    def pc(self) -> int:
        return self.uc.reg_read(R.REG_PC)

    @pc.setter
    def pc(self, value: int) -> None:
        self.uc.reg_write(R.REG_PC, value & MASK64)

    @property
    def msr(self) -> int:
        return self.uc.reg_read(R.REG_MSR)

    @msr.setter
    def msr(self, value: int) -> None:
        self.uc.reg_write(R.REG_MSR, value & MASK64)

    def reg(self, uc_id: int) -> int:
        return self.uc.reg_read(uc_id)

    def set_reg(self, uc_id: int, value: int) -> None:
        self.uc.reg_write(uc_id, value & MASK64)

    # --- SPRs through a one-instruction stub --------------------------------------------------------
    def _run_stub(self, insn: int, scratch_in: int | None) -> int:
        uc = self.uc
        save_pc = uc.reg_read(R.REG_PC)
        save_r3 = uc.reg_read(R.GPR[3])
        save_msr = uc.reg_read(R.REG_MSR)
        if save_msr & (R.MSR_PR | R.MSR_LE):  # run the stub privileged and big-endian
            uc.reg_write(R.REG_MSR, save_msr & ~(R.MSR_PR | R.MSR_LE | R.MSR_EE))
        if scratch_in is not None:
            uc.reg_write(R.GPR[3], scratch_in & MASK64)
        uc.mem_write(STUB_BASE, struct.pack(">I", insn))
        t = self.trap
        icount, deadline, waiting = t.icount, t.deadline, t.irq_waiting
        t.deadline, t.irq_waiting = MASK64, 0  # the block hook must neither stop nor count the stub
        try:
            uc.emu_start(STUB_BASE, STUB_BASE + 4, count=1)
        except UcError:
            pass
        finally:
            t.icount, t.deadline, t.irq_waiting = icount, deadline, waiting
        out = uc.reg_read(R.GPR[3])
        if save_msr & (R.MSR_PR | R.MSR_LE):
            uc.reg_write(R.REG_MSR, save_msr)
        uc.reg_write(R.GPR[3], save_r3)
        uc.reg_write(R.REG_PC, save_pc)
        return out

    def spr(self, spr: int) -> int:
        """Read an SPR with `mfspr r3, spr` run in a nested emulation (r3 and PC restored)."""
        if spr in (R.SPR_PURR, R.SPR_SPURR, R.SPR_VTB_ALT):  # would kill the host process in Unicorn 2.1.4
            raise ValueError(f"SPR {spr} cannot be read through Unicorn")
        return self._run_stub(R.mfspr(3, spr), None)

    def set_spr(self, spr: int, value: int) -> None:
        """Write an SPR with `mtspr spr, r3`."""
        self._run_stub(R.mtspr(spr, 3), value)

    # --- running ------------------------------------------------------------------------------------
    def run(self, begin: int, count: int = 0, until: int = -1) -> None:
        """Run from `begin` until a hook stops the core or `count` instructions retire (0 = no limit).

        Exceptions raised by the owner inside hooks are stored, the core is stopped, and they are re-raised
        here, so nothing unwinds through Unicorn's C frames.
        """
        self.uc.emu_start(begin, until & MASK64, 0, count)
        exc = self.pending_exception
        if exc is not None:
            self.pending_exception = None
            raise exc

    def stop(self) -> None:
        self.uc.emu_stop()

    def close(self) -> None:
        finalize = getattr(self.uc, "_Uc__finalizer", None)  # the binding's own uc_close, run once
        if finalize is not None:
            finalize()
