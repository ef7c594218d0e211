/*
 * hello / hello-le: the first image.  Exercises the entry state, the OF client
 * interface (finddevice/getprop), a few hcalls, and RTAS power-off.
 * Every printed value is deterministic (r1/r5 differ between firmwares and
 * are deliberately not printed).
 */
#include "rt.h"

int main(void)
{
	char args[256];
	long rc;

	printf("hello from xive-machine\n");
	printf("endian %s\n", IMAGE_ENDIAN);
	printf("r3=0x%lx r4=0x%lx\n", entry_r3, entry_r4);
	/* after start.S: SF set, plus LE for little-endian images; real mode */
	printf("msr=0x%lx\n", mfmsr());

	of_bootargs(args, sizeof(args));
	printf("bootargs \"%s\"\n", args);
	printf("rtas power-off token 0x%x\n",
	       of_getprop_u32(of_finddevice("/rtas"), "power-off", 0xffffffffu));

	rc = hcall1(NULL, H_SET_SPRG0, 0x1234);
	printf("H_SET_SPRG0 rc=%ld sprg0=0x%lx\n", rc, mfspr(272));
	rc = hcall0(NULL, 0x1000);
	printf("hcall 0x1000 rc=%ld\n", rc);
	rc = hcall4(NULL, H_PUT_TERM_CHAR, 0, 17, 0, 0);
	printf("H_PUT_TERM_CHAR len 17 rc=%ld\n", rc);
	pass();
}
