/*
 * hcall-loop: benchmark image.  N cheap hcalls (H_SET_SPRG0); N comes from
 * bootargs "n=NUM" (default 1000000).
 */
#include "rt.h"

int main(void)
{
	char args[256];
	of_bootargs(args, sizeof(args));
	u64 n = bootarg_num(args, "n", 1000000);
	for (u64 i = 0; i < n; i++)
		hcall1(NULL, H_SET_SPRG0, i);
	printf("done %lu\n", n);
	power_off();
}
