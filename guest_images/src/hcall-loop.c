/*
 * hcall-loop: benchmark image.  N cheap hcalls; N comes from bootargs "n=NUM" (default 1000000) and the
 * opcode from "op=NUM" (decimal, default H_SET_SPRG0; e.g. op=4096 is an unknown opcode -> H_FUNCTION).
 */
#include "rt.h"

int main(void)
{
	char args[256];
	of_bootargs(args, sizeof(args));
	u64 n = bootarg_num(args, "n", 1000000);
	u64 op = bootarg_num(args, "op", H_SET_SPRG0);
	for (u64 i = 0; i < n; i++)
		hcall1(NULL, op, i);
	printf("done %lu\n", n);
	power_off();
}
