"""`xive-machine trace diff|replay|show`: output for CI logs and exit codes (0 same, 1 differs, 2 bad input)."""

from __future__ import annotations

import copy
import json

import pytest

from xive_machine.cli.main import main
from xive_machine.hypervisor import Hypervisor
from xive_machine.trace.reader import Trace
from xive_machine.trace.show import value_text


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> tuple[Trace, str]:
    with Hypervisor(ic_mode="xive") as h:
        h.cas()
        h.hcall("H_INT_SET_SOURCE_CONFIG", 0, 0x1000, 0, 5, 0x1000)
        h.hcall("H_INT_GET_SOURCE_CONFIG", 0, 0x1000)
        h.esb_load(0x1000, 0x800)
        h.rtas("get-time-of-day", nret=1)
        t = h.trace()
    path = str(tmp_path_factory.mktemp("cli") / "a.jsonl")
    t.write(path)
    return t, path


def variant(tmp_path, t: Trace, name: str, edit) -> str:
    v = Trace(copy.deepcopy(t.header), copy.deepcopy(t.events))
    edit(v)
    path = str(tmp_path / name)
    v.write(path)
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_diff_equal(capsys, session):
    rc, out, _ = run(capsys, "trace", "diff", session[1], session[1])
    assert rc == 0 and out.startswith("traces equal")


def test_diff_reports_first_divergence(capsys, tmp_path, session):
    t, a = session
    i = next(k for k, e in enumerate(t.events) if e.get("name") == "H_INT_GET_SOURCE_CONFIG")
    b = variant(tmp_path, t, "b.jsonl", lambda v: v.events[i].update(outs=[0, 1, 6, 0x1000]))
    rc, out, _ = run(capsys, "trace", "diff", "--context", "1", a, b)
    assert rc == 1
    assert f"first divergence at A#{i}: changed hcall  cpu0 H_INT_GET_SOURCE_CONFIG" in out
    assert f"outs: {value_text(t.events[i]['outs'])} (A) != [0, 1, 6, 0x1000] (B)" in out
    assert "summary: 1 changed, 0 removed, 0 added" in out
    rc, out, _ = run(capsys, "trace", "diff", "--ignore", "hcall.outs", a, b)
    assert rc == 0


def test_replay_exit_codes(capsys, tmp_path, session):
    t, a = session
    rc, out, _ = run(capsys, "trace", "replay", a)
    assert rc == 0 and "0 differ" in out
    i = next(k for k, e in enumerate(t.events) if e.get("name") == "H_INT_SET_SOURCE_CONFIG")
    b = variant(tmp_path, t, "r.jsonl", lambda v: v.events[i].update(rc=-55))
    rc, out, _ = run(capsys, "trace", "replay", b)
    assert rc == 1 and f"#{i}" in out and "rc -55 H_P2 recorded, 0 H_SUCCESS now" in out


def test_show_filters(capsys, session):
    rc, out, _ = run(capsys, "trace", "show", "--filter", "H_INT_*", session[1])
    lines = out.splitlines()
    assert rc == 0 and lines[0].startswith("trace: (no guest)")
    assert [ln.split()[3].split("(")[0] for ln in lines[1:]] == ["H_INT_SET_SOURCE_CONFIG", "H_INT_GET_SOURCE_CONFIG"]
    rc, out, _ = run(capsys, "trace", "show", "--no-header", "-f", "mmio", "-f", "rtas", session[1])
    assert [ln.split()[1] for ln in out.splitlines()] == ["mmio", "rtas"]


@pytest.mark.parametrize("sub", [["diff", "{bad}", "{good}"], ["diff", "{good}", "{bad}"], ["replay", "{bad}"],
                                 ["show", "{bad}"]])
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, session, sub):
    bad = tmp_path / "bad.jsonl"
    head = json.loads(session[0].dumps().splitlines()[0])
    bad.write_text(json.dumps({**head, "schema": 99}) + "\n")
    argv = [a.format(bad=bad, good=session[1]) for a in sub]
    rc, out, err = run(capsys, "trace", *argv)
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("xive-machine: error: ") and "schema version 99" in err


def test_missing_file_exit_2(capsys, tmp_path):
    rc, _, err = run(capsys, "trace", "show", str(tmp_path / "nope.jsonl"))
    assert rc == 2 and "no such trace file" in err


@pytest.mark.parametrize("name", ["hello", "xive-errors"])
def test_guest_trace_from_run_replays_and_diffs(capsys, tmp_path, image, name):
    """A trace written by `run --trace` loads, replays without guest code and equals a second run."""
    paths = [str(tmp_path / f"{k}.jsonl") for k in ("a", "b")]
    for p in paths:
        rc, _, _ = run(capsys, "run", "--console", "none", "--max-insns", "50000000", "--trace", p, image(name))
        assert rc == 0
    rc, out, _ = run(capsys, "trace", "replay", paths[0])
    assert rc == 0 and " 0 differ" in out, out
    rc, out, _ = run(capsys, "trace", "diff", *paths)
    assert rc == 0, out
    rc, out, _ = run(capsys, "trace", "show", "-f", "H_INT_*", "--no-header", paths[0])
    assert rc == 0 and (name == "hello" or "H_INT_SET_SOURCE_CONFIG" in out)
