"""XiveTCTX: one vCPU's thread interrupt context (four 16-byte rings) and its TIMA decoding.

The OS ring (QW1) carries NSR, CPPR, IPB, LSMFB, ACK#, INC, AGE, PIPR and the OS CAM (word2). The
thread's output to its vCPU is the injected `IrqLine`, driven as a level: `line(cpu, True)` while an OS
interrupt more favoured than CPPR is signalled, `line(cpu, False)` once it is acknowledged or CPPR no
longer lets it through. TIMA accesses are decoded as QEMU 7.2's GEN1 table (special operations keyed by
page, offset and size; raw 4/8-byte register access filtered by the per-page views).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from xive_machine.intc.xive.regs import (
    TM_ACK_CNT,
    TM_AGE,
    TM_CPPR,
    TM_IPB,
    TM_LSMFB,
    TM_NSR,
    TM_PIPR,
    TM_QW0_USER,
    TM_QW1_NSR_EO,
    TM_QW1_OS,
    TM_QW1W2_OS_CAM,
    TM_QW1W2_VO,
    TM_QW2_HV_POOL,
    TM_QW2W2_VP,
    TM_QW3_HV_PHYS,
    TM_QW3_NSR_HE,
    TM_QW3_NSR_HE_PHYS,
    TM_RING_OFFSET,
    TM_SPC_ACK_HV_REG,
    TM_SPC_ACK_OS_REG,
    TM_SPC_PULL_OS_CTX,
    TM_SPC_PULL_POOL_CTX,
    TM_SPC_SET_OS_PENDING,
    TM_WORD2,
    XIVE_PRIORITY_MAX,
    XIVE_TM_HV_PAGE,
    XIVE_TM_OS_PAGE,
)
from xive_machine.intc.xive.source import SIZE_MASK, size_mask

_U32 = struct.Struct(">I")

# IPB bit of a priority (0 for priorities > 7) and the PIPR of an IPB (0xFF when empty)
PRIO_TO_IPB = bytes((0x80 >> p) if p <= XIVE_PRIORITY_MAX else 0 for p in range(256))
IPB_TO_PIPR = bytes((8 - ipb.bit_length()) if ipb else 0xFF for ipb in range(256))


def priority_to_ipb(prio: int) -> int:
    return PRIO_TO_IPB[prio & 0xFF]


def ipb_to_pipr(ipb: int) -> int:
    return IPB_TO_PIPR[ipb & 0xFF]


# Raw-access views, per TIMA page, one byte per register byte: 0x2 readable, 0x1 writable (QEMU 7.2).
_HW_VIEW = bytes(
    (3, 0, 0, 0, 0, 0, 0, 0, 3, 3, 3, 3, 0, 0, 0, 0,
     3, 3, 3, 3, 3, 3, 0, 2, 3, 3, 3, 3, 0, 0, 0, 0,
     0, 0, 3, 3, 0, 0, 0, 0, 3, 3, 3, 3, 0, 0, 0, 0,
     3, 3, 3, 3, 0, 3, 0, 2, 3, 0, 0, 3, 3, 3, 3, 0)
)  # fmt: skip
_HV_VIEW = bytes(
    (3, 0, 0, 0, 0, 0, 0, 0, 3, 3, 3, 3, 0, 0, 0, 0,
     3, 3, 3, 3, 3, 3, 0, 2, 3, 3, 3, 3, 0, 0, 0, 0,
     0, 0, 3, 3, 0, 0, 0, 0, 0, 3, 3, 3, 0, 0, 0, 0,
     3, 3, 3, 3, 0, 3, 0, 2, 3, 0, 0, 3, 0, 0, 0, 0)
)  # fmt: skip
_OS_VIEW = bytes(
    (3, 0, 0, 0, 0, 0, 0, 0, 3, 3, 3, 3, 0, 0, 0, 0,
     2, 3, 2, 2, 2, 2, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0,
     0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
     0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
)  # fmt: skip
_USER_VIEW = bytes((3, 0, 0, 0, 0, 0, 0, 0) + (0,) * 56)
TM_VIEWS = (_HW_VIEW, _HV_VIEW, _OS_VIEW, _USER_VIEW)

NvtResend = Callable[[int, int], "int | None"]
"""`resend(nvt_blk, nvt_idx)`: pending-priority backlog (IPB) of an NVT being pushed, None if invalid."""


def _no_backlog(nvt_blk: int, nvt_idx: int) -> int:
    return 0


class XiveTCTX:
    """Thread context of one vCPU. `regs` is the 64-byte register file in TIMA (big-endian) order."""

    __slots__ = ("cpu", "regs", "line", "levels", "hv_output", "resend", "trace")

    def __init__(self, cpu: int, line: Callable[[int, bool], None], resend: NvtResend | None = None) -> None:
        self.cpu = cpu
        self.regs = bytearray(64)
        self.line = line
        # levels[0]: the OS output level currently driven on `line`. A byte buffer, like `regs`, so that the
        # machine's C fast path works on this very state (see machine/xive_fast.py).
        self.levels = bytearray(1)
        self.hv_output = False  # HV (QW3) output: not wired to the guest on sPAPR, kept for completeness
        self.resend = resend or _no_backlog
        self.trace: Any = None
        self.reset()

    @property
    def os_output(self) -> bool:
        """The level currently driven on `line` (OS ring exception signalled, not yet acknowledged)."""
        return bool(self.levels[0])

    @os_output.setter
    def os_output(self, level: bool) -> None:
        self.levels[0] = 1 if level else 0

    # --- state -----------------------------------------------------------------------------------------

    def reset(self, os_cam: int | None = None) -> None:
        """QEMU reset values; `os_cam` (e.g. sPAPR VO|0x400+id) is written into QW1 word2 if given."""
        r = self.regs
        r[:] = bytes(64)
        r[TM_QW1_OS + TM_LSMFB] = 0xFF
        r[TM_QW1_OS + TM_ACK_CNT] = 0xFF
        r[TM_QW1_OS + TM_AGE] = 0xFF
        r[TM_QW1_OS + TM_PIPR] = 0xFF
        r[TM_QW3_HV_PHYS + TM_PIPR] = 0xFF
        if os_cam is not None:
            _U32.pack_into(r, TM_QW1_OS + TM_WORD2, os_cam & 0xFFFFFFFF)
        self.hv_output = False
        self._set_os_output(False)

    def get_state(self) -> bytes:
        """The 64 register bytes in TIMA order (what KVM_REG_PPC_VP_STATE carries for QW1)."""
        return bytes(self.regs)

    def set_state(self, regs: bytes) -> None:
        """Restore the registers and re-drive the outputs from the NSR bits (OS: only with the context pushed)."""
        if len(regs) != 64:
            raise ValueError("a thread context is 64 bytes")
        self.regs[:] = regs
        self.hv_output = bool(self.regs[TM_QW3_HV_PHYS + TM_NSR] & TM_QW3_NSR_HE)
        self._set_os_output(bool(self.regs[TM_QW1_OS + TM_NSR] & TM_QW1_NSR_EO) and bool(self.os_cam() & TM_QW1W2_VO))

    def os_cam(self) -> int:
        """QW1 word2 (VO bit and OS CAM line)."""
        return _U32.unpack_from(self.regs, TM_QW1_OS + TM_WORD2)[0]

    def set_os_cam(self, word2: int) -> None:
        _U32.pack_into(self.regs, TM_QW1_OS + TM_WORD2, word2 & 0xFFFFFFFF)

    def _set_os_output(self, level: bool) -> None:
        if self.os_output != level:
            self.os_output = level
            self.line(self.cpu, level)

    # --- presenter operations --------------------------------------------------------------------------

    def notify(self, ring: int) -> None:
        """Signal the ring's exception when its PIPR is more favoured than its CPPR."""
        r = self.regs
        if r[ring + TM_PIPR] < r[ring + TM_CPPR]:
            if ring == TM_QW1_OS:
                r[ring + TM_NSR] |= TM_QW1_NSR_EO
                if not self.os_output:
                    self.os_output = True
                    self.line(self.cpu, True)
            elif ring == TM_QW3_HV_PHYS:
                r[ring + TM_NSR] |= TM_QW3_NSR_HE_PHYS << 6
                self.hv_output = True

    def ipb_update(self, ring: int, prio: int) -> None:
        """An event of priority `prio` for this thread: IPB bit, PIPR, then maybe signal."""
        r = self.regs
        ipb = r[ring + TM_IPB] | PRIO_TO_IPB[prio & 0xFF]
        r[ring + TM_IPB] = ipb
        r[ring + TM_PIPR] = IPB_TO_PIPR[ipb]
        self.notify(ring)

    def present_os(self, prio: int) -> None:
        """`ipb_update(TM_QW1_OS, prio)` in one call: the presenter's hot path."""
        r = self.regs
        ipb = r[0x12] | PRIO_TO_IPB[prio & 0xFF]  # TM_QW1_OS + TM_IPB
        r[0x12] = ipb
        pipr = r[0x17] = IPB_TO_PIPR[ipb]  # TM_QW1_OS + TM_PIPR
        if pipr < r[0x11]:  # TM_QW1_OS + TM_CPPR
            r[0x10] |= TM_QW1_NSR_EO
            if not self.os_output:
                self.os_output = True
                self.line(self.cpu, True)

    def set_cppr(self, ring: int, cppr: int) -> None:
        """CPPR store: values above 7 mean 0xFF (accept all). Signal or withdraw the exception."""
        r = self.regs
        if cppr > XIVE_PRIORITY_MAX:
            cppr = 0xFF
        r[ring + TM_CPPR] = cppr
        if r[ring + TM_PIPR] < cppr:
            self.notify(ring)
        elif ring == TM_QW1_OS:
            # Nothing deliverable any more: drop EO and the line (QEMU 7.2 keeps both until the ACK).
            r[ring + TM_NSR] &= ~TM_QW1_NSR_EO & 0xFF
            self._set_os_output(False)
        elif ring == TM_QW3_HV_PHYS:
            r[ring + TM_NSR] &= ~TM_QW3_NSR_HE & 0xFF
            self.hv_output = False

    def accept(self, ring: int) -> int:
        """Acknowledge: the line drops; if signalled, CPPR = PIPR, its IPB bit clears. Returns NSR<<8|CPPR."""
        r = self.regs
        nsr = r[ring + TM_NSR]
        if ring == TM_QW1_OS:
            mask = TM_QW1_NSR_EO
            if self.os_output:
                self.os_output = False
                self.line(self.cpu, False)
        else:
            mask = TM_QW3_NSR_HE
            self.hv_output = False
        if nsr & mask:
            cppr = r[ring + TM_PIPR]
            r[ring + TM_CPPR] = cppr
            ipb = r[ring + TM_IPB] & ~PRIO_TO_IPB[cppr] & 0xFF
            r[ring + TM_IPB] = ipb
            r[ring + TM_PIPR] = IPB_TO_PIPR[ipb]
            r[ring + TM_NSR] = nsr & ~mask & 0xFF
        return (nsr << 8) | r[ring + TM_CPPR]

    # --- TIMA special operations -------------------------------------------------------------------------

    def _op_set_os_cppr(self, offset: int, size: int, value: int) -> None:
        self.set_cppr(TM_QW1_OS, value & 0xFF)

    def _op_set_os_pending(self, offset: int, size: int, value: int) -> None:
        self.ipb_update(TM_QW1_OS, value & 0xFF)

    def _op_ack_os_reg(self, offset: int, size: int) -> int:
        return self.accept(TM_QW1_OS)

    def _op_push_os_ctx(self, offset: int, size: int, value: int) -> None:
        word2 = value & 0xFFFFFFFF
        self.set_os_cam(word2)
        if word2 & TM_QW1W2_VO:
            nvt = word2 & TM_QW1W2_OS_CAM
            backlog = self.resend(nvt >> 19, nvt & 0x7FFFF)
            if backlog is None:
                self._note("push of an invalid NVT", word2=word2)
                return
            r = self.regs
            ipb = r[TM_QW1_OS + TM_IPB] | (backlog & 0xFF)
            r[TM_QW1_OS + TM_IPB] = ipb
            r[TM_QW1_OS + TM_PIPR] = IPB_TO_PIPR[ipb]
            self.notify(TM_QW1_OS)

    def _op_pull_os_ctx(self, offset: int, size: int) -> int:
        word2 = self.os_cam()
        if not word2 & TM_QW1W2_VO:
            self._note("pulling an invalid NVT", word2=word2)
        self.set_os_cam(word2 & ~TM_QW1W2_VO)
        self._set_os_output(False)  # the signal drops; NSR keeps EO until the context is pushed back (QEMU)
        return word2

    def _op_set_hv_cppr(self, offset: int, size: int, value: int) -> None:
        self.set_cppr(TM_QW3_HV_PHYS, value & 0xFF)

    def _op_ack_hv_reg(self, offset: int, size: int) -> int:
        return self.accept(TM_QW3_HV_PHYS)

    def _op_pull_pool_ctx(self, offset: int, size: int) -> int:
        r = self.regs
        word2 = _U32.unpack_from(r, TM_QW2_HV_POOL + TM_WORD2)[0] & ~TM_QW2W2_VP & 0xFFFFFFFF
        _U32.pack_into(r, TM_QW2_HV_POOL + TM_WORD2, word2)
        return word2

    def _op_vt_push(self, offset: int, size: int, value: int) -> None:
        self.regs[TM_QW3_HV_PHYS + TM_WORD2] = value & 0xFF

    def _op_vt_poll(self, offset: int, size: int) -> int:
        return self.regs[TM_QW3_HV_PHYS + TM_WORD2]

    # --- TIMA access -----------------------------------------------------------------------------------

    def tm_read(self, offset: int, size: int) -> int:
        """Load from the TIMA region (offset includes the page index, bits 16-17)."""
        msk = SIZE_MASK[size] if 0 < size <= 8 else 0
        if not msk:
            return self._bad(offset, size, None)
        op = _READ_OPS.get(((offset & 0xFFF) << 4) | size)
        if op is not None and op[0] >= (offset >> 16) & 3:
            value = op[1](self, offset, size) & msk
            if self.trace is not None:
                self.trace.emit("tima", cpu=self.cpu, offset=offset, size=size, value=value, op=op[2])
            return value
        if offset & 0x800:
            return self._bad(offset, size, None)
        return self.raw_read(offset, size)

    def tm_write(self, offset: int, size: int, value: int) -> None:
        msk = SIZE_MASK[size] if 0 < size <= 8 else 0
        if not msk:
            self._bad(offset, size, value)
            return
        value &= msk
        op = _WRITE_OPS.get(((offset & 0xFFF) << 4) | size)
        if op is not None and op[0] >= (offset >> 16) & 3:
            if self.trace is not None:
                self.trace.emit("tima", cpu=self.cpu, offset=offset, size=size, value=value, op=op[2])
            op[1](self, offset, size, value)
            return
        if offset & 0x800:
            self._bad(offset, size, value)
            return
        self.raw_write(offset, size, value)

    def _view_mask(self, offset: int, size: int, bit: int) -> int:
        view = TM_VIEWS[(offset >> 16) & 3]
        reg = offset & 0x3F
        mask = 0
        for i in range(size):
            if view[reg + i] & bit:
                mask |= 0xFF << (8 * (size - i - 1))
        return mask

    def raw_read(self, offset: int, size: int) -> int:
        """4/8-byte register load filtered by the page's view; QW0 and empty views load all-ones."""
        reg = offset & 0x3F
        if size < 4 or reg + size > 64 or (offset & TM_RING_OFFSET) == TM_QW0_USER:
            return self._bad(offset, size, None)
        mask = self._view_mask(offset, size, 0x2)
        if not mask:
            return self._bad(offset, size, None)
        value = int.from_bytes(self.regs[reg : reg + size], "big") & mask
        if self.trace is not None:
            self.trace.emit("tima", cpu=self.cpu, offset=offset, size=size, value=value, op="raw")
        return value

    def raw_write(self, offset: int, size: int, value: int) -> None:
        reg = offset & 0x3F
        if size < 4 or reg + size > 64 or (offset & TM_RING_OFFSET) == TM_QW0_USER:
            self._bad(offset, size, value)
            return
        mask = self._view_mask(offset, size, 0x1)
        if not mask:
            self._bad(offset, size, value)
            return
        r = self.regs
        for i in range(size):
            shift = 8 * (size - i - 1)
            if (mask >> shift) & 0xFF:
                r[reg + i] = (value >> shift) & 0xFF
        if self.trace is not None:
            self.trace.emit("tima", cpu=self.cpu, offset=offset, size=size, value=value, op="raw")

    def _bad(self, offset: int, size: int, value: int | None) -> int:
        if self.trace is not None:
            self.trace.emit("tima", cpu=self.cpu, offset=offset, size=size, value=value, op="invalid")
            self._note(
                "invalid %s access at TIMA" % ("write" if value is not None else "read"), offset=offset, size=size
            )
        return size_mask(size) or 0xFFFFFFFFFFFFFFFF

    def _note(self, what: str, **fields: Any) -> None:
        if self.trace is not None:
            self.trace.emit("note", what="XIVE: " + what, cpu=self.cpu, **fields)

    # --- inspection ------------------------------------------------------------------------------------

    def describe(self) -> str:
        r = self.regs
        lines = []
        for name, ring in (("OS", TM_QW1_OS), ("POOL", TM_QW2_HV_POOL), ("PHYS", TM_QW3_HV_PHYS)):
            b = r[ring : ring + 8]
            lines.append(
                f"cpu {self.cpu} {name:<4} NSR={b[0]:02x} CPPR={b[1]:02x} IPB={b[2]:02x} LSMFB={b[3]:02x} "
                f"ACK#={b[4]:02x} INC={b[5]:02x} AGE={b[6]:02x} PIPR={b[7]:02x} "
                f"W2={_U32.unpack_from(r, ring + TM_WORD2)[0]:08x}"
            )
        return "\n".join(lines)


def _ring_byte(ring: int, reg: int) -> property:
    def get(self: XiveTCTX) -> int:
        return self.regs[ring + reg]

    return property(get, doc=f"QW{ring >> 4} byte {reg}")


for _name, _reg in (
    ("NSR", TM_NSR), ("CPPR", TM_CPPR), ("IPB", TM_IPB), ("LSMFB", TM_LSMFB),
    ("ACK", TM_ACK_CNT), ("INC", 5), ("AGE", TM_AGE), ("PIPR", TM_PIPR),
):  # fmt: skip
    setattr(XiveTCTX, _name, _ring_byte(TM_QW1_OS, _reg))
    setattr(XiveTCTX, _name.lower(), _ring_byte(TM_QW1_OS, _reg))
XiveTCTX.WORD2 = property(XiveTCTX.os_cam, doc="QW1 word2: VO bit and OS CAM")  # type: ignore[attr-defined]
XiveTCTX.word2 = XiveTCTX.WORD2  # type: ignore[attr-defined]

# (op offset << 4 | size) -> (least privileged page allowed, handler, name)
_READ_OPS: dict[int, tuple[int, Callable[..., int], str]] = {
    ((TM_QW3_HV_PHYS + TM_WORD2) << 4) | 1: (XIVE_TM_HV_PAGE, XiveTCTX._op_vt_poll, "vt_poll"),
    (TM_SPC_ACK_OS_REG << 4) | 2: (XIVE_TM_OS_PAGE, XiveTCTX._op_ack_os_reg, "ack_os_reg"),
    (TM_SPC_PULL_OS_CTX << 4) | 4: (XIVE_TM_HV_PAGE, XiveTCTX._op_pull_os_ctx, "pull_os_ctx"),
    (TM_SPC_PULL_OS_CTX << 4) | 8: (XIVE_TM_HV_PAGE, XiveTCTX._op_pull_os_ctx, "pull_os_ctx"),
    (TM_SPC_ACK_HV_REG << 4) | 2: (XIVE_TM_HV_PAGE, XiveTCTX._op_ack_hv_reg, "ack_hv_reg"),
    (TM_SPC_PULL_POOL_CTX << 4) | 4: (XIVE_TM_HV_PAGE, XiveTCTX._op_pull_pool_ctx, "pull_pool_ctx"),
    (TM_SPC_PULL_POOL_CTX << 4) | 8: (XIVE_TM_HV_PAGE, XiveTCTX._op_pull_pool_ctx, "pull_pool_ctx"),
}
_WRITE_OPS: dict[int, tuple[int, Callable[..., None], str]] = {
    ((TM_QW1_OS + TM_CPPR) << 4) | 1: (XIVE_TM_OS_PAGE, XiveTCTX._op_set_os_cppr, "set_os_cppr"),
    ((TM_QW1_OS + TM_WORD2) << 4) | 4: (XIVE_TM_HV_PAGE, XiveTCTX._op_push_os_ctx, "push_os_ctx"),
    ((TM_QW3_HV_PHYS + TM_CPPR) << 4) | 1: (XIVE_TM_HV_PAGE, XiveTCTX._op_set_hv_cppr, "set_hv_cppr"),
    ((TM_QW3_HV_PHYS + TM_WORD2) << 4) | 1: (XIVE_TM_HV_PAGE, XiveTCTX._op_vt_push, "vt_push"),
    (TM_SPC_SET_OS_PENDING << 4) | 1: (XIVE_TM_OS_PAGE, XiveTCTX._op_set_os_pending, "set_os_pending"),
}
