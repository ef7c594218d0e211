"""Run every guest image on QEMU 7.2 pseries (VOF) and check its console byte for byte.

The expected texts below were captured from QEMU 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18) and
checked by hand against the documents in /work/shared/docs.  They are also what our machine
must print for the same image and machine options (see ``EXPECTED``: image name, run_qemu
keyword arguments, console).  Images print only deterministic text, so no normalisation is
needed.  Build the images with ``make -C guest_images`` (the fixture does it).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from xive_machine.oracle.qemu import qemu_available, run_qemu

from .expected import EXPECTED

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "guest_images"
BUILD = IMAGES / "build"

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.skipif(not qemu_available() and not os.environ.get("CI"),
                       reason="qemu-system-ppc64 not installed (apt-get install qemu-system-ppc; CI installs it)"),
]


@pytest.fixture(scope="session")
def images() -> Path:
    """Build all guest images once per session (make is incremental)."""
    proc = subprocess.run(["make", "-C", str(IMAGES)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"make -C guest_images failed:\n{proc.stdout}\n{proc.stderr}")
    return BUILD


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_image_console(images: Path, case: str) -> None:
    image, kwargs, expected = EXPECTED[case]
    result = run_qemu(images / f"{image}.elf", timeout=60, **kwargs)
    assert not result.timed_out, f"{case}: QEMU timed out; console so far:\n{result.console}"
    assert result.console == expected
    assert result.exit_code == 0


def test_little_endian_images_print_the_same(images: Path) -> None:
    """An LE build must behave exactly like its BE twin (MMIO, RTAS and CI
    buffers are big-endian in both), except where it prints its byte order."""
    for le_case, be_case in [
        ("cas-le", "cas-dual-xive"),
        ("timer-le", "timer"),
        ("xive-ipi-le", "xive-ipi"),
        ("xics-ipi-le", "xics-ipi"),
        ("xive-ipi-smp-le-4", "xive-ipi-smp-4"),
        ("xive-esb-le", "xive-esb"),
    ]:
        assert EXPECTED[le_case][2] == EXPECTED[be_case][2], le_case


def test_every_image_has_a_case(images: Path) -> None:
    built = {p.stem for p in images.glob("*.elf")}
    covered = {image for image, _, _ in EXPECTED.values()}
    assert built <= covered, f"images without an expected console: {sorted(built - covered)}"


def test_hcall_loop_default_count(images: Path) -> None:
    """Without bootargs the benchmark image runs 1,000,000 hcalls."""
    result = run_qemu(images / "hcall-loop.elf", timeout=120)
    assert result.console == "done 1000000\n"
    assert result.exit_code == 0


def test_xive_cas_on_xics_only_machine_stops_qemu(images: Path) -> None:
    """QEMU exits when the guest asks CAS for XIVE on ic-mode=xics (our machine
    reports this as an error instead; xive.md / qemu-pseries-oracle.md)."""
    result = run_qemu(images / "cas.elf", ic_mode="xics", timeout=60)
    assert "PASS" not in result.console
    assert "Guest requested unavailable interrupt mode (XIVE)" in result.stderr
