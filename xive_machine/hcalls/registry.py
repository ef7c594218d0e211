"""hcall tables and the per-machine dispatcher.

A table belongs to one feature module (console, XIVE, XICS ...) and maps opcode -> handler, as QEMU's
`spapr_register_hypercall`. Handlers have the signature ``fn(target, cpu, r4, r5, ...)``: `target` is the
narrow object the feature serves (bound at install time), `cpu` the calling vCPU index, then as many u64
arguments as the handler declares (measured once at registration). They return ``(rc, *outs)`` for r3, r4...
or raise :class:`HcallError`. The dispatcher knows no Unicorn and no machine.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass

from xive_machine.errors import HcallError
from xive_machine.hcalls.codes import H

MAX_HCALL_ARGS = 9  # r4..r12

Gate = Callable[[], bool]


@dataclass(frozen=True, slots=True)
class HcallSpec:
    opcode: int
    name: str
    nargs: int
    fn: Callable[..., tuple[int, ...]]
    gate: str | None  # name of a gate the machine provides (e.g. "xive"), None = always available


class HcallTable:
    """One feature's hcalls. Duplicates are a bug and raise at import."""

    def __init__(self, domain: str) -> None:
        self.domain = domain
        self.specs: dict[int, HcallSpec] = {}

    def hcall(self, opcode: int, name: str, *, gate: str | None = None):
        def register(fn: Callable[..., tuple[int, ...]]):
            if opcode in self.specs:
                raise RuntimeError(f"{self.domain}: hcall {opcode:#x} registered twice")
            nargs = len(inspect.signature(fn).parameters) - 2  # minus target, cpu
            if not 0 <= nargs <= MAX_HCALL_ARGS:
                raise RuntimeError(f"{self.domain}: {name} takes {nargs} arguments")
            self.specs[opcode] = HcallSpec(opcode, name, nargs, fn, gate)
            return fn

        return register


class Dispatcher:
    """opcode -> bound handler for one machine. `dispatch` is the hot path: one dict lookup and a call."""

    def __init__(self) -> None:
        # opcode -> (bound fn, nargs, gate callable or None, name)
        self.entries: dict[int, tuple[Callable[..., tuple[int, ...]], int, Gate | None, str]] = {}
        self.gates: dict[str, Gate] = {}

    def add_gate(self, name: str, test: Gate) -> None:
        self.gates[name] = test

    def install(self, table: HcallTable, target: object) -> None:
        for op, s in table.specs.items():
            if op in self.entries:
                raise RuntimeError(f"hcall {op:#x} ({s.name}) claimed twice")
            gate = self.gates[s.gate] if s.gate is not None else None
            self.entries[op] = (functools.partial(s.fn, target), s.nargs, gate, s.name)

    def uninstall(self, table: HcallTable) -> None:
        for op in table.specs:
            self.entries.pop(op, None)

    def name(self, opcode: int) -> str | None:
        e = self.entries.get(opcode)
        return e[3] if e else None

    def dispatch(self, cpu: int, opcode: int, args: tuple[int, ...] | list[int]) -> tuple[int, ...]:
        """Run one hcall. `args` are r4..r12 (at least the handler's count). Returns (rc, *outs)."""
        entry = self.entries.get(opcode)
        if entry is None:
            return (H.FUNCTION,)
        fn, nargs, gate, _ = entry
        if gate is not None and not gate():
            return (H.FUNCTION,)
        try:
            return fn(cpu, *args[:nargs])
        except HcallError as err:
            return (err.rc,)

