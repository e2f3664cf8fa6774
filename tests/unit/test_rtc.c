/* drivers/rtc.c: decoding the host RTC's registers (BCD and binary, 12- and 24-hour,
 * century byte or not) and the conversion to Unix time, checked against the C
 * library's timegm. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <cmocka.h>

#include "drivers/rtc.c"

static void regs_of(uint8_t r[10], uint8_t s, uint8_t m, uint8_t h, uint8_t d, uint8_t mo, uint8_t y)
{
    for (int i = 0; i < 10; i++)
        r[i] = 0;
    r[0] = s; r[2] = m; r[4] = h; r[7] = d; r[8] = mo; r[9] = y;
}

static void decodes_bcd_24h_with_century(void **state)
{
    (void)state;
    uint8_t r[10];
    struct rtc_time t;
    regs_of(r, 0x59, 0x34, 0x23, 0x22, 0x11, 0x26);
    assert_true(rtc_decode(r, 0x02, 0x20, &t));
    assert_int_equal(t.year, 2026);
    assert_int_equal(t.month, 11);
    assert_int_equal(t.day, 22);
    assert_int_equal(t.hour, 23);
    assert_int_equal(t.minute, 34);
    assert_int_equal(t.second, 59);
}

static void decodes_binary_12h(void **state)
{
    (void)state;
    uint8_t r[10];
    struct rtc_time t;
    regs_of(r, 5, 6, 0x80 | 12, 1, 2, 99);       /* 12 PM */
    assert_true(rtc_decode(r, 0x04, 0, &t));
    assert_int_equal(t.hour, 12);
    assert_int_equal(t.year, 2099);
    regs_of(r, 5, 6, 12, 1, 2, 99);              /* 12 AM */
    assert_true(rtc_decode(r, 0x04, 0, &t));
    assert_int_equal(t.hour, 0);
    regs_of(r, 5, 6, 0x80 | 0x11, 1, 2, 0x24);   /* BCD 11 PM */
    assert_true(rtc_decode(r, 0x00, 0x19, &t));
    assert_int_equal(t.hour, 23);
    assert_int_equal(t.year, 1924);
}

static void rejects_nonsense(void **state)
{
    (void)state;
    uint8_t r[10];
    struct rtc_time t;
    regs_of(r, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);   /* no RTC: the bus floats */
    assert_false(rtc_decode(r, 0xff, 0xff, &t));
    regs_of(r, 0, 0, 0, 0, 1, 0x26);                  /* day 0 */
    assert_false(rtc_decode(r, 0x02, 0x20, &t));
    regs_of(r, 0, 0, 0, 1, 0x13, 0x26);               /* month 13 */
    assert_false(rtc_decode(r, 0x02, 0x20, &t));
}

static void unix_time_matches_timegm(void **state)
{
    (void)state;
    const struct rtc_time cases[] = {
        { 1970, 1, 1, 0, 0, 0 }, { 2000, 2, 29, 12, 0, 1 }, { 2026, 11, 22, 22, 33, 28 },
        { 2100, 3, 1, 0, 0, 0 }, { 2038, 1, 19, 3, 14, 8 }, { 2024, 12, 31, 23, 59, 59 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct tm tm = { .tm_year = (int)cases[i].year - 1900, .tm_mon = (int)cases[i].month - 1,
                         .tm_mday = (int)cases[i].day, .tm_hour = (int)cases[i].hour,
                         .tm_min = (int)cases[i].minute, .tm_sec = (int)cases[i].second };
        assert_int_equal(rtc_to_unix(&cases[i]), (uint64_t)timegm(&tm));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(decodes_bcd_24h_with_century),
        cmocka_unit_test(decodes_binary_12h),
        cmocka_unit_test(rejects_nonsense),
        cmocka_unit_test(unix_time_matches_timegm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
