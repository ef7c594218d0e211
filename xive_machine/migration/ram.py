"""Guest RAM in a snapshot: 64 KiB chunks, all-zero ones skipped, the rest zlib-compressed; or, for a later
snapshot of the same run, only the chunks that changed since the base snapshot.

Guest stores are invisible to the host (Unicorn keeps no dirty bitmap, and `GuestRam.dirty_pages` only sees
host-side writes), so changes are found by comparing each chunk's SHA-256 with the base's; the host's
dirty log (EQ pages marked by the XIVE EQ sync, hcall copies) is added to that set.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from xive_machine.errors import ConfigError
from xive_machine.memory.ram import PAGE_SHIFT, GuestRam

CHUNK_SHIFT = 16
CHUNK = 1 << CHUNK_SHIFT
ZERO_CHUNK = bytes(CHUNK)
ZERO_DIGEST = hashlib.sha256(ZERO_CHUNK).digest()
NO_BASE = bytes(32)
ZLIB_LEVEL = 1  # guest RAM compresses nearly as well at level 1, several times faster than the default
GROUP = 64  # chunks per zlib stream (4 MiB): the unit of parallel (de)compression


@dataclass
class RamImage:
    """What the RAM section holds (see format.RamSection)."""

    size: int
    ram_id: bytes
    base_id: bytes
    base_file: str
    zeroed: list[int]
    chunks: list[int]
    blocks: list[bytes]  # zlib streams of GROUP chunks each (the last may hold fewer)


def digests(ram: GuestRam) -> list[bytes]:
    """SHA-256 of every chunk (zero chunks recognised by comparison, not hashed)."""
    buf = ram.buf
    out = []
    for off in range(0, ram.size, CHUNK):
        chunk = bytes(buf[off:off + CHUNK])
        out.append(ZERO_DIGEST if chunk == ZERO_CHUNK else hashlib.sha256(chunk).digest())
    return out


def ram_id(table: list[bytes]) -> bytes:
    return hashlib.sha256(b"".join(table)).digest()


def encode(ram: GuestRam, table: list[bytes], base: tuple[list[bytes], bytes, str] | None = None) -> RamImage:
    """A full image, or with `base` = (base digests, base ram_id, base file name) a delta against it."""
    buf = ram.buf
    if base is None:
        wanted = [i for i, d in enumerate(table) if d != ZERO_DIGEST]
        zeroed: list[int] = []
        base_id, base_file = NO_BASE, ""
    else:
        old, base_id, base_file = base
        dirty = {p >> (CHUNK_SHIFT - PAGE_SHIFT) for p in ram.dirty_pages}
        changed = [i for i, d in enumerate(table) if d != old[i] or i in dirty]
        wanted = [i for i in changed if table[i] != ZERO_DIGEST]
        zeroed = [i for i in changed if table[i] == ZERO_DIGEST]
    groups = [wanted[k:k + GROUP] for k in range(0, len(wanted), GROUP)]

    def pack(group: list[int]) -> bytes:
        return zlib.compress(b"".join(buf[i << CHUNK_SHIFT:(i + 1) << CHUNK_SHIFT] for i in group), ZLIB_LEVEL)

    return RamImage(ram.size, ram_id(table), base_id, base_file, zeroed, wanted, _map(pack, groups))


def _map(fn: Callable[[Any], bytes], items: list) -> list[bytes]:
    if len(items) < 2:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=min(len(items), os.cpu_count() or 1)) as pool:
        return list(pool.map(fn, items))


def apply(ram: GuestRam, image: RamImage, load_base: Callable[[str, bytes], None]) -> None:
    """Write the image into RAM. A delta first asks `load_base(file, base_id)` to restore its base."""
    if image.size != ram.size:
        raise ConfigError(f"snapshot RAM is {image.size >> 20} MiB, the machine has {ram.size >> 20} MiB")
    nchunks = ram.size >> CHUNK_SHIFT
    if any(not 0 <= i < nchunks for i in (*image.chunks, *image.zeroed)):
        raise ConfigError("snapshot RAM section names chunks outside RAM")
    try:
        blocks = _map(zlib.decompress, list(image.blocks))
    except zlib.error as exc:
        raise ConfigError(f"snapshot RAM data does not decompress ({exc})") from None
    if len(blocks) != -(-len(image.chunks) // GROUP) or any(
            len(b) != CHUNK * min(GROUP, len(image.chunks) - k * GROUP) for k, b in enumerate(blocks)):
        raise ConfigError("snapshot RAM data has the wrong length")
    if image.base_id == NO_BASE:
        ram.clear()
    else:
        load_base(image.base_file, image.base_id)
    buf = ram.buf
    for i in image.zeroed:
        ram.fill(i << CHUNK_SHIFT, CHUNK, 0)
    for k, i in enumerate(image.chunks):
        block = blocks[k // GROUP]
        off = (k % GROUP) * CHUNK
        buf[i << CHUNK_SHIFT:(i + 1) << CHUNK_SHIFT] = block[off:off + CHUNK]
    ram.dirty_pages.clear()
