"""Generic KVM device plumbing: fds, attribute values as the uAPI passes them, mmap'd regions with a fault handler.

No XIVE semantics here. A device attribute value is what `struct kvm_device_attr.addr` points to: callers
pass `bytes` (the memory at addr, host byte order), an `int` (the scalar stored there, truncated to the
width as a C store would), a mapping for structs, or `None` for a NULL/unmapped pointer. Anything that
cannot be read as the attribute's type is an unreadable user pointer: `KvmError(EFAULT)`, as `get_user` /
`copy_from_user` fail in the kernel.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from construct import ConstructError

from xive_machine.errors import KvmError
from xive_machine.kvm.uapi import HOST_PAGE_SHIFT, HostU32, HostU64

AttrValue = bytes | bytearray | memoryview | int | Mapping[str, int] | None

U32 = 0xFFFFFFFF
U64 = 0xFFFFFFFFFFFFFFFF


class VmFault(KvmError):
    """A fault the device's vm_ops handler refused (VM_FAULT_SIGBUS): the access that caused it never happens."""

    def __init__(self, pgoff: int, why: str) -> None:
        super().__init__(errno.EFAULT, f"SIGBUS at page offset {pgoff:#x}: {why}")
        self.pgoff = pgoff


def attr_u64(value: AttrValue) -> int:
    """`get_user(u64)` at attr.addr."""
    if isinstance(value, bool) or value is None:
        raise KvmError(errno.EFAULT, "unreadable u64")
    if isinstance(value, int):
        return value & U64
    if isinstance(value, bytes | bytearray | memoryview) and len(value) >= 8:
        return HostU64.parse(bytes(value[:8]))
    raise KvmError(errno.EFAULT, "unreadable u64")


def attr_u32(value: AttrValue) -> int:
    """`get_user(u32)` at attr.addr."""
    if isinstance(value, bool) or value is None:
        raise KvmError(errno.EFAULT, "unreadable u32")
    if isinstance(value, int):
        return value & U32
    if isinstance(value, bytes | bytearray | memoryview) and len(value) >= 4:
        return HostU32.parse(bytes(value[:4]))
    raise KvmError(errno.EFAULT, "unreadable u32")


def attr_struct(value: AttrValue, layout: Any) -> Any:
    """`copy_from_user(struct)` at attr.addr: raw bytes of at least the struct size, or a field mapping."""
    size = layout.sizeof()
    try:
        if isinstance(value, bytes | bytearray | memoryview) and len(value) >= size:
            return layout.parse(bytes(value[:size]))
        if isinstance(value, Mapping):
            return layout.parse(layout.build(dict(value)))
    except (ConstructError, TypeError, ValueError, KeyError) as err:
        raise KvmError(errno.EFAULT, f"unreadable struct: {err}") from None
    raise KvmError(errno.EFAULT, "unreadable struct")


def _attr_ids(group: Any, attr: Any) -> tuple[int, int]:
    """`struct kvm_device_attr` group (u32) and attr (u64), truncated as C would; anything else is EFAULT."""
    if not isinstance(group, int) or not isinstance(attr, int) or isinstance(group, bool) or isinstance(attr, bool):
        raise KvmError(errno.EFAULT, "unreadable struct kvm_device_attr")
    return group & U32, attr & U64


class Page(Protocol):
    """One host page inserted in a mapping by a fault handler (`vmf_insert_pfn`)."""

    def load(self, offset: int, size: int, cpu: int) -> int: ...

    def store(self, offset: int, size: int, value: int, cpu: int) -> None: ...


FaultHandler = Callable[[int], Page]
"""`fault(relative_page) -> Page`, raising VmFault for VM_FAULT_SIGBUS."""


class DeviceMapping:
    """An mmap of a device fd: pages are inserted by `fault` on first touch and zapped by `invalidate`.

    `load`/`store` take an offset from the start of the mapping; the accessing vCPU is passed along (a
    TIMA page shows each hardware thread its own context).
    """

    def __init__(self, owner: Any, pgoff: int, npages: int, fault: FaultHandler, name: str) -> None:
        self.owner = owner
        self.pgoff = pgoff
        self.npages = npages
        self.size = npages << HOST_PAGE_SHIFT
        self.name = name
        self._fault = fault
        self.pages: dict[int, Page] = {}
        self.faults = 0
        self.live = True

    def page(self, rel: int) -> Page:
        """The page at `rel`, faulted in if absent."""
        p = self.pages.get(rel)
        if p is not None:
            return p
        if not self.live:
            raise VmFault(self.pgoff + rel, "mapping is gone")
        if not 0 <= rel < self.npages:
            raise VmFault(self.pgoff + rel, "outside the mapping")
        self.faults += 1
        p = self._fault(rel)
        self.pages[rel] = p
        return p

    def load(self, offset: int, size: int, cpu: int = 0) -> int:
        p = self.pages.get(offset >> HOST_PAGE_SHIFT) or self.page(offset >> HOST_PAGE_SHIFT)
        return p.load(offset & ((1 << HOST_PAGE_SHIFT) - 1), size, cpu)

    def store(self, offset: int, size: int, value: int, cpu: int = 0) -> None:
        p = self.pages.get(offset >> HOST_PAGE_SHIFT) or self.page(offset >> HOST_PAGE_SHIFT)
        p.store(offset & ((1 << HOST_PAGE_SHIFT) - 1), size, value, cpu)

    def invalidate(self, first_pgoff: int, count: int) -> int:
        """`unmap_mapping_range` over device page offsets [first, first+count): the next access faults."""
        n = 0
        for pg in range(first_pgoff, first_pgoff + count):
            if self.pages.pop(pg - self.pgoff, None) is not None:
                n += 1
        return n

    def munmap(self) -> None:
        """Drop the mapping; the device may be released once no fd and no mapping refer to it."""
        if self.live:
            self.live = False
            self.pages.clear()
            self.owner._mapping_gone(self)

    def zap(self) -> None:
        """The device went away under the mapping (destroy): every later access faults with SIGBUS."""
        self.live = False
        self.pages.clear()


class KvmDevice:
    """A `KVM_CREATE_DEVICE` instance: fd, attribute ioctls, mmap, close. Subclasses give the semantics.

    Every public entry point raises only `KvmError` (errno as the ioctl would return it).
    """

    name = "kvm-device"

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.fd_open = True
        self.released = False
        self.mappings: list[DeviceMapping] = []

    def _check_fd(self) -> None:
        if not self.fd_open:
            raise KvmError(errno.EBADF, "device fd closed")

    # -- KVM_SET_DEVICE_ATTR / KVM_GET_DEVICE_ATTR / KVM_HAS_DEVICE_ATTR ---------------------------------------

    def set_attr(self, group: int, attr: int, value: AttrValue = None) -> None:
        """KVM_SET_DEVICE_ATTR; `value` is what attr.addr points to (see the module docstring)."""
        self._check_fd()
        self._set_attr(*_attr_ids(group, attr), value)

    def get_attr(self, group: int, attr: int) -> bytes:
        """KVM_GET_DEVICE_ATTR: the bytes the kernel writes at attr.addr."""
        self._check_fd()
        return self._get_attr(*_attr_ids(group, attr))

    def has_attr(self, group: int, attr: int) -> bool:
        """KVM_HAS_DEVICE_ATTR: True when the kernel answers 0, else KvmError (ENXIO)."""
        self._check_fd()
        self._has_attr(*_attr_ids(group, attr))
        return True

    def _set_attr(self, group: int, attr: int, value: AttrValue) -> None:
        raise KvmError(errno.ENXIO)

    def _get_attr(self, group: int, attr: int) -> bytes:
        raise KvmError(errno.ENXIO)

    def _has_attr(self, group: int, attr: int) -> None:
        raise KvmError(errno.ENXIO)

    # -- mmap / close --------------------------------------------------------------------------------------

    def mmap(self, pgoff: int, length: int | None = None) -> DeviceMapping:
        """mmap(fd, offset = pgoff << HOST_PAGE_SHIFT, length); no length = the largest the device allows."""
        self._check_fd()
        if not isinstance(pgoff, int) or not isinstance(length, int | None):
            raise KvmError(errno.EINVAL, "bad mmap arguments")
        if length is None:
            length = self._max_pages(pgoff) << HOST_PAGE_SHIFT
        if length <= 0 or pgoff < 0:
            raise KvmError(errno.EINVAL, "bad mmap range")
        npages = (length + (1 << HOST_PAGE_SHIFT) - 1) >> HOST_PAGE_SHIFT
        m = self._mmap(pgoff, npages)
        self.mappings.append(m)
        return m

    def _mmap(self, pgoff: int, npages: int) -> DeviceMapping:
        raise KvmError(errno.ENODEV)

    def _max_pages(self, pgoff: int) -> int:
        return 0

    def close(self) -> None:
        """close(fd): the device is released when neither the fd nor any mapping refers to it."""
        if not self.fd_open:
            raise KvmError(errno.EBADF, "device fd already closed")
        self.fd_open = False
        self._fd_closed()
        self._maybe_release()

    def _fd_closed(self) -> None:
        """The fd number is gone from the process (subclasses drop it from their fd table)."""

    def _mapping_gone(self, m: DeviceMapping) -> None:
        if m in self.mappings:
            self.mappings.remove(m)
        self._maybe_release()

    def _maybe_release(self) -> None:
        if not self.fd_open and not self.mappings and not self.released:
            self.released = True
            self.release()

    def destroy(self) -> None:
        """The proposed KVM_DESTROY_DEVICE: fd closed, mappings zapped, released now (xive.md 6.7)."""
        self._check_fd()
        self.fd_open = False
        self._fd_closed()
        for m in self.mappings:
            m.zap()
        self.mappings.clear()
        self._maybe_release()

    def release(self) -> None:
        """The device `release` op (kvm->lock held in the kernel)."""


class XiveBackedDevice(KvmDevice):
    """What the two devices KVM builds on a POWER9 host's XIVE share (XICS-on-XIVE and XIVE native): at most
    one per VM (`vm.xive`), and an fd in the host's table. Subclasses take `(vm, fd)` and set `self.host`."""

    host: Any
    vm: Any
    nr_servers: int
    vp_base: int | None

    @classmethod
    def create(cls, vm: Any) -> Any:
        """KVM_CREATE_DEVICE: -EEXIST when the VM already has a XIVE-backed device (of either type)."""
        if vm.xive is not None:
            raise KvmError(errno.EEXIST, "the VM already has a XIVE device")
        dev = cls(vm, -1)  # type: ignore[call-arg]
        dev.fd = vm.host.alloc_fd(dev)
        vm.xive = dev
        return dev

    def _fd_closed(self) -> None:
        self.host.free_fd(self.fd)

    def _vp_block_for(self, vcpu: Any, server_num: int, what: str) -> bool:
        """The checks both kernels' connect_vcpu make first, in their order (EPERM another VM's or a released
        device, EBUSY a vCPU already on an irqchip, EINVAL a server beyond nr_servers, ENOSPC no VP block),
        then the VP block, allocated at the first connect. True when it was allocated just now."""
        if self.released or vcpu.vm is not self.vm or self.vm.xive is not self:
            raise KvmError(errno.EPERM, f"not this VM's {what} device")
        if vcpu.irq_type != 0:  # KVMPPC_IRQ_DEFAULT
            raise KvmError(errno.EBUSY, "vCPU already connected to an interrupt controller")
        if server_num >= self.nr_servers * self.vm.emul_smt_mode:
            raise KvmError(errno.EINVAL, f"server {server_num} >= nr_servers {self.nr_servers}")
        if self.vp_base is not None:
            return False
        base = self.host.alloc_vp_block()
        if base is None:
            raise KvmError(errno.ENOSPC, "no VP block")
        self.vp_base = base
        return True
