/*
 * Entry code, client-interface trampoline and exception entry for the
 * xive-machine guest images.
 *
 * The firmware (QEMU VOF, or our machine) enters at the load base 0x400000 in
 * 32-bit big-endian real mode (MSR = 0) with r5 = client-interface entry.
 * Both BE and LE images are built from this file; LE images first run the
 * endian fix-up below because the CPU starts big-endian whatever the ELF says.
 */

/* clang's assembler wants bare register numbers in memory operands */
#define r0 0
#define r1 1
#define r2 2
#define r3 3
#define r4 4
#define r5 5
#define r6 6
#define r7 7
#define r8 8
#define r9 9
#define r10 10
#define r11 11
#define r12 12
#define r13 13
#define r14 14
#define r15 15
#define r16 16
#define r17 17
#define r18 18
#define r19 19
#define r20 20
#define r21 21
#define r22 22
#define r23 23
#define r24 24
#define r25 25
#define r26 26
#define r27 27
#define r28 28
#define r29 29
#define r30 30
#define r31 31

/* Byte-reversed copy of an instruction word, so that a BE-running CPU executes
 * it correctly from an LE image. */
.macro SWAPPED insn
	.long ((\insn >> 24) & 0xff) | ((\insn >> 8) & 0xff00) | ((\insn << 8) & 0xff0000) | ((\insn << 24) & 0xff000000)
.endm

/*
 * FIXUP_TO_LE: if the CPU runs big-endian, switch it to little-endian and
 * continue after the block; if already little-endian, do nothing.
 * The first word, assembled little-endian, is "tdi 0,0,0x48" (a no-op); a
 * big-endian CPU reads the same bytes as "b .+8" and lands on the byte-swapped
 * sequence, which sets MSR[LE] through rfid.  Clobbers r10, r11, LR, SRR0/1.
 */
.macro FIXUP_TO_LE
#ifdef __LITTLE_ENDIAN__
	tdi	0, 0, 0x48
	b	191f
	SWAPPED 0x7d6000a6	/* mfmsr  r11 */
	SWAPPED 0x616b0001	/* ori    r11,r11,1      (MSR[LE]) */
	SWAPPED 0x429f0005	/* bcl    20,31,$+4 */
	SWAPPED 0x7d4802a6	/* mflr   r10 */
	SWAPPED 0x394a0014	/* addi   r10,r10,20     (-> label 191) */
	SWAPPED 0x7d5a03a6	/* mtsrr0 r10 */
	SWAPPED 0x7d7b03a6	/* mtsrr1 r11 */
	SWAPPED 0x4c000024	/* rfid */
191:
#endif
.endm

/* Absolute address of a symbol; every image lives below 2 GiB. */
.macro LOADADDR reg, sym
	lis	\reg, \sym@ha
	addi	\reg, \reg, \sym@l
.endm

/* Set MSR[SF]: the firmware enters in 32-bit mode. */
.macro SET_SF
	mfmsr	r11
	li	r12, 1
	rldicr	r12, r12, 63, 0
	or	r11, r11, r12
	mtmsrd	r11
	isync
.endm

	.section .text.start, "ax"
	.globl	_start
_start:
	FIXUP_TO_LE
	/* keep the entry registers for rt_start() */
	mr	r14, r3
	mr	r15, r4
	mr	r16, r5
	mr	r17, r1
	li	r13, 0			/* r13 = logical CPU index (this_cpu()) */
	SET_SF
	LOADADDR r2, .TOC.
	LOADADDR r1, boot_stack_top
	li	r0, 0
	stdu	r0, -64(r1)

	/* clear .bss (8-byte aligned by the linker script) */
	LOADADDR r8, __bss_start
	LOADADDR r9, __bss_end
1:	cmpld	r8, r9
	bge	2f
	std	r0, 0(r8)
	addi	r8, r8, 8
	b	1b
2:
	mr	r3, r14
	mr	r4, r15
	mr	r5, r16
	mr	r6, r17
	bl	rt_start
	nop
3:	b	3b

/*
 * Secondary CPUs started by RTAS start-cpu: MSR = SF|ME, big-endian,
 * r3 = the value given to start-cpu (our logical CPU index).
 */
	.text
	.globl	secondary_entry
secondary_entry:
	FIXUP_TO_LE
	SET_SF
	mr	r13, r3			/* this_cpu() */
	LOADADDR r2, .TOC.
	/* r1 = secondary_stacks + (r3 + 1) * SEC_STACK_SIZE */
	LOADADDR r1, secondary_stacks
	addi	r4, r3, 1
	sldi	r4, r4, 14		/* 16 KiB per CPU, see rt.c */
	add	r1, r1, r4
	li	r0, 0
	stdu	r0, -64(r1)
	bl	rt_secondary_start
	nop
4:	b	4b

/*
 * unsigned int ci_enter(void *args, unsigned long entry)
 *
 * Calls the 32-bit big-endian OF client interface.  The firmware is free to
 * clobber the upper halves of the non-volatile registers and r2, so they are
 * saved at full width; the call runs with MSR[SF] and MSR[LE] cleared and we
 * come back through ci_return, which restores the caller's MSR with rfid.
 */
#define CI_FRAME	384
#define CI_R2		112
#define CI_GPR(n)	(120 + ((n) - 13) * 8)
#define CI_MSR		280
	.globl	ci_enter
ci_enter:
	mflr	r0
	std	r0, 16(r1)
	mfcr	r0
	stw	r0, 8(r1)
	stdu	r1, -CI_FRAME(r1)
	std	r2, CI_R2(r1)
	std	r13, CI_GPR(13)(r1)
	std	r14, CI_GPR(14)(r1)
	std	r15, CI_GPR(15)(r1)
	std	r16, CI_GPR(16)(r1)
	std	r17, CI_GPR(17)(r1)
	std	r18, CI_GPR(18)(r1)
	std	r19, CI_GPR(19)(r1)
	std	r20, CI_GPR(20)(r1)
	std	r21, CI_GPR(21)(r1)
	std	r22, CI_GPR(22)(r1)
	std	r23, CI_GPR(23)(r1)
	std	r24, CI_GPR(24)(r1)
	std	r25, CI_GPR(25)(r1)
	std	r26, CI_GPR(26)(r1)
	std	r27, CI_GPR(27)(r1)
	std	r28, CI_GPR(28)(r1)
	std	r29, CI_GPR(29)(r1)
	std	r30, CI_GPR(30)(r1)
	std	r31, CI_GPR(31)(r1)
	mfmsr	r11
	std	r11, CI_MSR(r1)
	/* SRR1 = MSR & ~(SF | LE) */
	li	r12, 1
	rldicr	r12, r12, 63, 0
	ori	r12, r12, 1
	andc	r11, r11, r12
	mtsrr1	r11
	mtsrr0	r4
	LOADADDR r12, ci_return
	mtlr	r12
	rfid

ci_return:
	/* back in 32-bit big-endian mode; r3 = client-interface result */
	FIXUP_TO_LE
	ld	r11, CI_MSR(r1)
	mtsrr1	r11
	LOADADDR r12, 5f
	mtsrr0	r12
	rfid
5:	ld	r2, CI_R2(r1)
	ld	r13, CI_GPR(13)(r1)
	ld	r14, CI_GPR(14)(r1)
	ld	r15, CI_GPR(15)(r1)
	ld	r16, CI_GPR(16)(r1)
	ld	r17, CI_GPR(17)(r1)
	ld	r18, CI_GPR(18)(r1)
	ld	r19, CI_GPR(19)(r1)
	ld	r20, CI_GPR(20)(r1)
	ld	r21, CI_GPR(21)(r1)
	ld	r22, CI_GPR(22)(r1)
	ld	r23, CI_GPR(23)(r1)
	ld	r24, CI_GPR(24)(r1)
	ld	r25, CI_GPR(25)(r1)
	ld	r26, CI_GPR(26)(r1)
	ld	r27, CI_GPR(27)(r1)
	ld	r28, CI_GPR(28)(r1)
	ld	r29, CI_GPR(29)(r1)
	ld	r30, CI_GPR(30)(r1)
	ld	r31, CI_GPR(31)(r1)
	addi	r1, r1, CI_FRAME
	ld	r0, 16(r1)
	mtlr	r0
	lwz	r0, 8(r1)
	mtcrf	0xff, r0
	clrldi	r3, r3, 32
	blr

/*
 * Exception entry (LE images must have set LPCR[ILE] with H_SET_MODE first,
 * rt_set_vector() does it).  rt_set_vector() writes "ba exc_stub_XXX" at the vector;
 * the stub makes room below the interrupted code's stack (skipping the
 * 288-byte ELFv2 red zone), records the vector number and joins exc_common,
 * which saves the whole register state into a struct exc_frame (rt.h) and
 * calls exc_dispatch(vector, frame).  The C side may edit srr0/srr1/gprs.
 */
#define EXC_REDZONE	288
#define EXC_FRAME	512
#define EF		128		/* struct exc_frame offset in our frame */
#define EF_GPR(n)	(EF + (n) * 8)
#define EF_SRR0		(EF + 256)
#define EF_SRR1		(EF + 264)
#define EF_LR		(EF + 272)
#define EF_CTR		(EF + 280)
#define EF_XER		(EF + 288)
#define EF_CR		(EF + 296)
#define EF_DAR		(EF + 304)
#define EF_DSISR	(EF + 312)

.macro EXC_STUB vec
	.globl	exc_stub_\vec
exc_stub_\vec:
	stdu	r1, -(EXC_REDZONE + EXC_FRAME)(r1)
	std	r3, EF_GPR(3)(r1)
	li	r3, \vec
	b	exc_common
.endm

	.balign	4
	EXC_STUB 0x200
	EXC_STUB 0x300
	EXC_STUB 0x380
	EXC_STUB 0x400
	EXC_STUB 0x480
	EXC_STUB 0x500
	EXC_STUB 0x600
	EXC_STUB 0x700
	EXC_STUB 0x800
	EXC_STUB 0x900
	EXC_STUB 0xa00
	EXC_STUB 0xc00
	EXC_STUB 0xd00
	EXC_STUB 0xe80
	EXC_STUB 0xf00
	EXC_STUB 0xf20
	EXC_STUB 0xf40
	EXC_STUB 0xf60

exc_common:
	std	r0, EF_GPR(0)(r1)
	std	r2, EF_GPR(2)(r1)
	std	r4, EF_GPR(4)(r1)
	std	r5, EF_GPR(5)(r1)
	std	r6, EF_GPR(6)(r1)
	std	r7, EF_GPR(7)(r1)
	std	r8, EF_GPR(8)(r1)
	std	r9, EF_GPR(9)(r1)
	std	r10, EF_GPR(10)(r1)
	std	r11, EF_GPR(11)(r1)
	std	r12, EF_GPR(12)(r1)
	std	r13, EF_GPR(13)(r1)
	std	r14, EF_GPR(14)(r1)
	std	r15, EF_GPR(15)(r1)
	std	r16, EF_GPR(16)(r1)
	std	r17, EF_GPR(17)(r1)
	std	r18, EF_GPR(18)(r1)
	std	r19, EF_GPR(19)(r1)
	std	r20, EF_GPR(20)(r1)
	std	r21, EF_GPR(21)(r1)
	std	r22, EF_GPR(22)(r1)
	std	r23, EF_GPR(23)(r1)
	std	r24, EF_GPR(24)(r1)
	std	r25, EF_GPR(25)(r1)
	std	r26, EF_GPR(26)(r1)
	std	r27, EF_GPR(27)(r1)
	std	r28, EF_GPR(28)(r1)
	std	r29, EF_GPR(29)(r1)
	std	r30, EF_GPR(30)(r1)
	std	r31, EF_GPR(31)(r1)
	addi	r4, r1, EXC_REDZONE + EXC_FRAME
	std	r4, EF_GPR(1)(r1)
	mfsrr0	r4
	std	r4, EF_SRR0(r1)
	mfsrr1	r4
	std	r4, EF_SRR1(r1)
	mflr	r4
	std	r4, EF_LR(r1)
	mfctr	r4
	std	r4, EF_CTR(r1)
	mfxer	r4
	std	r4, EF_XER(r1)
	mfcr	r4
	std	r4, EF_CR(r1)
	mfspr	r4, 19		/* DAR */
	std	r4, EF_DAR(r1)
	mfspr	r4, 18		/* DSISR */
	std	r4, EF_DSISR(r1)
	LOADADDR r2, .TOC.
	addi	r4, r1, EF
	bl	exc_dispatch
	nop
	ld	r4, EF_SRR0(r1)
	mtsrr0	r4
	ld	r4, EF_SRR1(r1)
	mtsrr1	r4
	ld	r4, EF_LR(r1)
	mtlr	r4
	ld	r4, EF_CTR(r1)
	mtctr	r4
	ld	r4, EF_XER(r1)
	mtxer	r4
	ld	r4, EF_CR(r1)
	mtcrf	0xff, r4
	ld	r0, EF_GPR(0)(r1)
	ld	r2, EF_GPR(2)(r1)
	ld	r3, EF_GPR(3)(r1)
	ld	r4, EF_GPR(4)(r1)
	ld	r5, EF_GPR(5)(r1)
	ld	r6, EF_GPR(6)(r1)
	ld	r7, EF_GPR(7)(r1)
	ld	r8, EF_GPR(8)(r1)
	ld	r9, EF_GPR(9)(r1)
	ld	r10, EF_GPR(10)(r1)
	ld	r11, EF_GPR(11)(r1)
	ld	r12, EF_GPR(12)(r1)
	ld	r13, EF_GPR(13)(r1)
	ld	r14, EF_GPR(14)(r1)
	ld	r15, EF_GPR(15)(r1)
	ld	r16, EF_GPR(16)(r1)
	ld	r17, EF_GPR(17)(r1)
	ld	r18, EF_GPR(18)(r1)
	ld	r19, EF_GPR(19)(r1)
	ld	r20, EF_GPR(20)(r1)
	ld	r21, EF_GPR(21)(r1)
	ld	r22, EF_GPR(22)(r1)
	ld	r23, EF_GPR(23)(r1)
	ld	r24, EF_GPR(24)(r1)
	ld	r25, EF_GPR(25)(r1)
	ld	r26, EF_GPR(26)(r1)
	ld	r27, EF_GPR(27)(r1)
	ld	r28, EF_GPR(28)(r1)
	ld	r29, EF_GPR(29)(r1)
	ld	r30, EF_GPR(30)(r1)
	ld	r31, EF_GPR(31)(r1)
	ld	r1, EF_GPR(1)(r1)
	rfid

/* Stacks: cleared with the rest of .bss before use. */
	.section .bss.stacks, "aw", @nobits
	.balign	16
	.space	65536
	.globl	boot_stack_top
boot_stack_top:
	.globl	secondary_stacks
secondary_stacks:
	.space	8 * 16384	/* MAX_CPUS (rt.h) x 16 KiB */
