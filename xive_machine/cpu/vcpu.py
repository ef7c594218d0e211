"""One Unicorn PPC64 instance per vCPU: registers, SPR access, and the synchronous trap path.

Knows nothing of sPAPR. The owner (the machine) gives an `on_trap(vcpu)` callable, called for every
synchronous stop Unicorn reports through UC_HOOK_INTR (sc, program, DSI ...). The C hook has already read
r3..r12, PC, MSR and the instruction word into the trap block; Python sees the block through two flat
views (cffi struct field access costs ~0.2 us each, a memoryview index ~0.03 us):
`vcpu.q[Q_R3 + i]` = r(3+i), `vcpu.q[Q_PC]`, `vcpu.q[Q_MSR]`, `vcpu.w[W_INTNO]`, `vcpu.w[W_INSN]`.
To return values, write `q[Q_R3 + i]` and set `w[W_NOUT]` = how many registers from r3 to write back.
"""

from __future__ import annotations

import ctypes
import mmap
import struct
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any, Protocol

from unicorn import UC_ARCH_PPC, UC_MODE_BIG_ENDIAN, UC_MODE_PPC64, UC_PROT_ALL, Uc, UcError
from unicorn import unicorn_const as UCC

from xive_machine.cpu import regs as R
from xive_machine.cpu.fast import ffi, lib
from xive_machine.memory.ram import GuestRam

STUB_BASE = 0x0000_3FFF_FFFF_0000  # a page outside any guest address range, for one-instruction SPR stubs
STUB_SIZE = 0x1000
# SPR writes run as a trampoline inside the vCPU's own execution: an extra emu_start costs ~50 us in
# Unicorn 2.1.4, a trampoline a few instructions and one trap. It lives at the top of the address space.
TRAMP_BASE = 0xFFFF_FFFF_FFFF_0000
TRAMP_SIZE = 0x10000
TRAMP_REGS = (0, 10, 11, 12)  # value registers of a trampoline, saved and restored around it
TRAP_INSN = 0x7FE00008  # tw 31,0,0: the trampoline's way back into the machine
TRAMP_CODE_SIZE = 0x8000
TRAMP_DATA = 0x8000  # offset of the data slot: EA 0xFFFF_FFFF_FFFF_8000 = `ld r0,-0x8000(0)` in 64-bit mode
LD_R0_SLOT = 0xE8008000  # ld r0,-0x8000(0)
JUMP_SLOTS = 0x40  # offset (from TRAMP_DATA) of the slots a jump trampoline restores its registers from
BA_REACH = 1 << 25  # `ba` reaches [0, 32 MiB)
_FAST_MSR_MASK = R.MSR_SF | R.MSR_PR | R.MSR_IR | R.MSR_DR
MASK64 = 0xFFFF_FFFF_FFFF_FFFF
GUARD_GRANULE = 0x10000  # RAM joins the store guard in aligned runs of this size

TrapHandler = Callable[["VCpu"], None]
_HIST_SEQ = ffi.new("uint64_t *")  # one sequence for every vCPU's hcall history (process-wide is enough)
_rr = lib.xm_reg_read  # (uc, regid) -> u64
_rw = lib.xm_reg_write  # (uc, regid, u64)
_GPR_IDS = ffi.new("int[]", list(R.GPR))  # r0..r31 for xm_reg_write_many

_OFF = {name: ffi.offsetof("struct xm_trap", name)
        for name in ("intno", "nout", "r", "pc", "msr", "insn", "tramp_entry", "tramp_val", "slot_le")}
Q_R3 = _OFF["r"] // 8
Q_PC = _OFF["pc"] // 8
Q_MSR = _OFF["msr"] // 8
W_INTNO = _OFF["intno"] // 4
W_NOUT = _OFF["nout"] // 4
W_INSN = _OFF["insn"] // 4
Q_TRAMP_ENTRY = _OFF["tramp_entry"] // 8
Q_TRAMP_VAL = _OFF["tramp_val"] // 8
W_SLOT_LE = _OFF["slot_le"] // 4


@ffi.def_extern()
def xm_py_trap(trap: Any) -> None:  # pragma: no cover - exercised by every guest
    vcpu: VCpu = ffi.from_handle(trap.owner)
    try:
        if vcpu._redirect is not None and vcpu.q[Q_PC] - 4 >= TRAMP_BASE:  # noqa: SLF001 - hot: no property
            vcpu.finish_redirect()
            return
        vcpu.in_trap = True
        vcpu.on_trap(vcpu)
        vcpu.in_trap = False
    except BaseException as exc:  # must not unwind through C
        vcpu.in_trap = False
        vcpu.pending_exception = exc
        vcpu.uc.emu_stop()


@ffi.def_extern()
def xm_py_serve(trap: Any) -> None:  # pragma: no cover - exercised by guests
    vcpu: VCpu = ffi.from_handle(trap.owner)
    try:
        vcpu.on_serve(vcpu, trap.serve_addr, trap.serve_word)
    except BaseException as exc:  # must not unwind through C
        vcpu.pending_exception = exc
        vcpu.uc.emu_stop()


@ffi.def_extern()
def xm_py_irq(trap: Any) -> None:  # pragma: no cover - exercised by interrupt guests
    vcpu: VCpu = ffi.from_handle(trap.owner)
    try:
        vcpu.on_irq(vcpu)
    except BaseException as exc:  # must not unwind through C
        vcpu.pending_exception = exc
        vcpu.uc.emu_stop()


class _Shadow(MutableMapping):
    """SPRs the machine serves itself (VCpu.shadow). SPRG0's value lives in the C trap block, where the C
    fast path of H_SET_SPRG0 stores it; any other such SPR in a plain dict."""

    def __init__(self, trap: Any) -> None:
        self._trap = trap
        self._other: dict[int, int] = {}
        self._has_sprg0 = False

    def __getitem__(self, spr: int) -> int:
        if spr == R.SPR_SPRG0 and self._has_sprg0:
            return int(self._trap.sprg0)
        return self._other[spr]

    def __setitem__(self, spr: int, value: int) -> None:
        if spr == R.SPR_SPRG0:
            self._trap.sprg0 = value & MASK64
            self._has_sprg0 = True
        else:
            self._other[spr] = value

    def __delitem__(self, spr: int) -> None:
        if spr == R.SPR_SPRG0 and self._has_sprg0:
            self._has_sprg0 = False
        else:
            del self._other[spr]

    def __iter__(self) -> Iterator[int]:
        if self._has_sprg0:
            yield R.SPR_SPRG0
        yield from self._other

    def __len__(self) -> int:
        return int(self._has_sprg0) + len(self._other)

    def clear(self) -> None:  # MutableMapping's pops item by item
        self._other.clear()
        self._has_sprg0 = False

    def __contains__(self, spr: object) -> bool:
        return (spr == R.SPR_SPRG0 and self._has_sprg0) or spr in self._other


class MmioHandler(Protocol):
    """What serves a mapped device page: guest address and size in, value out (big-endian semantics)."""

    vcpu: VCpu

    def on_read(self, addr: int, size: int) -> int: ...

    def on_write(self, addr: int, size: int, value: int) -> None: ...


@ffi.def_extern()
def xm_py_mmio_read(page: Any, addr: int, size: int) -> int:  # pragma: no cover - exercised by guests
    handler: MmioHandler = ffi.from_handle(page.owner)
    try:
        return handler.on_read(addr, size) & MASK64
    except BaseException as exc:  # must not unwind through C
        handler.vcpu.pending_exception = exc
        handler.vcpu.uc.emu_stop()
        return 0


@ffi.def_extern()
def xm_py_mmio_write(page: Any, addr: int, size: int, value: int) -> None:  # pragma: no cover
    handler: MmioHandler = ffi.from_handle(page.owner)
    try:
        handler.on_write(addr, size, value)
    except BaseException as exc:  # must not unwind through C
        handler.vcpu.pending_exception = exc
        handler.vcpu.uc.emu_stop()


def _no_irq(vcpu: VCpu) -> None:
    vcpu.trap.irq_waiting = 0


class VCpu:
    """A POWER10 core (Unicorn's only PPC64 server model) presented to the guest as an LPAR vCPU."""

    def __init__(self, index: int, ram: GuestRam, on_trap: TrapHandler) -> None:
        self.index = index
        self.ram = ram
        self.on_trap = on_trap
        # Called from the block hook when an interrupt waits and MSR[EE] = 1 (trap.pc = the block's address).
        self.on_irq: Callable[[VCpu], None] = _no_irq
        # Called from the block hook for an instruction the machine must serve that is not hooked yet.
        self.on_serve: Callable[[VCpu, int, int], None] | None = None
        self.pending_exception: BaseException | None = None
        uc = Uc(UC_ARCH_PPC, UC_MODE_PPC64 | UC_MODE_BIG_ENDIAN)
        uc.ctl_set_tlb_mode(UCC.UC_TLB_VIRTUAL)
        uc.mem_map_ptr(0, ram.size, UC_PROT_ALL, ram.address)
        uc.mem_map(STUB_BASE, STUB_SIZE, UC_PROT_ALL)
        self._tramp_buf = mmap.mmap(-1, TRAMP_SIZE)
        uc.mem_map_ptr(TRAMP_BASE, TRAMP_SIZE, UC_PROT_ALL,
                       ctypes.addressof(ctypes.c_char.from_buffer(self._tramp_buf)))
        self.uc = uc
        self._fast_pending: tuple[int, int] = (0, 0)
        self.in_trap = False  # inside the sc/program hook: SPR writes can use the trap block's fast form
        # Interrupt state shared with the C fast paths (the line level, DEC pending, external delivery in the
        # block hook); allocated before `redirect`, whose setter mirrors itself there.
        self.irqx = ffi.new("struct xm_irqx *")
        self._redirect: tuple[list[tuple[int, int]], int, int, dict[int, int]] | None = None
        self._tramp_entries: dict[tuple, int] = {}
        self._tramp_next = TRAMP_BASE
        self._flushing = False
        self._handle = ffi.new_handle(self)
        self.trap = ffi.new("struct xm_trap *")
        self.trap.uc = ffi.cast("void *", uc._uch.value)
        self._h = self.trap.uc  # the uc_engine* for the C register helpers
        self.trap.owner = self._handle
        self.trap.irqx = self.irqx
        self.trap.ram = ffi.cast("unsigned char *", ram.address)
        self.trap.ram_size = ram.size
        self.trap.slot = ffi.cast("uint64_t *", ctypes.addressof(ctypes.c_char.from_buffer(self._tramp_buf))
                                  + TRAMP_DATA)
        self._served = ffi.new("uint64_t[]", 65536)  # XM_SERVED_CAP
        # SPRs the machine serves itself (the guest's mfspr/mtspr of them are hooked, like the timebase's):
        # their value lives here, and a write from an hcall is one store instead of a trampoline.
        self._shadow = _Shadow(self.trap)
        view = memoryview(ffi.buffer(self.trap))
        self.q = view.cast("Q")  # host byte order; the block is host memory
        self.w = view.cast("I")
        # The guest MMU: real mode 1:1 (EA bits 0:3 ignored), radix once the guest registers a process table.
        # The machine's own stub and trampoline pages are 1:1 whatever the MSR.
        self.mmu = ffi.new("struct xm_mmu *")
        self.mmu.ram = self.trap.ram
        self.mmu.ram_size = ram.size
        self.mmu.ident_lo[0], self.mmu.ident_hi[0] = STUB_BASE, STUB_BASE + STUB_SIZE
        self.mmu.ident_lo[1], self.mmu.ident_hi[1] = TRAMP_BASE, MASK64
        self._scanned = ffi.new("uint64_t[]", 2 * 65536)  # XM_SCAN_CAP (key, generation) pairs
        self.mmu.scanned = self._scanned
        self.trap.mmu = self.mmu
        self.hist = ffi.new("struct xm_hist *")
        self.hist.seq = _HIST_SEQ
        self.trap.hist = self.hist
        # The deterministic clock as C sees it (timebase reads served without Python; see xm_time_hook).
        self.time = ffi.new("struct xm_time *")
        self.time.ipu = 1000
        self._sites: list[Any] = []
        # Guest stores skip Unicorn's check for translated code except on RAM where this vCPU ran code (see
        # xm_hook_tlb_guarded): in 64 KiB runs, the granule images are linked with (code apart from data).
        self.guard = ffi.new("struct xm_guard *")
        self.guard.t = self.trap
        self.guard.ram_size = ram.size
        self.guard.granule = GUARD_GRANULE
        if lib.xm_hook_trap(self.trap) != 0 or lib.xm_hook_tlb_guarded(self.guard) != 0:
            raise RuntimeError("cannot install the trap hook")
        self._stub_cache: dict[int, None] = {}

    @property
    def redirect(self) -> tuple[list[tuple[int, int]], int, int, dict[int, int]] | None:
        """A pending SPR trampoline: (saved scratch registers, guest PC, guest MSR, pending SPR writes)."""
        return self._redirect

    @redirect.setter
    def redirect(self, value: tuple[list[tuple[int, int]], int, int, dict[int, int]] | None) -> None:
        self._redirect = value
        self.irqx.redirect = value is not None  # the C delivery leaves a pending trampoline to Python

    # --- general registers -------------------------------------------------------------------------
    def gpr(self, n: int) -> int:
        if self.redirect is not None and n in TRAMP_REGS:
            return dict(self.redirect[0])[n]
        return _rr(self._h, R.GPR[n])

    def set_gpr(self, n: int, value: int) -> None:
        if self.redirect is not None and n in TRAMP_REGS:  # the trampoline will restore this register
            saved, pc, msr, pending = self.redirect
            self.redirect = ([(r, value & MASK64 if r == n else v) for r, v in saved], pc, msr, pending)
            return
        _rw(self._h, R.GPR[n], value & MASK64)

    def set_gprs(self, values: list[int]) -> None:
        """r0.. = values, in one call into Unicorn (a reset writes all 32)."""
        if self.redirect is not None:  # the trampoline's scratch registers go through set_gpr
            for n, value in enumerate(values):
                self.set_gpr(n, value)
            return
        n = len(values)
        lib.xm_reg_write_many(self._h, _GPR_IDS, ffi.new("uint64_t[]", [v & MASK64 for v in values]), n)

    @property
    def pc(self) -> int:
        """The guest's PC (where it continues, past any pending SPR trampoline)."""
        return self.guest_pc

    @pc.setter
    def pc(self, value: int) -> None:
        if self.redirect is not None:
            saved, _, msr, pending = self.redirect
            self.redirect = (saved, value & MASK64, msr, pending)
            return
        _rw(self._h, R.REG_PC, value & MASK64)

    @property
    def msr(self) -> int:
        return self.guest_msr

    @msr.setter
    def msr(self, value: int) -> None:
        if self.redirect is not None:
            saved, pc, _, pending = self.redirect
            self.redirect = (saved, pc, value & MASK64, pending)
            return
        _rw(self._h, R.REG_MSR, value & MASK64)

    @property
    def run_pc(self) -> int:
        """Where execution resumes now (the trampoline, while one is pending)."""
        return _rr(self._h, R.REG_PC)

    def reg(self, uc_id: int) -> int:
        return _rr(self._h, uc_id)

    def set_reg(self, uc_id: int, value: int) -> None:
        _rw(self._h, uc_id, value & MASK64)

    @property
    def shadow(self) -> _Shadow:
        return self._shadow

    @shadow.setter
    def shadow(self, values: dict[int, int]) -> None:
        self._shadow.clear()
        self._shadow.update(values)

    # --- SPRs through a one-instruction stub --------------------------------------------------------
    def _run_stub(self, insn: int, scratch_in: int | None) -> int:
        uc = self.uc
        save_pc = _rr(self._h, R.REG_PC)
        save_r3 = _rr(self._h, R.GPR[3])
        save_msr = _rr(self._h, R.REG_MSR)
        if save_msr & (R.MSR_PR | R.MSR_LE):  # run the stub privileged and big-endian
            _rw(self._h, R.REG_MSR, save_msr & ~(R.MSR_PR | R.MSR_LE | R.MSR_EE))
        if scratch_in is not None:
            _rw(self._h, R.GPR[3], scratch_in & MASK64)
        uc.mem_write(STUB_BASE, struct.pack(">I", insn))
        t = self.trap
        icount, deadline, waiting, outside = t.icount, t.deadline, t.irq_waiting, t.exec_outside
        t.deadline, t.irq_waiting = MASK64, 0  # the block hook must neither stop nor count the stub
        try:
            uc.emu_start(STUB_BASE, STUB_BASE + 4, count=1)
        except UcError:
            pass
        finally:
            t.icount, t.deadline, t.irq_waiting, t.exec_outside = icount, deadline, waiting, outside
        out = _rr(self._h, R.GPR[3])
        if save_msr & (R.MSR_PR | R.MSR_LE):
            _rw(self._h, R.REG_MSR, save_msr)
        _rw(self._h, R.GPR[3], save_r3)
        _rw(self._h, R.REG_PC, save_pc)
        return out

    @property
    def xer(self) -> int:
        """XER as `mfxer` reads it: Unicorn's register read leaves out SO, OV and CA, which QEMU keeps apart
        (a snapshot taken in the middle of multi-precision arithmetic would lose the carry)."""
        return self._run_stub(R.mfspr(3, R.SPR_XER), None)

    @xer.setter
    def xer(self, value: int) -> None:
        """Through `mtxer`: Unicorn's register write stores SO/OV/CA in the raw XER word, where later
        instructions never clear them (measured: CA stays set across an addic that clears it)."""
        _rw(self._h, R.REG_XER, 0)
        self._run_stub(R.mtspr(R.SPR_XER, 3), value & MASK64)

    # --- vector-scalar registers (Unicorn gives no register access to them) ------------------------------
    VSX_STATE_SIZE = 64 * 16 + 16  # vs0..vs63 (vs0-31 overlay the FPRs, vs32-63 are the VRs), then VSCR

    def _run_code(self, words: list[int], r3: int) -> None:
        """Run a straight-line stub at STUB_BASE (64-bit, big-endian, real mode, FP/VMX/VSX on), r3 = `r3`;
        PC, MSR and r3 restored after, so a pending SPR trampoline stays pending (it owns r0, r10-r12).
        Cold paths only (snapshots): a nested emu_start costs ~50 us."""
        h = self._h
        save_pc, save_r3, save_msr = _rr(h, R.REG_PC), _rr(h, R.GPR[3]), _rr(h, R.REG_MSR)
        _rw(h, R.REG_MSR, R.MSR_SF | R.MSR_FP | R.MSR_VEC | R.MSR_VSX)
        _rw(h, R.GPR[3], r3)
        self.uc.mem_write(STUB_BASE, b"".join(struct.pack(">I", w) for w in words))
        t = self.trap
        icount, deadline, waiting, outside = t.icount, t.deadline, t.irq_waiting, t.exec_outside
        t.deadline, t.irq_waiting = MASK64, 0
        try:
            self.uc.emu_start(STUB_BASE, STUB_BASE + 4 * len(words), count=len(words))
        finally:
            t.icount, t.deadline, t.irq_waiting, t.exec_outside = icount, deadline, waiting, outside
            _rw(h, R.REG_MSR, save_msr)
            _rw(h, R.GPR[3], save_r3)
            _rw(h, R.REG_PC, save_pc)

    def vector_state(self) -> bytes:
        """The 64 VSRs (stxvd2x, big-endian element order) and VSCR, as a snapshot keeps them."""
        words: list[int] = []
        for i in range(64):  # stxvd2x vs_i,0,r3 ; addi r3,r3,16
            words += [0x7C000798 | (i & 31) << 21 | 3 << 11 | (i >> 5), 0x38630010]
        words += [0x10000604, 0x7C0001CE | 3 << 11]  # mfvscr v0 ; stvx v0,0,r3  (v0 = vs32 is already saved)
        words += [0x3863FE00, 0x7C000698 | 3 << 11 | 1]  # addi r3,r3,-512 ; lxvd2x vs32,0,r3: v0 back as it was
        data = STUB_BASE + 0x800
        self._run_code(words, data)
        return bytes(self.uc.mem_read(data, self.VSX_STATE_SIZE))

    def set_vector_state(self, state: bytes) -> None:
        """Load what vector_state gave (VSCR first, through v0, then every VSR)."""
        if len(state) != self.VSX_STATE_SIZE:
            raise ValueError(f"vector state must be {self.VSX_STATE_SIZE} bytes")
        data = STUB_BASE + 0x800
        self.uc.mem_write(data, state)
        words = [0x38630400, 0x7C0000CE | 3 << 11, 0x10000644, 0x3863FC00]  # r3+=1024; lvx v0; mtvscr v0; r3-=1024
        for i in range(64):  # lxvd2x vs_i,0,r3 ; addi r3,r3,16
            words += [0x7C000698 | (i & 31) << 21 | 3 << 11 | (i >> 5), 0x38630010]
        self._run_code(words, data)

    def spr(self, spr: int) -> int:
        """Read an SPR with `mfspr r3, spr` run in a nested emulation (r3 and PC restored). Cold paths only:
        an emu_start costs ~50 us."""
        if spr in (R.SPR_PURR, R.SPR_SPURR, R.SPR_VTB_ALT):  # would kill the host process in Unicorn 2.1.4
            raise ValueError(f"SPR {spr} cannot be read through Unicorn")
        if spr in self.shadow:
            return self.shadow[spr]
        if spr == R.SPR_PIDR:  # served by the machine (the MMU walker's PID)
            return self.pidr
        self.flush_redirect()
        return self._run_stub(R.mfspr(3, spr), None)

    def set_spr(self, spr: int, value: int) -> None:
        """Write an SPR. Takes effect before the guest's next instruction (see `write_sprs`)."""
        if spr in self.shadow:
            self.shadow[spr] = value & MASK64
            return
        if spr == R.SPR_PIDR:
            self.pidr = value
            return
        self.write_sprs([(spr, value)])

    def _code(self, key: tuple, words: list[int], little: bool) -> int | None:
        """Address of a trampoline (built once per key), or None when the code area is full."""
        entry = self._tramp_entries.get(key)
        if entry is None:
            off = self._tramp_next - TRAMP_BASE
            if off + 4 * len(words) > TRAMP_CODE_SIZE:
                return None
            fmt = "<I" if little else ">I"
            for i, w in enumerate(words):
                struct.pack_into(fmt, self._tramp_buf, off + 4 * i, w)
            entry = self._tramp_next
            self._tramp_next += 4 * len(words)
            self._tramp_entries[key] = entry
        return entry

    def write_sprs(self, writes: list[tuple[int, int]], then_pc: int | None = None,
                   then_msr: int | None = None) -> None:
        """Write SPRs, then continue at `then_pc` with `then_msr` (default: where and as the guest was).

        The vCPU is redirected to a trampoline of `mtspr`s from scratch registers. Fast form (one SPR, the
        guest in 64-bit privileged real mode, returning below 32 MiB, as every hcall of a small kernel):
        `mtspr; ld r0,slot; ba return`, with no trap. General form: `mtspr`s then a trap, which restores the
        scratch registers and lands on `then_pc` with `then_msr`. Works from inside a hook and between runs;
        pending writes merge into one trampoline.
        """
        h = self._h
        if self.redirect is None and then_pc is None and then_msr is None and len(writes) == 1:
            q = self.q
            in_trap = self.in_trap and not q[Q_TRAMP_ENTRY]
            msr = q[Q_MSR]
            pc = q[Q_PC]
            if in_trap and msr & _FAST_MSR_MASK == R.MSR_SF and pc < BA_REACH:
                spr, value = writes[0]
                little = bool(msr & R.MSR_LE)
                key = ("fast", spr, pc, little)
                entry = self._tramp_entries.get(key) or self._code(
                    key, [R.mtspr(spr, 0), LD_R0_SLOT, 0x48000002 | pc], little)
                if entry is not None:
                    # the C hook parks r0 in the slot and jumps once this Python call returns
                    q[Q_TRAMP_VAL] = value & MASK64
                    q[Q_TRAMP_ENTRY] = entry
                    self.w[W_SLOT_LE] = little
                    self._fast_pending = (spr, value)
                    return
        if self.in_trap and self.q[Q_TRAMP_ENTRY]:  # a fast write is queued in this trap: fold it in here
            self.q[Q_TRAMP_ENTRY] = 0
            writes = [self._fast_pending, *writes]
        if self.redirect is not None:
            saved, pc, msr, pending = self.redirect
        else:
            pc, msr = _rr(h, R.REG_PC), _rr(h, R.REG_MSR)
            saved, pending = [], {}
        if then_pc is not None:
            pc = then_pc
        if then_msr is not None:
            msr = then_msr
        for spr, value in writes:
            pending.pop(spr, None)
            pending[spr] = value & MASK64
        while len(pending) > len(TRAMP_REGS):  # rare: more SPRs than scratch registers
            spr = next(iter(pending))
            self._run_stub(R.mtspr(spr, 3), pending.pop(spr))
        if not saved:
            saved = [(r, _rr(h, R.GPR[r])) for r in TRAMP_REGS]
        sprs = tuple(pending)
        for (spr, reg) in zip(sprs, TRAMP_REGS, strict=False):
            _rw(h, R.GPR[reg], pending[spr])
        now = _rr(h, R.REG_MSR)
        if now & _FAST_MSR_MASK != R.MSR_SF:  # run it privileged, 64-bit, real mode
            now = R.MSR_SF | R.MSR_ME
            _rw(h, R.REG_MSR, now)
        little = bool(now & R.MSR_LE)
        words = [R.mtspr(spr, reg) for spr, reg in zip(sprs, TRAMP_REGS, strict=False)] + [TRAP_INSN]
        entry = self._code(("trap", sprs, little), words, little)
        if entry is None:  # the code area is full: take the slow, certain way
            for spr in sprs:
                self._run_stub(R.mtspr(spr, 3), pending[spr])
            for r, value in saved:
                _rw(h, R.GPR[r], value)
            _rw(h, R.REG_MSR, msr)
            _rw(h, R.REG_PC, pc)
            return
        _rw(h, R.REG_PC, entry)
        self.redirect = (saved, pc, msr, pending)

    def write_sprs_and_jump(self, writes: list[tuple[int, int]], vector: int, msr: int) -> bool:
        """Interrupt delivery in one go: write the SPRs (SRR0, SRR1 ...) and land on `vector` with `msr`
        (an interrupt MSR: 64-bit, privileged, real mode), with no trap back into the machine. The trampoline
        `mtspr`s from scratch registers, reloads them from slots with `ld rN,slot(0)` and ends in `ba vector`.
        Returns False (nothing done) when it cannot be used: an SPR trampoline is pending, the vector is out
        of `ba`'s reach, or the MSR is not a real-mode privileged 64-bit one."""
        if (self.redirect is not None or vector >= BA_REACH or msr & _FAST_MSR_MASK != R.MSR_SF
                or len(writes) > len(TRAMP_REGS) or (self.in_trap and self.q[Q_TRAMP_ENTRY])):
            return False
        h = self._h
        little = bool(msr & R.MSR_LE)
        regs = TRAMP_REGS[:len(writes)]
        entry = self.jump_entry(tuple(spr for spr, _ in writes), vector, little)
        if entry is None:
            return False
        fmt = "<Q" if little else ">Q"
        for i, reg in enumerate(regs):
            struct.pack_into(fmt, self._tramp_buf, TRAMP_DATA + JUMP_SLOTS + 8 * i, _rr(h, R.GPR[reg]))
        for (_, value), reg in zip(writes, regs, strict=True):
            _rw(h, R.GPR[reg], value & MASK64)
        _rw(h, R.REG_MSR, msr)
        _rw(h, R.REG_PC, entry)
        return True

    def jump_entry(self, sprs: tuple[int, ...], vector: int, little: bool) -> int | None:
        """Address of the jump trampoline `mtspr`s from r0, r10 ...; reload them from the jump slots; `ba vector`
        (built once; None when the code area is full). The C external-interrupt delivery uses it too."""
        key = ("jump", sprs, vector, little)
        entry = self._tramp_entries.get(key)
        if entry is None:
            regs = TRAMP_REGS[:len(sprs)]
            words = [R.mtspr(spr, reg) for spr, reg in zip(sprs, regs, strict=True)]
            words += [0xE8000000 | (reg << 21) | ((-0x8000 + JUMP_SLOTS + 8 * i) & 0xFFFC)
                      for i, reg in enumerate(regs)]  # ld reg, slot_i(0)
            words.append(0x48000002 | vector)  # ba vector
            entry = self._code(key, words, little)
        return entry

    def finish_redirect(self) -> None:
        """The trampoline trapped back: restore its scratch registers, go where the guest should be."""
        saved, pc, msr, _ = self.redirect
        self.redirect = None
        uc = self.uc
        h = self._h
        for r, value in saved:
            _rw(h, R.GPR[r], value)
        if _rr(h, R.REG_MSR) != msr:
            _rw(h, R.REG_MSR, msr)
        _rw(h, R.REG_PC, pc)
        self.q[Q_PC] = pc
        if self._flushing:
            uc.emu_stop()

    def flush_redirect(self) -> None:
        """Run a pending trampoline now (outside any run), so reads of SPRs and PC see its effect."""
        if self.redirect is None:
            return
        t = self.trap
        icount, deadline, waiting = t.icount, t.deadline, t.irq_waiting
        t.deadline, t.irq_waiting = MASK64, 0
        self._flushing = True
        try:
            self.uc.emu_start(_rr(self._h, R.REG_PC), MASK64, 0, 16)
        except UcError:
            pass
        finally:
            self._flushing = False
            t.icount, t.deadline, t.irq_waiting = icount, deadline, waiting

    @property
    def guest_pc(self) -> int:
        """Where the guest continues (the target of a pending redirect, else PC)."""
        return self.redirect[1] if self.redirect is not None else _rr(self._h, R.REG_PC)

    @property
    def guest_msr(self) -> int:
        return self.redirect[2] if self.redirect is not None else _rr(self._h, R.REG_MSR)

    def hcall_history(self) -> list[tuple[int, int, int, tuple[int, int, int, int], int, int]]:
        """The last hcalls this vCPU made, oldest first: (sequence, opcode, pc, first four args, rc, vCPU).
        Recorded in C for every `sc`, whatever tracing is on."""
        h = self.hist
        n = int(h.n)
        out = []
        for k in range(max(0, n - 32), n):
            i = k % 32
            out.append((int(h.num[i]), int(h.op[i]), int(h.pc[i]),
                        (int(h.a0[i]), int(h.a1[i]), int(h.a2[i]), int(h.a3[i])), int(h.rc[i]), self.index))
        return out

    # --- timebase reads served in C --------------------------------------------------------------------
    def hook_time_site(self, addr: int, upper: bool, gpr: int) -> None:
        """Serve the timebase read at `addr` (mftb / mfspr TB, TBU, PURR, SPURR, VTB into `gpr`) in C from
        the deterministic clock (self.time, which the scheduler keeps current for each slice)."""
        site = ffi.new("struct xm_site *")
        site.t = self.trap
        site.time = self.time
        site.kind = 1 if upper else 0
        site.gpr = gpr
        hh = ffi.new("size_t *")
        if lib.xm_hook_time_site(self.trap, site, addr, hh) != 0:
            raise RuntimeError(f"cannot hook the timebase read at {addr:#x}")
        self._sites.append(site)

    def hook_c_site(self, addr: int, what: str) -> None:
        """An instruction served by a C code hook with no state of its own: "sync" (ptesync, where a tlbie's
        deferred flush happens; the instruction then runs) or "hint" (a priority hint, stepped over, ending
        the slice when another vCPU can run)."""
        install = lib.xm_hook_sync_site if what == "sync" else lib.xm_hook_hmt_site
        hh = ffi.new("size_t *")
        if install(self.trap, addr, hh) != 0:
            raise RuntimeError(f"cannot hook the {what} instruction at {addr:#x}")

    # --- the guest MMU -----------------------------------------------------------------------------------
    def set_process_table(self, base: int, entries: int) -> None:
        """Radix process table (H_REGISTER_PROC_TBL): base 0 = none. Drops every cached translation."""
        self.mmu.prtb = base
        self.mmu.prtb_entries = entries
        lib.xm_tlb_flush(self.trap)

    @property
    def pidr(self) -> int:
        return int(self.mmu.pidr)

    @pidr.setter
    def pidr(self, value: int) -> None:
        """mtspr PIDR, served by the machine: quadrant-0 translations of the old PID go."""
        self.mmu.pidr = value & 0xFFFF_FFFF
        lib.xm_tlb_flush(self.trap)

    def flush_tlb(self) -> None:
        lib.xm_tlb_flush(self.trap)

    def forget_code(self, lo: int | None = None, hi: int | None = None) -> None:
        """RAM changed behind Unicorn's back: drop translated code (all of it, or [lo, hi)) and the block
        scan's record of which blocks hold no served instruction."""
        if lo is None or hi is None:
            self.uc.ctl_flush_tb()
        else:
            self.uc.ctl_remove_cache(lo, hi)
        lib.xm_scan_forget(self.trap)

    def code_ranges(self) -> list[tuple[int, int]]:
        """RAM ranges [lo, hi) where this vCPU may have translated code (its store guard): none elsewhere."""
        g = self.guard
        if g.failed:
            return [(0, int(g.ram_size))]
        return [(int(g.lo[i]), int(g.hi[i])) for i in range(g.n)]

    def translate(self, ea: int, access: int = 16) -> int | None:
        """The real address the guest's `ea` maps to under the current MSR (16 load, 17 store, 18 fetch), or
        None where the access would fault. No side effects on the guest."""
        pa = ffi.new("uint64_t *")
        return int(pa[0]) if lib.xm_translate(self.trap, ea & MASK64, access, pa) == 0 else None

    def take_mmu_fault(self) -> tuple[int, int, int, bool] | None:
        """The translation fault that stopped the core (page EA, access, cause bits, segment?), once."""
        mm = self.mmu
        if not mm.faulted:
            return None
        mm.faulted = 0
        return int(mm.fault_ea), int(mm.fault_type), int(mm.fault_cause), bool(mm.fault_segment)

    # --- device pages ----------------------------------------------------------------------------------
    def map_mmio_page(self, base: int, size: int, handler: MmioHandler) -> tuple:
        """Map [base, base+size) as a device page served by `handler` through the C memory hook. Only code
        translated after this sees the hook: the caller flushes translated code (and restarts the access)."""
        buf = mmap.mmap(-1, size)
        self.uc.mem_map_ptr(base, size, UC_PROT_ALL & ~4, ctypes.addressof(ctypes.c_char.from_buffer(buf)))
        page = ffi.new("struct xm_mmio *")
        keep = ffi.new_handle(handler)
        page.owner = keep
        page.base = base
        page.size = size
        page.buf = ffi.cast("unsigned char *", ctypes.addressof(ctypes.c_char.from_buffer(buf)))
        hh = ffi.new("size_t *")
        if lib.xm_hook_mmio(self.trap.uc, page, hh) != 0:
            raise RuntimeError(f"cannot hook the device page at {base:#x}")
        return (base, size, buf, page, keep, int(hh[0]))

    def unmap_mmio_page(self, token: tuple) -> None:
        base, size, _buf, _page, _keep, hook = token
        lib.xm_unhook(self.trap.uc, hook)  # added in C: the binding has no record of it to drop
        try:
            self.uc.mem_unmap(base, size)
        except UcError:
            pass

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
