"""The XIVE interrupt round trip in C: binds the emulated sPAPR XIVE's own storage to the C fast path.

Why: every ESB or TIMA access through Python costs a C->Python crossing (~2-3 us); a round trip (trigger
store, delivery, ACK, EOI, CPPR) made five. The C handlers in `cpu/_fast_build.py` (section "XIVE fast
path") serve the common operations (ESB trigger/EOI/GET/SET_PQ/inject, TIMA ACK/CPPR/SET_OS_PENDING, routing
EAS -> END -> EQ entry in guest RAM -> thread context -> line) from the very buffers the Python model uses:
`XiveSource.status`/`lsi`, `XiveRouter.eat`/`endt`, each `XiveTCTX.regs`/`levels`, `GuestRam.dirty_bits`
and the vCPUs' interrupt blocks (`VCpu.irqx`, where `CpuState.irq` and `dec_pending` live). One source of
truth, so the Python paths (hcalls, tests, migration, tracing) see and change the same state.

Only the plain configuration is bound: the emulated `SpaprXive` (not the KVM device model), wired to this
machine's IrqLine, sPAPR NVT numbering, tracing off. Everything else, and any access the C side does not
serve (StoreEOI, raw TIMA access, invalid accesses, a line raised on another vCPU), goes to Python.
The binding is refreshed whenever a window page is mapped and at the start of every run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from xive_machine.cpu import regs as R
from xive_machine.cpu.fast import ffi
from xive_machine.intc.xive import regs as XR
from xive_machine.machine.exceptions import MSR_KEEP_ON_INTERRUPT, SRR1_MSR_MASK, VEC_EXTERNAL

if TYPE_CHECKING:
    from xive_machine.cpu.vcpu import VCpu
    from xive_machine.machine.irq import MmioWindow
    from xive_machine.machine.spapr import SpaprMachine

KIND_ESB = 1
KIND_TIMA = 2

# The constants the C side has built in (xive.md 4.4), checked once against the one declaration.
_C_LAYOUT = {
    "EAS_VALID": (XR.EAS_VALID, 1 << 63), "EAS_MASKED": (XR.EAS_MASKED, 1 << 31),
    "EAS_END_INDEX": ((XR.EAS_END_INDEX_SHIFT, XR.EAS_END_INDEX_MASK), (32, 0xFFFFFF)),
    "EAS_END_DATA": (XR.EAS_END_DATA_MASK, 0x7FFFFFFF),
    "W0_VALID": (XR.END_W0_VALID, 1 << 31), "W0_ENQUEUE": (XR.END_W0_ENQUEUE, 1 << 30),
    "W0_UCOND_NOTIFY": (XR.END_W0_UCOND_NOTIFY, 1 << 29), "W0_SILENT": (XR.END_W0_SILENT_ESCALATE, 1 << 24),
    "W0_QSIZE": ((XR.END_W0_QSIZE_SHIFT, XR.END_W0_QSIZE_MASK), (16, 0xF)),
    "W1_ESN": (XR.END_W1_ESN_SHIFT, 30), "W1_GENERATION": (XR.END_W1_GENERATION, 1 << 22),
    "W1_PAGE_OFF": ((XR.END_W1_PAGE_OFF_SHIFT, XR.END_W1_PAGE_OFF_MASK), (0, 0x3FFFFF)),
    "W2_QADDR_HI": (XR.END_W2_QADDR_HI_MASK, 0x0FFFFFFF), "W6_FORMAT": (XR.END_W6_FORMAT_BIT, 1 << 23),
    "W6_NVT_BLOCK": ((XR.END_W6_NVT_BLOCK_SHIFT, XR.END_W6_NVT_BLOCK_MASK), (19, 0xF)),
    "W6_NVT_INDEX": ((XR.END_W6_NVT_INDEX_SHIFT, XR.END_W6_NVT_INDEX_MASK), (0, 0x7FFFF)),
    "W7_PRIORITY": ((XR.END_W7_F0_PRIORITY_SHIFT, XR.END_W7_F0_PRIORITY_MASK), (16, 0xFF)),
    "QW1": (XR.TM_QW1_OS, 0x10), "ACK_OS": (XR.TM_SPC_ACK_OS_REG, 0x810),
    "SET_OS_PENDING": (XR.TM_SPC_SET_OS_PENDING, 0x812), "OS_PAGE": (XR.XIVE_TM_OS_PAGE, 2),
    "SRR1_MASK": (SRR1_MSR_MASK, 0xFFFFFFFF87C0FFFF), "MSR_KEEP": (MSR_KEEP_ON_INTERRUPT, (1 << 12) | (1 << 60)),
    "VEC_EXTERNAL": (VEC_EXTERNAL, 0x500), "R10": (R.GPR[10], R.GPR[0] + 10),
}
for _name, (_py, _c) in _C_LAYOUT.items():
    if _py != _c:  # pragma: no cover - a layout edit that the C side did not follow
        raise ImportError(f"XIVE fast path: {_name} is {_py!r} in Python, {_c!r} in cpu/_fast_build.py")


@ffi.def_extern()
def xm_py_line(x: Any, cpu: int, level: int) -> None:  # pragma: no cover - exercised by SMP guests
    """The C router raised the line of a vCPU other than the one accessing: the machine's IrqLine (wake a
    ceded vCPU, end the sender's slice)."""
    binding: XiveFastPath = ffi.from_handle(x.owner)
    try:
        binding.line(cpu, bool(level))
    except BaseException as exc:  # must not unwind through C
        cur = binding.machine.current
        if cur is not None:
            cur.pending_exception = exc
            cur.uc.emu_stop()


class XiveFastPath:
    """The C view (`struct xm_xive`) of one emulated SpaprXive on one machine. Keeps the exported buffers
    (and so the model objects) alive as long as a page refers to it."""

    def __init__(self, m: SpaprMachine, ic: Any) -> None:
        self.machine = m
        self.ic = ic
        self.line = m.irq_line
        n = len(m.vcpus)
        self._handle = ffi.new_handle(self)
        self.x = x = ffi.new("struct xm_xive *")
        self.cpus = ffi.new("struct xm_xcpu[]", n)
        xsrc, router = ic.xsrc, ic.router
        self._keep: list[Any] = [
            ffi.from_buffer("unsigned char[]", xsrc.status),
            ffi.from_buffer("unsigned char[]", xsrc.lsi),
            ffi.from_buffer("uint64_t[]", router.eat),
            ffi.from_buffer("uint32_t[]", router.endt),
            ffi.from_buffer("unsigned char[]", m.ram.dirty_bits),
            ffi.from_buffer("unsigned char[]", m.ram.dirty_any),
        ]
        x.owner = self._handle
        x.status, x.lsi, x.eat, x.endt, x.dirty, x.dirty_any = self._keep
        x.nr_irqs = xsrc.nr_irqs
        x.nr_ends = router.nr_ends
        x.ncpus = n
        x.esb_shift = xsrc.esb_shift
        x.two_page = 1 if xsrc.two_page else 0
        x.mgmt_bit = xsrc.mgmt_bit
        lo, hi = ic.nvt_range if ic.nvt_range is not None else (0, 0)
        x.nvt_base, x.nvt_count = lo, hi - lo
        x.ram = ffi.cast("unsigned char *", m.ram.address)
        x.ram_size = m.ram.size
        x.cpus = self.cpus
        self._tctx_bufs: dict[int, tuple[Any, Any, Any]] = {}

    def plain(self) -> bool:
        """The configuration the C side implements: anything else stays in Python."""
        from xive_machine.intc.xive.source import XiveSource

        m, ic = self.machine, self.ic
        xsrc, router, pres = ic.xsrc, ic.router, ic.presenter
        if m.intc is not ic or m.trace is not None or ic.nvt_range is None:
            return False
        if any(o.trace is not None for o in (ic, xsrc, router, pres)) or type(xsrc) is not XiveSource:
            return False
        if ic.line != m.irq_line or pres.line != m.irq_line or xsrc.notify != router.notify:
            return False
        if router.presenter is not pres or router.ram is not m.ram or pres.cpu_hint != ic.nvt_range[0]:
            return False
        return all(0 <= cpu < len(m.vcpus) and t.line == m.irq_line and t.trace is None
                   for cpu, t in pres.tctxs.items())

    def refresh(self) -> None:
        """Point the C side at the thread contexts connected now, and enable it if the wiring is plain."""
        tctxs = self.ic.presenter.tctxs
        m = self.machine
        for i, v in enumerate(m.vcpus):
            c = self.cpus[i]
            c.trap = v.trap
            c.irqx = v.irqx
            t = tctxs.get(i)
            if t is None:
                c.tima = c.level = ffi.NULL
                self._tctx_bufs.pop(i, None)
                continue
            kept = self._tctx_bufs.get(i)
            if kept is None or kept[0] is not t:
                kept = (t, ffi.from_buffer("unsigned char[]", t.regs), ffi.from_buffer("unsigned char[]", t.levels))
                self._tctx_bufs[i] = kept
            c.tima, c.level = kept[1], kept[2]
        self.x.enabled = 1 if self.plain() else 0

    def bind_page(self, page: Any, vcpu: VCpu, win: MmioWindow) -> bool:
        """Let the C side serve this vCPU's page of the ESB or TIMA window."""
        kind = KIND_ESB if win.name == "esb" else KIND_TIMA if win.name == "tima" else 0
        if not kind or win.base not in (self.ic.vc_base, self.ic.tm_base):
            return False
        page.xive = self.x
        page.xkind = kind
        page.xcpu = vcpu.index
        page.xbase = win.base
        return True


def current(m: SpaprMachine) -> XiveFastPath | None:
    """The binding of the active controller (made on first use), refreshed; None if it is not the emulated
    sPAPR XIVE."""
    from xive_machine.intc.xive.spapr import SpaprXive

    ic = m.intc
    fp: XiveFastPath | None = getattr(m, "_xive_fast", None)
    if type(ic) is not SpaprXive:
        m._xive_fast = None  # noqa: SLF001 - the machine's slot for this module
        return None
    if fp is None or fp.ic is not ic:
        fp = XiveFastPath(m, ic)
        m._xive_fast = fp  # noqa: SLF001
    fp.refresh()
    return fp


def sync_delivery(m: SpaprMachine) -> None:
    """At the start of a run: external interrupts are delivered in C unless traced (the trace wants its
    'irq' and 'exc' events, which Python emits). The jump trampolines it lands on are built here."""
    fast = m.trace is None
    for v in m.vcpus:
        q = v.irqx
        if fast:
            for little in (0, 1):
                entry = v.jump_entry((R.SPR_SRR0, R.SPR_SRR1), VEC_EXTERNAL, bool(little))
                q.entry[little] = entry or 0
        q.fast = 1 if fast else 0
