"""Determinism: the same image and configuration give a byte-identical trace file (deterministic clock, no
wall-clock fields), which is what makes golden traces and `trace diff` in CI meaningful."""

from __future__ import annotations

import io

import pytest

from xive_machine.machine.config import MachineConfig
from xive_machine.machine.spapr import SpaprMachine
from xive_machine.trace.jsonl import JsonlSink
from xive_machine.trace.reader import make_header, parse_lines


def traced_run(path: str, max_insns: int, **options) -> tuple[str, object]:
    cfg = MachineConfig(echo_console=False, **options)
    stream = io.StringIO()
    sink = JsonlSink(stream, {k: v for k, v in make_header(cfg, path).items()
                              if k in ("config", "image", "image_sha256")})
    with SpaprMachine(cfg, trace=sink) as m:
        result = m.boot(path, max_insns=max_insns)
    return stream.getvalue(), result


def assert_same_twice(path: str, max_insns: int, **options) -> None:
    first, r1 = traced_run(path, max_insns, **options)
    second, r2 = traced_run(path, max_insns, **options)
    assert r1.powered_off, f"{path}: {r1.reason}: {r1.message}"
    assert r2.powered_off, f"{path}: {r2.reason}: {r2.message}"
    trace = parse_lines(io.StringIO(first), "first run")  # the file is a valid trace ...
    assert trace.events, "empty trace"
    if first != second:  # ... and the second run wrote the very same bytes
        a, b = first.splitlines(), second.splitlines()
        k = next(i for i in range(min(len(a), len(b)) + 1) if i >= min(len(a), len(b)) or a[i] != b[i])
        pytest.fail(f"runs differ from line {k + 1}:\n  first:  {a[k] if k < len(a) else '<end>'}\n"
                    f"  second: {b[k] if k < len(b) else '<end>'}", pytrace=False)


def test_hello_trace_is_byte_identical(image) -> None:
    assert_same_twice(image("hello"), 5_000_000)


def test_xive_ipi_smp4_trace_is_byte_identical(image) -> None:
    assert_same_twice(image("xive-ipi-smp"), 200_000_000, smp=4)
