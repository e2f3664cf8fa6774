/* The per-VM ACPI tables: every checksum and length right, and plinth's own ACPI
 * parser (drivers/acpi.c, which reads real firmware) reads back the platform. */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tables_parse_back),
        cmocka_unit_test(test_checksums_and_layout),
        cmocka_unit_test(test_bad_platform_and_small_buffer),
        cmocka_unit_test(test_many_cpus),
    };
    return cmocka_run_group_tests_name("acpi_build", tests, NULL, NULL);
}
