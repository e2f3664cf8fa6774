/* plinth's command-line options: name=value words found whole, values cut to fit. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "kernel/cmdline.c"

static void test_options(void **state)
{
    (void)state;
    char buf[8];
    assert_true(cmdline_option("plinth.slice=apic quiet", "plinth.slice", buf, sizeof buf));
    assert_string_equal(buf, "apic");
    assert_true(cmdline_option("  a=1   plinth.slice=vmx", "plinth.slice", buf, sizeof buf));
    assert_string_equal(buf, "vmx");
    assert_false(cmdline_option("xplinth.slice=apic", "plinth.slice", buf, sizeof buf));
    assert_false(cmdline_option("plinth.slicer=apic", "plinth.slice", buf, sizeof buf));
    assert_false(cmdline_option("plinth.slice", "plinth.slice", buf, sizeof buf));
    assert_false(cmdline_option("", "plinth.slice", buf, sizeof buf));
    assert_true(cmdline_option("k=0123456789", "k", buf, sizeof buf));
    assert_string_equal(buf, "0123456"); /* cut to the buffer */
    assert_true(cmdline_option("k= next=1", "k", buf, sizeof buf));
    assert_string_equal(buf, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_options) };
    return cmocka_run_group_tests_name("cmdline", tests, NULL, NULL);
}
