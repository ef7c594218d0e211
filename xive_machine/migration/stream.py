"""Snapshot bytes <-> sections, with every check done before anything is applied, and the atomic file write.

A reader refuses, each with one line: a file that is not a snapshot, a format version it does not know, a
truncated file, a header or section whose CRC-32 does not match, an unknown or missing section, trailing
bytes. Reading never writes: a failed restore leaves the file as it was.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

from construct import ConstructError

from xive_machine.errors import ConfigError, read_input
from xive_machine.migration import format as F

ORDER = ("MISC", "BOOT", "CPUS", "VSX ", "CTRL", "TREE", "VOF ", "CAS ", "CONS", "PLAT", "RAM ")


@dataclass
class Snapshot:
    """A decoded, verified snapshot: the saved config and the parsed sections."""

    version: int
    flags: int
    config: dict
    sections: dict[str, list[Any]]
    sizes: list[tuple[str, int]] = field(default_factory=list)  # (tag, payload bytes) in file order
    total: int = 0
    source: str = "snapshot"  # the file name, for messages and for finding an incremental base

    @property
    def incremental(self) -> bool:
        return bool(self.flags & F.FLAG_INCREMENTAL)


def encode(sections: dict[str, list[Any]], config_json: bytes, flags: int = 0) -> bytes:
    parts = []
    for tag in ORDER:
        for item in sections.get(tag, ()):
            payload = F.TAGS[tag].build(item)
            parts.append(F.SectionHeader.build({"tag": tag, "length": len(payload), "crc": F.crc32(payload)}))
            parts.append(payload)
    header = F.FileHeader.build({"version": F.FORMAT_VERSION, "flags": flags, "nsections": len(parts) // 2,
                                 "config": config_json})
    return b"".join([header, F.HEADER_CRC.build(F.crc32(header)), *parts])


def decode(data: bytes, what: str = "snapshot") -> Snapshot:
    """Verify and parse. ConfigError (one line, naming `what`) for anything wrong."""
    n = len(data)
    pre_size = F.Preamble.sizeof()
    if n < pre_size or data[:len(F.MAGIC)] != F.MAGIC:
        if n < pre_size and F.MAGIC.startswith(bytes(data[:len(F.MAGIC)])) and n:
            raise ConfigError(f"{what}: truncated snapshot ({n} bytes)")
        raise ConfigError(f"{what}: not a xive-machine snapshot")
    version = F.Preamble.parse(data[:pre_size]).version
    if version != F.FORMAT_VERSION:
        raise ConfigError(f"{what}: snapshot format version {version} is not supported "
                          f"(this xive-machine reads version {F.FORMAT_VERSION})")
    fixed = pre_size + 2 + 4  # flags, nsections
    if n < fixed + 4:
        raise ConfigError(f"{what}: truncated snapshot (header cut short)")
    config_len = int.from_bytes(data[fixed:fixed + 4], "big")
    hlen = fixed + 4 + config_len
    if n < hlen + 4:
        raise ConfigError(f"{what}: truncated snapshot (header cut short)")
    if F.crc32(data[:hlen]) != F.HEADER_CRC.parse(data[hlen:hlen + 4]):
        raise ConfigError(f"{what}: header checksum mismatch (the file is damaged)")
    try:
        header = F.FileHeader.parse(data[:hlen])
        config = json.loads(header.config.decode())
    except (ConstructError, ValueError) as exc:
        raise ConfigError(f"{what}: malformed header ({exc})") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{what}: malformed header (config is not an object)")
    off = hlen + 4
    sh_size = F.SectionHeader.sizeof()
    raw: list[tuple[str, bytes]] = []
    for k in range(header.nsections):
        if off + sh_size > n:
            raise ConfigError(f"{what}: truncated snapshot (section {k + 1} of {header.nsections} missing)")
        try:
            sh = F.SectionHeader.parse(data[off:off + sh_size])
        except (ConstructError, ValueError):  # a damaged tag that is not even text
            raise ConfigError(f"{what}: unreadable header of section {k + 1} (the file is damaged)") from None
        off += sh_size
        if sh.tag not in F.TAGS:
            raise ConfigError(f"{what}: unknown section {sh.tag!r} (the file is damaged)")
        if off + sh.length > n:
            raise ConfigError(f"{what}: truncated snapshot (section {sh.tag.strip()!r} needs {sh.length} bytes, "
                              f"{n - off} left)")
        payload = data[off:off + sh.length]
        off += sh.length
        if F.crc32(payload) != sh.crc:
            raise ConfigError(f"{what}: checksum mismatch in section {sh.tag.strip()!r} (the file is damaged)")
        raw.append((sh.tag, payload))
    if off != n:
        raise ConfigError(f"{what}: {n - off} unexpected bytes after the last section")
    sections: dict[str, list[Any]] = {}
    for tag, payload in raw:
        sections.setdefault(tag, []).append(F.parse(F.TAGS[tag], payload, f"{what}: section {tag.strip()!r}"))
    for tag in F.REQUIRED:
        if tag not in sections:
            raise ConfigError(f"{what}: no {tag.strip()!r} section")
    return Snapshot(version, header.flags, config, sections, [(t, len(p)) for t, p in raw], n, what)


def read_file(path: str | os.PathLike) -> bytes:
    return read_input(path, "a snapshot")


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Temporary file in the same directory, fsync, rename over `path`, fsync the directory: a crash at any
    point leaves either the old file or the new one, never a mix."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write snapshot ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), _mode_for(path))  # mkstemp makes it 0600: give it an ordinary file's mode
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise ConfigError(f"{path}: cannot write snapshot ({exc.strerror})") from None
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def _mode_for(path: str) -> int:
    """The mode the file has now, or what a new file gets under the umask."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
