"""The VOF client interface, service by service, on guest RAM and a built tree (QEMU 7.2 semantics)."""

from __future__ import annotations

import struct

import fdt
import pytest

from xive_machine.firmware import devtree as dt
from xive_machine.firmware.vof import PROM_ERROR, RTAS_STUB, Vof
from xive_machine.hcalls.codes import H
from xive_machine.memory.ram import GuestRam
from xive_machine.trace.events import ListSink

RAM = 512 << 20
BLOCK = 0x20000  # argument block
STRS = 0x21000  # strings passed in
BUF = 0x22000  # output buffer
KERNEL_SIZE = 0x11328


def xics_node() -> fdt.Node:
    return dt.node("interrupt-controller", [
        dt.cells("phandle", dt.PHANDLE_INTC),
        dt.cells("linux,phandle", dt.PHANDLE_INTC),
        dt.cells("#interrupt-cells", 2),
        dt.cells("ibm,interrupt-server-ranges", 0, 1),
        dt.empty("interrupt-controller"),
        dt.string("compatible", "IBM,ppc-xicp"),
        dt.string("device_type", "PowerPC-External-Interrupt-Presentation"),
    ])


def make_tree(**kw) -> fdt.FDT:
    base = dict(kernel_size=KERNEL_SIZE, rtas_tokens={"power-off": 0x2003, "display-character": 0x2000},
                intc_node=xics_node(), rng_seed=bytes(32))
    base.update(kw)
    return dt.build_tree(dt.DtConfig(**base))


class Client:
    """Plays the guest: lays out strings and the argument block, makes the 0xF005 hcall."""

    def __init__(self, **kw) -> None:
        self.ram = GuestRam(RAM)
        self.sink = ListSink()
        self.cas_calls: list[int] = []
        self.exits = 0
        self.console: list[bytes] = []
        self.kw = kw
        tree = kw.pop("tree", None) or make_tree()
        self.vof = Vof(self.ram, tree, cas=kw.pop("cas", self._cas), clock_ms=lambda: 0x1_2345_6789,
                       exit=self._exit, console_write=self.console.append, trace=self.sink, **kw)
        self._str_at = STRS

    def _cas(self, vec: int) -> int:
        self.cas_calls.append(vec)
        return 0

    def _exit(self) -> None:
        self.exits += 1

    def s(self, text: str | bytes) -> int:
        """Place a NUL-terminated string; returns its address."""
        data = text.encode() if isinstance(text, str) else text
        addr = self._str_at
        self.ram.write(addr, data + b"\0")
        self._str_at += (len(data) + 8) & ~7
        return addr

    def call(self, service: str | int, args: list[int], nret: int = 1, *, nargs: int | None = None,
             block: int = BLOCK) -> tuple[int, list[int]]:
        svc = self.s(service) if isinstance(service, str) else service
        n = len(args) if nargs is None else nargs
        cells = [svc, n, nret] + args + [0xDEADBEEF] * (10 - len(args))
        self.ram.write(block, struct.pack(">13I", *cells[:13]))
        rc = self.vof.client_call(0, block)
        rets = [self.ram.read_u32(block + 12 + 4 * (n + i)) for i in range(nret)] if n + nret <= 10 else []
        return rc, rets

    def ret(self, service: str, args: list[int], nret: int = 1) -> int:
        rc, rets = self.call(service, args, nret)
        assert rc == H.SUCCESS
        return rets[0]

    def find(self, path: str) -> int:
        return self.ret("finddevice", [self.s(path)])

    def getprop(self, ph: int, name: str, buflen: int = 256) -> tuple[int, bytes]:
        self.ram.fill(BUF, 512, 0xAA)
        n = self.ret("getprop", [ph, self.s(name), BUF, buflen])
        return n, self.ram.read(BUF, 300)


@pytest.fixture
def c() -> Client:
    return Client()


# --- reset state ----------------------------------------------------------------------------------------


def test_reset_claims_available_stdout_and_phandles(c: Client) -> None:
    assert c.vof.stdout == 1
    assert c.vof.entry_sp == 0xFFE0
    mem = c.find("/memory@0")
    n, val = c.getprop(mem, "available")
    want = struct.pack(">12I", 0, 0xDA0, 0, 0x7260, 0, 0x10000, 0, 0x3F0000, 0, 0x411328, 0, 0x1FBEECD8)
    assert (n, val[:n]) == (48, want)
    assert c.find("/") == 0x1112 and c.find("/chosen") == 0x1114 and c.find("/memory@0") == 0x111F
    assert c.find("/interrupt-controller") == 0x1111


# --- malformed blocks and dispatch ----------------------------------------------------------------------


def test_block_outside_ram_is_h_parameter(c: Client) -> None:
    assert c.vof.client_call(0, RAM - 51) == H.PARAMETER
    assert c.vof.client_call(0, 1 << 40) == H.PARAMETER


def test_top_four_address_bits_are_ignored(c: Client) -> None:
    c.call("milliseconds", [], 1)
    assert c.vof.client_call(0, (0xC << 60) | BLOCK) == H.SUCCESS


@pytest.mark.parametrize("nargs,nret", [(10, 0), (0xFFFFFFFF, 1), (4, 7), (0, 11)])
def test_bad_counts_are_h_parameter(c: Client, nargs: int, nret: int) -> None:
    rc, _ = c.call("getprop", [0, 0, 0, 0], nret, nargs=nargs)
    assert rc == H.PARAMETER


def test_service_name_limits(c: Client) -> None:
    assert c.call("x" * 63, [], 1)[0] == H.SUCCESS
    assert c.call("x" * 64, [], 1)[0] == H.PARAMETER  # no NUL within 64 bytes
    c.ram.write(RAM - 8, b"exit\0\0\0\0")
    assert c.call(RAM - 8, [], 0)[0] == H.PARAMETER  # the 64-byte buffer runs past RAM
    assert c.call(0xFFFFFFF0, [], 0)[0] == H.PARAMETER


def test_unknown_service_and_wrong_counts_answer_minus_one(c: Client) -> None:
    assert c.call("no-such-service", [1, 2], 1) == (H.SUCCESS, [PROM_ERROR])
    assert c.call("finddevice", [c.s("/"), 0], 1) == (H.SUCCESS, [PROM_ERROR])  # nargs 2
    assert c.call("finddevice", [c.s("/")], 2) == (H.SUCCESS, [PROM_ERROR, 0])  # nret 2
    assert c.call("read", [1, BUF, 4], 1) == (H.SUCCESS, [PROM_ERROR])  # QEMU 7.2 has no "read"
    assert c.vof.last_call is not None and c.vof.last_call.service == "read"


def test_nret_zero_writes_nothing(c: Client) -> None:
    c.ram.write(BLOCK + 16, b"\x11\x22\x33\x44")
    c.ram.write(BLOCK, struct.pack(">3I", c.s("finddevice"), 1, 0))
    c.ram.write(BLOCK + 12, struct.pack(">I", c.s("/")))
    assert c.vof.client_call(0, BLOCK) == H.SUCCESS
    assert c.ram.read(BLOCK + 16, 4) == b"\x11\x22\x33\x44"


def test_trace_and_last_call(c: Client) -> None:
    c.find("/chosen")
    last = c.vof.last_call
    assert last is not None and (last.service, last.ret, last.note) == ("finddevice", 0x1114, "/chosen")
    ev = c.sink.events[-1]
    assert ev["ev"] == "ci" and ev["service"] == "finddevice" and ev["ret"] == 0x1114


# --- finddevice -----------------------------------------------------------------------------------------


def test_finddevice_paths(c: Client) -> None:
    assert c.find("/vdevice/vty@71000000") == 0x111D
    assert c.find("/vdevice/vty") == 0x111D  # no unit address: matches the first vty@...
    assert c.find("/cpus/PowerPC,POWER9@0") == 0x111A
    assert c.find("/cpus/PowerPC,POWER9") == 0x111A
    assert c.find("//vdevice//nvram@71000001/") == 0x111E
    assert c.find("/pci@800000020000000") == 0x111B
    assert c.find("/PCI@800000020000000") == PROM_ERROR  # only the unit address is lower-cased
    assert c.find("/pci@800000020000000".upper().replace("/PCI", "/pci")) == 0x111B
    assert c.find("/nope") == PROM_ERROR
    assert c.find("chosen") == PROM_ERROR  # no /aliases
    assert c.find("") == PROM_ERROR


def test_finddevice_hostile_strings(c: Client) -> None:
    assert c.ret("finddevice", [c.s("/" + "a" * 255)]) == PROM_ERROR  # no NUL in 256 bytes
    c.ram.write(RAM - 3, b"/\0\0")
    assert c.ret("finddevice", [RAM - 3]) == PROM_ERROR  # the 256-byte buffer leaves RAM
    assert c.ret("finddevice", [0xFFFFFFFF]) == PROM_ERROR


# --- getprop / getproplen -------------------------------------------------------------------------------


def test_getprop_copies_and_returns_full_length(c: Client) -> None:
    chosen = c.find("/chosen")
    n, val = c.getprop(chosen, "stdout-path")
    assert (n, val[:n + 1]) == (22, b"/vdevice/vty@71000000\0\xaa")
    n, val = c.getprop(chosen, "stdout-path", buflen=4)
    assert (n, val[:5]) == (22, b"/vde\xaa")
    assert c.ret("getproplen", [chosen, c.s("qemu,boot-kernel")]) == 16
    n, val = c.getprop(chosen, "qemu,boot-kernel")
    assert val[:16] == struct.pack(">QQ", 0x400000, KERNEL_SIZE)
    assert c.getprop(chosen, "nope")[0] == PROM_ERROR
    assert c.ret("getproplen", [chosen, c.s("nope")]) == PROM_ERROR


def test_getprop_synthesizes_name(c: Client) -> None:
    vty = c.find("/vdevice/vty@71000000")
    n, val = c.getprop(vty, "name")
    assert (n, val[:5]) == (4, b"vty\0\xaa")
    n, val = c.getprop(vty, "name", buflen=2)
    assert (n, val[:3]) == (4, b"vt\xaa")
    n, val = c.getprop(c.find("/"), "name")
    assert (n, val[:2]) == (1, b"\0\xaa")
    assert c.ret("getproplen", [c.find("/chosen"), c.s("name")]) == 7


def test_getprop_hostile(c: Client) -> None:
    chosen = c.find("/chosen")
    name = c.s("stdout-path")
    assert c.ret("getprop", [0, name, BUF, 64]) == PROM_ERROR
    assert c.ret("getprop", [0xFFFFFFFF, name, BUF, 64]) == PROM_ERROR
    assert c.ret("getprop", [0x7777, name, BUF, 64]) == PROM_ERROR
    assert c.ret("getprop", [chosen, name, RAM - 4, 64]) == PROM_ERROR  # buffer runs past RAM
    assert c.ret("getprop", [chosen, name, 0xFFFFF000, 0]) == 22  # nothing to copy: fine
    assert c.ret("getprop", [chosen, c.s("x" * 65), BUF, 64]) == PROM_ERROR  # name buffer is 65 bytes
    assert c.ret("getprop", [chosen, c.s("stdout-path"), BUF, 0xFFFFFFFF]) == 22  # huge buflen


# --- setprop --------------------------------------------------------------------------------------------


def test_setprop_new_first_existing_in_place(c: Client) -> None:
    chosen_ph = c.find("/chosen")
    chosen = c.vof.node_by_phandle(chosen_ph)
    assert chosen is not None
    before = [p.name for p in chosen.props]
    assert c.ret("setprop", [chosen_ph, c.s("linux,stdout-path"), c.s("/x"), 3]) == 3
    assert c.ret("setprop", [chosen_ph, c.s("my-prop"), c.s("abc"), 2]) == 2
    assert [p.name for p in chosen.props] == ["my-prop"] + before
    n, val = c.getprop(chosen_ph, "my-prop")
    assert (n, val[:3]) == (2, b"ab\xaa")
    assert c.getprop(chosen_ph, "linux,stdout-path")[1][:3] == b"/x\0"
    assert c.ret("setprop", [chosen_ph, c.s("empty"), 0xFFFFFFF0, 0]) == 0  # zero bytes from anywhere


def test_setprop_refusals(c: Client) -> None:
    chosen = c.find("/chosen")
    assert c.ret("setprop", [chosen, c.s("big"), BUF, 2049]) == PROM_ERROR
    assert c.ret("setprop", [chosen, c.s("big"), BUF, 2048]) == 2048
    assert c.ret("setprop", [chosen, c.s("p"), RAM - 2, 4]) == PROM_ERROR
    assert c.ret("setprop", [0x9999, c.s("p"), BUF, 4]) == PROM_ERROR
    assert c.ret("setprop", [chosen, c.s("linux,initrd-start"), BUF, 3]) == PROM_ERROR
    assert c.getprop(chosen, "linux,initrd-start")[0] == PROM_ERROR


def test_setprop_side_effects(c: Client) -> None:
    chosen, rtas = c.find("/chosen"), c.find("/rtas")
    c.ram.write(BUF, struct.pack(">I", 0x2000000))
    assert c.ret("setprop", [chosen, c.s("linux,initrd-start"), BUF, 4]) == 4
    c.ram.write(BUF, struct.pack(">Q", 0x2100000))
    assert c.ret("setprop", [chosen, c.s("linux,initrd-end"), BUF, 8]) == 8
    assert c.vof.initrd == (0x2000000, 0x100000)
    c.ram.write(BUF, struct.pack(">I", 0x1000000))
    assert c.ret("setprop", [rtas, c.s("linux,rtas-base"), BUF, 4]) == 4
    assert c.ret("setprop", [rtas, c.s("linux,rtas-entry"), BUF, 4]) == 4
    assert (c.vof.rtas_base, c.vof.rtas_entry) == (0x1000000, 0x1000000)
    assert c.ret("setprop", [chosen, c.s("bootargs"), c.s("console=hvc0"), 13]) == 13
    assert c.vof.state.bootargs == b"console=hvc0"


def test_setprop_phandle_changes_lookup(c: Client) -> None:
    chosen = c.find("/chosen")
    c.ram.write(BUF, struct.pack(">I", 0x4242))
    assert c.ret("setprop", [chosen, c.s("phandle"), BUF, 4]) == 4
    assert c.find("/chosen") == 0x4242
    assert c.ret("getproplen", [chosen, c.s("stdout-path")]) == PROM_ERROR
    assert c.ret("getproplen", [0x4242, c.s("stdout-path")]) == 22


def test_setprop_no_room_after_quiesce(c: Client) -> None:
    chosen = c.find("/chosen")
    assert c.call("quiesce", [], 0)[0] == H.SUCCESS
    assert c.vof.quiesced
    assert c.ret("setprop", [chosen, c.s("new-prop"), BUF, 4]) == PROM_ERROR
    assert c.ret("setprop", [chosen, c.s("linux,pci-probe-only"), BUF, 4]) == 4  # same size: fits


def test_setprop_fills_the_2mib_blob() -> None:
    c = Client()
    chosen = c.find("/chosen")
    results = [c.ret("setprop", [chosen, c.s(f"p{i}"), BUF, 2048]) for i in range(1100)]
    assert results[0] == 2048 and results[-1] == PROM_ERROR
    assert dt.dtb_size(c.vof.tree) <= dt.FDT_MAX_SIZE


# --- nextprop and navigation ----------------------------------------------------------------------------


def test_nextprop_walks_in_blob_order(c: Client) -> None:
    ph = c.find("/chosen")
    names, prev = [], ""
    while True:
        r = c.ret("nextprop", [ph, c.s(prev), BUF])
        if r == 0:
            break
        assert r == 1
        prev = c.ram.read_cstring(BUF, 64).decode()
        names.append(prev)
    node = c.vof.node_by_phandle(ph)
    assert node is not None and names == [p.name for p in node.props]
    assert names[:3] == ["stdout", "phandle", "ibm,architecture-vec-5"]


def test_nextprop_edges(c: Client) -> None:
    ph = c.find("/chosen")
    assert c.ret("nextprop", [ph, c.s("not-there"), BUF]) == 0
    assert c.ret("nextprop", [0x7777, c.s(""), BUF]) == 0  # QEMU: a bad phandle ends the walk
    assert c.ret("nextprop", [ph, c.s("x" * 70), BUF]) == PROM_ERROR
    assert c.ret("nextprop", [ph, c.s(""), RAM - 2]) == PROM_ERROR


def test_peer_child_parent_walk_the_whole_tree(c: Client) -> None:
    def walk(ph: int) -> list[int]:
        out = [ph]
        kid = c.ret("child", [ph])
        while kid:
            assert c.ret("parent", [kid]) == ph
            out += walk(kid)
            kid = c.ret("peer", [kid])
        return out

    root = c.ret("peer", [0])
    assert root == 0x1112
    assert walk(root) == [dt.get_phandle(n) for n in dt.iter_nodes(c.vof.tree)]
    assert c.ret("parent", [root]) == 0 and c.ret("peer", [root]) == 0
    assert c.ret("child", [c.find("/vdevice/vty@71000000")]) == 0
    assert c.ret("child", [0x5555]) == 0 and c.ret("peer", [0x5555]) == 0 and c.ret("parent", [0]) == 0


# --- instances ------------------------------------------------------------------------------------------


def test_open_close_and_paths(c: Client) -> None:
    ih = c.ret("open", [c.s("/")])
    assert ih == 2
    assert c.ret("open", [c.s("/rtas")]) == 3
    assert c.ret("open", [c.s("/nothing")]) == PROM_ERROR
    assert c.ret("instance-to-package", [1]) == c.find("/vdevice/vty@71000000")
    assert c.ret("instance-to-package", [3]) == c.find("/rtas")
    n = c.ret("instance-to-path", [1, BUF, 4])  # the whole path is written whatever len says
    assert (n, c.ram.read(BUF, n)) == (22, b"/vdevice/vty@71000000\0")
    n = c.ret("package-to-path", [c.find("/cpus/PowerPC,POWER9"), BUF, 64])
    assert c.ram.read(BUF, n) == b"/cpus/PowerPC,POWER9@0\0"
    assert c.ret("package-to-path", [c.find("/"), BUF, 64]) == 2
    assert c.ret("package-to-path", [0x9999, BUF, 64]) == PROM_ERROR
    assert c.ret("package-to-path", [0x1112, RAM - 1, 64]) == PROM_ERROR
    assert c.call("close", [3], 0)[0] == H.SUCCESS
    assert c.ret("instance-to-package", [3]) == PROM_ERROR
    assert c.ret("instance-to-path", [3, BUF, 64]) == PROM_ERROR
    assert c.call("close", [77], 0)[0] == H.SUCCESS  # unknown: ignored
    assert c.ret("open", [c.s("/chosen")]) == 4  # never recycled


# --- console --------------------------------------------------------------------------------------------


def test_write_keeps_bytes_and_prints_nothing(c: Client) -> None:
    msg = c.s("Booting Linux via __start()\n")
    assert c.ret("write", [1, msg, 28]) == 0
    assert c.vof.writes == [(1, b"Booting Linux via __start()\n")]
    assert c.console == []
    assert any(e.get("what") == "vof-write" for e in c.sink.events)
    assert c.ret("write", [99, msg, 4]) == PROM_ERROR
    assert c.ret("write", [1, RAM - 2, 4]) == PROM_ERROR
    assert c.ret("write", [1, 0xFFFFFF00, 0]) == 0
    assert c.ret("write", [1, RAM - 300, 0xFFFFFFFF]) == 0  # only the first 255-byte chunk is read
    assert len(c.vof.writes[-1][1]) == 300


def test_write_forwarded_when_asked() -> None:
    c = Client(forward_writes=True)
    assert c.ret("write", [1, c.s("hi"), 2]) == 0
    assert c.console == [b"hi"]


def test_read_with_console_input() -> None:
    c = Client(console_read=lambda n: b"xyz"[:n])
    assert c.ret("read", [1, BUF, 2]) == 2
    assert c.ram.read(BUF, 2) == b"xy"
    assert c.ret("read", [5, BUF, 2]) == PROM_ERROR
    assert c.ret("read", [1, RAM, 2]) == PROM_ERROR


# --- claim / release ------------------------------------------------------------------------------------


def available(c: Client) -> list[tuple[int, int]]:
    n, val = c.getprop(c.find("/memory@0"), "available", 512)
    words = struct.unpack(f">{n // 8}Q", val[:n])
    return list(zip(words[::2], words[1::2], strict=True))


def test_claim_and_release_update_available(c: Client) -> None:
    assert c.ret("claim", [0, 0x1000, 0x1000]) == 0x412000  # above the kernel, aligned
    assert c.ret("claim", [0x1000000, 0x20000, 0]) == 0x1000000
    assert c.ret("claim", [0x1010000, 0x1000, 0]) == PROM_ERROR  # overlaps
    assert c.ret("claim", [0x8000, 0x10, 0]) == PROM_ERROR  # the stack
    assert c.ret("claim", [0x2000000, 0, 0]) == PROM_ERROR  # size 0
    assert c.ret("claim", [0, 0x100, 0x100]) == 0x1020000  # the bump pointer moved past the last claim
    assert available(c) == [(0xDA0, 0x7260), (0x10000, 0x3F0000), (0x411328, 0xCD8), (0x413000, 0xBED000),
                            (0x1020000, 0), (0x1020100, 0x1EFDFF00)]
    assert c.call("release", [0x1000000, 0x1000], 0)[0] == H.SUCCESS
    assert c.ret("release", [0x1000000, 0x1000], 1) == PROM_ERROR  # exact ranges only
    assert c.ret("release", [0x1000000, 0x20000], 1) == 0
    assert (0x413000, 0xC0D000) in available(c)


def test_claim_aligned_stops_at_top(c: Client) -> None:
    assert c.ret("claim", [0, 0x1000, 0x40000000]) == PROM_ERROR  # aligned base beyond RAM
    assert c.ret("claim", [0, 0x1000, 0xFFFFFFFF]) == PROM_ERROR


def test_claim_beyond_ram_like_qemu(c: Client) -> None:
    # QEMU accepts an exact claim anywhere in the 32-bit space; available then wraps like its u64 math.
    assert c.ret("claim", [0xF0000000, 0x1000, 0]) == 0xF0000000
    assert available(c)[-1] == (0xF0001000, (0x20000000 - 0xF0001000) & ((1 << 64) - 1))


# --- call-method: CAS and RTAS --------------------------------------------------------------------------


def test_cas_through_call_method(c: Client) -> None:
    root = c.ret("open", [c.s("/")])
    rc, rets = c.call("call-method", [c.s("ibm,client-architecture-support"), root, 0x30000], 2)
    assert (rc, rets, c.cas_calls) == (H.SUCCESS, [0, 0], [0x30000])
    chosen = c.ret("open", [c.s("/chosen")])
    rc, rets = c.call("call-method", [c.s("ibm,client-architecture-support"), chosen, 0x30000], 2)
    assert rets == [PROM_ERROR, 0]  # not the root instance; QEMU's unused return cells are zeroes
    assert c.call("call-method", [c.s("ibm,client-architecture-support"), 0, 1], 2)[1][0] == PROM_ERROR
    assert c.call("call-method", [c.s("x" * 300), root, 1], 2)[1][0] == PROM_ERROR


def test_cas_status_is_passed_back() -> None:
    c = Client(cas=lambda vec: H.PARAMETER)
    root = c.ret("open", [c.s("/")])
    assert c.call("call-method", [c.s("ibm,client-architecture-support"), root, 1], 2)[1] == [0xFFFFFFFC, 0]


def test_instantiate_rtas_writes_the_stub(c: Client) -> None:
    assert RTAS_STUB.hex() == "7c641b78" "3c600000" "6063f000" "44000022" "4e800020"
    rtas = c.ret("open", [c.s("/rtas")])
    rc, rets = c.call("call-method", [c.s("instantiate-rtas"), rtas, 0x1000000], 2)
    assert (rc, rets) == (H.SUCCESS, [0, 0x1000000])
    assert c.ram.read(0x1000000, 20) == RTAS_STUB
    rc, rets = c.call("call-method", [c.s("instantiate-rtas"), rtas, RAM - 8], 2)
    assert (rc, rets) == (H.SUCCESS, [0, RAM - 8])  # vof.bin copies blindly; nothing lands outside RAM


def test_instantiate_rtas_needs_room_in_rtas_size() -> None:
    tree = make_tree()
    node = next(n for n in dt.iter_nodes(tree) if n.name == "rtas")
    dt.set_prop(node, "rtas-size", struct.pack(">I", 16))
    c = Client(tree=tree)
    ih = c.ret("open", [c.s("/rtas")])
    rc, rets = c.call("call-method", [c.s("instantiate-rtas"), ih, 0x1000000], 2)
    assert (rc, rets[0]) == (H.SUCCESS, PROM_ERROR)
    assert c.ram.read(0x1000000, 4) == bytes(4)


# --- the rest -------------------------------------------------------------------------------------------


def test_interpret_milliseconds_exit(c: Client) -> None:
    assert c.call("interpret", [c.s("1 2 +")], 2)[1] == [PROM_ERROR, 0]
    assert c.ret("milliseconds", []) == 0x23456789
    assert c.call("milliseconds", [7], 1)[1] == [0x23456789]  # nargs is not checked
    assert c.call("milliseconds", [], 2)[1][0] == PROM_ERROR  # nret is
    assert c.call("exit", [], 0)[0] == H.SUCCESS
    assert c.exits == 1 and c.vof.exited


def test_replace_tree_keeps_state(c: Client) -> None:
    chosen = c.find("/chosen")
    c.ret("setprop", [chosen, c.s("bootargs"), c.s("quiet"), 6])
    assert c.ret("open", [c.s("/")]) == 2
    assert c.ret("claim", [0x1000000, 0x1000, 0]) == 0x1000000
    c.ram.write(BUF, struct.pack(">I", 0x1000000))
    assert c.ret("setprop", [c.find("/rtas"), c.s("linux,rtas-base"), BUF, 4]) == 4
    assert c.vof.rtas_base == 0x1000000
    new = make_tree(cpu_version=0x0F000005)
    c.vof.replace_tree(new)
    assert c.vof.rtas_base is None  # QEMU's rebuilt tree has no linux,rtas-base until the client sets it
    assert c.vof.stdout == 3
    assert c.ret("instance-to-package", [2]) == 0x1112
    assert c.find("/chosen") == chosen
    n, val = c.getprop(chosen, "bootargs")
    assert val[:n] == b"quiet\0"
    node = c.vof.node_by_phandle(chosen)
    assert node is not None and [p.name for p in node.props][:3] == ["stdout", "bootargs", "phandle"]
    assert (0x1001000, 0x1EFFF000) in available(c)
    cpu = c.find("/cpus/PowerPC,POWER9@0")
    assert c.getprop(cpu, "cpu-version")[1][:4] == struct.pack(">I", 0x0F000005)
