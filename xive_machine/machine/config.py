"""MachineConfig: every user-facing option of the machine, validated once at construction (like QEMU's realize)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields

from xive_machine.errors import ConfigError

IC_MODES = ("xics", "xive", "dual")
IRQCHIPS = ("emulated", "kvm")
BOOT_MODES = ("vof", "fdt")
CLOCKS = ("deterministic", "host")
MAX_COMPATS = ("power8", "power9", "power10")
MiB = 1 << 20


def parse_size(text: str | int) -> int:
    """'256M', '1G', '512MiB', 268435456 -> bytes (QEMU's -m accepts M and G suffixes; a bare number is MiB)."""
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*(\d+)\s*([kKmMgG]?)(?:i?[bB])?\s*", text)
    if not m:
        raise ConfigError(f"cannot parse memory size {text!r} (examples: 256M, 1G)")
    n, unit = int(m.group(1)), m.group(2).upper()
    return n << {"": 20, "K": 10, "M": 20, "G": 30}[unit]


@dataclass
class MachineConfig:
    smp: int = 1
    memory: int = 256 * MiB
    boot: str = "vof"
    append: str = ""
    initrd: str | None = None
    ic_mode: str = "dual"
    irqchip: str = "emulated"
    max_compat: str = "power9"
    clock: str = "deterministic"
    insns_per_us: int = 1000  # deterministic clock: guest instructions per virtual microsecond
    slice_insns: int = 100_000  # SMP round-robin quantum, in instructions
    rng: bool = False
    console_input: bytes = b""
    echo_console: bool = True
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.memory = parse_size(self.memory)
        if not 1 <= self.smp <= 1024:
            raise ConfigError(f"--smp {self.smp}: between 1 and 1024 vCPUs")
        if self.memory < 128 * MiB:
            raise ConfigError(f"--memory {self.memory >> 20}M: pseries needs at least 128M (QEMU's minimum RMA)")
        if self.memory > 16 << 30:
            raise ConfigError(f"--memory {self.memory >> 20}M: at most 16G on this machine")
        if self.memory % (256 << 10):
            raise ConfigError("--memory must be a multiple of 256K")
        for name, allowed in (("ic_mode", IC_MODES), ("irqchip", IRQCHIPS), ("boot", BOOT_MODES),
                              ("clock", CLOCKS), ("max_compat", MAX_COMPATS)):
            value = getattr(self, name)
            if value not in allowed:
                raise ConfigError(f"--{name.replace('_', '-')} {value!r}: one of {', '.join(allowed)}")
        if self.insns_per_us <= 0 or self.slice_insns <= 0:
            raise ConfigError("clock rates must be positive")

    def as_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["console_input"] = self.console_input.decode("latin-1")
        return out
