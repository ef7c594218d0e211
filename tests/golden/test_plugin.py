"""The pytest plugin, run on generated test files (pytester): golden files and --update-golden, the guest
marker, the hv fixture, the failure report section, and pytest-xdist."""

from __future__ import annotations

import json

import pytest

pytest_plugins = ["pytester"]
FAST = ("-p", "no:hypothesispytest", "-p", "no:benchmark", "-p", "no:cacheprovider")  # seconds of startup each


def run(pytester, *args: str):
    return pytester.runpytest(*FAST, *args)

GOLDEN_TEST = """
import pytest

@pytest.mark.hv(ic_mode="xive", smp=2)
def test_session(hv, golden):
    hv.cas()
    hv.hcall("H_INT_SET_SOURCE_CONFIG", 0, 0x1000, 1, 5, 0x1000)
    hv.esb_load(0x1000, 0x800)
    golden.check(hv.trace())

def test_machine(spapr_machine, golden):
    m = spapr_machine(ic_mode="xics")
    m.prepare()
    m.hcall(0, 0x24, 0x1234)  # H_SET_SPRG0
    golden.check(m)
    golden.check(m.trace.events, "as-events", config=m.config)
"""


@pytest.fixture
def golden_project(pytester):
    pytester.makepyfile(test_scripted=GOLDEN_TEST)
    return pytester


def golden_file(pytester):
    return pytester.path / "test_scripted.golden" / "test_session.jsonl"


def test_missing_golden_file_says_how_to_record(golden_project):
    r = run(golden_project)
    r.assert_outcomes(failed=2)
    r.stdout.fnmatch_lines(["*golden file test_scripted.golden/test_session.jsonl does not exist: run pytest "
                            "with --update-golden to record it*"])
    assert "Traceback" not in r.stdout.str()


def test_update_then_compare(golden_project):
    run(golden_project, "--update-golden").assert_outcomes(passed=2)
    assert golden_file(golden_project).exists()
    assert (golden_project.path / "test_scripted.golden" / "as-events.jsonl").exists()
    run(golden_project).assert_outcomes(passed=2)


def test_divergence_is_shown(golden_project):
    run(golden_project, "--update-golden").assert_outcomes(passed=2)
    path = golden_file(golden_project)
    lines = path.read_text().splitlines()
    i = next(k for k, ln in enumerate(lines) if '"H_INT_SET_SOURCE_CONFIG"' in ln)
    rec = json.loads(lines[i])
    rec["rc"] = -57
    lines[i] = json.dumps(rec)
    path.write_text("\n".join(lines) + "\n")
    r = run(golden_project)
    r.assert_outcomes(failed=1, passed=1)
    r.stdout.fnmatch_lines([
        "*first divergence at A#*: changed hcall  cpu0 H_INT_SET_SOURCE_CONFIG*",
        "*rc: -57 H_P4 (A) != 0 H_SUCCESS (B)*",
        "*summary: 1 changed, 0 removed, 0 added*",
        "*accept the new behaviour with --update-golden*",
        "*xive-machine trace*",
    ])


def test_corrupt_golden_file_is_one_clear_failure(golden_project):
    run(golden_project, "--update-golden").assert_outcomes(passed=2)
    path = golden_file(golden_project)
    path.write_text(path.read_text()[:-30])
    r = run(golden_project)
    r.assert_outcomes(failed=1, passed=1)
    r.stdout.fnmatch_lines(["*golden file unusable: *test_session.jsonl:*: truncated trace*"])


def test_golden_from_another_config(golden_project):
    run(golden_project, "--update-golden").assert_outcomes(passed=2)
    golden_project.makepyfile(test_scripted=GOLDEN_TEST.replace("smp=2", "smp=1"))
    r = run(golden_project)
    r.assert_outcomes(failed=1, passed=1)
    r.stdout.fnmatch_lines(["*was recorded with another machine config (smp 2 -> 1); re-record it with "
                            "--update-golden*"])


GUEST_TEST = """
import pytest

@pytest.mark.guest("hello", max_insns=5_000_000)
def test_hello(guest_result):
    assert guest_result.powered_off
    assert guest_result.console.endswith("PASS\\n")
    assert any(e["ev"] == "hcall" and e["name"] == "H_PUT_TERM_CHAR" for e in guest_result.trace)

@pytest.mark.guest("hello", smp=2)
def test_report_section(guest_result):
    assert guest_result.console == "something else"

@pytest.mark.guest("no-such-image")
def test_missing_image(guest_result):
    pass

@pytest.mark.guest("hello", smp=0)
def test_bad_option(guest_result):
    pass
"""


def test_guest_marker(pytester, guest_build):
    pytester.makepyfile(test_guest=GUEST_TEST)
    r = run(pytester, "--guest-dir", str(guest_build), "-rfE")
    r.assert_outcomes(passed=1, failed=1, errors=2)  # a fixture that cannot give a result: an error
    r.stdout.fnmatch_lines([
        "*xive-machine trace*",
        "guest hello: power-off (exit 0) after * instructions*",
        "console (tail):",
    ])
    r.stdout.fnmatch_lines(["*guest image 'no-such-image' not found*"])
    r.stdout.fnmatch_lines(["*@pytest.mark.guest('hello'): --smp 0: between 1 and 1024 vCPUs*"])


def test_under_xdist(golden_project):
    golden_project.makepyfile(test_more=GOLDEN_TEST.replace("smp=2", "smp=3"))
    golden_project.runpytest_subprocess(*FAST, "-n", "2", "--update-golden").assert_outcomes(passed=4)
    golden_project.runpytest_subprocess(*FAST, "-n", "2").assert_outcomes(passed=4)
    assert (golden_project.path / "test_more.golden" / "test_session.jsonl").exists()
