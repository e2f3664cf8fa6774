/* The shell's per-port and per-region exit counters: every count kept, the top
 * ones in order. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/stats.c"

static void test_top_in_order(void **state)
{
    (void)state;
    struct vmm_counters t;
    memset(&t, 0, sizeof t);
    for (int i = 0; i < 5; i++)
        vmm_count(&t, 0x3f8);
    for (int i = 0; i < 9; i++)
        vmm_count(&t, 0x70);
    vmm_count(&t, 0);                     /* key 0 is a key like any other */
    vmm_count(&t, 0xcf8);
    vmm_count(&t, 0xcf8);
    uint64_t k[3], c[3];
    assert_int_equal(vmm_count_top(&t, 3, k, c), 3);
    assert_int_equal(k[0], 0x70);
    assert_int_equal(c[0], 9);
    assert_int_equal(k[1], 0x3f8);
    assert_int_equal(c[1], 5);
    assert_int_equal(k[2], 0xcf8);
    assert_int_equal(c[2], 2);
    uint64_t k10[10], c10[10];
    assert_int_equal(vmm_count_top(&t, 10, k10, c10), 4);
    assert_int_equal(k10[3], 0);
    assert_int_equal(c10[3], 1);
}

static void test_overflow_counted_as_other(void **state)
{
    (void)state;
    struct vmm_counters t;
    memset(&t, 0, sizeof t);
    uint64_t total = 0;
    for (uint64_t key = 0; key < 100; key++)
        for (uint64_t j = 0; j <= key % 3; j++) {
            vmm_count(&t, key * 4096);
            total++;
        }
    uint64_t sum = t.other;
    for (unsigned s = 0; s < VMM_COUNTER_KEYS; s++)
        sum += t.count[s];
    assert_int_equal(sum, total);
    assert_true(t.other > 0);
    uint64_t k[VMM_COUNTER_KEYS], c[VMM_COUNTER_KEYS];
    unsigned n = vmm_count_top(&t, VMM_COUNTER_KEYS, k, c);
    assert_int_equal(n, VMM_COUNTER_KEYS);
    for (unsigned i = 1; i < n; i++)
        assert_true(c[i - 1] >= c[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_top_in_order),
        cmocka_unit_test(test_overflow_counted_as_other),
    };
    return cmocka_run_group_tests_name("stats", tests, NULL, NULL);
}
