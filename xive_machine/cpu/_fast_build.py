"""cffi API-mode build of the vCPU fast path (compiled at install time by setuptools' `cffi_modules`).

Why C: through the Python binding an hcall costs ~4 us (hook wrapper + one libffi call per register);
here the `sc` hook reads r3..r12 in C, makes exactly one Python call, and writes back r3.. in C. The
module does not link against libunicorn: the Python side hands it the binding's own function pointers.
"""

from cffi import FFI

CDEF = """
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
};
extern "Python" uint64_t xm_py_mmio_read(struct xm_mmio *, uint64_t, int);
extern "Python" void xm_py_mmio_write(struct xm_mmio *, uint64_t, int, uint64_t);
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
};
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
        uint64_t v = xm_py_mmio_read(m, addr, size);
        unsigned char *p = m->buf + (addr - m->base);
        for (int i = size - 1; i >= 0; i--) {
            p[i] = (unsigned char)v;
            v >>= 8;
        }
    } else if (type == XM_MEM_WRITE) {
        uint64_t v = (uint64_t)value;
        if (size < 8)
            v &= (1ull << (8 * size)) - 1;
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
"""

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source("xive_machine.cpu._fast", SOURCE)

if __name__ == "__main__":
    ffibuilder.compile(verbose=False)
