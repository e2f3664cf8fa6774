/* The split virtqueue engine (vmm/virtio/virtqueue.c) and the guest-memory
 * accessor under it, against a fake guest RAM: chains read the way a Linux driver
 * lays them out, then everything a hostile driver can put in the rings (loops,
 * indices and addresses out of range, lengths that overflow, bad indirect tables,
 * misordered buffers, a used index moved under the device's feet), each of which
 * must end in its own error and a queue that stays broken until reset. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "vmm/virtio/guest_mem.c"
#include "vmm/virtio/virtqueue.c"

#define RAM_SIZE  (1u << 20)
#define QSIZE     8
#define DESC      0x1000ull
#define AVAIL     0x2000ull
#define USED      0x3000ull
#define USED_EVENT  (AVAIL + 4 + 2 * QSIZE)
#define AVAIL_EVENT (USED + 4 + 8 * QSIZE)
#define F_INDIRECT  (1ull << VIRTIO_F_INDIRECT_DESC)
#define F_EVENT_IDX (1ull << VIRTIO_F_EVENT_IDX)

static uint8_t *ram;
static struct gmem g;
static struct vq q;
static struct vq_seg segs[64];
static struct vq_chain chain;
static uint16_t drv_avail;          /* the fake driver's avail->idx */

/* ---- the fake guest: raw little-endian stores into its RAM ---------------------- */

static void wr16(uint64_t gpa, uint16_t v) { memcpy(ram + gpa, &v, 2); }
static void wr32(uint64_t gpa, uint32_t v) { memcpy(ram + gpa, &v, 4); }
static uint16_t rd16(uint64_t gpa) { uint16_t v; memcpy(&v, ram + gpa, 2); return v; }
static uint32_t rd32(uint64_t gpa) { uint32_t v; memcpy(&v, ram + gpa, 4); return v; }

static void desc_in(uint64_t table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    uint64_t at = table + 16ull * i;
    memcpy(ram + at, &addr, 8);
    wr32(at + 8, len);
    wr16(at + 12, flags);
    wr16(at + 14, next);
}

static void desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    desc_in(DESC, i, addr, len, flags, next);
}

/* Makes head available the way §2.7.13 has it: ring entry first, then idx. */
static void offer(uint16_t head)
{
    wr16(AVAIL + 4 + 2 * (drv_avail % QSIZE), head);
    drv_avail++;
    wr16(AVAIL + 2, drv_avail);
}

/* A zeroed guest and an enabled queue of QSIZE with the given features. */
static void fresh(uint64_t features, uint32_t max_chain_bytes)
{
    memset(ram, 0, RAM_SIZE);
    drv_avail = 0;
    vq_init(&q, max_chain_bytes);
    vq_set_features(&q, features);
    assert_int_equal(vq_set_addrs(&q, &g, QSIZE, DESC, AVAIL, USED), VQ_OK);
    chain = (struct vq_chain){ .seg = segs, .seg_cap = 64 };
}

static int setup(void **state)
{
    (void)state;
    ram = calloc(1, RAM_SIZE);
    assert_non_null(ram);
    gmem_init(&g, ram, RAM_SIZE);
    fresh(F_INDIRECT, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(ram);
    return 0;
}

/* One hostile case: the pop fails with want, and the queue is now broken. */
static void pop_fails(enum vq_error want)
{
    uint16_t used_before = rd16(USED + 2);
    assert_string_equal(vq_error_name(vq_pop(&q, &g, &chain)), vq_error_name(want));
    assert_true(q.broken);
    assert_int_equal(q.error, want);
    assert_int_equal(vq_device_status(&q), VIRTIO_STATUS_DEVICE_NEEDS_RESET);
    assert_true(vq_error_is_driver(want));
    assert_int_equal(rd16(USED + 2), used_before);
}

/* ---- guest memory ------------------------------------------------------------ */

static void test_gmem_bounds(void **state)
{
    (void)state;
    assert_true(gmem_contains(&g, 0, RAM_SIZE));
    assert_true(gmem_contains(&g, RAM_SIZE - 1, 1));
    assert_false(gmem_contains(&g, RAM_SIZE, 1));
    assert_false(gmem_contains(&g, RAM_SIZE - 1, 2));
    assert_false(gmem_contains(&g, 0, RAM_SIZE + 1ull));
    assert_false(gmem_contains(&g, 0, 0));
    /* gpa + len wraps past 2^64 to a small number. */
    assert_false(gmem_contains(&g, UINT64_MAX - 15, 32));
    assert_false(gmem_contains(&g, UINT64_MAX, 1));
    assert_false(gmem_contains(&g, 16, UINT64_MAX - 8));

    assert_ptr_equal(gmem_ptr(&g, 0x40, 8), ram + 0x40);
    assert_null(gmem_ptr(&g, RAM_SIZE - 4, 8));
    assert_null(gmem_ptr(&g, UINT64_MAX - 3, 8));

    uint8_t buf[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    ram[RAM_SIZE - 1] = 0xaa;
    assert_false(gmem_write(&g, RAM_SIZE - 4, buf, 8));
    assert_int_equal(ram[RAM_SIZE - 1], 0xaa);          /* nothing half-written */
    assert_true(gmem_write(&g, RAM_SIZE - 8, buf, 8));
    assert_int_equal(ram[RAM_SIZE - 1], 8);
    uint8_t out[8] = { 0 };
    assert_false(gmem_read(&g, RAM_SIZE - 7, out, 8));
    assert_int_equal(out[0], 0);
    assert_true(gmem_read(&g, RAM_SIZE - 8, out, 8));
    assert_memory_equal(out, buf, 8);

    uint16_t v = 0x5555;
    assert_false(gmem_read_u16(&g, RAM_SIZE - 1, &v));
    assert_int_equal(v, 0x5555);
    assert_false(gmem_write_u16(&g, RAM_SIZE - 1, 1));
    assert_true(gmem_write_u16(&g, 0x11, 0xbeef));      /* unaligned: still whole */
    assert_true(gmem_read_u16(&g, 0x11, &v));
    assert_int_equal(v, 0xbeef);

    struct gmem none;
    gmem_init(&none, NULL, RAM_SIZE);
    assert_false(gmem_contains(&none, 0, 1));
}

/* ---- chains a good driver makes -------------------------------------------- */

static void test_good_chain(void **state)
{
    (void)state;
    /* A virtio-blk request: header and a second readable part, then data to write,
     * linked out of table order. */
    desc(0, 0x10000, 16, VIRTQ_DESC_F_NEXT, 5);
    desc(5, 0x10100, 100, VIRTQ_DESC_F_NEXT, 2);
    desc(2, 0x20000, 512, VIRTQ_DESC_F_WRITE, 7);       /* next ignored without NEXT */
    offer(0);
    assert_int_equal(vq_pop(&q, &g, &chain), VQ_OK);
    assert_int_equal(chain.head, 0);
    assert_int_equal(chain.n_seg, 3);
    assert_int_equal(chain.n_readable, 2);
    assert_int_equal(chain.read_bytes, 116);
    assert_int_equal(chain.write_bytes, 512);
    assert_int_equal(segs[0].gpa, 0x10000);
    assert_int_equal(segs[0].len, 16);
    assert_int_equal(segs[1].gpa, 0x10100);
    assert_int_equal(segs[1].len, 100);
    assert_int_equal(segs[2].gpa, 0x20000);
    assert_int_equal(segs[2].len, 512);
    assert_int_equal(q.stats.descs, 3);
    assert_int_equal(vq_pop(&q, &g, &chain), VQ_EMPTY);

    assert_int_equal(vq_push(&q, &g, 0, 300), VQ_OK);
    assert_int_equal(rd32(USED + 4), 0);                /* id */
    assert_int_equal(rd32(USED + 8), 300);              /* len */
    assert_int_equal(rd16(USED + 2), 1);
    assert_false(q.broken);

    /* A second request lands in the next entries of both rings. */
    desc(3, 0x30000, 64, VIRTQ_DESC_F_WRITE, 0);
    offer(3);
    assert_int_equal(vq_pop(&q, &g, &chain), VQ_OK);
    assert_int_equal(chain.head, 3);
    assert_int_equal(chain.n_readable, 0);
    assert_int_equal(chain.write_bytes, 64);
    assert_int_equal(vq_push(&q, &g, 3, 64), VQ_OK);
    assert_int_equal(rd32(USED + 12), 3);
    assert_int_equal(rd16(USED + 2), 2);
}

static void test_zero_length_dropped(void **state)
{
    (void)state;
    desc(0, 0xdead0000000ull, 0, VIRTQ_DESC_F_NEXT, 1);  /* empty: address unused */
    desc(1, 0x20000, 8, VIRTQ_DESC_F_WRITE, 0);
    offer(0);
    assert_int_equal(vq_pop(&q, &g, &chain), VQ_OK);
    assert_int_equal(chain.n_seg, 1);
    assert_int_equal(chain.n_readable, 0);
    assert_int_equal(segs[0].gpa, 0x20000);
}

static void test_chain_as_long_as_the_table(void **state)
{
    (void)state;
    for (unsigned i = 0; i < QSIZE; i++)
        desc(i, 0x10000 + 0x100 * i, 8, i + 1 < QSIZE ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(i + 1));
    offer(0);
    assert_int_equal(vq_pop(&q, &g, &chain), VQ_OK);
    assert_int_equal(chain.n_seg, QSIZE);
}

static void test_indirect_table(void **state)
{
    (void)state;
    /* One direct descriptor, then the table (§2.7.5.3.2: zero or more direct ones
     * followed by a single indirect one).  The table's WRITE flag is ignored. */
    desc(0, 0x30000, 8, VIRTQ_DESC_F_NEXT, 3);
    desc(3, 0x8000, 3 * 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE, 0);
    desc_in(0x8000, 0, 0x10000, 16, VIRTQ_DESC_F_NEXT, 2);
    desc_in(0x8000, 2, 0x20000, 64, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
    desc_in(0x8000, 1, 0x20100, 1, VIRTQ_DESC_F_WRITE, 0);
    offer(0);
    assert_int_equal(vq_pop(&q, &g, &chain), VQ_OK);
    assert_int_equal(chain.head, 0);
    assert_int_equal(chain.n_seg, 4);
    assert_int_equal(chain.n_readable, 2);
    assert_int_equal(segs[0].gpa, 0x30000);
    assert_int_equal(segs[1].gpa, 0x10000);
    assert_int_equal(segs[2].gpa, 0x20000);
    assert_int_equal(segs[3].gpa, 0x20100);
    assert_int_equal(chain.read_bytes, 24);
    assert_int_equal(chain.write_bytes, 65);
    assert_int_equal(q.stats.descs, 5);
}

/* ---- hostile chains ----------------------------------------------------------- */

static void test_loop_to_itself(void **state)
{
    (void)state;
    desc(0, 0x10000, 16, VIRTQ_DESC_F_NEXT, 0);
    offer(0);
    pop_fails(VQ_ERR_CHAIN_LOOP);
    /* Empty descriptors add no segment and no length, so only the time-to-live can
     * stop this one (main()'s alarm turns a hang into a failure). */
    fresh(F_INDIRECT, 0);
    desc(4, 0, 0, VIRTQ_DESC_F_NEXT, 4);
    offer(4);
    pop_fails(VQ_ERR_CHAIN_LOOP);
    assert_int_equal(q.stats.descs, QSIZE);
}

static void test_loop_of_two(void **state)
{
    (void)state;
    desc(1, 0x10000, 16, VIRTQ_DESC_F_NEXT, 6);
    desc(6, 0x10010, 16, VIRTQ_DESC_F_NEXT, 1);
    offer(1);
    pop_fails(VQ_ERR_CHAIN_LOOP);
    /* And inside an indirect table, whose own count is the time-to-live. */
    fresh(F_INDIRECT, 0);
    desc(0, 0x8000, 2 * 16, VIRTQ_DESC_F_INDIRECT, 0);
    desc_in(0x8000, 0, 0, 0, VIRTQ_DESC_F_NEXT, 1);
    desc_in(0x8000, 1, 0, 0, VIRTQ_DESC_F_NEXT, 0);
    offer(0);
    pop_fails(VQ_ERR_CHAIN_LOOP);
    assert_int_equal(q.stats.descs, 1 + 2);
}

static void test_next_out_of_range(void **state)
{
    (void)state;
    desc(0, 0x10000, 16, VIRTQ_DESC_F_NEXT, QSIZE);
    offer(0);
    pop_fails(VQ_ERR_NEXT_RANGE);
    fresh(F_INDIRECT, 0);
    desc(0, 0x10000, 16, VIRTQ_DESC_F_NEXT, 0xffff);
    offer(0);
    pop_fails(VQ_ERR_NEXT_RANGE);
    /* In an indirect table of 2, next 2 is past the table though below QSIZE. */
    fresh(F_INDIRECT, 0);
    desc(0, 0x8000, 2 * 16, VIRTQ_DESC_F_INDIRECT, 0);
    desc_in(0x8000, 0, 0x10000, 8, VIRTQ_DESC_F_NEXT, 2);
    offer(0);
    pop_fails(VQ_ERR_NEXT_RANGE);
}

static void test_head_out_of_range(void **state)
{
    (void)state;
    offer(QSIZE);
    pop_fails(VQ_ERR_HEAD_RANGE);
}

static void test_buffer_outside_ram(void **state)
{
    (void)state;
    static const struct { uint64_t gpa; uint32_t len; } bad[] = {
        { RAM_SIZE - 8, 16 },               /* runs past the end */
        { RAM_SIZE, 1 },                    /* just above RAM: the MMIO window */
        { 0xfee00000, 4 },                  /* the LAPIC page */
        { UINT64_MAX - 7, 16 },             /* gpa + len wraps to 8 */
        { UINT64_MAX, 1 },
    };
    for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fresh(F_INDIRECT, 0);
        desc(0, 0x10000, 8, VIRTQ_DESC_F_NEXT, 1);
        desc(1, bad[i].gpa, bad[i].len, VIRTQ_DESC_F_WRITE, 0);
        offer(0);
        pop_fails(VQ_ERR_BUF_RANGE);
    }
    /* The last bytes of RAM are fine. */
    fresh(F_INDIRECT, 0);
    desc(0, RAM_SIZE - 16, 16, 0, 0);
    offer(0);
    assert_int_equal(vq_pop(&q, &g, &chain), VQ_OK);
}

static void test_length_limit(void **state)
{
    (void)state;
    fresh(F_INDIRECT, 1000);
    desc(0, 0x10000, 500, VIRTQ_DESC_F_NEXT, 1);
    desc(1, 0x20000, 500, VIRTQ_DESC_F_WRITE, 0);
    offer(0);
    assert_int_equal(vq_pop(&q, &g, &chain), VQ_OK);        /* exactly the limit */
    desc(2, 0x10000, 600, VIRTQ_DESC_F_NEXT, 3);
    desc(3, 0x20000, 401, VIRTQ_DESC_F_WRITE, 0);
    offer(2);
    pop_fails(VQ_ERR_CHAIN_BYTES);
}

static void test_length_sum_past_32_bits(void **state)
{
    (void)state;
    /* Two buffers of 4 GiB - 1 sum to 0x1fffffffe, which a 32-bit total would see
     * as 0xfffffffe, under the limit.  The guest here claims 16 GiB of RAM over the
     * 1 MiB buffer: the walker reads only descriptors, never buffer contents, so no
     * access leaves the buffer (ASan checks that). */
    struct gmem big;
    gmem_init(&big, ram, 1ull << 34);
    desc(0, 0x100000000ull, 0xffffffffu, VIRTQ_DESC_F_NEXT, 1);
    offer(0);
    desc(1, 0x200000000ull, 0xffffffffu, VIRTQ_DESC_F_WRITE, 0);
    assert_int_equal(vq_pop(&q, &big, &chain), VQ_ERR_CHAIN_BYTES);
    assert_true(q.broken);
    /* One of them alone is the largest chain a used element can report. */
    fresh(F_INDIRECT, 0);
    desc(0, 0x100000000ull, 0xffffffffu, 0, 0);
    offer(0);
    assert_int_equal(vq_pop(&q, &big, &chain), VQ_OK);
    assert_int_equal(chain.read_bytes, 0xffffffffu);
}

static void test_too_many_segments(void **state)
{
    (void)state;
    chain.seg_cap = 2;
    desc(0, 0x10000, 8, VIRTQ_DESC_F_NEXT, 1);
    desc(1, 0x10010, 8, VIRTQ_DESC_F_NEXT, 2);
    desc(2, 0x10020, 8, 0, 0);
    offer(0);
    pop_fails(VQ_ERR_CHAIN_SEGS);
}

static void test_writable_then_readable(void **state)
{
    (void)state;
    desc(0, 0x10000, 8, VIRTQ_DESC_F_NEXT, 1);
    desc(1, 0x20000, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
    desc(2, 0x10100, 8, 0, 0);
    offer(0);
    pop_fails(VQ_ERR_ORDER);
    /* An empty writable descriptor counts too. */
    fresh(F_INDIRECT, 0);
    desc(0, 0, 0, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
    desc(1, 0x10100, 8, 0, 0);
    offer(0);
    pop_fails(VQ_ERR_ORDER);
    /* And across the step from direct descriptors into an indirect table. */
    fresh(F_INDIRECT, 0);
    desc(0, 0x20000, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
    desc(1, 0x8000, 16, VIRTQ_DESC_F_INDIRECT, 0);
    desc_in(0x8000, 0, 0x10000, 8, 0, 0);
    offer(0);
    pop_fails(VQ_ERR_ORDER);
}

static void test_indirect_bad_len(void **state)
{
    (void)state;
    static const uint32_t bad[] = { 0, 8, 24, 16 * (QSIZE + 1), 0xfffffff0u };
    for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fresh(F_INDIRECT, 0);
        desc(0, 0x8000, bad[i], VIRTQ_DESC_F_INDIRECT, 0);
        offer(0);
        pop_fails(VQ_ERR_INDIRECT_LEN);
    }
    /* A table of exactly QSIZE entries is the longest allowed. */
    fresh(F_INDIRECT, 0);
    desc(0, 0x8000, 16 * QSIZE, VIRTQ_DESC_F_INDIRECT, 0);
    offer(0);
    assert_int_equal(vq_pop(&q, &g, &chain), VQ_OK);
}

static void test_indirect_outside_ram(void **state)
{
    (void)state;
    desc(0, RAM_SIZE - 16, 32, VIRTQ_DESC_F_INDIRECT, 0);
    offer(0);
    pop_fails(VQ_ERR_INDIRECT_RANGE);
    fresh(F_INDIRECT, 0);
    desc(0, UINT64_MAX - 15, 32, VIRTQ_DESC_F_INDIRECT, 0);
    offer(0);
    pop_fails(VQ_ERR_INDIRECT_RANGE);
}

static void test_indirect_nested(void **state)
{
    (void)state;
    desc(0, 0x8000, 2 * 16, VIRTQ_DESC_F_INDIRECT, 0);
    desc_in(0x8000, 0, 0x10000, 8, VIRTQ_DESC_F_NEXT, 1);
    desc_in(0x8000, 1, 0x8000, 2 * 16, VIRTQ_DESC_F_INDIRECT, 0);   /* itself again */
    offer(0);
    pop_fails(VQ_ERR_INDIRECT_NESTED);
}

static void test_indirect_with_next(void **state)
{
    (void)state;
    desc(0, 0x8000, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
    desc(1, 0x10000, 8, 0, 0);
    desc_in(0x8000, 0, 0x10000, 8, 0, 0);
    offer(0);
    pop_fails(VQ_ERR_INDIRECT_NEXT);
}

static void test_indirect_not_negotiated(void **state)
{
    (void)state;
    fresh(0, 0);
    desc(0, 0x8000, 16, VIRTQ_DESC_F_INDIRECT, 0);
    desc_in(0x8000, 0, 0x10000, 8, 0, 0);
    offer(0);
    pop_fails(VQ_ERR_INDIRECT_FEATURE);
}

static void test_avail_idx_jump(void **state)
{
    (void)state;
    /* Exactly QSIZE outstanding is a full ring, and fine. */
    for (unsigned i = 0; i < QSIZE; i++) {
        desc(i, 0x10000, 8, 0, 0);
        offer((uint16_t)i);
    }
    for (unsigned i = 0; i < QSIZE; i++)
        assert_int_equal(vq_pop(&q, &g, &chain), VQ_OK);
    assert_int_equal(vq_pop(&q, &g, &chain), VQ_EMPTY);
    /* Once one is returned, the driver may offer one more ... */
    assert_int_equal(vq_push(&q, &g, 0, 0), VQ_OK);
    offer(0);
    assert_int_equal(vq_pop(&q, &g, &chain), VQ_OK);
    /* ... but not a second: that reuses descriptors the device still holds, though
     * the device has only one chain left to take. */
    offer(1);
    pop_fails(VQ_ERR_AVAIL_IDX);
    /* An index far ahead. */
    fresh(F_INDIRECT, 0);
    desc(0, 0x10000, 8, 0, 0);
    offer(0);
    wr16(AVAIL + 2, (uint16_t)(QSIZE + 1));
    pop_fails(VQ_ERR_AVAIL_IDX);
    /* An index moved backwards looks 65535 ahead. */
    fresh(F_INDIRECT, 0);
    desc(0, 0x10000, 8, 0, 0);
    offer(0);
    offer(0);
    assert_int_equal(vq_pop(&q, &g, &chain), VQ_OK);
    assert_int_equal(vq_push(&q, &g, 0, 0), VQ_OK);
    wr16(AVAIL + 2, 0);
    pop_fails(VQ_ERR_AVAIL_IDX);
}

/* ---- queue configuration ------------------------------------------------------ */

static void expect_setup_error(uint16_t size, uint64_t d, uint64_t a, uint64_t u, enum vq_error want)
{
    vq_reset(&q);
    assert_int_equal(vq_set_addrs(&q, &g, size, d, a, u), want);
    assert_false(q.enabled);
    assert_true(q.broken);
    assert_int_equal(vq_device_status(&q), VIRTIO_STATUS_DEVICE_NEEDS_RESET);
    assert_int_equal(vq_pop(&q, &g, &chain), VQ_ERR_BROKEN);
}

static void test_queue_size(void **state)
{
    (void)state;
    static const uint16_t bad[] = { 0, 3, 6, 24, 0x8001, 0xffff };
    for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_setup_error(bad[i], 0, 0x80000, 0x90100, VQ_ERR_SIZE);
    static const uint16_t good[] = { 1, 2, 256, VQ_SIZE_MAX };
    for (unsigned i = 0; i < sizeof good / sizeof good[0]; i++) {
        vq_reset(&q);
        assert_int_equal(vq_set_addrs(&q, &g, good[i], 0, 0x80000, 0x90100), VQ_OK);
        assert_true(q.enabled);
    }
}

static void test_ring_alignment(void **state)
{
    (void)state;
    expect_setup_error(QSIZE, DESC + 8, AVAIL, USED, VQ_ERR_ALIGN);
    expect_setup_error(QSIZE, DESC, AVAIL + 1, USED, VQ_ERR_ALIGN);
    expect_setup_error(QSIZE, DESC, AVAIL, USED + 2, VQ_ERR_ALIGN);
    vq_reset(&q);
    assert_int_equal(vq_set_addrs(&q, &g, QSIZE, DESC + 16, AVAIL + 2, USED + 4), VQ_OK);
}

static void test_rings_outside_ram(void **state)
{
    (void)state;
    /* Each part one entry too long for the end of RAM. */
    expect_setup_error(QSIZE, RAM_SIZE - 16 * (QSIZE - 1), AVAIL, USED, VQ_ERR_RING_RANGE);
    expect_setup_error(QSIZE, DESC, RAM_SIZE - (6 + 2 * QSIZE) + 2, USED, VQ_ERR_RING_RANGE);
    expect_setup_error(QSIZE, DESC, AVAIL, RAM_SIZE - (6 + 8 * QSIZE) + 2, VQ_ERR_RING_RANGE);
    /* Addresses whose end wraps past 2^64. */
    expect_setup_error(QSIZE, UINT64_MAX - 15, AVAIL, USED, VQ_ERR_RING_RANGE);
    expect_setup_error(QSIZE, DESC, UINT64_MAX - 1, USED, VQ_ERR_RING_RANGE);
    expect_setup_error(QSIZE, DESC, AVAIL, UINT64_MAX - 3, VQ_ERR_RING_RANGE);
    /* A table ending exactly at the end of RAM is fine. */
    vq_reset(&q);
    assert_int_equal(vq_set_addrs(&q, &g, QSIZE, RAM_SIZE - 16 * QSIZE, AVAIL, USED), VQ_OK);
}

static void test_rings_overlap(void **state)
{
    (void)state;
    expect_setup_error(QSIZE, DESC, AVAIL, DESC + 16 * QSIZE - 4, VQ_ERR_RING_OVERLAP);
    expect_setup_error(QSIZE, DESC, DESC + 2, USED, VQ_ERR_RING_OVERLAP);
    expect_setup_error(QSIZE, DESC, AVAIL, AVAIL + 4, VQ_ERR_RING_OVERLAP);
    /* Back to back is fine. */
    vq_reset(&q);
    assert_int_equal(vq_set_addrs(&q, &g, QSIZE, DESC, DESC + 16 * QSIZE, DESC + 16 * QSIZE + 24), VQ_OK);
}

static void test_not_ready(void **state)
{
    (void)state;
    vq_reset(&q);
    assert_int_equal(vq_pop(&q, &g, &chain), VQ_ERR_NOT_READY);
    assert_int_equal(vq_push(&q, &g, 0, 0), VQ_ERR_NOT_READY);
    assert_false(vq_should_notify(&q, &g));
    assert_false(q.broken);
}

static void test_broken_until_reset(void **state)
{
    (void)state;
    /* One good request completed but not yet signalled, then a looping one. */
    desc(2, 0x20000, 8, VIRTQ_DESC_F_WRITE, 0);
    offer(2);
    assert_int_equal(vq_pop(&q, &g, &chain), VQ_OK);
    assert_int_equal(vq_push(&q, &g, 2, 8), VQ_OK);
    desc(0, 0x10000, 8, VIRTQ_DESC_F_NEXT, 0);
    desc(1, 0x10000, 8, 0, 0);
    offer(0);
    offer(1);
    pop_fails(VQ_ERR_CHAIN_LOOP);
    /* The driver fixes the chain: still nothing until reset. */
    desc(0, 0x10000, 8, 0, 0);
    assert_int_equal(vq_pop(&q, &g, &chain), VQ_ERR_BROKEN);
    assert_false(vq_error_is_driver(VQ_ERR_BROKEN));     /* not logged again */
    assert_int_equal(q.error, VQ_ERR_CHAIN_LOOP);
    /* Nothing written to the used ring either, and no interrupt. */
    wr16(USED, 0x5a5a);
    assert_int_equal(vq_push(&q, &g, 0, 8), VQ_ERR_BROKEN);
    vq_used_flush(&q, &g);
    assert_int_equal(rd16(USED + 2), 1);
    assert_int_equal(rd32(USED + 12), 0);
    assert_false(vq_should_notify(&q, &g));             /* not even for the good one */
    assert_false(vq_enable_notify(&q, &g));
    vq_disable_notify(&q, &g);
    assert_int_equal(rd16(USED), 0x5a5a);
    assert_int_equal(vq_set_addrs(&q, &g, QSIZE, DESC, AVAIL, USED), VQ_ERR_BROKEN);
    assert_int_equal(vq_device_status(&q), VIRTIO_STATUS_DEVICE_NEEDS_RESET);

    /* Reset (§2.4): the driver starts over with fresh rings. */
    vq_reset(&q);
    assert_false(q.broken);
    assert_int_equal(vq_device_status(&q), 0);
    assert_int_equal(vq_pop(&q, &g, &chain), VQ_ERR_NOT_READY);
    memset(ram + AVAIL, 0, 6 + 2 * QSIZE);
    memset(ram + USED, 0, 6 + 8 * QSIZE);
    drv_avail = 0;
    vq_set_features(&q, F_INDIRECT);
    assert_int_equal(vq_set_addrs(&q, &g, QSIZE, DESC, AVAIL, USED), VQ_OK);
    offer(0);
    assert_int_equal(vq_pop(&q, &g, &chain), VQ_OK);
    assert_int_equal(vq_push(&q, &g, 0, 8), VQ_OK);
    assert_int_equal(rd16(USED + 2), 1);
    assert_int_equal(rd32(USED + 8), 8);
    assert_true(vq_should_notify(&q, &g));
}

static void test_reset_clears_features(void **state)
{
    (void)state;
    desc(0, 0x8000, 16, VIRTQ_DESC_F_INDIRECT, 0);
    desc_in(0x8000, 0, 0x10000, 8, 0, 0);
    offer(0);
    assert_int_equal(vq_pop(&q, &g, &chain), VQ_OK);
    /* After a reset the driver negotiates again; here it accepts nothing. */
    vq_reset(&q);
    assert_int_equal(vq_set_addrs(&q, &g, QSIZE, DESC, AVAIL, USED), VQ_OK);
    assert_int_equal(q.last_avail_idx, 0);
    drv_avail = 0;
    offer(0);
    pop_fails(VQ_ERR_INDIRECT_FEATURE);
}

/* ---- the used ring -------------------------------------------------------------- */

static void test_used_idx_scribbled(void **state)
{
    (void)state;
    desc(0, 0x20000, 8, VIRTQ_DESC_F_WRITE, 0);
    desc(1, 0x20100, 8, VIRTQ_DESC_F_WRITE, 0);
    offer(0);
    offer(1);
    assert_int_equal(vq_pop(&q, &g, &chain), VQ_OK);
    /* The driver writes the device's own index; the device keeps its shadow. */
    wr16(USED + 2, 0x1234);
    assert_int_equal(vq_push(&q, &g, 0, 8), VQ_OK);
    assert_int_equal(rd16(USED + 2), 1);
    assert_int_equal(rd32(USED + 4), 0);
    assert_int_equal(rd32(USED + 8), 8);
    /* Nothing landed where the scribbled index pointed (0x1234 % 8 = 4). */
    assert_int_equal(rd32(USED + 4 + 8 * 4 + 4), 0);
    assert_true(vq_should_notify(&q, &g));
    wr16(USED + 2, 0xffff);
    assert_int_equal(vq_pop(&q, &g, &chain), VQ_OK);
    assert_int_equal(vq_push(&q, &g, 1, 4), VQ_OK);
    assert_int_equal(rd16(USED + 2), 2);
    assert_int_equal(rd32(USED + 12), 1);
    assert_int_equal(rd32(USED + 16), 4);
    assert_false(q.broken);
}

static void test_batching_publishes_once(void **state)
{
    (void)state;
    for (unsigned i = 0; i < 3; i++) {
        desc(i, 0x20000 + 0x100 * i, 16, VIRTQ_DESC_F_WRITE, 0);
        offer((uint16_t)i);
    }
    uint16_t heads[3];
    for (unsigned i = 0; i < 3; i++) {
        assert_int_equal(vq_pop(&q, &g, &chain), VQ_OK);
        heads[i] = chain.head;
    }
    /* Completed out of order, as a disk may. */
    assert_int_equal(vq_used_add(&q, &g, heads[2], 16), VQ_OK);
    assert_int_equal(vq_used_add(&q, &g, heads[0], 10), VQ_OK);
    assert_int_equal(vq_used_add(&q, &g, heads[1], 12), VQ_OK);
    assert_int_equal(rd16(USED + 2), 0);                 /* not visible yet */
    assert_int_equal(q.stats.publishes, 0);
    assert_false(vq_should_notify(&q, &g));             /* nothing published */
    vq_used_flush(&q, &g);
    assert_int_equal(rd16(USED + 2), 3);
    assert_int_equal(q.stats.publishes, 1);
    assert_int_equal(q.stats.used, 3);
    assert_int_equal(rd32(USED + 4), 2);
    assert_int_equal(rd32(USED + 12), 0);
    assert_int_equal(rd32(USED + 20), 1);
    assert_int_equal(rd32(USED + 24), 12);
    vq_used_flush(&q, &g);                              /* nothing new: no store */
    assert_int_equal(q.stats.publishes, 1);
    /* One interrupt for the batch. */
    assert_true(vq_should_notify(&q, &g));
    assert_false(vq_should_notify(&q, &g));
    assert_int_equal(q.stats.notifies, 1);
}

static void test_push_device_mistakes(void **state)
{
    (void)state;
    /* Completing a chain never taken. */
    assert_int_equal(vq_push(&q, &g, 0, 0), VQ_ERR_PUSH_UNPOPPED);
    assert_int_equal(rd16(USED + 2), 0);
    desc(0, 0x20000, 8, VIRTQ_DESC_F_WRITE, 0);
    offer(0);
    assert_int_equal(vq_pop(&q, &g, &chain), VQ_OK);
    assert_int_equal(vq_push(&q, &g, QSIZE, 0), VQ_ERR_PUSH_HEAD);
    assert_int_equal(vq_push(&q, &g, 0, 8), VQ_OK);
    assert_int_equal(vq_push(&q, &g, 0, 8), VQ_ERR_PUSH_UNPOPPED);
    assert_int_equal(rd16(USED + 2), 1);
    /* The device's own bugs do not break the driver's queue. */
    assert_false(q.broken);
    assert_false(vq_error_is_driver(VQ_ERR_PUSH_HEAD));
    assert_false(vq_error_is_driver(VQ_ERR_PUSH_UNPOPPED));
}

/* A device that found too few chains for one request gives the last ones back:
 * they are taken again, in order and re-read, and never reach the used ring. */
static void test_unpop_retakes_the_same_chains(void **state)
{
    (void)state;
    for (unsigned i = 0; i < 3; i++) {
        desc(i, 0x20000 + 0x100 * i, 16, VIRTQ_DESC_F_WRITE, 0);
        offer((uint16_t)i);
    }
    for (unsigned i = 0; i < 3; i++)
        assert_int_equal(vq_pop(&q, &g, &chain), VQ_OK);
    assert_int_equal(vq_used_add(&q, &g, 0, 16), VQ_OK);
    assert_int_equal(q.stats.chains, 3);
    /* Two taken and not completed: three cannot go back, two can. */
    assert_int_equal(vq_unpop(&q, 3), VQ_ERR_PUSH_UNPOPPED);
    assert_int_equal(q.last_avail_idx, 3);
    assert_false(q.broken);
    assert_int_equal(vq_unpop(&q, 2), VQ_OK);
    assert_int_equal(q.last_avail_idx, 1);
    assert_int_equal(q.stats.chains, 1);
    assert_int_equal(vq_unpop(&q, 1), VQ_ERR_PUSH_UNPOPPED);     /* 0 was completed */
    assert_int_equal(vq_unpop(&q, 0), VQ_OK);
    /* The driver rewrote one meanwhile: the new length is what the device sees. */
    desc(2, 0x20200, 40, VIRTQ_DESC_F_WRITE, 0);
    assert_int_equal(vq_pop(&q, &g, &chain), VQ_OK);
    assert_int_equal(chain.head, 1);
    assert_int_equal(vq_pop(&q, &g, &chain), VQ_OK);
    assert_int_equal(chain.head, 2);
    assert_int_equal(chain.write_bytes, 40);
    assert_int_equal(vq_pop(&q, &g, &chain), VQ_EMPTY);
    assert_int_equal(vq_used_add(&q, &g, 1, 16), VQ_OK);
    assert_int_equal(vq_used_add(&q, &g, 2, 40), VQ_OK);
    vq_used_flush(&q, &g);
    assert_int_equal(rd16(USED + 2), 3);
    assert_int_equal(rd32(USED + 4 + 8 * 1), 1);
    assert_int_equal(rd32(USED + 4 + 8 * 2), 2);

    /* A broken or disabled queue gives nothing back. */
    q.broken = true;
    assert_int_equal(vq_unpop(&q, 0), VQ_ERR_BROKEN);
    vq_reset(&q);
    assert_int_equal(vq_unpop(&q, 0), VQ_ERR_NOT_READY);
}

/* The order a waiting device follows: re-enable kicks while it still holds the
 * chains, then give them back.  With EVENT_IDX avail_event then names the first
 * entry beyond them, so the driver's next addition kicks. */
static void test_unpop_after_enable_notify(void **state)
{
    (void)state;
    fresh(F_EVENT_IDX, 0);
    for (unsigned i = 0; i < 2; i++) {
        desc(i, 0x20000 + 0x100 * i, 16, VIRTQ_DESC_F_WRITE, 0);
        offer((uint16_t)i);
    }
    assert_int_equal(vq_pop(&q, &g, &chain), VQ_OK);
    assert_int_equal(vq_pop(&q, &g, &chain), VQ_OK);
    assert_int_equal(vq_pop(&q, &g, &chain), VQ_EMPTY);
    assert_false(vq_enable_notify(&q, &g));
    assert_int_equal(vq_unpop(&q, 2), VQ_OK);
    assert_int_equal(rd16(AVAIL_EVENT), 2);
    /* The driver adds entry 2: old 2, new 3 passes avail_event (§2.7.10). */
    assert_true(vq_need_event(rd16(AVAIL_EVENT), 3, 2));
    assert_int_equal(vq_pop(&q, &g, &chain), VQ_OK);
    assert_int_equal(chain.head, 0);
}

/* ---- notifications ------------------------------------------------------------- */

static void pop_push_one(uint16_t head)
{
    desc(head, 0x20000, 8, VIRTQ_DESC_F_WRITE, 0);
    offer(head);
    assert_int_equal(vq_pop(&q, &g, &chain), VQ_OK);
    assert_int_equal(vq_push(&q, &g, head, 8), VQ_OK);
}

static void test_notify_flags(void **state)
{
    (void)state;
    /* Without EVENT_IDX: avail->flags says (§2.7.7.2). */
    pop_push_one(0);
    assert_true(vq_should_notify(&q, &g));
    assert_false(vq_should_notify(&q, &g));             /* nothing new since */
    wr16(AVAIL, VIRTQ_AVAIL_F_NO_INTERRUPT);
    pop_push_one(1);
    assert_false(vq_should_notify(&q, &g));
    assert_int_equal(q.stats.suppressed, 1);
    wr16(AVAIL, 0);
    pop_push_one(2);
    assert_true(vq_should_notify(&q, &g));
    /* used_event means nothing without the feature. */
    wr16(USED_EVENT, 100);
    pop_push_one(3);
    assert_true(vq_should_notify(&q, &g));

    /* Device side: used->flags (§2.7.10.2). */
    vq_disable_notify(&q, &g);
    assert_int_equal(rd16(USED), VIRTQ_USED_F_NO_NOTIFY);
    assert_false(vq_enable_notify(&q, &g));             /* nothing came meanwhile */
    assert_int_equal(rd16(USED), 0);
    vq_disable_notify(&q, &g);
    desc(4, 0x20000, 8, 0, 0);
    offer(4);                                           /* no kick: flags said so */
    assert_true(vq_enable_notify(&q, &g));              /* ... so it is found here */
    assert_int_equal(vq_pop(&q, &g, &chain), VQ_OK);
    assert_int_equal(rd16(AVAIL_EVENT), 0);             /* avail_event untouched */
}

static void test_event_idx_used_event(void **state)
{
    (void)state;
    fresh(F_EVENT_IDX, 0);
    /* "interrupt me once entry 2 is used" (§2.7.7.1); flags' lower bit ignored. */
    wr16(AVAIL, VIRTQ_AVAIL_F_NO_INTERRUPT);
    wr16(USED_EVENT, 2);
    pop_push_one(0);
    assert_false(vq_should_notify(&q, &g));
    pop_push_one(1);
    assert_false(vq_should_notify(&q, &g));
    pop_push_one(2);
    assert_true(vq_should_notify(&q, &g));
    /* A batch that passes used_event in its middle notifies once. */
    wr16(USED_EVENT, 4);
    for (uint16_t h = 3; h < 6; h++) {
        desc(h, 0x20000, 8, VIRTQ_DESC_F_WRITE, 0);
        offer(h);
        assert_int_equal(vq_pop(&q, &g, &chain), VQ_OK);
        assert_int_equal(vq_used_add(&q, &g, h, 8), VQ_OK);
    }
    vq_used_flush(&q, &g);
    assert_true(vq_should_notify(&q, &g));
    /* used_event behind the device: already signalled, no more. */
    pop_push_one(6);
    assert_false(vq_should_notify(&q, &g));
    assert_int_equal(q.stats.notifies, 2);
    assert_int_equal(q.stats.suppressed, 3);
}

static void test_event_idx_avail_event(void **state)
{
    (void)state;
    fresh(F_EVENT_IDX, 0);
    /* The driver kicks when its idx passes avail_event (§2.7.10.1). */
    assert_int_equal(rd16(AVAIL_EVENT), 0);             /* set up by vq_set_addrs */
    wr16(AVAIL_EVENT, 0x4242);                          /* (stale from a past life) */
    vq_reset(&q);
    vq_set_features(&q, F_EVENT_IDX);
    assert_int_equal(vq_set_addrs(&q, &g, QSIZE, DESC, AVAIL, USED), VQ_OK);
    assert_int_equal(rd16(AVAIL_EVENT), 0);
    desc(0, 0x10000, 8, 0, 0);
    desc(1, 0x10000, 8, 0, 0);
    desc(2, 0x10000, 8, 0, 0);
    offer(0);
    assert_true(vq_need_event(rd16(AVAIL_EVENT), drv_avail, (uint16_t)(drv_avail - 1)));
    /* The device drains; the driver adds more meanwhile and need not kick. */
    vq_disable_notify(&q, &g);
    assert_int_equal(rd16(USED), 0);                    /* flags stay 0 (§2.7.10.2) */
    assert_int_equal(vq_pop(&q, &g, &chain), VQ_OK);
    offer(1);
    assert_false(vq_need_event(rd16(AVAIL_EVENT), drv_avail, (uint16_t)(drv_avail - 1)));
    assert_int_equal(vq_pop(&q, &g, &chain), VQ_OK);
    assert_int_equal(vq_pop(&q, &g, &chain), VQ_EMPTY);
    /* Before it waits, the device asks for the next one. */
    assert_false(vq_enable_notify(&q, &g));
    assert_int_equal(rd16(AVAIL_EVENT), 2);
    offer(2);
    assert_true(vq_need_event(rd16(AVAIL_EVENT), drv_avail, (uint16_t)(drv_avail - 1)));
    /* A chain made available just before re-enabling is reported, not waited on. */
    assert_int_equal(vq_pop(&q, &g, &chain), VQ_OK);
    offer(0);
    assert_true(vq_enable_notify(&q, &g));
    assert_int_equal(vq_pop(&q, &g, &chain), VQ_OK);
}

static void test_event_idx_wraparound(void **state)
{
    (void)state;
    fresh(F_EVENT_IDX, 0);
    /* A queue that has been running for a while: every index at 65534. */
    q.last_avail_idx = q.used_idx = q.used_published = q.signalled_used = 65534;
    drv_avail = 65534;
    wr16(AVAIL + 2, drv_avail);
    wr16(USED + 2, 65534);
    for (uint16_t h = 0; h < 4; h++) {
        desc(h, 0x20000, 8, VIRTQ_DESC_F_WRITE, 0);
        offer(h);                                       /* idx 65535, 0, 1, 2 */
    }
    assert_int_equal(drv_avail, 2);
    for (uint16_t h = 0; h < 4; h++) {
        assert_int_equal(vq_pop(&q, &g, &chain), VQ_OK);
        assert_int_equal(chain.head, h);
    }
    assert_int_equal(vq_pop(&q, &g, &chain), VQ_EMPTY);
    assert_int_equal(q.last_avail_idx, 2);

    /* used_event 65535: the second completion (used idx 65535 -> 0) notifies. */
    wr16(USED_EVENT, 65535);
    assert_int_equal(vq_push(&q, &g, 0, 8), VQ_OK);     /* used idx 65535 */
    assert_false(vq_should_notify(&q, &g));
    assert_int_equal(vq_push(&q, &g, 1, 8), VQ_OK);     /* used idx 0 */
    assert_int_equal(rd16(USED + 2), 0);
    assert_int_equal(rd32(USED + 4 + 8 * (65535 % QSIZE)), 1);
    assert_true(vq_should_notify(&q, &g));
    /* used_event 0 is behind now; 1 is next. */
    wr16(USED_EVENT, 1);
    assert_int_equal(vq_push(&q, &g, 2, 8), VQ_OK);     /* used idx 1 */
    assert_false(vq_should_notify(&q, &g));
    assert_int_equal(vq_push(&q, &g, 3, 8), VQ_OK);     /* used idx 2 */
    assert_true(vq_should_notify(&q, &g));

    /* avail_event across the wrap, the driver's view. */
    assert_false(vq_enable_notify(&q, &g));
    assert_int_equal(rd16(AVAIL_EVENT), 2);
    assert_true(vq_need_event(2, 3, 2));
    assert_false(vq_need_event(2, 2, 1));
    assert_true(vq_need_event(65535, 0, 65535));
    assert_true(vq_need_event(65535, 3, 65534));        /* a batch across the wrap */
    assert_false(vq_need_event(65535, 3, 0));
}

static void test_error_names(void **state)
{
    (void)state;
    for (int a = VQ_OK; a <= VQ_ERR_PUSH_UNPOPPED; a++) {
        assert_string_not_equal(vq_error_name(a), "unknown virtqueue error");
        for (int b = VQ_OK; b < a; b++)
            assert_string_not_equal(vq_error_name(a), vq_error_name(b));
    }
    assert_string_equal(vq_error_name((enum vq_error)999), "unknown virtqueue error");
}

int main(void)
{
    /* A walk that never ends (a removed time-to-live) fails instead of hanging. */
    alarm(60);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_gmem_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_good_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zero_length_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_as_long_as_the_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_indirect_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loop_to_itself, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loop_of_two, setup, teardown),
        cmocka_unit_test_setup_teardown(test_next_out_of_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head_out_of_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_buffer_outside_ram, setup, teardown),
        cmocka_unit_test_setup_teardown(test_length_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_length_sum_past_32_bits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_many_segments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writable_then_readable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_indirect_bad_len, setup, teardown),
        cmocka_unit_test_setup_teardown(test_indirect_outside_ram, setup, teardown),
        cmocka_unit_test_setup_teardown(test_indirect_nested, setup, teardown),
        cmocka_unit_test_setup_teardown(test_indirect_with_next, setup, teardown),
        cmocka_unit_test_setup_teardown(test_indirect_not_negotiated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_avail_idx_jump, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_alignment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rings_outside_ram, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rings_overlap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_ready, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broken_until_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_clears_features, setup, teardown),
        cmocka_unit_test_setup_teardown(test_used_idx_scribbled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batching_publishes_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_push_device_mistakes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unpop_retakes_the_same_chains, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unpop_after_enable_notify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_idx_used_event, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_idx_avail_event, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_idx_wraparound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_names, setup, teardown),
    };
    return cmocka_run_group_tests_name("virtqueue", tests, NULL, NULL);
}
