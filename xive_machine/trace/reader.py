"""Load and validate trace files (JSON lines: a header, then events; see schema.json).

Every way a file can be unusable (missing, empty, truncated, corrupt, another schema version, a record the
schema refuses) raises ConfigError with one line naming the file and line, so the CLI prints it as is and the
pytest plugin fails the test with it. In-memory events (ListSink) go through `from_events`, which gives them
the same JSON form a file would have, so a live run and a golden file compare field for field.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from xive_machine.errors import ConfigError
from xive_machine.trace import schema as S
from xive_machine.trace.jsonl import SCHEMA_VERSION, encode

SUPPORTED_VERSIONS = (SCHEMA_VERSION,)
END_KIND = "end"  # optional trailer {"ev": "end", "seq": n, "events": n}: makes a cut at a line boundary visible


@dataclass
class Trace:
    """A validated trace: the header record and the events in order (each with `seq` = its index)."""

    header: dict[str, Any]
    events: list[dict[str, Any]]
    source: str = "<memory>"
    trailer: dict[str, Any] | None = None

    @property
    def config(self) -> dict[str, Any]:
        return self.header.get("config", {})

    def dumps(self) -> str:
        """The JSONL text (header, events, trailer), as JsonlSink writes it."""
        lines = [encode(self.header)]
        lines += [encode(e) for e in self.events]
        lines.append(encode({"ev": END_KIND, "seq": len(self.events), "events": len(self.events)}))
        return "\n".join(lines) + "\n"

    def write(self, path: str) -> None:
        """Write the trace; a path ending in .gz is gzip-compressed, reproducibly (no name, no mtime)."""
        try:
            if path.endswith(".gz"):
                with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
                    gz.write(self.dumps().encode())
            else:
                with open(path, "w") as f:
                    f.write(self.dumps())
        except OSError as exc:
            raise ConfigError(f"{path}: cannot write trace ({exc.strerror})") from None


def check_header(head: Any, where: str) -> dict[str, Any]:
    if not isinstance(head, dict) or head.get("ev") != "header":
        raise ConfigError(f"{where}: not an xive-machine trace (the first record is not a header)")
    if head.get("tool") != "xive-machine":
        raise ConfigError(f"{where}: not an xive-machine trace (tool {head.get('tool')!r})")
    version = head.get("schema")
    if version not in SUPPORTED_VERSIONS:
        raise ConfigError(f"{where}: trace schema version {version!r} is not supported "
                          f"(this xive-machine reads version {', '.join(map(str, SUPPORTED_VERSIONS))})")
    why = S.checker("header")(head, "")
    if why:
        raise ConfigError(f"{where}: invalid header record: {why}")
    return head


def parse_lines(lines: Iterable[str], source: str) -> Trace:
    """Parse JSONL text lines (each still ending in its newline, as file iteration yields them)."""
    it: Iterator[str] = iter(lines)
    header: dict[str, Any] | None = None
    events: list[dict[str, Any]] = []
    trailer: dict[str, Any] | None = None
    for lineno, line in enumerate(it, 1):
        where = f"{source}:{lineno}"
        complete = line.endswith("\n")
        if not line.strip():
            if complete:
                raise ConfigError(f"{where}: corrupt trace: empty line")
            break
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as err:
            if not complete:
                raise ConfigError(f"{where}: truncated trace: the last record is cut off") from None
            raise ConfigError(f"{where}: corrupt trace: not JSON ({err.msg} at column {err.colno})") from None
        if header is None:
            header = check_header(rec, where)
            continue
        if trailer is not None:
            raise ConfigError(f"{where}: corrupt trace: a record after the end record")
        if not isinstance(rec, dict):
            raise ConfigError(f"{where}: corrupt trace: a record must be a JSON object")
        if rec.get("ev") == END_KIND:
            trailer = rec
            if rec.get("events") != len(events):
                raise ConfigError(f"{where}: corrupt trace: the end record counts {rec.get('events')} events, "
                                  f"the file holds {len(events)}")
            continue
        if rec.get("seq") != len(events):
            raise ConfigError(f"{where}: corrupt trace: event seq {rec.get('seq')!r} where {len(events)} was "
                              "expected (records lost or reordered)")
        why = S.validate(rec)
        if why:
            raise ConfigError(f"{where}: invalid {why}")
        events.append(rec)
    if header is None:
        raise ConfigError(f"{source}: empty trace (no header record)")
    return Trace(header, events, source, trailer)


def load(path: str) -> Trace:
    """Read and validate a trace file (plain or gzip-compressed). ConfigError (one line) for anything unusable."""
    try:
        with open(path, "rb") as probe:
            compressed = probe.read(2) == b"\x1f\x8b"
        if compressed:
            with gzip.open(path, "rt", encoding="utf-8", newline="\n") as f:
                return parse_lines(f, path)
        with open(path, encoding="utf-8", newline="\n") as f:
            return parse_lines(f, path)
    except (EOFError, gzip.BadGzipFile, zlib.error):
        raise ConfigError(f"{path}: truncated or corrupt gzip-compressed trace") from None
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such trace file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a trace file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: corrupt trace: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read trace ({exc.strerror})") from None


def normalise(rec: dict[str, Any]) -> dict[str, Any]:
    """The record as it reads back from a file (bytes as hex, tuples as lists, enums as ints)."""
    return json.loads(encode(rec))


def make_header(config: Any = None, image: str | None = None, **extra: Any) -> dict[str, Any]:
    """A header record like the CLI's: `config` a MachineConfig or its dict (None: the defaults); `image` a path
    (hashed)."""
    import os

    from xive_machine import __version__
    from xive_machine.trace.jsonl import image_sha256

    if config is None:
        from xive_machine.machine.config import MachineConfig

        config = MachineConfig(echo_console=False)
    cfg = config.as_dict() if hasattr(config, "as_dict") else dict(config)
    head: dict[str, Any] = {"ev": "header", "schema": SCHEMA_VERSION, "tool": "xive-machine",
                            "version": __version__, "config": cfg,
                            "image": os.path.basename(image) if image else None,
                            "image_sha256": image_sha256(image) if image else None}
    head.update(extra)
    return normalise(head)


def from_events(events: Iterable[dict[str, Any]], header: dict[str, Any] | None = None,
                source: str = "<memory>") -> Trace:
    """A Trace from in-memory events (ListSink/TeeSink), numbered and normalised like a file's."""
    out: list[dict[str, Any]] = []
    for i, e in enumerate(events):
        rec = {"ev": e["ev"], "seq": i}
        rec.update((k, v) for k, v in e.items() if k not in ("ev", "seq"))
        out.append(rec)
    out = json.loads(encode(out))  # one round trip for the whole list
    return Trace(header if header is not None else make_header(), out, source)

