"""Compare two traces: align events on their identity, then report what changed.

Each event gets an identity key (its kind plus the fields saying *which* call it is: cpu and hcall name, MMIO
window, op and offset ...), and the two key sequences are aligned by a shortest edit script (Myers), so one
inserted hcall shows as one added event instead of shifting every later event into a "change". Aligned
events whose other fields differ are "changed" (field by field); unaligned ones are "removed" (only in A) or
"added" (only in B). `seq` never counts. The header is compared on the machine config and the image, never
on the tool version.
"""

from __future__ import annotations

import fnmatch
import re
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from xive_machine.trace.reader import Trace
from xive_machine.trace.show import field_text, format_event, label

# Fields that name an event (what was called, where); the rest are its results.
IDENTITY: dict[str, tuple[str, ...]] = {
    "hcall": ("cpu", "name"),
    "rtas": ("cpu", "name"),
    "ci": ("cpu", "service"),
    "mmio": ("cpu", "window", "op", "offset", "size"),
    "cas": (),
    "mode": ("before", "after"),
    "exc": ("cpu", "vector"),
    "irq": ("cpu", "ctl", "op"),
    "tima": ("cpu", "op", "offset", "size"),
    "eq": ("server", "prio"),
    "esb": ("op",),
    "note": ("what",),
}
# Fields that are a call's inputs: part of the alignment key, so a loop of the same call with different
# arguments aligns element by element; a block that still differs is then paired on identity alone.
INPUTS: dict[str, tuple[str, ...]] = {"hcall": ("args",), "rtas": ("args",), "ci": ("args", "note")}
HEADER_FIELDS = ("config", "image", "image_sha256")
Opcodes = list[tuple[str, int, int, int, int]]  # (tag, a from, a to, b from, b to), as difflib's


@dataclass
class Change:
    """One difference. kind: "changed" | "removed" | "added" | "header"."""

    kind: str
    a_index: int | None
    b_index: int | None
    a: dict[str, Any] | None
    b: dict[str, Any] | None
    fields: list[tuple[str, Any, Any]] = field(default_factory=list)  # (name, value in A, value in B)

    @property
    def event(self) -> dict[str, Any]:
        return self.a if self.a is not None else (self.b or {})


@dataclass
class TraceDiff:
    a: Trace
    b: Trace
    changes: list[Change]
    header: list[Change]
    a_events: list[dict[str, Any]]  # normalised (ignored fields dropped)
    b_events: list[dict[str, Any]]
    opcodes: Opcodes

    @property
    def equal(self) -> bool:
        return not self.changes and not self.header

    @property
    def first(self) -> Change | None:
        return self.changes[0] if self.changes else None

    def counts(self) -> Counter[str]:
        return Counter(c.kind for c in self.changes)

    def summary_lines(self) -> list[str]:
        """One line of totals, then one per (kind of change, event label) with the fields involved."""
        n = self.counts()
        lines = [f"summary: {n['changed']} changed, {n['removed']} removed, {n['added']} added "
                 f"(A: {len(self.a_events)} events, B: {len(self.b_events)} events)"]
        groups: dict[tuple[str, str, str], tuple[int, set[str]]] = {}
        for c in self.changes:
            ev = c.event
            key = (c.kind, str(ev.get("ev")), label(ev))
            count, names = groups.get(key, (0, set()))
            names.update(f for f, _, _ in c.fields)
            groups[key] = (count + 1, names)
        for (kind, ev, lab), (count, names) in sorted(groups.items(), key=lambda kv: (-kv[1][0], kv[0])):
            what = ev if lab == ev else f"{ev} {lab}"
            lines.append(f"  {kind:<8} {count:>6} x {what}" + (f"  (fields: {', '.join(sorted(names))})"
                                                                 if names else ""))
        return lines

    def render(self, context: int = 3, *, a_name: str | None = None, b_name: str | None = None,
               max_changes: int = 20) -> str:
        """The report for CI logs: verdict, header differences, first divergence in context, summary."""
        a_name = a_name or self.a.source
        b_name = b_name or self.b.source
        if self.equal:
            return f"traces equal: {a_name} and {b_name} ({len(self.a_events)} events)"
        out = [f"traces differ: A = {a_name}, B = {b_name}"]
        for h in self.header:
            for name, va, vb in h.fields:
                out.append(f"  header {name}: {field_text(name, va)} (A) != {field_text(name, vb)} (B)")
        first = self.first
        if first is not None:
            where = f"A#{first.a_index}" if first.a_index is not None else f"B#{first.b_index}"
            shown = self.a.events[first.a_index] if first.a_index is not None else self.b.events[first.b_index]
            out.append(f"first divergence at {where}: {first.kind} {format_event(shown)}")
            out.extend(self.table(context, max_changes))
        out.extend(self.summary_lines())
        return "\n".join(out)

    def _items(self) -> Iterator[tuple[str, int | None, int | None, dict[str, Any], dict[str, Any] | None]]:
        """The merged sequence: (mark, index in A, index in B, event, B's event when changed)."""
        for tag, i1, i2, j1, j2 in self.opcodes:
            if tag == "equal":
                for k in range(i2 - i1):
                    x, y = self.a_events[i1 + k], self.b_events[j1 + k]
                    yield (" ", i1 + k, j1 + k, x, None) if x == y else ("~", i1 + k, j1 + k, x, y)
            else:
                for i in range(i1, i2):
                    yield "-", i, None, self.a_events[i], None
                for j in range(j1, j2):
                    yield "+", None, j, self.b_events[j], None

    def table(self, context: int = 3, max_changes: int = 20) -> list[str]:
        """Rows around the first divergence: `context` equal events before it, then every difference until
        `context` equal events in a row (or `max_changes` differences) have been shown."""
        rows = [f"  {'':1} {'A':>7} {'B':>7}  event", f"  - {'-' * 7} {'-' * 7}  {'-' * 60}"]
        items = self._items()
        before: deque = deque(maxlen=max(context, 0))
        item = next(items, None)
        while item is not None and item[0] == " ":
            before.append(item)
            item = next(items, None)
        rows += [self._row(*b[:4]) for b in before]
        shown = quiet = 0
        while item is not None:
            mark, ia, ib, ev, other = item
            if mark == " ":
                quiet += 1
                if quiet > context:
                    break
            else:
                quiet = 0
                shown += 1
                if shown > max_changes:
                    break
            rows.append(self._row(mark, ia, ib, ev))
            if other is not None:
                rows.extend(self._field_rows(ev, other))
            item = next(items, None)
        rest = len(self.changes) - min(shown, max_changes)
        if rest > 0:
            rows.append(f"  ... {rest} more difference(s) below, see the summary")
        return rows

    def _row(self, mark: str, ia: int | None, ib: int | None, ev: dict[str, Any]) -> str:
        """One table row, showing the event as recorded (ignored fields too)."""
        sa = str(ia) if ia is not None else "."
        sb = str(ib) if ib is not None else "."
        shown = self.a.events[ia] if ia is not None else self.b.events[ib] if ib is not None else ev
        return f"  {mark} {sa:>7} {sb:>7}  {format_event(shown)}"

    @staticmethod
    def _field_rows(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
        return [f"  {'':17}    {name}: {field_text(name, va)} (A) != {field_text(name, vb)} (B)"
                for name, va, vb in field_changes(a, b)]


_MISSING = object()


def field_changes(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    out = []
    for k in list(a) + [k for k in b if k not in a]:
        va, vb = a.get(k, _MISSING), b.get(k, _MISSING)
        if va != vb or type(va) is not type(vb):
            out.append((k, None if va is _MISSING else va, None if vb is _MISSING else vb))
    return out


class Ignore:
    """`--ignore` patterns: FIELD (every event and the header), KIND.FIELD (one event kind), KIND[NAME].FIELD
    (events of that kind whose name matches: `hcall[KVMPPC_H_*].args`), header.FIELD or config.OPTION (the
    header). fnmatch wildcards everywhere: `hcall.out*`, `*.cpu`."""

    _PATTERN = re.compile(r"([^.\[\]]+)(?:\[([^\]]+)\])?\.(.+)")

    def __init__(self, patterns: Sequence[str] = ()) -> None:
        self.any: list[str] = []
        self.kinds: list[tuple[str, str | None, str]] = []  # (kind, name pattern or None, field)
        for p in patterns:
            m = self._PATTERN.fullmatch(p)
            if m:
                self.kinds.append((m.group(1), m.group(2), m.group(3)))
            else:
                self.any.append(p)
        self._memo: dict[tuple[str, str, str], bool] = {}
        self._by_name = any(n is not None for _, n, _ in self.kinds)

    def drop(self, kind: str, name: str, label: str = "") -> bool:
        hit = self._memo.get((kind, label, name))
        if hit is None:
            hit = any(fnmatch.fnmatchcase(name, p) for p in self.any) or any(
                fnmatch.fnmatchcase(kind, k) and fnmatch.fnmatchcase(name, f)
                and (n is None or fnmatch.fnmatchcase(label, n)) for k, n, f in self.kinds)
            self._memo[(kind, label, name)] = hit
        return hit

    def event(self, ev: dict[str, Any]) -> dict[str, Any]:
        if not (self.any or self.kinds):
            return {k: v for k, v in ev.items() if k != "seq"}
        kind = str(ev.get("ev"))
        lab = label(ev) if self._by_name else ""
        return {k: v for k, v in ev.items() if k != "seq" and (k == "ev" or not self.drop(kind, k, lab))}

    def header(self, head: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k in HEADER_FIELDS:
            v = head.get(k)
            if self.drop("header", k):
                continue
            if k == "config" and isinstance(v, dict):
                v = {ck: cv for ck, cv in v.items() if ck != "echo_console" and not self.drop("config", ck)}
            out[k] = v
        return out


def key(ev: dict[str, Any]) -> tuple[Any, ...]:
    """Identity: kind and the fields naming the call (which hcall, on which vCPU, which MMIO offset ...)."""
    kind = ev.get("ev")
    names = IDENTITY.get(str(kind), ())
    return (kind, *(_hashable(ev.get(n)) for n in names))


def input_key(ev: dict[str, Any]) -> tuple[Any, ...]:
    """Identity plus the call's inputs (arguments)."""
    return (*key(ev), *(_hashable(ev.get(n)) for n in INPUTS.get(str(ev.get("ev")), ())))


def _hashable(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_hashable(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _hashable(x)) for k, x in v.items()))
    return v


def diff(a: Trace, b: Trace, ignore: Sequence[str] = ()) -> TraceDiff:
    """Align and compare two traces."""
    ig = Ignore(ignore)
    ra, rb = a.events, b.events
    # Identical leading (and, for equal lengths, trailing) records are equal whatever is ignored: matched as
    # they are (C-speed dict compares), so a passing golden check of a 150k-event trace stays cheap.
    n = min(len(ra), len(rb))
    pre = 0
    while pre < n and ra[pre] == rb[pre]:
        pre += 1
    suf = 0
    if len(ra) == len(rb):
        while suf < n - pre and ra[-1 - suf] == rb[-1 - suf]:
            suf += 1
    mid_a = [ig.event(e) for e in ra[pre:len(ra) - suf]]
    mid_b = [ig.event(e) for e in rb[pre:len(rb) - suf]]
    ea = ra[:pre] + mid_a + ra[len(ra) - suf:]
    eb = rb[:pre] + mid_b + rb[len(rb) - suf:]
    header: list[Change] = []
    ha, hb = ig.header(a.header), ig.header(b.header)
    if ha != hb:
        fields = []
        for k in HEADER_FIELDS:
            va, vb = ha.get(k), hb.get(k)
            if isinstance(va, dict) and isinstance(vb, dict):
                fields += [(f"{k}.{n}", x, y) for n, x, y in field_changes(va, vb)]
            elif va != vb:
                fields.append((k, va, vb))
        header.append(Change("header", None, None, a.header, b.header, fields))
    opcodes: Opcodes = [("equal", 0, pre, 0, pre)] if pre else []
    opcodes += [(t, i1 + pre, i2 + pre, j1 + pre, j2 + pre) for t, i1, i2, j1, j2 in _align(mid_a, mid_b)]
    if suf:
        opcodes.append(("equal", len(ra) - suf, len(ra), len(rb) - suf, len(rb)))
    changes: list[Change] = []
    for tag, i1, i2, j1, j2 in opcodes:
        if tag == "equal":
            for k in range(i2 - i1):
                x, y = ea[i1 + k], eb[j1 + k]
                if x != y:
                    changes.append(Change("changed", i1 + k, j1 + k, x, y, field_changes(x, y)))
            continue
        changes += [Change("removed", i, None, ea[i], None) for i in range(i1, i2)]
        changes += [Change("added", None, j, None, eb[j]) for j in range(j1, j2)]
    return TraceDiff(a, b, changes, header, ea, eb, opcodes)


def _align(ea: list[dict[str, Any]], eb: list[dict[str, Any]]) -> Opcodes:
    """Opcodes ("equal" pairs aligned events, which may still differ in their results).

    Pass 1 aligns on identity + inputs (difflib; the common prefix and suffix without it). Pass 2 looks into
    each block pass 1 could not match and pairs its events on identity alone, so a call whose arguments
    changed is one "changed" event, not a removal and an addition."""
    ka, kb = [input_key(e) for e in ea], [input_key(e) for e in eb]
    ops: Opcodes = []
    for tag, i1, i2, j1, j2 in _match(ka, kb, split=False):
        if tag != "replace":
            ops.append((tag, i1, i2, j1, j2))
            continue
        ca, cb = [key(e) for e in ea[i1:i2]], [key(e) for e in eb[j1:j2]]
        for t2, a1, a2, b1, b2 in _match(ca, cb):
            ops.append((t2, i1 + a1, i1 + a2, j1 + b1, j1 + b2))
    return ops


MAX_EDITS = 1000  # Myers' bound: beyond it a block is reported as replaced, without a finer alignment


def _match(ka: list[tuple[Any, ...]], kb: list[tuple[Any, ...]], split: bool = True) -> Opcodes:
    """Opcodes for two key sequences (with `split`, a "replace" comes out as delete + insert)."""
    n = min(len(ka), len(kb))
    pre = 0
    while pre < n and ka[pre] == kb[pre]:
        pre += 1
    suf = 0
    while suf < n - pre and ka[len(ka) - 1 - suf] == kb[len(kb) - 1 - suf]:
        suf += 1
    ops: Opcodes = []
    if pre:
        ops.append(("equal", 0, pre, 0, pre))
    mid_a, mid_b = ka[pre:len(ka) - suf], kb[pre:len(kb) - suf]
    if mid_a or mid_b:
        steps = _myers(mid_a, mid_b, MAX_EDITS)
        blocks = _group(steps) if steps is not None else [("replace", 0, len(mid_a), 0, len(mid_b))]
        for tag, i1, i2, j1, j2 in blocks:
            if tag == "replace" and (split or not i1 < i2 or not j1 < j2):
                if i1 < i2:
                    ops.append(("delete", pre + i1, pre + i2, pre + j1, pre + j1))
                if j1 < j2:
                    ops.append(("insert", pre + i2, pre + i2, pre + j1, pre + j2))
            else:
                ops.append((tag, pre + i1, pre + i2, pre + j1, pre + j2))
    if suf:
        ops.append(("equal", len(ka) - suf, len(ka), len(kb) - suf, len(kb)))
    return ops


def _myers(a: list[Any], b: list[Any], max_d: int) -> list[tuple[str, int, int]] | None:
    """Shortest edit script (Myers 1986, greedy forward pass, O((N+M)·D) time, O(D²) memory) as steps
    ("equal" | "delete" | "insert", i, j); None when more than `max_d` edits are needed. difflib is not used:
    on repetitive traces (a loop of the same hcall) its longest-match search goes quadratic."""
    n, m = len(a), len(b)
    off = max_d + 1
    v = [0] * (2 * max_d + 3)
    history: list[list[int]] = []
    for d in range(max_d + 1):
        history.append(v[:])
        for k in range(-d, d + 1, 2):
            if k == -d or (k != d and v[k - 1 + off] < v[k + 1 + off]):
                x = v[k + 1 + off]
            else:
                x = v[k - 1 + off] + 1
            y = x - k
            while x < n and y < m and a[x] == b[y]:
                x += 1
                y += 1
            v[k + off] = x
            if x >= n and y >= m:
                return _backtrack(history, d, n, m, off)
    return None


def _backtrack(history: list[list[int]], d_end: int, n: int, m: int, off: int) -> list[tuple[str, int, int]]:
    steps: list[tuple[str, int, int]] = []
    x, y = n, m
    for d in range(d_end, 0, -1):
        v = history[d]
        k = x - y
        down = k == -d or (k != d and v[k - 1 + off] < v[k + 1 + off])
        pk = k + 1 if down else k - 1
        px = v[pk + off]
        py = px - pk
        mx, my = (px, py + 1) if down else (px + 1, py)
        while x > mx:
            x -= 1
            y -= 1
            steps.append(("equal", x, y))
        steps.append(("insert", px, py) if down else ("delete", px, py))
        x, y = px, py
    while x > 0:
        x -= 1
        y -= 1
        steps.append(("equal", x, y))
    steps.reverse()
    return steps


def _group(steps: list[tuple[str, int, int]]) -> Opcodes:
    """Elementary steps -> opcodes: runs of equal steps, and each run of edits as one "replace"."""
    ops: Opcodes = []
    i = j = 0
    k = 0
    while k < len(steps):
        tag = "equal" if steps[k][0] == "equal" else "replace"
        i1, j1 = i, j
        while k < len(steps) and (steps[k][0] == "equal") == (tag == "equal"):
            t = steps[k][0]
            if t != "insert":
                i += 1
            if t != "delete":
                j += 1
            k += 1
        ops.append((tag, i1, i, j1, j))
    return ops
