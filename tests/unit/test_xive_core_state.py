"""reset / get_state / set_state / describe of the reusable core models (source, router, thread context)."""

from __future__ import annotations

import pytest

from xive_machine.intc.xive.presenter import XivePresenter
from xive_machine.intc.xive.regs import EAS_MASKED, EAS_VALID, END_W1_ESE_Q, END_W1_ESN_Q
from xive_machine.intc.xive.router import XiveRouter, XiveRouterState
from xive_machine.intc.xive.source import XiveSource, XiveSourceState
from xive_machine.intc.xive.tctx import XiveTCTX
from xive_machine.memory.ram import GuestRam


def test_source_state_round_trip():
    a = XiveSource(8, lambda n: None)
    a.set_lsi(3, True)
    a.set_pq(3, 0)
    a.set_irq(3, True)
    a.set_pq(5, 3)
    st = a.get_state()
    b = XiveSource(8, lambda n: None)
    b.set_state(st)
    assert b.get_state() == st and b.asserted(3) and b.get_pq(5) == 3
    assert "source 0x0003 LSI PQ=10 asserted" in b.describe() and "0x0005 MSI PQ=11" in b.describe()
    with pytest.raises(ValueError):
        b.set_state(XiveSourceState(bytes(4), bytes(4)))


def test_router_reset_and_state():
    ram = GuestRam(1 << 16)
    r = XiveRouter(ram, 4, 2, XivePresenter(lambda c, lv: None), lambda b, i: True)
    r.eat[1] = EAS_VALID | (1 << 32) | 0x55
    r.set_end_words(1, [0x80000000, 0, 0, 0, 0, 0, 0x400, 0])
    assert "EAS 0x0001 = 8000000100000055" in r.describe() and "END 0x1 = 80000000" in r.describe()
    st = r.get_state()
    r.reset()
    assert r.eat == [0, EAS_VALID | EAS_MASKED, 0, 0]
    assert r.end_words(1) == [0, END_W1_ESN_Q | END_W1_ESE_Q, 0, 0, 0, 0, 0, 0]
    r.set_state(st)
    assert r.get_state() == st
    with pytest.raises(ValueError):
        r.set_state(XiveRouterState((0,), ()))


def test_tctx_state_round_trip_redrives_line():
    lines: list[tuple[int, bool]] = []
    a = XiveTCTX(3, lambda c, lv: lines.append((c, lv)))
    a.reset(0x80000403)
    a.set_cppr(0x10, 0xFF)
    a.ipb_update(0x10, 4)
    regs = a.get_state()
    b_lines: list[tuple[int, bool]] = []
    b = XiveTCTX(3, lambda c, lv: b_lines.append((c, lv)))
    b.set_state(regs)
    assert b.get_state() == regs and b_lines == [(3, True)]
    assert b.tm_read(0x20810, 2) == 0x8004
    with pytest.raises(ValueError):
        b.set_state(b"\0" * 16)


def test_presenter_reset_and_describe():
    lines: list[tuple[int, bool]] = []
    p = XivePresenter(lambda c, lv: lines.append((c, lv)), cpu_hint=0x400)
    t = p.connect(0, 0x80000400)
    t.set_cppr(0x10, 0xFF)
    assert p.notify(0, 0, 0x400, 2)
    p.reset(lambda cpu: 0x80000400 + cpu)
    assert lines == [(0, True), (0, False)] and t.IPB == 0 and t.CPPR == 0
    assert "cpu 0 OS" in p.describe()
    assert not p.notify(1, 0, 0x400, 2)  # format 1 (logical server) not modelled
