"""The KVM XIVE-native device model at the uAPI: every attribute group, its errno, and the event path."""

from __future__ import annotations

import dataclasses
import errno

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xive_machine.errors import KvmError
from xive_machine.kvm import uapi as U
from xive_machine.kvm.vm import KVMPPC_IRQ_DEFAULT, KVMPPC_IRQ_XIVE, KvmHost, KvmHostConfig, KvmVm
from xive_machine.memory.ram import GuestRam

CTRL, SRC, CFG, EQ, SYNC = (
    U.KVM_DEV_XIVE_GRP_CTRL,
    U.KVM_DEV_XIVE_GRP_SOURCE,
    U.KVM_DEV_XIVE_GRP_SOURCE_CONFIG,
    U.KVM_DEV_XIVE_GRP_EQ_CONFIG,
    U.KVM_DEV_XIVE_GRP_SOURCE_SYNC,
)
QPAGE = 0x100000
ESB = 1 << 16  # one host page
OS = 0x20000


def err(exc_info) -> int:
    return exc_info.value.errno


class Rig:
    """A VM with `n` vCPUs, a XIVE device, ESB and TIMA mapped (the QEMU connect sequence), vCPUs connected."""

    def __init__(self, n: int = 2, connect: bool = True, host: KvmHost | None = None) -> None:
        self.ram = GuestRam(4 << 20)
        self.lines: list[tuple[int, bool]] = []
        self.vm = KvmVm(ram=self.ram, nr_cpus=n, line=lambda c, lv: self.lines.append((c, lv)), host=host)
        self.dev = self.vm.create_device(U.KVM_DEV_TYPE_XIVE)
        self.esb = self.dev.mmap(U.KVM_XIVE_ESB_PAGE_OFFSET, 0x2000 << 17)
        self.tima = self.dev.mmap(U.KVM_XIVE_TIMA_PAGE_OFFSET, 4 << 16)
        if connect:
            self.dev.set_attr(CTRL, U.KVM_DEV_XIVE_NR_SERVERS, n)
            for v in self.vm.vcpus:
                v.enable_cap(U.KVM_CAP_PPC_IRQ_XIVE, (self.dev.fd, v.vcpu_id))

    def queue(self, server: int, prio: int = 6, qaddr: int | None = None) -> int:
        qaddr = QPAGE + server * 0x10000 if qaddr is None else qaddr
        self.dev.set_attr(EQ, U.eq_id(server, prio), U.xive_eq(U.KVM_XIVE_EQ_ALWAYS_NOTIFY, 16, qaddr, 1, 0))
        return qaddr

    def source(self, irq: int, server: int = 0, prio: int = 6, eisn: int = 0x100, lsi: bool = False) -> None:
        self.dev.set_attr(SRC, irq, U.source_state(lsi))
        self.dev.set_attr(CFG, irq, U.source_config(server, prio, False, eisn))

    def esb_load(self, irq: int, op: int) -> int:
        return self.esb.load((irq << 17) + ESB + op, 8)

    def trigger(self, irq: int) -> None:
        self.esb.store(irq << 17, 8, 0)

    def eq(self, server: int, prio: int = 6) -> dict[str, int]:
        return U.xive_eq_decode(self.dev.get_attr(EQ, U.eq_id(server, prio)))

    def snapshot(self):
        d = self.dev
        return (
            d.describe(),
            d.nr_servers,
            d.vp_base,
            d.src_count,
            sorted(d.src_blocks),
            tuple(d.router.endt) if d.router else None,
            bytes(self.ram.read(QPAGE, 0x20000)),
            [bytes(t.regs) for _, t in sorted(d.presenter.tctxs.items())],
        )


@pytest.fixture
def r() -> Rig:
    return Rig()


# --- device creation ---------------------------------------------------------------------------------------


def test_create_device_rules():
    vm = KvmVm(ram=GuestRam(1 << 20), nr_cpus=1)
    assert vm.check_extension(U.KVM_CAP_PPC_IRQ_XIVE) == 1
    assert vm.check_extension(12345) == 0
    with pytest.raises(KvmError) as e:
        vm.create_device(4)  # KVM_DEV_TYPE_VFIO: not modelled
    assert err(e) == errno.ENODEV
    assert vm.create_device(U.KVM_DEV_TYPE_XIVE, U.KVM_CREATE_DEVICE_TEST) is None
    assert vm.xive is None
    dev = vm.create_device(U.KVM_DEV_TYPE_XIVE)
    assert dev.name == "kvm-xive-native" and vm.host.fds[dev.fd] is dev
    for other in (U.KVM_DEV_TYPE_XIVE, U.KVM_DEV_TYPE_XICS):  # one XIVE-backed device per VM (kvm->arch.xive)
        with pytest.raises(KvmError) as e:
            vm.create_device(other)
        assert err(e) == errno.EEXIST
    dev.close()
    assert vm.xive is None and dev.fd not in vm.host.fds
    assert vm.create_device(U.KVM_DEV_TYPE_XIVE) is not None


def test_host_without_xive():
    vm = KvmVm(ram=GuestRam(1 << 20), nr_cpus=1, host=KvmHost(KvmHostConfig(xive_enabled=False)))
    assert vm.check_extension(U.KVM_CAP_PPC_IRQ_XIVE) == 0
    with pytest.raises(KvmError) as e:
        vm.create_device(U.KVM_DEV_TYPE_XIVE)
    assert err(e) == errno.ENODEV


# --- generic attribute dispatch ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("group", "attr", "ok"),
    [
        (CTRL, U.KVM_DEV_XIVE_RESET, True), (CTRL, U.KVM_DEV_XIVE_EQ_SYNC, True),
        (CTRL, U.KVM_DEV_XIVE_NR_SERVERS, True), (CTRL, 0, False), (CTRL, 4, False),
        (SRC, 0, True), (SRC, U.KVMPPC_XIVE_NR_IRQS - 1, True), (SRC, U.KVMPPC_XIVE_NR_IRQS, False),
        (CFG, 5, True), (CFG, U.KVMPPC_XIVE_NR_IRQS, False), (SYNC, 7, True), (SYNC, 1 << 63, False),
        (EQ, 0, True), (EQ, 0xFFFFFFFF, True), (0, 0, False), (6, 0, False),
    ],
)  # fmt: skip
def test_has_attr(r, group, attr, ok):
    if ok:
        assert r.dev.has_attr(group, attr)
    else:
        with pytest.raises(KvmError) as e:
            r.dev.has_attr(group, attr)
        assert err(e) == errno.ENXIO


def test_attribute_ids_must_be_integers(r):
    for group, attr in ((None, 0), ("1", 0), (1.5, 0), (CTRL, None), (True, 1)):
        for method, extra in ((r.dev.set_attr, (0,)), (r.dev.get_attr, ()), (r.dev.has_attr, ())):
            with pytest.raises(KvmError) as e:
                method(group, attr, *extra)
            assert err(e) == errno.EFAULT


def test_unknown_groups_and_get_only_eq(r):
    for group, attr in ((0, 0), (6, 1), (CTRL, 9)):
        with pytest.raises(KvmError) as e:
            r.dev.set_attr(group, attr, 0)
        assert err(e) == errno.ENXIO
    for group in (CTRL, SRC, CFG, SYNC, 7):
        with pytest.raises(KvmError) as e:
            r.dev.get_attr(group, 0)
        assert err(e) == errno.ENXIO


# --- CTRL/NR_SERVERS ---------------------------------------------------------------------------------------


def test_nr_servers():
    g = Rig(connect=False)
    d = g.dev
    for bad in (None, b"\x01\x00", "4", 1.5):
        with pytest.raises(KvmError) as e:
            d.set_attr(CTRL, U.KVM_DEV_XIVE_NR_SERVERS, bad)
        assert err(e) == errno.EFAULT
    for bad in (0, 16385, 1 << 32):  # 1 << 32 truncates to a u32 0
        with pytest.raises(KvmError) as e:
            d.set_attr(CTRL, U.KVM_DEV_XIVE_NR_SERVERS, bad)
        assert err(e) == errno.EINVAL
    d.set_attr(CTRL, U.KVM_DEV_XIVE_NR_SERVERS, 16384)
    assert d.nr_servers == 2048  # clamped to KVM_MAX_VCPUS
    d.set_attr(CTRL, U.KVM_DEV_XIVE_NR_SERVERS, (2).to_bytes(4, "little"))
    assert d.nr_servers == 2
    g.vm.vcpus[0].enable_cap(U.KVM_CAP_PPC_IRQ_XIVE, (d.fd, 0))
    with pytest.raises(KvmError) as e:
        d.set_attr(CTRL, U.KVM_DEV_XIVE_NR_SERVERS, 4)
    assert err(e) == errno.EBUSY
    assert d.nr_servers == 2


# --- vCPU connection ----------------------------------------------------------------------------------------


def test_enable_cap_errors():
    g = Rig(n=3, connect=False)
    v0, v1, v2 = g.vm.vcpus
    d = g.dev
    d.set_attr(CTRL, U.KVM_DEV_XIVE_NR_SERVERS, 2)
    cases = [
        ((U.KVM_CAP_PPC_IRQ_XIVE, d.fd, 0), dict(flags=1), errno.EINVAL),
        ((170, d.fd, 0), {}, errno.EINVAL),
        ((U.KVM_CAP_PPC_IRQ_XIVE, 999, 0), {}, errno.EBADF),
        ((U.KVM_CAP_PPC_IRQ_XIVE, d.fd, 2), {}, errno.EINVAL),  # server >= nr_servers
    ]
    for args, kw, code in cases:
        with pytest.raises(KvmError) as e:
            v0.enable_cap(*args, **kw)
        assert err(e) == code
    assert v0.irq_type == KVMPPC_IRQ_DEFAULT and d.vp_base is None
    v0.enable_cap(U.KVM_CAP_PPC_IRQ_XIVE, (d.fd, 1))
    assert v0.irq_type == KVMPPC_IRQ_XIVE and v0.xive_vcpu.vp_id == d.vp_base + 1
    with pytest.raises(KvmError) as e:
        v0.enable_cap(U.KVM_CAP_PPC_IRQ_XIVE, (d.fd, 0))
    assert err(e) == errno.EBUSY
    with pytest.raises(KvmError) as e:
        v1.enable_cap(U.KVM_CAP_PPC_IRQ_XIVE, (d.fd, 1))
    assert err(e) == errno.EEXIST
    other = KvmVm(ram=GuestRam(1 << 20), nr_cpus=1, host=g.vm.host)
    other_dev = other.create_device(U.KVM_DEV_TYPE_XIVE)
    with pytest.raises(KvmError) as e:
        v2.enable_cap(U.KVM_CAP_PPC_IRQ_XIVE, (other_dev.fd, 0))
    assert err(e) == errno.EPERM
    g.vm.host.config = dataclasses.replace(g.vm.host.config, xive_enabled=False)
    with pytest.raises(KvmError) as e:
        v2.enable_cap(U.KVM_CAP_PPC_IRQ_XIVE, (d.fd, 0))
    assert err(e) == errno.ENXIO


def test_no_vp_block_left():
    host = KvmHost(KvmHostConfig(vp_blocks=1))
    a = Rig(n=1, host=host)
    b = Rig(n=1, connect=False, host=host)
    with pytest.raises(KvmError) as e:
        b.vm.vcpus[0].enable_cap(U.KVM_CAP_PPC_IRQ_XIVE, (b.dev.fd, 0))
    assert err(e) == errno.ENOSPC
    a.esb.munmap()
    a.tima.munmap()
    a.dev.close()  # release frees the VP block
    b.vm.vcpus[0].enable_cap(U.KVM_CAP_PPC_IRQ_XIVE, (b.dev.fd, 0))


def test_connected_thread_context(r):
    t = r.dev.presenter.tctxs[0]
    assert bytes(t.regs[0x10:0x18]) == bytes.fromhex("00000000ff0000ff")  # w01 0xff000000, PIPR from IPB
    assert t.os_cam() == 0x80000000 | r.dev.vp_base


# --- GRP_SOURCE -------------------------------------------------------------------------------------------


def test_source_init(r):
    d = r.dev
    with pytest.raises(KvmError) as e:
        d.set_attr(SRC, U.KVMPPC_XIVE_NR_IRQS, 0)
    assert err(e) == errno.E2BIG
    with pytest.raises(KvmError) as e:
        d.set_attr(SRC, 0x1234, None)
    assert err(e) == errno.EFAULT
    assert d.src_blocks == set()  # state unchanged
    d.set_attr(SRC, 0x1234, 0)
    assert d.src_count == 1 and d.src_blocks == {4}
    assert r.esb_load(0x1234, 0x800) == 1  # PQ 01: masked to start with
    assert r.esb_load(0x1234, 0xC00) == 1  # set PQ 00
    d.set_attr(SRC, 0x1234, U.u64(0))  # again: masked again, still one valid source
    assert d.src_count == 1 and r.esb_load(0x1234, 0x800) == 1
    d.set_attr(SRC, 0x1235, U.KVM_XIVE_LEVEL_SENSITIVE | U.KVM_XIVE_LEVEL_ASSERTED)
    st35 = d.sources[0x1235]
    assert st35.lsi and st35.asserted
    d.set_attr(SRC, 0x1235, 0)  # the kernel never clears LSI/asserted here
    assert st35.lsi and st35.asserted


# --- GRP_SOURCE_CONFIG ------------------------------------------------------------------------------------


def test_source_config_errors(r):
    d = r.dev
    r.queue(0)
    with pytest.raises(KvmError) as e:
        d.set_attr(CFG, 0x10, U.source_config(0, 6, False, 1))
    assert err(e) == errno.ENOENT  # no block
    d.set_attr(SRC, 0x11, 0)
    with pytest.raises(KvmError) as e:
        d.set_attr(CFG, 0x10, U.source_config(0, 6, False, 1))
    assert err(e) == errno.EINVAL  # block, source not initialised
    before = r.snapshot()
    for value, code in (
        (None, errno.EFAULT),
        (b"\0" * 7, errno.EFAULT),
        (U.source_config(0, 7, False, 1), errno.EINVAL),
        (U.source_config(5, 6, False, 1), errno.EINVAL),
    ):
        with pytest.raises(KvmError) as e:
            d.set_attr(CFG, 0x11, value)
        assert err(e) == code
    assert r.snapshot() == before


def test_source_config_routes_and_unchanged_is_noop(r):
    d = r.dev
    r.queue(0)
    r.queue(1)
    r.source(3, server=1, eisn=0x33)
    st3 = d.sources[3]
    assert (st3.act_server, st3.act_priority, st3.eisn) == (1, 6, 0x33)
    assert d.vm.vcpus[1].xive_vcpu.queues[6].count == 1
    d.set_attr(CFG, 3, U.u64(U.source_config(1, 6, True, 0x33)))  # masked, but nothing else changed:
    assert st3.act_priority == 6  # the kernel compares server/priority/EISN only
    d.set_attr(CFG, 3, U.source_config(1, 6, True, 0x34))
    assert (st3.act_server, st3.act_priority, st3.eisn) == (0, U.MASKED, 0)


def test_source_config_picks_another_vcpu_or_ebusy():
    g = Rig()
    g.queue(0)
    g.dev.set_attr(SRC, 1, 0)
    g.dev.set_attr(CFG, 1, U.source_config(1, 6, False, 9))  # server 1 has no queue at 6: server 0 picked
    assert g.dev.sources[1].act_server == 0
    with pytest.raises(KvmError) as e:
        g.dev.set_attr(CFG, 1, U.source_config(1, 5, False, 9))  # nobody has a queue at priority 5
    assert err(e) == errno.EBUSY


def test_queue_room_xive_q_gap():
    g = Rig(n=1)
    g.queue(0)
    d = g.dev
    d.set_attr(SRC, 0, 0)
    room = 16384 - U.XIVE_Q_GAP
    for i in range(room):
        d.set_attr(CFG, 0, U.source_config(0, 6, False, i + 1))
    with pytest.raises(KvmError) as e:
        d.set_attr(CFG, 0, U.source_config(0, 6, False, 0))
    assert err(e) == errno.EBUSY


# --- GRP_EQ_CONFIG ------------------------------------------------------------------------------------------


def test_eq_config_errors(r):
    d = r.dev
    good = dict(flags=1, qshift=16, qaddr=QPAGE, qtoggle=1, qindex=0)
    cases = [
        (U.eq_id(0, 6), None, errno.EFAULT),
        (U.eq_id(0, 6), b"\0" * 63, errno.EFAULT),
        (U.eq_id(7, 6), good, errno.ENOENT),
        (U.eq_id(0, 7), good, errno.EINVAL),
        (U.eq_id(0, 6), {**good, "flags": 0}, errno.EINVAL),
        (U.eq_id(0, 6), {**good, "flags": 3}, errno.EINVAL),
        (U.eq_id(0, 6), {**good, "qshift": 12, "qaddr": QPAGE}, errno.EINVAL),
        (U.eq_id(0, 6), {**good, "qshift": 21, "qaddr": 0}, errno.EINVAL),
        (U.eq_id(0, 6), {**good, "qshift": 24, "qaddr": 0}, errno.EINVAL),
        (U.eq_id(0, 6), {**good, "qaddr": QPAGE + 0x1000}, errno.EINVAL),
        (U.eq_id(0, 6), {**good, "qaddr": 4 << 20}, errno.EINVAL),  # past the end of guest RAM
        (U.eq_id(0, 6), {**good, "qtoggle": 0, "qindex": 1 << 14}, errno.EIO),
        (U.eq_id(0, 6), {**good, "qtoggle": 2}, errno.EIO),
    ]
    before = r.snapshot()
    for attr, value, code in cases:
        with pytest.raises(KvmError) as e:
            d.set_attr(EQ, attr, value)
        assert err(e) == code, (attr, value)
    assert r.snapshot() == before
    for attr, code in ((U.eq_id(9, 0), errno.ENOENT), (U.eq_id(1, 7), errno.EINVAL)):
        with pytest.raises(KvmError) as e:
            d.get_attr(EQ, attr)
        assert err(e) == code


def test_eq_config_set_get_restore_reset(r):
    assert r.eq(0) == dict(flags=0, qshift=0, qaddr=0, qtoggle=0, qindex=0)  # not configured: zeroed
    r.queue(0)
    assert r.eq(0) == dict(flags=1, qshift=16, qaddr=QPAGE, qtoggle=1, qindex=0)
    r.dev.set_attr(EQ, U.eq_id(1, 3), dict(flags=1, qshift=16, qaddr=0x300000, qtoggle=0, qindex=0x3FFF))
    assert r.eq(1, 3) == dict(flags=1, qshift=16, qaddr=0x300000, qtoggle=0, qindex=0x3FFF)
    r.dev.set_attr(EQ, U.eq_id(1, 3), U.xive_eq())  # qshift 0: queue off
    assert r.eq(1, 3)["qshift"] == 0


def test_event_path_through_esb_and_tima(r):
    r.queue(0)
    r.tima.store(OS + 0x11, 1, 0xFF, cpu=0)  # CPPR = 0xFF
    r.source(5, server=0, eisn=0x1234)
    assert r.esb_load(5, 0xC00) == 1  # unmask
    r.trigger(5)
    assert r.lines == [(0, True)]
    assert r.esb_load(5, 0x800) == 2  # PQ 10
    assert r.ram.read_u32(QPAGE) == 0x80001234
    assert r.eq(0)["qindex"] == 1
    assert r.tima.load(OS + 0x810, 2, cpu=0) == 0x8006  # ACK: NSR EO, CPPR 6
    assert r.lines[-1] == (0, False)
    assert r.esb_load(5, 0x000) == 0  # EOI: 10 -> 00
    r.trigger(5)
    assert r.ram.read_u32(QPAGE + 4) == 0x80001234
    assert r.tima.load(OS + 0x10, 8, cpu=1) & 0xFF == 0xFF  # vCPU 1 sees its own context


def test_reset_releases_queues_and_masks_unmasked_sources(r):
    r.queue(0)
    r.source(1, eisn=0x11)
    r.dev.set_attr(SRC, 2, 0)
    r.esb_load(2, 0xE00)  # masked source at PQ 10: RESET leaves it alone
    r.esb_load(1, 0xC00)
    r.dev.set_attr(CTRL, U.KVM_DEV_XIVE_RESET, None)
    assert r.eq(0)["qshift"] == 0
    assert r.dev.sources[1].act_priority == U.MASKED
    assert r.esb_load(1, 0x800) == 1
    assert r.esb_load(2, 0x800) == 2


def test_eq_sync_marks_queue_pages_dirty(r):
    r.queue(1)
    r.ram.dirty_pages.clear()
    r.dev.set_attr(CTRL, U.KVM_DEV_XIVE_EQ_SYNC, 0)
    assert r.ram.dirty_pages == set(range((QPAGE + 0x10000) >> 12, (QPAGE + 0x20000) >> 12))


def test_source_sync(r):
    with pytest.raises(KvmError) as e:
        r.dev.set_attr(SYNC, 0x4000)
    assert err(e) == errno.ENOENT
    r.dev.set_attr(SRC, 0x4001, 0)
    with pytest.raises(KvmError) as e:
        r.dev.set_attr(SYNC, 0x4000)
    assert err(e) == errno.EINVAL
    r.dev.set_attr(SYNC, 0x4001)


# --- KVM_REG_PPC_VP_STATE -----------------------------------------------------------------------------------


def test_vp_state_errors():
    g = Rig(connect=False)
    v = g.vm.vcpus[0]
    with pytest.raises(KvmError) as e:
        v.get_one_reg(U.KVM_REG_PPC_VP_STATE)
    assert err(e) == errno.ENXIO
    v.enable_cap(U.KVM_CAP_PPC_IRQ_XIVE, (g.dev.fd, 0))
    with pytest.raises(KvmError) as e:
        v.get_one_reg(U.KVM_REG_PPC | U.KVM_REG_SIZE_U64 | 0x8E)
    assert err(e) == errno.EINVAL
    # ICP_STATE of a native vCPU: kvmppc_xive_get_icp reads its zeroed CPPR/MFRR; a set meets a pushed context
    assert U.icp_state_decode(int.from_bytes(v.get_one_reg(U.KVM_REG_PPC_ICP_STATE), "little")) == (0, 0, 0, 0xFF)
    with pytest.raises(KvmError) as e:
        v.set_one_reg(U.KVM_REG_PPC_ICP_STATE, 0)
    assert err(e) == errno.EIO
    with pytest.raises(KvmError) as e:
        v.set_one_reg(U.KVM_REG_PPC_VP_STATE, bytes(16))  # context pushed (vCPU running)
    assert err(e) == errno.EBUSY
    v.pull()
    with pytest.raises(KvmError) as e:
        v.set_one_reg(U.KVM_REG_PPC_VP_STATE, bytes(15))
    assert err(e) == errno.EFAULT


def test_vp_state_save_restore_and_backlog(r):
    v0 = r.vm.vcpus[0]
    r.queue(0)
    r.tima.store(OS + 0x11, 1, 0xFF, cpu=0)
    r.source(5, eisn=0x55)
    r.esb_load(5, 0xC00)
    assert U.KvmPpcVpState.parse(v0.get_one_reg(U.KVM_REG_PPC_VP_STATE)).w01 == 0x00FF0000FF0000FF
    v0.pull()  # guest exit: the event now lands in the NVT backlog
    r.trigger(5)
    assert r.lines == [] and r.ram.read_u32(QPAGE) == 0x80000055
    state = U.KvmPpcVpState.parse(v0.get_one_reg(U.KVM_REG_PPC_VP_STATE))
    assert state.w01 == 0x00FF0200FF0000FF  # IPB 0x02 (priority 6) merged from the NVT
    v0.set_one_reg(U.KVM_REG_PPC_VP_STATE, (0x0007_0000_FF00_0000 << 64))  # CPPR 7, backlog dropped
    v0.set_one_reg(U.KVM_REG_PPC_VP_STATE, U.KvmPpcVpState.build(dict(w01=0x00FF0200FF000000, unused=0)))
    v0.push()
    assert r.lines == [(0, True)]
    assert r.tima.load(OS + 0x810, 2, cpu=0) == 0x8006


def test_push_merges_the_backlog(r):
    v1 = r.vm.vcpus[1]
    r.queue(1)
    r.tima.store(OS + 0x11, 1, 0xFF, cpu=1)
    r.source(4, server=1, eisn=0x44)
    r.esb_load(4, 0xC00)
    v1.pull()
    v1.pull()  # already pulled: nothing
    r.trigger(4)
    assert r.lines == [] and r.dev.presenter.backlog == {r.dev.vp_base + 1: 0x02}
    v1.push()
    assert r.lines == [(1, True)] and r.dev.presenter.backlog == {}
    assert r.tima.load(OS + 0x10, 8, cpu=1) == 0x80FF0200FF000006  # NSR EO, IPB 0x02, PIPR 6
    v1.push()  # already pushed: nothing
    assert r.lines == [(1, True)]


def test_enable_cap_argument_forms():
    g = Rig(n=2, connect=False)
    g.vm.vcpus[0].enable_cap(U.KVM_CAP_PPC_IRQ_XIVE, g.dev.fd, 0)
    g.vm.vcpus[1].enable_cap(U.KVM_CAP_PPC_IRQ_XIVE, [g.dev.fd, 1])
    assert [v.xive_vcpu.server_num for v in g.vm.vcpus] == [0, 1]
    with pytest.raises(KvmError) as e:
        g.vm.vcpus[0].enable_cap(U.KVM_CAP_PPC_IRQ_XIVE, "fd", 0)
    assert err(e) == errno.EFAULT


def test_mmap_default_lengths(r):
    assert r.dev.mmap(U.KVM_XIVE_TIMA_PAGE_OFFSET).npages == 4
    assert r.dev.mmap(U.KVM_XIVE_ESB_PAGE_OFFSET).npages == 2 * U.KVMPPC_XIVE_NR_IRQS
    with pytest.raises(KvmError) as e:
        r.dev.mmap(2)
    assert err(e) == errno.EINVAL


# --- nothing but KvmError, and an error changes nothing -----------------------------------------------------

VALUES = st.one_of(
    st.none(), st.integers(-(1 << 70), 1 << 70), st.binary(max_size=80), st.text(max_size=3),
    st.dictionaries(st.sampled_from(["flags", "qshift", "qaddr", "qtoggle", "qindex", "bogus"]),
                    st.integers(-5, 1 << 40), max_size=5),
)  # fmt: skip


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(group=st.integers(0, 7), attr=st.one_of(st.integers(0, 0x3000), st.integers(-3, 1 << 64)), value=VALUES)
def test_fuzzed_attributes_raise_only_kvm_errors(r, group, attr, value):
    r.queue(0)
    before = r.snapshot()
    try:
        r.dev.set_attr(group, attr, value)
    except KvmError:
        assert r.snapshot() == before
    try:
        r.dev.get_attr(group, attr)
    except KvmError:
        pass
