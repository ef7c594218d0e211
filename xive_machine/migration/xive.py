"""XIVE around a snapshot, in QEMU's order for the KVM backend (spapr_xive_kvm.c), on either backend.

Save (VM stop): every valid source's PQ is read and, unless it is 01 (off), set to 10, so a trigger arriving
while stopped is latched as Q instead of being routed; the old PQ is what the snapshot keeps. Then the EQ
sync marks every queue page dirty, and the controller's `get_state` reads END positions and VP states.

Load: the controller's `set_state` programs EQ configs, then every source (SOURCE, then SOURCE_CONFIG), then
the VP states, with sources still quiesced; `resume` writes the saved PQs back and re-fires a source whose
saved PQ was 00 but which latched an event meanwhile (old PQ 11). The same `resume` ends a save of a machine
that keeps running. The state object (`SpaprXiveState`) is the same for both backends, so a snapshot taken
on one restores on the other.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from xive_machine.intc.xive.regs import (
    EAS_VALID,
    END_W0_ENQUEUE,
    END_W0_VALID,
    END_WORDS,
    XIVE_ESB_OFF,
    XIVE_ESB_PENDING,
    XIVE_ESB_QUEUED,
    XIVE_ESB_RESET,
)
from xive_machine.intc.xive.router import end_qaddr, end_qshift
from xive_machine.intc.xive.spapr import SpaprXiveState


def is_xive(ic: Any) -> bool:
    return getattr(ic, "name", None) == "xive"


def valid_sources(ic: Any) -> list[int]:
    eat = ic.router.eat
    return [lisn for lisn in range(ic.nr_irqs) if eat[lisn] & EAS_VALID]


def quiesce(ic: Any) -> dict[int, int]:
    """VM stop: PQ of every valid source set to 10 (01 stays), EQ pages marked dirty. Returns the old PQs."""
    saved: dict[int, int] = {}
    xsrc = ic.xsrc
    for lisn in valid_sources(ic):
        pq = xsrc.get_pq(lisn)
        if pq != XIVE_ESB_OFF:
            pq = xsrc.set_pq(lisn, XIVE_ESB_PENDING)  # the old PQ, as QEMU's load at 0xE00 returns it
        saved[lisn] = pq
    eq_sync(ic)
    return saved


def eq_sync(ic: Any) -> None:
    """KVM_DEV_XIVE_EQ_SYNC's visible effect: the guest page of every configured queue is dirty."""
    endt = ic.router.endt
    for end_idx in range(ic.nr_ends):
        w = endt[end_idx * END_WORDS:(end_idx + 1) * END_WORDS]
        if w[0] & END_W0_VALID and w[0] & END_W0_ENQUEUE:
            ic.ram.mark_dirty(end_qaddr(w[2], w[3]), 1 << end_qshift(w[0]))


def resume(ic: Any, saved: dict[int, int]) -> int:
    """VM run: the saved PQs written back; a source saved at 00 that latched an event is triggered again.
    Returns how many were re-fired."""
    refired = 0
    xsrc = ic.xsrc
    for lisn, pq in saved.items():
        old = xsrc.set_pq(lisn, pq)
        if pq == XIVE_ESB_RESET and old == XIVE_ESB_QUEUED:
            ic.trigger(lisn)
            refired += 1
    return refired


def save_state(ic: Any) -> SpaprXiveState:
    """Quiesce, read the state, resume: the state carries the PQs as they were before the stop."""
    saved = quiesce(ic)
    try:
        state = ic.get_state()
    finally:
        resume(ic, saved)
    status = bytearray(state.status)
    for lisn, pq in saved.items():
        status[lisn] = (status[lisn] & 0xFC) | pq
    return dataclasses.replace(state, status=bytes(status))


def load_state(ic: Any, state: SpaprXiveState) -> None:
    """Program the controller with its sources quiesced (PQ 10 where the saved PQ is not 01), then resume."""
    stopped = bytearray(state.status)
    saved: dict[int, int] = {}
    for lisn in range(min(state.nr_irqs, len(state.eat))):
        if state.eat[lisn] & EAS_VALID:
            pq = stopped[lisn] & 3
            saved[lisn] = pq
            if pq != XIVE_ESB_OFF:
                stopped[lisn] = (stopped[lisn] & 0xFC) | XIVE_ESB_PENDING
    ic.set_state(dataclasses.replace(state, status=bytes(stopped)))
    resume(ic, saved)
