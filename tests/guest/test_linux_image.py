"""The Linux guest built by ``make linux-guest``: Debian's ppc64le vmlinux and our initramfs.

The cpio is read back with the builder's own newc reader and checked entry by entry; /init,
busybox and vmlinux are checked as ELF files with pyelftools.  The ``qemu`` tests boot the
pair on QEMU 7.2 pseries (VOF, XIVE, 2 vCPUs) and check what /init reports, once with
``xm.poweroff`` and once through the interactive busybox shell.  The session fixture runs
``make linux-guest`` (incremental; it downloads the Debian packages only when they are not
cached in guest_images/build/linux-cache), so nothing is skipped because the image is missing.
"""

from __future__ import annotations

import importlib.util
import io
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from elftools.elf.elffile import ELFFile

from tests.guest.conftest import LinuxGuest
from xive_machine.oracle.qemu import qemu_available, qemu_command, run_qemu

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "guest_images" / "build"
BUILDER = REPO / "guest_images" / "linux" / "build_linux_guest.py"

QEMU_ARGS = dict(ic_mode="xive", smp=2, memory="1G")
APPLETS = ("sh", "ls", "cat", "mount", "echo", "ps", "poweroff")

needs_qemu = pytest.mark.skipif(
    not qemu_available() and not os.environ.get("CI"),
    reason="qemu-system-ppc64 not installed (apt-get install qemu-system-ppc; CI installs it)",
)


def _load_builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_linux_guest", BUILDER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


builder = _load_builder()


@pytest.fixture(scope="session")
def cpio_entries(linux_guest: LinuxGuest) -> dict[str, object]:
    return {e.name: e for e in builder.read_newc(linux_guest.initramfs.read_bytes())}


def _elf(blob: bytes) -> ELFFile:
    return ELFFile(io.BytesIO(blob))


def assert_static_ppc64le(elf: ELFFile) -> None:
    assert elf.elfclass == 64
    assert elf.little_endian
    assert elf["e_machine"] == "EM_PPC64"
    assert elf["e_type"] == "ET_EXEC"
    assert elf["e_flags"] & 3 == 2, "not ELFv2 ABI"
    assert not [s for s in elf.iter_segments() if s["p_type"] == "PT_INTERP"], "dynamically linked"


# --------------------------------------------------------------------------- newc writer/reader


def test_newc_round_trip_and_layout() -> None:
    """A tiny archive: sorted parents first, 4-byte alignment, trailer, exact bytes back."""
    entries = [
        builder.CpioEntry("b/x", stat.S_IFREG | 0o644, b"12345"),
        builder.CpioEntry("b", stat.S_IFDIR | 0o755, nlink=2),
        builder.CpioEntry("a", stat.S_IFLNK | 0o777, b"b/x"),
        builder.CpioEntry("dev", stat.S_IFCHR | 0o600, rdev_major=5, rdev_minor=1),
    ]
    blob = builder.write_newc(entries)
    assert blob.startswith(b"070701")
    assert len(blob) % 4 == 0
    assert b"TRAILER!!!\0" in blob[-128:]
    back = builder.read_newc(blob)
    assert [e.name for e in back] == ["a", "b", "b/x", "dev"]
    assert [e.ino for e in back] == [1, 2, 3, 4]
    assert back[2].data == b"12345" and back[0].data == b"b/x"
    assert (back[3].rdev_major, back[3].rdev_minor) == (5, 1)
    assert builder.write_newc(back) == blob
    assert builder.write_newc(reversed(entries)) == blob


def test_newc_rejects_duplicates_and_absolute_names() -> None:
    with pytest.raises(builder.BuildError):
        builder.write_newc([builder.CpioEntry("x", stat.S_IFDIR), builder.CpioEntry("x", stat.S_IFDIR)])
    with pytest.raises(builder.BuildError):
        builder.write_newc([builder.CpioEntry("/x", stat.S_IFDIR)])


def test_system_apt_sources_deb822_and_one_line(tmp_path: Path) -> None:
    """The fetch step mirrors the system's own sources for this release only (no other suites)."""
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text("deb [signed-by=/k.gpg] http://m/debian bookworm main contrib\n"
                                           "deb http://other/x stable main\n")  # fmt: skip
    (tmp_path / "sources.list.d" / "d.sources").write_text(
        "Types: deb\nURIs: http://m/debian\nSuites: bookworm bookworm-updates\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/k.gpg\n\n"
        "Types: deb\nURIs: http://m/debian-security\nSuites: bookworm-security\nComponents: main\n\n"
        "Types: deb\nURIs: http://x/y\nSuites: cloud-sdk\nComponents: main\n"
    )
    got = builder.system_apt_sources("bookworm", tmp_path)
    assert [s.line() for s in got] == [
        "deb [arch=ppc64el signed-by=/k.gpg] http://m/debian bookworm main",
        "deb [arch=ppc64el signed-by=/usr/share/keyrings/k.gpg] http://m/debian bookworm main",
        "deb [arch=ppc64el signed-by=/usr/share/keyrings/k.gpg] http://m/debian bookworm-updates main",
        "deb [arch=ppc64el] http://m/debian-security bookworm-security main",
    ]


# --------------------------------------------------------------------------- the built image


def test_initramfs_entries(linux_guest: LinuxGuest, cpio_entries: dict) -> None:
    e = cpio_entries
    for d in ("bin", "sbin", "proc", "sys", "dev", "tmp", "etc"):
        assert e[d].kind == "dir", d
    assert (e["dev/console"].kind, e["dev/console"].rdev_major, e["dev/console"].rdev_minor) == ("chr", 5, 1)
    assert (e["dev/null"].kind, e["dev/null"].rdev_major, e["dev/null"].rdev_minor) == ("chr", 1, 3)
    assert e["init"].kind == "file" and stat.S_IMODE(e["init"].mode) == 0o755
    assert e["init"].data == linux_guest.init.read_bytes()
    assert e["bin/busybox"].kind == "file" and stat.S_IMODE(e["bin/busybox"].mode) == 0o755
    for applet in APPLETS:
        assert e[f"bin/{applet}"].kind == "symlink", applet
        assert e[f"bin/{applet}"].data == b"busybox", applet


def test_initramfs_is_deterministic(linux_guest: LinuxGuest) -> None:
    """Sorted (parents first), every mtime/uid/gid 0, and rewriting the parsed entries gives the same bytes."""
    blob = linux_guest.initramfs.read_bytes()
    entries = builder.read_newc(blob)
    keys = [tuple(x.name.split("/")) for x in entries]
    assert keys == sorted(keys)
    assert {(x.mtime, x.uid, x.gid) for x in entries} == {(0, 0, 0)}
    assert builder.write_newc(entries) == blob


def test_init_and_busybox_are_static_ppc64le(linux_guest: LinuxGuest, cpio_entries: dict) -> None:
    assert_static_ppc64le(_elf(cpio_entries["init"].data))
    assert_static_ppc64le(_elf(cpio_entries["bin/busybox"].data))


def test_vmlinux_is_the_ppc64le_kernel(linux_guest: LinuxGuest) -> None:
    with open(linux_guest.vmlinux, "rb") as f:
        elf = ELFFile(f)
        assert_static_ppc64le(elf)
        assert elf["e_entry"] == 0xC000000000000000
        assert elf.get_section_by_name("__ksymtab") is not None


# --------------------------------------------------------------------------- QEMU 7.2 oracle


def _section(console: str, name: str) -> list[str]:
    lines = console.splitlines()
    start = lines.index(f"xm-init: --- {name} ---")
    end = lines.index(f"xm-init: --- end {name} ---")
    return lines[start + 1:end]


@pytest.mark.qemu
@needs_qemu
def test_boot_on_qemu_reports_and_powers_off(linux_guest: LinuxGuest) -> None:
    result = run_qemu(linux_guest.vmlinux, timeout=120, append="console=hvc0 xm.poweroff",
                      extra=["-initrd", str(linux_guest.initramfs)], **QEMU_ARGS)  # fmt: skip
    console = result.console.replace("\r\n", "\n")
    assert not result.timed_out, f"QEMU timed out; console tail:\n{console[-3000:]}"
    assert re.search(r"^xm-init: Linux 6\.\S+-powerpc64le ppc64le$", console, re.M), console[-3000:]
    assert "xm-init: busy task ran on cpu 1\n" in console
    ipi = [ln for ln in _section(console, "/proc/interrupts") if "XIVE-IPI" in ln]
    assert len(ipi) == 1, ipi
    counts = [int(n) for n in ipi[0].split()[1:3]]
    assert all(n > 0 for n in counts), f"IPI counts per CPU: {counts}"
    cpuinfo = _section(console, "/proc/cpuinfo")
    assert "processor\t: 0" in cpuinfo and "processor\t: 1" in cpuinfo
    assert "MMU\t\t: Radix" in cpuinfo
    assert "xm-init: powering off\n" in console
    assert "reboot: Power down" in console
    assert result.exit_code == 0


@pytest.mark.qemu
@needs_qemu
def test_interactive_shell_on_qemu(linux_guest: LinuxGuest) -> None:
    """Without xm.poweroff /init runs busybox sh on hvc0; typed commands run and exiting powers off."""
    cmd = qemu_command(linux_guest.vmlinux, append="console=hvc0 xm.spin=1000 xm.pingpong=10",
                       extra=["-initrd", str(linux_guest.initramfs)], **QEMU_ARGS)  # fmt: skip
    # Typed before the shell starts: hvc reads nothing until /dev/console is open, then the tty buffers it.
    proc = subprocess.run(cmd, input=b"echo $((6*7)); exit\n", capture_output=True, timeout=120)
    console = proc.stdout.decode("latin-1").replace("\r\n", "\n")
    assert "xm-init: starting /bin/sh on the console; exit the shell to power off\n" in console
    assert "\n42\n" in console, console[-2000:]
    assert "xm-init: shell exited (wait status 0x0)\n" in console
    assert "xm-init: powering off\n" in console
    assert proc.returncode == 0
