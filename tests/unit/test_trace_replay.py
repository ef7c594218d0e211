"""Replay: a recorded session re-issued on a fresh machine gives the same results; a changed result, a
missing window or an unreplayable CAS is reported, never raised."""

from __future__ import annotations

import copy

import pytest

from xive_machine.errors import ConfigError
from xive_machine.hypervisor import Hypervisor, build_cas_vector
from xive_machine.intc.xive.regs import XIVE_ESB_GET, XIVE_ESB_SET_PQ_00
from xive_machine.trace import replay as R
from xive_machine.trace.reader import Trace

LISN = 0x1000


@pytest.fixture(scope="module")
def recorded() -> Trace:
    with Hypervisor(ic_mode="dual", smp=2) as h:
        h.rtas("query-cpu-stopped-state", 1, nret=2)
        h.cas("xive")
        h.hcall("H_INT_GET_SOURCE_INFO", 0, LISN)
        h.hcall("H_INT_SET_SOURCE_CONFIG", 0, LISN, 1, 5, 0x1000)
        h.hcall("H_INT_SET_SOURCE_CONFIG", 0, LISN, 1, 7, 0)  # H_P4
        h.esb_load(LISN, XIVE_ESB_SET_PQ_00)
        h.esb_store(LISN, 0, 0, page="trigger")
        h.esb_load(LISN, XIVE_ESB_GET)
        h.tima_load(1, (2 << 16) + 0x10, 8)
        h.hcall("H_INT_GET_SOURCE_CONFIG", 0, LISN, cpu=1)
        return h.trace()


def edited(t: Trace, index: int, **fields) -> Trace:
    events = copy.deepcopy(t.events)
    events[index].update(fields)
    return Trace(copy.deepcopy(t.header), events, "edited")


def find(t: Trace, pred) -> int:
    return next(i for i, e in enumerate(t.events) if pred(e))


def test_a_recorded_session_replays_identically(recorded):
    report = R.replay(recorded)
    c = report.counts()
    assert report.ok and c["differs"] == 0
    assert c["ok"] == 10  # 1 cas (re-negotiated from the recorded vector bytes), 1 rtas, 4 hcalls, 4 mmio
    assert [o.message for o in report.outcomes if o.status == "note"] == []


def test_changed_rc_is_reported(recorded):
    i = find(recorded, lambda e: e["ev"] == "hcall" and e["rc"] == -57)
    report = R.replay(edited(recorded, i, rc=0))
    assert [(o.index, o.message) for o in report.differences] == [(i, "rc 0 H_SUCCESS recorded, -57 H_P4 now")]
    assert "replay differs: rc 0 H_SUCCESS recorded" in report.render()


def test_changed_outputs_and_mmio_values_are_reported(recorded):
    i = find(recorded, lambda e: e["ev"] == "hcall" and e["name"] == "H_INT_GET_SOURCE_CONFIG")
    j = find(recorded, lambda e: e["ev"] == "mmio" and e["offset"] & 0xFFF == XIVE_ESB_GET)
    t = edited(edited(recorded, i, outs=[0, 0, 0, 0]), j, value=3)
    msgs = [o.message for o in R.replay(t).differences]
    assert msgs[0].startswith("load 3 recorded, 2 now")
    assert msgs[1].startswith("outs [0, 0, 0, 0] recorded")


def test_rtas_rets_compared(recorded):
    i = find(recorded, lambda e: e["ev"] == "rtas")
    report = R.replay(edited(recorded, i, rets=[0, 2]))
    assert report.differences[0].message == "rets [0, 2] recorded, [0, 0] now"


def test_cas_with_its_vector_is_replayed_exactly(recorded):
    i = find(recorded, lambda e: e["ev"] == "cas")
    report = R.replay(edited(recorded, i, vector=build_cas_vector("xive").hex()))
    assert report.ok and not [o for o in report.outcomes if o.status == "note"]
    report = R.replay(edited(recorded, i, vector=build_cas_vector("xics").hex()))
    msgs = [o.message for o in report.differences]
    assert msgs[0].startswith("intc xive recorded, xics now")
    assert any("no esb window now (active controller: xics)" in m for m in msgs)


def test_failed_cas_without_vector_is_skipped_not_fatal(recorded):
    i = find(recorded, lambda e: e["ev"] == "cas")
    stripped = edited(recorded, i, rc=-2)
    del stripped.events[i]["vector"]  # as recorded by a machine that did not keep the vector bytes
    report = R.replay(stripped)
    skipped = [o for o in report.outcomes if o.status == "skipped"]
    assert len(skipped) == 1 and "without the vector bytes" in skipped[0].message
    assert report.differences  # the XIVE calls after it now fail: reported, not raised


def test_header_from_another_version(recorded):
    t = copy.deepcopy(recorded)
    t.header["config"]["turbo"] = True
    with pytest.raises(ConfigError, match="turbo"):
        R.replay(t)
    t.header["config"] = {"smp": 0, "memory": 256 << 20, "ic_mode": "xive"}
    with pytest.raises(ConfigError, match="smp"):
        R.replay(t)


def test_events_from_another_configuration(recorded):
    i = find(recorded, lambda e: e["ev"] == "hcall")
    with pytest.raises(ConfigError, match="vCPU 5 but the header's config has smp=2"):
        R.replay(edited(recorded, i, cpu=5))
