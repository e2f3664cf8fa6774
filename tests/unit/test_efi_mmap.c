/* boot/efi/efi_mmap.c on the host: type conversion, sorting, merging, hostile maps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <stdlib.h>
#include <cmocka.h>

#include "boot/efi/efi_mmap.c"

/* OVMF's stride: 48 bytes, larger than the 40-byte descriptor. */
#define STRIDE 48

static uint8_t map[STRIDE * 1200];
static size_t map_len;
static struct bootinfo bi;

static void put(uint8_t *p, uint64_t v, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void desc(uint32_t type, uint64_t base, uint64_t pages)
{
    uint8_t *d = map + map_len;
    memset(d, 0xAA, STRIDE);
    put(d + 0, type, 4);
    put(d + 8, base, 8);
    put(d + 16, 0, 8);
    put(d + 24, pages, 8);
    put(d + 32, 0xF, 8);
    map_len += STRIDE;
}

static int setup(void **state)
{
    (void)state;
    map_len = 0;
    memset(&bi, 0, sizeof bi);
    return 0;
}

static void test_types(void **state)
{
    (void)state;
    assert_int_equal(efi_mmap_type(7), BOOTINFO_MEM_USABLE);
    assert_int_equal(efi_mmap_type(3), BOOTINFO_MEM_USABLE);
    assert_int_equal(efi_mmap_type(4), BOOTINFO_MEM_USABLE);
    assert_int_equal(efi_mmap_type(1), BOOTINFO_MEM_BOOTLOADER);
    assert_int_equal(efi_mmap_type(2), BOOTINFO_MEM_BOOTLOADER);
    assert_int_equal(efi_mmap_type(9), BOOTINFO_MEM_ACPI);
    assert_int_equal(efi_mmap_type(10), BOOTINFO_MEM_NVS);
    assert_int_equal(efi_mmap_type(8), BOOTINFO_MEM_BAD);
    for (uint32_t t = 0; t < 40; t++) {
        if (t == 0 || t == 5 || t == 6 || (t >= 11 && t <= 15) || t >= 16)
            assert_int_equal(efi_mmap_type(t), BOOTINFO_MEM_RESERVED);
    }
    assert_int_equal(efi_mmap_type(0x80000000u), BOOTINFO_MEM_RESERVED);
}

static void test_sort_and_merge(void **state)
{
    (void)state;
    /* Out of order, with neighbours to merge across firmware types. */
    desc(7, 0x100000, 0x100);       /* usable 1M..2M */
    desc(2, 0x200000, 0x200);       /* loader 2M..4M */
    desc(7, 0x0, 0x9f);             /* usable 0..0x9f000 */
    desc(4, 0x400000, 0x10);        /* bs data: usable, touches nothing usable before */
    desc(3, 0x410000, 0x10);        /* bs code: merges with the one above */
    desc(0, 0x9f000, 0x61);         /* reserved 0x9f000..1M */
    desc(1, 0x180000, 0);           /* empty: dropped */
    desc(11, 0xFEC00000, 1);        /* MMIO: reserved */
    desc(7, 0x420000, 0x100);       /* merges with the two boot-services ranges */
    desc(9, 0x7F000000, 0x10);
    desc(10, 0x7F010000, 0x10);
    assert_int_equal(efi_mmap_convert(map, map_len, STRIDE, &bi), 1);
    assert_int_equal(bi.mmap_count, 8);

    const struct bootinfo_mmap_entry want[] = {
        { 0x0, 0x9f000, BOOTINFO_MEM_USABLE, 0 },
        { 0x9f000, 0x61000, BOOTINFO_MEM_RESERVED, 0 },
        { 0x100000, 0x100000, BOOTINFO_MEM_USABLE, 0 },
        { 0x200000, 0x200000, BOOTINFO_MEM_BOOTLOADER, 0 },
        { 0x400000, 0x120000, BOOTINFO_MEM_USABLE, 0 },
        { 0x7F000000, 0x10000, BOOTINFO_MEM_ACPI, 0 },
        { 0x7F010000, 0x10000, BOOTINFO_MEM_NVS, 0 },
        { 0xFEC00000, 0x1000, BOOTINFO_MEM_RESERVED, 0 },
    };
    for (unsigned i = 0; i < 8; i++) {
        assert_int_equal(bi.mmap[i].base, want[i].base);
        assert_int_equal(bi.mmap[i].length, want[i].length);
        assert_int_equal(bi.mmap[i].type, want[i].type);
    }
    assert_int_equal(bi.flags, 0);
    assert_int_equal(efi_mmap_top(map, map_len, STRIDE), 0xFEC01000);
}

static void test_merge_fills_gap(void **state)
{
    (void)state;
    desc(7, 0x0, 1);
    desc(7, 0x2000, 1);
    desc(4, 0x1000, 1);             /* joins both neighbours into one */
    efi_mmap_convert(map, map_len, STRIDE, &bi);
    assert_int_equal(bi.mmap_count, 1);
    assert_int_equal(bi.mmap[0].length, 0x3000);
}

static void test_hostile(void **state)
{
    (void)state;
    desc(7, 0xFFFFFFFFFFFFF000ull, 2);          /* wraps */
    desc(7, 0x1000, 0xFFFFFFFFFFFFFFFFull);     /* page count overflows */
    desc(7, 0x1000, 1);
    /* A trailing partial descriptor is ignored. */
    assert_int_equal(efi_mmap_convert(map, map_len + 20, STRIDE, &bi), 2);
    assert_int_equal(bi.mmap_count, 1);
    assert_int_equal(efi_mmap_top(map, map_len + 20, STRIDE), 0x2000);
    /* A stride smaller than a descriptor gives nothing. */
    assert_int_equal(efi_mmap_convert(map, map_len, 16, &bi), 0);
    assert_int_equal(bi.mmap_count, 0);
    assert_int_equal(efi_mmap_top(map, map_len, 16), 0);
    assert_int_equal(efi_mmap_convert(NULL, 100, STRIDE, &bi), 0);
}

static void test_truncated(void **state)
{
    (void)state;
    /* 1000 ranges alternating in type: nothing merges, 512 fit. */
    for (unsigned i = 0; i < 1000; i++)
        desc(i & 1 ? 7 : 0, (uint64_t)i * 0x1000, 1);
    efi_mmap_convert(map, map_len, STRIDE, &bi);
    assert_int_equal(bi.mmap_count, BOOTINFO_MAX_MMAP);
    assert_true(bi.flags & BOOTINFO_F_MMAP_TRUNCATED);
    for (unsigned i = 1; i < bi.mmap_count; i++)
        assert_true(bi.mmap[i - 1].base < bi.mmap[i].base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_types, setup),
        cmocka_unit_test_setup(test_sort_and_merge, setup),
        cmocka_unit_test_setup(test_merge_fills_gap, setup),
        cmocka_unit_test_setup(test_hostile, setup),
        cmocka_unit_test_setup(test_truncated, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
