"""PAPR hcall opcodes and return codes, with the names PAPR, QEMU and Linux use. No logic."""

from __future__ import annotations

from enum import IntEnum


class H(IntEnum):
    """PAPR hcall return codes (r3). Negative values are sign-extended to 64 bits in the register."""

    SUCCESS = 0
    BUSY = 1
    CLOSED = 2
    NOT_AVAILABLE = 3
    CONSTRAINED = 4
    PARTIAL = 5
    IN_PROGRESS = 14
    PAGE_REGISTERED = 15
    PARTIAL_STORE = 16
    PENDING = 17
    CONTINUE = 18
    LONG_BUSY_ORDER_1_MSEC = 9900
    LONG_BUSY_ORDER_10_MSEC = 9901
    LONG_BUSY_ORDER_100_MSEC = 9902
    LONG_BUSY_ORDER_1_SEC = 9903
    LONG_BUSY_ORDER_10_SEC = 9904
    LONG_BUSY_ORDER_100_SEC = 9905
    TOO_HARD = 9999
    HARDWARE = -1
    FUNCTION = -2
    PRIVILEGE = -3
    PARAMETER = -4
    BAD_MODE = -5
    PTEG_FULL = -6
    NOT_FOUND = -7
    RESERVED_DABR = -8
    NO_MEM = -9
    AUTHORITY = -10
    PERMISSION = -11
    DROPPED = -12
    SOURCE_PARM = -13
    DEST_PARM = -14
    REMOTE_PARM = -15
    RESOURCE = -16
    ABORTED = -54
    P2 = -55
    P3 = -56
    P4 = -57
    P5 = -58
    P6 = -59
    P7 = -60
    P8 = -61
    P9 = -62
    NOOP = -63
    TOO_BIG = -64
    UNSUPPORTED = -67
    OVERLAP = -68
    STATE = -75
    UNSUPPORTED_FLAG = -256
    MULTI_THREADS_ACTIVE = -9005


class Op(IntEnum):
    """hcall opcodes (r3 on entry)."""

    H_REMOVE = 0x04
    H_ENTER = 0x08
    H_READ = 0x0C
    H_CLEAR_MOD = 0x10
    H_CLEAR_REF = 0x14
    H_PROTECT = 0x18
    H_GET_TCE = 0x1C
    H_PUT_TCE = 0x20
    H_SET_SPRG0 = 0x24
    H_SET_DABR = 0x28
    H_PAGE_INIT = 0x2C
    H_LOGICAL_CI_LOAD = 0x3C
    H_LOGICAL_CI_STORE = 0x40
    H_LOGICAL_CACHE_LOAD = 0x44
    H_LOGICAL_CACHE_STORE = 0x48
    H_LOGICAL_ICBI = 0x4C
    H_LOGICAL_DCBF = 0x50
    H_GET_TERM_CHAR = 0x54
    H_PUT_TERM_CHAR = 0x58
    H_EOI = 0x64
    H_CPPR = 0x68
    H_IPI = 0x6C
    H_IPOLL = 0x70
    H_XIRR = 0x74
    H_REGISTER_VPA = 0xDC
    H_CEDE = 0xE0
    H_CONFER = 0xE4
    H_PROD = 0xE8
    H_BULK_REMOVE = 0x124
    H_SET_XDABR = 0x134
    H_STUFF_TCE = 0x138
    H_PUT_TCE_INDIRECT = 0x17C
    H_GET_CPU_CHARACTERISTICS = 0x1C8
    H_JOIN = 0x298
    H_XIRR_X = 0x2FC
    H_RANDOM = 0x300
    H_SET_MODE = 0x31C
    H_RESIZE_HPT_PREPARE = 0x36C
    H_RESIZE_HPT_COMMIT = 0x370
    H_CLEAN_SLB = 0x374
    H_INVALIDATE_PID = 0x378
    H_REGISTER_PROC_TBL = 0x37C
    H_SIGNAL_SYS_RESET = 0x380
    H_INT_GET_SOURCE_INFO = 0x3A8
    H_INT_SET_SOURCE_CONFIG = 0x3AC
    H_INT_GET_SOURCE_CONFIG = 0x3B0
    H_INT_GET_QUEUE_INFO = 0x3B4
    H_INT_SET_QUEUE_CONFIG = 0x3B8
    H_INT_GET_QUEUE_CONFIG = 0x3BC
    H_INT_SET_OS_REPORTING_LINE = 0x3C0
    H_INT_GET_OS_REPORTING_LINE = 0x3C4
    H_INT_ESB = 0x3C8
    H_INT_SYNC = 0x3CC
    H_INT_RESET = 0x3D0
    H_WATCHDOG = 0x45C
    KVMPPC_H_RTAS = 0xF000
    KVMPPC_H_LOGICAL_MEMOP = 0xF001
    KVMPPC_H_CAS = 0xF002
    KVMPPC_H_UPDATE_DT = 0xF003
    KVMPPC_H_VOF_CLIENT = 0xF005


OPCODE_NAMES: dict[int, str] = {int(op): op.name for op in Op}


def opcode_name(opcode: int) -> str:
    """A readable name for any opcode, known or not."""
    return OPCODE_NAMES.get(opcode, f"H_UNKNOWN_{opcode:#x}")


def opcode_by_name(name: str) -> int:
    """Opcode for a name such as 'H_INT_RESET' or 'INT_RESET' (raises KeyError)."""
    key = name.upper()
    if not key.startswith(("H_", "KVMPPC_")):
        key = "H_" + key
    return int(Op[key])
