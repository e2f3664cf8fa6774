/* The guest page walker (vmm/emulate/pagewalk.c) over page tables made of the
 * fuzzer's bytes (self-referencing and looping ones included: a table may point at
 * itself), in every paging mode and MAXPHYADDR: it reads only 4- or 8-byte entries
 * through its callback, at most one per level, never goes on after a failed read, and
 * a translation it returns keeps the page offset and lies below MAXPHYADDR; a page
 * fault's error code has only the bits a walk can set. */
#include "fuzz.h"
#include "vmm/emulate/pagewalk.c"

#define PHYS_SIZE 0x10000u      /* 16 pages of "guest memory" */

struct mem {
    uint8_t bytes[PHYS_SIZE];
    unsigned reads;
    bool one_walk;          /* reads are one x86_walk's entries */
};

static int read_phys(void *ctx, uint64_t gpa, void *buf, size_t len)
{
    struct mem *m = ctx;
    m->reads++;
    FUZZ_CHECK(!m->one_walk || (m->reads <= 6 && (len == 4 || len == 8)), "read %u (%zu bytes) in one walk",
               m->reads, len);
    if (gpa >= PHYS_SIZE || len > PHYS_SIZE - gpa)
        return -1;
    memcpy(buf, m->bytes + gpa, len);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = { data, size };
    static struct mem m;
    struct x86_paging pg = {
        .cr0 = fz_u32(&in) | X86_CR0_PG, .cr3 = fz_u64(&in) & 0xffff, .cr4 = fz_u32(&in),
        .efer = fz_u16(&in) & (X86_EFER_LMA | X86_EFER_NXE), .maxphyaddr = 28 + fz_below(&in, 28),
    };
    uint64_t linear = fz_u64(&in);
    unsigned access = fz_u8(&in) & 0xf;
    fz_bytes(&in, m.bytes, sizeof m.bytes);
    m.reads = 0;
    m.one_walk = true;
    uint64_t gpa = ~0ull;
    uint32_t pf = ~0u;
    int rc = x86_walk(&pg, linear, access, read_phys, &m, &gpa, &pf);
    FUZZ_CHECK(rc <= 0 && rc >= X86_WALK_UNSUPPORTED, "status %d", rc);
    if (pg.maxphyaddr < 32 || pg.maxphyaddr > 52) {
        FUZZ_CHECK(rc == X86_WALK_UNSUPPORTED, "MAXPHYADDR %u accepted", pg.maxphyaddr);
        return 0;
    }
    if (rc == X86_WALK_OK) {
        FUZZ_CHECK((gpa & 0xfff) == (linear & 0xfff), "offset %#lx for linear %#lx", (unsigned long)gpa,
                   (unsigned long)linear);
        FUZZ_CHECK(gpa < (1ull << pg.maxphyaddr), "gpa %#lx beyond MAXPHYADDR %u", (unsigned long)gpa,
                   pg.maxphyaddr);
    }
    if (rc == X86_WALK_PAGE_FAULT) {
        FUZZ_CHECK((pf & ~0x1fu) == 0, "error code %#x", pf);
        FUZZ_CHECK(!(pf & X86_PF_RSVD) || (pf & X86_PF_P), "RSVD without P: %#x", pf);
        FUZZ_CHECK(!!(pf & X86_PF_WRITE) == !!(access & X86_WALK_WRITE), "W bit %#x for access %#x", pf, access);
        FUZZ_CHECK(!!(pf & X86_PF_USER) == !!(access & X86_WALK_USER), "U bit %#x for access %#x", pf, access);
    }
    /* A linear read across pages: no more bytes than asked, status of the first failure. */
    uint8_t buf[32];
    size_t got = ~(size_t)0;
    m.one_walk = false;
    uint64_t at = (linear & ~0xfffull) | 0xff0;
    int r2 = x86_read_linear(&pg, at, access, read_phys, &m, buf, sizeof buf, &got, &pf);
    FUZZ_CHECK(got <= sizeof buf && (r2 != X86_WALK_OK || got == sizeof buf), "read %zu bytes, status %d", got, r2);
    return 0;
}
