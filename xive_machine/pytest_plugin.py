"""pytest plugin (entry point `pytest11`): fixtures and markers over the public machine API.

Fixtures
  spapr_machine   factory of SpaprMachine(MachineConfig(**options)) with an in-memory trace; closed after the test
  hv              a Hypervisor (xive_machine.hypervisor); options from `@pytest.mark.hv(ic_mode=..., smp=...)`
  golden          golden-trace files next to the test module: `golden.check(trace)` diffs against
                  <module>.golden/<test name>.jsonl and fails with the first divergence; `--update-golden`
                  (re)writes the files instead
  guest_result    the RunResult of the image named by `@pytest.mark.guest(image, ic_mode=..., smp=..., ...)`,
                  booted with a trace (`result.trace` is the event list)

A failing test that used `golden` or `guest` gets an "xive-machine trace" report section: the events around
the first divergence, or the console and last events of the guest run. Nothing is shared between tests, so
the plugin works under pytest-xdist (each worker boots its own machines; golden files are per test).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

GUEST_OPTIONS = ("max_insns", "timeout")
DEFAULT_MAX_INSNS = 50_000_000
GOLDEN_GZIP_BYTES = 256 << 10  # golden traces larger than this are stored gzip-compressed (.jsonl.gz)
_SECTION = pytest.StashKey[list[str]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("xive-machine")
    group.addoption("--update-golden", action="store_true", default=False,
                    help="rewrite golden trace files from this run instead of comparing with them")
    group.addoption("--guest-dir", default=None,
                    help="where @pytest.mark.guest finds images given by name (default: the project's "
                         "`guest_build` fixture if it defines one, else <rootdir>/guest_images/build)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "guest(image, **options): boot the guest image (a name in the guest "
                            "directory or a path) with MachineConfig options (ic_mode, smp, append ...) and "
                            "max_insns/timeout; the test gets the RunResult through the guest_result fixture")
    config.addinivalue_line("markers", "hv(**options): MachineConfig options of the hv fixture")


def _note(request: pytest.FixtureRequest, lines: list[str]) -> None:
    request.node.stash[_SECTION] = lines


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call" and rep.failed:
        lines = item.stash.get(_SECTION, None)
        if lines:
            rep.sections.append(("xive-machine trace", "\n".join(lines)))


# --------------------------------------------------------------------------------------------------------
# machines


@pytest.fixture
def spapr_machine() -> Iterator[Any]:
    """`spapr_machine(**options)` -> SpaprMachine (trace=False for none); every machine closed after the test."""
    from xive_machine.machine.config import MachineConfig
    from xive_machine.machine.spapr import SpaprMachine
    from xive_machine.trace.events import ListSink

    made: list[SpaprMachine] = []

    def factory(**options: Any) -> SpaprMachine:
        options.setdefault("echo_console", False)
        trace = ListSink() if options.pop("trace", True) else None
        m = SpaprMachine(MachineConfig(**options), trace=trace)
        made.append(m)
        return m

    yield factory
    for m in made:
        m.close()


@pytest.fixture
def hv(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A Hypervisor (platform prepared, no guest); `@pytest.mark.hv(ic_mode="xive", smp=2)` configures it."""
    from xive_machine.errors import ConfigError
    from xive_machine.hypervisor import Hypervisor

    marker = request.node.get_closest_marker("hv")
    options = dict(marker.kwargs) if marker else {}
    try:
        h = Hypervisor(**options)
    except ConfigError as err:
        pytest.fail(f"@pytest.mark.hv: {err}", pytrace=False)
    yield h
    h.close()


# --------------------------------------------------------------------------------------------------------
# guests


def _guest_dir(request: pytest.FixtureRequest) -> Path:
    opt = request.config.getoption("--guest-dir")
    if opt:
        return Path(opt)
    try:
        return Path(request.getfixturevalue("guest_build"))
    except pytest.FixtureLookupError:
        return Path(str(request.config.rootpath)) / "guest_images" / "build"


def resolve_image(request: pytest.FixtureRequest, image: str) -> str:
    """A path as given, else `<guest dir>/<name>.elf`; a clear failure when it does not exist."""
    if os.sep in image or image.endswith(".elf"):
        path = Path(image)
        if not path.is_absolute():
            path = Path(str(request.node.path)).parent / path
    else:
        path = _guest_dir(request) / f"{image}.elf"
    if not path.is_file():
        pytest.fail(f"guest image {image!r} not found ({path}); build it (make guests) or pass --guest-dir",
                    pytrace=False)
    return str(path)


def boot_guest(image_path: str, **options: Any) -> Any:
    """Boot `image_path` with a traced machine; the RunResult gets `.trace` (events) and `.header`."""
    from xive_machine.machine.config import MachineConfig
    from xive_machine.machine.spapr import SpaprMachine
    from xive_machine.trace.events import ListSink
    from xive_machine.trace.reader import make_header

    run_kw = {k: options.pop(k) for k in GUEST_OPTIONS if k in options}
    run_kw.setdefault("max_insns", DEFAULT_MAX_INSNS)
    options.setdefault("echo_console", False)
    cfg = MachineConfig(**options)
    sink = ListSink()
    with SpaprMachine(cfg, trace=sink) as m:
        result = m.boot(image_path, **run_kw)
    result.trace = sink.events
    result.header = make_header(cfg, image_path)
    return result


@pytest.fixture
def guest_result(request: pytest.FixtureRequest) -> Any:
    """The RunResult of `@pytest.mark.guest(image, **options)` (console, reason, trace events, header)."""
    from xive_machine.errors import ConfigError
    from xive_machine.trace.show import format_lines

    marker = request.node.get_closest_marker("guest")
    if marker is None or not marker.args:
        pytest.fail("guest_result needs @pytest.mark.guest(image, ...)", pytrace=False)
    image = resolve_image(request, str(marker.args[0]))
    try:
        result = boot_guest(image, **marker.kwargs)
    except ConfigError as err:
        pytest.fail(f"@pytest.mark.guest({marker.args[0]!r}): {err}", pytrace=False)
    tail = list(format_lines(result.trace))[-20:]
    console = result.console[-2000:]
    why = result.message.splitlines()[0] if result.message else ""
    _note(request, [f"guest {marker.args[0]}: {result.reason} (exit {result.exit_code}) "
                    f"after {result.instructions} instructions: {why}",
                    "console (tail):", console.rstrip(), f"last {len(tail)} trace events:", *tail])
    return result


# --------------------------------------------------------------------------------------------------------
# golden traces


class Golden:
    """Golden trace files of one test: <module dir>/<module>.golden/<name>.jsonl (.jsonl.gz above 256 KiB), in
    the trace file format (so `xive-machine trace diff` and `trace show` work on them)."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self.request = request
        module = Path(str(request.node.path))
        self.dir = module.parent / f"{module.stem}.golden"
        self.update = bool(request.config.getoption("--update-golden"))

    def path(self, name: str | None = None) -> Path:
        """The golden file: <name>.jsonl, or <name>.jsonl.gz when that is the one recorded."""
        name = name or self.request.node.name
        base = self.dir / (re.sub(r"[^A-Za-z0-9_.,=+-]+", "-", name).strip("-") + ".jsonl")
        gz = base.with_name(base.name + ".gz")
        return gz if gz.exists() and not base.exists() else base

    def _write(self, path: Path, trace: Any) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        plain = path.with_name(path.name.removesuffix(".gz"))
        target = plain.with_name(plain.name + ".gz") if len(trace.dumps()) > GOLDEN_GZIP_BYTES else plain
        for old in (plain, plain.with_name(plain.name + ".gz")):
            if old != target and old.exists():
                old.unlink()
        trace.write(str(target))

    def check(self, trace: Any, name: str | None = None, *, ignore: tuple[str, ...] = (),
              config: Any = None, image: str | None = None, context: int = 3) -> None:
        """Compare `trace` (a RunResult from guest_result or machine.boot, a Hypervisor, a SpaprMachine, a
        reader.Trace, or a list of events with `config`) with the golden file; with --update-golden write it
        instead. Fails the test with the first divergence; `ignore` takes `trace diff --ignore` patterns."""
        from xive_machine.errors import ConfigError
        from xive_machine.trace import diff, reader

        current = _as_trace(trace, config, image)
        path = self.path(name)
        rel = os.path.relpath(path)
        if self.update:
            self._write(path, current)
            return
        if not path.exists():
            pytest.fail(f"golden file {rel} does not exist: run pytest with --update-golden to record it",
                        pytrace=False)
        try:
            expected = reader.load(str(path))
        except ConfigError as err:
            pytest.fail(f"golden file unusable: {err} (re-record it with --update-golden)", pytrace=False)
        expected.source = rel
        current.source = "this run"
        cfg_a = {k: v for k, v in expected.config.items() if k != "echo_console"}
        cfg_b = {k: v for k, v in current.config.items() if k != "echo_console"}
        if cfg_a != cfg_b:
            what = ", ".join(f"{k} {cfg_a.get(k)!r} -> {cfg_b.get(k)!r}" for k in sorted(set(cfg_a) | set(cfg_b))
                             if cfg_a.get(k) != cfg_b.get(k))
            pytest.fail(f"golden file {rel} was recorded with another machine config ({what}); re-record it "
                        "with --update-golden", pytrace=False)
        d = diff.diff(expected, current, ignore=("header.image_sha256", *ignore))
        if d.equal:
            return
        text = d.render(context=context, a_name=f"{rel} (golden)", b_name="this run")
        if expected.header.get("image_sha256") != current.header.get("image_sha256"):
            text += "\nnote: the guest image changed since the golden file was recorded"
        _note(self.request, [d.render(context=max(context, 10), a_name=rel, b_name="this run", max_changes=50)])
        pytest.fail(text + "\n(accept the new behaviour with --update-golden)", pytrace=False)


def _as_trace(trace: Any, config: Any, image: str | None) -> Any:
    """A reader.Trace from what a test has: a Trace, a Hypervisor, a RunResult (guest_result, machine.boot),
    a traced SpaprMachine, or a list of events (`config`/`image` then fill the header)."""
    from xive_machine.trace.reader import Trace, from_events, make_header

    if isinstance(trace, Trace):
        return Trace(trace.header, trace.events, trace.source)
    if callable(getattr(trace, "trace", None)):  # Hypervisor
        return trace.trace()
    header = getattr(trace, "header", None)
    if hasattr(trace, "config") and hasattr(trace, "dispatcher"):  # SpaprMachine
        config = config if config is not None else trace.config
        events = getattr(trace.trace, "events", None)
    else:
        events = getattr(trace, "trace", trace)
    if events is None:
        pytest.fail("golden.check: nothing to compare: the run was not traced (trace=None or a sink without "
                    "events)", pytrace=False)
    if config is not None or header is None:
        header = make_header(config, image)
    return from_events(events, header)


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Golden:
    return Golden(request)
