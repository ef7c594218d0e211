"""Replay a trace on a fresh machine without guest code: re-issue each recorded call, compare the results.

The machine is rebuilt from the header's config (`prepare()`: controller, device tree, client interface).
What is re-issued, in recorded order:

* hcall records: `machine.hcall(cpu, opcode, *args)`; rc and outputs compared. Three hcalls take their input
  from a block in guest memory the trace does not hold, and are replayed through their own records instead:
  KVMPPC_H_RTAS (the rtas record that precedes it), KVMPPC_H_VOF_CLIENT (client-interface calls: only CAS
  matters to the hypervisor state, from the cas record), KVMPPC_H_CAS (the cas record).
* rtas records: an argument block is written to guest RAM and KVMPPC_H_RTAS called; rets compared.
* cas records: the vector bytes (`vector`, hex) are written back to guest RAM and `platform.do_cas` run.
  A trace without them cannot replay the request itself; a successful CAS is then re-negotiated from a
  vector rebuilt from the recorded decision (intc, mmu, compat PVR), and said so.
* mmio records: the same window read/write the guest's load or store reached; load values compared.
* mode records: the active controller must be the recorded one.

Exceptions, interrupt deliveries and model events (esb, tima, eq, irq, note) are consequences, not inputs.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from xive_machine.errors import ConfigError, HcallError, XiveMachineError
from xive_machine.hcalls.codes import Op
from xive_machine.trace.reader import Trace
from xive_machine.trace.show import format_event, rc_text, value_text

MASK64 = (1 << 64) - 1
SKIP_HCALLS = {
    "KVMPPC_H_VOF_CLIENT": "client-interface calls read their argument block from guest memory "
                           "(their CAS is replayed from the cas record)",
    "KVMPPC_H_CAS": "replayed from the cas record",
}


@dataclass
class Outcome:
    """One replayed record. status: "ok" | "differs" | "skipped" | "note"."""

    index: int
    event: dict[str, Any]
    status: str
    message: str = ""


@dataclass
class ReplayReport:
    outcomes: list[Outcome] = field(default_factory=list)
    not_replayed: Counter[str] = field(default_factory=Counter)  # consequence kinds, not inputs

    @property
    def differences(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "differs"]

    @property
    def ok(self) -> bool:
        return not self.differences

    def counts(self) -> Counter[str]:
        return Counter(o.status for o in self.outcomes)

    def render(self, *, max_lines: int = 50) -> str:
        lines = []
        diffs = self.differences
        for o in diffs[:max_lines]:
            lines.append(f"#{o.index:<6} {format_event(o.event)}")
            lines.append(f"         replay differs: {o.message}")
        if len(diffs) > max_lines:
            lines.append(f"... {len(diffs) - max_lines} more differences")
        skipped: dict[str, int] = {}
        for o in self.outcomes:
            if o.status in ("skipped", "note"):
                skipped[f"{o.status}: {o.message}"] = skipped.get(f"{o.status}: {o.message}", 0) + 1
        for what, n in sorted(skipped.items()):
            lines.append(f"{what} (x{n})")
        c = self.counts()
        cons = ", ".join(f"{k} {v}" for k, v in sorted(self.not_replayed.items()))
        lines.append(f"replay: {c['ok'] + c['note']} same, {c['differs']} differ, {c['skipped']} not replayable"
                     + (f"; consequences not replayed: {cons}" if cons else ""))
        return "\n".join(lines)


def _signed(v: int) -> int:
    v &= MASK64
    return v - (1 << 64) if v >> 63 else v


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >> 31 else v


def machine_for(trace: Trace) -> Any:
    """A prepared machine with the trace's configuration (ConfigError when the header cannot give one)."""
    from dataclasses import fields

    from xive_machine.machine.config import MachineConfig
    from xive_machine.machine.spapr import SpaprMachine

    cfg = dict(trace.config)
    known = {f.name for f in fields(MachineConfig)}
    unknown = sorted(set(cfg) - known)
    if unknown:
        raise ConfigError(f"{trace.source}: the header's config has options this xive-machine does not know "
                          f"({', '.join(unknown)}): recorded by another version?")
    if isinstance(cfg.get("console_input"), str):
        cfg["console_input"] = cfg["console_input"].encode("latin-1")
    cfg["echo_console"] = False
    m = SpaprMachine(MachineConfig(**cfg))
    m.prepare()
    m.cpus[0].state = "running"  # the boot vCPU was running guest code from reset
    return m


class Replayer:
    """Replays records one by one on `machine` (built by `machine_for`)."""

    def __init__(self, machine: Any) -> None:
        self.m = machine
        self.scratch = 0x0100_0000  # RTAS blocks and CAS vectors without a usable address go here
        self.handlers = {"hcall": self._hcall, "rtas": self._rtas, "cas": self._cas, "mmio": self._mmio,
                         "mode": self._mode}

    def run(self, trace: Trace) -> ReplayReport:
        report = ReplayReport()
        nr = self.m.nr_cpus
        for i, ev in enumerate(trace.events):
            cpu = ev.get("cpu")
            if isinstance(cpu, int) and cpu >= nr:
                raise ConfigError(f"{trace.source}: event #{i} runs on vCPU {cpu} but the header's config has "
                                  f"smp={nr}: the events come from another configuration")
            kind = ev.get("ev")
            handler = self.handlers.get(str(kind))
            if handler is None:
                report.not_replayed[str(kind)] += 1
                continue
            try:
                status, message = handler(ev)
            except XiveMachineError as err:  # e.g. a model refusing an access: a result, not a crash
                status, message = "differs", f"the machine refused it now: {err}"
            if status:
                report.outcomes.append(Outcome(i, ev, status, message))
        return report

    # --- per kind: (status, message); status "" = nothing to report --------------------------------------
    def _hcall(self, ev: dict[str, Any]) -> tuple[str, str]:
        name = ev["name"]
        if name in SKIP_HCALLS:
            return "", ""
        if name == "KVMPPC_H_RTAS":
            return "", ""  # compared at its rtas record
        res = self.m.hcall(ev["cpu"], ev["opcode"], *ev["args"])
        rc, outs = _signed(int(res[0])), [int(o) & MASK64 for o in res[1:]]
        problems = []
        if rc != _signed(ev["rc"]):
            problems.append(f"rc {rc_text(ev['rc'])} recorded, {rc_text(rc)} now")
        if outs != ev["outs"]:
            problems.append(f"outs {value_text(ev['outs'])} recorded, {value_text(outs)} now")
        return ("differs", "; ".join(problems)) if problems else ("ok", "")

    def _rtas(self, ev: dict[str, Any]) -> tuple[str, str]:
        ram, at = self.m.ram, self.scratch + 0x1_0000
        rets_expected = [int(r) for r in ev["rets"]]
        nret = len(rets_expected)
        for k, word in enumerate((ev["token"], len(ev["args"]), nret, *ev["args"], *([0] * nret))):
            ram.write_u32(at + 4 * k, word & 0xFFFFFFFF)
        self.m.hcall(ev["cpu"], Op.KVMPPC_H_RTAS, at)
        base = at + 12 + 4 * len(ev["args"])
        rets = [ram.read_u32(base + 4 * k) for k in range(nret)]
        if [r & 0xFFFFFFFF for r in rets] != [r & 0xFFFFFFFF for r in rets_expected]:
            return "differs", (f"rets {value_text([_s32(r) for r in rets_expected])} recorded, "
                               f"{value_text([_s32(r) for r in rets])} now")
        return "ok", ""

    def _cas(self, ev: dict[str, Any]) -> tuple[str, str]:
        from xive_machine.hypervisor import build_cas_vector
        from xive_machine.machine import platform

        note = ""
        if isinstance(ev.get("vector"), str):
            vector = bytes.fromhex(ev["vector"])
        elif ev["rc"] != 0:
            return "skipped", ("a failed CAS cannot be replayed without the vector bytes (the trace's cas "
                               "records have no 'vector')")
        else:
            granted = bytes.fromhex(ev.get("arch_vec_5") or "00")[1:]  # DT form: length byte, then OV5
            vector = build_cas_vector(ev["intc"], mmu=ev["mmu"], compat=ev.get("compat_pvr") or "raw", ov5=granted)
            note = "CAS re-negotiated from the recorded decision (the trace's cas records have no 'vector')"
        addr = ev.get("addr")
        if not isinstance(addr, int) or not self.m.ram.contains(addr, len(vector)):
            addr = self.scratch
        self.m.ram.write(addr, vector)
        try:
            rec = platform.do_cas(self.m, 0, addr)
        except HcallError as err:
            return "differs", f"CAS stopped the machine now: {self.m.stop_message or err}"
        res = rec.result
        now = {"rc": int(res.rc), "intc": res.intc, "mmu": res.mmu, "compat_pvr": res.compat_pvr,
               "arch_vec_5": res.arch_vec_5.hex()}
        problems = [f"{k} {value_text(ev[k])} recorded, {value_text(v)} now" for k, v in now.items()
                    if k in ev and ev[k] != v]
        if problems:
            return "differs", "; ".join(problems)
        return ("note", note) if note else ("ok", "")

    def _mmio(self, ev: dict[str, Any]) -> tuple[str, str]:
        win = next((w for w in self.m.windows if w.name == ev["window"]), None)
        if win is None:
            active = self.m.intc.name if self.m.intc is not None else "none"
            return "differs", f"no {ev['window']} window now (active controller: {active})"
        size, mask = ev["size"], (1 << (8 * ev["size"])) - 1
        if ev["op"] == "store":
            win.write(ev["cpu"], ev["offset"], size, ev["value"] & mask)
            return "ok", ""
        value = win.read(ev["cpu"], ev["offset"], size) & mask
        if value != ev["value"] & mask:
            return "differs", f"load {value_text(ev['value'] & mask)} recorded, {value_text(value)} now"
        return "ok", ""

    def _mode(self, ev: dict[str, Any]) -> tuple[str, str]:
        now = self.m.intc.name if self.m.intc is not None else None
        if now != ev["after"]:
            return "differs", f"controller {ev['after']} recorded, {now} now"
        return "", ""


def replay(trace: Trace) -> ReplayReport:
    """Rebuild the machine from the trace header and replay every input record."""
    m = machine_for(trace)
    try:
        report = Replayer(m).run(trace)
    finally:
        m.close()
    return report
