/* Physical page allocator: two bitmaps over [0, top of usable RAM), one bit per page.
 * "managed" marks the pages the allocator may ever hand out (usable RAM minus page 0,
 * anything another memory-map entry also claims, the image, the modules and the
 * bitmaps themselves); "free" marks those not handed out now.  The bitmaps live in
 * usable RAM found at boot and are reached through phys_to_virt, so they follow the
 * switch from the boot identity map to the direct map.
 *
 * Not for interrupt handlers: the lock does not mask interrupts. */
#include "kernel/pmm.h"
#include "kernel/spinlock.h"
#include "kernel/log.h"
#include "kernel/panic.h"
#include "arch/x86_64/cpu/paging.h"

#include <stdbool.h>

#define PMM_LOW_END     0x100000ull      /* below: only pmm_alloc_low_page */
#define PMM_BOOT_LIMIT  0x100000000ull   /* reach of the boot identity map */
#define PMM_NONE        UINT64_MAX

static struct spinlock pmm_lock;
static uint64_t pmm_map_phys;     /* free bitmap, then the managed bitmap */
static uint64_t pmm_map_bytes;
static uint64_t pmm_words;        /* 64-bit words per bitmap */
static uint64_t pmm_pages;        /* pages covered: [0, pmm_pages) */
static uint64_t pmm_limit;        /* allocations end below this page */
static uint64_t pmm_next;         /* next-fit hint for single pages */
static uint64_t pmm_total_pages;
static uint64_t pmm_free_count;

static inline uint64_t pmm_align_down(uint64_t x) { return x & ~(PAGE_SIZE - 1); }

static inline uint64_t pmm_align_up(uint64_t x)
{
    return x > UINT64_MAX - (PAGE_SIZE - 1) ? pmm_align_down(UINT64_MAX) : pmm_align_down(x + PAGE_SIZE - 1);
}

static inline uint64_t *pmm_free_map(void) { return phys_to_virt(pmm_map_phys); }
static inline uint64_t *pmm_managed_map(void) { return pmm_free_map() + pmm_words; }

static inline bool pmm_test(const uint64_t *map, uint64_t page)
{
    return map[page / 64] >> (page % 64) & 1;
}

/* Sets or clears the bits of pages [first, end), clipped to the bitmap. */
static void pmm_assign(uint64_t *map, uint64_t first, uint64_t end, bool value)
{
    if (end > pmm_pages)
        end = pmm_pages;
    while (first < end) {
        if (first % 64 == 0 && end - first >= 64) {
            map[first / 64] = value ? UINT64_MAX : 0;
            first += 64;
            continue;
        }
        uint64_t bit = 1ull << (first % 64);
        if (value)
            map[first / 64] |= bit;
        else
            map[first / 64] &= ~bit;
        first++;
    }
}

static uint64_t pmm_popcount(uint64_t w)
{
    /* No popcnt instruction assumed and no libgcc to fall back on. */
    w = w - ((w >> 1) & 0x5555555555555555ull);
    w = (w & 0x3333333333333333ull) + ((w >> 2) & 0x3333333333333333ull);
    w = (w + (w >> 4)) & 0x0f0f0f0f0f0f0f0full;
    return (w * 0x0101010101010101ull) >> 56;
}

static uint64_t pmm_count(const uint64_t *map)
{
    uint64_t n = 0;
    for (uint64_t i = 0; i < pmm_words; i++)
        n += pmm_popcount(map[i]);
    return n;
}

/* First page in [from, to) whose bit equals value, or PMM_NONE. */
static uint64_t pmm_find(const uint64_t *map, uint64_t from, uint64_t to, bool value)
{
    if (to > pmm_pages)
        to = pmm_pages;
    while (from < to) {
        uint64_t w = map[from / 64];
        if (!value)
            w = ~w;
        w >>= from % 64;
        if (w) {
            uint64_t page = from + (uint64_t)__builtin_ctzll(w);
            return page < to ? page : PMM_NONE;
        }
        from = (from / 64 + 1) * 64;
    }
    return PMM_NONE;
}

static void pmm_zero(uint64_t phys, uint64_t npages)
{
    void *p = phys_to_virt(phys);
    uint64_t n = npages * (PAGE_SIZE / 8);
    __asm__ volatile("rep stosq" : "+D"(p), "+c"(n) : "a"(0ull) : "memory");
}

/* [base, base+length) as whole pages: shrunk to the pages it fully covers (inward)
 * or grown to every page it touches.  False when nothing is left.  The firmware's
 * numbers are not trusted: an end past 2^64 is clamped. */
static bool pmm_span(uint64_t base, uint64_t length, bool inward, uint64_t *start, uint64_t *end)
{
    if (!length)
        return false;
    uint64_t e = base > UINT64_MAX - length ? UINT64_MAX : base + length;
    if (inward) {
        *start = pmm_align_up(base);
        *end = pmm_align_down(e);
    } else {
        *start = pmm_align_down(base);
        *end = pmm_align_up(e);
    }
    return *start < *end;
}

/* The n-th range no allocation may overlap besides non-RAM: every memory-map entry
 * that is not usable, the image, each module.  False past the last. */
static bool pmm_exclusion(const struct bootinfo *bi, uint32_t n, uint64_t *start, uint64_t *end)
{
    if (n < bi->mmap_count) {
        const struct bootinfo_mmap_entry *m = &bi->mmap[n];
        if (m->type == BOOTINFO_MEM_USABLE)
            return *start = *end = 0, true;
        if (!pmm_span(m->base, m->length, false, start, end))
            *start = *end = 0;
        return true;
    }
    n -= bi->mmap_count;
    if (n == 0) {
        if (!pmm_span(bi->kernel_phys, bi->kernel_size, false, start, end))
            *start = *end = 0;
        return true;
    }
    n--;
    if (n < bi->module_count) {
        if (!pmm_span(bi->modules[n].phys, bi->modules[n].size, false, start, end))
            *start = *end = 0;
        return true;
    }
    return false;
}

/* End of the first exclusion overlapping [a, b), or 0 when none does. */
static uint64_t pmm_conflict(const struct bootinfo *bi, uint64_t a, uint64_t b)
{
    uint64_t s, e;
    for (uint32_t n = 0; pmm_exclusion(bi, n, &s, &e); n++)
        if (s < e && s < b && a < e)
            return e;
    return 0;
}

/* Somewhere below 4 GiB and above 1 MiB for bytes of bitmap, in usable RAM that
 * nothing else claims; 0 when there is no such place. */
static uint64_t pmm_place_bitmap(const struct bootinfo *bi, uint64_t bytes)
{
    uint64_t need = pmm_align_up(bytes);
    for (uint32_t i = 0; i < bi->mmap_count; i++) {
        const struct bootinfo_mmap_entry *m = &bi->mmap[i];
        uint64_t s, e;
        if (m->type != BOOTINFO_MEM_USABLE || !pmm_span(m->base, m->length, true, &s, &e))
            continue;
        if (s < PMM_LOW_END)
            s = PMM_LOW_END;
        if (e > PMM_BOOT_LIMIT)
            e = PMM_BOOT_LIMIT;
        while (s < e && e - s >= need) {
            uint64_t c = pmm_conflict(bi, s, s + need);
            if (!c)
                return s;
            s = c;
        }
    }
    return 0;
}

/* The next smaller top to try when the bitmap for top finds no room: the highest
 * boundary of a usable entry below top, or half of top when that is higher (one
 * huge entry must not cost all RAM above 1 MiB). */
static uint64_t pmm_lower_top(const struct bootinfo *bi, uint64_t top)
{
    uint64_t best = pmm_align_down(top / 2);
    for (uint32_t i = 0; i < bi->mmap_count; i++) {
        const struct bootinfo_mmap_entry *m = &bi->mmap[i];
        uint64_t s, e;
        if (m->type != BOOTINFO_MEM_USABLE || !pmm_span(m->base, m->length, true, &s, &e))
            continue;
        if (e < top && e > best)
            best = e;
        if (s < top && s > best)
            best = s;
    }
    return best;
}

void pmm_init(const struct bootinfo *bi)
{
    pmm_lock = (struct spinlock)SPINLOCK_INIT;
    pmm_map_phys = pmm_map_bytes = pmm_words = pmm_pages = 0;
    pmm_limit = pmm_next = pmm_total_pages = pmm_free_count = 0;

    uint32_t count = bi->mmap_count;
    if (count > BOOTINFO_MAX_MMAP || bi->module_count > BOOTINFO_MAX_MODULES)
        panic("pmm: boot information claims %u memory-map entries and %u modules "
              "(at most %u and %u); the hand-off is corrupt",
              bi->mmap_count, bi->module_count, BOOTINFO_MAX_MMAP, BOOTINFO_MAX_MODULES);
    if (bi->flags & BOOTINFO_F_MMAP_TRUNCATED)
        log_warn("pmm: the firmware memory map had more than %u entries; RAM in the "
                 "missing ones is not used", BOOTINFO_MAX_MMAP);

    uint64_t top = 0;
    for (uint32_t i = 0; i < count; i++) {
        uint64_t s, e;
        if (bi->mmap[i].type == BOOTINFO_MEM_USABLE &&
            pmm_span(bi->mmap[i].base, bi->mmap[i].length, true, &s, &e) && e > top)
            top = e;
    }
    if (top > PMM_MAX_PHYS) {
        log_warn("pmm: RAM above %lu TiB is ignored (the direct map ends there)",
                 (unsigned long)(PMM_MAX_PHYS >> 40));
        top = PMM_MAX_PHYS;
    }
    if (top <= PMM_LOW_END)
        panic("pmm: the firmware memory map lists no usable RAM above 1 MiB");

    uint64_t first_top = top, where = 0;
    for (;;) {
        pmm_pages = top / PAGE_SIZE;
        pmm_words = (pmm_pages + 63) / 64;
        pmm_map_bytes = pmm_words * 8 * 2;
        where = pmm_place_bitmap(bi, pmm_map_bytes);
        if (where)
            break;
        top = pmm_lower_top(bi, top);
        if (top <= PMM_LOW_END)
            panic("pmm: no usable RAM between 1 MiB and 4 GiB can hold the page bitmap "
                  "(%lu KiB); the firmware memory map leaves no room",
                  (unsigned long)(pmm_map_bytes >> 10));
    }
    if (top != first_top)
        log_warn("pmm: RAM above %#lx is ignored: no room below 4 GiB for a bitmap "
                 "covering it", (unsigned long)top);
    pmm_map_phys = where;

    uint64_t *freemap = pmm_free_map(), *managed = pmm_managed_map();
    /* Whole pages, so that the bits past pmm_pages in the last word read as 0 too. */
    pmm_zero(where, pmm_align_up(pmm_map_bytes) / PAGE_SIZE);
    for (uint32_t i = 0; i < count; i++) {
        uint64_t s, e;
        if (bi->mmap[i].type == BOOTINFO_MEM_USABLE &&
            pmm_span(bi->mmap[i].base, bi->mmap[i].length, true, &s, &e))
            pmm_assign(freemap, s / PAGE_SIZE, e / PAGE_SIZE, true);
    }
    /* Where a usable entry overlaps any other, the other wins: better to lose a
     * page of RAM than to hand out a device's or the firmware's. */
    for (uint32_t i = 0; i < count; i++) {
        uint64_t s, e;
        if (bi->mmap[i].type != BOOTINFO_MEM_USABLE &&
            pmm_span(bi->mmap[i].base, bi->mmap[i].length, false, &s, &e))
            pmm_assign(freemap, s / PAGE_SIZE, e / PAGE_SIZE, false);
    }
    /* Page 0 stays unused so that a null physical address is never valid. */
    pmm_assign(freemap, 0, 1, false);
    pmm_total_pages = pmm_count(freemap);

    uint64_t s, e;
    for (uint32_t n = count; pmm_exclusion(bi, n, &s, &e); n++)
        if (s < e)
            pmm_assign(freemap, s / PAGE_SIZE, e / PAGE_SIZE, false);
    pmm_assign(freemap, where / PAGE_SIZE, pmm_align_up(where + pmm_map_bytes) / PAGE_SIZE, false);

    for (uint64_t i = 0; i < pmm_words; i++)
        managed[i] = freemap[i];
    pmm_free_count = pmm_count(freemap);
    pmm_limit = (top < PMM_BOOT_LIMIT ? top : PMM_BOOT_LIMIT) / PAGE_SIZE;
    pmm_next = PMM_LOW_END / PAGE_SIZE;
    log_debug("pmm: %lu pages managed, bitmaps at %#lx (%lu KiB)", (unsigned long)pmm_free_count,
              (unsigned long)where, (unsigned long)(pmm_map_bytes >> 10));
}

void pmm_allow_above_4g(void)
{
    spin_lock(&pmm_lock);
    pmm_limit = pmm_pages;
    spin_unlock(&pmm_lock);
}

/* One free page in [from, to), taken; PMM_NONE when there is none.  Lock held. */
static uint64_t pmm_take_one(uint64_t from, uint64_t to)
{
    uint64_t page = pmm_find(pmm_free_map(), from, to, true);
    if (page == PMM_NONE)
        return PMM_NONE;
    pmm_assign(pmm_free_map(), page, page + 1, false);
    pmm_free_count--;
    return page;
}

uint64_t pmm_alloc_page(void)
{
    uint64_t low = PMM_LOW_END / PAGE_SIZE;
    spin_lock(&pmm_lock);
    uint64_t from = pmm_next >= low && pmm_next < pmm_limit ? pmm_next : low;
    uint64_t page = pmm_take_one(from, pmm_limit);
    if (page == PMM_NONE && from > low)
        page = pmm_take_one(low, from);
    if (page != PMM_NONE)
        pmm_next = page + 1;
    spin_unlock(&pmm_lock);
    if (page == PMM_NONE)
        return 0;
    pmm_zero(page * PAGE_SIZE, 1);
    return page * PAGE_SIZE;
}

uint64_t pmm_alloc_low_page(void)
{
    spin_lock(&pmm_lock);
    uint64_t end = PMM_LOW_END / PAGE_SIZE < pmm_limit ? PMM_LOW_END / PAGE_SIZE : pmm_limit;
    uint64_t page = pmm_take_one(1, end);
    spin_unlock(&pmm_lock);
    if (page == PMM_NONE)
        return 0;
    pmm_zero(page * PAGE_SIZE, 1);
    return page * PAGE_SIZE;
}

uint64_t pmm_alloc_contig(size_t npages, uint64_t align)
{
    if (!npages || align < PAGE_SIZE || (align & (align - 1))) {
        log_error("pmm_alloc_contig: bad request of %lu pages aligned to %#lx; the count "
                  "must be nonzero and the alignment a power of two >= 4096",
                  (unsigned long)npages, (unsigned long)align);
        return 0;
    }
    uint64_t step = align / PAGE_SIZE;
    uint64_t found = PMM_NONE;
    spin_lock(&pmm_lock);
    uint64_t *freemap = pmm_free_map();
    uint64_t start = (PMM_LOW_END / PAGE_SIZE + step - 1) & ~(step - 1);
    while (start < pmm_limit && pmm_limit - start >= npages) {
        uint64_t busy = pmm_find(freemap, start, start + npages, false);
        if (busy == PMM_NONE) {
            found = start;
            break;
        }
        /* No run through a busy page: the next candidate starts past it. */
        start = (busy + step) & ~(step - 1);
    }
    if (found != PMM_NONE) {
        pmm_assign(freemap, found, found + npages, false);
        pmm_free_count -= npages;
    }
    spin_unlock(&pmm_lock);
    if (found == PMM_NONE)
        return 0;
    pmm_zero(found * PAGE_SIZE, npages);
    return found * PAGE_SIZE;
}

void pmm_free_pages(uint64_t phys, size_t npages)
{
    if (!npages)
        return;
    uint64_t first = phys / PAGE_SIZE;
    if (phys % PAGE_SIZE || first >= pmm_pages || npages > pmm_pages - first)
        panic("pmm_free_pages(%#lx, %lu): not a page range the allocator manages",
              (unsigned long)phys, (unsigned long)npages);
    spin_lock(&pmm_lock);
    uint64_t *freemap = pmm_free_map(), *managed = pmm_managed_map();
    for (uint64_t p = first; p < first + npages; p++) {
        if (!pmm_test(managed, p) || pmm_test(freemap, p)) {
            spin_unlock(&pmm_lock);
            panic("pmm_free_pages(%#lx, %lu): page %#lx was %s", (unsigned long)phys,
                  (unsigned long)npages, (unsigned long)(p * PAGE_SIZE),
                  pmm_test(managed, p) ? "already free (double free)"
                                       : "never handed out by the allocator");
        }
    }
    pmm_assign(freemap, first, first + npages, true);
    pmm_free_count += npages;
    spin_unlock(&pmm_lock);
}

uint64_t pmm_total_bytes(void)
{
    return __atomic_load_n(&pmm_total_pages, __ATOMIC_RELAXED) * PAGE_SIZE;
}

uint64_t pmm_free_bytes(void)
{
    return __atomic_load_n(&pmm_free_count, __ATOMIC_RELAXED) * PAGE_SIZE;
}
