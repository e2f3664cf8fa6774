/* boot/efi/efi_pagetable.c on the host: tables built in a host pool and walked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "boot/efi/efi_pagetable.c"

#define KVIRT 0xFFFFFFFF80200000ull

static void *pool_alloc(size_t pages)
{
    void *p = aligned_alloc(4096, pages * 4096);
    assert_non_null(p);
    memset(p, 0xCC, pages * 4096);   /* tables must clear what they use */
    return p;
}

static void test_build_small_machine(void **state)
{
    (void)state;
    size_t pages = efi_pt_pages_needed(512ull << 20, 3ull << 20);
    void *pool = pool_alloc(pages);
    struct efi_pt pt;
    assert_int_equal(efi_pt_init(&pt, pool, pages), EFI_PT_OK);
    assert_int_equal(efi_pt_build(&pt, 512ull << 20, KVIRT, 0x1E000000, 3ull << 20),
                     EFI_PT_OK);
    assert_true(pt.used <= pages);

    /* Identity map: at least 4 GiB even with 512 MiB of RAM. */
    assert_int_equal(efi_pt_lookup(&pt, 0), 0);
    assert_int_equal(efi_pt_lookup(&pt, 0x12345678), 0x12345678);
    assert_int_equal(efi_pt_lookup(&pt, 0xFFFFFFFF), 0xFFFFFFFF);
    assert_int_equal(efi_pt_lookup(&pt, 0x100000000ull), UINT64_MAX);
    /* The kernel: 3 MiB rounded up to two 2 MiB pages. */
    assert_int_equal(efi_pt_lookup(&pt, KVIRT), 0x1E000000);
    assert_int_equal(efi_pt_lookup(&pt, KVIRT + 0x3FFFFF), 0x1E3FFFFF);
    assert_int_equal(efi_pt_lookup(&pt, KVIRT + 0x400000), UINT64_MAX);
    assert_int_equal(efi_pt_lookup(&pt, KVIRT - 1), UINT64_MAX);

    /* No XD bit, no user bit: only P, RW, PS and the address. */
    uint64_t pml4e = pt.pml4[511];
    assert_int_equal(pml4e & ~EFI_PT_ADDR_MASK, EFI_PT_P | EFI_PT_RW);
    uint64_t *pdpt = (uint64_t *)(uintptr_t)(pml4e & EFI_PT_ADDR_MASK);
    uint64_t *pd = (uint64_t *)(uintptr_t)(pdpt[510] & EFI_PT_ADDR_MASK);
    assert_int_equal(pd[1], 0x1E000000 | EFI_PT_P | EFI_PT_RW | EFI_PT_PS);
    assert_int_equal(pd[0], 0);
    free(pool);
}

static void test_large_machine(void **state)
{
    (void)state;
    /* 600 GiB: two PDPTs for the identity map. */
    uint64_t top = 600ull << 30;
    size_t pages = efi_pt_pages_needed(top, 64ull << 20);
    void *pool = pool_alloc(pages);
    struct efi_pt pt;
    assert_int_equal(efi_pt_init(&pt, pool, pages), EFI_PT_OK);
    assert_int_equal(efi_pt_build(&pt, top - 5, KVIRT, 0x40000000, 64ull << 20), EFI_PT_OK);
    assert_int_equal(efi_pt_lookup(&pt, top - 1), top - 1);
    assert_int_equal(efi_pt_lookup(&pt, top), UINT64_MAX);
    assert_int_equal(efi_pt_lookup(&pt, KVIRT + (63ull << 20)), 0x40000000 + (63ull << 20));
    free(pool);
}

static void test_errors(void **state)
{
    (void)state;
    void *pool = pool_alloc(8);
    struct efi_pt pt;
    assert_int_equal(efi_pt_init(&pt, (char *)pool + 8, 4), EFI_PT_ERR_ALIGN);
    assert_int_equal(efi_pt_init(&pt, pool, 0), EFI_PT_ERR_POOL);

    assert_int_equal(efi_pt_init(&pt, pool, 8), EFI_PT_OK);
    assert_int_equal(efi_pt_map(&pt, KVIRT + 0x1000, 0, 0x200000), EFI_PT_ERR_ALIGN);
    assert_int_equal(efi_pt_map(&pt, KVIRT, 0x1000, 0x200000), EFI_PT_ERR_ALIGN);
    /* Non-canonical, crossing the canonical hole, wrapping. */
    assert_int_equal(efi_pt_map(&pt, 0x0000800000000000ull, 0, 0x200000), EFI_PT_ERR_RANGE);
    assert_int_equal(efi_pt_map(&pt, 0x00007FFFFFE00000ull, 0, 0x400000), EFI_PT_ERR_RANGE);
    assert_int_equal(efi_pt_map(&pt, 0xFFFFFFFFFFE00000ull, 0, 0x400000), EFI_PT_ERR_RANGE);
    assert_int_equal(efi_pt_map(&pt, 0, 0x000FFFFFFFE00000ull, 0x400000), EFI_PT_ERR_RANGE);
    assert_int_equal(efi_pt_map(&pt, 0, 0, UINT64_MAX), EFI_PT_ERR_RANGE);
    /* The same page twice is fine; onto another frame is a conflict. */
    assert_int_equal(efi_pt_map(&pt, 0, 0, 0x200000), EFI_PT_OK);
    assert_int_equal(efi_pt_map(&pt, 0, 0, 0x200000), EFI_PT_OK);
    assert_int_equal(efi_pt_map(&pt, 0, 0x200000, 0x200000), EFI_PT_ERR_CONFLICT);
    assert_int_equal(efi_pt_build(&pt, UINT64_MAX - 5, KVIRT, 0, 0x1000), EFI_PT_ERR_RANGE);

    /* A pool too small for 4 GiB: PML4 + PDPT + 4 PDs do not fit in 3 pages. */
    assert_int_equal(efi_pt_init(&pt, pool, 3), EFI_PT_OK);
    assert_int_equal(efi_pt_build(&pt, 0, KVIRT, 0x200000, 0x1000), EFI_PT_ERR_POOL);
    free(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_small_machine),
        cmocka_unit_test(test_large_machine),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
