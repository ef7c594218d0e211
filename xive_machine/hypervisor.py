"""The hcall scripting API: drive the hypervisor side of a pseries machine without guest code.

    from xive_machine.hypervisor import Hypervisor
    from xive_machine.hcalls.codes import H

    with Hypervisor(ic_mode="xive", smp=2) as hv:
        hv.cas()                                           # negotiate XIVE exploitation, as Linux does
        r = hv.hcall("H_INT_SET_SOURCE_CONFIG", 0, 0x1000, 1, 5, 0x1000)
        assert r.rc == H.SUCCESS
        pq = hv.esb_load(0x1000, 0x800)                    # XIVE_ESB_GET, through the guest's ESB window

Every call goes where the guest's would: hcalls through the machine's dispatcher (`machine.hcall`), RTAS
through KVMPPC_H_RTAS with an argument block in guest RAM, CAS through the same `do_cas` the client
interface runs, ESB/TIMA accesses through the MmioWindow read/write the guest's loads and stores reach. All of
it is traced like a guest run (`hv.trace()`), so a script's trace can be saved, diffed and replayed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from xive_machine.errors import ConfigError, GuestError, HcallError
from xive_machine.firmware import ovec
from xive_machine.hcalls.codes import H, Op, opcode_by_name, opcode_name

SCRATCH_ADDR = 0x0100_0000  # where scripted CAS vectors and RTAS blocks live in guest RAM (no guest runs)
RTAS_BLOCK_ADDR = SCRATCH_ADDR + 0x1_0000
MASK64 = (1 << 64) - 1
COMPAT_PVRS = {"power8": 0x0F000004, "power9": 0x0F000005, "power10": 0x0F000006}


def _rc(value: int) -> int:
    """A signed return code, as an H member when PAPR names it."""
    value = value - (1 << 64) if value >> 63 else value
    try:
        return H(value)
    except ValueError:
        return value


@dataclass(frozen=True)
class HcallResult:
    """r3 and r4.. of one hcall. Unpacks as `rc, *outs = hv.hcall(...)`."""

    name: str
    opcode: int
    rc: int
    outs: tuple[int, ...]

    @property
    def ok(self) -> bool:
        return self.rc == H.SUCCESS

    def __iter__(self) -> Any:
        return iter((self.rc, *self.outs))

    def __repr__(self) -> str:
        rc = f"H_{self.rc.name}" if isinstance(self.rc, H) else str(self.rc)
        outs = ", ".join(f"{o:#x}" for o in self.outs)
        return f"HcallResult({self.name} -> {rc}{', outs=[' + outs + ']' if outs else ''})"


@dataclass(frozen=True)
class RtasResult:
    """rets[0] is the RTAS status; `hcall_rc` what KVMPPC_H_RTAS itself returned."""

    name: str
    status: int
    rets: tuple[int, ...]
    hcall_rc: int


def build_cas_vector(intc: str = "xive", *, mmu: str = "hash", compat: str | int = "power9",
                     ov5: bytes = b"") -> bytes:
    """An architecture vector as a Linux guest sends it, reduced to what CAS decides on.

    `intc` "xive" sets OV5_XIVE_EXPLOIT; `mmu` "radix" sets OV5_MMU_RADIX_300 (+GTSE); `compat` names a logical
    PVR ("power9", or an int), or "raw" for the presented PVR only. OV5 also asks for HPT resizing, so a hash
    guest is not refused under resize-hpt=required. `ov5` adds option-vector-5 content bytes (a recorded
    negotiation result asked again reproduces itself: the platform grants what it granted).
    """
    if intc not in ("xive", "xics"):
        raise ConfigError(f"cas: intc {intc!r}: xive or xics")
    if mmu not in ("hash", "radix"):
        raise ConfigError(f"cas: mmu {mmu!r}: hash or radix")
    if compat == "raw":
        from xive_machine.firmware.cas import PRESENTED_PVR

        pvrs = (ovec.PvrEntry(0xFFFF0000, PRESENTED_PVR & 0xFFFF0000),)
    else:
        pvr = COMPAT_PVRS.get(compat, compat) if isinstance(compat, str) else compat
        if not isinstance(pvr, int):
            raise ConfigError(f"cas: compat {compat!r}: one of raw, {', '.join(COMPAT_PVRS)} or a logical PVR")
        pvrs = (ovec.PvrEntry(0xFFFFFFFF, pvr),)
    ov1 = bytearray(3)
    ov1[ovec.OV1_PPC_3_00.byte - 1] |= ovec.OV1_PPC_3_00.mask
    ov1[ovec.OV1_PPC_2_07.byte - 1] |= ovec.OV1_PPC_2_07.mask
    ov5 = bytearray(ov5.ljust(26, b"\0")) if ov5 else bytearray(26)
    bits = [ovec.OV5_LPAR, ovec.OV5_HPT_RESIZE, ovec.OV5_FORM1_AFFINITY, ovec.OV5_DRCONF_MEMORY]
    if intc == "xive":
        bits.append(ovec.OV5_XIVE_EXPLOIT)
    if mmu == "radix":
        bits += [ovec.OV5_MMU_RADIX_300, ovec.OV5_MMU_RADIX_GTSE]
    for bit in bits:
        ov5[bit.byte - 1] |= bit.mask
    vectors = (bytes(ov1), bytes(33), bytes(3), bytes(2), bytes(ov5))
    return ovec.build_arch_vector(ovec.ArchVector(pvrs, ovec.LINUX_TERMINATOR, vectors))


class Hypervisor:
    """A prepared pseries machine (platform built, no guest) to script hcalls, RTAS, CAS and MMIO on.

    Keyword options are MachineConfig's (ic_mode, smp, memory, irqchip, max_compat ...). `trace=False` turns
    recording off; otherwise every call is recorded in memory (`events`, `trace()`).
    """

    def __init__(self, ic_mode: str = "dual", smp: int = 1, *, trace: bool | Any = True, **options: Any) -> None:
        from xive_machine.machine.config import MachineConfig
        from xive_machine.machine.spapr import SpaprMachine
        from xive_machine.trace.events import ListSink

        options.setdefault("echo_console", False)
        self.config = MachineConfig(ic_mode=ic_mode, smp=smp, **options)
        if trace is True:
            trace = ListSink()
        self.sink = trace or None
        self.machine = SpaprMachine(self.config, trace=self.sink)
        self.machine.prepare()
        self.machine.cpus[0].state = "running"  # the boot vCPU runs from reset, as under a guest

    # --- context management ----------------------------------------------------------------------------
    def close(self) -> None:
        self.machine.close()

    def __enter__(self) -> Hypervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- what a script inspects ---------------------------------------------------------------------------
    @property
    def intc(self) -> Any:
        """The active interrupt controller (its `name` is "xics" or "xive")."""
        return self.machine.intc

    @property
    def events(self) -> list[dict[str, Any]]:
        return getattr(self.sink, "events", [])

    def trace(self) -> Any:
        """The recorded events as a validated-shape Trace (reader.Trace), header from this machine's config."""
        from xive_machine.trace.reader import from_events, make_header

        return from_events(self.events, make_header(self.config), source="<hypervisor>")

    def save_trace(self, path: str) -> None:
        self.trace().write(path)

    # --- CAS ----------------------------------------------------------------------------------------------
    def cas(self, ic_mode: str | None = None, *, mmu: str = "hash", compat: str | int = "power9", cpu: int = 0,
            vector: bytes | None = None) -> Any:
        """Negotiate CAS as a guest would (the vector written to guest RAM, then `platform.do_cas`).

        `ic_mode` is what the guest asks for: "xive" (exploitation) or "xics"; by default XIVE when the machine
        offers it. `vector` sends raw bytes instead. Returns the machine's CasRecord (`.result.rc`,
        `.result.intc`, `.mode_after`, `.diff`). GuestError when the machine would stop (QEMU exits), as for
        an interrupt mode the machine does not offer.
        """
        from xive_machine.machine import platform

        if vector is None:
            want = ic_mode or ("xics" if self.config.ic_mode == "xics" else "xive")
            vector = build_cas_vector(want, mmu=mmu, compat=compat)
        m = self.machine
        m.ram.write(SCRATCH_ADDR, vector)
        try:
            rec = platform.do_cas(m, cpu, SCRATCH_ADDR)
        except HcallError as err:
            raise GuestError(f"CAS stopped the machine: {m.stop_message or err}") from None
        return rec

    # --- hcalls and RTAS --------------------------------------------------------------------------------
    def opcode(self, name_or_opcode: str | int) -> int:
        if isinstance(name_or_opcode, int):
            return name_or_opcode
        for op, entry in self.machine.dispatcher.entries.items():
            if entry[3] == name_or_opcode:
                return op
        try:
            return opcode_by_name(name_or_opcode)
        except KeyError:
            raise ConfigError(f"unknown hcall {name_or_opcode!r} (names as in hcalls/codes.py Op, e.g. "
                              "H_INT_RESET)") from None

    def hcall(self, name_or_opcode: str | int, *args: int, cpu: int = 0) -> HcallResult:
        """Run one hcall as vCPU `cpu` (r4.. = args). Returns rc and outputs; never raises for the rc."""
        op = self.opcode(name_or_opcode)
        self._check_cpu(cpu)
        if len(args) > 9:
            raise ConfigError(f"hcall {name_or_opcode}: at most 9 arguments (r4..r12)")
        res = self.machine.hcall(cpu, op, *args)
        name = self.machine.dispatcher.name(op) or opcode_name(op)
        return HcallResult(name, op, _rc(int(res[0]) & MASK64), tuple(int(o) & MASK64 for o in res[1:]))

    def rtas(self, name: str, *args: int, nret: int = 1, cpu: int = 0) -> RtasResult:
        """Call an RTAS service through KVMPPC_H_RTAS, with a big-endian argument block in guest RAM."""
        from xive_machine.firmware.rtas import RTAS_TOKENS

        self._check_cpu(cpu)
        token = self.machine.rtas.names().get(name, RTAS_TOKENS.get(name))
        if token is None:
            raise ConfigError(f"unknown RTAS service {name!r}")
        if len(args) > 16 or not 0 <= nret <= 16:
            raise ConfigError("RTAS: at most 16 arguments and 16 returns")
        ram, at = self.machine.ram, RTAS_BLOCK_ADDR
        for i, word in enumerate((token, len(args), nret, *args, *([0] * nret))):
            ram.write_u32(at + 4 * i, word & 0xFFFFFFFF)
        rc = self.machine.hcall(cpu, int(Op.KVMPPC_H_RTAS), at)[0]
        base = at + 12 + 4 * len(args)
        rets = tuple(_s32(ram.read_u32(base + 4 * i)) for i in range(nret))
        return RtasResult(name, rets[0] if rets else 0, rets, _rc(int(rc) & MASK64))

    # --- ESB and TIMA, through the guest's windows ---------------------------------------------------------
    def esb_load(self, lisn: int, offset: int, *, size: int = 8, cpu: int = 0, page: str = "eoi") -> int:
        """Load from the ESB page of `lisn` (`page` "eoi": the management page, "trigger": the trigger page)
        at `offset` (XIVE_ESB_GET 0x800, XIVE_ESB_SET_PQ_00 0xc00 ...): the value the guest would read."""
        return self._mmio("load", self._esb_addr(lisn, page, cpu) + offset, size, cpu)

    def esb_store(self, lisn: int, offset: int, value: int, *, size: int = 8, cpu: int = 0,
                  page: str = "eoi") -> None:
        """Store to the ESB page of `lisn` (page "trigger" with offset 0 triggers the source)."""
        self._mmio("store", self._esb_addr(lisn, page, cpu) + offset, size, cpu, value)

    def tima_load(self, cpu: int, offset: int, size: int = 8) -> int:
        """Load from the TIMA as vCPU `cpu`; `offset` from the TIMA base, page in bits 16-17 (OS page 2)."""
        return self._mmio("load", self._window("tima").base + offset, size, cpu)

    def tima_store(self, cpu: int, offset: int, size: int, value: int) -> None:
        self._mmio("store", self._window("tima").base + offset, size, cpu, value)

    def _esb_addr(self, lisn: int, page: str, cpu: int) -> int:
        """The page address H_INT_GET_SOURCE_INFO gives the guest (asked untraced: the script did not ask)."""
        if page not in ("eoi", "trigger"):
            raise ConfigError(f"ESB page {page!r}: eoi or trigger")
        m = self.machine
        res = m.dispatcher.dispatch(cpu, Op.H_INT_GET_SOURCE_INFO, [0, lisn & MASK64] + [0] * 7)
        if res[0] == H.FUNCTION:
            raise ConfigError("ESB access: XIVE is not the negotiated mode (call hv.cas() on a machine "
                              "offering XIVE first)")
        if res[0] != H.SUCCESS:
            raise ConfigError(f"ESB access: LISN {lisn:#x} is not a valid source (H_INT_GET_SOURCE_INFO rc "
                              f"{_rc(int(res[0]) & MASK64)!r})")
        addr = res[2] if page == "eoi" else res[3]
        if addr in (0, MASK64):
            raise ConfigError(f"ESB access: LISN {lisn:#x} has no {page} page")
        return addr

    def _window(self, name: str) -> Any:
        for win in self.machine.windows:
            if win.name == name:
                return win
        active = self.machine.intc.name if self.machine.intc is not None else "none"
        raise ConfigError(f"no {name.upper()} window: the active interrupt controller is {active}")

    def _mmio(self, op: str, addr: int, size: int, cpu: int, value: int = 0) -> int:
        """One access through the window holding `addr`, traced as the machine's fault-in hook traces it."""
        self._check_cpu(cpu)
        if size not in (1, 2, 4, 8):
            raise ConfigError(f"MMIO access size {size}: 1, 2, 4 or 8")
        m = self.machine
        win = next((w for w in m.windows if w.base <= addr < w.base + w.size), None)
        if win is None:
            raise ConfigError(f"no device window at {addr:#x}")
        offset = addr - win.base
        if op == "load":
            value = win.read(cpu, offset, size)
        else:
            value &= (1 << (8 * size)) - 1
            win.write(cpu, offset, size, value)
        if m.trace is not None:
            m.trace.emit("mmio", cpu=cpu, window=win.name, op=op, offset=offset, size=size, value=value)
        return value

    def _check_cpu(self, cpu: int) -> None:
        if not 0 <= cpu < self.machine.nr_cpus:
            raise ConfigError(f"vCPU {cpu}: the machine has {self.machine.nr_cpus}")


def _s32(v: int) -> int:
    return v - (1 << 32) if v >> 31 else v
