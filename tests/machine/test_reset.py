"""An in-process reset gives the guest exactly a fresh machine: the same trace, console, instruction count and
final RAM, whatever the reset keeps to be fast (translated code, the finalized device tree and the client
interface's start, the store guard) and whatever the previous run did (CAS, tree edits, a run cut short)."""

from __future__ import annotations

import zlib
from typing import Any

import pytest

from xive_machine.firmware import devtree as dt
from xive_machine.firmware.vof import find_path
from xive_machine.machine.config import MachineConfig
from xive_machine.machine.spapr import SpaprMachine
from xive_machine.trace.events import ListSink

MEMORY = 128 << 20  # the smallest pseries: cheap to compare whole
IMAGES: dict[str, dict[str, Any]] = {
    "hello": {},
    "hello-le": {},
    "exceptions": {},
    "cas": {},
    "cas-le": {},
    "timer": {},
    "xics-ipi": {},
    "xive-ipi": {},
    "xive-ipi-smp": {"smp": 2},
    "smp": {"smp": 4},
    "hcall-loop": {"append": "n=100"},
}


def _machine(traced: bool, **options: Any) -> SpaprMachine:
    return SpaprMachine(MachineConfig(echo_console=False, memory=MEMORY, **options),
                        trace=ListSink() if traced else None)


def _outcome(m: SpaprMachine) -> tuple:
    """What a run leaves that the guest could tell apart: its result, trace, final RAM and device tree."""
    r = m.run(max_insns=50_000_000, timeout=60)
    events = list(m.trace.events) if m.trace is not None else None
    if m.trace is not None:
        m.trace.events.clear()
    return (r.reason, r.exit_code, r.console, r.instructions, m.clock.insns, events, zlib.crc32(m.ram.buf),
            dt.to_dtb(m.tree))


def _fresh(path: str, traced: bool, **options: Any) -> tuple:
    m = _machine(traced, **options)
    m.load(path)
    out = _outcome(m)
    m.close()
    return out


@pytest.mark.parametrize("traced", [False, True], ids=["untraced", "traced"])
@pytest.mark.parametrize("name", list(IMAGES))
def test_reset_and_rerun_is_a_fresh_machine(name: str, traced: bool, image) -> None:
    """Each rerun after a reset (the first one builds what later ones reuse) matches a fresh machine's run."""
    path = image(name)
    fresh = _fresh(path, traced, **IMAGES[name])
    assert fresh[0] == "power-off", fresh[:3]
    m = _machine(traced, **IMAGES[name])
    m.load(path)
    assert _outcome(m) == fresh
    for _ in range(3):
        m.reset()
        assert _outcome(m) == fresh
    m.close()


def test_reset_after_a_run_cut_short(image) -> None:
    """A run stopped half-way (CAS not done, stacks half written) leaves nothing behind."""
    path = image("cas")
    fresh = _fresh(path, True)
    m = _machine(True)
    m.load(path)
    m.run(max_insns=fresh[3] // 2)
    m.trace.events.clear()
    m.reset()
    assert _outcome(m) == fresh
    m.close()


def test_reset_after_the_tree_was_edited(image) -> None:
    """The tree a reset keeps is taken again only if nothing edited it: a property replaced, one changed in
    place or a memory reservation added all make the next reset build the tree anew."""
    path = image("hello")
    fresh = _fresh(path, True)
    m = _machine(True)
    m.load(path)
    m.run()
    m.reset()
    m.run()

    def replace(tree: Any) -> None:
        dt.set_prop(find_path(tree, "/chosen"), "bootargs", b"edited\0")

    def in_place(tree: Any) -> None:
        find_path(tree, "/rtas").get_property("power-off").data[0] ^= 1

    def reserve(tree: Any) -> None:
        tree.entries.append({"address": 0x1000, "size": 0x1000})

    for edit in (replace, in_place, reserve):
        edit(m.tree)
        m.trace.events.clear()
        m.reset()
        assert _outcome(m) == fresh, edit.__name__
    m.close()


def test_reset_forgets_what_the_client_told_the_firmware(image) -> None:
    """An initrd the client announced (setprop linux,initrd-start/-end on /chosen) belongs to that run: the
    tree after a reset is the fresh machine's."""
    path = image("hello")
    fresh = _fresh(path, True)
    m = _machine(True)
    m.load(path)
    m.run()
    m.vof.state.initrd = (0x0100_0000, 0x1000)
    m.trace.events.clear()
    m.reset()
    assert _outcome(m) == fresh
    m.close()
