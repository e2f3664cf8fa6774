#include "vmm/acpi/acpi_build.h"

#define OEM_ID       "PLINTH"
#define OEM_TABLE_ID "PLINTHVM"
#define CREATOR_ID   "PLTH"

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }

static void put_str(uint8_t *p, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = *s ? (uint8_t)*s++ : ' ';
}

/* The byte that makes the bytes of [p, p+n) sum to zero (ACPI 6.5 §5.2.5.3, §5.2.6). */
static uint8_t checksum(const uint8_t *p, size_t n)
{
    uint8_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += p[i];
    return (uint8_t)-sum;
}

/* The 36-byte System Description Table Header (§5.2.6); the checksum comes last. */
static void header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev)
{
    put_str(t, sig, 4);
    put32(t + 4, len);
    t[8] = rev;
    put_str(t + 10, OEM_ID, 6);
    put_str(t + 16, OEM_TABLE_ID, 8);
    put32(t + 24, 1);
    put_str(t + 28, CREATOR_ID, 4);
    put32(t + 32, 1);
}

static void finish(uint8_t *t, uint32_t len)
{
    t[9] = 0;
    t[9] = checksum(t, len);
}

/* A Generic Address Structure in system I/O space (§5.2.3.2). */
static void gas_io(uint8_t *g, uint16_t port, uint8_t bits, uint8_t access)
{
    g[0] = 1;           /* system I/O */
    g[1] = bits;
    g[2] = 0;
    g[3] = access;      /* 1 byte, 2 word, 3 dword */
    put64(g + 4, port);
}

/* ---- AML (ACPI 6.5 ch. 20) ---------------------------------------------------------- */

/* The opcodes the DSDT uses (§20.2.2 names, §20.2.3 data, §20.2.5 terms). */
enum {
    AML_OP_ZERO         = 0x00,
    AML_OP_ONE          = 0x01,
    AML_OP_NAME         = 0x08,
    AML_OP_BYTE_PREFIX  = 0x0a,
    AML_OP_WORD_PREFIX  = 0x0b,
    AML_OP_DWORD_PREFIX = 0x0c,
    AML_OP_QWORD_PREFIX = 0x0e,
    AML_OP_SCOPE        = 0x10,
    AML_OP_BUFFER       = 0x11,
    AML_OP_PACKAGE      = 0x12,
    AML_OP_EXT_PREFIX   = 0x5b,
    AML_OP_EXT_DEVICE   = 0x82,  /* after AML_OP_EXT_PREFIX */
    AML_ROOT_PREFIX     = 0x5c,  /* '\' */
};

/* An AML byte stream.  With out NULL nothing is written and len only counts, so the
 * same code sizes the DSDT and then writes it. */
struct aml_stream {
    uint8_t *out;
    size_t   len;
};

static void aml_emit_byte(struct aml_stream *a, uint8_t b)
{
    if (a->out)
        a->out[a->len] = b;
    a->len++;
}

static void aml_emit_bytes(struct aml_stream *a, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        aml_emit_byte(a, b[i]);
}

/* Starts a term that carries a PkgLength: one byte is left for it and its offset
 * returned for aml_emit_close. */
static size_t aml_emit_open(struct aml_stream *a)
{
    size_t start = a->len;
    aml_emit_byte(a, 0);
    return start;
}

/* Ends the term opened at start.  PkgLength (§20.2.4) counts itself and the rest
 * of the term: up to 63 fits the lead byte alone; otherwise bits 7:6 of the lead
 * byte give 1-3 following bytes, its bits 3:0 are the length's low nibble and the
 * following bytes the next 8 bits each.  The shortest form is used, so the body
 * moves up when it needs more than the one byte aml_emit_open left: the stream
 * never holds more than its final length, and nothing past that is written. */
static void aml_emit_close(struct aml_stream *a, size_t start)
{
    size_t body = a->len - start - 1;
    size_t n = body + 1 <= 0x3f ? 1 : body + 2 <= 0xfff ? 2 : body + 3 <= 0xfffff ? 3 : 4;
    size_t pkglen = body + n;
    if (a->out) {
        uint8_t *o = a->out;
        if (n > 1)
            for (size_t i = a->len; i > start + 1; i--)
                o[i - 1 + (n - 1)] = o[i - 1];
        if (n == 1) {
            o[start] = (uint8_t)pkglen;
        } else {
            o[start] = (uint8_t)((n - 1) << 6 | (pkglen & 0x0f));
            for (size_t k = 1; k < n; k++)
                o[start + k] = (uint8_t)(pkglen >> (4 + 8 * (k - 1)));
        }
    }
    a->len += n - 1;
}

/* A NameString (§20.2.2): an optional leading '\' (the root), then one 4-character
 * NameSeg, which is all the DSDT needs. */
static void aml_emit_namestring(struct aml_stream *a, const char *name)
{
    if (*name == '\\') {
        aml_emit_byte(a, AML_ROOT_PREFIX);
        name++;
    }
    for (int i = 0; i < 4; i++)
        aml_emit_byte(a, (uint8_t)name[i]);
}

/* An integer in its shortest encoding (§20.2.3): ZeroOp, OneOp, or a Byte, Word,
 * DWord or QWord constant after its prefix. */
static void aml_emit_integer(struct aml_stream *a, uint64_t v)
{
    if (v <= 1) {
        aml_emit_byte(a, v ? AML_OP_ONE : AML_OP_ZERO);
        return;
    }
    unsigned n = v <= 0xff ? 1 : v <= 0xffff ? 2 : v <= 0xffffffff ? 4 : 8;
    aml_emit_byte(a, n == 1 ? AML_OP_BYTE_PREFIX : n == 2 ? AML_OP_WORD_PREFIX :
                     n == 4 ? AML_OP_DWORD_PREFIX : AML_OP_QWORD_PREFIX);
    for (unsigned i = 0; i < n; i++)
        aml_emit_byte(a, (uint8_t)(v >> (8 * i)));
}

static void aml_emit_dword(struct aml_stream *a, uint32_t v)
{
    aml_emit_byte(a, AML_OP_DWORD_PREFIX);
    for (unsigned i = 0; i < 4; i++)
        aml_emit_byte(a, (uint8_t)(v >> (8 * i)));
}

/* The compressed EISA ID of a "PNPxxxx"-style ID (§6.1.5 _HID), as the DWordConst
 * ASL's EISAID() makes: three letters of 5 bits each (A = 1) in bits 14:0 of a
 * big-endian word, then four hex digits as a big-endian word, both stored first in
 * memory, so "PNP0A08" is the bytes 41 D0 0A 08. */
static uint32_t aml_eisa_id(const char *id)
{
    uint32_t letters = (uint32_t)(id[0] - '@') << 10 | (uint32_t)(id[1] - '@') << 5 |
                       (uint32_t)(id[2] - '@');
    uint32_t digits = 0;
    for (int i = 3; i < 7; i++)
        digits = digits << 4 | (uint32_t)(id[i] <= '9' ? id[i] - '0' : id[i] - 'A' + 10);
    return (letters >> 8) | (letters & 0xff) << 8 | (digits >> 8) << 16 | (digits & 0xff) << 24;
}

/* Name(seg, ...): the caller emits the data object that follows. */
static void aml_emit_name(struct aml_stream *a, const char *seg)
{
    aml_emit_byte(a, AML_OP_NAME);
    aml_emit_namestring(a, seg);
}

/* Scope(name) { ... } and Device(name) { ... } (§20.2.5.1, §20.2.5.2): the returned
 * offset goes to aml_emit_close after the body. */
static size_t aml_emit_scope_open(struct aml_stream *a, const char *name)
{
    aml_emit_byte(a, AML_OP_SCOPE);
    size_t start = aml_emit_open(a);
    aml_emit_namestring(a, name);
    return start;
}

static size_t aml_emit_device_open(struct aml_stream *a, const char *seg)
{
    aml_emit_byte(a, AML_OP_EXT_PREFIX);
    aml_emit_byte(a, AML_OP_EXT_DEVICE);
    size_t start = aml_emit_open(a);
    aml_emit_namestring(a, seg);
    return start;
}

/* Package(count) { ... } (§20.2.5.4 DefPackage): NumElements is one byte. */
static size_t aml_emit_package_open(struct aml_stream *a, uint8_t count)
{
    aml_emit_byte(a, AML_OP_PACKAGE);
    size_t start = aml_emit_open(a);
    aml_emit_byte(a, count);
    return start;
}

/* Buffer(n) { bytes } (§20.2.5.4 DefBuffer): BufferSize is an integer term. */
static void aml_emit_buffer(struct aml_stream *a, const uint8_t *bytes, size_t n)
{
    aml_emit_byte(a, AML_OP_BUFFER);
    size_t start = aml_emit_open(a);
    aml_emit_integer(a, n);
    aml_emit_bytes(a, bytes, n);
    aml_emit_close(a, start);
}

/* ---- resource templates (ACPI 6.5 §6.4) ------------------------------------------- */

/* The largest template: the host bridge's bus (16), config ports (8), two I/O (2 x
 * 16), 32-bit (26) and 64-bit (46) windows, and the End Tag (2): 130 bytes. */
#define CRS_MAX 144

struct crs {
    uint8_t b[CRS_MAX];
    size_t  len;
};

/* Address space descriptors' resource types and general flags (§6.4.3.5, Table
 * 6.44 and its Word/DWord twins): _MIF and _MAF set (a fixed window, so _GRA is 0
 * and _LEN is _MAX - _MIN + 1), positive decode, bit 0 set for a consumer. */
enum {
    CRS_TYPE_MEMORY = 0, CRS_TYPE_IO = 1, CRS_TYPE_BUS = 2,
    CRS_PRODUCER = 0x0c, CRS_CONSUMER = 0x0d,
    CRS_MEMORY_RW_UNCACHED = 0x01,   /* Table 6.49: _RW read/write, _MEM non-cacheable */
    CRS_IO_ENTIRE_RANGE    = 0x03,   /* Table 6.50: _RNG both ISA and non-ISA ranges */
};

static void crs_put(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* A Word, DWord or QWord Address Space Descriptor (§6.4.3.5.3, .2, .1): large items
 * 0x08, 0x07, 0x0A with one layout whose five address fields (granularity, minimum,
 * maximum, translation offset, length) are 2, 4 or 8 bytes wide. */
static void crs_address(struct crs *c, unsigned width, uint8_t type, uint8_t general,
                        uint8_t specific, uint64_t min, uint64_t max)
{
    uint8_t *d = c->b + c->len;
    d[0] = width == 2 ? 0x88 : width == 4 ? 0x87 : 0x8a;
    put16(d + 1, (uint16_t)(3 + 5 * width));
    d[3] = type;
    d[4] = general;
    d[5] = specific;
    crs_put(d + 6, 0, width);
    crs_put(d + 6 + width, min, width);
    crs_put(d + 6 + 2 * width, max, width);
    crs_put(d + 6 + 3 * width, 0, width);
    crs_put(d + 6 + 4 * width, max - min + 1, width);
    c->len += 6 + 5 * width;
}

/* An I/O Port Descriptor (§6.4.2.5): 16-bit decode, fixed at base (minimum =
 * maximum), alignment 1. */
static void crs_io_port(struct crs *c, uint16_t base, uint8_t len)
{
    uint8_t *d = c->b + c->len;
    d[0] = 0x47;                                 /* small item 0x08, 7 bytes */
    d[1] = 0x01;
    put16(d + 2, base);
    put16(d + 4, base);
    d[6] = 1;
    d[7] = len;
    c->len += 8;
}

/* The End Tag (§6.4.2.9), its checksum making the whole template sum to zero. */
static void crs_end(struct crs *c)
{
    c->b[c->len] = 0x79;
    c->b[c->len + 1] = checksum(c->b, c->len + 1);
    c->len += 2;
}

/* ---- DSDT -------------------------------------------------------------------------- */

/* INTx routing covers devices 1-31: device 0 is the host bridge itself. */
#define DSDT_PRT_FIRST_SLOT 1
#define DSDT_PRT_SLOTS      31
#define DSDT_PRT_ENTRIES    (DSDT_PRT_SLOTS * 4)

static uint64_t ecam_size(const struct acpi_platform *p)
{
    return ((uint64_t)p->ecam_bus_end + 1) << 20;
}

/* \_SB.PCI0, a PCI Express host bridge (PCI Firmware Spec 3.2 ch. 4: _HID PNP0A08,
 * _CID PNP0A03 for a system that knows only PCI), on segment 0 from bus 0.  It
 * has an _HID so no _ADR (ACPI 6.5 §6.1: a device has one or the other) and no
 * _OSC: the platform keeps the PCIe native features, which Linux accepts. */
static void dsdt_pci_host(struct aml_stream *a, const struct acpi_platform *p)
{
    size_t dev = aml_emit_device_open(a, "PCI0");
    aml_emit_name(a, "_HID");
    aml_emit_dword(a, aml_eisa_id("PNP0A08"));
    aml_emit_name(a, "_CID");
    aml_emit_dword(a, aml_eisa_id("PNP0A03"));
    aml_emit_name(a, "_UID");
    aml_emit_integer(a, 0);
    aml_emit_name(a, "_SEG");
    aml_emit_integer(a, 0);
    aml_emit_name(a, "_BBN");
    aml_emit_integer(a, 0);

    /* _CRS (§6.2.2): the buses it decodes, the conf1 ports it consumes, and the
     * windows it forwards: all I/O ports but those, and the memory windows. */
    struct crs c = { .len = 0 };
    crs_address(&c, 2, CRS_TYPE_BUS, CRS_PRODUCER, 0, 0, p->ecam_bus_end);
    crs_io_port(&c, 0xcf8, 8);
    crs_address(&c, 2, CRS_TYPE_IO, CRS_PRODUCER, CRS_IO_ENTIRE_RANGE, 0x0000, 0x0cf7);
    crs_address(&c, 2, CRS_TYPE_IO, CRS_PRODUCER, CRS_IO_ENTIRE_RANGE, 0x0d00, 0xffff);
    crs_address(&c, 4, CRS_TYPE_MEMORY, CRS_PRODUCER, CRS_MEMORY_RW_UNCACHED, p->mmio32_base,
                p->mmio32_limit);
    if (p->mmio64_limit >= p->mmio64_base)
        crs_address(&c, 8, CRS_TYPE_MEMORY, CRS_PRODUCER, CRS_MEMORY_RW_UNCACHED, p->mmio64_base,
                    p->mmio64_limit);
    crs_end(&c);
    aml_emit_name(a, "_CRS");
    aml_emit_buffer(a, c.b, c.len);

    /* _PRT (§6.2.13): {Address (device << 16 | 0xFFFF: any function), Pin (0 =
     * INTA#), Source 0 (a hard-wired GSI, level-triggered active-low), SourceIndex
     * (the GSI)} for each pin of each device, the swizzle vmm/pci.c wires. */
    aml_emit_name(a, "_PRT");
    size_t prt = aml_emit_package_open(a, DSDT_PRT_ENTRIES);
    for (unsigned slot = DSDT_PRT_FIRST_SLOT; slot < DSDT_PRT_FIRST_SLOT + DSDT_PRT_SLOTS; slot++) {
        for (unsigned pin = 0; pin < 4; pin++) {
            size_t e = aml_emit_package_open(a, 4);
            aml_emit_integer(a, (uint64_t)slot << 16 | 0xffff);
            aml_emit_integer(a, pin);
            aml_emit_integer(a, 0);
            aml_emit_integer(a, p->pci_gsi_base + ((slot + pin) & 3));
            aml_emit_close(a, e);
        }
    }
    aml_emit_close(a, prt);
    aml_emit_close(a, dev);
}

/* \_SB.MRES, motherboard resources (PNP0C02) holding the ECAM: PCI Firmware Spec
 * 3.2 §4.1.2 asks that the MCFG's ranges be reserved this way, and Linux uses ECAM
 * only where they are (here or in the E820 map). */
static void dsdt_motherboard(struct aml_stream *a, const struct acpi_platform *p)
{
    size_t dev = aml_emit_device_open(a, "MRES");
    aml_emit_name(a, "_HID");
    aml_emit_dword(a, aml_eisa_id("PNP0C02"));
    aml_emit_name(a, "_UID");
    aml_emit_integer(a, 0);
    struct crs c = { .len = 0 };
    uint64_t last = p->ecam_base + (ecam_size(p) - 1);
    crs_address(&c, last <= 0xffffffff ? 4 : 8, CRS_TYPE_MEMORY, CRS_CONSUMER,
                CRS_MEMORY_RW_UNCACHED, p->ecam_base, last);
    crs_end(&c);
    aml_emit_name(a, "_CRS");
    aml_emit_buffer(a, c.b, c.len);
    aml_emit_close(a, dev);
}

/* The DSDT (§5.2.11.1), revision 2 (64-bit integers): Name(_S5_, Package(4){typ,
 * typ, 0, 0}) first, then with a PCI host bridge Scope(\_SB) holding it and the
 * motherboard resources.  With t NULL only its length is computed. */
static size_t build_dsdt(uint8_t *t, const struct acpi_platform *p)
{
    struct aml_stream a = { .out = t ? t + 36 : NULL, .len = 0 };
    /* NameOp, NameSeg "_S5_", PackageOp, PkgLength 8, NumElements 4, then each
     * element: BytePrefix and SLP_TYP, or ZeroOp. */
    uint8_t s5[14] = { AML_OP_NAME, '_', 'S', '5', '_', AML_OP_PACKAGE, 0x08, 0x04,
                       AML_OP_BYTE_PREFIX, 0, AML_OP_BYTE_PREFIX, 0, AML_OP_ZERO, AML_OP_ZERO };
    s5[9] = s5[11] = p->slp_typ_s5;
    aml_emit_bytes(&a, s5, sizeof s5);
    if (p->pci) {
        size_t sb = aml_emit_scope_open(&a, "\\_SB_");
        dsdt_pci_host(&a, p);
        dsdt_motherboard(&a, p);
        aml_emit_close(&a, sb);
    }
    size_t len = 36 + a.len;
    if (t) {
        header(t, "DSDT", (uint32_t)len, 2);
        finish(t, (uint32_t)len);
    }
    return len;
}

/* MCFG (PCI Firmware Spec 3.2 §4.1.2): the header, 8 reserved bytes, and one
 * allocation: ECAM base, segment 0, buses 0 .. ecam_bus_end. */
#define MCFG_LEN (36 + 8 + 16)
static void build_mcfg(uint8_t *t, const struct acpi_platform *p)
{
    header(t, "MCFG", MCFG_LEN, 1);
    put64(t + 44, p->ecam_base);
    put16(t + 52, 0);
    t[54] = 0;
    t[55] = p->ecam_bus_end;
    finish(t, MCFG_LEN);
}

/* FADT revision 6 (§5.2.9, Table 5.9): 276 bytes. */
#define FADT_LEN 276
static size_t build_fadt(uint8_t *t, const struct acpi_platform *p, uint64_t dsdt, uint64_t facs)
{
    header(t, "FACP", FADT_LEN, 6);
    put32(t + 36, (uint32_t)facs);
    put32(t + 40, (uint32_t)dsdt);
    t[45] = 0;                                   /* preferred PM profile: unspecified */
    put16(t + 46, p->sci_irq);
    /* No SMI_CMD: the platform starts in ACPI mode (SCI_EN reads 1), §4.8.2.1. */
    put32(t + 56, p->pm_base);                   /* PM1a_EVT_BLK */
    put32(t + 64, p->pm_base + 4u);              /* PM1a_CNT_BLK */
    put32(t + 76, p->pm_base + 8u);              /* PM_TMR_BLK */
    t[88] = 4;                                   /* PM1_EVT_LEN */
    t[89] = 2;                                   /* PM1_CNT_LEN */
    t[91] = 4;                                   /* PM_TMR_LEN */
    put16(t + 96, 101);                          /* P_LVL2_LAT > 100: C2 not supported */
    put16(t + 98, 1001);                         /* P_LVL3_LAT > 1000: C3 not supported */
    t[108] = p->century_index;
    /* IAPC_BOOT_ARCH (§5.2.9.3): legacy devices (bit 0) and an 8042 (bit 1); no VGA
     * (bit 2), no MSI restriction. */
    put16(t + 109, 0x0003);
    /* Flags (Table 5.10): WBINVD (0), PROC_C1 (2), SLP_BUTTON (5: no sleep button
     * as a fixed feature), RESET_REG_SUP (10), TMR_VAL_EXT (8: 32-bit PM timer). */
    put32(t + 112, (1u << 0) | (1u << 2) | (1u << 5) | (1u << 8) | (1u << 10));
    gas_io(t + 116, 0xcf9, 8, 1);                /* RESET_REG: the reset control register */
    t[128] = 0x06;                               /* RESET_VALUE: hard reset */
    t[131] = 5;                                  /* FADT minor version: 6.5 */
    put64(t + 132, facs);                        /* X_FIRMWARE_CTRL */
    put64(t + 140, dsdt);                        /* X_DSDT */
    gas_io(t + 148, p->pm_base, 32, 3);          /* X_PM1a_EVT_BLK */
    gas_io(t + 172, (uint16_t)(p->pm_base + 4), 16, 2);  /* X_PM1a_CNT_BLK */
    gas_io(t + 208, (uint16_t)(p->pm_base + 8), 32, 3);  /* X_PM_TMR_BLK */
    put_str(t + 268, "PLINTHVM", 8);             /* hypervisor vendor identity */
    finish(t, FADT_LEN);
    return FADT_LEN;
}

/* MADT (§5.2.12): local APIC address, PCAT_COMPAT (dual 8259s present), one
 * Processor Local APIC per vCPU, the IOAPIC (GSI 0-23), and the two PC interrupt
 * source overrides: ISA IRQ 0 on GSI 2, and the SCI level-triggered active-low. */
static size_t build_madt(uint8_t *t, const struct acpi_platform *p)
{
    size_t len = 44;
    put32(t + 36, p->lapic_addr);
    put32(t + 40, 1);                            /* PCAT_COMPAT */
    for (unsigned i = 0; i < p->vcpus; i++) {
        uint8_t *e = t + len;
        e[0] = 0; e[1] = 8;                      /* Processor Local APIC */
        e[2] = (uint8_t)i;                       /* ACPI processor UID */
        e[3] = (uint8_t)i;                       /* APIC ID */
        put32(e + 4, 1);                         /* enabled */
        len += 8;
    }
    uint8_t *io = t + len;
    io[0] = 1; io[1] = 12; io[2] = p->ioapic_id; io[3] = 0;
    put32(io + 4, p->ioapic_addr);
    put32(io + 8, 0);                            /* GSI base */
    len += 12;
    uint8_t *iso = t + len;
    iso[0] = 2; iso[1] = 10; iso[2] = 0; iso[3] = 0;  /* bus ISA, IRQ 0 */
    put32(iso + 4, 2);                           /* -> GSI 2 */
    put16(iso + 8, 0);                           /* conforms to the bus */
    len += 10;
    iso = t + len;
    iso[0] = 2; iso[1] = 10; iso[2] = 0; iso[3] = p->sci_irq;
    put32(iso + 4, p->sci_irq);
    put16(iso + 8, 0x000f);                      /* level-triggered, active low */
    len += 10;
    header(t, "APIC", (uint32_t)len, 5);
    finish(t, (uint32_t)len);
    return len;
}

/* FACS (§5.2.10): required beside a full (not hardware-reduced) FADT; 64 bytes,
 * 64-byte aligned, no checksum.  No waking vector: the guest has no S3. */
#define FACS_LEN 64
static void build_facs(uint8_t *t)
{
    put_str(t, "FACS", 4);
    put32(t + 4, FACS_LEN);
    t[32] = 2;                                   /* version */
}

static size_t align16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

/* The PCI host bridge's description: an ECAM at a 1 MiB boundary (one bus: 32
 * devices x 8 functions x 4 KiB) that does not wrap, a non-empty 32-bit window
 * (not at 0, so its length fits 32 bits), a 64-bit window, if any, above 4 GiB, and
 * INTA#-INTD# on IOAPIC pins (GSI 0-23). */
static bool pci_platform_ok(const struct acpi_platform *p)
{
    if (p->ecam_base == 0 || (p->ecam_base & 0xfffff) || p->ecam_base > UINT64_MAX - (ecam_size(p) - 1))
        return false;
    if (p->mmio32_base == 0 || p->mmio32_limit < p->mmio32_base)
        return false;
    if (p->mmio64_limit >= p->mmio64_base && p->mmio64_base <= 0xffffffff)
        return false;
    return p->pci_gsi_base + 3 <= 23;
}

enum acpi_build_status acpi_build(const struct acpi_platform *p, uint8_t *buf, size_t size,
                                  uint64_t gpa, size_t *used)
{
    *used = 0;
    if (p->vcpus == 0 || p->vcpus > ACPI_BUILD_MAX_CPUS || p->sci_irq > 15 || p->pm_base == 0 ||
        p->pm_base > 0xffff - 12 || p->slp_typ_s5 > 7 || (gpa & 63))
        return ACPI_BUILD_BAD_PLATFORM;
    if (p->pci && !pci_platform_ok(p))
        return ACPI_BUILD_BAD_PLATFORM;
    /* The layout: RSDP 36, XSDT 36 + 8 per table, MADT 44 + 8 per vCPU + 12 + 2 x 10,
     * FADT, DSDT each at a 16-byte boundary, the FACS at a 64-byte one, then the MCFG
     * when there is a PCI host bridge.  The DSDT is sized by building it unwritten. */
    size_t xsdt_len = 36 + 8 * (p->pci ? 3 : 2);
    size_t madt_len = 44 + 8 * p->vcpus + 32;
    size_t rsdp = 0, xsdt = align16(36), madt = xsdt + align16(xsdt_len);
    size_t fadt = madt + align16(madt_len);
    size_t dsdt = fadt + align16(FADT_LEN);
    size_t facs = (dsdt + build_dsdt(NULL, p) + 63) & ~(size_t)63;
    size_t mcfg = facs + FACS_LEN;
    size_t end = p->pci ? mcfg + MCFG_LEN : facs + FACS_LEN;
    if (size < end)
        return ACPI_BUILD_TOO_SMALL;
    for (size_t i = 0; i < end; i++)
        buf[i] = 0;

    build_madt(buf + madt, p);
    build_dsdt(buf + dsdt, p);
    build_facs(buf + facs);
    build_fadt(buf + fadt, p, gpa + dsdt, gpa + facs);
    if (p->pci)
        build_mcfg(buf + mcfg, p);

    uint8_t *x = buf + xsdt;
    header(x, "XSDT", (uint32_t)xsdt_len, 1);
    put64(x + 36, gpa + madt);
    put64(x + 44, gpa + fadt);
    if (p->pci)
        put64(x + 52, gpa + mcfg);
    finish(x, (uint32_t)xsdt_len);

    /* RSDP revision 2 (§5.2.5.3): the first checksum covers 20 bytes, the extended one 36. */
    uint8_t *r = buf + rsdp;
    put_str(r, "RSD PTR ", 8);
    put_str(r + 9, OEM_ID, 6);
    r[15] = 2;
    put32(r + 16, 0);                            /* no RSDT: XSDT only */
    put32(r + 20, 36);
    put64(r + 24, gpa + xsdt);
    r[8] = checksum(r, 20);
    r[32] = checksum(r, 36);
    *used = end;
    return ACPI_BUILD_OK;
}
