"""Trace events. Models hold a `trace` attribute that is None when tracing is off, so the hot paths pay one
attribute test; when on, each event is one dict handed to the sink.

Event kinds (the `ev` field): "hcall", "rtas", "ci" (client interface), "cas", "esb", "tima", "eq",
"irq" (interrupt delivered), "mode" (interrupt-controller switch), "exc" (exception delivered), "note".
"""

from __future__ import annotations

from typing import Any, Protocol


class TraceSink(Protocol):
    def emit(self, ev: str, **fields: Any) -> None: ...


class ListSink:
    """Keeps events in memory (tests, the pytest plugin, `machine.trace_events`)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def emit(self, ev: str, **fields: Any) -> None:
        rec = {"ev": ev}
        rec.update(fields)
        self.events.append(rec)
