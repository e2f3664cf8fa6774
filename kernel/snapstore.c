/* The store of VM snapshots: a core service (DESIGN.md, "Boundaries"), so that what
 * connects a VM's past and present lives outside every monitor.  A snapshot holds
 * the VM's RAM in 2 MiB chunks, each a bitmap of its non-zero 4 KiB pages and those
 * pages packed in one allocation (a whole 2 MiB page where all are non-zero), and
 * the monitor's state as the bytes it handed over.  All of it counts against
 * snapshot_memory; a snapshot that would not fit is refused whole, never half kept.
 *
 * The monitor drives saves and loads in steps (core_snap_save_ram / _load_ram) from
 * a parked vCPU of the VM, so that no step holds its CPU for long. */
#include "kernel/snapstore.h"
#include "kernel/core_api.h"
#include "kernel/fmt.h"
#include "kernel/log.h"
#include "kernel/pmm.h"
#include "kernel/spinlock.h"
#include "kernel/string.h"
#include "kernel/time.h"
#include "kernel/vm.h"
#include "arch/x86_64/cpu/paging.h"

#define SNAP_MAX          32
#define CHUNK_BYTES       (2ull << 20)
#define CHUNK_PAGES       512u
#define STEP_CHUNKS       4u          /* 8 MiB of guest RAM per step */

struct chunk {
    uint64_t store;                   /* physical address of its pages, or 0 */
    uint32_t pages;
    uint64_t present[CHUNK_PAGES / 64];
};

enum slot_state { SLOT_FREE, SLOT_BUILDING, SLOT_READY };

struct slot {
    enum slot_state state;
    unsigned   readers;               /* restores under way: not dropped meanwhile */
    uint64_t   serial;                /* publication order */
    core_vm_t  vm;
    char       tag[CORE_SNAP_TAG_MAX];
    struct chunk *chunks;
    uint64_t   chunks_phys, chunk_count, index_pages;
    uint64_t   next;                  /* the next chunk to save or load */
    uint64_t   ram_pages, zero_pages;
    uint64_t   state_phys, state_len;
    uint64_t   bytes;                 /* all it takes of the budget */
    bool       too_big;               /* over the budget: only counting what it needs */
    bool       no_memory;             /* the host had no more */
    uint64_t   taken_ns, vm_uptime_ns;
};

static struct spinlock lock = SPINLOCK_INIT;
static struct slot slots[SNAP_MAX];
static uint64_t limit_bytes, used_bytes, serial;

void snapstore_init(uint64_t limit)
{
    limit_bytes = limit;
}

static uint64_t pages_of(uint64_t bytes)
{
    return (bytes + PAGE_SIZE - 1) / PAGE_SIZE;
}

/* The pages the state takes: one even for none, so that a snapshot always has its
 * state page to free. */
static uint64_t state_pages(uint64_t n)
{
    return pages_of(n ? n : 1);
}

static struct slot *slot_get(core_snap_t s)
{
    return s >= 0 && s < SNAP_MAX && slots[s].state != SLOT_FREE ? &slots[s] : NULL;
}

static bool valid_tag(const char *t)
{
    if (!t)
        return false;
    size_t n = strnlen(t, CORE_SNAP_TAG_MAX);
    if (n == 0 || n >= CORE_SNAP_TAG_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '_' || c == '.'))
            return false;
    }
    return true;
}

static struct slot *find_ready(core_vm_t vm, const char *tag)
{
    struct slot *best = NULL;
    for (int i = 0; i < SNAP_MAX; i++) {
        struct slot *t = &slots[i];
        if (t->state != SLOT_READY || t->vm != vm)
            continue;
        if (tag && tag[0] ? !strcmp(t->tag, tag) : !best || t->serial > best->serial)
            best = t;
    }
    return best;
}

/* Gives back everything the slot holds; called with lock held or by its builder. */
static void slot_free_memory(struct slot *t)
{
    if (t->chunks) {
        for (uint64_t i = 0; i < t->chunk_count; i++)
            if (t->chunks[i].store)
                pmm_free_pages(t->chunks[i].store, t->chunks[i].pages);
        pmm_free_pages(t->chunks_phys, t->index_pages);
    }
    if (t->state_phys)
        pmm_free_pages(t->state_phys, state_pages(t->state_len));
    t->chunks = NULL;
    t->state_phys = 0;
}

/* Takes bytes of the budget: false if they do not fit. */
static bool budget_take(uint64_t bytes)
{
    uint64_t flags = spin_lock_irqsave(&lock);
    bool ok = used_bytes + bytes <= limit_bytes;
    if (ok)
        used_bytes += bytes;
    spin_unlock_irqrestore(&lock, flags);
    return ok;
}

static void budget_give(uint64_t bytes)
{
    uint64_t flags = spin_lock_irqsave(&lock);
    used_bytes -= bytes < used_bytes ? bytes : used_bytes;
    spin_unlock_irqrestore(&lock, flags);
}

static void slot_release(struct slot *t)
{
    slot_free_memory(t);
    budget_give(t->bytes);
    uint64_t flags = spin_lock_irqsave(&lock);
    *t = (struct slot){ 0 };
    spin_unlock_irqrestore(&lock, flags);
}

static uint64_t mib_up(uint64_t bytes)
{
    return (bytes + (1ull << 20) - 1) >> 20;
}

core_snap_t core_snap_begin(core_vm_t vm, const char *tag, char *msg, size_t len)
{
    struct vm *v = vm_get(vm);
    if (!v) {
        fmt_snprintf(msg, len, "no such VM");
        return -1;
    }
    if (!limit_bytes) {
        fmt_snprintf(msg, len, "snapshots are off: set snapshot_memory = 512M (say) under [plinth] in plinth.cfg");
        return -1;
    }
    if (!valid_tag(tag)) {
        fmt_snprintf(msg, len, "tag '%s' is not 1-%d letters, digits, '-', '_' or '.'", tag, CORE_SNAP_TAG_MAX - 1);
        return -1;
    }
    uint64_t flags = spin_lock_irqsave(&lock);
    int free_slot = -1;
    bool taken = false;
    for (int i = 0; i < SNAP_MAX; i++) {
        if (slots[i].state == SLOT_FREE && free_slot < 0)
            free_slot = i;
        if (slots[i].state != SLOT_FREE && slots[i].vm == vm && !strcmp(slots[i].tag, tag))
            taken = true;
    }
    if (!taken && free_slot >= 0) {
        slots[free_slot] = (struct slot){ .state = SLOT_BUILDING, .vm = vm };
        memcpy(slots[free_slot].tag, tag, strlen(tag) + 1);
    }
    spin_unlock_irqrestore(&lock, flags);
    if (taken) {
        fmt_snprintf(msg, len, "this VM has a snapshot '%s' already; `drop` it first or give another tag", tag);
        return -1;
    }
    if (free_slot < 0) {
        fmt_snprintf(msg, len, "plinth holds %d snapshots already; `drop` one first", SNAP_MAX);
        return -1;
    }
    struct slot *t = &slots[free_slot];
    t->chunk_count = v->ram_size / CHUNK_BYTES;
    t->index_pages = pages_of(t->chunk_count * sizeof(struct chunk));
    t->bytes = t->index_pages * PAGE_SIZE;
    if (!budget_take(t->bytes)) {
        uint64_t used, lim;
        core_snap_usage(&used, &lim);
        t->bytes = 0;
        slot_release(t);
        fmt_snprintf(msg, len, "snapshot_memory is full (%lu of %lu MiB held): `drop` a snapshot first",
                     (unsigned long)mib_up(used), (unsigned long)(lim >> 20));
        return -1;
    }
    t->chunks_phys = pmm_alloc_contig(t->index_pages, PAGE_SIZE);
    if (!t->chunks_phys) {
        slot_release(t);
        fmt_snprintf(msg, len, "plinth is out of memory (%lu MiB free)", (unsigned long)(pmm_free_bytes() >> 20));
        return -1;
    }
    t->chunks = phys_to_virt(t->chunks_phys);
    return free_slot;
}

/* Whole pages by quadwords: a byte-wise REP MOVSB is fast on hardware with ERMS but
 * one step per byte under emulation, where snapshots are tested. */
static void copy_page(void *dst, const void *src)
{
    uint64_t n = PAGE_SIZE / 8;
    __asm__ volatile("rep movsq" : "+D"(dst), "+S"(src), "+c"(n) :: "memory");
}

static void zero_page(void *dst)
{
    uint64_t n = PAGE_SIZE / 8;
    __asm__ volatile("rep stosq" : "+D"(dst), "+c"(n) : "a"(0ull) : "memory");
}

static bool page_is_zero(const uint64_t *p)
{
    uint64_t any = 0;
    for (unsigned i = 0; i < PAGE_SIZE / 8; i += 8) {
        any = p[i] | p[i + 1] | p[i + 2] | p[i + 3] | p[i + 4] | p[i + 5] | p[i + 6] | p[i + 7];
        if (any)
            return false;
    }
    return true;
}

/* One 2 MiB chunk of guest RAM at ram into c: its non-zero pages, counted; copied
 * unless the snapshot is already over the budget (then it only counts on). */
static void save_chunk(struct slot *t, struct chunk *c, const uint8_t *ram)
{
    unsigned n = 0;
    for (unsigned i = 0; i < CHUNK_PAGES; i++)
        if (!page_is_zero((const uint64_t *)(ram + (uint64_t)i * PAGE_SIZE))) {
            c->present[i / 64] |= 1ull << (i % 64);
            n++;
        }
    t->ram_pages += n;
    t->zero_pages += CHUNK_PAGES - n;
    if (!n || t->too_big || t->no_memory)
        return;
    if (!budget_take((uint64_t)n * PAGE_SIZE)) {
        t->too_big = true;
        return;
    }
    /* A full chunk as one 2 MiB page where the host has one free. */
    uint64_t store = n == CHUNK_PAGES ? pmm_alloc_contig(n, CHUNK_BYTES) : 0;
    if (!store)
        store = pmm_alloc_contig(n, PAGE_SIZE);
    if (!store) {
        budget_give((uint64_t)n * PAGE_SIZE);
        t->no_memory = true;
        return;
    }
    t->bytes += (uint64_t)n * PAGE_SIZE;
    c->store = store;
    c->pages = n;
    uint8_t *dst = phys_to_virt(store);
    for (unsigned i = 0; i < CHUNK_PAGES; i++)
        if (c->present[i / 64] & (1ull << (i % 64))) {
            copy_page(dst, ram + (uint64_t)i * PAGE_SIZE);
            dst += PAGE_SIZE;
        }
}

int core_snap_save_ram(core_snap_t s, char *msg, size_t len)
{
    struct slot *t = slot_get(s);
    struct vm *v = t ? vm_get(t->vm) : NULL;
    if (!t || t->state != SLOT_BUILDING || !v) {
        if (t && t->state == SLOT_BUILDING)
            slot_release(t);
        fmt_snprintf(msg, len, "no such snapshot being taken (or its VM is gone)");
        return -1;
    }
    const uint8_t *ram = phys_to_virt(v->ram_phys);
    for (unsigned k = 0; k < STEP_CHUNKS && t->next < t->chunk_count; k++, t->next++)
        save_chunk(t, &t->chunks[t->next], ram + t->next * CHUNK_BYTES);
    if (t->next < t->chunk_count)
        return 1;
    if (t->too_big || t->no_memory) {
        uint64_t need = t->index_pages * PAGE_SIZE + t->ram_pages * PAGE_SIZE;
        uint64_t used, lim;
        bool too_big = t->too_big;
        slot_release(t);
        core_snap_usage(&used, &lim);
        if (too_big)
            fmt_snprintf(msg, len, "it needs %lu MiB (RAM that is not zero), and snapshot_memory has %lu of %lu MiB "
                         "free: `drop` a snapshot or raise snapshot_memory", (unsigned long)mib_up(need),
                         (unsigned long)((lim - used) >> 20), (unsigned long)(lim >> 20));
        else
            fmt_snprintf(msg, len, "plinth ran out of memory for it (it needs %lu MiB; %lu MiB free)",
                         (unsigned long)mib_up(need), (unsigned long)(pmm_free_bytes() >> 20));
        return -1;
    }
    return 0;
}

int core_snap_commit_parts(core_snap_t s, const struct core_snap_part *parts, unsigned count,
                           uint64_t vm_uptime_ns, char *msg, size_t len)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < count; i++)
        n += parts[i].n;
    struct slot *t = slot_get(s);
    if (!t || t->state != SLOT_BUILDING || t->next < t->chunk_count) {
        if (t && t->state == SLOT_BUILDING)
            slot_release(t);
        fmt_snprintf(msg, len, "the snapshot's RAM was not all in");
        return -1;
    }
    uint64_t pages = state_pages(n);
    if (!budget_take(pages * PAGE_SIZE)) {
        slot_release(t);
        fmt_snprintf(msg, len, "its %lu KiB of device and vCPU state do not fit in snapshot_memory",
                     (unsigned long)((n + 1023) >> 10));
        return -1;
    }
    t->bytes += pages * PAGE_SIZE;
    t->state_phys = pmm_alloc_contig(pages, PAGE_SIZE);
    if (!t->state_phys) {
        slot_release(t);
        fmt_snprintf(msg, len, "plinth is out of memory for its state");
        return -1;
    }
    t->state_len = n;
    uint8_t *to = phys_to_virt(t->state_phys);
    for (unsigned i = 0; i < count; i++) {
        memcpy(to, parts[i].data, parts[i].n);
        to += parts[i].n;
    }
    t->taken_ns = time_since_boot_ns();
    t->vm_uptime_ns = vm_uptime_ns;
    uint64_t flags = spin_lock_irqsave(&lock);
    t->serial = ++serial;
    t->state = SLOT_READY;
    spin_unlock_irqrestore(&lock, flags);
    return 0;
}

int core_snap_commit(core_snap_t s, const void *state, size_t n, uint64_t vm_uptime_ns, char *msg, size_t len)
{
    const struct core_snap_part part = { state, n };
    return core_snap_commit_parts(s, &part, 1, vm_uptime_ns, msg, len);
}

void core_snap_abort(core_snap_t s)
{
    struct slot *t = slot_get(s);
    if (t && t->state == SLOT_BUILDING)
        slot_release(t);
}

core_snap_t core_snap_open(core_vm_t vm, const char *tag, char *msg, size_t len)
{
    uint64_t flags = spin_lock_irqsave(&lock);
    struct slot *t = find_ready(vm, tag);
    if (t) {
        /* One restore at a time runs through it (its VM's), from the start. */
        if (!t->readers++)
            t->next = 0;
    }
    spin_unlock_irqrestore(&lock, flags);
    if (!t) {
        if (tag && tag[0])
            fmt_snprintf(msg, len, "this VM has no snapshot '%s'; `snapshots` lists them", tag);
        else
            fmt_snprintf(msg, len, "this VM has no snapshot; `snapshot NAME [TAG]` takes one");
        return -1;
    }
    return (core_snap_t)(t - slots);
}

size_t core_snap_read_state_at(core_snap_t s, uint64_t offset, void *buf, size_t max)
{
    struct slot *t = slot_get(s);
    if (!t || t->state != SLOT_READY || offset >= t->state_len)
        return 0;
    uint64_t n = t->state_len - offset < max ? t->state_len - offset : max;
    memcpy(buf, (uint8_t *)phys_to_virt(t->state_phys) + offset, n);
    return n;
}

size_t core_snap_read_state(core_snap_t s, void *buf, size_t max)
{
    struct slot *t = slot_get(s);
    if (!t || t->state != SLOT_READY)
        return 0;
    memcpy(buf, phys_to_virt(t->state_phys), t->state_len < max ? t->state_len : max);
    return t->state_len;
}

static void info_of(const struct slot *t, struct core_snap_info *i)
{
    *i = (struct core_snap_info){ .vm = t->vm, .ram_bytes = t->ram_pages * PAGE_SIZE,
                                  .zero_bytes = t->zero_pages * PAGE_SIZE, .state_bytes = t->state_len,
                                  .total_bytes = t->bytes, .taken_ns = t->taken_ns,
                                  .vm_uptime_ns = t->vm_uptime_ns };
    memcpy(i->tag, t->tag, sizeof i->tag);
}

void core_snap_get_info(core_snap_t s, struct core_snap_info *info)
{
    struct slot *t = slot_get(s);
    if (t)
        info_of(t, info);
    else
        *info = (struct core_snap_info){ .vm = -1 };
}

int core_snap_load_ram(core_snap_t s)
{
    struct slot *t = slot_get(s);
    struct vm *v = t ? vm_get(t->vm) : NULL;
    /* Never into a VM of another size than the snapshot's. */
    if (!t || t->state != SLOT_READY || !t->readers || !v || v->ram_size / CHUNK_BYTES != t->chunk_count)
        return 0;
    uint8_t *ram = phys_to_virt(v->ram_phys);
    for (unsigned k = 0; k < STEP_CHUNKS && t->next < t->chunk_count; k++, t->next++) {
        const struct chunk *c = &t->chunks[t->next];
        uint8_t *dst = ram + t->next * CHUNK_BYTES;
        const uint8_t *src = c->store ? phys_to_virt(c->store) : NULL;
        for (unsigned i = 0; i < CHUNK_PAGES; i++, dst += PAGE_SIZE) {
            if (src && (c->present[i / 64] & (1ull << (i % 64)))) {
                copy_page(dst, src);
                src += PAGE_SIZE;
            } else {
                zero_page(dst);
            }
        }
    }
    return t->next < t->chunk_count ? 1 : 0;
}

void core_snap_close(core_snap_t s)
{
    uint64_t flags = spin_lock_irqsave(&lock);
    struct slot *t = slot_get(s);
    if (t && t->readers)
        t->readers--;
    spin_unlock_irqrestore(&lock, flags);
}

size_t core_snap_list(struct core_snap_info *out, size_t max)
{
    uint64_t flags = spin_lock_irqsave(&lock);
    size_t n = 0;
    uint64_t after = 0;
    /* Oldest first: the next serial above the last one written, each round. */
    while (n < max) {
        struct slot *next = NULL;
        for (int i = 0; i < SNAP_MAX; i++)
            if (slots[i].state == SLOT_READY && slots[i].serial > after &&
                (!next || slots[i].serial < next->serial))
                next = &slots[i];
        if (!next)
            break;
        info_of(next, &out[n++]);
        after = next->serial;
    }
    spin_unlock_irqrestore(&lock, flags);
    return n;
}

int core_snap_drop(core_vm_t vm, const char *tag, char *msg, size_t len)
{
    uint64_t flags = spin_lock_irqsave(&lock);
    struct slot *t = tag && tag[0] ? find_ready(vm, tag) : NULL;
    bool busy = t && t->readers;
    if (t && !busy)
        t->state = SLOT_BUILDING;      /* no longer found: its memory goes below */
    spin_unlock_irqrestore(&lock, flags);
    if (!t) {
        fmt_snprintf(msg, len, "this VM has no snapshot '%s'; `snapshots` lists them", tag ? tag : "");
        return -1;
    }
    if (busy) {
        fmt_snprintf(msg, len, "snapshot '%s' is being restored; try again in a moment", tag);
        return -1;
    }
    slot_release(t);
    return 0;
}

void core_snap_usage(uint64_t *used, uint64_t *limit)
{
    uint64_t flags = spin_lock_irqsave(&lock);
    *used = used_bytes;
    *limit = limit_bytes;
    spin_unlock_irqrestore(&lock, flags);
}
