"""Shared test fixtures: the built firmware stub and guest images (built once, also under pytest-xdist)."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "guest_images" / "build"


def _build_once() -> None:
    lock = REPO / ".build.lock"
    with open(lock, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        for target in ("firmware", "guests"):
            proc = subprocess.run(["make", "-s", target, f"PYTHON={sys.executable}"], cwd=REPO,
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                pytest.fail(f"make {target} failed:\n{proc.stdout}\n{proc.stderr}")


@pytest.fixture(scope="session")
def guest_build() -> Path:
    """Path of guest_images/build with every image built (never skipped: a failed build fails the tests)."""
    _build_once()
    return BUILD


@pytest.fixture
def image(guest_build: Path):
    def path(name: str) -> str:
        p = guest_build / f"{name}.elf"
        assert p.exists(), f"guest image {name} was not built"
        return str(p)

    return path


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("XIVE_MACHINE_REPO", str(REPO))
