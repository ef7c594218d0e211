"""Kernel loading the way QEMU 7.2's pseries machine does it (`translate_kernel_address` + its ELF loader).

Each PT_LOAD goes to `(p_paddr & 0x0fffffff) + kernel_addr`; execution starts at the lowest loaded address,
not at e_entry. Big- and little-endian, ET_EXEC and ET_DYN. Bad files become one ConfigError line.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from xive_machine.errors import ConfigError, read_input
from xive_machine.memory.ram import GuestRam

KERNEL_ADDR = 0x400000
EM_PPC64 = "EM_PPC64"


@dataclass(frozen=True)
class LoadedKernel:
    path: str
    base: int  # lowest loaded address = entry point
    size: int  # highest loaded byte + 1 - base
    little_endian: bool
    e_entry: int
    exec_ranges: tuple[tuple[int, int], ...]  # (guest address, size) of executable segments, for code scans


def load_kernel(path: str, ram: GuestRam, kernel_addr: int = KERNEL_ADDR) -> LoadedKernel:
    f = io.BytesIO(read_input(path, "an ELF image"))
    with f:
        if f.read(4) != b"\x7fELF":
            raise ConfigError(f"{path}: not an ELF file")
        f.seek(0)
        try:
            elf = ELFFile(f)
            if elf.elfclass != 64:
                raise ConfigError(f"{path}: a 32-bit ELF; pseries boots 64-bit PowerPC (ppc64/ppc64le) images")
            if elf["e_machine"] != EM_PPC64:
                raise ConfigError(f"{path}: ELF for {elf['e_machine']}, not 64-bit PowerPC")
            if elf["e_type"] not in ("ET_EXEC", "ET_DYN"):
                raise ConfigError(f"{path}: ELF type {elf['e_type']} is not an executable")
            loads = [s for s in elf.iter_segments() if s["p_type"] == "PT_LOAD" and s["p_memsz"] > 0]
            if not loads:
                raise ConfigError(f"{path}: no loadable segments")
            placed = []
            for seg in loads:
                addr = (seg["p_paddr"] & 0x0FFFFFFF) + kernel_addr
                if seg["p_filesz"] > seg["p_memsz"]:
                    raise ConfigError(f"{path}: corrupt segment (file size larger than memory size)")
                if not ram.contains(addr, seg["p_memsz"]):
                    raise ConfigError(
                        f"{path}: segment at {addr:#x}+{seg['p_memsz']:#x} does not fit in "
                        f"{ram.size >> 20} MiB of RAM (use --memory)")
                placed.append((seg, addr))
            for seg, addr in placed:
                data = seg.data()
                if len(data) != seg["p_filesz"]:
                    raise ConfigError(f"{path}: truncated file (segment data missing)")
                ram.write(addr, data)
                ram.fill(addr + len(data), seg["p_memsz"] - len(data), 0)
            lo = min(a for _, a in placed)
            hi = max(a + s["p_memsz"] for s, a in placed)
            execs = tuple((a, s["p_memsz"]) for s, a in placed if s["p_flags"] & 1)
            return LoadedKernel(os.path.abspath(path), lo, hi - lo, elf.little_endian, elf["e_entry"], execs)
        except ConfigError:
            raise
        except (ELFError, Exception) as exc:  # noqa: BLE001 - pyelftools raises many kinds on corrupt files
            raise ConfigError(f"{path}: corrupt ELF ({exc})") from None
