/* kernel/fmt.c: every conversion, flag, width and precision, the length modifiers,
 * truncation and the return value, each checked against the C library's snprintf
 * (which plinth's formatter promises to match) and, where the text matters on its
 * own, against the exact expected string. */
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kernel/fmt.c"

/* The corner cases below ('0' with '-' or with a precision, '+' with ' ') are
 * deliberate: C defines what they do, and the compiler's warning about them is moot. */
#pragma GCC diagnostic ignored "-Wformat"

/* fmt_snprintf without the format attribute, for what the compiler would reject. */
static int fmt_unchecked(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = fmt_vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

/* Formats with both plinth and libc and requires the same text and return value. */
#define SAME(format, ...)                                                          \
    do {                                                                           \
        char mine_[256], libc_[256];                                               \
        int nm_ = fmt_snprintf(mine_, sizeof mine_, format, __VA_ARGS__);          \
        int nl_ = snprintf(libc_, sizeof libc_, format, __VA_ARGS__);              \
        if (nm_ != nl_ || strcmp(mine_, libc_) != 0)                               \
            fail_msg("format \"%s\": plinth \"%s\" (%d), libc \"%s\" (%d)",        \
                     format, mine_, nm_, libc_, nl_);                              \
    } while (0)

/* Requires plinth's output to be exactly `want`, returning its length. */
#define EXPECT(want, format, ...)                                                  \
    do {                                                                           \
        char got_[256];                                                            \
        int n_ = fmt_unchecked(got_, sizeof got_, format, __VA_ARGS__);            \
        assert_string_equal(got_, want);                                           \
        assert_int_equal(n_, (int)strlen(want));                                   \
    } while (0)

static void test_plain_text(void **state)
{
    (void)state;
    char buf[32];
    assert_int_equal(fmt_snprintf(buf, sizeof buf, "no conversions"), 14);
    assert_string_equal(buf, "no conversions");
    assert_int_equal(fmt_snprintf(buf, sizeof buf, "%s", ""), 0);
    assert_string_equal(buf, "");
    EXPECT("100%", "100%%%s", "");
}

static void test_signed(void **state)
{
    (void)state;
    EXPECT("42 -42 0", "%d %i %d", 42, -42, 0);
    SAME("%d %d", INT_MAX, INT_MIN);
    SAME("%ld %ld", LONG_MAX, LONG_MIN);
    SAME("%lld %lld", LLONG_MAX, LLONG_MIN);
    SAME("%hd %hd", (short)-32768, (short)12345);
    SAME("%hhd %hhd", (signed char)-128, (signed char)127);
    /* h and hh convert the promoted int back to the narrow type, as C says. */
    SAME("%hd %hhd", 70000, 300);
    SAME("%zd %td %jd", (ssize_t)-5, (ptrdiff_t)-6, (intmax_t)INTMAX_MIN);
}

static void test_unsigned_bases(void **state)
{
    (void)state;
    EXPECT("4294967295 ffffffff FFFFFFFF 37777777777", "%u %x %X %o",
           UINT_MAX, UINT_MAX, UINT_MAX, UINT_MAX);
    SAME("%lu %lx %lo", ULONG_MAX, ULONG_MAX, ULONG_MAX);
    SAME("%llu %llX", ULLONG_MAX, 0xdeadbeefcafebabeull);
    SAME("%hu %hx %hhu %hhx", 70000, 0x12345, 300, 0x1ff);
    SAME("%zu %zx %tx %jx", (size_t)SIZE_MAX, (size_t)0xabc, (ptrdiff_t)0x77, (uintmax_t)UINTMAX_MAX);
    SAME("%u %x %o", 0u, 0u, 0u);
}

static void test_char_string_percent(void **state)
{
    (void)state;
    EXPECT("x", "%c", 'x');
    SAME("[%3c] [%-3c]", 'a', 'b');
    SAME("[%s] [%10s] [%-10s] [%.3s] [%10.2s] [%-6.1s]", "plinth", "plinth", "plinth",
         "plinth", "plinth", "plinth");
    SAME("[%.0s] [%.10s]", "gone", "short");
    SAME("[%*s] [%-*s] [%.*s]", 8, "ab", 8, "ab", 1, "ab");
    EXPECT("%", "%%%s", "");
}

static void test_null_string(void **state)
{
    (void)state;
    EXPECT("(null)", "%s", (const char *)NULL);
    EXPECT("[  (null)]", "[%8s]", (const char *)NULL);
    EXPECT("(nu", "%.3s", (const char *)NULL);
}

static void test_pointer(void **state)
{
    (void)state;
    EXPECT("0x1234", "%p", (void *)0x1234);
    EXPECT("0xffffffff80000000", "%p", (void *)0xffffffff80000000ull);
    EXPECT("0x0", "%p", (void *)0);
    EXPECT("[    0xbeef]", "[%10p]", (void *)0xbeef);
    EXPECT("[0xbeef    ]", "[%-10p]", (void *)0xbeef);
}

static void test_flags(void **state)
{
    (void)state;
    SAME("[%-5d] [%05d] [%+d] [% d] [%+d] [% d]", 42, 42, 42, 42, -42, -42);
    SAME("[%+5d] [%-+5d] [%+05d] [% 05d] [%05d]", 7, 7, 7, 7, -7);
    /* '+' wins over ' ', '-' wins over '0'. */
    SAME("[%+ d] [% +d] [%-05d] [%0-5d]", 3, 3, 3, 3);
    SAME("[%#x] [%#X] [%#o] [%#x]", 255u, 255u, 8u, 0u);
    SAME("[%#10x] [%#-10x] [%#010x]", 0xabu, 0xabu, 0xabu);
    SAME("[%#o] [%#.3o] [%#5o]", 0u, 8u, 8u);
}

static void test_width_precision(void **state)
{
    (void)state;
    SAME("[%8d] [%-8d] [%.5d] [%8.5d] [%-8.5d] [%08.5d]", 123, 123, 123, 123, 123, -123);
    SAME("[%.0d] [%5.0d] [%.0x] [%+.0d]", 0, 0, 0u, 0);
    SAME("[%.3x] [%8.3X] [%.10o]", 0xfu, 0xfu, 7u);
    SAME("[%*d] [%-*d] [%.*d] [%*.*d]", 6, 1, 6, 1, 4, 1, 6, 3, 1);
    /* A negative '*' width means '-' with its magnitude; a negative precision is none. */
    SAME("[%*d] [%.*d] [%0*d]", -6, 1, -3, 1, 5, 9);
    SAME("[%20llu] [%-20lld]", ULLONG_MAX, LLONG_MIN);
}

/* Found by tests/fuzz/fuzz_config: "%.*s" of text that is not NUL-terminated (a
 * config line quoted in an error) must read no byte past the precision.  The text
 * sits at the very end of a heap block, so ASan stops a read one byte beyond. */
static void test_precision_reads_no_further(void **state)
{
    (void)state;
    char *text = malloc(5);
    memcpy(text, "abcde", 5);
    char buf[16];
    assert_int_equal(fmt_snprintf(buf, sizeof buf, "'%.*s'", 5, text), 7);
    assert_string_equal(buf, "'abcde'");
    assert_int_equal(fmt_snprintf(buf, sizeof buf, "%.3s", text + 2), 3);
    assert_string_equal(buf, "cde");
    free(text);
}

static void test_truncation_and_return_value(void **state)
{
    (void)state;
    char buf[8];
    memset(buf, 'Z', sizeof buf);
    /* As C's snprintf: at most size-1 characters, always terminated, and the return
     * value is the length the whole output would have had. */
    assert_int_equal(fmt_snprintf(buf, 4, "%d", 1234567), 7);
    assert_string_equal(buf, "123");
    assert_int_equal(buf[4], 'Z');

    memset(buf, 'Z', sizeof buf);
    assert_int_equal(fmt_snprintf(buf, 1, "abc"), 3);
    assert_int_equal(buf[0], '\0');
    assert_int_equal(buf[1], 'Z');

    memset(buf, 'Z', sizeof buf);
    assert_int_equal(fmt_snprintf(buf, 0, "abc%s", "def"), 6);
    assert_int_equal(buf[0], 'Z');
    assert_int_equal(fmt_snprintf(NULL, 0, "%08x", 1u), 8);

    /* Exactly fitting, and one short. */
    assert_int_equal(fmt_snprintf(buf, 8, "%s", "1234567"), 7);
    assert_string_equal(buf, "1234567");
    assert_int_equal(fmt_snprintf(buf, 8, "%s", "12345678"), 8);
    assert_string_equal(buf, "1234567");

    /* Truncation in the middle of padding and of a prefix. */
    assert_int_equal(fmt_snprintf(buf, 5, "%10d", 1), 10);
    assert_string_equal(buf, "    ");
    assert_int_equal(fmt_snprintf(buf, 2, "%#x", 0xffu), 4);
    assert_string_equal(buf, "0");

    char big[300];
    char want[300];
    memset(want, 'a', 299);
    want[299] = '\0';
    assert_int_equal(fmt_snprintf(big, sizeof big, "%299s", ""), 299);
    memset(want, ' ', 299);
    assert_string_equal(big, want);
}

static void test_vsnprintf(void **state)
{
    (void)state;
    char buf[32];
    assert_int_equal(fmt_unchecked(buf, sizeof buf, "%s=%d", "x", 5), 3);
    assert_string_equal(buf, "x=5");
}

static void test_unknown_conversion(void **state)
{
    (void)state;
    /* An unknown conversion is printed as written, so the mistake shows in the log;
     * the arguments after it still line up with their own conversions. */
    EXPECT("a %q b", "a %q b", 0);
    EXPECT("[%-5y] 7", "[%-5y] %d", 7);
    EXPECT("%lw", "%lw", 0);
    /* A lone '%' at the very end: printed, and the formatter stops at the NUL. */
    EXPECT("tail %", "tail %", 0);
    EXPECT("50%", "%d%", 50);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_text),
        cmocka_unit_test(test_signed),
        cmocka_unit_test(test_unsigned_bases),
        cmocka_unit_test(test_char_string_percent),
        cmocka_unit_test(test_null_string),
        cmocka_unit_test(test_pointer),
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_width_precision),
        cmocka_unit_test(test_precision_reads_no_further),
        cmocka_unit_test(test_truncation_and_return_value),
        cmocka_unit_test(test_vsnprintf),
        cmocka_unit_test(test_unknown_conversion),
    };
    return cmocka_run_group_tests_name("fmt", tests, NULL, NULL);
}
