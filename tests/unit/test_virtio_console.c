/* The virtio-console request engine (vmm/virtio/console.c) over the real virtqueue
 * engine and a fake guest RAM whose two rings (receiveq, transmitq) the test lays
 * out itself: output arriving whole and in order, input filling the driver's
 * buffers, the per-call budgets, notification suppression, and every malformed
 * chain a hostile driver can make, each of which must be completed (or, for the
 * engine's chain errors, break the queue) while the device keeps its state. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "vmm/virtio/guest_mem.c"
#include "vmm/virtio/virtqueue.c"
#include "vmm/virtio/console.c"

#define RAM_SIZE  (1u << 20)
#define QSIZE     VCON_QUEUE_MAX
#define INDIRECT  0x7000ull
#define DATA      0x10000ull

static uint8_t *ram;
static struct gmem g;
static struct vcon con;

/* ---- the fake guest ---------------------------------------------------------- */

static void wr16(uint64_t gpa, uint16_t v) { memcpy(ram + gpa, &v, 2); }
static void wr32(uint64_t gpa, uint32_t v) { memcpy(ram + gpa, &v, 4); }
static void wr64(uint64_t gpa, uint64_t v) { memcpy(ram + gpa, &v, 8); }
static uint16_t rd16(uint64_t gpa) { uint16_t v; memcpy(&v, ram + gpa, 2); return v; }
static uint32_t rd32(uint64_t gpa) { uint32_t v; memcpy(&v, ram + gpa, 4); return v; }

/* One queue as its driver sees it. */
struct drv {
    struct vq q;
    uint64_t desc, avail, used;
    uint16_t avail_idx;
    unsigned next_desc;         /* free-running; a test never has QSIZE outstanding */
};

static struct drv rxd = { .desc = 0x4000, .avail = 0x5000, .used = 0x6000 };
static struct drv txd = { .desc = 0x1000, .avail = 0x2000, .used = 0x3000 };

struct buf {
    uint64_t gpa;
    uint32_t len;
    bool write;
};

static void put_desc(uint64_t at, const struct buf *b, bool next, uint16_t next_i)
{
    wr64(at, b->gpa);
    wr32(at + 8, b->len);
    wr16(at + 12, (uint16_t)((b->write ? VIRTQ_DESC_F_WRITE : 0) | (next ? VIRTQ_DESC_F_NEXT : 0)));
    wr16(at + 14, next_i);
}

static void make_available(struct drv *d, uint16_t head)
{
    wr16(d->avail + 4 + 2 * (d->avail_idx % QSIZE), head);
    d->avail_idx++;
    wr16(d->avail + 2, d->avail_idx);
}

/* Lays out a chain of n buffers and makes it available; returns its head. */
static uint16_t offer(struct drv *d, const struct buf *b, unsigned n)
{
    uint16_t head = (uint16_t)(d->next_desc % QSIZE);
    for (unsigned i = 0; i < n; i++) {
        uint16_t at = (uint16_t)(d->next_desc % QSIZE);
        put_desc(d->desc + 16ull * at, &b[i], i + 1 < n, (uint16_t)((d->next_desc + 1) % QSIZE));
        d->next_desc++;
    }
    make_available(d, head);
    return head;
}

static uint16_t offer1(struct drv *d, uint64_t gpa, uint32_t len, bool write)
{
    struct buf b = { gpa, len, write };
    return offer(d, &b, 1);
}

static uint16_t used_idx(const struct drv *d) { return rd16(d->used + 2); }
static uint16_t used_flags(const struct drv *d) { return rd16(d->used); }
static uint32_t used_id(const struct drv *d, unsigned i) { return rd32(d->used + 4 + 8 * (i % QSIZE)); }
static uint32_t used_len(const struct drv *d, unsigned i) { return rd32(d->used + 4 + 8 * (i % QSIZE) + 4); }

static void set_queue(struct drv *d, uint64_t features)
{
    /* A driver setting a queue up starts from zeroed rings. */
    memset(ram + d->desc, 0, VQ_DESC_TABLE_BYTES(QSIZE));
    memset(ram + d->avail, 0, VQ_AVAIL_BYTES(QSIZE));
    memset(ram + d->used, 0, VQ_USED_BYTES(QSIZE));
    vq_reset(&d->q);
    vq_set_features(&d->q, features);
    assert_int_equal(vq_set_addrs(&d->q, &g, QSIZE, d->desc, d->avail, d->used), VQ_OK);
    d->avail_idx = 0;
    d->next_desc = 0;
}

/* ---- the host side --------------------------------------------------------------- */

static uint8_t sink[1u << 19];
static size_t sink_len;
static unsigned sink_calls;

static void sink_out(void *ctx, const uint8_t *b, size_t n)
{
    assert_ptr_equal(ctx, sink);
    assert_true(n > 0 && n <= VCON_TX_PIECE);
    assert_true(sink_len + n <= sizeof sink);
    memcpy(sink + sink_len, b, n);
    sink_len += n;
    sink_calls++;
}

/* One vcon_tx; checks its result and whether it asks to be called again. */
static bool run_tx(enum vq_error want_err, bool want_more)
{
    enum vq_error e = VQ_ERR_NOT_READY;
    bool more = !want_more;
    bool notify = vcon_tx(&con, &txd.q, &g, sink_out, sink, &more, &e);
    assert_int_equal(e, want_err);
    assert_int_equal(more, want_more);
    return notify;
}

static bool run_rx(enum vq_error want_err, bool want_more)
{
    enum vq_error e = VQ_ERR_NOT_READY;
    bool more = !want_more;
    bool notify = vcon_rx(&con, &rxd.q, &g, &more, &e);
    assert_int_equal(e, want_err);
    assert_int_equal(more, want_more);
    return notify;
}

static void pattern(uint64_t gpa, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        ram[gpa + i] = (uint8_t)(seed + i * 31 + (i >> 8));
}

static void input(const char *s)
{
    size_t n = strlen(s);
    assert_int_equal(vcon_input(&con, (const uint8_t *)s, n), n);
}

/* ---- fixtures ------------------------------------------------------------------ */

static int setup(void **state)
{
    (void)state;
    ram = calloc(1, RAM_SIZE);
    assert_non_null(ram);
    gmem_init(&g, ram, RAM_SIZE);
    vq_init(&rxd.q, 0);
    vq_init(&txd.q, 0);
    set_queue(&rxd, 0);
    set_queue(&txd, 0);
    vcon_init(&con);
    sink_len = 0;
    sink_calls = 0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(ram);
    return 0;
}

/* ---- features and config ---------------------------------------------------------- */

static void test_features_config(void **state)
{
    (void)state;
    assert_int_equal(vcon_features(), 0);
    uint8_t c[VCON_CONFIG_BYTES + 4];
    memset(c, 0xff, sizeof c);
    assert_int_equal(vcon_config(c, sizeof c), VCON_CONFIG_BYTES);
    for (unsigned i = 0; i < VCON_CONFIG_BYTES; i++)
        assert_int_equal(c[i], 0);
    assert_int_equal(c[VCON_CONFIG_BYTES], 0xff);       /* nothing past the struct */
    memset(c, 0xff, sizeof c);
    assert_int_equal(vcon_config(c, 3), 3);
    assert_int_equal(c[3], 0xff);
    assert_int_equal(vcon_config(c, 0), 0);
}

/* ---- transmitq ------------------------------------------------------------------ */

static void test_tx_chains_in_order(void **state)
{
    (void)state;
    pattern(DATA, 0x4000, 1);
    /* Three chains, the driver's own framing (§2.7.4): 3 + 5 + 1 bytes out of
     * order in memory, one buffer of 1000, and four of mixed sizes. */
    struct buf a[] = { { DATA + 0x100, 3, false }, { DATA + 0x10, 5, false }, { DATA + 0x800, 1, false } };
    struct buf b[] = { { DATA + 0x1000, 1000, false } };
    struct buf c[] = { { DATA + 0x2000, 700, false }, { DATA + 0x3000, 1, false },
                       { DATA + 0x2000, 2, false }, { DATA + 0x3800, 1300, false } };
    uint16_t ha = offer(&txd, a, 3), hb = offer(&txd, b, 1), hc = offer(&txd, c, 4);
    uint64_t pub = txd.q.stats.publishes;
    assert_true(run_tx(VQ_EMPTY, false));
    assert_int_equal(txd.q.stats.publishes - pub, 1);   /* one used->idx store */

    uint8_t want[3 + 5 + 1 + 1000 + 700 + 1 + 2 + 1300];
    size_t n = 0;
    const struct buf *all[] = { a, b, c };
    const unsigned cnt[] = { 3, 1, 4 };
    for (unsigned k = 0; k < 3; k++)
        for (unsigned i = 0; i < cnt[k]; i++) {
            memcpy(want + n, ram + all[k][i].gpa, all[k][i].len);
            n += all[k][i].len;
        }
    assert_int_equal(sink_len, sizeof want);
    assert_memory_equal(sink, want, sizeof want);

    assert_int_equal(used_idx(&txd), 3);
    assert_int_equal(used_id(&txd, 0), ha);
    assert_int_equal(used_id(&txd, 1), hb);
    assert_int_equal(used_id(&txd, 2), hc);
    for (unsigned i = 0; i < 3; i++)
        assert_int_equal(used_len(&txd, i), 0);         /* nothing written */
    assert_int_equal(con.stats.tx_chains, 3);
    assert_int_equal(con.stats.tx_bytes, sizeof want);
    assert_int_equal(con.stats.tx_bad, 0);
    assert_int_equal(used_flags(&txd), 0);              /* kicks back on after the drain */

    /* Nothing more: nothing published, no interrupt, the sink not called. */
    pub = txd.q.stats.publishes;
    unsigned calls = sink_calls;
    assert_false(run_tx(VQ_EMPTY, false));
    assert_int_equal(txd.q.stats.publishes, pub);
    assert_int_equal(sink_calls, calls);
}

static void test_tx_no_interrupt(void **state)
{
    (void)state;
    ram[DATA] = 'x';
    wr16(txd.avail, VIRTQ_AVAIL_F_NO_INTERRUPT);
    offer1(&txd, DATA, 1, false);
    offer1(&txd, DATA, 1, false);
    uint64_t pub = txd.q.stats.publishes;
    assert_false(run_tx(VQ_EMPTY, false));              /* published, not signalled */
    assert_int_equal(txd.q.stats.publishes - pub, 1);
    assert_int_equal(used_idx(&txd), 2);
    assert_int_equal(txd.q.stats.suppressed, 1);
    wr16(txd.avail, 0);
    offer1(&txd, DATA, 1, false);
    assert_true(run_tx(VQ_EMPTY, false));
    assert_int_equal(sink_len, 3);
}

static void test_tx_event_idx(void **state)
{
    (void)state;
    set_queue(&txd, 1ull << VIRTIO_F_EVENT_IDX);
    uint64_t used_event = txd.avail + 4 + 2 * QSIZE, avail_event = txd.used + 4 + 8 * QSIZE;
    ram[DATA] = 'y';
    /* used_event 0: the batch 0 -> 2 passes it. */
    wr16(used_event, 0);
    offer1(&txd, DATA, 1, false);
    offer1(&txd, DATA, 1, false);
    assert_true(run_tx(VQ_EMPTY, false));
    assert_int_equal(rd16(avail_event), 2);             /* kick me for entry 2 */
    assert_int_equal(used_flags(&txd), 0);              /* flags stay 0 (§2.7.10.2) */
    /* used_event 5: 2 -> 4 does not pass it, 4 -> 6 does. */
    wr16(used_event, 5);
    offer1(&txd, DATA, 1, false);
    offer1(&txd, DATA, 1, false);
    assert_false(run_tx(VQ_EMPTY, false));
    assert_int_equal(used_idx(&txd), 4);
    offer1(&txd, DATA, 1, false);
    offer1(&txd, DATA, 1, false);
    assert_true(run_tx(VQ_EMPTY, false));
    assert_int_equal(used_idx(&txd), 6);
    assert_int_equal(rd16(avail_event), 6);
    assert_int_equal(sink_len, 6);
}

/* A chain longer than the byte budget comes out over several calls, whole and in
 * order, and is completed only with its last byte. */
static void test_tx_byte_budget(void **state)
{
    (void)state;
    pattern(DATA, 0x20000, 7);
    /* 3 x 64 KiB + 100: overlapping buffers are as good as any. */
    struct buf big[] = { { DATA, 0x10000, false }, { DATA + 0x8000, 0x10000, false },
                         { DATA + 0x100, 0x10000, false }, { DATA + 0x1ff00, 100, false } };
    /* 3 bytes first, so that the budget ends inside a piece. */
    uint16_t hfirst = offer1(&txd, DATA + 0x7000, 3, false);
    uint16_t hbig = offer(&txd, big, 4);
    uint16_t hsmall = offer1(&txd, DATA + 0x5000, 10, false);

    assert_true(run_tx(VQ_OK, true));                   /* the 3 bytes completed */
    assert_int_equal(sink_len, VCON_TX_BUDGET);
    assert_int_equal(used_idx(&txd), 1);                /* the big one not completed yet */
    assert_int_equal(used_id(&txd, 0), hfirst);
    assert_int_equal(used_flags(&txd), VIRTQ_USED_F_NO_NOTIFY);   /* the caller comes back */
    uint64_t pub = txd.q.stats.publishes;
    assert_false(run_tx(VQ_OK, true));
    assert_false(run_tx(VQ_OK, true));
    assert_int_equal(sink_len, 3 * VCON_TX_BUDGET);
    assert_int_equal(used_idx(&txd), 1);
    assert_int_equal(txd.q.stats.publishes, pub);       /* nothing to publish */
    /* The last 103 bytes, the completion, and the small chain. */
    assert_true(run_tx(VQ_EMPTY, false));
    assert_int_equal(used_idx(&txd), 3);
    assert_int_equal(used_id(&txd, 1), hbig);
    assert_int_equal(used_id(&txd, 2), hsmall);
    assert_int_equal(used_flags(&txd), 0);

    assert_memory_equal(sink, ram + DATA + 0x7000, 3);
    size_t n = 3;
    for (unsigned i = 0; i < 4; i++) {
        assert_memory_equal(sink + n, ram + big[i].gpa, big[i].len);
        n += big[i].len;
    }
    assert_memory_equal(sink + n, ram + DATA + 0x5000, 10);
    assert_int_equal(sink_len, n + 10);
    assert_int_equal(con.stats.tx_chains, 3);
}

/* RAM that shrank under a held chain (the map changed between two calls): the
 * copy is refused by gmem, the rest of the chain dropped, the chain completed. */
static void test_tx_held_chain_ram_gone(void **state)
{
    (void)state;
    offer1(&txd, DATA + 0x20000, 0x20000, false);
    assert_false(run_tx(VQ_OK, true));
    gmem_init(&g, ram, DATA + 0x20000 + VCON_TX_BUDGET + 100);
    assert_true(run_tx(VQ_EMPTY, false));
    assert_int_equal(con.stats.io_errors, 1);
    assert_int_equal(sink_len, VCON_TX_BUDGET);
    assert_int_equal(used_idx(&txd), 1);
    assert_int_equal(con.stats.tx_chains, 1);
}

/* Exactly the budget: the chain completes, the next is left for the next call. */
static void test_tx_budget_exact(void **state)
{
    (void)state;
    pattern(DATA, 0x10000, 3);
    offer1(&txd, DATA, VCON_TX_BUDGET, false);
    offer1(&txd, DATA, 1, false);
    assert_true(run_tx(VQ_OK, true));
    assert_int_equal(used_idx(&txd), 1);
    assert_int_equal(txd.q.last_avail_idx, 1);          /* the second not taken */
    assert_true(run_tx(VQ_EMPTY, false));
    assert_int_equal(used_idx(&txd), 2);
    assert_int_equal(sink_len, VCON_TX_BUDGET + 1);
}

static void test_tx_chain_budget(void **state)
{
    (void)state;
    for (unsigned i = 0; i < VCON_BATCH_CHAINS + 6; i++) {
        ram[DATA + i] = (uint8_t)i;
        offer1(&txd, DATA + i, 1, false);
    }
    uint64_t pub = txd.q.stats.publishes;
    assert_true(run_tx(VQ_OK, true));
    assert_int_equal(used_idx(&txd), VCON_BATCH_CHAINS);
    assert_int_equal(txd.q.stats.publishes - pub, 1);
    assert_true(run_tx(VQ_EMPTY, false));
    assert_int_equal(used_idx(&txd), VCON_BATCH_CHAINS + 6);
    assert_int_equal(sink_len, VCON_BATCH_CHAINS + 6);
    for (unsigned i = 0; i < VCON_BATCH_CHAINS + 6; i++)
        assert_int_equal(sink[i], (uint8_t)i);
}

static void test_tx_bad_direction(void **state)
{
    (void)state;
    memcpy(ram + DATA, "ABCDEFGHIJ", 10);
    memset(ram + DATA + 0x100, 0xcc, 16);
    /* Readable then writable; writable only; then a good one. */
    struct buf mixed[] = { { DATA, 4, false }, { DATA + 0x100, 16, true } };
    offer(&txd, mixed, 2);
    offer1(&txd, DATA + 0x100, 16, true);
    /* Zero-length descriptors are dropped by the engine: an empty chain, fine. */
    offer1(&txd, DATA, 0, false);
    offer1(&txd, DATA + 4, 6, false);
    assert_true(run_tx(VQ_EMPTY, false));
    assert_int_equal(used_idx(&txd), 4);
    for (unsigned i = 0; i < 4; i++)
        assert_int_equal(used_len(&txd, i), 0);
    assert_int_equal(sink_len, 6);
    assert_memory_equal(sink, "EFGHIJ", 6);
    for (unsigned i = 0; i < 16; i++)
        assert_int_equal(ram[DATA + 0x100 + i], 0xcc);  /* never written */
    assert_int_equal(con.stats.tx_bad, 2);
    assert_int_equal(con.stats.tx_chains, 2);
    assert_false(txd.q.broken);
}

/* A chain held across calls by the budget belongs to its queue: after a device
 * reset, or a queue reset the device was not told of, none of it is output. */
static void test_tx_held_chain_reset(void **state)
{
    (void)state;
    memset(ram + DATA, 'o', 0x20000);
    memset(ram + DATA + 0x30000, 'n', 16);
    offer1(&txd, DATA, 0x20000, false);
    assert_false(run_tx(VQ_OK, true));
    assert_true(con.tx_busy);
    /* Device reset: the transport resets the queues, then the device. */
    set_queue(&txd, 0);
    vcon_reset(&con);
    offer1(&txd, DATA + 0x30000, 16, false);
    sink_len = 0;
    assert_true(run_tx(VQ_EMPTY, false));
    assert_int_equal(sink_len, 16);
    assert_memory_equal(sink, "nnnnnnnnnnnnnnnn", 16);
    assert_int_equal(used_idx(&txd), 1);
    assert_int_equal(used_id(&txd, 0), 0);

    /* Queue reset alone: the held chain is recognised as stale. */
    offer1(&txd, DATA, 0x20000, false);
    assert_false(run_tx(VQ_OK, true));
    set_queue(&txd, 0);
    offer1(&txd, DATA + 0x30000, 16, false);
    sink_len = 0;
    assert_true(run_tx(VQ_EMPTY, false));
    assert_int_equal(sink_len, 16);
    assert_int_equal(used_idx(&txd), 1);
    assert_false(txd.q.broken);

    /* A queue broken meanwhile: nothing more comes out of it. */
    offer1(&txd, DATA, 0x20000, false);
    assert_false(run_tx(VQ_OK, true));
    txd.q.broken = true;
    txd.q.error = VQ_ERR_BUF_RANGE;
    sink_len = 0;
    assert_false(run_tx(VQ_ERR_BROKEN, false));
    assert_int_equal(sink_len, 0);
    assert_false(con.tx_busy);
}

static void test_tx_broken_ring(void **state)
{
    (void)state;
    memcpy(ram + DATA, "ok", 2);
    offer1(&txd, DATA, 2, false);
    offer1(&txd, RAM_SIZE - 8, 16, false);              /* runs out of RAM */
    offer1(&txd, DATA, 2, false);
    /* The good one was output; a broken queue publishes and signals nothing more
     * (the transport reports DEVICE_NEEDS_RESET instead). */
    assert_false(run_tx(VQ_ERR_BUF_RANGE, false));
    assert_true(txd.q.broken);
    assert_int_equal(vq_device_status(&txd.q), VIRTIO_STATUS_DEVICE_NEEDS_RESET);
    assert_int_equal(sink_len, 2);
    assert_int_equal(used_idx(&txd), 0);
    assert_int_equal(con.stats.queue_errors, 1);
    assert_false(run_tx(VQ_ERR_BROKEN, false));
    assert_int_equal(con.stats.queue_errors, 1);        /* counted once */
    assert_int_equal(sink_len, 2);

    /* More buffers in one chain than the device's list: an indirect table of
     * QSIZE after one direct descriptor. */
    set_queue(&txd, 1ull << VIRTIO_F_INDIRECT_DESC);
    for (unsigned i = 0; i < QSIZE; i++) {
        struct buf b = { DATA, 1, false };
        put_desc(INDIRECT + 16ull * i, &b, i + 1 < QSIZE, (uint16_t)(i + 1));
    }
    put_desc(txd.desc, &(struct buf){ DATA, 1, false }, true, 1);
    wr64(txd.desc + 16, INDIRECT);
    wr32(txd.desc + 24, 16 * QSIZE);
    wr16(txd.desc + 28, VIRTQ_DESC_F_INDIRECT);
    make_available(&txd, 0);
    sink_len = 0;
    assert_false(run_tx(VQ_ERR_CHAIN_SEGS, false));
    assert_int_equal(sink_len, 0);
    assert_int_equal(con.stats.queue_errors, 2);

    /* A table one entry shorter makes a chain of QSIZE buffers: served. */
    set_queue(&txd, 1ull << VIRTIO_F_INDIRECT_DESC);
    for (unsigned i = 0; i < QSIZE - 1; i++) {
        struct buf b = { DATA, 1, false };
        put_desc(INDIRECT + 16ull * i, &b, i + 1 < QSIZE - 1, (uint16_t)(i + 1));
    }
    put_desc(txd.desc, &(struct buf){ DATA, 1, false }, true, 1);
    wr64(txd.desc + 16, INDIRECT);
    wr32(txd.desc + 24, 16 * (QSIZE - 1));
    wr16(txd.desc + 28, VIRTQ_DESC_F_INDIRECT);
    make_available(&txd, 0);
    assert_true(run_tx(VQ_EMPTY, false));
    assert_int_equal(sink_len, QSIZE);
}

/* ---- receiveq ------------------------------------------------------------------- */

static void test_rx_fills_in_order(void **state)
{
    (void)state;
    memset(ram + DATA, 0xcc, 0x1000);
    /* A chain of 5 + 7 bytes (apart in memory), then one of 100. */
    struct buf a[] = { { DATA + 0x200, 5, true }, { DATA, 7, true } };
    uint16_t ha = offer(&rxd, a, 2);
    uint16_t hb = offer1(&rxd, DATA + 0x400, 100, true);
    const char *text = "hello, world: the quick brown fox jumps";     /* 39 bytes */
    input(text);
    uint64_t pub = rxd.q.stats.publishes;
    assert_true(run_rx(VQ_OK, false));
    assert_int_equal(rxd.q.stats.publishes - pub, 1);
    assert_int_equal(used_idx(&rxd), 2);
    assert_int_equal(used_id(&rxd, 0), ha);
    assert_int_equal(used_len(&rxd, 0), 12);
    assert_int_equal(used_id(&rxd, 1), hb);
    assert_int_equal(used_len(&rxd, 1), 39 - 12);
    assert_memory_equal(ram + DATA + 0x200, text, 5);
    assert_memory_equal(ram + DATA, text + 5, 7);
    assert_int_equal(ram[DATA + 7], 0xcc);
    assert_memory_equal(ram + DATA + 0x400, text + 12, 27);
    assert_int_equal(ram[DATA + 0x400 + 27], 0xcc);     /* only what was written */
    assert_int_equal(vcon_input_pending(&con), 0);
    assert_int_equal(con.stats.rx_chains, 2);
    assert_int_equal(con.stats.rx_bytes, 39);
    /* Idle: kicks off, nothing taken. */
    assert_int_equal(used_flags(&rxd), VIRTQ_USED_F_NO_NOTIFY);
    offer1(&rxd, DATA + 0x800, 64, true);
    assert_false(run_rx(VQ_OK, false));
    assert_int_equal(rxd.q.last_avail_idx, 2);
    /* Input arrives: the waiting buffer takes it. */
    input("ls\n");
    assert_true(run_rx(VQ_OK, false));
    assert_int_equal(used_len(&rxd, 2), 3);
    assert_memory_equal(ram + DATA + 0x800, "ls\n", 3);
}

static void test_rx_waits_for_buffers(void **state)
{
    (void)state;
    input("abc");
    assert_false(run_rx(VQ_EMPTY, false));
    assert_int_equal(vcon_input_pending(&con), 3);
    assert_int_equal(used_flags(&rxd), 0);              /* a kick will bring us back */
    input("def");
    assert_false(run_rx(VQ_EMPTY, false));
    /* The driver adds a 4-byte buffer and kicks; then another. */
    offer1(&rxd, DATA, 4, true);
    assert_true(run_rx(VQ_EMPTY, false));
    assert_memory_equal(ram + DATA, "abcd", 4);
    assert_int_equal(vcon_input_pending(&con), 2);
    offer1(&rxd, DATA + 0x100, 4, true);
    assert_true(run_rx(VQ_OK, false));
    assert_int_equal(used_len(&rxd, 1), 2);
    assert_memory_equal(ram + DATA + 0x100, "ef", 2);

    /* With EVENT_IDX the request is avail_event = the next entry. */
    set_queue(&rxd, 1ull << VIRTIO_F_EVENT_IDX);
    wr16(rxd.used + 4 + 8 * QSIZE, 0x5555);
    input("x");
    assert_false(run_rx(VQ_EMPTY, false));
    assert_int_equal(rd16(rxd.used + 4 + 8 * QSIZE), 0);
    wr16(rxd.avail + 4 + 2 * QSIZE, 0);                 /* used_event */
    offer1(&rxd, DATA, 4, true);
    assert_true(run_rx(VQ_OK, false));
    assert_int_equal(ram[DATA], 'x');
}

static void test_rx_overflow(void **state)
{
    (void)state;
    uint8_t in[VCON_IN_MAX + 44];
    for (unsigned i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)(i * 3 + 1);
    assert_int_equal(vcon_input(&con, in, sizeof in), VCON_IN_MAX);
    assert_int_equal(con.stats.rx_dropped, 44);
    assert_int_equal(vcon_input_room(&con), 0);
    assert_int_equal(vcon_input(&con, in, 5), 0);
    assert_int_equal(con.stats.rx_dropped, 49);
    /* Four 100-byte buffers: the first 256 bytes, in order, across the ring's
     * wrap point once some are taken. */
    offer1(&rxd, DATA, 100, true);
    assert_true(run_rx(VQ_EMPTY, false));
    assert_int_equal(vcon_input(&con, in + VCON_IN_MAX, 44), 44);   /* wraps */
    for (unsigned i = 0; i < 3; i++)
        offer1(&rxd, DATA + 100 * (i + 1), 100, true);
    assert_true(run_rx(VQ_OK, false));
    assert_int_equal(used_len(&rxd, 0), 100);
    assert_int_equal(used_len(&rxd, 1), 100);
    assert_int_equal(used_len(&rxd, 2), 100);
    assert_int_equal(used_idx(&rxd), 3);                /* the last buffer not needed */
    assert_int_equal(rxd.q.last_avail_idx, 3);
    assert_memory_equal(ram + DATA, in, VCON_IN_MAX + 44);
    assert_int_equal(con.stats.rx_bytes, VCON_IN_MAX + 44);
}

static void test_rx_bad_direction(void **state)
{
    (void)state;
    memset(ram + DATA, 0xcc, 0x100);
    input("data");
    offer1(&rxd, DATA, 16, false);                      /* readable only */
    struct buf mixed[] = { { DATA + 0x20, 4, false }, { DATA + 0x40, 16, true } };
    offer(&rxd, mixed, 2);                              /* readable, then writable */
    offer1(&rxd, DATA + 0x60, 0, true);                 /* no writable byte */
    offer1(&rxd, DATA + 0x80, 16, true);
    assert_true(run_rx(VQ_OK, false));
    assert_int_equal(used_idx(&rxd), 4);
    assert_int_equal(used_len(&rxd, 0), 0);
    assert_int_equal(used_len(&rxd, 1), 0);
    assert_int_equal(used_len(&rxd, 2), 0);
    assert_int_equal(used_len(&rxd, 3), 4);
    for (unsigned i = 0; i < 0x80; i++)
        assert_int_equal(ram[DATA + i], 0xcc);          /* bad chains untouched */
    assert_memory_equal(ram + DATA + 0x80, "data", 4);
    assert_int_equal(con.stats.rx_bad, 3);
    assert_int_equal(con.stats.rx_chains, 1);
    assert_false(rxd.q.broken);
}

static void test_rx_chain_budget(void **state)
{
    (void)state;
    for (unsigned i = 0; i < VCON_BATCH_CHAINS + 2; i++)
        offer1(&rxd, DATA + 0x100, 16, false);
    offer1(&rxd, DATA, 16, true);
    input("hi");
    uint64_t pub = rxd.q.stats.publishes;
    assert_true(run_rx(VQ_OK, true));                   /* input still waits */
    assert_int_equal(used_idx(&rxd), VCON_BATCH_CHAINS);
    assert_int_equal(rxd.q.stats.publishes - pub, 1);
    assert_int_equal(vcon_input_pending(&con), 2);
    assert_true(run_rx(VQ_OK, false));
    assert_int_equal(used_idx(&rxd), VCON_BATCH_CHAINS + 3);
    assert_int_equal(used_len(&rxd, VCON_BATCH_CHAINS + 2), 2);
    assert_memory_equal(ram + DATA, "hi", 2);
    assert_int_equal(con.stats.rx_bad, VCON_BATCH_CHAINS + 2);
}

static void test_rx_broken_ring(void **state)
{
    (void)state;
    /* A descriptor loop. */
    input("keep");
    put_desc(rxd.desc, &(struct buf){ DATA, 4, true }, true, 1);
    put_desc(rxd.desc + 16, &(struct buf){ DATA + 8, 4, true }, true, 0);
    make_available(&rxd, 0);
    assert_false(run_rx(VQ_ERR_CHAIN_LOOP, false));
    assert_true(rxd.q.broken);
    assert_int_equal(con.stats.queue_errors, 1);
    assert_int_equal(vcon_input_pending(&con), 4);      /* nothing consumed */
    assert_false(run_rx(VQ_ERR_BROKEN, false));
    assert_int_equal(con.stats.queue_errors, 1);

    /* Rings outside RAM: the set-up breaks the queue, the device reports it. */
    vq_reset(&rxd.q);
    assert_int_equal(vq_set_addrs(&rxd.q, &g, QSIZE, rxd.desc, rxd.avail, RAM_SIZE - 16),
                     VQ_ERR_RING_RANGE);
    assert_false(run_rx(VQ_ERR_BROKEN, false));
    /* A queue never set up. */
    vq_reset(&rxd.q);
    assert_false(run_rx(VQ_ERR_NOT_READY, false));
    vq_reset(&txd.q);
    assert_false(run_tx(VQ_ERR_NOT_READY, false));
    assert_int_equal(vcon_input_pending(&con), 4);

    /* Reset: waiting input dropped and counted; the device works again. */
    set_queue(&rxd, 0);
    vcon_reset(&con);
    assert_int_equal(vcon_input_pending(&con), 0);
    assert_int_equal(con.stats.rx_dropped, 4);
    offer1(&rxd, DATA, 8, true);
    input("new");
    assert_true(run_rx(VQ_OK, false));
    assert_memory_equal(ram + DATA, "new", 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_features_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_chains_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_no_interrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_event_idx, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_byte_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_budget_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_chain_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_bad_direction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_held_chain_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_held_chain_ram_gone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_broken_ring, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_fills_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_waits_for_buffers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_overflow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_bad_direction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_chain_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_broken_ring, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
