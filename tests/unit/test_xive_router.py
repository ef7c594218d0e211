"""Router: EAS -> END -> EQ in guest RAM -> presenter (xive.md 2.4, 4), and the END ESB pages."""

from __future__ import annotations

import pytest

from xive_machine.intc.xive.presenter import XivePresenter
from xive_machine.intc.xive.regs import (
    EAS_MASKED,
    EAS_VALID,
    END_W0_ENQUEUE,
    END_W0_UCOND_NOTIFY,
    END_W0_VALID,
    END_W1_GENERATION,
    XiveEAS,
    XiveENDW0,
    XiveENDW1,
)
from xive_machine.intc.xive.router import XiveRouter
from xive_machine.memory.ram import GuestRam
from xive_machine.trace.events import ListSink

QPAGE = 0x10000


def eas_word(end_idx: int, eisn: int, masked: bool = False) -> int:
    """Built through the construct declaration, so the hot-path masks are checked against it."""
    raw = XiveEAS.build(dict(valid=True, end_block=0, end_index=end_idx, masked=masked, end_data=eisn))
    return int.from_bytes(raw, "big")


def end_w0(qshift: int, notify: bool = True) -> int:
    raw = XiveENDW0.build(
        dict(valid=True, enqueue=True, ucond_notify=notify, backlog=False, precl_esc_ctl=False,
             escalate_ctl=False, uncond_esc=False, silent_escal=False, qsize=qshift - 12, sw0=False, hwdep=0)
    )  # fmt: skip
    return int.from_bytes(raw, "big")


class Rig:
    def __init__(self, qshift=12, notify=True, ram_size=1 << 20):
        self.ram = GuestRam(ram_size)
        self.lines: list[tuple[int, bool]] = []
        self.pres = XivePresenter(lambda c, lv: self.lines.append((c, lv)), cpu_hint=0x400)
        self.r = XiveRouter(self.ram, 16, 16, self.pres, lambda blk, idx: blk == 0 and 0x400 <= idx < 0x402)
        self.sink = ListSink()
        self.r.trace = self.sink
        self.pres.trace = self.sink
        self.t = self.pres.connect(0, 0x80000400)
        self.t.set_cppr(0x10, 0xFF)
        # END 6 = server 0 prio 6
        self.r.set_end_words(6, [end_w0(qshift, notify), END_W1_GENERATION, 0, QPAGE, 0, 0, 0x400, 6 << 16])
        self.r.eat[3] = eas_word(6, 0x1234)

    def eq(self, i):
        return self.ram.read_u32(QPAGE + 4 * i)


def test_masks_agree_with_construct():
    w = eas_word(0x123456, 0x7FFFFFFF)
    assert w & EAS_VALID and not w & EAS_MASKED and (w >> 32) & 0xFFFFFF == 0x123456
    assert eas_word(0, 0, masked=True) & EAS_MASKED
    w0 = end_w0(16)
    assert w0 & END_W0_VALID and w0 & END_W0_ENQUEUE and w0 & END_W0_UCOND_NOTIFY
    assert (w0 >> 16) & 0xF == 4
    w1 = int.from_bytes(XiveENDW1.build(dict(esn=1, ese=1, generation=True, page_off=5)), "big")
    assert w1 == END_W1_GENERATION | 5 | (1 << 30) | (1 << 28)


def test_enqueue_and_present():
    g = Rig()
    g.r.notify(3)
    assert g.eq(0) == 0x80001234
    assert g.t.IPB == 0x02 and g.lines == [(0, True)]
    ev = [e for e in g.sink.events if e["ev"] == "eq"]
    assert ev == [{"ev": "eq", "server": 0, "prio": 6, "end": 6, "addr": QPAGE, "value": 0x80001234}]
    assert QPAGE >> 12 in g.ram.dirty_pages


def test_index_wraps_and_generation_flips():
    g = Rig(qshift=12)  # 1024 entries
    for i in range(1024 + 3):
        g.r.end_notify(6, i)
    assert g.eq(0) == 1024 and g.eq(2) == 1026 and g.eq(3) == 0x80000003  # gen 0 after the wrap
    w1 = g.r.end_words(6)[1]
    assert w1 & 0x3FFFFF == 3 and not w1 & END_W1_GENERATION
    assert g.eq(1023) == 0x80000000 | 1023


def test_masked_and_invalid_eas_drop():
    g = Rig()
    g.r.eat[3] |= EAS_MASKED
    g.r.notify(3)
    g.r.notify(4)  # never claimed
    g.r.notify(99)  # out of range
    assert g.eq(0) == 0 and g.lines == []
    notes = [e["what"] for e in g.sink.events if e["ev"] == "note"]
    assert any("invalid LISN" in n for n in notes) and any("unknown LISN" in n for n in notes)


def test_invalid_end_drops():
    g = Rig()
    g.r.eat[3] = eas_word(7, 1)
    g.r.notify(3)
    assert g.lines == [] and any("END not valid" in e.get("what", "") for e in g.sink.events)


def test_priority_ff_end_enqueues_but_does_not_notify():
    g = Rig()
    w = g.r.end_words(6)
    w[7] = 0xFF << 16
    g.r.set_end_words(6, w)
    g.r.notify(3)
    assert g.eq(0) == 0x80001234 and g.lines == []


def test_without_always_notify_esn_coalesces():
    g = Rig(notify=False)
    w = g.r.end_words(6)
    w[1] = END_W1_GENERATION  # ESn = 00 as H_INT_SET_QUEUE_CONFIG leaves it
    g.r.set_end_words(6, w)
    g.r.notify(3)
    g.r.notify(3)
    g.r.notify(3)
    assert [g.eq(i) & 0xFFFF for i in range(3)] == [0x1234] * 3  # all enqueued
    assert g.lines == [(0, True)]
    assert (g.r.end_words(6)[1] >> 30) & 3 == 0b11  # ESn went 00 -> 10 -> 11


def test_esn_off_never_notifies():
    g = Rig(notify=False)
    w = g.r.end_words(6)
    w[1] = END_W1_GENERATION | (1 << 30)  # ESn = 01
    g.r.set_end_words(6, w)
    g.r.notify(3)
    assert g.eq(0) == 0x80001234 and g.lines == []


def test_queue_outside_ram_is_noted_and_not_advanced():
    g = Rig(ram_size=1 << 16)
    w = g.r.end_words(6)
    w[3] = 0x20000
    g.r.set_end_words(6, w)
    g.r.notify(3)
    assert g.r.end_words(6)[1] & 0x3FFFFF == 0
    assert any("failed to write END data" in e.get("what", "") for e in g.sink.events)
    assert g.lines == [(0, True)]  # QEMU still notifies


def test_invalid_nvt_and_unmatched_thread():
    g = Rig()
    w = g.r.end_words(6)
    w[6] = 0x401  # valid NVT (server 1) but no thread context connected
    g.r.set_end_words(6, w)
    g.r.notify(3)
    assert g.lines == []
    w[6] = 0x480  # no such server
    g.r.set_end_words(6, w)
    g.r.notify(3)
    assert any("invalid NVT" in e.get("what", "") for e in g.sink.events)


def test_presenter_scans_when_hint_misses():
    g = Rig()
    t1 = g.pres.connect(1, 0x80000400)  # cpu 1 carries NVT 0x400 after a context move
    g.t.set_os_cam(0x00000400)  # pulled from cpu 0
    t1.set_cppr(0x10, 0xFF)
    g.r.notify(3)
    assert t1.IPB == 0x02 and g.t.IPB == 0 and g.lines == [(1, True)]


def test_presenter_two_matches_is_a_guest_error():
    g = Rig()
    g.pres.connect(1, 0x80000400)
    g.t.set_os_cam(0x00000400)
    g.pres.connect(2, 0x80000400)
    assert g.pres.match(0, 0x400) is None


def test_end_esb_pages():
    g = Rig()
    base = 6 << 17
    w = g.r.end_words(6)
    w[1] = END_W1_GENERATION | (0b11 << 30) | (0b01 << 28)
    g.r.set_end_words(6, w)
    assert g.r.end_esb_read(base + 0x800, 8) == 0b11  # ESn (even page) GET
    assert g.r.end_esb_read(base + 0x10000 + 0x800, 8) == 0b01  # ESe (odd page)
    assert g.r.end_esb_read(base + 0x000, 8) == 1  # EOI from 11 -> 10
    assert (g.r.end_words(6)[1] >> 30) & 3 == 0b10
    assert g.r.end_esb_read(base + 0x10000 + 0xC00, 8) == 0b01  # SET_PQ_00 on ESe
    assert (g.r.end_words(6)[1] >> 28) & 3 == 0
    assert g.r.end_esb_read(7 << 17, 8) == (1 << 64) - 1  # END 7 not valid
    g.r.end_esb_write(base, 8, 0)  # stores are invalid
    assert (g.r.end_words(6)[1] >> 30) & 3 == 0b10
    assert g.lines == []


@pytest.mark.parametrize("qshift,entries", [(12, 1024), (16, 16384)])
def test_queue_sizes(qshift, entries):
    g = Rig(qshift=qshift, ram_size=1 << 20)
    for i in range(entries):
        g.r.end_notify(6, i & 0x7FFFFFFF)
    assert g.r.end_words(6)[1] & 0x3FFFFF == 0 and not g.r.end_words(6)[1] & END_W1_GENERATION
