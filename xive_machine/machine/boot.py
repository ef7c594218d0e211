"""Boot: firmware stub, kernel and initrd into RAM, the device tree, the entry state QEMU 7.2 gives.

Two conventions: `vof` (QEMU's Virtual Open Firmware: MSR=0, r3/r4 = initrd, r5 = client-interface entry,
the tree reached through the client interface) and `fdt` (QEMU with a minimal -bios branching to the kernel:
the flattened tree in RAM at the top of the RMA minus 2 MiB, r3 pointing to it).
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

from elftools.elf.elffile import ELFFile

from xive_machine.cpu import regs as R
from xive_machine.errors import ConfigError, read_input
from xive_machine.firmware.elf import KERNEL_ADDR, LoadedKernel, load_kernel
from xive_machine.machine import linux_fdt

if TYPE_CHECKING:
    from xive_machine.cpu.vcpu import VCpu
    from xive_machine.machine.spapr import SpaprMachine

FW_STACK_TOP = 0xFF60
RMA_MAX = 2 << 30
FDT_GAP = 2 << 20


def firmware_path() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(os.path.dirname(os.path.dirname(here)), "firmware_stubs", "build", "vof-stub.elf")


def ensure_firmware() -> str:
    """The stub is real PPC code built by `make -C firmware_stubs`; build it on first use if missing."""
    path = firmware_path()
    if not os.path.exists(path):
        src = os.path.dirname(os.path.dirname(path))
        try:
            subprocess.run(["make", "-s", "-C", src, f"PYTHON={sys.executable}"], check=True,
                           capture_output=True, timeout=300)
        except (OSError, subprocess.SubprocessError) as exc:
            raise ConfigError(f"firmware stub missing and could not be built ({exc}); run `make firmware`") from None
    return path


_FIRMWARE: tuple[list[tuple[int, bytes]], dict[str, int]] | None = None  # parsed once per process


def load_firmware(m: SpaprMachine) -> dict[str, int]:
    global _FIRMWARE
    if _FIRMWARE is None:
        path = ensure_firmware()
        with open(path, "rb") as f:
            elf = ELFFile(f)
            segments = [(seg["p_paddr"], seg.data()) for seg in elf.iter_segments() if seg["p_type"] == "PT_LOAD"]
            symtab = elf.get_section_by_name(".symtab")
            syms = {s.name: s["st_value"] for s in symtab.iter_symbols() if s.name}
        _FIRMWARE = (segments, syms)
    segments, syms = _FIRMWARE
    for addr, data in segments:
        m.ram.write(addr, data)
    return dict(syms)


def load(m: SpaprMachine, path: str) -> LoadedKernel:
    cfg = m.config
    m.fw_symbols = load_firmware(m)
    kernel = load_kernel(path, m.ram, KERNEL_ADDR)
    m.kernel = kernel
    m.initrd_start = m.initrd_size = 0
    if cfg.initrd:
        data = read_input(cfg.initrd, "an initrd")
        start = (kernel.base + kernel.size + 0x1FFFF) & ~0xFFFF
        limit = min(m.ram.size, RMA_MAX) - 0x2800000
        if start + len(data) > limit:
            raise ConfigError(f"{cfg.initrd}: {len(data)} bytes do not fit below {limit:#x} (use --memory)")
        m.ram.write(start, data)
        m.initrd_start, m.initrd_size = start, len(data)
    # What reset reloads: the firmware and kernel images, byte for byte.
    m.boot_images = [(0, m.ram.read(0, 0x1000))]
    m.boot_images.append((kernel.base, m.ram.read(kernel.base, kernel.size)))
    for v in m.vcpus:  # blocks run elsewhere are counted (diagnostics; kept in snapshots)
        v.trap.code_lo, v.trap.code_hi = 0, kernel.base + kernel.size
        v.trap.exec_outside = 0
    if m.initrd_size:
        m.boot_images.append((m.initrd_start, m.ram.read(m.initrd_start, m.initrd_size)))
    from xive_machine.machine import platform

    platform.machine_reset(m)
    set_entry_state(m)
    return kernel


def set_entry_state(m: SpaprMachine) -> None:
    from xive_machine.machine import timebase

    cfg = m.config
    for i, v in enumerate(m.vcpus):
        v.set_gprs([0] * 32)
        v.set_reg(R.REG_LR, 0)
        v.set_reg(R.REG_CTR, 0)
        v.set_reg(R.REG_XER, 0)
        v.set_reg(R.REG_CR, 0)
        v.msr = R.MSR_SF | R.MSR_ME  # secondaries: how RTAS start-cpu will start them
        v.set_spr(R.SPR_SRR0, 0)
        v.set_spr(R.SPR_SRR1, 0)
        v.shadow = {spr: 0 for spr in timebase.SHADOW_SPRS}
        v.pc = 0
        m.cpus[i].state = "stopped"
    boot = m.vcpus[0]
    boot.msr = 0  # 32-bit big-endian real mode, EE=0, as QEMU enters the kernel
    if cfg.boot == "vof":
        boot.pc = m.kernel.base
        boot.set_gpr(1, FW_STACK_TOP)
        boot.set_gpr(3, m.initrd_start)
        boot.set_gpr(4, m.initrd_size)
        boot.set_gpr(5, m.fw_symbols["ci_entry"])
        boot.set_reg(R.REG_LR, m.fw_symbols["boot_return"])
    else:
        addr = min(m.ram.size, RMA_MAX) - FDT_GAP
        if linux_fdt.is_linux(m):  # the kernel skips prom_init: negotiate and instantiate RTAS for it
            linux_fdt.prepare(m, addr)
        blob = m.fdt_blob()
        m.ram.write(addr, blob)
        m.fdt_addr = addr
        boot.pc = m.fw_symbols["fdt_entry"]
        boot.set_gpr(1, FW_STACK_TOP)
        boot.set_gpr(3, addr)
    m.cpus[0].state = "running"
    m.rr_round, m.rr_pos, m.rr_resume, m.rr_last = None, 0, None, -1


RESET_COMPARE_MAX = 4 << 20  # past this much RAM that may hold a vCPU's code, a reset drops all of it


def expected_ram(m: SpaprMachine, lo: int, hi: int) -> bytes:
    """RAM [lo, hi) as a reset leaves it: zeroes with the boot images over them (kept per set of images)."""
    images, cache = m.reset_expect
    now = m.boot_images
    if len(images) != len(now) or any(a is not b for a, b in zip(images, now, strict=True)):  # load, restore
        images, cache = list(now), {}
        m.reset_expect = (images, cache)
    got = cache.get((lo, hi))
    if got is None:
        if len(cache) >= 16:  # ranges of a guard that grew since: drop them
            cache.clear()
        buf = bytearray(hi - lo)
        for addr, data in images:
            a, b = max(lo, addr), min(hi, addr + len(data))
            if a < b:
                buf[a - lo:b - lo] = data[a - addr:b - addr]
        got = cache[(lo, hi)] = bytes(buf)
    return got


def stale_code(m: SpaprMachine, v: VCpu) -> list[int] | None:
    """The pages of `v`'s translated code whose bytes a reset changes, or None when it is cheaper to drop all
    of it. Only RAM in the vCPU's store guard can hold its code (see VCpu.code_ranges)."""
    ranges = v.code_ranges()
    if sum(hi - lo for lo, hi in ranges) > RESET_COMPARE_MAX:
        return None
    return [page for lo, hi in ranges for page in m.ram.differing_pages(lo, expected_ram(m, lo, hi))]


def reset(m: SpaprMachine) -> None:
    """In-process reset: RAM back to the loaded images, vCPUs to the entry state, devices reset.

    Translated code survives when it can, as it costs more to rebuild than the rest of the reset: RAM is
    rewritten behind Unicorn's back, so translations on pages whose bytes change are dropped (only pages in a
    vCPU's store guard can hold any), and all of them when that is cheaper than finding those pages."""
    stale = [stale_code(m, v) for v in m.vcpus]
    m.ram.restore(m.boot_images)
    for v, pages in zip(m.vcpus, stale, strict=True):
        # dropping a range looks its first page up as an instruction fetch: only right in real mode
        if pages is None or (pages and v.reg(R.REG_MSR) & R.MSR_IR):
            v.forget_code()
        else:
            for page in pages:
                v.forget_code(page, page + 0x1000)
        v.trap.exec_outside = 0
    m.console.reset()
    m.clock.reset()
    m.stop_reason = None
    m.stop_message = ""
    m.exit_code = 0
    from xive_machine.machine import platform

    platform.machine_reset(m, keep_tree=True)
    set_entry_state(m)
