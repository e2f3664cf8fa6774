/* The per-VM ACPI tables: every checksum and length right, and plinth's own ACPI
 * parser (drivers/acpi.c, which reads real firmware) reads back the platform.  With
 * a PCI host bridge, the MCFG, and a DSDT whose AML a small reader here walks term
 * by term (ACPI 6.5 §20.2) to find \_SB.PCI0's _CRS and _PRT and the ECAM's
 * motherboard reservation. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "kernel/fmt.c"
#include "drivers/acpi.c"
#include "vmm/acpi/acpi_build.c"

#define GPA 0xe0000ull
static uint8_t guest[0x2000];
static int warnings;

void log_vprintf(enum log_level level, const char *fmt, va_list ap)
{
    if (level >= LOG_WARN) {
        warnings++;
        vprintf(fmt, ap);
        printf("\n");
    }
}

void log_printf(enum log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vprintf(level, fmt, ap);
    va_end(ap);
}

bool paging_is_direct_mapped(uint64_t phys, uint64_t size) { (void)phys; (void)size; return false; }
void *phys_to_virt(uint64_t phys) { (void)phys; return NULL; }
void *mmio_map(uint64_t phys, size_t size) { (void)phys; (void)size; return NULL; }

static const void *guest_map(void *ctx, uint64_t phys, size_t len)
{
    (void)ctx;
    if (phys < GPA || phys - GPA > sizeof guest || len > sizeof guest - (phys - GPA))
        return NULL;
    return guest + (phys - GPA);
}

static const struct acpi_platform plat = {
    .vcpus = 3, .lapic_addr = 0xfee00000, .ioapic_addr = 0xfec00000, .ioapic_id = 3,
    .pm_base = 0x600, .sci_irq = 9, .slp_typ_s5 = 5, .century_index = 0x32,
};

static uint8_t sum(const uint8_t *p, size_t n)
{
    uint8_t s = 0;
    while (n--)
        s += *p++;
    return s;
}

static uint32_t t_rd32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

static uint64_t t_rdn(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* The PCI platform plinth's VMs have (vmm/pci.h). */
static const struct acpi_platform plat_pci = {
    .vcpus = 3, .lapic_addr = 0xfee00000, .ioapic_addr = 0xfec00000, .ioapic_id = 3,
    .pm_base = 0x600, .sci_irq = 9, .slp_typ_s5 = 5, .century_index = 0x32,
    .pci = true, .ecam_base = 0xe0000000, .ecam_bus_end = 0,
    .mmio32_base = 0xc0000000, .mmio32_limit = 0xdfffffff,
    .mmio64_base = 64ull << 30, .mmio64_limit = (128ull << 30) - 1, .pci_gsi_base = 16,
};

/* Compressed EISA IDs, worked out by hand from ACPI 6.5 §6.1.5. */
#define EISA_PNP0A08 0x080ad041u
#define EISA_PNP0A03 0x030ad041u
#define EISA_PNP0C02 0x020cd041u

/* ---- an AML reader: the DSDT as nested terms ---------------------------------------- */

#define T_MAX_NAMES 32

/* A named object found: its absolute path (\_SB_.PCI0._HID) and, for a Name,
 * the offset of its data object in the table. */
struct t_named {
    char path[48];
    size_t at;
    bool device;
};

struct t_aml {
    const uint8_t *b;          /* the whole DSDT */
    struct t_named names[T_MAX_NAMES];
    unsigned count;
};

/* PkgLength (§20.2.4) at *pos: moves *pos past it and returns the end of what it
 * measures, which must lie within the enclosing term and use the shortest form. */
static size_t t_pkg_end(const uint8_t *b, size_t *pos, size_t parent_end)
{
    size_t start = *pos;
    assert_true(start < parent_end);
    unsigned follow = b[start] >> 6;
    assert_true(start + 1 + follow <= parent_end);
    size_t len;
    if (!follow) {
        len = b[start] & 0x3f;
    } else {
        assert_int_equal(b[start] & 0x30, 0);
        len = b[start] & 0x0f;
        for (unsigned k = 0; k < follow; k++)
            len |= (size_t)b[start + 1 + k] << (4 + 8 * k);
    }
    unsigned shortest = len <= 0x3f ? 0 : len <= 0xfff ? 1 : len <= 0xfffff ? 2 : 3;
    assert_int_equal(follow, shortest);
    assert_true(len >= 1 + follow);
    assert_true(start + len <= parent_end);
    *pos = start + 1 + follow;
    return start + len;
}

static bool t_lead_char(uint8_t c) { return (c >= 'A' && c <= 'Z') || c == '_'; }
static bool t_name_char(uint8_t c) { return t_lead_char(c) || (c >= '0' && c <= '9'); }

/* A NameString (§20.2.2) declared in scope: writes its absolute path. */
static void t_namestring(const uint8_t *b, size_t *pos, size_t end, const char *scope, char *path,
                         size_t cap)
{
    size_t p = *pos;
    assert_true(p < end);
    char out[48];
    if (b[p] == '\\') {
        strcpy(out, "\\");
        p++;
    } else {
        assert_true(b[p] != '^');                /* not written by acpi_build */
        snprintf(out, sizeof out, "%s", scope);
    }
    assert_true(p < end);
    unsigned segs = 1;
    if (b[p] == 0x2e) {                          /* DualNamePrefix */
        segs = 2;
        p++;
    } else if (b[p] == 0x2f) {                   /* MultiNamePrefix */
        assert_true(p + 1 < end);
        segs = b[p + 1];
        p += 2;
    }
    for (unsigned i = 0; i < segs; i++) {
        assert_true(p + 4 <= end);
        assert_true(t_lead_char(b[p]));
        for (int k = 1; k < 4; k++)
            assert_true(t_name_char(b[p + k]));
        size_t n = strlen(out);
        assert_true(n + 6 <= sizeof out);
        if (n > 1)
            out[n++] = '.';
        memcpy(out + n, b + p, 4);
        out[n + 4] = 0;
        p += 4;
    }
    assert_true(strlen(out) < cap);
    strcpy(path, out);
    *pos = p;
}

/* An integer constant (§20.2.3) at *pos. */
static uint64_t t_integer(const uint8_t *b, size_t *pos, size_t end)
{
    size_t p = *pos;
    assert_true(p < end);
    unsigned n;
    switch (b[p]) {
    case 0x00: *pos = p + 1; return 0;
    case 0x01: *pos = p + 1; return 1;
    case 0xff: *pos = p + 1; return ~0ull;
    case 0x0a: n = 1; break;
    case 0x0b: n = 2; break;
    case 0x0c: n = 4; break;
    case 0x0e: n = 8; break;
    default: fail_msg("no integer at %zu (%#x)", p, b[p]); return 0;
    }
    assert_true(p + 1 + n <= end);
    *pos = p + 1 + n;
    return t_rdn(b + p + 1, n);
}

/* A data object at pos (integer, Buffer with its size, Package with its element
 * count); returns where it ends, within end. */
static size_t t_data(const uint8_t *b, size_t pos, size_t end)
{
    assert_true(pos < end);
    size_t p = pos + 1, e;
    switch (b[pos]) {
    case 0x11: {                                 /* BufferOp */
        e = t_pkg_end(b, &p, end);
        uint64_t size = t_integer(b, &p, e);
        assert_int_equal(size, e - p);
        return e;
    }
    case 0x12: {                                 /* PackageOp */
        e = t_pkg_end(b, &p, end);
        assert_true(p < e);
        unsigned count = b[p++], n = 0;
        while (p < e) {
            p = t_data(b, p, e);
            n++;
        }
        assert_int_equal(p, e);
        assert_int_equal(n, count);
        return e;
    }
    default:
        t_integer(b, &pos, end);
        return pos;
    }
}

static void t_record(struct t_aml *w, const char *path, size_t at, bool device)
{
    assert_true(w->count < T_MAX_NAMES);
    for (unsigned i = 0; i < w->count; i++)
        assert_string_not_equal(w->names[i].path, path);
    strcpy(w->names[w->count].path, path);
    w->names[w->count].at = at;
    w->names[w->count].device = device;
    w->count++;
}

/* A TermList (§20.2.5) from pos to exactly end: Name, Scope and Device terms. */
static void t_terms(struct t_aml *w, size_t pos, size_t end, const char *scope)
{
    const uint8_t *b = w->b;
    char path[48];
    while (pos < end) {
        uint8_t op = b[pos];
        if (op == 0x08) {                        /* NameOp */
            pos++;
            t_namestring(b, &pos, end, scope, path, sizeof path);
            t_record(w, path, pos, false);
            pos = t_data(b, pos, end);
        } else if (op == 0x10) {                 /* ScopeOp */
            pos++;
            size_t e = t_pkg_end(b, &pos, end);
            t_namestring(b, &pos, e, scope, path, sizeof path);
            t_terms(w, pos, e, path);
            pos = e;
        } else if (op == 0x5b && pos + 1 < end && b[pos + 1] == 0x82) {  /* DeviceOp */
            pos += 2;
            size_t e = t_pkg_end(b, &pos, end);
            t_namestring(b, &pos, e, scope, path, sizeof path);
            t_record(w, path, pos, true);
            t_terms(w, pos, e, path);
            pos = e;
        } else {
            fail_msg("unexpected AML opcode %#x at %zu", op, pos);
        }
    }
    assert_int_equal(pos, end);
}

/* Walks the whole DSDT body; fails unless every term nests exactly. */
static void t_walk_dsdt(struct t_aml *w, const uint8_t *dsdt)
{
    memset(w, 0, sizeof *w);
    w->b = dsdt;
    t_terms(w, 36, t_rd32(dsdt + 4), "\\");
}

static const struct t_named *t_find(const struct t_aml *w, const char *path)
{
    for (unsigned i = 0; i < w->count; i++)
        if (!strcmp(w->names[i].path, path))
            return &w->names[i];
    return NULL;
}

static uint64_t t_name_integer(const struct t_aml *w, const char *path)
{
    const struct t_named *n = t_find(w, path);
    assert_non_null(n);
    assert_false(n->device);
    size_t p = n->at;
    return t_integer(w->b, &p, t_rd32(w->b + 4));
}

/* The bytes of the Buffer that Name(path) holds. */
static const uint8_t *t_name_buffer(const struct t_aml *w, const char *path, size_t *len)
{
    const struct t_named *n = t_find(w, path);
    assert_non_null(n);
    size_t p = n->at;
    assert_int_equal(w->b[p], 0x11);
    p++;
    size_t e = t_pkg_end(w->b, &p, t_rd32(w->b + 4));
    *len = t_integer(w->b, &p, e);
    return w->b + p;
}

/* ---- resource templates (ACPI 6.5 §6.4) ---------------------------------------------- */

/* One descriptor decoded: small items by name (0x08 I/O port), large items as
 * 0x80 | name (0x87 DWord, 0x88 Word, 0x8A QWord address space). */
struct t_res {
    uint8_t kind;
    uint8_t type, general, specific;              /* address space descriptors */
    uint64_t gran, min, max, tra, len;
    uint8_t io_info, io_align;                    /* I/O port: also min, max, len */
};

/* Decodes a template that must be a chain of whole descriptors ending, exactly at
 * its end, in an End Tag whose checksum is zero or makes the template sum to 0.
 * Returns the number of descriptors before the End Tag. */
static unsigned t_resources(const uint8_t *r, size_t n, struct t_res *out, unsigned max)
{
    size_t pos = 0;
    unsigned count = 0;
    for (;;) {
        assert_true(pos < n);
        uint8_t tag = r[pos];
        struct t_res d = { .kind = 0 };
        if (tag & 0x80) {
            assert_true(pos + 3 <= n);
            size_t len = r[pos + 1] | r[pos + 2] << 8;
            assert_true(pos + 3 + len <= n);
            unsigned w = tag == 0x88 ? 2 : tag == 0x87 ? 4 : tag == 0x8a ? 8 : 0;
            if (!w)
                fail_msg("unexpected large resource %#x", tag);
            assert_int_equal(len, 3 + 5 * w);
            const uint8_t *f = r + pos + 6;
            d.kind = tag;
            d.type = r[pos + 3];
            d.general = r[pos + 4];
            d.specific = r[pos + 5];
            d.gran = t_rdn(f, w);
            d.min = t_rdn(f + w, w);
            d.max = t_rdn(f + 2 * w, w);
            d.tra = t_rdn(f + 3 * w, w);
            d.len = t_rdn(f + 4 * w, w);
            pos += 3 + len;
        } else {
            unsigned name = (tag >> 3) & 0x0f, len = tag & 7;
            assert_true(pos + 1 + len <= n);
            if (name == 0x0f) {                  /* End Tag */
                assert_int_equal(len, 1);
                assert_int_equal(pos + 2, n);
                assert_true(r[pos + 1] == 0 || sum(r, n) == 0);
                return count;
            }
            assert_int_equal(name, 0x08);        /* I/O port */
            assert_int_equal(len, 7);
            d.kind = 0x08;
            d.io_info = r[pos + 1];
            d.min = t_rdn(r + pos + 2, 2);
            d.max = t_rdn(r + pos + 4, 2);
            d.io_align = r[pos + 6];
            d.len = r[pos + 7];
            pos += 1 + len;
        }
        assert_true(count < max);
        out[count++] = d;
    }
}

/* An address space window: fixed (_MIF, _MAF), positive decode, producer or
 * consumer, no granularity or translation, the length matching the range. */
static void t_window(const struct t_res *d, uint8_t kind, uint8_t type, bool consumer, uint64_t min,
                     uint64_t max)
{
    assert_int_equal(d->kind, kind);
    assert_int_equal(d->type, type);
    assert_int_equal(d->general, 0x0c | (consumer ? 1 : 0));
    assert_int_equal(d->gran, 0);
    assert_int_equal(d->tra, 0);
    assert_int_equal(d->min, min);
    assert_int_equal(d->max, max);
    assert_int_equal(d->len, max - min + 1);
}

/* ---- the tables with a PCI host bridge ---------------------------------------------- */

static const uint8_t *t_xsdt_table(const char *sig, size_t used)
{
    uint64_t xsdt;
    memcpy(&xsdt, guest + 24, 8);
    const uint8_t *x = guest + (xsdt - GPA);
    for (unsigned i = 0; i < (t_rd32(x + 4) - 36) / 8; i++) {
        uint64_t a;
        memcpy(&a, x + 36 + 8 * i, 8);
        assert_true(a >= GPA && a - GPA + 36 <= used);
        const uint8_t *t = guest + (a - GPA);
        if (!memcmp(t, sig, 4))
            return t;
    }
    return NULL;
}

static const uint8_t *t_dsdt(size_t used)
{
    const uint8_t *fadt = t_xsdt_table("FACP", used);
    assert_non_null(fadt);
    uint64_t d;
    memcpy(&d, fadt + 140, 8);                   /* X_DSDT */
    assert_int_equal(d, t_rd32(fadt + 40));
    assert_true(d >= GPA && d - GPA + 36 <= used);
    const uint8_t *dsdt = guest + (d - GPA);
    assert_memory_equal(dsdt, "DSDT", 4);
    assert_true(d - GPA + t_rd32(dsdt + 4) <= used);
    assert_int_equal(sum(dsdt, t_rd32(dsdt + 4)), 0);
    return dsdt;
}

/* Builds p's tables and checks every PCI part of them against p. */
static void t_check_pci_tables(const struct acpi_platform *p)
{
    size_t used;
    memset(guest, 0, sizeof guest);
    assert_int_equal(acpi_build(p, guest, sizeof guest, GPA, &used), ACPI_BUILD_OK);

    /* XSDT: MADT, FADT and MCFG. */
    uint64_t xsdt;
    memcpy(&xsdt, guest + 24, 8);
    const uint8_t *x = guest + (xsdt - GPA);
    assert_int_equal(t_rd32(x + 4), 36 + 3 * 8);
    assert_int_equal(sum(x, t_rd32(x + 4)), 0);
    const uint8_t *m = t_xsdt_table("MCFG", used);
    assert_non_null(m);
    assert_int_equal((size_t)(m - guest) + 60, used);   /* the MCFG comes last */
    assert_int_equal(t_rd32(m + 4), 60);
    assert_int_equal(m[8], 1);
    assert_int_equal(sum(m, 60), 0);
    for (int i = 36; i < 44; i++)
        assert_int_equal(m[i], 0);
    assert_int_equal(t_rdn(m + 44, 8), p->ecam_base);
    assert_int_equal(t_rdn(m + 52, 2), 0);
    assert_int_equal(m[54], 0);
    assert_int_equal(m[55], p->ecam_bus_end);
    assert_int_equal(t_rd32(m + 56), 0);

    /* The DSDT's AML nests exactly, and names what the host bridge needs. */
    struct t_aml w;
    t_walk_dsdt(&w, t_dsdt(used));
    const struct t_named *dev = t_find(&w, "\\_SB_.PCI0");
    assert_non_null(dev);
    assert_true(dev->device);
    const struct t_named *hid = t_find(&w, "\\_SB_.PCI0._HID");
    assert_non_null(hid);
    assert_int_equal(w.b[hid->at], 0x0c);        /* EISAID: a DWordConst */
    assert_int_equal(t_name_integer(&w, "\\_SB_.PCI0._HID"), EISA_PNP0A08);
    assert_int_equal(t_name_integer(&w, "\\_SB_.PCI0._CID"), EISA_PNP0A03);
    assert_int_equal(t_name_integer(&w, "\\_SB_.PCI0._UID"), 0);
    assert_int_equal(t_name_integer(&w, "\\_SB_.PCI0._SEG"), 0);
    assert_int_equal(t_name_integer(&w, "\\_SB_.PCI0._BBN"), 0);
    assert_null(t_find(&w, "\\_SB_.PCI0._ADR"));
    assert_non_null(t_find(&w, "\\_S5_"));

    /* _CRS: buses, the conf1 ports, the I/O windows around them, the memory windows. */
    size_t n;
    const uint8_t *crs = t_name_buffer(&w, "\\_SB_.PCI0._CRS", &n);
    struct t_res r[8];
    bool have64 = p->mmio64_limit >= p->mmio64_base;
    assert_int_equal(t_resources(crs, n, r, 8), have64 ? 6 : 5);
    t_window(&r[0], 0x88, 2, false, 0, p->ecam_bus_end);
    assert_int_equal(r[1].kind, 0x08);
    assert_int_equal(r[1].io_info, 1);
    assert_int_equal(r[1].min, 0xcf8);
    assert_int_equal(r[1].max, 0xcf8);
    assert_int_equal(r[1].io_align, 1);
    assert_int_equal(r[1].len, 8);
    t_window(&r[2], 0x88, 1, false, 0x0000, 0x0cf7);
    assert_int_equal(r[2].specific, 3);
    t_window(&r[3], 0x88, 1, false, 0x0d00, 0xffff);
    assert_int_equal(r[3].specific, 3);
    t_window(&r[4], 0x87, 0, false, p->mmio32_base, p->mmio32_limit);
    assert_int_equal(r[4].specific, 0x01);       /* read/write, non-cacheable */
    if (have64) {
        t_window(&r[5], 0x8a, 0, false, p->mmio64_base, p->mmio64_limit);
        assert_int_equal(r[5].specific, 0x01);
    }

    /* _PRT: 31 devices x 4 pins, each {device << 16 | 0xFFFF, pin, 0, GSI}. */
    const struct t_named *prt = t_find(&w, "\\_SB_.PCI0._PRT");
    assert_non_null(prt);
    size_t pos = prt->at;
    assert_int_equal(w.b[pos], 0x12);
    pos++;
    size_t prt_end = t_pkg_end(w.b, &pos, t_rd32(w.b + 4));
    assert_int_equal(w.b[pos], 124);
    pos++;
    unsigned entries = 0;
    uint64_t gsi_of[32][4] = { { 0 } };
    while (pos < prt_end) {
        assert_int_equal(w.b[pos], 0x12);
        pos++;
        size_t e = t_pkg_end(w.b, &pos, prt_end);
        assert_int_equal(w.b[pos], 4);
        pos++;
        uint64_t addr = t_integer(w.b, &pos, e), pin = t_integer(w.b, &pos, e);
        uint64_t source = t_integer(w.b, &pos, e), gsi = t_integer(w.b, &pos, e);
        assert_int_equal(pos, e);
        unsigned slot = (unsigned)(addr >> 16);
        assert_int_equal(addr & 0xffff, 0xffff);
        assert_int_equal(slot, entries / 4 + 1);
        assert_int_equal(pin, entries % 4);
        assert_int_equal(source, 0);
        assert_int_equal(gsi, p->pci_gsi_base + ((slot + pin) & 3));
        gsi_of[slot][pin] = gsi;
        entries++;
    }
    assert_int_equal(entries, 124);
    if (p->pci_gsi_base == 16) {
        assert_int_equal(gsi_of[1][0], 17);      /* INTA# of 00:01 */
        assert_int_equal(gsi_of[3][2], 17);
        assert_int_equal(gsi_of[4][0], 16);
        assert_int_equal(gsi_of[7][1], 16);
        assert_int_equal(gsi_of[31][3], 18);
    }

    /* A PNP0C02 device reserves exactly the ECAM. */
    uint64_t ecam_last = p->ecam_base + (((uint64_t)p->ecam_bus_end + 1) << 20) - 1;
    bool reserved = false;
    for (unsigned i = 0; i < w.count; i++) {
        if (!w.names[i].device)
            continue;
        char path[64];
        snprintf(path, sizeof path, "%s._HID", w.names[i].path);
        if (!t_find(&w, path) || t_name_integer(&w, path) != EISA_PNP0C02)
            continue;
        snprintf(path, sizeof path, "%s._UID", w.names[i].path);
        assert_non_null(t_find(&w, path));
        snprintf(path, sizeof path, "%s._CRS", w.names[i].path);
        crs = t_name_buffer(&w, path, &n);
        assert_int_equal(t_resources(crs, n, r, 8), 1);
        t_window(&r[0], ecam_last <= 0xffffffff ? 0x87 : 0x8a, 0, true, p->ecam_base, ecam_last);
        reserved = true;
    }
    assert_true(reserved);

    /* plinth's own parser reads the MCFG and still finds \_S5. */
    struct acpi_info info;
    warnings = 0;
    acpi_parse(guest, 36, guest_map, NULL, &info);
    assert_int_equal(warnings, 0);
    assert_int_equal(info.mcfg_count, 1);
    assert_int_equal(info.mcfg[0].base, p->ecam_base);
    assert_int_equal(info.mcfg[0].segment, 0);
    assert_int_equal(info.mcfg[0].bus_start, 0);
    assert_int_equal(info.mcfg[0].bus_end, p->ecam_bus_end);
    assert_true(info.have_s5);
    assert_int_equal(info.slp_typa, p->slp_typ_s5);
}

static void test_tables_parse_back(void **state)
{
    (void)state;
    size_t used;
    assert_int_equal(acpi_build(&plat, guest, sizeof guest, GPA, &used), ACPI_BUILD_OK);
    assert_true(used > 36 && used <= sizeof guest);
    struct acpi_info info;
    warnings = 0;
    acpi_parse(guest, 36, guest_map, NULL, &info);
    assert_int_equal(warnings, 0);
    assert_true(info.present);
    assert_int_equal(info.revision, 2);
    assert_string_equal(info.oem_id, "PLINTH");
    assert_int_equal(info.cpu_count, 3);
    for (unsigned i = 0; i < 3; i++)
        assert_int_equal(info.cpus[i].apic_id, i);
    assert_int_equal(info.lapic_addr, 0xfee00000);
    assert_int_equal(info.ioapic_count, 1);
    assert_int_equal(info.ioapics[0].addr, 0xfec00000);
    assert_int_equal(info.ioapics[0].id, 3);
    assert_true(info.pcat_compat);
    assert_int_equal(info.iso_count, 2);
    assert_int_equal(info.isos[0].source, 0);
    assert_int_equal(info.isos[0].gsi, 2);
    assert_int_equal(info.isos[1].source, 9);
    assert_int_equal(info.isos[1].flags, 0xf);
    assert_true(info.have_fadt);
    assert_int_equal(info.pm1a_cnt, 0x604);
    assert_int_equal(info.pm_tmr_port, 0x608);
    assert_true(info.pm_tmr_32bit);
    assert_true(info.have_s5);
    assert_int_equal(info.slp_typa, 5);
    assert_true(info.have_reset);
    assert_int_equal(info.reset_reg.addr, 0xcf9);
    assert_int_equal(info.reset_value, 6);
    assert_int_equal(info.century, 0x32);
    assert_false(info.hw_reduced);
}

static void test_checksums_and_layout(void **state)
{
    (void)state;
    size_t used;
    assert_int_equal(acpi_build(&plat, guest, sizeof guest, GPA, &used), ACPI_BUILD_OK);
    assert_memory_equal(guest, "RSD PTR ", 8);
    assert_int_equal(sum(guest, 20), 0);
    assert_int_equal(sum(guest, 36), 0);
    /* Walk the XSDT's entries and every table they lead to, plus the DSDT and FACS. */
    uint64_t xsdt;
    memcpy(&xsdt, guest + 24, 8);
    const uint8_t *x = guest + (xsdt - GPA);
    assert_memory_equal(x, "XSDT", 4);
    assert_int_equal(sum(x, t_rd32(x + 4)), 0);
    unsigned n = (t_rd32(x + 4) - 36) / 8;
    bool saw_fadt = false, saw_madt = false;
    assert_int_equal(n, 2);
    for (unsigned i = 0; i < n; i++) {
        uint64_t a;
        memcpy(&a, x + 36 + 8 * i, 8);
        assert_true(a >= GPA && a - GPA + 36 <= used);
        const uint8_t *t = guest + (a - GPA);
        assert_true(a - GPA + t_rd32(t + 4) <= used);
        assert_int_equal(sum(t, t_rd32(t + 4)), 0);
        saw_madt |= !memcmp(t, "APIC", 4);
        if (!memcmp(t, "FACP", 4)) {
            saw_fadt = true;
            assert_int_equal(t_rd32(t + 4), 276);
            const uint8_t *d = guest + (t_rd32(t + 40) - GPA);
            assert_memory_equal(d, "DSDT", 4);
            assert_int_equal(sum(d, t_rd32(d + 4)), 0);
            uint64_t facs = t_rd32(t + 36);
            assert_int_equal(facs % 64, 0);
            assert_memory_equal(guest + (facs - GPA), "FACS", 4);
            assert_int_equal(t_rd32(guest + (facs - GPA) + 4), 64);
        }
    }
    assert_true(saw_fadt);
    assert_true(saw_madt);
}

static void test_bad_platform_and_small_buffer(void **state)
{
    (void)state;
    size_t used;
    struct acpi_platform p = plat;
    p.vcpus = 0;
    assert_int_equal(acpi_build(&p, guest, sizeof guest, GPA, &used), ACPI_BUILD_BAD_PLATFORM);
    p = plat;
    p.vcpus = ACPI_BUILD_MAX_CPUS + 1;
    assert_int_equal(acpi_build(&p, guest, sizeof guest, GPA, &used), ACPI_BUILD_BAD_PLATFORM);
    p = plat;
    p.sci_irq = 16;
    assert_int_equal(acpi_build(&p, guest, sizeof guest, GPA, &used), ACPI_BUILD_BAD_PLATFORM);
    assert_int_equal(acpi_build(&plat, guest, sizeof guest, GPA + 8, &used), ACPI_BUILD_BAD_PLATFORM);
    assert_int_equal(acpi_build(&plat, guest, 200, GPA, &used), ACPI_BUILD_TOO_SMALL);
    assert_int_equal(used, 0);
}

static void test_many_cpus(void **state)
{
    (void)state;
    struct acpi_platform p = plat;
    p.vcpus = ACPI_BUILD_MAX_CPUS;
    size_t used;
    assert_int_equal(acpi_build(&p, guest, sizeof guest, GPA, &used), ACPI_BUILD_OK);
    struct acpi_info info;
    acpi_parse(guest, 36, guest_map, NULL, &info);
    assert_int_equal(info.cpu_count, ACPI_BUILD_MAX_CPUS);
    assert_int_equal(info.cpus[ACPI_BUILD_MAX_CPUS - 1].apic_id, ACPI_BUILD_MAX_CPUS - 1);
}

static void test_pci_tables(void **state)
{
    (void)state;
    t_check_pci_tables(&plat_pci);
}

/* Several buses, no 64-bit window, an ECAM above 4 GiB (a QWordMemory reservation),
 * the INTx GSIs at the top of the IOAPIC, 64 vCPUs. */
static void test_pci_tables_other_layout(void **state)
{
    (void)state;
    struct acpi_platform p = plat_pci;
    p.vcpus = ACPI_BUILD_MAX_CPUS;
    p.ecam_base = 0x1000000000ull;
    p.ecam_bus_end = 3;
    p.mmio32_base = 0x80000000;
    p.mmio32_limit = 0xfebfffff;
    p.mmio64_base = 1;
    p.mmio64_limit = 0;
    p.pci_gsi_base = 20;
    t_check_pci_tables(&p);
    p.ecam_bus_end = 255;                        /* a full 256-bus ECAM */
    p.ecam_base = 0xfffffffff0000000ull;
    t_check_pci_tables(&p);
}

/* FNV-1a of the tables as acpi_build wrote them before it knew of PCI. */
static uint64_t t_fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    while (n--) {
        h ^= *p++;
        h *= 0x100000001b3ull;
    }
    return h;
}

static void test_no_pci_tables_unchanged(void **state)
{
    (void)state;
    size_t used;
    struct acpi_platform p = plat;
    memset(guest, 0, sizeof guest);
    assert_int_equal(acpi_build(&p, guest, sizeof guest, GPA, &used), ACPI_BUILD_OK);
    assert_int_equal(used, 640);
    assert_int_equal(t_fnv1a(guest, used), 0x1432e38ee30efb18ull);
    /* With pci false the PCI fields are not looked at, however bad. */
    p = plat_pci;
    p.pci = false;
    p.ecam_base = 0x123;
    p.mmio32_base = 0;
    p.pci_gsi_base = 200;
    memset(guest, 0, sizeof guest);
    assert_int_equal(acpi_build(&p, guest, sizeof guest, GPA, &used), ACPI_BUILD_OK);
    assert_int_equal(used, 640);
    assert_int_equal(t_fnv1a(guest, used), 0x1432e38ee30efb18ull);
    assert_null(t_xsdt_table("MCFG", used));
    struct t_aml w;
    t_walk_dsdt(&w, t_dsdt(used));
    assert_int_equal(w.count, 1);
    assert_non_null(t_find(&w, "\\_S5_"));
    p = plat;
    p.vcpus = ACPI_BUILD_MAX_CPUS;
    memset(guest, 0, sizeof guest);
    assert_int_equal(acpi_build(&p, guest, sizeof guest, GPA, &used), ACPI_BUILD_OK);
    assert_int_equal(used, 1152);
    assert_int_equal(t_fnv1a(guest, used), 0x99bb6f4f797c3e56ull);
}

static void test_pci_bad_platform(void **state)
{
    (void)state;
    size_t used = 1;
    struct acpi_platform p;
    assert_int_equal(acpi_build(&plat_pci, guest, sizeof guest, GPA, &used), ACPI_BUILD_OK);
#define REFUSED(field, value)                                                                      \
    do {                                                                                           \
        p = plat_pci;                                                                              \
        p.field = value;                                                                           \
        assert_int_equal(acpi_build(&p, guest, sizeof guest, GPA, &used), ACPI_BUILD_BAD_PLATFORM); \
        assert_int_equal(used, 0);                                                                 \
    } while (0)
    REFUSED(ecam_base, 0xe0080000);              /* not 1 MiB aligned */
    REFUSED(ecam_base, 0xe0000800);
    REFUSED(ecam_base, 0);
    REFUSED(mmio32_limit, 0xbfffffff);           /* limit < base */
    REFUSED(mmio32_base, 0);                     /* unset, and 4 GiB long */
    REFUSED(mmio64_base, 0x80000000);            /* a "64-bit" window below 4 GiB */
    REFUSED(mmio64_base, 0);
    REFUSED(pci_gsi_base, 21);                   /* INTD# would be GSI 24 */
    REFUSED(pci_gsi_base, 255);
#undef REFUSED
    /* Zero-initialised windows: mmio32 0..0, mmio64 0..0 (present, at 0). */
    p = plat_pci;
    p.mmio32_base = p.mmio32_limit = 0;
    assert_int_equal(acpi_build(&p, guest, sizeof guest, GPA, &used), ACPI_BUILD_BAD_PLATFORM);
    p = plat_pci;
    p.mmio64_base = p.mmio64_limit = 0;
    assert_int_equal(acpi_build(&p, guest, sizeof guest, GPA, &used), ACPI_BUILD_BAD_PLATFORM);
    /* An ECAM that would wrap past 2^64, and the largest that does not. */
    p = plat_pci;
    p.ecam_bus_end = 255;
    p.ecam_base = 0xfffffffff0100000ull;
    assert_int_equal(acpi_build(&p, guest, sizeof guest, GPA, &used), ACPI_BUILD_BAD_PLATFORM);
    p.ecam_base = 0xfffffffff0000000ull;
    assert_int_equal(acpi_build(&p, guest, sizeof guest, GPA, &used), ACPI_BUILD_OK);
    p.ecam_bus_end = 0;
    p.ecam_base = 0xfffffffffff00000ull;
    assert_int_equal(acpi_build(&p, guest, sizeof guest, GPA, &used), ACPI_BUILD_OK);
    /* The edges that are fine: GSIs 20-23, a one-byte 32-bit window. */
    p = plat_pci;
    p.pci_gsi_base = 20;
    assert_int_equal(acpi_build(&p, guest, sizeof guest, GPA, &used), ACPI_BUILD_OK);
    p = plat_pci;
    p.mmio32_limit = p.mmio32_base;
    assert_int_equal(acpi_build(&p, guest, sizeof guest, GPA, &used), ACPI_BUILD_OK);
}

/* The buffer acpi_build needs is exactly what it uses, and it writes nothing past it. */
static void test_pci_buffer_size(void **state)
{
    (void)state;
    static const struct acpi_platform *const platforms[] = { &plat, &plat_pci };
    for (unsigned i = 0; i < 2; i++) {
        struct acpi_platform p = *platforms[i];
        for (unsigned vcpus = 1; vcpus <= ACPI_BUILD_MAX_CPUS; vcpus += 21) {
            p.vcpus = vcpus;
            size_t used, used2 = 1;
            memset(guest, 0xa5, sizeof guest);
            assert_int_equal(acpi_build(&p, guest, sizeof guest, GPA, &used), ACPI_BUILD_OK);
            for (size_t k = used; k < sizeof guest; k++)
                assert_int_equal(guest[k], 0xa5);
            assert_int_equal(acpi_build(&p, guest, used - 1, GPA, &used2), ACPI_BUILD_TOO_SMALL);
            assert_int_equal(used2, 0);
            memset(guest, 0xa5, sizeof guest);
            assert_int_equal(acpi_build(&p, guest, used, GPA, &used2), ACPI_BUILD_OK);
            assert_int_equal(used2, used);
            for (size_t k = used; k < sizeof guest; k++)
                assert_int_equal(guest[k], 0xa5);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tables_parse_back),
        cmocka_unit_test(test_checksums_and_layout),
        cmocka_unit_test(test_bad_platform_and_small_buffer),
        cmocka_unit_test(test_many_cpus),
        cmocka_unit_test(test_pci_tables),
        cmocka_unit_test(test_pci_tables_other_layout),
        cmocka_unit_test(test_no_pci_tables_unchanged),
        cmocka_unit_test(test_pci_bad_platform),
        cmocka_unit_test(test_pci_buffer_size),
    };
    return cmocka_run_group_tests_name("acpi_build", tests, NULL, NULL);
}
