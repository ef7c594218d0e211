"""The command line as a user meets it: exit codes, one-line errors for bad input, never a traceback."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest

from xive_machine.cli.main import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xive_machine.cli.main", *args], capture_output=True,
                          text=True, timeout=120)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_hello_boots_and_powers_off(image) -> None:
    proc = run_cli("run", image("hello"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("hello from xive-machine\n")
    assert proc.stdout.endswith("PASS\n")


def test_missing_file(tmp_path: Path) -> None:
    proc = run_cli("run", str(tmp_path / "nope.elf"))
    assert proc.returncode == 2
    assert "no such file" in one_error_line(proc)


def test_not_an_elf(tmp_path: Path) -> None:
    p = tmp_path / "text.elf"
    p.write_text("hello\n")
    proc = run_cli("run", str(p))
    assert proc.returncode == 2
    assert "not an ELF" in one_error_line(proc)


def test_32bit_elf(tmp_path: Path, image) -> None:
    data = bytearray(Path(image("hello")).read_bytes())
    data[4] = 1  # EI_CLASS = ELFCLASS32
    p = tmp_path / "e32.elf"
    p.write_bytes(bytes(data))
    proc = run_cli("run", str(p))
    assert proc.returncode == 2
    one_error_line(proc)


def test_non_powerpc_elf() -> None:
    proc = run_cli("run", sys.executable)
    assert proc.returncode == 2
    assert "not 64-bit PowerPC" in one_error_line(proc)


def test_image_that_does_not_fit(tmp_path: Path, image) -> None:
    data = bytearray(Path(image("hello")).read_bytes())
    phoff = struct.unpack_from(">Q", data, 0x20)[0]
    struct.pack_into(">Q", data, phoff + 0x28, 0x2000_0000)  # first PT_LOAD p_memsz = 512 MiB
    p = tmp_path / "big.elf"
    p.write_bytes(bytes(data))
    proc = run_cli("run", "--memory", "256M", str(p))
    assert proc.returncode == 2
    assert "does not fit" in one_error_line(proc)


def test_guest_that_never_stops_is_stopped_by_max_insns(image) -> None:
    proc = run_cli("run", "--max-insns", "20000", image("hello"))
    assert proc.returncode == 3
    assert "--max-insns" in proc.stderr


def test_guest_running_wild_gets_a_diagnostic(tmp_path: Path, image) -> None:
    data = bytearray(Path(image("hello")).read_bytes())
    phoff = struct.unpack_from(">Q", data, 0x20)[0]
    offset = struct.unpack_from(">Q", data, phoff + 0x08)[0]
    struct.pack_into(">I", data, offset, 0)  # the first instruction becomes illegal; no handler at 0x700
    p = tmp_path / "wild.elf"
    p.write_bytes(bytes(data))
    proc = run_cli("run", str(p))
    assert proc.returncode == 4
    assert "program interrupt (0x700) at 0x400000 with no handler installed" in proc.stderr
    assert "r31" in proc.stderr and "Traceback" not in proc.stderr


def test_dts_shows_one_cpu_node_per_vcpu(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dts", "--smp", "2"]) == 0
    out = capsys.readouterr().out
    assert "PowerPC,POWER9@0 {" in out and "PowerPC,POWER9@1 {" in out
    assert "ibm,interrupt-server-ranges = <0x00 0x02>;" in out


def test_trace_is_json_lines_with_a_header(tmp_path: Path, image) -> None:
    import json

    t = tmp_path / "t.jsonl"
    proc = run_cli("run", "--trace", str(t), "--console", "none", image("hello"))
    assert proc.returncode == 0
    records = [json.loads(line) for line in t.read_text().splitlines()]
    assert records[0]["ev"] == "header" and records[0]["config"]["smp"] == 1
    names = [r.get("name") for r in records if r["ev"] == "hcall"]
    assert "H_PUT_TERM_CHAR" in names and "KVMPPC_H_RTAS" in names
    assert any(r["ev"] == "rtas" and r["name"] == "power-off" for r in records)
    assert any(r["ev"] == "ci" and r["service"] == "finddevice" for r in records)


def test_fdt_boot_hands_the_tree_in_r3(image) -> None:
    """--boot fdt: the flattened tree at the top of the RMA minus 2 MiB, r3 pointing to it, no client
    interface (r5 = 0); the guest runtime reads bootargs and the RTAS tokens from the blob."""
    proc = run_cli("run", "--boot", "fdt", "--append", "a b", image("hello"))
    assert proc.returncode == 0, proc.stderr
    assert f"r3={256 - 2 << 20:#x} r4=0x0" in proc.stdout
    assert 'bootargs "a b"' in proc.stdout and "rtas power-off token 0x2003" in proc.stdout
    assert proc.stdout.endswith("PASS\n")
