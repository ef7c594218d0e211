/*
 * cas: negotiate the interrupt controller through
 * call-method("ibm,client-architecture-support") and show how the device tree
 * changes.  bootargs "mode=xics" asks for XICS (OV5 byte 23 = 0x00), anything
 * else for XIVE exploitation (0x40).
 */
#include "xive.h"

static void show_tree(const char *when)
{
	u32 chosen = of_finddevice("/chosen");
	u32 intc = of_finddevice("/interrupt-controller");
	u32 cpu0 = of_finddevice("/cpus/PowerPC,POWER9@0");
	printf("-- %s\n", when);
	print_prop_hex("ibm,architecture-vec-5", chosen, "ibm,architecture-vec-5");
	print_prop_str("intc compatible", intc, "compatible");
	print_prop_str("intc device_type", intc, "device_type");
	print_prop_hex("cpu-version", cpu0, "cpu-version");
}

int main(void)
{
	u8 mode = cas_mode_from_bootargs();
	u32 catch_cell;

	printf("cas: requesting %s (OV5 byte 23 = 0x%02x)\n", mode == OV5_INTC_XIVE ? "XIVE" : "XICS", mode);
	print_prop_hex("platform-support", of_finddevice("/chosen"), "ibm,arch-vec-5-platform-support");
	show_tree("before CAS");
	int rc = cas_request(mode, &catch_cell);
	printf("call-method catch=%u status=%d\n", catch_cell, rc);
	CHECK(catch_cell == 0 && rc == 0, "CAS failed");
	show_tree("after CAS");

	/* The negotiated mode must show in vec-5 byte 23 and in the node. */
	u8 v5[32];
	int n = of_getprop(of_finddevice("/chosen"), "ibm,architecture-vec-5", v5, sizeof(v5));
	CHECK(n > 23 || mode == OV5_INTC_XICS, "vec-5 too short (%d)", n);
	u8 got = n > 23 ? v5[23] & 0xc0 : 0;
	CHECK(got == mode, "vec-5 byte 23 = 0x%02x, want 0x%02x", got, mode);
	char compat[64];
	n = of_getprop(of_finddevice("/interrupt-controller"), "compatible", compat, sizeof(compat));
	CHECK(n > 0, "no interrupt-controller compatible");
	compat[sizeof(compat) - 1] = 0;
	const char *want = mode == OV5_INTC_XIVE ? "ibm,power-ivpe" : "IBM,ppc-xicp";
	CHECK(!strcmp(compat, want), "interrupt controller \"%s\", want \"%s\"", compat, want);
	pass();
}
