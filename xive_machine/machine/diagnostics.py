"""Human-readable vCPU state for error reports (the machine's `*_pic_print_info`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from xive_machine.cpu import regs as R
from xive_machine.cpu.vcpu import VCpu

if TYPE_CHECKING:
    from xive_machine.machine.spapr import SpaprMachine


def dump(m: SpaprMachine, vcpu: VCpu, at: int | None = None) -> str:
    pc = vcpu.pc
    msr = vcpu.msr
    lines = [f"vCPU {vcpu.index}: PC {pc:#018x}  MSR {msr:#018x}  LR {vcpu.reg(R.REG_LR):#018x}  "
             f"CTR {vcpu.reg(R.REG_CTR):#018x}  CR {vcpu.reg(R.REG_CR):#010x}"]
    for row in range(0, 32, 4):
        lines.append("  " + "  ".join(f"r{n:<2} {vcpu.gpr(n):#018x}" for n in range(row, row + 4)))
    where = at if at is not None else pc
    order = "little" if msr & R.MSR_LE else "big"
    try:
        if m.ram.contains(where, 4):
            word = int.from_bytes(m.ram.read(where, 4), order)
            lines.append(f"  instruction at {where:#x}: {word:#010x}")
        else:
            lines.append(f"  instruction at {where:#x}: outside RAM")
    except Exception:  # noqa: BLE001 - a diagnostic must never fail
        pass
    return "\n".join(lines)


def last_hcalls(m: SpaprMachine, count: int = 16) -> str:
    """The machine's last hcalls across vCPUs, oldest first, as a post-mortem shows them."""
    from xive_machine.hcalls.codes import opcode_name

    calls = sorted(c for v in m.vcpus for c in v.hcall_history())[-count:]
    lines = [f"last {len(calls)} hcalls (oldest first):"]
    for seq, op, pc, args, rc, cpu in calls:
        shown = ", ".join(f"{a:#x}" for a in args)
        lines.append(f"  #{seq} vCPU {cpu} at {pc:#x}: {opcode_name(op)}({shown}) -> {rc}")
    return "\n".join(lines)


def post_mortem(m: SpaprMachine) -> str:
    """Everything a report of a guest's death carries: the last hcalls, then each vCPU's state."""
    parts = [last_hcalls(m)]
    for v in m.vcpus:
        try:
            parts.append(dump(m, v))
        except Exception:  # noqa: BLE001 - a diagnostic must never fail
            parts.append(f"vCPU {v.index}: state unavailable")
    return "\n".join(parts)
