/*
 * xive-errors: the error returns of every sPAPR XIVE hcall, one line per case
 * ("<hcall> <case> rc=<n>").  Expected values follow QEMU 7.2 (xive.md 1.3):
 * before CAS everything is H_FUNCTION; afterwards reserved flags give
 * H_PARAMETER and bad arguments H_Pn, with n the argument's position.
 */
#include "xive.h"

#define BAD_LISN 0x2000 /* = nr_irqs on QEMU pseries */
#define BAD_TARGET 99
#define PRIO 6

static u32 qpage[1 << 14] __attribute__((aligned(1 << 16)));
static int failures;

static void expect(const char *hc, const char *what, long rc, long want)
{
	printf("%s %s rc=%ld\n", hc, what, rc);
	if (rc != want) {
		printf("  ^ expected %ld\n", want);
		failures++;
	}
}

#define T(hc, what, want, ...) expect(#hc, what, hcall6(out, hc, __VA_ARGS__), want)

int main(void)
{
	u64 out[8];
	u32 catch_cell;

	printf("xive-errors\n");
	/* Every XIVE hcall is refused until XIVE is negotiated. */
	T(H_INT_GET_SOURCE_INFO, "before-cas", H_FUNCTION, 0, 0, 0, 0, 0, 0);
	T(H_INT_SET_SOURCE_CONFIG, "before-cas", H_FUNCTION, 0, 0, 0, PRIO, 0, 0);
	T(H_INT_GET_SOURCE_CONFIG, "before-cas", H_FUNCTION, 0, 0, 0, 0, 0, 0);
	T(H_INT_GET_QUEUE_INFO, "before-cas", H_FUNCTION, 0, 0, PRIO, 0, 0, 0);
	T(H_INT_SET_QUEUE_CONFIG, "before-cas", H_FUNCTION, 0, 0, PRIO, 0, 0, 0);
	T(H_INT_GET_QUEUE_CONFIG, "before-cas", H_FUNCTION, 0, 0, PRIO, 0, 0, 0);
	T(H_INT_SET_OS_REPORTING_LINE, "before-cas", H_FUNCTION, 0, 0, 0, 0, 0, 0);
	T(H_INT_GET_OS_REPORTING_LINE, "before-cas", H_FUNCTION, 0, 0, 0, 0, 0, 0);
	T(H_INT_ESB, "before-cas", H_FUNCTION, 0, 0, ESB_GET, 0, 0, 0);
	T(H_INT_SYNC, "before-cas", H_FUNCTION, 0, 0, 0, 0, 0, 0);
	T(H_INT_RESET, "before-cas", H_FUNCTION, 0, 0, 0, 0, 0, 0);

	long rc = cas_request(OV5_INTC_XIVE, &catch_cell);
	printf("CAS xive: catch=%u status=%ld\n", catch_cell, rc);
	CHECK(catch_cell == 0 && rc == 0, "CAS failed");

	T(H_INT_GET_SOURCE_INFO, "flags=1", H_PARAMETER, 1, 0, 0, 0, 0, 0);
	T(H_INT_GET_SOURCE_INFO, "lisn=nr_irqs", H_P2, 0, BAD_LISN, 0, 0, 0, 0);
	T(H_INT_GET_SOURCE_INFO, "lisn=1-unclaimed", H_P2, 0, 1, 0, 0, 0, 0);
	T(H_INT_GET_SOURCE_INFO, "lisn=0", H_SUCCESS, 0, 0, 0, 0, 0, 0);

	T(H_INT_SET_SOURCE_CONFIG, "flags=4", H_PARAMETER, 4, 0, 0, PRIO, 0, 0);
	T(H_INT_SET_SOURCE_CONFIG, "lisn=nr_irqs", H_P2, 0, BAD_LISN, 0, PRIO, 0, 0);
	T(H_INT_SET_SOURCE_CONFIG, "prio=7-reserved", H_P4, 0, 0, 0, 7, 0, 0);
	T(H_INT_SET_SOURCE_CONFIG, "target=99", H_P3, 0, 0, BAD_TARGET, PRIO, 0, 0);
	T(H_INT_SET_SOURCE_CONFIG, "prio=0xff-mask", H_SUCCESS, 0, 0, BAD_TARGET, 0xff, 0, 0);

	T(H_INT_GET_SOURCE_CONFIG, "flags=1", H_PARAMETER, 1, 0, 0, 0, 0, 0);
	T(H_INT_GET_SOURCE_CONFIG, "lisn=nr_irqs", H_P2, 0, BAD_LISN, 0, 0, 0, 0);
	T(H_INT_GET_SOURCE_CONFIG, "lisn=0-masked", H_SUCCESS, 0, 0, 0, 0, 0, 0);
	printf("  target=0x%lx prio=0x%lx eisn=0x%lx\n", out[0], out[1], out[2]);

	T(H_INT_GET_QUEUE_INFO, "flags=1", H_PARAMETER, 1, 0, PRIO, 0, 0, 0);
	T(H_INT_GET_QUEUE_INFO, "prio=7-reserved", H_P3, 0, 0, 7, 0, 0, 0);
	T(H_INT_GET_QUEUE_INFO, "target=99", H_P2, 0, BAD_TARGET, PRIO, 0, 0, 0);

	T(H_INT_SET_QUEUE_CONFIG, "flags=2", H_PARAMETER, 2, 0, PRIO, (u64)qpage, 16, 0);
	T(H_INT_SET_QUEUE_CONFIG, "prio=7-reserved", H_P3, 0, 0, 7, (u64)qpage, 16, 0);
	T(H_INT_SET_QUEUE_CONFIG, "target=99", H_P2, 0, BAD_TARGET, PRIO, (u64)qpage, 16, 0);
	T(H_INT_SET_QUEUE_CONFIG, "qpage-misaligned", H_P4, 0, 0, PRIO, (u64)qpage + 0x1000, 16, 0);
	T(H_INT_SET_QUEUE_CONFIG, "qpage-outside-ram", H_P4, 0, 0, PRIO, 0x100000000UL, 16, 0);
	T(H_INT_SET_QUEUE_CONFIG, "qshift=13", H_P5, 0, 0, PRIO, (u64)qpage, 13, 0);
	T(H_INT_SET_QUEUE_CONFIG, "ok", H_SUCCESS, 1, 0, PRIO, (u64)qpage, 16, 0);

	T(H_INT_GET_QUEUE_CONFIG, "flags=2", H_PARAMETER, 2, 0, PRIO, 0, 0, 0);
	T(H_INT_GET_QUEUE_CONFIG, "prio=7-reserved", H_P3, 0, 0, 7, 0, 0, 0);
	T(H_INT_GET_QUEUE_CONFIG, "target=99", H_P2, 0, BAD_TARGET, PRIO, 0, 0, 0);
	T(H_INT_GET_QUEUE_CONFIG, "debug", H_SUCCESS, 1, 0, PRIO, 0, 0, 0);
	/* only the notify bit: where the generation bit goes is implementation
	 * defined (QEMU: 1 << 62) */
	printf("  notify=%lu qshift=%lu qindex=%lu\n", out[0] & 1, out[2], out[3]);

	T(H_INT_SET_OS_REPORTING_LINE, "unimplemented", H_FUNCTION, 0, 0, 0, 0, 0, 0);
	T(H_INT_GET_OS_REPORTING_LINE, "unimplemented", H_FUNCTION, 0, 0, 0, 0, 0, 0);

	T(H_INT_ESB, "flags=2", H_PARAMETER, 2, 0, ESB_GET, 0, 0, 0);
	T(H_INT_ESB, "lisn=nr_irqs", H_P2, 0, BAD_LISN, ESB_GET, 0, 0, 0);
	T(H_INT_ESB, "offset=0x20001", H_P3, 0, 0, 0x20001, 0, 0, 0);

	T(H_INT_SYNC, "flags=1", H_PARAMETER, 1, 0, 0, 0, 0, 0);
	T(H_INT_SYNC, "lisn=nr_irqs", H_P2, 0, BAD_LISN, 0, 0, 0, 0);
	T(H_INT_SYNC, "lisn=0", H_SUCCESS, 0, 0, 0, 0, 0, 0);

	T(H_INT_RESET, "flags=1", H_PARAMETER, 1, 0, 0, 0, 0, 0);
	T(H_INT_RESET, "ok", H_SUCCESS, 0, 0, 0, 0, 0, 0);

	/* The XICS interface is dead once XIVE is active. */
	T(H_XIRR, "xive-active", -1, 0, 0, 0, 0, 0, 0);
	T(H_CPPR, "xive-active", -1, 0xff, 0, 0, 0, 0, 0);
	T(H_IPI, "xive-active", -1, 0, 0xff, 0, 0, 0, 0);
	T(H_EOI, "xive-active", -1, 0, 0, 0, 0, 0, 0);

	CHECK(failures == 0, "%d unexpected return codes", failures);
	pass();
}
