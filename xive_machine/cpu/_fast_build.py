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
    struct xm_mmu *mmu;        /* the guest MMU (radix), shared by the TLB-fill hook and the block scan */
    struct xm_hist *hist;      /* the last hcalls, for the report when a guest panics or runs wild */
    struct xm_irqx *irqx;      /* interrupt state the XIVE fast path shares (NULL: always Python) */
};
#define XM_HIST 32
struct xm_hist {
    uint64_t *seq;       /* machine-wide sequence number, shared by every vCPU's history */
    uint64_t n;          /* entries written (the next one goes to n % XM_HIST) */
    uint64_t num[XM_HIST], op[XM_HIST], a0[XM_HIST], a1[XM_HIST], a2[XM_HIST], a3[XM_HIST], pc[XM_HIST];
    int64_t rc[XM_HIST];
};
struct xm_mmu {
    unsigned char *ram;  /* guest RAM, for the table walk */
    uint64_t ram_size;
    uint64_t prtb;       /* process table (H_REGISTER_PROC_TBL), 0 = none: translation-on accesses fault */
    uint64_t prtb_entries;
    uint64_t pidr;       /* PIDR as the guest wrote it (the machine serves mtspr/mfspr PIDR) */
    uint64_t fills, walks, faults, flushes; /* counters for the benchmark and diagnostics */
    uint64_t fault_ea;   /* the last failed translation: page EA, access (16 read, 17 write, 18 fetch), */
    uint32_t fault_type; /* DSISR-style cause bits, and whether it was a segment (quadrant/range) fault */
    uint32_t fault_cause;
    uint32_t fault_segment;
    uint32_t faulted;    /* set by a failed fill; the machine clears it when it delivers the interrupt */
    uint64_t ident_lo[4], ident_hi[4]; /* machine pages mapped 1:1 whatever the MSR (stubs, trampolines) */
    uint64_t c_tlbie;    /* tlbie & co. served in the trap hook */
    uint64_t *scanned;   /* blocks the scan found clean: XM_SCAN_CAP (key, generation) pairs, key 0 = empty */
    uint64_t scanned_n;
    uint64_t user_gen;   /* user-space blocks are trusted for one generation: a tlbie or a new PID ends it */
    uint64_t code_gen;   /* every block's record ends with it: RAM rewritten behind Unicorn (reset, restore) */
    uint64_t scans;      /* block scans done (each block once per generation, not once per execution) */
    uint64_t flush_pending; /* a tlbie is not complete before the next ptesync: the flush waits for it */
    uint64_t deferred;   /* tlbie & co. whose flush was merged into a later one */
    uint64_t fills_by[3];/* fills for loads, stores, fetches */
    uint64_t spin_yield; /* set by the scheduler: a priority hint ends the slice (another vCPU can run) */
    uint64_t mix_page[1024]; /* pages seen fetched and accessed as data: they get both kinds of access at */
    uint8_t mix_kind[1024];  /* once (1 fetched, 2 data, 3 both), or every switch would refill the TLB */
    uint64_t virt_seen;  /* a TLB fill ran with MSR[IR] or [DR] set (sticky): until then every block runs
                            in real mode, and the block scan need not read the MSR (set by xm_guard_fill) */
};
int xm_hook_sync_site(struct xm_trap *t, uint64_t addr, size_t *handle);
int xm_hook_hmt_site(struct xm_trap *t, uint64_t addr, size_t *handle);
void xm_flush_pending(struct xm_trap *t);
void xm_scan_forget(struct xm_trap *t);
#define XM_SCAN_CAP 65536
struct xm_time {
    int64_t ins_base;    /* machine instructions retired = ins_base + this vCPU's icount (set per slice) */
    uint64_t ipu;        /* deterministic clock: instructions per virtual microsecond */
    uint64_t skip_ns;    /* idle time skipped (all vCPUs ceded) */
    uint64_t reads;      /* timebase reads served in C */
};
struct xm_site {
    struct xm_trap *t;
    struct xm_time *time;
    uint32_t kind;       /* 0: whole timebase (mftb, TBL, PURR, SPURR, VTB), 1: upper 32 bits (TBU) */
    uint32_t gpr;
    uint32_t word;       /* the instruction's bytes as first served (0: not yet): a patched site runs as is */
    uint32_t pad;
};
int xm_hook_time_site(struct xm_trap *t, struct xm_site *site, uint64_t addr, size_t *handle);
int xm_hook_tlb(struct xm_trap *t);
uint64_t xm_bench_walks(struct xm_trap *t, uint64_t ea, uint64_t n);
int xm_translate(struct xm_trap *t, uint64_t ea, int access, uint64_t *pa);
void xm_tlb_flush(struct xm_trap *t);
int xm_init_ctl(uintptr_t ctl);
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
/* --- Store guard (see the section at the end of SOURCE) --- */
#define XM_GUARD_N 4
struct xm_guard {
    struct xm_trap *t;   /* the vCPU whose TLB fills this guards */
    uint64_t ram_size;   /* guest RAM is [0, ram_size) */
    uint64_t granule;    /* a code page joins the guard with the aligned run of this many bytes around it */
    uint64_t lo[XM_GUARD_N], hi[XM_GUARD_N]; /* guarded RAM: sorted, disjoint [lo, hi) ranges */
    size_t hook[XM_GUARD_N];                 /* their (never firing) hooks */
    size_t outside;                          /* the hook over everything above RAM */
    uint32_t n;
    uint32_t failed;     /* a hook could not be added: the whole of RAM stays guarded */
    uint64_t grows;      /* times the guard grew (each one a TLB flush) */
};
int xm_init_guard(uintptr_t hook_del);
int xm_unhook(void *uc, size_t hook);
int xm_hook_tlb_guarded(struct xm_guard *g);
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
    struct xm_mmu *mmu;
    struct xm_hist *hist;
    struct xm_irqx *irqx;
};
#define XM_HIST 32
struct xm_hist {
    uint64_t *seq;
    uint64_t n;
    uint64_t num[XM_HIST], op[XM_HIST], a0[XM_HIST], a1[XM_HIST], a2[XM_HIST], a3[XM_HIST], pc[XM_HIST];
    int64_t rc[XM_HIST];
};
struct xm_mmu {
    unsigned char *ram;
    uint64_t ram_size;
    uint64_t prtb;
    uint64_t prtb_entries;
    uint64_t pidr;
    uint64_t fills, walks, faults, flushes;
    uint64_t fault_ea;
    uint32_t fault_type;
    uint32_t fault_cause;
    uint32_t fault_segment;
    uint32_t faulted;
    uint64_t ident_lo[4], ident_hi[4];
    uint64_t c_tlbie;
    uint64_t *scanned;
    uint64_t scanned_n;
    uint64_t user_gen;
    uint64_t code_gen;
    uint64_t scans;
    uint64_t flush_pending;
    uint64_t deferred;
    uint64_t fills_by[3];
    uint64_t spin_yield;
    uint64_t mix_page[1024];
    uint8_t mix_kind[1024];
    uint64_t virt_seen;
};
#define XM_SCAN_CAP 65536
struct xm_time {
    int64_t ins_base;
    uint64_t ipu;
    uint64_t skip_ns;
    uint64_t reads;
};
struct xm_site {
    struct xm_trap *t;
    struct xm_time *time;
    uint32_t kind;
    uint32_t gpr;
    uint32_t word;
    uint32_t pad;
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
int xm_translate(struct xm_trap *t, uint64_t ea, int access, uint64_t *pa);
void xm_tlb_flush(struct xm_trap *t);
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
    uint64_t ipa = 0;
    if (t->pc >= 4 && t->mmu && xm_translate(t, t->pc - 4, 18, &ipa) == 0 && ipa + 4 <= t->ram_size) {
        const unsigned char *p = t->ram + ipa;
        t->insn = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
    } else if (t->pc >= 4 && p_mr(uc, t->pc - 4, b, 4) == 0)
        t->insn = ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
    else
        t->insn = 0;
    /* tlbie, tlbiel, tlbsync, slbia from supervisor state: privileged for an LPAR guest in Unicorn (GTSE cannot
       be set); served as a whole-TLB flush without leaving C (a kernel issues them by the hundred thousand). */
    if ((intno == 6 || intno == 96) && !(t->msr & XM_MSR_PR) && t->mmu) {
        uint32_t w = (t->msr & 1) ? __builtin_bswap32(t->insn) : t->insn;
        uint32_t x = w & 0xFC0007FEu;
        if (x == 0x7C000264u || x == 0x7C000224u || x == 0x7C00046Cu || x == 0x7C0003E4u) {
            /* An invalidation is only complete at the next ptesync (ISA: tlbie; eieio; tlbsync; ptesync, or
               tlbiel; ptesync), so the flush waits for it and a burst of them costs one flush and one refill
               (Linux issues four for each kernel text patch). ptesync is served (xm_sync_hook). */
            t->mmu->c_tlbie++;
            if (t->mmu->flush_pending)
                t->mmu->deferred++;
            t->mmu->flush_pending = 1;
            p_rw(uc, XM_REG_PC, &t->pc);
            return;
        }
    }
    struct xm_hist *h = t->hist;
    uint64_t slot = 0;
    int is_hcall = intno == 8 && (t->insn == 0x44000022u || t->insn == 0x22000044u);
    if (h && is_hcall) { /* every hcall, before it is served: what a post-mortem wants to see */
        slot = h->n++ % XM_HIST;
        h->num[slot] = (*h->seq)++;
        h->op[slot] = t->r[0];
        h->a0[slot] = t->r[1];
        h->a1[slot] = t->r[2];
        h->a2[slot] = t->r[3];
        h->a3[slot] = t->r[4];
        h->pc[slot] = t->pc - 4;
        h->rc[slot] = 0;
    }
    /* H_SET_SPRG0 (0x24) from supervisor state: the whole hcall is one store, so it never leaves C. */
    if (t->fast_sprg0 && intno == 8 && (t->insn == 0x44000022u || t->insn == 0x22000044u) &&
        !(t->msr & XM_MSR_PR) && t->r[0] == 0x24) {
        uint64_t rc = 0;
        t->sprg0 = t->r[1];
        p_rw(uc, XM_REG_R3, &rc);
        return;
    }
    xm_py_trap(t);
    if (t->nout > 0) {
        p_rwb(uc, regids, (void *const *)ptrs, t->nout > 10 ? 10 : t->nout);
        if (h && is_hcall)
            h->rc[slot] = (int64_t)t->r[0];
    }
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
   SPRG0 kept by the machine, PIDR needed by the MMU walker, PVR: Unicorn's core is a POWER10 while the
   machine presents a POWER9): mfspr/mftb/mtspr of these SPRs. */
static inline int xm_is_hmt(uint32_t w)
{
    /* or rs,rs,rs with rs != 0: a thread-priority hint (HMT_low/medium ..., cpu_relax, spin loops). QEMU's TCG
       pauses the vCPU on it, which in Unicorn ends emu_start: ~10 us back in the machine per spin iteration. */
    uint32_t rs = (w >> 21) & 31;
    return (w & 0xFC0007FFu) == 0x7C000378u && rs != 0 && ((w >> 16) & 31) == rs && ((w >> 11) & 31) == rs;
}

static int xm_served_insn(uint32_t w)
{
    if (w == 0x7C4004ACu) /* ptesync: completes a deferred tlbie */
        return 1;
    if (xm_is_hmt(w))
        return 1;
    uint32_t op = w & 0xFC0007FEu;
    if (op != 0x7C0002A6u && op != 0x7C0002E6u && op != 0x7C0003A6u)
        return 0;
    uint32_t spr = ((w >> 16) & 0x1F) | (((w >> 11) & 0x1F) << 5);
    if (op == 0x7C0003A6u)
        return spr == 22 || spr == 272 || spr == 48;
    return spr == 268 || spr == 269 || spr == 22 || spr == 308 || spr == 309 || spr == 351 || spr == 849 ||
           spr == 272 || spr == 48 || spr == 287;
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
    uint64_t pbase = 0;
    uint64_t page = 1; /* no page translated yet (a real page address is 4K-aligned) */
    for (uint32_t off = 0; off + 4 <= size; off += 4) {
        uint64_t ea = address + off;
        if ((ea & ~0xFFFull) != page) { /* a block may span two pages: translate each */
            uint64_t pa = 0;
            page = ea & ~0xFFFull;
            if (t->mmu ? xm_translate(t, page, 18, &pa) != 0 : (pa = page, 0))
                return 0;
            if (pa + 0x1000 > t->ram_size)
                return 0;
            pbase = pa;
        }
        const unsigned char *q = t->ram + pbase + (ea & 0xFFF);
        /* quick reject on bytes: primary opcode 31 and an XO ending in 0xa6/0xe6 (mfspr, mtspr, mftb), 0xac
           (ptesync) or 0x78 (or: priority hints), in either byte order */
        if (!((q[0] & 0xFC) == 0x7C && (q[3] == 0xA6 || q[3] == 0xE6 || q[3] == 0xAC || q[3] == 0x78)) &&
            !((q[3] & 0xFC) == 0x7C && (q[0] == 0xA6 || q[0] == 0xE6 || q[0] == 0xAC || q[0] == 0x78)))
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

static void xm_scan_clear(struct xm_mmu *mm)
{
    __builtin_memset(mm->scanned, 0, sizeof(uint64_t) * 2 * XM_SCAN_CAP);
    mm->scanned_n = 0;
}

void xm_scan_forget(struct xm_trap *t)
{
    if (t->mmu && t->mmu->scanned)
        t->mmu->code_gen++; /* O(1): older records no longer match (a reset must stay cheap) */
}

/* Blocks found clean are remembered, so a block is scanned once, not on every execution (a kernel runs the
   same blocks millions of times). Kernel and real-mode blocks stay trusted (their code is the kernel image,
   patched only in ways that never create a served instruction); user-space blocks only for the current
   generation, which a tlbie or a PID change ends (another process, or a new mapping, may be there). */
static int xm_scan_seen(void *uc, struct xm_trap *t, uint64_t address, uint32_t size, uint64_t *key_out,
                        uint64_t *gen_out)
{
    struct xm_mmu *mm = t->mmu;
    if (!mm || !mm->scanned)
        return 0;
    uint64_t cls, gen = mm->code_gen << 32;
    if (address >= 0xC000000000000000ull)
        cls = 2;
    else {
        uint64_t msr = 0;
        if (mm->virt_seen) /* else no translated code can exist yet: real mode without asking (~4 ns a block) */
            p_rr(uc, XM_REG_MSR, &msr);
        if (msr & XM_MSR_IR) {
            cls = 3;
            gen |= mm->user_gen & 0xFFFFFFFFull;
        } else
            cls = 1;
    }
    uint64_t key = (address ^ ((uint64_t)size << 50)) | cls;
    uint64_t i = ((key >> 2) * 0x9E3779B97F4A7C15ull) >> 48; /* XM_SCAN_CAP = 2^16 slots */
    for (;;) {
        uint64_t k = mm->scanned[2 * i];
        if (k == 0)
            break;
        if (k == key && mm->scanned[2 * i + 1] == gen)
            return 1;
        i = (i + 1) & (XM_SCAN_CAP - 1);
    }
    *key_out = key;
    *gen_out = gen;
    return 0;
}

static void xm_scan_remember(struct xm_mmu *mm, uint64_t key, uint64_t gen)
{
    if (mm->scanned_n >= XM_SCAN_CAP / 2)
        xm_scan_clear(mm);
    uint64_t i = ((key >> 2) * 0x9E3779B97F4A7C15ull) >> 48;
    while (mm->scanned[2 * i] != 0 && mm->scanned[2 * i] != key)
        i = (i + 1) & (XM_SCAN_CAP - 1);
    if (mm->scanned[2 * i] == 0)
        mm->scanned_n++;
    mm->scanned[2 * i] = key;
    mm->scanned[2 * i + 1] = gen;
}

static void xm_block_hook(void *uc, uint64_t address, uint32_t size, void *user)
{
    struct xm_trap *t = (struct xm_trap *)user;
    uint64_t n = size >> 2;
    uint64_t key = 0, gen = 0;
    if (t->served && !xm_scan_seen(uc, t, address, size, &key, &gen)) {
        if (xm_scan_block(uc, t, address, size))
            return;
        if (key) {
            t->mmu->scans++;
            xm_scan_remember(t->mmu, key, gen);
        }
    }
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

/* ---- The guest MMU: radix translation in the TLB-fill hook --------------------------------------------
   Unicorn (UC_TLB_VIRTUAL) asks this hook for every softmmu TLB miss; its TLB is kept per MMU index (PR, IR/DR),
   so real-mode and translated entries never mix. Real mode is the identity with EA bits 0:3 ignored; with
   translation on, a radix walk of the process table the guest registered (partition scope: identity). A
   failed walk records the fault and refuses the fill: Unicorn stops with UC_ERR_EXCEPTION at the faulting
   instruction and the machine delivers DSI/ISI (or DSEG/ISEG). Write permission is granted only when the PTE
   has C set, any access only with R set: the guest sees the same R/C faults as on QEMU. */
typedef int (*ctl_t)(void *, int, ...);
static ctl_t p_ctl;

int xm_init_ctl(uintptr_t ctl)
{
    p_ctl = (ctl_t)ctl;
    return 0;
}

enum { XM_ACC_READ = 16, XM_ACC_WRITE = 17, XM_ACC_FETCH = 18 };
enum { XM_PROT_R = 1, XM_PROT_W = 2, XM_PROT_X = 4 };
#define XM_DSISR_NOPTE 0x40000000u
#define XM_DSISR_PROT 0x08000000u
#define XM_DSISR_STORE 0x02000000u
#define XM_DSISR_RC 0x00200000u
#define XM_REAL_MASK 0x0FFFFFFFFFFFFFFFull

static inline uint64_t xm_be64(const unsigned char *p)
{
    uint64_t v;
    __builtin_memcpy(&v, p, 8);
    return __builtin_bswap64(v);
}

/* 0 and (*pa, *prot) on success, else DSISR-style cause bits (*segment set for a bad quadrant or range). */
static uint32_t xm_radix(struct xm_mmu *mm, uint64_t ea, int access, int pr, uint64_t *pa, int *prot,
                         int *segment)
{
    uint64_t quadrant = ea >> 62, pid;
    *segment = 0;
    if (quadrant == 0)
        pid = mm->pidr;
    else if (quadrant == 3)
        pid = 0;
    else {
        *segment = 1; /* quadrants 1 and 2 are the hypervisor's */
        return XM_DSISR_NOPTE;
    }
    mm->walks++;
    if (!mm->prtb || pid >= mm->prtb_entries)
        return XM_DSISR_NOPTE;
    uint64_t pate = mm->prtb + pid * 16;
    if (pate + 16 > mm->ram_size)
        return XM_DSISR_NOPTE;
    uint64_t root = xm_be64(mm->ram + pate);
    int bits = (int)((((root >> 61) & 3) << 3) | ((root >> 5) & 7)) + 31;
    uint64_t off = ea & 0x3FFFFFFFFFFFFFFFull;
    if (bits < 62 && (off >> bits)) {
        *segment = 1;
        return XM_DSISR_NOPTE;
    }
    uint64_t base = root & 0x0FFFFFFFFFFFFF00ull;
    int nls = (int)(root & 0x1F);
    int shift = bits;
    for (int level = 0; level < 6; level++) {
        if (nls < 5 || nls > shift)
            return XM_DSISR_NOPTE;
        shift -= nls;
        uint64_t at = base + ((off >> shift) & ((1ull << nls) - 1)) * 8;
        if (at + 8 > mm->ram_size)
            return XM_DSISR_NOPTE;
        uint64_t e = xm_be64(mm->ram + at);
        if (!(e >> 63))
            return XM_DSISR_NOPTE;
        if ((e >> 62) & 1) { /* leaf */
            int p = ((e & 4) ? XM_PROT_R : 0) | ((e & 2) ? XM_PROT_R | XM_PROT_W : 0) | ((e & 1) ? XM_PROT_X : 0);
            if ((e & 8) && pr)
                p = 0; /* privileged page, problem state */
            int need = access == XM_ACC_WRITE ? XM_PROT_W : access == XM_ACC_FETCH ? XM_PROT_X : XM_PROT_R;
            if (!(p & need))
                return XM_DSISR_PROT;
            if (!(e & 0x100) || (access == XM_ACC_WRITE && !(e & 0x80)))
                return XM_DSISR_RC; /* reference/change not set: the guest sets them and retries */
            if (!(e & 0x80))
                p &= ~XM_PROT_W; /* a later store must come back here and fault for C */
            uint64_t mask = (1ull << shift) - 1;
            *pa = ((e & 0x01FFFFFFFFFFF000ull) & ~mask) | (off & mask);
            *prot = p;
            return 0;
        }
        base = e & 0x0FFFFFFFFFFFFF00ull;
        nls = (int)(e & 0x1F);
    }
    return XM_DSISR_NOPTE;
}

static int xm_ident(struct xm_mmu *mm, uint64_t ea)
{
    for (int i = 0; i < 4; i++)
        if (ea >= mm->ident_lo[i] && ea < mm->ident_hi[i])
            return 1;
    return 0;
}

/* Translate without side effects on the fault record (block scan, instruction fetch for the trap hook):
   0 and *pa on success. `access` as Unicorn's (16 read, 17 write, 18 fetch). */
int xm_translate(struct xm_trap *t, uint64_t ea, int access, uint64_t *pa)
{
    struct xm_mmu *mm = t->mmu;
    uint64_t msr = 0;
    p_rr(t->uc, XM_REG_MSR, &msr);
    int on = access == XM_ACC_FETCH ? (msr & XM_MSR_IR) != 0 : (msr & (1 << 4)) != 0;
    if (!mm || xm_ident(mm, ea)) {
        *pa = ea;
        return 0;
    }
    if (!on) {
        *pa = ea & XM_REAL_MASK;
        return 0;
    }
    int prot, seg;
    uint64_t walks = mm->walks;
    uint32_t cause = xm_radix(mm, ea, access, (msr & XM_MSR_PR) != 0, pa, &prot, &seg);
    mm->walks = walks;
    return cause ? -1 : 0;
}

struct xm_tlb_entry {
    uint64_t paddr;
    int perms;
};

/* What a fill grants: execute only to fetches, write only to data accesses. Unicorn 2.1.4 sends every store
   through its slow path (TB-invalidation checks) on an entry that also allows execute, even for a page that
   holds no code: ~50 ns a store instead of ~5 (measured). Self-modifying code is still caught on RW entries
   (Unicorn tracks code pages physically; measured with a patch through a non-executable alias). */
static inline int xm_grant(struct xm_mmu *mm, uint64_t addr, int type, int prot)
{
    /* ...except on a page that is both run and accessed as data (a small guest's code next to its data):
       there the entry allows everything the translation allows, as refilling on each switch costs more. */
    uint64_t page = addr >> 12;
    unsigned i = (unsigned)(page & 1023);
    uint8_t kind = type == XM_ACC_FETCH ? 1 : 2;
    if (mm->mix_page[i] != page + 1) {
        mm->mix_page[i] = page + 1;
        mm->mix_kind[i] = kind;
    } else
        mm->mix_kind[i] |= kind;
    if (mm->mix_kind[i] == 3)
        return prot;
    return type == XM_ACC_FETCH ? prot & ~XM_PROT_W : prot & ~XM_PROT_X;
}

static int xm_tlb_fill(void *uc, uint64_t addr, int type, struct xm_tlb_entry *out, void *user)
{
    struct xm_trap *t = (struct xm_trap *)user;
    struct xm_mmu *mm = t->mmu;
    mm->fills++;
    mm->fills_by[(type - XM_ACC_READ) & 3 & 1 ? 1 : (type == XM_ACC_FETCH ? 2 : 0)]++;
    if (xm_ident(mm, addr)) {
        out->paddr = addr;
        out->perms = xm_grant(mm, addr, type, 7);
        return 1;
    }
    uint64_t msr = 0;
    p_rr(uc, XM_REG_MSR, &msr);
    int on = type == XM_ACC_FETCH ? (msr & XM_MSR_IR) != 0 : (msr & (1 << 4)) != 0;
    if (!on) {
        out->paddr = addr & XM_REAL_MASK;
        out->perms = xm_grant(mm, addr, type, 7);
        return 1;
    }
    uint64_t pa = 0;
    int prot = 0, seg = 0;
    uint32_t cause = xm_radix(mm, addr, type, (msr & XM_MSR_PR) != 0, &pa, &prot, &seg);
    if (cause == 0) {
        out->paddr = pa;
        out->perms = xm_grant(mm, addr, type, prot);
        return 1;
    }
    mm->faults++;
    mm->fault_ea = addr;
    mm->fault_type = (uint32_t)type;
    mm->fault_cause = cause | (type == XM_ACC_WRITE ? XM_DSISR_STORE : 0);
    mm->fault_segment = (uint32_t)seg;
    mm->faulted = 1;
    return 0;
}

/* The walker's own cost (the part of a TLB fill this module owns): n walks from `ea` as kernel loads, in ns. */
#include <time.h>
uint64_t xm_bench_walks(struct xm_trap *t, uint64_t ea, uint64_t n)
{
    struct timespec a, b;
    uint64_t pa = 0, sink = 0;
    int prot = 0, seg = 0;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (uint64_t i = 0; i < n; i++) { /* a different page each time, across the first GiB of `ea`'s range */
        xm_radix(t->mmu, ea + ((i * 0x9E3779B1ull << 12) & 0x3FFFF000ull), XM_ACC_READ, 0, &pa, &prot, &seg);
        sink += pa;
    }
    volatile uint64_t keep = sink;
    (void)keep;
    clock_gettime(CLOCK_MONOTONIC, &b);
    t->mmu->walks -= n;
    return (uint64_t)((b.tv_sec - a.tv_sec) * 1000000000ll + (b.tv_nsec - a.tv_nsec));
}

void xm_flush_pending(struct xm_trap *t)
{
    if (t->mmu && t->mmu->flush_pending)
        xm_tlb_flush(t);
}

/* ptesync: where a pending tlbie/tlbiel completes. The instruction itself then runs as usual. */
static void xm_sync_hook(void *uc, uint64_t address, uint32_t size, void *user)
{
    (void)uc;
    (void)address;
    (void)size;
    xm_flush_pending((struct xm_trap *)user);
}

int xm_hook_sync_site(struct xm_trap *t, uint64_t addr, size_t *handle)
{
    return p_hook_add(t->uc, handle, 4 /* UC_HOOK_CODE */, (void *)xm_sync_hook, t, addr, addr);
}

/* A priority hint: step over it (the machine has no SMT priorities). When another vCPU could run, end the
   slice at the next block: the spinner waits for someone, so let them run (the spin_yield flag is set by the
   scheduler for slices with more than one runnable vCPU). */
static void xm_hmt_hook(void *uc, uint64_t address, uint32_t size, void *user)
{
    struct xm_trap *t = (struct xm_trap *)user;
    uint64_t next = address + 4;
    (void)size;
    p_rw(uc, XM_REG_PC, &next);
    if (t->mmu && t->mmu->spin_yield && t->deadline > t->icount)
        t->deadline = t->icount;
}

int xm_hook_hmt_site(struct xm_trap *t, uint64_t addr, size_t *handle)
{
    return p_hook_add(t->uc, handle, 4 /* UC_HOOK_CODE */, (void *)xm_hmt_hook, t, addr, addr);
}

int xm_hook_tlb(struct xm_trap *t)
{
    size_t hh = 0;
    return p_hook_add(t->uc, &hh, 1 << 17 /* UC_HOOK_TLB_FILL */, (void *)xm_tlb_fill, t, (uint64_t)1,
                      (uint64_t)0);
}

void xm_tlb_flush(struct xm_trap *t)
{
    if (t->mmu) {
        t->mmu->flushes++;
        t->mmu->user_gen++;
        t->mmu->flush_pending = 0;
    }
    p_ctl(t->uc, 11 /* UC_CTL_TLB_FLUSH */ | (1 << 30) /* write */);
}

/* ---- Timebase reads in C (deterministic clock) ----------------------------------------------------------
   A kernel reads the timebase in tight loops (udelay, spin-waits for another CPU): through Python each read
   costs microseconds and such a loop runs at a few MIPS. Time is a pure function of instructions retired:
   ns = insns * 1000 / ipu + skip_ns, TB = ns * 512 MHz, exactly as machine/clock.py computes it. */
static void xm_time_hook(void *uc, uint64_t address, uint32_t size, void *user)
{
    struct xm_site *s = (struct xm_site *)user;
    struct xm_time *tm = s->time;
    (void)size;
    /* The kernel patches its text (ftrace, jump labels, alternatives): serve the site only while it still holds
       the instruction it held when first served; anything else runs as written. */
    uint64_t pa = 0;
    uint32_t now = 0;
    if (xm_translate(s->t, address, 18, &pa) == 0 && pa + 4 <= s->t->ram_size) {
        __builtin_memcpy(&now, s->t->ram + pa, 4);
        if (!s->word)
            s->word = now;
        else if (now != s->word)
            return;
    }
    int64_t insns = tm->ins_base + (int64_t)s->t->icount;
    unsigned __int128 ns = (unsigned __int128)((uint64_t)insns) * 1000u / tm->ipu + tm->skip_ns;
    uint64_t tb = (uint64_t)(ns * 512000000u / 1000000000u);
    uint64_t value = s->kind ? (tb >> 32) & 0xFFFFFFFFull : tb;
    tm->reads++;
    p_rw(uc, XM_REG_R0 + (int)s->gpr, &value);
    uint64_t next = address + 4;
    p_rw(uc, XM_REG_PC, &next);
}

int xm_hook_time_site(struct xm_trap *t, struct xm_site *site, uint64_t addr, size_t *handle)
{
    (void)t;
    return p_hook_add(site->t->uc, handle, 4 /* UC_HOOK_CODE */, (void *)xm_time_hook, site, addr, addr);
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

/* ---- Store guard: guest stores off code pages take Unicorn's fast path -------------------------------------
   Unicorn 2.1.4 sends a store through its slow path (a lookup of translated code on the page, ~10x a plain
   store) when the TLB entry allows execute or when any memory hook covers the page, an unmapped-access hook
   included; otherwise only the first store through an entry is checked and the rest go straight to RAM. The
   machine's unmapped-access hook used to cover every address, so every guest store was slow (a guest clearing
   its .bss spent more time there than anywhere else). Here only RAM where this vCPU may have translated code
   is covered, by hooks that never fire (unmapped fetches; RAM is mapped), plus everything above RAM. Code is
   only translated on a page after a TLB fill granted execute on it; that fill grows the guard first and
   flushes the TLB, so no entry let through unchecked before survives. The guard never shrinks: translated
   code outlives resets. (Translations are per vCPU, as Unicorn keeps them, so each vCPU has its guard.) */
#define XM_GUARD_N 4
struct xm_guard {
    struct xm_trap *t;
    uint64_t ram_size;
    uint64_t granule;
    uint64_t lo[XM_GUARD_N], hi[XM_GUARD_N];
    size_t hook[XM_GUARD_N];
    size_t outside;
    uint32_t n;
    uint32_t failed;
    uint64_t grows;
};
typedef int (*hook_del_t)(void *, size_t);
static hook_del_t p_hook_del;

int xm_init_guard(uintptr_t hook_del)
{
    p_hook_del = (hook_del_t)hook_del;
    return 0;
}

/* Remove a hook added from C: the binding's own hook_del also drops a Python callback record, which such a
   hook does not have (KeyError after the hook is gone). */
int xm_unhook(void *uc, size_t hook)
{
    return p_hook_del(uc, hook);
}

static int xm_guard_cb(void *uc, int type, uint64_t addr, int size, int64_t value, void *user)
{
    (void)uc;
    (void)type;
    (void)addr;
    (void)size;
    (void)value;
    (void)user;
    return 0; /* never handles anything: the machine's own unmapped-access hook reports the access */
}

static int xm_guard_covers(const struct xm_guard *g, uint64_t pa)
{
    if (g->failed)
        return 1;
    for (uint32_t i = 0; i < g->n; i++)
        if (pa >= g->lo[i] && pa < g->hi[i])
            return 1;
    return 0;
}

static void xm_guard_grow(void *uc, struct xm_guard *g, uint64_t pa)
{
    uint64_t lo = pa & ~(g->granule - 1), hi = lo + g->granule;
    if (hi > g->ram_size)
        hi = g->ram_size;
    uint64_t alo[XM_GUARD_N + 1], ahi[XM_GUARD_N + 1], nlo[XM_GUARD_N + 1], nhi[XM_GUARD_N + 1];
    uint32_t m = 0, n = 0;
    for (uint32_t i = 0; i < g->n; i++) { /* the ranges with the new one put in order */
        if (m == i && lo < g->lo[i])
            alo[m] = lo, ahi[m] = hi, m++;
        alo[m] = g->lo[i], ahi[m] = g->hi[i], m++;
    }
    if (m == g->n)
        alo[m] = lo, ahi[m] = hi, m++;
    for (uint32_t i = 0; i < m; i++) { /* merged where they overlap or touch */
        if (n && alo[i] <= nhi[n - 1]) {
            if (ahi[i] > nhi[n - 1])
                nhi[n - 1] = ahi[i];
        } else {
            nlo[n] = alo[i], nhi[n] = ahi[i];
            n++;
        }
    }
    while (n > XM_GUARD_N) { /* too many ranges: close the smallest gap */
        uint32_t best = 0;
        for (uint32_t i = 1; i + 1 < n; i++)
            if (nlo[i + 1] - nhi[i] < nlo[best + 1] - nhi[best])
                best = i;
        nhi[best] = nhi[best + 1];
        for (uint32_t i = best + 1; i + 1 < n; i++)
            nlo[i] = nlo[i + 1], nhi[i] = nhi[i + 1];
        n--;
    }
    for (uint32_t i = 0; i < g->n; i++)
        p_hook_del(uc, g->hook[i]);
    g->n = 0;
    for (uint32_t i = 0; i < n; i++) {
        size_t hh = 0;
        if (p_hook_add(uc, &hh, 64 /* UC_HOOK_MEM_FETCH_UNMAPPED */, (void *)xm_guard_cb, g, nlo[i], nhi[i] - 1)) {
            g->failed = 1;
            break;
        }
        g->lo[g->n] = nlo[i], g->hi[g->n] = nhi[i], g->hook[g->n] = hh;
        g->n++;
    }
    if (g->failed) { /* fall back to what Unicorn does with an unbounded hook: every store checked */
        size_t hh = 0;
        p_hook_add(uc, &hh, 64, (void *)xm_guard_cb, g, (uint64_t)0, g->ram_size - 1);
    }
    g->grows++;
    /* Entries already let through unchecked may point into the new range: drop them all. Safe inside a fill:
       Unicorn looks the entry up again after the fill returns. */
    p_ctl(uc, 11 /* UC_CTL_TLB_FLUSH */ | (1 << 30) /* write */);
}

static int xm_guard_fill(void *uc, uint64_t addr, int type, struct xm_tlb_entry *out, void *user)
{
    struct xm_guard *g = (struct xm_guard *)user;
    int ok = xm_tlb_fill(uc, addr, type, out, g->t);
    if (!g->t->mmu->virt_seen) {
        /* A code TLB entry for translated execution only comes from a fill made with IR (a fetch) or DR (a data
           access in the same MMU index, which may grant execute) set: from here on the block scan reads the
           MSR to tell real-mode and translated blocks apart. */
        uint64_t msr = 0;
        p_rr(uc, XM_REG_MSR, &msr);
        if (msr & (XM_MSR_IR | (1 << 4)))
            g->t->mmu->virt_seen = 1;
    }
    if (ok && (out->perms & XM_PROT_X) && out->paddr < g->ram_size && !xm_guard_covers(g, out->paddr))
        xm_guard_grow(uc, g, out->paddr);
    return ok;
}

/* The TLB-fill hook (xm_tlb_fill) behind the store guard, and the guard's hook above RAM. */
int xm_hook_tlb_guarded(struct xm_guard *g)
{
    size_t hh = 0;
    void *uc = g->t->uc;
    if (g->granule == 0 || (g->granule & (g->granule - 1)))
        g->granule = 0x1000;
    if (p_hook_add(uc, &g->outside, 64, (void *)xm_guard_cb, g, g->ram_size, ~0ull))
        return -1;
    return p_hook_add(uc, &hh, 1 << 17 /* UC_HOOK_TLB_FILL */, (void *)xm_guard_fill, g, (uint64_t)1,
                      (uint64_t)0);
}
"""

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source("xive_machine.cpu._fast", SOURCE)

if __name__ == "__main__":
    ffibuilder.compile(verbose=False)
