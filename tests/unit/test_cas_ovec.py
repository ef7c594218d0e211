"""Architecture-vector parsing, building, decoding and malformed input (firmware/ovec.py)."""

from __future__ import annotations

import struct

import pytest

from xive_machine.firmware.ovec import (
    LINUX_TERMINATOR,
    OV1_PPC_3_00,
    OV5_DRCONF_MEMORY,
    OV5_HPT_RESIZE,
    OV5_MMU_RADIX_300,
    OV5_MMU_RADIX_GTSE,
    OV5_XIVE_EXPLOIT,
    PVR_LIST_MAX,
    ArchVector,
    PvrEntry,
    PvrListUnterminated,
    VectorLengthPastEnd,
    VectorTruncated,
    build_arch_vector,
    decode_bytes,
    decode_lines,
    ov_dt_property,
    ov_from_dt_property,
    ov_intersect,
    ov_test,
    parse_arch_vector,
)


def pairs(*ps: tuple[int, int]) -> bytes:
    return b"".join(struct.pack(">II", m, v) for m, v in ps)


# spapr-cas-rtas-xics.md section 7: the test guest's vector, byte for byte
OV5_SEC7 = (bytes.fromhex("00f30000c0050000") + (0x800).to_bytes(4, "big") + bytes(4)
            + bytes.fromhex("e0000000") + bytes.fromhex("01c040400040"))
SEC7 = (pairs((0xFFFF0000, 0x004E0000), (0xFFFFFFFF, 0x0F000005), (0xFFFFFFFF, 0x0F000004),
              (0xFFFFFFFE, 0x0F000001))
        + bytes([5])
        + bytes([2, 0x00, 0xFF, 0x80])
        + bytes([0x20, 0x20, 0, 0]) + b"\xff\xff\xff\xff" * 5 + (0x200).to_bytes(4, "big") + b"\xff" * 4
        + bytes([0x00, 0x30])
        + bytes([1, 0x00, 0xE0])
        + bytes([1, 0x00, 0x01])
        + bytes([25]) + OV5_SEC7
        + bytes([2, 0x00, 0x00, 0x02]))


def test_section7_vector_parses_as_documented():
    assert len(OV5_SEC7) == 26
    av = parse_arch_vector(SEC7)
    assert av.pvrs == (PvrEntry(0xFFFF0000, 0x004E0000), PvrEntry(0xFFFFFFFF, 0x0F000005),
                       PvrEntry(0xFFFFFFFF, 0x0F000004))
    assert av.terminator == LINUX_TERMINATOR
    assert [len(v) for v in av.vectors] == [3, 33, 2, 2, 26, 3]
    assert av.vector(1) == b"\x00\xff\x80"
    assert av.vector(5) == OV5_SEC7
    assert av.vector(7) is None and av.vector(0) is None
    assert av.trailing == b""
    assert build_arch_vector(av) == SEC7


def test_decode_names_every_documented_field():
    text = "\n".join(decode_lines(parse_arch_vector(SEC7)))
    for needle in ("POWER9 raw", "logical 3.00 (power9)", "logical 2.07 (power8)", "logical 2.04 and earlier",
                   "6 option vectors (count byte 5)", "OV1_PPC_2_00", "OV1_PPC_3_00", "OV2_REAL_MODE",
                   "min_rma = 0x200", "max_pft_size = 0x30", "OV3_FP OV3_VMX OV3_DFP", "OV4_MIN_ENT_CAP",
                   "OV5_LPAR OV5_SPLPAR OV5_DRCONF_MEMORY OV5_LARGE_PAGES OV5_DONATE_DEDICATE_CPU OV5_MSI",
                   "OV5_FORM1_AFFINITY OV5_PRRN", "OV5_HP_EVT OV5_HPT_RESIZE", "max_cpus = 2048",
                   "OV5_PFO_HW_RNG", "OV5_SUB_PROCESSORS", "OV5_DRMEM_V2 OV5_DRC_INFO",
                   "byte 23 = 0x40: interrupt mode = XIVE exploitation (OV5_XIVE_EXPLOIT)",
                   "byte 24 = 0x40: MMU = radix (OV5_MMU_RADIX_300)", "byte 26 = 0x40: OV5_MMU_RADIX_GTSE",
                   "os_name = 0x02 (Linux)"):
        assert needle in text, needle


def test_decode_unknown_bits_and_mmu_fields():
    ov5 = bytearray(26)
    ov5[2] = 0x81  # byte 3: nothing named there
    ov5[23] = 0xE0  # byte 24: dynamic + nest MMU
    ov5[22] = 0x80  # byte 23: both
    av = ArchVector((), LINUX_TERMINATOR, (b"\0", b"\0", b"\0", b"\0", bytes(ov5)))
    text = "\n".join(decode_lines(av))
    assert "byte 3 = 0x81: unknown bits 0x81" in text
    assert "MMU = hash or radix, dynamic switching (OV5_MMU_DYNAMIC), OV5_NMMU" in text
    assert "interrupt mode = XICS or XIVE (OV5_XIVE_BOTH, platform side only)" in text


def test_linux6_uncounted_ov7_is_trailing_and_decoded():
    os_id = b"Linux version 6.9 test".ljust(256, b"\0")
    data = SEC7 + bytes([255]) + os_id
    av = parse_arch_vector(data)
    assert len(av.vectors) == 6 and av.trailing == bytes([255]) + os_id
    assert build_arch_vector(av) == data
    assert "os id = 'Linux version 6.9 test'" in "\n".join(decode_lines(av))


def test_ov_bit_numbers_match_qemu_ov_bit():
    assert OV1_PPC_3_00.qemu_bit == 16  # OV_BIT(3, 0)
    assert OV5_DRCONF_MEMORY.qemu_bit == 10  # OV_BIT(2, 2)
    assert OV5_HPT_RESIZE.qemu_bit == 47  # OV_BIT(6, 7)
    assert OV5_XIVE_EXPLOIT.qemu_bit == 177  # OV_BIT(23, 1)
    assert OV5_MMU_RADIX_300.qemu_bit == 185  # OV_BIT(24, 1)
    assert OV5_MMU_RADIX_GTSE.qemu_bit == 201  # OV_BIT(26, 1)


def test_dt_property_encoding_as_spapr_dt_ovec():
    assert ov_dt_property(b"") == b"\x00\x00"  # before CAS: length byte 0 + one zero byte
    assert ov_dt_property(bytes(30)) == b"\x00\x00"
    v = bytearray(26)
    v[22] = 0x40
    assert ov_dt_property(bytes(v)) == bytes([0x16]) + bytes(22) + b"\x40"  # postcas_vof_dual.dts
    assert ov_from_dt_property(ov_dt_property(bytes(v))) == bytes(v[:23])
    assert ov_intersect(b"\xff\x0f\x00", b"\x0f\xff") == b"\x0f\x0f"
    assert ov_intersect(b"\xf0", b"\x0f") == b""
    assert ov_test(b"\x00" * 22 + b"\x40", OV5_XIVE_EXPLOIT)
    assert not ov_test(b"\x00" * 5, OV5_XIVE_EXPLOIT)


# --- malformed vectors: precise strict errors, QEMU's zero-fill otherwise -----------------------------------


def test_truncated_in_pvr_list():
    data = SEC7[:13]
    with pytest.raises(VectorTruncated) as e:
        parse_arch_vector(data)
    assert e.value.offset == 8
    assert "PVR pair 1 needs bytes 8..15 but the vector has 13 bytes" in str(e.value)
    av = parse_arch_vector(data, strict=False)
    assert av.faults and "PVR pair 1" in av.faults[0]


def test_truncated_before_count_byte():
    data = SEC7[:32]
    with pytest.raises(VectorTruncated, match="option-vector count byte needs bytes 32..32"):
        parse_arch_vector(data)


def test_length_byte_past_end():
    data = SEC7[:-2]  # OV6 says 3 bytes, 1 is left
    with pytest.raises(VectorLengthPastEnd) as e:
        parse_arch_vector(data)
    assert "OV6 (3 bytes) runs to byte" in str(e.value) and e.value.offset == len(SEC7) - 3
    av = parse_arch_vector(data, strict=False)
    assert av.vector(6) == b"\x00\x00\x00"  # zero-filled as QEMU reads beyond RAM


def test_no_terminator_within_512_pairs():
    body = pairs(*[(0xFFFFFFFF, 0x0F000005)] * PVR_LIST_MAX)
    tail = bytes([0, 0, 0xAA])  # one vector of one byte
    with pytest.raises(PvrListUnterminated) as e:
        parse_arch_vector(body + tail)
    assert e.value.offset == 4096 and "no PVR terminator within 512 pairs" in str(e.value)
    av = parse_arch_vector(body + tail, strict=False)
    assert av.terminator is None and len(av.pvrs) == 512
    assert av.vectors == (b"\xaa",)  # QEMU takes byte 4096 as the vector table
    assert build_arch_vector(av) == body + tail


def test_terminator_is_consumed_and_first_non_subset_pair_ends_the_list():
    # {0, 0} matches any PVR; {0xffff0000, 0x00001234} has value bits outside the mask: it ends the list
    data = pairs((0, 0), (0xFFFF0000, 0x00001234)) + bytes([0, 0, 0x80]) + b"xy"
    av = parse_arch_vector(data)
    assert av.pvrs == (PvrEntry(0, 0),) and av.terminator == PvrEntry(0xFFFF0000, 0x1234)
    assert av.vectors == (b"\x80",)
    assert av.trailing == b"xy"


@pytest.mark.parametrize("bad", [
    ArchVector((PvrEntry(0, 1),), LINUX_TERMINATOR, (b"\0",)),  # entry that would terminate
    ArchVector((), PvrEntry(0xFFFFFFFF, 1), (b"\0",)),  # terminator that is not one
    ArchVector((), LINUX_TERMINATOR, ()),  # no vectors
    ArchVector((), LINUX_TERMINATOR, (b"",)),  # empty vector
    ArchVector((), LINUX_TERMINATOR, (bytes(257),)),  # too long
    ArchVector((), None, (b"\0",)),  # unterminated needs 512 pairs
])
def test_build_refuses_impossible_vectors(bad):
    with pytest.raises(ValueError):
        build_arch_vector(bad)


def test_decode_bytes_for_the_cli():
    assert decode_bytes(SEC7) == decode_lines(parse_arch_vector(SEC7))
    lines = decode_bytes(SEC7[:-2])
    assert lines[0].startswith(f"error at byte {len(SEC7) - 3}: architecture vector: OV6 (3 bytes)")
    assert lines[1] == "as QEMU reads it (bytes past the end are zero):"
    assert "  OV6 (3 bytes): 00 00 00" in lines
