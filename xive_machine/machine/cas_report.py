"""The text `xive-machine cas` prints when the guest calls CAS: the request decoded, what the platform
offers, what was decided, and the device-tree diff the decision causes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from xive_machine.firmware import ovec

if TYPE_CHECKING:
    from xive_machine.machine.spapr import SpaprMachine


def render(m: SpaprMachine) -> str:
    rec = m.cas
    if rec is None:
        return "no CAS call"
    res = rec.result
    out = [f"== CAS called by vCPU {rec.cpu}, architecture vector at {rec.vector_addr:#x}", "", "-- request"]
    if rec.request is not None:
        out += ["   " + line for line in ovec.decode_lines(rec.request)]
    else:
        out.append("   (unreadable)")
    offer = m.cas_platform.arch_vec_5_platform_support(0)
    pairs = ", ".join(f"byte {offer[i]} = {offer[i + 1]:#04x}" for i in range(0, len(offer), 2))
    out += ["", f"-- platform offer (ic-mode={m.config.ic_mode})",
            f"   ibm,arch-vec-5-platform-support: {pairs}",
            f"   OV5 the platform grants: {m.cas_platform.ov5().hex()}", "", "-- decision"]
    if res.ok:
        mode = " (raw mode)" if res.raw_mode and not res.compat_pvr else ""
        if res.raw_mode and res.compat_pvr:
            mode = " (the guest also listed the real PVR)"
        out.append(f"   rc 0 (H_SUCCESS); compat PVR {res.compat_pvr:#010x}{mode}; cpu-version {res.cpu_version:#010x}")
        out.append(f"   interrupt controller: {rec.mode_before} -> {rec.mode_after}; MMU {res.mmu}"
                   + (" (radix granted)" if res.radix_granted else "") + ("; GTSE" if res.gtse else ""))
        out.append(f"   /chosen/ibm,architecture-vec-5 = [{res.arch_vec_5.hex(' ')}]")
    else:
        out.append(f"   rc {int(res.rc)}: {res.reason}")
    for d in res.diagnostics:
        out.append(f"   note: {d}")
    out += ["", "-- device-tree diff"]
    out += ["   " + line for line in (rec.diff or ["(no change)"])]
    return "\n".join(out)
