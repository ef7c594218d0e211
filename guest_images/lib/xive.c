/*
 * CAS and device-tree helpers for the interrupt-controller images.
 */
#include "xive.h"

/*
 * The architecture vector of spapr-cas-rtas-xics.md section 7 (known to
 * work on QEMU 7.2): three PVR pairs plus the 2.04 terminator, then six
 * option vectors.  Only OV5 byte 23 (interrupt mode) varies.
 */
static const u8 cas_vector_template[] = {
	/* PVR pairs {mask, value}: POWER9 raw, ISA 3.00, ISA 2.07, terminator */
	0xff, 0xff, 0x00, 0x00, 0x00, 0x4e, 0x00, 0x00,
	0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x00, 0x05,
	0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x00, 0x04,
	0xff, 0xff, 0xff, 0xfe, 0x0f, 0x00, 0x00, 0x01,
	0x05, /* number of vectors - 1 */
	/* OV1: ISA 2.00-2.07 and 3.00 */
	0x02, 0x00, 0xff, 0x80,
	/* OV2: OF in real mode, min RMA 512 MiB, max PFT size 48 */
	0x20, 0x20, 0x00, 0x00,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0x00, 0x00, 0x02, 0x00, 0xff, 0xff, 0xff, 0xff, 0x00, 0x30,
	/* OV3: FP, VMX, DFP */
	0x01, 0x00, 0xe0,
	/* OV4: minimum VP entitled capacity */
	0x01, 0x00, 0x01,
	/* OV5, 26 bytes; byte 23 (interrupt mode) is patched at OV5_BYTE23 */
	0x19,
	0x00, 0xf3, 0x00, 0x00, 0xc0, 0x05, 0x00, 0x00, /* bytes 1-8 */
	0x00, 0x00, 0x08, 0x00,                         /* 9-12: max cpus */
	0x00, 0x00, 0x00, 0x00,                         /* 13-16 */
	0xe0, 0x00, 0x00, 0x00,                         /* 17-20 */
	0x01, 0xc0, 0x40, 0x40, 0x00, 0x40,             /* 21-26 */
	/* OV6: OS name = Linux */
	0x02, 0x00, 0x00, 0x02,
};
/* offset of OV5 byte 23: 32 (PVRs) + 1 + 4 (OV1) + 34 (OV2) + 3 + 3 + 1 (OV5 length) + 22 */
#define OV5_BYTE23 (32 + 1 + 4 + 34 + 3 + 3 + 1 + 22)

static u8 cas_vector[sizeof(cas_vector_template)] __attribute__((aligned(8)));

int cas_request(u8 ov5_byte23, u32 *catch_out)
{
	static const char method[] = "ibm,client-architecture-support";
	memcpy(cas_vector, cas_vector_template, sizeof(cas_vector));
	cas_vector[OV5_BYTE23] = ov5_byte23;
	u32 root = of_open("/");
	u32 a[3] = {(u32)(u64)method, root, (u32)(u64)cas_vector}, r[2] = {0, 0};
	u32 c = ci_call("call-method", 3, 2, a, r);
	if (catch_out)
		*catch_out = c;
	return c ? -1 : (int)r[1];
}

u8 cas_mode_from_bootargs(void)
{
	char args[256];
	of_bootargs(args, sizeof(args));
	return strstr(args, "mode=xics") ? OV5_INTC_XICS : OV5_INTC_XIVE;
}

void print_prop_hex(const char *label, u32 ph, const char *name)
{
	u8 buf[128];
	int n = of_getprop(ph, name, buf, sizeof(buf));
	printf("%s:", label);
	if (n < 0)
		printf(" <absent>");
	for (int i = 0; i < n && i < (int)sizeof(buf); i++)
		printf(" %02x", buf[i]);
	printf("\n");
}

void print_prop_str(const char *label, u32 ph, const char *name)
{
	char buf[128];
	int n = of_getprop(ph, name, buf, sizeof(buf) - 1);
	if (n < 0) {
		printf("%s: <absent>\n", label);
		return;
	}
	buf[n < (int)sizeof(buf) - 1 ? n : (int)sizeof(buf) - 1] = 0;
	printf("%s: \"%s\"\n", label, buf);
}
