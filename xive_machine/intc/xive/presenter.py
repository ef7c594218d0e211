"""XivePresenter: the set of thread contexts and the CAM match that picks the thread for an END.

Like QEMU's fabric `match_nvt`: the thread whose OS ring holds the NVT (VO set and matching CAM line) gets
the priority in its IPB. `cpu_hint` (an NVT base: sPAPR runs NVT 0x400+id on vCPU id) lets the common case skip
the scan; the CAM is still checked, and a miss falls back to scanning every connected thread.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from xive_machine.intc.xive.regs import TM_QW1_OS, TM_QW1W2_VO, TM_WORD2
from xive_machine.intc.xive.tctx import NvtResend, XiveTCTX

_U32 = struct.Struct(">I")
_OS_CAM = TM_QW1_OS + TM_WORD2


class XivePresenter:
    def __init__(
        self,
        line: Callable[[int, bool], None],
        *,
        cpu_hint: int | None = None,
        resend: NvtResend | None = None,
    ) -> None:
        self.line = line
        self.cpu_hint = cpu_hint
        self.resend = resend
        self.tctxs: dict[int, XiveTCTX] = {}
        self._trace: Any = None

    @property
    def trace(self) -> Any:
        return self._trace

    @trace.setter
    def trace(self, sink: Any) -> None:
        self._trace = sink
        for t in self.tctxs.values():
            t.trace = sink

    def connect(self, cpu: int, os_cam: int | None) -> XiveTCTX:
        """Create (or reset) the thread context of `cpu` with QW1 word2 = `os_cam`."""
        t = self.tctxs.get(cpu)
        if t is None:
            t = XiveTCTX(cpu, self.line, self.resend)
            t.trace = self._trace
            self.tctxs[cpu] = t
        t.reset(os_cam)
        return t

    def reset(self, os_cam: Callable[[int], int | None]) -> None:
        for cpu, t in self.tctxs.items():
            t.reset(os_cam(cpu))

    def describe(self) -> str:
        return "\n".join(t.describe() for _, t in sorted(self.tctxs.items()))

    def disconnect(self, cpu: int) -> None:
        t = self.tctxs.pop(cpu, None)
        if t is not None and t.os_output:
            t.os_output = False
            self.line(cpu, False)

    def match(self, nvt_blk: int, nvt_idx: int) -> XiveTCTX | None:
        """The thread whose OS CAM holds this NVT, or None (also None when several do: a guest error)."""
        want = TM_QW1W2_VO | (nvt_blk << 19) | nvt_idx
        if self.cpu_hint is not None:
            t = self.tctxs.get(nvt_idx - self.cpu_hint)
            if t is not None and _U32.unpack_from(t.regs, _OS_CAM)[0] == want:
                return t
        found = None
        for t in self.tctxs.values():
            if t.os_cam() == want:
                if found is not None:
                    if self._trace is not None:
                        self._trace.emit(
                            "note", what="XIVE: NVT dispatched on several threads", nvt_blk=nvt_blk, nvt_idx=nvt_idx
                        )
                    return None
                found = t
        return found

    def notify(self, fmt: int, nvt_blk: int, nvt_idx: int, prio: int) -> bool:
        """Present `prio` to the thread running the NVT. False when no thread matched (format 1 unsupported)."""
        if fmt:
            if self._trace is not None:
                self._trace.emit("note", what="XIVE: logical server (format 1) END not supported")
            return False
        t = None
        if self.cpu_hint is not None:  # fast path: the expected thread, CAM checked
            t = self.tctxs.get(nvt_idx - self.cpu_hint)
            if t is not None and _U32.unpack_from(t.regs, _OS_CAM)[0] != (TM_QW1W2_VO | (nvt_blk << 19) | nvt_idx):
                t = None
        if t is None:
            t = self.match(nvt_blk, nvt_idx)
            if t is None:
                return False
        t.present_os(prio)
        return True
