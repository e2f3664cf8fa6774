#include "arch/x86_64/svm/npt.h"

/* Nested walks are user accesses (APM §15.25.5), so every entry carries U/S.
 * Memory type comes from PCD/PWT with the host PAT (plinth's PAT keeps the reset
 * layout: entry 0 WB, entry 3 UC), combined with the guest's. */
#define NPT_P      (1ull << 0)
#define NPT_RW     (1ull << 1)
#define NPT_US     (1ull << 2)
#define NPT_PWT    (1ull << 3)
#define NPT_PCD    (1ull << 4)
#define NPT_PS     (1ull << 7)
#define NPT_NX     (1ull << 63)
#define NPT_ADDR_MASK 0x000ffffffffff000ull

static uint64_t npt_leaf(uint64_t hpa, unsigned level, unsigned perms, enum gpt_memtype mt)
{
    uint64_t e = (hpa & NPT_ADDR_MASK) | NPT_US;
    /* No read-only-and-not-present distinction exists: R is implied by P. */
    if (perms & GPT_PERM_RWX) e |= NPT_P;
    if (perms & GPT_PERM_W) e |= NPT_RW;
    if (!(perms & GPT_PERM_X)) e |= NPT_NX;
    if (mt == GPT_MEM_UC) e |= NPT_PCD | NPT_PWT;
    if (level > 0)
        e |= NPT_PS;
    return e;
}

static uint64_t npt_table(uint64_t phys)
{
    return (phys & NPT_ADDR_MASK) | NPT_P | NPT_RW | NPT_US;
}

static bool npt_present(uint64_t e)
{
    return (e & NPT_P) != 0;
}

static bool npt_is_large(uint64_t e)
{
    return (e & NPT_PS) != 0;
}

static unsigned npt_leaf_perms(uint64_t e)
{
    if (!(e & NPT_P))
        return 0;
    return GPT_PERM_R | ((e & NPT_RW) ? GPT_PERM_W : 0) | ((e & NPT_NX) ? 0 : GPT_PERM_X);
}

static enum gpt_memtype npt_leaf_memtype(uint64_t e)
{
    return (e & NPT_PCD) ? GPT_MEM_UC : GPT_MEM_WB;
}

const struct gpt_format npt_format = {
    .leaf = npt_leaf, .table = npt_table, .present = npt_present, .is_large = npt_is_large,
    .leaf_perms = npt_leaf_perms, .leaf_memtype = npt_leaf_memtype,
};

uint64_t npt_cr3(const struct gpt *g)
{
    return g->root & NPT_ADDR_MASK;
}
