"""The ibm,client-architecture-support vector: PVR list and option vectors OV1..OVn.

Layout (all big-endian; spapr-cas-rtas-xics.md 1.1):
  N x {u32 mask, u32 value}   ends at the first pair with ``value & ~mask != 0`` (consumed); at most 512 pairs
  u8 num_vectors - 1
  per vector: u8 (length - 1), then `length` content bytes

Bytes are numbered from 1 inside a vector (byte 1 = first byte after the length byte), as QEMU's
``OV_BIT(byte, bit)`` and Linux's 0xIIFF constants do. Two parse modes:

* strict (files, ``cas --decode``): a short buffer, a length byte running past the end or no terminator within
  512 pairs raises a precise :class:`VectorError`;
* ``strict=False`` (what QEMU sees): bytes past the buffer read as zero, the PVR scan stops after 512 pairs and
  the option vectors then start at byte 4096. QEMU reads guest memory with ``ldl_be_phys``/``ldub_phys``, which
  return 0 outside RAM, so this mode reproduces its result for a vector at the end of RAM.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from construct import Array, Bytes, Int8ub, Int16ub, Int32ub, Struct, this

from xive_machine.errors import GuestError

PVR_LIST_MAX = 512  # QEMU cas_check_pvr reads at most this many pairs
OV_MAXBYTES = 256  # QEMU spapr_ovec.c: a vector holds at most 256 bytes (length byte 255)
MAX_VECTORS = 256  # the count byte is num_vectors - 1
PVR_PAIR_SIZE = 8
# Everything QEMU can look at: the PVR list, the count byte and OV1..OV5 at full length.
QEMU_SPAN = PVR_LIST_MAX * PVR_PAIR_SIZE + 1 + 5 * (1 + OV_MAXBYTES)
# Everything any reader can look at (all 256 vectors at full length).
MAX_SPAN = PVR_LIST_MAX * PVR_PAIR_SIZE + 1 + MAX_VECTORS * (1 + OV_MAXBYTES)

# --- layouts, declared once --------------------------------------------------------------------------------

PvrPair = Struct("mask" / Int32ub, "value" / Int32ub)
# The PVR scan runs up to 512 times per CAS: a struct twin of PvrPair, checked against it at import.
_PVR_PAIR = struct.Struct(">II")
assert _PVR_PAIR.size == PvrPair.sizeof() == PVR_PAIR_SIZE
OptionVectorLayout = Struct("length" / Int8ub, "content" / Bytes(this.length + 1))
VectorTableHeader = Struct("count" / Int8ub)  # num_vectors - 1

# Linux prom_init.c `struct option_vector2` (33 bytes): Open Firmware options.
OptionVector2 = Struct(
    "byte1" / Int8ub,
    "reserved" / Int16ub,
    "real_base" / Int32ub,
    "real_size" / Int32ub,
    "virt_base" / Int32ub,
    "virt_size" / Int32ub,
    "load_base" / Int32ub,
    "min_rma" / Int32ub,  # MB
    "min_load" / Int32ub,
    "min_rma_percent" / Int8ub,
    "max_pft_size" / Int8ub,  # log2
)
# Linux `struct option_vector5` (26 bytes): the platform options CAS negotiates.
OptionVector5 = Struct(
    "byte1" / Int8ub,
    "byte2" / Int8ub,
    "byte3" / Int8ub,
    "cmo" / Int8ub,
    "associativity" / Int8ub,
    "bin_opts" / Int8ub,
    "micro_checkpoint" / Int8ub,
    "reserved0" / Int8ub,
    "max_cpus" / Int32ub,  # bytes 9-12
    "papr_level" / Int16ub,  # bytes 13-14
    "reserved1" / Int16ub,
    "platform_facilities" / Int8ub,  # byte 17
    "reserved2" / Int8ub,
    "reserved3" / Int16ub,
    "subprocessors" / Int8ub,  # byte 21
    "byte22" / Int8ub,
    "intarch" / Int8ub,  # byte 23: interrupt mode
    "mmu" / Int8ub,  # byte 24
    "hash_ext" / Int8ub,
    "radix_ext" / Int8ub,  # byte 26
)
# Linux `struct option_vector6`.
OptionVector6 = Struct("reserved" / Int8ub, "secondary_pteg" / Int8ub, "os_name" / Int8ub)
# `ibm,architecture-vec-5` / a vector as QEMU's spapr_dt_ovec writes it: length byte, then the bytes.
ArchVec5Property = Struct("length" / Int8ub, "bytes" / Array(this.length + 1, Int8ub))

# --- named bits ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OvBit:
    """One option-vector flag: vector number, byte (1-based) and mask; `name` as QEMU (else Linux) spells it."""

    vector: int
    byte: int
    mask: int
    name: str
    doc: str = ""

    @property
    def qemu_bit(self) -> int:
        """QEMU's OV_BIT(byte, bit) number (bit 0 = 0x80) for single-bit masks."""
        return (self.byte - 1) * 8 + (8 - self.mask.bit_length())


OV_IGNORE = OvBit(0, 1, 0x80, "OV_IGNORE", "ignore this vector")
OV_CESSATION_POLICY = OvBit(0, 1, 0x40, "OV_CESSATION_POLICY", "halt if an unsupported option is present")

OV1_PPC_2_00 = OvBit(1, 2, 0x80, "OV1_PPC_2_00", "ISA 2.00")
OV1_PPC_2_01 = OvBit(1, 2, 0x40, "OV1_PPC_2_01", "ISA 2.01")
OV1_PPC_2_02 = OvBit(1, 2, 0x20, "OV1_PPC_2_02", "ISA 2.02")
OV1_PPC_2_03 = OvBit(1, 2, 0x10, "OV1_PPC_2_03", "ISA 2.03")
OV1_PPC_2_04 = OvBit(1, 2, 0x08, "OV1_PPC_2_04", "ISA 2.04")
OV1_PPC_2_05 = OvBit(1, 2, 0x04, "OV1_PPC_2_05", "ISA 2.05")
OV1_PPC_2_06 = OvBit(1, 2, 0x02, "OV1_PPC_2_06", "ISA 2.06")
OV1_PPC_2_07 = OvBit(1, 2, 0x01, "OV1_PPC_2_07", "ISA 2.07")
OV1_PPC_3_00 = OvBit(1, 3, 0x80, "OV1_PPC_3_00", "ISA 3.00")
OV1_PPC_3_1 = OvBit(1, 3, 0x40, "OV1_PPC_3_1", "ISA 3.1")

OV2_REAL_MODE = OvBit(2, 1, 0x20, "OV2_REAL_MODE", "Open Firmware in real mode")

OV3_FP = OvBit(3, 2, 0x80, "OV3_FP", "floating point")
OV3_VMX = OvBit(3, 2, 0x40, "OV3_VMX", "VMX/Altivec")
OV3_DFP = OvBit(3, 2, 0x20, "OV3_DFP", "decimal floating point")

OV4_MIN_ENT_CAP = OvBit(4, 2, 0x01, "OV4_MIN_ENT_CAP", "minimum VP entitled capacity")

OV5_LPAR = OvBit(5, 2, 0x80, "OV5_LPAR", "logical partitioning")
OV5_SPLPAR = OvBit(5, 2, 0x40, "OV5_SPLPAR", "shared-processor LPAR")
OV5_DRCONF_MEMORY = OvBit(5, 2, 0x20, "OV5_DRCONF_MEMORY", "ibm,dynamic-reconfiguration-memory")
OV5_LARGE_PAGES = OvBit(5, 2, 0x10, "OV5_LARGE_PAGES", "large pages")
OV5_DONATE_DEDICATE_CPU = OvBit(5, 2, 0x02, "OV5_DONATE_DEDICATE_CPU", "donate dedicated CPU")
OV5_MSI = OvBit(5, 2, 0x01, "OV5_MSI", "PCIe MSI")
OV5_CMO = OvBit(5, 4, 0x80, "OV5_CMO", "cooperative memory overcommitment")
OV5_XCMO = OvBit(5, 4, 0x40, "OV5_XCMO", "page coalescing")
OV5_FORM1_AFFINITY = OvBit(5, 5, 0x80, "OV5_FORM1_AFFINITY", "FORM1 NUMA affinity")
OV5_PRRN = OvBit(5, 5, 0x40, "OV5_PRRN", "platform resource reassignment")
OV5_FORM2_AFFINITY = OvBit(5, 5, 0x20, "OV5_FORM2_AFFINITY", "FORM2 NUMA affinity")
OV5_HP_EVT = OvBit(5, 6, 0x04, "OV5_HP_EVT", "hot-plug event source")
OV5_HPT_RESIZE = OvBit(5, 6, 0x01, "OV5_HPT_RESIZE", "HPT resizing (Linux OV5_RESIZE_HPT)")
OV5_PFO_HW_RNG = OvBit(5, 17, 0x80, "OV5_PFO_HW_RNG", "PFO random number generator")
OV5_PFO_HW_842 = OvBit(5, 17, 0x40, "OV5_PFO_HW_842", "PFO 842 compression")
OV5_PFO_HW_ENCR = OvBit(5, 17, 0x20, "OV5_PFO_HW_ENCR", "PFO encryption")
OV5_SUB_PROCESSORS = OvBit(5, 21, 0x01, "OV5_SUB_PROCESSORS", "1, 2 or 4 sub-processors")
OV5_DRMEM_V2 = OvBit(5, 22, 0x80, "OV5_DRMEM_V2", "ibm,dynamic-reconfiguration-memory v2")
OV5_DRC_INFO = OvBit(5, 22, 0x40, "OV5_DRC_INFO", "ibm,drc-info")
OV5_XIVE_BOTH = OvBit(5, 23, 0x80, "OV5_XIVE_BOTH", "XICS or XIVE (platform side only)")
OV5_XIVE_EXPLOIT = OvBit(5, 23, 0x40, "OV5_XIVE_EXPLOIT", "XIVE exploitation")
OV5_MMU_BOTH = OvBit(5, 24, 0x80, "OV5_MMU_BOTH", "hash or radix (platform side only)")
OV5_MMU_RADIX_300 = OvBit(5, 24, 0x40, "OV5_MMU_RADIX_300", "radix MMU")
OV5_NMMU = OvBit(5, 24, 0x20, "OV5_NMMU", "nest MMU")
OV5_HASH_SEG_TBL = OvBit(5, 25, 0x80, "OV5_HASH_SEG_TBL", "in-memory segment tables")
OV5_HASH_GTSE = OvBit(5, 25, 0x40, "OV5_HASH_GTSE", "hash guest translation shootdown")
OV5_MMU_RADIX_GTSE = OvBit(5, 26, 0x40, "OV5_MMU_RADIX_GTSE", "radix guest translation shootdown")

OV6_LINUX = 0x02  # OV6 os_name value

# QEMU's platform-side byte-23 values (include/hw/ppc/spapr.h) and the byte-23/24 field masks.
SPAPR_OV5_XIVE_LEGACY = 0x00
SPAPR_OV5_XIVE_EXPLOIT = 0x40
SPAPR_OV5_XIVE_BOTH = 0x80
OV5_XIVE_SUPPORT_MASK = 0xC0
OV5_MMU_SUPPORT_MASK = 0xC0

_NAMED_BITS: dict[tuple[int, int], tuple[OvBit, ...]] = {}
for _b in [v for v in tuple(globals().values()) if isinstance(v, OvBit) and v.vector > 0]:
    _NAMED_BITS.setdefault((_b.vector, _b.byte), ())
    _NAMED_BITS[(_b.vector, _b.byte)] += (_b,)
# byte 23 and 24 are two-bit fields, decoded as a whole
_OV5_FIELDS = {
    23: ("interrupt mode", {0x00: "XICS legacy only", 0x40: "XIVE exploitation (OV5_XIVE_EXPLOIT)",
                            0x80: "XICS or XIVE (OV5_XIVE_BOTH, platform side only)",
                            0xC0: "invalid (both bits)"}),
    24: ("MMU", {0x00: "hash", 0x40: "radix (OV5_MMU_RADIX_300)", 0x80: "hash or radix (OV5_MMU_BOTH)",
                 0xC0: "hash or radix, dynamic switching (OV5_MMU_DYNAMIC)"}),
}


def ov_test(content: bytes, bit: OvBit) -> bool:
    """Is `bit` set in a vector given as its content bytes (content[0] = byte 1)?"""
    i = bit.byte - 1
    return i < len(content) and bool(content[i] & bit.mask)


def ov_intersect(a: bytes, b: bytes) -> bytes:
    """Bitwise AND of two vectors (QEMU spapr_ovec_intersect), trailing zero bytes trimmed."""
    return bytes(x & y for x, y in zip(a, b, strict=False)).rstrip(b"\0")


def ov_dt_property(content: bytes) -> bytes:
    """A vector as QEMU's spapr_dt_ovec writes it: (n - 1), bytes 1..n, n = last non-zero byte (at least 1)."""
    trimmed = bytes(content[:OV_MAXBYTES]).rstrip(b"\0") or b"\0"
    return ArchVec5Property.build({"length": len(trimmed) - 1, "bytes": list(trimmed)})


def ov_from_dt_property(prop: bytes) -> bytes:
    """Inverse of :func:`ov_dt_property` (content bytes, not trimmed)."""
    return bytes(ArchVec5Property.parse(bytes(prop)).bytes)


# --- the whole vector ----------------------------------------------------------------------------------------


class VectorError(GuestError):
    """A malformed architecture vector, with the byte offset where it went wrong."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


class VectorTruncated(VectorError):
    """The buffer ends inside the PVR list or before a vector's length byte / the count byte."""


class VectorLengthPastEnd(VectorError):
    """A vector's length byte claims more bytes than the buffer holds."""


class PvrListUnterminated(VectorError):
    """512 PVR pairs without a terminator (QEMU then takes byte 4096 as the start of the option vectors)."""


@dataclass(frozen=True, slots=True)
class PvrEntry:
    mask: int
    value: int

    @property
    def is_terminator(self) -> bool:
        return bool(self.value & ~self.mask & 0xFFFFFFFF)


LINUX_TERMINATOR = PvrEntry(0xFFFFFFFE, 0x0F000001)  # "2.04 and earlier": bit 0 outside the mask


@dataclass(frozen=True, slots=True)
class ArchVector:
    """A parsed vector. `vectors[i]` is OV(i+1)'s content; `terminator` None = 512 pairs without one."""

    pvrs: tuple[PvrEntry, ...]
    terminator: PvrEntry | None
    vectors: tuple[bytes, ...]
    trailing: bytes = b""  # bytes after the last counted vector (Linux 6.x sends OV7 there); strict mode only
    faults: tuple[str, ...] = field(default=(), compare=False)  # what strict parsing would have refused

    def vector(self, n: int) -> bytes | None:
        """OVn's content, or None when the count byte says it is absent (QEMU vector_addr)."""
        return self.vectors[n - 1] if 1 <= n <= len(self.vectors) else None


def parse_arch_vector(data: bytes | bytearray | memoryview, *, strict: bool = True) -> ArchVector:
    """Parse a CAS vector. strict=False reads past the end as zeros, as QEMU does (see module docstring)."""
    buf = bytes(data)
    n = len(buf)
    faults: list[str] = []

    def get(off: int, size: int, what: str, exc: type[VectorError]) -> bytes:
        if off + size > n:
            msg = (f"architecture vector truncated: {what} needs bytes {off}..{off + size - 1} "
                   f"but the vector has {n} bytes")
            if exc is VectorLengthPastEnd:
                msg = (f"architecture vector: {what} runs to byte {off + size - 1}, "
                       f"past the end of the {n}-byte vector")
            if strict:
                raise exc(msg, off)
            if not faults:
                faults.append(msg)
            return buf[off:off + size].ljust(size, b"\0")
        return buf[off:off + size]

    pvrs: list[PvrEntry] = []
    terminator: PvrEntry | None = None
    off = 0
    for i in range(PVR_LIST_MAX):
        if off + PVR_PAIR_SIZE <= n:
            mask, value = _PVR_PAIR.unpack_from(buf, off)
        else:
            mask, value = _PVR_PAIR.unpack(get(off, PVR_PAIR_SIZE, f"PVR pair {i}", VectorTruncated))
        off += PVR_PAIR_SIZE
        entry = PvrEntry(mask, value)
        if entry.is_terminator:
            terminator = entry
            break
        pvrs.append(entry)
    if terminator is None:
        msg = f"architecture vector: no PVR terminator within {PVR_LIST_MAX} pairs (value & ~mask != 0)"
        if strict:
            raise PvrListUnterminated(msg, off)
        faults.append(msg)

    count = VectorTableHeader.parse(get(off, 1, "the option-vector count byte", VectorTruncated)).count + 1
    off += 1
    vectors: list[bytes] = []
    for i in range(1, count + 1):
        length = get(off, 1, f"the OV{i} length byte", VectorTruncated)[0] + 1
        content = get(off + 1, length, f"OV{i} ({length} bytes)", VectorLengthPastEnd)
        vectors.append(content)
        off += 1 + length
    trailing = buf[off:] if strict else b""
    return ArchVector(tuple(pvrs), terminator, tuple(vectors), trailing, tuple(faults))


def build_arch_vector(av: ArchVector) -> bytes:
    """Bytes of `av`. Raises ValueError for a vector no guest could send."""
    if av.terminator is None:
        if len(av.pvrs) != PVR_LIST_MAX:
            raise ValueError("without a terminator the PVR list must hold exactly 512 pairs")
    else:
        if not av.terminator.is_terminator:
            raise ValueError(f"terminator {av.terminator} has no value bit outside its mask")
        if len(av.pvrs) >= PVR_LIST_MAX:
            raise ValueError("at most 511 PVR pairs fit before the terminator")
    if any(p.is_terminator for p in av.pvrs):
        raise ValueError("a PVR entry before the terminator would end the list")
    if not 1 <= len(av.vectors) <= MAX_VECTORS:
        raise ValueError("between 1 and 256 option vectors")
    parts = [PvrPair.build({"mask": p.mask, "value": p.value}) for p in av.pvrs]
    if av.terminator is not None:
        parts.append(PvrPair.build({"mask": av.terminator.mask, "value": av.terminator.value}))
    parts.append(VectorTableHeader.build({"count": len(av.vectors) - 1}))
    for v in av.vectors:
        if not 1 <= len(v) <= OV_MAXBYTES:
            raise ValueError("an option vector holds 1 to 256 bytes")
        parts.append(OptionVectorLayout.build({"length": len(v) - 1, "content": bytes(v)}))
    parts.append(bytes(av.trailing))
    return b"".join(parts)


# --- human-readable decode ------------------------------------------------------------------------------------

_RAW_PVR_FAMILIES = {
    0x003A: "POWER5", 0x003B: "POWER5+", 0x003E: "POWER6", 0x003F: "POWER7", 0x004A: "POWER7+",
    0x004B: "POWER8E", 0x004C: "POWER8NVL", 0x004D: "POWER8", 0x004E: "POWER9", 0x004F: "POWER9P",
    0x0080: "POWER10", 0x0082: "POWER11",
}
LOGICAL_PVR_NAMES = {
    0x0F000001: "logical 2.04 and earlier", 0x0F000002: "logical 2.05 (power6)",
    0x0F000003: "logical 2.06 (power7)", 0x0F100003: "logical 2.06+ (power7+)",
    0x0F000004: "logical 2.07 (power8)", 0x0F000005: "logical 3.00 (power9)",
    0x0F000006: "logical 3.1 (power10)", 0x0F000007: "logical P11 compliant",
}


def pvr_description(entry: PvrEntry) -> str:
    if entry.mask == 0xFFFFFFFF and entry.value in LOGICAL_PVR_NAMES:
        return LOGICAL_PVR_NAMES[entry.value]
    if entry.value in LOGICAL_PVR_NAMES and entry.is_terminator:
        return LOGICAL_PVR_NAMES[entry.value]
    fam = _RAW_PVR_FAMILIES.get(entry.value >> 16)
    if fam and entry.mask & 0xFFFF0000 in (0xFFFF0000, 0xFFFE0000):
        return f"{fam} raw" if entry.mask & 0xFFFF0000 == 0xFFFF0000 else f"{fam} family raw"
    if entry.mask == 0:
        return "matches any PVR"
    return "unknown"


def _flag_names(vector: int, byte: int, value: int) -> tuple[list[str], int]:
    names, known = [], 0
    bits = _NAMED_BITS.get((vector, byte), ())
    if byte == 1:
        bits = bits + (OV_IGNORE, OV_CESSATION_POLICY)
    for b in bits:
        known |= b.mask
        if value & b.mask:
            names.append(b.name)
    return names, value & ~known


def _byte_line(vector: int, byte: int, value: int) -> str:
    if vector == 5 and byte in _OV5_FIELDS:
        label, choices = _OV5_FIELDS[byte]
        line = f"  byte {byte} = {value:#04x}: {label} = {choices[value & 0xC0]}"
        extra = value & 0x3F
        if byte == 24 and extra & OV5_NMMU.mask:
            line += ", OV5_NMMU"
            extra &= ~OV5_NMMU.mask
        return line + (f", unknown bits {extra:#04x}" if extra else "")
    names, unknown = _flag_names(vector, byte, value)
    line = f"  byte {byte} = {value:#04x}"
    if names:
        line += ": " + " ".join(names)
    if unknown:
        line += f"{',' if names else ':'} unknown bits {unknown:#04x}"
    return line


def _struct_lines(layout: Struct, content: bytes, skip: set[str]) -> list[str]:
    size = layout.sizeof()
    parsed = layout.parse(content[:size].ljust(size, b"\0"))
    out, pos = [], 0
    for sc in layout.subcons:
        width = sc.sizeof()
        if sc.name not in skip and pos < len(content) and not sc.name.startswith("reserved"):
            val = parsed[sc.name]
            out.append(f"  bytes {pos + 1}-{pos + width} {sc.name} = {val:#x}" if width > 1
                       else f"  byte {pos + 1} {sc.name} = {val:#04x}")
        pos += width
    return out


def decode_vector_lines(number: int, content: bytes) -> list[str]:
    """Lines describing OV`number` (content bytes)."""
    head = f"OV{number} ({len(content)} bytes): {content.hex(' ')}"
    lines = [head] if len(content) <= 40 else [f"OV{number} ({len(content)} bytes)"]
    if number == 2:
        lines.append(_byte_line(2, 1, content[0]))
        lines += _struct_lines(OptionVector2, content, {"byte1"})
    elif number == 5:
        words = {9: ("max_cpus", 4), 13: ("papr_level", 2)}
        i = 1
        while i <= len(content):
            if i in words:
                name, width = words[i]
                chunk = content[i - 1:i - 1 + width]
                if any(chunk):
                    lines.append(f"  bytes {i}-{i + width - 1} {name} = {int.from_bytes(chunk, 'big')}")
                i += width
                continue
            if content[i - 1]:
                lines.append(_byte_line(5, i, content[i - 1]))
            i += 1
    elif number == 6:
        lines.append(f"  byte 1 reserved = {content[0]:#04x}")
        lines += _struct_lines(OptionVector6, content, {"reserved"})
        if len(content) >= 3 and content[2] == OV6_LINUX:
            lines[-1] += " (Linux)"
    elif number == 7:
        text = content.split(b"\0", 1)[0].decode("ascii", "replace")
        lines.append(f"  os id = {text!r}")
    else:
        for i, value in enumerate(content, start=1):
            if value:
                lines.append(_byte_line(number, i, value))
    return lines


def decode_lines(av: ArchVector) -> list[str]:
    """Human-readable decode, one fact per line (for `xive-machine cas --decode`)."""
    lines = [f"PVR list: {len(av.pvrs)} entries"]
    for i, p in enumerate(av.pvrs):
        lines.append(f"  [{i}] mask {p.mask:#010x} value {p.value:#010x}  {pvr_description(p)}")
    if av.terminator is None:
        lines.append(f"  no terminator within {PVR_LIST_MAX} pairs")
    else:
        t = av.terminator
        lines.append(f"  terminator mask {t.mask:#010x} value {t.value:#010x}  {pvr_description(t)}")
    lines.append(f"{len(av.vectors)} option vectors (count byte {len(av.vectors) - 1})")
    for n, content in enumerate(av.vectors, start=1):
        lines += decode_vector_lines(n, content)
    if av.trailing:
        lines.append(f"{len(av.trailing)} bytes after the last counted vector")
        # Linux 6.x appends OV7 (length byte 255) while still counting 6 vectors.
        if len(av.trailing) >= 1 + av.trailing[0] + 1:
            size = av.trailing[0] + 1
            lines += ["  looks like an uncounted option vector:"] + [
                "  " + s for s in decode_vector_lines(len(av.vectors) + 1, av.trailing[1:1 + size])]
    for f in av.faults:
        lines.append(f"fault: {f}")
    return lines


def decode_bytes(data: bytes | bytearray | memoryview) -> list[str]:
    """Decode a vector file for `xive-machine cas --decode`: the strict decode, or, for a malformed vector,
    the precise error first and then what QEMU would read (missing bytes as zero)."""
    try:
        return decode_lines(parse_arch_vector(data))
    except VectorError as err:
        return [f"error at byte {err.offset}: {err}", "as QEMU reads it (bytes past the end are zero):"] + [
            "  " + line for line in decode_lines(parse_arch_vector(data, strict=False))]
