/*
 * smp: start every other vCPU with RTAS start-cpu.  Each secondary prints one
 * line in turn (a shared "turn" counter serialises them, so the output order
 * does not depend on timing) and stops itself with stop-self; the boot CPU
 * waits for each one to report "stopped" again.
 */
#include "rt.h"

static volatile u32 turn;
static u32 ncpus, servers[MAX_CPUS];

static void secondary(u64 idx)
{
	while (turn != idx)
		;
	/* PIR is not printed: QEMU TCG reads back 0 on every vCPU */
	printf("cpu %lu up: server %u this_cpu %lu msr 0x%lx\n", idx, servers[idx], this_cpu(), mfmsr());
	sync();
	turn = (u32)idx + 1;
}

int main(void)
{
	u32 rets[4];
	int rc;

	ncpus = of_cpu_servers(servers, MAX_CPUS);
	printf("smp: %u cpus\n", ncpus);
	CHECK(ncpus >= 1, "no cpu nodes");
	secondary_main = secondary;
	turn = 1;

	for (u32 i = 1; i < ncpus; i++) {
		rc = rtas_call(rtas_tok.query_cpu_stopped_state, 1, 2, rets, servers[i]);
		printf("cpu %u: query-cpu-stopped-state status=%d state=%u\n", i, rc, rets[1]);
		rc = start_secondary(i, servers[i]);
		CHECK(rc == 0, "start-cpu %u failed: %d", i, rc);
		for (int spin = 0; turn != i + 1; spin++)
			if (spin > 100000000)
				fail("cpu %u never came up", i);
		/* it is about to call stop-self: wait for "stopped" (state 0) */
		int state = wait_cpu_stopped(servers[i]);
		printf("cpu %u: stopped again (state %d)\n", i, state);
		CHECK(state == 0, "cpu %u did not stop", i);
	}
	rc = rtas_call(rtas_tok.query_cpu_stopped_state, 1, 2, rets, 0x7777);
	printf("query-cpu-stopped-state(bad id) status=%d\n", rc);
	rc = start_secondary(0, servers[0]);
	printf("start-cpu(self, running) status=%d\n", rc);
	pass();
}
