"""The exception hierarchy: what the library raises, and how the CLI maps it to exit codes."""

from __future__ import annotations


class XiveMachineError(Exception):
    """Base of every error the library raises on purpose."""

    exit_code = 1


class ConfigError(XiveMachineError):
    """Bad user input: a missing file, a non-ELF image, an impossible option. CLI exit 2."""

    exit_code = 2


class GuestError(XiveMachineError):
    """The guest did something the machine cannot continue from (runs wild, no handler). CLI exit 4."""

    exit_code = 4


class HcallError(Exception):
    """Raised inside an hcall handler: becomes the PAPR return code in r3, never escapes the machine."""

    def __init__(self, rc: int, why: str = "") -> None:
        super().__init__(why)
        self.rc = rc


class KvmError(OSError):
    """An errno from the KVM device model, as the kernel's ioctl would return it."""

    def __init__(self, errno_: int, why: str = "") -> None:
        import os

        super().__init__(errno_, why or os.strerror(errno_))


class InternalError(XiveMachineError):
    """A bug in xive-machine itself: propagated, never swallowed."""

    exit_code = 70


def read_input(path: object, what: str) -> bytes:
    """A whole input file (image, initrd, snapshot, console script), or one clear ConfigError line saying why
    not: the CLI prints it and exits 2."""
    try:
        with open(path, "rb") as f:  # type: ignore[call-overload]
            return f.read()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not {what}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what} ({exc.strerror})") from None
