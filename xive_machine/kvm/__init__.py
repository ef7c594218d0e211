"""Models of the Linux KVM interrupt-controller devices of a POWER9 host, XIVE native (KVM_DEV_TYPE_XIVE) and
XICS-on-XIVE (KVM_DEV_TYPE_XICS), with their real uAPI, and the sPAPR backends that drive them the way QEMU's
spapr_xive_kvm.c and xics_kvm.c do (`--irqchip kvm`; the CAS switch releases one device, creates the other).

uapi.py          constants, attribute words, `struct kvm_ppc_xive_eq`, ONE_REG words (construct, host order)
device.py        fds, attribute values as the uAPI passes them, mmap'd regions with a fault handler
vm.py            KvmHost, KvmVm (KVM_CREATE_DEVICE, KVM_IRQ_LINE, RTAS tokens, the proposed KVM_DESTROY_DEVICE),
                 KvmVcpu (ENABLE_CAP, ONE_REG)
xive_native.py   KvmXiveNative: attribute groups, ESB/TIMA fault handlers, pass-through, release
xics_on_xive.py  KvmXicsOnXive: GRP_SOURCES/CTRL, ICP_STATE, in-kernel XICS hcalls and lines, release
xics_state.py    XICS source and presenter states <-> their uAPI words (both ends)
rtas.py          the kernel's RTAS services (ibm,set-xive & co.)
backend.py       KvmSpaprXive / make_kvm_xive: the XIVE InterruptController for `--irqchip kvm`
xics_backend.py  KvmSpaprXics / make_kvm_xics: the XICS InterruptController for `--irqchip kvm`
"""
