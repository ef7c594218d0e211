/*
 * xive-esb: the ESB PQ state machine and the event queue, observed step by
 * step with interrupts off (xive.md sections 2.2-2.3, 3.5, 4).  Every line
 * is "<step>: <observations>"; the values are what QEMU 7.2 produces.
 */
#include "xive.h"

#define LISN 0
#define EISN 0x42
#define PRIO 6
#define QSHIFT 16
#define QENTRIES (1 << (QSHIFT - 2))
#define ESB_SET_PQ_10 0xe00
#define ESB_SET_PQ_11 0xf00
#define ESB_STORE_EOI 0x400

static u32 qpage[QENTRIES] __attribute__((aligned(1 << QSHIFT)));
static u32 q_idx, q_toggle;
static u64 tima, eoi, trig;

/* Number of entries waiting in the queue (without consuming them). */
static int eq_pending(void)
{
	int n = 0;
	u32 i = q_idx, t = q_toggle;
	for (;;) {
		u32 e = be32_to_cpu(((volatile u32 *)qpage)[i]);
		if ((e >> 31) == t || n == QENTRIES)
			return n;
		n++;
		i = (i + 1) & (QENTRIES - 1);
		if (i == 0)
			t ^= 1;
	}
}

/* Pop one entry: its EISN, or -1 if the queue is empty. */
static long eq_pop(void)
{
	u32 e = be32_to_cpu(((volatile u32 *)qpage)[q_idx]);
	if ((e >> 31) == q_toggle)
		return -1;
	q_idx = (q_idx + 1) & (QENTRIES - 1);
	if (q_idx == 0)
		q_toggle ^= 1;
	return e & 0x7fffffff;
}

static u64 pq(void) { return mmio_ld64(eoi + ESB_GET); }
static u64 tima_w0(void) { return mmio_ld64(tima + TM_QW1_NSR); }

static void show(const char *step)
{
	printf("%-22s PQ=%lu queue=%d tima=0x%016lx\n", step, pq(), eq_pending(), tima_w0());
}

int main(void)
{
	u64 out[8];
	u32 catch_cell;
	long rc;

	printf("xive-esb\n");
	rc = cas_request(OV5_INTC_XIVE, &catch_cell);
	printf("CAS xive: catch=%u status=%ld\n", catch_cell, rc);
	CHECK(catch_cell == 0 && rc == 0, "CAS failed");
	u32 reg[8];
	tima = TIMA_OS_PAGE_DEFAULT;
	if (of_getprop(of_finddevice("/interrupt-controller"), "reg", reg, sizeof(reg)) == sizeof(reg))
		tima = ((u64)be32_to_cpu(reg[4]) << 32) | be32_to_cpu(reg[5]);
	rt_set_vector(0x500, NULL); /* EE stays off: any 0x500 would be a FAIL */

	rc = hcall5(NULL, H_INT_SET_QUEUE_CONFIG, XIVE_END_ALWAYS_NOTIFY, 0, PRIO, (u64)qpage, QSHIFT);
	CHECK(rc == 0, "queue config rc=%ld", rc);
	rc = hcall2(out, H_INT_GET_SOURCE_INFO, 0, LISN);
	CHECK(rc == 0, "source info rc=%ld", rc);
	eoi = out[1];
	trig = out[2];
	rc = hcall5(NULL, H_INT_SET_SOURCE_CONFIG, XIVE_SRC_SET_EISN, LISN, 0, PRIO, EISN);
	CHECK(rc == 0, "source config rc=%ld", rc);

	show("configured");
	mmio_st64(trig, 0);
	show("trigger while off");
	printf("set PQ=00 returns %lu\n", mmio_ld64(eoi + ESB_SET_PQ_00));
	show("unmasked, CPPR 0");
	mmio_st64(trig, 0);
	show("trigger, CPPR 0");
	mmio_st8(tima + TM_QW1_CPPR, 0xff);
	show("CPPR 0xff");
	mmio_st64(trig, 0);
	show("trigger while pending");
	printf("ack 0x%04x\n", mmio_ld16(tima + TM_SPC_ACK_OS_REG));
	show("acked");
	printf("pop eisn 0x%lx\n", eq_pop());
	printf("EOI returns %lu\n", mmio_ld64(eoi + ESB_LOAD_EOI));
	show("EOI with Q set");
	printf("pop eisn 0x%lx\n", eq_pop());
	printf("pop on empty %ld\n", eq_pop());
	printf("EOI returns %lu\n", mmio_ld64(eoi + ESB_LOAD_EOI));
	show("EOI");
	mmio_st8(tima + TM_QW1_CPPR, 0xff);
	show("CPPR 0xff again");
	printf("ack 0x%04x\n", mmio_ld16(tima + TM_SPC_ACK_OS_REG));
	mmio_st8(tima + TM_QW1_CPPR, 0xff);
	show("ack, CPPR 0xff");

	/* The set-PQ offsets return the old value. */
	printf("set PQ=11 returns %lu\n", mmio_ld64(eoi + ESB_SET_PQ_11));
	printf("set PQ=10 returns %lu\n", mmio_ld64(eoi + ESB_SET_PQ_10));
	printf("set PQ=01 returns %lu\n", mmio_ld64(eoi + ESB_SET_PQ_01));
	printf("set PQ=00 returns %lu\n", mmio_ld64(eoi + ESB_SET_PQ_00));
	/* A load from the trigger page is invalid (all ones); a store to the
	 * StoreEOI offset is ignored without the STORE_EOI source flag. */
	printf("trigger-page load 0x%lx\n", mmio_ld64(trig));
	mmio_st64(eoi + ESB_SET_PQ_10, 0);
	printf("store to 0xe00: PQ=%lu\n", pq());
	mmio_st64(eoi + ESB_STORE_EOI, 0);
	printf("store to StoreEOI offset: PQ=%lu\n", pq());
	mmio_st64(eoi + ESB_SET_PQ_00, 0);
	printf("store to 0xc00: PQ=%lu\n", pq());
	show("before wrap test");

	/* Many round trips, enough to wrap the queue and flip the generation. */
	int ok = 0, bad = 0;
	for (int i = 0; i < QENTRIES + 100; i++) {
		mmio_st64(trig, 0);
		u16 ack = mmio_ld16(tima + TM_SPC_ACK_OS_REG);
		long e = eq_pop();
		if (ack == 0x8006 && e == EISN && eq_pop() == -1 && mmio_ld64(eoi + ESB_LOAD_EOI) == 0)
			ok++;
		else
			bad++;
		mmio_st8(tima + TM_QW1_CPPR, 0xff);
	}
	printf("round trips ok %d bad %d, consumer index %u toggle %u\n", ok, bad, q_idx, q_toggle);
	rc = hcall3(out, H_INT_GET_QUEUE_CONFIG, XIVE_END_ALWAYS_NOTIFY /* DEBUG */, 0, PRIO);
	printf("H_INT_GET_QUEUE_CONFIG(debug) rc=%ld qindex=%lu\n", rc, out[3]);
	show("after wrap test");
	CHECK(bad == 0, "%d bad round trips", bad);
	pass();
}
