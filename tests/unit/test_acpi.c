/* drivers/acpi.c over crafted tables: the RSDP/RSDT/XSDT walk, MADT, FADT, \_S5 in
 * the AML, HPET, MCFG, DMAR, SPCR, and what happens with broken tables (bad
 * checksums, truncation, zero-length entries).  Tables are built in a fake physical
 * memory; the map function hands the parser a heap copy of exactly the bytes it asked
 * for, so a read past what it mapped is an AddressSanitizer error, not a silent pass. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kernel/fmt.c"
#include "drivers/acpi.c"

/* ---- fake physical memory and the map function ------------------------------------ */

#define PHYS_BASE 0x7FFE0000ull
#define PHYS_SIZE 0x10000ull
static uint8_t physmem[PHYS_SIZE];

enum {
    AT_RSDT = 0x0000, AT_XSDT = 0x0200, AT_MADT = 0x1000, AT_MADT2 = 0x1800,
    AT_FADT = 0x2000, AT_DSDT = 0x3000, AT_DSDT2 = 0x3800, AT_SSDT = 0x4000,
    AT_HPET = 0x5000, AT_MCFG = 0x5100, AT_DMAR = 0x5200, AT_SPCR = 0x5300,
    AT_SPARE = 0x6000,
};
#define PA(off) (PHYS_BASE + (off))

static void *copies[4096];
static unsigned ncopies;
static unsigned map_calls;

static const void *test_map(void *ctx, uint64_t phys, size_t len)
{
    (void)ctx;
    map_calls++;
    if (phys < PHYS_BASE || phys - PHYS_BASE > PHYS_SIZE || len > PHYS_SIZE - (phys - PHYS_BASE))
        return NULL;
    assert_true(ncopies < sizeof copies / sizeof copies[0]);
    void *c = malloc(len);
    assert_non_null(c);
    memcpy(c, physmem + (phys - PHYS_BASE), len);
    copies[ncopies++] = c;
    return c;
}

/* ---- captured log ------------------------------------------------------------------ */

static char warn_lines[64][512];
static unsigned nwarn;
static char info_lines[16][512];
static unsigned ninfo;

void log_vprintf(enum log_level level, const char *fmt, va_list ap)
{
    char line[512];
    fmt_vsnprintf(line, sizeof line, fmt, ap);
    if (level >= LOG_WARN) {
        if (nwarn < 64)
            strcpy(warn_lines[nwarn], line);
        nwarn++;
    } else if (level == LOG_INFO && ninfo < 16) {
        strcpy(info_lines[ninfo++], line);
    }
}

void log_printf(enum log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vprintf(level, fmt, ap);
    va_end(ap);
}

static bool warned(const char *needle)
{
    for (unsigned i = 0; i < nwarn && i < 64; i++)
        if (strstr(warn_lines[i], needle))
            return true;
    return false;
}

static void dump_warnings(void)
{
    for (unsigned i = 0; i < nwarn && i < 64; i++)
        print_message("  warning: %s\n", warn_lines[i]);
}

#define assert_warned(needle)                                                       \
    do {                                                                            \
        if (!warned(needle)) {                                                      \
            dump_warnings();                                                        \
            fail_msg("no warning containing \"%s\"", needle);                      \
        }                                                                           \
    } while (0)

#define assert_warnings(info, n)                                                    \
    do {                                                                            \
        if ((info)->warnings != (n) || nwarn != (n)) {                             \
            dump_warnings();                                                        \
            fail_msg("expected %u warnings, info says %u, log has %u", (unsigned)(n), \
                     (info)->warnings, nwarn);                                      \
        }                                                                           \
    } while (0)

/* ---- the core side's paging hooks, for acpi_init ----------------------------------- */

static bool direct_mapped = true;
static unsigned mmio_calls;

bool paging_is_direct_mapped(uint64_t phys, uint64_t size)
{
    return direct_mapped && phys >= PHYS_BASE && phys - PHYS_BASE <= PHYS_SIZE &&
           size <= PHYS_SIZE - (phys - PHYS_BASE);
}

void *phys_to_virt(uint64_t phys)
{
    if (phys < PHYS_BASE || phys - PHYS_BASE >= PHYS_SIZE)
        fail_msg("phys_to_virt(%#lx) outside the fake memory", (unsigned long)phys);
    return physmem + (phys - PHYS_BASE);
}

void *mmio_map(uint64_t phys, size_t size)
{
    mmio_calls++;
    if (phys < PHYS_BASE || phys - PHYS_BASE > PHYS_SIZE || size > PHYS_SIZE - (phys - PHYS_BASE))
        return NULL;
    return physmem + (phys - PHYS_BASE);
}

/* ---- table builders ---------------------------------------------------------------- */

static uint8_t *at(uint32_t off) { return physmem + off; }
static void w8(uint32_t off, uint8_t v) { physmem[off] = v; }
static void w16(uint32_t off, uint16_t v) { w8(off, (uint8_t)v); w8(off + 1, (uint8_t)(v >> 8)); }
static void w32(uint32_t off, uint32_t v) { w16(off, (uint16_t)v); w16(off + 2, (uint16_t)(v >> 16)); }
static void w64(uint32_t off, uint64_t v) { w32(off, (uint32_t)v); w32(off + 4, (uint32_t)(v >> 32)); }

static void header(uint32_t off, const char *sig, uint32_t len, uint8_t rev)
{
    memset(at(off), 0, len);
    memcpy(at(off), sig, 4);
    w32(off + 4, len);
    w8(off + 8, rev);
    memcpy(at(off + 10), "PLINTH", 6);
    memcpy(at(off + 16), "TESTTABL", 8);
}

static uint8_t sum(const uint8_t *p, size_t n)
{
    uint8_t s = 0;
    while (n--)
        s = (uint8_t)(s + *p++);
    return s;
}

/* Sets the checksum byte so that the table (its header's length) sums to zero. */
static void fix(uint32_t off)
{
    uint32_t len = rd32(at(off + 4));
    w8(off + 9, 0);
    w8(off + 9, (uint8_t)-sum(at(off), len));
}

static uint8_t rsdp[40];
static size_t rsdp_len;

static void make_rsdp(uint8_t rev, uint64_t rsdt, uint64_t xsdt)
{
    memset(rsdp, 0, sizeof rsdp);
    memcpy(rsdp, "RSD PTR ", 8);
    memcpy(rsdp + 9, "BOCHS ", 6);
    rsdp[15] = rev;
    for (int i = 0; i < 4; i++)
        rsdp[16 + i] = (uint8_t)(rsdt >> (8 * i));
    rsdp[8] = (uint8_t)-sum(rsdp, 20);
    rsdp_len = 20;
    if (rev >= 2) {
        rsdp[20] = 36;
        for (int i = 0; i < 8; i++)
            rsdp[24 + i] = (uint8_t)(xsdt >> (8 * i));
        rsdp[32] = (uint8_t)-sum(rsdp, 36);
        rsdp_len = 36;
    }
}

static void make_root(uint32_t off, bool xsdt, const uint64_t *tables, unsigned n)
{
    unsigned esz = xsdt ? 8 : 4;
    header(off, xsdt ? "XSDT" : "RSDT", 36 + n * esz, 1);
    for (unsigned i = 0; i < n; i++) {
        if (xsdt)
            w64(off + 36 + i * 8, tables[i]);
        else
            w32(off + 36 + i * 4, (uint32_t)tables[i]);
    }
    fix(off);
}

/* MADT from raw entry bytes. */
static void make_madt(uint32_t off, const uint8_t *entries, uint32_t elen)
{
    header(off, "APIC", 44 + elen, 3);
    w32(off + 36, 0xFEE00000);
    w32(off + 40, 1); /* PCAT_COMPAT */
    memcpy(at(off + 44), entries, elen);
    fix(off);
}

static const uint8_t madt_two_cpus[] = {
    0, 8, 0, 0, 1, 0, 0, 0,              /* LAPIC uid 0 id 0 enabled */
    0, 8, 1, 1, 1, 0, 0, 0,              /* LAPIC uid 1 id 1 enabled */
    1, 12, 0, 0, 0x00, 0x00, 0xC0, 0xFE, 0, 0, 0, 0,   /* IOAPIC id 0 at 0xFEC00000 */
    2, 10, 0, 0, 2, 0, 0, 0, 0, 0,       /* IRQ 0 -> GSI 2 */
};

/* FADT of len bytes (116: ACPI 1.0, 276: ACPI 6.x) with PIIX4-like PM blocks at
 * 0xB000, pointing at the DSDT at dsdt32 / x_dsdt.  Caller calls fix() after edits. */
static void make_fadt(uint32_t off, uint32_t len, uint32_t dsdt32, uint64_t x_dsdt)
{
    header(off, "FACP", len, len >= 244 ? 6 : 1);
    w32(off + 40, dsdt32);
    w32(off + 48, 0xB2);       /* SMI_CMD */
    w8(off + 52, 0xF1);        /* ACPI_ENABLE */
    w32(off + 64, 0xB004);     /* PM1a_CNT_BLK */
    w32(off + 76, 0xB008);     /* PM_TMR_BLK */
    w8(off + 89, 2);           /* PM1_CNT_LEN */
    w8(off + 91, 4);           /* PM_TMR_LEN */
    w8(off + 108, 0x32);       /* CENTURY */
    if (len >= 148)
        w64(off + 140, x_dsdt);
    fix(off);
}

static void make_gas(uint32_t off, uint8_t space, uint8_t width, uint64_t addr)
{
    w8(off, space);
    w8(off + 1, width);
    w8(off + 2, 0);
    w8(off + 3, width == 8 ? 1 : width == 16 ? 2 : 3);
    w64(off + 4, addr);
}

static void make_aml_table(uint32_t off, const char *sig, const uint8_t *aml, uint32_t n)
{
    header(off, sig, 36 + n, 2);
    memcpy(at(off + 36), aml, n);
    fix(off);
}

/* Name(\_S5, Package(4){0x05, 0x05, 0, 0}) with BytePrefix constants. */
static const uint8_t aml_s5_byteprefix[] = {
    0x10, 0x05, '\\', '_', 'S', 'B', '_',   /* something before it: Scope(\_SB_) */
    0x08, '\\', '_', 'S', '5', '_', 0x12, 0x08, 0x04, 0x0A, 0x05, 0x0A, 0x05, 0x00, 0x00,
};
/* Name(_S5, Package(2){Zero, One}). */
static const uint8_t aml_s5_zero_one[] = {
    0x08, '_', 'S', '5', '_', 0x12, 0x04, 0x02, 0x00, 0x01,
};

static struct acpi_info info;

static int setup(void **state)
{
    (void)state;
    memset(physmem, 0, sizeof physmem);
    memset(&info, 0xA5, sizeof info); /* acpi_parse must clear it */
    nwarn = ninfo = 0;
    ncopies = map_calls = mmio_calls = 0;
    direct_mapped = true;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (unsigned i = 0; i < ncopies; i++)
        free(copies[i]);
    ncopies = 0;
    return 0;
}

static void parse(void)
{
    acpi_parse(rsdp, rsdp_len, test_map, NULL, &info);
}

/* A whole QEMU/Bochs-like machine: RSDT -> MADT, FADT -> DSDT, HPET. */
static void build_basic_machine(bool xsdt)
{
    make_madt(AT_MADT, madt_two_cpus, sizeof madt_two_cpus);
    make_fadt(AT_FADT, 116, (uint32_t)PA(AT_DSDT), 0);
    make_aml_table(AT_DSDT, "DSDT", aml_s5_byteprefix, sizeof aml_s5_byteprefix);
    header(AT_HPET, "HPET", 56, 1);
    make_gas(AT_HPET + 40, 0, 64, 0xFED00000);
    fix(AT_HPET);
    uint64_t t[] = { PA(AT_FADT), PA(AT_MADT), PA(AT_HPET) };
    make_root(xsdt ? AT_XSDT : AT_RSDT, xsdt, t, 3);
}

/* ---- RSDP and root tables ---------------------------------------------------------- */

static void test_rsdp_v1_rsdt(void **state)
{
    (void)state;
    build_basic_machine(false);
    make_rsdp(0, PA(AT_RSDT), 0);
    parse();
    assert_warnings(&info, 0);
    assert_true(info.present);
    assert_int_equal(info.revision, 0);
    assert_string_equal(info.oem_id, "BOCHS");
    assert_int_equal(info.cpu_count, 2);
    assert_int_equal(info.cpus[0].apic_id, 0);
    assert_int_equal(info.cpus[1].apic_id, 1);
    assert_int_equal(info.cpus[1].acpi_uid, 1);
    assert_false(info.cpus[1].x2apic_entry);
    assert_int_equal(info.ioapic_count, 1);
    assert_int_equal(info.ioapics[0].addr, 0xFEC00000);
    assert_int_equal(info.iso_count, 1);
    assert_int_equal(info.isos[0].source, 0);
    assert_int_equal(info.isos[0].gsi, 2);
    assert_true(info.pcat_compat);
    assert_int_equal(info.lapic_addr, 0xFEE00000);
    assert_true(info.have_fadt);
    assert_int_equal(info.pm1a_cnt, 0xB004);
    assert_int_equal(info.pm1b_cnt, 0);
    assert_int_equal(info.pm_tmr_port, 0xB008);
    assert_false(info.pm_tmr_32bit);
    assert_int_equal(info.century, 0x32);
    assert_false(info.have_reset);
    assert_true(info.have_s5);
    assert_int_equal(info.slp_typa, 5);
    assert_int_equal(info.slp_typb, 5);
    assert_int_equal(info.dsdt_addr, PA(AT_DSDT));
    assert_int_equal(info.hpet_addr, 0xFED00000);
    assert_int_equal(info.mcfg_count, 0);
    assert_false(info.have_dmar);
    assert_false(info.have_spcr);
}

static void test_rsdp_v2_prefers_xsdt(void **state)
{
    (void)state;
    build_basic_machine(true);
    /* The RSDT lists a one-CPU MADT: it must not be the one used. */
    static const uint8_t one_cpu[] = { 0, 8, 0, 0, 1, 0, 0, 0 };
    make_madt(AT_MADT2, one_cpu, sizeof one_cpu);
    uint64_t t[] = { PA(AT_MADT2) };
    make_root(AT_RSDT, false, t, 1);
    make_rsdp(2, PA(AT_RSDT), PA(AT_XSDT));
    parse();
    assert_warnings(&info, 0);
    assert_true(info.present);
    assert_int_equal(info.revision, 2);
    assert_int_equal(info.cpu_count, 2);
    assert_true(info.have_s5);
}

static void test_bad_xsdt_falls_back_to_rsdt(void **state)
{
    (void)state;
    build_basic_machine(false);
    uint64_t t[] = { PA(AT_MADT) };
    make_root(AT_XSDT, true, t, 1);
    at(AT_XSDT)[40] ^= 0xFF; /* corrupt after the checksum was set */
    make_rsdp(2, PA(AT_RSDT), PA(AT_XSDT));
    parse();
    assert_true(info.present);
    assert_int_equal(info.cpu_count, 2);
    assert_true(info.have_s5);
    assert_warned("XSDT");
    assert_warned("bad checksum");
    assert_warned("falling back from the XSDT to the RSDT");
    assert_warnings(&info, 2);
}

static void test_bad_extended_checksum_uses_rsdt(void **state)
{
    (void)state;
    build_basic_machine(false);
    make_rsdp(2, PA(AT_RSDT), PA(AT_XSDT)); /* the XSDT there is all zeros */
    rsdp[32] ^= 1;
    parse();
    assert_true(info.present);
    assert_int_equal(info.cpu_count, 2);
    assert_warned("extended checksum");
    assert_warnings(&info, 1);
}

static void test_v2_rsdp_copied_short_uses_rsdt(void **state)
{
    (void)state;
    build_basic_machine(false);
    make_rsdp(2, PA(AT_RSDT), PA(AT_XSDT));
    rsdp_len = 20; /* Multiboot2's old-RSDP tag */
    parse();
    assert_warnings(&info, 0);
    assert_true(info.present);
    assert_int_equal(info.cpu_count, 2);
}

static void test_bad_rsdp_checksum_means_no_acpi(void **state)
{
    (void)state;
    build_basic_machine(false);
    make_rsdp(0, PA(AT_RSDT), 0);
    rsdp[8] ^= 0x10;
    parse();
    assert_false(info.present);
    assert_int_equal(info.cpu_count, 0);
    assert_false(info.have_fadt);
    assert_false(info.have_s5);
    assert_warned("RSDP has a bad checksum");
    assert_warned("boot CPU alone, PIT timer");
    assert_warnings(&info, 1);
    assert_int_equal(map_calls, 0); /* nothing is read from an untrusted pointer */
}

static void test_no_rsdp(void **state)
{
    (void)state;
    acpi_parse(NULL, 0, test_map, NULL, &info);
    assert_false(info.present);
    assert_warnings(&info, 1);
    memcpy(rsdp, "RSD PTX ", 8);
    acpi_parse(rsdp, 20, test_map, NULL, &info);
    assert_false(info.present);
    assert_int_equal(info.warnings, 1);
    assert_warned("signature");
}

static void test_root_pointing_nowhere(void **state)
{
    (void)state;
    make_rsdp(0, 0x1000, 0); /* outside the fake memory */
    parse();
    assert_false(info.present);
    assert_warned("RSDT at 0x1000 is outside readable memory");
    assert_warned("no valid RSDT or XSDT");
}

static void test_root_entry_unreadable_and_null(void **state)
{
    (void)state;
    build_basic_machine(false);
    uint64_t t[] = { 0, 0xDEAD0000, PA(AT_MADT), PA(AT_FADT) };
    make_root(AT_RSDT, false, t, 4);
    make_rsdp(0, PA(AT_RSDT), 0);
    parse();
    assert_true(info.present);
    assert_int_equal(info.cpu_count, 2);
    assert_warned("entry 0 is a null pointer");
    assert_warned("0xdead0000 outside readable memory");
    assert_warnings(&info, 2);
}

/* ---- MADT ---------------------------------------------------------------------------- */

static void root_with(uint64_t a, uint64_t b)
{
    uint64_t t[] = { a, b };
    make_root(AT_RSDT, false, t, b ? 2 : 1);
    make_rsdp(0, PA(AT_RSDT), 0);
}

static void test_madt_mixed_entries(void **state)
{
    (void)state;
    static const uint8_t e[] = {
        0, 8, 0, 0, 1, 0, 0, 0,              /* id 0 enabled */
        0, 8, 1, 1, 1, 0, 0, 0,              /* id 1 enabled */
        0, 8, 2, 2, 0, 0, 0, 0,              /* id 2 disabled: not counted */
        0, 8, 3, 3, 2, 0, 0, 0,              /* id 3 online capable */
        0x50, 6, 1, 2, 3, 4,                 /* reserved type: skipped with a warning */
        4, 6, 0xFF, 5, 0, 1,                 /* LAPIC NMI: known, skipped quietly */
        9, 16, 0, 0, 0x2C, 0x01, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0,  /* x2APIC id 300 uid 4 */
        9, 16, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0,        /* x2APIC id 1 again */
        1, 12, 8, 0, 0x00, 0x10, 0xC0, 0xFE, 24, 0, 0, 0,       /* IOAPIC 8 at 0xFEC01000 */
        2, 10, 0, 9, 9, 0, 0, 0, 0x0D, 0,                       /* IRQ 9 level, active low */
        5, 12, 0, 0, 0, 0, 0xE0, 0xFE, 1, 0, 0, 0,              /* LAPIC at 0x1FEE00000 */
        0x85, 4, 0, 0,                                          /* OEM type: quiet */
    };
    make_madt(AT_MADT, e, sizeof e);
    root_with(PA(AT_MADT), 0);
    parse();
    assert_int_equal(info.cpu_count, 4);
    assert_int_equal(info.cpus[0].apic_id, 0);
    assert_int_equal(info.cpus[1].apic_id, 1);
    assert_int_equal(info.cpus[2].apic_id, 3);
    assert_true(info.cpus[2].online_capable);
    assert_false(info.cpus[1].online_capable);
    assert_int_equal(info.cpus[3].apic_id, 300);
    assert_int_equal(info.cpus[3].acpi_uid, 4);
    assert_true(info.cpus[3].x2apic_entry);
    assert_int_equal(info.ioapic_count, 1);
    assert_int_equal(info.ioapics[0].id, 8);
    assert_int_equal(info.ioapics[0].addr, 0xFEC01000);
    assert_int_equal(info.ioapics[0].gsi_base, 24);
    assert_int_equal(info.iso_count, 1);
    assert_int_equal(info.isos[0].source, 9);
    assert_int_equal(info.isos[0].gsi, 9);
    assert_int_equal(info.isos[0].flags, 0x0D);
    assert_int_equal(info.lapic_addr, 0x1FEE00000ull);
    assert_warned("APIC id 1 twice");
    assert_warned("types unknown to ACPI 6.5 (first: 0x50)");
    /* + "no usable FADT" */
    assert_warned("no usable FADT");
    assert_warnings(&info, 3);
}

static void test_madt_bad_checksum(void **state)
{
    (void)state;
    make_madt(AT_MADT, madt_two_cpus, sizeof madt_two_cpus);
    at(AT_MADT)[9]++;
    root_with(PA(AT_MADT), 0);
    parse();
    assert_true(info.present);
    assert_int_equal(info.cpu_count, 0);
    assert_int_equal(info.ioapic_count, 0);
    assert_warned("APIC at 0x7ffe1000 (82 bytes) has a bad checksum; skipped: running on "
                  "the boot CPU alone");
    assert_warned("no usable MADT");
}

static void test_madt_truncated(void **state)
{
    (void)state;
    /* The table claims 4 KiB but sits 0x100 bytes from the end of readable memory. */
    uint32_t off = PHYS_SIZE - 0x100;
    make_madt(off, madt_two_cpus, sizeof madt_two_cpus);
    w32(off + 4, 4096);
    root_with(PA(off), 0);
    parse();
    assert_true(info.present);
    assert_int_equal(info.cpu_count, 0);
    assert_warned("run past readable memory (truncated table)");
}

static void test_madt_absurd_length(void **state)
{
    (void)state;
    make_madt(AT_MADT, madt_two_cpus, sizeof madt_two_cpus);
    w32(AT_MADT + 4, 0xFFFFFFF0);
    root_with(PA(AT_MADT), 0);
    parse();
    assert_int_equal(info.cpu_count, 0);
    assert_warned("claims length 4294967280");
    w32(AT_MADT + 4, 20);
    nwarn = 0;
    parse();
    assert_int_equal(info.cpu_count, 0);
    assert_warned("claims length 20");
}

static void test_madt_zero_length_entry(void **state)
{
    (void)state;
    static const uint8_t e[] = {
        0, 8, 0, 0, 1, 0, 0, 0,     /* id 0 */
        7, 0, 0, 0, 0, 0, 0, 0,     /* zero length: would loop forever */
        0, 8, 1, 1, 1, 0, 0, 0,     /* never reached */
    };
    make_madt(AT_MADT, e, sizeof e);
    root_with(PA(AT_MADT), 0);
    parse();
    assert_int_equal(info.cpu_count, 1);
    assert_warned("has length 0; the rest of the MADT is ignored");
    /* Length 1 cannot even hold the type and length bytes. */
    w8(AT_MADT + 44 + 9, 1);
    fix(AT_MADT);
    nwarn = 0;
    parse();
    assert_int_equal(info.cpu_count, 1);
    assert_warned("has length 1; the rest of the MADT is ignored");
}

static void test_madt_entry_past_end_and_short(void **state)
{
    (void)state;
    static const uint8_t e[] = {
        0, 8, 0, 0, 1, 0, 0, 0,     /* id 0 */
        9, 8, 0, 0, 5, 0, 0, 0,     /* x2APIC entry only 8 bytes: skipped */
        1, 12, 0, 0,                /* IOAPIC entry cut off by the table's end */
    };
    make_madt(AT_MADT, e, sizeof e);
    root_with(PA(AT_MADT), 0);
    parse();
    assert_int_equal(info.cpu_count, 1);
    assert_int_equal(info.ioapic_count, 0);
    assert_warned("shorter than the 16 its type needs");
    assert_warned("runs past the table's end");
}

static void test_madt_broadcast_id_and_no_cpus(void **state)
{
    (void)state;
    static const uint8_t e[] = {
        0, 8, 0, 0xFF, 1, 0, 0, 0,  /* enabled with APIC id 0xFF */
        0, 8, 1, 1, 0, 0, 0, 0,     /* disabled */
    };
    make_madt(AT_MADT, e, sizeof e);
    w32(AT_MADT + 36, 0);
    fix(AT_MADT);
    root_with(PA(AT_MADT), 0);
    parse();
    assert_int_equal(info.cpu_count, 0);
    assert_int_equal(info.lapic_addr, ACPI_LAPIC_DEFAULT);
    assert_warned("broadcast APIC id 0xff");
    assert_warned("local APIC address 0");
    assert_warned("lists no usable processor");
}

static void test_madt_too_many_cpus(void **state)
{
    (void)state;
    static uint8_t e[300 * 16];
    for (unsigned i = 0; i < 300; i++) {
        uint8_t *p = e + i * 16;
        p[0] = 9; p[1] = 16;
        p[4] = (uint8_t)i; p[5] = (uint8_t)(i >> 8);
        p[8] = 1;
        p[12] = (uint8_t)i; p[13] = (uint8_t)(i >> 8);
    }
    make_madt(AT_SPARE, e, sizeof e);
    root_with(PA(AT_SPARE), 0);
    parse();
    assert_int_equal(info.cpu_count, ACPI_MAX_CPUS);
    assert_int_equal(info.cpus[255].apic_id, 255);
    assert_warned("more than 256 CPUs");
}

static void test_second_madt_ignored(void **state)
{
    (void)state;
    make_madt(AT_MADT, madt_two_cpus, sizeof madt_two_cpus);
    static const uint8_t one_cpu[] = { 0, 8, 0, 7, 1, 0, 0, 0 };
    make_madt(AT_MADT2, one_cpu, sizeof one_cpu);
    root_with(PA(AT_MADT), PA(AT_MADT2));
    parse();
    assert_int_equal(info.cpu_count, 2);
    assert_warned("a second APIC");
}

/* ---- FADT and \_S5 --------------------------------------------------------------------- */

static void fadt_machine(const uint8_t *aml, uint32_t n)
{
    make_fadt(AT_FADT, 116, (uint32_t)PA(AT_DSDT), 0);
    make_aml_table(AT_DSDT, "DSDT", aml, n);
    make_madt(AT_MADT, madt_two_cpus, sizeof madt_two_cpus);
    root_with(PA(AT_FADT), PA(AT_MADT));
}

static void test_s5_zero_one_encoding(void **state)
{
    (void)state;
    fadt_machine(aml_s5_zero_one, sizeof aml_s5_zero_one);
    parse();
    assert_warnings(&info, 0);
    assert_true(info.have_s5);
    assert_int_equal(info.slp_typa, 0);
    assert_int_equal(info.slp_typb, 1);
}

static void test_s5_two_byte_pkglength_and_decoys(void **state)
{
    (void)state;
    static const uint8_t aml[] = {
        0x70, '_', 'S', '5', '_', 0x60,          /* a reference, not a Name */
        0x08, '_', 'S', '5', '_', 0x0A, 0x05,    /* Name(_S5_, 5): not a package */
        /* Name(_S5_, Package(){ 7, 6, 0, 0 }): PkgLength 11 in two bytes, DWord/Word */
        0x08, '_', 'S', '5', '_', 0x12, 0x4B, 0x00, 0x04, 0x0C, 7, 0, 0, 0, 0x0B, 6, 0,
    };
    fadt_machine(aml, sizeof aml);
    parse();
    assert_warnings(&info, 0);
    assert_true(info.have_s5);
    assert_int_equal(info.slp_typa, 7);
    assert_int_equal(info.slp_typb, 6);
}

static void test_s5_truncated_package(void **state)
{
    (void)state;
    /* PkgLength 16 but the table ends after 3 more bytes. */
    static const uint8_t aml[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x10, 0x04, 0x0A };
    fadt_machine(aml, sizeof aml);
    parse();
    assert_false(info.have_s5);
    assert_warned("runs past the end of the table");
    assert_warned("no usable \\_S5");
    /* ...and ending right after the PackageOp, or right after the name. */
    static const uint8_t aml2[] = { 0x08, '_', 'S', '5', '_', 0x12 };
    fadt_machine(aml2, sizeof aml2);
    nwarn = 0;
    parse();
    assert_false(info.have_s5);
    assert_warned("truncated");
    static const uint8_t aml3[] = { 0x08, '_', 'S', '5', '_' };
    fadt_machine(aml3, sizeof aml3);
    nwarn = 0;
    parse();
    assert_false(info.have_s5);
    assert_warned("not followed by a Package");
}

static void test_s5_bad_values(void **state)
{
    (void)state;
    static const uint8_t big[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x06, 0x02, 0x0A, 0x09, 0x0A, 0x01 };
    fadt_machine(big, sizeof big);
    parse();
    assert_false(info.have_s5);
    assert_warned("3-bit");
    static const uint8_t one[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x03, 0x01, 0x00 };
    fadt_machine(one, sizeof one);
    nwarn = 0;
    parse();
    assert_false(info.have_s5);
    assert_warned("fewer than 2 elements");
    static const uint8_t odd[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x05, 0x02, 0x0D, 'x', 0 };
    fadt_machine(odd, sizeof odd);
    nwarn = 0;
    parse();
    assert_false(info.have_s5);
    assert_warned("not integer constants");
}

static void test_s5_in_ssdt(void **state)
{
    (void)state;
    static const uint8_t nothing[] = { 0x10, 0x05, '\\', '_', 'S', 'B', '_' };
    make_fadt(AT_FADT, 116, (uint32_t)PA(AT_DSDT), 0);
    make_aml_table(AT_DSDT, "DSDT", nothing, sizeof nothing);
    make_aml_table(AT_SSDT, "SSDT", aml_s5_zero_one, sizeof aml_s5_zero_one);
    make_madt(AT_MADT, madt_two_cpus, sizeof madt_two_cpus);
    uint64_t t[] = { PA(AT_SSDT), PA(AT_FADT), PA(AT_MADT) };
    make_root(AT_RSDT, false, t, 3);
    make_rsdp(0, PA(AT_RSDT), 0);
    parse();
    assert_warnings(&info, 0);
    assert_true(info.have_s5);
    assert_int_equal(info.slp_typb, 1);
}

static void test_missing_dsdt(void **state)
{
    (void)state;
    fadt_machine(aml_s5_zero_one, sizeof aml_s5_zero_one);
    make_fadt(AT_FADT, 116, 0, 0);
    parse();
    assert_true(info.have_fadt);
    assert_false(info.have_s5);
    assert_warned("FADT names no DSDT");
    assert_warnings(&info, 1);
}

static void test_dsdt_bad_checksum(void **state)
{
    (void)state;
    fadt_machine(aml_s5_zero_one, sizeof aml_s5_zero_one);
    at(AT_DSDT)[40]++;
    parse();
    assert_false(info.have_s5);
    assert_warned("DSDT at 0x7ffe3000 (46 bytes) has a bad checksum; skipped: no \\_S5");
}

static void test_fadt_x_fields(void **state)
{
    (void)state;
    /* ACPI 6 FADT: X_DSDT differs from DSDT and wins; X_ blocks override legacy ones. */
    make_fadt(AT_FADT, 276, (uint32_t)PA(AT_DSDT2), PA(AT_DSDT));
    make_gas(AT_FADT + 172, 1, 16, 0x604);    /* X_PM1a_CNT_BLK */
    make_gas(AT_FADT + 184, 1, 16, 0x644);    /* X_PM1b_CNT_BLK */
    make_gas(AT_FADT + 208, 1, 32, 0x608);    /* X_PM_TMR_BLK */
    w32(AT_FADT + 112, ACPI_FADT_TMR_VAL_EXT | ACPI_FADT_RESET_REG_SUP);
    make_gas(AT_FADT + 116, 1, 8, 0xCF9);     /* RESET_REG */
    w8(AT_FADT + 128, 0x06);
    w16(AT_FADT + 109, ACPI_IAPC_8042);
    fix(AT_FADT);
    make_aml_table(AT_DSDT, "DSDT", aml_s5_zero_one, sizeof aml_s5_zero_one);
    make_aml_table(AT_DSDT2, "DSDT", aml_s5_byteprefix, sizeof aml_s5_byteprefix);
    make_madt(AT_MADT, madt_two_cpus, sizeof madt_two_cpus);
    root_with(PA(AT_FADT), PA(AT_MADT));
    parse();
    assert_true(info.have_fadt);
    assert_int_equal(info.fadt_revision, 6);
    assert_int_equal(info.pm1a_cnt, 0x604);
    assert_int_equal(info.pm1b_cnt, 0x644);
    assert_int_equal(info.pm_tmr_port, 0x608);
    assert_true(info.pm_tmr_32bit);
    assert_true(info.have_reset);
    assert_int_equal(info.reset_reg.space, 1);
    assert_int_equal(info.reset_reg.addr, 0xCF9);
    assert_int_equal(info.reset_value, 6);
    assert_int_equal(info.iapc_boot_arch, ACPI_IAPC_8042);
    assert_int_equal(info.smi_cmd, 0xB2);
    assert_int_equal(info.acpi_enable, 0xF1);
    assert_true(info.have_s5);
    assert_int_equal(info.dsdt_addr, PA(AT_DSDT));
    assert_int_equal(info.slp_typa, 0);       /* from X_DSDT's Zero/One package */
    assert_warned("X_DSDT is used");
    assert_warnings(&info, 1);
}

static void test_fadt_broken_fields(void **state)
{
    (void)state;
    make_fadt(AT_FADT, 276, 0, PA(AT_DSDT));
    make_gas(AT_FADT + 172, 0, 16, 0xFEDC0000); /* X_PM1a in memory space: legacy used */
    w8(AT_FADT + 91, 3);                        /* PM_TMR_LEN 3: no PM timer */
    w32(AT_FADT + 112, ACPI_FADT_RESET_REG_SUP);
    make_gas(AT_FADT + 116, 1, 16, 0xCF9);      /* 16-bit reset register: invalid */
    fix(AT_FADT);
    make_aml_table(AT_DSDT, "DSDT", aml_s5_zero_one, sizeof aml_s5_zero_one);
    make_madt(AT_MADT, madt_two_cpus, sizeof madt_two_cpus);
    root_with(PA(AT_FADT), PA(AT_MADT));
    parse();
    assert_int_equal(info.pm1a_cnt, 0xB004);
    assert_int_equal(info.pm_tmr_port, 0);
    assert_false(info.have_reset);
    assert_warned("X_PM1a_CNT_BLK is a non-I/O address");
    assert_warned("PM_TMR_LEN is 3");
    assert_warned("RESET_REG");
    assert_warnings(&info, 3);
}

static void test_fadt_hw_reduced_and_short(void **state)
{
    (void)state;
    make_fadt(AT_FADT, 276, 0, PA(AT_DSDT));
    w32(AT_FADT + 112, ACPI_FADT_HW_REDUCED_ACPI);
    make_gas(AT_FADT + 244, 0, 8, 0xFE000000);
    fix(AT_FADT);
    make_aml_table(AT_DSDT, "DSDT", aml_s5_byteprefix, sizeof aml_s5_byteprefix);
    make_madt(AT_MADT, madt_two_cpus, sizeof madt_two_cpus);
    root_with(PA(AT_FADT), PA(AT_MADT));
    parse();
    assert_warnings(&info, 0);
    assert_true(info.hw_reduced);
    assert_int_equal(info.pm1a_cnt, 0);
    assert_int_equal(info.pm_tmr_port, 0);
    assert_int_equal(info.sleep_control.addr, 0xFE000000);
    assert_true(info.have_s5);

    header(AT_FADT, "FACP", 100, 1);
    fix(AT_FADT);
    nwarn = 0;
    parse();
    assert_false(info.have_fadt);
    assert_false(info.have_s5);
    assert_warned("shorter than ACPI 1.0's 116");
}

/* ---- HPET, MCFG, DMAR, SPCR ------------------------------------------------------- */

static void test_hpet_mcfg_dmar_spcr(void **state)
{
    (void)state;
    header(AT_HPET, "HPET", 56, 1);
    make_gas(AT_HPET + 40, 0, 64, 0xFED00000);
    fix(AT_HPET);
    header(AT_MCFG, "MCFG", 44 + 3 * 16, 1);
    w64(AT_MCFG + 44, 0xB0000000);
    w16(AT_MCFG + 52, 0);
    w8(AT_MCFG + 54, 0);
    w8(AT_MCFG + 55, 0xFF);
    w64(AT_MCFG + 60, 0xC0000000);             /* bus range reversed: ignored */
    w8(AT_MCFG + 70, 5);
    w8(AT_MCFG + 71, 2);
    w64(AT_MCFG + 76, 0xD0000000);
    w16(AT_MCFG + 84, 1);
    w8(AT_MCFG + 86, 0);
    w8(AT_MCFG + 87, 0x3F);
    fix(AT_MCFG);
    header(AT_DMAR, "DMAR", 48, 1);
    w8(AT_DMAR + 36, 38);
    fix(AT_DMAR);
    header(AT_SPCR, "SPCR", 80, 2);
    w8(AT_SPCR + 36, 0);
    make_gas(AT_SPCR + 40, 1, 8, 0x2F8);
    fix(AT_SPCR);
    make_madt(AT_MADT, madt_two_cpus, sizeof madt_two_cpus);
    make_fadt(AT_FADT, 116, (uint32_t)PA(AT_DSDT), 0);
    make_aml_table(AT_DSDT, "DSDT", aml_s5_zero_one, sizeof aml_s5_zero_one);
    uint64_t t[] = { PA(AT_HPET), PA(AT_MCFG), PA(AT_DMAR), PA(AT_SPCR), PA(AT_MADT), PA(AT_FADT) };
    make_root(AT_XSDT, true, t, 6);
    make_rsdp(2, 0, PA(AT_XSDT));
    parse();
    assert_true(info.present);
    assert_int_equal(info.hpet_addr, 0xFED00000);
    assert_int_equal(info.mcfg_count, 2);
    assert_int_equal(info.mcfg[0].base, 0xB0000000);
    assert_int_equal(info.mcfg[0].bus_end, 0xFF);
    assert_int_equal(info.mcfg[1].segment, 1);
    assert_int_equal(info.mcfg[1].bus_end, 0x3F);
    assert_true(info.have_dmar);
    assert_int_equal(info.dmar_addr, PA(AT_DMAR));
    assert_int_equal(info.dmar_len, 48);
    assert_true(info.have_spcr);
    assert_int_equal(acpi_spcr_io_port(&info), 0x2F8);
    assert_warned("MCFG entry segment 0 buses 5-2");
    assert_warnings(&info, 1);

    /* A memory-mapped or non-16550 SPCR UART is not one plinth's driver can take. */
    info.spcr_addr.space = 0;
    assert_int_equal(acpi_spcr_io_port(&info), 0);
    info.spcr_addr.space = 1;
    info.spcr_interface = 3; /* ARM PL011 */
    assert_int_equal(acpi_spcr_io_port(&info), 0);
    info.spcr_interface = 0x12;
    assert_int_equal(acpi_spcr_io_port(&info), 0x2F8);
    info.have_spcr = false;
    assert_int_equal(acpi_spcr_io_port(&info), 0);
}

static void test_hpet_bad_address(void **state)
{
    (void)state;
    header(AT_HPET, "HPET", 56, 1);
    make_gas(AT_HPET + 40, 1, 64, 0xFED00000); /* I/O space: wrong */
    fix(AT_HPET);
    make_madt(AT_MADT, madt_two_cpus, sizeof madt_two_cpus);
    root_with(PA(AT_HPET), PA(AT_MADT));
    parse();
    assert_int_equal(info.hpet_addr, 0);
    assert_warned("HPET table gives base 0xfed00000 in address space 1");
    header(AT_HPET, "HPET", 40, 1);
    fix(AT_HPET);
    nwarn = 0;
    parse();
    assert_int_equal(info.hpet_addr, 0);
    assert_warned("needs 56");
}

/* ---- acpi_init: the core's map, the summary line ------------------------------------ */

static struct bootinfo bi;

static void test_acpi_init_direct_map(void **state)
{
    (void)state;
    build_basic_machine(false);
    make_rsdp(0, PA(AT_RSDT), 0);
    memset(&bi, 0, sizeof bi);
    memcpy(bi.rsdp, rsdp, rsdp_len);
    bi.rsdp_len = (uint32_t)rsdp_len;
    acpi_init(&bi);
    const struct acpi_info *ai = acpi_get();
    assert_true(ai->present);
    assert_int_equal(ai->cpu_count, 2);
    assert_int_equal(mmio_calls, 0);
    assert_int_equal(ninfo, 2);
    assert_string_equal(info_lines[0], "acpi: rev 0 OEM BOCHS, 2 CPUs, 1 IOAPIC, HPET at "
                        "0xfed00000, PM timer at port 0xb008 (24-bit), S5 ok");
}

static void test_acpi_init_mmio(void **state)
{
    (void)state;
    build_basic_machine(false);
    make_rsdp(0, PA(AT_RSDT), 0);
    memset(&bi, 0, sizeof bi);
    memcpy(bi.rsdp, rsdp, rsdp_len);
    bi.rsdp_len = (uint32_t)rsdp_len;
    direct_mapped = false;
    acpi_init(&bi);
    assert_true(acpi_get()->present);
    assert_true(acpi_get()->have_s5);
    assert_true(mmio_calls > 0);

    /* A hand-off claiming more RSDP bytes than it holds is clamped, not over-read. */
    memset(&bi, 0, sizeof bi);
    memcpy(bi.rsdp, rsdp, rsdp_len);
    bi.rsdp_len = 4096;
    acpi_init(&bi);
    assert_true(acpi_get()->present);

    /* No RSDP at all: no summary, one warning, nothing mapped. */
    memset(&bi, 0, sizeof bi);
    ninfo = nwarn = mmio_calls = 0;
    acpi_init(&bi);
    assert_false(acpi_get()->present);
    assert_int_equal(ninfo, 0);
    assert_int_equal(nwarn, 1);
    assert_int_equal(mmio_calls, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_rsdp_v1_rsdt),
        T(test_rsdp_v2_prefers_xsdt),
        T(test_bad_xsdt_falls_back_to_rsdt),
        T(test_bad_extended_checksum_uses_rsdt),
        T(test_v2_rsdp_copied_short_uses_rsdt),
        T(test_bad_rsdp_checksum_means_no_acpi),
        T(test_no_rsdp),
        T(test_root_pointing_nowhere),
        T(test_root_entry_unreadable_and_null),
        T(test_madt_mixed_entries),
        T(test_madt_bad_checksum),
        T(test_madt_truncated),
        T(test_madt_absurd_length),
        T(test_madt_zero_length_entry),
        T(test_madt_entry_past_end_and_short),
        T(test_madt_broadcast_id_and_no_cpus),
        T(test_madt_too_many_cpus),
        T(test_second_madt_ignored),
        T(test_s5_zero_one_encoding),
        T(test_s5_two_byte_pkglength_and_decoys),
        T(test_s5_truncated_package),
        T(test_s5_bad_values),
        T(test_s5_in_ssdt),
        T(test_missing_dsdt),
        T(test_dsdt_bad_checksum),
        T(test_fadt_x_fields),
        T(test_fadt_broken_fields),
        T(test_fadt_hw_reduced_and_short),
        T(test_hpet_mcfg_dmar_spcr),
        T(test_hpet_bad_address),
        T(test_acpi_init_direct_map),
        T(test_acpi_init_mmio),
#undef T
    };
    return cmocka_run_group_tests_name("acpi", tests, NULL, NULL);
}
