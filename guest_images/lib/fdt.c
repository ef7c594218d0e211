/*
 * A read-only flattened-device-tree walker, for kernels entered the FDT way (r3 = blob, r5 = 0) instead of
 * through the client interface: of_finddevice/of_getprop/of_child/of_peer fall back to it.  A "phandle"
 * here is the node's structure-block offset + 1 (never 0, never -1).
 */
#include "rt.h"

#define FDT_MAGIC 0xd00dfeedu
#define FDT_BEGIN_NODE 1
#define FDT_END_NODE 2
#define FDT_PROP 3
#define FDT_NOP 4
#define FDT_END 9

static const u8 *fdt;

static u32 rd32(const void *p) { return be32_to_cpu(*(const u32 *)p); }
static u32 hdr(int field) { return rd32(fdt + 4 * field); }
static const u8 *structs(void) { return fdt + hdr(2); }
static const char *strs(void) { return (const char *)fdt + hdr(3); }
static u32 align4(u32 x) { return (x + 3) & ~3u; }

int fdt_init(u64 addr)
{
	if (addr == 0 || rd32((const void *)addr) != FDT_MAGIC)
		return 0;
	fdt = (const u8 *)addr;
	return 1;
}

int fdt_present(void) { return fdt != 0; }

/* Offset just past a node's BEGIN_NODE token and name. */
static u32 after_name(u32 off)
{
	const char *name = (const char *)structs() + off + 4;
	return off + 4 + align4(strlen(name) + 1);
}

/* Skip one whole node (BEGIN_NODE .. END_NODE); returns the offset after it. */
static u32 skip_node(u32 off)
{
	int depth = 0;
	for (;;) {
		u32 tag = rd32(structs() + off);
		if (tag == FDT_BEGIN_NODE) {
			depth++;
			off = after_name(off);
		} else if (tag == FDT_END_NODE) {
			off += 4;
			if (--depth == 0)
				return off;
		} else if (tag == FDT_PROP) {
			off += 12 + align4(rd32(structs() + off + 4));
		} else if (tag == FDT_NOP) {
			off += 4;
		} else {
			return off;
		}
	}
}

/* First child of the node at `off`, or 0. */
static u32 first_child(u32 off)
{
	off = after_name(off);
	for (;;) {
		u32 tag = rd32(structs() + off);
		if (tag == FDT_PROP)
			off += 12 + align4(rd32(structs() + off + 4));
		else if (tag == FDT_NOP)
			off += 4;
		else
			return tag == FDT_BEGIN_NODE ? off : 0;
	}
}

static u32 next_sibling(u32 off)
{
	off = skip_node(off);
	while (rd32(structs() + off) == FDT_NOP)
		off += 4;
	return rd32(structs() + off) == FDT_BEGIN_NODE ? off : 0;
}

/* "name" matches "name" and "name@unit" (as libfdt and VOF do); "name@unit" matches exactly. */
static int name_matches(const char *node, const char *comp, int len)
{
	int comp_has_unit = 0;
	for (int i = 0; i < len; i++)
		comp_has_unit |= comp[i] == '@';
	if (strncmp(node, comp, len))
		return 0;
	return node[len] == 0 || (node[len] == '@' && !comp_has_unit);
}

u32 fdt_finddevice(const char *path)
{
	u32 off = 0;
	while (rd32(structs() + off) == FDT_NOP)
		off += 4;
	if (*path != '/')
		return 0xffffffffu;
	while (*path) {
		while (*path == '/')
			path++;
		if (!*path)
			break;
		const char *end = path;
		while (*end && *end != '/')
			end++;
		u32 c = first_child(off);
		while (c && !name_matches((const char *)structs() + c + 4, path, (int)(end - path)))
			c = next_sibling(c);
		if (!c)
			return 0xffffffffu;
		off = c;
		path = end;
	}
	return off + 1;
}

int fdt_getprop(u32 ph, const char *name, void *buf, int len)
{
	if (ph == 0 || ph == 0xffffffffu)
		return -1;
	u32 off = after_name(ph - 1);
	for (;;) {
		u32 tag = rd32(structs() + off);
		if (tag == FDT_NOP) {
			off += 4;
			continue;
		}
		if (tag != FDT_PROP)
			return -1;
		u32 plen = rd32(structs() + off + 4);
		if (!strcmp(strs() + rd32(structs() + off + 8), name)) {
			memcpy(buf, structs() + off + 12, (int)plen < len ? (int)plen : len);
			return (int)plen;
		}
		off += 12 + align4(plen);
	}
}

u32 fdt_child(u32 ph)
{
	u32 c = ph ? first_child(ph - 1) : 0;
	return c ? c + 1 : 0;
}

u32 fdt_peer(u32 ph)
{
	if (ph == 0)
		return 1; /* peer(0) is the root, as in Open Firmware */
	u32 s = next_sibling(ph - 1);
	return s ? s + 1 : 0;
}
