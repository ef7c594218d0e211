"""`make bench`: xive-machine beside QEMU 7.2 TCG on the same guest images, in one run.

Prints a table and writes a JSON file. Every figure is a median over several runs; QEMU figures come from
whole-process runs of `qemu-system-ppc64 -M pseries,x-vof=on` (the only way to time it), ours both
in-process and as a whole process where the question is about process start.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "guest_images" / "build"


def _median(fn: Callable[[], float], runs: int) -> float:
    return statistics.median(fn() for _ in range(runs))


def _first_byte(cmd: list[str], timeout: float = 60) -> float:
    """Seconds from spawn to the first byte on the child's stdout."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    proc.stdout.read(1)
    t = time.perf_counter() - t0
    proc.stdout.read()
    proc.wait(timeout=timeout)
    return t


def _wall(cmd: list[str], timeout: float = 600) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=timeout, check=False)
    return time.perf_counter() - t0


def _machine(**cfg: Any) -> Any:
    from xive_machine.machine.config import MachineConfig
    from xive_machine.machine.spapr import SpaprMachine

    cfg.setdefault("echo_console", False)
    return SpaprMachine(MachineConfig(**cfg))


def _run_in_process(image: str, **cfg: Any) -> float:
    m = _machine(**cfg)
    m.load(image)
    t0 = time.perf_counter()
    r = m.run(timeout=600)
    dt = time.perf_counter() - t0
    if r.reason != "power-off":
        raise RuntimeError(f"{image}: {r.reason}: {r.message}")
    m.close()
    return dt


def _qemu(image: str, append: str | None = None, ic_mode: str = "dual", smp: int = 1) -> list[str]:
    from xive_machine.oracle.qemu import qemu_command

    return qemu_command(image, ic_mode=ic_mode, smp=smp, append=append)


def bench(runs: int, with_qemu: bool, linux: bool = True) -> dict[str, dict[str, float | None]]:
    from xive_machine.oracle.qemu import qemu_available

    hello = str(BUILD / "hello.elf")
    loop = str(BUILD / "hcall-loop.elf")
    xive = str(BUILD / "xive-ipi.elf")
    xics = str(BUILD / "xics-ipi.elf")
    spin = str(BUILD / "spin.elf")
    qemu = with_qemu and qemu_available()
    out: dict[str, dict[str, float | None]] = {}
    exe = [sys.executable, "-m", "xive_machine.cli.main", "run"]

    # 1. process start -> the guest's first console byte
    ours = _median(lambda: _first_byte(exe + [hello]), runs)
    theirs = _median(lambda: _first_byte(_qemu(hello)), runs) if qemu else None
    out["first_byte_process_ms"] = {"xive-machine": ours * 1e3, "qemu": theirs * 1e3 if theirs else None}

    # 2. in process: machine construction -> first console byte
    def in_process() -> float:
        t0 = time.perf_counter_ns()
        m = _machine()
        m.load(hello)
        m.run(timeout=60)
        first = m.console.first_byte_ns
        m.close()
        return (first - t0) / 1e6

    out["first_byte_in_process_ms"] = {"xive-machine": _median(in_process, runs), "qemu": None}

    # 3. in-process reset and rerun of a booted guest
    m = _machine()
    m.load(hello)
    m.run(timeout=60)

    def rerun() -> float:
        t0 = time.perf_counter()
        m.reset()
        m.run(timeout=60)
        return (time.perf_counter() - t0) * 1e3

    out["reset_rerun_ms"] = {"xive-machine": _median(rerun, runs * 4),
                             "qemu": (theirs * 1e3 if theirs else None)}  # QEMU: a new process
    m.close()

    # 3b. a 100-run regression suite: boot + trace + diff against the first run, per run
    out["regression_suite_100_runs_s"] = _regression_suite(hello, 100, qemu)

    # 3c. snapshot and restore of a 256 MiB guest in the middle of its XIVE IPI traffic
    out.update(_snapshot_figures(str(BUILD / "xive-ipi-smp.elf"), runs))

    # 4. hcall round trip: 1,000,000 hcalls minus an empty run, per hcall. H_SET_SPRG0 is the classic cheap
    # hcall (served in C here); an unknown opcode answered H_FUNCTION goes through the Python dispatcher.
    n = 1_000_000
    for name, op in (("hcall_round_trip_ns", 0x24), ("hcall_round_trip_python_dispatch_ns", 0x1000)):
        args = f"op={op} n="
        ours_n = _median(lambda a=args: _run_in_process(loop, append=f"{a}{n}"), max(1, runs // 2))
        ours_0 = _median(lambda a=args: _run_in_process(loop, append=f"{a}0"), runs)
        q_n = _median(lambda a=args: _wall(_qemu(loop, append=f"{a}{n}")), max(1, runs // 2)) if qemu else None
        q_0 = _median(lambda a=args: _wall(_qemu(loop, append=f"{a}0")), runs) if qemu else None
        out[name] = {"xive-machine": (ours_n - ours_0) / n * 1e9,
                     "qemu": (q_n - q_0) / n * 1e9 if q_n is not None and q_0 is not None else None}

    # 5. guest MIPS (a compute loop of known length)
    if os.path.exists(spin):
        insns = 3 * 50_000_000
        s_n = _median(lambda: _run_in_process(spin, append="n=50000000"), max(1, runs // 2))
        s_0 = _median(lambda: _run_in_process(spin, append="n=0"), runs)
        q_sn = _median(lambda: _wall(_qemu(spin, append="n=50000000")), max(1, runs // 2)) if qemu else None
        q_s0 = _median(lambda: _wall(_qemu(spin, append="n=0")), runs) if qemu else None
        out["guest_mips"] = {"xive-machine": insns / (s_n - s_0) / 1e6,
                             "qemu": insns / (q_sn - q_s0) / 1e6 if qemu else None}

    # 6. interrupt round trips per second (1000 IPIs on one vCPU, minus an empty run)
    for name, image, mode in (("xive_round_trips_per_s", xive, "xive"), ("xics_round_trips_per_s", xics, "xics")):
        out[name] = _round_trips(image, mode, runs, qemu)
    out["xive_ipis_per_s_4_vcpus"] = _round_trips(str(BUILD / "xive-ipi-smp.elf"), "xive", runs, qemu, smp=4,
                                                  per_run=2000)

    # 7. Debian's Linux on 2 vCPUs with XIVE (make linux-guest): to the shell, and one boot's statistics
    from xive_machine import bench_linux

    if linux and bench_linux.available():
        out.update(bench_linux.figures(max(1, min(runs, 3)), qemu))
    return out


def _snapshot_figures(image: str, runs: int) -> dict[str, dict[str, float | None]]:
    from xive_machine import migration

    m = _machine(smp=2)
    m.load(image)
    m.run(max_insns=400_000)
    size = 0

    def save() -> float:
        nonlocal size
        t0 = time.perf_counter()
        data = m.save()
        size = len(data)
        return (time.perf_counter() - t0) * 1e3

    t_save = _median(save, runs)
    data = m.save()

    def restore() -> float:
        t0 = time.perf_counter()
        r = migration.restore(data, echo_console=False)
        dt = (time.perf_counter() - t0) * 1e3
        r.close()
        return dt

    t_restore = _median(restore, runs)
    m.close()
    return {"snapshot_ms_256MiB": {"xive-machine": t_save, "qemu": None},
            "restore_ms_256MiB": {"xive-machine": t_restore, "qemu": None},
            "snapshot_size_kB_256MiB": {"xive-machine": size / 1024, "qemu": None}}


def _regression_suite(image: str, runs: int, qemu: bool) -> dict[str, float | None]:
    """Ours: one machine reset and rerun per test, traced, each trace diffed against the golden first run.
    QEMU: a process per run (its console compared), which is how a QEMU-based suite has to do it."""
    from xive_machine.machine.config import MachineConfig
    from xive_machine.machine.spapr import SpaprMachine
    from xive_machine.trace.diff import diff
    from xive_machine.trace.events import ListSink
    from xive_machine.trace.reader import from_events

    t0 = time.perf_counter()
    sink = ListSink()
    m = SpaprMachine(MachineConfig(echo_console=False), trace=sink)
    m.load(image)
    m.run(timeout=60)
    golden = from_events(sink.events)
    for _ in range(runs):
        sink.events.clear()
        m.reset()
        result = m.run(timeout=60)
        if result.reason != "power-off" or not diff(golden, from_events(sink.events)).equal:
            raise RuntimeError("the regression suite diverged")
    ours = time.perf_counter() - t0
    m.close()
    theirs = None
    if qemu:
        t0 = time.perf_counter()
        for _ in range(runs):
            _wall(_qemu(image))
        theirs = time.perf_counter() - t0
    return {"xive-machine": ours, "qemu": theirs}


def _round_trips(image: str, mode: str, runs: int, qemu: bool, smp: int = 1, n: int = 20000,
                 per_run: int | None = None) -> dict[str, float | None]:
    """Interrupts per second: a run with n IPIs (per secondary with smp > 1) minus an empty run (n large
    enough that QEMU's run time is well above its start-up noise)."""
    count = n * (smp - 1) if smp > 1 else n
    if per_run is not None:
        n, count = per_run, per_run * (smp - 1)
    ours_t = _median(lambda: _run_in_process(image, ic_mode=mode, smp=smp, append=f"n={n}"), runs)
    ours_z = _median(lambda: _run_in_process(image, ic_mode=mode, smp=smp, append="n=0"), runs)
    q_t = _median(lambda: _wall(_qemu(image, append=f"n={n}", ic_mode=mode, smp=smp)), runs) if qemu else None
    q_z = _median(lambda: _wall(_qemu(image, append="n=0", ic_mode=mode, smp=smp)), runs) if qemu else None
    return {"xive-machine": count / max(ours_t - ours_z, 1e-9),
            "qemu": count / max(q_t - q_z, 1e-9) if q_t is not None and q_z is not None else None}


def render(results: dict[str, dict[str, float | None]]) -> str:
    rows = ["| figure | xive-machine | QEMU 7.2 TCG |", "|---|---:|---:|"]
    for name, vals in results.items():
        ours, theirs = vals["xive-machine"], vals["qemu"]
        fmt = (lambda v: f"{v:,.0f}") if (ours or 0) >= 100 else (lambda v: f"{v:.2f}")
        rows.append(f"| {name} | {fmt(ours) if ours is not None else '-'} | "
                    f"{fmt(theirs) if theirs is not None else '-'} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m xive_machine.bench", description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5, help="runs per figure (median reported)")
    p.add_argument("--no-qemu", action="store_true", help="skip the QEMU side")
    p.add_argument("--no-linux", action="store_true", help="skip the Linux boot figures")
    p.add_argument("--only-linux", action="store_true", help="only the Linux boot figures")
    p.add_argument("--json", default="bench/results.json", help="where to write the figures")
    ns = p.parse_args(argv)
    if ns.only_linux:
        from xive_machine import bench_linux
        from xive_machine.oracle.qemu import qemu_available

        results = bench_linux.figures(max(1, min(ns.runs, 3)), not ns.no_qemu and qemu_available())
    else:
        results = bench(ns.runs, not ns.no_qemu, linux=not ns.no_linux)
    print(render(results))
    os.makedirs(os.path.dirname(ns.json) or ".", exist_ok=True)
    with open(ns.json, "w") as f:
        json.dump({"results": results, "runs": ns.runs, "host": os.uname().machine,
                   "python": sys.version.split()[0]}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
