/*
 * xics-ipi: CAS for XICS (OV5 byte 23 = 0x00), then IPIs to ourselves
 * through the ICP hcalls: H_IPI raises MFRR, the interrupt is taken at 0x500,
 * H_XIRR accepts it, MFRR is reset and H_EOI completes it (Linux's order).
 */
#include "xive.h"

#define N_IPIS 1000 /* bootargs "n=NUM" changes it (the benchmark does) */
#define XICS_IPI 2
#define IPI_PRIO 5

static u32 server;
static volatile int ipis, spurious, others;

static void ext_handler(u64 vec, struct exc_frame *f)
{
	u64 out[8];
	hcall0(out, H_XIRR);
	u32 xirr = (u32)out[0];
	u32 xisr = xirr & 0xffffff;
	if (xisr == XICS_IPI) {
		/* clear MFRR before the EOI, or the EOI's resend fires again */
		hcall2(NULL, H_IPI, server, 0xff);
		ipis++;
	} else if (xisr == 0) {
		spurious++;
	} else {
		others++;
	}
	hcall1(NULL, H_EOI, xirr);
}

int main(void)
{
	u64 out[8];
	long rc;
	u32 catch_cell, rets[4];

	printf("xics-ipi\n");
	char args[128];
	of_bootargs(args, sizeof(args));
	int n_ipis = (int)bootarg_num(args, "n", N_IPIS);
	rc = cas_request(OV5_INTC_XICS, &catch_cell);
	printf("CAS xics: catch=%u status=%ld\n", catch_cell, rc);
	CHECK(catch_cell == 0 && rc == 0, "CAS failed");
	u32 intc = of_finddevice("/interrupt-controller");
	print_prop_str("intc compatible", intc, "compatible");
	print_prop_hex("ibm,interrupt-server-ranges", intc, "ibm,interrupt-server-ranges");
	server = of_getprop_u32(of_finddevice("/cpus/PowerPC,POWER9@0"), "ibm,ppc-interrupt-server#s", 0);
	printf("server %u\n", server);

	rt_set_vector(0x500, ext_handler);

	/* RTAS view of a source (the vty, 0x1100). */
	rc = rtas_call(rtas_tok.get_xive, 1, 3, rets, 0x1100);
	printf("ibm,get-xive(0x1100) status=%ld server=%u prio=0x%x\n", rc, rets[1], rets[2]);

	/* The documented polled sequence. */
	rc = hcall0(out, H_XIRR);
	printf("H_XIRR rc=%ld xirr=0x%08lx\n", rc, out[0]);
	rc = hcall1(NULL, H_CPPR, 0xff);
	printf("H_CPPR(0xff) rc=%ld\n", rc);
	rc = hcall2(NULL, H_IPI, server, IPI_PRIO);
	printf("H_IPI(%u, %d) rc=%ld\n", server, IPI_PRIO, rc);
	rc = hcall1(out, H_IPOLL, server);
	printf("H_IPOLL rc=%ld xirr=0x%08lx mfrr=0x%lx\n", rc, out[0], out[1]);
	rc = hcall0(out, H_XIRR);
	u32 xirr = (u32)out[0];
	printf("H_XIRR rc=%ld xirr=0x%08x\n", rc, xirr);
	rc = hcall2(NULL, H_IPI, server, 0xff);
	printf("H_IPI(%u, 0xff) rc=%ld\n", server, rc);
	rc = hcall1(NULL, H_EOI, xirr);
	printf("H_EOI rc=%ld\n", rc);
	rc = hcall0(out, H_XIRR);
	printf("H_XIRR rc=%ld xirr=0x%08lx\n", rc, out[0]);
	rc = hcall2(NULL, H_IPI, 99, 0xff);
	printf("H_IPI(99, 0xff) rc=%ld\n", rc);
	hcall1(NULL, H_CPPR, 0xff);

	/* Round trips through the 0x500 handler. */
	irq_enable();
	for (int i = 0; i < n_ipis; i++) {
		int before = ipis;
		hcall2(NULL, H_IPI, server, IPI_PRIO);
		for (int spin = 0; ipis == before; spin++)
			if (spin > 10000000)
				fail("IPI %d never arrived", i);
	}
	irq_disable();
	printf("ipis received %d, spurious %d, other sources %d\n", ipis, spurious, others);
	CHECK(ipis == n_ipis && spurious == 0 && others == 0, "bad interrupt counts");
	rc = hcall1(out, H_IPOLL, server);
	printf("H_IPOLL rc=%ld xirr=0x%08lx mfrr=0x%lx\n", rc, out[0], out[1]);
	/* XIVE hcalls are refused once XICS was negotiated */
	rc = hcall2(out, H_INT_GET_SOURCE_INFO, 0, 0);
	printf("H_INT_GET_SOURCE_INFO rc=%ld\n", rc);
	pass();
}
