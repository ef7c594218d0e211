"""Check that a guest ELF loads the way QEMU pseries expects (see link.ld):
exactly one PT_LOAD, physical address 0, virtual 0x400000, _start first,
and no floating-point or vector instructions (the images run with FP off)."""

import subprocess
import sys

from elftools.elf.elffile import ELFFile


def main(path: str) -> int:
    with open(path, "rb") as f:
        elf = ELFFile(f)
        loads = [s for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]
        start = elf.get_section_by_name(".symtab").get_symbol_by_name("_start")[0]["st_value"]
        errors = []
        if len(loads) != 1:
            errors.append(f"{len(loads)} PT_LOAD segments, want 1")
        seg = loads[0]
        if seg["p_paddr"] != 0 or seg["p_vaddr"] != 0x400000:
            errors.append(f"PT_LOAD paddr {seg['p_paddr']:#x} vaddr {seg['p_vaddr']:#x}")
        if start != seg["p_vaddr"]:
            errors.append(f"_start at {start:#x}, first loaded byte at {seg['p_vaddr']:#x}")
    dis = subprocess.run(["llvm-objdump", "-d", path], capture_output=True, text=True).stdout
    fp_prefixes = ("lfd", "stfd", "lfs", "stfs", "lxv", "stxv", "xx", "xs", "lvx", "stvx", "mtvsr", "mfvsr")
    fp_prefixes += ("fmr", "vor", "vxor")
    bad = []
    func = ""
    for ln in dis.splitlines():
        if ln.endswith(">:"):
            func = ln.split("<")[-1][:-2]
        # t_*/insn_* routines in test images execute such instructions on purpose
        elif "\t" in ln and not func.startswith(("t_", "insn_")):
            if ln.split("\t")[-1].split(" ")[0].startswith(fp_prefixes):
                bad.append(ln)
    if bad:
        errors.append("FP/vector instructions: " + "; ".join(bad[:3]))
    for e in errors:
        print(f"{path}: {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
