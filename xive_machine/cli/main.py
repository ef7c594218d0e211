"""`xive-machine`: a thin argparse front end over the library. Errors become one line and an exit code:
2 bad input, 3 stopped by --timeout/--max-insns (or idle forever), 4 the guest ran wild, 5 CAS asked for an
interrupt mode the machine does not offer; otherwise the guest's own status (0 power-off, 1 os-term).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from xive_machine import __version__
from xive_machine.errors import ConfigError, XiveMachineError, read_input

EXIT_BAD_INPUT = 2


def _machine_args(p: argparse.ArgumentParser, *, image: bool = True) -> None:
    p.add_argument("--smp", type=int, default=1, help="number of vCPUs (default 1)")
    p.add_argument("--memory", "-m", default="256M", help="guest RAM, e.g. 256M, 1G (default 256M)")
    p.add_argument("--boot", choices=("vof", "fdt"), default="vof",
                   help="entry convention: QEMU's VOF client interface (default) or the FDT in r3")
    p.add_argument("--append", default="", help="kernel command line (/chosen/bootargs)")
    p.add_argument("--initrd", help="initrd/initramfs image (linux,initrd-start/end)")
    p.add_argument("--ic-mode", choices=("xics", "xive", "dual"), default="dual",
                   help="interrupt-controller modes the platform offers, as QEMU's ic-mode (default dual)")
    p.add_argument("--irqchip", choices=("emulated", "kvm"), default="emulated",
                   help="interrupt-controller backend: the emulated models, or the KVM device models "
                        "(XICS-on-XIVE while XICS is active, XIVE native once CAS picks XIVE)")
    p.add_argument("--max-compat", choices=("power8", "power9", "power10"), default="power9",
                   help="highest compat mode CAS may select (default power9)")
    p.add_argument("--clock", choices=("deterministic", "host"), default="deterministic",
                   help="time from instructions retired (repeatable, default) or host wall time")
    p.add_argument("--rng", action="store_true", help="offer H_RANDOM (as QEMU with -device spapr-rng)")
    if image:
        p.add_argument("--trace", metavar="FILE", help="write every hcall, RTAS, CI call ... as JSON lines")
        p.add_argument("--timeout", type=float, default=None, help="stop after this many wall seconds (exit 3)")
        p.add_argument("--max-insns", type=int, default=None, help="stop after this many instructions (exit 3)")
        p.add_argument("--input", metavar="FILE", help="console input for H_GET_TERM_CHAR, from a file")
        p.add_argument("--console", choices=("stdio", "none"), default="stdio",
                       help="stdio: guest output to stdout (default); none: keep it quiet")
        p.add_argument("image", help="guest ELF (ppc64 or ppc64le)")


def _config(ns: argparse.Namespace) -> Any:
    from xive_machine.machine.config import MachineConfig

    console_input = b""
    if getattr(ns, "input", None):
        console_input = read_input(ns.input, "console input")
    cfg = MachineConfig(smp=ns.smp, memory=ns.memory, boot=ns.boot, append=ns.append, initrd=ns.initrd,
                         ic_mode=ns.ic_mode, irqchip=ns.irqchip, max_compat=ns.max_compat, clock=ns.clock,
                        rng=ns.rng, console_input=console_input,
                        echo_console=getattr(ns, "console", "stdio") == "stdio")
    return cfg


QUIT_KEYS = b"\x01x"  # Ctrl-A x, as QEMU's -nographic: the terminal is raw, so Ctrl-C belongs to the guest


def _stdin_fd() -> int:
    try:
        return sys.stdin.fileno() if sys.stdin is not None else -1
    except (OSError, ValueError):
        return -1


def _stdin_reader(quit: Any = None) -> Any:
    """H_GET_TERM_CHAR from the terminal or a pipe: whatever bytes are ready, never blocking the guest.
    Ctrl-A x calls `quit` instead of reaching the guest."""
    import select

    fd = _stdin_fd()
    state = {"eof": False}

    def read(max_len: int) -> bytes:
        if fd < 0 or state["eof"]:
            return b""
        try:
            ready, _, _ = select.select([fd], [], [], 0)
            data = os.read(fd, max_len) if ready else b""
        except (OSError, ValueError):
            return b""
        if ready and not data:
            state["eof"] = True  # a pipe that ended: stop asking select
        if quit is not None and QUIT_KEYS in data:
            quit()
            data = data.split(QUIT_KEYS)[0]
        return data

    return read


class _RawTerminal:
    """The guest's console owns the terminal while it runs (line editing and signals are the guest's, as
    under QEMU -nographic); restored on the way out, whatever happens."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.saved: Any = None

    def __enter__(self) -> _RawTerminal:
        if self.fd >= 0 and os.isatty(self.fd):
            import termios
            import tty

            self.saved = termios.tcgetattr(self.fd)
            tty.setraw(self.fd, termios.TCSANOW)  # the guest sends \r\n itself, as to a serial line
        return self

    def __exit__(self, *exc: object) -> None:
        if self.saved is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)


def _open_trace(ns: argparse.Namespace, cfg: Any) -> tuple[Any, Any]:
    if not getattr(ns, "trace", None):
        return None, None
    from xive_machine.trace.jsonl import JsonlSink

    try:
        stream = open(ns.trace, "w", buffering=1 << 16)  # noqa: SIM115 - closed by the caller
    except OSError as exc:
        raise ConfigError(f"{ns.trace}: cannot write trace ({exc.strerror})") from None
    header = {"config": cfg.as_dict(), "image": os.path.basename(ns.image), "image_sha256": _hash(ns.image)}
    return JsonlSink(stream, header), stream


def _hash(path: str) -> str | None:
    from xive_machine.trace.jsonl import image_sha256

    try:
        return image_sha256(path)
    except OSError:
        return None


def _report(result: Any) -> int:
    if result.reason not in ("power-off", "exit"):
        sys.stdout.flush()
        print(f"xive-machine: {result.reason}: {result.message}", file=sys.stderr)
    return result.exit_code


def cmd_run(ns: argparse.Namespace) -> int:
    from xive_machine.machine.spapr import SpaprMachine

    cfg = _config(ns)
    sink, stream = _open_trace(ns, cfg)
    try:
        m = SpaprMachine(cfg, trace=sink)
        live = not ns.input and ns.console == "stdio"
        if live:  # H_GET_TERM_CHAR: stdin, when no --input script
            m.console.set_live_input(_stdin_reader(lambda: m.stop("quit", 0, "console: Ctrl-A x")))
        m.load(ns.image)
        if getattr(ns, "snapshot_at", None) is not None:  # migration: stop after N, save, exit 0
            from xive_machine.cli import snapshot_cmd

            return snapshot_cmd.run_to_snapshot(ns, m)
        with _RawTerminal(_stdin_fd() if live else -1):
            result = m.run(max_insns=ns.max_insns, timeout=ns.timeout)
    finally:
        if stream is not None:
            sink.close()
            stream.close()
    return _report(result)


def cmd_dts(ns: argparse.Namespace) -> int:
    from xive_machine.machine.spapr import SpaprMachine

    cfg = _config(ns)
    from xive_machine.firmware import devtree as DT

    m = SpaprMachine(cfg)
    m.prepare()
    sys.stdout.write(DT.to_dts(m.tree))
    return 0


def cmd_cas(ns: argparse.Namespace) -> int:
    from xive_machine.firmware import ovec

    if ns.decode:
        data = read_input(ns.decode, "an architecture vector")
        print("\n".join(ovec.decode_bytes(data)))
        try:
            ovec.parse_arch_vector(data, strict=True)
        except ovec.VectorError:
            return 1  # malformed: the report above starts with the precise error
        return 0
    if not ns.image:
        raise ConfigError("cas: give a guest image, or --decode FILE")
    from xive_machine.machine import cas_report
    from xive_machine.machine.spapr import SpaprMachine

    cfg = _config(ns)
    sink, stream = _open_trace(ns, cfg)
    try:
        m = SpaprMachine(cfg, trace=sink)
        m.load(ns.image)
        result = m.run(until="cas", max_insns=ns.max_insns, timeout=ns.timeout)
        if result.reason == "until":
            sys.stdout.flush()
            print(cas_report.render(m), flush=True)
            if ns.stop_after_cas:
                return 0
            result = m.run(max_insns=ns.max_insns, timeout=ns.timeout)
        elif m.cas is None and result.reason != "cas-mode":
            print("xive-machine: the guest never called CAS", file=sys.stderr)
    finally:
        if stream is not None:
            sink.close()
            stream.close()
    return _report(result)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="xive-machine", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"xive-machine {__version__}")
    p.add_argument("--debug", action="store_true", help="show Python tracebacks for errors")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="boot a guest; its console on stdout, exit status the guest's")
    _machine_args(r)
    r.add_argument("--snapshot-at", type=int, metavar="N", help="stop after N instructions and save the machine")
    r.add_argument("--snapshot-file", metavar="FILE", default="snapshot.xm",
                   help="where --snapshot-at saves (default snapshot.xm)")
    r.set_defaults(func=cmd_run)

    d = sub.add_parser("dts", help="print the device tree the guest sees at reset, as DTS")
    _machine_args(d, image=False)
    d.set_defaults(func=cmd_dts)

    c = sub.add_parser("cas", help="step through CAS: the vectors, the offer, the decision, the tree diff")
    c.add_argument("--decode", metavar="VECTOR.BIN", help="decode a raw architecture vector file and exit")
    c.add_argument("--stop-after-cas", action="store_true", help="do not run the guest on after the report")
    _machine_args(c, image=False)
    c.add_argument("--trace", metavar="FILE")
    c.add_argument("--timeout", type=float, default=None)
    c.add_argument("--max-insns", type=int, default=None)
    c.add_argument("--console", choices=("stdio", "none"), default="stdio")
    c.add_argument("image", nargs="?")
    c.set_defaults(func=cmd_cas)

    from xive_machine.cli import snapshot_cmd, trace_cmd  # here: snapshot_cmd uses this module's _report

    trace_cmd.add_parser(sub)
    snapshot_cmd.add_parsers(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    try:
        return int(ns.func(ns))
    except XiveMachineError as err:
        if ns.debug:
            raise
        print(f"xive-machine: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("xive-machine: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
