"""The KVM interrupt-controller device uAPIs of a POWER9 host: XIVE native (KVM_DEV_TYPE_XIVE) and XICS
(KVM_DEV_TYPE_XICS, served there by the XICS-on-XIVE device): identifiers, attribute groups, attribute words,
`struct kvm_ppc_xive_eq`, the ONE_REG words.

Values and names are those of Linux `arch/powerpc/include/uapi/asm/kvm.h` (XICS and XIVE blocks, ONE_REG
ids) and `include/uapi/linux/kvm.h` (xive.md 6.1, 6.2). Every attribute word is declared once with construct in the
host's byte order (a ppc64le host: little-endian, chosen once below); the `*_SHIFT` / `*_MASK` constants the
device model uses on its paths are derived from those declarations, never retyped. TIMA words inside
`KVM_REG_PPC_VP_STATE` stay big-endian whatever the host: they are raw TIMA bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from construct import (
    BitsInteger,
    BitStruct,
    ByteSwapped,
    Flag,
    Int32ub,
    Int32ul,
    Int64ub,
    Int64ul,
    Padding,
    Struct,
)

from xive_machine.intc.xive.regs import bit_fields

# --- host byte order (chosen once) ------------------------------------------------------------------------

HOST_BYTEORDER = "little"  # ppc64le host (and the x86-64 machine running this model)
_LE = HOST_BYTEORDER == "little"
HostU32 = Int32ul if _LE else Int32ub
HostU64 = Int64ul if _LE else Int64ub


def _host_word(bits: BitStruct) -> Any:
    """A u64 attribute word declared MSB-first, stored in host order."""
    return ByteSwapped(bits) if _LE else bits


# --- identifiers (include/uapi/linux/kvm.h) ---------------------------------------------------------------

KVM_DEV_TYPE_XICS = 3  # enum kvm_device_type: FSL_MPIC_20 1, FSL_MPIC_42 2, XICS 3, VFIO 4 ...
KVM_DEV_TYPE_XIVE = 9
KVM_CAP_IRQ_XICS = 92
KVM_CAP_PPC_RTAS = 91  # in-kernel RTAS tokens (KVM_PPC_RTAS_DEFINE_TOKEN)
KVM_CAP_PPC_IRQ_XIVE = 169
KVM_CREATE_DEVICE_TEST = 1

# struct kvm_irq_level.level for KVM_IRQ_LINE on powerpc (u32)
KVM_INTERRUPT_SET = 0xFFFFFFFF  # -1U: an edge (MSI)
KVM_INTERRUPT_UNSET = 0xFFFFFFFE  # -2U: line low
KVM_INTERRUPT_SET_LEVEL = 0xFFFFFFFD  # -3U: line held high (LSI)

KVM_REG_PPC = 0x1000000000000000
KVM_REG_SIZE_SHIFT = 52
KVM_REG_SIZE_MASK = 0x00F0000000000000
KVM_REG_SIZE_U64 = 0x0030000000000000
KVM_REG_SIZE_U128 = 0x0040000000000000
KVM_REG_PPC_ICP_STATE = KVM_REG_PPC | KVM_REG_SIZE_U64 | 0x8C
KVM_REG_PPC_VP_STATE = KVM_REG_PPC | KVM_REG_SIZE_U128 | 0x8D


def kvm_reg_size(reg_id: int) -> int:
    """Bytes of a ONE_REG register (`KVM_REG_SIZE`)."""
    return 1 << ((reg_id & KVM_REG_SIZE_MASK) >> KVM_REG_SIZE_SHIFT)


# --- attribute groups and CTRL attributes (arch/powerpc/include/uapi/asm/kvm.h) ---------------------------

KVM_DEV_XICS_GRP_SOURCES = 1  # 64-bit source attributes
KVM_DEV_XICS_GRP_CTRL = 2
KVM_DEV_XICS_NR_SERVERS = 1

KVM_DEV_XIVE_GRP_CTRL = 1
KVM_DEV_XIVE_RESET = 1
KVM_DEV_XIVE_EQ_SYNC = 2
KVM_DEV_XIVE_NR_SERVERS = 3
KVM_DEV_XIVE_GRP_SOURCE = 2  # 64-bit source identifier
KVM_DEV_XIVE_GRP_SOURCE_CONFIG = 3  # 64-bit source identifier
KVM_DEV_XIVE_GRP_EQ_CONFIG = 4  # 64-bit EQ identifier
KVM_DEV_XIVE_GRP_SOURCE_SYNC = 5  # 64-bit source identifier

# mmap page offsets, in host pages (64 KiB on ppc64le; QEMU passes `pgoff << 16` to mmap)
KVM_XIVE_ESB_PAGE_OFFSET = 4
KVM_XIVE_TIMA_PAGE_OFFSET = 0
HOST_PAGE_SHIFT = 16
HOST_PAGE_SIZE = 1 << HOST_PAGE_SHIFT

# --- attribute words --------------------------------------------------------------------------------------

KvmXiveSource = _host_word(
    BitStruct(
        Padding(62),
        "asserted" / Flag,  # bit 1: KVM_XIVE_LEVEL_ASSERTED
        "level_sensitive" / Flag,  # bit 0: KVM_XIVE_LEVEL_SENSITIVE
    )
)
"""GRP_SOURCE value: the source's trigger type and line level."""

KvmXiveSourceConfig = _host_word(
    BitStruct(
        "eisn" / BitsInteger(31),  # bits 33-63
        "masked" / Flag,  # bit 32
        "server" / BitsInteger(29),  # bits 3-31
        "priority" / BitsInteger(3),  # bits 0-2
    )
)
"""GRP_SOURCE_CONFIG value: target server and priority, masked flag, EISN."""

KvmXiveEqId = _host_word(
    BitStruct(
        Padding(32),
        "server" / BitsInteger(29),  # bits 3-31
        "priority" / BitsInteger(3),  # bits 0-2
    )
)
"""GRP_EQ_CONFIG attribute number (the EQ identifier), as a u64."""

KvmPpcXiveEq = Struct(
    "flags" / HostU32,
    "qshift" / HostU32,
    "qaddr" / HostU64,
    "qtoggle" / HostU32,
    "qindex" / HostU32,
    Padding(40),
)
"""`struct kvm_ppc_xive_eq` (64 bytes), the GRP_EQ_CONFIG value."""

KvmXicsSource = _host_word(
    BitStruct(
        Padding(19),
        "queued" / Flag,  # bit 44: KVM_XICS_QUEUED
        "presented" / Flag,  # bit 43: KVM_XICS_PRESENTED
        "pending" / Flag,  # bit 42: KVM_XICS_PENDING
        "masked" / Flag,  # bit 41: KVM_XICS_MASKED
        "level_sensitive" / Flag,  # bit 40: KVM_XICS_LEVEL_SENSITIVE
        "priority" / BitsInteger(8),  # bits 32-39
        "destination" / BitsInteger(32),  # bits 0-31: the server
    )
)
"""KVM_DEV_XICS_GRP_SOURCES value: one source's routing and state (the uAPI shared by book3s_xics.c and
book3s_xive.c)."""

KvmPpcIcpState = _host_word(
    BitStruct(
        "cppr" / BitsInteger(8),  # bits 56-63: current processor priority
        "xisr" / BitsInteger(24),  # bits 32-55: interrupt source latched
        "mfrr" / BitsInteger(8),  # bits 24-31: pending IPI priority
        "ppri" / BitsInteger(8),  # bits 16-23: priority of the latched interrupt
        Padding(16),
    )
)
"""`KVM_REG_PPC_ICP_STATE` (ONE_REG, u64 in host order): one vCPU's presenter."""

KvmNrServers = HostU32
"""CTRL/NR_SERVERS value: u32 = highest vCPU id + 1."""

KvmPpcVpState = Struct(
    "w01" / Int64ub,  # OS ring word0+word1 as raw TIMA bytes: NSR CPPR IPB LSMFB ACK# INC AGE PIPR
    "unused" / Int64ub,
)
"""`KVM_REG_PPC_VP_STATE` (128 bits, `xive_timaval[2]`); only the first word carries state."""


def _uapi_field(bits: BitStruct, name: str) -> tuple[int, int]:
    """(SHIFT, MASK) as the uapi header writes them: the mask in place, not shifted down."""
    shift, mask = bit_fields(bits)[name]
    return shift, mask << shift


_SRC = bit_fields(KvmXiveSource.subcon if _LE else KvmXiveSource)
KVM_XIVE_LEVEL_SENSITIVE = 1 << _SRC["level_sensitive"][0]
KVM_XIVE_LEVEL_ASSERTED = 1 << _SRC["asserted"][0]

_CFG = KvmXiveSourceConfig.subcon if _LE else KvmXiveSourceConfig
KVM_XIVE_SOURCE_PRIORITY_SHIFT, KVM_XIVE_SOURCE_PRIORITY_MASK = _uapi_field(_CFG, "priority")
KVM_XIVE_SOURCE_SERVER_SHIFT, KVM_XIVE_SOURCE_SERVER_MASK = _uapi_field(_CFG, "server")
KVM_XIVE_SOURCE_MASKED_SHIFT, KVM_XIVE_SOURCE_MASKED_MASK = _uapi_field(_CFG, "masked")
KVM_XIVE_SOURCE_EISN_SHIFT, KVM_XIVE_SOURCE_EISN_MASK = _uapi_field(_CFG, "eisn")

_EQ = KvmXiveEqId.subcon if _LE else KvmXiveEqId
KVM_XIVE_EQ_PRIORITY_SHIFT, KVM_XIVE_EQ_PRIORITY_MASK = _uapi_field(_EQ, "priority")
KVM_XIVE_EQ_SERVER_SHIFT, KVM_XIVE_EQ_SERVER_MASK = _uapi_field(_EQ, "server")

KVM_XIVE_EQ_ALWAYS_NOTIFY = 0x00000001

# XICS words: the header gives these masks unshifted (value = (word >> SHIFT) & MASK)
_XS = bit_fields(KvmXicsSource.subcon if _LE else KvmXicsSource)
KVM_XICS_DESTINATION_SHIFT, KVM_XICS_DESTINATION_MASK = _XS["destination"]
KVM_XICS_PRIORITY_SHIFT, KVM_XICS_PRIORITY_MASK = _XS["priority"]
KVM_XICS_LEVEL_SENSITIVE = 1 << _XS["level_sensitive"][0]
KVM_XICS_MASKED = 1 << _XS["masked"][0]
KVM_XICS_PENDING = 1 << _XS["pending"][0]
KVM_XICS_PRESENTED = 1 << _XS["presented"][0]
KVM_XICS_QUEUED = 1 << _XS["queued"][0]

_ICP = bit_fields(KvmPpcIcpState.subcon if _LE else KvmPpcIcpState)
KVM_REG_PPC_ICP_CPPR_SHIFT, KVM_REG_PPC_ICP_CPPR_MASK = _ICP["cppr"]
KVM_REG_PPC_ICP_XISR_SHIFT, KVM_REG_PPC_ICP_XISR_MASK = _ICP["xisr"]
KVM_REG_PPC_ICP_MFRR_SHIFT, KVM_REG_PPC_ICP_MFRR_MASK = _ICP["mfrr"]
KVM_REG_PPC_ICP_PPRI_SHIFT, KVM_REG_PPC_ICP_PPRI_MASK = _ICP["ppri"]

KVM_PPC_XIVE_EQ_SIZE = KvmPpcXiveEq.sizeof()
KVM_REG_PPC_VP_STATE_SIZE = KvmPpcVpState.sizeof()

# --- kernel-internal limits that shape the uAPI (book3s_xics.h / book3s_xive.h) ----------------------------

KVMPPC_XICS_ICS_SHIFT = 10
KVMPPC_XICS_IRQ_PER_ICS = 1 << KVMPPC_XICS_ICS_SHIFT
KVMPPC_XICS_MAX_ICS_ID = 1023
KVMPPC_XICS_FIRST_IRQ = 16  # below: reserved (0 = no interrupt, 2 = IPI)
XICS_IPI = 2
KVMPPC_XIVE_FIRST_IRQ = 0
KVMPPC_XIVE_NR_IRQS = (KVMPPC_XICS_MAX_ICS_ID + 1) * KVMPPC_XICS_IRQ_PER_ICS
KVMPPC_XICS_NR_IRQS = KVMPPC_XIVE_NR_IRQS
KVMPPC_XIVE_Q_COUNT = 8
XIVE_Q_GAP = 2  # entries kept free in each queue when picking a target
MASKED = 0xFF  # act_priority of a masked source


# --- helpers (hot and cold) -------------------------------------------------------------------------------


def eq_id(server: int, prio: int) -> int:
    """The GRP_EQ_CONFIG attribute naming the EQ of (server, priority)."""
    return ((server << KVM_XIVE_EQ_SERVER_SHIFT) & KVM_XIVE_EQ_SERVER_MASK) | (
        (prio << KVM_XIVE_EQ_PRIORITY_SHIFT) & KVM_XIVE_EQ_PRIORITY_MASK
    )


def eq_id_decode(attr: int) -> tuple[int, int]:
    """(server, priority) of an EQ identifier, as `kvmppc_xive_native_set_queue_config` demangles it."""
    return (
        (attr & KVM_XIVE_EQ_SERVER_MASK) >> KVM_XIVE_EQ_SERVER_SHIFT,
        (attr & KVM_XIVE_EQ_PRIORITY_MASK) >> KVM_XIVE_EQ_PRIORITY_SHIFT,
    )


def source_config(server: int, priority: int, masked: bool, eisn: int) -> int:
    """The GRP_SOURCE_CONFIG word, packed as QEMU's `kvmppc_xive_set_source_config` does (fields truncated)."""
    return (
        ((priority << KVM_XIVE_SOURCE_PRIORITY_SHIFT) & KVM_XIVE_SOURCE_PRIORITY_MASK)
        | ((server << KVM_XIVE_SOURCE_SERVER_SHIFT) & KVM_XIVE_SOURCE_SERVER_MASK)
        | ((int(bool(masked)) << KVM_XIVE_SOURCE_MASKED_SHIFT) & KVM_XIVE_SOURCE_MASKED_MASK)
        | ((eisn << KVM_XIVE_SOURCE_EISN_SHIFT) & KVM_XIVE_SOURCE_EISN_MASK)
    )


def source_config_decode(word: int) -> tuple[int, int, bool, int]:
    """(server, priority, masked, eisn) of a GRP_SOURCE_CONFIG word."""
    return (
        (word & KVM_XIVE_SOURCE_SERVER_MASK) >> KVM_XIVE_SOURCE_SERVER_SHIFT,
        (word & KVM_XIVE_SOURCE_PRIORITY_MASK) >> KVM_XIVE_SOURCE_PRIORITY_SHIFT,
        bool(word & KVM_XIVE_SOURCE_MASKED_MASK),
        (word & KVM_XIVE_SOURCE_EISN_MASK) >> KVM_XIVE_SOURCE_EISN_SHIFT,
    )


def source_state(lsi: bool, asserted: bool = False) -> int:
    """The GRP_SOURCE word QEMU's `kvmppc_xive_source_reset_one` passes."""
    return (KVM_XIVE_LEVEL_SENSITIVE if lsi else 0) | (KVM_XIVE_LEVEL_ASSERTED if lsi and asserted else 0)


def xics_source(
    server: int,
    priority: int,
    *,
    masked: bool = False,
    lsi: bool = False,
    pending: bool = False,
    presented: bool = False,
    queued: bool = False,
) -> int:
    """A KVM_DEV_XICS_GRP_SOURCES word (fields truncated to their width, as a C store would)."""
    return (
        ((server & KVM_XICS_DESTINATION_MASK) << KVM_XICS_DESTINATION_SHIFT)
        | ((priority & KVM_XICS_PRIORITY_MASK) << KVM_XICS_PRIORITY_SHIFT)
        | (KVM_XICS_MASKED if masked else 0)
        | (KVM_XICS_LEVEL_SENSITIVE if lsi else 0)
        | (KVM_XICS_PENDING if pending else 0)
        | (KVM_XICS_PRESENTED if presented else 0)
        | (KVM_XICS_QUEUED if queued else 0)
    )


def xics_source_decode(word: int) -> dict[str, int | bool]:
    """The fields of a KVM_DEV_XICS_GRP_SOURCES word (bits 45-63 are ignored, as the kernel does)."""
    return {
        "server": (word >> KVM_XICS_DESTINATION_SHIFT) & KVM_XICS_DESTINATION_MASK,
        "priority": (word >> KVM_XICS_PRIORITY_SHIFT) & KVM_XICS_PRIORITY_MASK,
        "masked": bool(word & KVM_XICS_MASKED),
        "lsi": bool(word & KVM_XICS_LEVEL_SENSITIVE),
        "pending": bool(word & KVM_XICS_PENDING),
        "presented": bool(word & KVM_XICS_PRESENTED),
        "queued": bool(word & KVM_XICS_QUEUED),
    }


def icp_state(cppr: int, xisr: int, mfrr: int, ppri: int) -> int:
    """A KVM_REG_PPC_ICP_STATE word."""
    return (
        ((cppr & KVM_REG_PPC_ICP_CPPR_MASK) << KVM_REG_PPC_ICP_CPPR_SHIFT)
        | ((xisr & KVM_REG_PPC_ICP_XISR_MASK) << KVM_REG_PPC_ICP_XISR_SHIFT)
        | ((mfrr & KVM_REG_PPC_ICP_MFRR_MASK) << KVM_REG_PPC_ICP_MFRR_SHIFT)
        | ((ppri & KVM_REG_PPC_ICP_PPRI_MASK) << KVM_REG_PPC_ICP_PPRI_SHIFT)
    )


def icp_state_decode(word: int) -> tuple[int, int, int, int]:
    """(cppr, xisr, mfrr, ppri) of a KVM_REG_PPC_ICP_STATE word (bits 0-15 ignored, as the kernel does)."""
    return (
        (word >> KVM_REG_PPC_ICP_CPPR_SHIFT) & KVM_REG_PPC_ICP_CPPR_MASK,
        (word >> KVM_REG_PPC_ICP_XISR_SHIFT) & KVM_REG_PPC_ICP_XISR_MASK,
        (word >> KVM_REG_PPC_ICP_MFRR_SHIFT) & KVM_REG_PPC_ICP_MFRR_MASK,
        (word >> KVM_REG_PPC_ICP_PPRI_SHIFT) & KVM_REG_PPC_ICP_PPRI_MASK,
    )


def xive_eq(flags: int = 0, qshift: int = 0, qaddr: int = 0, qtoggle: int = 0, qindex: int = 0) -> bytes:
    """A `struct kvm_ppc_xive_eq` in host byte order."""
    return KvmPpcXiveEq.build(dict(flags=flags, qshift=qshift, qaddr=qaddr, qtoggle=qtoggle, qindex=qindex))


def xive_eq_decode(raw: bytes) -> dict[str, int]:
    c = KvmPpcXiveEq.parse(raw)
    return {k: c[k] for k in ("flags", "qshift", "qaddr", "qtoggle", "qindex")}


def u64(value: int) -> bytes:
    """A u64 as it sits in memory at `attr.addr`."""
    return HostU64.build(value & 0xFFFFFFFFFFFFFFFF)


def as_eq_bytes(value: Mapping[str, int] | bytes) -> bytes:
    """Accept a decoded EQ (mapping) or raw bytes; return the raw struct."""
    if isinstance(value, Mapping):
        return xive_eq(**{k: int(value.get(k, 0)) for k in ("flags", "qshift", "qaddr", "qtoggle", "qindex")})
    return bytes(value)
