"""XiveRouter: EAS -> END -> EQ entry in guest RAM -> presenter, with the END ESB (ESn/ESe) pages.

Tables are flat lists of ints in architected form: `eat[lisn]` is the 64-bit EAS, `endt[8*i + w]` word w
of END i. The router knows no sPAPR numbering: NVT validity and the presenter are injected, so the KVM
device model can reuse it with its own tables policy.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from xive_machine.intc.xive.esb import EOI_NEXT, TRIGGER_NEXT
from xive_machine.intc.xive.presenter import XivePresenter
from xive_machine.intc.xive.regs import (
    EAS_END_DATA_MASK,
    EAS_END_INDEX_MASK,
    EAS_END_INDEX_SHIFT,
    EAS_MASKED,
    EAS_VALID,
    END_ESB_SHIFT,
    END_W0_BACKLOG,
    END_W0_ENQUEUE,
    END_W0_ESCALATE_CTL,
    END_W0_QSIZE_MASK,
    END_W0_QSIZE_SHIFT,
    END_W0_SILENT_ESCALATE,
    END_W0_UCOND_NOTIFY,
    END_W0_VALID,
    END_W1_ESE_Q,
    END_W1_ESE_SHIFT,
    END_W1_ESN,
    END_W1_ESN_Q,
    END_W1_ESN_SHIFT,
    END_W1_GENERATION,
    END_W1_PAGE_OFF_MASK,
    END_W1_PAGE_OFF_SHIFT,
    END_W2_QADDR_HI_MASK,
    END_W6_FORMAT_BIT,
    END_W6_NVT_BLOCK_MASK,
    END_W6_NVT_BLOCK_SHIFT,
    END_W6_NVT_INDEX_MASK,
    END_W6_NVT_INDEX_SHIFT,
    END_W7_F0_PRIORITY_MASK,
    END_W7_F0_PRIORITY_SHIFT,
    END_WORDS,
)
from xive_machine.intc.xive.source import size_mask
from xive_machine.memory.ram import PAGE_SHIFT, GuestRam

_U32 = struct.Struct(">I")
_PAGE_OFF = END_W1_PAGE_OFF_MASK << END_W1_PAGE_OFF_SHIFT
_NOT_PAGE_OFF = ~_PAGE_OFF & 0xFFFFFFFF


def end_qaddr(w2: int, w3: int) -> int:
    return ((w2 & END_W2_QADDR_HI_MASK) << 32) | w3


def end_qshift(w0: int) -> int:
    """Queue size as log2 bytes (QSIZE + 12)."""
    return ((w0 >> END_W0_QSIZE_SHIFT) & END_W0_QSIZE_MASK) + 12


def end_reset_words() -> list[int]:
    """A disabled END: all zero except ESn = ESe = 01 (off)."""
    return [0, END_W1_ESN_Q | END_W1_ESE_Q, 0, 0, 0, 0, 0, 0]


class WordTable(array):
    """A fixed-length table of machine words (the EAT: 'Q', the ENDT: 'I') in one flat buffer.

    Why not a list: the machine's C fast path routes events from this very buffer (one source of truth).
    Indexing is the array's own; it compares equal to a list or tuple of the same values, as the lists it
    replaces did, and `assign` refills it in place (its buffer may be exported, so it never resizes).
    """

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (list, tuple)):
            return self.tolist() == list(other)
        return array.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # type: ignore[assignment]

    def assign(self, values: Iterable[int]) -> None:
        new = array(self.typecode, values)
        if len(new) != len(self):
            raise ValueError(f"table of {len(self)} words, given {len(new)}")
        self[:] = new


def word_table(typecode: str, values: Iterable[int]) -> WordTable:
    """A WordTable of 32-bit ('I') or 64-bit ('Q') words; the C side reads it as uint32_t/uint64_t."""
    table = WordTable(typecode, values)
    if table.itemsize != {"I": 4, "Q": 8}[typecode]:
        raise RuntimeError(f"array typecode {typecode!r} has item size {table.itemsize} here")
    return table


@dataclass(frozen=True)
class XiveRouterState:
    eat: tuple[int, ...]  # 64-bit EAS per LISN
    endt: tuple[int, ...]  # 8 x 32-bit words per END


class XiveRouter:
    def __init__(
        self,
        ram: GuestRam,
        nr_irqs: int,
        nr_ends: int,
        presenter: XivePresenter,
        nvt_valid: Callable[[int, int], bool],
    ) -> None:
        self.ram = ram
        self.nr_irqs = nr_irqs
        self.nr_ends = nr_ends
        self.presenter = presenter
        self.nvt_valid = nvt_valid
        self.eat = word_table("Q", bytes(8 * nr_irqs))  # 64-bit EAS per LISN
        self.endt = word_table("I", end_reset_words() * nr_ends)  # 8 x 32-bit words per END
        self.trace: Any = None

    def reset(self) -> None:
        """Claimed EASs masked (others cleared), every END disabled (QEMU `spapr_xive_reset` semantics)."""
        eat = self.eat
        for lisn, eas in enumerate(eat):
            eat[lisn] = (EAS_VALID | EAS_MASKED) if eas & EAS_VALID else 0
        self.endt.assign(end_reset_words() * self.nr_ends)

    def get_state(self) -> XiveRouterState:
        return XiveRouterState(tuple(self.eat), tuple(self.endt))

    def set_state(self, state: XiveRouterState) -> None:
        if len(state.eat) != self.nr_irqs or len(state.endt) != self.nr_ends * END_WORDS:
            raise ValueError("router state does not match the table sizes")
        self.eat.assign(e & 0xFFFFFFFFFFFFFFFF for e in state.eat)
        self.endt.assign(w & 0xFFFFFFFF for w in state.endt)

    def describe(self) -> str:
        """Valid EASs and valid ENDs, raw words."""
        out = [f"  EAS {i:#06x} = {e:016x}" for i, e in enumerate(self.eat) if e & EAS_VALID]
        for i in range(self.nr_ends):
            w = self.end_words(i)
            if w[0] & END_W0_VALID:
                out.append(f"  END {i:#x} = " + " ".join(f"{x:08x}" for x in w))
        return "\n".join(out)

    def reset_end(self, end_idx: int) -> None:
        base = end_idx * END_WORDS
        self.endt[base : base + END_WORDS] = array("I", end_reset_words())

    def end_words(self, end_idx: int) -> list[int]:
        base = end_idx * END_WORDS
        return self.endt[base : base + END_WORDS].tolist()

    def set_end_words(self, end_idx: int, words: list[int]) -> None:
        base = end_idx * END_WORDS
        new = array("I", [w & 0xFFFFFFFF for w in words])
        if len(new) != END_WORDS:
            raise ValueError(f"an END is {END_WORDS} words, given {len(new)}")
        self.endt[base : base + END_WORDS] = new

    # --- event path (hot) -------------------------------------------------------------------------------

    def notify(self, lisn: int) -> None:
        """A source forwarded an event: look up its EAS and route it."""
        if lisn >= self.nr_irqs:
            self._note("unknown LISN", lisn=lisn)
            return
        eas = self.eat[lisn]
        if not eas & EAS_VALID:
            self._note("invalid LISN", lisn=lisn)
            return
        if eas & EAS_MASKED:
            return
        self.end_notify((eas >> EAS_END_INDEX_SHIFT) & EAS_END_INDEX_MASK, eas & EAS_END_DATA_MASK)

    def end_notify(self, end_idx: int, data: int) -> None:
        """END trigger: enqueue `data`, coalesce through ESn unless ALWAYS_NOTIFY, present to the NVT."""
        if end_idx >= self.nr_ends:
            self._note("no END", end=end_idx)
            return
        w = self.endt
        base = end_idx << 3
        w0 = w[base]
        if not w0 & END_W0_VALID:
            self._note("END not valid", end=end_idx)
            return
        if w0 & END_W0_ENQUEUE:
            w1 = w[base + 1]
            idx = (w1 >> END_W1_PAGE_OFF_SHIFT) & END_W1_PAGE_OFF_MASK
            addr = (((w[base + 2] & END_W2_QADDR_HI_MASK) << 32) | w[base + 3]) + (idx << 2)
            value = (0x80000000 if w1 & END_W1_GENERATION else 0) | (data & 0x7FFFFFFF)
            ram = self.ram
            if 0 <= addr and addr + 4 <= ram.size:
                _U32.pack_into(ram.buf, addr, value)
                ram.dirty_pages.add(addr >> PAGE_SHIFT)
                idx = (idx + 1) & ((1 << (((w0 >> END_W0_QSIZE_SHIFT) & END_W0_QSIZE_MASK) + 10)) - 1)
                if idx == 0:
                    w1 ^= END_W1_GENERATION
                w[base + 1] = (w1 & _NOT_PAGE_OFF) | (idx << END_W1_PAGE_OFF_SHIFT)
                if self.trace is not None:
                    self.trace.emit("eq", server=end_idx >> 3, prio=end_idx & 7, end=end_idx, addr=addr, value=value)
            else:
                self._note("failed to write END data", end=end_idx, addr=addr)
        if w0 & END_W0_SILENT_ESCALATE:
            self._escalate(end_idx, w0)
            return
        w6 = w[base + 6]
        fmt = 1 if w6 & END_W6_FORMAT_BIT else 0
        prio = (w[base + 7] >> END_W7_F0_PRIORITY_SHIFT) & END_W7_F0_PRIORITY_MASK
        if not fmt and prio == 0xFF:
            return  # END masked
        if not w0 & END_W0_UCOND_NOTIFY:
            w1 = w[base + 1]
            pq = (w1 >> END_W1_ESN_SHIFT) & 3
            new = TRIGGER_NEXT[pq]
            if new != pq:
                w[base + 1] = (w1 & ~END_W1_ESN & 0xFFFFFFFF) | (new << END_W1_ESN_SHIFT)
            if pq != 0:
                return  # ESn coalesced (or off): end of notification
        nvt_blk = (w6 >> END_W6_NVT_BLOCK_SHIFT) & END_W6_NVT_BLOCK_MASK
        nvt_idx = (w6 >> END_W6_NVT_INDEX_SHIFT) & END_W6_NVT_INDEX_MASK
        if not self.nvt_valid(nvt_blk, nvt_idx):
            self._note("invalid NVT", end=end_idx, nvt_blk=nvt_blk, nvt_idx=nvt_idx)
            return
        if self.presenter.notify(fmt, nvt_blk, nvt_idx, prio):
            return
        if w0 & END_W0_BACKLOG:
            self._note("END backlog not modelled", end=end_idx)
        self._escalate(end_idx, w0)

    def _escalate(self, end_idx: int, w0: int) -> None:
        if w0 & END_W0_ESCALATE_CTL:
            self._note("END escalation not modelled", end=end_idx)

    # --- END ESB pages (ESn even, ESe odd), loads only ---------------------------------------------------

    def end_esb_read(self, offset: int, size: int) -> int:
        end_idx = offset >> (END_ESB_SHIFT + 1)
        msk = size_mask(size)
        if not msk or end_idx >= self.nr_ends or offset < 0:
            return self._end_esb_bad(offset, size, "invalid END ESB access")
        w = self.endt
        base = end_idx << 3
        if not w[base] & END_W0_VALID:
            return self._end_esb_bad(offset, size, "END ESB load on invalid END")
        shift = END_W1_ESE_SHIFT if offset & (1 << END_ESB_SHIFT) else END_W1_ESN_SHIFT
        w1 = w[base + 1]
        pq = (w1 >> shift) & 3
        op = offset & 0xFFF
        if op < 0x800:
            ret = 1 if pq == 3 else 0
            new = EOI_NEXT[pq]
        elif op < 0xC00:
            ret, new = pq, pq
        else:
            ret, new = pq, (op >> 8) & 3
        if new != pq:
            w[base + 1] = (w1 & ~(3 << shift) & 0xFFFFFFFF) | (new << shift)
        if self.trace is not None:
            self.trace.emit(
                "esb", lisn=None, end=end_idx, page="end", offset=offset, size=size, value=ret, effect="end_esb"
            )
        return ret

    def end_esb_write(self, offset: int, size: int, value: int) -> None:
        self._end_esb_bad(offset, size, "END ESB store")

    def _end_esb_bad(self, offset: int, size: int, why: str) -> int:
        self._note(why, offset=offset, size=size)
        return size_mask(size) or 0xFFFFFFFFFFFFFFFF

    def _note(self, what: str, **fields: Any) -> None:
        if self.trace is not None:
            self.trace.emit("note", what="XIVE: " + what, **fields)
