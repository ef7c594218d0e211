"""`xive-machine restore S.XM` (go on from a snapshot to the end, exit status as `run`), `xive-machine snapshot
info S.XM`, and the `run --snapshot-at N --snapshot-file S.XM` path. Bad files: one line, exit 2."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from xive_machine.errors import ConfigError


def run_to_snapshot(ns: argparse.Namespace, m: Any) -> int:
    """`run --snapshot-at N`: run N instructions, save atomically, say where on stderr, exit 0."""
    n = ns.snapshot_at
    if n <= 0:
        raise ConfigError(f"--snapshot-at {n}: give a positive instruction count")
    result = m.run(max_insns=n, timeout=ns.timeout)
    if result.reason != "max-insns":
        sys.stdout.flush()
        print(f"xive-machine: {result.reason}: {result.message}", file=sys.stderr)
        raise ConfigError(f"the guest stopped after {result.instructions} instructions, before --snapshot-at {n}: "
                          "no snapshot written")
    summary = m.snapshot(ns.snapshot_file)
    sys.stdout.flush()
    print(f"xive-machine: snapshot after {m.clock.insns} instructions saved to {summary['path']} "
          f"({summary['bytes']} bytes)", file=sys.stderr)
    return 0


def cmd_restore(ns: argparse.Namespace) -> int:
    from xive_machine import migration
    from xive_machine.cli.main import _report

    echo = ns.console == "stdio"
    m = migration.restore(ns.snapshot, irqchip=ns.irqchip, echo_console=echo)
    try:
        if echo and ns.full_console and m.console.output:  # the saved output first, then the rest
            out = getattr(sys.stdout, "buffer", None)
            if out is not None:
                out.write(bytes(m.console.output))
            else:
                sys.stdout.write(m.console.text())
            sys.stdout.flush()
        if ns.snapshot_at is not None:
            return run_to_snapshot(ns, m)
        result = m.run(max_insns=ns.max_insns, timeout=ns.timeout)
    finally:
        m.close()
    return _report(result)


def cmd_info(ns: argparse.Namespace) -> int:
    from xive_machine import migration

    print(migration.info(ns.snapshot))
    return 0


def add_parsers(sub: Any) -> None:
    r = sub.add_parser("restore", help="go on from a snapshot to the end; console on stdout, exit status as run")
    r.add_argument("--irqchip", choices=("emulated", "kvm"), default=None,
                   help="interrupt-controller backend to restore onto (default: the one saved)")
    r.add_argument("--console", choices=("stdio", "none"), default="stdio",
                   help="stdio: guest output from the snapshot point on, to stdout (default); none: quiet")
    r.add_argument("--full-console", action="store_true",
                   help="print the output saved in the snapshot first, as if the run had never stopped")
    r.add_argument("--timeout", type=float, default=None, help="stop after this many wall seconds (exit 3)")
    r.add_argument("--max-insns", type=int, default=None, help="stop after this many more instructions (exit 3)")
    r.add_argument("--snapshot-at", type=int, metavar="N", help="stop after N more instructions, save again")
    r.add_argument("--snapshot-file", metavar="FILE", default="snapshot.xm",
                   help="where --snapshot-at saves (default snapshot.xm)")
    r.add_argument("snapshot", help="snapshot file (written by run --snapshot-at or SpaprMachine.snapshot)")
    r.set_defaults(func=cmd_restore)

    s = sub.add_parser("snapshot", help="inspect snapshot files")
    ssub = s.add_subparsers(dest="snapshot_command", required=True)
    i = ssub.add_parser("info", help="verify a snapshot and summarise it")
    i.add_argument("snapshot")
    i.set_defaults(func=cmd_info)
