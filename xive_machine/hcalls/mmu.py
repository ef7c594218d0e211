"""The radix MMU hcall: H_REGISTER_PROC_TBL, as QEMU 7.2 (hw/ppc/spapr_hcall.c, h_register_process_table).

The guest hands the hypervisor its process table; partition-scoped translation is the identity on this
machine, so the table is all the vCPUs' TLB-fill walker needs (VCpu.set_process_table). Hash page tables are
not provided: a hash registration is validated as QEMU does, recorded, and leaves translation-on accesses
faulting.

The handler uses only `m.patb_entry` (QEMU's spapr->patb_entry), `m.set_lpcr_mmu(uprt_hr, gtse)` and
`m.set_process_table(base, entries)`; `apply_patb` is also how a snapshot restores the registration.
"""

from __future__ import annotations

from typing import Any

from xive_machine.hcalls.codes import H, Op
from xive_machine.hcalls.registry import HcallTable

MMU_HCALLS = HcallTable("mmu")

FLAGS_MASK = 0x1F
FLAG_MODIFY = 0x10
FLAG_REGISTER = 0x08
FLAG_RADIX = 0x04
FLAG_HASH_PROC_TBL = 0x02
FLAG_GTSE = 0x01
PATE1_GR = 1 << 63  # the partition-table entry's "guest radix" bit, as QEMU keeps it in patb_entry
MAX_TABLE_SIZE = 24  # PRTS: the table is 2^(12 + PRTS) bytes
PROC_TBL_ENTRY = 16


@MMU_HCALLS.hcall(Op.H_REGISTER_PROC_TBL, "H_REGISTER_PROC_TBL")
def h_register_proc_tbl(m: Any, cpu: int, flags: int, proc_tbl: int, page_size: int,
                        table_size: int) -> tuple[int, ...]:
    """In: R4 flags, R5 table address, R6 page size (hash), R7 table size (PRTS). Out: nothing.

    QEMU's order: reserved flag bits -> H_PARAMETER; with MODIFY|REGISTER and RADIX: table not 4K-aligned or
    above 2^60 -> H_P2, a page size -> H_P3, PRTS > 24 -> H_P4; hash with segment tables -> H_PARAMETER, hash
    with SLB: table >= 2^38 -> H_P2, page size beyond 3 bits -> H_P3, PRTS > 24 -> H_P4. MODIFY without
    REGISTER deregisters (keeps GR); no MODIFY must match the current radix-ness (else H_PARAMETER).
    """
    if flags & ~FLAGS_MASK:
        return (H.PARAMETER,)
    if flags & FLAG_MODIFY:
        if flags & FLAG_REGISTER:
            if flags & FLAG_RADIX:
                if proc_tbl & 0xFFF or proc_tbl >> 60:
                    return (H.P2,)
                if page_size:
                    return (H.P3,)
                if table_size > MAX_TABLE_SIZE:
                    return (H.P4,)
                entry = PATE1_GR | proc_tbl | table_size
            else:
                if flags & FLAG_HASH_PROC_TBL:
                    return (H.PARAMETER,)
                if proc_tbl >> 38:
                    return (H.P2,)
                if page_size & ~0x7:
                    return (H.P3,)
                if table_size > MAX_TABLE_SIZE:
                    return (H.P4,)
                entry = (proc_tbl << 25) | page_size << 5 | table_size
        else:
            entry = m.patb_entry & PATE1_GR
    else:
        if (not flags & FLAG_RADIX) != (not m.patb_entry & PATE1_GR):
            return (H.PARAMETER,)
        entry = m.patb_entry
    m.set_lpcr_mmu(bool(flags & FLAG_RADIX), bool(flags & FLAG_GTSE))
    apply_patb(m, entry)
    return (H.SUCCESS,)


def apply_patb(m: Any, entry: int) -> None:
    """Make `entry` (QEMU's patb_entry) the registration every vCPU's walker uses: a radix table (GR set
    and a base) is walked; anything else leaves translation-on accesses faulting (no hash MMU here)."""
    m.patb_entry = entry
    if entry & PATE1_GR and entry & ~PATE1_GR:
        size = entry & 0x1F
        m.set_process_table(entry & 0x0FFF_FFFF_FFFF_F000, (1 << (12 + size)) // PROC_TBL_ENTRY)
    else:
        m.set_process_table(0, 0)
