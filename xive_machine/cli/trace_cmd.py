"""`xive-machine trace diff|replay|show`: the regression tools over recorded traces.

Exit codes: 0 equal / replay identical / shown, 1 the traces differ or the replay diverged, 2 bad input
(missing, truncated or corrupt file, unknown schema version), raised as ConfigError for main() to print.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def cmd_diff(ns: argparse.Namespace) -> int:
    from xive_machine.trace import diff, reader

    a, b = reader.load(ns.a), reader.load(ns.b)
    d = diff.diff(a, b, ignore=ns.ignore or ())
    print(d.render(context=ns.context, max_changes=ns.max_changes))
    return 0 if d.equal else 1


def cmd_replay(ns: argparse.Namespace) -> int:
    from xive_machine.trace import reader, replay

    t = reader.load(ns.trace)
    report = replay.replay(t)
    print(report.render(max_lines=ns.max_lines))
    return 0 if report.ok else 1


def cmd_show(ns: argparse.Namespace) -> int:
    from xive_machine.trace import reader, show

    t = reader.load(ns.trace)
    if not ns.no_header:
        print(show.format_header(t.header))
    n = 0
    for line in show.format_lines(t.events, ns.filter or ()):
        print(line)
        n += 1
    if ns.filter and not n:
        print(f"no event matches {', '.join(ns.filter)}", file=sys.stderr)
    return 0


def add_parser(subparsers: Any) -> None:
    """Add `trace` and its subcommands to the main parser (called by cli/main.py)."""
    t = subparsers.add_parser("trace", help="diff, replay or show recorded traces (--trace FILE of run/cas)")
    sub = t.add_subparsers(dest="trace_command", required=True)

    d = sub.add_parser("diff", help="align two traces and report the first divergence and a summary; "
                                    "exit 1 when they differ")
    d.add_argument("a", metavar="A", help="the reference trace (e.g. a golden file)")
    d.add_argument("b", metavar="B", help="the trace to compare with it")
    d.add_argument("--ignore", action="append", metavar="FIELD",
                   help="leave a field out of the comparison: FIELD (every event), KIND.FIELD (hcall.outs), "
                        "KIND[NAME].FIELD (hcall[KVMPPC_H_*].args), config.OPTION or header.FIELD "
                        "(image_sha256); fnmatch wildcards; repeatable")
    d.add_argument("--context", "-C", type=int, default=3, metavar="N",
                   help="equal events shown around the first divergence (default 3)")
    d.add_argument("--max-changes", type=int, default=20, metavar="N",
                   help="differences listed in the divergence table before the summary (default 20)")
    d.set_defaults(func=cmd_diff)

    r = sub.add_parser("replay", help="rebuild the machine from the trace header, re-issue every hcall, RTAS "
                                      "call, CAS and MMIO access without guest code; exit 1 if a result differs")
    r.add_argument("trace", metavar="TRACE")
    r.add_argument("--max-lines", type=int, default=50, metavar="N", help="differences listed (default 50)")
    r.set_defaults(func=cmd_replay)

    s = sub.add_parser("show", help="print a trace, one event per line, optionally filtered")
    s.add_argument("--filter", "-f", action="append", metavar="PATTERN",
                   help="keep events whose name (hcall, RTAS, CI service, MMIO window) or kind matches this "
                        "fnmatch pattern, e.g. 'H_INT_*', 'ibm,*', mmio; repeatable")
    s.add_argument("--no-header", action="store_true", help="omit the header line")
    s.add_argument("trace", metavar="TRACE")
    s.set_defaults(func=cmd_show)
