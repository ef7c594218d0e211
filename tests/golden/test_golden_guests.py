"""Golden traces: every guest image of guest_images/Makefile boots with a trace, compared with its golden file
(test_golden_guests.golden/<image>.jsonl, .jsonl.gz for large ones). A change in any hcall, RTAS call, CAS
decision, MMIO access or interrupt the image causes fails here with the first divergence; `pytest
--update-golden` re-records.

Images are listed from the Makefile, so a new image gets a test (and asks for its golden file) without an
edit here; OPTIONS gives the machine options an image needs (the same as tests/guest/test_images_qemu.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from xive_machine.pytest_plugin import boot_guest
from xive_machine.trace.reader import load
from xive_machine.trace.replay import replay
from xive_machine.trace.show import format_lines

REPO = Path(__file__).resolve().parents[2]
MAX_INSNS = 100_000_000  # timer and the SMP images need ~20M (idle time counts); a hung image stops here
REPLAY_MAX_EVENTS = 20_000  # xive-esb's 150k events replay in ~5 s with `trace replay`; a prefix here
TIMEOUT_S = 15.0  # wall-clock backstop for images that livelock in slow paths

# Guest addresses that move whenever the image's code or data layout changes (argument blocks of the client
# interface and RTAS, the CAS vector, code addresses of exceptions, EQ slots): not hypervisor behaviour.
# Everything the hypervisor decides (rc, outputs, rets, CAS result, MMIO values, interrupts) is compared.
LAYOUT = ("ci.args", "hcall[KVMPPC_H_*].args", "cas.addr", "exc.srr0", "eq.addr")

OPTIONS: dict[str, dict] = {
    "smp": {"smp": 4},
    "xics-ipi-smp": {"smp": 2},
    "xive-ipi-smp": {"smp": 2},
    "hcall-loop": {"append": "n=100"},
    "spin": {"append": "n=1000"},
}


def makefile_images() -> list[str]:
    """IMAGES of guest_images/Makefile (BE_IMAGES then LE_IMAGES, continuation lines joined)."""
    text = (REPO / "guest_images" / "Makefile").read_text().replace("\\\n", " ")
    names: list[str] = []
    for var in ("BE_IMAGES", "LE_IMAGES"):
        m = re.search(rf"^{var}\s*:?=(.*)$", text, re.MULTILINE)
        assert m, f"guest_images/Makefile has no {var}"
        names += m.group(1).split()
    return names


IMAGES = makefile_images()


def test_makefile_lists_images() -> None:
    assert "hello" in IMAGES and "hello-le" in IMAGES, IMAGES


@pytest.mark.parametrize("name", IMAGES)
def test_golden_trace(name: str, image, golden) -> None:
    options = OPTIONS.get(name.removesuffix("-le"), {})  # an -le image runs as its big-endian twin
    result = boot_guest(image(name), max_insns=MAX_INSNS, timeout=TIMEOUT_S, **options)
    if not (result.powered_off and result.exit_code == 0):
        why = result.message.splitlines()[0] if result.message else ""
        tail = "\n".join(list(format_lines(result.trace))[-15:])
        pytest.fail(f"{name} did not power off cleanly: {result.reason}: {why}\nconsole tail:\n"
                    f"{result.console[-600:]}\nlast trace events:\n{tail}", pytrace=False)
    golden.check(result, name, ignore=LAYOUT)


@pytest.mark.parametrize("name", IMAGES)
def test_golden_trace_replays(name: str, golden) -> None:
    """The recorded hcalls, RTAS calls, CAS and MMIO accesses give the same results on a machine without the
    guest (`xive-machine trace replay`), which also checks the golden file is a complete, valid trace."""
    path = golden.path(name)
    if not path.exists():
        pytest.fail(f"no golden trace for {name} ({path.name}): record it with --update-golden", pytrace=False)
    t = load(str(path))
    del t.events[REPLAY_MAX_EVENTS:]  # a prefix replays as well as the whole; the rest costs seconds
    report = replay(t)
    assert report.ok, report.render()
