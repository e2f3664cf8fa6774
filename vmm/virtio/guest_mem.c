#include "vmm/virtio/guest_mem.h"

#include "kernel/string.h"

/* virtio's modern layout is little-endian (virtio 1.2 §1.4); plinth runs on x86-64
 * alone, so guest fields are used as they lie in memory. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "virtio rings are little-endian");

void gmem_init(struct gmem *g, void *base, uint64_t size)
{
    g->base = base;
    g->size = base ? size : 0;
}

bool gmem_contains(const struct gmem *g, uint64_t gpa, uint64_t len)
{
    /* Written as two comparisons that cannot overflow, instead of gpa + len <= size,
     * which a guest defeats with gpa near 2^64. */
    return len != 0 && len <= g->size && gpa <= g->size - len;
}

void *gmem_ptr(const struct gmem *g, uint64_t gpa, uint64_t len)
{
    if (!gmem_contains(g, gpa, len))
        return NULL;
    return g->base + gpa;
}

bool gmem_read(const struct gmem *g, uint64_t gpa, void *buf, uint64_t len)
{
    const void *src = gmem_ptr(g, gpa, len);
    if (!src)
        return false;
    memcpy(buf, src, (size_t)len);
    return true;
}

bool gmem_write(const struct gmem *g, uint64_t gpa, const void *buf, uint64_t len)
{
    void *dst = gmem_ptr(g, gpa, len);
    if (!dst)
        return false;
    memcpy(dst, buf, (size_t)len);
    return true;
}

/* An aligned 2-byte atomic is one instruction on x86-64; an unaligned one (only a
 * misconfigured caller gets here, the rings are aligned) falls back to a copy. */
bool gmem_read_u16(const struct gmem *g, uint64_t gpa, uint16_t *out)
{
    uint8_t *p = gmem_ptr(g, gpa, 2);
    if (!p)
        return false;
    if (((uintptr_t)p & 1) == 0)
        *out = __atomic_load_n((uint16_t *)p, __ATOMIC_RELAXED);
    else
        memcpy(out, p, 2);
    return true;
}

bool gmem_write_u16(const struct gmem *g, uint64_t gpa, uint16_t value)
{
    uint8_t *p = gmem_ptr(g, gpa, 2);
    if (!p)
        return false;
    if (((uintptr_t)p & 1) == 0)
        __atomic_store_n((uint16_t *)p, value, __ATOMIC_RELAXED);
    else
        memcpy(p, &value, 2);
    return true;
}
