/*
 * Runtime for the guest images.  See rt.h for the interface.
 */
#include "rt.h"
#include <stdarg.h>

u64 entry_r3, entry_r4, entry_r5, entry_r1;
struct rtas_tokens rtas_tok;
void (*secondary_main)(u64 cpu);

/* The stacks are defined in start.S (.bss). */

/* ------------------------------------------------------------------ libc */
void *memset(void *d, int c, size_t n)
{
	volatile u8 *p = d; /* volatile: keep the compiler from calling memset here */
	while (n--)
		*p++ = (u8)c;
	return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
	volatile u8 *p = d;
	const u8 *q = s;
	while (n--)
		*p++ = *q++;
	return d;
}

size_t strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

int strncmp(const char *a, const char *b, size_t n)
{
	for (; n; n--, a++, b++) {
		if (*a != *b)
			return (u8)*a - (u8)*b;
		if (!*a)
			return 0;
	}
	return 0;
}

int strcmp(const char *a, const char *b) { return strncmp(a, b, (size_t)-1); }

const char *strstr(const char *h, const char *n)
{
	size_t l = strlen(n);
	for (; *h; h++)
		if (!strncmp(h, n, l))
			return h;
	return l ? NULL : h;
}

/* --------------------------------------------------------------- console */
/*
 * H_PUT_TERM_CHAR takes up to 16 bytes packed big-endian into r6/r7, so we
 * buffer a line (or 16 bytes) and send it in one hcall.  Vterm 0 means "the
 * default vty" in QEMU.
 */
static char cbuf[16];
static int clen;
static volatile u32 console_lock_word;

void console_flush(void)
{
	u64 w[2] = {0, 0};
	for (int i = 0; i < clen; i++)
		w[i / 8] |= (u64)(u8)cbuf[i] << (56 - 8 * (i % 8));
	if (clen)
		hcall4(NULL, H_PUT_TERM_CHAR, 0, clen, w[0], w[1]);
	clen = 0;
}

void putchar(int c)
{
	cbuf[clen++] = (char)c;
	if (clen == 16 || c == '\n')
		console_flush();
}

void puts(const char *s)
{
	while (*s)
		putchar(*s++);
}

void lock_console(void) { spin_lock(&console_lock_word); }
void unlock_console(void) { spin_unlock(&console_lock_word); }

static void put_num(u64 v, int base, int neg, int width, int zero, int left, int upper)
{
	/* neg: 1 = print '-', 2 = print '+' */
	char tmp[24];
	int n = 0;
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	do {
		tmp[n++] = digits[v % base];
		v /= base;
	} while (v);
	int len = n + neg;
	if (neg && zero)
		putchar(neg == 2 ? '+' : '-');
	if (!left)
		for (; len < width; width--)
			putchar(zero ? '0' : ' ');
	if (neg && !zero)
		putchar(neg == 2 ? '+' : '-');
	while (n)
		putchar(tmp[--n]);
	if (left)
		for (; len < width; width--)
			putchar(' ');
}

static void vprintf_(const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			putchar(*fmt);
			continue;
		}
		fmt++;
		int left = 0, zero = 0, width = 0, lng = 0, plus = 0;
		for (;; fmt++) {
			if (*fmt == '-')
				left = 1;
			else if (*fmt == '+')
				plus = 1;
			else
				break;
		}
		if (*fmt == '0') {
			zero = 1;
			fmt++;
		}
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		while (*fmt == 'l') {
			lng++;
			fmt++;
		}
		switch (*fmt) {
		case 'd':
		case 'i': {
			s64 v = lng ? va_arg(ap, long) : va_arg(ap, int);
			put_num(v < 0 ? -(u64)v : (u64)v, 10, v < 0 ? 1 : plus ? 2 : 0, width, zero, left, 0);
			break;
		}
		case 'u':
			put_num(lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int), 10, 0, width, zero, left, 0);
			break;
		case 'x':
		case 'X':
			put_num(lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int), 16, 0, width, zero, left,
			        *fmt == 'X');
			break;
		case 'p':
			puts("0x");
			put_num((u64)va_arg(ap, void *), 16, 0, width, zero, left, 0);
			break;
		case 's': {
			const char *s = va_arg(ap, const char *);
			if (!s)
				s = "(null)";
			int l = (int)strlen(s);
			if (!left)
				for (; l < width; width--)
					putchar(' ');
			puts(s);
			if (left)
				for (; l < width; width--)
					putchar(' ');
			break;
		}
		case 'c':
			putchar(va_arg(ap, int));
			break;
		case '%':
			putchar('%');
			break;
		case 0:
			return;
		default:
			putchar('%');
			putchar(*fmt);
		}
	}
}

int printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprintf_(fmt, ap);
	va_end(ap);
	return 0;
}

/* ------------------------------------------------------------------ RTAS */
/* The block is big-endian whatever the image's byte order.  It lives on the
 * caller's stack (real mode: stack addresses are real addresses), so CPUs
 * need no lock, and stop-self, which never returns, holds nothing. */
int rtas_call(u32 token, int nargs, int nret, u32 *rets, ...)
{
	va_list ap;
	u32 rtas_buf[32] __attribute__((aligned(8)));
	rtas_buf[0] = cpu_to_be32(token);
	rtas_buf[1] = cpu_to_be32(nargs);
	rtas_buf[2] = cpu_to_be32(nret);
	va_start(ap, rets);
	for (int i = 0; i < nargs; i++)
		rtas_buf[3 + i] = cpu_to_be32(va_arg(ap, u32));
	va_end(ap);
	for (int i = 0; i < nret; i++)
		rtas_buf[3 + nargs + i] = 0;
	hcall1(NULL, KVMPPC_H_RTAS, (u64)rtas_buf);
	int status = (int)be32_to_cpu(rtas_buf[3 + nargs]);
	if (rets)
		for (int i = 1; i < nret; i++)
			rets[i] = be32_to_cpu(rtas_buf[3 + nargs + i]);
	return status;
}

void power_off(void)
{
	console_flush();
	int st = rtas_call(rtas_tok.power_off, 2, 1, NULL, 0xffffffffu, 0xffffffffu);
	/* only reached if the platform refused: say so rather than hang silently */
	printf("power-off failed: token 0x%x status %d\n", rtas_tok.power_off, st);
	for (;;)
		;
}

void pass(void)
{
	printf("PASS\n");
	power_off();
}

void fail(const char *fmt, ...)
{
	va_list ap;
	puts("FAIL: ");
	va_start(ap, fmt);
	vprintf_(fmt, ap);
	va_end(ap);
	putchar('\n');
	power_off();
}

/* ------------------------------------------------------- client interface */
u32 ci_enter(void *args, u64 entry);
static int ci_dead; /* set once low memory (the firmware) has been overwritten */

int ci_available(void) { return !ci_dead && entry_r5 != 0; }

/* Argument block: all cells u32 big-endian (OF PowerPC binding). */
u32 ci_call(const char *service, int nargs, int nret, u32 *args, u32 *rets)
{
	u32 blk[3 + 10];
	if (!ci_available() || nargs + nret > 10)
		return 0xffffffffu;
	blk[0] = cpu_to_be32((u32)(u64)service);
	blk[1] = cpu_to_be32(nargs);
	blk[2] = cpu_to_be32(nret);
	for (int i = 0; i < nargs; i++)
		blk[3 + i] = cpu_to_be32(args[i]);
	for (int i = 0; i < nret; i++)
		blk[3 + nargs + i] = 0;
	u32 rc = ci_enter(blk, entry_r5);
	if (rc != 0)
		return 0xffffffffu;
	for (int i = 0; i < nret; i++)
		rets[i] = be32_to_cpu(blk[3 + nargs + i]);
	return nret ? rets[0] : 0;
}

u32 of_finddevice(const char *path)
{
	if (!ci_available() && fdt_present())
		return fdt_finddevice(path);
	u32 a[1] = {(u32)(u64)path}, r[1];
	return ci_call("finddevice", 1, 1, a, r);
}

int of_getprop(u32 ph, const char *name, void *buf, int len)
{
	u32 a[4] = {ph, (u32)(u64)name, (u32)(u64)buf, (u32)len}, r[1];
	if (ph == 0xffffffffu)
		return -1;
	if (!ci_available() && fdt_present())
		return fdt_getprop(ph, name, buf, len);
	return (int)ci_call("getprop", 4, 1, a, r);
}

u32 of_getprop_u32(u32 ph, const char *name, u32 dflt)
{
	u32 v;
	if (of_getprop(ph, name, &v, 4) != 4)
		return dflt;
	return be32_to_cpu(v);
}

u32 of_open(const char *path)
{
	u32 a[1] = {(u32)(u64)path}, r[1];
	return ci_call("open", 1, 1, a, r);
}

u32 of_child(u32 ph)
{
	if (!ci_available() && fdt_present())
		return fdt_child(ph);
	u32 a[1] = {ph}, r[1];
	return ci_call("child", 1, 1, a, r);
}

u32 of_peer(u32 ph)
{
	if (!ci_available() && fdt_present())
		return fdt_peer(ph);
	u32 a[1] = {ph}, r[1];
	return ci_call("peer", 1, 1, a, r);
}

void of_bootargs(char *buf, int len)
{
	int n = of_getprop(of_finddevice("/chosen"), "bootargs", buf, len - 1);
	if (n < 0)
		n = 0;
	if (n > len - 1)
		n = len - 1;
	buf[n] = 0;
}

u64 bootarg_num(const char *args, const char *key, u64 dflt)
{
	size_t kl = strlen(key);
	for (const char *p = args; *p; p++) {
		if ((p == args || p[-1] == ' ') && !strncmp(p, key, kl) && p[kl] == '=') {
			u64 v = 0;
			for (p += kl + 1; *p >= '0' && *p <= '9'; p++)
				v = v * 10 + (u64)(*p - '0');
			return v;
		}
	}
	return dflt;
}

/* Tokens from /rtas, falling back to the QEMU 7.2 numbers. */
static void read_rtas_tokens(void)
{
	u32 ph = ci_available() ? of_finddevice("/rtas") : 0xffffffffu;
	rtas_tok.power_off = of_getprop_u32(ph, "power-off", 0x2003);
	rtas_tok.query_cpu_stopped_state = of_getprop_u32(ph, "query-cpu-stopped-state", 0x2005);
	rtas_tok.start_cpu = of_getprop_u32(ph, "start-cpu", 0x2006);
	rtas_tok.stop_self = of_getprop_u32(ph, "stop-self", 0x2007);
	rtas_tok.set_xive = of_getprop_u32(ph, "ibm,set-xive", 0x200a);
	rtas_tok.get_xive = of_getprop_u32(ph, "ibm,get-xive", 0x200b);
	rtas_tok.int_off = of_getprop_u32(ph, "ibm,int-off", 0x200c);
	rtas_tok.int_on = of_getprop_u32(ph, "ibm,int-on", 0x200d);
	rtas_tok.get_time_of_day = of_getprop_u32(ph, "get-time-of-day", 0x2001);
}

/* ------------------------------------------------------------ exceptions */
static exc_handler_t handlers[0x1000 / 0x20];

static void default_handler(u64 vec, struct exc_frame *f)
{
	fail("unexpected exception 0x%lx at 0x%lx srr1 0x%lx dar 0x%lx", vec, f->srr0, f->srr1, f->dar);
}

void exc_dispatch(u64 vec, struct exc_frame *f)
{
	exc_handler_t h = handlers[vec / 0x20];
	(h ? h : default_handler)(vec, f);
}

#define STUB(v) extern char exc_stub_##v[];
STUB(0x200) STUB(0x300) STUB(0x380) STUB(0x400) STUB(0x480) STUB(0x500) STUB(0x600) STUB(0x700)
STUB(0x800) STUB(0x900) STUB(0xa00) STUB(0xc00) STUB(0xd00) STUB(0xe80) STUB(0xf00) STUB(0xf20)
STUB(0xf40) STUB(0xf60)
#undef STUB

static char *stub_for(u64 vec)
{
	switch (vec) {
#define C(v) case v: return exc_stub_##v;
	C(0x200) C(0x300) C(0x380) C(0x400) C(0x480) C(0x500) C(0x600) C(0x700)
	C(0x800) C(0x900) C(0xa00) C(0xc00) C(0xd00) C(0xe80) C(0xf00) C(0xf20)
	C(0xf40) C(0xf60)
#undef C
	}
	return NULL;
}

static void flush_icache(u64 addr)
{
	__asm__ volatile("dcbst 0, %0; sync; icbi 0, %0; sync; isync" : : "r"(addr) : "memory");
}

/* Write "ba stub" at a vector (absolute branch, target < 32 MiB). */
static void write_vector(u64 vec)
{
	u64 target = (u64)stub_for(vec);
	*(volatile u32 *)vec = 0x48000002u | (u32)(target & 0x03fffffcu);
	flush_icache(vec);
}

static int vectors_taken;

void rt_set_vector(u64 vec, exc_handler_t handler)
{
	if (!vectors_taken) {
		/* The firmware lives in low memory: from now on the client
		 * interface is gone, so every vector gets our default handler. */
		vectors_taken = 1;
		ci_dead = 1;
#ifdef __LITTLE_ENDIAN__
		/* interrupts must be taken little-endian (LPCR[ILE]) */
		long rc = hcall4(NULL, H_SET_MODE, 1, 4, 0, 0);
		if (rc)
			fail("H_SET_MODE(LE) rc=%ld", rc);
#endif
		for (u64 v = 0x200; v < 0x1000; v += 0x20)
			if (stub_for(v))
				write_vector(v);
	}
	handlers[vec / 0x20] = handler;
}

/* ------------------------------------------------------------------ entry */
void rt_start(u64 r3, u64 r4, u64 r5, u64 r1)
{
	entry_r3 = r3;
	entry_r4 = r4;
	entry_r5 = r5;
	if (r5 == 0)
		fdt_init(r3); /* entered the FDT way: the device tree is the blob at r3 */
	entry_r1 = r1;
	read_rtas_tokens();
	main();
	power_off();
}

void rt_secondary_start(u64 cpu)
{
	if (secondary_main)
		secondary_main(cpu);
	rtas_call(rtas_tok.stop_self, 0, 1, NULL);
	for (;;)
		;
}

/* ------------------------------------------------------------------- SMP */
u32 of_cpu_servers(u32 *servers, u32 max)
{
	u32 n = 0;
	u32 cpus = of_finddevice("/cpus");
	for (u32 ph = of_child(cpus); ph && ph != 0xffffffffu; ph = of_peer(ph)) {
		char type[16];
		int len = of_getprop(ph, "device_type", type, sizeof(type));
		if (len != 4 || strncmp(type, "cpu", 4) || n == max)
			continue;
		u32 s = of_getprop_u32(ph, "ibm,ppc-interrupt-server#s", 0xffffffffu);
		u32 i = n++;
		while (i > 0 && servers[i - 1] > s) { /* insertion sort */
			servers[i] = servers[i - 1];
			i--;
		}
		servers[i] = s;
	}
	return n;
}

int start_secondary(u32 idx, u32 server)
{
	return rtas_call(rtas_tok.start_cpu, 3, 1, NULL, server, (u32)(u64)secondary_entry, idx);
}

int wait_cpu_stopped(u32 server)
{
	u32 rets[2];
	int state = -1;
	for (int spin = 0; spin < 1000000; spin++) {
		int rc = rtas_call(rtas_tok.query_cpu_stopped_state, 1, 2, rets, server);
		state = rc ? -1 : (int)rets[1];
		if (state == 0)
			break;
	}
	return state;
}
