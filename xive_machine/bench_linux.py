"""The Linux figures of `make bench`: Debian's kernel (``make linux-guest``) on 2 vCPUs with XIVE, beside QEMU.

Wall time from process start to the busybox shell's banner (the same kernel, initramfs and command line on
both machines), and from one in-process boot to power-off: guest MIPS, TLB fills (how many, and what the
radix walk itself costs), hcalls per second. QEMU gives no instruction or TLB counts, so those rows are ours
only.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "guest_images" / "build"
VMLINUX = BUILD / "vmlinux"
INITRAMFS = BUILD / "initramfs.cpio"
PROMPT = b"Enter 'help' for a list of built-in commands."
KERNEL_EA = 0xC000_0000_0100_0000  # a kernel linear-map address every boot maps (16 MiB into RAM)


def available() -> bool:
    return VMLINUX.is_file() and INITRAMFS.is_file()


def _to_prompt(cmd: list[str], timeout: float = 600) -> float:
    """Seconds from spawn to the shell's banner on stdout; the process is killed there."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    seen = b""
    try:
        while PROMPT not in seen:
            chunk = proc.stdout.read1(65536) if hasattr(proc.stdout, "read1") else proc.stdout.read(1)
            if not chunk:
                raise RuntimeError(f"{cmd[0]}: no shell prompt (ended with {seen[-300:]!r})")
            seen = seen[-4096:] + chunk
            if time.perf_counter() - t0 > timeout:
                raise RuntimeError(f"{cmd[0]}: no shell prompt in {timeout} s")
        return time.perf_counter() - t0
    finally:
        proc.kill()
        proc.wait()


def _ours_cmd() -> list[str]:
    return [sys.executable, "-m", "xive_machine", "run", "--ic-mode", "xive", "--smp", "2", "--memory", "1G",
            "--initrd", str(INITRAMFS), "--append", "console=hvc0", str(VMLINUX)]


def _qemu_cmd() -> list[str]:
    from xive_machine.oracle.qemu import QEMU_BINARY

    return [QEMU_BINARY, "-M", "pseries,x-vof=on,ic-mode=xive", "-smp", "2", "-m", "1G", "-nographic",
            "-nodefaults", "-serial", "mon:stdio", "-no-reboot", "-kernel", str(VMLINUX), "-initrd",
            str(INITRAMFS), "-append", "console=hvc0"]


def _boot_stats() -> dict[str, float]:
    from xive_machine.cpu.fast import lib
    from xive_machine.machine.config import MachineConfig
    from xive_machine.machine.spapr import SpaprMachine

    m = SpaprMachine(MachineConfig(ic_mode="xive", smp=2, memory=1 << 30, initrd=str(INITRAMFS),
                                   append="console=hvc0 xm.poweroff", echo_console=False))
    m.load(str(VMLINUX))
    t0 = time.perf_counter()
    r = m.run(timeout=900)
    wall = time.perf_counter() - t0
    if r.reason != "power-off":
        raise RuntimeError(f"Linux: {r.reason}: {r.message[:500]}")
    fills = sum(int(v.mmu.fills) for v in m.vcpus)
    hcalls = sum(int(v.hist.n) for v in m.vcpus)
    n = 1_000_000
    walk_ns = lib.xm_bench_walks(m.vcpus[0].trap, KERNEL_EA, n) / n
    stats = {"boot_s": wall, "mips": r.instructions / wall / 1e6, "fills": fills, "fills_per_s": fills / wall,
             "walk_ns": walk_ns, "hcalls_per_s": hcalls / wall}
    m.close()
    return stats


def figures(runs: int, qemu: bool) -> dict[str, dict[str, Any]]:
    """The Linux rows of the benchmark table (medians of `runs` boots each side)."""
    ours = statistics.median(_to_prompt(_ours_cmd()) for _ in range(runs))
    theirs = statistics.median(_to_prompt(_qemu_cmd()) for _ in range(runs)) if qemu else None
    st = _boot_stats()
    return {
        "linux_shell_prompt_s": {"xive-machine": ours, "qemu": theirs},
        "linux_boot_to_power_off_in_process_s": {"xive-machine": st["boot_s"], "qemu": None},
        "linux_guest_mips": {"xive-machine": st["mips"], "qemu": None},
        "linux_tlb_fills": {"xive-machine": st["fills"], "qemu": None},
        "linux_tlb_fills_per_s": {"xive-machine": st["fills_per_s"], "qemu": None},
        "linux_radix_walk_ns": {"xive-machine": st["walk_ns"], "qemu": None},
        "linux_hcalls_per_s": {"xive-machine": st["hcalls_per_s"], "qemu": None},
    }
