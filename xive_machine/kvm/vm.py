"""The KVM host, VM and vCPU objects the interrupt-controller devices live in: fds, capabilities, ONE_REG,
ENABLE_CAP, KVM_IRQ_LINE, in-kernel RTAS tokens.

Only what the XIVE-native and XICS-on-XIVE devices need is modelled: `KVM_CHECK_EXTENSION`,
`KVM_CREATE_DEVICE`, the proposed `KVM_DESTROY_DEVICE`, `KVM_IRQ_LINE`, `KVM_PPC_RTAS_DEFINE_TOKEN`, and on
each vCPU `KVM_ENABLE_CAP(KVM_CAP_PPC_IRQ_XIVE / KVM_CAP_IRQ_XICS)`, `KVM_GET/SET_ONE_REG` (VP_STATE,
ICP_STATE). Error codes follow `kvm_ioctl_create_device`, `kvm_vm_ioctl_irq_line` (virt/kvm/kvm_main.c),
`kvm_vcpu_ioctl_enable_cap`, `kvmppc_get/set_one_reg` (arch/powerpc/kvm/powerpc.c, book3s.c) and
`kvm_vm_ioctl_rtas_define_token` (book3s_rtas.c).

The host is a POWER9 running XIVE natively (`xics_on_xive()`): KVM_DEV_TYPE_XICS is then served by the
XICS-on-XIVE device (book3s_xive.c). With `xive_enabled=False` the kernel would register the old XICS
emulation (book3s_xics.c) for that type instead; that device is not modelled (ENODEV here).
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from xive_machine.errors import KvmError
from xive_machine.kvm.device import KvmDevice
from xive_machine.kvm.uapi import (
    KVM_CAP_IRQ_XICS,
    KVM_CAP_PPC_IRQ_XIVE,
    KVM_CAP_PPC_RTAS,
    KVM_CREATE_DEVICE_TEST,
    KVM_DEV_TYPE_XICS,
    KVM_DEV_TYPE_XIVE,
    KVM_REG_PPC_ICP_PPRI_SHIFT,
    KVM_REG_PPC_ICP_STATE,
    KVM_REG_PPC_VP_STATE,
    HostU64,
)
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


def check_nr_servers(config: KvmHostConfig, nr_servers: int, vp_allocated: bool) -> int:
    """`kvmppc_xive_set_nr_servers` for both XIVE-backed devices: EINVAL for 0 or > KVM_MAX_VCPU_IDS, EBUSY
    once the VP block exists; returns the value to keep (clamped to KVM_MAX_VCPUS)."""
    if not nr_servers or nr_servers > config.max_vcpu_ids:
        raise KvmError(errno.EINVAL, f"nr_servers {nr_servers}")
    if vp_allocated:
        raise KvmError(errno.EBUSY, "VP block already allocated")
    return min(nr_servers, config.max_vcpus)


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
        """KVM_ENABLE_CAP on the vCPU fd: `enable_cap(KVM_CAP_PPC_IRQ_XIVE or KVM_CAP_IRQ_XICS, dev.fd, server)`
        (the args may also be given as one tuple, as `struct kvm_enable_cap.args`). EBADF unknown fd; ENXIO
        host XIVE off (XIVE cap only); EPERM when the fd is not a KVM device of the kind the cap connects to
        (the kernel's `dev->ops` check in the connect function)."""
        if len(args) == 1 and isinstance(args[0], tuple | list):
            args = tuple(args[0])
        if flags:
            raise KvmError(errno.EINVAL, "cap flags")
        if cap not in (KVM_CAP_PPC_IRQ_XIVE, KVM_CAP_IRQ_XICS):
            raise KvmError(errno.EINVAL, f"capability {cap} cannot be enabled")
        if len(args) > 4 or not all(isinstance(x, int) for x in args):
            raise KvmError(errno.EFAULT, "struct kvm_enable_cap")
        a = [x & 0xFFFFFFFFFFFFFFFF for x in args] + [0] * (4 - len(args))
        dev = self.vm.host.fds.get(a[0])
        if dev is None:
            raise KvmError(errno.EBADF, f"fd {a[0]}")
        if cap == KVM_CAP_PPC_IRQ_XIVE and not self.vm.host.config.xive_enabled:
            raise KvmError(errno.ENXIO, "host XIVE disabled")
        if not isinstance(dev, KvmDevice):
            raise KvmError(errno.EPERM, "fd is not a KVM device")
        if getattr(dev, "irq_cap", None) != cap:
            raise KvmError(errno.EPERM, f"{dev.name} is not connected through capability {cap}")
        dev.connect_vcpu(self, a[1] & 0xFFFFFFFF)

    def get_one_reg(self, reg_id: int) -> bytes:
        """KVM_GET_ONE_REG: VP_STATE (XIVE native) or ICP_STATE (XICS), as the bytes written at reg.addr."""
        if reg_id == KVM_REG_PPC_ICP_STATE:
            dev = self._presenter_device()
            get_icp = getattr(dev, "get_icp", None)
            # kvmppc_xive_get_icp on a native vCPU reads its zeroed cppr/mfrr: only PPRI 0xff shows
            return HostU64.build(get_icp(self) if get_icp else 0xFF << KVM_REG_PPC_ICP_PPRI_SHIFT)
        return self._vp_device(reg_id).get_vp(self)

    def set_one_reg(self, reg_id: int, value: bytes | bytearray | int | None) -> None:
        """KVM_SET_ONE_REG: VP_STATE or ICP_STATE (a u64 given as int or host-order bytes)."""
        if reg_id == KVM_REG_PPC_ICP_STATE:
            dev = self._presenter_device()
            set_icp = getattr(dev, "set_icp", None)
            if set_icp is None:  # kvmppc_xive_set_icp on a native vCPU: its context is pushed (WARN, EIO)
                raise KvmError(errno.EIO, "vCPU context is pushed")
            set_icp(self, value)
            return
        self._vp_device(reg_id).set_vp(self, value)

    def _presenter_device(self) -> Any:
        if self.xive_vcpu is None:
            raise KvmError(errno.ENXIO, "vCPU has no interrupt presenter")
        return self.xive_vcpu.device

    def _vp_device(self, reg_id: int) -> Any:
        if reg_id != KVM_REG_PPC_VP_STATE:
            raise KvmError(errno.EINVAL, f"ONE_REG {reg_id:#x}")
        if self.xive_vcpu is None or not self.vm.host.config.xive_enabled:
            raise KvmError(errno.ENXIO, "vCPU has no XIVE context")
        if self.irq_type != KVMPPC_IRQ_XIVE:
            raise KvmError(errno.EPERM, "vCPU is not in XIVE native mode")
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
        timebase: Callable[[], int] | None = None,
    ) -> None:
        self.host = host or KvmHost()
        self.ram: GuestRam = ram if ram is not None else machine_like.ram
        n = nr_cpus if nr_cpus is not None else getattr(machine_like, "nr_cpus", 1)
        if line is None:
            line = getattr(machine_like, "irq_line", None) or (lambda cpu, level: None)
        self.line = line
        clock = getattr(machine_like, "clock", None)
        self.timebase: Callable[[], int] = timebase or (clock.tb if clock is not None else (lambda: 0))
        self.emul_smt_mode = 1
        self.vcpus = [KvmVcpu(self, i, i) for i in range(n)]
        self.xive: Any = None  # kvm->arch.xive: the XIVE-backed device (native or XICS-on-XIVE) of this VM
        self.rtas_tokens: dict[str, int] = {}  # in-kernel RTAS services (KVM_PPC_RTAS_DEFINE_TOKEN)

    def check_extension(self, cap: int) -> int:
        if cap == KVM_CAP_PPC_IRQ_XIVE:
            return 1 if self.host.config.xive_enabled else 0
        if cap in (KVM_CAP_IRQ_XICS, KVM_CAP_PPC_RTAS):
            return 1
        return 0

    def create_device(self, type_: int, flags: int = 0) -> KvmDevice | None:
        """KVM_CREATE_DEVICE. With KVM_CREATE_DEVICE_TEST only checks the type and returns None."""
        if not isinstance(flags, int):
            raise KvmError(errno.EFAULT, "unreadable struct kvm_create_device")
        if type_ not in (KVM_DEV_TYPE_XIVE, KVM_DEV_TYPE_XICS) or not self.host.config.xive_enabled:
            raise KvmError(errno.ENODEV, f"device type {type_}")
        if flags & KVM_CREATE_DEVICE_TEST:
            return None
        if type_ == KVM_DEV_TYPE_XICS:
            from xive_machine.kvm.xics_on_xive import KvmXicsOnXive

            return KvmXicsOnXive.create(self)
        from xive_machine.kvm.xive_native import KvmXiveNative

        return KvmXiveNative.create(self)

    def irq_line(self, irq: int, level: int) -> None:
        """KVM_IRQ_LINE(irq, level): ENXIO without an in-kernel irqchip (or one that takes no lines here)."""
        set_irq = getattr(self.xive, "set_irq", None)
        if set_irq is None:
            raise KvmError(errno.ENXIO, "no in-kernel interrupt controller takes lines")
        set_irq(irq & 0xFFFFFFFF, level & 0xFFFFFFFF)

    def define_rtas_token(self, name: str, token: int) -> None:
        """KVM_PPC_RTAS_DEFINE_TOKEN: the kernel serves RTAS `name` when the guest calls `token`; token 0
        removes it. ENOENT unknown service (or removing one not defined), EEXIST already defined."""
        from xive_machine.kvm.rtas import KERNEL_RTAS

        if name not in KERNEL_RTAS:
            raise KvmError(errno.ENOENT, f"no in-kernel RTAS service {name!r}")
        token &= 0xFFFFFFFF
        if not token:
            if self.rtas_tokens.pop(name, None) is None:
                raise KvmError(errno.ENOENT, f"{name} is not defined")
            return
        if name in self.rtas_tokens:
            raise KvmError(errno.EEXIST, f"{name} already defined")
        self.rtas_tokens[name] = token

    def rtas_call(self, token: int, args: list[int], nret: int) -> list[int] | None:
        """`kvmppc_rtas_hcall`: the rets of a call the kernel serves, or None when the token is not one of
        its own (the hcall then goes to userspace)."""
        from xive_machine.kvm.rtas import KERNEL_RTAS

        for name, tok in self.rtas_tokens.items():
            if tok == token:
                return KERNEL_RTAS[name](self, args, nret)
        return None

    def destroy_device(self, fd: int) -> None:
        """The proposed (unmerged) KVM_DESTROY_DEVICE ioctl: same effect as close + munmap of everything."""
        dev = self.host.fds.get(fd)
        if not isinstance(dev, KvmDevice):
            raise KvmError(errno.EBADF, f"fd {fd}")
        if getattr(dev, "vm", None) is not self:
            raise KvmError(errno.EPERM, "device of another VM")
        dev.destroy()


def vm_of(machine: Any) -> KvmVm:
    """The KVM VM of a machine (`.ram`, `.nr_cpus`, `.irq_line`, optionally `.clock`), made on first use and
    kept as `machine.kvm_vm`: it outlives interrupt-controller switches (CAS, reset), as QEMU's VM does."""
    vm = getattr(machine, "kvm_vm", None)
    if vm is None:
        vm = KvmVm(machine)
        machine.kvm_vm = vm
    return vm
