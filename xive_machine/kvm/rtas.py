"""The kernel's own RTAS services (arch/powerpc/kvm/book3s_rtas.c): the four XICS source calls KVM answers
without leaving the kernel once userspace has named their tokens (KVM_PPC_RTAS_DEFINE_TOKEN), as QEMU does
for the in-kernel XICS.

Each service checks its argument counts (-3, "parameter error"), calls the VM's interrupt-controller device
and turns any errno into -3; rets are returned (status first), the caller writes at most `nret` of them.
When the VM has no XICS-on-XIVE device the device calls fail with ENODEV, hence -3 as well. A refused call
leaves the note the emulated XICS leaves (the kernel's pr_devel), so both backends trace the same.
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


def _note(vm: KvmVm, what: str, **fields: Any) -> None:
    trace = getattr(vm.xive, "trace", None)
    if trace is not None:
        trace.emit("note", ctl="xics", guest_error=what, **fields)


def _counts(vm: KvmVm, name: str, args: list[int], nret: int, nargs_want: int, nret_want: int) -> bool:
    if len(args) == nargs_want and nret == nret_want:
        return True
    _note(vm, f"{name}: nargs {len(args)} nret {nret}, expected {nargs_want}/{nret_want}")
    return False


def _refused(vm: KvmVm, name: str, irq: int) -> list[int]:
    dev = vm.xive
    if dev is not None and hasattr(dev, "find_source") and dev.find_source(irq) is None:
        _note(vm, f"{name}: irq {irq:#x} is not an ICS source")
    return [RTAS_PARAM_ERROR]


def _device(vm: KvmVm) -> Any:
    """`kvm->arch.xive` when it serves XICS (the kernel's `if (!xive) return -ENODEV`)."""
    dev = vm.xive
    if dev is None or not hasattr(dev, "set_xive"):
        raise KvmError(errno.ENODEV, "no in-kernel XICS")
    return dev


def kvm_rtas_set_xive(vm: KvmVm, args: list[int], nret: int) -> list[int]:
    """(irq, server, priority) -> status."""
    if not _counts(vm, "ibm,set-xive", args, nret, 3, 1):
        return [RTAS_PARAM_ERROR]
    irq, server, priority = args
    try:
        _device(vm).set_xive(irq, server, priority)
    except KvmError:
        if vm.xive is not None and vm.xive.find_source(irq) is not None:
            _note(vm, "ibm,set-xive: bad server or priority", irq=irq, server=server, priority=priority)
            return [RTAS_PARAM_ERROR]
        return _refused(vm, "ibm,set-xive", irq)
    return [RTAS_SUCCESS]


def kvm_rtas_get_xive(vm: KvmVm, args: list[int], nret: int) -> list[int]:
    """(irq) -> status, server, priority."""
    if not _counts(vm, "ibm,get-xive", args, nret, 1, 3):
        return [RTAS_PARAM_ERROR]
    try:
        server, priority = _device(vm).get_xive(args[0])
    except KvmError:
        return _refused(vm, "ibm,get-xive", args[0])
    return [RTAS_SUCCESS, server, priority]


def kvm_rtas_int_off(vm: KvmVm, args: list[int], nret: int) -> list[int]:
    """(irq) -> status."""
    if not _counts(vm, "ibm,int-off", args, nret, 1, 1):
        return [RTAS_PARAM_ERROR]
    try:
        _device(vm).int_off(args[0])
    except KvmError:
        return _refused(vm, "ibm,int-off", args[0])
    return [RTAS_SUCCESS]


def kvm_rtas_int_on(vm: KvmVm, args: list[int], nret: int) -> list[int]:
    """(irq) -> status."""
    if not _counts(vm, "ibm,int-on", args, nret, 1, 1):
        return [RTAS_PARAM_ERROR]
    try:
        _device(vm).int_on(args[0])
    except KvmError:
        return _refused(vm, "ibm,int-on", args[0])
    return [RTAS_SUCCESS]


KERNEL_RTAS: dict[str, Callable[[KvmVm, list[int], int], list[int]]] = {
    "ibm,set-xive": kvm_rtas_set_xive,
    "ibm,get-xive": kvm_rtas_get_xive,
    "ibm,int-off": kvm_rtas_int_off,
    "ibm,int-on": kvm_rtas_int_on,
}
"""The services `kvm_vm_ioctl_rtas_define_token` knows (rtas_handlers[] in book3s_rtas.c)."""
