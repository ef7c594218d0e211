"""Bad snapshot input gives one clear ConfigError line (CLI: exit 2) and never touches the file; writes are
atomic; the XIVE quiesce follows QEMU's order and loses no event latched while stopped."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xive_machine import migration
from xive_machine.errors import ConfigError
from xive_machine.hcalls.codes import H, Op
from xive_machine.hcalls.xive import XIVE_HCALLS
from xive_machine.intc.xive.regs import XIVE_ESB_OFF, XIVE_ESB_PENDING, XIVE_ESB_QUEUED, XIVE_ESB_RESET
from xive_machine.intc.xive.spapr import SpaprXive
from xive_machine.machine.config import MachineConfig
from xive_machine.machine.spapr import SpaprMachine
from xive_machine.memory.ram import GuestRam
from xive_machine.migration import format as F
from xive_machine.migration import stream
from xive_machine.migration import xive as XQ

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def good(guest_build) -> bytes:
    """A snapshot of xive-ipi-smp (2 vCPUs) during IPI traffic."""
    with SpaprMachine(MachineConfig(echo_console=False, smp=2)) as m:
        m.load(str(guest_build / "xive-ipi-smp.elf"))
        m.run(max_insns=3_000_000)
        return m.save()


def one_line_error(data: bytes) -> str:
    with pytest.raises(ConfigError) as exc:
        migration.restore(data, echo_console=False)
    msg = str(exc.value)
    assert "\n" not in msg and msg
    return msg


def test_truncated_snapshot(good) -> None:
    for cut in (0, 5, 12, 40, len(good) // 2, len(good) - 1):
        msg = one_line_error(good[:cut])
        assert "truncated" in msg or "not a xive-machine snapshot" in msg, msg
    assert "truncated" in one_line_error(good[:len(good) - 1])


def test_flipped_byte_is_a_checksum_error(good) -> None:
    for off in (len(good) // 3, len(good) - 10):
        bad = bytearray(good)
        bad[off] ^= 0x40
        assert "checksum mismatch in section" in one_line_error(bytes(bad))
    bad = bytearray(good)
    bad[30] ^= 1  # inside the config JSON
    assert "header checksum mismatch" in one_line_error(bytes(bad))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_single_damaged_byte_is_refused(good, data) -> None:
    off = data.draw(st.integers(0, len(good) - 1))
    flip = data.draw(st.integers(1, 255))
    bad = bytearray(good)
    bad[off] ^= flip
    with pytest.raises(ConfigError):
        stream.decode(bytes(bad))


def test_unknown_version_and_not_a_snapshot(good) -> None:
    bad = bytearray(good)
    bad[8:10] = (F.FORMAT_VERSION + 1).to_bytes(2, "big")
    assert one_line_error(bytes(bad)) == (f"snapshot: snapshot format version {F.FORMAT_VERSION + 1} is not "
                                         f"supported (this xive-machine reads version {F.FORMAT_VERSION})")
    assert one_line_error(b"\x7fELF" + bytes(100)) == "snapshot: not a xive-machine snapshot"


def test_smp_and_memory_must_match(good, guest_build) -> None:
    with pytest.raises(ConfigError, match=r"^snapshot was taken with --smp 2; the machine has 4$"):
        migration.restore(good, smp=4)
    with pytest.raises(ConfigError, match=r"^snapshot was taken with --memory 256M; the machine has 512M$"):
        migration.restore(good, memory="512M")
    with SpaprMachine(MachineConfig(echo_console=False)) as m:  # an existing one-vCPU machine
        with pytest.raises(ConfigError, match="--smp 2; the machine has 1"):
            m.load_state(good)


def test_cli_bad_file_exit_2_and_file_unchanged(good, tmp_path) -> None:
    cli = [sys.executable, "-m", "xive_machine.cli.main"]
    env = dict(os.environ, PYTHONPATH=REPO)
    cases = {"trunc.xm": good[:1000], "flip.xm": good[:500] + bytes([good[500] ^ 1]) + good[501:]}
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        before = (hashlib.sha256(path.read_bytes()).hexdigest(), os.stat(path).st_mtime_ns)
        for cmd in (["restore", str(path)], ["snapshot", "info", str(path)]):
            p = subprocess.run([*cli, *cmd], capture_output=True, text=True, env=env, timeout=60)
            assert p.returncode == 2, p.stderr
            lines = p.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith(f"xive-machine: error: {path}: "), p.stderr
        assert (hashlib.sha256(path.read_bytes()).hexdigest(), os.stat(path).st_mtime_ns) == before


def test_write_is_atomic(good, tmp_path, monkeypatch) -> None:
    path = tmp_path / "s.xm"
    stream.write_atomic(path, good)
    assert path.read_bytes() == good
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600

    def crash(src, dst):  # noqa: ANN001, ANN202 - os.replace's signature
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(ConfigError, match="cannot write snapshot"):
        stream.write_atomic(path, b"half a snapshot")
    assert path.read_bytes() == good  # the good one is still there
    assert os.listdir(tmp_path) == ["s.xm"]  # and no temporary file is left


# --- the XIVE quiesce (QEMU's VM stop / VM run handlers) ----------------------------------------------------


def xive_with_sources() -> SpaprXive:
    ic = SpaprXive(GuestRam(1 << 20), 2, lambda cpu, level: None, nr_irqs=64)
    for lisn, pq in ((0, XIVE_ESB_RESET), (1, XIVE_ESB_PENDING), (2, XIVE_ESB_QUEUED)):
        ic.xsrc.set_pq(lisn, pq)
    ic.claim_irq(10, False)  # claimed and off (01): stays off
    return ic


def test_quiesce_sets_pq_10_and_keeps_the_old_pq() -> None:
    ic = xive_with_sources()
    saved = XQ.quiesce(ic)
    assert saved == {0: XIVE_ESB_RESET, 1: XIVE_ESB_PENDING, 10: XIVE_ESB_OFF}
    assert [ic.xsrc.get_pq(n) for n in (0, 1, 10)] == [XIVE_ESB_PENDING, XIVE_ESB_PENDING, XIVE_ESB_OFF]
    assert XQ.resume(ic, saved) == 0
    assert [ic.xsrc.get_pq(n) for n in (0, 1, 10)] == [XIVE_ESB_RESET, XIVE_ESB_PENDING, XIVE_ESB_OFF]


def test_event_latched_while_stopped_is_fired_again() -> None:
    ic = xive_with_sources()
    saved = XQ.quiesce(ic)
    assert not ic.trigger(0)  # arrives while stopped: latched as Q, not routed
    assert ic.xsrc.get_pq(0) == XIVE_ESB_QUEUED
    assert XQ.resume(ic, saved) == 1  # saved 00, found 11: re-fired, so it is now pending (P)
    assert ic.xsrc.get_pq(0) == XIVE_ESB_PENDING


def test_save_state_keeps_old_pq_and_leaves_the_controller_as_it_was() -> None:
    ic = xive_with_sources()
    before = ic.get_state()
    state = XQ.save_state(ic)
    assert state == before and ic.get_state() == before
    other = SpaprXive(GuestRam(1 << 20), 2, lambda cpu, level: None, nr_irqs=64)
    XQ.load_state(other, state)
    assert other.get_state() == before


def test_eq_sync_marks_queue_pages_dirty() -> None:
    ic = SpaprXive(GuestRam(1 << 20), 1, lambda cpu, level: None, nr_irqs=64)
    fn = XIVE_HCALLS.specs[Op.H_INT_SET_QUEUE_CONFIG].fn
    assert fn(ic, 0, 0, 0, 3, 0x10000, 16)[0] == H.SUCCESS  # server 0 prio 3: a 64 KiB queue at 0x10000
    ic.ram.dirty_pages.clear()
    XQ.quiesce(ic)
    assert ic.ram.dirty_pages == set(range(0x10, 0x20))
