/* Guest page walks over crafted tables in a host buffer: each paging mode, large pages,
 * and each fault with the error code the hardware would push. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/emulate/pagewalk.c"

#define GMEM_SIZE (1u << 20)

static uint8_t *gmem;
static unsigned reads;

static int gmem_read(void *ctx, uint64_t gpa, void *buf, size_t len)
{
    assert_ptr_equal(ctx, gmem);
    reads++;
    if (gpa >= GMEM_SIZE || len > GMEM_SIZE - gpa)
        return -1;
    memcpy(buf, gmem + gpa, len);
    return 0;
}

static void put32(uint64_t gpa, uint32_t v) { memcpy(gmem + gpa, &v, 4); }
static void put64(uint64_t gpa, uint64_t v) { memcpy(gmem + gpa, &v, 8); }

#define P  X86_PTE_P
#define RW X86_PTE_RW
#define US X86_PTE_US
#define PS X86_PTE_PS
#define XD X86_PTE_XD

static int setup(void **state)
{
    (void)state;
    gmem = calloc(1, GMEM_SIZE);
    reads = 0;
    return gmem ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    free(gmem);
    return 0;
}

static uint64_t gpa_out;
static uint32_t err_out;

static int walk(const struct x86_paging *pg, uint64_t linear, unsigned access)
{
    gpa_out = ~0ull;
    return x86_walk(pg, linear, access, gmem_read, gmem, &gpa_out, &err_out);
}

#define WALK_OK(pg, lin, acc, want) do {                                   \
        int rc_ = walk((pg), (lin), (acc));                                \
        if (rc_ != X86_WALK_OK)                                            \
            fail_msg("walk %llx: %s, error %x", (unsigned long long)(lin), \
                     x86_walk_status_name(rc_), err_out);                  \
        assert_int_equal(gpa_out, (want));                                 \
    } while (0)
#define WALK_PF(pg, lin, acc, code) do {                                   \
        assert_int_equal(walk((pg), (lin), (acc)), X86_WALK_PAGE_FAULT);   \
        assert_int_equal(err_out, (code));                                 \
    } while (0)

static void test_no_paging(void **state)
{
    (void)state;
    struct x86_paging pg = { .cr0 = 0x11, .maxphyaddr = 40 };
    WALK_OK(&pg, 0x12345678, X86_WALK_WRITE | X86_WALK_USER | X86_WALK_FETCH, 0x12345678);
    WALK_OK(&pg, 0x100000010ull, 0, 0x10);
    assert_int_equal(reads, 0);
}

/* 32-bit paging: CR3 0x1000, PDE 1 -> PT 0x2000, PTE 1 -> 0xabcde000. */
static void test_32bit(void **state)
{
    (void)state;
    struct x86_paging pg = { .cr0 = X86_CR0_PG | 1, .cr3 = 0x1000, .maxphyaddr = 36 };
    put32(0x1000 + 1 * 4, 0x2000 | P | RW | US);
    put32(0x2000 + 1 * 4, 0xabcde000 | P | RW | US);
    WALK_OK(&pg, 0x00401234, X86_WALK_USER | X86_WALK_WRITE, 0xabcde234);

    /* Not present PTE: P = 0, with W and U as the access was. */
    WALK_PF(&pg, 0x00402000, 0, 0);
    WALK_PF(&pg, 0x00402000, X86_WALK_WRITE | X86_WALK_USER, X86_PF_WRITE | X86_PF_USER);
    /* Not present PDE. */
    WALK_PF(&pg, 0x00800000, X86_WALK_WRITE, X86_PF_WRITE);
    /* No execute-disable in 32-bit paging: I/D stays clear without SMEP. */
    WALK_PF(&pg, 0x00402000, X86_WALK_FETCH, 0);

    /* Rights: a supervisor, read-only page. */
    put32(0x2000 + 2 * 4, 0x00055000 | P);
    WALK_OK(&pg, 0x00402010, 0, 0x55010);
    WALK_PF(&pg, 0x00402010, X86_WALK_USER, X86_PF_P | X86_PF_USER);
    WALK_OK(&pg, 0x00402010, X86_WALK_WRITE, 0x55010);       /* CR0.WP = 0 */
    pg.cr0 |= X86_CR0_WP;
    WALK_PF(&pg, 0x00402010, X86_WALK_WRITE, X86_PF_P | X86_PF_WRITE);
    /* A read-only PDE makes the whole region read-only even with a writable PTE. */
    put32(0x1000 + 2 * 4, 0x3000 | P | US);
    put32(0x3000, 0x00066000 | P | RW | US);
    WALK_PF(&pg, 0x00800000, X86_WALK_WRITE | X86_WALK_USER, X86_PF_P | X86_PF_WRITE | X86_PF_USER);
    WALK_OK(&pg, 0x00800000, X86_WALK_USER, 0x66000);

    /* SMEP: a supervisor fetch from a user page faults, with I/D. */
    pg.cr4 |= X86_CR4_SMEP;
    WALK_PF(&pg, 0x00401000, X86_WALK_FETCH, X86_PF_P | X86_PF_FETCH);
    WALK_OK(&pg, 0x00401000, X86_WALK_FETCH | X86_WALK_USER, 0xabcde000);
    /* SMAP: a supervisor data read of a user page faults unless RFLAGS.AC. */
    pg.cr4 |= X86_CR4_SMAP;
    WALK_PF(&pg, 0x00401000, 0, X86_PF_P);
    WALK_OK(&pg, 0x00401000, X86_WALK_AC, 0xabcde000);

    /* Linear addresses are 32 bits: the upper half is ignored. */
    pg.cr4 = 0;
    WALK_OK(&pg, 0xffffffff00401234ull, 0, 0xabcde234);
}

static void test_32bit_pse(void **state)
{
    (void)state;
    struct x86_paging pg = { .cr0 = X86_CR0_PG | 1, .cr3 = 0x1000, .cr4 = X86_CR4_PSE, .maxphyaddr = 36 };
    /* PDE 3: 4 MiB page at 0x00c00000. */
    put32(0x1000 + 3 * 4, 0x00c00000 | PS | P | RW);
    WALK_OK(&pg, 0x00c12345, X86_WALK_WRITE, 0x00c12345);
    /* PSE-36: PDE bits 16:13 are physical address bits 35:32. */
    put32(0x1000 + 4 * 4, 0x01000000 | (0x5u << 13) | PS | P);
    WALK_OK(&pg, 0x01000010, 0, 0x501000010ull);
    /* Bit 21 is reserved; with MAXPHYADDR 36 so is bit 17. */
    put32(0x1000 + 5 * 4, 0x01400000 | (1u << 21) | PS | P);
    WALK_PF(&pg, 0x01400000, 0, X86_PF_P | X86_PF_RSVD);
    put32(0x1000 + 6 * 4, 0x01800000 | (1u << 17) | PS | P);
    WALK_PF(&pg, 0x01800000, X86_WALK_USER, X86_PF_P | X86_PF_RSVD | X86_PF_USER);
    /* With MAXPHYADDR 40 bit 17 is an address bit. */
    pg.maxphyaddr = 40;
    WALK_OK(&pg, 0x01800000, 0, (0x10ull << 32) | 0x01800000);
    /* Without CR4.PSE the PS bit is ignored: the PDE points to a page table. */
    pg.cr4 = 0;
    put32(0x1000 + 7 * 4, 0x4000 | PS | P);
    put32(0x4000, 0x7000 | P);
    WALK_OK(&pg, 0x01c00abc, 0, 0x7abc);
}

/* PAE: CR3 bits 31:5 locate four PDPTEs. */
static void test_pae(void **state)
{
    (void)state;
    struct x86_paging pg = { .cr0 = X86_CR0_PG | 1, .cr3 = 0x3020, .cr4 = X86_CR4_PAE, .maxphyaddr = 36 };
    put64(0x3020 + 1 * 8, 0x4000 | P);                       /* PDPTE 1: 1-2 GiB */
    put64(0x4000 + 2 * 8, 0x5000 | P | RW | US);             /* PDE 2 */
    put64(0x5000 + 3 * 8, 0x876543000ull | P | RW | US);     /* PTE 3, above 4 GiB */
    uint64_t lin = (1ull << 30) | (2ull << 21) | (3ull << 12) | 0x456;
    WALK_OK(&pg, lin, X86_WALK_WRITE | X86_WALK_USER, 0x876543456ull);

    /* PDPTE not present; PDPTE with a frame beyond MAXPHYADDR.  Its low reserved bits
     * (R/W is reserved there; QEMU sets bit 5) the CPU checks when it loads the
     * PDPTEs, not at walks. */
    WALK_PF(&pg, 0, X86_WALK_USER, X86_PF_USER);
    put64(0x3020 + 2 * 8, (1ull << 36) | 0x6000 | P);
    WALK_PF(&pg, 2ull << 30, 0, X86_PF_P | X86_PF_RSVD);
    put64(0x3020 + 2 * 8, 0x4000 | P | RW | (1ull << 5));
    WALK_OK(&pg, (2ull << 30) | (2ull << 21) | (3ull << 12), 0, 0x876543000ull);

    /* 2 MiB page; bit 13 reserved in it. */
    put64(0x4000 + 4 * 8, 0x40000000ull | PS | P | RW);
    WALK_OK(&pg, (1ull << 30) | (4ull << 21) | 0x1abcde, 0, 0x401abcdeull);
    put64(0x4000 + 5 * 8, 0x40200000ull | (1ull << 13) | PS | P);
    WALK_PF(&pg, (1ull << 30) | (5ull << 21), 0, X86_PF_P | X86_PF_RSVD);

    /* Bits 62:MAXPHYADDR reserved: bit 40 with MAXPHYADDR 36. */
    put64(0x5000 + 4 * 8, (1ull << 40) | 0x1000 | P);
    WALK_PF(&pg, (1ull << 30) | (2ull << 21) | (4ull << 12), 0, X86_PF_P | X86_PF_RSVD);

    /* XD: reserved without EFER.NXE; with it, a fetch faults with I/D, a read passes. */
    put64(0x5000 + 5 * 8, XD | 0x9000 | P);
    uint64_t xd_lin = (1ull << 30) | (2ull << 21) | (5ull << 12);
    WALK_PF(&pg, xd_lin, 0, X86_PF_P | X86_PF_RSVD);
    pg.efer = X86_EFER_NXE;
    WALK_PF(&pg, xd_lin, X86_WALK_FETCH, X86_PF_P | X86_PF_FETCH);
    WALK_OK(&pg, xd_lin, 0, 0x9000);
    /* With NXE the I/D bit is reported for a not-present fetch too. */
    WALK_PF(&pg, 0, X86_WALK_FETCH, X86_PF_FETCH);
}

/* 4-level: PML4 0x10000 -> PDPT 0x11000 -> PD 0x12000 -> PT 0x13000. */
static void build_4level(void)
{
    put64(0x10000 + 3 * 8, 0x11000 | P | RW | US);
    put64(0x11000 + 5 * 8, 0x12000 | P | RW | US);
    put64(0x12000 + 7 * 8, 0x13000 | P | RW | US);
    put64(0x13000 + 9 * 8, 0xfee00000ull | P | RW);
}

static const uint64_t lin4 = (3ull << 39) | (5ull << 30) | (7ull << 21) | (9ull << 12) | 0x123;

static void test_4level(void **state)
{
    (void)state;
    struct x86_paging pg = { .cr0 = X86_CR0_PG | X86_CR0_WP | 1, .cr3 = 0x10000,
                             .cr4 = X86_CR4_PAE, .efer = X86_EFER_LMA | X86_EFER_NXE,
                             .maxphyaddr = 40 };
    build_4level();
    WALK_OK(&pg, lin4, X86_WALK_WRITE, 0xfee00123ull);
    WALK_PF(&pg, lin4, X86_WALK_USER, X86_PF_P | X86_PF_USER);   /* PTE is supervisor */

    /* Canonical checks: bit 47 must be copied up. */
    assert_int_equal(walk(&pg, 0x0000800000000000ull, 0), X86_WALK_NONCANONICAL);
    assert_int_equal(walk(&pg, 0xfffe000000000000ull, 0), X86_WALK_NONCANONICAL);
    put64(0x10000 + 256 * 8, 0x14000 | P | RW);
    put64(0x14000, 0x80000000ull | PS | P | RW);                 /* 1 GiB page */
    WALK_OK(&pg, 0xffff800012345678ull, 0, 0x92345678ull);

    /* 1 GiB page with bit 13 set: reserved. */
    put64(0x14000 + 8, 0xc0000000ull | (1ull << 13) | PS | P);
    WALK_PF(&pg, 0xffff800040000000ull, 0, X86_PF_P | X86_PF_RSVD);
    /* 2 MiB page. */
    put64(0x12000 + 8 * 8, 0x200000ull | PS | P | RW | US);
    WALK_OK(&pg, (3ull << 39) | (5ull << 30) | (8ull << 21) | 0x54321, X86_WALK_USER, 0x254321ull);
    /* PML4E with PS: reserved. */
    put64(0x10000 + 4 * 8, 0x15000 | PS | P);
    WALK_PF(&pg, 4ull << 39, X86_WALK_WRITE, X86_PF_P | X86_PF_RSVD | X86_PF_WRITE);
    /* Bits 51:MAXPHYADDR reserved; 62:52 ignored. */
    put64(0x13000 + 10 * 8, (1ull << 45) | 0x1000 | P);
    WALK_PF(&pg, (lin4 & ~0x1fffffull) | (10ull << 12), 0, X86_PF_P | X86_PF_RSVD);
    put64(0x13000 + 11 * 8, (1ull << 55) | 0x2000 | P);
    WALK_OK(&pg, (lin4 & ~0x1fffffull) | (11ull << 12), 0, 0x2000);

    /* XD at the top level forbids fetches below it. */
    put64(0x10000 + 3 * 8, XD | 0x11000 | P | RW | US);
    WALK_PF(&pg, lin4, X86_WALK_FETCH, X86_PF_P | X86_PF_FETCH);
    WALK_OK(&pg, lin4, 0, 0xfee00123ull);
    /* Write to a read-only PDPTE region with CR0.WP. */
    put64(0x10000 + 3 * 8, 0x11000 | P | US);
    WALK_PF(&pg, lin4, X86_WALK_WRITE, X86_PF_P | X86_PF_WRITE);

    /* A table outside guest memory, and unsupported modes. */
    pg.cr3 = 0x7ff000000ull;
    assert_int_equal(walk(&pg, lin4, 0), X86_WALK_READ_FAILED);
    pg.cr4 = 0;
    assert_int_equal(walk(&pg, lin4, 0), X86_WALK_UNSUPPORTED);   /* LMA without PAE */
    pg.cr4 = X86_CR4_PAE;
    pg.maxphyaddr = 60;
    assert_int_equal(walk(&pg, lin4, 0), X86_WALK_UNSUPPORTED);
}

/* 5-level paging (CR4.LA57): the PML5 above the PML4, 57-bit canonical addresses,
 * PML5E bit 7 reserved. */
static void test_5level(void **state)
{
    (void)state;
    memset(gmem, 0, GMEM_SIZE);
    struct x86_paging pg = { .cr0 = X86_CR0_PG | 1, .cr3 = 0x30000, .cr4 = X86_CR4_PAE | X86_CR4_LA57,
                             .efer = X86_EFER_LMA, .maxphyaddr = 46 };
    /* linear 0xff00_8000_0000_1000 (bits 56:48 = 0x100 -> PML5 index 256, bits
     * 63:57 ones): PML5[256] -> PML4[0] -> PDPT[0] -> PD[0] -> PT[1]. */
    uint64_t lin = 0xff00000000001000ull;
    put64(0x30000 + 256 * 8, 0x31000 | P | RW);
    put64(0x31000, 0x32000 | P | RW);
    put64(0x32000, 0x33000 | P | RW);
    put64(0x33000, 0x34000 | P | RW);
    put64(0x34000 + 8, 0x40000 | P | RW);
    WALK_OK(&pg, lin + 0x123, 0, 0x40123);
    /* 4-level rules would call it non-canonical; without LA57 it is. */
    pg.cr4 = X86_CR4_PAE;
    assert_int_equal(walk(&pg, lin, 0), X86_WALK_NONCANONICAL);
    pg.cr4 = X86_CR4_PAE | X86_CR4_LA57;
    /* 57-bit canonical: bit 56 set needs bits 63:57 set. */
    assert_int_equal(walk(&pg, 0x0100000000001000ull, 0), X86_WALK_NONCANONICAL);
    /* PS in a PML5E is reserved. */
    put64(0x30000 + 256 * 8, 0x31000 | P | RW | (1ull << 7));
    WALK_PF(&pg, lin, 0, X86_PF_P | X86_PF_RSVD);
}

/* Reading an instruction that straddles two pages with different frames. */
static void test_read_linear(void **state)
{
    (void)state;
    struct x86_paging pg = { .cr0 = X86_CR0_PG | 1, .cr3 = 0x10000, .cr4 = X86_CR4_PAE,
                             .efer = X86_EFER_LMA, .maxphyaddr = 40 };
    put64(0x10000, 0x11000 | P | RW | US);
    put64(0x11000, 0x12000 | P | RW | US);
    put64(0x12000, 0x13000 | P | RW | US);
    put64(0x13000 + 1 * 8, 0x20000 | P | US);      /* linear 0x1000 -> 0x20000 */
    put64(0x13000 + 2 * 8, 0x30000 | P | US);      /* linear 0x2000 -> 0x30000 */
    memcpy(gmem + 0x20ffc, "\x48\xc7\x05\x00", 4);
    memcpy(gmem + 0x30000, "\x01\x02\x03\x04", 4);

    uint8_t buf[15];
    size_t got;
    uint32_t err;
    assert_int_equal(x86_read_linear(&pg, 0x1ffc, X86_WALK_FETCH, gmem_read, gmem, buf, 8, &got, &err),
                     X86_WALK_OK);
    assert_int_equal(got, 8);
    assert_memory_equal(buf, "\x48\xc7\x05\x00\x01\x02\x03\x04", 8);

    /* The second page missing: the first four bytes, and the fault for the rest. */
    put64(0x13000 + 2 * 8, 0);
    assert_int_equal(x86_read_linear(&pg, 0x1ffc, X86_WALK_FETCH | X86_WALK_USER, gmem_read, gmem,
                                     buf, 15, &got, &err), X86_WALK_PAGE_FAULT);
    assert_int_equal(got, 4);
    assert_int_equal(err, X86_PF_USER);   /* no I/D: NXE and SMEP are off */
}

static void test_status_names(void **state)
{
    (void)state;
    for (int s = X86_WALK_OK; s >= X86_WALK_UNSUPPORTED; s--)
        assert_string_not_equal(x86_walk_status_name(s), "unknown status");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_no_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_32bit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_32bit_pse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pae, setup, teardown),
        cmocka_unit_test_setup_teardown(test_4level, setup, teardown),
        cmocka_unit_test_setup_teardown(test_5level, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_linear, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_names, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
