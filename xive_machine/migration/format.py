"""The snapshot file, declared once with construct: a header (magic, version, machine config) and a list of
tagged sections, each with its own CRC-32, so a damaged file is refused before any of it is applied.

    FileHeader  magic "XMSNAP\\r\\n", version, flags, section count, config (JSON), header CRC
    Section*    tag (4 ASCII), length, CRC-32 of the payload, payload (one of the layouts below)

Every integer is big-endian. Payload layouts are versioned with the file: a change to any of them bumps
FORMAT_VERSION, and a reader refuses versions it does not know (no silent misparse).
"""

from __future__ import annotations

import zlib

from construct import (
    Array,
    Bytes,
    Const,
    ConstructError,
    Enum,
    Flag,
    GreedyBytes,
    If,
    Int8ub,
    Int16ub,
    Int32sb,
    Int32ub,
    Int64sb,
    Int64ub,
    PaddedString,
    PascalString,
    Prefixed,
    PrefixedArray,
    Struct,
    this,
)

from xive_machine.errors import ConfigError

MAGIC = b"XMSNAP\r\n"  # the CR/LF pair catches text-mode transfers, as PNG's signature does
FORMAT_VERSION = 1
FLAG_INCREMENTAL = 0x1  # the RAM section holds only chunks changed since a base snapshot

# What a reader parses first, to say "not a snapshot" or "unknown version" before anything else.
Preamble = Struct("magic" / Bytes(8), "version" / Int16ub)

FileHeader = Struct(
    "magic" / Const(MAGIC),
    "version" / Int16ub,
    "flags" / Int16ub,
    "nsections" / Int32ub,
    "config" / Prefixed(Int32ub, GreedyBytes),  # MachineConfig.as_dict() as UTF-8 JSON
)
HEADER_CRC = Int32ub  # CRC-32 of the FileHeader bytes, right after them

SectionHeader = Struct(
    "tag" / PaddedString(4, "ascii"),
    "length" / Int64ub,
    "crc" / Int32ub,  # CRC-32 of the payload
)

Text = PascalString(Int32ub, "utf8")
Blob = Prefixed(Int32ub, GreedyBytes)
Blob64 = Prefixed(Int64ub, GreedyBytes)


def _optional(subcon):  # noqa: ANN001, ANN202 - a construct combinator
    return Struct("present" / Flag, "value" / If(this.present, subcon))


# --- MISC: machine-level state ------------------------------------------------------------------------------

TimeSite = Struct("addr" / Int64ub, "rw" / PaddedString(1, "ascii"), "spr" / Int16ub, "gpr" / Int8ub)
Symbol = Struct("name" / Text, "value" / Int64ub)
Range = Struct("addr" / Int64ub, "size" / Int64ub)

Kernel = Struct(
    "path" / Text,
    "base" / Int64ub,
    "size" / Int64ub,
    "little_endian" / Flag,
    "e_entry" / Int64ub,
    "exec_ranges" / PrefixedArray(Int32ub, Range),
)

RngState = Struct("version" / Int32ub, "words" / PrefixedArray(Int32ub, Int32ub))

MiscSection = Struct(
    "clock_insns" / Int64ub,
    "clock_skip_ns" / Int64ub,
    "clock_ns" / Int64ub,
    "rtc_offset_s" / Int64sb,
    "fwnmi" / _optional(Struct("sreset" / Int64ub, "mce" / Int64ub)),
    "lpcr_ile" / Flag,
    "xive_negotiated" / Flag,
    "active_intc" / Text,  # "" when none is active
    "bootargs" / Text,
    "initrd_start" / Int64ub,
    "initrd_size" / Int64ub,
    "fdt_addr" / Int64ub,
    "hcall_count" / Int64ub,
    "uuid" / _optional(Blob),
    "os_term_message" / Text,
    "stop_reason" / Text,  # why the run had stopped when saved; a final one (power-off ...) is restored
    "exit_code" / Int32ub,
    "stop_message" / Text,
    "rng" / _optional(RngState),
    "kernel" / _optional(Kernel),
    "fw_symbols" / PrefixedArray(Int32ub, Symbol),
    "time_sites" / PrefixedArray(Int32ub, TimeSite),
    # the scheduler's position (round of runnable vCPUs, next in it, the rest of a cut slice; -1 = none)
    "rr_round" / PrefixedArray(Int32ub, Int32sb),
    "rr_pos" / Int32ub,
    "rr_last" / Int32sb,
    "rr_resume_cpu" / Int32sb,
    "rr_resume_insns" / Int64ub,
)

BootImage = Struct("addr" / Int64ub, "data" / Blob)  # data zlib-compressed
BootSection = PrefixedArray(Int32ub, BootImage)

# --- CPUS: every vCPU's registers and the machine's per-vCPU state -------------------------------------------

CPU_STATES = {"stopped": 0, "running": 1, "ceded": 2}

SprValue = Struct("spr" / Int16ub, "value" / Int64ub)

VCpuRecord = Struct(
    "index" / Int32ub,
    "gpr" / Array(32, Int64ub),
    "fpr" / Array(32, Int64ub),
    "fpscr" / Int64ub,
    "cr" / Int64ub,
    "lr" / Int64ub,
    "ctr" / Int64ub,
    "xer" / Int64ub,
    "msr" / Int64ub,
    "pc" / Int64ub,
    "sprs" / PrefixedArray(Int8ub, SprValue),
    "shadow" / PrefixedArray(Int8ub, SprValue),  # SPRs the machine serves itself (VCpu.shadow)
    # an SPR trampoline still to run (VCpu.redirect): its writes in order and the MSR it runs with; kept
    # rather than flushed, because its instructions count and the run must go on as if never saved
    "redirect" / _optional(Struct("sprs" / PrefixedArray(Int8ub, SprValue), "run_msr" / Int64ub)),
    "icount" / Int64ub,  # the block hook's instruction counter (trap.icount)
    "code_lo" / Int64ub,  # trap.code_lo/code_hi/exec_outside: what a reset must drop of translated code
    "code_hi" / Int64ub,
    "exec_outside" / Int32ub,
    "irq_waiting" / Int32ub,
    "state" / Enum(Int8ub, **CPU_STATES),
    "prod" / Flag,
    "irq" / Flag,
    "dec_pending" / Flag,
    "dec_deadline_tb" / _optional(Int64ub),
    "dec_written_tb" / Int64ub,
    "dec_value" / Int64ub,
    "vpa" / Int64ub,
    "dtl" / Int64ub,
    "slb_shadow" / Int64ub,
    "dispatch" / Int64ub,
    "sreset" / Flag,  # CpuState.extra["sreset"]: a system reset waits for delivery
    # device-window pages this vCPU had faulted in: mapped again at restore, because a first touch costs a
    # restarted block, which the instruction count (and so deterministic time) would see
    "window_pages" / PrefixedArray(Int32ub, Int64ub),
)
CpuSection = PrefixedArray(Int32ub, VCpuRecord)

# --- XIVE / XICS: the controllers' own state dataclasses, field for field --------------------------------------

XiveSection = Struct(
    "version" / Int32ub,
    "nr_irqs" / Int32ub,
    "nr_servers" / Int32ub,
    "status" / Bytes(this.nr_irqs),  # PQ as saved before the quiesce (QEMU keeps the old PQ) | ASSERTED
    "lsi" / Bytes(this.nr_irqs),
    "eat" / Array(this.nr_irqs, Int64ub),
    "endt" / PrefixedArray(Int32ub, Int32ub),
    "tctx" / PrefixedArray(Int32ub, Struct("cpu" / Int32ub, "regs" / Bytes(64))),
)

XicsSection = Struct(
    "version" / Int32ub,
    "nr_servers" / Int32ub,
    "nr_irqs" / Int32ub,
    "icps" / PrefixedArray(Int32ub, Struct(
        "server" / Int32ub, "xirr" / Int32ub, "pending_priority" / Int8ub, "mfrr" / Int8ub)),
    "ics_server" / Bytes(4 * this.nr_irqs),
    "ics_priority" / Bytes(this.nr_irqs),
    "ics_saved_priority" / Bytes(this.nr_irqs),
    "ics_status" / Bytes(this.nr_irqs),
    "ics_flags" / Bytes(this.nr_irqs),
)

ControllerSection = Struct(
    "name" / PascalString(Int8ub, "ascii"),
    "kind" / Enum(Int8ub, xive=1, xics=2),
    "state" / Blob,  # XiveSection or XicsSection by kind
)

# --- TREE, VOF, CAS ----------------------------------------------------------------------------------------------

TreeSection = Struct(
    "tree" / _optional(Blob),  # m.tree as a DTB
    "vof_tree_separate" / Flag,  # VOF serves another tree object than m.tree (never seen; kept exact)
    "vof_tree" / If(this.vof_tree_separate, Blob),
)

VofSection = Struct(
    "claims" / PrefixedArray(Int32ub, Range),
    "claimed_base" / Int64ub,
    "top_addr" / Int64ub,
    "instances" / PrefixedArray(Int32ub, Struct("ihandle" / Int32ub, "path" / Text, "phandle" / Int32ub)),
    "last_ihandle" / Int32ub,
    "bootargs" / _optional(Blob),
    "initrd" / _optional(Range),
    "stack_base" / Int64ub,
    "stdout" / _optional(Int32ub),
    "quiesced" / Flag,
    "exited" / Flag,
    "writes" / PrefixedArray(Int32ub, Struct("ihandle" / Int32ub, "data" / Blob)),
)

CasResultRecord = Struct(
    "rc" / Int64sb,
    "reason" / Text,
    "compat_applied" / Flag,
    "compat_pvr" / Int32ub,
    "raw_mode" / Flag,
    "cpu_version" / Int32ub,
    "ov5_cas" / Blob,
    "arch_vec_5" / Blob,
    "intc" / Text,
    "mmu" / Text,
    "radix_granted" / Flag,
    "gtse" / Flag,
    "pre_isa3_guest" / Flag,
    "presize_hpt" / Flag,
    "diagnostics" / PrefixedArray(Int32ub, Text),
)

CasSection = Struct(
    "cpu" / Int32ub,
    "vector_addr" / Int64ub,
    "request" / _optional(Blob),  # the architecture vector, rebuilt with ovec.build_arch_vector
    "result" / CasResultRecord,
    "dt_before" / _optional(Blob),
    "dt_after_is_tree" / Flag,  # dt_after is the machine's current tree object
    "dt_after" / _optional(Blob),
    "mode_before" / Text,
    "mode_after" / Text,
    "diff" / PrefixedArray(Int32ub, Text),
)

ConsoleSection = Struct("output" / Blob64, "input" / Blob64)

# --- VSX : each vCPU's 64 vector-scalar registers and VSCR (VCpu.vector_state; Unicorn has no register API) ---

VsxRecord = Struct("index" / Int32ub, "state" / Bytes(64 * 16 + 16))
VsxSection = PrefixedArray(Int32ub, VsxRecord)

# --- PLAT: the platform's own guest-visible state (radix registration, TCE tables, NVRAM) ---------------------

TceEntry = Struct("index" / Int32ub, "tce" / Int64ub)
TceTableRecord = Struct("liobn" / Int32ub, "entries" / PrefixedArray(Int32ub, TceEntry))
PlatformSection = Struct(
    "patb_entry" / Int64ub,  # QEMU's spapr->patb_entry (H_REGISTER_PROC_TBL)
    "lpcr_radix" / Flag,
    "lpcr_gtse" / Flag,
    "tce" / PrefixedArray(Int32ub, TceTableRecord),
    "nvram" / Blob,  # zlib-compressed
)

# --- RAM ------------------------------------------------------------------------------------------------------------

RamSection = Struct(
    "size" / Int64ub,
    "chunk_shift" / Int8ub,
    "ram_id" / Bytes(32),  # SHA-256 over every chunk's digest: names this RAM image
    "base_id" / Bytes(32),  # incremental: the ram_id of the base; zeros for a full image
    "base_file" / Text,  # incremental: the base snapshot, relative to this file's directory
    "zeroed" / PrefixedArray(Int32ub, Int32ub),  # incremental: chunks that became all-zero
    "chunks" / PrefixedArray(Int32ub, Int32ub),  # chunks stored, in order, in `blocks`
    # the stored chunks concatenated, cut in groups of 64 chunks, each group one zlib stream (compressed
    # and decompressed on several cores: zlib releases the GIL)
    "blocks" / PrefixedArray(Int32ub, Blob64),
)

TAGS = {
    "MISC": MiscSection,
    "BOOT": BootSection,
    "CPUS": CpuSection,
    "CTRL": ControllerSection,
    "TREE": TreeSection,
    "VOF ": VofSection,
    "CAS ": CasSection,
    "CONS": ConsoleSection,
    "RAM ": RamSection,
    "PLAT": PlatformSection,
    "VSX ": VsxSection,
}
REQUIRED = ("MISC", "BOOT", "CPUS", "TREE", "CONS", "RAM ")


def crc32(data: bytes | memoryview) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def parse(layout, data: bytes, what: str):  # noqa: ANN001, ANN201 - construct objects
    """The one choke point: a construct error in a file becomes a one-line ConfigError."""
    try:
        return layout.parse(data)
    except ConstructError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{what}: malformed ({first})") from None
