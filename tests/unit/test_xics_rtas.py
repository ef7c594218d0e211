"""XICS RTAS services (ibm,set-xive, ibm,get-xive, ibm,int-off, ibm,int-on) through the RTAS dispatcher."""

from __future__ import annotations

import pytest

from xive_machine.firmware.rtas import RTAS_TOKENS, RtasDispatcher
from xive_machine.intc.xics.ics import XICS_STATUS_MASKED_PENDING
from xive_machine.intc.xics.spapr import XICS_RTAS, SpaprXics
from xive_machine.memory.ram import GuestRam
from xive_machine.trace.events import ListSink

BLOCK = 0x1000
VTY = 0x1100


class Env:
    def __init__(self) -> None:
        self.level: dict[int, bool] = {}
        self.xive = False
        self.xics = SpaprXics(2, lambda c, lv: self.level.__setitem__(c, lv), xive_active=lambda: self.xive)
        for cpu in (0, 1):
            self.xics.connect_cpu(cpu)
        self.ram = GuestRam(1 << 16)
        self.rtas = RtasDispatcher(self.ram)
        self.rtas.install(self.xics.rtas_table(), self.xics)

    def call(self, name: str, args: list[int], nret: int) -> list[int]:
        ram = self.ram
        ram.fill(BLOCK, 0x100, 0xEE)  # poison: only the rets the service writes may change
        ram.write_u32(BLOCK, RTAS_TOKENS[name])
        ram.write_u32(BLOCK + 4, len(args))
        ram.write_u32(BLOCK + 8, nret)
        for i, a in enumerate(args):
            ram.write_u32(BLOCK + 12 + 4 * i, a)
        call = self.rtas.call(0, BLOCK)
        assert call is not None and call.hcall_rc == 0
        rets_at = BLOCK + 12 + 4 * len(args)
        return [ram.read_u32(rets_at + 4 * i) for i in range(nret)]


def s32(v: int) -> int:
    return v - (1 << 32) if v & 0x80000000 else v


@pytest.fixture
def env() -> Env:
    e = Env()
    e.xics.claim_irq(VTY, lsi=False)
    return e


def test_tokens_and_names():
    assert {s.name: t for t, s in XICS_RTAS.specs.items()} == {
        "ibm,set-xive": 0x200A, "ibm,get-xive": 0x200B, "ibm,int-off": 0x200C, "ibm,int-on": 0x200D}


def test_set_then_get(env):
    assert env.call("ibm,get-xive", [VTY], 3) == [0, 0, 0xFF]  # reset: server 0, masked
    assert env.call("ibm,set-xive", [VTY, 1, 5], 1) == [0]
    assert env.call("ibm,get-xive", [VTY], 3) == [0, 1, 5]
    assert env.xics.ics.saved_priority[0x100] == 5
    assert env.call("ibm,set-xive", [0x1FFF, 0, 0xFF], 1) == [0]  # last source, priority 0xff allowed


def test_int_off_on(env):
    env.call("ibm,set-xive", [VTY, 1, 5], 1)
    assert env.call("ibm,int-off", [VTY], 1) == [0]
    assert env.call("ibm,get-xive", [VTY], 3) == [0, 1, 0xFF]
    assert env.call("ibm,int-on", [VTY], 1) == [0]
    assert env.call("ibm,get-xive", [VTY], 3) == [0, 1, 5]
    # QEMU saves the current priority at int-off: a second int-off saves 0xff and int-on keeps it masked
    env.call("ibm,int-off", [VTY], 1)
    env.call("ibm,int-off", [VTY], 1)
    env.call("ibm,int-on", [VTY], 1)
    assert env.call("ibm,get-xive", [VTY], 3) == [0, 1, 0xFF]


def test_msi_fired_while_masked_is_delivered_on_unmask(env):
    env.xics.icps[1].set_cppr(0xFF)
    env.xics.set_irq(VTY, True)
    env.xics.set_irq(VTY, True)  # coalesced: one masked-pending flag
    assert env.xics.ics.status[0x100] & XICS_STATUS_MASKED_PENDING and not env.level
    env.call("ibm,set-xive", [VTY, 1, 5], 1)
    assert env.level == {1: True} and env.xics.icps[1].accept() == 0xFF001100
    env.xics.icps[1].eoi(0xFF001100)
    assert env.level == {1: False} and env.xics.icps[1].xirr == 0xFF000000


def test_int_on_delivers_masked_pending(env):
    env.xics.icps[0].set_cppr(0xFF)
    env.call("ibm,set-xive", [VTY, 0, 5], 1)
    env.call("ibm,int-off", [VTY], 1)
    env.xics.set_irq(VTY, True)
    assert not env.level
    env.call("ibm,int-on", [VTY], 1)
    assert env.level == {0: True}


@pytest.mark.parametrize("name,args,nret", [
    ("ibm,set-xive", [VTY, 0], 1), ("ibm,set-xive", [VTY, 0, 5], 2), ("ibm,set-xive", [VTY, 0, 5], 0),
    ("ibm,get-xive", [VTY], 1), ("ibm,get-xive", [VTY, 0], 3), ("ibm,int-off", [VTY], 2),
    ("ibm,int-off", [], 1), ("ibm,int-on", [VTY, 1], 1), ("ibm,int-on", [VTY], 3)])
def test_wrong_counts(env, name, args, nret):
    rets = env.call(name, args, nret)
    if nret:
        assert s32(rets[0]) == -3
        assert all(r == 0xEEEEEEEE for r in rets[1:])


@pytest.mark.parametrize("irq", [0, 2, 0xFFF, 0x2000, 0xFFFFFFFF])
@pytest.mark.parametrize("name,extra,nret", [("ibm,set-xive", [0, 5], 1), ("ibm,get-xive", [], 3),
                                             ("ibm,int-off", [], 1), ("ibm,int-on", [], 1)])
def test_invalid_irq(env, irq, name, extra, nret):
    sink = ListSink()
    env.xics.trace = sink
    assert s32(env.call(name, [irq] + extra, nret)[0]) == -3
    assert sink.events and sink.events[-1]["ev"] == "note"


@pytest.mark.parametrize("server,prio", [(2, 5), (0xFFFFFFFF, 5), (0x80000000, 5), (0, 0x100),
                                         (0, 0xFFFFFFFF)])
def test_set_xive_bad_server_or_priority(env, server, prio):
    assert s32(env.call("ibm,set-xive", [VTY, server, prio], 1)[0]) == -3
    assert env.call("ibm,get-xive", [VTY], 3) == [0, 0, 0xFF]  # unchanged


def test_unclaimed_source_is_still_valid(env):
    assert env.call("ibm,set-xive", [0x1234, 1, 7], 1) == [0]  # QEMU only checks the ICS range
    assert env.call("ibm,get-xive", [0x1234], 3) == [0, 1, 7]


@pytest.mark.parametrize("name,args,nret", [("ibm,set-xive", [VTY, 0, 5], 1), ("ibm,get-xive", [VTY], 3),
                                            ("ibm,int-off", [VTY], 1), ("ibm,int-on", [VTY], 1),
                                            ("ibm,set-xive", [VTY, 0], 1)])
def test_hardware_error_once_xive_is_negotiated(env, name, args, nret):
    env.xive = True
    assert s32(env.call(name, args, nret)[0]) == -1  # checked before the argument counts
    env.xive = False
    assert env.call("ibm,get-xive", [VTY], 3) == [0, 0, 0xFF]
