"""The machine clock: virtual time from instructions retired (deterministic, the default) or host wall time.

The timebase the guest reads runs at the device tree's timebase-frequency (512 MHz, as QEMU); the
decrementer counts down at the same rate. Unicorn keeps neither, so every read of them goes through here.
"""

from __future__ import annotations

import time

TB_FREQ = 512_000_000


class Clock:
    def __init__(self, mode: str = "deterministic", insns_per_us: int = 1000) -> None:
        self.mode = mode
        self.insns_per_us = insns_per_us
        self.insns = 0  # instructions retired by the machine so far (advanced by the scheduler)
        self.skip_ns = 0  # idle time skipped forward (all vCPUs ceded) in deterministic mode
        self._host_t0 = time.perf_counter_ns()

    def ns(self) -> int:
        if self.mode == "host":
            return time.perf_counter_ns() - self._host_t0 + self.skip_ns
        return self.insns * 1000 // self.insns_per_us + self.skip_ns

    def tb(self) -> int:
        return self.ns() * TB_FREQ // 1_000_000_000

    def ns_for_tb(self, ticks: int) -> int:
        return -(-ticks * 1_000_000_000 // TB_FREQ)

    def insns_for_ns(self, ns: int) -> int:
        return max(1, ns * self.insns_per_us // 1000)

    def advance_to_ns(self, ns: int) -> None:
        """Idle skip: jump forward to `ns` (used when every vCPU waits for a timer)."""
        now = self.ns()
        if ns > now:
            self.skip_ns += ns - now

    def reset(self) -> None:
        self.insns = 0
        self.skip_ns = 0
        self._host_t0 = time.perf_counter_ns()

    def get_state(self) -> dict:
        return {"mode": self.mode, "insns": self.insns, "skip_ns": self.skip_ns, "ns": self.ns()}

    def set_state(self, state: dict) -> None:
        self.insns = state["insns"]
        self.skip_ns = state["skip_ns"]
        if self.mode == "host":
            self._host_t0 = time.perf_counter_ns() - state["ns"] + self.skip_ns
