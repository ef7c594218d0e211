"""One readable line per trace event (`trace show`, diff tables, failure reports) and name filters.

An event's *label* is what a filter matches: the hcall or RTAS name, the client-interface service, the MMIO
window; every event also matches its kind ("mmio", "cas" ...). Filters are fnmatch patterns, case-sensitive
as the spec names are ('H_INT_*', 'ibm,*', 'esb').
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from xive_machine.hcalls.codes import H

_RC_NAMES = {int(h): f"H_{h.name}" for h in H}
_LABEL_FIELD = {"hcall": "name", "rtas": "name", "ci": "service", "mmio": "window", "exc": "name", "note": "what"}


def label(ev: dict[str, Any]) -> str:
    """The name a filter matches (the kind itself when the event has no name)."""
    key = _LABEL_FIELD.get(ev.get("ev", ""))
    value = ev.get(key) if key else None
    return str(value) if value is not None else str(ev.get("ev", "?"))


def matches(ev: dict[str, Any], patterns: Sequence[str]) -> bool:
    if not patterns:
        return True
    names = (label(ev), str(ev.get("ev", "")))
    return any(fnmatch.fnmatchcase(n, p) for p in patterns for n in names)


def rc_text(rc: Any) -> str:
    """`-4 H_PARAMETER` for PAPR return codes."""
    if isinstance(rc, int) and rc in _RC_NAMES:
        return f"{rc} {_RC_NAMES[rc]}"
    return value_text(rc)


def value_text(v: Any) -> str:
    """Integers above 9 in hex (addresses, words), lists element-wise, strings quoted when empty."""
    if isinstance(v, bool) or v is None:
        return str(v).lower() if v is not None else "null"
    if isinstance(v, int):
        return f"{v:#x}" if v > 9 else str(v)
    if isinstance(v, list):
        return "[" + ", ".join(value_text(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}={value_text(x)}" for k, x in v.items()) + "}"
    if isinstance(v, str):
        return repr(v) if not v or " " in v else v
    return str(v)


def field_text(name: str, v: Any) -> str:
    return rc_text(v) if name == "rc" else value_text(v)


def _args(values: Iterable[Any]) -> str:
    return ", ".join(value_text(a) for a in values)


def _rest(ev: dict[str, Any], skip: set[str]) -> str:
    return " ".join(f"{k}={value_text(v)}" for k, v in ev.items() if k not in skip)


def format_event(ev: dict[str, Any]) -> str:
    """`hcall  cpu0 H_INT_ESB(0, 0x1000, 0xc00, 0) = 0 H_SUCCESS -> [0x1]`-style text, no sequence number."""
    kind = ev.get("ev", "?")
    cpu = f"cpu{ev['cpu']} " if isinstance(ev.get("cpu"), int) else ""
    common = {"ev", "seq", "cpu"}
    if kind == "hcall":
        text = f"{cpu}{ev.get('name')}({_args(ev.get('args', []))}) = {rc_text(ev.get('rc'))}"
        if ev.get("outs"):
            text += f" -> [{_args(ev['outs'])}]"
        extra = _rest(ev, common | {"name", "args", "rc", "outs", "opcode"})
        if ev.get("name") == "H_PUT_TERM_CHAR":
            extra = (extra + " " + _term_text(ev.get("args", []))).strip()
    elif kind == "rtas":
        text = f"{cpu}{ev.get('name')}({_args(ev.get('args', []))}) -> [{_args(ev.get('rets', []))}]"
        extra = _rest(ev, common | {"name", "args", "rets", "token"})
    elif kind == "ci":
        text = f"{cpu}{ev.get('service')}({_args(ev.get('args', []))})"
        extra = _rest(ev, common | {"service", "args"})
    elif kind == "mmio":
        arrow = "->" if ev.get("op") == "load" else "<-"
        text = (f"{cpu}{ev.get('window')} {ev.get('op')}{ev.get('size')} @{value_text(ev.get('offset'))} "
                f"{arrow} {value_text(ev.get('value'))}")
        extra = _rest(ev, common | {"window", "op", "size", "offset", "value"})
    elif kind == "cas":
        text = f"rc={rc_text(ev.get('rc'))} intc={ev.get('intc')} mmu={ev.get('mmu')}"
        extra = _rest(ev, {"ev", "seq", "rc", "intc", "mmu", "vector"})
    elif kind == "mode":
        text = f"{ev.get('before')} -> {ev.get('after')}"
        extra = _rest(ev, {"ev", "seq", "before", "after"})
    else:
        text = cpu.rstrip()
        extra = _rest(ev, common)
    line = f"{kind:<6} {text}".rstrip()
    return f"{line}  {extra}" if extra else line


def _term_text(args: list[Any]) -> str:
    """The characters of H_PUT_TERM_CHAR(termno, len, r6, r7): up to 16 bytes, big-endian in r6 then r7."""
    if len(args) < 4 or not all(isinstance(a, int) for a in args[1:4]):
        return ""
    data = b"".join((a & (1 << 64) - 1).to_bytes(8, "big") for a in args[2:4])[:max(0, min(args[1], 16))]
    return "text=" + repr(data.decode("latin-1"))


def format_lines(events: Iterable[dict[str, Any]], patterns: Sequence[str] = ()) -> Iterator[str]:
    """`#seq  event` lines of the events that match the filters."""
    for i, ev in enumerate(events):
        if matches(ev, patterns):
            yield f"#{ev.get('seq', i):<6} {format_event(ev)}"


def format_header(head: dict[str, Any]) -> str:
    cfg = head.get("config", {})
    opts = " ".join(f"{k}={value_text(cfg[k])}" for k in ("smp", "ic_mode", "irqchip", "boot", "append")
                    if k in cfg and cfg[k] not in ("", None))
    sha = head.get("image_sha256") or ""
    image = head.get("image") or "(no guest)"
    return (f"trace: {image}{' sha256 ' + sha[:12] if sha else ''}, {opts}, "
            f"xive-machine {head.get('version')} schema {head.get('schema')}")
