#!/usr/bin/env python3
"""Build the Linux guest: Debian's ppc64le kernel and a busybox initramfs with our /init.

Steps (each a sub-command; ``all`` runs them in order, ``make linux-guest`` drives them):

``fetch``
    Resolve Debian's ``linux-image-powerpc64le`` metapackage to the versioned image it
    depends on and download that and ``busybox-static`` for ppc64el into the cache
    directory.  apt runs with a private root (its own lists, cache and sources.list) so
    the system apt configuration is never touched.  The archive URIs are the ones the
    system's own apt sources use for this Debian release (suite from /etc/os-release,
    default bookworm), or ``$XM_DEBIAN_MIRROR`` / ``$XM_DEBIAN_SECURITY_MIRROR``.
    ``manifest.txt`` records the two .deb files; while it and they exist, ``fetch``
    uses no network (``--refresh`` resolves and downloads again).
``vmlinux``
    Extract ``boot/vmlinux-*`` (the ELF) from the kernel package.
``initramfs``
    Write a newc cpio: /bin /sbin /proc /sys /dev /tmp /etc, /dev/console and
    /dev/null, /init (the static ppc64le program built from init.c), /bin/busybox
    and its applet symlinks.  Entries are sorted, mtime 0, uid/gid 0: the same
    inputs give the same bytes.

Packages are read in pure Python (ar + tar); only a zstd-compressed data member
needs ``dpkg-deb``.  Errors are one line on stderr, ``build_linux_guest: error: ...``,
and exit status 1.
"""

from __future__ import annotations

import argparse
import io
import lzma
import os
import re
import shutil
import stat
import struct
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

PROG = "build_linux_guest"
ARCH = "ppc64el"
KERNEL_META = "linux-image-powerpc64le"
BUSYBOX = "busybox-static"
DEFAULT_SUITE = "bookworm"
MANIFEST = "manifest.txt"

# Applets linked as /bin/<name> -> busybox (each is checked against the binary's applet table).
BUSYBOX_APPLETS = (
    "ash", "cat", "chmod", "clear", "cp", "date", "df", "dmesg", "du", "echo", "env", "false", "find",
    "free", "grep", "halt", "head", "hexdump", "kill", "ln", "ls", "mkdir", "more", "mount", "mv", "nproc",
    "poweroff", "ps", "reboot", "rm", "sed", "sh", "sleep", "stat", "sync", "tail", "taskset", "test", "top",
    "true", "umount", "uname", "uptime", "vi", "wc", "which",
)  # fmt: skip
DIRECTORIES = ("bin", "dev", "etc", "proc", "sbin", "sys", "tmp")

EM_PPC64 = 21
PT_INTERP = 3


class BuildError(Exception):
    """A failure reported to the user as one line."""


# --------------------------------------------------------------------------- cpio (newc)

NEWC_MAGIC = b"070701"
NEWC_HEADER_SIZE = 110
TRAILER = "TRAILER!!!"


@dataclass(frozen=True)
class CpioEntry:
    """One newc archive member.  ``name`` has no leading slash; ``mode`` includes the file type
    bits; ``data`` is the file contents or, for a symlink, its target."""

    name: str
    mode: int
    data: bytes = b""
    rdev_major: int = 0
    rdev_minor: int = 0
    mtime: int = 0
    uid: int = 0
    gid: int = 0
    nlink: int = 1
    ino: int = 0

    @property
    def kind(self) -> str:
        """'dir', 'file', 'symlink', 'chr' or 'blk' (anything else: 'other')."""
        fmt = stat.S_IFMT(self.mode)
        return {stat.S_IFDIR: "dir", stat.S_IFREG: "file", stat.S_IFLNK: "symlink",
                stat.S_IFCHR: "chr", stat.S_IFBLK: "blk"}.get(fmt, "other")  # fmt: skip


def _pad4(n: int) -> int:
    return (4 - n % 4) % 4


def _newc_record(entry: CpioEntry, ino: int) -> bytes:
    name = entry.name.encode() + b"\0"
    fields = (ino, entry.mode, entry.uid, entry.gid, entry.nlink, entry.mtime, len(entry.data),
              0, 0, entry.rdev_major, entry.rdev_minor, len(name), 0)  # fmt: skip
    header = NEWC_MAGIC + b"".join(b"%08X" % f for f in fields)
    out = header + name + b"\0" * _pad4(len(header) + len(name))
    return out + entry.data + b"\0" * _pad4(len(entry.data))


def _path_key(entry: CpioEntry) -> tuple[str, ...]:
    return tuple(entry.name.split("/"))


def write_newc(entries: Iterable[CpioEntry]) -> bytes:
    """Serialise entries as a newc archive: sorted by path (parents first), inode numbers
    1, 2, ... in that order, then the trailer.  Deterministic for the same entries."""
    items = sorted(entries, key=_path_key)
    names = [e.name for e in items]
    if len(set(names)) != len(names):
        raise BuildError("duplicate cpio entry names")
    out = bytearray()
    for ino, entry in enumerate(items, start=1):
        if entry.name.startswith("/") or not entry.name:
            raise BuildError(f"bad cpio entry name {entry.name!r}")
        out += _newc_record(entry, ino)
    out += _newc_record(CpioEntry(TRAILER, 0, nlink=1), 0)
    return bytes(out)


def read_newc(blob: bytes) -> list[CpioEntry]:
    """Parse a newc archive (up to its trailer) back into entries."""
    entries: list[CpioEntry] = []
    pos = 0
    while True:
        header = blob[pos:pos + NEWC_HEADER_SIZE]
        if len(header) < NEWC_HEADER_SIZE or header[:6] != NEWC_MAGIC:
            raise ValueError(f"bad newc header at offset {pos}")
        f = [int(header[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
        ino, mode, uid, gid, nlink, mtime, filesize, _, _, rmaj, rmin, namesize, _ = f
        name_start = pos + NEWC_HEADER_SIZE
        name = blob[name_start:name_start + namesize - 1].decode()
        data_start = name_start + namesize + _pad4(NEWC_HEADER_SIZE + namesize)
        data = blob[data_start:data_start + filesize]
        if len(data) != filesize:
            raise ValueError(f"truncated newc member {name!r}")
        pos = data_start + filesize + _pad4(filesize)
        if name == TRAILER:
            return entries
        entries.append(CpioEntry(name, mode, data, rmaj, rmin, mtime, uid, gid, nlink, ino))


def initramfs_entries(init: bytes, busybox: bytes, applets: Iterable[str] = BUSYBOX_APPLETS) -> list[CpioEntry]:
    """The initramfs tree: directories, device nodes, /init, busybox and its applet links."""
    entries = [CpioEntry(d, stat.S_IFDIR | 0o755, nlink=2) for d in DIRECTORIES]
    entries += [
        CpioEntry("dev/console", stat.S_IFCHR | 0o600, rdev_major=5, rdev_minor=1),
        CpioEntry("dev/null", stat.S_IFCHR | 0o666, rdev_major=1, rdev_minor=3),
        CpioEntry("init", stat.S_IFREG | 0o755, init),
        CpioEntry("bin/busybox", stat.S_IFREG | 0o755, busybox),
    ]
    entries += [CpioEntry(f"bin/{a}", stat.S_IFLNK | 0o777, b"busybox") for a in sorted(set(applets))]
    return entries


# --------------------------------------------------------------------------- ELF checks


@dataclass(frozen=True)
class ElfInfo:
    """The few ELF header facts the build checks."""

    elf_class: int  # 1 = 32-bit, 2 = 64-bit
    little_endian: bool
    machine: int
    static: bool  # no PT_INTERP


def elf_info(blob: bytes) -> ElfInfo:
    """Read class, byte order, e_machine and whether there is a PT_INTERP segment."""
    if blob[:4] != b"\x7fELF" or len(blob) < 64:
        raise BuildError("not an ELF file")
    elf_class, data = blob[4], blob[5]
    if elf_class != 2:
        return ElfInfo(elf_class, data == 1, 0, True)
    end = "<" if data == 1 else ">"
    machine = struct.unpack_from(end + "H", blob, 18)[0]
    phoff = struct.unpack_from(end + "Q", blob, 32)[0]
    phentsize, phnum = struct.unpack_from(end + "HH", blob, 54)
    types = [struct.unpack_from(end + "I", blob, phoff + i * phentsize)[0] for i in range(phnum)]
    return ElfInfo(elf_class, data == 1, machine, PT_INTERP not in types)


def check_ppc64le(blob: bytes, what: str, want_static: bool = False) -> None:
    """Raise BuildError unless blob is a 64-bit little-endian PowerPC ELF (and static if asked)."""
    try:
        info = elf_info(blob)
    except BuildError:
        raise BuildError(f"{what} is not an ELF file") from None
    if info.elf_class != 2 or not info.little_endian or info.machine != EM_PPC64:
        raise BuildError(f"{what} is not a ppc64le ELF (class {info.elf_class}, machine {info.machine})")
    if want_static and not info.static:
        raise BuildError(f"{what} is dynamically linked")


# --------------------------------------------------------------------------- .deb reading


def _ar_members(blob: bytes) -> Iterator[tuple[str, bytes]]:
    if blob[:8] != b"!<arch>\n":
        raise BuildError("not a .deb (ar) archive")
    pos = 8
    while pos + 60 <= len(blob):
        header = blob[pos:pos + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        yield name, blob[pos + 60:pos + 60 + size]
        pos += 60 + size + (size & 1)


def _data_tar(deb: Path) -> io.IOBase:
    """A readable stream of the package's data.tar (decompressed)."""
    for name, payload in _ar_members(deb.read_bytes()):
        if not name.startswith("data.tar"):
            continue
        if name.endswith(".zst"):
            if shutil.which("dpkg-deb") is None:
                raise BuildError(f"{deb.name}: zstd data member needs dpkg-deb")
            proc = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True)
            if proc.returncode != 0:
                raise BuildError(f"dpkg-deb --fsys-tarfile {deb.name}: {proc.stderr.decode().strip()}")
            return io.BytesIO(proc.stdout)
        return io.BytesIO(payload)  # .xz/.gz/.bz2/plain: tarfile "r|*" decompresses these
    raise BuildError(f"{deb.name}: no data.tar member")


def deb_extract(deb: Path, pattern: str) -> tuple[str, bytes]:
    """Return (path, contents) of the one regular file in the package whose path matches the regex."""
    rx = re.compile(pattern)
    found: list[tuple[str, bytes]] = []
    try:
        with tarfile.open(fileobj=_data_tar(deb), mode="r|*") as tar:
            for member in tar:
                path = member.name.removeprefix("./")
                if member.isfile() and rx.fullmatch(path):
                    f = tar.extractfile(member)
                    assert f is not None
                    found.append((path, f.read()))
    except (tarfile.TarError, lzma.LZMAError, OSError) as err:
        raise BuildError(f"cannot read {deb.name}: {err}") from None
    if len(found) != 1:
        raise BuildError(f"{deb.name}: {len(found)} files match {pattern!r}, want 1")
    return found[0]


# --------------------------------------------------------------------------- apt (private root)


def os_codename(os_release: Path = Path("/etc/os-release")) -> str:
    """VERSION_CODENAME from os-release, else bookworm."""
    try:
        for line in os_release.read_text().splitlines():
            if line.startswith("VERSION_CODENAME="):
                return line.split("=", 1)[1].strip().strip('"') or DEFAULT_SUITE
    except OSError:
        pass
    return DEFAULT_SUITE


@dataclass(frozen=True)
class AptSource:
    """One ``deb`` line: archive URI, suite, and an optional keyring."""

    uri: str
    suite: str
    signed_by: str = ""

    def line(self) -> str:
        opts = f"arch={ARCH}" + (f" signed-by={self.signed_by}" if self.signed_by else "")
        return f"deb [{opts}] {self.uri} {self.suite} main"


def _deb822_stanzas(text: str) -> Iterator[dict[str, str]]:
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = ""
        for line in block.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0] in " \t" and key:
                fields[key] += " " + line.strip()
            elif ":" in line:
                key, value = line.split(":", 1)
                key = key.strip().lower()
                fields[key] = value.strip()
        if fields:
            yield fields


def system_apt_sources(codename: str, etc_apt: Path = Path("/etc/apt")) -> list[AptSource]:
    """The system's ``deb`` sources (main component) for this release and its -security and
    -updates suites, read from sources.list, sources.list.d/*.list and *.sources."""
    found: list[AptSource] = []
    wanted = re.compile(re.escape(codename) + r"(-security|-updates)?$")
    lists = [etc_apt / "sources.list", *sorted((etc_apt / "sources.list.d").glob("*.list"))]
    for path in lists:
        if not path.is_file():
            continue
        for line in path.read_text(errors="replace").splitlines():
            m = re.match(r"\s*deb\s+(\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s+(.*)", line)
            if m and wanted.match(m.group(3)) and "main" in m.group(4).split():
                signed = re.search(r"signed-by=(\S+?)\]?(\s|$)", m.group(1) or "")
                found.append(AptSource(m.group(2), m.group(3), signed.group(1) if signed else ""))
    for path in sorted((etc_apt / "sources.list.d").glob("*.sources")):
        for st in _deb822_stanzas(path.read_text(errors="replace")):
            if "deb" not in st.get("types", "").split() or st.get("enabled", "yes").lower() == "no":
                continue
            if "main" not in st.get("components", "").split():
                continue
            signed = st.get("signed-by", "")
            signed = signed if signed.startswith("/") and " " not in signed else ""
            for uri in st.get("uris", "").split():
                found += [AptSource(uri, s, signed) for s in st.get("suites", "").split() if wanted.match(s)]
    return found


def apt_sources(codename: str) -> list[AptSource]:
    """Sources to fetch from: $XM_DEBIAN_MIRROR (and $XM_DEBIAN_SECURITY_MIRROR) if set,
    else the system's own Debian sources for this release."""
    mirror = os.environ.get("XM_DEBIAN_MIRROR")
    if mirror:
        sources = [AptSource(mirror, codename)]
        security = os.environ.get("XM_DEBIAN_SECURITY_MIRROR")
        if security:
            sources.append(AptSource(security, f"{codename}-security"))
        return sources
    sources = system_apt_sources(codename)
    if not sources:
        raise BuildError(f"no Debian apt source for '{codename}' in /etc/apt; set XM_DEBIAN_MIRROR=<archive URI>")
    return sources


class PrivateApt:
    """apt-get/apt-cache with their own state, cache and sources.list under ``root``."""

    def __init__(self, root: Path, sources: list[AptSource]) -> None:
        if shutil.which("apt-get") is None:
            raise BuildError("apt-get not found (needed to fetch the Debian packages)")
        self.root = root = root.resolve()  # apt-get download runs in another directory
        for sub in ("state/lists/partial", "cache/archives/partial", "etc"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        (root / "etc" / "sources.list").write_text("".join(s.line() + "\n" for s in sources))
        self.options = [
            "-o", f"Dir::State={root / 'state'}",
            "-o", f"Dir::Cache={root / 'cache'}",
            "-o", f"Dir::Etc::SourceList={root / 'etc' / 'sources.list'}",
            "-o", "Dir::Etc::SourceParts=/dev/null",
            "-o", f"APT::Architecture={ARCH}",
            "-o", f"APT::Architectures={ARCH}",
        ]  # fmt: skip
        if os.geteuid() == 0:  # downloads land in a root-owned directory _apt cannot write
            self.options += ["-o", "APT::Sandbox::User=root"]

    def _run(self, tool: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([tool, *self.options, *args], capture_output=True, text=True, cwd=cwd)

    def update(self) -> str:
        """apt-get update; errors (e.g. one index mid-sync) are returned, not raised."""
        proc = self._run("apt-get", "-q", "update")
        errors = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.startswith(("E:", "W:", "Err:"))]
        return "; ".join(errors)

    def image_of(self, meta: str) -> str:
        """The versioned linux-image package that the metapackage depends on."""
        proc = self._run("apt-cache", "depends", meta)
        for line in proc.stdout.splitlines():
            m = re.match(r"\s*\|?Depends:\s+(linux-image-\S+)$", line)
            if m:
                return m.group(1)
        raise BuildError(f"cannot resolve {meta}: {(proc.stderr.strip() or 'no linux-image dependency')}")

    def download(self, packages: list[str], dest: Path) -> None:
        proc = self._run("apt-get", "-q", "download", *packages, cwd=dest)
        if proc.returncode != 0:
            err = [ln for ln in proc.stderr.splitlines() if ln.startswith("E:")] or [proc.stderr.strip()]
            raise BuildError(f"apt-get download {' '.join(packages)} failed: {err[0]}")


@dataclass(frozen=True)
class Manifest:
    """The cached kernel and busybox packages (file names inside the cache directory)."""

    kernel: str
    busybox: str

    @classmethod
    def load(cls, cache: Path) -> Manifest | None:
        path = cache / MANIFEST
        if not path.is_file():
            return None
        fields = dict(line.split(None, 1) for line in path.read_text().splitlines() if line.strip())
        try:
            manifest = cls(fields["kernel"].strip(), fields["busybox"].strip())
        except KeyError:
            return None
        if not (cache / manifest.kernel).is_file() or not (cache / manifest.busybox).is_file():
            return None
        return manifest

    def save(self, cache: Path) -> None:
        tmp = cache / (MANIFEST + ".tmp")
        tmp.write_text(f"kernel {self.kernel}\nbusybox {self.busybox}\n")
        tmp.replace(cache / MANIFEST)


def _one(directory: Path, pattern: str, what: str) -> Path:
    matches = sorted(directory.glob(pattern))
    if len(matches) != 1:
        raise BuildError(f"expected one {what} .deb after download, found {len(matches)}")
    return matches[0]


def fetch(cache: Path, refresh: bool = False) -> Manifest:
    """Make sure the kernel and busybox packages are in the cache; no network if they already are."""
    cache.mkdir(parents=True, exist_ok=True)
    manifest = None if refresh else Manifest.load(cache)
    if manifest is not None:
        print(f"{PROG}: using cached {manifest.kernel}, {manifest.busybox}")
        return manifest
    codename = os_codename()
    apt = PrivateApt(cache / "apt", apt_sources(codename))
    update_errors = apt.update()
    try:
        image = apt.image_of(KERNEL_META)
    except BuildError as err:
        raise BuildError(f"{err}{' (apt-get update: ' + update_errors + ')' if update_errors else ''}") from None
    print(f"{PROG}: {KERNEL_META} ({codename}) -> {image}")
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        tmpdir = Path(tmp)
        try:
            apt.download([image, BUSYBOX], tmpdir)
        except BuildError as err:
            raise BuildError(f"{err}{' (apt-get update: ' + update_errors + ')' if update_errors else ''}") from None
        kernel = _one(tmpdir, f"{image}_*_{ARCH}.deb", image)
        busybox = _one(tmpdir, f"{BUSYBOX}_*_{ARCH}.deb", BUSYBOX)
        for old in cache.glob("*.deb"):
            old.unlink()
        manifest = Manifest(kernel.name, busybox.name)
        kernel.replace(cache / kernel.name)
        busybox.replace(cache / busybox.name)
    manifest.save(cache)
    if update_errors:
        print(f"{PROG}: note: apt-get update reported errors, the download worked all the same: {update_errors}")
    print(f"{PROG}: cached {manifest.kernel}, {manifest.busybox} in {cache}")
    return manifest


def _require_manifest(cache: Path) -> Manifest:
    manifest = Manifest.load(cache)
    if manifest is None:
        raise BuildError(f"no packages in {cache}; run the fetch step first")
    return manifest


def _write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.chmod(mode)
    tmp.replace(path)


def build_vmlinux(cache: Path, out: Path) -> None:
    """Extract boot/vmlinux-* from the cached kernel package to ``out``."""
    manifest = _require_manifest(cache)
    name, data = deb_extract(cache / manifest.kernel, r"boot/vmlinux-.*")
    check_ppc64le(data, name)
    _write_atomic(out, data, 0o755)
    print(f"{PROG}: {out} <- {name} ({len(data)} bytes)")


def build_initramfs(cache: Path, init: Path, out: Path) -> None:
    """Write the initramfs cpio from /init and the cached busybox package."""
    manifest = _require_manifest(cache)
    try:
        init_data = init.read_bytes()
    except OSError as err:
        raise BuildError(f"cannot read {init}: {err.strerror}") from None
    check_ppc64le(init_data, str(init), want_static=True)
    _, busybox = deb_extract(cache / manifest.busybox, r"bin/busybox")
    check_ppc64le(busybox, "bin/busybox", want_static=True)
    missing = [a for a in BUSYBOX_APPLETS if b"\0" + a.encode() + b"\0" not in busybox]
    if missing:
        raise BuildError(f"busybox has no applet(s) {', '.join(missing)}")
    blob = write_newc(initramfs_entries(init_data, busybox))
    _write_atomic(out, blob)
    print(f"{PROG}: {out} ({len(blob)} bytes)")


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parent
    build = here.parent / "build"
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=("all", "fetch", "vmlinux", "initramfs"), nargs="?", default="all")
    parser.add_argument("--cache", type=Path, default=build / "linux-cache", help="package cache directory")
    parser.add_argument("--refresh", action="store_true", help="fetch: resolve and download again")
    parser.add_argument("--init", type=Path, default=build / "linux" / "init", help="the compiled /init")
    parser.add_argument("--vmlinux", type=Path, default=build / "vmlinux", help="vmlinux output")
    parser.add_argument("--initramfs", type=Path, default=build / "initramfs.cpio", help="cpio output")
    args = parser.parse_args(argv)
    try:
        if args.step in ("all", "fetch"):
            fetch(args.cache, args.refresh)
        if args.step in ("all", "vmlinux"):
            build_vmlinux(args.cache, args.vmlinux)
        if args.step in ("all", "initramfs"):
            build_initramfs(args.cache, args.init, args.initramfs)
    except BuildError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
