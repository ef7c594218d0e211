"""XiveSource: the PQ state of every interrupt source and the decoding of its ESB pages.

Holds one status byte per source (PQ in bits 0-1, ASSERTED for LSIs, as QEMU) and an LSI flag per
source. Events that survive the PQ check go to `notify(srcno)` (the router); the source does not know
where they are routed. Guest mistakes on the ESB pages load all-ones / drop the store and are traced.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from xive_machine.intc.xive.esb import EOI_NEXT, TRIGGER_NEXT
from xive_machine.intc.xive.regs import (
    XIVE_ESB_64K_2PAGE,
    XIVE_ESB_OFF,
    XIVE_ESB_PENDING,
    XIVE_ESB_QUEUED,
    XIVE_ESB_RESET,
    XIVE_STATUS_ASSERTED,
)

# access size -> value mask; sizes other than 1, 2, 4, 8 map to 0 (invalid)
SIZE_MASK = (0, 0xFF, 0xFFFF, 0, 0xFFFFFFFF, 0, 0, 0, 0xFFFFFFFFFFFFFFFF)
_SIZES = frozenset((1, 2, 4, 8))
_PQ_CLEAR = 0xFC
_SET_PQ_NAMES = ("set_pq_00", "set_pq_01", "set_pq_10", "set_pq_11")


def size_mask(size: int) -> int:
    """All-ones of the access size, 0 for a size the hardware cannot issue."""
    return SIZE_MASK[size] if 0 <= size <= 8 else 0


@dataclass(frozen=True)
class XiveSourceState:
    status: bytes  # per source: PQ (bits 0-1) | ASSERTED (0x4)
    lsi: bytes  # per source: 1 = level-sensitive


class XiveSource:
    """`nr_irqs` sources, ESB mode two 64 KiB pages per source (shift 17) unless told otherwise."""

    def __init__(
        self,
        nr_irqs: int,
        notify: Callable[[int], None],
        *,
        esb_shift: int = XIVE_ESB_64K_2PAGE,
        store_eoi: bool = False,
        reset_pq: int = XIVE_ESB_OFF,
    ) -> None:
        if nr_irqs <= 0:
            raise ValueError("nr_irqs must be positive")
        if esb_shift not in (12, 13, 16, 17):
            raise ValueError(f"unsupported ESB shift {esb_shift}")
        self.nr_irqs = nr_irqs
        self.notify = notify
        self.esb_shift = esb_shift
        self.two_page = esb_shift in (13, 17)
        # bit that selects the odd (management) page in a two-page pair; 0 = single page
        self.mgmt_bit = 1 << (esb_shift - 1) if self.two_page else 0
        self.store_eoi = store_eoi
        self.reset_pq = reset_pq & 3
        self.status = bytearray([self.reset_pq]) * nr_irqs
        self.lsi = bytearray(nr_irqs)
        self.trace: Any = None

    # --- configuration -------------------------------------------------------------------------------

    def reset(self) -> None:
        """Every source back to the reset PQ (01 = off); ASSERTED cleared; LSI types kept (QEMU)."""
        self.status[:] = bytes([self.reset_pq]) * self.nr_irqs

    def set_lsi(self, srcno: int, lsi: bool) -> None:
        self.lsi[srcno] = 1 if lsi else 0

    def esb_page(self, srcno: int) -> int:
        """Offset of the trigger (even) page of `srcno` inside the ESB window."""
        return srcno << self.esb_shift

    def esb_mgmt(self, srcno: int) -> int:
        """Offset of the management (odd) page; same as the trigger page in single-page mode."""
        return (srcno << self.esb_shift) | self.mgmt_bit

    @property
    def window_size(self) -> int:
        return self.nr_irqs << self.esb_shift

    # --- PQ operations (return True when the event goes to the router) ----------------------------------

    def get_pq(self, srcno: int) -> int:
        return self.status[srcno] & 3

    def set_pq(self, srcno: int, pq: int) -> int:
        """Set PQ, return the old PQ."""
        s = self.status[srcno]
        self.status[srcno] = (s & _PQ_CLEAR) | (pq & 3)
        return s & 3

    def asserted(self, srcno: int) -> bool:
        return bool(self.status[srcno] & XIVE_STATUS_ASSERTED)

    def trigger(self, srcno: int) -> bool:
        """ESB trigger (MSI table, also for LSIs, as a trigger store on an LSI page does in QEMU)."""
        st = self.status
        s = st[srcno]
        pq = s & 3
        new = TRIGGER_NEXT[pq]
        st[srcno] = (s & _PQ_CLEAR) | new
        if new == XIVE_ESB_QUEUED and self.lsi[srcno] and self.trace is not None:
            self.trace.emit("note", what="queued an event on LSI", lisn=srcno)
        return pq == XIVE_ESB_RESET

    def eoi(self, srcno: int) -> bool:
        """EOI; an LSI whose line is still asserted re-fires (from 00) as the level rule says."""
        st = self.status
        s = st[srcno]
        pq = s & 3
        new = EOI_NEXT[pq]
        fwd = pq == XIVE_ESB_QUEUED
        if s & XIVE_STATUS_ASSERTED and self.lsi[srcno]:
            fwd = new == XIVE_ESB_RESET
            if fwd:
                new = XIVE_ESB_PENDING
        st[srcno] = (s & _PQ_CLEAR) | new
        return fwd

    def lsi_trigger(self, srcno: int) -> bool:
        st = self.status
        s = st[srcno] | XIVE_STATUS_ASSERTED
        if s & 3 == XIVE_ESB_RESET:
            st[srcno] = (s & _PQ_CLEAR) | XIVE_ESB_PENDING
            return True
        st[srcno] = s
        return False

    def set_irq(self, srcno: int, level: bool) -> None:
        """A device line: LSI follows the level, MSI triggers on level 1 and ignores 0."""
        if self.lsi[srcno]:
            if level:
                fwd = self.lsi_trigger(srcno)
            else:
                self.status[srcno] &= ~XIVE_STATUS_ASSERTED & 0xFF
                fwd = False
        else:
            fwd = self.trigger(srcno) if level else False
        if fwd:
            self.notify(srcno)

    # --- ESB MMIO (offset relative to the ESB window base) ----------------------------------------------

    def esb_read(self, offset: int, size: int) -> int:
        srcno = offset >> self.esb_shift
        if srcno >= self.nr_irqs or offset < 0 or size not in _SIZES:
            return self._invalid(offset, size, None, "invalid access")
        if not offset & self.mgmt_bit and self.two_page:
            return self._invalid(offset, size, None, "load on trigger page")
        op = offset & 0xFFF
        if op < 0x800:  # XIVE_ESB_LOAD_EOI .. +0x7FF
            fwd = self.eoi(srcno)
            if self.trace is not None:
                self._emit(srcno, offset, size, int(fwd), "eoi")
            if fwd:
                self.notify(srcno)
            return 1 if fwd else 0
        st = self.status
        s = st[srcno]
        if op < 0xC00:  # XIVE_ESB_GET
            if self.trace is not None:
                self._emit(srcno, offset, size, s & 3, "get")
            return s & 3
        st[srcno] = (s & _PQ_CLEAR) | ((op >> 8) & 3)  # XIVE_ESB_SET_PQ_00 .. _11
        if self.trace is not None:
            self._emit(srcno, offset, size, s & 3, _SET_PQ_NAMES[(op >> 8) & 3])
        return s & 3

    def esb_write(self, offset: int, size: int, value: int) -> None:
        srcno = offset >> self.esb_shift
        if srcno >= self.nr_irqs or offset < 0 or size not in _SIZES:
            self._invalid(offset, size, value, "invalid access")
            return
        if self.two_page and not offset & self.mgmt_bit:  # trigger page: the hot path, inlined
            st = self.status
            s = st[srcno]
            new = TRIGGER_NEXT[s & 3]
            st[srcno] = (s & _PQ_CLEAR) | new
            fwd = not s & 3
            if self.trace is not None:
                if self.lsi[srcno] and new == XIVE_ESB_QUEUED:
                    self.trace.emit("note", what="queued an event on LSI", lisn=srcno)
                self._emit(srcno, offset, size, value, "trigger+fwd" if fwd else "trigger")
            if fwd:
                self.notify(srcno)
            return
        op = offset & 0xFFF
        if op < 0x400:
            fwd = self.trigger(srcno)
            effect = "trigger"
        elif op < 0x800:  # XIVE_ESB_STORE_EOI
            if not self.store_eoi:
                self._invalid(offset, size, value, "StoreEOI not enabled")
                return
            fwd = self.eoi(srcno)
            effect = "store_eoi"
        elif op < 0xC00:  # XIVE_ESB_INJECT
            fwd = True
            effect = "inject"
        else:  # XIVE_ESB_SET_PQ_00 .. _11
            st = self.status
            st[srcno] = (st[srcno] & _PQ_CLEAR) | ((op >> 8) & 3)
            fwd = False
            effect = _SET_PQ_NAMES[(op >> 8) & 3]
        if self.trace is not None:
            self._emit(srcno, offset, size, value, effect + ("+fwd" if fwd else ""))
        if fwd:
            self.notify(srcno)

    # --- tracing ---------------------------------------------------------------------------------------

    def _emit(self, srcno: int, offset: int, size: int, value: int, effect: str) -> None:
        page = "mgmt" if (offset & self.mgmt_bit or not self.two_page) else "trigger"
        self.trace.emit(
            "esb",
            lisn=srcno,
            page=page,
            offset=offset & ((1 << (self.esb_shift - 1)) - 1),
            size=size,
            value=value,
            effect=effect,
        )

    def _invalid(self, offset: int, size: int, value: int | None, why: str) -> int:
        if self.trace is not None:
            self.trace.emit(
                "esb",
                lisn=offset >> self.esb_shift,
                page=None,
                offset=offset,
                size=size,
                value=value,
                effect="invalid",
            )
            self.trace.emit("note", what="XIVE ESB: " + why, offset=offset, size=size, store=value is not None)
        return size_mask(size) or 0xFFFFFFFFFFFFFFFF

    def describe_source(self, srcno: int) -> str:
        s = self.status[srcno]
        kind = "LSI" if self.lsi[srcno] else "MSI"
        pq = f"{(s >> 1) & 1}{s & 1}"
        return f"{kind} PQ={pq}" + (" asserted" if s & XIVE_STATUS_ASSERTED else "")

    def get_state(self) -> XiveSourceState:
        return XiveSourceState(bytes(self.status), bytes(self.lsi))

    def set_state(self, state: XiveSourceState) -> None:
        if len(state.status) != self.nr_irqs or len(state.lsi) != self.nr_irqs:
            raise ValueError(f"source state for {len(state.status)} sources, have {self.nr_irqs}")
        self.status[:] = state.status
        self.lsi[:] = state.lsi

    def describe(self) -> str:
        """Sources not in the reset state (or LSIs), one per line."""
        out = []
        for i in range(self.nr_irqs):
            if self.status[i] != self.reset_pq or self.lsi[i]:
                out.append(f"  source {i:#06x} {self.describe_source(i)}")
        return "\n".join(out)
