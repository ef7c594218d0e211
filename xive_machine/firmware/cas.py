"""CAS negotiation as QEMU 7.2 `do_client_architecture_support` does it (spapr-cas-rtas-xics.md 1.4-1.7).

Pure functions: the machine reads the vector (:func:`read_arch_vector`), calls :func:`negotiate`, applies the
:class:`CasResult` (compat PVR, interrupt controller, FDT rebuild) and returns `rc` to the guest. Conditions
that make QEMU exit the VM raise :class:`CasError` instead (the machine stops with that reason).

Which PVR is "real": the vCPUs are Unicorn POWER10 cores (PVR 0x00800100), but the machine presents a POWER9
(`cpu-version` 0x004e1200, and the guest's mfpvr is meant to read that). Raw mode means "run with the PVR the
guest sees", so the presented PVR is what the PVR list is matched against, and the POWER9 class's PCR levels
(2.05 .. 3.00) decide which logical PVRs are acceptable. Both come from :class:`CasPlatform`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from construct import Int32ub, Int32ul

from xive_machine.errors import ConfigError, GuestError
from xive_machine.firmware.ovec import (
    OV1_PPC_3_00,
    OV5_DRCONF_MEMORY,
    OV5_DRMEM_V2,
    OV5_FORM1_AFFINITY,
    OV5_FORM2_AFFINITY,
    OV5_HP_EVT,
    OV5_HPT_RESIZE,
    OV5_MMU_BOTH,
    OV5_MMU_RADIX_300,
    OV5_MMU_RADIX_GTSE,
    OV5_XIVE_BOTH,
    OV5_XIVE_EXPLOIT,
    QEMU_SPAN,
    SPAPR_OV5_XIVE_BOTH,
    SPAPR_OV5_XIVE_EXPLOIT,
    SPAPR_OV5_XIVE_LEGACY,
    ArchVector,
    OvBit,
    VectorError,
    build_arch_vector,
    ov_dt_property,
    ov_intersect,
    ov_test,
    parse_arch_vector,
)
from xive_machine.hcalls.codes import H
from xive_machine.memory.ram import GuestRam

PRESENTED_PVR = 0x004E1200  # POWER9 DD2.0, what the machine shows the guest (pseries-7.2 default CPU)
PHYS_TO_REAL_MASK = 0x0FFFFFFFFFFFFFFF  # QEMU ppc64_phys_to_real: the top 4 bits are dropped
FDT_MAX_SIZE = 0x200000  # VOF path: QEMU builds the post-CAS tree in 2 MiB
H_CAS_HEADER_SIZE = 4
IC_MODES = ("xics", "xive", "dual")


@dataclass(frozen=True, slots=True)
class CompatInfo:
    """QEMU target/ppc/compat.c compat_table entry. Table order (not PVR value) decides "newer"."""

    name: str
    pvr: int
    pcr_level: str


COMPAT_TABLE: tuple[CompatInfo, ...] = (
    CompatInfo("power6", 0x0F000002, "2.05"),
    CompatInfo("power7", 0x0F000003, "2.06"),
    CompatInfo("power7+", 0x0F100003, "2.06"),
    CompatInfo("power8", 0x0F000004, "2.07"),
    CompatInfo("power9", 0x0F000005, "3.00"),
    CompatInfo("power10", 0x0F000006, "3.10"),
)
_COMPAT_INDEX = {c.pvr: i for i, c in enumerate(COMPAT_TABLE)}
CPU_POWERPC_LOGICAL_3_00 = 0x0F000005

# PCR levels a CPU class supports (pcc->pcr_supported), by PVR family (pvr >> 16).
_PCR_SUPPORTED: dict[int, frozenset[str]] = {
    0x003F: frozenset({"2.05", "2.06"}),  # POWER7
    0x004A: frozenset({"2.05", "2.06"}),  # POWER7+
    0x004B: frozenset({"2.05", "2.06", "2.07"}),  # POWER8E
    0x004C: frozenset({"2.05", "2.06", "2.07"}),  # POWER8NVL
    0x004D: frozenset({"2.05", "2.06", "2.07"}),  # POWER8
    0x004E: frozenset({"2.05", "2.06", "2.07", "3.00"}),  # POWER9
    0x0080: frozenset({"2.05", "2.06", "2.07", "3.00", "3.10"}),  # POWER10
}


def compat_by_name(name: str) -> int:
    """Logical PVR for a max-cpu-compat name ("power8", ...)."""
    for c in COMPAT_TABLE:
        if c.name == name.lower():
            return c.pvr
    raise ConfigError(f"unknown max-cpu-compat {name!r} (known: {', '.join(c.name for c in COMPAT_TABLE)})")


def check_compat(cpu_pvr: int, compat_pvr: int, min_compat_pvr: int = 0, max_compat_pvr: int = 0) -> bool:
    """QEMU ppc_check_compat: a known logical PVR, within [min, max] by table order, supported by the CPU."""
    idx = _COMPAT_INDEX.get(compat_pvr)
    if idx is None:
        return False
    if min_compat_pvr and idx < _COMPAT_INDEX[min_compat_pvr]:
        return False
    if max_compat_pvr and idx > _COMPAT_INDEX[max_compat_pvr]:
        return False
    return COMPAT_TABLE[idx].pcr_level in _PCR_SUPPORTED.get(cpu_pvr >> 16, frozenset())


# --- errors that stop the machine (QEMU exits) ---------------------------------------------------------------


class CasError(GuestError):
    """The guest's CAS request is one QEMU answers by exiting; we stop the machine with this reason."""

    exit_code = 5


class CasInvalidRequest(CasError):
    """OV5 asks for "both" MMUs or "both" interrupt modes, which only a platform may advertise."""


class CasHptResizeRequired(CasError):
    """A hash guest without HPT-resize support on a machine with resize-hpt=required."""


class CasUnavailableMode(CasError):
    """The guest asked for an interrupt mode the machine's ic-mode does not provide."""

    def __init__(self, mode: str, suggestion: tuple[str, ...]) -> None:
        self.mode = mode  # "XIVE" or "XICS"
        self.suggestion = suggestion  # ic-mode values that would allow it
        if mode == "XIVE":
            msg = ("Guest requested unavailable interrupt mode (XIVE), "
                   "try the ic-mode=xive or ic-mode=dual machine property")
        else:
            msg = ("Guest requested unavailable interrupt mode (XICS), either don't set the ic-mode machine "
                   "property or try ic-mode=xics or ic-mode=dual")
        super().__init__(msg)


# --- platform ----------------------------------------------------------------------------------------------


def _set(vec: bytearray, bit: OvBit) -> None:
    vec[bit.byte - 1] |= bit.mask


@dataclass(frozen=True)
class CasPlatform:
    """What the machine offers (QEMU spapr->ov5 and the ic-mode), validated like machine init."""

    ic_mode: str = "dual"
    cpu_pvr: int = PRESENTED_PVR  # the PVR the guest sees; matched as the "real" PVR
    max_compat: int = 0  # max-cpu-compat as a logical PVR, 0 = unset
    resize_hpt: str = "enabled"  # "disabled" | "enabled" | "required"
    dr_lmb: bool = True  # dynamic LMB reconfiguration (OV5_DRCONF_MEMORY)
    hotplug_events: bool = True  # dedicated hot-plug event source (OV5_HP_EVT)
    form2_affinity: bool = True  # machine >= 6.2
    radix_allowed: bool = True  # TCG (or KVM with radix)

    def __post_init__(self) -> None:
        if self.ic_mode not in IC_MODES:
            raise ConfigError(f"ic-mode must be one of {', '.join(IC_MODES)}, not {self.ic_mode!r}")
        if self.resize_hpt not in ("disabled", "enabled", "required"):
            raise ConfigError(f"resize-hpt must be disabled, enabled or required, not {self.resize_hpt!r}")
        if self.cpu_pvr >> 16 not in _PCR_SUPPORTED:
            raise ConfigError(f"no compat table for CPU PVR {self.cpu_pvr:#010x}")
        if self.max_compat and not check_compat(self.cpu_pvr, self.max_compat):
            raise ConfigError(f"max-cpu-compat {self.max_compat:#010x} is not supported by CPU "
                              f"{self.cpu_pvr:#010x}")
        if self.ic_mode == "xive" and not self.isa300:
            raise ConfigError("XIVE-only machines require a POWER9 CPU (ISA 3.00) without a lower max-cpu-compat")

    @property
    def isa300(self) -> bool:
        """QEMU ppc_type_check_compat(cpu, LOGICAL_3_00, 0, max_compat)."""
        return check_compat(self.cpu_pvr, CPU_POWERPC_LOGICAL_3_00, 0, self.max_compat)

    @property
    def effective_ic_mode(self) -> str:
        """spapr_irq_check: a pre-3.00 compat limit turns dual into xics."""
        return "xics" if self.ic_mode == "dual" and not self.isa300 else self.ic_mode

    @property
    def has_xics(self) -> bool:
        return self.effective_ic_mode in ("xics", "dual")

    @property
    def has_xive(self) -> bool:
        return self.effective_ic_mode in ("xive", "dual")

    def ov5(self) -> bytes:
        """spapr->ov5: every OV5 bit the platform grants (26 bytes)."""
        v = bytearray(26)
        if self.dr_lmb:
            _set(v, OV5_DRCONF_MEMORY)
        _set(v, OV5_FORM1_AFFINITY)
        if self.form2_affinity:
            _set(v, OV5_FORM2_AFFINITY)
        if self.hotplug_events:
            _set(v, OV5_HP_EVT)
        if self.resize_hpt != "disabled":
            _set(v, OV5_HPT_RESIZE)
        _set(v, OV5_DRMEM_V2)
        if self.has_xive:
            _set(v, OV5_XIVE_EXPLOIT)
        if self.radix_allowed and self.isa300:
            _set(v, OV5_MMU_RADIX_300)
            _set(v, OV5_MMU_RADIX_GTSE)
        return bytes(v)

    @property
    def reset_compat_pvr(self) -> int:
        """The CPUs' compat PVR after a machine reset: QEMU applies max-cpu-compat there (0 = raw)."""
        return self.max_compat

    def arch_vec_5_platform_support(self, compat_pvr: int | None = None) -> bytes:
        """/chosen/ibm,arch-vec-5-platform-support (spapr_dt_ov5_platform_support) for the CPUs' current
        compat PVR (0 = raw; None = as after reset): pairs (23, intc) (24, mmu) (25, 0) (26, 0x40 GTSE)."""
        if compat_pvr is None:
            compat_pvr = self.reset_compat_pvr
        if self.has_xics and self.has_xive:
            intc = SPAPR_OV5_XIVE_BOTH
        elif self.has_xive:
            intc = SPAPR_OV5_XIVE_EXPLOIT
        else:
            intc = SPAPR_OV5_XIVE_LEGACY
        mmu = 0xC0  # TCG: hash or radix, switchable
        if not check_compat(self.cpu_pvr, CPU_POWERPC_LOGICAL_3_00, 0, compat_pvr):
            intc, mmu = SPAPR_OV5_XIVE_LEGACY, 0x00  # pre-POWER9 compat: XICS and hash
        return bytes([23, intc, 24, mmu, 25, 0x00, 26, 0x40])


# --- result ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CasResult:
    """What CAS decided. rc != 0: `reason` says why; `compat_applied` tells whether QEMU had already switched
    the CPUs' compat PVR before failing (it does that before it parses OV1/OV5)."""

    rc: int
    reason: str = ""
    compat_applied: bool = False
    compat_pvr: int = 0  # negotiated logical PVR, 0 = raw mode
    raw_mode: bool = False  # the guest listed the presented PVR
    cpu_version: int = 0  # /cpus/*/cpu-version after CAS
    ov5_cas: bytes = b""  # negotiated OV5 content bytes (spapr->ov5_cas), trailing zeros trimmed
    arch_vec_5: bytes = b"\x00\x00"  # /chosen/ibm,architecture-vec-5
    intc: str = "xics"  # controller to make active: "xics" | "xive"
    mmu: str = "hash"  # what the guest asked for: "hash" | "radix"
    radix_granted: bool = False  # OV5_MMU_RADIX_300 in ov5_cas
    gtse: bool = False  # OV5_MMU_RADIX_GTSE in ov5_cas
    pre_isa3_guest: bool = False  # OV1 lacks 3.00: hide radix in ibm,pa-features
    presize_hpt: bool = False  # hash guest without HPT resize: size the HPT for maxram
    diagnostics: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.rc == H.SUCCESS

    def has(self, bit: OvBit) -> bool:
        return ov_test(self.ov5_cas, bit)

    def describe(self) -> str:
        if not self.ok:
            lines = [f"CAS failed: rc {int(self.rc)}: {self.reason}"]
            if self.compat_applied:
                lines.append(f"  compat PVR already applied: {self.compat_pvr:#010x} (0 = raw)")
        else:
            lines = [f"CAS ok: cpu-version {self.cpu_version:#010x}"
                     + (f" (compat {self.compat_pvr:#010x})" if self.compat_pvr else " (raw mode)"),
                     f"  interrupt controller {self.intc}, MMU {self.mmu}"
                     + (" (granted)" if self.mmu == "radix" and self.radix_granted else "")
                     + (", GTSE" if self.gtse else "")
                     + (", pre-ISA-3.00 guest" if self.pre_isa3_guest else "")
                     + (", presize HPT for maxram" if self.presize_hpt else ""),
                     f"  ibm,architecture-vec-5 = [{self.arch_vec_5.hex(' ')}]"]
        lines += [f"  note: {d}" for d in self.diagnostics]
        return "\n".join(lines)


def cas_check_pvr(av: ArchVector, platform: CasPlatform) -> tuple[int, bool]:
    """(best logical PVR or 0, explicit match of the presented PVR), as QEMU cas_check_pvr's loop."""
    explicit, best = False, 0
    real = platform.cpu_pvr
    for p in av.pvrs:
        if (real & p.mask) == (p.value & p.mask):
            explicit = True
        elif check_compat(real, p.value, best, platform.max_compat):
            best = p.value
    return best, explicit


def negotiate(vector: bytes | bytearray | memoryview | ArchVector, platform: CasPlatform, *,
              others_active: bool = False, trace: Any = None) -> CasResult:
    """Run CAS on a vector (raw bytes, read as QEMU reads guest memory, or already parsed)."""
    diags: list[str] = []
    if isinstance(vector, ArchVector):
        av = vector
    else:
        try:
            parse_arch_vector(vector, strict=True)
        except VectorError as err:
            diags.append(str(err))
        av = parse_arch_vector(vector, strict=False)
    res = _negotiate(av, platform, others_active, diags)
    if trace is not None:
        trace.emit("cas", rc=int(res.rc), compat_pvr=res.compat_pvr, intc=res.intc, mmu=res.mmu,
                   arch_vec_5=res.arch_vec_5.hex(), reason=res.reason)
    return res


def _negotiate(av: ArchVector, platform: CasPlatform, others_active: bool, diags: list[str]) -> CasResult:
    d = tuple(diags)
    if others_active:
        return CasResult(H.MULTI_THREADS_ACTIVE,
                         "guest has multiple active vCPUs at CAS, which is not allowed", diagnostics=d)
    best, explicit = cas_check_pvr(av, platform)
    if not best and (not explicit or platform.max_compat):
        why = "Couldn't negotiate a suitable PVR during CAS"
        if d:
            why += f" ({d[0]})"
        return CasResult(H.HARDWARE, why, raw_mode=explicit, diagnostics=d)
    cpu_version = best or platform.cpu_pvr
    common = {"compat_applied": True, "compat_pvr": best, "raw_mode": explicit, "cpu_version": cpu_version,
              "diagnostics": d}

    ov1, ov5 = av.vector(1), av.vector(5)
    if ov1 is None or ov5 is None:
        why = f"guest didn't provide option vector {1 if ov1 is None else 5}"
        if d:
            why += f" ({d[0]})"
        return CasResult(H.PARAMETER, why, **common)
    if ov_test(ov5, OV5_MMU_BOTH):
        raise CasInvalidRequest("guest requested hash and radix MMU, which is invalid.")
    if ov_test(ov5, OV5_XIVE_BOTH):
        raise CasInvalidRequest("guest requested an invalid interrupt mode")
    guest_radix = ov_test(ov5, OV5_MMU_RADIX_300)
    guest_xive = ov_test(ov5, OV5_XIVE_EXPLOIT)

    presize = False
    if not guest_radix and not ov_test(ov5, OV5_HPT_RESIZE):
        if platform.resize_hpt == "required":
            raise CasHptResizeRequired(
                "h_client_architecture_support: Guest doesn't support HPT resizing, but resize-hpt=required")
        presize = True

    ov5_cas = ov_intersect(platform.ov5(), ov5)
    pre_isa3 = not ov_test(ov1, OV1_PPC_3_00)

    if guest_xive and not platform.has_xive:
        raise CasUnavailableMode("XIVE", ("xive", "dual"))
    if not guest_xive and not platform.has_xics:
        raise CasUnavailableMode("XICS", ("xics", "dual"))
    intc = "xive" if ov_test(ov5_cas, OV5_XIVE_EXPLOIT) or not platform.has_xics else "xics"

    return CasResult(
        H.SUCCESS, ov5_cas=ov5_cas, arch_vec_5=ov_dt_property(ov5_cas), intc=intc,
        mmu="radix" if guest_radix else "hash", radix_granted=ov_test(ov5_cas, OV5_MMU_RADIX_300),
        gtse=ov_test(ov5_cas, OV5_MMU_RADIX_GTSE), pre_isa3_guest=pre_isa3, presize_hpt=presize, **common)


# --- guest memory and the KVMPPC_H_CAS reply ---------------------------------------------------------------


def read_arch_vector(ram: GuestRam, addr: int, span: int = QEMU_SPAN) -> tuple[bytes, int]:
    """The bytes QEMU would read for a vector at guest address `addr`: (window, bytes that were in RAM).

    The top 4 address bits are dropped (ppc64_phys_to_real); bytes outside RAM read as zero, as QEMU's
    unassigned-memory reads do. A vector wholly outside RAM therefore negotiates to H_PARAMETER (all-zero
    pairs match any PVR, then OV5 is absent), which is QEMU's answer.
    """
    real = addr & PHYS_TO_REAL_MASK
    inside = max(0, min(span, ram.size - real)) if real < ram.size else 0
    data = ram.read(real, inside) if inside else b""
    return data + bytes(span - inside), inside


def negotiate_at(ram: GuestRam, addr: int, platform: CasPlatform, *, others_active: bool = False,
                 trace: Any = None) -> CasResult:
    """CAS on the vector at guest address `addr` (the VOF call-method and KVMPPC_H_CAS paths)."""
    window, inside = read_arch_vector(ram, addr)
    diags: list[str] = []
    real = addr & PHYS_TO_REAL_MASK
    try:
        parse_arch_vector(window[:inside], strict=True)
    except VectorError as err:
        diags.append(f"vector at {real:#x}: {err}" + (" (then outside RAM)" if inside < len(window) else ""))
    av = parse_arch_vector(window, strict=False)
    res = _negotiate(av, platform, others_active, diags)
    if trace is not None:  # the bytes sent, so that `trace replay` negotiates exactly the same
        try:
            sent = build_arch_vector(av) if av.terminator is not None else window[:inside]
        except ValueError:
            sent = window[:inside]
        trace.emit("cas", addr=real, rc=int(res.rc), compat_pvr=res.compat_pvr, intc=res.intc, mmu=res.mmu,
                   arch_vec_5=res.arch_vec_5.hex(), reason=res.reason, vector=bytes(sent).hex())
    return res


def h_cas_fdt_space(buf_size: int) -> int:
    """Room for the FDT in a KVMPPC_H_CAS buffer of `buf_size` bytes (QEMU builds the tree in this much)."""
    if buf_size < H_CAS_HEADER_SIZE:
        raise CasError(f"SLOF provided insufficient CAS buffer {buf_size} (min: {H_CAS_HEADER_SIZE})")
    return buf_size - H_CAS_HEADER_SIZE


def h_cas_reply(fdt_blob: bytes, buf_size: int, *, byteorder: str = "little") -> bytes:
    """KVMPPC_H_CAS (0xf002) buffer contents: u32 version_id = 1, then the packed FDT.

    QEMU writes the header in *host* byte order; the default matches QEMU on an x86-64/ppc64le host (the
    reference oracle), byteorder="big" matches a big-endian host. SLOF only checks version >= 1. QEMU exits
    when the buffer is under 4 bytes or the tree does not fit (its _FDT() error path): CasError here.
    """
    space = h_cas_fdt_space(buf_size)
    if len(fdt_blob) > space:
        raise CasError(f"error creating device tree: the {len(fdt_blob)}-byte FDT does not fit in the "
                       f"{space} bytes of the CAS buffer")
    header = (Int32ul if byteorder == "little" else Int32ub).build(1)
    return header + bytes(fdt_blob)


def write_h_cas_reply(ram: GuestRam, buf_addr: int, reply: bytes) -> int:
    """Store the reply at `buf_addr` as cpu_physical_memory_write does (bytes outside RAM are dropped).
    Returns how many bytes landed in RAM."""
    if buf_addr >= ram.size:
        return 0
    n = min(len(reply), ram.size - buf_addr)
    ram.write(buf_addr, reply[:n])
    ram.mark_dirty(buf_addr, n)
    return n
