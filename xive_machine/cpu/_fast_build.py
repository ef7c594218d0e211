"""cffi API-mode build of the vCPU fast path (compiled at install time by setuptools' `cffi_modules`).

Why C: through the Python binding an hcall costs ~4 us (hook wrapper + one libffi call per register);
here the `sc` hook reads r3..r12 in C, makes exactly one Python call, and writes back r3.. in C. The
module does not link against libunicorn: the Python side hands it the binding's own function pointers.
"""

from cffi import FFI

CDEF = """
struct xm_irqx;
struct xm_xive;
struct xm_trap {
    void *uc;            /* uc_engine* of this vCPU */
    uint32_t intno;      /* Unicorn interrupt number (8 = system call, 6 = program ...) */
    int32_t nout;        /* set by Python: how many of r[] (from r3) to write back, -1 = none */
    uint64_t r[10];      /* r3..r12 on entry; r3.. outputs on return */
    uint64_t pc;         /* PC when the hook fired (4 past the instruction for sc) */
    uint64_t msr;        /* MSR when the hook fired */
    uint32_t insn;       /* the 4 bytes before pc as a big-endian word (0 if unreadable) */
    void *owner;         /* cffi handle of the Python object that serves this vCPU */
    unsigned char *ram;  /* host address of guest RAM [0, ram_size): instruction fetch without Unicorn */
    uint64_t ram_size;
    uint64_t icount;     /* instructions entered, counted per translation block (deterministic clock) */
    uint64_t deadline;   /* the block hook stops the core once icount reaches this */
    uint32_t irq_waiting;/* an interrupt is pending but masked: stop at the first block with MSR[EE]=1 */
    uint32_t slot_le;    /* the fast SPR trampoline's data slot is little-endian */
    uint64_t tramp_entry;/* set by Python in the trap: after it, save r0 in the slot, r0 = tramp_val, PC = this */
    uint64_t tramp_val;
    uint64_t *slot;      /* host address of the trampoline data slot */
    uint64_t code_lo, code_hi; /* blocks outside [code_lo, code_hi) and the trampolines are counted: */
    uint64_t exec_outside;     /* a reset must then drop all translated code, not only changed pages */
    uint64_t *served;          /* open-addressing set (XM_SERVED_CAP slots, 0 = empty) of addresses of */
    uint64_t served_n;         /* instructions the machine serves (TB/DEC/PURR... reads): already hooked */
    uint64_t serve_addr;       /* for Python: the instruction found */
    uint32_t serve_word;
    uint32_t fast_sprg0;       /* H_SET_SPRG0 served here (tracing off, the stock handler installed) */
    uint64_t sprg0;            /* SPRG0 as the machine keeps it (see timebase.SHADOW_SPRS) */
    struct xm_irqx *irqx;      /* interrupt state the XIVE fast path shares (NULL: always Python) */
};
extern "Python" void xm_py_trap(struct xm_trap *);
extern "Python" void xm_py_irq(struct xm_trap *);
extern "Python" void xm_py_serve(struct xm_trap *);
#define XM_SERVED_CAP 65536
struct xm_mmio {
    void *owner;         /* cffi handle of the Python object serving this page (a vCPU's view of a window) */
    uint64_t base;       /* guest address of the page */
    uint64_t size;
    unsigned char *buf;  /* host memory behind the page: a load reads the value the hook stores here */
    struct xm_xive *xive;/* XIVE fast path (see below): NULL = every access goes to Python */
    uint32_t xkind;      /* 1 = ESB window page, 2 = TIMA page */
    uint32_t xcpu;       /* the vCPU whose view this page is */
    uint64_t xbase;      /* guest address of the window (offsets are relative to it) */
};
extern "Python" uint64_t xm_py_mmio_read(struct xm_mmio *, uint64_t, int);
extern "Python" void xm_py_mmio_write(struct xm_mmio *, uint64_t, int, uint64_t);
/* --- XIVE fast path (see the section at the end of SOURCE) --- */
struct xm_irqx {
    uint8_t irq;          /* CpuState.irq: the interrupt controller asserts the external-exception line */
    uint8_t dec_pending;  /* CpuState.dec_pending */
    uint8_t fast;         /* external interrupts may be delivered here (tracing off) */
    uint8_t redirect;     /* VCpu.redirect is set: an SPR trampoline must land first (Python decides) */
    uint8_t *ile;         /* the machine's LPCR[ILE] */
    uint64_t entry[2];    /* jump trampoline `SRR0, SRR1 -> 0x500`, big-/little-endian; 0 = not built */
};
struct xm_xcpu {
    unsigned char *tima;  /* XiveTCTX.regs (64 TIMA bytes); NULL = no thread context: Python */
    unsigned char *level; /* XiveTCTX.levels: [0] = the OS output level the context drives */
    struct xm_trap *trap;
    struct xm_irqx *irqx;
};
struct xm_xive {
    void *owner;          /* cffi handle of the Python binding (its line() raises another vCPU's line) */
    uint32_t enabled;     /* 0: every access goes to Python */
    uint32_t nr_irqs, nr_ends, ncpus;
    uint32_t esb_shift, two_page;
    uint64_t mgmt_bit;
    uint32_t nvt_base, nvt_count; /* NVT valid iff block 0 and nvt_base <= index < nvt_base + nvt_count */
    unsigned char *status;        /* XiveSource.status */
    unsigned char *lsi;           /* XiveSource.lsi */
    uint64_t *eat;                /* XiveRouter.eat */
    uint32_t *endt;               /* XiveRouter.endt */
    unsigned char *ram;
    uint64_t ram_size;
    unsigned char *dirty;         /* GuestRam dirty bitmap (1 bit per 4 KiB page) and its "any" byte */
    unsigned char *dirty_any;
    struct xm_xcpu *cpus;
};
extern "Python" void xm_py_line(struct xm_xive *, uint32_t, uint32_t);
int xm_xive_access(struct xm_mmio *m, uint64_t addr, int size, int is_write, uint64_t value, uint64_t *out);
int xm_hook_mmio(void *uc, struct xm_mmio *m, size_t *handle);
int xm_init(uintptr_t reg_read_batch, uintptr_t reg_write_batch, uintptr_t reg_read, uintptr_t hook_add,
            uintptr_t mem_read);
int xm_hook_trap(struct xm_trap *t);
int xm_hook_blocks(struct xm_trap *t);
int xm_init_stop(uintptr_t emu_stop);
int xm_init_rw(uintptr_t reg_write);
uint64_t xm_reg_read(void *uc, int regid);
int xm_reg_write(void *uc, int regid, uint64_t value);
int xm_reg_write_many(void *uc, int *regids, uint64_t *values, int n);
"""

SOURCE = r"""
#include <stdint.h>
#include <stddef.h>

struct xm_irqx;
struct xm_xive;

struct xm_trap {
    void *uc;
    uint32_t intno;
    int32_t nout;
    uint64_t r[10];
    uint64_t pc;
    uint64_t msr;
    uint32_t insn;
    void *owner;
    unsigned char *ram;
    uint64_t ram_size;
    uint64_t icount;
    uint64_t deadline;
    uint32_t irq_waiting;
    uint32_t slot_le;
    uint64_t tramp_entry;
    uint64_t tramp_val;
    uint64_t *slot;
    uint64_t code_lo, code_hi;
    uint64_t exec_outside;
    uint64_t *served;
    uint64_t served_n;
    uint64_t serve_addr;
    uint32_t serve_word;
    uint32_t fast_sprg0;       /* H_SET_SPRG0 served here (tracing off, the stock handler installed) */
    uint64_t sprg0;            /* SPRG0 as the machine keeps it (see timebase.SHADOW_SPRS) */
    struct xm_irqx *irqx;
};
static void xm_py_trap(struct xm_trap *);
static void xm_py_irq(struct xm_trap *);
static void xm_py_serve(struct xm_trap *);
#define XM_SERVED_CAP 65536
struct xm_mmio {
    void *owner;
    uint64_t base;
    uint64_t size;
    unsigned char *buf;
    struct xm_xive *xive;
    uint32_t xkind;
    uint32_t xcpu;
    uint64_t xbase;
};
static int xm_xive_read(struct xm_mmio *, uint64_t, int, uint64_t *);
static int xm_xive_write(struct xm_mmio *, uint64_t, int, uint64_t);
static int xm_irq_fast(void *, struct xm_trap *, uint64_t, uint64_t);
static uint64_t xm_py_mmio_read(struct xm_mmio *, uint64_t, int);
static void xm_py_mmio_write(struct xm_mmio *, uint64_t, int, uint64_t);

typedef int (*rrb_t)(void *, int *, void **, int);
typedef int (*rwb_t)(void *, int *, void *const *, int);
typedef int (*rr_t)(void *, int, void *);
typedef int (*mr_t)(void *, uint64_t, void *, size_t);
typedef int (*hook_add_t)(void *, size_t *, int, void *, void *, uint64_t, uint64_t, ...);

static rrb_t p_rrb;
static rwb_t p_rwb;
static rr_t p_rr;
static hook_add_t p_hook_add;
static mr_t p_mr;
/* uc_reg_write, not the batch form: only the single form makes a PC write inside a hook take effect. */
typedef int (*rw_t)(void *, int, const void *);
static rw_t p_rw;
typedef int (*stop_t)(void *);
static stop_t p_stop;

int xm_init_stop(uintptr_t emu_stop)
{
    p_stop = (stop_t)emu_stop;
    return 0;
}

enum { XM_HOOK_INTR = 1, XM_HOOK_BLOCK = 8 };
enum { XM_REG_PC = 1, XM_REG_R0 = 2, XM_REG_R3 = 5, XM_REG_MSR = 77 };
enum { XM_MSR_IR = 1 << 5, XM_MSR_PR = 1 << 14, XM_MSR_EE = 1 << 15 };
#define XM_TRAMP_BASE 0xFFFFFFFFFFFF0000ull /* the machine's SPR trampolines: never interrupted */
static int regids[10];

int xm_init(uintptr_t rrb, uintptr_t rwb, uintptr_t rr, uintptr_t hook_add, uintptr_t mr)
{
    p_mr = (mr_t)mr;
    p_rrb = (rrb_t)rrb;
    p_rwb = (rwb_t)rwb;
    p_rr = (rr_t)rr;
    p_hook_add = (hook_add_t)hook_add;
    for (int i = 0; i < 10; i++)
        regids[i] = XM_REG_R3 + i;
    return 0;
}

static void xm_intr_hook(void *uc, uint32_t intno, void *user)
{
    struct xm_trap *t = (struct xm_trap *)user;
    void *ptrs[10];
    for (int i = 0; i < 10; i++)
        ptrs[i] = &t->r[i];
    t->intno = intno;
    t->nout = -1;
    p_rrb(uc, regids, ptrs, 10);
    p_rr(uc, XM_REG_PC, &t->pc);
    p_rr(uc, XM_REG_MSR, &t->msr);
    unsigned char b[4];
    if (!(t->msr & XM_MSR_IR) && t->pc >= 4 && t->pc <= t->ram_size) {
        const unsigned char *p = t->ram + t->pc - 4;
        t->insn = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
    } else if (t->pc >= 4 && p_mr(uc, t->pc - 4, b, 4) == 0)
        t->insn = ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
    else
        t->insn = 0;
    /* H_SET_SPRG0 (0x24) from supervisor state: the whole hcall is one store, so it never leaves C. */
    if (t->fast_sprg0 && intno == 8 && (t->insn == 0x44000022u || t->insn == 0x22000044u) &&
        !(t->msr & XM_MSR_PR) && t->r[0] == 0x24) {
        uint64_t rc = 0;
        t->sprg0 = t->r[1];
        p_rw(uc, XM_REG_R3, &rc);
        return;
    }
    xm_py_trap(t);
    if (t->nout > 0)
        p_rwb(uc, regids, (void *const *)ptrs, t->nout > 10 ? 10 : t->nout);
    if (t->tramp_entry) {
        /* The fast SPR trampoline (`mtspr spr,r0; ld r0,slot; ba return`): park r0, load the value. */
        uint64_t r0 = 0;
        p_rr(uc, XM_REG_R0, &r0);
        *t->slot = t->slot_le ? r0 : __builtin_bswap64(r0);
        p_rw(uc, XM_REG_R0, &t->tramp_val);
        p_rw(uc, XM_REG_PC, &t->tramp_entry);
        t->tramp_entry = 0;
    }
}

int xm_hook_trap(struct xm_trap *t)
{
    size_t hh = 0;
    return p_hook_add(t->uc, &hh, XM_HOOK_INTR, (void *)xm_intr_hook, t, (uint64_t)1, (uint64_t)0);
}

/* Counts instructions a block at a time (size / 4) and stops the core at the deadline: synchronous
   preemption that costs one C call per block, never emu_start(timeout=...). */
/* Instructions Unicorn gets wrong or dies on (timebase/decrementer reads frozen, SPURR/PURR/VTB fatal,
   SPRG0 kept by the machine): mfspr/mftb/mtspr of these SPRs. */
static int xm_served_insn(uint32_t w)
{
    uint32_t op = w & 0xFC0007FEu;
    if (op != 0x7C0002A6u && op != 0x7C0002E6u && op != 0x7C0003A6u)
        return 0;
    uint32_t spr = ((w >> 16) & 0x1F) | (((w >> 11) & 0x1F) << 5);
    if (op == 0x7C0003A6u)
        return spr == 22 || spr == 272;
    return spr == 268 || spr == 269 || spr == 22 || spr == 308 || spr == 309 || spr == 351 || spr == 849 ||
           spr == 272;
}

static int xm_served_known(struct xm_trap *t, uint64_t a)
{
    uint64_t i = (a >> 2) & (XM_SERVED_CAP - 1);
    for (;;) {
        if (t->served[i] == a)
            return 1;
        if (t->served[i] == 0)
            return 0;
        i = (i + 1) & (XM_SERVED_CAP - 1);
    }
}

static void xm_served_add(struct xm_trap *t, uint64_t a)
{
    if (t->served_n >= XM_SERVED_CAP / 2)
        return; /* full: Python keeps its own record; only the scan gets slower */
    uint64_t i = (a >> 2) & (XM_SERVED_CAP - 1);
    while (t->served[i] != 0 && t->served[i] != a)
        i = (i + 1) & (XM_SERVED_CAP - 1);
    if (t->served[i] == 0) {
        t->served[i] = a;
        t->served_n++;
    }
}

/* Scan a block before it first runs: a served instruction not hooked yet goes to Python, which hooks it and
   drops the block's translation; the PC write makes Unicorn translate the block again, with the hook. */
static int xm_scan_block(void *uc, struct xm_trap *t, uint64_t address, uint32_t size)
{
    if (address >= t->ram_size || address + size > t->ram_size)
        return 0;
    const unsigned char *p = t->ram + address;
    for (uint32_t off = 0; off + 4 <= size; off += 4) {
        const unsigned char *q = p + off;
        /* quick reject on bytes: primary opcode 31 and an XO ending in 0xa6/0xe6, in either byte order */
        if (!((q[0] & 0xFC) == 0x7C && (q[3] == 0xA6 || q[3] == 0xE6)) &&
            !((q[3] & 0xFC) == 0x7C && (q[0] == 0xA6 || q[0] == 0xE6)))
            continue;
        uint32_t be = ((uint32_t)q[0] << 24) | ((uint32_t)q[1] << 16) | ((uint32_t)q[2] << 8) | q[3];
        uint32_t le = __builtin_bswap32(be);
        if (!xm_served_insn(be) && !xm_served_insn(le))
            continue;
        uint64_t msr = 0; /* a candidate (rare): decode it in the byte order the core runs in */
        p_rr(uc, XM_REG_MSR, &msr);
        uint32_t w = (msr & 1) ? le : be;
        if (xm_served_insn(w) && !xm_served_known(t, address + off)) {
            t->serve_addr = address + off;
            t->serve_word = w;
            xm_py_serve(t);
            xm_served_add(t, address + off);
            p_rw(uc, XM_REG_PC, &address);
            return 1;
        }
    }
    return 0;
}

static void xm_block_hook(void *uc, uint64_t address, uint32_t size, void *user)
{
    struct xm_trap *t = (struct xm_trap *)user;
    uint64_t n = size >> 2;
    if (t->served && xm_scan_block(uc, t, address, size))
        return;
    if ((address < t->code_lo || address >= t->code_hi) && address < XM_TRAMP_BASE)
        t->exec_outside++;
    /* A stop requested here takes effect before this block runs: count it only if it will run. */
    /* ...and never inside a machine trampoline: its scratch registers live in its slots until it lands. */
    if (t->icount >= t->deadline && address < XM_TRAMP_BASE) {
        p_stop(uc);
        return;
    }
    if (t->irq_waiting && address < XM_TRAMP_BASE) {
        uint64_t msr = 0;
        p_rr(uc, XM_REG_MSR, &msr);
        if (msr & XM_MSR_EE) {
            /* Deliver here, without leaving emu_start: Python redirects PC to the interrupt (a PC write
               in a block hook replaces the block, which has not run and is not counted). */
            t->pc = address;
            t->msr = msr;
            if (!(t->irqx && xm_irq_fast(uc, t, address, msr)))
                xm_py_irq(t);
            return;
        }
    }
    t->icount += n;
}

/* Register access without the binding's ctypes layers (~8 us there, ~0.2 us here). */
uint64_t xm_reg_read(void *uc, int regid)
{
    uint64_t v = 0;
    p_rr(uc, regid, &v);
    return v;
}


int xm_init_rw(uintptr_t reg_write)
{
    p_rw = (rw_t)reg_write;
    return 0;
}

int xm_reg_write(void *uc, int regid, uint64_t value)
{
    return p_rw(uc, regid, &value);
}

int xm_reg_write_many(void *uc, int *regids, uint64_t *values, int n)
{
    void *vals[64];
    if (n > 64)
        n = 64;
    for (int i = 0; i < n; i++)
        vals[i] = &values[i];
    return p_rwb(uc, regids, (void *const *)vals, n);
}

/* Device-window pages: one C hook for loads and stores, one Python call each. A load's value is stored
   big-endian into the page before the access completes (device registers are big-endian). */
enum { XM_HOOK_MEM_READ = 1024, XM_HOOK_MEM_WRITE = 2048, XM_MEM_READ = 16, XM_MEM_WRITE = 17 };

static void xm_mmio_hook(void *uc, int type, uint64_t addr, int size, int64_t value, void *user)
{
    struct xm_mmio *m = (struct xm_mmio *)user;
    (void)uc;
    if (size <= 0 || size > 8 || addr < m->base || addr - m->base + (uint64_t)size > m->size)
        return;
    if (type == XM_MEM_READ) {
        uint64_t v;
        if (!(m->xive && xm_xive_read(m, addr - m->xbase, size, &v)))
            v = xm_py_mmio_read(m, addr, size);
        unsigned char *p = m->buf + (addr - m->base);
        for (int i = size - 1; i >= 0; i--) {
            p[i] = (unsigned char)v;
            v >>= 8;
        }
    } else if (type == XM_MEM_WRITE) {
        uint64_t v = (uint64_t)value;
        if (size < 8)
            v &= (1ull << (8 * size)) - 1;
        if (!(m->xive && xm_xive_write(m, addr - m->xbase, size, v)))
            xm_py_mmio_write(m, addr, size, v);
    }
}

int xm_hook_mmio(void *uc, struct xm_mmio *m, size_t *handle)
{
    return p_hook_add(uc, handle, XM_HOOK_MEM_READ | XM_HOOK_MEM_WRITE, (void *)xm_mmio_hook, m, m->base,
                      m->base + m->size - 1);
}

int xm_hook_blocks(struct xm_trap *t)
{
    size_t hh = 0;
    return p_hook_add(t->uc, &hh, XM_HOOK_BLOCK, (void *)xm_block_hook, t, (uint64_t)1, (uint64_t)0);
}


/* ==================================================================================================== */
/* XIVE fast path. The common ESB and TIMA operations of the emulated sPAPR XIVE, served here from the    */
/* Python model's own storage (XiveSource.status/lsi, XiveRouter.eat/endt, XiveTCTX.regs/levels: flat     */
/* buffers, one source of truth), and the external interrupt delivered without leaving the block hook.   */
/* Each function mirrors one Python method line for line (named in its comment); anything else returns 0 */
/* before changing state, and the access goes to the Python model. Layout constants: xive.md 4.4, checked */
/* against intc/xive/regs.py by machine/xive_fast.py.                                                    */

struct xm_irqx {
    uint8_t irq;
    uint8_t dec_pending;
    uint8_t fast;
    uint8_t redirect;
    uint8_t *ile;
    uint64_t entry[2];
};
struct xm_xcpu {
    unsigned char *tima;
    unsigned char *level;
    struct xm_trap *trap;
    struct xm_irqx *irqx;
};
struct xm_xive {
    void *owner;
    uint32_t enabled;
    uint32_t nr_irqs, nr_ends, ncpus;
    uint32_t esb_shift, two_page;
    uint64_t mgmt_bit;
    uint32_t nvt_base, nvt_count;
    unsigned char *status;
    unsigned char *lsi;
    uint64_t *eat;
    uint32_t *endt;
    unsigned char *ram;
    uint64_t ram_size;
    unsigned char *dirty;
    unsigned char *dirty_any;
    struct xm_xcpu *cpus;
};
static void xm_py_line(struct xm_xive *, uint32_t, uint32_t);

#define XM_EAS_VALID (1ull << 63)
#define XM_EAS_MASKED (1ull << 31)
#define XM_W0_VALID (1u << 31)
#define XM_W0_ENQUEUE (1u << 30)
#define XM_W0_UCOND_NOTIFY (1u << 29)
#define XM_W0_SILENT_ESCALATE (1u << 24)
#define XM_W1_GENERATION (1u << 22)
#define XM_W1_PAGE_OFF 0x3FFFFFu
#define XM_W6_FORMAT (1u << 23)
#define XM_QW1 0x10 /* OS ring: NSR +0, CPPR +1, IPB +2, PIPR +7, word2 (CAM) +8 */
#define XM_NSR_EO 0x80
#define XM_SRR1_MSR_MASK 0xFFFFFFFF87C0FFFFull
#define XM_MSR_SF (1ull << 63)
#define XM_MSR_HV (1ull << 60)
#define XM_MSR_ME (1ull << 12)
#define XM_MSR_LE 1ull
#define XM_VEC_EXTERNAL 0x500
#define XM_JUMP_SLOTS 0x40 /* vcpu.JUMP_SLOTS: the jump trampoline's register slots, from the data slot */
enum { XM_REG_R10 = XM_REG_R0 + 10 };

static const uint8_t xm_trigger_next[4] = {2, 1, 3, 3}; /* esb.TRIGGER_NEXT */
static const uint8_t xm_eoi_next[4] = {0, 1, 0, 2};     /* esb.EOI_NEXT */

static uint8_t xm_prio_to_ipb(uint32_t p) { return p <= 7 ? (uint8_t)(0x80 >> p) : 0; }

static uint8_t xm_ipb_to_pipr(uint8_t ipb)
{
    if (!ipb)
        return 0xFF;
    return (uint8_t)(__builtin_clz((unsigned)ipb) - 24);
}

static int xm_size_ok(int size) { return size == 1 || size == 2 || size == 4 || size == 8; }

/* SpaprMachine.irq_line for the vCPU whose access this is (running, so no wake and no slice cut), else
   Python. */
static void xm_line(struct xm_xive *x, uint32_t self, uint32_t cpu, int level)
{
    struct xm_xcpu *c = &x->cpus[cpu];
    if (cpu == self || !level) {
        c->irqx->irq = (uint8_t)level;
        c->trap->irq_waiting = level ? 1 : (c->irqx->dec_pending ? 1 : 0);
        return;
    }
    xm_py_line(x, cpu, (uint32_t)level);
}

/* XiveTCTX._set_os_output */
static void xm_set_os_output(struct xm_xive *x, uint32_t self, uint32_t cpu, int level)
{
    struct xm_xcpu *c = &x->cpus[cpu];
    if (c->level[0] != (uint8_t)level) {
        c->level[0] = (uint8_t)level;
        xm_line(x, self, cpu, level);
    }
}

/* XiveTCTX.notify(TM_QW1_OS) */
static void xm_os_notify(struct xm_xive *x, uint32_t self, uint32_t cpu)
{
    unsigned char *r = x->cpus[cpu].tima;
    if (r[XM_QW1 + 7] < r[XM_QW1 + 1]) {
        r[XM_QW1] |= XM_NSR_EO;
        xm_set_os_output(x, self, cpu, 1);
    }
}

/* XiveTCTX.ipb_update(TM_QW1_OS, prio) (= present_os) */
static void xm_os_present(struct xm_xive *x, uint32_t self, uint32_t cpu, uint32_t prio)
{
    unsigned char *r = x->cpus[cpu].tima;
    uint8_t ipb = r[XM_QW1 + 2] | xm_prio_to_ipb(prio & 0xFF);
    r[XM_QW1 + 2] = ipb;
    r[XM_QW1 + 7] = xm_ipb_to_pipr(ipb);
    xm_os_notify(x, self, cpu);
}

static uint32_t xm_os_cam(const unsigned char *r)
{
    const unsigned char *p = r + XM_QW1 + 8;
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* XivePresenter.notify for format 0 with the sPAPR cpu hint; the scan is XivePresenter.match. */
static int xm_present(struct xm_xive *x, uint32_t self, uint32_t blk, uint32_t idx, uint32_t prio)
{
    uint32_t want = 0x80000000u | (blk << 19) | idx;
    int64_t hint = (int64_t)idx - (int64_t)x->nvt_base;
    int64_t found = -1;
    if (hint >= 0 && hint < (int64_t)x->ncpus && x->cpus[hint].tima && xm_os_cam(x->cpus[hint].tima) == want)
        found = hint;
    else {
        for (uint32_t i = 0; i < x->ncpus; i++) {
            if (x->cpus[i].tima && xm_os_cam(x->cpus[i].tima) == want) {
                if (found >= 0)
                    return 0; /* several threads hold the NVT: a guest error, nobody is notified */
                found = i;
            }
        }
        if (found < 0)
            return 0;
    }
    xm_os_present(x, self, (uint32_t)found, prio);
    return 1;
}

/* XiveRouter.end_notify (the notes it would trace are no-ops here: the fast path runs untraced) */
static void xm_end_notify(struct xm_xive *x, uint32_t self, uint32_t end_idx, uint32_t data)
{
    if (end_idx >= x->nr_ends)
        return;
    uint32_t *w = x->endt + ((uint64_t)end_idx << 3);
    uint32_t w0 = w[0];
    if (!(w0 & XM_W0_VALID))
        return;
    if (w0 & XM_W0_ENQUEUE) {
        uint32_t w1 = w[1];
        uint32_t idx = w1 & XM_W1_PAGE_OFF;
        uint64_t addr = ((((uint64_t)w[2] & 0x0FFFFFFFu) << 32) | w[3]) + ((uint64_t)idx << 2);
        uint32_t value = ((w1 & XM_W1_GENERATION) ? 0x80000000u : 0) | (data & 0x7FFFFFFFu);
        if (addr + 4 <= x->ram_size) {
            unsigned char *p = x->ram + addr;
            p[0] = (unsigned char)(value >> 24);
            p[1] = (unsigned char)(value >> 16);
            p[2] = (unsigned char)(value >> 8);
            p[3] = (unsigned char)value;
            uint64_t page = addr >> 12;
            x->dirty[page >> 3] |= (unsigned char)(1u << (page & 7));
            *x->dirty_any = 1;
            idx = (idx + 1) & ((1u << (((w0 >> 16) & 0xF) + 10)) - 1);
            if (idx == 0)
                w1 ^= XM_W1_GENERATION;
            w[1] = (w1 & ~XM_W1_PAGE_OFF) | idx;
        }
    }
    if (w0 & XM_W0_SILENT_ESCALATE)
        return;
    uint32_t w6 = w[6];
    int fmt = (w6 & XM_W6_FORMAT) != 0;
    uint32_t prio = (w[7] >> 16) & 0xFF;
    if (!fmt && prio == 0xFF)
        return;
    if (!(w0 & XM_W0_UCOND_NOTIFY)) {
        uint32_t w1 = w[1];
        uint32_t pq = (w1 >> 30) & 3;
        uint32_t nw = xm_trigger_next[pq];
        if (nw != pq)
            w[1] = (w1 & ~(3u << 30)) | (nw << 30);
        if (pq != 0)
            return;
    }
    uint32_t nvt_blk = (w6 >> 19) & 0xF, nvt_idx = w6 & 0x7FFFF;
    if (nvt_blk != 0 || nvt_idx < x->nvt_base || nvt_idx >= x->nvt_base + x->nvt_count)
        return;
    if (fmt)
        return; /* logical server ENDs are not supported: no thread notified, escalation not modelled */
    xm_present(x, self, nvt_blk, nvt_idx, prio);
}

/* XiveRouter.notify */
static void xm_route(struct xm_xive *x, uint32_t self, uint64_t lisn)
{
    uint64_t eas = x->eat[lisn];
    if (!(eas & XM_EAS_VALID) || (eas & XM_EAS_MASKED))
        return;
    xm_end_notify(x, self, (uint32_t)((eas >> 32) & 0xFFFFFF), (uint32_t)(eas & 0x7FFFFFFF));
}

/* XiveSource.esb_read: EOI, GET, SET_PQ on the management page. */
static int xm_esb_read(struct xm_xive *x, uint32_t self, uint64_t off, int size, uint64_t *out)
{
    uint64_t srcno = off >> x->esb_shift;
    if (srcno >= x->nr_irqs || !xm_size_ok(size) || (x->two_page && !(off & x->mgmt_bit)))
        return 0;
    uint32_t op = off & 0xFFF;
    uint8_t s = x->status[srcno];
    if (op < 0x800) { /* XiveSource.eoi */
        uint8_t pq = s & 3, nw = xm_eoi_next[pq];
        int fwd = pq == 3;
        if ((s & 4) && x->lsi[srcno]) {
            fwd = nw == 0;
            if (fwd)
                nw = 2;
        }
        x->status[srcno] = (uint8_t)((s & 0xFC) | nw);
        if (fwd)
            xm_route(x, self, srcno);
        *out = fwd ? 1 : 0;
        return 1;
    }
    if (op >= 0xC00)
        x->status[srcno] = (uint8_t)((s & 0xFC) | ((op >> 8) & 3));
    *out = s & 3;
    return 1;
}

/* XiveSource.esb_write: trigger (either page), inject, SET_PQ; StoreEOI goes to Python. */
static int xm_esb_write(struct xm_xive *x, uint32_t self, uint64_t off, int size)
{
    uint64_t srcno = off >> x->esb_shift;
    if (srcno >= x->nr_irqs || !xm_size_ok(size))
        return 0;
    uint32_t op = off & 0xFFF;
    int trigger = (x->two_page && !(off & x->mgmt_bit)) || op < 0x400;
    if (!trigger && op < 0x800)
        return 0;
    uint8_t s = x->status[srcno];
    int fwd;
    if (trigger) {
        x->status[srcno] = (uint8_t)((s & 0xFC) | xm_trigger_next[s & 3]);
        fwd = (s & 3) == 0;
    } else if (op < 0xC00) {
        fwd = 1; /* XIVE_ESB_INJECT */
    } else {
        x->status[srcno] = (uint8_t)((s & 0xFC) | ((op >> 8) & 3));
        fwd = 0;
    }
    if (fwd)
        xm_route(x, self, srcno);
    return 1;
}

/* XiveTCTX.tm_read: ACK_OS_REG (XiveTCTX.accept on the OS ring); raw and HV reads go to Python. */
static int xm_tima_read(struct xm_xive *x, uint32_t cpu, uint64_t off, int size, uint64_t *out)
{
    unsigned char *r = x->cpus[cpu].tima;
    if (!r || size != 2 || (off & 0xFFF) != 0x810 || ((off >> 16) & 3) > 2)
        return 0;
    uint8_t nsr = r[XM_QW1];
    xm_set_os_output(x, cpu, cpu, 0);
    if (nsr & XM_NSR_EO) {
        uint8_t cppr = r[XM_QW1 + 7];
        r[XM_QW1 + 1] = cppr;
        uint8_t ipb = r[XM_QW1 + 2] & (uint8_t)~xm_prio_to_ipb(cppr);
        r[XM_QW1 + 2] = ipb;
        r[XM_QW1 + 7] = xm_ipb_to_pipr(ipb);
        r[XM_QW1] = nsr & (uint8_t)~XM_NSR_EO;
    }
    *out = (((uint64_t)nsr << 8) | r[XM_QW1 + 1]) & 0xFFFF;
    return 1;
}

/* XiveTCTX.tm_write: OS CPPR (set_cppr) and SET_OS_PENDING (ipb_update); the rest goes to Python. */
static int xm_tima_write(struct xm_xive *x, uint32_t cpu, uint64_t off, int size, uint64_t value)
{
    unsigned char *r = x->cpus[cpu].tima;
    uint32_t op = off & 0xFFF;
    if (!r || size != 1 || ((off >> 16) & 3) > 2)
        return 0;
    if (op == XM_QW1 + 1) {
        uint32_t cppr = value & 0xFF;
        if (cppr > 7)
            cppr = 0xFF;
        r[XM_QW1 + 1] = (uint8_t)cppr;
        if (r[XM_QW1 + 7] < cppr)
            xm_os_notify(x, cpu, cpu);
        else {
            r[XM_QW1] &= (uint8_t)~XM_NSR_EO;
            xm_set_os_output(x, cpu, cpu, 0);
        }
        return 1;
    }
    if (op == 0x812) {
        xm_os_present(x, cpu, cpu, value & 0xFF);
        return 1;
    }
    return 0;
}

static int xm_xive_read(struct xm_mmio *m, uint64_t off, int size, uint64_t *out)
{
    struct xm_xive *x = m->xive;
    if (!x->enabled)
        return 0;
    if (m->xkind == 1)
        return xm_esb_read(x, m->xcpu, off, size, out);
    if (m->xkind == 2)
        return xm_tima_read(x, m->xcpu, off, size, out);
    return 0;
}

static int xm_xive_write(struct xm_mmio *m, uint64_t off, int size, uint64_t value)
{
    struct xm_xive *x = m->xive;
    if (!x->enabled)
        return 0;
    if (m->xkind == 1)
        return xm_esb_write(x, m->xcpu, off, size);
    if (m->xkind == 2)
        return xm_tima_write(x, m->xcpu, off, size, value);
    return 0;
}

/* What xm_mmio_hook does with an access before it would call Python: 1 = served here (a load's value in
   *out). For the differential tests, which drive the C and the Python model with the same accesses. */
int xm_xive_access(struct xm_mmio *m, uint64_t addr, int size, int is_write, uint64_t value, uint64_t *out)
{
    if (!m->xive || size <= 0 || size > 8 || addr < m->base || addr - m->base + (uint64_t)size > m->size)
        return 0;
    if (is_write) {
        if (size < 8)
            value &= (1ull << (8 * size)) - 1;
        return xm_xive_write(m, addr - m->xbase, size, value);
    }
    return xm_xive_read(m, addr - m->xbase, size, out);
}

/* scheduler.deliver_in_run -> traps.deliver -> exceptions.deliver -> VCpu.write_sprs_and_jump for the
   external interrupt: SRR0/SRR1 into r0/r10 (their values parked in the jump slots), the interrupt MSR,
   PC = the prebuilt `mtspr SRR0,r0; mtspr SRR1,r10; ld r0; ld r10; ba 0x500` trampoline. Returns 0 (Python
   delivers) for the decrementer, a missing trampoline, or a vector with no handler (a diagnostic). */
static int xm_irq_fast(void *uc, struct xm_trap *t, uint64_t pc, uint64_t msr)
{
    struct xm_irqx *q = t->irqx;
    if (!q->fast || q->redirect || !q->irq)
        return 0;
    int le = *q->ile ? 1 : 0;
    uint64_t entry = q->entry[le];
    if (!entry || t->ram_size < XM_VEC_EXTERNAL + 4)
        return 0;
    const unsigned char *v = t->ram + XM_VEC_EXTERNAL;
    if (!(v[0] | v[1] | v[2] | v[3]))
        return 0;
    uint64_t srr1 = msr & XM_SRR1_MSR_MASK;
    uint64_t nmsr = (msr & (XM_MSR_ME | XM_MSR_HV)) | XM_MSR_SF | (le ? XM_MSR_LE : 0);
    uint64_t r0 = 0, r10 = 0;
    p_rr(uc, XM_REG_R0, &r0);
    p_rr(uc, XM_REG_R10, &r10);
    uint64_t *slots = (uint64_t *)((unsigned char *)t->slot + XM_JUMP_SLOTS);
    slots[0] = le ? r0 : __builtin_bswap64(r0);
    slots[1] = le ? r10 : __builtin_bswap64(r10);
    p_rw(uc, XM_REG_R0, &pc);
    p_rw(uc, XM_REG_R10, &srr1);
    p_rw(uc, XM_REG_MSR, &nmsr);
    p_rw(uc, XM_REG_PC, &entry);
    t->irq_waiting = 1; /* the line is a level: still asserted until the guest acknowledges */
    return 1;
}
"""

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source("xive_machine.cpu._fast", SOURCE)

if __name__ == "__main__":
    ffibuilder.compile(verbose=False)
