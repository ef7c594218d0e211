/*
 * spin: benchmark image for guest MIPS.  A counted loop of exactly three instructions per iteration
 * (addi, addi, bdnz) run n times; n comes from bootargs "n=NUM" (default 100000000).
 */
#include "rt.h"

int main(void)
{
	char args[128];
	of_bootargs(args, sizeof(args));
	u64 n = bootarg_num(args, "n", 100000000);
	u64 a = 0, b = 0;
	if (n) {
		__asm__ volatile("mtctr %2\n"
		                 "1: addi %0, %0, 1\n"
		                 "   addi %1, %1, 2\n"
		                 "   bdnz 1b\n"
		                 : "+r"(a), "+r"(b)
		                 : "r"(n)
		                 : "ctr");
	}
	printf("done %lu %lu\n", a, b);
	power_off();
}
