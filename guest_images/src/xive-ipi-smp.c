/*
 * xive-ipi-smp: XIVE IPIs between vCPUs, the way Linux sets them up: the boot
 * CPU configures, for every vCPU, an event queue at the OS priority and that
 * vCPU's IPI source (LISN = its index, from ibm,xive-lisn-ranges) routed to
 * it; each vCPU opens its own CPPR through the TIMA (the shared TIMA address
 * selects the accessing vCPU's context).  The boot CPU then triggers N_IPIS
 * IPIs per secondary through its ESB trigger page.  Run with -smp 2 or more.
 */
#include "xive.h"

#define N_IPIS 100 /* per secondary; bootargs "n=NUM" changes it (the benchmark does) */
static int n_ipis = N_IPIS;
#define QSHIFT 16
#define QENTRIES (1 << (QSHIFT - 2))
#define EISN_BASE 0x100 /* eisn = EISN_BASE + cpu index */

static u32 qpages[MAX_CPUS][QENTRIES] __attribute__((aligned(1 << QSHIFT)));
static u32 q_idx[MAX_CPUS], q_toggle[MAX_CPUS];
static u64 esb_eoi[MAX_CPUS], esb_trig[MAX_CPUS];
static u64 tima_os = TIMA_OS_PAGE_DEFAULT;
static u32 ncpus, servers[MAX_CPUS];
static volatile int ipis[MAX_CPUS], bad[MAX_CPUS], spurious[MAX_CPUS], ready[MAX_CPUS];

static void ext_handler(u64 vec, struct exc_frame *f)
{
	u64 me = this_cpu();
	u16 ack = mmio_ld16(tima_os + TM_SPC_ACK_OS_REG);
	if (!((ack >> 8) & 0x80))
		spurious[me]++;
	volatile u32 *q = qpages[me];
	for (;;) {
		u32 e = be32_to_cpu(q[q_idx[me]]);
		if ((e >> 31) == q_toggle[me])
			break;
		q_idx[me] = (q_idx[me] + 1) & (QENTRIES - 1);
		if (q_idx[me] == 0)
			q_toggle[me] ^= 1;
		if ((e & 0x7fffffff) == EISN_BASE + me) {
			ipis[me]++;
			mmio_ld64(esb_eoi[me] + ESB_LOAD_EOI);
		} else {
			bad[me]++;
		}
	}
	mmio_st8(tima_os + TM_QW1_CPPR, 0xff);
}

/*
 * Sleep in H_CEDE until N_IPIS IPIs have been handled.  The count is checked
 * with EE off: an IPI arriving after the check stays pending, and H_CEDE
 * (which sets EE itself) then returns at once instead of sleeping forever.
 */
static void idle_until_all_ipis(u64 idx)
{
	irq_disable();
	while (ipis[idx] < n_ipis) {
		hcall0(NULL, H_CEDE);
		irq_disable();
	}
}

static void secondary(u64 idx)
{
	mmio_st8(tima_os + TM_QW1_CPPR, 0xff);
	sync();
	ready[idx] = 1;
	idle_until_all_ipis(idx);
	mmio_st8(tima_os + TM_QW1_CPPR, 0);
}

int main(void)
{
	u64 out[8];
	u32 catch_cell;
	long rc;

	printf("xive-ipi-smp\n");
	char args[128];
	of_bootargs(args, sizeof(args));
	n_ipis = (int)bootarg_num(args, "n", N_IPIS);
	ncpus = of_cpu_servers(servers, MAX_CPUS);
	printf("cpus %u\n", ncpus);
	CHECK(ncpus >= 2, "needs -smp 2 or more");
	rc = cas_request(OV5_INTC_XIVE, &catch_cell);
	printf("CAS xive: catch=%u status=%ld\n", catch_cell, rc);
	CHECK(catch_cell == 0 && rc == 0, "CAS failed");
	u32 intc = of_finddevice("/interrupt-controller");
	print_prop_hex("ibm,xive-lisn-ranges", intc, "ibm,xive-lisn-ranges");
	u32 reg[8];
	if (of_getprop(intc, "reg", reg, sizeof(reg)) == sizeof(reg))
		tima_os = ((u64)be32_to_cpu(reg[4]) << 32) | be32_to_cpu(reg[5]);
	const int prio = 6; /* ibm,plat-res-int-priorities <7 0xf8>, see xive-ipi */
	rt_set_vector(0x500, ext_handler);
	secondary_main = secondary;

	for (u32 i = 0; i < ncpus; i++) {
		rc = hcall5(NULL, H_INT_SET_QUEUE_CONFIG, XIVE_END_ALWAYS_NOTIFY, servers[i], prio,
		            (u64)qpages[i], QSHIFT);
		CHECK(rc == 0, "queue config cpu %u rc=%ld", i, rc);
		rc = hcall2(out, H_INT_GET_SOURCE_INFO, 0, i);
		CHECK(rc == 0, "source info lisn %u rc=%ld", i, rc);
		esb_eoi[i] = out[1];
		esb_trig[i] = out[2];
		printf("lisn %u: eoi 0x%lx trig 0x%lx\n", i, out[1], out[2]);
		rc = hcall5(NULL, H_INT_SET_SOURCE_CONFIG, XIVE_SRC_SET_EISN, i, servers[i], prio, EISN_BASE + i);
		CHECK(rc == 0, "source config lisn %u rc=%ld", i, rc);
		rc = hcall2(out, H_INT_GET_SOURCE_CONFIG, 0, i);
		printf("lisn %u: target %lu prio %lu eisn 0x%lx\n", i, out[0], out[1], out[2]);
		mmio_ld64(esb_eoi[i] + ESB_SET_PQ_00); /* unmask */
	}

	for (u32 i = 1; i < ncpus; i++) {
		CHECK(start_secondary(i, servers[i]) == 0, "start-cpu %u", i);
		for (int spin = 0; !ready[i]; spin++)
			if (spin > 100000000)
				fail("cpu %u never came up", i);
	}
	for (u32 i = 1; i < ncpus; i++) {
		for (int n = 0; n < n_ipis; n++) {
			int before = ipis[i];
			mmio_st64(esb_trig[i], 0);
			for (int spin = 0; ipis[i] == before; spin++)
				if (spin > 100000000)
					fail("IPI %d to cpu %u never arrived", n, i);
		}
	}
	for (u32 i = 1; i < ncpus; i++) {
		int state = wait_cpu_stopped(servers[i]);
		printf("cpu %u (server %u): ipis %d, wrong eisn %d, spurious %d, stopped %s\n", i, servers[i],
		       ipis[i], bad[i], spurious[i], state == 0 ? "yes" : "no");
		CHECK(ipis[i] == n_ipis && bad[i] == 0 && spurious[i] == 0 && state == 0, "cpu %u", i);
	}
	CHECK(ipis[0] == 0, "boot cpu got %d ipis", ipis[0]);
	rc = hcall1(NULL, H_INT_RESET, 0);
	printf("H_INT_RESET rc=%ld\n", rc);
	pass();
}
