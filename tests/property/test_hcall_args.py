"""Any register values a guest can pass: every PAPR hcall (hcalls/papr.py) and every core RTAS service
(firmware/rtas_services.py) returns a valid code and never raises, on machines in arbitrary states."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xive_machine.firmware import rtas_services as S
from xive_machine.firmware.rtas import RtasStatus
from xive_machine.hcalls import papr as P
from xive_machine.hcalls.codes import H
from xive_machine.hcalls.registry import Dispatcher
from xive_machine.memory.ram import GuestRam

RAM_SIZE = 1 << 20
M64 = (1 << 64) - 1
H_CODES = {int(c) for c in H}
RTAS_CODES = {int(c) for c in RtasStatus} | {int(H.MULTI_THREADS_ACTIVE)}
STATES = ("running", "stopped", "ceded")

SPECIAL = [0, 1, 2, 3, 4, 5, 8, 16, 31, 32, 48, 640, 0x1000, 0x7FFF_FFFF, 0x8000_0000, 0x8000_0001,
           0xFFFF_FFFF, 1 << 32, (1 << 32) | 1, 1 << 63, M64, M64 - 1, M64 - 2, M64 - 7, RAM_SIZE - 8, RAM_SIZE,
           P.FLAGS_REGISTER_VPA, P.FLAGS_REGISTER_DTL, P.FLAGS_REGISTER_SLBSHADOW, P.FLAGS_DEREGISTER_VPA,
           P.FLAGS_DEREGISTER_DTL, P.FLAGS_DEREGISTER_SLBSHADOW, P.H_ZERO_PAGE, P.H_COPY_PAGE,
           P.H_COPY_PAGE | P.H_ICACHE_SYNCHRONIZE]
u64 = st.one_of(st.integers(0, M64), st.sampled_from(SPECIAL), st.integers(0, RAM_SIZE + 64))
u32 = st.one_of(st.integers(0, 0xFFFF_FFFF), st.sampled_from([v & 0xFFFF_FFFF for v in SPECIAL]),
                st.integers(0, RAM_SIZE + 64))


CPU = st.tuples(st.sampled_from(STATES), st.booleans(), st.sampled_from([0, P.MSR_EE, M64]),
               st.sampled_from([0, 0x1000, 8]), st.sampled_from([0, 0x1000, 8]), st.sampled_from([0, 8]), u64)
MACHINE = st.fixed_dictionaries({
    "cpus": st.lists(CPU, min_size=1, max_size=4), "memory": st.sampled_from([128 << 20, 512 << 20, 16 << 30]),
    "ram0": st.binary(max_size=64), "rng": st.booleans(), "rtc": st.integers(-(1 << 40), 1 << 40),
    "uuid": st.sampled_from([None, b"", bytes(range(16))]), "rtas_base": st.sampled_from([-1, None, 0x1F000]),
    "fwnmi": st.sampled_from([None, (0x100, 0x200)])})


class FakeMachine:
    """Every attribute and method the two modules use, recording nothing: only the answers matter here."""

    def __init__(self, cfg: dict) -> None:
        self.nr_cpus = len(cfg["cpus"])
        self.memory_size = cfg["memory"]
        self.ram = GuestRam(RAM_SIZE)
        self.ram.write(0, cfg["ram0"])
        self.vcpus, self.cpus = [], []
        for state, prod, msr, vpa, dtl, slb, dispatch in cfg["cpus"]:
            sprs: dict[int, int] = {}
            self.vcpus.append(SimpleNamespace(msr=msr, sprs=sprs, set_spr=sprs.__setitem__))
            self.cpus.append(SimpleNamespace(state=state, prod=prod, vpa=vpa, dtl=dtl, slb_shadow=slb,
                                             dispatch=dispatch))
        self.config = SimpleNamespace(rng=cfg["rng"])
        self.console = SimpleNamespace(write=lambda b: None)
        self.rtc_offset_s = cfg["rtc"]
        self.uuid = cfg["uuid"]
        self.vof = None if cfg["rtas_base"] == -1 else SimpleNamespace(rtas_base=cfg["rtas_base"])
        self.fwnmi = cfg["fwnmi"]

    def cede(self, cpu: int) -> None:
        self.cpus[cpu].state = "ceded"

    def prod(self, target: int) -> None:
        self.cpus[target].prod = True

    def confer(self, cpu: int, target: int) -> None:
        assert target == -1 or 0 <= target < self.nr_cpus

    def set_ile(self, little: bool) -> None:
        assert isinstance(little, bool)

    def random_u64(self) -> int:
        return 0xFEED

    def signal_sys_reset(self, cpu: int) -> None:
        assert 0 <= cpu < self.nr_cpus

    def power_off(self) -> None: ...

    def reboot(self) -> None: ...

    def cpu_stopped(self, cpu: int) -> bool:
        return self.cpus[cpu].state == "stopped"

    def start_cpu(self, cpu: int, pc: int, r3: int) -> None:
        assert 0 <= cpu < self.nr_cpus and 0 <= pc <= 0xFFFF_FFFF and 0 <= r3 <= 0xFFFF_FFFF

    def stop_self(self, cpu: int) -> None: ...

    def os_term(self, message: str) -> None:
        assert isinstance(message, str)

    def stop(self, reason: str, exit_code: int = 0, message: str = "") -> None: ...


@pytest.mark.parametrize("opcode", sorted(P.PAPR_HCALLS.specs), ids=lambda op: P.PAPR_HCALLS.specs[op].name)
@settings(max_examples=100, deadline=None)
@given(cfg=MACHINE, cpu=st.integers(0, 3), args=st.lists(u64, min_size=9, max_size=9))
def test_hcall_any_arguments(opcode: int, cfg: dict, cpu: int, args: list[int]) -> None:
    m = FakeMachine(cfg)
    d = Dispatcher()
    d.install(P.PAPR_HCALLS, m)
    cpu %= m.nr_cpus
    res = d.dispatch(cpu, opcode, args)
    assert isinstance(res, tuple) and len(res) >= 1
    assert int(res[0]) in H_CODES
    assert all(isinstance(o, int) and 0 <= o <= M64 for o in res[1:])
    assert m.ram.size == RAM_SIZE


@pytest.mark.parametrize("token", sorted(S.RTAS_CORE.specs), ids=lambda t: S.RTAS_CORE.specs[t].name)
@settings(max_examples=100, deadline=None)
@given(cfg=MACHINE, cpu=st.integers(0, 3), args=st.lists(u32, max_size=16), nret=st.integers(0, 16))
def test_rtas_any_arguments(token: int, cfg: dict, cpu: int, args: list[int], nret: int) -> None:
    m = FakeMachine(cfg)
    cpu %= m.nr_cpus
    rets = S.RTAS_CORE.specs[token].fn(m, cpu, args, nret)
    assert isinstance(rets, list)
    assert all(isinstance(r, int) and -(1 << 31) <= r <= 0xFFFF_FFFF for r in rets)
    if rets:
        assert int(rets[0]) in RTAS_CODES
    elif S.RTAS_CORE.specs[token].name != "stop-self":
        pytest.fail("only stop-self writes no status")
