"""`--boot fdt` for a Linux kernel: what its prom_init would have done before the kernel reads a flat tree.

Under the client interface (`--boot vof`) Linux's prom_init negotiates CAS and instantiates RTAS itself. A
kernel entered with a flattened tree skips prom_init, so it would see the reset-time tree (no negotiated
`ibm,architecture-vec-5`: hash MMU and XICS, which this machine does not translate) and no RTAS entry point.
For a Linux image the machine therefore plays prom_init's part first: it runs CAS with the architecture
vector Linux 6.1's prom_init sends (recorded from a real boot here; the interrupt-mode byte chosen as
prom_init chooses it from the platform's offer and `xive=off`), then copies the RTAS stub below the tree and
records it as `linux,rtas-base`/`linux,rtas-entry` with a reserved-memory entry, as prom_init would.
The kernel then boots on the post-CAS tree in r3, radix and XIVE (or XICS) already negotiated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xive_machine.firmware import devtree as DT
from xive_machine.firmware import ovec
from xive_machine.firmware.vof import RTAS_STUB, find_path

if TYPE_CHECKING:
    from xive_machine.machine.spapr import SpaprMachine

# The ibm,client-architecture-support vector of Debian's Linux 6.1 prom_init (PVR list, OV1..OV6), as it
# called CAS on this machine in dual mode: XIVE exploitation, radix, GTSE, FORM1/FORM2 affinity.
LINUX_6_1_VECTOR = bytes.fromhex(
    "fffe0000003a0000ffff0000003e0000ffff0000003f0000ffff0000004b0000ffff0000004c0000ffff0000004d0000"
    "ffff0000004e0000ffff000000800000ffffffff0f000006ffffffff0f000005ffffffff0f000004ffffffff0f000003"
    "ffffffff0f000002fffffffe0f000001050200ffc020200000ffffffffffffffffffffffffffffffffffffffff0000"
    "0200ffffffff00300100e00100011900f30000e00500000000080000000000e000000001c04040004002000002")
OV5 = 5
OV5_INTC_BYTE = 23  # 1-based, as the OV5 byte numbers of PAPR (content[22])
LINUX_BANNER = b"Linux version "
VECTOR_SCRATCH = 0x10000  # bytes below the RTAS stub where the vector sits while CAS reads it
RTAS_ALIGN = 0x1000


def is_linux(m: SpaprMachine) -> bool:
    """The loaded image is a Linux kernel (its banner string is in the image)."""
    k = m.kernel
    return k is not None and m.ram.read(k.base, k.size).find(LINUX_BANNER) >= 0


def linux_vector(m: SpaprMachine) -> bytes:
    """Linux's vector with the interrupt mode prom_init would ask for here: XIVE when the platform offers it
    and the command line does not say `xive=off`, else XICS."""
    av = ovec.parse_arch_vector(LINUX_6_1_VECTOR)
    ov5 = bytearray(av.vector(OV5) or b"")
    want_xive = m.cas_platform.has_xive and "xive=off" not in (m.bootargs or "").split()
    ov5[OV5_INTC_BYTE - 1] = ovec.OV5_XIVE_EXPLOIT.mask if want_xive else 0
    vectors = list(av.vectors)
    vectors[OV5 - 1] = bytes(ov5)
    return ovec.build_arch_vector(ovec.ArchVector(av.pvrs, av.terminator, tuple(vectors), av.trailing))


def prepare(m: SpaprMachine, fdt_addr: int) -> None:
    """CAS and RTAS as prom_init does them, before the tree is flattened at `fdt_addr`."""
    from xive_machine.machine import platform

    rtas = find_path(m.tree, "/rtas")
    size_prop = DT.get_prop(rtas, "rtas-size") if rtas is not None else None
    rtas_size = max(len(RTAS_STUB), int.from_bytes(size_prop[:4], "big") if size_prop else 0)
    rtas_addr = (fdt_addr - rtas_size) & ~(RTAS_ALIGN - 1)
    vec = linux_vector(m)
    scratch = rtas_addr - VECTOR_SCRATCH
    m.ram.write(scratch, vec)
    platform.do_cas(m, 0, scratch)
    m.ram.write(scratch, bytes(len(vec)))
    m.ram.write(rtas_addr, RTAS_STUB)
    rtas = find_path(m.tree, "/rtas")
    if rtas is not None:
        DT.set_prop(rtas, "linux,rtas-base", rtas_addr.to_bytes(4, "big"))
        DT.set_prop(rtas, "linux,rtas-entry", rtas_addr.to_bytes(4, "big"))
    m.tree.entries = [*m.tree.entries, {"address": rtas_addr, "size": rtas_size}]  # never a shared list
