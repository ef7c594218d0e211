"""Property tests: FDT build -> blob -> parse, libfdt's setprop ordering, dtc value text, VOF claims."""

from __future__ import annotations

import struct

import fdt
from hypothesis import given, settings
from hypothesis import strategies as st

from xive_machine.firmware import devtree as dt
from xive_machine.firmware.vof import U64, VofState

NAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789,#-_+.", min_size=1, max_size=12)
VALUE = st.binary(max_size=40)


@st.composite
def trees(draw, depth: int = 0) -> fdt.Node:
    names = draw(st.lists(NAME, unique=True, max_size=6))
    props = [dt.raw(n, draw(VALUE)) for n in names]
    kids = []
    if depth < 3:
        for kid_name in draw(st.lists(NAME, unique=True, max_size=3)):
            kid = draw(trees(depth + 1))
            kid.set_name(kid_name)
            kids.append(kid)
    return dt.node("n", props, kids)


def flat(t: fdt.FDT) -> list[tuple[str, list[tuple[str, bytes]]]]:
    return [(dt.node_path(n), [(p.name, dt.prop_bytes(p)) for p in n.props]) for n in dt.iter_nodes(t)]


@settings(max_examples=60, deadline=None)
@given(trees(), st.lists(st.tuples(st.integers(0, U64), st.integers(1, U64)), max_size=3))  # (0, 0) ends the map
def test_blob_round_trip(root: fdt.Node, rsv: list[tuple[int, int]]) -> None:
    t = fdt.FDT(entries=[{"address": a, "size": s} for a, s in rsv])
    for p in root.props:
        t.root.append(p)
    for k in root.nodes:
        t.root.append(k)
    blob = dt.to_dtb(t)
    assert struct.unpack(">I", blob[4:8])[0] == len(blob)
    back = dt.from_dtb(blob)
    assert flat(back) == flat(t)
    assert [(e["address"], e["size"]) for e in back.entries] == rsv


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d", "phandle"]), VALUE), max_size=20))
def test_set_prop_matches_libfdt_rule(ops: list[tuple[str, bytes]]) -> None:
    n = dt.node("x", [])
    model: list[list] = []
    for name, value in ops:
        dt.set_prop(n, name, value)
        for entry in model:
            if entry[0] == name:
                entry[1] = value
                break
        else:
            model.insert(0, [name, value])
    assert [(p.name, dt.prop_bytes(p)) for p in n.props] == [tuple(e) for e in model]


def _parse_value(text: str) -> bytes:
    if text.startswith("<"):
        return b"".join(struct.pack(">I", int(w, 16)) for w in text[1:-1].split())
    if text.startswith("["):
        return bytes(int(b, 16) for b in text[1:-1].split())
    esc = {"0": 0, "a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, "\\": 92, '"': 34}
    out, body, i = bytearray(), text[1:-1], 0
    while i < len(body):
        if body[i] == "\\":
            out.append(esc[body[i + 1]])
            i += 2
        else:
            out.append(ord(body[i]))
            i += 1
    return bytes(out) + b"\0"


@given(st.one_of(VALUE, st.lists(st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=126),
                                             min_size=1, max_size=8), min_size=1, max_size=4)
                 .map(lambda ss: b"".join(s.encode() + b"\0" for s in ss))))
def test_dtc_value_text_reads_back(value: bytes) -> None:
    text = dt.format_value(value)
    assert (_parse_value(text) if value else b"") == value


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 0x3FFF), st.integers(0, 0x800),
                          st.sampled_from([0, 0, 1, 0x10, 0x100, 0x1000])), max_size=25))
def test_claims_never_overlap_and_available_tiles_memory(ops) -> None:
    mem_end = 0x8000
    s = VofState(top_addr=mem_end)
    assert s.claim(0, 0x100, 0) == 0
    for is_release, a, size, align in ops:
        if is_release and s.claims[1:]:
            start, n = s.claims[1 + a % len(s.claims[1:])]
            assert s.release(start, n)
            continue
        got = s.claim(a, size, align)
        if got != U64:
            assert got + size <= s.claimed_base
            if align:
                assert got % align == 0
            else:
                assert got == a
    spans = sorted(s.claims)
    for (s0, n0), (s1, _) in zip(spans, spans[1:], strict=False):
        assert s0 + n0 <= s1
    inside = all(a + n <= mem_end for a, n in spans)
    avail = s.available(mem_end, 2, 2)
    words = struct.unpack(f">{len(avail) // 8}Q", avail)
    pairs = list(zip(words[::2], words[1::2], strict=True))
    assert len(pairs) == len(spans)
    if inside:
        covered = sorted(spans + [p for p in pairs if p[1]])
        pos = 0
        for a, n in covered:
            assert a == pos
            pos = a + n
        assert pos == mem_end
