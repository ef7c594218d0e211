/*
 * timer: decrementer interrupts at 0x900 and H_CEDE.  The printed text must
 * not depend on timing, so only tolerant pass/fail checks are printed, never
 * raw timebase values.
 */
#include "rt.h"

#define N_TICKS 20
#define N_CEDES 5

static volatile int dec_count;
static volatile u32 dec_reload; /* 0: leave the decrementer "off" (max value) */
static volatile int dec_limit;  /* stop reloading after this many ticks */

static void dec_handler(u64 vec, struct exc_frame *f)
{
	dec_count++;
	/* The POWER9 decrementer interrupt is level-like: it stays pending while
	 * DEC is negative, so always write a new positive value. */
	set_dec(dec_reload && dec_count < dec_limit ? dec_reload : 0x7fffffff);
}

static void check(const char *what, int ok)
{
	printf("%-44s %s\n", what, ok ? "ok" : "FAILED");
	if (!ok)
		fail("%s", what);
}

int main(void)
{
	u32 cpu = of_finddevice("/cpus/PowerPC,POWER9@0");
	u32 tb_freq = of_getprop_u32(cpu, "timebase-frequency", 0);
	u32 dec_bits = of_getprop_u32(cpu, "ibm,dec-bits", 0);
	printf("timer: timebase-frequency %u, ibm,dec-bits %u\n", tb_freq, dec_bits);
	CHECK(tb_freq != 0, "no timebase-frequency");

	set_dec(0x7fffffff);
	rt_set_vector(0x900, dec_handler);

	/* The timebase and the decrementer move. */
	u64 t0 = mftb();
	u32 d0 = get_dec();
	for (volatile int i = 0; i < 100000; i++)
		;
	check("timebase advances", mftb() > t0);
	check("decrementer counts down", get_dec() < d0);

	/* Periodic decrementer interrupts with EE=1, period 1 ms. */
	u32 period = tb_freq / 1000;
	dec_reload = period;
	dec_limit = N_TICKS; /* so the count cannot overshoot before EE goes off */
	u64 start = mftb();
	set_dec(period);
	irq_enable();
	while (dec_count < N_TICKS)
		;
	irq_disable();
	u64 elapsed = mftb() - start;
	dec_reload = 0;
	set_dec(0x7fffffff);
	printf("decrementer interrupts: %d\n", dec_count);
	check("elapsed >= 90% of N periods", elapsed >= (u64)period * N_TICKS * 9 / 10);
	check("elapsed < 100x N periods", elapsed < (u64)period * N_TICKS * 100);

	/* H_CEDE with EE=0: it sets EE itself and returns once the decrementer
	 * fires; the interrupt is then taken right after the sc. */
	int ok_wake = 1, ok_time = 1, ok_rc = 1, ok_ee = 1;
	for (int i = 0; i < N_CEDES; i++) {
		int before = dec_count;
		u64 s = mftb();
		set_dec(period);
		long rc = hcall0(NULL, H_CEDE);
		/* with EE=1 now, the interrupt has been delivered by this point */
		u64 e = mftb() - s;
		ok_ee &= (mfmsr() & MSR_EE) != 0;
		irq_disable();
		ok_rc &= rc == H_SUCCESS;
		ok_wake &= dec_count == before + 1;
		ok_time &= e >= (u64)period * 9 / 10;
	}
	printf("H_CEDE sleeps: %d\n", N_CEDES);
	check("H_CEDE returns H_SUCCESS", ok_rc);
	check("each H_CEDE woken by one decrementer tick", ok_wake);
	check("each H_CEDE lasts >= 90% of the period", ok_time);
	check("H_CEDE leaves MSR[EE] set", ok_ee);
	pass();
}
