"""The device tree a guest sees: QEMU 7.2 `-M pseries -cpu POWER9 -nodefaults -serial mon:stdio`.

Node names, property names, values and the order of both follow QEMU 7.2's `spapr_build_fdt`, as dumped in
/work/shared/reference/qemu-7.2-pseries. QEMU builds the tree with libfdt in read-write mode, where a new
property or subnode is inserted *before* the existing ones, so the blob (and what a guest walking it with
`nextprop`/`child`/`peer` sees) lists things in the reverse of QEMU's creation order. The builders below
write nodes directly in blob order; `set_prop` reproduces libfdt's rule for later changes (a new property
goes first, an existing one is replaced where it is).

Properties are held as `fdt` library items. Their raw value (`prop_bytes`) is what the guest reads; the
rendering (`to_dts`) guesses the type from the bytes the way dtc does, so it does not matter which `fdt`
class holds a value.
"""

from __future__ import annotations

import functools
import os
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import fdt
from construct import Int32ub, Struct

from xive_machine.errors import ConfigError

# ---------------------------------------------------------------------------------------------------------
# QEMU 7.2 constants (hw/ppc/spapr.c, include/hw/ppc/spapr*.h), as the reference trees show them.

PHANDLE_INTC = 0x1111  # QEMU's fixed phandle for the XICS/XIVE node (also the PHB interrupt-map target)
SPAPR_TIMEBASE_FREQ = 512_000_000
CPU_CLOCK_FREQ = 1_000_000_000
POWER9_PVR = 0x004E1200  # power9_v2.0, the pseries-7.2 default CPU
KERNEL_LOAD_ADDR = 0x400000
FDT_MAX_SIZE = 0x200000  # the buffer QEMU builds the tree in (the client may grow it up to this)
VTY_REG = 0x71000000  # SPAPR_VIO_REG_BASE: first VIO device
NVRAM_REG = 0x71000001
IRQ_EPOW = 0x1000
IRQ_HOTPLUG = 0x1001
IRQ_VIO_BASE = 0x1100
IRQ_PCI_LSI_BASE = 0x1200
SPAPR_MEMORY_BLOCK_SIZE = 0x10000000  # LMB size (ibm,lrdr-capacity)
STDOUT_PATH = f"/vdevice/vty@{VTY_REG:x}"

DRC_CPU_BASE = 0x10000000
DRC_PHB_BASE = 0x20000000
DRC_PCI_BASE = 0x40000000
SPAPR_MAX_PHBS = 31
PCI_DRCS = 256  # 32 slots x 8 functions on PHB 0

# ibm,arch-vec-5-platform-support for ic-mode dual/xive/xics under TCG: (index, value) pairs.
OV5_PLATFORM_DUAL = bytes([0x17, 0x80, 0x18, 0xC0, 0x19, 0x00, 0x1A, 0x40])
OV5_PLATFORM_XIVE = bytes([0x17, 0x40, 0x18, 0xC0, 0x19, 0x00, 0x1A, 0x40])
OV5_PLATFORM_XICS = bytes([0x17, 0x00, 0x18, 0xC0, 0x19, 0x00, 0x1A, 0x40])
OV5_EMPTY = b"\x00\x00"  # ibm,architecture-vec-5 before CAS: length byte 0, one zero byte

# XIVE reserves priorities 7..254 for the platform (spapr_xive_dt): <start count>.
PLAT_RES_INT_PRIORITIES = (7, 0xF8)

HYPERTAS_FUNCTIONS = (
    "hcall-pft", "hcall-term", "hcall-dabr", "hcall-interrupt", "hcall-tce", "hcall-vio", "hcall-splpar",
    "hcall-join", "hcall-bulk", "hcall-set-mode", "hcall-sprg0", "hcall-copy", "hcall-debug", "hcall-vphn",
    "hcall-multi-tce", "hcall-hpt-resize", "hcall-watchdog",
)

# ibm,pa-features for ISA 3.00 (POWER9) as QEMU 7.2 emits it under TCG: a 2-byte header (length 0x42,
# type 0) then 66 feature bytes. QEMU ORs 0x20 into feature byte 1 (CI large pages) before emitting.
PA_FEATURES_300 = bytes.fromhex(
    "4200"
    "f63fc7c080f0" "800000000000" "000000008000"  # bytes 0-17
    "800080000000" "800080008000" "80008000c000"  # 18-35
    "800080008000" "800080008000" "800080008000"  # 36-53
    "800080008000" "800080000000"  # 54-65
)
PA_FEATURES_RADIX_BYTE = 42  # property byte holding the radix bit (feature byte 40), cleared for pre-3.00
PA_FEATURES_RADIX_BIT = 0x80

# 4K segments with 4K pages, 64K segments (SLB encoding 0x110) with 64K pages: cap-hpt-max-page-size=64K.
SEGMENT_PAGE_SIZES = (0xC, 0x0, 1, 0xC, 0x0, 0x10, 0x110, 1, 0x10, 1)
RADIX_AP_ENCODINGS = (0x0000000C, 0xA0000010, 0x20000015, 0x4000001E)

# PHB 0 (pci@800000020000000) placement and windows, as QEMU's spapr_phb_placement gives them for index 0.
PHB0_NAME = "pci@800000020000000"
PHB0_REG = (0x8000000, 0x20000000, 0, 0)
PHB0_RANGES = (
    0x1000000, 0, 0, 0x2000, 0, 0, 0x10000,  # I/O: 64 KiB at 0x200000000000
    0x2000000, 0, 0x80000000, 0x2000, 0x80000000, 0, 0x80000000,  # 32-bit MMIO: 2 GiB
    0x3000000, 0x2100, 0, 0x2100, 0, 0x100, 0,  # 64-bit MMIO: 1 TiB at 0x210000000000
)
PHB0_DMA_WINDOW = (0x80000000, 0, 0, 0, 0x40000000)  # liobn, u64 offset, u64 size (1 GiB)


@dataclass(frozen=True)
class DtConfig:
    """Everything the tree depends on. Defaults are QEMU 7.2's `-M pseries -cpu POWER9 -m 512M`, dual mode,
    at reset (before CAS)."""

    smp: int = 1
    max_cpus: int | None = None  # None: = smp
    ram_size: int = 512 << 20
    kernel_addr: int = KERNEL_LOAD_ADDR
    kernel_size: int = 0
    kernel_le: bool = False
    initrd_start: int = 0
    initrd_size: int = 0
    bootargs: str = ""
    cpu_version: int = POWER9_PVR  # the compat PVR (0x0f000005) after CAS
    ov5_platform: bytes = OV5_PLATFORM_DUAL  # /chosen/ibm,arch-vec-5-platform-support
    ov5_cas: bytes = OV5_EMPTY  # /chosen/ibm,architecture-vec-5 as stored (see ovec_dt_value)
    intc_node: fdt.Node | None = None  # the active controller's node (InterruptController.dt_node)
    xive: bool = False  # XIVE is the active controller: root ibm,plat-res-int-priorities
    rtas_tokens: Mapping[str, int] = field(default_factory=dict)  # installed RTAS services
    pre_isa3_guest: bool = False  # CAS: guest did not ask for ISA 3.00 -> radix hidden in pa-features
    form2_affinity: bool = False  # CAS negotiated FORM2 NUMA affinity (Linux >= 5.15 asks for it)
    htab_shift: int | None = None  # ibm,pft-size; None: QEMU's choice for ram_size
    rng_seed: bytes | None = None  # 32 bytes; None: fresh random bytes, as QEMU
    uuid: str = "00000000-0000-0000-0000-000000000000"
    vof: bool = True  # finalize as VOF does at reset: phandles, /memory@0/available, /chosen/stdout
    fw_size: int = 0xDA0  # firmware claimed at 0 under VOF (vof.bin is 3488 bytes)

    def __post_init__(self) -> None:
        if self.smp < 1 or self.nr_cpus < self.smp:
            raise ConfigError(f"device tree: need 1 <= smp ({self.smp}) <= max_cpus ({self.nr_cpus})")
        if self.ram_size <= 0 or self.ram_size % (64 << 10):
            raise ConfigError(f"device tree: RAM size {self.ram_size:#x} is not a positive multiple of 64 KiB")
        if self.rng_seed is not None and len(self.rng_seed) != 32:
            raise ConfigError("device tree: rng_seed must be 32 bytes")

    @property
    def nr_cpus(self) -> int:
        return self.max_cpus if self.max_cpus is not None else self.smp


# ---------------------------------------------------------------------------------------------------------
# Property helpers


class RawProp(fdt.PropBytes):
    """A property holding raw bytes under any name, as a client's setprop may create: the `fdt` items
    refuse non-printable names, libfdt does not."""

    def __init__(self, name: str, data: bytes = b"") -> None:
        self._name = name
        self._label = None
        self._parent = None
        self.data = bytearray(data)

    def copy(self) -> RawProp:
        return RawProp(self.name, bytes(self.data))


def cells(name: str, *values: int) -> fdt.PropWords:
    return fdt.PropWords(name, *(v & 0xFFFFFFFF for v in values))


def u64_cells(*values: int) -> list[int]:
    """u64 values as (hi, lo) cell pairs."""
    out: list[int] = []
    for v in values:
        out += [(v >> 32) & 0xFFFFFFFF, v & 0xFFFFFFFF]
    return out


def string(name: str, *values: str) -> fdt.PropStrings:
    return fdt.PropStrings(name, *values)


def raw(name: str, data: bytes) -> fdt.Property:
    return fdt.PropBytes(name, data=bytes(data)) if data else fdt.Property(name)


def empty(name: str) -> fdt.Property:
    return fdt.Property(name)


def prop_bytes(prop: fdt.Property) -> bytes:
    """The property's value exactly as it sits in the blob (what getprop copies out)."""
    if isinstance(prop, fdt.PropWords):
        return b"".join(struct.pack(">I", w) for w in prop.data)
    if isinstance(prop, fdt.PropStrings):
        return b"".join(s.encode("latin-1") + b"\0" for s in prop.data)
    if isinstance(prop, fdt.PropBytes):
        return bytes(prop.data)
    return b""


def node(name: str, props: list[fdt.Property], children: list[fdt.Node] = ()) -> fdt.Node:
    n = fdt.Node(name)
    for p in props:
        n.append(p)
    for c in children:
        n.append(c)
    return n


def set_prop(n: fdt.Node, name: str, data: bytes) -> None:
    """libfdt `fdt_setprop`: replace an existing property in place, or insert a new one first."""
    new = RawProp(name, data)
    new.set_parent(n)
    for i, p in enumerate(n.props):
        if p.name == name:
            n.props[i] = new
            return
    n.props.insert(0, new)


def get_prop(n: fdt.Node, name: str) -> bytes | None:
    p = n.get_property(name)
    return None if p is None else prop_bytes(p)


def ovec_dt_value(ov5: bytes) -> bytes:
    """`ibm,architecture-vec-5` from an OV5 bitmap (ov5[0] = byte 1): the length byte (N - 1) then bytes
    1..N, N being the last non-zero byte (at least 1), as QEMU's spapr_dt_ovec."""
    n = len(ov5.rstrip(b"\0"))
    n = max(n, 1)
    body = bytes(ov5[:n]).ljust(n, b"\0")
    return bytes([n - 1]) + body


def hpt_shift_for_ram(ram_size: int) -> int:
    """QEMU's HPT size: 1/128 of RAM rounded up to a power of two, within 2^18..2^46."""
    shift = max(ram_size - 1, 1).bit_length() - 7
    return min(max(shift, 18), 46)


# ---------------------------------------------------------------------------------------------------------
# Tree walking (libfdt order: a node, then its subnodes depth first)


def iter_nodes(tree: fdt.FDT) -> Iterator[fdt.Node]:
    stack = [tree.root]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(n.nodes))


def node_path(n: fdt.Node) -> str:
    parts: list[str] = []
    while n.parent is not None:
        parts.append(n.name)
        n = n.parent
    return "/" + "/".join(reversed(parts))


def get_phandle(n: fdt.Node) -> int:
    """libfdt `fdt_get_phandle`: a 4-byte `phandle`, else a 4-byte `linux,phandle`, else 0."""
    for name in ("phandle", "linux,phandle"):
        v = get_prop(n, name)
        if v is not None and len(v) == 4:
            return struct.unpack(">I", v)[0]
    return 0


def _state(obj: object) -> dict:
    """The object's attributes, with what an edit could change in place copied: lists (and the dicts in them,
    the memory reservations), dicts and byte arrays. Items objects are kept as they are: they are frozen too."""
    state = dict(vars(obj))
    for k, v in state.items():
        t = type(v)
        if t is list:
            state[k] = [dict(x) if type(x) is dict else x for x in v]
        elif t is bytearray:
            state[k] = bytes(v)
        elif t is dict:
            state[k] = dict(v)
    return state


Frozen = tuple[list[object], list[dict]]


def freeze(tree: fdt.FDT) -> Frozen:
    """Every object of the tree (itself, its header, nodes and properties) and a copy of its attributes, for
    `unchanged`: a tree a machine keeps from one reset to the next must still be exactly what it was."""
    objs: list[object] = [tree, tree.header]
    for n in iter_nodes(tree):
        objs.append(n)
        objs.extend(n.props)
    return objs, [_state(o) for o in objs]


def unchanged(frozen: Frozen) -> bool:
    """Nothing of a frozen tree was edited since, in place or by replacement: each object's attributes equal
    the copy (node and property lists compare item by item, identity first; ~0.2 us an object)."""
    objs, states = frozen
    return list(map(vars, objs)) == states


def assign_phandles(tree: fdt.FDT) -> None:
    """VOF: every node without a `phandle` gets max + 1, max + 2 ... in tree order (XICS/XIVE keep 0x1111)."""
    nodes = list(iter_nodes(tree))
    last = max((get_phandle(n) for n in nodes), default=0)
    for n in nodes:
        if n.get_property("phandle") is None:
            last += 1
            set_prop(n, "phandle", struct.pack(">I", last & 0xFFFFFFFF))


# ---------------------------------------------------------------------------------------------------------
# The nodes


def _glib_hash_order(keys: list[str]) -> list[str]:
    """The iteration order of a GLib (2.74) GHashTable of strings after inserting `keys` in order.

    QEMU lists dynamic-reconfiguration connectors by iterating the QOM container that holds them, keyed
    by "%x" of the DRC index, so this order is what the ibm,drc-* arrays show. The table: power-of-two
    buckets, first bucket (g_str_hash * 11, wrapped to 32 bits) mod the largest prime below the size,
    quadratic probing, growth to the power of two above nnodes * 4/3 once 15/16 full, rehashed in place
    (entries in bucket order, displaced ones carried along)."""
    primes = (1, 2, 3, 7, 13, 31, 61, 127, 251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071)
    shift = 3
    hashes: list[int] = [0] * 8
    slots: list[str | None] = [None] * 8
    nnodes = 0

    def str_hash(text: str) -> int:
        h = 5381
        for ch in text.encode("latin-1"):
            h = (h * 33 + (ch if ch < 0x80 else ch - 0x100)) & 0xFFFFFFFF
        return h if h >= 2 else 2  # 0 and 1 mark empty and deleted buckets

    def first(h: int) -> int:
        return ((h * 11) & 0xFFFFFFFF) % primes[shift]

    for key in keys:
        h = str_hash(key)
        i, step, mask = first(h), 0, (1 << shift) - 1
        while hashes[i]:
            step += 1
            i = (i + step) & mask
        hashes[i], slots[i] = h, key
        nnodes += 1
        if (1 << shift) <= nnodes + nnodes // 16:  # no deletions here, so occupied == nnodes
            old = 1 << shift
            shift = max((nnodes + nnodes // 3).bit_length(), 3)
            size, mask = 1 << shift, (1 << shift) - 1
            hashes += [0] * (size - old)
            slots += [None] * (size - old)
            placed = [False] * size
            for j in range(old):
                if not hashes[j] or placed[j]:
                    continue
                mh, mk = hashes[j], slots[j]
                hashes[j], slots[j] = 0, None
                while True:
                    b, step = first(mh), 0
                    while placed[b]:
                        step += 1
                        b = (b + step) & mask
                    placed[b] = True
                    if not hashes[b]:
                        hashes[b], slots[b] = mh, mk
                        break
                    (hashes[b], mh), (slots[b], mk) = (mh, hashes[b]), (mk, slots[b])
    return [k for k in slots if k is not None]


@functools.lru_cache(maxsize=8)
def drc_order(nr_cpus: int) -> tuple[int, ...]:
    """Every DRC index QEMU 7.2 creates for this machine (CPU cores, then the 31 PHB slots, then PHB 0's 256
    PCI slots, no LMBs without hot-pluggable memory) in the order QEMU lists them."""
    indexes = ([DRC_CPU_BASE + i for i in range(nr_cpus)] + [DRC_PHB_BASE + i for i in range(SPAPR_MAX_PHBS)]
               + [DRC_PCI_BASE + i for i in range(PCI_DRCS)])
    return tuple(int(k, 16) for k in _glib_hash_order([f"{i:x}" for i in indexes]))


def _drc_entries(order: tuple[int, ...], base: int, count: int, name: str, drc_type: str) -> list[tuple[int, str, str]]:
    return [(i, name.format(i - base), drc_type) for i in order if base <= i < base + count]


def _drc_props(entries: list[tuple[int, str, str]]) -> list[fdt.Property]:
    """ibm,drc-* of a connector list [(index, name, type)], in blob order (types, names, domains, indexes)."""
    count = struct.pack(">I", len(entries))
    return [
        raw("ibm,drc-types", count + b"".join(t.encode() + b"\0" for _, _, t in entries)),
        raw("ibm,drc-names", count + b"".join(nm.encode() + b"\0" for _, nm, _ in entries)),
        cells("ibm,drc-power-domains", len(entries), *([0xFFFFFFFF] * len(entries))),
        cells("ibm,drc-indexes", len(entries), *(i for i, _, _ in entries)),
    ]


def _root_props(cfg: DtConfig) -> list[fdt.Property]:
    props = _drc_props(_drc_entries(drc_order(cfg.nr_cpus), DRC_PHB_BASE, SPAPR_MAX_PHBS, "PHB {}", "PHB"))
    if cfg.xive:
        props.append(cells("ibm,plat-res-int-priorities", *PLAT_RES_INT_PRIORITIES))
    props += [
        cells("#size-cells", 2),
        cells("#address-cells", 2),
        string("vm,uuid", cfg.uuid),
        string("compatible", "qemu,pseries"),
        string("model", "IBM pSeries (emulated by qemu)"),
        string("device_type", "chrp"),
    ]
    return props


def _persistent_memory() -> fdt.Node:
    return node("ibm,persistent-memory", [
        string("device_type", "ibm,persistent-memory"),
        cells("#size-cells", 0),
        cells("#address-cells", 1),
    ])


def _chosen(cfg: DtConfig) -> fdt.Node:
    seed = cfg.rng_seed if cfg.rng_seed is not None else os.urandom(32)
    props = [
        raw("ibm,architecture-vec-5", cfg.ov5_cas),
        raw("rng-seed", seed),
        raw("ibm,arch-vec-5-platform-support", cfg.ov5_platform),
        cells("linux,pci-probe-only", 0),
        string("stdout-path", STDOUT_PATH),
        string("linux,stdout-path", STDOUT_PATH),
        cells("qemu,graphic-depth", 32),
        cells("qemu,graphic-height", 600),
        cells("qemu,graphic-width", 800),
    ]
    if cfg.kernel_size:
        if cfg.kernel_le:
            props.append(empty("qemu,boot-kernel-le"))
        props.append(cells("qemu,boot-kernel", *u64_cells(cfg.kernel_addr, cfg.kernel_size)))
    if cfg.initrd_size:
        props.append(cells("linux,initrd-end", cfg.initrd_start + cfg.initrd_size))
        props.append(cells("linux,initrd-start", cfg.initrd_start))
    if cfg.bootargs:
        props.append(string("bootargs", cfg.bootargs))
    return node("chosen", props)


def _numa_rtas(cfg: DtConfig) -> list[fdt.Property]:
    """QEMU 7.2 spapr_numa_write_rtas_dt with no -numa option (QEMU makes one NUMA node; Linux on it prints
    "Partition configured for 1 NUMA nodes"): FORM1's legacy reference points before CAS; once CAS negotiated
    FORM2, one reference point and the one-node lookup and distance tables (local distance 10), which Linux
    reads unconditionally."""
    if cfg.form2_affinity:
        return [
            cells("ibm,associativity-reference-points", 1),
            cells("ibm,max-associativity-domains", 1, 1),
            cells("ibm,numa-lookup-index-table", 1, 0),
            raw("ibm,numa-distance-table", (1).to_bytes(4, "big") + bytes([10])),
        ]
    return [
        cells("ibm,max-associativity-domains", 4, 0, 0, 0, 1),
        cells("ibm,associativity-reference-points", 4, 4, 2),
    ]


def _rtas(cfg: DtConfig) -> fdt.Node:
    tokens = sorted(cfg.rtas_tokens.items(), key=lambda kv: kv[1], reverse=True)
    props: list[fdt.Property] = [cells(name, token) for name, token in tokens]
    props += [
        cells("ibm,lrdr-capacity", *u64_cells(0, SPAPR_MEMORY_BLOCK_SIZE), cfg.nr_cpus),
        empty("ibm,extended-os-term"),
        empty("ibm,change-msix-capable"),
        cells("rtas-event-scan-rate", 1),
        cells("rtas-error-log-max", 2048),
        cells("rtas-size", rtas_size(cfg.nr_cpus)),
        *_numa_rtas(cfg),
        string("qemu,hypertas-functions", "hcall-memop1"),
        raw("ibm,hypertas-functions", b"".join(s.encode() + b"\0" for s in HYPERTAS_FUNCTIONS)),
    ]
    return node("rtas", props)


def rtas_size(max_cpus: int) -> int:
    """RTAS_MIN_SIZE (the 20-byte stub) + one error log + per-CPU FWNMI room + 8."""
    return 20 + 2048 + max_cpus * 16 + 8


def _event_sources() -> fdt.Node:
    return node("event-sources", [
        cells("interrupt-ranges", IRQ_EPOW, 1, IRQ_HOTPLUG, 1),
        cells("#interrupt-cells", 2),
        empty("interrupt-controller"),
    ], [
        node("hot-plug-events", [cells("interrupts", IRQ_HOTPLUG, 0)]),
        node("epow-events", [cells("interrupts", IRQ_EPOW, 0)]),
    ])


def _cpu(cfg: DtConfig, vcpu: int) -> fdt.Node:
    pa = bytearray(PA_FEATURES_300)
    if cfg.pre_isa3_guest:
        pa[PA_FEATURES_RADIX_BYTE] &= ~PA_FEATURES_RADIX_BIT
    shift = cfg.htab_shift if cfg.htab_shift is not None else hpt_shift_for_ram(cfg.ram_size)
    return node(f"PowerPC,POWER9@{vcpu:x}", [
        cells("ibm,dec-bits", 56),
        cells("ibm,processor-radix-AP-encodings", *RADIX_AP_ENCODINGS),
        cells("ibm,ppc-interrupt-gserver#s", vcpu, 0),
        cells("ibm,ppc-interrupt-server#s", vcpu),
        cells("ibm,pft-size", 0, shift),
        cells("ibm,chip-id", 0),
        raw("ibm,pa-features", bytes(pa)),
        cells("ibm,segment-page-sizes", *SEGMENT_PAGE_SIZES),
        cells("ibm,dfp", 1),
        cells("ibm,vmx", 2),
        cells("ibm,processor-segment-sizes", 28, 40, 0xFFFFFFFF, 0xFFFFFFFF),
        cells("ibm,spurr", 1),
        cells("ibm,purr", 1),
        empty("64-bit"),
        string("status", "okay"),
        cells("ibm,slb-size", 32),
        cells("slb-size", 32),
        cells("clock-frequency", CPU_CLOCK_FREQ),
        cells("timebase-frequency", SPAPR_TIMEBASE_FREQ),
        cells("i-cache-size", 0x8000),
        cells("d-cache-size", 0x8000),
        cells("i-cache-line-size", 128),
        cells("i-cache-block-size", 128),
        cells("d-cache-line-size", 128),
        cells("d-cache-block-size", 128),
        cells("cpu-version", cfg.cpu_version),
        string("device_type", "cpu"),
        cells("reg", vcpu),
        cells("ibm,my-drc-index", DRC_CPU_BASE + vcpu),
    ])


def _cpus(cfg: DtConfig) -> fdt.Node:
    drcs = _drc_entries(drc_order(cfg.nr_cpus), DRC_CPU_BASE, cfg.nr_cpus, "CPU {}", "CPU")
    return node("cpus", _drc_props(drcs) + [
        cells("#size-cells", 0),
        cells("#address-cells", 1),
    ], [_cpu(cfg, i) for i in range(cfg.smp)])


def _phb0(cfg: DtConfig) -> fdt.Node:
    imap: list[int] = []
    for slot in range(32):
        for pin in range(1, 5):
            imap += [slot << 11, 0, 0, pin, PHANDLE_INTC, IRQ_PCI_LSI_BASE + (slot + pin - 1) % 4, 1]
    drcs = _drc_entries(drc_order(cfg.nr_cpus), DRC_PCI_BASE, PCI_DRCS, "C{}", "28")
    return node(PHB0_NAME, _drc_props(drcs) + [
        cells("#size-cells", 2),
        cells("#address-cells", 3),
        cells("qemu,phb-enumerated", 1),
        cells("ibm,my-drc-index", DRC_PHB_BASE),
        cells("ibm,dma-window", *PHB0_DMA_WINDOW),
        cells("ibm,#dma-size-cells", 2),
        cells("ibm,#dma-address-cells", 2),
        cells("interrupt-map", *imap),
        cells("interrupt-map-mask", 0xF800, 0, 0, 0xFFFFFFFF),
        cells("ibm,ddw-extensions", 2, 0x2029, 1),
        cells("ibm,ddw-applicable", 0x2026, 0x2027, 0x2028),
        cells("ibm,pe-total-#msi", 0xD00),
        cells("ibm,pci-config-space-type", 1),
        cells("reg", *PHB0_REG),
        cells("ranges", *PHB0_RANGES),
        cells("bus-range", 0, 0xFF),
        empty("used-by-rtas"),
        cells("#interrupt-cells", 1),
        string("compatible", "IBM,Logical_PHB"),
        string("device_type", "pci"),
    ])


def _vdevice() -> fdt.Node:
    return node("vdevice", [
        empty("interrupt-controller"),
        cells("#interrupt-cells", 2),
        cells("#size-cells", 0),
        cells("#address-cells", 1),
        string("compatible", "IBM,vdevice"),
        string("device_type", "vdevice"),
    ], [
        node(f"vty@{VTY_REG:x}", [
            cells("interrupts", IRQ_VIO_BASE, 0),
            string("compatible", "hvterm1"),
            string("device_type", "serial"),
            cells("reg", VTY_REG),
        ]),
        node(f"nvram@{NVRAM_REG:x}", [
            cells("#bytes", 0x10000),
            cells("interrupts", IRQ_VIO_BASE + 1, 0),
            string("compatible", "qemu,spapr-nvram"),
            string("device_type", "nvram"),
            cells("reg", NVRAM_REG),
        ]),
    ])


def _memory(cfg: DtConfig) -> fdt.Node:
    # One node: QEMU 7.2's RMA is min(RAM, 1 TiB) without NUMA, and memory@0 covers the RMA.
    return node("memory@0", [
        cells("ibm,associativity", *((1, 0) if cfg.form2_affinity else (4, 0, 0, 0, 0))),
        cells("reg", *u64_cells(0, cfg.ram_size)),
        string("device_type", "memory"),
    ])


def build_tree(cfg: DtConfig) -> fdt.FDT:
    """The whole tree, in QEMU 7.2's blob order. With cfg.vof, finalized as VOF does at reset (phandles,
    available for the firmware/stack/kernel/initrd claims, stdout = ihandle 1)."""
    entries = []
    if cfg.kernel_size:
        entries.append({"address": cfg.kernel_addr, "size": cfg.kernel_size})
    if cfg.initrd_size:
        entries.append({"address": cfg.initrd_start, "size": cfg.initrd_size})
    tree = fdt.FDT(entries=entries)
    tree.header.version = 17
    root = tree.root
    for p in _root_props(cfg):
        root.append(p)
    children = [_persistent_memory(), _chosen(cfg), _rtas(cfg), _event_sources(), _cpus(cfg), _phb0(cfg),
                _vdevice(), _memory(cfg)]
    if cfg.intc_node is not None:
        children.append(cfg.intc_node.copy())
    for c in children:
        root.append(c)
    if cfg.vof:
        from xive_machine.firmware.vof import VofState  # the claim rules live with the client interface

        VofState.at_reset(tree, fw_size=cfg.fw_size, top_addr=cfg.ram_size).finalize(tree)
    return tree


# ---------------------------------------------------------------------------------------------------------
# Blob and source forms

FdtHeader = Struct(
    "magic" / Int32ub,
    "totalsize" / Int32ub,
    "off_dt_struct" / Int32ub,
    "off_dt_strings" / Int32ub,
    "off_mem_rsvmap" / Int32ub,
    "version" / Int32ub,
    "last_comp_version" / Int32ub,
    "boot_cpuid_phys" / Int32ub,
    "size_dt_strings" / Int32ub,
    "size_dt_struct" / Int32ub,
)
FDT_MAGIC = 0xD00DFEED
FDT_BEGIN_NODE, FDT_END_NODE, FDT_PROP, FDT_END = 1, 2, 3, 9


def _pad4(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 4)


def to_dtb(tree: fdt.FDT) -> bytes:
    """A version-17 flattened tree (header, reserve map, structure block, strings)."""
    strings = bytearray()
    offsets: dict[str, int] = {}
    out = bytearray()

    def emit(n: fdt.Node, is_root: bool) -> None:
        out.extend(struct.pack(">I", FDT_BEGIN_NODE))
        out.extend(_pad4((b"" if is_root else n.name.encode("latin-1")) + b"\0"))
        for p in n.props:
            name = p.name
            if name not in offsets:
                offsets[name] = len(strings)
                strings.extend(name.encode("latin-1") + b"\0")
            value = prop_bytes(p)
            out.extend(struct.pack(">III", FDT_PROP, len(value), offsets[name]))
            out.extend(_pad4(value))
        for c in n.nodes:
            emit(c, False)
        out.extend(struct.pack(">I", FDT_END_NODE))

    emit(tree.root, True)
    out.extend(struct.pack(">I", FDT_END))
    rsv = b"".join(struct.pack(">QQ", e["address"], e["size"]) for e in tree.entries) + bytes(16)
    off_rsv = FdtHeader.sizeof()
    off_struct = off_rsv + len(rsv)
    off_strings = off_struct + len(out)
    total = off_strings + len(strings)
    header = FdtHeader.build(dict(
        magic=FDT_MAGIC, totalsize=total, off_dt_struct=off_struct, off_dt_strings=off_strings,
        off_mem_rsvmap=off_rsv, version=17, last_comp_version=16, boot_cpuid_phys=0,
        size_dt_strings=len(strings), size_dt_struct=len(out),
    ))
    return header + rsv + bytes(out) + bytes(strings)


def from_dtb(blob: bytes) -> fdt.FDT:
    """Parse a blob with the `fdt` library. Its FDT() shares one default `entries` list between instances
    and parse_dtb appends the reserve map to it: give the tree its own list and undo the append."""
    tree = fdt.parse_dtb(blob)
    shared = tree.entries
    own = [dict(e) for e in shared[len(shared) - _rsv_count(blob):]] if shared else []
    del shared[len(shared) - len(own):]
    tree.entries = own
    return tree


def _rsv_count(blob: bytes) -> int:
    off = FdtHeader.parse(blob[: FdtHeader.sizeof()]).off_mem_rsvmap
    n = 0
    while off + 16 <= len(blob) and blob[off: off + 16] != bytes(16):
        n, off = n + 1, off + 16
    return n


def dtb_size(tree: fdt.FDT) -> int:
    return len(to_dtb(tree))


_ESCAPES = {7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r", 0x5C: "\\\\",
            0x22: '\\"'}


def _is_str_char(b: int) -> bool:
    return 0x20 <= b < 0x7F or b == 0 or b in (7, 8, 9, 10, 11, 12, 13)


def format_value(value: bytes) -> str:
    """A property value as dtc prints it: strings when the bytes look like NUL-terminated printable text,
    cells when the length is a multiple of 4, bytes otherwise."""
    if not value:
        return ""
    nul = value.count(0)
    if value[-1] == 0 and all(_is_str_char(b) for b in value) and nul <= len(value) - nul:
        text = "".join("\\0" if b == 0 else _ESCAPES.get(b, chr(b)) for b in value[:-1])
        return f'"{text}"'
    if len(value) % 4 == 0:
        words = struct.unpack(f">{len(value) // 4}I", value)
        return "<" + " ".join(f"0x{w:02x}" for w in words) + ">"
    return "[" + " ".join(f"{b:02x}" for b in value) + "]"


def _prop_line(p: fdt.Property) -> str:
    value = prop_bytes(p)
    return f"{p.name};" if not value else f"{p.name} = {format_value(value)};"


def to_dts(tree: fdt.FDT) -> str:
    """DTS text laid out as `dtc -I dtb -O dts` prints it (tabs, blank line before each subnode)."""
    lines = ["/dts-v1/;", ""]
    for e in tree.entries:
        lines.append(f"/memreserve/\t0x{e['address']:016x} 0x{e['size']:016x};")

    def emit(n: fdt.Node, depth: int) -> None:
        tab = "\t" * depth
        lines.append(f"{tab}{'/' if depth == 0 else n.name} {{")
        for p in n.props:
            lines.append(f"{tab}\t{_prop_line(p)}")
        for c in n.nodes:
            lines.append("")
            emit(c, depth + 1)
        lines.append(f"{tab}}};")

    emit(tree.root, 0)
    return "\n".join(lines) + "\n"


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def diff_trees(a: fdt.FDT, b: fdt.FDT) -> list[str]:
    """What changed from a to b, one readable line each: `+`/`-` for added/removed nodes and properties,
    `~` for a changed value (old -> new), `=` for a property that only moved. Paths in tree order."""
    out: list[str] = []

    def props(n: fdt.Node) -> dict[str, bytes]:
        return {p.name: prop_bytes(p) for p in n.props}

    def added(n: fdt.Node, sign: str) -> None:
        path = node_path(n)
        out.append(f"{sign} {path}/")
        for p in n.props:
            out.append(_short(f"{sign} {path if path != '/' else ''}/{_prop_line(p)}"))
        for c in n.nodes:
            added(c, sign)

    def walk(x: fdt.Node, y: fdt.Node) -> None:
        path = node_path(x)
        base = path if path != "/" else ""
        px, py = props(x), props(y)
        for p in x.props:
            if p.name not in py:
                out.append(_short(f"- {base}/{_prop_line(p)}"))
            elif py[p.name] != px[p.name]:
                old, new = format_value(px[p.name]) or "(empty)", format_value(py[p.name]) or "(empty)"
                out.append(_short(f"~ {base}/{p.name}: {old} -> {new}", 240))
        for p in y.props:
            if p.name not in px:
                out.append(_short(f"+ {base}/{_prop_line(p)}"))
        order_x = [p.name for p in x.props if p.name in py]
        order_y = [p.name for p in y.props if p.name in px]
        if order_x != order_y:
            out.append(f"= {base}/: property order changed")
        ny = {c.name: c for c in y.nodes}
        nx = {c.name: c for c in x.nodes}
        for c in x.nodes:
            if c.name in ny:
                walk(c, ny[c.name])
            else:
                added(c, "-")
        for c in y.nodes:
            if c.name not in nx:
                added(c, "+")

    ra = [(e["address"], e["size"]) for e in a.entries]
    rb = [(e["address"], e["size"]) for e in b.entries]
    for addr, size in ra:
        if (addr, size) not in rb:
            out.append(f"- /memreserve/ 0x{addr:x} 0x{size:x}")
    for addr, size in rb:
        if (addr, size) not in ra:
            out.append(f"+ /memreserve/ 0x{addr:x} 0x{size:x}")
    walk(a.root, b.root)
    return out
