"""Thread context and TIMA decoding (xive.md 3): reset values, special ops, raw views, QEMU quirks."""

from __future__ import annotations

import pytest

from xive_machine.intc.xive.regs import TM_QW1_OS, TM_QW3_HV_PHYS
from xive_machine.intc.xive.tctx import XiveTCTX, ipb_to_pipr, priority_to_ipb
from xive_machine.trace.events import ListSink

HW, HV, OS, USER = 0x00000, 0x10000, 0x20000, 0x30000
ONES = {1: 0xFF, 2: 0xFFFF, 4: 0xFFFFFFFF, 8: (1 << 64) - 1}
CAM0 = 0x80000400


class Line:
    def __init__(self):
        self.calls: list[tuple[int, bool]] = []

    def __call__(self, cpu, level):
        self.calls.append((cpu, level))

    @property
    def level(self):
        return self.calls[-1][1] if self.calls else False


class Probe(XiveTCTX):
    """A thread context with a __dict__, to hang the test's line log and trace sink on."""


@pytest.fixture
def t():
    line = Line()
    tc = Probe(0, line)
    tc.reset(CAM0)
    tc.sink = ListSink()
    tc.trace = tc.sink
    tc.line_log = line
    return tc


def test_priority_ipb_pipr_helpers():
    assert [priority_to_ipb(p) for p in range(8)] == [0x80 >> p for p in range(8)]
    assert priority_to_ipb(8) == priority_to_ipb(0xFF) == 0
    assert ipb_to_pipr(0) == 0xFF
    assert ipb_to_pipr(0x01) == 7 and ipb_to_pipr(0x80) == 0 and ipb_to_pipr(0x03) == 6


def test_reset_values_match_qemu_oracle(t):
    # QEMU 7.2: ld at OS page +0x10 = 0x000000ffff0000ff, lwz at +0x18 = 0xffffffff
    assert t.tm_read(OS + 0x10, 8) == 0x000000FFFF0000FF
    assert t.tm_read(OS + 0x18, 4) == 0xFFFFFFFF
    assert t.tm_read(OS + 0x10, 4) == 0x000000FF
    assert t.tm_read(OS + 0x14, 4) == 0xFF0000FF  # ACK#, INC, AGE masked, PIPR
    assert (t.NSR, t.CPPR, t.IPB, t.LSMFB, t.ACK, t.INC, t.AGE, t.PIPR) == (0, 0, 0, 0xFF, 0xFF, 0, 0xFF, 0xFF)
    assert t.WORD2 == CAM0 and t.cppr == 0


def test_hv_page_raw_sees_word2_and_age(t):
    assert t.tm_read(HV + 0x18, 4) == CAM0
    assert t.tm_read(HV + 0x10, 8) == 0x000000FFFF0000FF  # AGE not readable in HV view either
    assert t.tm_read(HW + 0x10, 8) == 0x000000FFFF0000FF


def test_cppr_byte_store_and_quirky_byte_load(t):
    t.tm_write(OS + 0x11, 1, 0xFF)
    assert t.CPPR == 0xFF
    assert t.tm_read(OS + 0x11, 1) == 0xFF  # all-ones because a byte load is invalid (QEMU quirk)
    t.tm_write(OS + 0x11, 1, 0x05)
    assert t.tm_read(OS + 0x11, 1) == 0xFF  # still invalid, not the CPPR value
    assert t.tm_read(OS + 0x10, 4) >> 16 & 0xFF == 5
    t.tm_write(OS + 0x11, 1, 0x09)  # > 7 becomes 0xFF
    assert t.CPPR == 0xFF


def test_delivery_ack_cycle(t):
    line = t.line_log
    t.tm_write(OS + 0x11, 1, 0xFF)
    t.ipb_update(TM_QW1_OS, 6)
    assert t.IPB == 0x02 and t.PIPR == 6 and t.NSR == 0x80 and line.calls == [(0, True)]
    assert t.tm_read(OS + 0x810, 2) == 0x8006
    assert line.calls == [(0, True), (0, False)]
    assert t.CPPR == 6 and t.IPB == 0 and t.PIPR == 0xFF and t.NSR == 0
    # a second ack with nothing pending returns NSR 0 and the current CPPR
    assert t.tm_read(OS + 0x810, 2) == 0x0006
    # an event at the current CPPR is not presented
    t.ipb_update(TM_QW1_OS, 6)
    assert t.NSR == 0 and not line.level and t.PIPR == 6
    # CPPR back to 0xFF presents it
    t.tm_write(OS + 0x11, 1, 0xFF)
    assert t.NSR == 0x80 and line.level


def test_more_favoured_priority_first(t):
    t.tm_write(OS + 0x11, 1, 0xFF)
    t.ipb_update(TM_QW1_OS, 6)
    t.ipb_update(TM_QW1_OS, 2)
    assert t.PIPR == 2
    assert t.tm_read(OS + 0x810, 2) == 0x8002
    assert t.IPB == 0x02 and t.PIPR == 6 and t.CPPR == 2 and not t.line_log.level
    t.tm_write(OS + 0x11, 1, 0xFF)
    assert t.tm_read(OS + 0x810, 2) == 0x8006


def test_cppr_zero_withdraws_signal(t):
    t.tm_write(OS + 0x11, 1, 0xFF)
    t.ipb_update(TM_QW1_OS, 3)
    assert t.line_log.level
    t.tm_write(OS + 0x11, 1, 0x00)
    assert not t.line_log.level and t.NSR == 0 and t.IPB == 0x10
    t.tm_write(OS + 0x11, 1, 0xFF)
    assert t.line_log.level and t.NSR == 0x80


def test_set_os_pending(t):
    t.tm_write(OS + 0x11, 1, 0xFF)
    t.tm_write(OS + 0x812, 1, 4)
    assert t.IPB == 0x08 and t.PIPR == 4 and t.line_log.level
    t.tm_write(OS + 0x812, 1, 0x20)  # priority > 7: no IPB bit
    assert t.IPB == 0x08


def test_special_ops_need_exact_size(t):
    t.tm_write(OS + 0x11, 1, 0xFF)
    t.ipb_update(TM_QW1_OS, 6)
    assert t.tm_read(OS + 0x810, 4) == ONES[4]  # not the ACK op: invalid special range
    assert t.NSR == 0x80
    t.tm_write(OS + 0x812, 2, 1)
    assert t.IPB == 0x02


def test_os_page_cannot_use_hv_ops(t):
    assert t.tm_read(OS + 0x818, 8) == ONES[8]  # PULL_OS_CTX needs HV page
    assert t.WORD2 == CAM0
    t.tm_write(OS + 0x18, 4, 0)  # push OS ctx from OS page: not an op, raw write with no writable bytes
    assert t.WORD2 == CAM0
    assert t.tm_read(USER + 0x810, 2) == ONES[2]  # user page cannot ack


def test_hv_page_can_use_os_ops(t):
    t.tm_write(HV + 0x11, 1, 0xFF)
    assert t.CPPR == 0xFF
    t.ipb_update(TM_QW1_OS, 1)
    assert t.tm_read(HW + 0x810, 2) == 0x8001


def test_pull_and_push_os_ctx(t):
    t.tm_write(OS + 0x11, 1, 0xFF)
    t.ipb_update(TM_QW1_OS, 5)
    assert t.line_log.level
    assert t.tm_read(HV + 0x818, 4) == CAM0
    assert t.WORD2 == CAM0 & 0x7FFFFFFF and not t.line_log.level and t.NSR == 0x80
    assert t.tm_read(HV + 0x818, 8) == CAM0 & 0x7FFFFFFF  # pulling again: invalid NVT noted
    assert any("invalid NVT" in e.get("what", "") for e in t.sink.events)
    t.tm_write(HV + 0x18, 4, CAM0)  # push: re-evaluates the pending IPB
    assert t.WORD2 == CAM0 and t.line_log.level and t.NSR == 0x80


def test_pull_pool_ctx_returns_cleared_word(t):
    t.regs[0x28:0x2C] = (0x80001234).to_bytes(4, "big")
    assert t.tm_read(HV + 0x828, 4) == 0x00001234
    assert t.regs[0x28:0x2C] == b"\x00\x00\x12\x34"


def test_hv_ring_ops(t):
    t.tm_write(HV + 0x38, 1, 0x80)
    assert t.tm_read(HV + 0x38, 1) == 0x80
    t.tm_write(HV + 0x31, 1, 0xFF)
    t.ipb_update(TM_QW3_HV_PHYS, 3)
    assert t.regs[0x30] == 0x80 and t.hv_output and not t.line_log.level
    assert t.tm_read(HV + 0x830, 2) == 0x8003
    assert not t.hv_output and t.regs[0x31] == 3
    assert t.tm_read(OS + 0x830, 2) == ONES[2]


def test_raw_rules(t):
    assert t.tm_read(OS + 0x00, 4) == ONES[4]  # QW0 refused
    assert t.tm_read(OS + 0x20, 8) == ONES[8]  # POOL ring not visible from OS page
    assert t.tm_read(OS + 0x12, 2) == ONES[2]  # raw < 4 bytes refused
    assert t.tm_read(HV + 0x3C, 8) == ONES[8]  # runs past the register file
    assert t.tm_read(OS + 0x50, 8) == t.tm_read(OS + 0x10, 8)  # below 2K, register = offset & 0x3F
    assert t.tm_read(OS + 0x7F0, 4) == ONES[4]  # no 0x800 bit: raw on 0x30 ring from OS page: nothing readable


def test_raw_write_filtered_by_view(t):
    t.tm_write(OS + 0x10, 4, 0x11223344)  # OS view: only CPPR writable (raw, no CPPR side effects)
    assert bytes(t.regs[0x10:0x14]) == b"\x00\x22\x00\xff"
    t.tm_write(HV + 0x10, 4, 0x11223344)
    assert bytes(t.regs[0x10:0x14]) == b"\x11\x22\x33\x44"


def test_invalid_special_and_unimplemented_ops(t):
    for off in (0x800, 0x808, 0xC08, 0xC10, 0xC20, 0xC30):
        assert t.tm_read(OS + off, 8) == ONES[8]
        t.tm_write(OS + off, 8, 0)
    assert t.tm_read(OS + 0x10, 8) == 0x000000FFFF0000FF
    assert sum(1 for e in t.sink.events if e["ev"] == "tima" and e["op"] == "invalid") == 12


def test_tima_trace_event(t):
    t.tm_write(OS + 0x11, 1, 0xFF)
    ev = [e for e in t.sink.events if e["ev"] == "tima"][-1]
    assert ev == {"ev": "tima", "cpu": 0, "offset": OS + 0x11, "size": 1, "value": 0xFF, "op": "set_os_cppr"}


def test_describe_mentions_registers(t):
    assert "CPPR=00" in t.describe() and "W2=80000400" in t.describe()
