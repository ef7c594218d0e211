"""The KVM XICS-on-XIVE device model at the uAPI, without a guest: every attribute group and its errno, vCPU
connection, ICP_STATE, KVM_IRQ_LINE, the in-kernel hcalls and RTAS tokens, release."""

from __future__ import annotations

import errno

import pytest

from xive_machine.errors import KvmError
from xive_machine.hcalls.codes import H, Op
from xive_machine.kvm import uapi as U
from xive_machine.kvm.vm import KVMPPC_IRQ_DEFAULT, KVMPPC_IRQ_XICS, KvmHost, KvmHostConfig, KvmVm
from xive_machine.kvm.xics_on_xive import KvmXicsOnXive
from xive_machine.memory.ram import GuestRam

SRC, CTRL = U.KVM_DEV_XICS_GRP_SOURCES, U.KVM_DEV_XICS_GRP_CTRL
NR = U.KVM_DEV_XICS_NR_SERVERS
ICP = U.KVM_REG_PPC_ICP_STATE


def err(exc_info) -> int:
    return exc_info.value.errno


class Rig:
    """A VM with `n` vCPUs and a XICS device, connected in QEMU's order (NR_SERVERS, then every vCPU)."""

    def __init__(self, n: int = 2, connect: bool = True, host: KvmHost | None = None) -> None:
        self.lines: list[tuple[int, bool]] = []
        self.vm = KvmVm(ram=GuestRam(1 << 20), nr_cpus=n, line=lambda c, lv: self.lines.append((c, lv)),
                        host=host, timebase=lambda: 0x1234)
        self.dev = self.vm.create_device(U.KVM_DEV_TYPE_XICS)
        if connect:
            self.dev.set_attr(CTRL, NR, n)
            for v in self.vm.vcpus:
                v.enable_cap(U.KVM_CAP_IRQ_XICS, (self.dev.fd, v.vcpu_id))

    def source(self, irq: int, server: int = 0, prio: int = 5, **kw) -> None:
        self.dev.set_attr(SRC, irq, U.xics_source(server, prio, **kw))

    def word(self, irq: int) -> int:
        return int.from_bytes(self.dev.get_attr(SRC, irq), "little")

    def icp(self, cpu: int) -> tuple[int, int, int, int]:
        return U.icp_state_decode(int.from_bytes(self.vm.vcpus[cpu].get_one_reg(ICP), "little"))

    def hc(self, cpu: int, op: int, *args: int):
        return self.dev.xics_hcall(self.vm.vcpus[cpu], op, args + (0,) * (2 - len(args)))


@pytest.fixture
def r() -> Rig:
    return Rig()


# --- creation ---------------------------------------------------------------------------------------------


def test_create_device_rules():
    vm = KvmVm(ram=GuestRam(1 << 20), nr_cpus=1)
    assert vm.check_extension(U.KVM_CAP_IRQ_XICS) == 1 and vm.check_extension(U.KVM_CAP_PPC_RTAS) == 1
    assert vm.create_device(U.KVM_DEV_TYPE_XICS, U.KVM_CREATE_DEVICE_TEST) is None and vm.xive is None
    dev = vm.create_device(U.KVM_DEV_TYPE_XICS)
    assert isinstance(dev, KvmXicsOnXive) and dev.name == "kvm-xive" and vm.xive is dev
    assert vm.host.fds[dev.fd] is dev and dev.nr_servers == vm.host.config.max_vcpus
    for other in (U.KVM_DEV_TYPE_XICS, U.KVM_DEV_TYPE_XIVE):  # kvm->arch.xive is taken
        with pytest.raises(KvmError) as e:
            vm.create_device(other)
        assert err(e) == errno.EEXIST
    dev.close()
    assert dev.released and vm.xive is None and dev.fd not in vm.host.fds
    native = vm.create_device(U.KVM_DEV_TYPE_XIVE)
    with pytest.raises(KvmError) as e:
        vm.create_device(U.KVM_DEV_TYPE_XICS)
    assert err(e) == errno.EEXIST
    native.close()
    assert isinstance(vm.create_device(U.KVM_DEV_TYPE_XICS), KvmXicsOnXive)


def test_host_without_xive_has_no_xics_on_xive():
    """Without XIVE the kernel registers the old XICS emulation (book3s_xics.c) for the type: not modelled."""
    vm = KvmVm(ram=GuestRam(1 << 20), nr_cpus=1, host=KvmHost(KvmHostConfig(xive_enabled=False)))
    with pytest.raises(KvmError) as e:
        vm.create_device(U.KVM_DEV_TYPE_XICS)
    assert err(e) == errno.ENODEV


# --- attributes -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("group", "attr", "ok"), [
    (SRC, U.KVMPPC_XICS_FIRST_IRQ, True),
    (SRC, 0x1000, True),
    (SRC, U.KVMPPC_XICS_NR_IRQS - 1, True),
    (SRC, U.KVMPPC_XICS_FIRST_IRQ - 1, False),
    (SRC, U.KVMPPC_XICS_NR_IRQS, False),
    (SRC, 1 << 63, False),
    (CTRL, NR, True),
    (CTRL, 0, False),
    (CTRL, 2, False),
    (0, 0, False),
    (3, 0x1000, False),
    (0xFFFFFFFF, 0, False),
])
def test_has_attr(group, attr, ok):
    dev = Rig(connect=False).dev
    if ok:
        assert dev.has_attr(group, attr)
    else:
        with pytest.raises(KvmError) as e:
            dev.has_attr(group, attr)
        assert err(e) == errno.ENXIO


def test_set_get_attr_unknown_groups_and_ctrl():
    dev = Rig(connect=False).dev
    for group, attr in ((0, 0), (3, 0x1000), (CTRL, 2), (CTRL, 0)):
        with pytest.raises(KvmError) as e:
            dev.set_attr(group, attr, 1)
        assert err(e) == errno.ENXIO
    for group, attr in ((CTRL, NR), (0, 0), (7, 0x1000)):  # only GRP_SOURCES can be read
        with pytest.raises(KvmError) as e:
            dev.get_attr(group, attr)
        assert err(e) == errno.ENXIO
    with pytest.raises(KvmError) as e:
        dev.set_attr("group", 0, 1)  # an unreadable struct kvm_device_attr
    assert err(e) == errno.EFAULT


def test_nr_servers():
    g = Rig(n=2, connect=False)
    dev, cfg = g.dev, g.vm.host.config
    for value, code in ((None, errno.EFAULT), (b"\x01", errno.EFAULT), (0, errno.EINVAL),
                        (cfg.max_vcpu_ids + 1, errno.EINVAL)):
        with pytest.raises(KvmError) as e:
            dev.set_attr(CTRL, NR, value)
        assert err(e) == code
    dev.set_attr(CTRL, NR, cfg.max_vcpu_ids)
    assert dev.nr_servers == cfg.max_vcpus  # clamped
    dev.set_attr(CTRL, NR, (2).to_bytes(4, "little"))
    assert dev.nr_servers == 2
    g.vm.vcpus[0].enable_cap(U.KVM_CAP_IRQ_XICS, (dev.fd, 0))  # the VP block is allocated now
    with pytest.raises(KvmError) as e:
        dev.set_attr(CTRL, NR, 4)
    assert err(e) == errno.EBUSY and dev.nr_servers == 2


def test_source_errors_leave_the_device_unchanged(r):
    for irq in (0, 2, U.KVMPPC_XICS_FIRST_IRQ - 1, U.KVMPPC_XICS_NR_IRQS, -1):
        with pytest.raises(KvmError) as e:
            r.dev.set_attr(SRC, irq, 0)
        assert err(e) == errno.ENOENT
    for value in (None, b"\x00" * 7, "x"):
        with pytest.raises(KvmError) as e:
            r.dev.set_attr(SRC, 0x1000, value)
        assert err(e) == errno.EFAULT
    assert r.dev.blocks.by_id == {} and r.dev.src_count == 0
    with pytest.raises(KvmError) as e:
        r.dev.get_attr(SRC, 0x1000)  # no block
    assert err(e) == errno.ENOENT
    r.source(0x1000)
    with pytest.raises(KvmError) as e:
        r.dev.get_attr(SRC, 0x1001)  # block 4 exists, source 0x1001 was never set
    assert err(e) == errno.ENOENT
    with pytest.raises(KvmError) as e:
        r.dev.get_attr(SRC, U.KVMPPC_XICS_NR_IRQS + 5)
    assert err(e) == errno.ENOENT


def test_sources_round_trip(r):
    words = {
        0x1000: U.xics_source(1, 5),
        0x1001: U.xics_source(0, 6, masked=True, pending=True),  # MSI fired while masked
        0x1002: U.xics_source(1, 4, queued=True),  # MSI waiting for a resend
        0x1200: U.xics_source(0, 5, lsi=True, pending=True, presented=True),  # LSI held high, sent
        0x1201: U.xics_source(1, 0xFF, masked=True, lsi=True),  # int-off twice: saved priority 0xFF
        0x80010: U.xics_source(0, 3),  # another block
    }
    for irq, word in words.items():
        r.dev.set_attr(SRC, irq, word)
    r.dev.set_attr(SRC, 0x1000, U.u64(words[0x1000]))  # again, as bytes at attr.addr: still one source
    assert {irq: r.word(irq) for irq in words} == words
    assert r.dev.src_count == len(words) and sorted(r.dev.blocks.by_id) == [4, 0x200]
    assert len(r.dev.ipis) == len(words)  # each source got its host IPI, once
    r.source(0x1200, lsi=False)  # a source can change kind
    assert U.xics_source_decode(r.word(0x1200))["lsi"] is False


def test_set_source_restores_without_sending(r):
    """A pending source is loaded as it was; the presenter takes it at its next resend."""
    assert r.hc(1, Op.H_CPPR, 0xFF) == (H.SUCCESS,)
    r.source(0x1200, server=1, prio=5, lsi=True, pending=True)  # LSI asserted, not sent
    r.source(0x1000, server=1, prio=4, pending=True)  # an unmasked pending MSI is waiting for a resend
    assert r.lines == [] and r.icp(1) == (0xFF, 0, 0xFF, 0xFF)
    assert r.hc(1, Op.H_CPPR, 0xFF) == (H.SUCCESS,)  # XISR empty, CPPR not more favoured: resend
    assert r.lines == [(1, True)] and r.icp(1) == (0xFF, 0x1000, 0xFF, 4)  # the MSI wins on priority


# --- vCPUs ------------------------------------------------------------------------------------------------


def test_enable_cap_errors():
    g = Rig(n=3, connect=False)
    v0, v1, v2 = g.vm.vcpus
    d = g.dev
    d.set_attr(CTRL, NR, 2)
    other = KvmVm(ram=GuestRam(1 << 20), nr_cpus=1, host=g.vm.host)
    other_dev = other.create_device(U.KVM_DEV_TYPE_XICS)
    cases = [
        ((U.KVM_CAP_IRQ_XICS, d.fd, 0), dict(flags=1), errno.EINVAL),
        ((93, d.fd, 0), {}, errno.EINVAL),
        ((U.KVM_CAP_IRQ_XICS, 999, 0), {}, errno.EBADF),
        ((U.KVM_CAP_IRQ_XICS, d.fd, 2), {}, errno.EINVAL),  # server >= nr_servers
        ((U.KVM_CAP_PPC_IRQ_XIVE, d.fd, 0), {}, errno.EPERM),  # not a XIVE-native device
        ((U.KVM_CAP_IRQ_XICS, other_dev.fd, 0), {}, errno.EPERM),  # another VM's device
        ((U.KVM_CAP_IRQ_XICS, "fd", 0), {}, errno.EFAULT),
    ]
    for args, kw, code in cases:
        with pytest.raises(KvmError) as e:
            v0.enable_cap(*args, **kw)
        assert err(e) == code, args
    assert v0.irq_type == KVMPPC_IRQ_DEFAULT and d.vp_base is None
    v0.enable_cap(U.KVM_CAP_IRQ_XICS, d.fd, 1)
    assert v0.irq_type == KVMPPC_IRQ_XICS and v0.xive_vcpu.vp_id == d.vp_base + 1
    assert v0.xive_vcpu.server_num == 1 and d.icp_get(1) is v0.xive_vcpu.icp
    with pytest.raises(KvmError) as e:
        v0.enable_cap(U.KVM_CAP_IRQ_XICS, (d.fd, 0))
    assert err(e) == errno.EBUSY
    with pytest.raises(KvmError) as e:
        v1.enable_cap(U.KVM_CAP_IRQ_XICS, (d.fd, 1))
    assert err(e) == errno.EEXIST
    v1.enable_cap(U.KVM_CAP_IRQ_XICS, (d.fd, 0))


def test_xics_fd_refused_by_a_native_connect_and_back():
    vm = KvmVm(ram=GuestRam(1 << 20), nr_cpus=1)
    native = vm.create_device(U.KVM_DEV_TYPE_XIVE)
    with pytest.raises(KvmError) as e:
        vm.vcpus[0].enable_cap(U.KVM_CAP_IRQ_XICS, (native.fd, 0))
    assert err(e) == errno.EPERM


def test_no_vp_block_left():
    host = KvmHost(KvmHostConfig(vp_blocks=1))
    a = Rig(n=1, host=host)
    b = Rig(n=1, connect=False, host=host)
    with pytest.raises(KvmError) as e:
        b.vm.vcpus[0].enable_cap(U.KVM_CAP_IRQ_XICS, (b.dev.fd, 0))
    assert err(e) == errno.ENOSPC
    a.dev.close()  # release frees the VP block
    b.vm.vcpus[0].enable_cap(U.KVM_CAP_IRQ_XICS, (b.dev.fd, 0))


def test_icp_state(r):
    g = Rig(n=1, connect=False)
    with pytest.raises(KvmError) as e:
        g.vm.vcpus[0].get_one_reg(ICP)
    assert err(e) == errno.ENXIO  # no presenter yet
    with pytest.raises(KvmError) as e:
        g.vm.vcpus[0].set_one_reg(ICP, 0)
    assert err(e) == errno.ENXIO
    assert r.icp(0) == (0, 0, 0xFF, 0xFF)  # as KVM creates it: CPPR 0, MFRR 0xFF
    v = r.vm.vcpus[1]
    v.set_one_reg(ICP, U.icp_state(0xFF, 0x1100, 0xFF, 5))  # a latched source: the line goes up
    assert r.icp(1) == (0xFF, 0x1100, 0xFF, 5) and r.lines == [(1, True)]
    assert r.dev.vm.vcpus[1].xive_vcpu.icp.xirr == 0xFF001100
    v.set_one_reg(ICP, U.u64(U.icp_state(5, 0, 4, 0xFF)))  # bytes at reg.addr; nothing latched: line down
    assert r.icp(1) == (5, 0, 4, 0xFF) and r.lines[-1] == (1, False)
    with pytest.raises(KvmError) as e:
        v.set_one_reg(ICP, None)
    assert err(e) == errno.EFAULT
    with pytest.raises(KvmError) as e:
        v.get_one_reg(U.KVM_REG_PPC_VP_STATE)  # a XICS vCPU has no XIVE-native context
    assert err(e) == errno.EPERM


# --- in-kernel paths ---------------------------------------------------------------------------------------


def test_irq_line(r):
    vm = KvmVm(ram=GuestRam(1 << 20), nr_cpus=1)
    with pytest.raises(KvmError) as e:
        vm.irq_line(0x1000, U.KVM_INTERRUPT_SET)
    assert err(e) == errno.ENXIO  # no in-kernel irqchip
    for irq in (0x1000, 0x1002):  # no source block yet; then a block, but that source was never set
        with pytest.raises(KvmError) as e:
            r.vm.irq_line(irq, U.KVM_INTERRUPT_SET)
        assert err(e) == errno.EINVAL
        r.source(0x1001, server=1, prio=5)
    r.hc(1, Op.H_CPPR, 0xFF)
    r.vm.irq_line(0x1001, U.KVM_INTERRUPT_UNSET)  # an MSI going low: nothing
    assert r.lines == []
    r.vm.irq_line(0x1001, U.KVM_INTERRUPT_SET)
    assert r.lines == [(1, True)] and r.hc(1, Op.H_XIRR) == (H.SUCCESS, 0xFF001001)
    r.source(0x1200, server=1, prio=4, lsi=True)
    r.vm.irq_line(0x1200, U.KVM_INTERRUPT_SET_LEVEL)
    assert r.hc(1, Op.H_XIRR) == (H.SUCCESS, 0x05001200)
    assert r.hc(1, Op.H_EOI, 0x05001200) == (H.SUCCESS,)  # still high: sent again
    assert r.hc(1, Op.H_XIRR) == (H.SUCCESS, 0x05001200)
    r.vm.irq_line(0x1200, U.KVM_INTERRUPT_UNSET)
    assert r.hc(1, Op.H_EOI, 0xFF001200) == (H.SUCCESS,) and r.hc(1, Op.H_XIRR) == (H.SUCCESS, 0xFF000000)
    r.vm.irq_line(0x1200, U.KVM_INTERRUPT_SET)  # an edge on an LSI: sent once, not held
    assert r.hc(1, Op.H_XIRR) == (H.SUCCESS, 0xFF001200)
    assert r.hc(1, Op.H_EOI, 0xFF001200) == (H.SUCCESS,) and r.hc(1, Op.H_XIRR) == (H.SUCCESS, 0xFF000000)


def test_in_kernel_hcalls(r):
    g = Rig(n=2, connect=False)
    assert g.hc(0, Op.H_XIRR) is None  # not in XICS mode: H_TOO_HARD, userspace answers
    assert r.hc(0, Op.H_XIRR) == (H.SUCCESS, 0)
    assert r.hc(0, Op.H_CPPR, 0x1FF) == (H.SUCCESS,)  # narrowed to a byte
    assert r.hc(0, Op.H_IPI, 1, 5) == (H.SUCCESS,) and r.lines == []  # CPPR 0 on server 1
    assert r.hc(0, Op.H_IPOLL, 1) == (H.SUCCESS, 0, 5)
    assert r.hc(0, Op.H_IPI, 0, 0x105) == (H.SUCCESS,) and r.lines == [(0, True)]
    assert r.hc(0, Op.H_IPOLL, (1 << 32) | 0) == (H.SUCCESS, 0xFF000002, 5)  # the server is a C int
    assert r.hc(0, Op.H_XIRR_X) == (H.SUCCESS, 0xFF000002, 0x1234)  # the VM's timebase
    assert r.hc(0, Op.H_IPI, 0, 0xFF) == (H.SUCCESS,) and r.hc(0, Op.H_EOI, 0xFF000002) == (H.SUCCESS,)
    for op in (Op.H_IPI, Op.H_IPOLL):
        assert r.hc(0, op, 7, 0) == (H.PARAMETER,)
        assert r.hc(0, op, 0xFFFFFFFF, 0) == (H.PARAMETER,)  # -1
    assert r.hc(0, Op.H_RANDOM) == (H.UNSUPPORTED,)


def test_rtas_tokens_and_services(r):
    vm = r.vm
    for name, token, code in (("ibm,foo", 0x2000, errno.ENOENT), ("ibm,set-xive", 0, errno.ENOENT)):
        with pytest.raises(KvmError) as e:
            vm.define_rtas_token(name, token)
        assert err(e) == code
    assert vm.rtas_call(0x200A, [0x1000, 0, 5], 1) is None  # not defined: QEMU serves it
    vm.define_rtas_token("ibm,set-xive", 0x200A)
    vm.define_rtas_token("ibm,get-xive", 0x200B)
    with pytest.raises(KvmError) as e:
        vm.define_rtas_token("ibm,set-xive", 0x200A)
    assert err(e) == errno.EEXIST
    r.source(0x1000)
    assert vm.rtas_call(0x200A, [0x1000, 1, 6], 1) == [0]
    assert vm.rtas_call(0x200B, [0x1000], 3) == [0, 1, 6]
    assert vm.rtas_call(0x200A, [0x1000, 1], 1) == [-3]  # counts
    assert vm.rtas_call(0x200A, [0x1000, 9, 6], 1) == [-3]  # no such server
    assert vm.rtas_call(0x200A, [0x1000, 1, 0x100], 1) == [-3]  # priority
    assert vm.rtas_call(0x200A, [0x5000, 1, 6], 1) == [-3]  # no source block
    assert vm.rtas_call(0x200B, [0x1000], 3) == [0, 1, 6]  # refusals changed nothing
    vm.define_rtas_token("ibm,set-xive", 0)
    assert vm.rtas_call(0x200A, [0x1000, 1, 6], 1) is None
    r.dev.close()
    assert vm.rtas_call(0x200B, [0x1000], 3) == [-3]  # token still defined, no device: ENODEV


# --- release ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["close", "destroy"])
def test_release_clears_presenters(how):
    g = Rig(n=2)
    g.source(0x1000, server=1)
    g.vm.vcpus[1].set_one_reg(ICP, U.icp_state(0xFF, 0x1000, 0xFF, 5))
    fd = g.dev.fd
    if how == "close":
        g.dev.close()
    else:
        g.vm.destroy_device(fd)
    assert g.dev.released and g.vm.xive is None and g.lines[-1] == (1, False)
    assert all(v.irq_type == KVMPPC_IRQ_DEFAULT and v.xive_vcpu is None for v in g.vm.vcpus)
    assert g.dev.blocks.by_id == {} and g.dev.vp_base is None and not g.vm.host._vp_used
    for call in (lambda: g.dev.set_attr(SRC, 0x1000, 0), lambda: g.dev.get_attr(SRC, 0x1000),
                 lambda: g.dev.has_attr(CTRL, NR), lambda: g.vm.vcpus[0].enable_cap(U.KVM_CAP_IRQ_XICS, (fd, 0))):
        with pytest.raises(KvmError) as e:
            call()
        assert err(e) == errno.EBADF  # a set (or anything) on a released device
    with pytest.raises(KvmError) as e:
        g.vm.vcpus[0].get_one_reg(ICP)
    assert err(e) == errno.ENXIO
    with pytest.raises(KvmError) as e:
        g.vm.irq_line(0x1000, U.KVM_INTERRUPT_SET)
    assert err(e) == errno.ENXIO
    native = g.vm.create_device(U.KVM_DEV_TYPE_XIVE)  # the CAS switch: the other device takes the vCPUs
    for v in g.vm.vcpus:
        v.enable_cap(U.KVM_CAP_PPC_IRQ_XIVE, (native.fd, v.vcpu_id))
    assert native.vp_base is not None


def test_describe(r):
    r.source(0x1200, server=1, lsi=True)
    text = r.dev.describe()
    assert text.startswith("kvm-xive fd") and "source 0x1200 LSI server 1 prio 05" in text
    assert "vcpu 1 server 1" in text


def test_source_with_an_unknown_server_is_accepted_and_rejects(r):
    """xive_set_source does not check the server (a failed targeting leaves the source alone): the word is
    kept, and an event finds no presenter, so it waits as rejected (QUEUED) with no line raised."""
    r.source(0x1000, server=99, prio=5)
    assert U.xics_source_decode(r.word(0x1000))["server"] == 99
    r.vm.irq_line(0x1000, U.KVM_INTERRUPT_SET)
    assert r.lines == [] and U.xics_source_decode(r.word(0x1000))["queued"]
    assert r.vm.rtas_call(0x200A, [0x1000, 99, 5], 1) is None  # (no token defined: QEMU would answer)
    r.vm.define_rtas_token("ibm,set-xive", 0x200A)
    assert r.vm.rtas_call(0x200A, [0x1000, 99, 5], 1) == [-3]  # RTAS does check it
    assert r.vm.rtas_call(0x200A, [0x1000, 1, 5], 1) == [0]
    assert r.hc(1, Op.H_CPPR, 0xFF) == (H.SUCCESS,) and r.lines == [(1, True)]  # the resend finds server 1
