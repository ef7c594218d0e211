"""Snapshot, restore, run to the end: the console is the uninterrupted run's (the guests count their
interrupts, so a lost or duplicated one shows), and in deterministic mode the restored machine goes on exactly
as the original does from the same point (same instruction count at power-off)."""

from __future__ import annotations

import functools
import os
import random
import subprocess
import sys

import pytest

from xive_machine import migration
from xive_machine.errors import ConfigError
from xive_machine.machine.config import MachineConfig
from xive_machine.machine.spapr import SpaprMachine
from xive_machine.migration import stream

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def machine(path: str, **options) -> SpaprMachine:
    m = SpaprMachine(MachineConfig(echo_console=False, **options))
    m.load(path)
    return m


@functools.cache
def reference(path: str, options: tuple) -> tuple[str, int, int]:
    """Console, exit code and instruction count of the uninterrupted run."""
    with SpaprMachine(MachineConfig(echo_console=False, **dict(options))) as m:
        r = m.boot(path)
        assert r.powered_off, f"{path}: {r.reason}: {r.message}"
        return r.console, r.exit_code, m.clock.insns


def sections_without_stop_reason(data: bytes) -> dict:
    snap = stream.decode(data)
    misc = snap.sections["MISC"][0]
    misc.stop_reason, misc.exit_code, misc.stop_message = "", 0, ""  # a resumable stop is not restored
    return snap.sections


def check_at(path: str, n: int, **options) -> None:
    """Stop at `n`, snapshot, let the original go on; restore into a new machine, let it go on; compare."""
    console, code, insns = reference(path, tuple(sorted(options.items())))
    m = machine(path, **options)
    r = m.run(max_insns=n)
    assert r.reason == "max-insns", f"the guest ended before instruction {n}"
    data = m.save()
    with migration.restore(data, echo_console=False) as m2:
        # nothing is lost: the restored machine saves to the same snapshot
        assert sections_without_stop_reason(m2.save()) == sections_without_stop_reason(data)
        r1 = m.run()
        r2 = m2.run()
        assert r2.console == console, f"{os.path.basename(path)} restored at {n}: console differs"
        assert r1.console == console
        assert (r2.reason, r2.exit_code) == ("power-off", code)
        assert m2.clock.insns == m.clock.insns, "the restored run is not instruction-exact"
        if options.get("smp", 1) == 1:  # one vCPU: no scheduler round to restart, so exactly the whole run
            assert m2.clock.insns == insns
    m.close()


@pytest.mark.parametrize(("name", "options", "points"), [
    ("xive-ipi", {}, (60_000, 200_000, 400_000)),  # before CAS, IPI traffic, teardown
    ("xive-ipi-smp", {"smp": 2}, (300_000, 700_000)),
    ("xive-ipi-smp", {"smp": 4}, (1_000_000,)),
    ("xics-ipi", {}, (150_000, 300_000)),
    ("xics-ipi", {"irqchip": "kvm"}, (150_000, 300_000)),  # XICS state in the XICS-on-XIVE device
    ("xics-ipi-smp", {"smp": 2, "irqchip": "kvm"}, (60_000, 120_000, 180_000)),
    ("xive-ipi-smp", {"smp": 2, "irqchip": "kvm"}, (60_000,)),  # before CAS: XICS-on-XIVE, then XIVE native
    ("timer", {}, (5_000_000, 15_000_000)),  # decrementer armed, vCPU ceded
    ("xive-ipi-le", {}, (250_000,)),
    ("hello", {"boot": "fdt"}, (60_000,)),
])
def test_restore_continues_like_the_original(image, name, options, points) -> None:
    for n in points:
        check_at(image(name), n, **options)


def test_snapshot_right_after_cas(image) -> None:
    path = image("cas")
    console, _, _ = reference(path, ())
    m = machine(path)
    assert m.run(until="cas").reason == "until"
    data = m.save()
    with migration.restore(data, echo_console=False) as m2:
        assert m2.cas is not None and m2.cas.result.ok and m2.intc.name == "xive" and m2.xive_negotiated
        assert m2.fdt_blob() == m.fdt_blob()
        assert m2.run().console == console
    m.close()


@pytest.mark.parametrize(("saved_on", "restored_on"), [("emulated", "kvm"), ("kvm", "emulated"), ("kvm", "kvm")])
def test_xive_state_moves_between_backends(image, saved_on, restored_on) -> None:
    """After XIVE is active (queues, routing and thread contexts live in the backend), a snapshot of one
    backend goes on on the other; the count of IPIs received is in the console."""
    path = image("xive-ipi-smp")
    console, _, _ = reference(path, (("smp", 2),))
    m = machine(path, smp=2, irqchip=saved_on)
    m.run(max_insns=3_000_000)
    assert m.xive_negotiated
    with migration.restore(m.save(), echo_console=False, irqchip=restored_on) as m2:
        assert m2.config.irqchip == restored_on
        assert m2.run().console == console
    m.close()


@pytest.mark.parametrize(("saved_on", "restored_on"), [("emulated", "kvm"), ("kvm", "emulated"), ("kvm", "kvm")])
def test_xics_state_moves_between_backends(image, saved_on, restored_on) -> None:
    """While XICS is active (presenters and sources in the XICS-on-XIVE device under kvm), a snapshot of one
    backend saves again to the same bytes on the other and goes on exactly as the original."""
    path = image("xics-ipi-smp")
    console, _, insns = reference(path, (("smp", 2),))
    m = machine(path, smp=2, irqchip=saved_on)
    m.run(max_insns=150_000)
    assert m.intc.name == "xics" and not m.xive_negotiated
    data = m.save()
    with migration.restore(data, echo_console=False, irqchip=restored_on) as m2:
        assert m2.config.irqchip == restored_on
        assert sections_without_stop_reason(m2.save()) == sections_without_stop_reason(data)
        assert m2.run().console == console
        assert m2.clock.insns == insns
    m.close()


def test_ten_random_snapshot_cycles_xics_ipi_smp_kvm(image) -> None:
    run_cycles(image("xics-ipi-smp"), seed=4, cycles=10, smp=2, irqchip="kvm")


def run_cycles(path: str, seed: int, cycles: int, **options) -> None:
    """Many snapshot/restore cycles at pseudo-random points; a control machine stops at the same points
    without being restored: both end identical, and as the uninterrupted run prints."""
    console, _, total = reference(path, tuple(sorted(options.items())))
    rng = random.Random(seed)
    m = machine(path, **options)
    control = machine(path, **options)
    for _ in range(cycles):
        n = rng.randrange(1, max(2, 2 * total // cycles))
        r = m.run(max_insns=n)
        control.run(max_insns=n)
        if r.reason != "max-insns":
            break
        data = m.save()
        m.close()
        m = migration.restore(data, echo_console=False)
    r = m.run()
    rc = control.run()
    assert r.console == rc.console == console
    assert m.clock.insns == control.clock.insns == total  # stopping, saving, restoring change nothing
    m.close()
    control.close()


def test_ten_random_snapshot_cycles_xive_ipi_smp(image) -> None:
    run_cycles(image("xive-ipi-smp"), seed=1, cycles=10, smp=2)


@pytest.mark.slow
def test_hundred_random_snapshot_cycles_xive_ipi_smp(image) -> None:
    run_cycles(image("xive-ipi-smp"), seed=2, cycles=100, smp=2)
    run_cycles(image("xive-ipi-smp"), seed=3, cycles=100, smp=4)


def test_incremental_snapshot_holds_only_changed_ram(image, tmp_path) -> None:
    path = image("xive-ipi-smp")
    console, _, _ = reference(path, (("smp", 2),))
    m = machine(path, smp=2)
    m.run(max_insns=300_000)
    full = m.snapshot(tmp_path / "a.xm")
    m.run(max_insns=1_000_000)
    inc = m.snapshot(tmp_path / "b.xm", incremental=True)
    whole = m.save()
    assert inc["incremental"] and not full["incremental"]
    snap = migration.load(tmp_path / "b.xm")
    assert snap.incremental and snap.sections["RAM "][0].base_file == "a.xm"
    assert len(snap.sections["RAM "][0].chunks) < len(stream.decode(whole).sections["RAM "][0].chunks)
    with migration.restore(tmp_path / "b.xm", echo_console=False) as m2:
        assert sections_without_stop_reason(m2.save()) == sections_without_stop_reason(whole)
        assert m2.run().console == console
    os.unlink(tmp_path / "a.xm")  # the base is needed
    with pytest.raises(Exception, match="a.xm: no such file"):
        migration.restore(tmp_path / "b.xm", echo_console=False)
    m.close()


def test_cli_snapshot_then_restore_in_a_new_process(image, tmp_path) -> None:
    """`run --snapshot-at N` then `restore` (two processes): stdout of both is the full run's stdout."""
    path = image("xive-ipi-smp")
    snap = tmp_path / "s.xm"
    cli = [sys.executable, "-m", "xive_machine.cli.main"]
    env = dict(os.environ, PYTHONPATH=REPO)
    first = subprocess.run([*cli, "run", "--smp", "2", "--snapshot-at", "400000", "--snapshot-file", str(snap),
                            path], capture_output=True, env=env, timeout=120)
    assert first.returncode == 0, first.stderr
    assert str(snap) in first.stderr.decode()
    second = subprocess.run([*cli, "restore", str(snap)], capture_output=True, env=env, timeout=120)
    assert second.returncode == 0, second.stderr
    console, _, _ = reference(path, (("smp", 2),))
    assert (first.stdout + second.stdout).decode() == console
    info = subprocess.run([*cli, "snapshot", "info", str(snap)], capture_output=True, env=env, timeout=60)
    assert info.returncode == 0 and b"instructions: 4000" in info.stdout and b"vCPU 1:" in info.stdout  # ~400000


def test_reset_after_restore_boots_the_saved_images(image) -> None:
    """A restored machine keeps what reset needs (boot images, firmware entry points): the guest reboots."""
    path = image("xics-ipi")
    console, _, insns = reference(path, ())
    m = machine(path)
    m.run(max_insns=200_000)
    with migration.restore(m.save(), echo_console=False) as m2:
        m2.reset()
        r = m2.run()
        assert r.console == console and m2.clock.insns == insns
    m.close()


def test_cli_snapshot_point_after_the_end_is_an_error(image, tmp_path, capfd) -> None:
    from xive_machine.cli.main import main

    snap = tmp_path / "late.xm"
    assert main(["run", "--console", "none", "--snapshot-at", "10000000000", "--snapshot-file", str(snap),
                 image("hello")]) == 2
    err = capfd.readouterr().err
    assert "before --snapshot-at 10000000000: no snapshot written" in err
    assert not snap.exists()


def test_a_finished_guest_stays_finished(image) -> None:
    path = image("hello")
    console, code, _ = reference(path, ())
    m = machine(path)
    m.run()
    with migration.restore(m.save(), echo_console=False) as m2:
        r = m2.run()
        assert (r.reason, r.exit_code, r.console, r.instructions) == ("power-off", code, console, 0)
    m.close()


def test_load_state_into_a_machine_running_another_guest_is_refused(image) -> None:
    m = machine(image("xics-ipi"))
    m.run(max_insns=100_000)
    data = m.save()
    other = machine(image("timer"))
    other.run()  # its time instructions are hooked now, at addresses where xics-ipi has other code
    before = other.save()
    with pytest.raises(ConfigError, match="restore into a new machine"):
        other.load_state(data)
    assert other.save() == before  # refused before anything changed
    same = machine(image("xics-ipi"))  # the same kernel: its time hooks are the snapshot's
    same.load_state(data)
    assert same.run().console == reference(image("xics-ipi"), ())[0]
    for x in (m, other, same):
        x.close()


def test_every_saved_register_round_trips(image) -> None:
    """Values the guest images leave at zero (FPRs, FPSCR, most SPRs) are set here, so a register the
    snapshot dropped or swapped would show."""
    from xive_machine.cpu import regs as R
    from xive_machine.migration.state import GUEST_SPRS

    m = machine(image("hello"), smp=2)
    m.run(max_insns=50_000)
    v = m.vcpus[1]
    for n in range(32):
        v.set_gpr(n, 0x1111_0000_0000_0000 + n)
        v.set_reg(R.FPR[n], 0x4000_0000_0000_0000 + n)
    for reg, value in ((R.FPSCR, 0x8), (R.REG_CR, 0x12345678), (R.REG_LR, 0x4000), (R.REG_CTR, 7),
                       (R.REG_XER, 0x20000000)):
        v.set_reg(reg, value)
    for k, spr in enumerate(GUEST_SPRS):
        v.set_spr(spr, 0x100 + k)
    v.flush_redirect()
    v.pc, v.msr = 0x400100, R.MSR_SF | R.MSR_ME
    with migration.restore(m.save(), echo_console=False) as m2:
        w = m2.vcpus[1]
        assert [w.gpr(n) for n in range(32)] == [0x1111_0000_0000_0000 + n for n in range(32)]
        assert [w.reg(R.FPR[n]) for n in range(32)] == [0x4000_0000_0000_0000 + n for n in range(32)]
        assert [w.reg(r) for r in (R.FPSCR, R.REG_CR, R.REG_LR, R.REG_CTR)] == [0x8, 0x12345678, 0x4000, 7]
        assert w.xer == 0x20000000  # as mfxer reads it (the carry lives apart from the raw XER word)
        assert [w.spr(spr) for spr in GUEST_SPRS] == [0x100 + k for k in range(len(GUEST_SPRS))]
        assert (w.pc, w.msr) == (0x400100, R.MSR_SF | R.MSR_ME)
    m.close()
