"""XIVE architected names and layouts: ESB offsets, TIMA rings, EAS/END words, sPAPR numbering.

Each word layout is declared once as a construct BitStruct in MSB-0 order (as the XIVE documents number
bits); the hot paths use `(shift, mask)` pairs derived from the same declaration at import.
No behaviour lives here.
"""

from __future__ import annotations

from construct import BitsInteger, BitStruct, Flag, Padding

# --- ESB (Event State Buffer) -------------------------------------------------------------------------

XIVE_ESB_4K = 12
XIVE_ESB_4K_2PAGE = 13
XIVE_ESB_64K = 16
XIVE_ESB_64K_2PAGE = 17

XIVE_ESB_LOAD_EOI = 0x000
XIVE_ESB_STORE_EOI = 0x400
XIVE_ESB_GET = 0x800
XIVE_ESB_INJECT = 0x800  # store side of the GET range: forward without a PQ check
XIVE_ESB_SET_PQ_00 = 0xC00
XIVE_ESB_SET_PQ_01 = 0xD00
XIVE_ESB_SET_PQ_10 = 0xE00
XIVE_ESB_SET_PQ_11 = 0xF00
XIVE_ESB_LD_ST_MO = 0x40  # ordering hint Linux adds with StoreEOI (0xE40 == 0xE00 here)

XIVE_ESB_VAL_P = 0x2
XIVE_ESB_VAL_Q = 0x1
XIVE_ESB_RESET = 0x0
XIVE_ESB_PENDING = 0x2
XIVE_ESB_QUEUED = 0x3
XIVE_ESB_OFF = 0x1
XIVE_ESB_INVALID = 0xFF

# source status byte: PQ in bits 0-1 (as QEMU), ASSERTED for LSIs
XIVE_STATUS_ASSERTED = 0x4
XIVE_ESB_PQ_MASK = 0x3

XIVE_PRIORITY_MAX = 7

# --- TIMA (Thread Interrupt Management Area) --------------------------------------------------------------

TM_SHIFT = 16
XIVE_TM_HW_PAGE = 0
XIVE_TM_HV_PAGE = 1
XIVE_TM_OS_PAGE = 2
XIVE_TM_USER_PAGE = 3

TM_QW0_USER = 0x00
TM_QW1_OS = 0x10
TM_QW2_HV_POOL = 0x20
TM_QW3_HV_PHYS = 0x30
TM_RING_OFFSET = 0x30
TM_REG_OFFSET = 0x3F

# byte offsets inside a ring
TM_NSR = 0x0
TM_CPPR = 0x1
TM_IPB = 0x2
TM_LSMFB = 0x3
TM_ACK_CNT = 0x4
TM_INC = 0x5
TM_AGE = 0x6
TM_PIPR = 0x7
TM_WORD2 = 0x8

TM_QW1_NSR_EO = 0x80
TM_QW3_NSR_HE_PHYS = 0x2  # HE field (bits 0-1) value; shifted by 6 in the byte
TM_QW3_NSR_HE = 0xC0

TM_QW1W2_VO = 0x80000000
TM_QW1W2_OS_CAM = 0x00FFFFFF
TM_QW2W2_VP = 0x80000000
TM_QW3W2_VT = 0x80

# special operations (offset inside a TIMA page)
TM_SPC_ACK_EBB = 0x800
TM_SPC_ACK_OS_REG = 0x810
TM_SPC_SET_OS_PENDING = 0x812
TM_SPC_PULL_OS_CTX = 0x818
TM_SPC_PULL_POOL_CTX = 0x828
TM_SPC_ACK_HV_REG = 0x830
TM_SPC_PULL_USR_CTX = 0x808
TM_SPC_PULL_USR_CTX_OL = 0xC08
TM_SPC_ACK_OS_EL = 0xC10
TM_SPC_ACK_HV_POOL_EL = 0xC20
TM_SPC_ACK_HV_EL = 0xC30

# --- EAS / END layouts (MSB-0) ----------------------------------------------------------------------------

XiveEAS = BitStruct(
    "valid" / Flag,  # bit 0
    Padding(3),
    "end_block" / BitsInteger(4),  # bits 4-7
    "end_index" / BitsInteger(24),  # bits 8-31
    "masked" / Flag,  # bit 32
    "end_data" / BitsInteger(31),  # bits 33-63 (EISN)
)

XiveENDW0 = BitStruct(
    "valid" / Flag,  # V, bit 0
    "enqueue" / Flag,  # Q, bit 1
    "ucond_notify" / Flag,  # N, bit 2
    "backlog" / Flag,  # B, bit 3
    "precl_esc_ctl" / Flag,  # P, bit 4
    "escalate_ctl" / Flag,  # E, bit 5
    "uncond_esc" / Flag,  # U, bit 6
    "silent_escal" / Flag,  # S, bit 7
    Padding(4),
    "qsize" / BitsInteger(4),  # bits 12-15
    "sw0" / Flag,  # bit 16
    Padding(7),
    "hwdep" / BitsInteger(8),  # bits 24-31
)

XiveENDW1 = BitStruct(
    "esn" / BitsInteger(2),  # bits 0-1 (P, Q)
    "ese" / BitsInteger(2),  # bits 2-3
    Padding(5),
    "generation" / Flag,  # bit 9
    "page_off" / BitsInteger(22),  # bits 10-31 (queue index)
)

XiveENDW2 = BitStruct("migration" / BitsInteger(4), "qaddr_hi" / BitsInteger(28))
XiveENDW6 = BitStruct(Padding(8), "format" / Flag, "nvt_block" / BitsInteger(4), "nvt_index" / BitsInteger(19))
XiveENDW7 = BitStruct(
    "f0_ignore" / Flag, "f0_blk_grouping" / Flag, Padding(6), "f0_priority" / BitsInteger(8), Padding(16)
)

END_WORDS = 8  # an END is eight 32-bit words


def bit_fields(bitstruct) -> dict[str, tuple[int, int]]:
    """name -> (shift, mask) for an MSB-first BitStruct, computed once at import."""
    subcons = bitstruct.subcon.subcons
    pos = sum(sc.sizeof() for sc in subcons)
    out: dict[str, tuple[int, int]] = {}
    for sc in subcons:
        pos -= sc.sizeof()
        if sc.name:
            out[sc.name] = (pos, (1 << sc.sizeof()) - 1)
    return out


def _m(fields: dict[str, tuple[int, int]], name: str) -> int:
    shift, mask = fields[name]
    return mask << shift


EAS = bit_fields(XiveEAS)
END_W0 = bit_fields(XiveENDW0)
END_W1 = bit_fields(XiveENDW1)
END_W2 = bit_fields(XiveENDW2)
END_W6 = bit_fields(XiveENDW6)
END_W7 = bit_fields(XiveENDW7)

EAS_VALID = _m(EAS, "valid")
EAS_MASKED = _m(EAS, "masked")
EAS_END_BLOCK = _m(EAS, "end_block")
EAS_END_INDEX_SHIFT, EAS_END_INDEX_MASK = EAS["end_index"]
EAS_END_DATA_SHIFT, EAS_END_DATA_MASK = EAS["end_data"]

END_W0_VALID = _m(END_W0, "valid")
END_W0_ENQUEUE = _m(END_W0, "enqueue")
END_W0_UCOND_NOTIFY = _m(END_W0, "ucond_notify")
END_W0_BACKLOG = _m(END_W0, "backlog")
END_W0_ESCALATE_CTL = _m(END_W0, "escalate_ctl")
END_W0_SILENT_ESCALATE = _m(END_W0, "silent_escal")
END_W0_QSIZE_SHIFT, END_W0_QSIZE_MASK = END_W0["qsize"]
END_W1_ESN_SHIFT, END_W1_ESN_MASK = END_W1["esn"]
END_W1_ESE_SHIFT, END_W1_ESE_MASK = END_W1["ese"]
END_W1_ESN = END_W1_ESN_MASK << END_W1_ESN_SHIFT
END_W1_ESE = END_W1_ESE_MASK << END_W1_ESE_SHIFT
END_W1_ESN_Q = XIVE_ESB_VAL_Q << END_W1_ESN_SHIFT
END_W1_ESE_Q = XIVE_ESB_VAL_Q << END_W1_ESE_SHIFT
END_W1_GENERATION = _m(END_W1, "generation")
END_W1_PAGE_OFF_SHIFT, END_W1_PAGE_OFF_MASK = END_W1["page_off"]
END_W2_QADDR_HI_MASK = END_W2["qaddr_hi"][1]
END_W6_FORMAT_BIT = _m(END_W6, "format")
END_W6_NVT_BLOCK_SHIFT, END_W6_NVT_BLOCK_MASK = END_W6["nvt_block"]
END_W6_NVT_INDEX_SHIFT, END_W6_NVT_INDEX_MASK = END_W6["nvt_index"]
END_W7_F0_PRIORITY_SHIFT, END_W7_F0_PRIORITY_MASK = END_W7["f0_priority"]

# --- sPAPR numbering and memory map (QEMU 7.2 pseries) ---------------------------------------------------

SPAPR_XIVE_VC_BASE = 0x0006010000000000
SPAPR_XIVE_TM_BASE = 0x0006030203180000
SPAPR_XIVE_BLOCK_ID = 0
SPAPR_XIVE_NVT_BASE = 0x400
SPAPR_XIRQ_BASE = 0x1000
SPAPR_NR_XIRQS = 0x1000
SPAPR_XIVE_NR_IRQS = SPAPR_XIRQ_BASE + SPAPR_NR_XIRQS
SPAPR_IRQ_IPI = 0x0
SPAPR_XIVE_HV_PRIO = 7  # QEMU `hv-prio`: priorities >= this are reserved for the hypervisor
TM_PAGE_SIZE = 1 << TM_SHIFT
TM_REGION_SIZE = 4 * TM_PAGE_SIZE
END_ESB_SHIFT = XIVE_ESB_64K  # END ESB pair stride = 2 << END_ESB_SHIFT

# H_INT_* flag bits (PAPR names, LSB values)
SPAPR_XIVE_SRC_H_INT_ESB = 0x8
SPAPR_XIVE_SRC_LSI = 0x4
SPAPR_XIVE_SRC_TRIGGER = 0x2
SPAPR_XIVE_SRC_STORE_EOI = 0x1
SPAPR_XIVE_SRC_SET_EISN = 0x2
SPAPR_XIVE_SRC_MASK = 0x1
SPAPR_XIVE_END_ALWAYS_NOTIFY = 0x1
SPAPR_XIVE_END_DEBUG = 0x1
SPAPR_XIVE_ESB_STORE = 0x1
