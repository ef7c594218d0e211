"""ESB PQ state machine (pure functions) and the ESB page decoding of XiveSource (xive.md 2.2, 2.3)."""

from __future__ import annotations

import pytest

from xive_machine.intc.xive.esb import esb_eoi, esb_set, esb_trigger, lsi_eoi, lsi_trigger
from xive_machine.intc.xive.regs import (
    XIVE_ESB_GET,
    XIVE_ESB_INJECT,
    XIVE_ESB_LOAD_EOI,
    XIVE_ESB_OFF,
    XIVE_ESB_PENDING,
    XIVE_ESB_QUEUED,
    XIVE_ESB_RESET,
    XIVE_ESB_SET_PQ_00,
    XIVE_ESB_SET_PQ_01,
    XIVE_ESB_SET_PQ_10,
    XIVE_ESB_SET_PQ_11,
    XIVE_ESB_STORE_EOI,
)
from xive_machine.intc.xive.source import XiveSource
from xive_machine.trace.events import ListSink

PAGE = 0x10000
PAIR = 0x20000


@pytest.mark.parametrize(
    "old,new,fwd",
    [(0b00, 0b10, True), (0b10, 0b11, False), (0b11, 0b11, False), (0b01, 0b01, False)],
)
def test_trigger_table(old, new, fwd):
    assert esb_trigger(old) == (new, fwd)


@pytest.mark.parametrize(
    "old,new,fwd",
    [(0b00, 0b00, False), (0b10, 0b00, False), (0b11, 0b10, True), (0b01, 0b01, False)],
)
def test_eoi_table(old, new, fwd):
    assert esb_eoi(old) == (new, fwd)


def test_set_returns_old():
    for old in range(4):
        for new in range(4):
            assert esb_set(old, new) == (new, old)


def test_lsi_level_rules():
    assert lsi_trigger(XIVE_ESB_RESET) == (XIVE_ESB_PENDING, True)
    for pq in (XIVE_ESB_PENDING, XIVE_ESB_QUEUED, XIVE_ESB_OFF):
        assert lsi_trigger(pq) == (pq, False)  # a level never sets Q
    assert lsi_eoi(XIVE_ESB_PENDING, asserted=True) == (XIVE_ESB_PENDING, True)  # re-fire
    assert lsi_eoi(XIVE_ESB_PENDING, asserted=False) == (XIVE_ESB_RESET, False)
    # QEMU quirk: the level rule's answer replaces the EOI's from QUEUED
    assert lsi_eoi(XIVE_ESB_QUEUED, asserted=True) == (XIVE_ESB_PENDING, False)
    assert lsi_eoi(XIVE_ESB_OFF, asserted=True) == (XIVE_ESB_OFF, False)


class Src:
    def __init__(self, n=8, **kw):
        self.events: list[int] = []
        self.s = XiveSource(n, self.events.append, **kw)
        self.sink = ListSink()
        self.s.trace = self.sink

    def notes(self):
        return [e for e in self.sink.events if e["ev"] == "note"]


def test_reset_state_is_off():
    s = Src().s
    assert all(s.get_pq(i) == XIVE_ESB_OFF for i in range(8))


def test_trigger_page_store_triggers_and_load_is_invalid():
    t = Src()
    s = t.s
    s.set_pq(3, XIVE_ESB_RESET)
    s.esb_write(3 * PAIR + 0x123, 8, 0xDEAD)
    assert t.events == [3] and s.get_pq(3) == XIVE_ESB_PENDING
    for size, ones in ((1, 0xFF), (2, 0xFFFF), (4, 0xFFFFFFFF), (8, (1 << 64) - 1)):
        assert s.esb_read(3 * PAIR + 0x800, size) == ones
    assert s.get_pq(3) == XIVE_ESB_PENDING
    assert any("trigger page" in n["what"] for n in t.notes())


@pytest.mark.parametrize("op", [0x000, 0x3F8, 0x400, 0x7F8])
def test_mgmt_load_eoi_range(op):
    t = Src()
    s = t.s
    s.set_pq(1, XIVE_ESB_QUEUED)
    assert s.esb_read(PAIR + PAGE + op, 8) == 1
    assert t.events == [1] and s.get_pq(1) == XIVE_ESB_PENDING
    assert s.esb_read(PAIR + PAGE + op, 8) == 0
    assert s.get_pq(1) == XIVE_ESB_RESET and t.events == [1]


@pytest.mark.parametrize("op", [XIVE_ESB_GET, XIVE_ESB_GET + 0x3F8])
def test_get_has_no_side_effect(op):
    s = Src().s
    for pq in range(4):
        s.set_pq(2, pq)
        assert s.esb_read(2 * PAIR + PAGE + op, 8) == pq
        assert s.get_pq(2) == pq


@pytest.mark.parametrize(
    "base,pq", [(XIVE_ESB_SET_PQ_00, 0), (XIVE_ESB_SET_PQ_01, 1), (XIVE_ESB_SET_PQ_10, 2), (XIVE_ESB_SET_PQ_11, 3)]
)
@pytest.mark.parametrize("delta", [0x00, 0x40, 0xF8])
def test_set_pq_load_and_store(base, pq, delta):
    t = Src()
    s = t.s
    s.set_pq(0, 3 - pq)
    assert s.esb_read(PAGE + base + delta, 8) == 3 - pq
    assert s.get_pq(0) == pq
    s.set_pq(0, 3 - pq)
    s.esb_write(PAGE + base + delta, 8, 0)
    assert s.get_pq(0) == pq
    assert t.events == []


def test_pattern_repeats_every_4k_in_the_page():
    s = Src().s
    s.set_pq(0, 2)
    assert s.esb_read(PAGE + 0x5000 + XIVE_ESB_GET, 8) == 2
    assert s.esb_read(PAGE + 0xF000 + XIVE_ESB_SET_PQ_01, 4) == 2
    assert s.get_pq(0) == XIVE_ESB_OFF


def test_mgmt_store_low_range_triggers():
    t = Src()
    t.s.set_pq(5, XIVE_ESB_RESET)
    t.s.esb_write(5 * PAIR + PAGE + 0x3F8, 8, 0)
    assert t.events == [5]


def test_store_eoi_only_when_advertised():
    t = Src()
    t.s.set_pq(4, XIVE_ESB_QUEUED)
    t.s.esb_write(4 * PAIR + PAGE + XIVE_ESB_STORE_EOI, 8, 0)
    assert t.s.get_pq(4) == XIVE_ESB_QUEUED and t.events == []
    assert any("StoreEOI" in n["what"] for n in t.notes())
    u = Src(store_eoi=True)
    u.s.set_pq(4, XIVE_ESB_QUEUED)
    u.s.esb_write(4 * PAIR + PAGE + XIVE_ESB_STORE_EOI, 8, 0)
    assert u.s.get_pq(4) == XIVE_ESB_PENDING and u.events == [4]


def test_inject_store_forwards_without_pq_check():
    t = Src()
    t.s.esb_write(PAGE + XIVE_ESB_INJECT, 8, 0)
    assert t.events == [0] and t.s.get_pq(0) == XIVE_ESB_OFF


@pytest.mark.parametrize("size", [1, 2, 4, 8])
def test_access_sizes_accepted(size):
    s = Src().s
    s.set_pq(0, 3)
    assert s.esb_read(PAGE + XIVE_ESB_GET, size) == 3


@pytest.mark.parametrize("size", [0, 3, 5, 16])
def test_bad_sizes(size):
    t = Src()
    t.s.set_pq(0, 0)
    assert t.s.esb_read(PAGE + XIVE_ESB_SET_PQ_11, size) != 0
    t.s.esb_write(0, size, 0)
    assert t.s.get_pq(0) == 0 and t.events == []


def test_out_of_window():
    t = Src(n=2)
    assert t.s.esb_read(2 * PAIR + PAGE, 8) == (1 << 64) - 1
    t.s.esb_write(2 * PAIR, 8, 0)
    assert t.events == [] and t.notes()


def test_lsi_set_irq_and_eoi_refire():
    t = Src()
    s = t.s
    s.set_lsi(6, True)
    s.set_pq(6, XIVE_ESB_RESET)
    s.set_irq(6, True)
    assert t.events == [6] and s.asserted(6) and s.get_pq(6) == XIVE_ESB_PENDING
    s.set_irq(6, True)  # level again: no Q
    assert t.events == [6] and s.get_pq(6) == XIVE_ESB_PENDING
    assert s.esb_read(6 * PAIR + PAGE + XIVE_ESB_LOAD_EOI, 8) == 1  # still asserted: re-fires
    assert t.events == [6, 6] and s.get_pq(6) == XIVE_ESB_PENDING
    s.set_irq(6, False)
    assert not s.asserted(6) and s.get_pq(6) == XIVE_ESB_PENDING
    assert s.esb_read(6 * PAIR + PAGE, 8) == 0
    assert s.get_pq(6) == XIVE_ESB_RESET and t.events == [6, 6]


def test_lsi_masked_latches_nothing_until_eoi_path():
    t = Src()
    s = t.s
    s.set_lsi(1, True)
    s.set_irq(1, True)  # PQ=01 (off): nothing
    assert t.events == [] and s.asserted(1)
    s.esb_read(PAIR + PAGE + XIVE_ESB_SET_PQ_00, 8)  # unmask: QEMU does not re-fire on SET_PQ
    assert t.events == []
    assert s.esb_read(PAIR + PAGE + XIVE_ESB_LOAD_EOI, 8) == 1
    assert t.events == [1]


def test_msi_set_irq_edge_only():
    t = Src()
    t.s.set_pq(0, 0)
    t.s.set_irq(0, False)
    assert t.events == []
    t.s.set_irq(0, True)
    t.s.set_irq(0, True)
    assert t.events == [0] and t.s.get_pq(0) == XIVE_ESB_QUEUED


def test_trigger_store_on_lsi_can_queue_and_is_noted():
    t = Src()
    t.s.set_lsi(2, True)
    t.s.set_pq(2, XIVE_ESB_PENDING)
    t.s.esb_write(2 * PAIR, 8, 0)
    assert t.s.get_pq(2) == XIVE_ESB_QUEUED
    assert any("LSI" in n["what"] for n in t.notes())


def test_reset_keeps_lsi_type_clears_asserted():
    s = Src().s
    s.set_lsi(3, True)
    s.set_pq(3, 0)
    s.set_irq(3, True)
    s.reset()
    assert s.lsi[3] == 1 and not s.asserted(3) and s.get_pq(3) == XIVE_ESB_OFF


def test_esb_trace_event_fields():
    t = Src()
    t.s.set_pq(0, 2)
    t.s.esb_read(PAGE + XIVE_ESB_SET_PQ_00, 8)
    ev = [e for e in t.sink.events if e["ev"] == "esb"][-1]
    assert ev == {
        "ev": "esb", "lisn": 0, "page": "mgmt", "offset": XIVE_ESB_SET_PQ_00, "size": 8,
        "value": 2, "effect": "set_pq_00",
    }  # fmt: skip


def test_single_page_mode():
    events: list[int] = []
    s = XiveSource(4, events.append, esb_shift=16)
    assert not s.two_page and s.esb_mgmt(1) == s.esb_page(1) == 0x10000
    s.set_pq(1, 0)
    s.esb_write(0x10000, 8, 0)  # store at offset 0 of the single page: trigger
    assert events == [1]
    assert s.esb_read(0x10000 + XIVE_ESB_GET, 8) == XIVE_ESB_PENDING
