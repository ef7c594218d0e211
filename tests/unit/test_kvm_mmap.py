"""mmap of the KVM XIVE device: fault-in of TIMA and ESB pages, pass-through invalidation, release, destroy."""

from __future__ import annotations

import errno

import pytest
from test_kvm_xive_native import CFG, ESB, OS, QPAGE, SRC, Rig, err

from xive_machine.errors import KvmError
from xive_machine.kvm import uapi as U
from xive_machine.kvm.device import VmFault
from xive_machine.kvm.vm import KVMPPC_IRQ_DEFAULT
from xive_machine.kvm.xive_native import HwIrq


def test_mmap_offsets_and_sizes():
    g = Rig(connect=False)
    d = g.dev
    for pgoff, length in (
        (1, 1 << 16),
        (3, 1 << 16),
        (5, 1 << 16),
        (0, 5 << 16),
        (4, (2 * U.KVMPPC_XIVE_NR_IRQS + 1) << 16),
        (0, 0),
    ):
        with pytest.raises(KvmError) as e:
            d.mmap(pgoff, length)
        assert err(e) == errno.EINVAL
    for bad in (("4", 1 << 16), (4, "1"), (None, 1)):
        with pytest.raises(KvmError) as e:
            d.mmap(*bad)
        assert err(e) == errno.EINVAL
    assert d.mmap(4, 2 * U.KVMPPC_XIVE_NR_IRQS << 16).npages == 2 * U.KVMPPC_XIVE_NR_IRQS
    assert d.mmap(0, 1).npages == 1


def test_tima_only_os_page_faults_in():
    g = Rig()
    for page in (0, 1, 3):
        with pytest.raises(VmFault) as e:
            g.tima.load(page << 16, 8, cpu=0)
        assert e.value.errno == errno.EFAULT and e.value.pgoff == page
    assert g.tima.load(OS + 0x10, 8, cpu=0) == 0x00000000FF0000FF
    g.tima.store(OS + 0x11, 1, 5, cpu=1)
    assert g.tima.load(OS + 0x10, 4, cpu=1) == 0x00050000
    assert g.tima.faults == 4 and set(g.tima.pages) == {2}  # 3 refused + 1 inserted, once
    with pytest.raises(VmFault):
        g.tima.load(4 << 16, 8)  # beyond the 4-page mapping


def test_esb_pages_fault_on_first_touch_and_sigbus_for_unknown_sources():
    g = Rig()
    with pytest.raises(VmFault):
        g.esb_load(0x10, 0x800)  # no source block
    g.dev.set_attr(SRC, 0x11, 0)
    with pytest.raises(VmFault):
        g.esb_load(0x10, 0x800)  # block exists, source 0x10 not initialised
    assert g.esb_load(0x11, 0x800) == 1
    assert g.esb_load(0x11, 0xC00) == 1
    g.trigger(0x11)
    assert g.esb.faults == 4 and sorted(g.esb.pages) == [0x22, 0x23]
    assert g.esb_load(0x11, 0x800) == 2
    assert g.esb.faults == 4
    assert g.esb.load(0x11 << 17, 8) == (1 << 64) - 1  # load from a trigger page: all-ones


def test_passthrough_switch_invalidates_and_loses_nothing():
    g = Rig()
    g.queue(0)
    g.tima.store(OS + 0x11, 1, 0xFF, cpu=0)
    g.source(7, eisn=0x77)
    g.esb_load(7, 0xC00)
    g.trigger(7)  # event 1 in the EQ, PQ 10
    g.trigger(7)  # latched: PQ 11
    faults = g.esb.faults
    ipi = g.dev.sources[7].ipi
    dev_irq = HwIrq(0x900)
    g.dev.set_mapped(7, dev_irq)
    assert 0x0E not in g.esb.pages and 0x0F not in g.esb.pages
    assert ipi.pq == 1 and dev_irq.pq == 3  # IPI hard off, the device interrupt holds the guest's PQ
    assert g.esb_load(7, 0x000) == 1  # guest EOI lands on the device's EOI page: Q replays
    assert g.esb.faults == faults + 1
    assert g.ram.read_u32(QPAGE + 4) == 0x80000077  # the latched event is not lost
    assert g.esb_load(7, 0x000) == 0  # EOI of the replayed event: PQ 00
    dev_irq.set_level(True)  # the device's MSI, straight to the guest queue
    assert g.ram.read_u32(QPAGE + 8) == 0x80000077 and dev_irq.pq == 2
    g.trigger(7)  # the guest's trigger page is the device's now: Q latched there
    assert dev_irq.pq == 3 and ipi.pq == 1
    back = g.dev.clr_mapped(7)
    assert back is dev_irq and dev_irq.pq == 1 and ipi.pq == 3
    assert g.esb_load(7, 0x000) == 1  # the IPI replays the event latched on the device interrupt
    assert g.ram.read_u32(QPAGE + 12) == 0x80000077


def test_passthrough_replays_an_event_raised_before_the_switch():
    g = Rig()
    g.queue(0)
    g.source(8, eisn=0x88)
    g.esb_load(8, 0xC00)
    dev_irq = HwIrq(0x901)
    dev_irq.set_pq(0)
    dev_irq.trigger()  # raised while the host owned it (masked EAS): dropped, P set
    assert dev_irq.dropped == 1 and dev_irq.pq == 2
    g.dev.set_mapped(8, dev_irq)
    assert g.ram.read_u32(QPAGE) == 0x80000088 and dev_irq.pq == 2


def test_release_stops_pass_through_routing():
    g = Rig()
    g.queue(0)
    g.source(2, eisn=0x22)
    hw = HwIrq(0x904)
    g.dev.set_mapped(2, hw)
    hw.set_pq(0)
    g.esb.munmap()
    g.tima.munmap()
    g.dev.close()
    hw.trigger()
    assert hw.dropped == 1 and g.ram.read_u32(QPAGE) == 0


def test_passthrough_errors():
    g = Rig()
    hw = HwIrq(0x902)
    for irq in (U.KVMPPC_XIVE_NR_IRQS, 0x40):
        with pytest.raises(KvmError) as e:
            g.dev.set_mapped(irq, hw)
        assert err(e) == errno.EINVAL
    g.dev.set_attr(SRC, 0x40, 0)
    with pytest.raises(KvmError) as e:
        g.dev.clr_mapped(0x40)
    assert err(e) == errno.EINVAL
    g.dev.set_mapped(0x40, hw)
    with pytest.raises(KvmError) as e:
        g.dev.set_mapped(0x40, HwIrq(0x903))
    assert err(e) == errno.EINVAL
    with pytest.raises(KvmError) as e:
        g.dev.reset_mapped(U.KVMPPC_XIVE_NR_IRQS)
    assert err(e) == errno.EINVAL


def test_release_waits_for_fd_and_mappings():
    g = Rig()
    g.queue(0)
    d, vm = g.dev, g.vm
    d.close()
    for call in (
        lambda: d.set_attr(CFG, 0, 0),
        lambda: d.get_attr(U.KVM_DEV_XIVE_GRP_EQ_CONFIG, 0),
        lambda: d.has_attr(U.KVM_DEV_XIVE_GRP_CTRL, 1),
        lambda: d.mmap(0, 1 << 16),
        d.close,
    ):
        with pytest.raises(KvmError) as e:
            call()
        assert err(e) == errno.EBADF
    assert vm.xive is d and not d.released  # mappings still hold the file
    with pytest.raises(KvmError) as e:
        vm.create_device(U.KVM_DEV_TYPE_XIVE)
    assert err(e) == errno.EEXIST
    g.esb.munmap()
    g.tima.munmap()
    assert d.released and vm.xive is None
    assert all(v.irq_type == KVMPPC_IRQ_DEFAULT and v.xive_vcpu is None for v in vm.vcpus)
    assert d.presenter.tctxs == {}
    with pytest.raises(KvmError) as e:
        vm.vcpus[0].get_one_reg(U.KVM_REG_PPC_VP_STATE)
    assert err(e) == errno.ENXIO
    new = vm.create_device(U.KVM_DEV_TYPE_XIVE)
    vm.vcpus[0].enable_cap(U.KVM_CAP_PPC_IRQ_XIVE, (new.fd, 0))


def test_destroy_device_now():
    g = Rig()
    g.dev.set_attr(SRC, 3, 0)
    assert g.esb_load(3, 0x800) == 1
    other = Rig(n=1, host=g.vm.host)
    with pytest.raises(KvmError) as e:
        g.vm.destroy_device(other.dev.fd)
    assert err(e) == errno.EPERM
    with pytest.raises(KvmError) as e:
        g.vm.destroy_device(4242)
    assert err(e) == errno.EBADF
    g.vm.destroy_device(g.dev.fd)
    assert g.dev.released and g.vm.xive is None and g.dev.fd not in g.vm.host.fds
    with pytest.raises(VmFault):
        g.esb_load(3, 0x800)  # the mapping is gone with the device
    assert g.vm.create_device(U.KVM_DEV_TYPE_XIVE) is not None
    g.esb.munmap()  # harmless afterwards


def test_lost_fd_after_close_is_ebadf_for_enable_cap():
    g = Rig(connect=False)
    fd = g.dev.fd
    g.dev.close()
    with pytest.raises(KvmError) as e:
        g.vm.vcpus[0].enable_cap(U.KVM_CAP_PPC_IRQ_XIVE, (fd, 0))
    assert err(e) == errno.EBADF


def test_mapping_store_goes_to_the_right_page():
    g = Rig()
    g.queue(1)
    g.tima.store(OS + 0x11, 1, 0xFF, cpu=1)
    g.source(9, server=1, eisn=0x99)
    g.esb.store((9 << 17) + ESB + 0xC00, 8, 0)  # store to SET_PQ_00 on the management page
    assert g.esb_load(9, 0x800) == 0
    g.trigger(9)
    assert g.lines == [(1, True)] and g.ram.read_u32(QPAGE + 0x10000) == 0x80000099
