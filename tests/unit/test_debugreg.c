/* Data breakpoints matched against emulated accesses (vmm/emulate/debugreg.c): which
 * DR7 settings break on which accesses (SDM Vol. 3A §18.2.4-18.2.5). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "vmm/emulate/debugreg.c"

/* DR7 for breakpoint i: local enable, R/W and LEN fields. */
static uint64_t bp(unsigned i, unsigned rw, unsigned len)
{
    return (1ull << (2 * i)) | (uint64_t)rw << (16 + 4 * i) | (uint64_t)len << (18 + 4 * i);
}

static void test_kinds(void **state)
{
    (void)state;
    uint64_t dr[4] = { 0x1000, 0x2000, 0x3000, 0x4000 };
    /* Write-only breaks on writes alone; read/write on both; execute and I/O never. */
    assert_int_equal(x86_data_breakpoints(bp(0, 1, 3), dr, 0x1000, 4, false, true), 1);
    assert_int_equal(x86_data_breakpoints(bp(0, 1, 3), dr, 0x1000, 4, true, false), 0);
    assert_int_equal(x86_data_breakpoints(bp(1, 3, 3), dr, 0x2000, 4, true, false), 2);
    assert_int_equal(x86_data_breakpoints(bp(1, 3, 3), dr, 0x2000, 4, false, true), 2);
    assert_int_equal(x86_data_breakpoints(bp(2, 0, 0), dr, 0x3000, 1, true, true), 0);
    assert_int_equal(x86_data_breakpoints(bp(3, 2, 0), dr, 0x4000, 1, true, true), 0);
    /* A global enable (G0) counts as much as a local one. */
    assert_int_equal(x86_data_breakpoints(2ull | 1ull << 16 | 3ull << 18, dr, 0x1000, 4, false, true), 1);
    /* Not enabled: nothing, whatever the other fields say. */
    assert_int_equal(x86_data_breakpoints(3ull << 16 | 3ull << 18, dr, 0x1000, 4, false, true), 0);
}

static void test_lengths_and_overlap(void **state)
{
    (void)state;
    uint64_t dr[4] = { 0x1003, 0x2006, 0x300c, 0 };
    /* LEN 00 = 1 byte: only that byte; LEN 01 = 2 bytes, rounded down (0x2006-0x2007);
     * LEN 11 = 4 bytes (0x300c-0x300f); LEN 10 = 8 bytes. */
    uint64_t dr7 = bp(0, 3, 0) | bp(1, 3, 1) | bp(2, 3, 3);
    assert_int_equal(x86_data_breakpoints(dr7, dr, 0x1000, 4, true, false), 1);    /* covers 0x1003 */
    assert_int_equal(x86_data_breakpoints(dr7, dr, 0x1004, 4, true, false), 0);
    assert_int_equal(x86_data_breakpoints(dr7, dr, 0x2007, 1, true, false), 2);
    assert_int_equal(x86_data_breakpoints(dr7, dr, 0x2008, 1, true, false), 0);
    assert_int_equal(x86_data_breakpoints(dr7, dr, 0x300a, 4, true, false), 4);    /* straddles in */
    assert_int_equal(x86_data_breakpoints(dr7, dr, 0x3010, 4, true, false), 0);
    dr[3] = 0x400f;
    assert_int_equal(x86_data_breakpoints(bp(3, 1, 2), dr, 0x4008, 1, false, true), 8);
    /* Several at once; an access of size 0 touches nothing. */
    dr[1] = 0x1000;
    assert_int_equal(x86_data_breakpoints(dr7, dr, 0x1000, 4, true, false), 3);
    assert_int_equal(x86_data_breakpoints(dr7, dr, 0x1000, 0, true, false), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kinds),
        cmocka_unit_test(test_lengths_and_overlap),
    };
    return cmocka_run_group_tests_name("debugreg", tests, NULL, NULL);
}
