"""The hvc console (/vdevice/vty@71000000): what H_PUT_TERM_CHAR writes and H_GET_TERM_CHAR reads."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable


class Console:
    """Collects guest output (always), echoes it to a stream (optional), serves scripted or live input."""

    def __init__(self, echo: bool = True, input_bytes: bytes = b"",
                 live_input: Callable[[int], bytes] | None = None) -> None:
        self.output = bytearray()
        self.echo = echo
        self._input = bytearray(input_bytes)
        self._live = live_input
        self.first_byte_ns: int | None = None
        self._out_fd = sys.stdout.fileno() if echo else -1

    def write(self, data: bytes) -> None:
        if self.first_byte_ns is None and data:
            self.first_byte_ns = time.perf_counter_ns()
        self.output += data
        if self.echo:
            try:
                os.write(self._out_fd, data)
            except OSError:
                self.echo = False

    def read(self, max_len: int) -> bytes:
        if not self._input and self._live is not None:
            self._input += self._live(max_len)
        data = bytes(self._input[:max_len])
        del self._input[:max_len]
        return data

    def push_input(self, data: bytes) -> None:
        self._input += data

    def text(self) -> str:
        return self.output.decode("utf-8", "replace")

    def reset(self) -> None:
        self.output.clear()
        self.first_byte_ns = None

    def get_state(self) -> dict:
        return {"output": bytes(self.output), "input": bytes(self._input)}

    def set_state(self, state: dict) -> None:
        self.output = bytearray(state["output"])
        self._input = bytearray(state["input"])
