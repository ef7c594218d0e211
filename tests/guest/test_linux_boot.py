"""Debian's stock Linux 6.1 (``make linux-guest``) booted on xive-machine as a user runs it: through Linux's own
prom_init and CAS on the client interface, radix MMU, XIVE on 2 vCPUs, to the initramfs's /init and an
interactive busybox shell driven by a console script, then power-off.

One boot (module fixture) carries most checks, since a boot costs ~15-25 s here; a second boots with a
corrupt initramfs and checks the post-mortem. The XIVE bring-up hcalls are compared with QEMU 7.2 booting
the same kernel and initramfs (its spapr_xive_* trace events carry the same arguments as our trace).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.guest.conftest import LinuxGuest
from xive_machine.oracle.qemu import QEMU_BINARY, qemu_available

pytestmark = pytest.mark.slow

APPEND = "console=hvc0 xm.spin=2000000 xm.pingpong=100"
SCRIPT = b"echo shell says $((6*7))\ngrep -c processor /proc/cpuinfo\nexit\n"
# QEMU trace event -> our hcall name and the argument order our trace records
QEMU_XIVE_EVENTS = {
    "spapr_xive_get_source_info": ("H_INT_GET_SOURCE_INFO", ("flags", "lisn")),
    "spapr_xive_set_source_config": ("H_INT_SET_SOURCE_CONFIG", ("flags", "lisn", "target", "priority", "eisn")),
    "spapr_xive_get_source_config": ("H_INT_GET_SOURCE_CONFIG", ("flags", "lisn")),
    "spapr_xive_get_queue_info": ("H_INT_GET_QUEUE_INFO", ("flags", "target", "priority")),
    "spapr_xive_set_queue_config": ("H_INT_SET_QUEUE_CONFIG", ("flags", "target", "priority", "qpage", "qsize")),
    "spapr_xive_get_queue_config": ("H_INT_GET_QUEUE_CONFIG", ("flags", "target", "priority")),
    "spapr_xive_reset": ("H_INT_RESET", ("flags",)),
    "spapr_xive_sync": ("H_INT_SYNC", ("flags", "lisn")),
}


def _xive_machine(*args: str, stdin: bytes | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xive_machine", *args], input=stdin, capture_output=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def boot(linux_guest: LinuxGuest, tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess,
                                                                                       Path]:
    tmp = tmp_path_factory.mktemp("linux")
    script = tmp / "console.txt"
    script.write_bytes(SCRIPT)
    trace = tmp / "trace.jsonl"
    proc = _xive_machine("run", "--ic-mode", "xive", "--smp", "2", "--memory", "1G", "--initrd",
                         str(linux_guest.initramfs), "--append", APPEND, "--input", str(script), "--trace",
                         str(trace), "--timeout", "500", str(linux_guest.vmlinux))
    return proc, trace


def _console(proc: subprocess.CompletedProcess) -> str:
    return proc.stdout.decode("utf-8", "replace")


def test_linux_boots_to_init_and_powers_off(boot: tuple[subprocess.CompletedProcess, Path]) -> None:
    proc, _ = boot
    out = _console(proc)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert "xm-init: Linux 6.1" in out and "ppc64le" in out
    assert "lpar: Using radix MMU under hypervisor" in out
    assert "xive: Interrupt handling initialized with spapr backend" in out
    assert "smp: Brought up 1 node, 2 CPUs" in out
    assert "xm-init: busy task ran on cpu 1" in out
    assert "reboot: Power down" in out


def test_xive_ipis_counted_on_both_cpus(boot: tuple[subprocess.CompletedProcess, Path]) -> None:
    out = _console(boot[0])
    ipi = re.search(r"^\s*\d+:\s+(\d+)\s+(\d+)\s+XIVE-IPI", out, re.M)
    assert ipi is not None, out[-3000:]
    assert int(ipi.group(1)) > 0 and int(ipi.group(2)) > 0


def test_cpuinfo_shows_two_power9_cpus_on_radix(boot: tuple[subprocess.CompletedProcess, Path]) -> None:
    out = _console(boot[0])
    assert "processor\t: 1" in out
    assert "POWER9 (architected)" in out and "pvr 004e 1200" in out
    assert re.search(r"MMU\s+: Radix", out)


def test_interactive_shell_runs_the_console_script(boot: tuple[subprocess.CompletedProcess, Path]) -> None:
    out = _console(boot[0])
    assert "shell says 42" in out
    assert re.search(r"^2\r?$", out, re.M), "grep -c processor /proc/cpuinfo should print 2"
    assert "xm-init: shell exited" in out


def test_linux_uses_every_xive_bringup_hcall_successfully(boot: tuple[subprocess.CompletedProcess, Path]) -> None:
    calls = _our_xive_calls(boot[1])
    names = {name for name, _ in calls}
    assert {"H_INT_GET_QUEUE_INFO", "H_INT_SET_QUEUE_CONFIG", "H_INT_GET_SOURCE_INFO",
            "H_INT_SET_SOURCE_CONFIG"} <= names
    rcs = [e["rc"] for e in _events(boot[1]) if e.get("ev") == "hcall" and e["name"].startswith("H_INT_")]
    assert rcs and all(rc == 0 for rc in rcs)


def _events(trace: Path) -> list[dict]:
    return [json.loads(line) for line in trace.read_text().splitlines()]


def _our_xive_calls(trace: Path) -> list[tuple[str, tuple[int, ...]]]:
    traced = {name for name, _ in QEMU_XIVE_EVENTS.values()}
    return [(e["name"], tuple(e["args"])) for e in _events(trace)
            if e.get("ev") == "hcall" and e["name"] in traced]


def _qemu_xive_calls(log: str) -> list[tuple[str, tuple[int, ...]]]:
    calls = []
    for line in log.splitlines():
        event, _, rest = line.partition(" ")
        if event not in QEMU_XIVE_EVENTS:
            continue
        name, order = QEMU_XIVE_EVENTS[event]
        fields = dict(kv.split("=", 1) for kv in rest.split())
        calls.append((name, tuple(int(fields[k], 16) for k in order)))
    return calls


@pytest.mark.qemu
@pytest.mark.skipif(not qemu_available() and not os.environ.get("CI"),
                    reason="qemu-system-ppc64 not installed (.ci/run installs it; never skipped in CI)")
def test_xive_bringup_hcalls_match_qemu(boot: tuple[subprocess.CompletedProcess, Path], linux_guest: LinuxGuest,
                                        tmp_path: Path) -> None:
    """The sequence of XIVE hcalls Linux makes, with their arguments (queue pages included), is QEMU's."""
    log = tmp_path / "qemu-trace.txt"
    cmd = [QEMU_BINARY, "-M", "pseries,x-vof=on,ic-mode=xive", "-smp", "2", "-m", "1G", "-nographic",
           "-nodefaults", "-serial", "mon:stdio", "-no-reboot", "-kernel", str(linux_guest.vmlinux), "-initrd",
           str(linux_guest.initramfs), "-append", APPEND, "-D", str(log)]
    for event in QEMU_XIVE_EVENTS:
        cmd += ["-trace", event]
    proc = subprocess.run(cmd, input=SCRIPT, capture_output=True, timeout=300)
    assert b"reboot: Power down" in proc.stdout, proc.stdout[-2000:]
    theirs = _qemu_xive_calls(log.read_text())
    ours = _our_xive_calls(boot[1])
    assert theirs, "QEMU traced no XIVE hcall"
    assert ours == theirs


def test_corrupt_initramfs_reports_the_panic(linux_guest: LinuxGuest, tmp_path: Path) -> None:
    """Not a cpio: Linux cannot find a root and panics; the machine reports the panic text, the last hcalls
    and the vCPU state, and exits 1 (os-term), never hanging."""
    bad = tmp_path / "garbage.cpio"
    bad.write_bytes(bytes(range(256)) * 64)
    proc = _xive_machine("run", "--memory", "1G", "--initrd", str(bad), "--append", "console=hvc0",
                         "--console", "none", "--timeout", "500", str(linux_guest.vmlinux))
    err = proc.stderr.decode()
    assert proc.returncode == 1, err[-2000:]
    assert "OS panic: VFS: Unable to mount root fs" in err
    assert "hcalls (oldest first)" in err and "KVMPPC_H_RTAS" in err
    assert "vCPU 0: PC" in err


def test_fdt_boot_plays_prom_init(linux_guest: LinuxGuest) -> None:
    """--boot fdt: the kernel skips prom_init, so the machine negotiates CAS with Linux's vector and
    instantiates RTAS for it; the kernel boots radix + XIVE on 2 vCPUs from the tree in r3 and powers off."""
    proc = _xive_machine("run", "--boot", "fdt", "--ic-mode", "xive", "--smp", "2", "--memory", "1G", "--initrd",
                         str(linux_guest.initramfs), "--append", "console=hvc0 xm.poweroff", "--console", "stdio",
                         "--timeout", "500", str(linux_guest.vmlinux))
    out = _console(proc)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert "Preparing to boot" not in out  # no prom_init
    assert "lpar: Using radix MMU under hypervisor" in out
    assert "xive: Interrupt handling initialized with spapr backend" in out
    assert "xm-init: busy task ran on cpu 1" in out and "reboot: Power down" in out


def test_xics_mode_boots_linux_on_xics(linux_guest: LinuxGuest) -> None:
    """ic-mode xics: prom_init finds no XIVE on offer and Linux runs its XICS driver (H_XIRR/H_EOI/H_IPI)."""
    proc = _xive_machine("run", "--ic-mode", "xics", "--smp", "2", "--memory", "1G", "--initrd",
                         str(linux_guest.initramfs), "--append", "console=hvc0 xm.poweroff", "--timeout", "500",
                         str(linux_guest.vmlinux))
    out = _console(proc)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert "xive:" not in out
    ipi = re.search(r"^\s*\d+:\s+(\d+)\s+(\d+)\s+XICS", out, re.M)
    assert ipi is not None and int(ipi.group(1)) > 0 and int(ipi.group(2)) > 0, out[-3000:]
    assert "reboot: Power down" in out


def _pty_read(fd: int, wait: float) -> bytes | None:
    """What the pty has within `wait` seconds: b"" for nothing yet, None once it is closed."""
    import select

    ready, _, _ = select.select([fd], [], [], wait)
    if not ready:
        return b""
    try:
        return os.read(fd, 4096) or None
    except OSError:
        return None


def test_interactive_terminal(linux_guest: LinuxGuest) -> None:
    """On a terminal (a pty here): raw mode, typed keys reach busybox through the vty interrupt, and Ctrl-A x
    ends the run with status 0, the terminal restored."""
    import pty
    import time

    cmd = [sys.executable, "-m", "xive_machine", "run", "--ic-mode", "xive", "--smp", "2", "--memory", "1G",
           "--initrd", str(linux_guest.initramfs), "--append", "console=hvc0", str(linux_guest.vmlinux)]
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.execvp(cmd[0], cmd)
    buf, stage, t0 = b"", 0, time.monotonic()
    try:
        while time.monotonic() - t0 < 400 and stage < 2:
            data = _pty_read(fd, 0.5)
            if data is None:
                break
            buf += data
            if stage == 0 and b"Enter 'help'" in buf:
                time.sleep(0.5)
                os.write(fd, b"echo typed-$((2+3))\r")
                stage = 1
            elif stage == 1 and b"typed-5" in buf:
                os.write(fd, b"\x01x")
                stage = 2
        _, status = os.waitpid(pid, 0)
        while data := _pty_read(fd, 0.2):  # what was printed after the quit
            buf += data
    finally:
        os.close(fd)
    assert stage == 2, buf[-2000:]
    assert os.waitstatus_to_exitcode(status) == 0, buf[-2000:]
    assert b"quit: console: Ctrl-A x" in buf


def test_snapshot_mid_boot_restores_and_finishes_identically(linux_guest: LinuxGuest, tmp_path: Path) -> None:
    """Migration of a running Linux: radix registration, PIDs, TCE tables, NVRAM, the vector registers and
    the XER carry bits all travel (each was missing once and broke the restored kernel); the restored run
    prints, to the byte, what the original prints after the same point."""
    from xive_machine import migration
    from xive_machine.machine.config import MachineConfig
    from xive_machine.machine.spapr import SpaprMachine

    cfg = dict(ic_mode="xive", smp=2, memory=1 << 30, initrd=str(linux_guest.initramfs),
               append="console=hvc0 xm.poweroff", echo_console=False)
    m = SpaprMachine(MachineConfig(**cfg))
    m.load(str(linux_guest.vmlinux))
    assert m.run(max_insns=600_000_000).reason == "max-insns"
    migration.snapshot(m, tmp_path / "mid.xm")
    restored = migration.restore(tmp_path / "mid.xm", echo_console=False)
    a, b = m.run(timeout=500), restored.run(timeout=500)
    assert a.reason == b.reason == "power-off"
    assert "reboot: Power down" in b.console
    assert b.console == a.console
