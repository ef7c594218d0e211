"""The trace record schema (schema.json, JSON Schema 2020-12) and a fast checker compiled from it.

jsonschema takes ~600 µs per record here (a 300k-event trace would take minutes), so the reader checks
records with closures compiled once from the same file. They implement only the keywords schema.json uses
(type, const, enum, minimum, maximum, pattern, items, maxItems, required, properties, allOf, $ref, not); an
unknown keyword raises at compile time, so the file cannot silently outgrow the checker. The test suite
cross-checks the two against jsonschema itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

Check = Callable[[Any, str], "str | None"]  # (value, path) -> why it is invalid, or None

_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}
_ANNOTATIONS = {"$schema", "$id", "title", "description", "$defs", "$comment"}


@cache
def schema() -> dict[str, Any]:
    """schema.json, shipped as package data."""
    return json.loads(resources.files("xive_machine.trace").joinpath("schema.json").read_text())


def _resolve(ref: str) -> Any:
    if not ref.startswith("#/"):
        raise ValueError(f"schema.json: only local $ref are supported, not {ref!r}")
    node: Any = schema()
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def _fmt(v: Any) -> str:
    text = json.dumps(v)
    return text if len(text) <= 40 else text[:37] + "..."


def compile_schema(node: dict[str, Any]) -> Check:
    """One checker for a schema node (conjunction of its keywords)."""
    fast = _integer_range(node)
    if fast is not None:
        return fast
    checks = [_keyword(key, arg, node) for key, arg in node.items() if key not in _ANNOTATIONS]
    if len(checks) == 1:
        return checks[0]

    def check(v: Any, path: str) -> str | None:
        for c in checks:
            why = c(v, path)
            if why:
                return why
        return None

    return check


def _integer_range(node: dict[str, Any]) -> Check | None:
    """{"type": "integer", "minimum": a, "maximum": b} in one test: most fields of most records are these."""
    if node.get("type") != "integer" or not set(node) - _ANNOTATIONS <= {"type", "minimum", "maximum"}:
        return None
    lo, hi = node.get("minimum", -(1 << 128)), node.get("maximum", 1 << 128)

    def integer(v: Any, p: str) -> str | None:
        if type(v) is int and lo <= v <= hi:
            return None
        if type(v) is not int:
            return f"{_at(p)}{_fmt(v)} is not of type integer"
        return f"{_at(p)}{v} is {'below the minimum' if v < lo else 'above the maximum'} {lo if v < lo else hi}"

    return integer


def _at(path: str) -> str:
    return f"{path}: " if path else ""


def _keyword(key: str, arg: Any, node: dict[str, Any]) -> Check:  # noqa: C901 - one branch per keyword
    if key == "$ref":
        return compile_schema(_resolve(arg))  # schema.json has no recursive references
    if key == "type":
        names = [arg] if isinstance(arg, str) else list(arg)
        tests = [_TYPES[n] for n in names]
        return lambda v, p: None if any(t(v) for t in tests) else \
            f"{_at(p)}{_fmt(v)} is not of type {' or '.join(names)}"
    if key == "const":
        return lambda v, p: None if v == arg and type(v) is type(arg) else f"{_at(p)}{_fmt(v)} should be {_fmt(arg)}"
    if key == "enum":
        return lambda v, p: None if any(v == a and type(v) is type(a) for a in arg) else \
            f"{_at(p)}{_fmt(v)} is not one of {_fmt(arg)}"
    if key in ("minimum", "maximum"):
        lower = key == "minimum"

        def bound(v: Any, p: str) -> str | None:
            if not _TYPES["number"](v):
                return None
            if (v < arg) if lower else (v > arg):
                return f"{_at(p)}{v} is {'below the minimum' if lower else 'above the maximum'} {arg}"
            return None

        return bound
    if key == "pattern":
        rx = re.compile(arg)
        return lambda v, p: None if not isinstance(v, str) or rx.search(v) else \
            f"{_at(p)}{_fmt(v)} does not match {arg!r}"
    if key == "maxItems":
        return lambda v, p: None if not isinstance(v, list) or len(v) <= arg else \
            f"{_at(p)}more than {arg} items"
    if key == "items":
        item = compile_schema(arg)

        def items(v: Any, p: str) -> str | None:
            if isinstance(v, list):
                for i, x in enumerate(v):
                    why = item(x, f"{p}.{i}" if p else str(i))
                    if why:
                        return why
            return None

        return items
    if key == "required":
        return lambda v, p: next((f"{_at(p)}missing field {k!r}" for k in arg if k not in v), None) \
            if isinstance(v, dict) else None
    if key == "properties":
        props = {k: compile_schema(s) for k, s in arg.items()}

        def properties(v: Any, p: str) -> str | None:
            if isinstance(v, dict):
                for k, c in props.items():
                    if k in v:
                        why = c(v[k], f"{p}.{k}" if p else k)
                        if why:
                            return why
            return None

        return properties
    if key == "allOf":
        parts = [compile_schema(s) for s in arg]
        return lambda v, p: next((w for w in (c(v, p) for c in parts) if w), None)
    if key == "not":
        inner = compile_schema(arg)
        return lambda v, p: f"{_at(p)}{_fmt(v)} is not allowed here" if inner(v, p) is None else None
    if key == "oneOf":
        alts = [compile_schema(s) for s in arg]

        def one_of(v: Any, p: str) -> str | None:
            whys = [c(v, p) for c in alts]
            ok = sum(w is None for w in whys)
            if ok == 1:
                return None
            return f"{_at(p)}matches {ok} of the alternatives" if ok else whys[0]

        return one_of
    raise ValueError(f"schema.json uses {key!r}, which the trace checker does not implement")


@cache
def checker(kind: str) -> Check:
    """The checker for the header ("header") or an event kind; unknown kinds get the common event fields."""
    defs = schema()["$defs"]
    if kind == "header":
        return compile_schema({"$ref": "#/$defs/header"})
    if kind in defs["kinds"]:
        return compile_schema({"allOf": [{"$ref": "#/$defs/event"}, {"$ref": f"#/$defs/kinds/{kind}"}]})
    return compile_schema({"$ref": "#/$defs/event"})


def kind_schema(kind: str) -> dict[str, Any]:
    """The standalone JSON Schema of one kind (for jsonschema, in tests and tools)."""
    defs = schema()["$defs"]
    if kind == "header":
        return {"$defs": defs, "$ref": "#/$defs/header"}
    if kind in defs["kinds"]:
        return {"$defs": defs, "allOf": [{"$ref": "#/$defs/event"}, {"$ref": f"#/$defs/kinds/{kind}"}]}
    return {"$defs": defs, "$ref": "#/$defs/event"}


def validate(rec: Any) -> str | None:
    """Why `rec` is not a valid record (one line, with the field path), or None."""
    if not isinstance(rec, dict):
        return f"a record must be a JSON object, not {type(rec).__name__}"
    ev = rec.get("ev")
    if not isinstance(ev, str):
        return "record without an 'ev' kind"
    why = checker(ev)(rec, "")
    return f"{ev} record: {why}" if why else None
