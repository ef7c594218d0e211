"""CAS negotiation as QEMU 7.2 (firmware/cas.py), checked against the measured results in the docs and DTs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from xive_machine.errors import ConfigError
from xive_machine.firmware.cas import (
    FDT_MAX_SIZE,
    CasError,
    CasHptResizeRequired,
    CasInvalidRequest,
    CasPlatform,
    CasUnavailableMode,
    check_compat,
    compat_by_name,
    h_cas_fdt_space,
    h_cas_reply,
    negotiate,
    negotiate_at,
    read_arch_vector,
    write_h_cas_reply,
)
from xive_machine.firmware.ovec import (
    LINUX_TERMINATOR,
    OV5_HPT_RESIZE,
    OV5_XIVE_EXPLOIT,
    ArchVector,
    PvrEntry,
    build_arch_vector,
    parse_arch_vector,
)
from xive_machine.hcalls.codes import H
from xive_machine.memory.ram import GuestRam
from xive_machine.trace.events import ListSink


def pairs(*ps: tuple[int, int]) -> bytes:
    return b"".join(m.to_bytes(4, "big") + v.to_bytes(4, "big") for m, v in ps)


# spapr-cas-rtas-xics.md section 7 (same bytes as in test_cas_ovec.py)
OV5_SEC7 = (bytes.fromhex("00f30000c0050000") + (0x800).to_bytes(4, "big") + bytes(4)
            + bytes.fromhex("e0000000") + bytes.fromhex("01c040400040"))
SEC7 = (pairs((0xFFFF0000, 0x004E0000), (0xFFFFFFFF, 0x0F000005), (0xFFFFFFFF, 0x0F000004),
              (0xFFFFFFFE, 0x0F000001))
        + bytes([5, 2, 0x00, 0xFF, 0x80])
        + bytes([0x20, 0x20, 0, 0]) + b"\xff\xff\xff\xff" * 5 + (0x200).to_bytes(4, "big") + b"\xff" * 4
        + bytes([0x00, 0x30, 1, 0x00, 0xE0, 1, 0x00, 0x01, 25]) + OV5_SEC7
        + bytes([2, 0x00, 0x00, 0x02]))
REF = Path("/work/shared/reference/qemu-7.2-pseries")
POWER9 = PvrEntry(0xFFFF0000, 0x004E0000)
P9_LOGICAL = PvrEntry(0xFFFFFFFF, 0x0F000005)
P8_LOGICAL = PvrEntry(0xFFFFFFFF, 0x0F000004)
P10_LOGICAL = PvrEntry(0xFFFFFFFF, 0x0F000006)


def ov5_with(**bytes_at: int) -> bytes:
    v = bytearray(26)
    for k, val in bytes_at.items():
        v[int(k[1:]) - 1] = val
    return bytes(v)


def vector(pvrs=(POWER9, P9_LOGICAL, P8_LOGICAL), ov5: bytes | None = None, ov1: bytes = b"\x00\xff\x80",
           count: int | None = None) -> ArchVector:
    vecs = [ov1, b"\x00", b"\x00", b"\x00", ov5 if ov5 is not None else ov5_with(b6=0x05)]
    return ArchVector(tuple(pvrs), LINUX_TERMINATOR, tuple(vecs[:count] if count else vecs))


def dts_bytes_prop(name: str, dts: str) -> bytes:
    text = (REF / dts).read_text()
    m = re.search(rf"\b{re.escape(name)} = (\[[^\]]*\]|<[^>]*>);", text)
    assert m, name
    body = m.group(1)
    if body.startswith("["):
        return bytes.fromhex(body[1:-1].replace(" ", ""))
    return b"".join(int(w, 16).to_bytes(4, "big") for w in body[1:-1].split())


# --- the measured cases ---------------------------------------------------------------------------------


def test_section7_xive_radix_gtse():
    r = negotiate(SEC7, CasPlatform())
    assert r.rc == H.SUCCESS and r.ok and r.reason == ""
    assert r.compat_pvr == 0x0F000005 and r.cpu_version == 0x0F000005 and r.raw_mode
    assert r.arch_vec_5 == (bytes([0x19, 0x00, 0x20, 0x00, 0x00, 0x80, 0x05]) + bytes(15)
                            + bytes([0x80, 0x40, 0x40, 0x00, 0x40]))
    assert r.intc == "xive" and r.mmu == "radix" and r.radix_granted and r.gtse
    assert not r.pre_isa3_guest and not r.presize_hpt
    assert r.has(OV5_XIVE_EXPLOIT) and r.diagnostics == ()
    text = r.describe()
    assert "cpu-version 0x0f000005 (compat 0x0f000005)" in text and "interrupt controller xive, MMU radix" in text


def test_section7_xics_hash_matches_postcas_dt():
    data = bytearray(SEC7)
    at = SEC7.index(OV5_SEC7)
    data[at + 22] = data[at + 23] = data[at + 25] = 0  # bytes 23, 24, 26
    r = negotiate(bytes(data), CasPlatform())
    assert r.ok and r.intc == "xics" and r.mmu == "hash" and not r.gtse
    assert r.arch_vec_5 == dts_bytes_prop("ibm,architecture-vec-5", "postcas_vof_xics.dts")
    assert r.cpu_version == 0x0F000005  # postcas_vof_xics.dts cpu-version
    assert not r.presize_hpt  # the guest set OV5_HPT_RESIZE


def test_probe_guest_raw_mode_xive_matches_postcas_dt():
    # oracle doc: {0, 0} then {0, 0xffffffff}; 5 vectors; OV1 [00 00 80]; OV5 26 bytes with byte 23 = 0x40
    av = ArchVector((PvrEntry(0, 0),), PvrEntry(0, 0xFFFFFFFF),
                    (b"\x00\x00\x80", b"\x00", b"\x00", b"\x00", ov5_with(b23=0x40)))
    for mode, dts in (("dual", "postcas_vof_dual.dts"), ("xive", "postcas_vof_xive.dts")):
        r = negotiate(build_arch_vector(av), CasPlatform(ic_mode=mode))
        assert r.ok and r.intc == "xive" and r.mmu == "hash"
        assert r.compat_pvr == 0 and r.raw_mode and r.cpu_version == 0x004E1200
        assert r.arch_vec_5 == dts_bytes_prop("ibm,architecture-vec-5", dts)
        assert r.presize_hpt  # hash guest without OV5_HPT_RESIZE


@pytest.mark.parametrize("mode,dts", [("xics", "p_xics.dts"), ("xive", "p_xive.dts"), ("dual", "p_dual.dts")])
def test_platform_support_property(mode, dts):
    p = CasPlatform(ic_mode=mode)
    assert p.arch_vec_5_platform_support() == dts_bytes_prop("ibm,arch-vec-5-platform-support", dts)
    # after CAS picked POWER9 compat nothing changes; a POWER8 compat gives XICS + hash
    assert p.arch_vec_5_platform_support(0x0F000005) == p.arch_vec_5_platform_support()
    if mode != "xive":
        assert p.arch_vec_5_platform_support(0x0F000004) == bytes([23, 0, 24, 0, 25, 0, 26, 0x40])


def test_platform_support_below_isa300_is_xics_and_hash():
    p = CasPlatform(ic_mode="dual", max_compat=compat_by_name("power8"))
    assert p.reset_compat_pvr == 0x0F000004
    assert p.arch_vec_5_platform_support() == bytes([23, 0, 24, 0, 25, 0, 26, 0x40])
    assert CasPlatform(ic_mode="dual", max_compat=0x0F000005).arch_vec_5_platform_support()[:4] == bytes(
        [23, 0x80, 24, 0xC0])


def test_platform_ov5_bits():
    assert CasPlatform().ov5() == ov5_with(b2=0x20, b5=0xA0, b6=0x05, b22=0x80, b23=0x40, b24=0x40, b26=0x40)
    assert CasPlatform(ic_mode="xics").ov5()[22] == 0
    p = CasPlatform(resize_hpt="disabled", hotplug_events=False, form2_affinity=False, dr_lmb=False)
    assert p.ov5() == ov5_with(b5=0x80, b22=0x80, b23=0x40, b24=0x40, b26=0x40)
    assert CasPlatform(max_compat=0x0F000004, ic_mode="dual").ov5() == ov5_with(b2=0x20, b5=0xA0, b6=5,
                                                                                   b22=0x80)


# --- interrupt mode and OV5 refusals ---------------------------------------------------------------------


def test_xive_on_xics_machine_stops_with_qemu_message():
    with pytest.raises(CasUnavailableMode) as e:
        negotiate(SEC7, CasPlatform(ic_mode="xics"))
    assert str(e.value) == ("Guest requested unavailable interrupt mode (XIVE), "
                            "try the ic-mode=xive or ic-mode=dual machine property")
    assert e.value.mode == "XIVE" and e.value.suggestion == ("xive", "dual")
    assert e.value.exit_code == 5


def test_xics_on_xive_machine_stops():
    with pytest.raises(CasUnavailableMode) as e:
        negotiate(build_arch_vector(vector()), CasPlatform(ic_mode="xive"))
    assert e.value.mode == "XICS" and e.value.suggestion == ("xics", "dual")
    assert "ic-mode=xics or ic-mode=dual" in str(e.value)


def test_dual_forced_to_xics_below_isa300():
    p = CasPlatform(ic_mode="dual", max_compat=compat_by_name("power8"))
    assert p.effective_ic_mode == "xics" and not p.has_xive
    with pytest.raises(CasUnavailableMode):
        negotiate(build_arch_vector(vector(ov5=ov5_with(b6=5, b23=0x40))), p)


@pytest.mark.parametrize("b23,b24,msg", [(0x80, 0, "invalid interrupt mode"), (0, 0x80, "hash and radix"),
                                         (0xC0, 0, "invalid interrupt mode"), (0, 0xC0, "hash and radix")])
def test_both_bits_are_refused(b23, b24, msg):
    with pytest.raises(CasInvalidRequest, match=msg):
        negotiate(build_arch_vector(vector(ov5=ov5_with(b23=b23, b24=b24, b6=5))), CasPlatform())


def test_resize_hpt_required():
    av = vector(ov5=ov5_with(b23=0x40))  # hash, no OV5_HPT_RESIZE
    with pytest.raises(CasHptResizeRequired):
        negotiate(av, CasPlatform(resize_hpt="required"))
    assert negotiate(av, CasPlatform()).presize_hpt
    radix = vector(ov5=ov5_with(b24=0x40))
    assert not negotiate(radix, CasPlatform(resize_hpt="required")).presize_hpt
    assert not negotiate(radix, CasPlatform(resize_hpt="disabled")).has(OV5_HPT_RESIZE)


def test_pre_isa3_guest_and_radix_not_granted():
    r = negotiate(vector(ov1=b"\x00\xff", ov5=ov5_with(b24=0x40, b26=0x40)), CasPlatform())
    assert r.pre_isa3_guest and r.mmu == "radix" and r.radix_granted
    p8 = CasPlatform(max_compat=0x0F000004, ic_mode="xics")
    r = negotiate(vector(ov5=ov5_with(b24=0x40, b26=0x40, b6=5)), p8)
    assert r.mmu == "radix" and not r.radix_granted and not r.gtse and r.compat_pvr == 0x0F000004


# --- PVR selection ------------------------------------------------------------------------------------


def test_highest_supported_logical_pvr_wins():
    r = negotiate(vector(pvrs=(P8_LOGICAL, P9_LOGICAL, P10_LOGICAL)), CasPlatform())
    assert r.compat_pvr == 0x0F000005 and not r.raw_mode  # POWER9 class lacks PCR 3.10
    r = negotiate(vector(pvrs=(P8_LOGICAL, P9_LOGICAL)), CasPlatform(max_compat=0x0F000004))
    assert r.compat_pvr == 0x0F000004 and r.cpu_version == 0x0F000004


def test_compat_order_is_table_order_not_value():
    # power7+ (0x0f100003) is numerically above power8 but older in QEMU's table
    r = negotiate(vector(pvrs=(P8_LOGICAL, PvrEntry(0xFFFFFFFF, 0x0F100003))), CasPlatform())
    assert r.compat_pvr == 0x0F000004
    assert check_compat(0x004E1200, 0x0F100003) and not check_compat(0x004E1200, 0x0F000006)
    assert check_compat(0x00800200, 0x0F000006)
    assert not check_compat(0x004E1200, 0x0F000001)  # "2.04" is not in the compat table


def test_raw_only_and_no_match():
    r = negotiate(vector(pvrs=(POWER9,)), CasPlatform())
    assert r.ok and r.compat_pvr == 0 and r.cpu_version == 0x004E1200
    r = negotiate(vector(pvrs=(PvrEntry(0xFFFF0000, 0x004D0000),)), CasPlatform())
    assert r.rc == H.HARDWARE and r.reason == "Couldn't negotiate a suitable PVR during CAS"
    assert not r.compat_applied
    # max-cpu-compat set: raw mode is not enough
    r = negotiate(vector(pvrs=(POWER9,)), CasPlatform(max_compat=0x0F000005))
    assert r.rc == H.HARDWARE


def test_others_active():
    r = negotiate(SEC7, CasPlatform(), others_active=True)
    assert r.rc == H.MULTI_THREADS_ACTIVE and not r.compat_applied


def test_missing_ov5_is_h_parameter_after_compat():
    r = negotiate(vector(count=4), CasPlatform())
    assert r.rc == H.PARAMETER and r.reason == "guest didn't provide option vector 5"
    assert r.compat_applied and r.compat_pvr == 0x0F000005  # QEMU switched compat before parsing OVs
    assert "CAS failed: rc -4" in r.describe() and "already applied: 0x0f000005" in r.describe()


def test_truncated_vector_negotiates_as_qemu_with_a_precise_diagnostic():
    data = SEC7[: SEC7.index(OV5_SEC7) + 10]  # OV5 cut short: the rest reads as zero
    r = negotiate(data, CasPlatform())
    assert r.ok and r.intc == "xics" and r.mmu == "hash"
    assert r.diagnostics and "OV5 (26 bytes) runs to byte" in r.diagnostics[0]
    r = negotiate(SEC7[:40], CasPlatform())  # cut inside OV2: OV3..OV6 read as 1-byte zero vectors
    assert r.ok and r.ov5_cas == b"" and r.arch_vec_5 == b"\x00\x00" and r.intc == "xics"
    r = negotiate(SEC7[:32], CasPlatform())  # cut before the count byte: it reads 0, so only OV1 exists
    assert r.rc == H.PARAMETER and r.reason.startswith("guest didn't provide option vector 5 (")
    assert "count byte" in r.reason


def test_parsed_vector_input_and_trace():
    sink = ListSink()
    r = negotiate(parse_arch_vector(SEC7), CasPlatform(), trace=sink)
    assert r.ok and sink.events[0]["ev"] == "cas" and sink.events[0]["intc"] == "xive"


def test_platform_validation():
    with pytest.raises(ConfigError):
        CasPlatform(ic_mode="legacy")
    with pytest.raises(ConfigError):
        CasPlatform(resize_hpt="sometimes")
    with pytest.raises(ConfigError):
        CasPlatform(max_compat=0x0F000006)  # POWER9 cannot run as power10
    with pytest.raises(ConfigError):
        CasPlatform(ic_mode="xive", max_compat=0x0F000004)
    with pytest.raises(ConfigError):
        compat_by_name("power42")
    assert compat_by_name("POWER9") == 0x0F000005


# --- guest memory ---------------------------------------------------------------------------------


def test_negotiate_at_reads_guest_ram_and_drops_top_bits():
    ram = GuestRam(1 << 20)
    ram.write(0x4000, SEC7)
    sink = ListSink()
    r = negotiate_at(ram, 0xF000_0000_0000_4000, CasPlatform(), trace=sink)
    assert r.ok and r.compat_pvr == 0x0F000005 and r.intc == "xive" and r.diagnostics == ()
    assert sink.events[0]["addr"] == 0x4000


def test_vector_outside_ram_is_h_parameter():
    ram = GuestRam(1 << 20)
    r = negotiate_at(ram, 1 << 20, CasPlatform())
    assert r.rc == H.PARAMETER
    assert "outside RAM" in r.diagnostics[0]
    window, inside = read_arch_vector(ram, (1 << 20) - 4)
    assert inside == 4 and window[4:] == bytes(len(window) - 4)


def test_vector_running_off_the_end_of_ram():
    ram = GuestRam(1 << 16)
    at = (1 << 16) - (SEC7.index(OV5_SEC7) + 5)
    ram.write(at, SEC7[: (1 << 16) - at])
    r = negotiate_at(ram, at, CasPlatform())
    assert r.ok and r.intc == "xics"  # OV5 bytes past RAM read as zero
    assert "runs to byte" in r.diagnostics[0]


# --- KVMPPC_H_CAS reply ------------------------------------------------------------------------------


def test_h_cas_reply_layout():
    blob = b"\xd0\x0d\xfe\xed" + bytes(60)
    assert h_cas_reply(blob, 0x200000) == b"\x01\x00\x00\x00" + blob
    assert h_cas_reply(blob, 68, byteorder="big") == b"\x00\x00\x00\x01" + blob
    assert h_cas_fdt_space(FDT_MAX_SIZE) == FDT_MAX_SIZE - 4
    with pytest.raises(CasError, match="insufficient CAS buffer 3"):
        h_cas_reply(blob, 3)
    with pytest.raises(CasError, match="does not fit"):
        h_cas_reply(blob, 67)


def test_write_h_cas_reply_drops_bytes_outside_ram():
    ram = GuestRam(1 << 16)
    reply = h_cas_reply(bytes(range(16)), 100)
    assert write_h_cas_reply(ram, 0x100, reply) == 20
    assert ram.read(0x100, 20) == reply
    assert write_h_cas_reply(ram, (1 << 16) - 8, reply) == 8
    assert write_h_cas_reply(ram, 1 << 16, reply) == 0
