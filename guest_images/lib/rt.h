/*
 * Tiny runtime for the xive-machine guest images: console, printf, hcalls,
 * OF client interface, RTAS, exceptions.  Everything runs in real mode.
 */
#ifndef RT_H
#define RT_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long u64;
typedef signed long s64;
typedef unsigned long size_t;

#define NULL ((void *)0)

/* ---- hcall numbers and return codes (PAPR, QEMU 7.2) ---- */
#define H_SUCCESS 0
#define H_FUNCTION (-2)
#define H_PARAMETER (-4)
#define H_P2 (-55)
#define H_P3 (-56)
#define H_P4 (-57)
#define H_P5 (-58)

#define H_SET_SPRG0 0x24
#define H_PUT_TERM_CHAR 0x58
#define H_EOI 0x64
#define H_CPPR 0x68
#define H_IPI 0x6c
#define H_IPOLL 0x70
#define H_XIRR 0x74
#define H_CEDE 0xe0
#define H_PROD 0xe8
#define H_SET_MODE 0x31c
#define H_INT_GET_SOURCE_INFO 0x3a8
#define H_INT_SET_SOURCE_CONFIG 0x3ac
#define H_INT_GET_SOURCE_CONFIG 0x3b0
#define H_INT_GET_QUEUE_INFO 0x3b4
#define H_INT_SET_QUEUE_CONFIG 0x3b8
#define H_INT_GET_QUEUE_CONFIG 0x3bc
#define H_INT_SET_OS_REPORTING_LINE 0x3c0
#define H_INT_GET_OS_REPORTING_LINE 0x3c4
#define H_INT_ESB 0x3c8
#define H_INT_SYNC 0x3cc
#define H_INT_RESET 0x3d0
#define KVMPPC_H_RTAS 0xf000

/*
 * Generic hcall: r3 = opcode, r4..r9 = arguments; returns r3 and, if out is
 * not NULL, stores r4..r11 into out[0..7].  Implemented with register
 * variables so the compiler knows exactly what the hypervisor may change.
 */
static inline long hcall6(unsigned long *out, unsigned long op, unsigned long a1, unsigned long a2,
                          unsigned long a3, unsigned long a4, unsigned long a5, unsigned long a6)
{
	register unsigned long r3 __asm__("r3") = op;
	register unsigned long r4 __asm__("r4") = a1;
	register unsigned long r5 __asm__("r5") = a2;
	register unsigned long r6 __asm__("r6") = a3;
	register unsigned long r7 __asm__("r7") = a4;
	register unsigned long r8 __asm__("r8") = a5;
	register unsigned long r9 __asm__("r9") = a6;
	register unsigned long r10 __asm__("r10");
	register unsigned long r11 __asm__("r11");
	register unsigned long r12 __asm__("r12");
	__asm__ volatile("sc 1"
	                 : "+r"(r3), "+r"(r4), "+r"(r5), "+r"(r6), "+r"(r7), "+r"(r8), "+r"(r9), "=r"(r10),
	                   "=r"(r11), "=r"(r12)
	                 :
	                 : "r0", "ctr", "xer", "cr0", "cr1", "cr5", "cr6", "cr7", "memory");
	if (out) {
		out[0] = r4; out[1] = r5; out[2] = r6; out[3] = r7;
		out[4] = r8; out[5] = r9; out[6] = r10; out[7] = r11;
	}
	return (long)r3;
}
#define hcall0(out, op) hcall6(out, op, 0, 0, 0, 0, 0, 0)
#define hcall1(out, op, a) hcall6(out, op, a, 0, 0, 0, 0, 0)
#define hcall2(out, op, a, b) hcall6(out, op, a, b, 0, 0, 0, 0)
#define hcall3(out, op, a, b, c) hcall6(out, op, a, b, c, 0, 0, 0)
#define hcall4(out, op, a, b, c, d) hcall6(out, op, a, b, c, d, 0, 0)
#define hcall5(out, op, a, b, c, d, e) hcall6(out, op, a, b, c, d, e, 0)

/* ---- SPRs and small helpers ---- */
#define mfspr(n) ({ unsigned long __v; __asm__ volatile("mfspr %0, " #n : "=r"(__v)); __v; })
#define mtspr(n, v) __asm__ volatile("mtspr " #n ", %0" : : "r"((unsigned long)(v)) : "memory")
static inline u64 mftb(void) { u64 v; __asm__ volatile("mftb %0" : "=r"(v)); return v; }
static inline u64 mfmsr(void) { u64 v; __asm__ volatile("mfmsr %0" : "=r"(v)); return v; }
static inline void mtmsrd(u64 v) { __asm__ volatile("mtmsrd %0" : : "r"(v) : "memory"); }
static inline void set_dec(u32 v) { __asm__ volatile("mtdec %0" : : "r"((u64)v)); }
static inline u32 get_dec(void) { u64 v; __asm__ volatile("mfdec %0" : "=r"(v)); return (u32)v; }
static inline void sync(void) { __asm__ volatile("sync" : : : "memory"); }
static inline void eieio(void) { __asm__ volatile("eieio" : : : "memory"); }
static inline void barrier(void) { __asm__ volatile("" : : : "memory"); }
#define MSR_SF (1UL << 63)
#define MSR_EE 0x8000UL
#define MSR_PR 0x4000UL
#define MSR_ME 0x1000UL
#define MSR_RI 0x2UL
#define MSR_LE 0x1UL
/* mtmsrd L=1 changes only EE and RI */
static inline void irq_enable(void) { __asm__ volatile("mtmsrd %0, 1" : : "r"(MSR_EE | MSR_RI) : "memory"); }
static inline void irq_disable(void) { __asm__ volatile("mtmsrd %0, 1" : : "r"(MSR_RI) : "memory"); }

static inline u16 bswap16(u16 v) { return (u16)((v >> 8) | (v << 8)); }
static inline u32 bswap32(u32 v) { return __builtin_bswap32(v); }
static inline u64 bswap64(u64 v) { return __builtin_bswap64(v); }
#ifdef __LITTLE_ENDIAN__
#define cpu_to_be32(x) bswap32(x)
#define be32_to_cpu(x) bswap32(x)
#define cpu_to_be64(x) bswap64(x)
#define be64_to_cpu(x) bswap64(x)
#define IMAGE_ENDIAN "LE"
#else
#define cpu_to_be32(x) ((u32)(x))
#define be32_to_cpu(x) ((u32)(x))
#define cpu_to_be64(x) ((u64)(x))
#define be64_to_cpu(x) ((u64)(x))
#define IMAGE_ENDIAN "BE"
#endif

/* MMIO from real mode: QEMU (and our machine) treat these addresses as
 * cache-inhibited device space; volatile keeps the access size exact.  XIVE
 * registers are big-endian, so values are converted for LE images. */
#ifdef __LITTLE_ENDIAN__
#define be16_to_cpu(x) bswap16(x)
#else
#define be16_to_cpu(x) ((u16)(x))
#endif
static inline u8 mmio_ld8(u64 a) { return *(volatile u8 *)a; }
static inline u16 mmio_ld16(u64 a) { return be16_to_cpu(*(volatile u16 *)a); }
static inline u32 mmio_ld32(u64 a) { return be32_to_cpu(*(volatile u32 *)a); }
static inline u64 mmio_ld64(u64 a) { return be64_to_cpu(*(volatile u64 *)a); }
static inline void mmio_st8(u64 a, u8 v) { *(volatile u8 *)a = v; }
static inline void mmio_st64(u64 a, u64 v) { *(volatile u64 *)a = cpu_to_be64(v); }

/* ---- libc bits ---- */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
const char *strstr(const char *h, const char *n);

/* ---- console ---- */
void putchar(int c);
void puts(const char *s); /* no newline added */
void console_flush(void);
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void lock_console(void);
void unlock_console(void);

/* ---- entry state, exit ---- */
extern u64 entry_r3, entry_r4, entry_r5, entry_r1;
int main(void);
void __attribute__((noreturn)) power_off(void);
void __attribute__((noreturn)) pass(void);
void __attribute__((noreturn)) fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define CHECK(cond, ...) do { if (!(cond)) fail(__VA_ARGS__); } while (0)

/* ---- OF client interface (only before rt_set_vector() takes over low memory) ---- */
int ci_available(void);
u32 ci_call(const char *service, int nargs, int nret, u32 *args, u32 *rets);
u32 of_finddevice(const char *path);
/* The flattened tree, when the kernel is entered with r3 = FDT and no client interface (lib/fdt.c). */
int fdt_init(u64 addr);
int fdt_present(void);
u32 fdt_finddevice(const char *path);
int fdt_getprop(u32 ph, const char *name, void *buf, int len);
u32 fdt_child(u32 ph);
u32 fdt_peer(u32 ph);
int of_getprop(u32 ph, const char *name, void *buf, int len); /* full length or -1 */
u32 of_getprop_u32(u32 ph, const char *name, u32 dflt);
u32 of_open(const char *path);
u32 of_child(u32 ph);
u32 of_peer(u32 ph);
/* Read /chosen/bootargs into buf (empty string if absent). */
void of_bootargs(char *buf, int len);
/* Parse "key=NUM" from bootargs; dflt if absent. */
u64 bootarg_num(const char *args, const char *key, u64 dflt);

/* ---- RTAS through KVMPPC_H_RTAS ---- */
struct rtas_tokens {
	u32 power_off, query_cpu_stopped_state, start_cpu, stop_self;
	u32 set_xive, get_xive, int_off, int_on, get_time_of_day;
};
extern struct rtas_tokens rtas_tok;
/* Returns rets[0] (status); other rets in rets[1..nret-1] if rets != NULL. */
int rtas_call(u32 token, int nargs, int nret, u32 *rets, ...);

/* ---- exceptions ---- */
struct exc_frame {
	u64 gpr[32];
	u64 srr0, srr1, lr, ctr, xer, cr, dar, dsisr;
};
typedef void (*exc_handler_t)(u64 vec, struct exc_frame *f);
/* Point the real-mode vector at our entry code and route it to handler.
 * Overwrites firmware memory: the client interface is unusable afterwards. */
void rt_set_vector(u64 vec, exc_handler_t handler);

/* ---- SMP ---- */
#define MAX_CPUS 8
void secondary_entry(void);
/* Logical CPU index (0 = boot CPU, else the start-cpu r3 value), kept in r13,
 * which the ELFv2 ABI reserves and the compiler never allocates. */
static inline u64 this_cpu(void) { u64 v; __asm__ volatile("mr %0, 13" : "=r"(v)); return v; }
extern void (*secondary_main)(u64 cpu);
/* Servers (ibm,ppc-interrupt-server#s[0]) of the /cpus nodes, ascending;
 * returns the count.  Needs the client interface. */
u32 of_cpu_servers(u32 *servers, u32 max);
/* RTAS start-cpu(server) at secondary_entry with r3 = idx; returns status. */
int start_secondary(u32 idx, u32 server);
/* Poll query-cpu-stopped-state until the CPU reports stopped; returns the
 * last state (0 = stopped). */
int wait_cpu_stopped(u32 server);

/* ---- locks (lwarx/stwcx. through the compiler builtins) ---- */
static inline void spin_lock(volatile u32 *l)
{
	while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE))
		while (*l)
			;
}
static inline void spin_unlock(volatile u32 *l) { __atomic_store_n(l, 0, __ATOMIC_RELEASE); }

#endif
