"""XICS presentation controller (ICP), one per interrupt server (= vCPU), as QEMU 7.2 hw/intc/xics.c.

State is QEMU's: `xirr` = CPPR << 24 | XISR, `pending_priority`, `mfrr`. The output (external-interrupt request
to the vCPU) is raised whenever an interrupt is latched in XISR and lowered when it is accepted or dropped, so
`output == (XISR != 0)` always holds; the IrqLine is called only when the output changes.
The ICP knows its source controller only through :class:`IcsLink` (reject / EOI / resend), like QEMU's
XICSFabric, and never the CPU.
"""

from __future__ import annotations

from typing import Any, Protocol

from xive_machine.machine.irq import IrqLine

XICS_IPI = 0x2  # XISR of an IPI (from MFRR)
XISR_MASK = 0x00FFFFFF
CPPR_MASK = 0xFF000000
LOWEST_PRIORITY = 0xFF  # least favoured = masked


class IcsLink(Protocol):
    def owns(self, nr: int) -> bool: ...

    def reject(self, nr: int) -> None: ...

    def eoi(self, nr: int) -> None: ...

    def resend(self) -> None: ...


class ICP:
    """One presentation controller. `cpu` is the vCPU index its output drives."""

    __slots__ = ("server", "cpu", "xirr", "pending_priority", "mfrr", "output", "ics", "line", "trace")

    def __init__(self, server: int, cpu: int, ics: IcsLink, line: IrqLine) -> None:
        self.server = server
        self.cpu = cpu
        self.ics = ics
        self.line = line
        self.trace: Any = None
        self.xirr = 0
        self.pending_priority = LOWEST_PRIORITY
        self.mfrr = LOWEST_PRIORITY
        self.output = False

    # --- output ---

    def _set_output(self, level: bool) -> None:
        if self.output != level:
            self.output = level
            if self.trace is not None:
                self.trace.emit("irq", ctl="xics", op="raise" if level else "lower", server=self.server,
                                xirr=self.xirr, pending_priority=self.pending_priority)
            self.line(self.cpu, level)

    def reset(self) -> None:
        """icp_reset: CPPR 0 (everything blocked), nothing pending, MFRR 0xff; output deasserted."""
        self.xirr = 0
        self.pending_priority = LOWEST_PRIORITY
        self.mfrr = LOWEST_PRIORITY
        self._set_output(False)

    def load(self, xirr: int, pending_priority: int, mfrr: int) -> None:
        """Put a saved presenter state back (a restore); the output follows XISR as it always does."""
        self.xirr = xirr & 0xFFFFFFFF
        self.pending_priority = pending_priority & 0xFF
        self.mfrr = mfrr & 0xFF
        self._set_output(bool(self.xirr & XISR_MASK))

    @property
    def cppr(self) -> int:
        return self.xirr >> 24

    @property
    def xisr(self) -> int:
        return self.xirr & XISR_MASK

    def _reject_owner(self, xisr: int) -> None:
        """Give a displaced source back to the ICS (QEMU rejects only when the ICS owns XISR, not for IPIs)."""
        if xisr and self.ics.owns(xisr):
            self.ics.reject(xisr)

    # --- QEMU icp_* operations ---

    def check_ipi(self) -> None:
        """icp_check_ipi: present the IPI unless something at least as favoured is already latched."""
        xisr = self.xirr & XISR_MASK
        if xisr and self.pending_priority <= self.mfrr:
            return
        self._reject_owner(xisr)
        self.xirr = (self.xirr & CPPR_MASK) | XICS_IPI
        self.pending_priority = self.mfrr
        self._set_output(True)

    def resend(self) -> None:
        """icp_resend: re-check the IPI, then let the ICS resend rejected / unsent sources."""
        if self.mfrr < (self.xirr >> 24):
            self.check_ipi()
        self.ics.resend()

    def set_cppr(self, cppr: int) -> None:
        """H_CPPR: more favoured drops a latched interrupt that no longer beats it; less favoured resends."""
        cppr &= 0xFF
        old_cppr = self.xirr >> 24
        self.xirr = (self.xirr & XISR_MASK) | (cppr << 24)
        if cppr < old_cppr:
            xisr = self.xirr & XISR_MASK
            if xisr and cppr <= self.pending_priority:
                self.xirr &= CPPR_MASK
                self.pending_priority = LOWEST_PRIORITY
                self._set_output(False)
                self._reject_owner(xisr)
        elif not self.xirr & XISR_MASK:
            self.resend()

    def set_mfrr(self, mfrr: int) -> None:
        """H_IPI: store MFRR; an IPI more favoured than CPPR is presented."""
        self.mfrr = mfrr & 0xFF
        if self.mfrr < (self.xirr >> 24):
            self.check_ipi()

    def accept(self) -> int:
        """H_XIRR: return XIRR; CPPR takes the pending priority, XISR is cleared, the output drops."""
        xirr = self.xirr
        self.xirr = self.pending_priority << 24
        self.pending_priority = LOWEST_PRIORITY
        self._set_output(False)
        if self.trace is not None:
            self.trace.emit("irq", ctl="xics", op="accept", server=self.server, xirr=xirr, new_xirr=self.xirr)
        return xirr

    def ipoll(self) -> tuple[int, int]:
        """H_IPOLL: (XIRR, MFRR) without side effects."""
        return self.xirr, self.mfrr

    def eoi(self, xirr: int) -> None:
        """H_EOI: CPPR from the top byte, EOI to the source in the low 24 bits, resend if XISR is empty."""
        xirr &= 0xFFFFFFFF
        self.xirr = (self.xirr & XISR_MASK) | (xirr & CPPR_MASK)
        if self.trace is not None:
            self.trace.emit("irq", ctl="xics", op="eoi", server=self.server, xirr=xirr, new_xirr=self.xirr)
        nr = xirr & XISR_MASK
        if self.ics.owns(nr):
            self.ics.eoi(nr)
        if not self.xirr & XISR_MASK:
            self.resend()

    def present(self, nr: int, priority: int) -> bool:
        """icp_irq: latch source `nr` if it beats CPPR and what is latched; returns False if rejected (the
        caller's ICS marks it). A displaced ICS source is rejected back to the ICS here."""
        xisr = self.xirr & XISR_MASK
        if priority >= (self.xirr >> 24) or (xisr and self.pending_priority <= priority):
            return False
        self._reject_owner(xisr)
        self.xirr = (self.xirr & CPPR_MASK) | (nr & XISR_MASK)
        self.pending_priority = priority
        # XISR changes even when the output was already up (a more favoured source displaced another)
        if self.output and self.trace is not None:
            self.trace.emit("irq", ctl="xics", op="raise", server=self.server, xirr=self.xirr,
                            pending_priority=priority)
        self._set_output(True)
        return True

    def describe(self) -> str:
        return (f"CPU {self.cpu} server {self.server} XIRR={self.xirr:08x} PP={self.pending_priority:02x} "
                f"MFRR={self.mfrr:02x} output={int(self.output)}")
