/* plinth's page-table builder on the host: page-size choice, the direct map from
 * crafted memory maps, W^X of the image, the device and stack windows.  Table pages
 * come from a host buffer that stands for physical memory [0, HOST_PHYS). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* The C runtime defines __data_start itself: the image symbols get test names. */
#define __kernel_start test_kernel_start
#define __kernel_end   test_kernel_end
#define __text_start   test_text_start
#define __text_end     test_text_end
#define __rodata_start test_rodata_start
#define __rodata_end   test_rodata_end
#define __data_start   test_data_start
#define __data_end     test_data_end
#define __ksyms_start  test_ksyms_start
#define __ksyms_end    test_ksyms_end
#include "arch/x86_64/cpu/paging.c"

#define HOST_PHYS (32ull << 20)
#define MiB (1ull << 20)
#define GiB (1ull << 30)

static _Alignas(4096) uint8_t host_phys[HOST_PHYS];
static uint64_t next_table = 0x100000;  /* bump allocator for table pages */

/* arch/x86_64/page_alloc.h's calls, as the kernel's allocator would answer them. */
uint64_t arch_alloc_pages(size_t npages, uint64_t align)
{
    (void)align;
    if (next_table + npages * PAGE_SIZE > HOST_PHYS)
        return 0;
    memset(host_phys + next_table, 0, npages * PAGE_SIZE);
    next_table += npages * PAGE_SIZE;
    return next_table - npages * PAGE_SIZE;
}

void arch_free_pages(uint64_t phys, size_t npages)
{
    (void)phys;
    (void)npages;
}

void log_printf(enum log_level level, const char *fmt, ...)
{
    (void)level;
    (void)fmt;
}

void panic(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fail_msg("unexpected panic: %s", buf);
    abort();
}

/* A stand-in image: .boot is not part of it; .text 2 pages, .rodata 1, .data 2,
 * .ksyms 1, contiguous and page aligned as linker.ld lays them out. */
__asm__(".data\n.balign 4096\n"
        ".globl test_kernel_start\ntest_kernel_start:\n"
        ".globl test_text_start\ntest_text_start: .skip 8192\n.globl test_text_end\ntest_text_end:\n"
        ".globl test_rodata_start\ntest_rodata_start: .skip 4096\n.globl test_rodata_end\ntest_rodata_end:\n"
        ".globl test_data_start\ntest_data_start: .skip 8192\n.globl test_data_end\ntest_data_end:\n"
        ".globl test_ksyms_start\ntest_ksyms_start: .skip 4096\n.globl test_ksyms_end\ntest_ksyms_end:\n"
        ".globl test_kernel_end\ntest_kernel_end:\n.text\n");

static struct bootinfo bi;

/* Where .text lands in physical memory: one page (.boot) above the load address. */
#define IMAGE_PHYS 0x200000ull

static void setup(unsigned large)
{
    memset(&bi, 0, sizeof bi);
    /* Chosen so that paging_image_phys(__text_start) = IMAGE_PHYS + 4 KiB: the image's
     * link addresses here are host addresses, the arithmetic is the kernel's. */
    bi.kernel_phys = IMAGE_PHYS + PAGE_SIZE - ((uintptr_t)__text_start - KERNEL_VMA - KERNEL_LMA);
    bi.kernel_size = PAGE_SIZE + ((uintptr_t)__kernel_end - (uintptr_t)__kernel_start);
    next_table = 0x100000;
    paging_phys_offset = (uintptr_t)host_phys;
    paging_phys_span = HOST_PHYS;
    paging_nx = PTE_NX;
    paging_large = large;
    paging_active = false;
    paging_phys_limit = 1ull << 46;
    paging_stack_next = STACK_WINDOW_BASE;
    paging_mmio_next = MMIO_WINDOW_BASE;
    paging_mmio_count = 0;
    paging_direct_count = 0;
    paging_bootinfo = &bi;
    paging_pml4 = arch_alloc_page();
}

static void add(uint64_t base, uint64_t length, uint32_t type)
{
    bi.mmap[bi.mmap_count++] = (struct bootinfo_mmap_entry){ .base = base, .length = length, .type = type };
}

struct leaf { uint64_t virt, phys, size, entry; };
static struct leaf leaves[1 << 16];
static unsigned nleaves;

static uint64_t canonical(uint64_t v)
{
    return v & (1ull << 47) ? v | 0xffff000000000000ull : v;
}

static void walk(uint64_t table_phys, int level, uint64_t base)
{
    const uint64_t *t = phys_to_virt(table_phys);
    for (unsigned i = 0; i < 512; i++) {
        uint64_t e = t[i];
        if (!(e & PTE_P))
            continue;
        uint64_t va = canonical(base | (uint64_t)i << (12 + 9 * (level - 1)));
        if (level == 1 || (level <= 3 && (e & PTE_PS))) {
            if (nleaves == sizeof leaves / sizeof leaves[0])
                fail_msg("too many leaves");
            uint64_t size = 1ull << (12 + 9 * (level - 1));
            leaves[nleaves++] = (struct leaf){ va, e & PTE_ADDR & ~(size - 1), size, e };
            continue;
        }
        assert_true(level > 1);
        /* Upper levels stay permissive: the leaf decides. */
        assert_true(e & PTE_W);
        assert_false(e & PTE_NX);
        walk(e & PTE_ADDR, level - 1, va);
    }
}

static void collect(void)
{
    nleaves = 0;
    walk(paging_pml4, 4, 0);
}

static unsigned count_size(uint64_t size)
{
    unsigned n = 0;
    for (unsigned i = 0; i < nleaves; i++)
        n += leaves[i].size == size;
    return n;
}

static const struct leaf *leaf_at(uint64_t va)
{
    for (unsigned i = 0; i < nleaves; i++)
        if (va >= leaves[i].virt && va - leaves[i].virt < leaves[i].size)
            return &leaves[i];
    return NULL;
}

static void test_page_sizes(void **state)
{
    (void)state;
    setup(PAGING_LARGE_2M | PAGING_LARGE_1G);
    uint64_t v = DIRECT_MAP_BASE;
    assert_int_equal(paging_map_range(paging_pml4, v + 0x1000, 0x1000, 0x80200000, PTE_W, paging_large), 0);
    collect();
    /* 4K up to 2 MiB, 2M up to 1 GiB, one 1G, one 2M, one 4K at the tail. */
    assert_int_equal(count_size(PAGE_SIZE), 511 + 1);
    assert_int_equal(count_size(PAGE_2M), 511 + 1);
    assert_int_equal(count_size(PAGE_1G), 1);
    const struct leaf *l = leaf_at(v + 0x40000000);
    assert_non_null(l);
    assert_int_equal(l->size, PAGE_1G);
    assert_true(l->entry & PTE_PS);
    assert_int_equal(paging_lookup(paging_pml4, v + 0x40000000 + 0x12345), 0x40012345);
    assert_int_equal(paging_lookup(paging_pml4, v + 0x80200abc), 0x80200abc);
    assert_int_equal(paging_lookup(paging_pml4, v + 0x80201000), PAGING_NONE);
    assert_int_equal(paging_lookup(paging_pml4, v), PAGING_NONE);
    for (unsigned i = 0; i < nleaves; i++)
        if (leaves[i].size == PAGE_SIZE && (leaves[i].entry & PTE_PS))
            fail_msg("a 4 KiB leaf has bit 7 (PAT) set");

    /* Without 1 GiB pages the middle is 2 MiB pages. */
    setup(PAGING_LARGE_2M);
    assert_int_equal(paging_map_range(paging_pml4, v + 0x1000, 0x1000, 0x80200000, PTE_W, paging_large), 0);
    collect();
    assert_int_equal(count_size(PAGE_1G), 0);
    assert_int_equal(count_size(PAGE_2M), 511 + 512 + 1);

    /* Virtual and physical alignment differ: only 4 KiB pages fit. */
    setup(PAGING_LARGE_2M | PAGING_LARGE_1G);
    assert_int_equal(paging_map_range(paging_pml4, v, 0x1000, 4 * MiB, PTE_W, paging_large), 0);
    collect();
    assert_int_equal(count_size(PAGE_SIZE), 1024);

    /* Virtual 1 GiB aligned, physical only 2 MiB aligned: no 1 GiB page. */
    setup(PAGING_LARGE_2M | PAGING_LARGE_1G);
    assert_int_equal(paging_map_range(paging_pml4, v + PAGE_1G, PAGE_2M, PAGE_1G, PTE_W, paging_large), 0);
    collect();
    assert_int_equal(count_size(PAGE_1G), 0);
    assert_int_equal(count_size(PAGE_2M), 512);
}

static void test_large_page_conflict(void **state)
{
    (void)state;
    setup(PAGING_LARGE_2M);
    uint64_t v = DIRECT_MAP_BASE;
    assert_int_equal(paging_map_range(paging_pml4, v, 0, PAGE_2M, PTE_W, PAGING_LARGE_2M), 0);
    /* A 4 KiB mapping inside the 2 MiB page, and a 2 MiB page over a table. */
    assert_int_equal(paging_map_range(paging_pml4, v + 0x1000, 0x1000, PAGE_SIZE, PTE_W, 0), PAGING_ECONFLICT);
    assert_int_equal(paging_map_range(paging_pml4, v + PAGE_2M, PAGE_2M, PAGE_SIZE, PTE_W, 0), 0);
    assert_int_equal(paging_map_range(paging_pml4, v + PAGE_2M, PAGE_2M, PAGE_2M, PTE_W, PAGING_LARGE_2M),
                     PAGING_ECONFLICT);
    /* Out of table memory. */
    next_table = HOST_PHYS;
    assert_int_equal(paging_map_range(paging_pml4, 0x7f0000000000ull, 0, PAGE_SIZE, PTE_W, 0), PAGING_ENOMEM);
}

/* A PC with 5 GiB: RAM split around the PCI hole, ACPI and NVS next to RAM,
 * reserved ranges that may be devices, an overlapping duplicate entry. */
static void pc_map(void)
{
    add(0, 0x9fc00, BOOTINFO_MEM_USABLE);
    add(0x9fc00, 0x400, BOOTINFO_MEM_RESERVED);
    add(0xf0000, 0x10000, BOOTINFO_MEM_RESERVED);
    add(0x100000, 0xbfee0000 - 0x100000, BOOTINFO_MEM_USABLE);
    add(0xbfee0000, 0x100000, BOOTINFO_MEM_ACPI);
    add(0xbffe0000, 0x10000, BOOTINFO_MEM_NVS);
    add(0xbfff0000, 0x10000, BOOTINFO_MEM_RESERVED);         /* may be a device */
    add(0xfec00000, 0x1000, BOOTINFO_MEM_RESERVED);
    add(0x100000000, 0x40000000 + 0x1000, BOOTINFO_MEM_USABLE); /* 4 GiB .. 5 GiB + 4K */
    add(0x100000000, 0x1000, BOOTINFO_MEM_USABLE);             /* duplicate */
    add(0x140001000, 0x1000, BOOTINFO_MEM_RESERVED);
    add(0x140002000, 0x3000, BOOTINFO_MEM_BOOTLOADER);
}

static bool in_direct_ranges(uint64_t phys, uint64_t size)
{
    return paging_is_direct_mapped(phys, size);
}

static void test_direct_map(void **state)
{
    (void)state;
    setup(PAGING_LARGE_2M | PAGING_LARGE_1G);
    pc_map();
    paging_direct_ranges(&bi);
    paging_active = true; /* paging_is_direct_mapped consults the ranges */
    assert_int_equal(paging_direct_count, 3);
    assert_int_equal(paging_direct[0].start, 0);
    assert_int_equal(paging_direct[0].end, 0xbfff0000);
    assert_int_equal(paging_direct[1].start, 0x100000000);
    assert_int_equal(paging_direct[1].end, 0x140001000);
    assert_int_equal(paging_direct[2].start, 0x140002000);
    assert_int_equal(paging_direct[2].end, 0x140005000);

    assert_int_equal(paging_build_direct_map(paging_pml4, &bi), 0);
    paging_active = false;
    collect();
    uint64_t mapped = 0;
    for (unsigned i = 0; i < nleaves; i++) {
        const struct leaf *l = &leaves[i];
        assert_int_equal(l->virt, DIRECT_MAP_BASE + l->phys);
        paging_active = true;
        if (!in_direct_ranges(l->phys, l->size))
            fail_msg("leaf %#lx+%#lx maps memory outside the RAM ranges", (unsigned long)l->phys,
                     (unsigned long)l->size);
        paging_active = false;
        assert_true(l->entry & PTE_NX);
        assert_true(l->entry & PTE_G);
        assert_false(l->entry & (PTE_PCD | PTE_PWT));
        mapped += l->size;
    }
    assert_int_equal(mapped, 0xbfff0000 + 0x40001000 + 0x3000);
    /* Large pages where alignment allows: 1 GiB pages at 0..3 GiB minus the image's
     * first GiB, and at 4 GiB. */
    assert_int_equal(leaf_at(DIRECT_MAP_BASE + 0x40000000)->size, PAGE_1G);
    assert_int_equal(leaf_at(DIRECT_MAP_BASE + 0x100000000)->size, PAGE_1G);
    assert_int_equal(leaf_at(DIRECT_MAP_BASE + 0x140000000)->size, PAGE_SIZE);
    assert_int_equal(leaf_at(DIRECT_MAP_BASE + 0xbfe00000)->size, PAGE_SIZE);
    assert_null(leaf_at(DIRECT_MAP_BASE + 0xbfff0000));
    assert_null(leaf_at(DIRECT_MAP_BASE + 0x140001000));
    assert_null(leaf_at(DIRECT_MAP_BASE + 0xfec00000));
    assert_null(leaf_at(DIRECT_MAP_BASE + 0x140005000));
    /* The image's read-only sections are read-only in the alias too. */
    assert_false(leaf_at(DIRECT_MAP_BASE + IMAGE_PHYS + PAGE_SIZE)->entry & PTE_W);            /* .text */
    assert_false(leaf_at(DIRECT_MAP_BASE + IMAGE_PHYS + 3 * PAGE_SIZE)->entry & PTE_W);        /* .rodata */
    assert_true(leaf_at(DIRECT_MAP_BASE + IMAGE_PHYS + 4 * PAGE_SIZE)->entry & PTE_W);         /* .data */
    assert_false(leaf_at(DIRECT_MAP_BASE + IMAGE_PHYS + 6 * PAGE_SIZE)->entry & PTE_W);        /* .ksyms */
    assert_true(leaf_at(DIRECT_MAP_BASE + IMAGE_PHYS)->entry & PTE_W);                         /* .boot */
    assert_true(leaf_at(DIRECT_MAP_BASE + IMAGE_PHYS + 7 * PAGE_SIZE)->entry & PTE_W);
}

static void test_direct_map_hostile(void **state)
{
    (void)state;
    setup(PAGING_LARGE_2M | PAGING_LARGE_1G);
    /* No entries: the first MiB alone.  Lengths that wrap, zero lengths, RAM past
     * the direct map's end. */
    paging_direct_ranges(&bi);
    assert_int_equal(paging_direct_count, 1);
    add(0x200000, UINT64_MAX, BOOTINFO_MEM_USABLE);
    add(0x300000, 0, BOOTINFO_MEM_USABLE);
    add(DIRECT_MAP_SIZE - 0x1000, 0x10000, BOOTINFO_MEM_ACPI);
    add(DIRECT_MAP_SIZE + 0x1000, 0x10000, BOOTINFO_MEM_USABLE);
    paging_direct_ranges(&bi);
    assert_int_equal(paging_direct_count, 2);
    assert_int_equal(paging_direct[1].start, 0x200000);
    assert_int_equal(paging_direct[1].end, DIRECT_MAP_SIZE);
}

static void test_image_wx(void **state)
{
    (void)state;
    setup(PAGING_LARGE_2M | PAGING_LARGE_1G);
    assert_int_equal(paging_build_image(paging_pml4, &bi), 0);
    collect();
    assert_int_equal(nleaves, 6);
    struct { char *at; bool w, x; } want[] = {
        { __text_start, false, true },  { __text_start + 4096, false, true },
        { __rodata_start, false, false }, { __data_start, true, false },
        { __data_start + 4096, true, false }, { __ksyms_start, false, false },
    };
    for (unsigned i = 0; i < 6; i++) {
        const struct leaf *l = leaf_at((uintptr_t)want[i].at);
        assert_non_null(l);
        assert_int_equal(l->size, PAGE_SIZE);
        assert_int_equal(!!(l->entry & PTE_W), want[i].w);
        assert_int_equal(!(l->entry & PTE_NX), want[i].x);
        assert_true(l->entry & PTE_G);
        assert_int_equal(l->phys, IMAGE_PHYS + PAGE_SIZE + ((uintptr_t)want[i].at - (uintptr_t)__text_start));
        /* Never both writable and executable. */
        assert_false((l->entry & PTE_W) && !(l->entry & PTE_NX));
    }
    /* .boot (the page below .text) is left unmapped. */
    assert_null(leaf_at((uintptr_t)__text_start - PAGE_SIZE));
    assert_int_equal(virt_to_phys(__data_start + 0x123), IMAGE_PHYS + 4 * PAGE_SIZE + 0x123);
}

static void test_windows(void **state)
{
    (void)state;
    setup(PAGING_LARGE_2M | PAGING_LARGE_1G);
    pc_map();
    paging_direct_ranges(&bi);
    assert_int_equal(paging_build_direct_map(paging_pml4, &bi), 0);
    paging_active = true;

    /* Devices: uncached, NX, page offset kept, the same registers reuse a window. */
    uint8_t *ioapic = mmio_map(0xfec00010, 0x20);
    assert_ptr_equal(ioapic, (uint8_t *)(uintptr_t)(MMIO_WINDOW_BASE + 0x10));
    assert_ptr_equal(mmio_map(0xfec00000, 4), (uint8_t *)(uintptr_t)MMIO_WINDOW_BASE);
    uint8_t *two = mmio_map(0xfed00ff0, 0x20);              /* straddles a page */
    assert_ptr_equal(two, (uint8_t *)(uintptr_t)(MMIO_WINDOW_BASE + PAGE_SIZE + 0xff0));
    collect();
    const struct leaf *l = leaf_at(MMIO_WINDOW_BASE);
    assert_non_null(l);
    assert_int_equal(l->phys, 0xfec00000);
    assert_true((l->entry & (PTE_PCD | PTE_PWT | PTE_NX | PTE_W)) == (PTE_PCD | PTE_PWT | PTE_NX | PTE_W));
    assert_int_equal(leaf_at(MMIO_WINDOW_BASE + 2 * PAGE_SIZE)->phys, 0xfed01000);
    assert_int_equal(virt_to_phys(two), 0xfed00ff0);
    /* RAM comes back through the direct map, not as an uncached alias. */
    assert_ptr_equal(mmio_map(0xbfee0010, 16), (void *)(uintptr_t)(paging_phys_offset + 0xbfee0010));
    assert_null(mmio_map(0, 0));
    assert_null(mmio_map(UINT64_MAX - 10, 100));
    assert_null(mmio_map(1ull << 50, 4096));

    /* Stacks: mapped NX and writable, an unmapped guard page below each. */
    uint64_t a = stack_alloc(4 * PAGE_SIZE), b = stack_alloc(2 * PAGE_SIZE);
    assert_int_equal(a, STACK_WINDOW_BASE + 5 * PAGE_SIZE);
    assert_int_equal(b, a + 3 * PAGE_SIZE);
    collect();
    assert_null(leaf_at(a - 5 * PAGE_SIZE));
    for (int i = 1; i <= 4; i++) {
        l = leaf_at(a - i * PAGE_SIZE);
        assert_non_null(l);
        assert_true(l->entry & PTE_W);
        assert_true(l->entry & PTE_NX);
    }
    assert_null(leaf_at(b - 3 * PAGE_SIZE));
    assert_non_null(leaf_at(b - 2 * PAGE_SIZE));
    assert_int_equal(stack_alloc(0), 0);
    assert_int_equal(stack_alloc(100), 0);

    /* The trampoline's identity map: executable, below 2^47 only. */
    assert_int_equal(paging_identity_map(0x8000, 0x1800), 0);
    collect();
    l = leaf_at(0x9000);
    assert_non_null(l);
    assert_int_equal(l->phys, 0x9000);
    assert_false(l->entry & PTE_NX);
    assert_null(leaf_at(0xa000));
    assert_int_equal(paging_identity_map(1ull << 47, 4096), -1);
    assert_int_equal(paging_identity_map(0x8000, 0), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_page_sizes),
        cmocka_unit_test(test_large_page_conflict),
        cmocka_unit_test(test_direct_map),
        cmocka_unit_test(test_direct_map_hostile),
        cmocka_unit_test(test_image_wx),
        cmocka_unit_test(test_windows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
