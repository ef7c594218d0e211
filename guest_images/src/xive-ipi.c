/*
 * xive-ipi: the Linux pseries XIVE driver's sequence (xive.md section 8) on
 * one vCPU: CAS for XIVE exploitation, an event queue at the OS priority,
 * the IPI source (LISN 0) routed to it, then 1000 IPIs triggered through the
 * ESB trigger page, taken at 0x500, acknowledged through the TIMA, drained
 * from the queue and EOI'd with an ESB load.
 */
#include "xive.h"

#define N_IPIS 1000 /* bootargs "n=NUM" changes it (the benchmark does) */
#define IPI_LISN 0
#define IPI_EISN 0x1234 /* arbitrary, checked on every queue entry */
#define QSHIFT 16

static u32 qpage[1 << (QSHIFT - 2)] __attribute__((aligned(1 << QSHIFT)));
static u32 q_idx, q_toggle;
static const u32 q_mask = (1 << (QSHIFT - 2)) - 1;

static u64 tima_os, esb_eoi, esb_trig;
static volatile int ipis, spurious, bad_eisn, q_entries;

/* Pop one entry; 0 if the queue is empty.  The producer writes
 * (generation << 31) | eisn, generation starting at 1, and flips it on wrap. */
static u32 eq_pop(void)
{
	u32 e = be32_to_cpu(((volatile u32 *)qpage)[q_idx]);
	if ((e >> 31) == q_toggle)
		return 0;
	q_idx = (q_idx + 1) & q_mask;
	if (q_idx == 0)
		q_toggle ^= 1;
	q_entries++;
	return (e & 0x7fffffff) | 0x80000000u; /* mark "valid" so eisn 0 works */
}

static void handle_events(void)
{
	u32 e;
	while ((e = eq_pop())) {
		if ((e & 0x7fffffff) != IPI_EISN) {
			bad_eisn++;
			continue;
		}
		ipis++;
		mmio_ld64(esb_eoi + ESB_LOAD_EOI); /* PQ 10 -> 00 */
	}
}

static void ext_handler(u64 vec, struct exc_frame *f)
{
	u16 ack = mmio_ld16(tima_os + TM_SPC_ACK_OS_REG);
	if (!((ack >> 8) & 0x80))
		spurious++;
	handle_events();
	/* the ack raised CPPR to the interrupt's priority: open it again */
	mmio_st8(tima_os + TM_QW1_CPPR, 0xff);
}

/* Most favoured priority the platform leaves to the OS (Linux: the highest
 * number not covered by ibm,plat-res-int-priorities). */
static int os_priority(void)
{
	u32 ranges[16];
	int n = of_getprop(of_finddevice("/"), "ibm,plat-res-int-priorities", ranges, sizeof(ranges));
	for (int p = 7; p >= 0; p--) {
		int reserved = 0;
		for (int i = 0; i + 1 < n / 4; i += 2) {
			u32 base = be32_to_cpu(ranges[i]), cnt = be32_to_cpu(ranges[i + 1]);
			if ((u32)p >= base && (u32)p < base + cnt)
				reserved = 1;
		}
		if (!reserved)
			return p;
	}
	return -1;
}

int main(void)
{
	u64 out[8];
	long rc;
	u32 catch_cell;

	printf("xive-ipi\n");
	char args[128];
	of_bootargs(args, sizeof(args));
	int n_ipis = (int)bootarg_num(args, "n", N_IPIS);
	rc = cas_request(OV5_INTC_XIVE, &catch_cell);
	printf("CAS xive: catch=%u status=%ld\n", catch_cell, rc);
	CHECK(catch_cell == 0 && rc == 0, "CAS failed");

	u32 intc = of_finddevice("/interrupt-controller");
	print_prop_str("intc compatible", intc, "compatible");
	print_prop_hex("ibm,xive-lisn-ranges", intc, "ibm,xive-lisn-ranges");
	print_prop_hex("ibm,xive-eq-sizes", intc, "ibm,xive-eq-sizes");
	print_prop_hex("ibm,plat-res-int-priorities", of_finddevice("/"), "ibm,plat-res-int-priorities");
	u32 reg[8];
	tima_os = TIMA_OS_PAGE_DEFAULT;
	if (of_getprop(intc, "reg", reg, sizeof(reg)) == sizeof(reg))
		tima_os = ((u64)be32_to_cpu(reg[4]) << 32) | be32_to_cpu(reg[5]);
	printf("TIMA OS page 0x%lx\n", tima_os);
	int prio = os_priority();
	printf("OS priority %d\n", prio);
	CHECK(prio >= 0, "no usable priority");

	/* No more client-interface calls after this: the vectors overwrite VOF. */
	rt_set_vector(0x500, ext_handler);

	rc = hcall3(out, H_INT_GET_QUEUE_INFO, 0, 0, prio);
	printf("H_INT_GET_QUEUE_INFO rc=%ld esn=0x%lx size=%lu\n", rc, out[0], out[1]);
	rc = hcall5(out, H_INT_SET_QUEUE_CONFIG, XIVE_END_ALWAYS_NOTIFY, 0, prio, (u64)qpage, QSHIFT);
	printf("H_INT_SET_QUEUE_CONFIG rc=%ld\n", rc);
	CHECK(rc == 0, "queue config failed");
	rc = hcall3(out, H_INT_GET_QUEUE_CONFIG, 0, 0, prio);
	printf("H_INT_GET_QUEUE_CONFIG rc=%ld flags=0x%lx qpage=%s qshift=%lu\n", rc, out[0],
	       out[1] == (u64)qpage ? "ours" : "WRONG", out[2]);
	rc = hcall3(out, H_INT_GET_QUEUE_INFO, 0, 0, prio);
	printf("H_INT_GET_QUEUE_INFO rc=%ld esn=0x%lx size=%lu\n", rc, out[0], out[1]);

	rc = hcall2(out, H_INT_GET_SOURCE_INFO, 0, IPI_LISN);
	printf("H_INT_GET_SOURCE_INFO rc=%ld flags=0x%lx eoi=0x%lx trig=0x%lx shift=%lu\n", rc, out[0], out[1],
	       out[2], out[3]);
	CHECK(rc == 0, "no source info");
	esb_eoi = out[1];
	esb_trig = out[2];
	rc = hcall5(NULL, H_INT_SET_SOURCE_CONFIG, XIVE_SRC_SET_EISN, IPI_LISN, 0, prio, IPI_EISN);
	printf("H_INT_SET_SOURCE_CONFIG rc=%ld\n", rc);
	rc = hcall2(out, H_INT_GET_SOURCE_CONFIG, 0, IPI_LISN);
	printf("H_INT_GET_SOURCE_CONFIG rc=%ld target=0x%lx prio=%lu eisn=0x%lx\n", rc, out[0], out[1], out[2]);

	printf("TIMA QW1 word0 before CPPR 0x%016lx\n", mmio_ld64(tima_os + TM_QW1_NSR));
	mmio_st8(tima_os + TM_QW1_CPPR, 0xff);
	printf("TIMA QW1 word0 after CPPR  0x%016lx\n", mmio_ld64(tima_os + TM_QW1_NSR));

	printf("ESB PQ (get) %lu\n", mmio_ld64(esb_eoi + ESB_GET));
	printf("ESB unmask (set PQ=00) old PQ %lu\n", mmio_ld64(esb_eoi + ESB_SET_PQ_00));

	/* One IPI with interrupts off, every step observed. */
	mmio_st64(esb_trig, 0);
	printf("polled: PQ after trigger %lu\n", mmio_ld64(esb_eoi + ESB_GET));
	printf("polled: TIMA QW1 word0 0x%016lx\n", mmio_ld64(tima_os + TM_QW1_NSR));
	u16 ack = mmio_ld16(tima_os + TM_SPC_ACK_OS_REG);
	printf("polled: ack 0x%04x\n", ack);
	printf("polled: TIMA QW1 word0 after ack 0x%016lx\n", mmio_ld64(tima_os + TM_QW1_NSR));
	u32 e = eq_pop();
	printf("polled: queue entry eisn 0x%x\n", e & 0x7fffffff);
	printf("polled: queue empty after pop %s\n", eq_pop() ? "no" : "yes");
	printf("polled: EOI load returns %lu\n", mmio_ld64(esb_eoi + ESB_LOAD_EOI));
	printf("polled: PQ after EOI %lu\n", mmio_ld64(esb_eoi + ESB_GET));
	mmio_st8(tima_os + TM_QW1_CPPR, 0xff);
	printf("polled: TIMA QW1 word0 after CPPR 0x%016lx\n", mmio_ld64(tima_os + TM_QW1_NSR));

	/* Round trips through the 0x500 handler. */
	irq_enable();
	for (int i = 0; i < n_ipis; i++) {
		int before = ipis;
		mmio_st64(esb_trig, 0);
		for (int spin = 0; ipis == before; spin++)
			if (spin > 10000000)
				fail("IPI %d never arrived", i);
	}
	irq_disable();
	printf("ipis received %d, spurious %d, bad eisn %d, queue entries %d\n", ipis, spurious, bad_eisn,
	       q_entries);
	printf("final PQ %lu, TIMA QW1 word0 0x%016lx\n", mmio_ld64(esb_eoi + ESB_GET),
	       mmio_ld64(tima_os + TM_QW1_NSR));
	CHECK(ipis == n_ipis, "ipis %d", ipis);
	CHECK(spurious == 0 && bad_eisn == 0, "spurious/bad interrupts");

	/* Tear down like Linux kexec: mask, unroute, disable the queue, reset. */
	mmio_st8(tima_os + TM_QW1_CPPR, 0);
	printf("mask (set PQ=01) old PQ %lu\n", mmio_ld64(esb_eoi + ESB_SET_PQ_01));
	rc = hcall5(NULL, H_INT_SET_SOURCE_CONFIG, XIVE_SRC_SET_EISN, IPI_LISN, 0, 0xff, IPI_EISN);
	printf("H_INT_SET_SOURCE_CONFIG prio 0xff rc=%ld\n", rc);
	rc = hcall5(NULL, H_INT_SET_QUEUE_CONFIG, 0, 0, prio, 0, 0);
	printf("H_INT_SET_QUEUE_CONFIG qshift 0 rc=%ld\n", rc);
	rc = hcall3(out, H_INT_GET_QUEUE_CONFIG, 0, 0, prio);
	printf("H_INT_GET_QUEUE_CONFIG rc=%ld flags=0x%lx qpage=0x%lx qshift=%lu\n", rc, out[0], out[1], out[2]);
	rc = hcall1(NULL, H_INT_RESET, 0);
	printf("H_INT_RESET rc=%ld\n", rc);
	pass();
}
