"""The trace diff engine: alignment on event identity, field changes, --ignore, the CI report."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xive_machine.trace import diff as D
from xive_machine.trace.reader import from_events, make_header


def hc(name: str, *args: int, rc: int = 0, outs: tuple[int, ...] = (), cpu: int = 0) -> dict:
    return {"ev": "hcall", "cpu": cpu, "name": name, "opcode": 0, "args": list(args), "rc": rc, "outs": list(outs)}


BASE = [
    {"ev": "mode", "before": None, "after": "xics"},
    hc("H_SET_SPRG0", 1),
    hc("H_INT_GET_SOURCE_INFO", 0, 0x1000, rc=-2),
    {"ev": "mmio", "cpu": 0, "window": "esb", "op": "load", "offset": 0x800, "size": 8, "value": 1},
    hc("H_PUT_TERM_CHAR", 0, 3, 0x414243),
    hc("H_CEDE"),
    hc("H_PUT_TERM_CHAR", 0, 3, 0x444546),
]


def trace(events, **config):
    cfg = {"smp": 1, "memory": 256 << 20, "ic_mode": "dual", **config}
    return from_events(copy.deepcopy(events), make_header(cfg), source="t")


def test_equal_traces():
    d = D.diff(trace(BASE), trace(BASE))
    assert d.equal and d.first is None
    assert d.render().startswith("traces equal")


def test_tool_version_is_not_a_difference():
    b = trace(BASE)
    b.header["version"] = "9.9"
    assert D.diff(trace(BASE), b).equal


def test_changed_field():
    b = copy.deepcopy(BASE)
    b[2]["rc"] = 0
    b[2]["outs"] = [0, 0x6010, 0x6020, 16]
    d = D.diff(trace(BASE), trace(b))
    assert d.counts() == {"changed": 1}
    c = d.first
    assert (c.kind, c.a_index, c.b_index) == ("changed", 2, 2)
    assert [f for f, _, _ in c.fields] == ["rc", "outs"]
    text = d.render(context=1)
    assert "first divergence at A#2" in text and "rc: -2 H_FUNCTION (A) != 0 H_SUCCESS (B)" in text
    assert "1 x hcall H_INT_GET_SOURCE_INFO  (fields: outs, rc)" in text


def test_an_inserted_call_is_one_added_event_not_a_cascade():
    b = copy.deepcopy(BASE)
    b.insert(3, hc("H_INT_SYNC", 0, 0x1000))
    d = D.diff(trace(BASE), trace(b))
    assert d.counts() == {"added": 1}
    assert d.first.b_index == 3 and d.first.a_index is None


def test_removed_and_replaced():
    b = copy.deepcopy(BASE)
    del b[5]  # H_CEDE gone
    b[1] = hc("H_SET_MODE", 1)  # a different call in the same place
    d = D.diff(trace(BASE), trace(b))
    kinds = [(c.kind, c.event["name"]) for c in d.changes]
    assert kinds == [("removed", "H_SET_SPRG0"), ("added", "H_SET_MODE"), ("removed", "H_CEDE")]


def test_cpu_is_identity():
    b = copy.deepcopy(BASE)
    b[5]["cpu"] = 1
    d = D.diff(trace(BASE), trace(b))
    assert d.counts() == {"removed": 1, "added": 1}
    assert D.diff(trace(BASE), trace(b), ignore=["cpu"]).equal


@pytest.mark.parametrize("pattern", ["value", "mmio.value", "mmio.val*", "*.value"])
def test_ignore_patterns(pattern):
    b = copy.deepcopy(BASE)
    b[3]["value"] = 3
    assert not D.diff(trace(BASE), trace(b)).equal
    assert D.diff(trace(BASE), trace(b), ignore=[pattern]).equal


def test_ignore_is_per_kind():
    b = copy.deepcopy(BASE)
    b[3]["value"] = 3
    assert not D.diff(trace(BASE), trace(b), ignore=["hcall.value"]).equal


def test_header_config_difference():
    d = D.diff(trace(BASE), trace(BASE, smp=2))
    assert not d.equal and not d.changes
    assert "header config.smp: 1 (A) != 2 (B)" in d.render()
    assert D.diff(trace(BASE), trace(BASE, smp=2), ignore=["config.smp"]).equal


def test_context_and_table():
    long = [hc("H_SET_SPRG0", i) for i in range(40)]
    b = copy.deepcopy(long)
    b[20]["rc"] = -4
    text = D.diff(trace(long), trace(b)).render(context=2)
    table = text.split("summary:")[0]
    rows = [r for r in table.splitlines() if r.startswith("  ") and "H_SET_SPRG0" in r]
    assert [r.split()[0] for r in rows] == ["18", "19", "~", "21", "22"]


def test_many_changes_are_capped_in_the_table():
    long = [hc("H_SET_SPRG0", i) for i in range(100)]
    b = [dict(e, rc=-4) for e in copy.deepcopy(long)]
    text = D.diff(trace(long), trace(b)).render(context=1, max_changes=5)
    assert "... 95 more difference(s)" in text
    assert "summary: 100 changed, 0 removed, 0 added" in text


def test_alignment_of_large_traces_is_fast():
    import time

    from xive_machine.trace.reader import Trace

    big = [dict(hc("H_SET_SPRG0", i % 7), seq=i) for i in range(50_000)]
    b = big[:25_000] + big[25_001:40_000] + [hc("H_CEDE")] + big[40_000:]
    head = make_header({"smp": 1, "memory": 256 << 20, "ic_mode": "dual"})
    t0 = time.perf_counter()
    d = D.diff(Trace(head, big), Trace(head, b))
    assert d.counts() == {"removed": 1, "added": 1}
    assert time.perf_counter() - t0 < 10


def test_changed_arguments_in_a_loop_pair_up():
    loop = [hc("H_PUT_TERM_CHAR", 0, 8, i) for i in range(30)]
    b = copy.deepcopy(loop)
    for e in b[10:13]:
        e["args"][2] += 1000
    d = D.diff(trace(loop), trace(b))
    assert d.counts() == {"changed": 3}
    assert [c.a_index for c in d.changes] == [10, 11, 12]


def test_completely_different_traces_stay_fast():
    a = [hc("H_SET_SPRG0", i) for i in range(3000)]
    b = [hc("H_CEDE", cpu=1) for _ in range(3000)]
    d = D.diff(trace(a), trace(b))
    assert d.counts() == {"removed": 3000, "added": 3000}


def test_myers_is_a_shortest_script():
    import random

    rng = random.Random(7)
    for _ in range(200):
        a = [rng.randrange(3) for _ in range(rng.randrange(12))]
        b = [rng.randrange(3) for _ in range(rng.randrange(12))]
        steps = D._myers(a, b, 50)
        assert [a[i] for t, i, _ in steps if t != "insert"] == a
        assert [b[j] for t, _, j in steps if t != "delete"] == b
        assert all(a[i] == b[j] for t, i, j in steps if t == "equal")
        lcs = _lcs(a, b)
        assert sum(t == "equal" for t, _, _ in steps) == lcs


def _lcs(a, b):
    t = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a)):
        for j in range(len(b)):
            t[i + 1][j + 1] = t[i][j] + 1 if a[i] == b[j] else max(t[i][j + 1], t[i + 1][j])
    return t[-1][-1]


def test_ignore_by_event_name():
    b = copy.deepcopy(BASE)
    b[4]["args"][1] = 4  # an H_PUT_TERM_CHAR
    b[1]["args"][0] = 2  # H_SET_SPRG0
    assert D.diff(trace(BASE), trace(b), ignore=["hcall[H_PUT_*].args"]).counts() == {"changed": 1}
    assert D.diff(trace(BASE), trace(b), ignore=["hcall[H_*].args"]).equal

EVENTS = st.lists(st.builds(lambda n, a, rc: hc(n, a, rc=rc), st.sampled_from(["H_A", "H_B", "H_C"]),
                            st.integers(0, 2), st.sampled_from([0, -4])), max_size=25)


@settings(max_examples=150, deadline=None)
@given(EVENTS, EVENTS)
def test_every_event_is_accounted_for_once_in_order(a, b):
    d = D.diff(trace(a), trace(b))
    pairs = [(c.a_index, c.b_index) for c in d.changes if c.kind == "changed"]
    for tag, i1, i2, j1, j2 in d.opcodes:
        if tag == "equal":
            pairs += list(zip(range(i1, i2), range(j1, j2), strict=True))
    removed = [c.a_index for c in d.changes if c.kind == "removed"]
    added = [c.b_index for c in d.changes if c.kind == "added"]
    pairs = sorted(set(pairs))
    assert sorted([i for i, _ in pairs] + removed) == list(range(len(a)))
    assert sorted([j for _, j in pairs] + added) == list(range(len(b)))
    assert [j for _, j in pairs] == sorted(j for _, j in pairs)  # alignment keeps the order
    assert all(D.key(d.a_events[i]) == D.key(d.b_events[j]) for i, j in pairs)
    assert d.equal == (a == b)
