"""Guest RAM: one zero-filled host buffer shared by every vCPU (Unicorn maps it with `mem_map_ptr`).

Models (XIVE EQs, RTAS blocks, the client interface) read and write guest memory through this class and
never through Unicorn: the buffer is the same memory the vCPUs see. Guest data is big-endian in memory
unless a caller says otherwise.
"""

from __future__ import annotations

import ctypes
import mmap
import re
import struct

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_NONZERO = re.compile(rb"[^\x00]")
_memcmp = ctypes.CDLL(None).memcmp  # (host address, bytes, size) -> 0 when equal
_memcmp.argtypes = (ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t)
_memcmp.restype = ctypes.c_int


class GuestRam:
    """Guest physical RAM [0, size). Out-of-range accesses raise IndexError; callers turn that into a PAPR code."""

    def __init__(self, size: int) -> None:
        if size <= 0 or size % (64 << 10):
            raise ValueError(f"RAM size {size:#x} must be a positive multiple of 64 KiB")
        self.size = size
        # Anonymous mmap: zero-filled, page-aligned, lazily committed by the host kernel.
        self._map = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self.buf = memoryview(self._map)
        self.address = ctypes.addressof(ctypes.c_char.from_buffer(self._map))
        # Pages written by the host side (EQ writes, hcall copies) or marked by EQ sync: the dirty log that
        # migration reads. Guest stores are not tracked here (Unicorn gives no cheap dirty bitmap).
        self._dirty_pages: set[int] = set()
        # The same log as a bitmap (1 bit per page, `dirty_any[0]` set when a bit is) for writers in C (the
        # XIVE fast path's EQ writes), which cannot add to a Python set; `dirty_pages` folds it in.
        self.dirty_bits = bytearray(((size >> PAGE_SHIFT) + 7) // 8)
        self.dirty_any = bytearray(1)

    @property
    def dirty_pages(self) -> set[int]:
        """The dirty log: page numbers (the C writers' bits folded in first)."""
        if self.dirty_any[0]:
            self._fold_dirty_bits()
        return self._dirty_pages

    def _fold_dirty_bits(self) -> None:
        bits = self.dirty_bits
        pages = self._dirty_pages
        for hit in _NONZERO.finditer(bits):  # the scan runs in C: the bitmap is mostly zero
            i = hit.start()
            b = bits[i]
            while b:
                low = b & -b
                pages.add((i << 3) + low.bit_length() - 1)
                b ^= low
        bits[:] = bytes(len(bits))
        self.dirty_any[0] = 0

    def contains(self, addr: int, size: int = 1) -> bool:
        return 0 <= addr and size >= 0 and addr + size <= self.size

    def _check(self, addr: int, size: int) -> None:
        if not (0 <= addr and addr + size <= self.size):
            raise IndexError(f"guest access {addr:#x}+{size:#x} outside RAM (size {self.size:#x})")

    def read(self, addr: int, size: int) -> bytes:
        self._check(addr, size)
        return bytes(self.buf[addr : addr + size])

    def write(self, addr: int, data: bytes | bytearray | memoryview) -> None:
        n = len(data)
        self._check(addr, n)
        self.buf[addr : addr + n] = data

    def fill(self, addr: int, size: int, value: int = 0) -> None:
        self._check(addr, size)
        ctypes.memset(self.address + addr, value, size)

    def read_u8(self, addr: int) -> int:
        self._check(addr, 1)
        return self.buf[addr]

    def write_u8(self, addr: int, value: int) -> None:
        self._check(addr, 1)
        self.buf[addr] = value & 0xFF

    def read_u16(self, addr: int) -> int:
        self._check(addr, 2)
        return _U16.unpack_from(self.buf, addr)[0]

    def read_u32(self, addr: int) -> int:
        self._check(addr, 4)
        return _U32.unpack_from(self.buf, addr)[0]

    def write_u32(self, addr: int, value: int) -> None:
        self._check(addr, 4)
        _U32.pack_into(self.buf, addr, value & 0xFFFFFFFF)

    def read_u64(self, addr: int) -> int:
        self._check(addr, 8)
        return _U64.unpack_from(self.buf, addr)[0]

    def write_u64(self, addr: int, value: int) -> None:
        self._check(addr, 8)
        _U64.pack_into(self.buf, addr, value & 0xFFFFFFFFFFFFFFFF)

    def read_cstring(self, addr: int, max_len: int) -> bytes | None:
        """NUL-terminated string at addr, or None if no NUL within max_len bytes or outside RAM."""
        if not self.contains(addr, 1):
            return None
        end = min(self.size, addr + max_len)
        chunk = bytes(self.buf[addr:end])
        nul = chunk.find(b"\0")
        return None if nul < 0 else chunk[:nul]

    def differing_pages(self, addr: int, expected: bytes) -> list[int]:
        """Addresses of the pages of [addr, addr + len(expected)) (page-aligned) whose bytes differ from
        `expected`: one compare when none do (a reset asks this of every page that may hold code)."""
        n = len(expected)
        self._check(addr, n)
        base = self.address + addr
        if not _memcmp(base, expected, n):  # (a memoryview slice would compare byte by byte in Python)
            return []
        view = memoryview(expected)
        return [addr + off for off in range(0, n, PAGE_SIZE)
                if _memcmp(base + off, view[off:off + PAGE_SIZE].tobytes(), min(PAGE_SIZE, n - off))]

    def mark_dirty(self, addr: int, size: int) -> None:
        if size <= 0:
            return
        first, last = addr >> PAGE_SHIFT, (addr + size - 1) >> PAGE_SHIFT
        self.dirty_pages.update(range(first, last + 1))

    def restore(self, images: list[tuple[int, bytes]]) -> None:
        """RAM as a machine reset leaves it: zeroes, with `images` (address, bytes) written over them in order.
        Pages no image touches are dropped (madvise, as `clear`); the images' own pages are rewritten in place,
        so the guest's next run does not fault them in again from the host kernel."""
        spans = sorted((addr & ~(PAGE_SIZE - 1), -(-(addr + len(data)) // PAGE_SIZE) * PAGE_SIZE)
                       for addr, data in images if data)
        for lo, hi in spans:
            self._check(lo, hi - lo)
        pos = 0
        for lo, hi in spans + [(self.size, self.size)]:
            if lo > pos:
                self._drop(pos, lo - pos)
            pos = max(pos, hi)
        for addr, data in images:  # the bytes of their pages outside them (all first: images may share a page)
            if not data:
                continue
            end = addr + len(data)
            lo, hi = addr & ~(PAGE_SIZE - 1), -(-end // PAGE_SIZE) * PAGE_SIZE
            ctypes.memset(self.address + lo, 0, addr - lo)
            ctypes.memset(self.address + end, 0, min(hi, self.size) - end)
        for addr, data in images:
            self.write(addr, data)
        self.dirty_pages.clear()

    def _drop(self, addr: int, size: int) -> None:
        try:
            self._map.madvise(mmap.MADV_DONTNEED, addr, size)
        except (AttributeError, OSError):  # pragma: no cover - non-Linux hosts
            ctypes.memset(self.address + addr, 0, size)

    def clear(self) -> None:
        """Zero all of RAM (machine reset). madvise drops the pages instead of writing zeroes."""
        try:
            self._map.madvise(mmap.MADV_DONTNEED)
        except (AttributeError, OSError):  # pragma: no cover - non-Linux hosts
            ctypes.memset(self.address, 0, self.size)
        self.dirty_pages.clear()
