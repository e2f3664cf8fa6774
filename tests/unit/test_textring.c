/* The text ring behind `log` and the console replay: it keeps the latest bytes
 * and hands back whole lines only. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "kernel/textring.c"

static const char *tail(struct textring *r, unsigned lines, size_t max)
{
    static char out[4096];
    size_t n = textring_tail(r, lines, out, max);
    assert_true(n <= max);
    out[n] = 0;
    return out;
}

static void test_last_lines(void **state)
{
    (void)state;
    char buf[64];
    struct textring r;
    textring_init(&r, buf, sizeof buf);
    textring_put(&r, "one\ntwo\nthree\n", 14);
    assert_string_equal(tail(&r, 2, 100), "two\nthree\n");
    assert_string_equal(tail(&r, 3, 100), "one\ntwo\nthree\n");
    assert_string_equal(tail(&r, 10, 100), "one\ntwo\nthree\n");
    assert_string_equal(tail(&r, 0, 100), "");
    /* A line without its newline yet is not shown. */
    textring_put(&r, "fou", 3);
    assert_string_equal(tail(&r, 1, 100), "three\n");
    assert_int_equal(textring_lost(&r), 0);
}

static void test_wrapped_ring_starts_at_a_line(void **state)
{
    (void)state;
    char buf[16];
    struct textring r;
    textring_init(&r, buf, sizeof buf);
    for (int i = 0; i < 10; i++) {
        char line[8];
        int n = snprintf(line, sizeof line, "L%d\n", i);
        textring_put(&r, line, (size_t)n);
    }
    /* 30 bytes written into 16: the ring holds L4's newline, then L5..L9. */
    assert_int_equal(textring_lost(&r), 14);
    assert_string_equal(tail(&r, 100, 100), "L5\nL6\nL7\nL8\nL9\n");
    /* One more byte: the newline before L5 is gone, so the ring cannot tell that
     * L5 is whole, and leaves it out. */
    textring_put(&r, "L", 1);
    assert_string_equal(tail(&r, 100, 100), "L6\nL7\nL8\nL9\n");
    assert_string_equal(tail(&r, 2, 100), "L8\nL9\n");
}

static void test_max_keeps_newest_whole_lines(void **state)
{
    (void)state;
    char buf[256];
    struct textring r;
    textring_init(&r, buf, sizeof buf);
    textring_put(&r, "aaaa\nbbbb\ncccc\n", 15);
    assert_string_equal(tail(&r, 3, 12), "bbbb\ncccc\n");
    assert_string_equal(tail(&r, 3, 10), "bbbb\ncccc\n");
    assert_string_equal(tail(&r, 3, 9), "cccc\n");
    assert_string_equal(tail(&r, 3, 4), "");
}

static void test_big_write_and_empty_ring(void **state)
{
    (void)state;
    char buf[8];
    struct textring r;
    textring_init(&r, buf, sizeof buf);
    char big[100];
    memset(big, 'x', sizeof big);
    big[97] = '\n';
    big[99] = '\n';
    textring_put(&r, big, sizeof big);
    assert_int_equal(r.total, 100);
    assert_int_equal(textring_lost(&r), 92);
    assert_string_equal(tail(&r, 5, 100), "x\n");
    struct textring none;
    textring_init(&none, NULL, 64);
    textring_put(&none, "a\n", 2);
    assert_string_equal(tail(&none, 5, 100), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_last_lines),
        cmocka_unit_test(test_wrapped_ring_starts_at_a_line),
        cmocka_unit_test(test_max_keeps_newest_whole_lines),
        cmocka_unit_test(test_big_write_and_empty_ring),
    };
    return cmocka_run_group_tests_name("textring", tests, NULL, NULL);
}
