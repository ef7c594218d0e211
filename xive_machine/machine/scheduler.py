"""The run loop: deterministic round-robin over the runnable vCPUs, interrupts delivered between runs.

Preemption is only ever synchronous: a C block hook counts instructions and stops the core at a deadline
(end of the slice, the next decrementer expiry, the instruction limit). Time advances by instructions
retired (sum over vCPUs), so the same guest and configuration give the same run, byte for byte.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from unicorn import UcError

from xive_machine.cpu import regs as R
from xive_machine.cpu.fast import lib as fastlib
from xive_machine.cpu.vcpu import TRAMP_BASE, VCpu
from xive_machine.machine import exceptions as X
from xive_machine.machine import traps, xive_fast

if TYPE_CHECKING:
    from xive_machine.machine.spapr import RunResult, SpaprMachine

SINGLE_SLICE = 20_000_000  # one vCPU: come back this often to check the wall clock
RUNNING, STOPPED, CEDED = "running", "stopped", "ceded"


def _deliver_pending(m: SpaprMachine, v: VCpu, pc: int, msr: int) -> None:
    """Take the pending interrupt (MSR[EE] = 1 known): external outranks the decrementer. The watch stays
    armed while anything is still pending, since the external line is a level: again once EE is back."""
    st = m.cpus[v.index]
    if st.irq:
        traps.deliver(m, v, X.VEC_EXTERNAL, pc, 0, msr)
        if m.trace is not None:
            m.trace.emit("irq", cpu=v.index, vector=X.VEC_EXTERNAL)
    elif st.dec_pending:
        st.dec_pending = False
        traps.deliver(m, v, X.VEC_DECREMENTER, pc, 0, msr)
    v.trap.irq_waiting = 1 if (st.dec_pending or st.irq) else 0


def check_interrupts(m: SpaprMachine, i: int) -> None:
    """Between runs: deliver what is pending if MSR[EE] allows; otherwise arm the block hook's EE watch."""
    st = m.cpus[i]
    v = m.vcpus[i]
    if not (st.irq or st.dec_pending):
        v.trap.irq_waiting = 0
        return
    msr = v.msr
    if v.redirect is not None or v.run_pc >= TRAMP_BASE or not msr & R.MSR_EE:  # a trampoline lands first
        v.trap.irq_waiting = 1
        return
    _deliver_pending(m, v, v.pc, msr)


def deliver_in_run(m: SpaprMachine, v: VCpu) -> None:
    """From the block hook: an interrupt waits and MSR[EE] = 1. v.trap.pc is where the guest was going."""
    pc = v.trap.pc
    if v.redirect is not None or pc >= TRAMP_BASE:  # an SPR trampoline is mid-flight: let it land first
        return
    _deliver_pending(m, v, pc, v.trap.msr)


def _expire_timers(m: SpaprMachine) -> None:
    tb = m.clock.tb()
    for i, st in enumerate(m.cpus):
        if st.dec_deadline_tb is not None and tb >= st.dec_deadline_tb:
            st.dec_deadline_tb = None
            st.dec_pending = True
            if st.state == CEDED:
                m.wake(i)


def _next_timer_tb(m: SpaprMachine) -> int | None:
    pending = [st.dec_deadline_tb for st in m.cpus if st.dec_deadline_tb is not None and st.state != STOPPED]
    return min(pending) if pending else None


IDLE_POLL_S = 0.01  # an idle machine with a live console looks for input this often


def _idle_wait(m: SpaprMachine, next_tb: int | None) -> bool:
    """Every vCPU idles and a person may type: let idle time pass at the wall clock's pace (skipping it would
    race the guest's clock ahead by hours while it waits for a key), then look for input, which interrupts.
    True when the loop should look again; False when a ceded machine has nothing left to wait for."""
    if next_tb is None and not any(st.state == CEDED for st in m.cpus):
        return False
    now = m.clock.ns()
    deadline = m.clock.ns_for_tb(next_tb) if next_tb is not None else None
    wait_ns = IDLE_POLL_S * 1e9 if deadline is None else min(IDLE_POLL_S * 1e9, max(0, deadline - now))
    t0 = time.perf_counter_ns()
    if wait_ns > 0:
        time.sleep(wait_ns / 1e9)
    target = now + (time.perf_counter_ns() - t0)
    m.clock.advance_to_ns(target if deadline is None else min(target, deadline))
    m.poll_console()
    _expire_timers(m)
    return True


def run(m: SpaprMachine, *, max_insns: int | None, timeout: float | None) -> RunResult:
    """The loop proper runs with the cyclic garbage collector paused: the hot paths allocate short-lived
    objects only, and a collection in the middle of a run costs more than the whole run of a small guest."""
    fast = int(m.trace is None and _stock_sprg0(m))
    for v in m.vcpus:  # H_SET_SPRG0 entirely in C, unless it is traced or its handler was replaced
        v.trap.fast_sprg0 = fast
    xive_fast.sync_delivery(m)  # external interrupts delivered in C (untraced)
    xive_fast.current(m)  # the XIVE round trip in C, if the active controller's wiring allows it
    with gc_paused():
        return _run(m, max_insns=max_insns, timeout=timeout)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic collector off for a stretch that allocates only short-lived objects (a run, a reset),
    back on after, as it was."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _stock_sprg0(m: SpaprMachine) -> bool:
    from xive_machine.hcalls.papr import h_set_sprg0

    entry = m.dispatcher.entries.get(0x24)
    return entry is not None and getattr(entry[0], "func", None) is h_set_sprg0 and entry[2] is None


def _run(m: SpaprMachine, *, max_insns: int | None, timeout: float | None) -> RunResult:
    from xive_machine.machine.spapr import RunResult

    t0 = time.perf_counter()
    wall_deadline = t0 + timeout if timeout else None
    insn_start = m.clock.insns
    smp = len(m.vcpus)
    slice_len = m.config.slice_insns if smp > 1 else SINGLE_SLICE
    live_console = m.console.live
    # The round-robin position survives the end of a run (max-insns, timeout, until, snapshot), so that a run
    # stopped and resumed, here or after a restore, schedules exactly as the uninterrupted one.
    while m.stop_reason is None:
        if m.rr_round is None or m.rr_pos >= len(m.rr_round):
            runnable = [i for i, st in enumerate(m.cpus) if st.state == RUNNING]
            if not runnable:
                nxt = _next_timer_tb(m)
                if live_console and _idle_wait(m, nxt):
                    if wall_deadline is not None and time.perf_counter() > wall_deadline:
                        m.stop("timeout", 3, f"stopped after {timeout:g} s (--timeout)")
                    continue
                if nxt is None:
                    if any(st.state == CEDED for st in m.cpus):
                        m.stop("idle", 3, "every vCPU is idle (H_CEDE) and no timer or interrupt can wake one")
                    else:
                        m.stop("halted", 4, "every vCPU is stopped")
                    break
                m.clock.advance_to_ns(m.clock.ns_for_tb(nxt))
                _expire_timers(m)
                continue
            last = m.rr_last  # a new round starts after the vCPU that ran last: true round robin, and a
            runnable = [c for c in runnable if c > last] + [c for c in runnable if c <= last]  # woken one is next
            m.rr_round, m.rr_pos = runnable, 0
        i = m.rr_round[m.rr_pos]
        st = m.cpus[i]
        if st.state != RUNNING:
            m.rr_pos += 1
            continue
        v = m.vcpus[i]
        if live_console:
            m.poll_console()
        check_interrupts(m, i)
        if m.stop_reason is not None:
            break
        budget = slice_len
        if m.rr_resume is not None and m.rr_resume[0] == i:  # the rest of a slice a stop cut short
            budget = m.rr_resume[1]
        m.rr_resume = None
        nxt = st.dec_deadline_tb
        if nxt is not None:
            ns_left = m.clock.ns_for_tb(nxt) - m.clock.ns()
            budget = max(1, min(budget, m.clock.insns_for_ns(ns_left)))
        full = budget
        if max_insns is not None:
            left = max_insns - (m.clock.insns - insn_start)
            if left <= 0:
                m.stop("max-insns", 3, f"stopped after {max_insns} instructions (--max-insns)")
                break
            budget = min(budget, left)
        start = v.trap.icount
        v.trap.deadline = start + budget
        v.mmu.spin_yield = 1 if len(m.rr_round) > 1 else 0  # a spin hint yields to another runnable vCPU
        vt = v.time  # the clock as the C timebase reads see it during this slice
        vt.ins_base = m.clock.insns - start
        vt.skip_ns = m.clock.skip_ns
        m.current = v
        m.slice_start_icount = start
        m.slice_start_insns = m.clock.insns
        try:
            v.run(v.run_pc)
        except UcError as exc:
            fault = v.take_mmu_fault()
            if m.map_pending_window(v):
                pass  # the faulting access restarts with the page mapped, next time round
            elif fault is not None:
                m.clock.insns = m.slice_start_insns + (v.trap.icount - start)
                traps.deliver_mmu_fault(m, v, fault)
            elif m.pending_fault is not None:
                m.clock.insns = m.slice_start_insns + (v.trap.icount - start)
                traps.deliver_pending_fault(m, v)
            else:
                m.guest_error(v, f"Unicorn stopped: {exc}")
        finally:
            m.current = None
            m.clock.insns = m.slice_start_insns + (v.trap.icount - start)
            fastlib.xm_flush_pending(v.trap)  # a tlbie never outlives the slice that issued it
        used = v.trap.icount - start
        m.rr_last = i
        cap = start + budget  # the slice was cut by the instruction limit only if it ran into that very
        if budget < full and v.trap.deadline == cap and used >= budget and st.state == RUNNING:  # deadline
            m.rr_resume = (i, full - used)  # this vCPU goes on first next run, for the rest of its slice
        else:
            m.rr_pos += 1
        _expire_timers(m)
        if wall_deadline is not None and time.perf_counter() > wall_deadline and m.stop_reason is None:
            m.stop("timeout", 3, f"stopped after {timeout:g} s (--timeout)")
        if max_insns is not None and m.clock.insns - insn_start >= max_insns and m.stop_reason is None:
            m.stop("max-insns", 3, f"stopped after {max_insns} instructions (--max-insns)")
    wall = time.perf_counter() - t0
    return RunResult(m.stop_reason or "unknown", m.exit_code, m.console.text(), m.stop_message,
                     m.clock.insns - insn_start, wall,
                     getattr(m.trace, "events", None))
