"""RTAS: the table of services by token (QEMU 7.2 numbering) and the call mechanics of KVMPPC_H_RTAS.

One registration serves two uses, as in QEMU: dispatch by token and the `/rtas` name -> token properties.
A handler has the signature ``fn(target, cpu, args, nret) -> list[int]`` and returns the rets it produces
(rets[0] = status); the caller writes at most `nret` of them back, big-endian, after the args.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from xive_machine.memory.ram import GuestRam

RTAS_TOKEN_BASE = 0x2000


class RtasStatus(IntEnum):
    SUCCESS = 0
    NO_ERRORS_FOUND = 1
    HARDWARE_ERROR = -1
    BUSY = -2
    PARAMETER_ERROR = -3
    NOT_AUTHORIZED = -9002
    SYSPARM_PARAM_ERROR = -9999


# QEMU 7.2's token assignment (RTAS_TOKEN_BASE + index), as the reference device trees show.
RTAS_TOKENS: dict[str, int] = {
    "display-character": 0x2000,
    "get-time-of-day": 0x2001,
    "set-time-of-day": 0x2002,
    "power-off": 0x2003,
    "system-reboot": 0x2004,
    "query-cpu-stopped-state": 0x2005,
    "start-cpu": 0x2006,
    "stop-self": 0x2007,
    "ibm,get-system-parameter": 0x2008,
    "ibm,set-system-parameter": 0x2009,
    "ibm,set-xive": 0x200A,
    "ibm,get-xive": 0x200B,
    "ibm,int-off": 0x200C,
    "ibm,int-on": 0x200D,
    "check-exception": 0x200E,
    "event-scan": 0x200F,
    "ibm,set-tce-bypass": 0x2010,
    "quiesce": 0x2011,
    "nvram-fetch": 0x2012,
    "nvram-store": 0x2013,
    "read-pci-config": 0x2014,
    "write-pci-config": 0x2015,
    "ibm,read-pci-config": 0x2016,
    "ibm,write-pci-config": 0x2017,
    "ibm,query-interrupt-source-number": 0x2018,
    "ibm,change-msi": 0x2019,
    "set-indicator": 0x201A,
    "set-power-level": 0x201B,
    "get-power-level": 0x201C,
    "get-sensor-state": 0x201D,
    "ibm,configure-connector": 0x201E,
    "ibm,os-term": 0x201F,
    "ibm,set-eeh-option": 0x2020,
    "ibm,get-config-addr-info2": 0x2021,
    "ibm,read-slot-reset-state2": 0x2022,
    "ibm,set-slot-reset": 0x2023,
    "ibm,configure-pe": 0x2024,
    "ibm,slot-error-detail": 0x2025,
    "ibm,query-pe-dma-window": 0x2026,
    "ibm,create-pe-dma-window": 0x2027,
    "ibm,remove-pe-dma-window": 0x2028,
    "ibm,reset-pe-dma-window": 0x2029,
    "ibm,suspend-me": 0x202A,
    "ibm,nmi-register": 0x202B,
    "ibm,nmi-interlock": 0x202C,
}
TOKEN_NAMES = {v: k for k, v in RTAS_TOKENS.items()}

RtasHandler = Callable[..., list[int]]


@dataclass(frozen=True, slots=True)
class RtasSpec:
    token: int
    name: str
    fn: RtasHandler


class RtasTable:
    """One feature's RTAS services."""

    def __init__(self, domain: str) -> None:
        self.domain = domain
        self.specs: dict[int, RtasSpec] = {}

    def rtas(self, name: str):
        token = RTAS_TOKENS[name]

        def register(fn: RtasHandler) -> RtasHandler:
            if token in self.specs:
                raise RuntimeError(f"{self.domain}: RTAS {name} registered twice")
            self.specs[token] = RtasSpec(token, name, fn)
            return fn

        return register


@dataclass(slots=True)
class RtasCall:
    """One decoded call (for the trace)."""

    token: int
    name: str
    args: list[int]
    nret: int
    rets: list[int]
    hcall_rc: int


class RtasDispatcher:
    """token -> bound handler; reads and writes the big-endian argument block in guest RAM."""

    MAX_CELLS = 16  # Linux's rtas_args holds 16 args/rets; larger counts are refused as bad memory

    def __init__(self, ram: GuestRam) -> None:
        self.ram = ram
        self.entries: dict[int, tuple[Callable[[int, list[int], int], list[int]], str]] = {}

    def install(self, table: RtasTable, target: object) -> None:
        for token, s in table.specs.items():
            self.entries[token] = (functools.partial(s.fn, target), s.name)

    def uninstall(self, table: RtasTable) -> None:
        for token in table.specs:
            self.entries.pop(token, None)

    def names(self) -> dict[str, int]:
        """name -> token of the services installed now (for the /rtas node)."""
        return {name: token for token, (_, name) in sorted(self.entries.items())}

    def call(self, cpu: int, addr: int) -> RtasCall | None:
        """Serve KVMPPC_H_RTAS(addr). Returns None when the block is not readable (hcall H_PARAMETER)."""
        ram = self.ram
        if not ram.contains(addr, 12):
            return None
        token, nargs, nret = ram.read_u32(addr), ram.read_u32(addr + 4), ram.read_u32(addr + 8)
        if nargs > self.MAX_CELLS or nret > self.MAX_CELLS or not ram.contains(addr, 12 + 4 * (nargs + nret)):
            return None
        args = [ram.read_u32(addr + 12 + 4 * i) for i in range(nargs)]
        if token == 0xA:  # QEMU: the old Linux early-debug token is display-character
            token = RTAS_TOKENS["display-character"]
        entry = self.entries.get(token)
        rets_at = addr + 12 + 4 * nargs
        if entry is None:
            if nret:
                ram.write_u32(rets_at, RtasStatus.PARAMETER_ERROR)
            return RtasCall(token, TOKEN_NAMES.get(token, f"token-{token:#x}"), args, nret,
                            [RtasStatus.PARAMETER_ERROR], -4)
        fn, name = entry
        rets = fn(cpu, args, nret)
        for i, value in enumerate(rets[:nret]):
            ram.write_u32(rets_at + 4 * i, value & 0xFFFFFFFF)
        return RtasCall(token, name, args, nret, rets, 0)
