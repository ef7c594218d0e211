"""devtree: what depends on the configuration, the blob and text forms, the CAS diff."""

from __future__ import annotations

import struct

import fdt
import pytest

from xive_machine.errors import ConfigError
from xive_machine.firmware import devtree as dt


def ic_node() -> fdt.Node:
    return dt.node("interrupt-controller", [dt.cells("phandle", dt.PHANDLE_INTC), dt.empty("interrupt-controller")])


def build(**kw) -> fdt.FDT:
    base = dict(rtas_tokens={"power-off": 0x2003, "ibm,set-xive": 0x200A, "display-character": 0x2000},
                intc_node=ic_node(), rng_seed=bytes(range(32)))
    base.update(kw)
    return dt.build_tree(dt.DtConfig(**base))


def get(tree: fdt.FDT, path: str, name: str) -> bytes | None:
    n = next((x for x in dt.iter_nodes(tree) if dt.node_path(x) == path), None)
    assert n is not None, path
    return dt.get_prop(n, name)


def words(b: bytes | None) -> list[int]:
    assert b is not None
    return list(struct.unpack(f">{len(b) // 4}I", b))


def test_cpus_follow_smp_and_max_cpus() -> None:
    t = build(smp=3, max_cpus=4)
    cpus = [n for n in dt.iter_nodes(t) if n.name.startswith("PowerPC,POWER9@")]
    assert [n.name for n in cpus] == ["PowerPC,POWER9@0", "PowerPC,POWER9@1", "PowerPC,POWER9@2"]
    assert words(get(t, "/cpus/PowerPC,POWER9@2", "ibm,ppc-interrupt-server#s")) == [2]
    assert words(get(t, "/cpus/PowerPC,POWER9@2", "ibm,ppc-interrupt-gserver#s")) == [2, 0]
    assert words(get(t, "/cpus/PowerPC,POWER9@2", "reg")) == [2]
    assert words(get(t, "/cpus/PowerPC,POWER9@2", "ibm,my-drc-index")) == [0x10000002]
    idx = words(get(t, "/cpus", "ibm,drc-indexes"))
    assert idx[0] == 4 and sorted(idx[1:]) == [0x10000000, 0x10000001, 0x10000002, 0x10000003]
    assert idx[1:] == [i for i in dt.drc_order(4) if i >> 28 == 1]  # QEMU's hash-table order
    names = get(t, "/cpus", "ibm,drc-names")
    assert names is not None and names[4:].split(b"\0")[:-1] == [f"CPU {i & 0xFF}".encode() for i in idx[1:]]
    assert words(get(t, "/rtas", "rtas-size")) == [20 + 2048 + 4 * 16 + 8]
    assert words(get(t, "/rtas", "ibm,lrdr-capacity")) == [0, 0, 0, 0x10000000, 4]


@pytest.mark.parametrize("ram,shift", [(256 << 20, 0x15), (512 << 20, 0x16), (1 << 30, 0x17), (768 << 20, 0x17),
                                       (16 << 20, 18)])
def test_memory_and_hpt_size(ram: int, shift: int) -> None:
    t = build(ram_size=ram)
    assert words(get(t, "/memory@0", "reg")) == [0, 0, ram >> 32, ram & 0xFFFFFFFF]
    assert words(get(t, "/cpus/PowerPC,POWER9@0", "ibm,pft-size")) == [0, shift]
    assert words(get(t, "/memory@0", "available"))[-2:] == [0, ram - 0x10000]


def test_chosen_kernel_initrd_bootargs() -> None:
    t = build(kernel_size=0x1000, kernel_le=True, initrd_start=0x1000000, initrd_size=0x2000,
              bootargs="console=hvc0")
    chosen = next(n for n in dt.iter_nodes(t) if n.name == "chosen")
    assert [p.name for p in chosen.props][-6:] == ["qemu,graphic-width", "qemu,boot-kernel-le",
                                                   "qemu,boot-kernel", "linux,initrd-end",
                                                   "linux,initrd-start", "bootargs"]
    assert words(dt.get_prop(chosen, "linux,initrd-end")) == [0x1002000]
    assert dt.get_prop(chosen, "bootargs") == b"console=hvc0\0"
    assert dt.get_prop(chosen, "qemu,boot-kernel-le") == b""
    assert [(e["address"], e["size"]) for e in t.entries] == [(0x400000, 0x1000), (0x1000000, 0x2000)]
    # VOF claimed both: available skips them
    assert (0x1002000 >> 32, 0x1002000) == (0, words(get(t, "/memory@0", "available"))[-3])


def test_no_kernel_no_boot_kernel_and_no_reservation() -> None:
    t = build()
    assert get(t, "/chosen", "qemu,boot-kernel") is None and t.entries == []


def test_pre_isa3_guest_hides_radix_and_cas_values() -> None:
    t = build(pre_isa3_guest=True, cpu_version=0x0F000004, ov5_cas=b"\x01\x00\x20")
    pa = get(t, "/cpus/PowerPC,POWER9@0", "ibm,pa-features")
    assert pa is not None and pa[42] == 0x00 and dt.PA_FEATURES_300[42] == 0x80 and len(pa) == 68
    assert words(get(t, "/cpus/PowerPC,POWER9@0", "cpu-version")) == [0x0F000004]
    assert get(t, "/chosen", "ibm,architecture-vec-5") == b"\x01\x00\x20"


def test_rtas_tokens_descending_and_xive_root_property() -> None:
    t = build(xive=True)
    rtas = next(n for n in dt.iter_nodes(t) if n.name == "rtas")
    assert [p.name for p in rtas.props][1:4] == ["ibm,set-xive", "power-off", "display-character"]
    assert words(get(t, "/", "ibm,plat-res-int-priorities")) == [7, 0xF8]
    assert get(build(), "/", "ibm,plat-res-int-priorities") is None


def test_rng_seed_is_random_unless_given() -> None:
    a, b = build(rng_seed=None), build(rng_seed=None)
    sa, sb = get(a, "/chosen", "rng-seed"), get(b, "/chosen", "rng-seed")
    assert sa is not None and sb is not None and len(sa) == 32 and sa != sb


def test_vof_flag_adds_phandles_available_stdout() -> None:
    slof, vof = build(vof=False), build(vof=True)
    assert all(n.get_property("phandle") is None for n in dt.iter_nodes(slof) if n.name != "interrupt-controller")
    assert sorted(dt.get_phandle(n) for n in dt.iter_nodes(vof)) == list(range(0x1111, 0x1120))
    assert words(get(vof, "/chosen", "stdout")) == [1]
    assert get(slof, "/memory@0", "available") is None


def test_set_prop_libfdt_rule() -> None:
    n = dt.node("x", [dt.cells("a", 1), dt.cells("b", 2)])
    dt.set_prop(n, "b", b"\x07")
    dt.set_prop(n, "c", b"")
    dt.set_prop(n, "\x01odd name\xff", b"zz")
    assert [p.name for p in n.props] == ["\x01odd name\xff", "c", "a", "b"]
    assert dt.get_prop(n, "b") == b"\x07" and dt.get_prop(n, "c") == b""


def test_format_value_follows_dtc() -> None:
    assert dt.format_value(b"\0\0") == "[00 00]"
    assert dt.format_value(b"\0\0\0\x01") == "<0x01>"
    assert dt.format_value(b"a\0b\0") == '"a\\0b"'
    assert dt.format_value(b'q"\\\n\0') == '"q\\"\\\\\\n"'
    assert dt.format_value(b"ab") == "[61 62]"
    assert dt.format_value(b"a\0\0\0") == "<0x61000000>"  # too many NULs to be a string
    assert dt.format_value(b"") == ""


def test_dtb_round_trip_through_the_fdt_library() -> None:
    t = build(kernel_size=0x2000, bootargs="x")
    blob = dt.to_dtb(t)
    magic, total = struct.unpack(">II", blob[:8])
    assert (magic, total) == (0xD00DFEED, len(blob)) and len(blob) == dt.dtb_size(t)
    back = dt.from_dtb(blob)
    assert [(e["address"], e["size"]) for e in back.entries] == [(0x400000, 0x2000)]
    mine = [(dt.node_path(n), [(p.name, dt.prop_bytes(p)) for p in n.props]) for n in dt.iter_nodes(t)]
    theirs = [(dt.node_path(n), [(p.name, dt.prop_bytes(p)) for p in n.props]) for n in dt.iter_nodes(back)]
    assert mine == theirs
    assert dt.from_dtb(dt.to_dtb(build())).entries == []  # the fdt library's shared default is not leaked


def test_diff_shows_what_cas_changed() -> None:
    a = build(rng_seed=bytes(32))
    xive = dt.node("interrupt-controller@60302031b0000", [dt.cells("phandle", dt.PHANDLE_INTC),
                                                           dt.string("compatible", "ibm,power-ivpe")])
    b = build(rng_seed=bytes(32), cpu_version=0x0F000005, ov5_cas=b"\x16" + bytes(22) + b"\x40",
              intc_node=xive, xive=True, rtas_tokens={"power-off": 0x2003, "display-character": 0x2000})
    lines = dt.diff_trees(a, b)
    assert "+ /ibm,plat-res-int-priorities = <0x07 0xf8>;" in lines
    assert "~ /chosen/ibm,architecture-vec-5: [00 00] -> <0x16000000 0x00 0x00 0x00 0x00 0x40>" in lines
    assert "~ /cpus/PowerPC,POWER9@0/cpu-version: <0x4e1200> -> <0xf000005>" in lines
    assert "- /rtas/ibm,set-xive = <0x200a>;" in lines
    assert "- /interrupt-controller/" in lines
    assert "+ /interrupt-controller@60302031b0000/compatible = \"ibm,power-ivpe\";" in lines
    assert dt.diff_trees(a, a) == []
    assert len(lines) == 10


def test_diff_reports_moves_and_reservations() -> None:
    a, b = build(), build(kernel_size=0x1000)
    lines = dt.diff_trees(a, b)
    assert "+ /memreserve/ 0x400000 0x1000" in lines
    assert "+ /chosen/qemu,boot-kernel = <0x00 0x400000 0x00 0x1000>;" in lines
    n = next(x for x in dt.iter_nodes(b) if x.name == "vdevice")
    n.props.reverse()
    assert "= /vdevice/: property order changed" in dt.diff_trees(a, b)


@pytest.mark.parametrize("kw", [dict(smp=0), dict(smp=2, max_cpus=1), dict(ram_size=1000),
                                dict(rng_seed=b"short")])
def test_bad_configuration_is_a_config_error(kw: dict) -> None:
    with pytest.raises(ConfigError):
        dt.DtConfig(**kw)
