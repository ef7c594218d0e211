"""What the sPAPR machine asks of any interrupt controller (emulated XICS and XIVE, KVM-device XICS and XIVE).

QEMU's `SpaprInterruptControllerClass` in Python: the machine holds exactly one active controller, chosen
by `--ic-mode` and switched at CAS time. Controllers never import `cpu/` or Unicorn: they signal a vCPU
through the `IrqLine` callback given at construction and see guest RAM through `GuestRam`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import fdt

from xive_machine.hcalls.registry import HcallTable

IrqLine = Callable[[int, bool], None]
"""`line(cpu_index, asserted)`: the controller's output to a vCPU (external-exception request)."""

MmioRead = Callable[[int, int, int], int]
"""`read(cpu_index, offset, size) -> value` (size 1, 2, 4 or 8; value zero-extended)."""

MmioWrite = Callable[[int, int, int, int], None]
"""`write(cpu_index, offset, size, value)`."""


@dataclass(frozen=True, slots=True)
class MmioWindow:
    """A guest-physical device window the memory layer serves with exact access sizes, faulted in on first touch."""

    name: str  # "esb", "tima", "end-esb" ... (trace and dumps)
    base: int
    size: int
    read: MmioRead
    write: MmioWrite
    page_shift: int = 16  # granule the fault handler maps at a time


class InterruptController(Protocol):
    name: str  # "xics" or "xive"

    def hcall_tables(self) -> list[tuple[HcallTable, object]]:
        """(table, target) pairs the machine installs while this controller is active."""
        ...

    def mmio_windows(self) -> list[MmioWindow]: ...

    def claim_irq(self, lisn: int, lsi: bool) -> None: ...

    def set_irq(self, lisn: int, level: bool) -> None:
        """A device line changes level (MSI: a rising edge is one event)."""
        ...

    def connect_cpu(self, cpu: int) -> None: ...

    def disconnect_cpu(self, cpu: int) -> None: ...

    def reset(self) -> None: ...

    def dt_node(self, nr_servers: int) -> fdt.Node:
        """The interrupt-controller node as QEMU 7.2 emits it."""
        ...

    def get_state(self) -> Any: ...

    def set_state(self, state: Any) -> None: ...

    def describe(self) -> str: ...
