/* Guest-physical translation tables: the 4-level radix tree that EPT (VT-x) and
 * NPT (AMD-V) both are.  One mechanism builds, splits and walks them; each backend
 * supplies only its entry format (vmx/ept.c, svm/npt.c).  Pure: table pages come from
 * and are reached through callbacks, so the host unit tests run it unchanged. */
#ifndef PLINTH_ARCH_GPT_H
#define PLINTH_ARCH_GPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GPT_PERM_R 1u
#define GPT_PERM_W 2u
#define GPT_PERM_X 4u
#define GPT_PERM_RWX (GPT_PERM_R | GPT_PERM_W | GPT_PERM_X)

enum gpt_memtype { GPT_MEM_UC = 0, GPT_MEM_WB = 6 };

/* Level 3 = PML4 entries (512 GiB each) ... level 0 = 4 KiB page entries. */
struct gpt_format {
    /* Encodes a leaf mapping hpa at level 0 (4 KiB), 1 (2 MiB) or 2 (1 GiB). */
    uint64_t (*leaf)(uint64_t hpa, unsigned level, unsigned perms, enum gpt_memtype mt);
    /* Encodes a pointer to the next-level table at phys. */
    uint64_t (*table)(uint64_t phys);
    bool     (*present)(uint64_t entry);
    /* A leaf at level 1 or 2 (large page); level 0 entries are always leaves. */
    bool     (*is_large)(uint64_t entry);
    /* Decodes a leaf back: its perms and memory type (for splitting and walking). */
    unsigned (*leaf_perms)(uint64_t entry);
    enum gpt_memtype (*leaf_memtype)(uint64_t entry);
};

struct gpt_ops {
    /* A zeroed 4 KiB page: its physical address, 0 when out of memory. */
    uint64_t (*alloc_page)(void *ctx);
    void     (*free_page)(void *ctx, uint64_t phys);
    /* Where the core (or the test) reaches a table page. */
    void    *(*phys_to_virt)(void *ctx, uint64_t phys);
    void    *ctx;
};

struct gpt {
    const struct gpt_format *fmt;
    struct gpt_ops ops;
    uint64_t root;          /* physical address of the top-level table */
    bool     allow_2m, allow_1g;
    uint64_t table_pages;   /* pages of tables, for statistics */
};

enum gpt_status {
    GPT_OK = 0,
    GPT_ERR_NOMEM,          /* no page for a table */
    GPT_ERR_ALIGN,          /* gpa, hpa or size not 4 KiB aligned */
    GPT_ERR_RANGE,          /* beyond 48-bit guest-physical or wraps */
    GPT_ERR_MAPPED,         /* part of the range is mapped already */
};

enum gpt_status gpt_init(struct gpt *g, const struct gpt_format *fmt, const struct gpt_ops *ops,
                         bool allow_2m, bool allow_1g);
/* Maps [gpa, gpa+size) onto [hpa, hpa+size) with the largest pages alignment and the
 * allowed sizes permit.  All or nothing: on failure nothing new stays mapped. */
enum gpt_status gpt_map(struct gpt *g, uint64_t gpa, uint64_t hpa, uint64_t size,
                        unsigned perms, enum gpt_memtype mt);
/* Unmaps [gpa, gpa+size), splitting large pages that straddle its edges.  Returns
 * GPT_ERR_NOMEM if a split needed a table page (the range is then left as it was). */
enum gpt_status gpt_unmap(struct gpt *g, uint64_t gpa, uint64_t size);
/* Walks gpa: true and the host address, perms, memtype and page level if mapped. */
bool gpt_translate(const struct gpt *g, uint64_t gpa, uint64_t *hpa, unsigned *perms,
                   enum gpt_memtype *mt, unsigned *level);
/* Frees every table page (not the memory the tables map). */
void gpt_destroy(struct gpt *g);

#endif
