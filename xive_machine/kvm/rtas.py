"""The kernel's own RTAS services (arch/powerpc/kvm/book3s_rtas.c): the four XICS source calls KVM answers
without leaving the kernel once userspace has named their tokens (KVM_PPC_RTAS_DEFINE_TOKEN), as QEMU does
for the in-kernel XICS.

Each service checks its argument counts (-3, "parameter error"), calls the VM's interrupt-controller device
and turns any errno into -3; rets are returned (status first), the caller writes at most `nret` of them.
When the VM has no XICS-on-XIVE device the device calls fail with ENODEV, hence -3 as well.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from xive_machine.errors import KvmError

if TYPE_CHECKING:
    from xive_machine.kvm.vm import KvmVm

RTAS_PARAM_ERROR = -3
RTAS_SUCCESS = 0


def _device(vm: KvmVm) -> Any:
    """`kvm->arch.xive` when it serves XICS (the kernel's `if (!xive) return -ENODEV`)."""
    dev = vm.xive
    if dev is None or not hasattr(dev, "set_xive"):
        raise KvmError(errno.ENODEV, "no in-kernel XICS")
    return dev


def kvm_rtas_set_xive(vm: KvmVm, args: list[int], nret: int) -> list[int]:
    """(irq, server, priority) -> status."""
    if len(args) != 3 or nret != 1:
        return [RTAS_PARAM_ERROR]
    try:
        _device(vm).set_xive(args[0], args[1], args[2])
    except KvmError:
        return [RTAS_PARAM_ERROR]
    return [RTAS_SUCCESS]


def kvm_rtas_get_xive(vm: KvmVm, args: list[int], nret: int) -> list[int]:
    """(irq) -> status, server, priority."""
    if len(args) != 1 or nret != 3:
        return [RTAS_PARAM_ERROR]
    try:
        server, priority = _device(vm).get_xive(args[0])
    except KvmError:
        return [RTAS_PARAM_ERROR]
    return [RTAS_SUCCESS, server, priority]


def kvm_rtas_int_off(vm: KvmVm, args: list[int], nret: int) -> list[int]:
    """(irq) -> status."""
    if len(args) != 1 or nret != 1:
        return [RTAS_PARAM_ERROR]
    try:
        _device(vm).int_off(args[0])
    except KvmError:
        return [RTAS_PARAM_ERROR]
    return [RTAS_SUCCESS]


def kvm_rtas_int_on(vm: KvmVm, args: list[int], nret: int) -> list[int]:
    """(irq) -> status."""
    if len(args) != 1 or nret != 1:
        return [RTAS_PARAM_ERROR]
    try:
        _device(vm).int_on(args[0])
    except KvmError:
        return [RTAS_PARAM_ERROR]
    return [RTAS_SUCCESS]


KERNEL_RTAS: dict[str, Callable[[KvmVm, list[int], int], list[int]]] = {
    "ibm,set-xive": kvm_rtas_set_xive,
    "ibm,get-xive": kvm_rtas_get_xive,
    "ibm,int-off": kvm_rtas_int_off,
    "ibm,int-on": kvm_rtas_int_on,
}
"""The services `kvm_vm_ioctl_rtas_define_token` knows (rtas_handlers[] in book3s_rtas.c)."""
