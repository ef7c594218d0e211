"""Trace files: the JSON Schema, the fast checker compiled from it, and one clear error per broken file."""

from __future__ import annotations

import json

import pytest

from xive_machine.errors import ConfigError
from xive_machine.hypervisor import Hypervisor
from xive_machine.trace import reader
from xive_machine.trace import schema as S


def jsonschema():
    """jsonschema (a dev dependency) only cross-checks the schema file and the fast checker."""
    return pytest.importorskip("jsonschema")


@pytest.fixture(scope="module")
def session_trace():
    """A trace with every input kind: mode, cas, hcall, rtas, mmio."""
    with Hypervisor(ic_mode="xive", smp=2) as h:
        h.cas()
        h.hcall("H_INT_SET_SOURCE_CONFIG", 0, 0x1000, 1, 5, 0x1000)
        h.hcall("H_INT_SET_SOURCE_CONFIG", 0, 0x1000, 1, 7, 0)
        h.esb_load(0x1000, 0x800)
        h.rtas("get-time-of-day", nret=8)
        return h.trace()


def write(tmp_path, text: str, name: str = "t.jsonl") -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_schema_is_valid_json_schema():
    jsonschema().Draft202012Validator.check_schema(S.schema())


def test_roundtrip(tmp_path, session_trace):
    path = str(tmp_path / "t.jsonl")
    session_trace.write(path)
    back = reader.load(path)
    assert back.events == session_trace.events and back.header == session_trace.header
    assert back.trailer == {"ev": "end", "seq": len(back.events), "events": len(back.events)}
    assert {e["ev"] for e in back.events} >= {"mode", "cas", "hcall", "rtas", "mmio"}


def test_every_record_valid_for_jsonschema_and_the_fast_checker(session_trace):
    for rec in [session_trace.header, *session_trace.events]:
        kind = "header" if rec["ev"] == "header" else rec["ev"]
        jsonschema().validate(rec, S.kind_schema(kind))
        assert S.validate(rec) is None


HCALL = {"ev": "hcall", "seq": 0, "cpu": 0, "name": "H_CEDE", "opcode": 0xE0, "args": [], "rc": 0, "outs": []}
BROKEN = [
    ({**HCALL, "rc": "0"}, "rc"),
    ({**HCALL, "args": [-1]}, "args.0"),
    ({**HCALL, "args": [0] * 10}, "args"),
    ({k: v for k, v in HCALL.items() if k != "outs"}, "outs"),
    ({**HCALL, "cpu": True}, "cpu"),
    ({"ev": "mmio", "seq": 0, "cpu": 0, "window": "esb", "op": "poke", "offset": 0, "size": 8, "value": 0}, "op"),
    ({"ev": "mmio", "seq": 0, "cpu": 0, "window": "esb", "op": "load", "offset": 0, "size": 3, "value": 0}, "size"),
    ({"ev": "cas", "seq": 0, "rc": 0, "intc": "xive", "mmu": "hash", "vector": "xyz"}, "vector"),
    ({"ev": "mode", "seq": 0, "before": None, "after": "apic"}, "after"),
    ({"ev": "Bad Kind", "seq": 0}, "ev"),
    ({"ev": "note", "seq": -1}, "seq"),
]


@pytest.mark.parametrize("rec, field", BROKEN, ids=[f for _, f in BROKEN])
def test_checker_agrees_with_jsonschema_on_bad_records(rec, field):
    assert not jsonschema().Draft202012Validator(S.kind_schema(rec["ev"])).is_valid(rec)
    why = S.validate(rec)
    assert why is not None and field.split(".")[0] in why


def test_unknown_kind_keeps_common_fields():
    assert S.validate({"ev": "vpa", "seq": 3, "anything": [1]}) is None


def test_checker_refuses_keywords_it_does_not_implement():
    with pytest.raises(ValueError, match="additionalProperties"):
        S.compile_schema({"type": "object", "additionalProperties": False})


def _lines(trace) -> list[str]:
    return trace.dumps().splitlines(keepends=True)


def _broken_files(t) -> list[tuple[str, str]]:
    lines = _lines(t)
    head = json.loads(lines[0])
    bad_rc = json.loads(lines[3])
    bad_rc["rc"] = "oops"
    return [
        ("", "empty trace"),
        (lines[0][:40], "truncated trace"),
        ("".join(lines[:4]) + lines[4][:15], "truncated trace: the last record is cut off"),
        ("".join(lines[1:]), "not an xive-machine trace"),
        (json.dumps({**head, "schema": 2}) + "\n" + "".join(lines[1:]), "schema version 2 is not supported"),
        (json.dumps({**head, "tool": "qemu"}) + "\n", "not an xive-machine trace"),
        (json.dumps({**head, "config": {"smp": 0, "memory": 1, "ic_mode": "xive"}}) + "\n", "config.smp"),
        ("".join(lines[:3]) + "{not json\n" + "".join(lines[4:]), "not JSON"),
        ("".join(lines[:3]) + "".join(lines[4:]), "event seq 3 where 2 was expected"),
        ("".join(lines[:3]) + json.dumps(bad_rc) + "\n", "rc"),
        ("".join(lines[:3]) + "\n" + "".join(lines[3:]), "empty line"),
        ("".join(lines[:-1]) + lines[-1].replace('"events":', '"events":1'), "the end record counts"),
        ("".join(lines) + lines[3], "after the end record"),
        ("".join(lines[:3]) + "[1]\n", "JSON object"),
    ]


def test_each_broken_file_gives_one_line(tmp_path, session_trace):
    for i, (text, expected) in enumerate(_broken_files(session_trace)):
        path = write(tmp_path, text, f"b{i}.jsonl")
        with pytest.raises(ConfigError) as err:
            reader.load(path)
        msg = str(err.value)
        assert expected in msg and path in msg and "\n" not in msg, (expected, msg)


def test_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="no such trace file"):
        reader.load(str(tmp_path / "missing.jsonl"))
    with pytest.raises(ConfigError, match="is a directory"):
        reader.load(str(tmp_path))
    p = tmp_path / "bin.jsonl"
    p.write_bytes(b"\xff\xfe\x00garbage\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        reader.load(str(p))


def test_a_cli_style_file_without_end_record_loads(tmp_path, session_trace):
    text = "".join(_lines(session_trace)[:-1])
    t = reader.load(write(tmp_path, text))
    assert t.trailer is None and len(t.events) == len(session_trace.events)


def test_from_events_normalises_like_a_file():
    from xive_machine.hcalls.codes import Op

    t = reader.from_events([{"ev": "hcall", "cpu": 0, "name": "H_CEDE", "opcode": Op.H_CEDE, "args": (),
                             "rc": 0, "outs": []}])
    assert t.events == [{**HCALL, "opcode": 0xE0}] and type(t.events[0]["opcode"]) is int


def test_gzip_traces(tmp_path, session_trace):
    path = str(tmp_path / "t.jsonl.gz")
    session_trace.write(path)
    data = (tmp_path / "t.jsonl.gz").read_bytes()
    assert data[:2] == b"\x1f\x8b"
    assert reader.load(path).events == session_trace.events
    session_trace.write(str(tmp_path / "again.jsonl.gz"))
    assert (tmp_path / "again.jsonl.gz").read_bytes() == data  # reproducible: no name, no mtime
    (tmp_path / "cut.jsonl.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ConfigError, match="truncated or corrupt gzip"):
        reader.load(str(tmp_path / "cut.jsonl.gz"))
