/* The VPID pool (arch/x86_64/vmx/vpid.c): lowest free first, never the host's 0,
 * given back on free, and 0 only once all 65,535 are taken. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "arch/x86_64/vmx/vpid.c"

static struct vpid_pool pool;

static int reset(void **state)
{
    (void)state;
    memset(&pool, 0, sizeof pool);
    return 0;
}

static void test_first_vpids_count_up_from_one(void **state)
{
    (void)state;
    for (unsigned i = 1; i <= 130; i++)
        assert_int_equal(vpid_alloc(&pool), i);
}

static void test_freed_vpid_is_handed_out_again(void **state)
{
    (void)state;
    for (unsigned i = 1; i <= 100; i++)
        vpid_alloc(&pool);
    vpid_free(&pool, 70);
    vpid_free(&pool, 3);
    assert_int_equal(vpid_alloc(&pool), 3);
    assert_int_equal(vpid_alloc(&pool), 70);
    assert_int_equal(vpid_alloc(&pool), 101);
}

static void test_exhausted_pool_answers_zero_and_never_wraps(void **state)
{
    (void)state;
    static uint8_t seen[VPID_COUNT];
    for (unsigned i = 1; i < VPID_COUNT; i++) {
        uint16_t v = vpid_alloc(&pool);
        assert_int_not_equal(v, 0);
        assert_int_equal(seen[v], 0);
        seen[v] = 1;
    }
    assert_int_equal(vpid_alloc(&pool), 0);
    assert_int_equal(vpid_alloc(&pool), 0);
    vpid_free(&pool, 65535);
    assert_int_equal(vpid_alloc(&pool), 65535);
    assert_int_equal(vpid_alloc(&pool), 0);
}

static void test_freeing_zero_or_a_free_vpid_changes_nothing(void **state)
{
    (void)state;
    vpid_free(&pool, 0);
    vpid_free(&pool, 9);
    assert_int_equal(vpid_alloc(&pool), 1);
    assert_int_equal(vpid_alloc(&pool), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_first_vpids_count_up_from_one, reset),
        cmocka_unit_test_setup(test_freed_vpid_is_handed_out_again, reset),
        cmocka_unit_test_setup(test_exhausted_pool_answers_zero_and_never_wraps, reset),
        cmocka_unit_test_setup(test_freeing_zero_or_a_free_vpid_changes_nothing, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
