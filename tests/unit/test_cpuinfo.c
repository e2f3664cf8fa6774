/* The "cpu:" line's pieces: vendor and brand strings from CPUID registers, tidied,
 * and the display family/model/stepping when there is no brand string. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "arch/x86_64/cpu/cpuinfo.c"

static char last_log[256];

void log_printf(enum log_level level, const char *fmt, ...)
{
    (void)level;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_log, sizeof last_log, fmt, ap);
    va_end(ap);
}

static uint32_t word(const char *s)
{
    return (uint32_t)(uint8_t)s[0] | (uint32_t)(uint8_t)s[1] << 8 |
           (uint32_t)(uint8_t)s[2] << 16 | (uint32_t)(uint8_t)s[3] << 24;
}

/* Registers as CPUID returns them for vendor (12 chars) and brand (48 bytes). */
static struct cpuinfo_raw raw_for(const char *vendor, const char *brand, uint32_t eax1)
{
    struct cpuinfo_raw r = { 0 };
    r.leaf0[0] = 0xd;
    r.leaf0[1] = word(vendor);
    r.leaf0[3] = word(vendor + 4);
    r.leaf0[2] = word(vendor + 8);
    r.leaf1_eax = eax1;
    if (brand) {
        char padded[48] = { 0 };
        memcpy(padded, brand, strlen(brand) < 48 ? strlen(brand) : 48);
        r.ext0_eax = 0x80000008;
        for (int i = 0; i < 12; i++)
            r.brand[i] = word(padded + 4 * i);
    }
    return r;
}

static void test_intel_with_leading_spaces(void **state)
{
    (void)state;
    struct cpuinfo_raw r = raw_for("GenuineIntel", "       Intel(R) Core(TM) i7-4770 CPU @ 3.40GHz", 0x000306c3);
    struct cpuinfo ci;
    cpuinfo_decode(&r, &ci);
    assert_string_equal(ci.vendor, "GenuineIntel");
    assert_string_equal(ci.brand, "Intel(R) Core(TM) i7-4770 CPU @ 3.40GHz");
    assert_int_equal(ci.family, 6);
    assert_int_equal(ci.model, 0x3c); /* Haswell: extended model 3, model 0xc */
    assert_int_equal(ci.stepping, 3);
}

static void test_inner_runs_and_trailing_spaces(void **state)
{
    (void)state;
    struct cpuinfo_raw r = raw_for("AuthenticAMD", "AMD Ryzen 7 3700X 8-Core Processor             ", 0x00870f10);
    struct cpuinfo ci;
    cpuinfo_decode(&r, &ci);
    assert_string_equal(ci.brand, "AMD Ryzen 7 3700X 8-Core Processor");
    assert_int_equal(ci.family, 0x17); /* 0xf + extended family 8 */
    assert_int_equal(ci.model, 0x71);
    assert_int_equal(ci.stepping, 0);

    /* a full 48-byte brand without a NUL, with junk bytes, stays bounded and printable */
    char full[49];
    memset(full, 'x', 48);
    full[10] = '\t';
    full[20] = (char)0xff;
    full[48] = '\0';
    r = raw_for("AuthenticAMD", full, 0);
    cpuinfo_decode(&r, &ci);
    assert_int_equal(strlen(ci.brand), 48); /* the two junk bytes became spaces */
    assert_null(strchr(ci.brand, '\t'));
}

static void test_no_brand_string(void **state)
{
    (void)state;
    struct cpuinfo_raw r = raw_for("GenuineIntel", NULL, 0x00000663);
    struct cpuinfo ci;
    cpuinfo_decode(&r, &ci);
    assert_string_equal(ci.brand, "");
    assert_int_equal(ci.family, 6);
    assert_int_equal(ci.model, 6);
    assert_int_equal(ci.stepping, 3);

    /* an extended-leaf maximum that is not one (an old CPU echoing another leaf) */
    r.ext0_eax = 0x00000d;
    cpuinfo_decode(&r, &ci);
    assert_string_equal(ci.brand, "");
}

static void test_empty_vendor(void **state)
{
    (void)state;
    struct cpuinfo_raw r = { 0 };
    struct cpuinfo ci;
    cpuinfo_decode(&r, &ci);
    assert_string_equal(ci.vendor, "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_intel_with_leading_spaces),
        cmocka_unit_test(test_inner_runs_and_trailing_spaces),
        cmocka_unit_test(test_no_brand_string),
        cmocka_unit_test(test_empty_vendor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
