"""hypothesis: architecture-vector build/parse round trips and the QEMU-mode reader never raising."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from xive_machine.firmware.cas import CasError, CasPlatform, negotiate
from xive_machine.firmware.ovec import (
    ArchVector,
    PvrEntry,
    VectorError,
    build_arch_vector,
    decode_lines,
    ov_dt_property,
    ov_from_dt_property,
    parse_arch_vector,
)

u32 = st.integers(0, 0xFFFFFFFF)


@st.composite
def pvr_entries(draw):
    mask = draw(u32)
    return PvrEntry(mask, draw(u32) & mask)  # value inside the mask: not a terminator


@st.composite
def terminators(draw):
    mask = draw(st.integers(0, 0xFFFFFFFE))
    outside = draw(st.integers(1, 0xFFFFFFFF)) & ~mask & 0xFFFFFFFF
    if not outside:
        outside = (~mask & 0xFFFFFFFF) & -(~mask & 0xFFFFFFFF)  # lowest bit outside the mask
    return PvrEntry(mask, (draw(u32) & mask) | outside)


@st.composite
def arch_vectors(draw, trailing=True):
    return ArchVector(
        tuple(draw(st.lists(pvr_entries(), max_size=12))),
        draw(terminators()),
        tuple(draw(st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=8))),
        draw(st.binary(max_size=16)) if trailing else b"",
    )


@given(arch_vectors())
def test_parse_build_round_trip(av):
    data = build_arch_vector(av)
    assert parse_arch_vector(data) == av
    assert parse_arch_vector(data, strict=False) == ArchVector(av.pvrs, av.terminator, av.vectors, b"")
    assert decode_lines(av)  # decoding never fails on a well-formed vector


@given(arch_vectors(trailing=False), st.data())
def test_every_truncation_is_a_precise_error(av, data):
    raw = build_arch_vector(av)
    cut = data.draw(st.integers(0, len(raw) - 1))
    try:
        parse_arch_vector(raw[:cut])
    except VectorError as err:
        assert 0 <= err.offset <= cut
    else:
        raise AssertionError("a truncated vector parsed")
    relaxed = parse_arch_vector(raw[:cut], strict=False)
    assert relaxed.faults


@settings(max_examples=150)
@given(st.binary(max_size=200))
def test_qemu_mode_and_negotiation_never_raise_on_garbage(raw):
    parse_arch_vector(raw, strict=False)
    try:
        r = negotiate(raw, CasPlatform())
    except CasError:
        return  # the request QEMU exits on (MMU/XIVE "both", unavailable mode)
    assert r.arch_vec_5[0] == len(r.arch_vec_5) - 2


@given(st.binary(max_size=256))
def test_dt_property_round_trip(content):
    prop = ov_dt_property(content)
    assert prop[0] == len(prop) - 2
    back = ov_from_dt_property(prop)
    assert back.rstrip(b"\0") == content.rstrip(b"\0")
