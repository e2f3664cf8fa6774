/* The console hotkey: which keys switch the focus and which reach the guest. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "kernel/hotkey.c"

static void test_plain_bytes_pass(void **state)
{
    (void)state;
    struct hotkey h;
    unsigned arg;
    hotkey_init(&h, 1);
    for (unsigned c = 0; c < 256; c++) {
        if (c == 1)
            continue;
        assert_int_equal(hotkey_feed(&h, (unsigned char)c, &arg), HOTKEY_DELIVER);
        assert_int_equal(arg, c);
    }
}

static void test_commands(void **state)
{
    (void)state;
    struct hotkey h;
    unsigned arg;
    hotkey_init(&h, 1);
    static const struct { unsigned char key; enum hotkey_action a; } cases[] = {
        { 'n', HOTKEY_NEXT }, { 'p', HOTKEY_PREV }, { 's', HOTKEY_SHELL }, { '?', HOTKEY_HELP },
        { 'x', HOTKEY_UNKNOWN }, { 'N', HOTKEY_UNKNOWN }, { '0', HOTKEY_UNKNOWN }, { '\r', HOTKEY_UNKNOWN },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(hotkey_feed(&h, 1, &arg), HOTKEY_HELD);
        assert_int_equal(hotkey_feed(&h, cases[i].key, &arg), cases[i].a);
        /* One key after the hotkey, then bytes pass again. */
        assert_int_equal(hotkey_feed(&h, cases[i].key, &arg), HOTKEY_DELIVER);
    }
    for (unsigned char d = '1'; d <= '9'; d++) {
        assert_int_equal(hotkey_feed(&h, 1, &arg), HOTKEY_HELD);
        assert_int_equal(hotkey_feed(&h, d, &arg), HOTKEY_NUMBER);
        assert_int_equal(arg, d - '0');
    }
}

static void test_double_hotkey_is_literal(void **state)
{
    (void)state;
    struct hotkey h;
    unsigned arg;
    hotkey_init(&h, 2);                    /* Ctrl-B */
    assert_int_equal(hotkey_feed(&h, 1, &arg), HOTKEY_DELIVER);
    assert_int_equal(hotkey_feed(&h, 2, &arg), HOTKEY_HELD);
    assert_int_equal(hotkey_feed(&h, 2, &arg), HOTKEY_DELIVER);
    assert_int_equal(arg, 2);
    assert_int_equal(hotkey_feed(&h, 2, &arg), HOTKEY_HELD);
}

static void test_off(void **state)
{
    (void)state;
    struct hotkey h;
    unsigned arg;
    char buf[8];
    hotkey_init(&h, -1);
    assert_int_equal(hotkey_feed(&h, 1, &arg), HOTKEY_DELIVER);
    assert_int_equal(hotkey_feed(&h, 'n', &arg), HOTKEY_DELIVER);
    assert_string_equal(hotkey_name(-1, buf), "off");
    assert_string_equal(hotkey_name(1, buf), "Ctrl-A");
    assert_string_equal(hotkey_name(26, buf), "Ctrl-Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_bytes_pass),
        cmocka_unit_test(test_commands),
        cmocka_unit_test(test_double_hotkey_is_literal),
        cmocka_unit_test(test_off),
    };
    return cmocka_run_group_tests_name("hotkey", tests, NULL, NULL);
}
