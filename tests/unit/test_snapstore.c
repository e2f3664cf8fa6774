/* The store of VM snapshots (kernel/snapstore.c): RAM back byte for byte with zero
 * pages held as nothing, the state blob, what a snapshot counts against
 * snapshot_memory, refusals that keep nothing (over the budget, out of host memory),
 * tags, the restore hold, and the 32-snapshot bound.  Host memory stands in for
 * physical memory (phys_to_virt is the identity), so the fake allocator below sees
 * every page the store takes and can say whether any is left behind. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kernel/fmt.c"
#include "kernel/snapstore.c"

#define MiB (1ull << 20)

/* ---- fakes ---- */

void *phys_to_virt(uint64_t phys)
{
    return (void *)(uintptr_t)phys;
}

static uint64_t fake_now;

uint64_t time_since_boot_ns(void)
{
    return fake_now;
}

/* The fake pmm: every block it handed out, so that a free must name one exactly
 * (its base and its page count), and what is outstanding is known at any point.  A
 * wrong call is noted, not failed on the spot: the store's state stays whole for the
 * teardown, which reports it. */
#define FAKE_BLOCKS 256
static struct block {
    void    *p;
    size_t   npages;
} blocks[FAKE_BLOCKS];
static uint64_t outstanding_pages;
static unsigned allocs;            /* requests answered with memory */
static unsigned chunk_requests;    /* requests for a whole 2 MiB-aligned 2 MiB page */
static int      allocs_left = -1;  /* requests to answer before running out; -1: never */
static bool     no_2m_pages;       /* the host has no free 2 MiB-aligned run */
static char     pmm_misuse[200];

#define misuse(...)                                                            \
    do {                                                                       \
        if (!pmm_misuse[0])                                                    \
            snprintf(pmm_misuse, sizeof pmm_misuse, __VA_ARGS__);              \
    } while (0)

uint64_t pmm_alloc_contig(size_t npages, uint64_t align)
{
    if (!npages || align < PAGE_SIZE || (align & (align - 1))) {
        misuse("pmm_alloc_contig(%zu, %#lx): not a request the real pmm takes", npages, (unsigned long)align);
        return 0;
    }
    if (align == CHUNK_BYTES && npages == CHUNK_PAGES)
        chunk_requests++;
    if (allocs_left == 0 || (no_2m_pages && align >= CHUNK_BYTES))
        return 0;
    if (allocs_left > 0)
        allocs_left--;
    size_t bytes = npages * PAGE_SIZE;
    /* aligned_alloc wants a size that is a multiple of the alignment. */
    void *p = aligned_alloc(align, (bytes + align - 1) & ~(align - 1));
    assert_non_null(p);
    memset(p, 0, bytes);
    for (int i = 0; i < FAKE_BLOCKS; i++)
        if (!blocks[i].p) {
            blocks[i] = (struct block){ p, npages };
            outstanding_pages += npages;
            allocs++;
            return (uint64_t)(uintptr_t)p;
        }
    fail_msg("the fake pmm tracks only %d blocks", FAKE_BLOCKS);
    return 0;
}

/* A free of the wrong size is noted and frees nothing: the block stays outstanding,
 * as a leak would. */
void pmm_free_pages(uint64_t phys, size_t npages)
{
    for (int i = 0; i < FAKE_BLOCKS; i++)
        if (blocks[i].p && (uint64_t)(uintptr_t)blocks[i].p == phys) {
            if (blocks[i].npages != npages) {
                misuse("pmm_free_pages(%#lx, %zu): it was handed out as %zu pages", (unsigned long)phys, npages,
                       blocks[i].npages);
                return;
            }
            free(blocks[i].p);
            blocks[i].p = NULL;
            outstanding_pages -= npages;
            return;
        }
    misuse("pmm_free_pages(%#lx, %zu): not handed out, or freed already", (unsigned long)phys, npages);
}

#define FAKE_FREE_BYTES (123 * MiB)

uint64_t pmm_free_bytes(void)
{
    return FAKE_FREE_BYTES;
}

/* VM 0: 16 MiB, so that a save takes more than one step; VMs 1 and 2: 8 MiB. */
#define NVMS 3
static const uint64_t vm_ram_size[NVMS] = { 16 * MiB, 8 * MiB, 8 * MiB };
static struct vm vms[NVMS];

struct vm *vm_get(core_vm_t h)
{
    return h >= 0 && h < NVMS && vms[h].used ? &vms[h] : NULL;
}

/* A copy of a VM's RAM to compare a restore with (static: a failed check leaves
 * nothing to free). */
static uint8_t saved_ram[16 * MiB];

static uint8_t *ram_of(core_vm_t h)
{
    return (uint8_t *)(uintptr_t)vms[h].ram_phys;
}

static uint8_t *page_of(core_vm_t h, uint64_t page)
{
    return ram_of(h) + page * PAGE_SIZE;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_random(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void fill_random(void *p, size_t n)
{
    uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)next_random();
}

/* Random bytes with no page left zero, so that a stale copy cannot pass for a restore
 * of a zero page. */
static void scramble(core_vm_t h)
{
    fill_random(ram_of(h), vms[h].ram_size);
    for (uint64_t p = 0; p < vms[h].ram_size / PAGE_SIZE; p++)
        page_of(h, p)[0] |= 1;
}

static uint64_t nonzero_pages(core_vm_t h)
{
    static const uint8_t zero[PAGE_SIZE];
    uint64_t n = 0;
    for (uint64_t p = 0; p < vms[h].ram_size / PAGE_SIZE; p++)
        n += memcmp(page_of(h, p), zero, PAGE_SIZE) != 0;
    return n;
}

static uint64_t used_now(void)
{
    uint64_t used, limit;
    core_snap_usage(&used, &limit);
    return used;
}

static int setup(void **state)
{
    (void)state;
    for (int i = 0; i < NVMS; i++) {
        void *ram = aligned_alloc(CHUNK_BYTES, vm_ram_size[i]);
        if (!ram)
            return -1;
        memset(ram, 0, vm_ram_size[i]);
        vms[i] = (struct vm){ .used = true, .ram_phys = (uint64_t)(uintptr_t)ram, .ram_size = vm_ram_size[i] };
    }
    allocs = chunk_requests = 0;
    allocs_left = -1;
    no_2m_pages = false;
    fake_now = 1000;
    snapstore_init(256 * MiB);
    return 0;
}

/* Every test ends by giving back through the API whatever it left: nothing may stay
 * outstanding or counted then, whichever path the test took. */
static int teardown(void **state)
{
    (void)state;
    allocs_left = -1;
    int drop_failed = -1;
    for (int i = 0; i < SNAP_MAX; i++) {
        while (slots[i].state == SLOT_READY && slots[i].readers)
            core_snap_close(i);
        if (slots[i].state == SLOT_READY) {
            char tag[CORE_SNAP_TAG_MAX], msg[160];
            memcpy(tag, slots[i].tag, sizeof tag);
            if (core_snap_drop(slots[i].vm, tag, msg, sizeof msg) != 0)
                drop_failed = i;
        } else if (slots[i].state == SLOT_BUILDING) {
            core_snap_abort(i);
        }
    }
    uint64_t left = outstanding_pages, used = used_now();
    /* The host memory goes back whatever the store did, so that one failure does not
     * carry into the next test. */
    for (int i = 0; i < FAKE_BLOCKS; i++) {
        free(blocks[i].p);
        blocks[i].p = NULL;
    }
    outstanding_pages = 0;
    for (int i = 0; i < NVMS; i++) {
        free(ram_of(i));
        vms[i] = (struct vm){ 0 };
    }
    memset(slots, 0, sizeof slots);
    used_bytes = serial = 0;
    char misused[sizeof pmm_misuse];
    memcpy(misused, pmm_misuse, sizeof misused);
    pmm_misuse[0] = 0;
    if (misused[0])
        fail_msg("%s", misused);
    if (drop_failed >= 0)
        fail_msg("slot %d could not be dropped", drop_failed);
    assert_int_equal(left, 0);
    assert_int_equal(used, 0);
    return 0;
}

/* ---- helpers ---- */

/* Saves all of the snapshot's RAM: the last save_ram result; *steps counts calls. */
static int save_all(core_snap_t s, char *msg, size_t len, unsigned *steps)
{
    unsigned n = 0;
    int rc;
    do {
        rc = core_snap_save_ram(s, msg, len);
        n++;
        if (n > 64)
            fail_msg("save_ram still has more after %u steps", n);
    } while (rc == 1);
    if (steps)
        *steps = n;
    return rc;
}

static void load_all(core_snap_t s)
{
    unsigned n = 0;
    while (core_snap_load_ram(s) == 1)
        if (++n > 64)
            fail_msg("load_ram still has more after %u steps", n);
}

/* A published snapshot of vm's RAM as it is, with state bytes of state: its handle. */
static core_snap_t take(core_vm_t vm, const char *tag, const void *state, size_t n)
{
    char msg[160] = "";
    core_snap_t s = core_snap_begin(vm, tag, msg, sizeof msg);
    if (s < 0)
        fail_msg("begin(%d, %s): %s", vm, tag, msg);
    if (save_all(s, msg, sizeof msg, NULL) != 0)
        fail_msg("save_ram(%d, %s): %s", vm, tag, msg);
    if (core_snap_commit(s, state, n, 0, msg, sizeof msg) != 0)
        fail_msg("commit(%d, %s): %s", vm, tag, msg);
    return s;
}

static void assert_contains(const char *msg, const char *want)
{
    if (!strstr(msg, want))
        fail_msg("\"%s\" does not say \"%s\"", msg, want);
}

static struct core_snap_info info_of_handle(core_snap_t s)
{
    struct core_snap_info i;
    core_snap_get_info(s, &i);
    return i;
}

/* ---- tests ---- */

static void test_round_trip_restores_ram_and_state(void **state)
{
    (void)state;
    /* Edges of pages and of chunks, one word mid-page, one whole chunk, and the very
     * last page of RAM: a zero test or a copy that is off by a page loses one. */
    page_of(0, 0)[0] = 1;
    page_of(0, 511)[PAGE_SIZE - 1] = 0x80;
    fill_random(page_of(0, 512 + 7), 2 * PAGE_SIZE);
    fill_random(page_of(0, 512 + 100), PAGE_SIZE);
    page_of(0, 1024 + 300)[2048] = 0x5a;
    fill_random(ram_of(0) + 3 * CHUNK_BYTES, CHUNK_BYTES);
    for (unsigned p = 0; p < CHUNK_PAGES; p++)
        page_of(0, 3 * CHUNK_PAGES + p)[0] |= 1;
    page_of(0, 4095)[PAGE_SIZE - 1] = 7;
    uint64_t nz = nonzero_pages(0);
    assert_int_equal(nz, 2 + 3 + 1 + 512 + 1);

    memcpy(saved_ram, ram_of(0), vms[0].ram_size);
    uint8_t blob[5000];
    fill_random(blob, sizeof blob);

    char msg[160] = "";
    core_snap_t s = core_snap_begin(0, "base", msg, sizeof msg);
    assert_true(s >= 0);
    unsigned steps;
    assert_int_equal(save_all(s, msg, sizeof msg, &steps), 0);
    /* 16 MiB is more than one step holds: the save must come back in between. */
    assert_true(steps > 1);
    fake_now = 123456789;
    assert_int_equal(core_snap_commit(s, blob, sizeof blob, 777, msg, sizeof msg), 0);
    /* The one whole chunk asked for a 2 MiB page, and no other did. */
    assert_int_equal(chunk_requests, 1);

    struct core_snap_info info = info_of_handle(s);
    uint64_t index_bytes = PAGE_SIZE;      /* 8 chunks' records fit one page */
    uint64_t state_bytes = 2 * PAGE_SIZE;  /* 5000 bytes take two pages */
    assert_int_equal(info.vm, 0);
    assert_string_equal(info.tag, "base");
    assert_int_equal(info.ram_bytes, nz * PAGE_SIZE);
    assert_int_equal(info.zero_bytes, vms[0].ram_size - nz * PAGE_SIZE);
    assert_int_equal(info.state_bytes, sizeof blob);
    assert_int_equal(info.total_bytes, index_bytes + nz * PAGE_SIZE + state_bytes);
    assert_int_equal(info.taken_ns, 123456789);
    assert_int_equal(info.vm_uptime_ns, 777);
    /* The budget counts all it holds, and it holds no more than it counts. */
    assert_int_equal(used_now(), info.total_bytes);
    assert_int_equal(outstanding_pages * PAGE_SIZE, info.total_bytes);

    /* Twice, so that an open starts each restore from the first chunk again. */
    for (int round = 0; round < 2; round++) {
        scramble(0);
        core_snap_t r = core_snap_open(0, "base", msg, sizeof msg);
        assert_int_equal(r, s);
        load_all(r);
        assert_memory_equal(ram_of(0), saved_ram, vms[0].ram_size);

        uint8_t got[8192];
        memset(got, 0xee, sizeof got);
        assert_int_equal(core_snap_read_state(r, got, sizeof got), sizeof blob);
        assert_memory_equal(got, blob, sizeof blob);
        memset(got, 0xee, sizeof got);
        assert_int_equal(core_snap_read_state(r, got, 100), sizeof blob);
        assert_memory_equal(got, blob, 100);
        assert_int_equal(got[100], 0xee);
        /* Read in pieces from an offset, as a disk's writes after the stream are. */
        memset(got, 0xee, sizeof got);
        assert_int_equal(core_snap_read_state_at(r, 4000, got, sizeof got), sizeof blob - 4000);
        assert_memory_equal(got, blob + 4000, sizeof blob - 4000);
        assert_int_equal(core_snap_read_state_at(r, 10, got, 5), 5);
        assert_memory_equal(got, blob + 10, 5);
        assert_int_equal(core_snap_read_state_at(r, sizeof blob, got, sizeof got), 0);
        core_snap_close(r);
    }
}

/* The state handed over in parts is held as one, in their order. */
static void test_state_in_parts(void **state)
{
    (void)state;
    char msg[160] = "";
    core_snap_t s = core_snap_begin(0, "parts", msg, sizeof msg);
    assert_true(s >= 0);
    unsigned steps;
    assert_int_equal(save_all(s, msg, sizeof msg, &steps), 0);
    static uint8_t a[3000], b[6000];
    memset(a, 0xa1, sizeof a);
    memset(b, 0xb2, sizeof b);
    const struct core_snap_part parts[] = { { a, sizeof a }, { "", 0 }, { b, sizeof b } };
    assert_int_equal(core_snap_commit_parts(s, parts, 3, 0, msg, sizeof msg), 0);
    assert_int_equal(info_of_handle(s).state_bytes, sizeof a + sizeof b);
    core_snap_t r = core_snap_open(0, "parts", msg, sizeof msg);
    assert_true(r >= 0);
    uint8_t got[2];
    assert_int_equal(core_snap_read_state_at(r, sizeof a - 1, got, 2), 2);
    assert_int_equal(got[0], 0xa1);
    assert_int_equal(got[1], 0xb2);
    core_snap_close(r);
}

static void test_full_chunk_without_a_2m_page_is_kept_in_4k_pages(void **state)
{
    (void)state;
    no_2m_pages = true;
    scramble(1);
    memcpy(saved_ram, ram_of(1), vms[1].ram_size);
    core_snap_t s = take(1, "full", "x", 1);
    assert_int_equal(info_of_handle(s).ram_bytes, vms[1].ram_size);
    memset(ram_of(1), 0, vms[1].ram_size);
    char msg[160];
    assert_int_equal(core_snap_open(1, "full", msg, sizeof msg), s);
    load_all(s);
    assert_memory_equal(ram_of(1), saved_ram, vms[1].ram_size);
    core_snap_close(s);
}

static void test_zero_pages_cost_nothing(void **state)
{
    (void)state;
    uint8_t blob[100] = { 1, 2, 3 };
    core_snap_t s = take(1, "empty", blob, sizeof blob);
    struct core_snap_info info = info_of_handle(s);
    assert_int_equal(info.ram_bytes, 0);
    assert_int_equal(info.zero_bytes, vms[1].ram_size);
    /* The index page and one page of state, nothing for the RAM. */
    assert_int_equal(info.total_bytes, 2 * PAGE_SIZE);
    assert_int_equal(used_now(), 2 * PAGE_SIZE);
    assert_int_equal(outstanding_pages, 2);
    assert_int_equal(allocs, 2);

    /* Held as nothing, restored as zeros. */
    scramble(1);
    char msg[160];
    assert_int_equal(core_snap_open(1, "empty", msg, sizeof msg), s);
    load_all(s);
    assert_int_equal(nonzero_pages(1), 0);
    core_snap_close(s);
}

static void test_empty_state_gives_its_page_back(void **state)
{
    (void)state;
    char msg[160];
    core_snap_t s = take(1, "nostate", "", 0);
    assert_int_equal(info_of_handle(s).state_bytes, 0);
    uint8_t got[4] = { 9, 9, 9, 9 };
    assert_int_equal(core_snap_open(1, "nostate", msg, sizeof msg), s);
    assert_int_equal(core_snap_read_state(s, got, sizeof got), 0);
    assert_int_equal(got[0], 9);
    core_snap_close(s);
    /* A free of other than the pages taken leaves them outstanding in the fake. */
    assert_int_equal(core_snap_drop(1, "nostate", msg, sizeof msg), 0);
    assert_int_equal(outstanding_pages, 0);
    assert_int_equal(used_now(), 0);
}

static void test_over_budget_is_refused_whole(void **state)
{
    (void)state;
    char msg[160] = "", want[80];
    snapstore_init(3 * MiB);
    /* Something held already, which the refusal below must leave as it is. */
    page_of(1, 5)[9] = 1;
    take(1, "keep", "s", 1);
    uint64_t used_before = used_now();
    uint64_t pages_before = outstanding_pages;
    assert_int_equal(used_before, 3 * PAGE_SIZE);

    /* Exactly 3 MiB of non-zero RAM: with its index page it needs a 4th MiB.  The
     * whole chunk fits the budget and is copied before the last one does not. */
    memset(ram_of(0) + 2 * CHUNK_BYTES, 0xa5, CHUNK_BYTES);
    for (unsigned p = 0; p < 256; p++)
        page_of(0, 5 * CHUNK_PAGES + 2 * p)[p] = 1;
    uint64_t nz = nonzero_pages(0);
    assert_int_equal(nz * PAGE_SIZE, 3 * MiB);
    core_snap_t s = core_snap_begin(0, "big", msg, sizeof msg);
    assert_true(s >= 0);
    assert_int_equal(save_all(s, msg, sizeof msg, NULL), -1);
    uint64_t need_mib = (PAGE_SIZE + nz * PAGE_SIZE + MiB - 1) / MiB;
    assert_int_equal(need_mib, 4);
    snprintf(want, sizeof want, "needs %lu MiB", (unsigned long)need_mib);
    assert_contains(msg, want);
    snprintf(want, sizeof want, "has %lu of 3 MiB free", (unsigned long)((3 * MiB - used_before) >> 20));
    assert_contains(msg, want);
    assert_int_equal(used_now(), used_before);
    assert_int_equal(outstanding_pages, pages_before);

    /* The snapshot is gone: its handle is dead and its tag free. */
    assert_int_equal(core_snap_save_ram(s, msg, sizeof msg), -1);
    assert_int_equal(core_snap_list(&(struct core_snap_info){ 0 }, 1), 1);
    snapstore_init(8 * MiB);
    core_snap_t again = take(0, "big", "s", 1);
    assert_int_equal(info_of_handle(again).ram_bytes, 3 * MiB);
}

static void test_state_over_budget_is_refused_whole(void **state)
{
    (void)state;
    char msg[160] = "";
    snapstore_init(1 * MiB);
    for (unsigned p = 0; p < 200; p++)
        page_of(1, p)[0] = 1;
    /* The RAM (201 pages with the index) fits; 75 pages of state on top do not. */
    static uint8_t blob[300 * 1024];
    core_snap_t s = core_snap_begin(1, "st", msg, sizeof msg);
    assert_true(s >= 0);
    assert_int_equal(save_all(s, msg, sizeof msg, NULL), 0);
    assert_int_equal(used_now(), 201 * PAGE_SIZE);
    assert_int_equal(core_snap_commit(s, blob, sizeof blob, 0, msg, sizeof msg), -1);
    assert_contains(msg, "300 KiB");
    assert_int_equal(used_now(), 0);
    assert_int_equal(outstanding_pages, 0);
    assert_int_equal(core_snap_list(&(struct core_snap_info){ 0 }, 1), 0);
}

static void test_full_budget_is_refused_at_begin(void **state)
{
    (void)state;
    char msg[160] = "";
    snapstore_init(1 * MiB);
    /* Index, 254 pages and the state: the whole MiB, with no page left for an index. */
    for (unsigned p = 0; p < 254; p++)
        page_of(1, p)[1] = 1;
    take(1, "all", "s", 1);
    assert_int_equal(used_now(), 1 * MiB);
    unsigned before = allocs;
    assert_int_equal(core_snap_begin(0, "more", msg, sizeof msg), -1);
    assert_contains(msg, "is full (1 of 1 MiB held)");
    assert_int_equal(allocs, before);
    assert_int_equal(used_now(), 1 * MiB);
    /* The refused one held no place: dropping the one in makes room at once. */
    assert_int_equal(core_snap_drop(1, "all", msg, sizeof msg), 0);
    assert_true(core_snap_begin(0, "more", msg, sizeof msg) >= 0);
}

static void test_snapshots_off_are_refused_at_begin(void **state)
{
    (void)state;
    char msg[160] = "";
    snapstore_init(0);
    assert_int_equal(core_snap_begin(0, "s1", msg, sizeof msg), -1);
    assert_contains(msg, "snapshots are off");
    assert_contains(msg, "snapshot_memory");
    assert_int_equal(allocs, 0);
    assert_int_equal(used_now(), 0);
}

static void test_out_of_host_memory_keeps_nothing(void **state)
{
    (void)state;
    /* Memory is taken for the index, chunks 0, 2 and 5, and the state: running out
     * before each of them must give back all the ones before. */
    page_of(0, 3)[0] = 1;
    memset(ram_of(0) + 2 * CHUNK_BYTES, 0x11, CHUNK_BYTES);
    page_of(0, 5 * CHUNK_PAGES + 17)[100] = 1;
    enum { AT_BEGIN, AT_SAVE, AT_COMMIT };
    static const int fails_at[] = { AT_BEGIN, AT_SAVE, AT_SAVE, AT_SAVE, AT_COMMIT };
    for (int n = 0; n < 5; n++) {
        char msg[160] = "";
        allocs_left = n;
        int where = AT_BEGIN;
        core_snap_t s = core_snap_begin(0, "oom", msg, sizeof msg);
        if (s >= 0) {
            where = AT_SAVE;
            if (save_all(s, msg, sizeof msg, NULL) == 0) {
                where = AT_COMMIT;
                assert_int_equal(core_snap_commit(s, "st", 2, 0, msg, sizeof msg), -1);
            }
        }
        if (where != fails_at[n])
            fail_msg("out of memory after %d allocations: refused at step %d, not %d", n, where, fails_at[n]);
        assert_contains(msg, "out of memory");
        assert_int_equal(outstanding_pages, 0);
        assert_int_equal(used_now(), 0);
        assert_int_equal(core_snap_save_ram(s, msg, sizeof msg), -1);
    }
    allocs_left = 5;
    take(0, "oom", "st", 2);
    assert_int_equal(allocs_left, 0);
}

static void test_tags(void **state)
{
    (void)state;
    char msg[160];
    static const char *const bad[] = { "", "abcdefghijklmnop", "abcdefghijklmnopq", "a/b", "a b", "tag!" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        msg[0] = 0;
        assert_int_equal(core_snap_begin(0, bad[i], msg, sizeof msg), -1);
        assert_contains(msg, "is not 1-15");
    }
    assert_int_equal(allocs, 0);
    take(0, "abcdefghijklmno", "s", 1);
    take(0, "A-z_0.9", "s", 1);

    /* One tag per VM, whether published or still being taken. */
    take(0, "s1", "s", 1);
    assert_int_equal(core_snap_begin(0, "s1", msg, sizeof msg), -1);
    assert_contains(msg, "already");
    core_snap_t building = core_snap_begin(0, "s2", msg, sizeof msg);
    assert_true(building >= 0);
    assert_int_equal(core_snap_begin(0, "s2", msg, sizeof msg), -1);
    assert_contains(msg, "already");
    core_snap_t other = take(1, "s1", "s", 1);
    assert_true(other >= 0);
    assert_string_equal(info_of_handle(other).tag, "s1");
    assert_int_equal(info_of_handle(other).vm, 1);
}

static void test_open_without_tag_gives_the_latest_published(void **state)
{
    (void)state;
    char msg[160];
    take(0, "first", "s", 1);
    core_snap_t second = take(0, "second", "s", 1);
    take(1, "later", "s", 1);              /* another VM's is not this one's latest */
    core_snap_t unfinished = core_snap_begin(0, "third", msg, sizeof msg);
    assert_true(unfinished >= 0);
    assert_int_equal(save_all(unfinished, msg, sizeof msg, NULL), 0);

    core_snap_t r = core_snap_open(0, NULL, msg, sizeof msg);
    assert_int_equal(r, second);
    core_snap_close(r);
    r = core_snap_open(0, "", msg, sizeof msg);
    assert_int_equal(r, second);
    assert_string_equal(info_of_handle(r).tag, "second");
    core_snap_close(r);

    assert_int_equal(core_snap_open(0, "third", msg, sizeof msg), -1);
    assert_contains(msg, "no snapshot 'third'");
    assert_int_equal(core_snap_open(2, NULL, msg, sizeof msg), -1);
    assert_contains(msg, "no snapshot");
    assert_int_equal(core_snap_open(1, "first", msg, sizeof msg), -1);
}

static void test_list_is_oldest_first_across_vms(void **state)
{
    (void)state;
    char msg[160];
    /* Published in the order c, a, b, d: begun in another order, across VMs. */
    core_snap_t a = core_snap_begin(0, "a", msg, sizeof msg);
    core_snap_t b = core_snap_begin(1, "b", msg, sizeof msg);
    take(2, "c", "s", 1);
    assert_int_equal(save_all(a, msg, sizeof msg, NULL), 0);
    assert_int_equal(save_all(b, msg, sizeof msg, NULL), 0);
    fake_now = 2000;
    assert_int_equal(core_snap_commit(a, "s", 1, 0, msg, sizeof msg), 0);
    fake_now = 3000;
    assert_int_equal(core_snap_commit(b, "s", 1, 0, msg, sizeof msg), 0);
    take(0, "d", "s", 1);
    core_snap_t unfinished = core_snap_begin(1, "e", msg, sizeof msg);
    assert_true(unfinished >= 0);

    struct core_snap_info list[SNAP_MAX];
    assert_int_equal(core_snap_list(list, SNAP_MAX), 4);
    static const char *const order[] = { "c", "a", "b", "d" };
    static const core_vm_t vm[] = { 2, 0, 1, 0 };
    for (int i = 0; i < 4; i++) {
        assert_string_equal(list[i].tag, order[i]);
        assert_int_equal(list[i].vm, vm[i]);
    }
    assert_int_equal(list[1].taken_ns, 2000);
    assert_int_equal(list[2].taken_ns, 3000);
    /* A short list keeps the oldest. */
    memset(list, 0, sizeof list);
    assert_int_equal(core_snap_list(list, 2), 2);
    assert_string_equal(list[0].tag, "c");
    assert_string_equal(list[1].tag, "a");
    assert_int_equal(list[2].vm, 0);
    assert_string_equal(list[2].tag, "");
}

static void test_drop(void **state)
{
    (void)state;
    char msg[160];
    take(0, "keep", "s", 1);
    memset(page_of(1, 0), 0x33, 3 * PAGE_SIZE);
    core_snap_t s = take(1, "gone", "state", 5);
    uint64_t total = info_of_handle(s).total_bytes;
    assert_int_equal(total, (1 + 3 + 1) * PAGE_SIZE);
    uint64_t used = used_now(), pages = outstanding_pages;

    assert_int_equal(core_snap_drop(1, "missing", msg, sizeof msg), -1);
    assert_contains(msg, "no snapshot 'missing'");
    assert_int_equal(core_snap_drop(0, "gone", msg, sizeof msg), -1);
    assert_int_equal(core_snap_drop(1, NULL, msg, sizeof msg), -1);
    assert_int_equal(core_snap_drop(1, "", msg, sizeof msg), -1);

    /* Held by two restores: refused until both have closed. */
    assert_int_equal(core_snap_open(1, "gone", msg, sizeof msg), s);
    assert_int_equal(core_snap_open(1, NULL, msg, sizeof msg), s);
    assert_int_equal(core_snap_drop(1, "gone", msg, sizeof msg), -1);
    assert_contains(msg, "being restored");
    core_snap_close(s);
    assert_int_equal(core_snap_drop(1, "gone", msg, sizeof msg), -1);
    core_snap_close(s);
    assert_int_equal(used_now(), used);
    assert_int_equal(outstanding_pages, pages);

    assert_int_equal(core_snap_drop(1, "gone", msg, sizeof msg), 0);
    assert_int_equal(used_now(), used - total);
    assert_int_equal(outstanding_pages * PAGE_SIZE, pages * PAGE_SIZE - total);
    assert_int_equal(core_snap_open(1, "gone", msg, sizeof msg), -1);
    assert_int_equal(core_snap_drop(1, "gone", msg, sizeof msg), -1);
    struct core_snap_info list[2];
    assert_int_equal(core_snap_list(list, 2), 1);
    assert_string_equal(list[0].tag, "keep");
    /* Its handle is dead too. */
    assert_int_equal(core_snap_load_ram(s), 0);
    assert_int_equal(info_of_handle(s).vm, -1);
}

static void test_at_most_32_snapshots(void **state)
{
    (void)state;
    char msg[160] = "", tag[CORE_SNAP_TAG_MAX];
    core_snap_t s[SNAP_MAX];
    for (int i = 0; i < SNAP_MAX; i++) {
        snprintf(tag, sizeof tag, "t%u", (unsigned)i);
        /* Half published, half still being taken: both hold a place. */
        s[i] = i % 2 ? core_snap_begin(i % NVMS, tag, msg, sizeof msg) : take(i % NVMS, tag, "s", 1);
        assert_true(s[i] >= 0);
    }
    uint64_t used = used_now();
    assert_int_equal(core_snap_begin(2, "one-more", msg, sizeof msg), -1);
    assert_contains(msg, "32 snapshots");
    assert_int_equal(used_now(), used);
    core_snap_abort(s[1]);
    assert_true(core_snap_begin(2, "one-more", msg, sizeof msg) >= 0);
    assert_int_equal(core_snap_begin(2, "two-more", msg, sizeof msg), -1);
    assert_int_equal(core_snap_drop(0, "t0", msg, sizeof msg), 0);
    assert_true(core_snap_begin(2, "two-more", msg, sizeof msg) >= 0);
}

static void test_abort_frees_everything(void **state)
{
    (void)state;
    char msg[160];
    memset(ram_of(0), 0x77, CHUNK_BYTES + 5 * PAGE_SIZE);
    page_of(0, 7 * CHUNK_PAGES)[0] = 1;

    /* Part way: one step's chunks are copied, the rest not yet. */
    core_snap_t s = core_snap_begin(0, "ab", msg, sizeof msg);
    assert_true(s >= 0);
    assert_int_equal(core_snap_save_ram(s, msg, sizeof msg), 1);
    assert_true(outstanding_pages > CHUNK_PAGES);
    core_snap_abort(s);
    assert_int_equal(outstanding_pages, 0);
    assert_int_equal(used_now(), 0);
    assert_int_equal(core_snap_save_ram(s, msg, sizeof msg), -1);
    assert_int_equal(core_snap_commit(s, "s", 1, 0, msg, sizeof msg), -1);

    /* All RAM in, not committed. */
    s = core_snap_begin(0, "ab", msg, sizeof msg);
    assert_true(s >= 0);
    assert_int_equal(save_all(s, msg, sizeof msg, NULL), 0);
    core_snap_abort(s);
    assert_int_equal(outstanding_pages, 0);
    assert_int_equal(used_now(), 0);
    assert_int_equal(core_snap_list(&(struct core_snap_info){ 0 }, 1), 0);

    /* A published one is not the builder's to abort. */
    s = take(0, "ab", "s", 1);
    uint64_t used = used_now();
    core_snap_abort(s);
    core_snap_abort(-1);
    core_snap_abort(SNAP_MAX);
    assert_int_equal(used_now(), used);
    assert_int_equal(core_snap_open(0, "ab", msg, sizeof msg), s);
    core_snap_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_restores_ram_and_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_chunk_without_a_2m_page_is_kept_in_4k_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_in_parts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zero_pages_cost_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_state_gives_its_page_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_over_budget_is_refused_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_over_budget_is_refused_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_budget_is_refused_at_begin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshots_off_are_refused_at_begin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_host_memory_keeps_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_without_tag_gives_the_latest_published, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_is_oldest_first_across_vms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_at_most_32_snapshots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_frees_everything, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
