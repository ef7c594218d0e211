"""`trace show` formatting and name filters."""

from __future__ import annotations

from xive_machine.trace import show

HCALL = {"ev": "hcall", "seq": 4, "cpu": 1, "name": "H_INT_ESB", "opcode": 0x3C8, "args": [0, 0x1000, 0x800, 0],
         "rc": 0, "outs": [1]}
RTAS = {"ev": "rtas", "seq": 5, "cpu": 0, "name": "ibm,int-on", "token": 0x200D, "args": [0x1000], "rets": [-3]}
MMIO = {"ev": "mmio", "seq": 6, "cpu": 0, "window": "tima", "op": "store", "offset": 0x20011, "size": 1,
        "value": 5}
CAS = {"ev": "cas", "seq": 7, "addr": 0x440470, "rc": -2, "intc": "xics", "mmu": "hash", "reason": "x"}


def test_format_event():
    assert show.format_event(HCALL) == "hcall  cpu1 H_INT_ESB(0, 0x1000, 0x800, 0) = 0 H_SUCCESS -> [1]"
    assert show.format_event(RTAS) == "rtas   cpu0 ibm,int-on(0x1000) -> [-3]"
    assert show.format_event(MMIO) == "mmio   cpu0 tima store1 @0x20011 <- 5"
    assert show.format_event(CAS).startswith("cas    rc=-2 H_FUNCTION intc=xics mmu=hash  addr=0x440470")


def test_filters_match_names_and_kinds():
    events = [HCALL, RTAS, MMIO, CAS]
    pick = lambda *p: [e["seq"] for e in events if show.matches(e, p)]  # noqa: E731
    assert pick("H_INT_*") == [4]
    assert pick("ibm,*") == [5]
    assert pick("mmio") == [6] and pick("tima") == [6]
    assert pick("cas", "H_INT_ESB") == [4, 7]
    assert pick() == [4, 5, 6, 7]
    assert pick("h_int_*") == []  # spec names are case-sensitive


def test_format_lines_numbers_by_seq():
    lines = list(show.format_lines([HCALL, RTAS], ["ibm,*"]))
    assert lines == ["#5      rtas   cpu0 ibm,int-on(0x1000) -> [-3]"]


def test_console_text_is_shown():
    ev = {"ev": "hcall", "cpu": 0, "name": "H_PUT_TERM_CHAR", "opcode": 0x58,
          "args": [0, 9, int.from_bytes(b"hello, w", "big"), int.from_bytes(b"o\0\0\0\0\0\0\0", "big")],
          "rc": 0, "outs": []}
    assert show.format_event(ev).endswith("= 0 H_SUCCESS  text='hello, wo'")
