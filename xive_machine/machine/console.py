"""The hvc console (/vdevice/vty@71000000): what H_PUT_TERM_CHAR writes and H_GET_TERM_CHAR reads."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable


def _stdout_writer() -> Callable[[bytes], object]:
    """Unbuffered bytes to stdout: straight to the file descriptor when there is one (no Python buffering
    between the guest and the terminal), else through whatever stream stands in for stdout."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        buf = getattr(sys.stdout, "buffer", None)
        if buf is not None:
            return lambda data: (buf.write(data), buf.flush())
        return lambda data: sys.stdout.write(data.decode("utf-8", "replace"))
    return lambda data: os.write(fd, data)


class Console:
    """Collects guest output (always), echoes it to a stream (optional), serves scripted or live input."""

    def __init__(self, echo: bool = True, input_bytes: bytes = b"",
                 live_input: Callable[[int], bytes] | None = None) -> None:
        self.output = bytearray()
        self.echo = echo
        self._input = bytearray(input_bytes)
        self._live = live_input
        self.first_byte_ns: int | None = None
        self._emit = _stdout_writer() if echo else None

    def write(self, data: bytes) -> None:
        if self.first_byte_ns is None and data:
            self.first_byte_ns = time.perf_counter_ns()
        self.output += data
        if self.echo and self._emit is not None:
            try:
                self._emit(data)
            except (OSError, ValueError):
                self.echo = False

    def read(self, max_len: int) -> bytes:
        if not self._input and self._live is not None:
            self._input += self._live(max_len)
        data = bytes(self._input[:max_len])
        del self._input[:max_len]
        return data

    def set_live_input(self, read: Callable[[int], bytes] | None) -> None:
        """Where H_GET_TERM_CHAR reads once scripted input is used up (the CLI: stdin, never blocking)."""
        self._live = read

    def push_input(self, data: bytes) -> None:
        self._input += data

    @property
    def live(self) -> bool:
        return self._live is not None

    def poll_live(self) -> bool:
        """Between slices: take what the live source has ready. True when input arrived while none was
        waiting, the moment QEMU's vty raises its interrupt (the guest driver then reads until empty)."""
        if self._live is None or self._input:
            return False
        data = self._live(4096)
        if not data:
            return False
        self._input += data
        return True

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
