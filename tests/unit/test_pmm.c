/* The physical page allocator over crafted memory maps.  Physical memory is a host
 * mapping reserved up front (pages are only touched when handed out), so maps may
 * reach past 4 GiB. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <cmocka.h>

#include "kernel/pmm.c"

#define HOST_PHYS_SIZE (1ull << 33) /* phys [0, 8 GiB) is backed */
#define MiB (1ull << 20)
#define GiB (1ull << 30)

static uint8_t *host_phys;

void *phys_to_virt(uint64_t phys)
{
    if (phys >= HOST_PHYS_SIZE)
        fail_msg("phys_to_virt(%#lx): beyond the %lu GiB the test backs", (unsigned long)phys,
                 (unsigned long)(HOST_PHYS_SIZE >> 30));
    return host_phys + phys;
}

static int warnings;
static char last_warning[512];

void log_printf(enum log_level level, const char *fmt, ...)
{
    if (level < LOG_WARN)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_warning, sizeof last_warning, fmt, ap);
    va_end(ap);
    warnings++;
}

static jmp_buf panic_jmp;
static bool panic_armed;
static char panic_msg[512];

void panic(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(panic_msg, sizeof panic_msg, fmt, ap);
    va_end(ap);
    if (!panic_armed)
        fail_msg("unexpected panic: %s", panic_msg);
    panic_armed = false;
    longjmp(panic_jmp, 1);
}

/* Runs stmt expecting it to panic with a message containing want. */
#define expect_panic(stmt, want)                                                   \
    do {                                                                           \
        panic_armed = true;                                                        \
        if (!setjmp(panic_jmp)) {                                                  \
            stmt;                                                                  \
            fail_msg("no panic from " #stmt);                                      \
        }                                                                          \
        if (!strstr(panic_msg, want))                                              \
            fail_msg("panic \"%s\" does not mention \"%s\"", panic_msg, want);     \
    } while (0)

static struct bootinfo bi;

static void reset(void)
{
    memset(&bi, 0, sizeof bi);
    bi.magic = BOOTINFO_MAGIC_PLINTH;
    warnings = 0;
    /* Pages handed out before are dirtied on purpose: handing them out again must
     * zero them. */
}

static void add(uint64_t base, uint64_t length, uint32_t type)
{
    bi.mmap[bi.mmap_count++] = (struct bootinfo_mmap_entry){ .base = base, .length = length, .type = type };
}

static void add_module(uint64_t phys, uint64_t size)
{
    bi.modules[bi.module_count++] = (struct bootinfo_module){ .phys = phys, .size = size };
}

static bool overlaps(uint64_t page, uint64_t base, uint64_t size)
{
    return page < base + size && base < page + PAGE_SIZE;
}

/* A PC-like layout: low RAM with the EBDA, the BIOS area, RAM from 1 MiB to 127 MiB,
 * an ACPI range, the IOAPIC. */
static void pc_map(void)
{
    reset();
    add(0, 0x9fc00, BOOTINFO_MEM_USABLE);
    add(0x9fc00, 0x400, BOOTINFO_MEM_RESERVED);
    add(0xf0000, 0x10000, BOOTINFO_MEM_RESERVED);
    add(0x100000, 0x7e00000, BOOTINFO_MEM_USABLE);          /* 1 MiB .. 127 MiB */
    add(0x7f00000, 0x100000, BOOTINFO_MEM_ACPI);
    add(0xfec00000, 0x1000, BOOTINFO_MEM_RESERVED);
    bi.kernel_phys = 0x200000;
    bi.kernel_size = 0x100000;
    add_module(0x400000, 0x2345);                            /* 3 pages, unaligned end */
}

/* Allocates until exhaustion, checking each page against forbidden ranges and for
 * duplicates; returns how many pages were handed out. */
static uint64_t drain(uint64_t (*alloc)(void), uint64_t lo, uint64_t hi)
{
    uint64_t n = 0;
    static uint8_t seen[(8ull << 30) / PAGE_SIZE / 8];
    memset(seen, 0, sizeof seen);
    for (;;) {
        uint64_t p = alloc();
        if (!p)
            return n;
        if (p % PAGE_SIZE || p < lo || p >= hi)
            fail_msg("page %#lx outside [%#lx, %#lx) or unaligned", (unsigned long)p,
                     (unsigned long)lo, (unsigned long)hi);
        uint64_t idx = p / PAGE_SIZE;
        if (seen[idx / 8] & (1u << (idx % 8)))
            fail_msg("page %#lx handed out twice", (unsigned long)p);
        seen[idx / 8] |= 1u << (idx % 8);
        if (overlaps(p, bi.kernel_phys, bi.kernel_size))
            fail_msg("page %#lx is in the kernel image", (unsigned long)p);
        for (uint32_t i = 0; i < bi.module_count; i++)
            if (overlaps(p, bi.modules[i].phys, bi.modules[i].size))
                fail_msg("page %#lx is in module %u", (unsigned long)p, i);
        for (uint32_t i = 0; i < bi.mmap_count; i++)
            if (bi.mmap[i].type != BOOTINFO_MEM_USABLE &&
                overlaps(p, bi.mmap[i].base, bi.mmap[i].length))
                fail_msg("page %#lx is in memory-map entry %u of type %u", (unsigned long)p, i,
                         bi.mmap[i].type);
        if (p >= pmm_map_phys && p < pmm_map_phys + pmm_map_bytes)
            fail_msg("page %#lx holds the allocator's own bitmap", (unsigned long)p);
        const uint64_t *q = phys_to_virt(p);
        for (unsigned i = 0; i < PAGE_SIZE / 8; i++)
            if (q[i])
                fail_msg("page %#lx not zeroed", (unsigned long)p);
        memset(phys_to_virt(p), 0xa5, PAGE_SIZE);
        n++;
    }
}

static void test_pc_totals_and_exclusions(void **state)
{
    (void)state;
    pc_map();
    pmm_init(&bi);
    /* Usable: [4 KiB, 0x9f000) (page 0 never) and [1 MiB, 127 MiB). */
    uint64_t total = 0x9e + (0x7f00000 - 0x100000) / PAGE_SIZE;
    assert_int_equal(pmm_total_bytes(), total * PAGE_SIZE);
    uint64_t bitmap_pages = (pmm_map_bytes + PAGE_SIZE - 1) / PAGE_SIZE;
    uint64_t nfree = total - 0x100 - 3 - bitmap_pages;
    assert_int_equal(pmm_free_bytes(), nfree * PAGE_SIZE);
    assert_true(pmm_map_phys >= 0x100000);

    uint64_t high = drain(pmm_alloc_page, 0x100000, 0x7f00000);
    uint64_t low = drain(pmm_alloc_low_page, PAGE_SIZE, 0x9f000);
    assert_int_equal(low, 0x9e);
    assert_int_equal(high + low, nfree);
    assert_int_equal(pmm_free_bytes(), 0);
    assert_int_equal(pmm_alloc_page(), 0);
    assert_int_equal(pmm_alloc_contig(1, PAGE_SIZE), 0);
    assert_int_equal(pmm_total_bytes(), total * PAGE_SIZE);
}

static void test_unsorted_overlapping(void **state)
{
    (void)state;
    reset();
    /* Out of order, two usable entries overlapping each other, a reserved hole and a
     * BAD range inside usable RAM, an NVS entry straddling a usable one's end. */
    add(0x3000000, 0x1000000, BOOTINFO_MEM_USABLE);    /* 48..64 MiB */
    add(0x1800000, 0x400, BOOTINFO_MEM_RESERVED);      /* inside: one page lost */
    add(0x1000000, 0x1000000, BOOTINFO_MEM_USABLE);    /* 16..32 MiB */
    add(0x1400000, 0x1000000, BOOTINFO_MEM_USABLE);    /* 20..36 MiB, overlaps */
    add(0x3100000, 0x2000, BOOTINFO_MEM_BAD);
    add(0x3fff000, 0x3000, BOOTINFO_MEM_NVS);          /* last usable page lost */
    add(0x100000, 0x100000, BOOTINFO_MEM_USABLE);      /* 1..2 MiB */
    bi.kernel_phys = 0x1000000;
    bi.kernel_size = 0x5000;
    pmm_init(&bi);
    uint64_t total = (0x2400000 - 0x1000000) / PAGE_SIZE - 1   /* 16..36 MiB minus reserved */
                   + 0x1000000 / PAGE_SIZE - 2 - 1             /* 48..64 MiB minus BAD, NVS */
                   + 0x100;                                    /* 1..2 MiB */
    assert_int_equal(pmm_total_bytes(), total * PAGE_SIZE);
    uint64_t bitmap_pages = (pmm_map_bytes + PAGE_SIZE - 1) / PAGE_SIZE;
    uint64_t n = drain(pmm_alloc_page, 0x100000, 0x4000000);
    assert_int_equal(n, total - 5 - bitmap_pages);
    assert_int_equal(pmm_alloc_low_page(), 0); /* no usable RAM below 1 MiB */
}

static void test_modules_hostile(void **state)
{
    (void)state;
    pc_map();
    add_module(0x300000, 0x200000);                 /* overlaps the kernel */
    add_module(0x600000, 0);                        /* empty */
    add_module(0x700000, UINT64_MAX);               /* runs off the end: everything above */
    pmm_init(&bi);
    /* Only RAM below 0x700000 and above 1 MiB minus kernel/modules remains. */
    uint64_t n = drain(pmm_alloc_page, 0x100000, 0x700000);
    uint64_t bitmap_pages = (pmm_map_bytes + PAGE_SIZE - 1) / PAGE_SIZE;
    /* [1M,2M) + [0x500000,0x600000)... : 1..7 MiB = 0x600 pages; minus kernel+module
     * [2M,5M) = 0x300 pages and module [4M, 4M+3 pages) inside it. */
    assert_int_equal(n, 0x600 - 0x300 - bitmap_pages);
}

static void test_bitmap_placement(void **state)
{
    (void)state;
    reset();
    /* Low RAM, a reserved page at 1 MiB, then the kernel and a module back to back:
     * the bitmap goes to the first page after all of them, never below 1 MiB. */
    add(0, 0x9f000, BOOTINFO_MEM_USABLE);
    add(0x100000, 0x1000000, BOOTINFO_MEM_USABLE);
    add(0x100000, 0x1000, BOOTINFO_MEM_RESERVED);
    bi.kernel_phys = 0x101000;
    bi.kernel_size = 0x1ff000;
    add_module(0x300000, 0x100001);
    pmm_init(&bi);
    assert_int_equal(pmm_map_phys, 0x401000);
}

static void test_corrupt_bootinfo(void **state)
{
    (void)state;
    reset();
    add(0, 0x9f000, BOOTINFO_MEM_USABLE);
    add(0xf0000, 0x10000, BOOTINFO_MEM_RESERVED);
    expect_panic(pmm_init(&bi), "no usable RAM above 1 MiB");
    reset();
    expect_panic(pmm_init(&bi), "no usable RAM");
    reset();
    add(0x100000, 0x100000, BOOTINFO_MEM_USABLE);
    bi.mmap_count = BOOTINFO_MAX_MMAP + 1;
    expect_panic(pmm_init(&bi), "corrupt");
}

static void test_boot_limit_4g(void **state)
{
    (void)state;
    reset();
    add(0x100000, 0x100000, BOOTINFO_MEM_USABLE);           /* 1..2 MiB */
    add(4 * GiB, 0x200000, BOOTINFO_MEM_USABLE);            /* 4 GiB .. +2 MiB */
    add(0xfee00000, 0x1000, BOOTINFO_MEM_RESERVED);
    pmm_init(&bi);
    assert_int_equal(pmm_total_bytes(), 0x300000);
    uint64_t bitmap_pages = (pmm_map_bytes + PAGE_SIZE - 1) / PAGE_SIZE;
    assert_true(pmm_map_phys + pmm_map_bytes <= 0x200000);
    /* Before the direct map: nothing above 4 GiB. */
    assert_int_equal(drain(pmm_alloc_page, 0x100000, 0x200000), 0x100 - bitmap_pages);
    assert_int_equal(pmm_alloc_contig(1, PAGE_SIZE), 0);
    pmm_allow_above_4g();
    uint64_t p = pmm_alloc_contig(512, 2 * MiB);
    assert_int_equal(p, 4 * GiB);
    assert_int_equal(pmm_alloc_page(), 0);
    pmm_free_pages(p + 0x1000, 1);
    assert_int_equal(pmm_alloc_page(), p + 0x1000);
}

static void test_contig(void **state)
{
    (void)state;
    reset();
    add(0x100000, 63 * MiB, BOOTINFO_MEM_USABLE);           /* 1..64 MiB */
    pmm_init(&bi);
    uint64_t free0 = pmm_free_bytes();

    uint64_t a = pmm_alloc_contig(1024, 2 * MiB);           /* 4 MiB, 2 MiB aligned */
    assert_true(a && a % (2 * MiB) == 0 && a >= 0x100000);
    assert_true(a >= pmm_map_phys + pmm_map_bytes || a + 4 * MiB <= pmm_map_phys);
    uint64_t b = pmm_alloc_contig(3, 64 * 1024);
    assert_true(b && b % (64 * 1024) == 0);
    assert_true(b + 3 * PAGE_SIZE <= a || b >= a + 4 * MiB);
    assert_int_equal(pmm_free_bytes(), free0 - (1024 + 3) * PAGE_SIZE);

    /* Dirty a run, free it, get it back zeroed. */
    memset(phys_to_virt(a), 0x5a, 4 * MiB);
    pmm_free_pages(a, 1024);
    assert_int_equal(pmm_free_bytes(), free0 - 3 * PAGE_SIZE);
    uint64_t c = pmm_alloc_contig(1024, 2 * MiB);
    assert_int_equal(c, a);
    for (uint64_t i = 0; i < 4 * MiB; i += 8)
        if (*(uint64_t *)phys_to_virt(c + i))
            fail_msg("contig page not zeroed at %#lx", (unsigned long)(c + i));

    /* Larger than all RAM, and bad arguments. */
    assert_int_equal(pmm_alloc_contig(64 * MiB / PAGE_SIZE, PAGE_SIZE), 0);
    assert_int_equal(pmm_alloc_contig(0, PAGE_SIZE), 0);
    assert_int_equal(pmm_alloc_contig(1, 3 * PAGE_SIZE), 0);
    assert_int_equal(pmm_alloc_contig(1, 2048), 0);
    /* 1 GiB alignment does not exist in 64 MiB of RAM starting at 1 MiB. */
    assert_int_equal(pmm_alloc_contig(1, GiB), 0);
}

static void test_contig_fragmented(void **state)
{
    (void)state;
    reset();
    add(0x100000, 15 * MiB, BOOTINFO_MEM_USABLE);           /* 1..16 MiB */
    pmm_init(&bi);
    /* Take every page, then give back every other one and one run of 8 aligned to
     * 32 KiB: only that run can serve 8 contiguous pages. */
    uint64_t n = drain(pmm_alloc_page, 0x100000, 16 * MiB);
    assert_true(n > 3000);
    for (uint64_t p = 2 * MiB; p < 12 * MiB; p += 2 * PAGE_SIZE)
        pmm_free_pages(p, 1);
    pmm_free_pages(13 * MiB + 0x8000, 8);
    assert_int_equal(pmm_alloc_contig(8, PAGE_SIZE), 13 * MiB + 0x8000);
    assert_int_equal(pmm_alloc_contig(2, PAGE_SIZE), 0);
    assert_int_equal(pmm_alloc_page(), 2 * MiB);
}

static void test_free_checks(void **state)
{
    (void)state;
    pc_map();
    pmm_init(&bi);
    uint64_t p = pmm_alloc_page();
    assert_true(p);
    uint64_t before = pmm_free_bytes();
    pmm_free_pages(p, 1);
    assert_int_equal(pmm_free_bytes(), before + PAGE_SIZE);
    expect_panic(pmm_free_pages(p, 1), "double free");
    expect_panic(pmm_free_pages(bi.kernel_phys, 1), "never handed out");
    expect_panic(pmm_free_pages(0, 1), "never handed out");
    expect_panic(pmm_free_pages(0xf0000, 1), "never handed out");
    expect_panic(pmm_free_pages(p + 8, 1), "not a page range");
    expect_panic(pmm_free_pages(64 * GiB, 1), "not a page range");
    expect_panic(pmm_free_pages(PAGE_SIZE, UINT64_MAX / 2), "not a page range");
    assert_int_equal(pmm_free_bytes(), before + PAGE_SIZE);
}

static void test_next_fit_and_reuse(void **state)
{
    (void)state;
    reset();
    add(0x100000, 0x40000, BOOTINFO_MEM_USABLE);            /* 64 pages */
    pmm_init(&bi);
    uint64_t a = pmm_alloc_page(), b = pmm_alloc_page();
    assert_int_equal(b, a + PAGE_SIZE);
    pmm_free_pages(a, 1);
    /* Next fit: a freed page is not reused until the search wraps. */
    uint64_t c = pmm_alloc_page();
    assert_int_equal(c, b + PAGE_SIZE);
    memset(phys_to_virt(c), 0xff, PAGE_SIZE);
    pmm_free_pages(c, 1);
    drain(pmm_alloc_page, 0x100000, 0x140000);
    assert_int_equal(pmm_free_bytes(), 0);
}

static void test_huge_sparse_map(void **state)
{
    (void)state;
    reset();
    /* A map whose only other RAM sits at 1 TiB: a bitmap reaching it needs 64 MiB,
     * more than the 1 MiB of low RAM, so the top shrinks and a warning says so. */
    add(0x100000, 0x100000, BOOTINFO_MEM_USABLE);
    add(1ull << 40, 0x100000, BOOTINFO_MEM_USABLE);
    pmm_init(&bi);
    assert_int_equal(warnings, 1);
    assert_non_null(strstr(last_warning, "no room below 4 GiB"));
    assert_int_equal(pmm_total_bytes(), 0x100000);
    assert_true(pmm_map_phys >= 0x100000 && pmm_map_phys + pmm_map_bytes <= 0x200000);

    /* Beyond the 64 TiB direct map: clipped with a warning. */
    reset();
    add(0x100000, 0x1000000, BOOTINFO_MEM_USABLE);
    add(PMM_MAX_PHYS - 0x1000, 0x10000, BOOTINFO_MEM_USABLE);
    pmm_init(&bi);
    assert_int_equal(warnings, 2);
    assert_true(pmm_pages <= PMM_MAX_PHYS / PAGE_SIZE);
    assert_int_equal(pmm_total_bytes(), 0x1000000);
}

static void test_low_pages(void **state)
{
    (void)state;
    reset();
    add(0, 0x8000, BOOTINFO_MEM_USABLE);                    /* pages 0..7 */
    add(0x8000, 0x1000, BOOTINFO_MEM_RESERVED);
    add(0x9000, 0x3000, BOOTINFO_MEM_USABLE);               /* pages 9..11 */
    add(0x100000, 0x100000, BOOTINFO_MEM_USABLE);
    pmm_init(&bi);
    uint64_t n = drain(pmm_alloc_low_page, PAGE_SIZE, 0xc000);
    assert_int_equal(n, 7 + 3);
    /* Low pages come back through free. */
    pmm_free_pages(0x9000, 1);
    assert_int_equal(pmm_alloc_low_page(), 0x9000);
    /* pmm_alloc_page never hands out low memory even when high memory is gone. */
    drain(pmm_alloc_page, 0x100000, 0x200000);
    pmm_free_pages(0x3000, 1);
    assert_int_equal(pmm_alloc_page(), 0);
    assert_int_equal(pmm_alloc_contig(1, PAGE_SIZE), 0);
}

static void test_popcount(void **state)
{
    (void)state;
    assert_int_equal(pmm_popcount(0), 0);
    assert_int_equal(pmm_popcount(UINT64_MAX), 64);
    assert_int_equal(pmm_popcount(0x8000000000000001ull), 2);
    assert_int_equal(pmm_popcount(0x0123456789abcdefull), 32);
}

int main(void)
{
    host_phys = mmap(NULL, HOST_PHYS_SIZE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (host_phys == MAP_FAILED) {
        perror("mmap of the test's physical memory");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_popcount),
        cmocka_unit_test(test_pc_totals_and_exclusions),
        cmocka_unit_test(test_unsorted_overlapping),
        cmocka_unit_test(test_modules_hostile),
        cmocka_unit_test(test_bitmap_placement),
        cmocka_unit_test(test_corrupt_bootinfo),
        cmocka_unit_test(test_boot_limit_4g),
        cmocka_unit_test(test_contig),
        cmocka_unit_test(test_contig_fragmented),
        cmocka_unit_test(test_free_checks),
        cmocka_unit_test(test_next_fit_and_reuse),
        cmocka_unit_test(test_huge_sparse_map),
        cmocka_unit_test(test_low_pages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
