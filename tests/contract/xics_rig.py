"""The XICS contract rig: one sPAPR XICS controller, emulated (SpaprXics) or backed by the KVM XICS-on-XIVE
device (KvmSpaprXics), driven only through what the machine uses: hcall and RTAS tables, device lines and
the InterruptController API. Every trace event the controller emits is kept."""

from __future__ import annotations

from typing import Any

from xive_machine.hcalls.registry import Dispatcher
from xive_machine.intc.xics.spapr import SpaprXics
from xive_machine.kvm.xics_backend import make_kvm_xics
from xive_machine.memory.ram import GuestRam
from xive_machine.trace.events import ListSink

U64 = (1 << 64) - 1
BACKENDS = ("emulated", "kvm")
CLAIMS = ((0x1000, False), (0x1001, False), (0x1100, False), (0x1200, True), (0x1201, True))


class Clock:
    """A timebase that moves on every read, so H_XIRR_X results tell reads apart."""

    def __init__(self) -> None:
        self.now = 1000

    def tb(self) -> int:
        self.now += 7
        return self.now


class MachineLike:
    """What make_kvm_xics needs from the machine: RAM, vCPU count, the IrqLine, a clock."""

    def __init__(self, nr_cpus: int, line: Any) -> None:
        self.nr_cpus, self.ram, self.irq_line, self.clock = nr_cpus, GuestRam(1 << 20), line, Clock()


class XicsRig:
    def __init__(self, backend: str, nr_cpus: int = 3, claims: tuple = CLAIMS) -> None:
        self.backend = backend
        self.lines: list[tuple[int, bool]] = []
        self.level = [False] * nr_cpus
        self.sink = ListSink()
        self.machine = MachineLike(nr_cpus, self._line)
        if backend == "kvm":
            self.x: Any = make_kvm_xics(self.machine, timebase=self.machine.clock.tb)
        else:
            self.x = SpaprXics(nr_cpus, self._line, timebase=self.machine.clock.tb)
        self.x.trace = self.sink
        for lisn, lsi in claims:  # at reset, before activation, as platform.create_controllers
            self.x.claim_irq(lisn, lsi)
        for cpu in range(nr_cpus):
            self.x.connect_cpu(cpu)
        self.d = Dispatcher()
        for table, target in self.x.hcall_tables():
            self.d.install(table, target)
        self.rtas_fns = {s.name: s.fn for s in self.x.rtas_table().specs.values()}

    def _line(self, cpu: int, level: bool) -> None:
        self.lines.append((cpu, level))
        self.level[cpu] = level

    def hc(self, op: int, *args: int, cpu: int = 0) -> tuple[int, ...]:
        rc, *outs = self.d.dispatch(cpu, op, list(args) + [0] * (9 - len(args)))
        return (int(rc), *[o & U64 for o in outs])

    def rtas(self, name: str, *args: int, nret: int, cpu: int = 0) -> list[int]:
        return [r & 0xFFFFFFFF for r in self.rtas_fns[name](self.x, cpu, [a & 0xFFFFFFFF for a in args], nret)]

    def line(self, lisn: int, level: bool) -> None:
        self.x.set_irq(lisn, level)

    def events(self) -> list[dict]:
        return [e for e in self.sink.events if e["ev"] in ("irq", "note")]

    def close(self) -> None:
        close = getattr(self.x, "close", None)
        if close is not None:
            close()
