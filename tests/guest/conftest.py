"""Fixtures shared by the guest-level tests: the Linux guest that ``make linux-guest`` builds."""

from __future__ import annotations

import fcntl
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "guest_images" / "build"


@dataclass(frozen=True)
class LinuxGuest:
    vmlinux: Path
    initramfs: Path
    init: Path


@pytest.fixture(scope="session")
def linux_guest() -> LinuxGuest:
    """Run ``make linux-guest`` once (under the same lock as the other image builds)."""
    with open(REPO / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        proc = subprocess.run(["make", "-s", "linux-guest", f"PYTHON={sys.executable}"], cwd=REPO,
                              capture_output=True, text=True)  # fmt: skip
    if proc.returncode != 0:
        pytest.fail(f"make linux-guest failed:\n{proc.stdout}\n{proc.stderr}")
    guest = LinuxGuest(BUILD / "vmlinux", BUILD / "initramfs.cpio", BUILD / "linux" / "init")
    for path in (guest.vmlinux, guest.initramfs, guest.init):
        assert path.is_file(), f"make linux-guest did not produce {path}"
    return guest


