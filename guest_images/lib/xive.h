/*
 * Platform helpers shared by the interrupt-controller images: CAS through the
 * client interface, device-tree dumps, and the XIVE/XICS constants.
 */
#ifndef XIVE_H
#define XIVE_H
#include "rt.h"

/* OV5 byte 23 (interrupt mode) values a guest may request. */
#define OV5_INTC_XICS 0x00
#define OV5_INTC_XIVE 0x40

/* call-method("ibm,client-architecture-support") on the ihandle of "/".
 * Returns the CAS status (0 = success); *catch_out gets the first return
 * cell (0 = the method exists). */
int cas_request(u8 ov5_byte23, u32 *catch_out);

/* "mode=xics" / "mode=xive" in bootargs; default XIVE. */
u8 cas_mode_from_bootargs(void);

/* Print a property as hex bytes ("name: 01 02 ...") or "<absent>". */
void print_prop_hex(const char *label, u32 ph, const char *name);
/* Print a string property (first string of a list). */
void print_prop_str(const char *label, u32 ph, const char *name);

/* XIVE hcall flags */
#define XIVE_SRC_SET_EISN 0x2
#define XIVE_SRC_MASK 0x1
#define XIVE_END_ALWAYS_NOTIFY 0x1
#define XIVE_ESB_STORE 0x1

/* ESB management-page offsets */
#define ESB_LOAD_EOI 0x000
#define ESB_GET 0x800
#define ESB_SET_PQ_00 0xc00
#define ESB_SET_PQ_01 0xd00

/* TIMA OS-ring offsets within the OS page */
#define TM_QW1_NSR 0x10
#define TM_QW1_CPPR 0x11
#define TM_SPC_ACK_OS_REG 0x810

/* QEMU 7.2 addresses, used when the tree cannot be read */
#define TIMA_OS_PAGE_DEFAULT 0x60302031a0000UL

#endif
