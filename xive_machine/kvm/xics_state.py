"""One XICS source or presenter as the KVM XICS uAPI carries it: a KVM_DEV_XICS_GRP_SOURCES word, a
KVM_REG_PPC_ICP_STATE word.

Both ends of the model use this one pair of conversions: the sPAPR side (QEMU's `ics_get_kvm_state` /
`ics_set_kvm_state_one`, `icp_get/set_kvm_state`) and the device (`get/set_source`, `get/set_icp`). They are
chosen so that every state the XICS model can reach goes through the uAPI and back unchanged, which a
snapshot needs (it restores on either backend and must save again to the same bytes):

    server, priority, saved    destination; priority = saved priority, MASKED when priority is 0xFF
    LSI  ASSERTED / SENT       PENDING / PRESENTED  (PRESENTED = sent and not EOId, book3s_xics.c's P)
    MSI  MASKED_PENDING        PENDING              (book3s_xics.c: masked_pending)
    MSI  REJECTED              QUEUED               (an event waiting for a resend)

QEMU reads a pending MSI as MASKED_PENDING|REJECTED; both ends here being this model, REJECTED travels in
QUEUED instead, so neither bit is invented. A pending MSI arriving unmasked (a word no XICS state produces)
is loaded as REJECTED: it goes out at the next resend instead of waiting for an unmask that never comes.
"""

from __future__ import annotations

from xive_machine.intc.xics.icp import ICP, XISR_MASK
from xive_machine.intc.xics.ics import (
    ICS,
    XICS_FLAGS_IRQ_LSI,
    XICS_FLAGS_IRQ_MSI,
    XICS_STATUS_ASSERTED,
    XICS_STATUS_MASKED_PENDING,
    XICS_STATUS_REJECTED,
    XICS_STATUS_SENT,
)
from xive_machine.kvm.uapi import icp_state, icp_state_decode, xics_source, xics_source_decode

MASKED = 0xFF


def source_word(ics: ICS, srcno: int) -> int:
    """The GRP_SOURCES word of source `srcno` of `ics`."""
    priority = ics.priority[srcno]
    st = ics.status[srcno]
    lsi = bool(ics.flags[srcno] & XICS_FLAGS_IRQ_LSI)
    masked = priority == MASKED
    return xics_source(
        ics.server[srcno],
        ics.saved_priority[srcno] if masked else priority,
        masked=masked,
        lsi=lsi,
        pending=bool(st & (XICS_STATUS_ASSERTED if lsi else XICS_STATUS_MASKED_PENDING)),
        presented=lsi and bool(st & XICS_STATUS_SENT),
        queued=not lsi and bool(st & XICS_STATUS_REJECTED),
    )


def load_source_word(ics: ICS, srcno: int, word: int, *, set_type: bool) -> None:
    """Source `srcno` of `ics` as `word` says. `set_type`: the word's LEVEL_SENSITIVE bit decides LSI/MSI
    (the device side); else the ICS keeps its own claim flags (QEMU keeps them across a sync)."""
    f = xics_source_decode(word)
    masked = bool(f["masked"])
    prio = int(f["priority"])
    flags = XICS_FLAGS_IRQ_LSI if f["lsi"] else XICS_FLAGS_IRQ_MSI
    lsi = bool((flags if set_type else ics.flags[srcno]) & XICS_FLAGS_IRQ_LSI)
    if lsi:
        status = (XICS_STATUS_ASSERTED if f["pending"] else 0) | (XICS_STATUS_SENT if f["presented"] else 0)
    else:
        status = XICS_STATUS_REJECTED if f["queued"] else 0
        if f["pending"]:
            status |= XICS_STATUS_MASKED_PENDING if masked or prio == MASKED else XICS_STATUS_REJECTED
    ics.load(srcno, int(f["server"]), MASKED if masked else prio, prio, status, flags if set_type else None)


def icp_word(icp: ICP) -> int:
    """The ICP_STATE word of a presenter."""
    return icp_state(icp.xirr >> 24, icp.xirr & XISR_MASK, icp.mfrr, icp.pending_priority)


def load_icp_word(icp: ICP, word: int) -> None:
    """A presenter as `word` says (its output follows the latched XISR)."""
    cppr, xisr, mfrr, ppri = icp_state_decode(word)
    icp.load((cppr << 24) | xisr, ppri, mfrr)
