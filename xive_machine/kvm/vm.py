"""The KVM host, VM and vCPU objects the XIVE-native device lives in: fds, capabilities, ONE_REG, ENABLE_CAP.

Only what the XIVE device needs is modelled: `KVM_CHECK_EXTENSION`, `KVM_CREATE_DEVICE`, the proposed
`KVM_DESTROY_DEVICE`, and on each vCPU `KVM_ENABLE_CAP(KVM_CAP_PPC_IRQ_XIVE)`, `KVM_GET/SET_ONE_REG`.
Error codes follow `kvm_ioctl_create_device` (virt/kvm/kvm_main.c), `kvm_vcpu_ioctl_enable_cap` and
`kvmppc_get/set_one_reg` (arch/powerpc/kvm/powerpc.c, book3s.c).
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from xive_machine.errors import KvmError
from xive_machine.kvm.device import KvmDevice
from xive_machine.kvm.uapi import KVM_CAP_PPC_IRQ_XIVE, KVM_CREATE_DEVICE_TEST, KVM_DEV_TYPE_XIVE
from xive_machine.memory.ram import GuestRam

KVMPPC_IRQ_DEFAULT = 0
KVMPPC_IRQ_MPIC = 1
KVMPPC_IRQ_XICS = 2
KVMPPC_IRQ_XIVE = 3


@dataclass(frozen=True)
class KvmHostConfig:
    """Host kernel build and firmware facts the uAPI depends on (a distro ppc64le kernel, NR_CPUS = 2048)."""

    xive_enabled: bool = True  # xive_enabled() && kvmppc_xive_native_supported(): CAP and device offered
    max_vcpus: int = 2048  # KVM_MAX_VCPUS (= NR_CPUS)
    max_smt_threads: int = 8  # MAX_SMT_THREADS
    vp_blocks: int = 28  # VP blocks the firmware can hand out at once (xive_native_alloc_vp_block)

    @property
    def max_vcpu_ids(self) -> int:
        """KVM_MAX_VCPU_IDS = MAX_SMT_THREADS * KVM_MAX_VCORES."""
        return self.max_smt_threads * self.max_vcpus


class KvmHost:
    """One host process: the fd table shared by every VM opened through it, and the host XIVE resources."""

    VP_BLOCK_BASE = 0x10000  # first VP id handed to guests; blocks are KVM_MAX_VCPU_IDS apart

    def __init__(self, config: KvmHostConfig | None = None) -> None:
        self.config = config or KvmHostConfig()
        self.fds: dict[int, Any] = {}
        self._next_fd = 10
        self._vp_used: set[int] = set()
        self._next_hw_irq = 0x100

    def alloc_fd(self, obj: Any) -> int:
        fd = self._next_fd
        self._next_fd += 1
        self.fds[fd] = obj
        return fd

    def free_fd(self, fd: int) -> None:
        self.fds.pop(fd, None)

    def alloc_vp_block(self) -> int | None:
        """`xive_native_alloc_vp_block`: a VP base, or None when the firmware has none left."""
        for slot in range(self.config.vp_blocks):
            if slot not in self._vp_used:
                self._vp_used.add(slot)
                return self.VP_BLOCK_BASE + slot * self.config.max_vcpu_ids
        return None

    def free_vp_block(self, vp_base: int) -> None:
        self._vp_used.discard((vp_base - self.VP_BLOCK_BASE) // self.config.max_vcpu_ids)

    def alloc_hw_irq(self) -> int:
        """`xive_native_alloc_irq`: a host hardware interrupt number."""
        n = self._next_hw_irq
        self._next_hw_irq += 1
        return n


class KvmVcpu:
    """A vCPU fd. `index` is the machine's vCPU index (the IrqLine argument), `vcpu_id` the KVM vcpu id."""

    def __init__(self, vm: KvmVm, index: int, vcpu_id: int) -> None:
        self.vm = vm
        self.index = index
        self.vcpu_id = vcpu_id
        self.irq_type = KVMPPC_IRQ_DEFAULT
        self.xive_vcpu: Any = None  # kvmppc_xive_vcpu while connected

    def enable_cap(self, cap: int, *args: Any, flags: int = 0) -> None:
        """KVM_ENABLE_CAP on the vCPU fd: `enable_cap(KVM_CAP_PPC_IRQ_XIVE, dev.fd, server)` (the args may
        also be given as one tuple, as `struct kvm_enable_cap.args`)."""
        if len(args) == 1 and isinstance(args[0], tuple | list):
            args = tuple(args[0])
        if flags:
            raise KvmError(errno.EINVAL, "cap flags")
        if cap != KVM_CAP_PPC_IRQ_XIVE:
            raise KvmError(errno.EINVAL, f"capability {cap} cannot be enabled")
        if len(args) > 4 or not all(isinstance(x, int) for x in args):
            raise KvmError(errno.EFAULT, "struct kvm_enable_cap")
        a = [x & 0xFFFFFFFFFFFFFFFF for x in args] + [0] * (4 - len(args))
        dev = self.vm.host.fds.get(a[0])
        if dev is None:
            raise KvmError(errno.EBADF, f"fd {a[0]}")
        if not self.vm.host.config.xive_enabled:
            raise KvmError(errno.ENXIO, "host XIVE disabled")
        connect = getattr(dev, "connect_vcpu", None)
        if connect is None:
            raise KvmError(errno.EPERM, "fd is not a KVM device")
        connect(self, a[1] & 0xFFFFFFFF)

    def get_one_reg(self, reg_id: int) -> bytes:
        dev = self._xive_reg(reg_id)
        return dev.get_vp(self)

    def set_one_reg(self, reg_id: int, value: bytes | bytearray | int | None) -> None:
        dev = self._xive_reg(reg_id)
        dev.set_vp(self, value)

    def _xive_reg(self, reg_id: int) -> Any:
        from xive_machine.kvm.uapi import KVM_REG_PPC_VP_STATE

        if reg_id != KVM_REG_PPC_VP_STATE:
            raise KvmError(errno.EINVAL, f"ONE_REG {reg_id:#x}")
        if self.xive_vcpu is None or not self.vm.host.config.xive_enabled:
            raise KvmError(errno.ENXIO, "vCPU has no XIVE context")
        return self.xive_vcpu.device

    def pull(self) -> None:
        """Guest exit: the OS context leaves the thread (`kvmppc_xive_pull_vcpu`)."""
        if self.xive_vcpu is not None:
            self.xive_vcpu.device.pull_vcpu(self)

    def push(self) -> None:
        """Guest entry: the OS context is pushed back, pending backlog merged (`kvmppc_xive_push_vcpu`)."""
        if self.xive_vcpu is not None:
            self.xive_vcpu.device.push_vcpu(self)


class KvmVm:
    """A VM fd over a machine-like object (`.ram`, `.nr_cpus`, `.irq_line(cpu, asserted)`)."""

    def __init__(
        self,
        machine_like: Any = None,
        *,
        host: KvmHost | None = None,
        ram: GuestRam | None = None,
        nr_cpus: int | None = None,
        line: Callable[[int, bool], None] | None = None,
    ) -> None:
        self.host = host or KvmHost()
        self.ram: GuestRam = ram if ram is not None else machine_like.ram
        n = nr_cpus if nr_cpus is not None else getattr(machine_like, "nr_cpus", 1)
        if line is None:
            line = getattr(machine_like, "irq_line", None) or (lambda cpu, level: None)
        self.line = line
        self.emul_smt_mode = 1
        self.vcpus = [KvmVcpu(self, i, i) for i in range(n)]
        self.xive: Any = None  # kvm->arch.xive: the XIVE device attached to this VM

    def check_extension(self, cap: int) -> int:
        if cap == KVM_CAP_PPC_IRQ_XIVE:
            return 1 if self.host.config.xive_enabled else 0
        return 0

    def create_device(self, type_: int, flags: int = 0) -> KvmDevice | None:
        """KVM_CREATE_DEVICE. With KVM_CREATE_DEVICE_TEST only checks the type and returns None."""
        if not isinstance(flags, int):
            raise KvmError(errno.EFAULT, "unreadable struct kvm_create_device")
        if type_ != KVM_DEV_TYPE_XIVE or not self.host.config.xive_enabled:
            raise KvmError(errno.ENODEV, f"device type {type_}")
        if flags & KVM_CREATE_DEVICE_TEST:
            return None
        from xive_machine.kvm.xive_native import KvmXiveNative

        return KvmXiveNative.create(self)

    def destroy_device(self, fd: int) -> None:
        """The proposed (unmerged) KVM_DESTROY_DEVICE ioctl: same effect as close + munmap of everything."""
        dev = self.host.fds.get(fd)
        if not isinstance(dev, KvmDevice):
            raise KvmError(errno.EBADF, f"fd {fd}")
        if getattr(dev, "vm", None) is not self:
            raise KvmError(errno.EPERM, "device of another VM")
        dev.destroy()
