/* Symbol lookup for stack traces, over tables laid out as tools/mksyms emits them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "kernel/ksyms.c"

struct test_sym {
    uint64_t addr;
    uint32_t size;
    const char *name;
};

static _Alignas(8) uint8_t table[4096];
static size_t table_size;

/* Lays out count rows and their names exactly as tools/mksyms does. */
static void build(const struct test_sym *syms, uint64_t count)
{
    memset(table, 0, sizeof table);
    memcpy(table, &count, 8);
    size_t names_at = 8 + count * 16;
    size_t off = 0;
    for (uint64_t i = 0; i < count; i++) {
        uint8_t *row = table + 8 + i * 16;
        uint32_t name_off = (uint32_t)off;
        memcpy(row, &syms[i].addr, 8);
        memcpy(row + 8, &name_off, 4);
        memcpy(row + 12, &syms[i].size, 4);
        size_t len = strlen(syms[i].name) + 1;
        memcpy(table + names_at + off, syms[i].name, len);
        off += len;
    }
    table_size = names_at + off;
}

#define LIMIT 0xffffffff80300000ull

static const struct test_sym kernel_like[] = {
    { 0xffffffff80200000ull, 0,    "kernel_entry64" },        /* asm label, no size */
    { 0xffffffff80200020ull, 0x40, "kmain" },
    { 0xffffffff80200060ull, 0x10, "take_handoff" },
    { 0xffffffff80200080ull, 0x30, "panic" },                  /* gap 0x70..0x80 before it */
    { 0xffffffff802000b0ull, 0,    "isr_common" },            /* last: size 0 */
};
#define KERNEL_LIKE_COUNT (sizeof kernel_like / sizeof kernel_like[0])

static void expect_sym(uint64_t addr, const char *name, uint64_t offset)
{
    struct ksym s;
    if (!ksyms_lookup_table(table, table_size, LIMIT, addr, &s))
        fail_msg("no symbol for %#lx, expected %s", (unsigned long)addr, name);
    if (s.name_len != strlen(name) || memcmp(s.name, name, s.name_len))
        fail_msg("%#lx: got %.*s, expected %s", (unsigned long)addr, (int)s.name_len, s.name, name);
    assert_int_equal(s.offset, offset);
}

static void expect_none(uint64_t addr)
{
    struct ksym s;
    if (ksyms_lookup_table(table, table_size, LIMIT, addr, &s))
        fail_msg("%#lx resolved to %.*s, expected no symbol", (unsigned long)addr,
                 (int)s.name_len, s.name);
}

static void test_exact_hit(void **state)
{
    (void)state;
    build(kernel_like, KERNEL_LIKE_COUNT);
    expect_sym(0xffffffff80200020ull, "kmain", 0);
    expect_sym(0xffffffff80200080ull, "panic", 0);
}

static void test_inside_function(void **state)
{
    (void)state;
    build(kernel_like, KERNEL_LIKE_COUNT);
    expect_sym(0xffffffff8020003cull, "kmain", 0x1c);
    expect_sym(0xffffffff8020005full, "kmain", 0x3f);       /* last byte */
    expect_sym(0xffffffff8020006full, "take_handoff", 0xf);
}

static void test_gap_after_sized_function(void **state)
{
    (void)state;
    build(kernel_like, KERNEL_LIKE_COUNT);
    expect_none(0xffffffff80200070ull);                    /* just past take_handoff */
    expect_none(0xffffffff8020007full);
}

static void test_before_first(void **state)
{
    (void)state;
    build(kernel_like, KERNEL_LIKE_COUNT);
    expect_none(0);
    expect_none(0xffffffff801fffffull);
}

static void test_after_last(void **state)
{
    (void)state;
    build(kernel_like, KERNEL_LIKE_COUNT);
    /* The last symbol has no size: it covers up to the limit (end of text). */
    expect_sym(0xffffffff802000b0ull, "isr_common", 0);
    expect_sym(LIMIT - 1, "isr_common", LIMIT - 1 - 0xffffffff802000b0ull);
    expect_none(LIMIT);
    expect_none(UINT64_MAX);

    /* A sized last symbol ends where its size says. */
    static const struct test_sym sized_last[] = {
        { 0x1000, 0x10, "first" },
        { 0x2000, 0x20, "last" },
    };
    build(sized_last, 2);
    expect_sym(0x201f, "last", 0x1f);
    expect_none(0x2020);
}

static void test_size_zero_symbols(void **state)
{
    (void)state;
    build(kernel_like, KERNEL_LIKE_COUNT);
    /* A label with no size covers everything up to the next symbol. */
    expect_sym(0xffffffff80200000ull, "kernel_entry64", 0);
    expect_sym(0xffffffff8020001full, "kernel_entry64", 0x1f);

    /* A label sharing its address with a sized function: the function wins where it
     * covers the address, the label beyond. */
    static const struct test_sym shared[] = {
        { 0x1000, 0,    "label" },
        { 0x1000, 0x10, "func" },
        { 0x1000, 0,    "label2" },
        { 0x2000, 0x10, "next" },
    };
    build(shared, 4);
    expect_sym(0x1008, "func", 8);
    expect_sym(0x1010, "label2", 0x10);
}

static void test_malformed_tables(void **state)
{
    (void)state;
    struct ksym s;
    build(kernel_like, KERNEL_LIKE_COUNT);
    uint64_t addr = 0xffffffff80200030ull;
    assert_true(ksyms_lookup_table(table, table_size, LIMIT, addr, &s));

    /* Empty, truncated, misaligned. */
    assert_false(ksyms_lookup_table(table, 0, LIMIT, addr, &s));
    assert_false(ksyms_lookup_table(table, 7, LIMIT, addr, &s));
    assert_false(ksyms_lookup_table(table, 8 + 16 * KERNEL_LIKE_COUNT - 1, LIMIT, addr, &s));
    assert_false(ksyms_lookup_table(table + 1, table_size - 1, LIMIT, addr, &s));
    assert_false(ksyms_lookup_table(NULL, table_size, LIMIT, addr, &s));

    /* A count that would overflow the row arithmetic. */
    uint64_t huge = UINT64_MAX / 8;
    memcpy(table, &huge, 8);
    assert_false(ksyms_lookup_table(table, table_size, LIMIT, addr, &s));
    uint64_t zero = 0;
    memcpy(table, &zero, 8);
    assert_false(ksyms_lookup_table(table, table_size, LIMIT, addr, &s));

    /* A name offset past the names. */
    build(kernel_like, KERNEL_LIKE_COUNT);
    uint32_t bad = 100000;
    memcpy(table + 8 + 1 * 16 + 8, &bad, 4);
    assert_false(ksyms_lookup_table(table, table_size, LIMIT, addr, &s));

    /* Unsorted rows. */
    build(kernel_like, KERNEL_LIKE_COUNT);
    uint64_t low = 0x1000;
    memcpy(table + 8 + 2 * 16, &low, 8);
    assert_false(ksyms_lookup_table(table, table_size, LIMIT, addr, &s));

    /* A name that runs to the end of the table without a NUL is cut, not overrun. */
    static const struct test_sym one[] = { { 0x1000, 0x10, "abc" } };
    build(one, 1);
    assert_true(ksyms_lookup_table(table, table_size - 1, LIMIT, 0x1000, &s));
    assert_int_equal(s.name_len, 3);
    assert_true(ksyms_lookup_table(table, table_size - 2, LIMIT, 0x1000, &s));
    assert_int_equal(s.name_len, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_hit),
        cmocka_unit_test(test_inside_function),
        cmocka_unit_test(test_gap_after_sized_function),
        cmocka_unit_test(test_before_first),
        cmocka_unit_test(test_after_last),
        cmocka_unit_test(test_size_zero_symbols),
        cmocka_unit_test(test_malformed_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
