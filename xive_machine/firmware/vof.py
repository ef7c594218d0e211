"""The Open Firmware client interface, compatible with QEMU 7.2's VOF (hw/ppc/vof.c + spapr_vof.c).

The guest calls the client-interface entry with r3 = the real address of a big-endian argument block; our
firmware stub forwards every call as hcall KVMPPC_H_VOF_CLIENT (0xF005, r4 = block). QEMU's vof.bin answers
`call-method "instantiate-rtas"` itself before making the hcall; our stub does not, so `client_call`
plays that part too (copying the 20-byte RTAS stub below).

What the guest can observe follows QEMU: a malformed block makes the hcall return H_PARAMETER; an unknown
service, or a known one with the wrong nargs/nret, answers ret[0] = 0xffffffff with H_SUCCESS; strings are
read through fixed-size buffers that must lie wholly in RAM; the tree is edited with libfdt's rules (see
devtree.set_prop). Nothing a guest passes raises out of this module.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import fdt
from construct import Array, Int32ub, Struct

from xive_machine.errors import ConfigError
from xive_machine.firmware import devtree as dt
from xive_machine.hcalls.codes import H
from xive_machine.memory.ram import GuestRam

PROM_ERROR = 0xFFFFFFFF

PromArgs = Struct(
    "service" / Int32ub,  # real address of the NUL-terminated service name
    "nargs" / Int32ub,
    "nret" / Int32ub,
    "args" / Array(10, Int32ub),  # args[0..nargs-1], then ret[0..nret-1]
)
PROM_ARGS_SIZE = PromArgs.sizeof()  # 52
_PROM_ARGS_WORDS = struct.Struct(f">{PROM_ARGS_SIZE // 4}I")  # the same layout, unpacked flat on the hot path
_CELLS = [struct.Struct(f">{n}I") for n in range(11)]  # n return cells


class _Args:
    """PromArgs fields from one struct.unpack (construct's parse costs ~0.2 ms a call)."""

    __slots__ = ("service", "nargs", "nret", "args")

    def __init__(self, blk: bytes) -> None:
        words = _PROM_ARGS_WORDS.unpack_from(blk)
        self.service, self.nargs, self.nret = words[0], words[1], words[2]
        self.args = words[3:]
PROM_MAX_CELLS = 10
SERVICE_BUF = 64  # the name must have its NUL within 64 bytes, and all 64 must be readable
PROPNAME_BUF = 64 + 1  # OF_PROPNAME_LEN_MAX + 1
PATH_BUF = 256  # VOF_MAX_PATH
METHOD_BUF = 256  # VOF_MAX_METHODLEN
FORTH_BUF = 256  # VOF_MAX_FORTHCODE
MAX_SETPROPLEN = 2048
VTY_CHUNK = 255  # write reads at most this much at once (VOF_VTY_BUF_SIZE - 1)
WRITE_CAPTURE_MAX = 1 << 20  # bytes of one `write` kept for the log (QEMU keeps none)
VOF_STACK_SIZE = 0x8000
PHYS_TO_REAL_MASK = (1 << 60) - 1  # ppc64_phys_to_real: the top 4 bits are ignored
U64 = (1 << 64) - 1


def _d_form(opcode: int, rt: int, ra: int, imm: int) -> int:
    return (opcode << 26) | (rt << 21) | (ra << 16) | (imm & 0xFFFF)


# The RTAS stub vof.bin copies at instantiate-rtas (hv_rtas in pc-bios/vof/entry.S), big-endian:
#   mr   r4,r3          or r4,r3,r3: primary 31, RS=3, RA=4, RB=3, XO=444  -> 7c 64 1b 78
#   lis  r3,0           addis r3,0,0: primary 15                         -> 3c 60 00 00
#   ori  r3,r3,0xf000   primary 24, RS=3, RA=3, UI=0xf000 (KVMPPC_H_RTAS) -> 60 63 f0 00
#   sc   1              primary 17, LEV=1 (bit 5), bit 1 set              -> 44 00 00 22
#   blr                 bclr 20,0: primary 19, BO=20, XO=16               -> 4e 80 00 20
RTAS_STUB = struct.pack(
    ">5I",
    (31 << 26) | (3 << 21) | (4 << 16) | (3 << 11) | (444 << 1),
    _d_form(15, 3, 0, 0xF000 >> 16),
    _d_form(24, 3, 3, 0xF000),
    (17 << 26) | (1 << 5) | 2,
    (19 << 26) | (20 << 21) | (16 << 1),
)


@dataclass
class Instance:
    path: str  # the path the client opened (call-method compares it verbatim)
    phandle: int


@dataclass
class CiCall:
    """One decoded client-interface call, for the trace and `Vof.last_call`."""

    service: str
    args: list[int]
    nret: int
    ret: int | None = None  # ret[0] as written (None when nret = 0 or the block was refused)
    rets: list[int] = field(default_factory=list)  # ret[1..]
    hcall_rc: int = H.SUCCESS
    note: str = ""


class VofState:
    """What VOF keeps across device-tree rebuilds: claims, open instances, the client's bootargs, initrd."""

    def __init__(self, top_addr: int) -> None:
        self.claims: list[tuple[int, int]] = []  # (start, size) in claim order
        self.claimed_base = 0  # the bump pointer aligned claims start from
        self.top_addr = min(top_addr, 1 << 32)  # client cells are 32-bit
        self.instances: dict[int, Instance] = {}
        self.last_ihandle = 0
        self.bootargs: bytes | None = None  # set by the client's setprop, re-applied after a rebuild
        self.initrd: tuple[int, int] | None = None  # (base, size) once the client setprops it
        self.stack_base = 0

    def copy(self) -> VofState:
        """An independent copy (instances are never edited in place: the dict is copied, not its items)."""
        st = VofState.__new__(VofState)
        st.__dict__.update(self.__dict__)
        st.claims = list(self.claims)
        st.instances = dict(self.instances)
        return st

    @classmethod
    def at_reset(cls, tree: fdt.FDT, *, fw_size: int, top_addr: int) -> VofState:
        """spapr_vof_reset: firmware at 0, the stack (aligned claim), the kernel and initrd ranges."""
        st = cls(top_addr)
        if st.claim(0, fw_size, 0) == U64:
            raise ConfigError(f"VOF: cannot claim the firmware at 0 (size {fw_size:#x})")
        st.stack_base = st.claim(0, VOF_STACK_SIZE, VOF_STACK_SIZE)
        if st.stack_base == U64:
            raise ConfigError("VOF: no room for the firmware stack")
        chosen = _child_path(tree, "/chosen")
        kern = dt.get_prop(chosen, "qemu,boot-kernel") if chosen is not None else None
        if kern is not None and len(kern) == 16:
            addr, size = struct.unpack(">QQ", kern)
            if size and st.claim(addr, size, 0) == U64:
                raise ConfigError("VOF: memory for the kernel is in use")
        start = dt.get_prop(chosen, "linux,initrd-start") if chosen is not None else None
        end = dt.get_prop(chosen, "linux,initrd-end") if chosen is not None else None
        if start is not None and end is not None and len(start) == 4 and len(end) == 4:
            base, top = struct.unpack(">I", start)[0], struct.unpack(">I", end)[0]
            if top > base and st.claim(base, top - base, 0) == U64:
                raise ConfigError("VOF: memory for the initrd is in use")
        return st

    @property
    def entry_sp(self) -> int:
        """r1 at the firmware entry: the top of the stack less a minimal frame."""
        return self.stack_base + VOF_STACK_SIZE - 0x20

    # --- claims ------------------------------------------------------------------------------------------

    def _free(self, start: int, size: int) -> bool:
        end = start + size
        return all(end <= s or s + n <= start for s, n in self.claims)

    def claim(self, virt: int, size: int, align: int) -> int:
        """OF claim: align = 0 -> exactly at virt; otherwise the first aligned free address at or above
        the bump pointer. Returns the address or 2^64 - 1 (QEMU's -1)."""
        if size == 0:
            return U64
        if align == 0:
            if not self._free(virt, size):
                return U64
            ret = virt
        else:
            self.claimed_base = -(-self.claimed_base // align) * align
            while True:
                if self.claimed_base >= self.top_addr:
                    return U64
                if self._free(self.claimed_base, size):
                    break
                self.claimed_base += size
            ret = self.claimed_base
        self.claimed_base = max(self.claimed_base, ret + size)
        self.claims.append((ret, size))
        return ret

    def release(self, virt: int, size: int) -> bool:
        for i, (s, n) in enumerate(self.claims):
            if s == virt and n == size:
                del self.claims[i]
                return True
        return False

    def available(self, mem_end: int, ac: int, sc: int) -> bytes:
        """/memory@0/available: after each claim (in address order), the gap up to the next claim or to the
        end of memory@0. Zero-sized gaps are listed too, as QEMU does."""
        out = bytearray()
        claims = sorted(self.claims)
        for i, (s, n) in enumerate(claims):
            start = s + n
            nxt = claims[i + 1][0] if i + 1 < len(claims) else mem_end
            size = (nxt - start) & U64
            out += _cells_of(start, ac) + _cells_of(size, sc)
        return bytes(out)

    # --- instances ---------------------------------------------------------------------------------------

    def open_node(self, n: fdt.Node, path: str) -> int:
        if self.last_ihandle == 0xFFFFFFFF:  # QEMU does not recycle ihandles
            return PROM_ERROR
        self.last_ihandle += 1
        self.instances[self.last_ihandle] = Instance(path, dt.get_phandle(n))
        return self.last_ihandle

    # --- finalize ----------------------------------------------------------------------------------------

    def finalize(self, tree: fdt.FDT) -> int | None:
        """spapr_vof_client_dt_finalize: phandles, available, the client's bootargs, a newly opened stdout
        stored in /chosen/stdout. Returns the stdout ihandle (None without a stdout node)."""
        dt.assign_phandles(tree)
        self.update_available(tree)
        chosen = _child_path(tree, "/chosen")
        if chosen is None:
            return None
        if self.bootargs is not None:
            dt.set_prop(chosen, "bootargs", self.bootargs + b"\0")
        path = (dt.get_prop(chosen, "stdout-path") or dt.STDOUT_PATH.encode() + b"\0").split(b"\0")[0]
        target = find_path(tree, path.decode("latin-1"), lower_units=False)
        if target is None:
            return None
        ihandle = self.open_node(target, path.decode("latin-1"))
        dt.set_prop(chosen, "stdout", struct.pack(">I", ihandle))
        return ihandle

    def update_available(self, tree: fdt.FDT) -> None:
        mem = _child_path(tree, "/memory@0")
        if mem is None:
            return
        ac = _cell_count(tree.root, "#address-cells")
        sc = _cell_count(tree.root, "#size-cells")
        reg = dt.get_prop(mem, "reg")
        if reg is None or len(reg) != 4 * (ac + sc):
            return
        mem_end = int.from_bytes(reg[4 * ac:], "big")
        dt.set_prop(mem, "available", self.available(mem_end, ac, sc))


def _cells_of(value: int, ncells: int) -> bytes:
    return (value & ((1 << (32 * ncells)) - 1)).to_bytes(4 * ncells, "big")


def _cell_count(n: fdt.Node, name: str) -> int:
    v = dt.get_prop(n, name)
    c = struct.unpack(">I", v)[0] if v is not None and len(v) == 4 else 2
    return c if c in (1, 2) else 2


def _child_path(tree: fdt.FDT, path: str) -> fdt.Node | None:
    return find_path(tree, path, lower_units=False)


def find_path(tree: fdt.FDT, path: str, *, lower_units: bool = True) -> fdt.Node | None:
    """libfdt `fdt_path_offset` (absolute paths only; there is no /aliases): empty components are skipped,
    and a component without a unit address matches the first node whose name has one. With lower_units,
    hex digits after '@' are lower-cased first, as VOF does for finddevice and open."""
    if lower_units:
        parts = []
        for comp in path.split("/"):
            at = comp.find("@")
            parts.append(comp if at < 0 else comp[:at] + comp[at:].translate(_LOWER))
        path = "/".join(parts)
    if not path.startswith("/"):
        return None
    n = tree.root
    for comp in path.split("/"):
        if not comp:
            continue
        for c in n.nodes:
            if c.name == comp or ("@" not in comp and c.name.startswith(comp + "@")):
                n = c
                break
        else:
            return None
    return n


_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _node_name(n: fdt.Node) -> str:
    return "" if n.parent is None else n.name


Service = Callable[..., "tuple[int, list[int]]"]
PropIndex = dict[int, "tuple[list[fdt.Property], dict[str, bytes]]"]


@dataclass
class VofStart:
    """Where a client interface over a finalized tree starts: its state after `at_reset` and `finalize`, the
    blob size, the property names, the phandle table and property index. A machine keeps it with the tree, so
    a reset over the same, unedited tree skips all of that (see platform.machine_reset)."""

    tree: fdt.FDT
    state: VofState
    stdout: int | None
    used: int
    strings: frozenset[str]
    by_phandle: dict[int, fdt.Node]
    index: PropIndex


class Vof:
    """The client interface over one device tree. `client_call` serves hcall 0xF005."""

    def __init__(
        self,
        ram: GuestRam,
        tree: fdt.FDT,
        *,
        cas: Callable[[int], int] | None = None,
        clock_ms: Callable[[], int] | None = None,
        exit: Callable[[], None] | None = None,
        console_write: Callable[[bytes], None] | None = None,
        console_read: Callable[[int], bytes] | None = None,
        forward_writes: bool = False,
        quiesce: Callable[[], None] | None = None,
        fw_size: int = 0xDA0,
        top_addr: int | None = None,
        trace: Any = None,
        dtb_size: int | None = None,
        start: VofStart | None = None,
    ) -> None:
        """`dtb_size`: the blob size of the finalized tree when the caller knows it (a machine reset with a
        tree it built before), which saves flattening the tree just to measure it. `start`: the tree is
        `start.tree`, already finalized, unedited since `start_point` (the caller checks): begin from there."""
        self.ram = ram
        self._cas = cas
        self._clock_ms = clock_ms
        self._exit = exit
        self._console_write = console_write
        self._console_read = console_read
        self._quiesce = quiesce
        self.forward_writes = forward_writes
        self.trace = trace
        self.writes: list[tuple[int, bytes]] = []  # (ihandle, bytes) of every `write`
        self.quiesced = False
        self.exited = False
        self.last_call: CiCall | None = None
        self.tree = tree
        self._install(tree)
        if start is not None and start.tree is tree:
            self.state = start.state.copy()
            self.stdout = start.stdout
            self._used = start.used
            self._strings = set(start.strings)
            self._capacity = max(dt.FDT_MAX_SIZE, self._used)
            self._by_phandle = start.by_phandle  # replaced, never edited in place
            self._index = dict(start.index)
        else:
            self.state = VofState.at_reset(tree, fw_size=fw_size, top_addr=top_addr or ram.size)
            self.stdout = self.state.finalize(tree)
            self._recount(dtb_size)
        # (nargs, nret, function of (self, call, a0..a5)): functions, not bound methods, so that a dropped
        # client interface is no reference cycle (a reset drops one each time) and goes at once
        self._services: dict[str, tuple[int, int, Service]] = _SERVICES
        if console_read is not None:  # not in QEMU 7.2's VOF: only offered when the machine has input
            self._services = {**_SERVICES, "read": (3, 1, Vof._read_console)}

    # --- tree management ---------------------------------------------------------------------------------

    def _install(self, tree: fdt.FDT) -> None:
        self.tree = tree
        self._by_phandle: dict[int, fdt.Node] | None = None
        self._index: PropIndex = {}

    def start_point(self) -> VofStart:
        """This client interface as constructed (call it before the guest does): see VofStart."""
        self.node_by_phandle(1)  # builds the phandle table
        for n in dt.iter_nodes(self.tree):  # and the property index, node by node
            self._props_of(n)
        return VofStart(self.tree, self.state.copy(), self.stdout, self._used, frozenset(self._strings),
                        self._by_phandle or {}, dict(self._index))

    def _recount(self, known_size: int | None = None) -> None:
        """Bytes the blob uses and its capacity: QEMU's buffer is FDT_MAX_SIZE until quiesce packs it."""
        self._used = known_size if known_size is not None else dt.dtb_size(self.tree)
        self._strings = {p.name for n in dt.iter_nodes(self.tree) for p in n.props}
        self._capacity = self._used if self.quiesced else max(dt.FDT_MAX_SIZE, self._used)

    def replace_tree(self, tree: fdt.FDT) -> None:
        """After CAS rebuilds the tree: keep claims, instances and the client's bootargs, then finalize as
        QEMU does (phandles numbered again in tree order, available, bootargs, a new stdout ihandle).
        Pass the tree as built with DtConfig(vof=False); a stale /chosen/stdout is dropped first, so that a
        tree already finalized by build_tree ends up the same."""
        chosen = _child_path(tree, "/chosen")
        if chosen is not None:
            chosen.remove_property("stdout")
        self._install(tree)
        self.stdout = self.state.finalize(tree)
        self._recount()

    def node_by_phandle(self, ph: int) -> fdt.Node | None:
        """libfdt `fdt_node_offset_by_phandle`: 0 and -1 are invalid; the first node in tree order wins."""
        if ph in (0, 0xFFFFFFFF):
            return None
        if self._by_phandle is None:
            table: dict[int, fdt.Node] = {}
            for n in dt.iter_nodes(self.tree):
                table.setdefault(dt.get_phandle(n), n)
            self._by_phandle = table
        return self._by_phandle.get(ph)

    @property
    def initrd(self) -> tuple[int, int] | None:
        """(base, size) the client set through linux,initrd-start/-end (the machine uses it on rebuild)."""
        return self.state.initrd

    @property
    def entry_sp(self) -> int:
        return self.state.entry_sp

    def _rtas_cell(self, name: str) -> int | None:
        rtas = _child_path(self.tree, "/rtas")
        v = dt.get_prop(rtas, name) if rtas is not None else None
        return int.from_bytes(v[:4], "big") if v is not None and len(v) >= 4 else None

    @property
    def rtas_base(self) -> int | None:
        """/rtas/linux,rtas-base in the current tree, as QEMU's ibm,nmi-register looks it up (a CAS rebuild
        drops it until the client sets it again)."""
        return self._rtas_cell("linux,rtas-base")

    @property
    def rtas_entry(self) -> int | None:
        return self._rtas_cell("linux,rtas-entry")

    # --- guest memory ------------------------------------------------------------------------------------

    def _peek(self, addr: int, size: int) -> bytes | None:
        if size == 0:
            return b""
        if 0 <= addr and 0 <= size and addr + size <= self.ram.size:  # (one check: every call reads here)
            return self.ram.buf[addr:addr + size].tobytes()
        return None

    def _write_mem(self, addr: int, data: bytes) -> bool:
        if not data:
            return True
        n = len(data)
        if not (0 <= addr and addr + n <= self.ram.size):
            return False
        self.ram.buf[addr:addr + n] = data
        self.ram.mark_dirty(addr, n)
        return True

    def _readstr(self, addr: int, size: int) -> str | None:
        """VOF readstr: all `size` bytes must be readable and hold a NUL."""
        buf = self._peek(addr, size)
        if buf is None:
            return None
        nul = buf.find(b"\0")
        return None if nul < 0 else buf[:nul].decode("latin-1")

    # --- the hcall ---------------------------------------------------------------------------------------

    def client_call(self, cpu: int, args_addr: int) -> int:
        """KVMPPC_H_VOF_CLIENT(r4 = args_addr). Returns the hcall status for r3."""
        addr = args_addr & PHYS_TO_REAL_MASK
        blk = self._peek(addr, PROM_ARGS_SIZE)  # read once, for the firmware's own check and the dispatch
        a = _Args(blk) if blk is not None else None
        call = self._rtas_intercept(addr, a) if a is not None else None
        if call is None:
            call = self._dispatch(addr, a)
        self.last_call = call
        if self.trace is not None:
            self.trace.emit("ci", cpu=cpu, service=call.service, args=call.args, nret=call.nret,
                            ret=call.ret, rets=call.rets, rc=call.hcall_rc, note=call.note)
        return call.hcall_rc

    def _rtas_intercept(self, addr: int, a: _Args) -> CiCall | None:
        """vof.bin's prom_handle: call-method "instantiate-rtas" copies the RTAS stub to args[2] when
        /rtas/rtas-size can hold it, and answers ret = 0, entry = args[2] without asking QEMU."""
        if self._peek(a.service, 12) != b"call-method\0":
            return None
        method = self._peek(a.args[0], 17)
        if method != b"instantiate-rtas\0":
            return None
        rtas = _child_path(self.tree, "/rtas")
        size_prop = dt.get_prop(rtas, "rtas-size") if rtas is not None else None
        rtas_size = int.from_bytes(size_prop[:4], "big") if size_prop and len(size_prop) >= 4 else 0
        if rtas_size < len(RTAS_STUB):
            return None  # QEMU then gets the call and stops the VM (see _call_method)
        base = a.args[2]
        note = "" if self._write_mem(base, RTAS_STUB) else "stub outside RAM"
        rets_at = (addr + 12 + 4 * a.nargs) & 0xFFFFFFFF  # vof.bin writes both cells whatever nret says
        self._write_mem(rets_at, struct.pack(">II", 0, base))
        return CiCall("call-method", [a.args[0], a.args[1], base], a.nret, 0, [base], H.SUCCESS,
                      note or "instantiate-rtas (firmware)")

    def _dispatch(self, addr: int, a: _Args | None) -> CiCall:
        if a is None:
            return CiCall("?", [], 0, hcall_rc=H.PARAMETER, note="argument block outside RAM")
        if a.nargs >= PROM_MAX_CELLS:
            return CiCall("?", [], a.nret, hcall_rc=H.PARAMETER, note=f"nargs {a.nargs}")
        name_buf = self._peek(a.service, SERVICE_BUF)
        if name_buf is None or b"\0" not in name_buf:
            return CiCall("?", [], a.nret, hcall_rc=H.PARAMETER, note="bad service name")
        service = name_buf[: name_buf.index(b"\0")].decode("latin-1")
        args = list(a.args[: a.nargs])
        if a.nret > PROM_MAX_CELLS - a.nargs:
            return CiCall(service, args, a.nret, hcall_rc=H.PARAMETER, note=f"nret {a.nret}")
        call = CiCall(service, args, a.nret)
        padded = args + [0] * (PROM_MAX_CELLS - len(args))  # QEMU leaves the unused cells undefined
        entry = self._services.get(service)
        if entry is not None and (entry[0] == 0 or entry[0] == a.nargs) and (entry[1] == 0 or
                                                                             entry[1] == a.nret):
            ret, rets = entry[2](self, call, *padded[:6])
        else:
            ret, rets = PROM_ERROR, []
            call.note = "unknown service or wrong nargs/nret"
        ret &= 0xFFFFFFFF
        rets = [r & 0xFFFFFFFF for r in rets]
        if a.nret:
            out = [ret] + (rets + [0] * PROM_MAX_CELLS)[: a.nret - 1]
            self._write_mem(addr + 12 + 4 * a.nargs, _CELLS[a.nret].pack(*out))
            call.ret, call.rets = ret, out[1:]
        return call

    # --- services: each takes (call, a0..a5) and returns (ret, [ret1, ...]) --------------------------------

    def _finddevice(self, call: CiCall, path_addr: int, *_: int) -> tuple[int, list[int]]:
        path = self._readstr(path_addr, PATH_BUF)
        if path is None:
            return PROM_ERROR, []
        call.note = path
        n = find_path(self.tree, path)
        return (PROM_ERROR if n is None else dt.get_phandle(n)), []

    def _props_of(self, n: fdt.Node) -> dict[str, bytes]:
        """The node's property values by name (the first of a name wins, as libfdt's lookup): indexed once per
        node, and again only when its property list changed (a property set, added or removed)."""
        entry = self._index.get(id(n))
        props = n.props
        if entry is None or entry[0] != props:  # identity first: a few ns a property
            values = {p.name: dt.prop_bytes(p) for p in reversed(props)}
            entry = self._index[id(n)] = (list(props), values)
        return entry[1]

    def _prop_value(self, n: fdt.Node, name: str) -> bytes | None:
        v = self._props_of(n).get(name)
        if v is None and name == "name":  # synthesized from the node name, unit address dropped
            return _node_name(n).split("@")[0].encode("latin-1") + b"\0"
        return v

    def _getprop(self, call: CiCall, ph: int, name_addr: int, buf: int, buflen: int,
                 *_: int) -> tuple[int, list[int]]:
        n = self.node_by_phandle(ph)
        name = self._readstr(name_addr, PROPNAME_BUF) if n is not None else None
        if n is None or name is None:
            return PROM_ERROR, []
        call.note = name
        value = self._prop_value(n, name)
        if value is None:
            return PROM_ERROR, []
        if not self._write_mem(buf, value[: min(len(value), buflen)]):
            return PROM_ERROR, []
        return len(value), []

    def _getproplen(self, call: CiCall, ph: int, name_addr: int, *_: int) -> tuple[int, list[int]]:
        n = self.node_by_phandle(ph)
        name = self._readstr(name_addr, PROPNAME_BUF) if n is not None else None
        if n is None or name is None:
            return PROM_ERROR, []
        call.note = name
        value = self._prop_value(n, name)
        return (PROM_ERROR if value is None else len(value)), []

    def _setprop(self, call: CiCall, ph: int, name_addr: int, val_addr: int, vallen: int,
                 *_: int) -> tuple[int, list[int]]:
        if vallen > MAX_SETPROPLEN:
            return PROM_ERROR, []
        name = self._readstr(name_addr, PROPNAME_BUF)
        n = self.node_by_phandle(ph) if name is not None else None
        if name is None or n is None:
            return PROM_ERROR, []
        call.note = name
        path = dt.node_path(n)
        value = self._peek(val_addr, vallen)
        if len(path) + 1 > PATH_BUF - 1 or value is None:
            return PROM_ERROR, []
        if not self._machine_setprop(path, name, value):
            return PROM_ERROR, []
        old = dt.get_prop(n, name)
        grow = (-(-len(value) // 4) * 4) - (-(-len(old) // 4) * 4) if old is not None else (
            12 + -(-len(value) // 4) * 4 + (0 if name in self._strings else len(name) + 1))
        if self._used + grow > self._capacity:
            return PROM_ERROR, []  # libfdt: no space left in the blob
        dt.set_prop(n, name, value)
        self._used += grow
        self._strings.add(name)
        if name in ("phandle", "linux,phandle"):
            self._by_phandle = None
        return vallen, []

    def _machine_setprop(self, path: str, name: str, value: bytes) -> bool:
        """spapr_vof_setprop: side effects, and the only refusals (malformed initrd cells)."""
        if path != "/chosen":  # /rtas linux,rtas-base/-entry simply stay in the tree (see rtas_base)
            return True
        if name == "bootargs":
            self.state.bootargs = value.split(b"\0")[0]
            return True
        if name in ("linux,initrd-start", "linux,initrd-end"):
            if len(value) not in (4, 8):
                return False
            v = int.from_bytes(value, "big")
            base, size = self.state.initrd or (0, 0)
            if name == "linux,initrd-start":
                self.state.initrd = (v, size)
            else:
                self.state.initrd = (base, (v - base) & U64)
        return True

    def _nextprop(self, call: CiCall, ph: int, prev_addr: int, buf: int, *_: int) -> tuple[int, list[int]]:
        prev = self._readstr(prev_addr, PROPNAME_BUF)
        if prev is None:
            return PROM_ERROR, []
        n = self.node_by_phandle(ph)
        if n is None:
            return 0, []
        names = [p.name for p in n.props]
        if prev == "":
            nxt = names[0] if names else None
        elif prev in names and names.index(prev) + 1 < len(names):
            nxt = names[names.index(prev) + 1]
        else:
            nxt = None
        if nxt is None:
            return 0, []
        call.note = nxt
        return (1 if self._write_mem(buf, nxt.encode("latin-1") + b"\0") else PROM_ERROR), []

    def _peer(self, call: CiCall, ph: int, *_: int) -> tuple[int, list[int]]:
        if ph == 0:
            return dt.get_phandle(self.tree.root), []
        n = self.node_by_phandle(ph)
        if n is None or n.parent is None:
            return 0, []
        sibs = n.parent.nodes
        i = next(k for k, c in enumerate(sibs) if c is n)
        return (dt.get_phandle(sibs[i + 1]) if i + 1 < len(sibs) else 0), []

    def _child(self, call: CiCall, ph: int, *_: int) -> tuple[int, list[int]]:
        n = self.node_by_phandle(ph)
        return (dt.get_phandle(n.nodes[0]) if n is not None and n.nodes else 0), []

    def _parent(self, call: CiCall, ph: int, *_: int) -> tuple[int, list[int]]:
        n = self.node_by_phandle(ph)
        return (dt.get_phandle(n.parent) if n is not None and n.parent is not None else 0), []

    def _open(self, call: CiCall, path_addr: int, *_: int) -> tuple[int, list[int]]:
        path = self._readstr(path_addr, PATH_BUF)
        if path is None:
            return PROM_ERROR, []
        call.note = path
        n = find_path(self.tree, path)
        if n is None:
            return PROM_ERROR, []
        return self.state.open_node(n, path), []

    def _close(self, call: CiCall, ihandle: int, *_: int) -> tuple[int, list[int]]:
        self.state.instances.pop(ihandle, None)
        return 0, []

    def _instance_to_package(self, call: CiCall, ihandle: int, *_: int) -> tuple[int, list[int]]:
        inst = self.state.instances.get(ihandle)
        return (PROM_ERROR if inst is None else inst.phandle), []

    def _path_out(self, ph: int, buf: int) -> int:
        n = self.node_by_phandle(ph)
        if n is None:
            return PROM_ERROR
        path = dt.node_path(n).encode("latin-1") + b"\0"
        if len(path) > PATH_BUF - 1:  # fdt_get_path into a 255-byte buffer
            return PROM_ERROR
        return len(path) if self._write_mem(buf, path) else PROM_ERROR  # the whole path, whatever len says

    def _package_to_path(self, call: CiCall, ph: int, buf: int, _len: int, *_: int) -> tuple[int, list[int]]:
        return self._path_out(ph, buf), []

    def _instance_to_path(self, call: CiCall, ihandle: int, buf: int, _len: int,
                          *_: int) -> tuple[int, list[int]]:
        inst = self.state.instances.get(ihandle)
        return (PROM_ERROR if inst is None else self._path_out(inst.phandle, buf)), []

    def _write(self, call: CiCall, ihandle: int, buf: int, length: int, *_: int) -> tuple[int, list[int]]:
        if ihandle not in self.state.instances:
            return PROM_ERROR, []
        if length and self._peek(buf, min(length, VTY_CHUNK)) is None:
            return PROM_ERROR, []  # QEMU re-reads the first chunk; only its readability matters
        keep = min(length, WRITE_CAPTURE_MAX, max(0, self.ram.size - buf))
        data = self._peek(buf, keep) or b""
        self.writes.append((ihandle, data))
        if self.trace is not None:
            self.trace.emit("note", what="vof-write", ihandle=ihandle, data=data.decode("latin-1"))
        if self.forward_writes and self._console_write is not None:
            self._console_write(data)
        return 0, []

    def _read_console(self, call: CiCall, ihandle: int, buf: int, length: int,
                      *_: int) -> tuple[int, list[int]]:
        if ihandle not in self.state.instances or self._console_read is None:
            return PROM_ERROR, []
        data = bytes(self._console_read(length))[:length]
        return (len(data) if self._write_mem(buf, data) else PROM_ERROR), []

    def _claim(self, call: CiCall, virt: int, size: int, align: int, *_: int) -> tuple[int, list[int]]:
        got = self.state.claim(virt, size, align)
        if got >= 1 << 32:
            return PROM_ERROR, []
        self.state.update_available(self.tree)
        return got, []

    def _release(self, call: CiCall, virt: int, size: int, *_: int) -> tuple[int, list[int]]:
        if not self.state.release(virt, size):
            return PROM_ERROR, []
        self.state.update_available(self.tree)
        return 0, []

    def _call_method(self, call: CiCall, method_addr: int, ihandle: int, p1: int, *_: int
                     ) -> tuple[int, list[int]]:
        inst = self.state.instances.get(ihandle) if ihandle else None
        method = self._readstr(method_addr, METHOD_BUF) if inst is not None else None
        if inst is None or method is None:
            return PROM_ERROR, []
        call.note = method
        if inst.path == "/" and method == "ibm,client-architecture-support":
            rc = self._cas(p1) if self._cas is not None else PROM_ERROR
            return rc, [0]
        if inst.path == "/rtas" and method == "instantiate-rtas":
            call.note = "instantiate-rtas refused: /rtas/rtas-size is smaller than the RTAS stub"
        return PROM_ERROR, []

    def _interpret(self, call: CiCall, cmd_addr: int, *_: int) -> tuple[int, list[int]]:
        call.note = self._readstr(cmd_addr, FORTH_BUF) or ""
        return PROM_ERROR, []

    def _milliseconds(self, call: CiCall, *_: int) -> tuple[int, list[int]]:
        return (self._clock_ms() if self._clock_ms is not None else 0), []

    def _do_quiesce(self, call: CiCall, *_: int) -> tuple[int, list[int]]:
        self.quiesced = True
        self._capacity = self._used  # fdt_pack: no room to grow afterwards
        if self._quiesce is not None:
            self._quiesce()
        return 0, []

    def _do_exit(self, call: CiCall, *_: int) -> tuple[int, list[int]]:
        self.exited = True
        if self._exit is not None:
            self._exit()
        return 0, []


_SERVICES: dict[str, tuple[int, int, Service]] = {
    "finddevice": (1, 1, Vof._finddevice),
    "getprop": (4, 1, Vof._getprop),
    "getproplen": (2, 1, Vof._getproplen),
    "setprop": (4, 1, Vof._setprop),
    "nextprop": (3, 1, Vof._nextprop),
    "peer": (1, 1, Vof._peer),
    "child": (1, 1, Vof._child),
    "parent": (1, 1, Vof._parent),
    "open": (1, 1, Vof._open),
    "close": (1, 0, Vof._close),
    "instance-to-package": (1, 1, Vof._instance_to_package),
    "package-to-path": (3, 1, Vof._package_to_path),
    "instance-to-path": (3, 1, Vof._instance_to_path),
    "write": (3, 1, Vof._write),
    "claim": (3, 1, Vof._claim),
    "release": (2, 0, Vof._release),
    "call-method": (0, 0, Vof._call_method),
    "interpret": (0, 0, Vof._interpret),
    "milliseconds": (0, 1, Vof._milliseconds),
    "quiesce": (0, 0, Vof._do_quiesce),
    "exit": (0, 0, Vof._do_exit),
}
