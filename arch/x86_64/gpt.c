#include "arch/x86_64/gpt.h"

#define GPT_LEVELS      4
#define GPT_ENTRIES     512
#define GPT_ADDR_MASK   0x000ffffffffff000ull
#define GPT_GPA_LIMIT   (1ull << 48)

static uint64_t level_size(unsigned level)
{
    return 1ull << (12 + 9 * level);
}

static unsigned level_index(uint64_t gpa, unsigned level)
{
    return (gpa >> (12 + 9 * level)) & (GPT_ENTRIES - 1);
}

static uint64_t *table_at(const struct gpt *g, uint64_t phys)
{
    return g->ops.phys_to_virt(g->ops.ctx, phys);
}

static uint64_t new_table(struct gpt *g)
{
    uint64_t p = g->ops.alloc_page(g->ops.ctx);
    if (p)
        g->table_pages++;
    return p;
}

enum gpt_status gpt_init(struct gpt *g, const struct gpt_format *fmt, const struct gpt_ops *ops,
                         bool allow_2m, bool allow_1g)
{
    *g = (struct gpt){ .fmt = fmt, .ops = *ops, .allow_2m = allow_2m, .allow_1g = allow_1g };
    g->root = new_table(g);
    return g->root ? GPT_OK : GPT_ERR_NOMEM;
}

static bool level_allowed(const struct gpt *g, unsigned level)
{
    return level == 0 || (level == 1 && g->allow_2m) || (level == 2 && g->allow_1g);
}

/* Replaces the large leaf at *slot (level 1 or 2) with a table of the next level
 * down carrying the same translation. */
static enum gpt_status split(struct gpt *g, uint64_t *slot, unsigned level)
{
    uint64_t e = *slot;
    uint64_t t = new_table(g);
    if (!t)
        return GPT_ERR_NOMEM;
    uint64_t *child = table_at(g, t);
    uint64_t base = e & GPT_ADDR_MASK & ~(level_size(level) - 1);
    unsigned perms = g->fmt->leaf_perms(e);
    enum gpt_memtype mt = g->fmt->leaf_memtype(e);
    for (unsigned i = 0; i < GPT_ENTRIES; i++)
        child[i] = g->fmt->leaf(base + i * level_size(level - 1), level - 1, perms, mt);
    *slot = g->fmt->table(t);
    return GPT_OK;
}

/* Is any part of [gpa, gpa+size) mapped?  For gpt_map's all-or-nothing rule. */
static bool any_mapped(const struct gpt *g, uint64_t table, unsigned level, uint64_t gpa, uint64_t end)
{
    uint64_t *t = table_at(g, table);
    while (gpa < end) {
        uint64_t sz = level_size(level);
        uint64_t next = (gpa & ~(sz - 1)) + sz;
        if (next > end || next == 0)
            next = end;
        uint64_t e = t[level_index(gpa, level)];
        if (g->fmt->present(e)) {
            if (level == 0 || g->fmt->is_large(e))
                return true;
            if (any_mapped(g, e & GPT_ADDR_MASK, level - 1, gpa, next))
                return true;
        }
        gpa = next;
    }
    return false;
}

static enum gpt_status map_range(struct gpt *g, uint64_t table, unsigned level, uint64_t gpa,
                                 uint64_t hpa, uint64_t end, unsigned perms, enum gpt_memtype mt)
{
    uint64_t *t = table_at(g, table);
    while (gpa < end) {
        uint64_t sz = level_size(level);
        uint64_t *slot = &t[level_index(gpa, level)];
        if (level_allowed(g, level) && !(gpa & (sz - 1)) && !(hpa & (sz - 1)) && end - gpa >= sz) {
            *slot = g->fmt->leaf(hpa, level, perms, mt);
        } else {
            if (!g->fmt->present(*slot)) {
                uint64_t child = new_table(g);
                if (!child)
                    return GPT_ERR_NOMEM;
                *slot = g->fmt->table(child);
            }
            uint64_t next = (gpa & ~(sz - 1)) + sz;
            uint64_t stop = next < end && next != 0 ? next : end;
            enum gpt_status st = map_range(g, *slot & GPT_ADDR_MASK, level - 1, gpa, hpa, stop, perms, mt);
            if (st != GPT_OK)
                return st;
            hpa += stop - gpa;
            gpa = stop;
            continue;
        }
        gpa += sz;
        hpa += sz;
    }
    return GPT_OK;
}

/* Clears [gpa, end) under table; frees tables that become empty.  Large pages that
 * straddle an edge are split first (which may need memory). */
static enum gpt_status unmap_range(struct gpt *g, uint64_t table, unsigned level, uint64_t gpa, uint64_t end)
{
    uint64_t *t = table_at(g, table);
    while (gpa < end) {
        uint64_t sz = level_size(level);
        uint64_t start = gpa & ~(sz - 1);
        uint64_t next = start + sz;
        uint64_t stop = next < end && next != 0 ? next : end;
        uint64_t *slot = &t[level_index(gpa, level)];
        if (g->fmt->present(*slot)) {
            bool whole = gpa == start && stop == next;
            if (level == 0 || (g->fmt->is_large(*slot) && whole)) {
                *slot = 0;
            } else {
                if (g->fmt->is_large(*slot)) {
                    enum gpt_status st = split(g, slot, level);
                    if (st != GPT_OK)
                        return st;
                }
                uint64_t child = *slot & GPT_ADDR_MASK;
                enum gpt_status st = unmap_range(g, child, level - 1, gpa, stop);
                if (st != GPT_OK)
                    return st;
                uint64_t *c = table_at(g, child);
                bool empty = true;
                for (unsigned i = 0; i < GPT_ENTRIES && empty; i++)
                    empty = !g->fmt->present(c[i]);
                if (empty) {
                    *slot = 0;
                    g->ops.free_page(g->ops.ctx, child);
                    g->table_pages--;
                }
            }
        }
        gpa = stop;
    }
    return GPT_OK;
}

static enum gpt_status check_range(uint64_t gpa, uint64_t hpa, uint64_t size)
{
    if ((gpa | hpa | size) & 0xfff)
        return GPT_ERR_ALIGN;
    if (size == 0 || gpa + size < gpa || gpa + size > GPT_GPA_LIMIT || hpa + size < hpa ||
        hpa + size > (GPT_ADDR_MASK | 0xfff) + 1)
        return GPT_ERR_RANGE;
    return GPT_OK;
}

enum gpt_status gpt_map(struct gpt *g, uint64_t gpa, uint64_t hpa, uint64_t size,
                        unsigned perms, enum gpt_memtype mt)
{
    enum gpt_status st = check_range(gpa, hpa, size);
    if (st != GPT_OK)
        return st;
    if (any_mapped(g, g->root, GPT_LEVELS - 1, gpa, gpa + size))
        return GPT_ERR_MAPPED;
    st = map_range(g, g->root, GPT_LEVELS - 1, gpa, hpa, gpa + size, perms, mt);
    if (st != GPT_OK) {
        /* Nothing was mapped there before, so removing the range restores the old
         * state; it needs no split (only whole new leaves and new tables exist). */
        unmap_range(g, g->root, GPT_LEVELS - 1, gpa, gpa + size);
    }
    return st;
}

enum gpt_status gpt_unmap(struct gpt *g, uint64_t gpa, uint64_t size)
{
    enum gpt_status st = check_range(gpa, 0, size);
    if (st != GPT_OK)
        return st;
    return unmap_range(g, g->root, GPT_LEVELS - 1, gpa, gpa + size);
}

bool gpt_translate(const struct gpt *g, uint64_t gpa, uint64_t *hpa, unsigned *perms,
                   enum gpt_memtype *mt, unsigned *level)
{
    if (gpa >= GPT_GPA_LIMIT)
        return false;
    uint64_t table = g->root;
    for (unsigned l = GPT_LEVELS; l-- > 0;) {
        uint64_t e = table_at(g, table)[level_index(gpa, l)];
        if (!g->fmt->present(e))
            return false;
        if (l == 0 || g->fmt->is_large(e)) {
            uint64_t sz = level_size(l);
            *hpa = (e & GPT_ADDR_MASK & ~(sz - 1)) + (gpa & (sz - 1));
            *perms = g->fmt->leaf_perms(e);
            *mt = g->fmt->leaf_memtype(e);
            *level = l;
            return true;
        }
        table = e & GPT_ADDR_MASK;
    }
    return false;
}

static void destroy_table(struct gpt *g, uint64_t table, unsigned level)
{
    uint64_t *t = table_at(g, table);
    if (level > 0)
        for (unsigned i = 0; i < GPT_ENTRIES; i++)
            if (g->fmt->present(t[i]) && !g->fmt->is_large(t[i]))
                destroy_table(g, t[i] & GPT_ADDR_MASK, level - 1);
    g->ops.free_page(g->ops.ctx, table);
}

void gpt_destroy(struct gpt *g)
{
    if (g->root)
        destroy_table(g, g->root, GPT_LEVELS - 1);
    g->root = 0;
    g->table_pages = 0;
}
