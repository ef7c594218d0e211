"""A model of the Linux KVM XIVE-native device (KVM_DEV_TYPE_XIVE) with its real uAPI, and the sPAPR XIVE
backend that drives it the way QEMU's spapr_xive_kvm.c does.

uapi.py         constants, attribute words and `struct kvm_ppc_xive_eq` (construct, host byte order)
device.py       fds, attribute values as the uAPI passes them, mmap'd regions with a fault handler
vm.py           KvmHost, KvmVm (KVM_CREATE_DEVICE, the proposed KVM_DESTROY_DEVICE), KvmVcpu (ENABLE_CAP, ONE_REG)
xive_native.py  KvmXiveNative: attribute groups, ESB/TIMA fault handlers, pass-through, release
backend.py      KvmSpaprXive / make_kvm_xive: the InterruptController for `--irqchip kvm`
"""
