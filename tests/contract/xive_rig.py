"""The contract rig: one sPAPR XIVE controller, emulated (SpaprXive) or KVM-device backed (KvmSpaprXive),
driven only through what the machine uses: hcall tables, MMIO windows and the InterruptController API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from xive_machine.hcalls.registry import Dispatcher
from xive_machine.intc.xive.spapr import SpaprXive
from xive_machine.kvm.backend import make_kvm_xive
from xive_machine.memory.ram import GuestRam

U64 = (1 << 64) - 1
BACKENDS = ("emulated", "kvm")
QPAGE = 0x100000
OS = 0x20000  # OS page of the TIMA window
MGMT = 0x10000  # odd page of a source's ESB pair


class MachineLike:
    """What make_kvm_xive needs from the machine: RAM, vCPU count, the IrqLine."""

    def __init__(self, nr_cpus: int, ram: GuestRam, line: Callable[[int, bool], None]) -> None:
        self.nr_cpus, self.ram, self.irq_line = nr_cpus, ram, line


class Rig:
    def __init__(
        self, backend: str, nr_cpus: int = 2, ram: GuestRam | None = None, tcg_ring_reset: bool = False
    ) -> None:
        self.backend = backend
        self.ram = ram or GuestRam(4 << 20)
        self.lines: list[tuple[int, bool]] = []
        self.level = [False] * nr_cpus
        self.machine = MachineLike(nr_cpus, self.ram, self._line)
        if backend == "kvm":
            self.x: Any = make_kvm_xive(self.machine, tcg_ring_reset=tcg_ring_reset)
        else:
            self.x = SpaprXive(self.ram, nr_cpus, self._line)
        for cpu in range(nr_cpus):
            self.x.connect_cpu(cpu)
        self.d = Dispatcher()
        self.d.add_gate("xive", lambda: True)
        for table, target in self.x.hcall_tables():
            self.d.install(table, target)
        w = {m.name: m for m in self.x.mmio_windows()}
        self.esb, self.tima = w["esb"], w["tima"]

    def _line(self, cpu: int, level: bool) -> None:
        self.lines.append((cpu, level))
        self.level[cpu] = level

    def hc(self, op: int, *args: int, cpu: int = 0) -> tuple[int, ...]:
        rc, *outs = self.d.dispatch(cpu, op, list(args) + [0] * (9 - len(args)))
        return (int(rc), *[o & U64 for o in outs])

    def esb_load(self, lisn: int, op: int, cpu: int = 0) -> int:
        return self.esb.read(cpu, (lisn << 17) + MGMT + op, 8)

    def esb_trigger(self, lisn: int, cpu: int = 0) -> None:
        self.esb.write(cpu, lisn << 17, 8, 0)

    def cppr(self, cpu: int, value: int) -> None:
        self.tima.write(cpu, OS + 0x11, 1, value)

    def ack(self, cpu: int) -> int:
        return self.tima.read(cpu, OS + 0x810, 2)

    def close(self) -> None:
        close = getattr(self.x, "close", None)
        if close is not None:
            close()
