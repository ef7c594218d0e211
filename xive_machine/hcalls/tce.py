"""TCE (DMA translation) tables and their hcalls, as QEMU 7.2's hw/ppc/spapr_iommu.c serves them.

The pseries tree always carries the default PCI host bridge, whose 32-bit DMA window (`ibm,dma-window` =
LIOBN 0x80000000, bus offset 0, 1 GiB of 4 KiB pages) Linux initialises at boot with H_STUFF_TCE and uses
through H_PUT_TCE(_INDIRECT). No device does DMA here, but the table is real guest-visible state: a TCE
written reads back with H_GET_TCE, and a guest that clears the window must get H_SUCCESS as on QEMU.

The handlers use only `m.tce_tables` (LIOBN -> TceTable) and `m.ram`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from xive_machine.hcalls.codes import H, Op
from xive_machine.hcalls.papr import phys_read
from xive_machine.hcalls.registry import HcallTable

TCE_HCALLS = HcallTable("tce")

MASK64 = 0xFFFF_FFFF_FFFF_FFFF
PHB0_LIOBN = 0x8000_0000  # SPAPR_PCI_LIOBN(0, 0)
PHB0_DMA32_SIZE = 0x4000_0000  # SPAPR_PCI_DMA32_SIZE
TCE_PAGE_SHIFT = 12
INDIRECT_MAX = 512  # H_PUT_TCE_INDIRECT takes at most one 4 KiB page of TCEs
TCE_LIST_ALIGN = 0xFFF


@dataclass
class TceTable:
    """One DMA window: `entries` TCEs of 2^page_shift bytes from `bus_offset`; unset entries read 0."""

    liobn: int
    bus_offset: int
    page_shift: int
    entries: int
    table: dict[int, int] = field(default_factory=dict)

    def put(self, ioba: int, tce: int) -> int:
        index = ((ioba - self.bus_offset) & MASK64) >> self.page_shift
        if index >= self.entries:
            return H.PARAMETER
        if tce:
            self.table[index] = tce & MASK64
        else:
            self.table.pop(index, None)
        return H.SUCCESS


def default_tables() -> dict[int, TceTable]:
    """The tables a pseries machine has at reset: the default PHB's 32-bit window."""
    return {PHB0_LIOBN: TceTable(PHB0_LIOBN, 0, TCE_PAGE_SHIFT, PHB0_DMA32_SIZE >> TCE_PAGE_SHIFT)}


@TCE_HCALLS.hcall(Op.H_PUT_TCE, "H_PUT_TCE")
def h_put_tce(m: Any, cpu: int, liobn: int, ioba: int, tce: int) -> tuple[int, ...]:
    """In: R4 LIOBN, R5 IOBA, R6 TCE. Unknown LIOBN or IOBA outside the window -> H_PARAMETER."""
    t = m.tce_tables.get(liobn)
    if t is None:
        return (H.PARAMETER,)
    return (t.put(ioba & ~((1 << t.page_shift) - 1), tce),)


@TCE_HCALLS.hcall(Op.H_GET_TCE, "H_GET_TCE")
def h_get_tce(m: Any, cpu: int, liobn: int, ioba: int) -> tuple[int, ...]:
    """In: R4 LIOBN, R5 IOBA. Out: R4 the TCE. QEMU does not mask the IOBA here (the index shift does)."""
    t = m.tce_tables.get(liobn)
    if t is None:
        return (H.PARAMETER,)
    index = ((ioba - t.bus_offset) & MASK64) >> t.page_shift
    if index >= t.entries:
        return (H.PARAMETER,)
    return (H.SUCCESS, t.table.get(index, 0))


@TCE_HCALLS.hcall(Op.H_STUFF_TCE, "H_STUFF_TCE")
def h_stuff_tce(m: Any, cpu: int, liobn: int, ioba: int, tce: int, npages: int) -> tuple[int, ...]:
    """In: R4 LIOBN, R5 IOBA, R6 TCE value, R7 page count. npages beyond the table -> H_PARAMETER; entries
    are written in order until one falls outside the window (that one's H_PARAMETER is returned)."""
    t = m.tce_tables.get(liobn)
    if t is None or npages > t.entries:
        return (H.PARAMETER,)
    size = 1 << t.page_shift
    ioba &= ~(size - 1)
    rc = H.PARAMETER
    for i in range(npages):
        rc = t.put(ioba + i * size, tce)
        if rc:
            break
    return (rc,)


@TCE_HCALLS.hcall(Op.H_PUT_TCE_INDIRECT, "H_PUT_TCE_INDIRECT")
def h_put_tce_indirect(m: Any, cpu: int, liobn: int, ioba: int, tce_list: int, npages: int) -> tuple[int, ...]:
    """In: R4 LIOBN, R5 IOBA, R6 guest address of a list of big-endian TCEs (4 KiB aligned), R7 count (at
    most 512). Entries are written until one fails; zero pages -> H_PARAMETER, as QEMU."""
    t = m.tce_tables.get(liobn)
    if t is None or npages > INDIRECT_MAX or tce_list & TCE_LIST_ALIGN:
        return (H.PARAMETER,)
    size = 1 << t.page_shift
    ioba &= ~(size - 1)
    raw = phys_read(m.ram, tce_list, 8 * npages)
    rc = H.PARAMETER
    for i in range(npages):
        rc = t.put(ioba + i * size, int.from_bytes(raw[8 * i:8 * i + 8], "big"))
        if rc:
            break
    return (rc,)
