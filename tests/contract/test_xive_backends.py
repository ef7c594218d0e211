"""One suite, two backends: the emulated SpaprXive and the KVM XIVE-native device driven as QEMU does must give
the guest the same hcall results, ESB/TIMA values, event-queue contents in RAM and interrupt lines."""

from __future__ import annotations

import pytest
from xive_rig import BACKENDS, OS, QPAGE, U64, Rig

from xive_machine.hcalls.codes import H, Op

M1 = U64
PRIO = 6


def boot_cpu(g: Rig, cpu: int, lisn: int, eisn: int) -> list:
    """What Linux's xive_spapr does for one CPU and its IPI (xive.md 8.1)."""
    qpage = QPAGE + cpu * 0x10000
    t = [
        g.hc(Op.H_INT_GET_QUEUE_INFO, 0, cpu, PRIO),
        g.hc(Op.H_INT_SET_QUEUE_CONFIG, 1, cpu, PRIO, qpage, 16),
        g.hc(Op.H_INT_GET_QUEUE_CONFIG, 0, cpu, PRIO),
    ]
    g.cppr(cpu, 0xFF)
    t += [
        g.hc(Op.H_INT_GET_SOURCE_INFO, 0, lisn),
        g.hc(Op.H_INT_SET_SOURCE_CONFIG, 2, lisn, cpu, PRIO, eisn),
        g.hc(Op.H_INT_GET_SOURCE_CONFIG, 0, lisn),
        g.esb_load(lisn, 0xC00, cpu),
    ]
    return t


def scenario_ipi(g: Rig) -> list:
    t = boot_cpu(g, 0, 0, 0x1234)
    assert t[1] == (H.SUCCESS,) and t[4] == (H.SUCCESS,)
    assert t[5] == (0, 0, PRIO, 0x1234) and t[6] == 1  # old PQ 01
    g.esb_trigger(0)
    t += [g.lines[:], g.x.source(0).pq, g.ram.read_u32(QPAGE)]
    assert t[-3] == [(0, True)] and t[-2] == 2 and t[-1] == 0x80001234
    t.append(g.ack(0))
    assert t[-1] == 0x8006 and g.level[0] is False
    tc = g.x.thread_context(0)
    t.append((tc.CPPR, tc.IPB, tc.PIPR, tc.NSR))
    t.append(g.esb_load(0, 0x000))  # EOI
    assert t[-1] == 0 and g.x.source(0).pq == 0
    g.cppr(0, 0xFF)
    for _ in range(3):  # coalescing: P then Q, one entry until the EOI
        g.esb_trigger(0)
    t += [g.x.source(0).pq, g.x.eq(0, PRIO).index, g.ram.read_u32(QPAGE + 4), g.ram.read_u32(QPAGE + 8)]
    assert t[-4:] == [3, 2, 0x80001234, 0]
    t.append(g.ack(0))
    t.append(g.esb_load(0, 0x000))  # EOI of 11: forwards the latched event
    assert t[-1] == 1 and g.ram.read_u32(QPAGE + 8) == 0x80001234
    t.append(g.hc(Op.H_INT_GET_QUEUE_CONFIG, 1, 0, PRIO))  # DEBUG: generation and index
    assert t[-1] == (0, 1 | (1 << 62), QPAGE, 16, 3)
    eqv = g.x.eq(0, PRIO)
    t.append((eqv.qpage, eqv.qshift, eqv.index, eqv.toggle, eqv.last(3)))
    assert t[-1] == (QPAGE, 16, 3, 1, [0x1234] * 3)
    return t


def scenario_smp_and_masking(g: Rig) -> list:
    t = boot_cpu(g, 0, 0, 0x100) + boot_cpu(g, 1, 1, 0x101)
    g.esb_trigger(1, cpu=0)  # IPI to cpu 1
    t += [g.lines[:], g.ram.read_u32(QPAGE + 0x10000), g.ack(1), g.ack(0)]
    assert t[-4] == [(1, True)] and t[-3] == 0x80000101 and t[-2] == 0x8006 and t[-1] == 0x00FF
    t.append(g.esb_load(1, 0xD00))  # mask (PQ 01): triggers are dropped
    g.esb_trigger(1)
    t += [g.x.source(1).pq, g.x.eq(1, PRIO).index]
    assert t[-2:] == [1, 1]
    t.append(g.esb_load(1, 0xC00))  # unmask
    g.x.set_irq(1, True)  # the machine's MSI path
    t += [g.x.eq(1, PRIO).index, g.x.trigger(1), g.x.source(1).pq]
    assert t[-3:] == [2, False, 3]
    # retarget IPI 0 to cpu 1: later events go to cpu 1's queue
    t.append(g.hc(Op.H_INT_SET_SOURCE_CONFIG, 2, 0, 1, PRIO, 0x200))
    t.append(g.esb_load(0, 0x000))
    g.esb_trigger(0)
    t += [g.ram.read_u32(QPAGE + 0x10000 + 8), g.x.eq(0, PRIO).index]
    assert t[-2:] == [0x80000200, 0]
    # priority 0xFF resets the EAS: nothing is routed any more
    t.append(g.hc(Op.H_INT_SET_SOURCE_CONFIG, 0, 0, 1, 0xFF, 0))
    g.esb_load(0, 0xC00)
    g.esb_trigger(0)
    t += [g.x.eq(1, PRIO).index, g.hc(Op.H_INT_GET_SOURCE_CONFIG, 0, 0)]
    assert t[-2] == 3 and t[-1][2] == 0xFF
    return t


def scenario_lsi_through_h_int_esb(g: Rig) -> list:
    g.x.claim_irq(0x1200, True)
    t = boot_cpu(g, 0, 0, 0x10)
    t.append(g.hc(Op.H_INT_GET_SOURCE_INFO, 0, 0x1200))
    assert t[-1] == (0, 0xC, M1, M1, 16)  # LSI: ESB management through H_INT_ESB
    t.append(g.hc(Op.H_INT_SET_SOURCE_CONFIG, 2, 0x1200, 0, PRIO, 0x1200))
    t.append(g.hc(Op.H_INT_ESB, 0, 0x1200, 0xC00, 0))  # unmask
    g.x.set_irq(0x1200, True)
    t += [g.x.eq(0, PRIO).index, g.x.source(0x1200).pq, g.ack(0)]
    assert t[-3:] == [1, 2, 0x8006]
    t.append(g.hc(Op.H_INT_ESB, 0, 0x1200, 0x000, 0))  # EOI, line still high: fires again
    t += [g.x.eq(0, PRIO).index, g.ram.read_u32(QPAGE + 4)]
    assert t[-3] == (0, 1) and t[-2:] == [2, 0x80001200]
    g.x.set_irq(0x1200, False)
    t.append(g.hc(Op.H_INT_ESB, 0, 0x1200, 0x000, 0))  # EOI, line low: done
    t += [g.x.eq(0, PRIO).index, g.x.source(0x1200).pq, g.x.source(0x1200).asserted]
    assert t[-4] == (0, 0) and t[-3:] == [2, 0, False]
    t.append(g.hc(Op.H_INT_ESB, 1, 0x1200, 0xD00, 0))  # store form: returns -1
    t.append(g.hc(Op.H_INT_ESB, 0, 0x1200, 0x800, 0))
    assert t[-2] == (0, M1) and t[-1] == (0, 1)  # the store set PQ 01
    t.append(g.hc(Op.H_INT_SYNC, 0, 0x1200))
    assert t[-1] == (0,)
    return t


def scenario_reset_and_errors(g: Rig) -> list:
    t = boot_cpu(g, 0, 0, 0x1)
    t += [
        g.hc(Op.H_INT_SET_QUEUE_CONFIG, 1, 0, 7, QPAGE, 16),  # reserved priority
        g.hc(Op.H_INT_SET_QUEUE_CONFIG, 1, 5, PRIO, QPAGE, 16),  # unknown target
        g.hc(Op.H_INT_SET_QUEUE_CONFIG, 1, 0, PRIO, QPAGE + 4, 16),  # misaligned
        g.hc(Op.H_INT_SET_QUEUE_CONFIG, 1, 0, PRIO, QPAGE, 17),  # bad size
        g.hc(Op.H_INT_SET_SOURCE_CONFIG, 2, 0x1000, 0, PRIO, 0),  # unclaimed
        g.hc(Op.H_INT_SET_SOURCE_CONFIG, 2, 0, 0, 7, 0),
        g.hc(Op.H_INT_SYNC, 1, 0),
        g.hc(Op.H_INT_ESB, 0, 0, 0x20001, 0),
        g.hc(Op.H_INT_RESET, 1),
    ]
    assert t[-9:] == [(H.P3,), (H.P2,), (H.P4,), (H.P5,), (H.P2,), (H.P4,), (H.PARAMETER,), (H.P3,), (H.PARAMETER,)]
    t.append(g.hc(Op.H_INT_RESET, 0))
    t += [
        g.hc(Op.H_INT_GET_QUEUE_CONFIG, 0, 0, PRIO),
        g.x.source(0).pq,
        g.x.source(1).pq,
        g.hc(Op.H_INT_GET_SOURCE_CONFIG, 0, 0)[2],
    ]
    assert t[-5] == (0,) and t[-4] == (0, 0, 0, 0, 0) and t[-3:] == [1, 1, 0xFF]
    g.esb_load(0, 0xC00)
    g.esb_trigger(0)
    t.append((g.lines[:], g.ram.read_u32(QPAGE + 4)))
    assert t[-1][1] == 0  # nothing enqueued after the reset
    t.append(g.hc(Op.H_INT_SET_QUEUE_CONFIG, 1, 0, PRIO, QPAGE, 16))
    t.append(g.hc(Op.H_INT_SET_QUEUE_CONFIG, 0, 0, PRIO, 0, 0))  # queue off
    t.append(g.hc(Op.H_INT_GET_QUEUE_CONFIG, 0, 0, PRIO))
    assert t[-2] == (0,) and t[-1] == (0, 0, 0, 0, 0)
    return t


SCENARIOS = [scenario_ipi, scenario_smp_and_masking, scenario_lsi_through_h_int_esb, scenario_reset_and_errors]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda f: f.__name__)
def test_scenario_on_each_backend(rig, scenario):
    scenario(rig)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda f: f.__name__)
def test_backends_give_identical_transcripts(make_rig, scenario):
    runs = {b: make_rig(b) for b in BACKENDS}
    transcripts = {b: scenario(g) for b, g in runs.items()}
    assert transcripts["emulated"] == transcripts["kvm"]
    assert runs["emulated"].ram.read(QPAGE, 0x20000) == runs["kvm"].ram.read(QPAGE, 0x20000)
    assert runs["emulated"].lines == runs["kvm"].lines
    kvm = runs["kvm"].x
    assert kvm.esb_map.faults > 0 and kvm.tima_map.faults == 1  # served by the device's pages


@pytest.mark.parametrize(("src", "dst"), [(a, b) for a in BACKENDS for b in BACKENDS])
def test_state_moves_between_backends(make_rig, src, dst):
    a = make_rig(src)
    boot_cpu(a, 0, 0, 0x42)
    boot_cpu(a, 1, 1, 0x43)
    for _ in range(5):
        a.esb_trigger(1)
        a.ack(1)
        a.esb_load(1, 0x000)
        a.cppr(1, 0xFF)
    a.esb_trigger(0)  # pending on cpu 0, not acknowledged, PQ 10
    a.esb_trigger(0)  # PQ 11
    state = a.x.get_state()
    b = make_rig(dst, ram=a.ram)
    b.x.set_state(state)
    assert b.x.source(0).pq == 3 and b.x.source(1).pq == 0
    assert b.x.eq(1, PRIO).index == 5 and b.x.eq(0, PRIO).index == 1
    tc = b.x.thread_context(0)
    assert (tc.CPPR, tc.IPB, tc.PIPR) == (0xFF, 0x02, PRIO)
    assert b.ack(0) == 0x8006
    assert b.esb_load(0, 0x000) == 1  # the latched event fires after the move
    assert b.ram.read_u32(QPAGE + 4) == 0x80000042
    b.esb_trigger(1)
    assert b.ram.read_u32(QPAGE + 0x10000 + 5 * 4) == 0x80000043


def test_known_difference_initial_lsmfb(make_rig):
    """The one guest-visible difference: KVM's initial OS ring has LSMFB/AGE 0 (connect_vcpu sets only ACK#),
    QEMU TCG's reset puts 0xFF (seen by a raw 8-byte TIMA read of QW1 word0). `tcg_ring_reset` aligns them."""
    emu, kvm = make_rig("emulated"), make_rig("kvm")
    assert emu.tima.read(0, OS + 0x10, 8) == 0x000000FFFF0000FF
    assert kvm.tima.read(0, OS + 0x10, 8) == 0x00000000FF0000FF
    aligned = make_rig("kvm", tcg_ring_reset=True)
    assert aligned.tima.read(0, OS + 0x10, 8) == 0x000000FFFF0000FF
    aligned.cppr(0, 0xFF)
    assert aligned.tima.read(0, OS + 0x10, 8) == 0x00FF00FFFF0000FF
    assert aligned.lines == []


def test_windows_are_the_same(make_rig):
    emu, kvm = make_rig("emulated"), make_rig("kvm")
    assert [(w.name, w.base, w.size) for w in emu.x.mmio_windows()] == [
        (w.name, w.base, w.size) for w in kvm.x.mmio_windows()
    ]
    assert emu.x.dt_node().to_dts() == kvm.x.dt_node().to_dts()
