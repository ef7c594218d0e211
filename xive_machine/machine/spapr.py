"""SpaprMachine: the composition root. Builds and wires RAM, vCPUs, the clock, the console, the hcall and RTAS
tables, the firmware (VOF client interface, device tree) and the interrupt controller; runs the scheduler.

The hot path is `_on_trap` (every `sc 1`): one dict lookup, an optional gate, one call, the results written
into the trap block the C hook writes back. Everything else (exceptions, time, MMIO faults) is the slow path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from unicorn import (
    UC_HOOK_MEM_UNMAPPED,
)

from xive_machine.cpu import regs as R
from xive_machine.cpu.fast import ffi
from xive_machine.cpu.fast import lib as fastlib
from xive_machine.cpu.vcpu import Q_MSR, Q_R3, W_INSN, W_INTNO, W_NOUT, VCpu
from xive_machine.errors import ConfigError, HcallError
from xive_machine.firmware.devtree import IRQ_VIO_BASE
from xive_machine.firmware.elf import LoadedKernel
from xive_machine.firmware.rtas import RtasDispatcher
from xive_machine.hcalls.codes import H, opcode_name
from xive_machine.hcalls.registry import Dispatcher
from xive_machine.machine import timebase, traps
from xive_machine.machine.clock import Clock
from xive_machine.machine.config import MachineConfig
from xive_machine.machine.console import Console
from xive_machine.machine.irq import MmioWindow
from xive_machine.memory.ram import GuestRam

MASK64 = 0xFFFF_FFFF_FFFF_FFFF
SC1_BE = R.INSN_SC1
SC1_LE = int.from_bytes(R.INSN_SC1.to_bytes(4, "big"), "little")
H_PRIVILEGE_U64 = H.PRIVILEGE & MASK64
H_FUNCTION_U64 = H.FUNCTION & MASK64


RUNNING, STOPPED, CEDED = "running", "stopped", "ceded"
ARGS = [slice(Q_R3 + 1, Q_R3 + 1 + n) for n in range(10)]  # r4.. for a handler taking n arguments


class WindowPage:
    """One vCPU's view of one mapped page of a device window (the TIMA is per vCPU: `cpu` travels along)."""

    __slots__ = ("vcpu", "cpu", "read", "write", "wbase", "trace", "name", "fast")

    def __init__(self, vcpu: VCpu, win: MmioWindow, trace: Any) -> None:
        self.vcpu = vcpu
        self.cpu = vcpu.index
        self.read, self.write, self.wbase = win.read, win.write, win.base
        self.trace = trace
        self.name = win.name
        self.fast: Any = None  # the C fast path serving this page's common accesses (kept alive here)

    def on_read(self, addr: int, size: int) -> int:
        off = addr - self.wbase
        val = self.read(self.cpu, off, size)
        if self.trace is not None:
            self.trace.emit("mmio", cpu=self.cpu, window=self.name, op="load", offset=off, size=size, value=val)
        return val

    def on_write(self, addr: int, size: int, value: int) -> None:
        off = addr - self.wbase
        self.write(self.cpu, off, size, value)
        if self.trace is not None:
            self.trace.emit("mmio", cpu=self.cpu, window=self.name, op="store", offset=off, size=size, value=value)


@dataclass
class RunResult:
    reason: str  # "power-off", "reboot", "exit", "timeout", "max-insns", "guest-error", "cas-mode", "until"
    exit_code: int
    console: str
    message: str = ""
    instructions: int = 0
    wall_s: float = 0.0
    trace: list[dict] | None = None

    @property
    def powered_off(self) -> bool:
        return self.reason == "power-off"


@dataclass
class CpuState:
    """What the machine keeps per vCPU beyond Unicorn's registers. `irq` and `dec_pending` live in the vCPU's
    C interrupt block (`VCpu.irqx`), where the XIVE fast path and the block hook read and drive them."""

    state: str = STOPPED
    prod: bool = False
    dec_deadline_tb: int | None = None  # timebase value at which DEC goes negative
    dec_written_tb: int = 0
    dec_value: int = 0x7FFFFFFF
    vpa: int = 0
    dtl: int = 0
    slb_shadow: int = 0
    dispatch: int = 0  # VPA dispatch counter: even while running, odd while ceded
    extra: dict[str, Any] = field(default_factory=dict)
    irqx: Any = field(default_factory=lambda: ffi.new("struct xm_irqx *"), repr=False, compare=False)

    @property
    def irq(self) -> bool:
        """The interrupt controller asserts its external-exception output."""
        return bool(self.irqx.irq)

    @irq.setter
    def irq(self, value: bool) -> None:
        self.irqx.irq = 1 if value else 0

    @property
    def dec_pending(self) -> bool:
        """The decrementer has expired and its interrupt waits for MSR[EE] (the C delivery leaves it to Python)."""
        return bool(self.irqx.dec_pending)

    @dec_pending.setter
    def dec_pending(self, value: bool) -> None:
        self.irqx.dec_pending = 1 if value else 0


VTY_IRQ = IRQ_VIO_BASE  # /vdevice/vty@71000000 interrupts, as QEMU claims it


class SpaprMachine:
    """A pseries machine. Construct, `boot(path)` (or `load(path)` + `run()`), inspect."""

    def __init__(self, config: MachineConfig | None = None, *, trace: Any = None) -> None:
        self.config = config or MachineConfig()
        cfg = self.config
        self.trace = trace
        self.ram = GuestRam(cfg.memory)
        self.clock = Clock(cfg.clock, cfg.insns_per_us)
        self.console = Console(echo=cfg.echo_console, input_bytes=cfg.console_input)
        self.dispatcher = Dispatcher()
        self.rtas = RtasDispatcher(self.ram)
        self.kernel: LoadedKernel | None = None
        self.stop_reason: str | None = None
        self.stop_message = ""
        self.exit_code = 0
        self.until: str | None = None
        self._ile = ffi.new("uint8_t *")  # LPCR[ILE], read by the C interrupt delivery of every vCPU
        self.patb_entry = 0  # the process-table registration (QEMU's spapr->patb_entry)
        self.lpcr_radix = self.lpcr_gtse = False  # LPCR[UPRT|HR] and LPCR[GTSE] as the guest set them
        self.windows: list[MmioWindow] = []
        self.vcpus: list[VCpu] = []
        self.cpus: list[CpuState] = []
        self.current: VCpu | None = None
        self.fw_symbols: dict[str, int] = {}
        self.hcall_count = 0
        self.pending_fault: tuple | None = None
        self.pending_window: tuple[int, MmioWindow, int] | None = None
        self.pending_fault_msr = 0
        self.time_sites: dict[int, tuple[str, int, int]] = {}
        self.slice_start_icount = 0
        self.slice_start_insns = 0
        self.rtc_offset_s = 0
        self.uuid: bytes | None = None
        self.os_term_message = ""
        self.fwnmi: tuple[int, int] | None = None  # ibm,nmi-register (system reset, machine check)
        self.initrd_start = 0
        self.initrd_size = 0
        self.boot_images: list[tuple[int, bytes]] = []
        self.reset_expect: tuple[list[tuple[int, bytes]], dict] = ([], {})  # boot.expected_ram's cache
        self.fdt_addr = 0
        self.cas: Any = None
        self._rng = None
        self.rr_round: list[int] | None = None  # scheduler position: the current round of runnable vCPUs,
        self.rr_pos = 0  # the next one in it,
        self.rr_last = -1  # the vCPU that ran last,
        self.rr_resume: tuple[int, int] | None = None  # and (vCPU, instructions) left of a slice cut short
        self.tree_key: tuple | None = None  # the device-tree cache key of the current tree
        self.kvm_vm: Any = None  # --irqchip kvm: the VM of the KVM device model, kept across controller switches
        self._booted = False
        on_trap = self._make_trap_handler()
        from xive_machine.machine.scheduler import deliver_in_run

        for i in range(cfg.smp):
            v = VCpu(i, self.ram, on_trap)
            v.time.ipu = cfg.insns_per_us
            v.on_irq = lambda vcpu: deliver_in_run(self, vcpu)
            v.on_serve = self._serve_site
            v.trap.served = v._served
            # above RAM only: a hook covering RAM would send every guest store through Unicorn's slow path
            v.uc.hook_add(UC_HOOK_MEM_UNMAPPED, self._on_unmapped, i, self.ram.size, MASK64)
            fastlib.xm_hook_blocks(v.trap)
            v.trap.deadline = MASK64
            v.irqx.ile = self._ile
            self.vcpus.append(v)
            self.cpus.append(CpuState(irqx=v.irqx))
        from xive_machine.machine import platform

        platform.install(self)

    # ------------------------------------------------------------------------------------------------
    # loading and reset
    def load(self, path: str) -> LoadedKernel:
        """Load firmware, kernel (and initrd), build the tree, set the entry state. Does not run."""
        from xive_machine.machine import boot

        self.kernel = boot.load(self, path)
        self._booted = True
        return self.kernel

    def prepare(self) -> None:
        """Build the platform (controller, tree, client interface) without a guest: `dts`, the hcall API."""
        from xive_machine.machine import platform

        platform.machine_reset(self)

    def fdt_blob(self) -> bytes:
        """The current device tree as a flattened blob."""
        from xive_machine.machine import platform

        return platform.fdt_blob(self)

    def reset(self) -> None:
        """Machine reset: RAM reloaded from the images, vCPUs back to the entry state, controllers reset."""
        if self.kernel is None:
            raise ConfigError("nothing loaded to reset")
        from xive_machine.machine import boot
        from xive_machine.machine.scheduler import gc_paused

        with gc_paused():  # a reset allocates a fresh tree: a collection in the middle costs more than it
            boot.reset(self)

    # ------------------------------------------------------------------------------------------------
    # the hcall hot path
    def _make_trap_handler(self) -> Callable[[VCpu], None]:
        entries = self.dispatcher.entries
        slow = self._slow_trap

        def on_trap(vcpu: VCpu) -> None:
            w = vcpu.w
            if w[W_INTNO] == 8:
                insn = w[W_INSN]
                if insn == SC1_BE or insn == SC1_LE:
                    q = vcpu.q
                    if q[Q_MSR] & R.MSR_PR:
                        q[Q_R3] = H_PRIVILEGE_U64
                        w[W_NOUT] = 1
                        return
                    entry = entries.get(q[Q_R3])
                    if entry is not None:
                        fn, nargs, gate, _ = entry
                        if gate is None or gate():
                            try:
                                res = fn(vcpu.index, *q[ARGS[nargs]])
                            except HcallError as err:
                                res = (err.rc,)
                            n = len(res)
                            q[Q_R3] = res[0] & MASK64
                            if n > 1:
                                for i in range(1, n):
                                    q[Q_R3 + i] = res[i] & MASK64
                            w[W_NOUT] = n
                            return
                    q[Q_R3] = H_FUNCTION_U64
                    w[W_NOUT] = 1
                    return
            slow(vcpu)

        if self.trace is None:
            return on_trap

        trace = self.trace

        def on_trap_traced(vcpu: VCpu) -> None:
            w = vcpu.w
            if w[W_INTNO] == 8 and w[W_INSN] in (SC1_BE, SC1_LE):
                q = vcpu.q
                opcode = q[Q_R3]
                args = list(q[Q_R3 + 1:Q_R3 + 10])
                on_trap(vcpu)
                entry = entries.get(opcode)
                nargs = entry[1] if entry is not None else 9  # unknown: keep every argument register
                n = max(w[W_NOUT], 1)
                rc = q[Q_R3]
                rc = rc - (1 << 64) if rc >> 63 else rc
                trace.emit("hcall", cpu=vcpu.index, name=entry[3] if entry else opcode_name(opcode),
                           opcode=opcode, args=args[:nargs], rc=rc, outs=list(q[Q_R3 + 1:Q_R3 + n]))
                return
            on_trap(vcpu)

        return on_trap_traced

    def hcall(self, cpu: int, opcode: int, *args: int) -> tuple[int, ...]:
        """Run one hcall as if vCPU `cpu` had executed `sc 1` (scripting API, replay, tests)."""
        padded = [a & MASK64 for a in args] + [0] * (9 - len(args))
        res = self.dispatcher.dispatch(cpu, opcode, padded)
        if self.trace is not None:
            entry = self.dispatcher.entries.get(opcode)
            nargs = entry[1] if entry else 0
            self.trace.emit("hcall", cpu=cpu, name=entry[3] if entry else opcode_name(opcode), opcode=opcode,
                            args=padded[:nargs], rc=int(res[0]), outs=[int(o) & MASK64 for o in res[1:]])
        return res

    # ------------------------------------------------------------------------------------------------
    # the slow trap path: everything but sc 1
    def _slow_trap(self, vcpu: VCpu) -> None:
        traps.handle(self, vcpu)

    # ------------------------------------------------------------------------------------------------
    # device windows, faulted in on first touch
    def add_window(self, win: MmioWindow) -> None:
        self.windows.append(win)

    def remove_windows(self, names: set[str] | None = None) -> None:
        """Forget windows (all, or those named) and unmap every page of theirs already faulted in."""
        keep = []
        for win in self.windows:
            if names is None or win.name in names:
                for v in self.vcpus:
                    self._unmap_window(v, win)
            else:
                keep.append(win)
        self.windows = keep

    def _unmap_window(self, vcpu: VCpu, win: MmioWindow) -> None:
        pages: dict = vcpu.__dict__.setdefault("_mmio_pages", {})
        for base in [b for b in pages if win.base <= b < win.base + win.size]:
            vcpu.unmap_mmio_page(pages.pop(base))

    def _find_window(self, addr: int) -> MmioWindow | None:
        for win in self.windows:
            if win.base <= addr < win.base + win.size:
                return win
        return None

    def _on_unmapped(self, uc: Any, access: int, addr: int, size: int, value: int, cpu: int) -> bool:
        """The fault handler. A device window's page is mapped (with its access hooks) by the scheduler,
        which then restarts the faulting instruction: Unicorn only calls memory hooks from code translated
        after they exist, so the page cannot be hooked from inside this callback and used at once."""
        win = self._find_window(addr)
        vcpu = self.vcpus[cpu]
        if win is None:
            return traps.bad_access(self, vcpu, access, addr, size)
        self.pending_window = (cpu, win, addr)
        return False

    def map_pending_window(self, vcpu: VCpu) -> bool:
        """After a window fault: map the page, hook it, drop translated code; the caller restarts the access."""
        pending = self.pending_window
        if pending is None or pending[0] != vcpu.index:
            return False
        self.pending_window = None
        _, win, addr = pending
        self._map_window_page(vcpu, win, addr)
        vcpu.uc.ctl_flush_tb()
        return True

    def _map_window_page(self, vcpu: VCpu, win: MmioWindow, addr: int) -> None:
        psize = 1 << win.page_shift
        base = addr & ~(psize - 1)
        handler = WindowPage(vcpu, win, self.trace)
        token = vcpu.map_mmio_page(base, psize, handler)
        vcpu.__dict__.setdefault("_mmio_pages", {})[base] = token
        if self.trace is None:
            from xive_machine.machine import xive_fast

            fp = xive_fast.current(self)
            if fp is not None and fp.bind_page(token[3], vcpu, win):
                handler.fast = fp

    # ------------------------------------------------------------------------------------------------
    # interrupts from controllers
    def irq_line(self, cpu: int, asserted: bool) -> None:
        """The IrqLine every interrupt controller drives: external-exception request for one vCPU."""
        st = self.cpus[cpu]
        st.irq = asserted
        v = self.vcpus[cpu]
        if asserted:
            if st.state == CEDED:
                self.wake(cpu)
            v.trap.irq_waiting = 1  # the block hook delivers as soon as MSR[EE] allows
            cur = self.current
            if cur is not None and cur is not v:  # an IPI: end the sender's slice so the target runs soon
                cur.trap.deadline = cur.trap.icount  # at the next block: emu_stop inside a memory hook
                # (an ESB store) would make Unicorn run the store again
        else:
            v.trap.irq_waiting = 1 if st.dec_pending else 0

    def _serve_site(self, vcpu: VCpu, addr: int, word: int) -> None:
        """The block hook met a time/SPR instruction not hooked yet (code written or patched at run time)."""
        timebase.hook_site(self, addr, word)

    # ------------------------------------------------------------------------------------------------
    # device lines and inspection
    def poll_console(self) -> None:
        """Live console input arrived: pulse the vty's interrupt (an MSI, as QEMU's spapr-vty), so a guest
        driver that waits for it (Linux hvc_vio) reads; a polling guest just finds the bytes."""
        if self.console.poll_live() and self.intc is not None:
            self.intc.set_irq(VTY_IRQ, True)
            self.intc.set_irq(VTY_IRQ, False)

    def raise_irq(self, lisn: int, level: bool = True) -> None:
        """A device interrupt line (LSI: held at `level`; MSI: a rising edge is one event), as a device model
        would drive it, on whichever controller is active. An unclaimed line is reported in the trace."""
        if self.intc is None:
            raise ConfigError("no interrupt controller: load a guest or call prepare() first")
        self.intc.set_irq(lisn, bool(level))

    @property
    def xive(self) -> Any:
        """The XIVE controller (emulated or KVM device model), whether or not it is the active one."""
        ic = getattr(self, "controllers", {}).get("xive")
        if ic is None:
            raise ConfigError(f"no XIVE controller with --ic-mode {self.config.ic_mode}")
        return ic

    @property
    def xics(self) -> Any:
        """The XICS controller, whether or not it is the active one."""
        ic = getattr(self, "controllers", {}).get("xics")
        if ic is None:
            raise ConfigError(f"no XICS controller with --ic-mode {self.config.ic_mode}")
        return ic

    def wake(self, cpu: int) -> None:
        st = self.cpus[cpu]
        if st.state == CEDED:
            st.state = RUNNING
            st.dispatch += 1
            if st.vpa:
                self._vpa_set_dispatch(cpu)

    def _vpa_set_dispatch(self, cpu: int) -> None:
        st = self.cpus[cpu]
        try:
            self.ram.write_u32(st.vpa + 0x100, st.dispatch & 0xFFFFFFFF)
        except IndexError:
            pass

    # ------------------------------------------------------------------------------------------------
    # services the hcall and RTAS handlers use (the interface hcalls/papr.py and rtas_services.py rely on)
    @property
    def nr_cpus(self) -> int:
        return len(self.vcpus)

    @property
    def memory_size(self) -> int:
        return self.ram.size

    def sync_clock(self) -> None:
        """Bring the clock up to the instruction the running vCPU is at (its slice's progress so far)."""
        v = self.current
        if v is not None:
            self.clock.insns = self.slice_start_insns + (v.trap.icount - self.slice_start_icount)

    def update_deadline(self, cpu: int) -> None:
        """A timer changed on `cpu`: if it is running now, pull its stop deadline in."""
        v = self.vcpus[cpu]
        st = self.cpus[cpu]
        if self.current is v and st.dec_deadline_tb is not None:
            ns_left = self.clock.ns_for_tb(st.dec_deadline_tb) - self.clock.ns()
            want = v.trap.icount + max(1, self.clock.insns_for_ns(ns_left))
            if want < v.trap.deadline:
                v.trap.deadline = want

    def request_irq_check(self, cpu: int) -> None:
        """Something became pending on `cpu`: the block hook delivers it as soon as MSR[EE] allows."""
        if self.cpus[cpu].state == CEDED:
            self.wake(cpu)
        self.vcpus[cpu].trap.irq_waiting = 1

    def cede(self, cpu: int) -> None:
        """H_CEDE: the calling vCPU idles until an interrupt, a prod or its decrementer."""
        st = self.cpus[cpu]
        if st.irq or st.dec_pending:
            return
        st.state = CEDED
        st.dispatch += 1
        if st.vpa:
            self._vpa_set_dispatch(cpu)
        self.vcpus[cpu].stop()

    def prod(self, target: int) -> None:
        st = self.cpus[target]
        st.prod = True
        if st.state == CEDED:
            st.prod = False
            self.wake(target)
            cur = self.current
            if cur is not None and cur.index != target:
                cur.trap.deadline = cur.trap.icount

    def confer(self, cpu: int, target: int) -> None:
        """H_CONFER / H_JOIN: to another vCPU (or -1), give up the rest of this slice; to itself, wait for a
        prod (or an interrupt) as a ceded vCPU does."""
        if target == cpu:
            st = self.cpus[cpu]
            if st.prod:
                st.prod = False
                return
            self.cede(cpu)
            return
        self.vcpus[cpu].stop()

    @property
    def lpcr_ile(self) -> bool:
        """LPCR[ILE]: interrupts are taken little-endian (H_SET_MODE)."""
        return bool(self._ile[0])

    @lpcr_ile.setter
    def lpcr_ile(self, little: bool) -> None:
        self._ile[0] = 1 if little else 0

    def set_ile(self, little: bool) -> None:
        self.lpcr_ile = little

    def set_lpcr_mmu(self, radix: bool, gtse: bool) -> None:
        self.lpcr_radix, self.lpcr_gtse = radix, gtse

    def set_process_table(self, base: int, entries: int) -> None:
        """Every vCPU walks the same process table (partition scope is the identity here)."""
        for v in self.vcpus:
            v.set_process_table(base, entries)

    def random_u64(self) -> int:
        import random

        if self._rng is None:
            self._rng = random.Random(0x5EED) if self.config.clock == "deterministic" else random.SystemRandom()
        return self._rng.getrandbits(64)

    def signal_sys_reset(self, cpu: int) -> None:
        st = self.cpus[cpu]
        st.extra["sreset"] = True
        self.request_irq_check(cpu)

    def power_off(self) -> None:
        self.stop("power-off", 0, "the guest powered off")

    def reboot(self) -> None:
        self.stop("reboot", 0, "the guest requested a reboot")

    def os_term(self, message: str) -> None:
        """ibm,os-term: the guest's last words (Linux: its panic text), the last hcalls and every vCPU's
        state; exit status 1, as the guest ended abnormally."""
        from xive_machine.machine import diagnostics

        self.os_term_message = message
        self.stop("os-term", 1, f"the guest terminated: {message}\n{diagnostics.post_mortem(self)}")

    def cpu_stopped(self, cpu: int) -> bool:
        return self.cpus[cpu].state == STOPPED

    def start_cpu(self, cpu: int, pc: int, r3: int) -> None:
        """RTAS start-cpu: nip = pc, r3 = value, r1 = r4 = 0, MSR = SF|ME, ILE as the machine has it."""
        v = self.vcpus[cpu]
        for n in range(32):
            v.set_gpr(n, 0)
        v.set_gpr(3, r3)
        v.msr = R.MSR_SF | R.MSR_ME
        v.pc = pc
        st = self.cpus[cpu]
        st.state = RUNNING
        st.dispatch += 2 - (st.dispatch & 1) if st.dispatch & 1 else 0

    def stop_self(self, cpu: int) -> None:
        self.cpus[cpu].state = STOPPED
        self.vcpus[cpu].stop()

    def guest_error(self, vcpu: VCpu, message: str, srr0: int | None = None) -> None:
        """The guest ran wild: stop with a diagnostic (registers, faulting instruction); exit code 4."""
        from xive_machine.machine import diagnostics

        self.stop("guest-error", 4, message + "\n" + diagnostics.dump(self, vcpu, srr0))

    # ------------------------------------------------------------------------------------------------
    # running
    def stop(self, reason: str, exit_code: int = 0, message: str = "") -> None:
        """Request the end of the run (from a hook or a handler)."""
        if self.stop_reason is None:
            self.stop_reason, self.exit_code, self.stop_message = reason, exit_code, message
        for v in self.vcpus:
            v.stop()

    def run(self, until: str | None = None, *, max_insns: int | None = None,
            timeout: float | None = None) -> RunResult:
        """Run until the guest powers off (or `until` = "cas" is reached, or a limit). Never raises for
        guest behaviour: the result says why it stopped."""
        from xive_machine.machine import scheduler

        if not self._booted:
            raise ConfigError("no guest loaded: call load(path) first")
        self.until = until
        if self.stop_reason in ("until", "max-insns", "timeout"):  # resumable stops: go on from here
            self.stop_reason, self.exit_code, self.stop_message = None, 0, ""
        return scheduler.run(self, max_insns=max_insns, timeout=timeout)

    def boot(self, path: str, **kw: Any) -> RunResult:
        self.load(path)
        return self.run(**kw)

    # ------------------------------------------------------------------------------------------------
    # migration (xive_machine/migration): between runs only
    def save(self) -> bytes:
        """The whole machine as snapshot bytes; it can go on running afterwards."""
        from xive_machine import migration

        return migration.save(self)

    def snapshot(self, path: str, *, incremental: bool = False) -> dict:
        """Write a snapshot file atomically (`incremental`: RAM changed since the previous one only)."""
        from xive_machine import migration

        return migration.snapshot(self, path, incremental=incremental)

    def load_state(self, state: Any) -> None:
        """Become the machine in a snapshot (bytes or a file); smp, memory ... must match it."""
        from xive_machine import migration

        migration.load_state(self, state)

    def close(self) -> None:
        for v in self.vcpus:
            v.close()
        self.vcpus = []

    def __enter__(self) -> SpaprMachine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
