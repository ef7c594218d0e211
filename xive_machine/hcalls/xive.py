"""The eleven sPAPR XIVE hcalls (H_INT_*), decoded and validated in QEMU 7.2's order.

Every entry is gated on "xive" (the machine's gate: CAS negotiated XIVE exploitation; otherwise the
dispatcher answers H_FUNCTION, as QEMU does before any other check). Handlers receive the SpaprXive
front end and the calling vCPU; register roles are given as R4.. in / R4.. out. Two deliberate
differences from QEMU 7.2 (qemu-pseries-oracle.md, "Where QEMU 7.2 is wrong"): H_INT_ESB loads return the
ESB value itself (not byte-swapped), and H_INT_RESET really resets the controller.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xive_machine.errors import HcallError
from xive_machine.hcalls.codes import H, Op
from xive_machine.hcalls.registry import HcallTable
from xive_machine.intc.xive.regs import (
    EAS_END_DATA_MASK,
    EAS_END_INDEX_MASK,
    EAS_END_INDEX_SHIFT,
    EAS_MASKED,
    EAS_VALID,
    END_W0_ENQUEUE,
    END_W0_QSIZE_SHIFT,
    END_W0_UCOND_NOTIFY,
    END_W0_VALID,
    END_W1_GENERATION,
    END_W1_PAGE_OFF_MASK,
    END_W1_PAGE_OFF_SHIFT,
    END_W6_NVT_BLOCK_SHIFT,
    END_W6_NVT_INDEX_SHIFT,
    END_W7_F0_PRIORITY_SHIFT,
    SPAPR_XIVE_BLOCK_ID,
    SPAPR_XIVE_END_ALWAYS_NOTIFY,
    SPAPR_XIVE_END_DEBUG,
    SPAPR_XIVE_ESB_STORE,
    SPAPR_XIVE_NVT_BASE,
    SPAPR_XIVE_SRC_H_INT_ESB,
    SPAPR_XIVE_SRC_LSI,
    SPAPR_XIVE_SRC_MASK,
    SPAPR_XIVE_SRC_SET_EISN,
    SPAPR_XIVE_SRC_STORE_EOI,
    SPAPR_XIVE_SRC_TRIGGER,
)
from xive_machine.intc.xive.router import end_qaddr, end_reset_words

if TYPE_CHECKING:
    from xive_machine.intc.xive.spapr import SpaprXive

XIVE_HCALLS = HcallTable("xive")

U64 = 0xFFFFFFFFFFFFFFFF
MINUS_ONE = U64  # -1 as the guest sees it in a 64-bit register
QSIZES = (12, 16, 21, 24)


def _check_lisn(xive: SpaprXive, lisn: int) -> None:
    """LISN in range and claimed (EAS VALID), else H_P2."""
    if lisn >= xive.nr_irqs or not xive.router.eat[lisn] & EAS_VALID:
        raise HcallError(H.P2, f"unknown LISN {lisn:#x}")


def _end_for(xive: SpaprXive, target: int, priority: int) -> int:
    """Reserved priority -> H_P3, unknown target -> H_P2 (the GET/SET_QUEUE_* order)."""
    if xive.priority_is_reserved(priority):
        raise HcallError(H.P3, f"reserved priority {priority}")
    end_idx = xive.target_to_end(target, priority)
    if end_idx is None:
        raise HcallError(H.P2, f"unknown target {target:#x}")
    return end_idx


@XIVE_HCALLS.hcall(Op.H_INT_GET_SOURCE_INFO, "H_INT_GET_SOURCE_INFO", gate="xive")
def h_int_get_source_info(xive: SpaprXive, cpu: int, flags: int, lisn: int) -> tuple[int, ...]:
    """In: R4 flags (0), R5 lisn. Out: R4 source flags, R5 EOI page, R6 trigger page, R7 page shift."""
    if flags:
        raise HcallError(H.PARAMETER)
    _check_lisn(xive, lisn)
    xsrc = xive.xsrc
    out = 0
    if not xsrc.two_page:
        out |= SPAPR_XIVE_SRC_TRIGGER
    if xsrc.store_eoi:
        out |= SPAPR_XIVE_SRC_STORE_EOI
    if xsrc.lsi[lisn]:  # QEMU forces ESB management through H_INT_ESB for LSIs
        out |= SPAPR_XIVE_SRC_H_INT_ESB | SPAPR_XIVE_SRC_LSI
    hint_esb = out & SPAPR_XIVE_SRC_H_INT_ESB
    eoi_page = MINUS_ONE if hint_esb else xive.esb_mgmt_addr(lisn)
    trig_page = xive.esb_trigger_addr(lisn) if xsrc.two_page and not hint_esb else MINUS_ONE
    shift = xsrc.esb_shift - 1 if xsrc.two_page else xsrc.esb_shift
    return (H.SUCCESS, out, eoi_page, trig_page, shift)


@XIVE_HCALLS.hcall(Op.H_INT_SET_SOURCE_CONFIG, "H_INT_SET_SOURCE_CONFIG", gate="xive")
def h_int_set_source_config(
    xive: SpaprXive, cpu: int, flags: int, lisn: int, target: int, priority: int, eisn: int
) -> tuple[int, ...]:
    """In: R4 flags (SET_EISN|MASK), R5 lisn, R6 target, R7 priority (0xFF = reset), R8 eisn. Out: none."""
    if flags & ~(SPAPR_XIVE_SRC_SET_EISN | SPAPR_XIVE_SRC_MASK):
        raise HcallError(H.PARAMETER)
    _check_lisn(xive, lisn)
    eat = xive.router.eat
    eas = eat[lisn]
    if priority == 0xFF:  # reset the EAS: END and EISN are wiped
        eat[lisn] = EAS_VALID | EAS_MASKED
        return (H.SUCCESS,)
    new = eas | EAS_MASKED if flags & SPAPR_XIVE_SRC_MASK else eas & ~EAS_MASKED
    if xive.priority_is_reserved(priority):
        raise HcallError(H.P4, f"reserved priority {priority}")
    end_idx = xive.target_to_end(target, priority)
    if end_idx is None:
        raise HcallError(H.P3, f"unknown target {target:#x}")
    new &= ~(0xFFFFFFF << EAS_END_INDEX_SHIFT)  # END block (0 on sPAPR) and END index
    new |= (end_idx & EAS_END_INDEX_MASK) << EAS_END_INDEX_SHIFT
    if flags & SPAPR_XIVE_SRC_SET_EISN:
        new = (new & ~EAS_END_DATA_MASK) | (eisn & EAS_END_DATA_MASK)
    eat[lisn] = new & U64
    return (H.SUCCESS,)


@XIVE_HCALLS.hcall(Op.H_INT_GET_SOURCE_CONFIG, "H_INT_GET_SOURCE_CONFIG", gate="xive")
def h_int_get_source_config(xive: SpaprXive, cpu: int, flags: int, lisn: int) -> tuple[int, ...]:
    """In: R4 flags (0), R5 lisn. Out: R4 target, R5 priority (0xFF masked), R6 eisn.

    The target comes from the END the EAS points at, as QEMU: an EAS never configured points at END 0,
    whose NVT index is 0, and reads back 0 - 0x400 as a uint32 = 0xFFFFFC00.
    """
    if flags:
        raise HcallError(H.PARAMETER)
    _check_lisn(xive, lisn)
    eas = xive.router.eat[lisn]
    end_idx = (eas >> EAS_END_INDEX_SHIFT) & EAS_END_INDEX_MASK
    if end_idx >= xive.nr_ends:  # cannot happen through the hcalls; QEMU asserts
        raise HcallError(H.HARDWARE, "EAS points outside the END table")
    nvt_idx, prio, _ = xive.end_info(end_idx)
    target = (nvt_idx - SPAPR_XIVE_NVT_BASE) & 0xFFFFFFFF
    return (H.SUCCESS, target, 0xFF if eas & EAS_MASKED else prio, eas & EAS_END_DATA_MASK)


@XIVE_HCALLS.hcall(Op.H_INT_GET_QUEUE_INFO, "H_INT_GET_QUEUE_INFO", gate="xive")
def h_int_get_queue_info(xive: SpaprXive, cpu: int, flags: int, target: int, priority: int) -> tuple[int, ...]:
    """In: R4 flags (0), R5 target, R6 priority. Out: R4 END ESB (notification) page, R5 queue size log2."""
    if flags:
        raise HcallError(H.PARAMETER)
    end_idx = _end_for(xive, target, priority)
    w0 = xive.router.endt[end_idx * 8]
    qsize = ((w0 >> END_W0_QSIZE_SHIFT) & 0xF) + 12 if w0 & END_W0_ENQUEUE else 0
    return (H.SUCCESS, xive.end_esb_addr(end_idx), qsize)


@XIVE_HCALLS.hcall(Op.H_INT_SET_QUEUE_CONFIG, "H_INT_SET_QUEUE_CONFIG", gate="xive")
def h_int_set_queue_config(
    xive: SpaprXive, cpu: int, flags: int, target: int, priority: int, qpage: int, qsize: int
) -> tuple[int, ...]:
    """In: R4 flags (ALWAYS_NOTIFY), R5 target, R6 priority, R7 qpage, R8 qsize (12/16/21/24, 0 = off)."""
    if flags & ~SPAPR_XIVE_END_ALWAYS_NOTIFY:
        raise HcallError(H.PARAMETER)
    end_idx = _end_for(xive, target, priority)
    router = xive.router
    if qsize == 0:  # reset the END and disable queueing
        router.set_end_words(end_idx, end_reset_words())
        return (H.SUCCESS,)
    if qsize not in QSIZES:
        raise HcallError(H.P5, f"unsupported queue size {qsize}")
    if qpage & ((1 << qsize) - 1):
        raise HcallError(H.P4, f"queue page {qpage:#x} not aligned on 2^{qsize}")
    if not xive.ram.contains(qpage, 1 << qsize):
        raise HcallError(H.P4, f"queue page {qpage:#x} not in guest RAM")
    w = router.end_words(end_idx)
    w0 = w[0] | END_W0_ENQUEUE | END_W0_VALID
    w0 = (w0 & ~(0xF << END_W0_QSIZE_SHIFT)) | ((qsize - 12) << END_W0_QSIZE_SHIFT)
    if flags & SPAPR_XIVE_END_ALWAYS_NOTIFY:
        w0 |= END_W0_UCOND_NOTIFY
    else:
        w0 &= ~END_W0_UCOND_NOTIFY
    w[0] = w0
    w[1] = END_W1_GENERATION  # generation 1, index 0 (ESn/ESe end up 00, as QEMU)
    w[2] = (qpage >> 32) & 0x0FFFFFFF
    w[3] = qpage & 0xFFFFFFFF
    server = end_idx >> 3
    w[6] = (SPAPR_XIVE_BLOCK_ID << END_W6_NVT_BLOCK_SHIFT) | ((SPAPR_XIVE_NVT_BASE + server) << END_W6_NVT_INDEX_SHIFT)
    w[7] = (priority & 0xFF) << END_W7_F0_PRIORITY_SHIFT
    router.set_end_words(end_idx, w)
    return (H.SUCCESS,)


@XIVE_HCALLS.hcall(Op.H_INT_GET_QUEUE_CONFIG, "H_INT_GET_QUEUE_CONFIG", gate="xive")
def h_int_get_queue_config(xive: SpaprXive, cpu: int, flags: int, target: int, priority: int) -> tuple[int, ...]:
    """In: R4 flags (DEBUG), R5 target, R6 priority. Out: R4 flags, R5 qpage, R6 qsize, R7 index (DEBUG).

    With DEBUG the generation bit goes to R4 bit 62 counted from the LSB (0x4000000000000000), as QEMU.
    """
    if flags & ~SPAPR_XIVE_END_DEBUG:
        raise HcallError(H.PARAMETER)
    end_idx = _end_for(xive, target, priority)
    w = xive.router.end_words(end_idx)
    out_flags = SPAPR_XIVE_END_ALWAYS_NOTIFY if w[0] & END_W0_UCOND_NOTIFY else 0
    if w[0] & END_W0_ENQUEUE:
        qpage, qsize = end_qaddr(w[2], w[3]), ((w[0] >> END_W0_QSIZE_SHIFT) & 0xF) + 12
    else:
        qpage = qsize = 0
    qindex = 0
    if flags & SPAPR_XIVE_END_DEBUG:
        out_flags |= (1 if w[1] & END_W1_GENERATION else 0) << 62
        qindex = (w[1] >> END_W1_PAGE_OFF_SHIFT) & END_W1_PAGE_OFF_MASK
    return (H.SUCCESS, out_flags, qpage, qsize, qindex)


@XIVE_HCALLS.hcall(Op.H_INT_SET_OS_REPORTING_LINE, "H_INT_SET_OS_REPORTING_LINE", gate="xive")
def h_int_set_os_reporting_line(xive: SpaprXive, cpu: int) -> tuple[int, ...]:
    """Not implemented by QEMU (no reporting line): H_FUNCTION after the CAS gate, no checks."""
    return (H.FUNCTION,)


@XIVE_HCALLS.hcall(Op.H_INT_GET_OS_REPORTING_LINE, "H_INT_GET_OS_REPORTING_LINE", gate="xive")
def h_int_get_os_reporting_line(xive: SpaprXive, cpu: int) -> tuple[int, ...]:
    """Not implemented by QEMU: H_FUNCTION after the CAS gate."""
    return (H.FUNCTION,)


@XIVE_HCALLS.hcall(Op.H_INT_ESB, "H_INT_ESB", gate="xive")
def h_int_esb(xive: SpaprXive, cpu: int, flags: int, lisn: int, offset: int, data: int) -> tuple[int, ...]:
    """In: R4 flags (ESB_STORE), R5 lisn, R6 offset in the management page, R7 store data.
    Out: R4 loaded value (the PQ bits in the low bits, not byte-swapped as QEMU 7.2 does) or -1."""
    if flags & ~SPAPR_XIVE_ESB_STORE:
        raise HcallError(H.PARAMETER)
    _check_lisn(xive, lisn)
    xsrc = xive.xsrc
    if offset > (1 << xsrc.esb_shift):
        raise HcallError(H.P3, f"ESB offset {offset:#x}")
    where = xsrc.esb_mgmt(lisn) + offset
    if where + 8 > xsrc.window_size:  # QEMU: the 8-byte access misses the ESB region
        raise HcallError(H.HARDWARE, "ESB access outside the ESB window")
    if flags & SPAPR_XIVE_ESB_STORE:
        xsrc.esb_write(where, 8, data & U64)
        return (H.SUCCESS, MINUS_ONE)
    return (H.SUCCESS, xsrc.esb_read(where, 8))


@XIVE_HCALLS.hcall(Op.H_INT_SYNC, "H_INT_SYNC", gate="xive")
def h_int_sync(xive: SpaprXive, cpu: int, flags: int, lisn: int) -> tuple[int, ...]:
    """In: R4 flags (0), R5 lisn. Emulated routing is synchronous: nothing in flight to wait for."""
    if flags:
        raise HcallError(H.PARAMETER)
    _check_lisn(xive, lisn)
    return (H.SUCCESS,)


@XIVE_HCALLS.hcall(Op.H_INT_RESET, "H_INT_RESET", gate="xive")
def h_int_reset(xive: SpaprXive, cpu: int, flags: int) -> tuple[int, ...]:
    """In: R4 flags (0). Every source masked (PQ off), every queue disabled (QEMU 7.2 TCG skips this)."""
    if flags:
        raise HcallError(H.PARAMETER)
    xive.int_reset()
    return (H.SUCCESS,)
