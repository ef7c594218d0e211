/*
 * The real-mode firmware stub xive-machine loads at physical 0, in place of QEMU's vof.bin.
 * Its services live in Python (hcall 0xF005 = KVMPPC_H_VOF_CLIENT); this code is only the guest-side door,
 * placed where the guest expects it: the client-interface entry at 0x10c as in vof.bin, so a kernel sees the
 * same r5 under both machines. It runs in whatever mode the caller is in (the client interface is called in
 * 32-bit big-endian mode; the code is mode-independent).
 */
    .section .text.fw, "ax"
    .globl fw_base
fw_base:
    .org 0x100
    /* --boot fdt: QEMU with a minimal -bios that branches to the kernel; r3 = FDT, set by the machine. */
    .globl fdt_entry
fdt_entry:
    lis     12, 0x40            /* 0x400000, the kernel load base */
    mtctr   12
    bctr

    .org 0x10c
    /* Open Firmware client interface: r3 = address of the argument block. */
    .globl ci_entry
ci_entry:
    mr      4, 3
    li      3, 0
    ori     3, 3, 0xf005        /* KVMPPC_H_VOF_CLIENT */
    sc      1
    blr

    /* Where a kernel that returns from its entry lands (LR at entry): call the client interface "exit". */
    .globl boot_return
boot_return:
    lis     3, exit_args@ha
    addi    3, 3, exit_args@l
    bl      ci_entry
1:  b       1b

    .balign 4
exit_args:
    .long   exit_name           /* service */
    .long   0                   /* nargs */
    .long   0                   /* nret */
exit_name:
    .asciz  "exit"
    .balign 4
    .globl fw_end
fw_end:
