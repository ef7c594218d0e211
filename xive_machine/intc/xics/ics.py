"""XICS source controller (ICS), as QEMU 7.2 hw/intc/xics.c: per-source server, priority, saved priority,
status and LSI/MSI flag, flat arrays indexed by srcno = irq number - offset.

QEMU's resend walks every source in srcno order. We keep a bit mask of the sources such a walk would act on
(rejected MSIs; unmasked, asserted, unsent LSIs) and visit those in the same order, re-reading the mask after
each step, so the outcome is the same as the full walk at a fraction of the cost.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from xive_machine.intc.xics.icp import ICP, LOWEST_PRIORITY

XICS_IRQ_BASE = 0x1000  # ICS offset: the first source number (XICS_IRQ_BASE)
SPAPR_NR_XIRQS = 0x1000  # pseries-7.2 sources: 0x1000 .. 0x1fff

XICS_STATUS_ASSERTED = 0x1
XICS_STATUS_SENT = 0x2
XICS_STATUS_REJECTED = 0x4
XICS_STATUS_MASKED_PENDING = 0x8

XICS_FLAGS_IRQ_LSI = 0x1
XICS_FLAGS_IRQ_MSI = 0x2
XICS_FLAGS_IRQ_MASK = 0x3

_ASSERTED_SENT = XICS_STATUS_ASSERTED | XICS_STATUS_SENT


class ICS:
    """The one sPAPR ICS. `icp_get(server)` finds a presenter (None = no such server)."""

    def __init__(self, icp_get: Callable[[int], ICP | None], nr_irqs: int = SPAPR_NR_XIRQS,
                 offset: int = XICS_IRQ_BASE) -> None:
        self.icp_get = icp_get
        self.nr_irqs = nr_irqs
        self.offset = offset
        self.trace: Any = None
        self.server = [0] * nr_irqs
        self.priority = bytearray(b"\xff" * nr_irqs)
        self.saved_priority = bytearray(b"\xff" * nr_irqs)
        self.status = bytearray(nr_irqs)
        self.flags = bytearray(nr_irqs)
        self.resend_mask = 0  # bit srcno set = a resend walk would act on this source

    # --- bookkeeping ---

    def valid_irq(self, nr: int) -> bool:
        return self.offset <= nr < self.offset + self.nr_irqs

    def owns(self, nr: int) -> bool:
        return self.offset <= nr < self.offset + self.nr_irqs

    def _sync(self, s: int) -> None:
        """Recompute source s's bit in resend_mask."""
        st = self.status[s]
        if self.flags[s] & XICS_FLAGS_IRQ_LSI:
            hit = self.priority[s] != LOWEST_PRIORITY and (st & _ASSERTED_SENT) == XICS_STATUS_ASSERTED
        else:
            hit = bool(st & XICS_STATUS_REJECTED)
        bit = 1 << s
        if hit:
            self.resend_mask |= bit
        elif self.resend_mask & bit:
            self.resend_mask ^= bit

    def rebuild_resend_mask(self) -> None:
        self.resend_mask = 0
        for s in range(self.nr_irqs):
            if self.status[s]:
                self._sync(s)

    def reset(self) -> None:
        """ics_reset: everything masked (priority and saved priority 0xff), server 0, status clear; the
        LSI/MSI flags (claims) survive."""
        n = self.nr_irqs
        self.server = [0] * n
        self.priority[:] = b"\xff" * n
        self.saved_priority[:] = b"\xff" * n
        self.status[:] = bytes(n)
        self.resend_mask = 0

    def is_free(self, srcno: int) -> bool:
        return not self.flags[srcno] & XICS_FLAGS_IRQ_MASK

    def set_irq_type(self, srcno: int, lsi: bool) -> None:
        self.flags[srcno] |= XICS_FLAGS_IRQ_LSI if lsi else XICS_FLAGS_IRQ_MSI
        self._sync(srcno)

    def free(self, srcno: int) -> None:
        self.flags[srcno] &= ~XICS_FLAGS_IRQ_MASK & 0xFF
        self._sync(srcno)

    def load(self, srcno: int, server: int, priority: int, saved_priority: int, status: int,
             flags: int | None = None) -> None:
        """Put one source's saved state back as it was (a restore: nothing is delivered or traced)."""
        self.server[srcno] = server
        self.priority[srcno] = priority & 0xFF
        self.saved_priority[srcno] = saved_priority & 0xFF
        self.status[srcno] = status & 0xFF
        if flags is not None:
            self.flags[srcno] = flags & 0xFF
        self._sync(srcno)

    # --- delivery ---

    def _deliver(self, s: int) -> None:
        """icp_irq for source s (its server and priority); a refused or unreachable source is rejected."""
        icp = self.icp_get(self.server[s])
        nr = s + self.offset
        if icp is None or not icp.present(nr, self.priority[s]):
            # QEMU would dereference a missing ICP; an unreachable server rejects instead.
            self.reject(nr)

    def set_irq(self, srcno: int, level: bool) -> None:
        """A device line: an MSI fires on a true edge, an LSI follows the level."""
        if self.trace is not None:
            self.trace.emit("irq", ctl="xics", op="set_irq", irq=srcno + self.offset, level=int(level))
        if self.flags[srcno] & XICS_FLAGS_IRQ_LSI:
            if level:
                self.status[srcno] |= XICS_STATUS_ASSERTED
            else:
                self.status[srcno] &= ~XICS_STATUS_ASSERTED & 0xFF
            self._sync(srcno)
            self._resend_lsi(srcno)
        elif level:
            if self.priority[srcno] == LOWEST_PRIORITY:
                self.status[srcno] |= XICS_STATUS_MASKED_PENDING
            else:
                self._deliver(srcno)

    def _resend_lsi(self, s: int) -> None:
        if (self.priority[s] != LOWEST_PRIORITY
                and (self.status[s] & _ASSERTED_SENT) == XICS_STATUS_ASSERTED):
            self.status[s] |= XICS_STATUS_SENT
            self._sync(s)
            self._deliver(s)

    def _resend_msi(self, s: int) -> None:
        if self.status[s] & XICS_STATUS_REJECTED:
            self.status[s] &= ~XICS_STATUS_REJECTED & 0xFF
            self._sync(s)
            if self.priority[s] != LOWEST_PRIORITY:
                self._deliver(s)

    def write_xive(self, srcno: int, server: int, priority: int, saved_priority: int) -> None:
        """ics_write_xive: set routing; an unmasked MSI that fired while masked, or an asserted LSI, goes out."""
        self.server[srcno] = server
        self.priority[srcno] = priority
        self.saved_priority[srcno] = saved_priority
        if self.trace is not None:
            self.trace.emit("irq", ctl="xics", op="write_xive", irq=srcno + self.offset, server=server,
                            priority=priority)
        self._sync(srcno)
        if self.flags[srcno] & XICS_FLAGS_IRQ_LSI:
            self._resend_lsi(srcno)
        elif (self.status[srcno] & XICS_STATUS_MASKED_PENDING) and priority != LOWEST_PRIORITY:
            self.status[srcno] &= ~XICS_STATUS_MASKED_PENDING & 0xFF
            self._deliver(srcno)

    # --- IcsLink (called by the ICPs) ---

    def reject(self, nr: int) -> None:
        s = nr - self.offset
        if self.trace is not None:
            self.trace.emit("irq", ctl="xics", op="reject", irq=nr)
        f = self.flags[s]
        if f & XICS_FLAGS_IRQ_MSI:
            self.status[s] |= XICS_STATUS_REJECTED
        elif f & XICS_FLAGS_IRQ_LSI:
            self.status[s] &= ~XICS_STATUS_SENT & 0xFF
        self._sync(s)

    def eoi(self, nr: int) -> None:
        s = nr - self.offset
        if self.flags[s] & XICS_FLAGS_IRQ_LSI:
            self.status[s] &= ~XICS_STATUS_SENT & 0xFF
            self._sync(s)

    def resend(self) -> None:
        """ics_resend: the srcno-ordered walk over the sources that would act (see module docstring)."""
        s = 0
        while True:
            pending = self.resend_mask >> s
            if not pending:
                return
            s += (pending & -pending).bit_length() - 1
            if self.flags[s] & XICS_FLAGS_IRQ_LSI:
                self._resend_lsi(s)
            else:
                self._resend_msi(s)
            s += 1

    def describe(self) -> str:
        lines = [f"ICS {self.offset:4x}..{self.offset + self.nr_irqs - 1:4x}"]
        for s in range(self.nr_irqs):
            f = self.flags[s]
            if f & XICS_FLAGS_IRQ_MASK:
                lines.append(f"  {s + self.offset:4x} {'LSI' if f & XICS_FLAGS_IRQ_LSI else 'MSI'} "
                             f"server {self.server[s]} prio {self.priority[s]:02x} "
                             f"saved {self.saved_priority[s]:02x} status {self.status[s]:02x}")
        return "\n".join(lines)
