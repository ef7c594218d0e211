"""NVRAM over RTAS (nvram-fetch, nvram-store), as QEMU 7.2's spapr-nvram device without a backing drive:
64 KiB of zeros that live as long as the machine (a reset keeps them, as QEMU keeps the device's buffer).

Linux reads the whole NVRAM at boot to find its partitions; an error here (rather than an empty NVRAM)
changes what it prints and logs. Uses only `m.nvram` (bytearray) and `m.ram`.
"""

from __future__ import annotations

from typing import Any

from xive_machine.firmware.rtas import RtasStatus, RtasTable
from xive_machine.hcalls.papr import phys_read, phys_write

RTAS_NVRAM = RtasTable("nvram")
NVRAM_SIZE = 0x10000  # DEFAULT_NVRAM_SIZE; the tree's nvram@71000001 says #bytes = <0x10000>


def _range(m: Any, args: list[int], nret: int) -> tuple[int, int, int] | None:
    if len(args) != 3 or nret != 2:
        return None
    offset, buffer, length = args
    if offset + length > len(m.nvram):
        return None
    return offset, buffer, length


@RTAS_NVRAM.rtas("nvram-fetch")
def rtas_nvram_fetch(m: Any, cpu: int, args: list[int], nret: int) -> list[int]:
    """Args: offset, buffer, length. Rets: status, bytes transferred. Counts other than 3/2 -> -3 (and no
    second ret); a range past the end -> -3, 0."""
    r = _range(m, args, nret)
    if r is None:
        return [RtasStatus.PARAMETER_ERROR] + ([0] if len(args) == 3 and nret == 2 else [])
    offset, buffer, length = r
    phys_write(m.ram, buffer, bytes(m.nvram[offset:offset + length]))
    return [RtasStatus.SUCCESS, length]


@RTAS_NVRAM.rtas("nvram-store")
def rtas_nvram_store(m: Any, cpu: int, args: list[int], nret: int) -> list[int]:
    """Args: offset, buffer, length. Rets: status, bytes transferred (the same checks as nvram-fetch)."""
    r = _range(m, args, nret)
    if r is None:
        return [RtasStatus.PARAMETER_ERROR] + ([0] if len(args) == 3 and nret == 2 else [])
    offset, buffer, length = r
    m.nvram[offset:offset + length] = phys_read(m.ram, buffer, length)
    return [RtasStatus.SUCCESS, length]
