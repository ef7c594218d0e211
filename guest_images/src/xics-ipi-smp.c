/*
 * xics-ipi-smp: XICS IPIs between vCPUs.  After CAS (XICS) the boot CPU starts
 * every secondary; each opens its CPPR and sleeps in H_CEDE.  The boot CPU then
 * sends N_IPIS IPIs to each secondary in turn (H_IPI to its server) and waits
 * for each to be counted by the target's 0x500 handler.  Only the boot CPU
 * prints, so the output order is fixed.  Run with -smp 2 or more.
 */
#include "xive.h"

#define N_IPIS 100
#define XICS_IPI 2
#define IPI_PRIO 5

static u32 ncpus, servers[MAX_CPUS];
static volatile int ipis[MAX_CPUS], bad[MAX_CPUS], ready[MAX_CPUS];

static void ext_handler(u64 vec, struct exc_frame *f)
{
	u64 out[8];
	u64 me = this_cpu();
	hcall0(out, H_XIRR);
	u32 xirr = (u32)out[0];
	if ((xirr & 0xffffff) == XICS_IPI) {
		hcall2(NULL, H_IPI, servers[me], 0xff); /* clear MFRR before EOI */
		ipis[me]++;
	} else {
		bad[me]++;
	}
	hcall1(NULL, H_EOI, xirr);
}

/*
 * Sleep in H_CEDE until N_IPIS IPIs have been handled.  The count is checked
 * with EE off: an IPI arriving after the check stays pending, and H_CEDE
 * (which sets EE itself) then returns at once instead of sleeping forever.
 */
static void idle_until_all_ipis(u64 idx)
{
	irq_disable();
	while (ipis[idx] < N_IPIS) {
		hcall0(NULL, H_CEDE);
		irq_disable();
	}
}

static void secondary(u64 idx)
{
	hcall1(NULL, H_CPPR, 0xff);
	sync();
	ready[idx] = 1;
	idle_until_all_ipis(idx);
}

int main(void)
{
	u32 catch_cell;

	printf("xics-ipi-smp\n");
	ncpus = of_cpu_servers(servers, MAX_CPUS);
	printf("cpus %u\n", ncpus);
	CHECK(ncpus >= 2, "needs -smp 2 or more");
	/* CAS must run while the other vCPUs are still stopped */
	long rc = cas_request(OV5_INTC_XICS, &catch_cell);
	printf("CAS xics: catch=%u status=%ld\n", catch_cell, rc);
	CHECK(catch_cell == 0 && rc == 0, "CAS failed");
	rt_set_vector(0x500, ext_handler);
	secondary_main = secondary;

	for (u32 i = 1; i < ncpus; i++) {
		CHECK(start_secondary(i, servers[i]) == 0, "start-cpu %u", i);
		for (int spin = 0; !ready[i]; spin++)
			if (spin > 100000000)
				fail("cpu %u never came up", i);
	}
	for (u32 i = 1; i < ncpus; i++) {
		for (int n = 0; n < N_IPIS; n++) {
			int before = ipis[i];
			rc = hcall2(NULL, H_IPI, servers[i], IPI_PRIO);
			CHECK(rc == 0, "H_IPI rc=%ld", rc);
			for (int spin = 0; ipis[i] == before; spin++)
				if (spin > 100000000)
					fail("IPI %d to cpu %u never arrived", n, i);
		}
	}
	for (u32 i = 1; i < ncpus; i++) {
		int state = wait_cpu_stopped(servers[i]);
		printf("cpu %u (server %u): ipis %d, other interrupts %d, stopped %s\n", i, servers[i], ipis[i],
		       bad[i], state == 0 ? "yes" : "no");
		CHECK(ipis[i] == N_IPIS && bad[i] == 0 && state == 0, "cpu %u", i);
	}
	CHECK(ipis[0] == 0, "boot cpu got %d ipis", ipis[0]);
	pass();
}
