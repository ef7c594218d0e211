"""Snapshot and restore of a whole SpaprMachine: `save(m) -> bytes`, `snapshot(m, path)`, `restore(src)`,
`load_state(m, src)`, `info(src)`. `src` is snapshot bytes or a file path.

A snapshot is taken between runs (after `m.run(max_insns=N)` stopped): vCPUs, RAM, the interrupt
controllers (XIVE quiesced in QEMU's order, see `migration/xive.py`; under `--irqchip kvm` XICS read through
the XICS-on-XIVE device's source attributes and ICP_STATE, as QEMU's pre_save), CAS, the device tree, the client
interface, console, clock and the machine's own state. Restored in a fresh machine (any process, either
backend), the deterministic run goes on exactly as the original does from the same point.
"""

from __future__ import annotations

import os
import time
import weakref
from typing import TYPE_CHECKING, Any

from xive_machine.errors import ConfigError
from xive_machine.migration import format as F
from xive_machine.migration import ram as RAM
from xive_machine.migration import state as S
from xive_machine.migration.stream import Snapshot, decode, encode, read_file, write_atomic

if TYPE_CHECKING:
    from xive_machine.machine.spapr import SpaprMachine

Source = bytes | bytearray | memoryview | str | os.PathLike | Snapshot

# machine -> (absolute path, chunk digests, ram_id) of its last snapshot file: the base of an incremental one
_last: weakref.WeakKeyDictionary[Any, tuple[str, list[bytes], bytes]] = weakref.WeakKeyDictionary()


def _encode(m: SpaprMachine, base: tuple[list[bytes], bytes, str] | None) -> tuple[bytes, list[bytes], bytes]:
    sections = S.capture(m)
    table = RAM.digests(m.ram)
    image = RAM.encode(m.ram, table, base)
    sections["RAM "] = [{"size": image.size, "chunk_shift": RAM.CHUNK_SHIFT, "ram_id": image.ram_id,
                         "base_id": image.base_id, "base_file": image.base_file, "zeroed": image.zeroed,
                         "chunks": image.chunks, "blocks": image.blocks}]
    flags = F.FLAG_INCREMENTAL if base is not None else 0
    return encode(sections, S.config_json(m), flags), table, image.ram_id


def save(m: SpaprMachine) -> bytes:
    """The whole machine as snapshot bytes (a full image). The machine can go on running afterwards."""
    return _encode(m, None)[0]


def snapshot(m: SpaprMachine, path: str | os.PathLike, *, incremental: bool = False) -> dict:
    """Write a snapshot file atomically. `incremental`: only RAM chunks changed since this machine's previous
    snapshot file (which must stay next to it); a full image when there is none. Returns a short summary."""
    path = os.path.abspath(os.fspath(path))
    t0 = time.perf_counter()
    prev = _last.get(m) if incremental else None
    base = None
    if prev is not None and prev[0] != path:
        base = (prev[1], prev[2], os.path.relpath(prev[0], os.path.dirname(path)))
    data, table, ram_id = _encode(m, base)
    write_atomic(path, data)
    _last[m] = (path, table, ram_id)
    m.ram.dirty_pages.clear()
    return {"path": path, "bytes": len(data), "incremental": base is not None, "instructions": m.clock.insns,
            "seconds": time.perf_counter() - t0}


def load(src: Source) -> Snapshot:
    """Read and verify a snapshot (bytes or a file path) without applying it."""
    if isinstance(src, Snapshot):
        return src
    if isinstance(src, (bytes, bytearray, memoryview)):
        return decode(bytes(src), "snapshot")
    name = os.fspath(src)
    snap = decode(read_file(name), name)
    return snap


def _base_loader(m: SpaprMachine, snap: Snapshot, depth: int = 0) -> Any:
    def load_base(name: str, want_id: bytes) -> None:
        if snap.source == "snapshot":
            raise ConfigError("an incremental snapshot given as bytes: restore it from its file, next to its base")
        if depth > 64:
            raise ConfigError(f"{snap.source}: chain of incremental snapshots too long")
        path = os.path.join(os.path.dirname(os.path.abspath(snap.source)), name)
        base = load(path)
        img = base.sections["RAM "][0]
        if img.ram_id != want_id:
            raise ConfigError(f"{path}: not the base {snap.source} was taken against (RAM image differs)")
        RAM.apply(m.ram, RAM.RamImage(img.size, img.ram_id, img.base_id, img.base_file, list(img.zeroed),
                                      list(img.chunks), list(img.blocks)), _base_loader(m, base, depth + 1))
    return load_base


def load_state(m: SpaprMachine, src: Source) -> None:
    """Restore a snapshot into `m`, which must have the options the snapshot fixes (smp, memory, ...)."""
    snap = load(src)
    S.apply(m, snap.sections, snap.config, _base_loader(m, snap))
    m._booted = True  # noqa: SLF001 - the machine is now as loaded as the one saved


def restore(src: Source, *, trace: Any = None, **overrides: Any) -> SpaprMachine:
    """A new machine in the saved state. `overrides`: MachineConfig fields the snapshot does not fix
    (irqchip, echo_console, clock, slice_insns ...); a fixed one (smp, memory ...) that differs is an error."""
    from xive_machine.machine.spapr import SpaprMachine

    snap = load(src)
    cfg = S.make_config(snap.config, overrides)
    m = SpaprMachine(cfg, trace=trace)
    try:
        load_state(m, snap)
    except BaseException:
        m.close()
        raise
    return m


def info(src: Source) -> str:
    """A human summary of a snapshot (verified first)."""
    snap = load(src)
    sec = snap.sections
    cfg = snap.config
    misc = sec["MISC"][0]
    img = sec["RAM "][0]
    lines = [f"{snap.source}: xive-machine snapshot, format version {snap.version}, {snap.total} bytes"
             + (" (incremental)" if snap.incremental else "")]
    lines.append("config: " + ", ".join(f"{k}={cfg[k]}" for k in ("smp", "memory", "boot", "ic_mode", "irqchip",
                                                                  "max_compat", "clock", "append") if k in cfg))
    k = misc.kernel.value if misc.kernel.present else None
    if k is not None:
        lines.append(f"kernel: {k.path} at {k.base:#x}+{k.size:#x} ({'LE' if k.little_endian else 'BE'})")
    lines.append(f"instructions: {misc.clock_insns}, virtual time {misc.clock_ns} ns"
                 + (f", stopped by {misc.stop_reason}" if misc.stop_reason else ""))
    lines.append(f"interrupt controller: {misc.active_intc or 'none'} active"
                 + (" (XIVE negotiated)" if misc.xive_negotiated else "")
                 + "; controllers " + ", ".join(c.name for c in sec.get("CTRL", [])))
    if "CAS " in sec:
        r = sec["CAS "][0].result
        lines.append(f"CAS: rc {r.rc}, intc {r.intc}, cpu-version {r.cpu_version:#010x}")
    else:
        lines.append("CAS: not called yet")
    for c in sec["CPUS"][0]:
        lines.append(f"vCPU {c.index}: {c.state}, pc {c.pc:#x}, msr {c.msr:#x}, {c.icount} instructions")
    ram_line = (f"RAM: {img.size >> 20} MiB, {len(img.chunks)} chunks of {1 << img.chunk_shift >> 10} KiB stored, "
                f"{sum(len(b) for b in img.blocks)} bytes compressed")
    if snap.incremental:
        ram_line += f", {len(img.zeroed)} zeroed, base {img.base_file}"
    lines.append(ram_line)
    cons = sec["CONS"][0]
    lines.append(f"console: {len(cons.output)} bytes of output, {len(cons.input)} bytes of input pending")
    lines.append("sections: " + ", ".join(f"{t.strip()} {n}" for t, n in snap.sizes))
    return "\n".join(lines)


__all__ = ["Snapshot", "info", "load", "load_state", "restore", "save", "snapshot"]
