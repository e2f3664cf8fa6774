/* The shell's line editor: what a person types becomes the line the shell runs,
 * and the terminal shows what the line holds. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "kernel/lineedit.c"

/* Feeds s; returns the last result, the echo of all of it in echo_all. */
static enum lineedit_result type(struct lineedit *le, const char *s, size_t len, char *echo_all)
{
    enum lineedit_result r = LINEEDIT_MORE;
    size_t total = 0;
    for (size_t i = 0; i < len; i++) {
        char echo[LINEEDIT_ECHO_MAX];
        size_t n = 99999;
        r = lineedit_feed(le, (unsigned char)s[i], echo, &n);
        assert_true(n <= LINEEDIT_ECHO_MAX);
        if (echo_all) {
            memcpy(echo_all + total, echo, n);
            total += n;
        }
    }
    if (echo_all)
        echo_all[total] = 0;
    return r;
}
#define TYPE(le, lit, echo) type(le, lit, sizeof lit - 1, echo)

static void test_plain_line_and_echo(void **state)
{
    (void)state;
    struct lineedit le;
    char echo[4096];
    lineedit_init(&le);
    assert_int_equal(TYPE(&le, "list", echo), LINEEDIT_MORE);
    assert_string_equal(echo, "list");
    assert_int_equal(TYPE(&le, "\r", echo), LINEEDIT_LINE);
    assert_string_equal(le.line, "list");
    assert_string_equal(echo, "\r\n");
    /* CR LF is one Enter; the LF starts no empty second line. */
    assert_int_equal(TYPE(&le, "\n", echo), LINEEDIT_MORE);
    assert_int_equal(TYPE(&le, "\n", echo), LINEEDIT_LINE);
    assert_string_equal(le.line, "");
}

static void test_backspace_and_ctrl_u(void **state)
{
    (void)state;
    struct lineedit le;
    char echo[4096];
    lineedit_init(&le);
    TYPE(&le, "lisx\x7f" "t", echo);
    assert_string_equal(echo, "lisx\b \bt");
    assert_int_equal(TYPE(&le, "\r", NULL), LINEEDIT_LINE);
    assert_string_equal(le.line, "list");
    /* Backspace on an empty line echoes nothing; BS works as DEL. */
    TYPE(&le, "\x7f\bab\b", echo);
    assert_string_equal(echo, "ab\b \b");
    TYPE(&le, "cd\x15", echo);
    assert_string_equal(echo, "cd\b \b\b \b\b \b");
    assert_int_equal(TYPE(&le, "help\r", NULL), LINEEDIT_LINE);
    assert_string_equal(le.line, "help");
}

static void test_ctrl_c_drops_the_line(void **state)
{
    (void)state;
    struct lineedit le;
    lineedit_init(&le);
    assert_int_equal(TYPE(&le, "stop linux\x03", NULL), LINEEDIT_CANCEL);
    assert_int_equal(TYPE(&le, "\r", NULL), LINEEDIT_LINE);
    assert_string_equal(le.line, "");
    /* A dropped line is not in the history. */
    assert_int_equal(le.hist_count, 0);
}

static void test_history_arrows(void **state)
{
    (void)state;
    struct lineedit le;
    char echo[4096];
    lineedit_init(&le);
    TYPE(&le, "list\r", NULL);
    TYPE(&le, "stats a\r", NULL);
    TYPE(&le, "stats a\r", NULL);           /* kept once */
    assert_int_equal(le.hist_count, 2);
    TYPE(&le, "xy\x1b[A", echo);             /* up: replaces what was typed */
    assert_string_equal(echo, "xy\b \b\b \bstats a");
    TYPE(&le, "\x1bOA", echo);               /* up again (application mode) */
    assert_string_equal(le.line, "list");
    TYPE(&le, "\x1b[A", echo);               /* nothing older: no change */
    assert_string_equal(echo, "");
    assert_string_equal(le.line, "list");
    TYPE(&le, "\x1b[B\x1b[B", NULL);         /* down twice: back to an empty line */
    assert_string_equal(le.line, "");
    TYPE(&le, "\x1b[A", NULL);
    assert_int_equal(TYPE(&le, "\r", NULL), LINEEDIT_LINE);
    assert_string_equal(le.line, "stats a");
    /* Other keys' sequences (right arrow, F5 = ESC [ 1 5 ~) change nothing. */
    TYPE(&le, "ab\x1b[C\x1b[15~c", echo);
    assert_string_equal(echo, "abc");
    assert_string_equal(le.line, "abc");
}

static void test_history_wraps(void **state)
{
    (void)state;
    struct lineedit le;
    lineedit_init(&le);
    char line[16];
    for (int i = 0; i < LINEEDIT_HISTORY + 5; i++) {
        int n = snprintf(line, sizeof line, "c%d\r", i);
        type(&le, line, (size_t)n, NULL);
    }
    assert_int_equal(le.hist_count, LINEEDIT_HISTORY);
    for (int i = 0; i < LINEEDIT_HISTORY + 3; i++)
        TYPE(&le, "\x1b[A", NULL);
    /* The oldest kept is number 5: the first five were pushed out. */
    assert_string_equal(le.line, "c5");
}

static void test_overlong_line_is_refused(void **state)
{
    (void)state;
    struct lineedit le;
    char echo[4096];
    lineedit_init(&le);
    char big[300];
    memset(big, 'x', sizeof big);
    type(&le, big, sizeof big, echo);
    assert_int_equal(le.len, LINEEDIT_MAX - 1);
    assert_non_null(strchr(echo, '\a'));
    assert_int_equal(TYPE(&le, "\r", NULL), LINEEDIT_TOO_LONG);
    assert_int_equal(le.hist_count, 0);
    /* The next line is a fresh one. */
    assert_int_equal(TYPE(&le, "list\r", NULL), LINEEDIT_LINE);
    assert_string_equal(le.line, "list");
}

static void test_control_and_8bit_bytes_ignored(void **state)
{
    (void)state;
    struct lineedit le;
    char echo[4096];
    lineedit_init(&le);
    TYPE(&le, "l\x01\x02\x07\x80\xff" "i\tst", echo);
    assert_string_equal(le.line, "li st");
    assert_string_equal(echo, "li st");
    /* An ESC followed by an ordinary byte drops both, then typing goes on. */
    TYPE(&le, "\x1bxz", echo);
    assert_string_equal(le.line, "li stz");
    /* Every byte value, many times over: the line stays bounded and terminated. */
    for (int round = 0; round < 50; round++)
        for (int b = 0; b < 256; b++) {
            size_t n;
            lineedit_feed(&le, (unsigned char)((b * 37 + round) & 0xff), echo, &n);
            assert_true(le.len < LINEEDIT_MAX);
            assert_int_equal(le.line[le.len], 0);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_line_and_echo),
        cmocka_unit_test(test_backspace_and_ctrl_u),
        cmocka_unit_test(test_ctrl_c_drops_the_line),
        cmocka_unit_test(test_history_arrows),
        cmocka_unit_test(test_history_wraps),
        cmocka_unit_test(test_overlong_line_is_refused),
        cmocka_unit_test(test_control_and_8bit_bytes_ignored),
    };
    return cmocka_run_group_tests_name("lineedit", tests, NULL, NULL);
}
