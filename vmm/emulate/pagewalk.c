/* Guest page-table walk (Intel SDM Vol. 3A chapter 4: 4.3 32-bit paging, 4.4 PAE
 * paging, 4.5 4-level paging, 4.6 access rights, 4.7 page-fault exceptions). */
#include "vmm/emulate/pagewalk.h"

#define X86_PTE_P    (1ull << 0)
#define X86_PTE_RW   (1ull << 1)
#define X86_PTE_US   (1ull << 2)
#define X86_PTE_PS   (1ull << 7)
#define X86_PTE_XD   (1ull << 63)

const char *x86_walk_status_name(int status)
{
    switch (status) {
    case X86_WALK_OK:           return "ok";
    case X86_WALK_PAGE_FAULT:   return "page fault";
    case X86_WALK_NONCANONICAL: return "non-canonical address";
    case X86_WALK_READ_FAILED:  return "paging structure outside guest memory";
    case X86_WALK_UNSUPPORTED:  return "unsupported paging mode";
    }
    return "unknown status";
}

/* Bits hi..lo set. */
static uint64_t x86_bits(unsigned hi, unsigned lo)
{
    if (hi < lo)
        return 0;
    uint64_t upper = hi >= 63 ? ~0ull : (1ull << (hi + 1)) - 1;
    return upper & ~((1ull << lo) - 1);
}

static int x86_read_entry(x86_read_phys_fn read_phys, void *ctx, uint64_t gpa, unsigned size,
                          uint64_t *val)
{
    uint8_t b[8];
    if (read_phys(ctx, gpa, b, size))
        return X86_WALK_READ_FAILED;
    uint64_t v = 0;
    for (unsigned i = 0; i < size; i++)
        v |= (uint64_t)b[i] << (8 * i);
    *val = v;
    return X86_WALK_OK;
}

struct x86_walk_state {
    uint32_t err;        /* W, U and I/D bits of the error code, fixed by the access */
    bool     rw_all;     /* R/W = 1 at every level */
    bool     us_all;     /* U/S = 1 at every level */
    bool     xd_any;     /* XD = 1 at some level */
};

static int x86_walk_fault(const struct x86_walk_state *st, uint32_t bits, uint32_t *pf_error)
{
    *pf_error = st->err | bits;
    return X86_WALK_PAGE_FAULT;
}

/* Present and reserved-bit checks of one entry, then fold its rights in. */
static int x86_walk_entry(struct x86_walk_state *st, uint64_t entry, uint64_t reserved,
                          uint32_t *pf_error)
{
    if (!(entry & X86_PTE_P))
        return x86_walk_fault(st, 0, pf_error);
    if (entry & reserved)
        return x86_walk_fault(st, X86_PF_P | X86_PF_RSVD, pf_error);
    st->rw_all = st->rw_all && (entry & X86_PTE_RW);
    st->us_all = st->us_all && (entry & X86_PTE_US);
    st->xd_any = st->xd_any || (entry & X86_PTE_XD);
    return X86_WALK_OK;
}

/* Access rights of the completed translation (SDM Vol. 3A 4.6.1). */
static int x86_walk_rights(const struct x86_paging *pg, const struct x86_walk_state *st,
                           unsigned access, bool nx_paging, uint32_t *pf_error)
{
    bool user = access & X86_WALK_USER, write = access & X86_WALK_WRITE;
    bool fetch = access & X86_WALK_FETCH;
    bool fault;
    if (user) {
        fault = !st->us_all || (write && !st->rw_all) ||
                (fetch && nx_paging && st->xd_any);
    } else if (fetch) {
        fault = (nx_paging && st->xd_any) || ((pg->cr4 & X86_CR4_SMEP) && st->us_all);
    } else {
        fault = (write && (pg->cr0 & X86_CR0_WP) && !st->rw_all) ||
                ((pg->cr4 & X86_CR4_SMAP) && st->us_all && !(access & X86_WALK_AC));
    }
    return fault ? x86_walk_fault(st, X86_PF_P, pf_error) : X86_WALK_OK;
}

static int x86_walk_32bit(const struct x86_paging *pg, struct x86_walk_state *st, uint64_t linear,
                          unsigned access, x86_read_phys_fn read_phys, void *ctx,
                          uint64_t *gpa, uint32_t *pf_error)
{
    uint64_t pde, pte;
    int rc = x86_read_entry(read_phys, ctx, (pg->cr3 & 0xfffff000ull) + ((linear >> 22) & 0x3ff) * 4,
                            4, &pde);
    if (rc)
        return rc;
    if ((pde & X86_PTE_PS) && (pg->cr4 & X86_CR4_PSE)) {
        /* 4 MiB page, PSE-36: PDE bits (M-20):13 are physical address bits (M-1):32,
         * bits 20:(M-19) and 21 reserved, M = min(MAXPHYADDR, 40) (SDM Vol. 3A Table 4-4). */
        unsigned m = pg->maxphyaddr < 40 ? pg->maxphyaddr : 40;
        rc = x86_walk_entry(st, pde, x86_bits(21, m - 19), pf_error);
        if (rc)
            return rc;
        rc = x86_walk_rights(pg, st, access, false, pf_error);
        if (rc)
            return rc;
        uint64_t high = (pde >> 13) & ((1ull << (m - 32)) - 1);
        *gpa = (high << 32) | (pde & 0xffc00000ull) | (linear & 0x3fffffull);
        return X86_WALK_OK;
    }
    rc = x86_walk_entry(st, pde, 0, pf_error);
    if (rc)
        return rc;
    rc = x86_read_entry(read_phys, ctx, (pde & 0xfffff000ull) + ((linear >> 12) & 0x3ff) * 4, 4, &pte);
    if (rc)
        return rc;
    rc = x86_walk_entry(st, pte, 0, pf_error);
    if (rc)
        return rc;
    rc = x86_walk_rights(pg, st, access, false, pf_error);
    if (rc)
        return rc;
    *gpa = (pte & 0xfffff000ull) | (linear & 0xfff);
    return X86_WALK_OK;
}

/* PAE and 4-level paging share 8-byte entries; they differ in the top levels and in
 * which high bits are reserved (PAE: 62:M; 4-level: 51:M, Tables 4-8..4-20). */
static int x86_walk_long(const struct x86_paging *pg, struct x86_walk_state *st, uint64_t linear,
                         unsigned access, x86_read_phys_fn read_phys, void *ctx,
                         uint64_t *gpa, uint32_t *pf_error)
{
    bool four_level = pg->efer & X86_EFER_LMA;
    /* 5-level paging (CR4.LA57): one more table above the PML4, and 57-bit
     * canonical addresses (SDM Vol. 3A §4.5.1). */
    bool five_level = four_level && (pg->cr4 & X86_CR4_LA57);
    bool nxe = pg->efer & X86_EFER_NXE;
    unsigned m = pg->maxphyaddr;
    uint64_t addr_mask = x86_bits(m - 1, 12);
    uint64_t rsvd_high = (four_level ? x86_bits(51, m) : x86_bits(62, m)) | (nxe ? 0 : X86_PTE_XD);
    uint64_t table, entry;
    int level, rc;

    if (four_level) {
        unsigned unused = five_level ? 7 : 16;
        if (((int64_t)(linear << unused) >> unused) != (int64_t)linear)
            return X86_WALK_NONCANONICAL;
        table = pg->cr3 & addr_mask;
        level = five_level ? 5 : 4;
    } else {
        /* PDPTE: CR3 bits 31:5 locate the four entries; no R/W, U/S or XD (SDM Vol. 3A
         * Table 4-8).  Its other reserved bits (2:1, 8:5) the CPU checks when it loads
         * the four entries at a MOV to CR3/CR0/CR4 (§4.4.1), not at each walk (QEMU's
         * TCG even sets bit 5, "accessed", in them): the guest's instruction ran with
         * these entries, so only a frame beyond MAXPHYADDR stops the walk here. */
        linear &= 0xffffffffull;
        rc = x86_read_entry(read_phys, ctx, (pg->cr3 & 0xffffffe0ull) + ((linear >> 30) & 3) * 8,
                            8, &entry);
        if (rc)
            return rc;
        if (!(entry & X86_PTE_P))
            return x86_walk_fault(st, 0, pf_error);
        if (entry & x86_bits(63, m))
            return x86_walk_fault(st, X86_PF_P | X86_PF_RSVD, pf_error);
        table = entry & addr_mask;
        level = 2;
    }

    for (;; level--) {
        unsigned shift = 12 + 9 * (unsigned)(level - 1);
        rc = x86_read_entry(read_phys, ctx, table + ((linear >> shift) & 0x1ff) * 8, 8, &entry);
        if (rc)
            return rc;
        bool large = level <= 3 && level >= 2 && (entry & X86_PTE_PS);
        uint64_t reserved = rsvd_high;
        if (level >= 4)
            reserved |= X86_PTE_PS;                  /* PML5E/PML4E bit 7 is reserved */
        if (large)
            reserved |= x86_bits(shift - 1, 13);     /* below the page frame, above PAT */
        rc = x86_walk_entry(st, entry, reserved, pf_error);
        if (rc)
            return rc;
        if (large || level == 1) {
            rc = x86_walk_rights(pg, st, access, nxe, pf_error);
            if (rc)
                return rc;
            uint64_t offset_mask = (1ull << shift) - 1;
            *gpa = (entry & addr_mask & ~offset_mask) | (linear & offset_mask);
            return X86_WALK_OK;
        }
        table = entry & addr_mask;
    }
}

int x86_walk(const struct x86_paging *pg, uint64_t linear, unsigned access,
             x86_read_phys_fn read_phys, void *ctx, uint64_t *gpa, uint32_t *pf_error)
{
    *pf_error = 0;
    if (!(pg->cr0 & X86_CR0_PG)) {
        *gpa = linear & 0xffffffffull;
        return X86_WALK_OK;
    }
    if (pg->maxphyaddr < 32 || pg->maxphyaddr > 52)
        return X86_WALK_UNSUPPORTED;
    bool pae = pg->cr4 & X86_CR4_PAE;
    bool lma = pg->efer & X86_EFER_LMA;
    if (lma && !pae)
        return X86_WALK_UNSUPPORTED;

    struct x86_walk_state st = { .rw_all = true, .us_all = true, .xd_any = false };
    if (access & X86_WALK_WRITE)
        st.err |= X86_PF_WRITE;
    if (access & X86_WALK_USER)
        st.err |= X86_PF_USER;
    /* I/D is reported only where execute-disable or SMEP exists (SDM Vol. 3A 4.7). */
    if ((access & X86_WALK_FETCH) &&
        ((pg->cr4 & X86_CR4_SMEP) || (pae && (pg->efer & X86_EFER_NXE))))
        st.err |= X86_PF_FETCH;

    if (!pae)
        return x86_walk_32bit(pg, &st, linear & 0xffffffffull, access, read_phys, ctx, gpa, pf_error);
    return x86_walk_long(pg, &st, linear, access, read_phys, ctx, gpa, pf_error);
}

int x86_read_linear(const struct x86_paging *pg, uint64_t linear, unsigned access,
                    x86_read_phys_fn read_phys, void *ctx, void *buf, size_t len,
                    size_t *got, uint32_t *pf_error)
{
    uint8_t *out = buf;
    *got = 0;
    *pf_error = 0;
    while (*got < len) {
        uint64_t at = linear + *got, gpa;
        int rc = x86_walk(pg, at, access, read_phys, ctx, &gpa, pf_error);
        if (rc)
            return rc;
        size_t chunk = 4096 - (size_t)(at & 0xfff);
        if (chunk > len - *got)
            chunk = len - *got;
        if (read_phys(ctx, gpa, out + *got, chunk))
            return X86_WALK_READ_FAILED;
        *got += chunk;
    }
    return X86_WALK_OK;
}
