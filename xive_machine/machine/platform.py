"""The sPAPR platform around the vCPUs: hcall and RTAS tables, the firmware (VOF, device tree), CAS, and the
active interrupt controller with its switch at CAS time (QEMU's spapr_irq "activate").

Everything here runs on cold paths: at load, reset and CAS.
"""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import fdt

from xive_machine.errors import HcallError
from xive_machine.firmware import cas as C
from xive_machine.firmware import devtree as DT
from xive_machine.firmware.rtas import RTAS_TOKENS
from xive_machine.firmware.rtas_nvram import NVRAM_SIZE, RTAS_NVRAM
from xive_machine.firmware.rtas_services import RTAS_CORE
from xive_machine.firmware.vof import Vof, VofStart
from xive_machine.hcalls.codes import H, Op
from xive_machine.hcalls.console import CONSOLE_HCALLS
from xive_machine.hcalls.mmu import MMU_HCALLS
from xive_machine.hcalls.papr import PAPR_HCALLS
from xive_machine.hcalls.registry import HcallTable
from xive_machine.hcalls.tce import TCE_HCALLS, default_tables

if TYPE_CHECKING:
    from xive_machine.machine.spapr import SpaprMachine

MASK64 = (1 << 64) - 1
MAX_COMPAT_PVR = {"power8": 0x0F000004, "power9": 0x0F000005, "power10": 0x0F000006}

# Device interrupts QEMU 7.2 claims at machine init (spapr_irq.h numbering): (lisn, lsi)
DEVICE_IRQS = ((0x1000, False), (0x1001, False), (0x1100, False), (0x1101, False),
               (0x1200, True), (0x1201, True), (0x1202, True), (0x1203, True))

KVMPPC_HCALLS = HcallTable("kvmppc")


@dataclass
class CasRecord:
    """What `machine.cas` shows after a CAS: the decoded request, QEMU's decision and the tree diff."""

    cpu: int
    vector_addr: int
    request: Any  # ovec.ArchVector
    result: C.CasResult
    dt_before: fdt.FDT
    dt_after: fdt.FDT | None
    mode_before: str
    mode_after: str
    diff: list[str] = field(default_factory=list)


@KVMPPC_HCALLS.hcall(Op.KVMPPC_H_RTAS, "KVMPPC_H_RTAS")
def h_rtas(m: SpaprMachine, cpu: int, args_addr: int) -> tuple[int, ...]:
    """In: R4 real address of the big-endian RTAS argument block. Out: status in the block."""
    call = m.rtas.call(cpu, args_addr & 0x0FFF_FFFF_FFFF_FFFF)
    if call is None:
        return (H.PARAMETER,)
    if m.trace is not None:
        m.trace.emit("rtas", cpu=cpu, name=call.name, token=call.token, args=call.args,
                     rets=[int(r) for r in call.rets[:max(call.nret, 1)]])
    return (call.hcall_rc,)


@KVMPPC_HCALLS.hcall(Op.KVMPPC_H_VOF_CLIENT, "KVMPPC_H_VOF_CLIENT")
def h_vof_client(m: SpaprMachine, cpu: int, args_addr: int) -> tuple[int, ...]:
    """In: R4 address of the client-interface argument block (32-bit BE cells)."""
    if m.vof is None:
        return (H.FUNCTION,)
    return (m.vof.client_call(cpu, args_addr),)  # masks as QEMU does, and traces its own calls


@KVMPPC_HCALLS.hcall(Op.KVMPPC_H_CAS, "KVMPPC_H_CAS")
def h_cas(m: SpaprMachine, cpu: int, vec_addr: int, buf_addr: int, buf_size: int) -> tuple[int, ...]:
    """In: R4 vector, R5 buffer, R6 buffer size. Out: the buffer gets u32 version 1 and the post-CAS FDT.
    QEMU exits on a buffer too small for the header before it negotiates; so do we (exit code 5)."""
    try:
        C.h_cas_fdt_space(buf_size)
    except C.CasError as err:
        m.stop("cas-mode", 5, str(err))
        return (H.HARDWARE,)
    rec = do_cas(m, cpu, vec_addr)
    if rec is None or not rec.result.ok:
        return (rec.result.rc if rec is not None else H.PARAMETER,)
    try:
        reply = C.h_cas_reply(DT.to_dtb(m.tree), buf_size)
    except C.CasError as err:
        m.stop("cas-mode", 5, str(err))
        return (H.HARDWARE,)
    C.write_h_cas_reply(m.ram, buf_addr, reply)
    return (H.SUCCESS,)


def install(m: SpaprMachine) -> None:
    """Once per machine: gates, the always-present tables, the RTAS core."""
    m.dispatcher.add_gate("xive", lambda: m.xive_negotiated)
    m.dispatcher.install(CONSOLE_HCALLS, m.console)
    m.dispatcher.install(KVMPPC_HCALLS, m)
    m.dispatcher.install(PAPR_HCALLS, m)
    m.dispatcher.install(MMU_HCALLS, m)
    m.dispatcher.install(TCE_HCALLS, m)
    m.rtas.install(RTAS_CORE, m)
    m.rtas.install(RTAS_NVRAM, m)
    m.nvram = bytearray(NVRAM_SIZE)
    m.intc = None
    m.intc_tables = []
    m.controllers = {}
    m.vof = None
    m.tree = None
    m.reset_tree = None
    m.xive_negotiated = False
    m.cas_platform = C.CasPlatform(ic_mode=m.config.ic_mode, max_compat=MAX_COMPAT_PVR[m.config.max_compat])


# ------------------------------------------------------------------------------------------------------------
# interrupt controllers
#
# As in QEMU, every controller the ic-mode offers exists from reset and keeps its hcall and RTAS tables
# installed (XIVE's are gated on CAS; XICS answers H_HARDWARE once XIVE is negotiated); "activating" one
# connects the vCPU presenters to it, maps its MMIO windows and puts its node in the device tree.


def make_controller(m: SpaprMachine, name: str) -> Any:
    nr = m.nr_cpus
    if name == "xics":
        if m.config.irqchip == "kvm":
            from xive_machine.kvm.xics_backend import make_kvm_xics

            return make_kvm_xics(m, xive_active=lambda: m.xive_negotiated, timebase=m.clock.tb)
        from xive_machine.intc.xics.spapr import SpaprXics

        return SpaprXics(nr, m.irq_line, xive_active=lambda: m.xive_negotiated, timebase=m.clock.tb)
    if m.config.irqchip == "kvm":
        from xive_machine.kvm.backend import make_kvm_xive

        # QEMU TCG's OS-ring reset values (LSMFB, AGE = 0xff), so both backends print the same TIMA words
        return make_kvm_xive(m, tcg_ring_reset=True)
    from xive_machine.intc.xive.spapr import SpaprXive

    return SpaprXive(m.ram, nr, m.irq_line)


def create_controllers(m: SpaprMachine) -> None:
    """At reset: drop every controller, build those the ic-mode offers, install their tables."""
    for table, _target in m.intc_tables:
        m.dispatcher.uninstall(table)
    for ic in m.controllers.values():
        rtas_table = getattr(ic, "rtas_table", None)
        if rtas_table is not None:
            m.rtas.uninstall(rtas_table())
        close = getattr(ic, "close", None)
        if close is not None:
            close()
    m.remove_windows()
    m.intc = None
    m.intc_tables = []
    m.controllers = {}
    names = [n for n, offered in (("xics", m.cas_platform.has_xics), ("xive", m.cas_platform.has_xive)) if offered]
    for name in names:
        ic = make_controller(m, name)
        ic.trace = m.trace
        m.controllers[name] = ic
        for table, target in ic.hcall_tables():
            m.dispatcher.install(table, target)
            m.intc_tables.append((table, target))
        rtas_table = getattr(ic, "rtas_table", None)
        if rtas_table is not None:
            m.rtas.install(rtas_table(), ic)
        for lisn, lsi in DEVICE_IRQS:
            ic.claim_irq(lisn, lsi)


def activate_controller(m: SpaprMachine, name: str) -> None:
    """Switch the active controller: the old one's presenters disconnected and its windows unmapped, the
    new one connected to every vCPU (QEMU spapr_irq_update_active_intc)."""
    old = m.intc
    if old is not None:
        if old.name == name:
            return
        m.remove_windows()
        for cpu in range(m.nr_cpus):
            old.disconnect_cpu(cpu)
            m.cpus[cpu].irq = False
    ic = m.controllers[name]
    m.intc = ic
    for win in ic.mmio_windows():
        m.add_window(win)
    for cpu in range(m.nr_cpus):
        ic.connect_cpu(cpu)
    if m.trace is not None:
        m.trace.emit("mode", before=old.name if old is not None else None, after=name)


# ------------------------------------------------------------------------------------------------------------
# the device tree and the client interface


def dt_config(m: SpaprMachine, *, intc_node: bool = True) -> DT.DtConfig:
    """The tree's inputs now. `intc_node=False` leaves out the controller's node (not part of the cache key:
    the controller's name is), which only a tree being built needs."""
    k = m.kernel
    initrd = m.vof.initrd if m.vof is not None and m.vof.initrd else (m.initrd_start, m.initrd_size)
    res: C.CasResult | None = m.cas.result if m.cas is not None and m.cas.result.ok else None
    compat = res.compat_pvr if res is not None else 0
    return DT.DtConfig(
        smp=m.nr_cpus,
        ram_size=m.ram.size,
        kernel_size=k.size if k else 0,
        kernel_le=k.little_endian if k else False,
        initrd_start=initrd[0],
        initrd_size=initrd[1],
        bootargs=m.bootargs,
        cpu_version=res.cpu_version if res is not None and res.cpu_version else C.PRESENTED_PVR,
        ov5_platform=m.cas_platform.arch_vec_5_platform_support(compat),
        ov5_cas=DT.ovec_dt_value(res.ov5_cas) if res is not None else DT.OV5_EMPTY,
        intc_node=m.intc.dt_node(m.nr_cpus) if m.intc is not None and intc_node else None,
        xive=m.intc is not None and m.intc.name == "xive",
        rtas_tokens=rtas_tokens(m),
        pre_isa3_guest=res.pre_isa3_guest if res is not None else False,
        form2_affinity=res is not None and res.has(C.OV5_FORM2_AFFINITY),
        rng_seed=bytes(32) if m.config.clock == "deterministic" else None,
        vof=m.config.boot == "vof",
    )


XICS_RTAS = ("ibm,set-xive", "ibm,get-xive", "ibm,int-off", "ibm,int-on")


def rtas_tokens(m: SpaprMachine) -> dict[str, int]:
    """/rtas as QEMU 7.2 advertises it: every service of its table (the PCI, EEH and DDW ones answer
    "parameter error" here, as there is no PHB device to serve), the XICS ones only when XICS is offered."""
    xics = m.cas_platform.has_xics
    return {name: token for name, token in RTAS_TOKENS.items() if xics or name not in XICS_RTAS}


_TREE_CACHE: dict[tuple, bytes] = {}  # process-wide: the same configuration always gives the same tree
_DTB_SIZE: dict[tuple, int] = {}  # and, once the client interface has finalized it, the same blob size


def tree_key(m: SpaprMachine) -> tuple[DT.DtConfig, tuple | None]:
    """The tree's inputs (without the controller's node) and the cache key they give: None when the tree
    has a fresh rng-seed, which is never cached."""
    cfg = dt_config(m, intc_node=False)
    if cfg.rng_seed is None:
        return cfg, None
    fields = tuple(tuple(v.items()) if isinstance(v, Mapping) else v for v in vars(cfg).values())
    return cfg, (fields, m.intc.name if m.intc is not None else None)


def build_tree(m: SpaprMachine) -> fdt.FDT:
    """The tree for the machine's state now. Built trees are kept (pickled) by configuration, so a reset,
    or a CAS that a previous run already made, costs an unpickle (~0.3 ms) instead of a build (~3 ms)."""
    cfg, key = tree_key(m)
    m.tree_key = key
    blob = _TREE_CACHE.get(key) if key is not None else None
    if blob is None:
        tree = DT.build_tree(dataclasses.replace(
            cfg, intc_node=m.intc.dt_node(m.nr_cpus) if m.intc is not None else None))
        if key is not None:
            _TREE_CACHE[key] = pickle.dumps(tree, protocol=pickle.HIGHEST_PROTOCOL)
        return tree
    return pickle.loads(blob)


@dataclass
class ResetTree:
    """The finalized tree and client-interface start a reset made, kept by the machine for the next reset:
    with the same key and nothing of the tree edited since (the guest, CAS or anyone else), that reset takes
    them as they are instead of building them again (~0.5 ms)."""

    key: tuple
    frozen: DT.Frozen
    start: VofStart


def machine_reset(m: SpaprMachine, *, keep_tree: bool = False) -> None:
    """Reset of everything but RAM and vCPU registers: CAS undone, controller per ic-mode, tree rebuilt.
    `keep_tree` (a reset, which is likely to be followed by others): keep the finalized tree and the client
    interface's start for the next reset (see ResetTree); a first boot does not pay for the copy."""
    m.vof = None  # the last run's client interface: what it was told (initrd) must not reach the new tree
    m.cas = None
    m.fwnmi = None
    m.xive_negotiated = False
    m.lpcr_ile = False
    m.patb_entry = 0
    m.tce_tables = default_tables()
    m.set_lpcr_mmu(False, False)
    # No process table, PID 0, and the translations cached under the old ones dropped (a TLB flush each, and the
    # refills after). Unless no vCPU ever translated an address: then every TLB entry is a real-mode one, which
    # neither depends on them nor on RAM, and all is as it would be after the flush.
    if any(v.mmu.virt_seen or v.mmu.prtb or v.mmu.prtb_entries or v.pidr for v in m.vcpus):
        m.set_process_table(0, 0)
        for v in m.vcpus:
            v.pidr = 0
    m.bootargs = m.config.append
    for st in m.cpus:
        st.irq = st.dec_pending = st.prod = False
        st.dec_deadline_tb = None
        st.vpa = st.dtl = st.slb_shadow = 0
    create_controllers(m)
    activate_controller(m, "xive" if m.cas_platform.effective_ic_mode == "xive" else "xics")
    if m.config.boot != "vof":
        m.tree = build_tree(m)
        return
    kept: ResetTree | None = m.reset_tree
    start = None
    if kept is not None:
        _, key = tree_key(m)
        if key is not None and key == kept.key and DT.unchanged(kept.frozen):
            start = kept.start
            m.tree, m.tree_key = start.tree, key
    if start is None:
        m.tree = build_tree(m)
    size_key = m.tree_key
    m.vof = Vof(m.ram, m.tree, cas=lambda addr: cas_from_ci(m, addr), clock_ms=lambda: m.clock.ns() // 1_000_000,
                exit=lambda: m.stop("exit", 0, "the guest called the client-interface exit"),
                console_write=m.console.write, forward_writes=False, trace=m.trace,
                dtb_size=_DTB_SIZE.get(size_key), start=start)
    if start is None and size_key is not None:
        _DTB_SIZE[size_key] = m.vof._used
        m.reset_tree = ResetTree(size_key, DT.freeze(m.tree), m.vof.start_point()) if keep_tree else None


def fdt_blob(m: SpaprMachine) -> bytes:
    return DT.to_dtb(m.tree)


# ------------------------------------------------------------------------------------------------------------
# CAS


def cas_from_ci(m: SpaprMachine, vec_addr: int) -> int:
    cpu = m.current.index if m.current is not None else 0
    rec = do_cas(m, cpu, vec_addr)
    return int(rec.result.rc) if rec is not None else int(H.PARAMETER)


def do_cas(m: SpaprMachine, cpu: int, vec_addr: int) -> CasRecord | None:
    """Negotiate, switch the interrupt controller if the result asks for the other one, rebuild the tree."""
    from xive_machine.firmware import ovec

    others = any(st.state == "running" for i, st in enumerate(m.cpus) if i != cpu)
    window, inside = C.read_arch_vector(m.ram, vec_addr)
    try:
        request = ovec.parse_arch_vector(window, strict=False)
    except Exception:  # noqa: BLE001 - the negotiation reports malformed vectors itself
        request = None
    before_tree = m.tree
    mode_before = m.intc.name if m.intc is not None else ""
    try:
        res = C.negotiate_at(m.ram, vec_addr, m.cas_platform, others_active=others, trace=m.trace)
    except C.CasError as err:
        m.stop("cas-mode", 5, str(err))
        raise HcallError(H.HARDWARE, str(err)) from None
    rec = CasRecord(cpu, vec_addr, request, res, before_tree, None, mode_before, mode_before)
    m.cas = rec
    if res.ok:
        m.xive_negotiated = res.intc == "xive"
        if m.intc is None or res.intc != m.intc.name:
            activate_controller(m, res.intc)
        m.tree = build_tree(m)
        if m.vof is not None:
            m.vof.replace_tree(m.tree)
            m.tree = m.vof.tree
        rec.dt_after = m.tree
        rec.mode_after = m.intc.name
        rec.diff = DT.diff_trees(before_tree, m.tree)
    if m.until == "cas":
        m.stop("until", 0, "stopped after CAS (until='cas')")
    return rec
