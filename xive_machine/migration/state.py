"""The whole machine as snapshot sections, and back: `capture(m)` reads every part into plain containers laid
out as `format.py` declares them; `apply(m, sections)` writes them into a machine built with the same
configuration. Nothing of Unicorn is pickled: registers and SPRs are read and written one by one.

Restore order (each step relies on the previous one):
 1. platform reset (controllers per ic-mode, tree, client interface), then the saved active controller,
 2. RAM (then every vCPU's translated code dropped), boot images, kernel and firmware facts,
 3. controllers' state (XIVE in QEMU's KVM order, see migration/xive.py; a KVM XICS pushes sources, then
    presenters, into its device), which re-drives the IRQ lines,
 4. tree, client interface, CAS record, console, clock, machine fields,
 5. vCPUs: registers, SPRs (trampoline flushed at once, so it costs no guest instructions), and last the
    per-vCPU machine state, which overwrites whatever step 3's line changes left there,
 6. the time-instruction hooks the original had (timebase.hook_site).
"""

from __future__ import annotations

import json
import zlib
from typing import TYPE_CHECKING, Any

from xive_machine.cpu import regs as R
from xive_machine.errors import ConfigError
from xive_machine.firmware import devtree as DT
from xive_machine.firmware.cas import CasResult
from xive_machine.firmware.elf import LoadedKernel
from xive_machine.firmware.vof import Instance
from xive_machine.intc.xics.spapr import ICPStateData, XicsState
from xive_machine.intc.xive.spapr import SpaprXiveState
from xive_machine.migration import format as F
from xive_machine.migration import ram as RAM
from xive_machine.migration import xive as XQ

if TYPE_CHECKING:
    from xive_machine.machine.spapr import SpaprMachine

# SPRs a pseries guest can see and Unicorn keeps; each read or write round-trips exactly (tested). TB, DEC
# and PURR are the machine's (clock + CpuState); HV-only SPRs are not the guest's.
GUEST_SPRS = (R.SPR_SRR0, R.SPR_SRR1, R.SPR_SPRG0, R.SPR_SPRG1, R.SPR_SPRG2, R.SPR_SPRG3, R.SPR_DAR,
              R.SPR_DSISR, R.SPR_TAR, R.SPR_VRSAVE, R.SPR_DSCR, R.SPR_PPR, R.SPR_PIDR, R.SPR_FSCR, R.SPR_PSPB)

# Options a snapshot fixes: the machine restored into must have the same (the rest may be overridden).
FIXED_OPTIONS = ("smp", "memory", "boot", "ic_mode", "max_compat", "rng", "insns_per_us")
OPTION_FLAGS = {"smp": "--smp", "memory": "--memory", "boot": "--boot", "ic_mode": "--ic-mode",
                "max_compat": "--max-compat", "rng": "--rng", "insns_per_us": "insns_per_us"}

Sections = dict[str, list[Any]]
RESUMABLE = ("", "until", "max-insns", "timeout")  # stops SpaprMachine.run goes on from


def _opt(value: Any) -> dict:
    return {"present": value is not None, "value": value}


def _get(opt: Any) -> Any:
    return opt.value if opt.present else None


# ------------------------------------------------------------------------------------------------------------
# capture


def capture(m: SpaprMachine) -> Sections:
    if m.current is not None:
        raise ConfigError("cannot snapshot a machine from inside its run (stop it first: run(max_insns=...))")
    if m.kernel is None:
        raise ConfigError("nothing to snapshot: no guest loaded")
    out: Sections = {"MISC": [_misc(m)], "BOOT": [_boot_images(m)], "CPUS": [[_vcpu(m, i) for i in range(m.nr_cpus)]]}
    for name, ic in m.controllers.items():
        out.setdefault("CTRL", []).append(_controller(name, ic))
    out["TREE"] = [_trees(m)]
    if m.vof is not None:
        out["VOF "] = [_vof(m.vof)]
    if m.cas is not None:
        out["CAS "] = [_cas(m)]
    out["CONS"] = [{"output": bytes(m.console.output), "input": m.console.get_state()["input"]}]
    out["PLAT"] = [_platform(m)]
    out["VSX "] = [[{"index": v.index, "state": v.vector_state()} for v in m.vcpus]]
    return out


def _platform(m: SpaprMachine) -> dict:
    """The radix registration, the TCE tables and the NVRAM: guest-visible state of the platform itself."""
    return {"patb_entry": m.patb_entry, "lpcr_radix": m.lpcr_radix, "lpcr_gtse": m.lpcr_gtse,
            "tce": [{"liobn": t.liobn, "entries": [{"index": i, "tce": v} for i, v in sorted(t.table.items())]}
                    for t in m.tce_tables.values()],
            "nvram": zlib.compress(bytes(m.nvram), 1)}


def _apply_platform(m: SpaprMachine, rec: Any) -> None:
    from xive_machine.hcalls.mmu import apply_patb

    m.set_lpcr_mmu(rec.lpcr_radix, rec.lpcr_gtse)
    apply_patb(m, rec.patb_entry)
    for t in rec.tce:
        table = m.tce_tables.get(t.liobn)
        if table is not None:
            table.table = {e.index: e.tce for e in t.entries}
    nvram = zlib.decompress(rec.nvram)
    m.nvram[:len(nvram)] = nvram


def _misc(m: SpaprMachine) -> dict:
    clock = m.clock.get_state()
    rng = None
    if m._rng is not None and hasattr(m._rng, "getstate"):
        version, words, _gauss = m._rng.getstate()
        rng = {"version": version, "words": list(words)}
    k = m.kernel
    kernel = None if k is None else {
        "path": k.path, "base": k.base, "size": k.size, "little_endian": k.little_endian, "e_entry": k.e_entry,
        "exec_ranges": [{"addr": a, "size": s} for a, s in k.exec_ranges]}
    return {
        "clock_insns": clock["insns"], "clock_skip_ns": clock["skip_ns"], "clock_ns": clock["ns"],
        "rtc_offset_s": m.rtc_offset_s,
        "fwnmi": _opt(None if m.fwnmi is None else {"sreset": m.fwnmi[0], "mce": m.fwnmi[1]}),
        "lpcr_ile": m.lpcr_ile, "xive_negotiated": m.xive_negotiated,
        "active_intc": m.intc.name if m.intc is not None else "",
        "bootargs": m.bootargs, "initrd_start": m.initrd_start, "initrd_size": m.initrd_size,
        "fdt_addr": m.fdt_addr, "hcall_count": m.hcall_count, "uuid": _opt(m.uuid),
        "os_term_message": m.os_term_message, "stop_reason": m.stop_reason or "",
        "exit_code": m.exit_code & 0xFFFFFFFF, "stop_message": m.stop_message,
        "rng": _opt(rng), "kernel": _opt(kernel),
        "fw_symbols": [{"name": n, "value": v} for n, v in sorted(m.fw_symbols.items())],
        "time_sites": [{"addr": a, "rw": rw, "spr": spr, "gpr": gpr}
                       for a, (rw, spr, gpr) in sorted(m.time_sites.items())],
        "rr_round": [-1] if m.rr_round is None else list(m.rr_round), "rr_pos": m.rr_pos, "rr_last": m.rr_last,
        "rr_resume_cpu": -1 if m.rr_resume is None else m.rr_resume[0],
        "rr_resume_insns": 0 if m.rr_resume is None else m.rr_resume[1],
    }


def _boot_images(m: SpaprMachine) -> list[dict]:
    return [{"addr": addr, "data": zlib.compress(data, RAM.ZLIB_LEVEL)} for addr, data in m.boot_images]


def _vcpu(m: SpaprMachine, i: int) -> dict:
    v = m.vcpus[i]
    exec_outside = v.trap.exec_outside  # SPR stubs run outside the images: not the guest's doing
    pending = dict(v.redirect[3]) if v.redirect is not None else None
    st = m.cpus[i]
    rec = {
        "index": i,
        "gpr": [v.gpr(n) for n in range(32)],
        "fpr": [v.reg(r) for r in R.FPR],
        "fpscr": v.reg(R.FPSCR), "cr": v.reg(R.REG_CR), "lr": v.reg(R.REG_LR), "ctr": v.reg(R.REG_CTR),
        "xer": v.xer, "msr": v.msr, "pc": v.pc,
        "sprs": [{"spr": spr, "value": _read_spr(v, spr, pending)} for spr in GUEST_SPRS],
        "redirect": _opt(None if pending is None else {
            "sprs": [{"spr": spr, "value": value} for spr, value in pending.items()], "run_msr": v.reg(R.REG_MSR)}),
        "shadow": [{"spr": spr, "value": value} for spr, value in v.shadow.items()],
        "icount": v.trap.icount, "code_lo": v.trap.code_lo, "code_hi": v.trap.code_hi,
        "exec_outside": exec_outside, "irq_waiting": v.trap.irq_waiting,
        "state": st.state, "prod": st.prod, "irq": st.irq, "dec_pending": st.dec_pending,
        "dec_deadline_tb": _opt(st.dec_deadline_tb), "dec_written_tb": st.dec_written_tb,
        "dec_value": st.dec_value, "vpa": st.vpa, "dtl": st.dtl, "slb_shadow": st.slb_shadow,
        "dispatch": st.dispatch, "sreset": bool(st.extra.get("sreset", False)),
        "window_pages": sorted(v.__dict__.get("_mmio_pages", {})),
    }
    v.trap.exec_outside = exec_outside
    return rec


def _read_spr(v: Any, spr: int, pending: dict[int, int] | None) -> int:
    """The SPR's value as the guest will see it, without running a pending trampoline (VCpu.spr would)."""
    if spr in v.shadow:
        return v.shadow[spr]
    if pending is None:
        return v.spr(spr)
    if spr in pending:
        return pending[spr]
    return v._run_stub(R.mfspr(3, spr), None)  # noqa: SLF001 - a read that leaves the redirect pending


def _controller(name: str, ic: Any) -> dict:
    if XQ.is_xive(ic):
        s = XQ.save_state(ic)
        body = F.XiveSection.build({
            "version": s.version, "nr_irqs": s.nr_irqs, "nr_servers": s.nr_servers, "status": s.status,
            "lsi": s.lsi, "eat": list(s.eat), "endt": list(s.endt),
            "tctx": [{"cpu": c, "regs": r} for c, r in s.tctx]})
        return {"name": name, "kind": "xive", "state": body}
    x: XicsState = ic.get_state()
    body = F.XicsSection.build({
        "version": x.version, "nr_servers": x.nr_servers, "nr_irqs": x.nr_irqs,
        "icps": [{"server": p.server, "xirr": p.xirr, "pending_priority": p.pending_priority, "mfrr": p.mfrr}
                 for p in x.icps],
        "ics_server": x.ics_server, "ics_priority": x.ics_priority, "ics_saved_priority": x.ics_saved_priority,
        "ics_status": x.ics_status, "ics_flags": x.ics_flags})
    return {"name": name, "kind": "xics", "state": body}


def _trees(m: SpaprMachine) -> dict:
    separate = m.vof is not None and m.vof.tree is not m.tree
    return {"tree": _opt(DT.to_dtb(m.tree) if m.tree is not None else None),
            "vof_tree_separate": separate, "vof_tree": DT.to_dtb(m.vof.tree) if separate else None}


def _vof(vof: Any) -> dict:
    s = vof.state
    return {
        "claims": [{"addr": a, "size": n} for a, n in s.claims], "claimed_base": s.claimed_base,
        "top_addr": s.top_addr,
        "instances": [{"ihandle": h, "path": inst.path, "phandle": inst.phandle} for h, inst in s.instances.items()],
        "last_ihandle": s.last_ihandle, "bootargs": _opt(s.bootargs),
        "initrd": _opt(None if s.initrd is None else {"addr": s.initrd[0], "size": s.initrd[1]}),
        "stack_base": s.stack_base, "stdout": _opt(vof.stdout), "quiesced": vof.quiesced, "exited": vof.exited,
        "writes": [{"ihandle": h, "data": d} for h, d in vof.writes],
    }


def _cas(m: SpaprMachine) -> dict:
    from xive_machine.firmware import ovec

    rec = m.cas
    r: CasResult = rec.result
    try:
        request = ovec.build_arch_vector(rec.request) if rec.request is not None else None
    except Exception:  # noqa: BLE001 - an unbuildable request is only lost from the CAS report
        request = None
    return {
        "cpu": rec.cpu, "vector_addr": rec.vector_addr, "request": _opt(request),
        "result": {"rc": int(r.rc), "reason": r.reason, "compat_applied": r.compat_applied,
                   "compat_pvr": r.compat_pvr, "raw_mode": r.raw_mode, "cpu_version": r.cpu_version,
                   "ov5_cas": r.ov5_cas, "arch_vec_5": r.arch_vec_5, "intc": r.intc, "mmu": r.mmu,
                   "radix_granted": r.radix_granted, "gtse": r.gtse, "pre_isa3_guest": r.pre_isa3_guest,
                   "presize_hpt": r.presize_hpt, "diagnostics": list(r.diagnostics)},
        "dt_before": _opt(DT.to_dtb(rec.dt_before) if rec.dt_before is not None else None),
        "dt_after_is_tree": rec.dt_after is not None and rec.dt_after is m.tree,
        "dt_after": _opt(DT.to_dtb(rec.dt_after) if rec.dt_after is not None and rec.dt_after is not m.tree else None),
        "mode_before": rec.mode_before, "mode_after": rec.mode_after, "diff": list(rec.diff),
    }


# ------------------------------------------------------------------------------------------------------------
# configuration


def config_dict(m: SpaprMachine) -> dict:
    return m.config.as_dict()


def check_config(saved: dict, cfg: Any) -> None:
    """The options a snapshot fixes must be what the machine has; one line names the first that differs."""
    for name in FIXED_OPTIONS:
        want, have = saved.get(name), getattr(cfg, name)
        if want != have:
            flag = OPTION_FLAGS[name]
            if name == "memory":
                raise ConfigError(f"snapshot was taken with {flag} {want >> 20}M; the machine has {have >> 20}M")
            raise ConfigError(f"snapshot was taken with {flag} {want}; the machine has {have}")


def make_config(saved: dict, overrides: dict) -> Any:
    """MachineConfig from the saved options plus overrides (those the snapshot fixes must not change)."""
    from xive_machine.machine.config import MachineConfig

    values = dict(saved)
    values["console_input"] = values.get("console_input", "").encode("latin-1")
    for name, value in overrides.items():
        if value is None:
            continue
        if name not in values:
            raise ConfigError(f"unknown machine option {name!r}")
        values[name] = value
    try:
        cfg = MachineConfig(**values)
    except TypeError as exc:
        raise ConfigError(f"snapshot configuration not understood ({exc})") from None
    check_config(saved, cfg)
    return cfg


def config_json(m: SpaprMachine) -> bytes:
    return json.dumps(config_dict(m), sort_keys=True).encode()


# ------------------------------------------------------------------------------------------------------------
# apply


def apply(m: SpaprMachine, sections: Sections, saved_config: dict,
          load_base: Any = None) -> None:
    """Restore `sections` into `m` (built with a compatible config). `load_base(file, ram_id)` restores the
    RAM of an incremental snapshot's base."""
    from xive_machine.machine import platform

    check_config(saved_config, m.config)
    for tag in F.REQUIRED:
        if tag not in sections:
            raise ConfigError(f"snapshot has no {tag.strip()} section")
    misc = sections["MISC"][0]
    cpus = sections["CPUS"][0]
    if len(cpus) != m.nr_cpus or sorted(c.index for c in cpus) != list(range(m.nr_cpus)):
        raise ConfigError(f"snapshot holds {len(cpus)} vCPUs; the machine has {m.nr_cpus}")
    img = sections["RAM "][0]
    if img.size != m.ram.size:
        raise ConfigError(f"snapshot was taken with --memory {img.size >> 20}M; the machine has {m.ram.size >> 20}M")
    kernel = _get(misc.kernel)
    if kernel is None:
        raise ConfigError("snapshot has no kernel record")
    ctrls = {c.name: c for c in sections.get("CTRL", [])}
    sites = {s.addr: (s.rw, s.spr, s.gpr) for s in misc.time_sites}
    stale = [a for a, kind in m.time_sites.items() if sites.get(a) != kind]
    if stale:  # Unicorn hooks cannot be listed or removed by address: a fresh machine is needed
        raise ConfigError(f"this machine already runs other code (time instruction at {stale[0]:#x}); "
                          "restore into a new machine (migration.restore)")

    # 1. the platform as at reset, then the controller that was active
    m.kernel = LoadedKernel(kernel.path, kernel.base, kernel.size, kernel.little_endian, kernel.e_entry,
                            tuple((r.addr, r.size) for r in kernel.exec_ranges))
    m.fw_symbols = {s.name: s.value for s in misc.fw_symbols}
    m.initrd_start, m.initrd_size = misc.initrd_start, misc.initrd_size
    platform.machine_reset(m)
    if set(ctrls) != set(m.controllers):
        raise ConfigError(f"snapshot has controllers {sorted(ctrls)}; the machine has {sorted(m.controllers)}")
    if misc.active_intc and misc.active_intc not in m.controllers:
        raise ConfigError(f"snapshot's active controller {misc.active_intc!r} does not exist here")
    if misc.active_intc:
        platform.activate_controller(m, misc.active_intc)
    m.xive_negotiated = misc.xive_negotiated

    # 2. memory
    RAM.apply(m.ram, RAM.RamImage(img.size, img.ram_id, img.base_id, img.base_file, list(img.zeroed),
                                  list(img.chunks), list(img.blocks)), load_base or _no_base)
    for rec in cpus:
        _map_window_pages(m, m.vcpus[rec.index], rec.window_pages)
    for v in m.vcpus:
        v.forget_code()  # RAM changed behind Unicorn's back
    m.boot_images = [(b.addr, _inflate(b.data)) for b in sections["BOOT"][0]]

    # 3. interrupt controllers
    for name, rec in ctrls.items():
        _apply_controller(m.controllers[name], rec)

    # 4. firmware, console, clock, machine fields
    trees = sections["TREE"][0]
    tree_blob = _get(trees.tree)
    m.tree = DT.from_dtb(tree_blob) if tree_blob is not None else None
    if m.vof is not None:
        if "VOF " not in sections:
            raise ConfigError("snapshot has no client-interface (VOF) section for a --boot vof machine")
        vof_tree = DT.from_dtb(trees.vof_tree) if trees.vof_tree_separate else m.tree
        _apply_vof(m.vof, sections["VOF "][0], vof_tree)
    m.cas = _apply_cas(m, sections["CAS "][0]) if "CAS " in sections else None
    cons = sections["CONS"][0]
    m.console.set_state({"output": cons.output, "input": cons.input})
    m.clock.set_state({"insns": misc.clock_insns, "skip_ns": misc.clock_skip_ns, "ns": misc.clock_ns})
    m.rtc_offset_s = misc.rtc_offset_s
    fw = _get(misc.fwnmi)
    m.fwnmi = None if fw is None else (fw.sreset, fw.mce)
    m.lpcr_ile = misc.lpcr_ile
    m.bootargs = misc.bootargs
    m.fdt_addr = misc.fdt_addr
    m.hcall_count = misc.hcall_count
    m.uuid = _get(misc.uuid)
    m.os_term_message = misc.os_term_message
    rng = _get(misc.rng)
    if rng is not None:
        import random

        m._rng = random.Random()
        m._rng.setstate((rng.version, tuple(rng.words), None))
    if misc.stop_reason in RESUMABLE:
        m.stop_reason, m.exit_code, m.stop_message = None, 0, ""
    else:  # the guest had ended (power-off, os-term ...): so does the restored machine
        m.stop_reason, m.exit_code, m.stop_message = misc.stop_reason, misc.exit_code, misc.stop_message

    round_ = list(misc.rr_round)
    m.rr_round = None if round_ == [-1] else round_
    m.rr_pos = misc.rr_pos
    m.rr_last = misc.rr_last
    m.rr_resume = None if misc.rr_resume_cpu < 0 else (misc.rr_resume_cpu, misc.rr_resume_insns)

    # 5. vCPUs, then what the machine keeps per vCPU; the vector-scalar registers last (they overlay the FPRs)
    for rec in cpus:
        _apply_vcpu(m, rec)
    for rec in sections.get("VSX ", [[]])[0]:
        m.vcpus[rec.index].set_vector_state(rec.state)

    # 6. time instructions: hooked again before any code is translated
    _hook_time_sites(m, misc.time_sites)

    # 7. the platform: MMU registration (snapshots from before it existed restore a reset platform)
    if "PLAT" in sections:
        _apply_platform(m, sections["PLAT"][0])


def _no_base(name: str, ram_id: bytes) -> None:
    raise ConfigError(f"incremental snapshot needs its base {name!r}, which was not given")


def _inflate(data: bytes) -> bytes:
    try:
        return zlib.decompress(data)
    except zlib.error as exc:
        raise ConfigError(f"snapshot boot image does not decompress ({exc})") from None


def _apply_controller(ic: Any, rec: Any) -> None:
    if rec.kind != ("xive" if XQ.is_xive(ic) else "xics"):
        raise ConfigError(f"snapshot controller {rec.name!r} is {rec.kind}, the machine's is not")
    if rec.kind == "xive":
        s = F.parse(F.XiveSection, rec.state, "snapshot XIVE state")
        state = SpaprXiveState(s.version, s.nr_irqs, s.nr_servers, s.status, s.lsi, tuple(s.eat), tuple(s.endt),
                               tuple((t.cpu, t.regs) for t in s.tctx))
        XQ.load_state(ic, state)
        return
    x = F.parse(F.XicsSection, rec.state, "snapshot XICS state")
    ic.set_state(XicsState(x.version, x.nr_servers, x.nr_irqs,
                           tuple(ICPStateData(p.server, p.xirr, p.pending_priority, p.mfrr) for p in x.icps),
                           x.ics_server, x.ics_priority, x.ics_saved_priority, x.ics_status, x.ics_flags))


def _apply_vof(vof: Any, rec: Any, tree: Any) -> None:
    s = vof.state
    s.claims = [(c.addr, c.size) for c in rec.claims]
    s.claimed_base = rec.claimed_base
    s.top_addr = rec.top_addr
    s.instances = {i.ihandle: Instance(i.path, i.phandle) for i in rec.instances}
    s.last_ihandle = rec.last_ihandle
    s.bootargs = _get(rec.bootargs)
    initrd = _get(rec.initrd)
    s.initrd = None if initrd is None else (initrd.addr, initrd.size)
    s.stack_base = rec.stack_base
    vof.stdout = _get(rec.stdout)
    vof.quiesced = rec.quiesced
    vof.exited = rec.exited
    vof.writes = [(w.ihandle, w.data) for w in rec.writes]
    vof._install(tree)
    vof._recount()


def _apply_cas(m: SpaprMachine, rec: Any) -> Any:
    from xive_machine.firmware import ovec
    from xive_machine.machine.platform import CasRecord

    r = rec.result
    result = CasResult(rc=r.rc, reason=r.reason, compat_applied=r.compat_applied, compat_pvr=r.compat_pvr,
                       raw_mode=r.raw_mode, cpu_version=r.cpu_version, ov5_cas=r.ov5_cas, arch_vec_5=r.arch_vec_5,
                       intc=r.intc, mmu=r.mmu, radix_granted=r.radix_granted, gtse=r.gtse,
                       pre_isa3_guest=r.pre_isa3_guest, presize_hpt=r.presize_hpt,
                       diagnostics=tuple(r.diagnostics))
    raw = _get(rec.request)
    try:
        request = ovec.parse_arch_vector(raw, strict=False) if raw is not None else None
    except Exception:  # noqa: BLE001 - only the report's decoded request is lost
        request = None
    before = _get(rec.dt_before)
    after = m.tree if rec.dt_after_is_tree else (DT.from_dtb(_get(rec.dt_after)) if rec.dt_after.present else None)
    return CasRecord(rec.cpu, rec.vector_addr, request, result, DT.from_dtb(before) if before is not None else None,
                     after, rec.mode_before, rec.mode_after, list(rec.diff))


def _apply_vcpu(m: SpaprMachine, rec: Any) -> None:
    i = rec.index
    v = m.vcpus[i]
    v.flush_redirect()
    for n in range(32):
        v.set_gpr(n, rec.gpr[n])
    for r, value in zip(R.FPR, rec.fpr, strict=True):
        v.set_reg(r, value)
    v.set_reg(R.FPSCR, rec.fpscr)
    v.set_reg(R.REG_CR, rec.cr)
    v.set_reg(R.REG_LR, rec.lr)
    v.set_reg(R.REG_CTR, rec.ctr)
    v.xer = rec.xer
    v.msr = rec.msr
    v.pc = rec.pc
    v.shadow = {s.spr: s.value for s in rec.shadow}
    served = (R.SPR_PIDR,)  # kept by the machine, not by Unicorn (the MMU walker's PID)
    for s in rec.sprs:
        if s.spr in served:
            v.set_spr(s.spr, s.value)
    v.write_sprs([(s.spr, s.value) for s in rec.sprs if s.spr not in v.shadow and s.spr not in served])
    v.flush_redirect()  # run the SPR trampoline now: the restored vCPU starts exactly at the guest's PC
    redirect = _get(rec.redirect)
    if redirect is not None:  # the trampoline the original still had to run, as it was
        v.set_reg(R.REG_MSR, redirect.run_msr)
        v.write_sprs([(s.spr, s.value) for s in redirect.sprs], then_pc=rec.pc, then_msr=rec.msr)
    v.trap.icount = rec.icount
    v.trap.code_lo, v.trap.code_hi, v.trap.exec_outside = rec.code_lo, rec.code_hi, rec.exec_outside
    st = m.cpus[i]
    st.state = str(rec.state)
    st.prod, st.irq, st.dec_pending = rec.prod, rec.irq, rec.dec_pending
    st.dec_deadline_tb = _get(rec.dec_deadline_tb)
    st.dec_written_tb, st.dec_value = rec.dec_written_tb, rec.dec_value
    st.vpa, st.dtl, st.slb_shadow, st.dispatch = rec.vpa, rec.dtl, rec.slb_shadow, rec.dispatch
    st.extra.pop("sreset", None)
    if rec.sreset:
        st.extra["sreset"] = True
    v.trap.irq_waiting = rec.irq_waiting


def _map_window_pages(m: SpaprMachine, v: Any, pages: Any) -> None:
    mapped = v.__dict__.get("_mmio_pages", {})
    for base in pages:
        win = m._find_window(base)
        if win is not None and base not in mapped:
            m._map_window_page(v, win, base)


def _hook_time_sites(m: SpaprMachine, sites: Any) -> None:
    """Hook the sites the original had met (the block scan would find them again; hooking them now keeps
    the restored machine's hook set the same as the original's, for a later snapshot)."""
    from xive_machine.machine.timebase import hook_site, site_word

    for s in sites:
        hook_site(m, s.addr, site_word((s.rw, s.spr, s.gpr)))
