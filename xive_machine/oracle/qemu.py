"""Run a guest ELF on QEMU 7.2 ``pseries`` (VOF firmware) and capture its console.

QEMU is the reference the machine is compared against byte for byte: the guest
images in ``guest_images/`` print deterministic text over H_PUT_TERM_CHAR and
power off through RTAS, which makes QEMU exit.  VOF (``x-vof=on``) prints
nothing itself and boots in ~40 ms, so the console holds only guest output.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

QEMU_BINARY = "qemu-system-ppc64"

# TCG cannot provide these Spectre-mitigation capabilities; declaring them
# broken silences four warnings on stderr without changing guest behaviour.
_CAP_FLAGS = "cap-cfpc=broken,cap-sbbc=broken,cap-ibs=broken,cap-ccf-assist=off"


@dataclass(frozen=True)
class QemuResult:
    console: str  # everything the guest printed (stdout of QEMU)
    exit_code: int | None  # None if QEMU had to be killed on timeout
    elapsed_s: float
    stderr: str = ""
    timed_out: bool = False


def qemu_available() -> bool:
    """True if qemu-system-ppc64 can be run."""
    return shutil.which(QEMU_BINARY) is not None


def qemu_command(
    elf_path: str | Path,
    ic_mode: str = "dual",
    smp: int = 1,
    memory: str = "512M",
    extra: tuple[str, ...] | list[str] = (),
    append: str | None = None,
) -> list[str]:
    """The qemu-system-ppc64 command line used by :func:`run_qemu`."""
    if ic_mode not in ("dual", "xics", "xive"):
        raise ValueError(f"ic_mode must be dual, xics or xive, not {ic_mode!r}")
    cmd = [
        QEMU_BINARY,
        "-M", f"pseries,x-vof=on,ic-mode={ic_mode},{_CAP_FLAGS}",
        "-accel", "tcg",
        "-cpu", "POWER9",
        "-m", memory,
        "-smp", str(smp),
        "-nographic",
        "-nodefaults",
        "-serial", "mon:stdio",
        "-kernel", str(elf_path),
    ]  # fmt: skip
    if append is not None:
        cmd += ["-append", append]
    cmd += list(extra)
    return cmd


def run_qemu(
    elf_path: str | Path,
    ic_mode: str = "dual",
    smp: int = 1,
    memory: str = "512M",
    timeout: float = 60,
    extra: tuple[str, ...] | list[str] = (),
    append: str | None = None,
) -> QemuResult:
    """Boot ``elf_path`` under QEMU pseries + VOF and return its console output.

    ``append`` becomes ``/chosen/bootargs`` (``-append``).  On timeout QEMU is
    killed and the result has ``timed_out=True`` and ``exit_code=None``.
    """
    if not Path(elf_path).is_file():
        raise FileNotFoundError(elf_path)
    cmd = qemu_command(elf_path, ic_mode, smp, memory, extra, append)
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        timed_out = True
    elapsed = time.monotonic() - t0
    return QemuResult(
        console=out.decode("latin-1"),
        exit_code=None if timed_out else proc.returncode,
        elapsed_s=elapsed,
        stderr=err.decode("utf-8", "replace"),
        timed_out=timed_out,
    )
