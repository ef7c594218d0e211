"""The core RTAS services (firmware/rtas_services.py) through the RTAS dispatcher on a fake machine. Expected
values marked "measured" were read from qemu-system-ppc64 7.2.22 (-M pseries,x-vof=on -cpu POWER9, TCG)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xive_machine.cpu.regs import MSR_EE
from xive_machine.firmware import rtas_services as S
from xive_machine.firmware.rtas import RTAS_TOKENS, RtasDispatcher
from xive_machine.memory.ram import GuestRam

BLOCK = 0x1000
BUF = 0x2000
MiB = 1 << 20
HOST_NS = 1_795_487_092 * 10**9 + 123_456_789  # 2026-11-24 02:24:52 UTC, the probe run's time


@dataclass
class FakeMachine:
    """The part of SpaprMachine firmware/rtas_services.py uses, with a call log."""

    nr_cpus: int = 2
    memory_size: int = 512 * MiB
    log: list[tuple] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ram = GuestRam(1 * MiB)  # the services only touch the first pages; memory_size is what they report
        self.vcpus = [SimpleNamespace(msr=0) for _ in range(self.nr_cpus)]
        self.cpus = [SimpleNamespace(state="running" if i == 0 else "stopped") for i in range(self.nr_cpus)]
        self.console = SimpleNamespace(out=bytearray())
        self.console.write = self.console.out.extend
        self.rtc_offset_s = 0
        self.uuid: bytes | None = None
        self.vof = SimpleNamespace(rtas_base=None)
        self.fwnmi: tuple[int, int] | None = None

    def power_off(self) -> None:
        self.log.append(("power_off",))

    def reboot(self) -> None:
        self.log.append(("reboot",))

    def cpu_stopped(self, cpu: int) -> bool:
        return self.cpus[cpu].state == "stopped"

    def start_cpu(self, cpu: int, pc: int, r3: int) -> None:
        self.log.append(("start", cpu, pc, r3))
        self.cpus[cpu].state = "running"

    def stop_self(self, cpu: int) -> None:
        self.log.append(("stop_self", cpu))
        self.cpus[cpu].state = "stopped"

    def os_term(self, message: str) -> None:
        self.log.append(("os_term", message))

    def stop(self, reason: str, exit_code: int = 0, message: str = "") -> None:
        self.log.append(("stop", reason))


class Env:
    def __init__(self, m: FakeMachine | None = None) -> None:
        self.m = m or FakeMachine()
        self.rtas = RtasDispatcher(self.m.ram)
        self.rtas.install(S.RTAS_CORE, self.m)

    def call(self, name: str, args: list[int], nret: int, cpu: int = 0) -> list[int]:
        """Run a service; rets as signed 32-bit values. Cells the service does not write keep the poison."""
        ram = self.m.ram
        ram.fill(BLOCK, 0x100, 0xEE)
        ram.write_u32(BLOCK, RTAS_TOKENS[name])
        ram.write_u32(BLOCK + 4, len(args))
        ram.write_u32(BLOCK + 8, nret)
        for i, a in enumerate(args):
            ram.write_u32(BLOCK + 12 + 4 * i, a)
        call = self.rtas.call(cpu, BLOCK)
        assert call is not None and call.hcall_rc == 0
        rets_at = BLOCK + 12 + 4 * len(args)
        out = [ram.read_u32(rets_at + 4 * i) for i in range(nret)]
        return [v - (1 << 32) if v >> 31 else v for v in out]


POISON = 0xEEEEEEEE - (1 << 32)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Env:
    monkeypatch.setattr(S, "host_utc_ns", lambda: HOST_NS)
    return Env()


def test_table_registers_the_brief_services() -> None:
    names = {s.name for s in S.RTAS_CORE.specs.values()}
    assert names == {"display-character", "get-time-of-day", "set-time-of-day", "power-off", "system-reboot",
                     "query-cpu-stopped-state", "start-cpu", "stop-self", "ibm,get-system-parameter",
                     "ibm,set-system-parameter", "check-exception", "event-scan", "ibm,os-term",
                     "ibm,nmi-register", "ibm,nmi-interlock", "get-power-level", "set-power-level",
                     "ibm,suspend-me"}
    for token, spec in S.RTAS_CORE.specs.items():
        assert RTAS_TOKENS[spec.name] == token


def test_display_character(env: Env) -> None:
    assert env.call("display-character", [0x141], 1) == [0]
    assert env.call("display-character", [0x42], 0) == []  # measured: counts are not checked
    assert env.call("display-character", [], 1) == [0]
    assert bytes(env.m.console.out) == b"AB\0"


# ---------------------------------------------------------------------------------------------------------
def test_get_time_of_day(env: Env) -> None:
    rets = env.call("get-time-of-day", [], 8)
    assert rets[:7] == [0, 2026, 11, 24, 2, 24, 52]
    assert rets[7] & 0xFFFFFFFF == HOST_NS & 0xFFFFFFFF  # measured: the low 32 bits of the whole ns count
    env.m.rtc_offset_s = -86400
    assert env.call("get-time-of-day", [], 8)[1:4] == [2026, 11, 23]


@pytest.mark.parametrize("args,nret", [([0], 8), ([], 7), ([], 9), ([], 1)])
def test_get_time_of_day_counts(env: Env, args: list[int], nret: int) -> None:
    assert env.call("get-time-of-day", args, nret) == [-3] + [POISON] * (nret - 1)


def test_set_time_of_day_round_trip(env: Env) -> None:
    assert env.call("set-time-of-day", [2001, 2, 3, 4, 5, 6, 999], 1) == [0]
    assert env.call("get-time-of-day", [], 8)[:7] == [0, 2001, 2, 3, 4, 5, 6]


def test_set_time_of_day_never_range_checks(env: Env) -> None:  # measured
    assert env.call("set-time-of-day", [2030, 13, 45, 99, 99, 99, 0], 1) == [0]
    assert env.call("get-time-of-day", [], 8)[:7] == [0, 2031, 2, 18, 4, 40, 39]
    assert env.call("set-time-of-day", [0xFFFFFFFF] * 6 + [0], 1) == [0]
    assert env.call("get-time-of-day", [], 8)[:7] == [0, 1752, 6, 28, 21, 42, 41]  # int64 ns wrap


def test_set_time_of_day_refuses_minus_one(env: Env) -> None:  # measured
    env.m.rtc_offset_s = 77
    assert env.call("set-time-of-day", [1969, 12, 31, 23, 59, 59, 0], 1) == [-3]
    assert env.m.rtc_offset_s == 77


@pytest.mark.parametrize("nargs,nret", [(6, 1), (8, 1), (7, 0), (7, 2)])
def test_set_time_of_day_counts(env: Env, nargs: int, nret: int) -> None:
    assert env.call("set-time-of-day", [2001] * nargs, nret)[:1] == ([-3] if nret else [])
    assert env.m.rtc_offset_s == 0


@given(st.integers(-(10**11), 10**11))
def test_gmtime_matches_the_calendar(seconds: int) -> None:
    t = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=seconds) if -62135596800 <= seconds else None
    if t is not None:
        assert S.gmtime(seconds) == (t.year, t.month, t.day, t.hour, t.minute, t.second)


@given(st.integers(1, 9999), st.integers(1, 12), st.integers(1, 28), st.integers(0, 23), st.integers(0, 59),
       st.integers(0, 59))
def test_mktimegm_inverts_gmtime_for_real_dates(y: int, mo: int, d: int, h: int, mi: int, s: int) -> None:
    assert S.gmtime(S.mktimegm(y, mo, d, h, mi, s)) == (y, mo, d, h, mi, s)


# ---------------------------------------------------------------------------------------------------------
def test_power_off_and_reboot(env: Env) -> None:
    assert env.call("power-off", [0, 0], 1) == [0]
    assert env.call("power-off", [0], 1) == [-3]  # measured
    assert env.call("power-off", [0, 0], 2) == [-3, POISON]
    assert env.call("system-reboot", [], 1) == [0]
    assert env.call("system-reboot", [0], 1) == [-3]  # measured
    assert env.call("system-reboot", [], 0) == []
    assert env.m.log == [("power_off",), ("reboot",)]


def test_query_cpu_stopped_state(env: Env) -> None:
    assert env.call("query-cpu-stopped-state", [0], 2) == [0, 2]  # measured
    assert env.call("query-cpu-stopped-state", [1], 2) == [0, 0]
    assert env.call("query-cpu-stopped-state", [2], 2) == [-3, POISON]  # measured (unknown id)
    assert env.call("query-cpu-stopped-state", [0xFFFFFFFF], 2) == [-3, POISON]
    assert env.call("query-cpu-stopped-state", [0], 1) == [-3]
    assert env.call("query-cpu-stopped-state", [0, 0], 2) == [-3, POISON]


def test_start_cpu(env: Env) -> None:
    assert env.call("start-cpu", [0, 0, 0], 1) == [-1]  # measured: the running boot cpu
    assert env.call("start-cpu", [7, 0, 0], 1) == [-3]  # measured
    assert env.call("start-cpu", [1, 0x4000], 1) == [-3]
    assert env.call("start-cpu", [1, 0x4000, 5], 2) == [-3, POISON]
    assert env.m.log == []
    assert env.call("start-cpu", [1, 0x4000, 0xFFFFFFFF], 1) == [0]
    assert env.m.log == [("start", 1, 0x4000, 0xFFFFFFFF)]
    assert env.call("start-cpu", [1, 0x4000, 0], 1) == [-1]


def test_stop_self_writes_nothing(env: Env) -> None:
    assert env.call("stop-self", [], 1, cpu=1) == [POISON]
    assert env.m.log == [("stop_self", 1)]


def test_suspend_me() -> None:
    m = FakeMachine(nr_cpus=2)
    env = Env(m)
    assert env.call("ibm,suspend-me", [0], 1) == [-3]  # measured
    assert env.call("ibm,suspend-me", [], 2) == [-3, POISON]
    m.cpus[1].state = "running"
    assert env.call("ibm,suspend-me", [], 1) == [-9005]
    m.cpus[1].state = "ceded"
    m.vcpus[1].msr = MSR_EE
    assert env.call("ibm,suspend-me", [], 1) == [-9005]
    assert m.log == []
    m.vcpus[1].msr = 0
    assert env.call("ibm,suspend-me", [], 1) == [0]
    assert m.log == [("stop", "suspend")]


# ---------------------------------------------------------------------------------------------------------
def sysparm(env: Env, param: int, length: int, nargs: int = 3) -> tuple[int, bytes]:
    env.m.ram.fill(BUF, 0x100, 0xAA)
    status = env.call("ibm,get-system-parameter", [param, BUF, length][:nargs], 1)[0]
    return status, env.m.ram.read(BUF, 0x80)


def test_get_system_parameter_splpar(env: Env) -> None:
    status, buf = sysparm(env, 20, 200)
    text = b"MaxEntCap=2,DesMem=512,DesProcs=2,MaxPlatProcs=2,HostThrs=4\0"
    assert status == 0
    assert buf[:2 + len(text)] == len(text).to_bytes(2, "big") + text
    assert buf[2 + len(text)] == 0xAA


def test_get_system_parameter_splpar_as_measured() -> None:
    env = Env(FakeMachine(nr_cpus=1, memory_size=512 * MiB))
    status, buf = sysparm(env, 20, 200)
    assert status == 0 and buf[:62] == b"\x00\x3cMaxEntCap=1,DesMem=512,DesProcs=1,MaxPlatProcs=1,HostThrs=4\0"


def test_get_system_parameter_short_buffers(env: Env) -> None:  # measured
    assert sysparm(env, 20, 1) == (-9999, b"\xaa" * 0x80)
    status, buf = sysparm(env, 20, 5)
    assert status == 0 and buf[:6] == b"\x00\x3cMax\xaa"
    status, buf = sysparm(env, 42, 2)
    assert status == 0 and buf[:3] == b"\x00\x01\xaa"


def test_get_system_parameter_diag_and_uuid(env: Env) -> None:  # measured (42, 48 without a uuid)
    assert sysparm(env, 42, 100)[1][:4] == b"\x00\x01\x00\xaa"
    assert sysparm(env, 48, 100)[1][:3] == b"\x00\x00\xaa"
    env.m.uuid = bytes(range(16))
    assert sysparm(env, 48, 100)[1][:19] == b"\x00\x10" + bytes(range(16)) + b"\xaa"


def test_get_system_parameter_unknown_and_unchecked_counts(env: Env) -> None:
    assert sysparm(env, 21, 100)[0] == -3
    assert sysparm(env, 99, 5, nargs=2)[0] == -3  # measured
    assert sysparm(env, 20, 100, nargs=2)[0] == -9999  # the missing length reads as 0 here
    assert env.call("ibm,get-system-parameter", [20, 1 << 24, 100], 1) == [0]  # outside RAM: dropped


def test_set_system_parameter(env: Env) -> None:  # measured for 20 and 21
    for p in (20, 42, 48):
        assert env.call("ibm,set-system-parameter", [p, BUF], 1) == [-9002]
    for p in (0, 21, 0xFFFFFFFF):
        assert env.call("ibm,set-system-parameter", [p, BUF], 1) == [-3]
    assert env.call("ibm,set-system-parameter", [20], 1) == [-9002]


def test_event_scan_and_check_exception(env: Env) -> None:  # measured
    assert env.call("event-scan", [0, 0, BUF, 100], 1) == [1]
    assert env.call("event-scan", [0, 0, BUF], 1) == [-3]
    assert env.call("event-scan", [0, 0, BUF, 100], 2) == [-3, POISON]
    assert env.call("check-exception", [0, 0, 0xFFFFFFFF, 0, BUF, 100], 1) == [1]
    assert env.call("check-exception", [0, 0, 0xFFFFFFFF, 0, BUF, 100, 7], 1) == [1]
    assert env.call("check-exception", [0, 0, 0xFFFFFFFF, 0, BUF], 1) == [-3]
    assert env.call("check-exception", [0] * 8, 1) == [-3]
    assert env.call("check-exception", [0] * 6, 0) == []


def test_os_term(env: Env) -> None:
    env.m.ram.write(BUF, b"kernel panic: oops\0trailing")
    assert env.call("ibm,os-term", [BUF], 1) == [0]
    env.m.ram.write(BUF, b"x" * 600)
    assert env.call("ibm,os-term", [BUF], 1) == [0]
    assert env.call("ibm,os-term", [1 << 30], 1) == [0]
    assert env.m.log == [("os_term", "kernel panic: oops"), ("os_term", "x" * 511), ("os_term", "")]


def test_power_levels(env: Env) -> None:  # measured
    assert env.call("get-power-level", [0xFFFFFFFF], 2) == [0, 100]
    assert env.call("get-power-level", [0xFFFFFFFF], 1) == [-3]
    assert env.call("get-power-level", [0], 2) == [-3, POISON]
    assert env.call("get-power-level", [], 2) == [-3, POISON]
    assert env.call("set-power-level", [0xFFFFFFFF, 50], 2) == [0, 100]
    assert env.call("set-power-level", [0xFFFFFFFF], 2) == [-3, POISON]
    assert env.call("set-power-level", [1, 50], 2) == [-3, POISON]


def test_nmi_register_and_interlock(env: Env) -> None:
    assert env.call("ibm,nmi-interlock", [], 1) == [-3]  # measured: nothing registered
    assert env.call("ibm,nmi-register", [0x1000, 0x2000], 1) == [-3]  # no linux,rtas-base yet
    env.m.vof.rtas_base = 0x1F000
    assert env.call("ibm,nmi-register", [32 * MiB, 0x2000], 1) == [-3]
    assert env.call("ibm,nmi-register", [0x1000, 32 * MiB], 1) == [-3]
    assert env.m.fwnmi is None
    assert env.call("ibm,nmi-register", [0x1000, 32 * MiB - 1], 1) == [0]
    assert env.m.fwnmi == (0x1000, 32 * MiB - 1)
    assert env.call("ibm,nmi-interlock", [], 1) == [0]


def test_nmi_register_without_vof(env: Env) -> None:
    env.m.vof = None
    assert env.call("ibm,nmi-register", [0x1000, 0x2000], 1) == [-3]
