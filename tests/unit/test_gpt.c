/* Guest-physical tables (EPT and NPT formats): page sizes chosen by alignment,
 * splitting on partial unmap, all-or-nothing mapping, entry encodings. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "arch/x86_64/gpt.c"
#include "arch/x86_64/vmx/ept.c"
#include "arch/x86_64/svm/npt.c"

static int pages_live;
static int alloc_budget = -1; /* -1: unlimited */

static uint64_t t_alloc(void *ctx)
{
    (void)ctx;
    if (alloc_budget == 0)
        return 0;
    if (alloc_budget > 0)
        alloc_budget--;
    void *p = aligned_alloc(4096, 4096);
    memset(p, 0, 4096);
    pages_live++;
    return (uint64_t)(uintptr_t)p;
}

static void t_free(void *ctx, uint64_t phys)
{
    (void)ctx;
    pages_live--;
    free((void *)(uintptr_t)phys);
}

static void *t_virt(void *ctx, uint64_t phys)
{
    (void)ctx;
    return (void *)(uintptr_t)phys;
}

static const struct gpt_ops ops = { t_alloc, t_free, t_virt, NULL };
static struct gpt g;

static int setup_ept(void **state)
{
    (void)state;
    pages_live = 0;
    alloc_budget = -1;
    return gpt_init(&g, &ept_format, &ops, true, true) == GPT_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    gpt_destroy(&g);
    assert_int_equal(pages_live, 0); /* every table page came back */
    return 0;
}

static void expect_map(uint64_t gpa, uint64_t hpa, unsigned level)
{
    uint64_t h;
    unsigned perms, l;
    enum gpt_memtype mt;
    assert_true(gpt_translate(&g, gpa, &h, &perms, &mt, &l));
    assert_int_equal(h, hpa);
    assert_int_equal(l, level);
}

static void expect_unmapped(uint64_t gpa)
{
    uint64_t h;
    unsigned perms, l;
    enum gpt_memtype mt;
    assert_false(gpt_translate(&g, gpa, &h, &perms, &mt, &l));
}

static void test_1g_pages_when_aligned(void **state)
{
    (void)state;
    assert_int_equal(gpt_map(&g, 0, 0x40000000, 2ull << 30, GPT_PERM_RWX, GPT_MEM_WB), GPT_OK);
    assert_int_equal(g.table_pages, 2); /* PML4 + one PDPT: two 1 GiB leaves */
    expect_map(0x12345678, 0x40000000 + 0x12345678, 2);
    expect_map((2ull << 30) - 1, 0x40000000 + (2ull << 30) - 1, 2);
    expect_unmapped(2ull << 30);
}

static void test_2m_when_1g_not_allowed(void **state)
{
    (void)state;
    g.allow_1g = false;
    assert_int_equal(gpt_map(&g, 0, 0, 1ull << 30, GPT_PERM_RWX, GPT_MEM_WB), GPT_OK);
    assert_int_equal(g.table_pages, 3); /* PML4, PDPT, one PD */
    expect_map(0x3fffffff, 0x3fffffff, 1);
}

static void test_mixed_sizes_at_edges(void **state)
{
    (void)state;
    /* 4 KiB head up to the 2 MiB boundary, 2 MiB pages, 4 KiB tail. */
    uint64_t gpa = 0x1ff000, size = 0x1000 + 0x400000 + 0x3000;
    assert_int_equal(gpt_map(&g, gpa, 0x801ff000, size, GPT_PERM_RWX, GPT_MEM_WB), GPT_OK);
    expect_map(0x1ff000, 0x801ff000, 0);
    expect_map(0x200000, 0x80200000, 1);
    expect_map(0x5fffff, 0x805fffff, 1);
    expect_map(0x600000, 0x80600000, 0);
    expect_map(0x602fff, 0x80602fff, 0);
    expect_unmapped(0x603000);
    expect_unmapped(0x1fe000);
}

static void test_misaligned_host_forces_small_pages(void **state)
{
    (void)state;
    assert_int_equal(gpt_map(&g, 0x200000, 0x301000, 0x200000, GPT_PERM_RWX, GPT_MEM_WB), GPT_OK);
    expect_map(0x200000, 0x301000, 0);
    expect_map(0x3ff000, 0x500000, 0);
}

static void test_overlap_refused_untouched(void **state)
{
    (void)state;
    assert_int_equal(gpt_map(&g, 0x400000, 0x400000, 0x1000, GPT_PERM_R, GPT_MEM_UC), GPT_OK);
    uint64_t before = g.table_pages;
    assert_int_equal(gpt_map(&g, 0, 0x10000000, 0x800000, GPT_PERM_RWX, GPT_MEM_WB), GPT_ERR_MAPPED);
    assert_int_equal(g.table_pages, before);
    expect_unmapped(0);
    expect_map(0x400000, 0x400000, 0);
}

static void test_unmap_splits_1g_page(void **state)
{
    (void)state;
    assert_int_equal(gpt_map(&g, 0, 0, 1ull << 30, GPT_PERM_RWX, GPT_MEM_WB), GPT_OK);
    /* Punch a 4 KiB hole (an MMIO page) into the middle of the 1 GiB page. */
    assert_int_equal(gpt_unmap(&g, 0xfee00000 & 0x3fffffff, 0x1000), GPT_OK);
    uint64_t hole = 0xfee00000 & 0x3fffffff;
    expect_unmapped(hole);
    expect_map(hole - 1, hole - 1, 1); /* the 2 MiB page below stays whole */
    expect_map(hole + 0x1000, hole + 0x1000, 0);
    expect_map(0, 0, 1);
    expect_map(0x3fffffff, 0x3fffffff, 1);
    /* The split kept perms and memory type. */
    uint64_t h;
    unsigned perms, l;
    enum gpt_memtype mt;
    assert_true(gpt_translate(&g, hole + 0x1000, &h, &perms, &mt, &l));
    assert_int_equal(perms, GPT_PERM_RWX);
    assert_int_equal(mt, GPT_MEM_WB);
}

static void test_unmap_everything_frees_tables(void **state)
{
    (void)state;
    assert_int_equal(gpt_map(&g, 0x1000, 0x1000, 0x10000000, GPT_PERM_RWX, GPT_MEM_WB), GPT_OK);
    assert_true(g.table_pages > 1);
    assert_int_equal(gpt_unmap(&g, 0, 0x20000000), GPT_OK);
    assert_int_equal(g.table_pages, 1);
    assert_int_equal(pages_live, 1);
}

static void test_out_of_memory_leaves_nothing(void **state)
{
    (void)state;
    g.allow_2m = g.allow_1g = false;
    alloc_budget = 2; /* PDPT and PD, but no PT */
    assert_int_equal(gpt_map(&g, 0, 0, 0x10000, GPT_PERM_RWX, GPT_MEM_WB), GPT_ERR_NOMEM);
    expect_unmapped(0);
    assert_int_equal(g.table_pages, 1);
    assert_int_equal(pages_live, 1);
}

static void test_argument_errors(void **state)
{
    (void)state;
    assert_int_equal(gpt_map(&g, 0x800, 0, 0x1000, GPT_PERM_R, GPT_MEM_WB), GPT_ERR_ALIGN);
    assert_int_equal(gpt_map(&g, 0, 0, 0x1001, GPT_PERM_R, GPT_MEM_WB), GPT_ERR_ALIGN);
    assert_int_equal(gpt_map(&g, 0, 0, 0, GPT_PERM_R, GPT_MEM_WB), GPT_ERR_RANGE);
    assert_int_equal(gpt_map(&g, 1ull << 48, 0, 0x1000, GPT_PERM_R, GPT_MEM_WB), GPT_ERR_RANGE);
    assert_int_equal(gpt_map(&g, ~0xfffull, 0, 0x2000, GPT_PERM_R, GPT_MEM_WB), GPT_ERR_RANGE);
    expect_unmapped(1ull << 48);
}

static void test_ept_encoding(void **state)
{
    (void)state;
    uint64_t e = ept_leaf(0x200000, 1, GPT_PERM_R | GPT_PERM_W, GPT_MEM_WB);
    assert_int_equal(e, 0x200000 | 0x3 | (6 << 3) | (1 << 6) | (1 << 7));
    e = ept_leaf(0xfee00000, 0, GPT_PERM_R, GPT_MEM_UC);
    assert_int_equal(e, 0xfee00000 | 0x1 | (1 << 6));
    assert_int_equal(ept_table(0x5000), 0x5007);
    assert_int_equal(ept_pointer(&g) & 0xfff, 0x1e); /* WB, walk length 4 */
    assert_int_equal(ept_pointer(&g) & ~0xfffull, g.root);
}

static void test_npt_encoding(void **state)
{
    (void)state;
    gpt_destroy(&g);
    assert_int_equal(gpt_init(&g, &npt_format, &ops, true, true), GPT_OK);
    uint64_t e = npt_leaf(0x40000000, 2, GPT_PERM_R | GPT_PERM_W, GPT_MEM_WB);
    assert_int_equal(e, 0x40000000 | 0x7 | (1 << 7) | (1ull << 63));
    e = npt_leaf(0x1000, 0, GPT_PERM_RWX, GPT_MEM_UC);
    assert_int_equal(e, 0x1000 | 0x7 | 0x18);
    assert_int_equal(npt_table(0x9000), 0x9007);
    assert_int_equal(gpt_map(&g, 0, 0, 4ull << 30, GPT_PERM_RWX, GPT_MEM_WB), GPT_OK);
    expect_map(0xc0001234, 0xc0001234, 2);
    assert_int_equal(gpt_unmap(&g, 0xfec00000, 0x1000), GPT_OK);
    expect_unmapped(0xfec00000);
    expect_map(0xfec01000, 0xfec01000, 0);
    assert_int_equal(npt_cr3(&g), g.root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_1g_pages_when_aligned, setup_ept, teardown),
        cmocka_unit_test_setup_teardown(test_2m_when_1g_not_allowed, setup_ept, teardown),
        cmocka_unit_test_setup_teardown(test_mixed_sizes_at_edges, setup_ept, teardown),
        cmocka_unit_test_setup_teardown(test_misaligned_host_forces_small_pages, setup_ept, teardown),
        cmocka_unit_test_setup_teardown(test_overlap_refused_untouched, setup_ept, teardown),
        cmocka_unit_test_setup_teardown(test_unmap_splits_1g_page, setup_ept, teardown),
        cmocka_unit_test_setup_teardown(test_unmap_everything_frees_tables, setup_ept, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_memory_leaves_nothing, setup_ept, teardown),
        cmocka_unit_test_setup_teardown(test_argument_errors, setup_ept, teardown),
        cmocka_unit_test_setup_teardown(test_ept_encoding, setup_ept, teardown),
        cmocka_unit_test_setup_teardown(test_npt_encoding, setup_ept, teardown),
    };
    return cmocka_run_group_tests_name("gpt", tests, NULL, NULL);
}
