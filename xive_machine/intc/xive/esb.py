"""The ESB PQ state machine as pure functions and lookup tables (xive.md 2.3).

Used for source ESBs, the END ESn/ESe bits, and by the KVM device model. P = "an event is in a queue,
awaiting EOI", Q = "triggered again meanwhile". Each function takes the old state and returns the new one
plus whether the event is forwarded to the router; the tables give the same answers for the hot paths.
"""

from __future__ import annotations

from xive_machine.intc.xive.regs import (
    XIVE_ESB_OFF,
    XIVE_ESB_PENDING,
    XIVE_ESB_QUEUED,
    XIVE_ESB_RESET,
)

# index = old PQ (0..3)
TRIGGER_NEXT = bytes((XIVE_ESB_PENDING, XIVE_ESB_OFF, XIVE_ESB_QUEUED, XIVE_ESB_QUEUED))
TRIGGER_FWD = (True, False, False, False)
EOI_NEXT = bytes((XIVE_ESB_RESET, XIVE_ESB_OFF, XIVE_ESB_RESET, XIVE_ESB_PENDING))
EOI_FWD = (False, False, False, True)


def esb_trigger(pq: int) -> tuple[int, bool]:
    """A trigger (MSI edge, ESB trigger store): 00->10 forwards, 10/11->11, 01 stays off."""
    pq &= 3
    return TRIGGER_NEXT[pq], TRIGGER_FWD[pq]


def esb_eoi(pq: int) -> tuple[int, bool]:
    """An EOI: 11->10 forwards the event latched in Q; 10->00; 00 and 01 unchanged."""
    pq &= 3
    return EOI_NEXT[pq], EOI_FWD[pq]


def esb_set(pq: int, new_pq: int) -> tuple[int, int]:
    """SET_PQ_xx: returns (new PQ, old PQ); the old value is what the ESB load returns."""
    return new_pq & 3, pq & 3


def lsi_trigger(pq: int) -> tuple[int, bool]:
    """Level raised on an LSI: only 00 -> 10 forwards; a level never sets Q."""
    pq &= 3
    if pq == XIVE_ESB_RESET:
        return XIVE_ESB_PENDING, True
    return pq, False


def lsi_eoi(pq: int, asserted: bool) -> tuple[int, bool]:
    """EOI of an LSI: the MSI EOI table, then, if the line is still high, the level rule again.

    As QEMU, the level rule's answer replaces the EOI's: from 11 the EOI goes to 10 (forward) but a
    still-asserted line then reports "no forward" because PQ is no longer 00.
    """
    pq, fwd = esb_eoi(pq)
    if asserted:
        return lsi_trigger(pq)
    return pq, fwd
