"""Trace files: JSON lines, a header record first (schema version, tool version, machine config, image
hash), then one record per event, in the order the machine produced them. Deterministic: no wall-clock
fields, so the same image and configuration give a byte-identical file."""

from __future__ import annotations

import hashlib
import json
from typing import IO, Any

from xive_machine import __version__

SCHEMA_VERSION = 1


def image_sha256(path: str | None) -> str | None:
    if not path:
        return None
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _default(o: Any) -> Any:
    if isinstance(o, (bytes, bytearray, memoryview)):
        return bytes(o).hex()
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    if hasattr(o, "__int__"):
        return int(o)
    return str(o)


def encode(rec: dict) -> str:
    return json.dumps(rec, default=_default, separators=(",", ":"))


class JsonlSink:
    """Streams events to a file as they happen (line-buffered), so a crash keeps everything up to it."""

    def __init__(self, stream: IO[str], header: dict) -> None:
        self.stream = stream
        self.count = 0
        head = {"ev": "header", "schema": SCHEMA_VERSION, "tool": "xive-machine", "version": __version__}
        head.update(header)
        stream.write(encode(head) + "\n")

    def emit(self, ev: str, **fields: Any) -> None:
        rec = {"ev": ev, "seq": self.count}
        rec.update(fields)
        self.count += 1
        self.stream.write(encode(rec) + "\n")

    def close(self) -> None:
        """The end record lets readers tell a complete file from one cut at a line boundary."""
        self.stream.write(encode({"ev": "end", "seq": self.count, "events": self.count}) + "\n")
        self.stream.flush()


class TeeSink:
    """Both a file and an in-memory list (the pytest plugin keeps the events and writes the file)."""

    def __init__(self, *sinks: Any) -> None:
        self.sinks = sinks
        self.events: list[dict] = []

    def emit(self, ev: str, **fields: Any) -> None:
        rec = {"ev": ev}
        rec.update(fields)
        self.events.append(rec)
        for s in self.sinks:
            s.emit(ev, **fields)
