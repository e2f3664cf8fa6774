#include "arch/x86_64/vmx/ept.h"

/* Entry bits (SDM Vol. 3C Tables 29-1..29-6): read, write, supervisor execute,
 * memory type 5:3 and "ignore PAT" 6 in leaves, page size 7 in PDPTEs and PDEs. */
#define EPT_R          (1ull << 0)
#define EPT_W          (1ull << 1)
#define EPT_X          (1ull << 2)
#define EPT_MT_SHIFT   3
#define EPT_IGNORE_PAT (1ull << 6)
#define EPT_LARGE      (1ull << 7)
#define EPT_ADDR_MASK  0x000ffffffffff000ull

static uint64_t ept_leaf(uint64_t hpa, unsigned level, unsigned perms, enum gpt_memtype mt)
{
    uint64_t e = hpa & EPT_ADDR_MASK;
    if (perms & GPT_PERM_R) e |= EPT_R;
    if (perms & GPT_PERM_W) e |= EPT_W;
    if (perms & GPT_PERM_X) e |= EPT_X;
    /* The EPT memory type alone decides: plinth chooses it per region (WB RAM, UC
     * device memory), so the guest's PAT must not weaken isolation of MMIO. */
    e |= (uint64_t)mt << EPT_MT_SHIFT | EPT_IGNORE_PAT;
    if (level > 0)
        e |= EPT_LARGE;
    return e;
}

static uint64_t ept_table(uint64_t phys)
{
    /* Non-leaf entries: full permissions, the leaves restrict (§29.3.3). */
    return (phys & EPT_ADDR_MASK) | EPT_R | EPT_W | EPT_X;
}

static bool ept_present(uint64_t e)
{
    /* An entry is present if any of bits 2:0 is set (§29.3.2). */
    return (e & (EPT_R | EPT_W | EPT_X)) != 0;
}

static bool ept_is_large(uint64_t e)
{
    return (e & EPT_LARGE) != 0;
}

static unsigned ept_leaf_perms(uint64_t e)
{
    return ((e & EPT_R) ? GPT_PERM_R : 0) | ((e & EPT_W) ? GPT_PERM_W : 0) |
           ((e & EPT_X) ? GPT_PERM_X : 0);
}

static enum gpt_memtype ept_leaf_memtype(uint64_t e)
{
    return (enum gpt_memtype)((e >> EPT_MT_SHIFT) & 7);
}

const struct gpt_format ept_format = {
    .leaf = ept_leaf, .table = ept_table, .present = ept_present, .is_large = ept_is_large,
    .leaf_perms = ept_leaf_perms, .leaf_memtype = ept_leaf_memtype,
};

uint64_t ept_pointer(const struct gpt *g)
{
    const uint64_t wb = 6, walk_length_minus_1 = 3;
    return (g->root & EPT_ADDR_MASK) | walk_length_minus_1 << 3 | wb;
}
