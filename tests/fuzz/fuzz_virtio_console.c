/* The virtio-console engine (vmm/virtio/console.c) over the real virtqueue engine,
 * a guest RAM image and two queues (receiveq, transmitq) made of the fuzzer's
 * bytes, then a hostile driver's actions (offering heads, building chains,
 * rewriting descriptors and ring fields, scribbling anywhere, device and queue
 * resets) mixed with host input and the device's calls.  Guest RAM is a heap block
 * of exactly its size, so ASan stops any access outside it.
 *
 * The harness sees the device's queue and memory traffic: console.c is included
 * with vq_pop, vq_used_add and gmem_write routed through checking wrappers (the
 * source is unchanged; the wrappers call the real functions).  Invariants:
 *   - output: every byte handed to the sink is the next byte of the one transmit
 *     chain in flight, a chain with a writable buffer gives none, and a chain is
 *     completed (length 0) only when all its bytes are out: whole and in order;
 *     nothing of a chain taken before a device or queue reset comes out after it;
 *   - input: what the device writes into receive buffers is the host input, in
 *     order, at the stream position of the chain's writable buffers, as much as
 *     fits; a chain with a readable buffer gets nothing; each is completed with
 *     the bytes written; offered = delivered + dropped + waiting, exactly;
 *   - at most one chain in flight per queue, and a receive buffer is taken only
 *     while input waits;
 *   - per call: at most VCON_BATCH_CHAINS chains, VCON_TX_BUDGET bytes out, one
 *     used->idx store, an interrupt only for what it published; *more exactly
 *     when the budget stopped it; a queue that drained (VQ_EMPTY) has kicks
 *     enabled again, one stopped by its budget has them disabled;
 *   - the device writes only inside the queue's used ring and the receive
 *     buffers it fills; a broken queue yields nothing; each driver error is
 *     counted once.
 *
 * Input: RAM size, an image (offset, length, bytes), the console's and each
 * queue's parameters, then one byte per action. */
#include "fuzz.h"
#include "vmm/virtio/guest_mem.c"
#include "vmm/virtio/virtqueue.c"

static enum vq_error fz_vq_pop(struct vq *q, const struct gmem *gm, struct vq_chain *out);
static enum vq_error fz_vq_used_add(struct vq *q, const struct gmem *gm, uint16_t head, uint32_t len);
static bool fz_gmem_write(const struct gmem *gm, uint64_t gpa, const void *buf, uint64_t len);
#define vq_pop fz_vq_pop
#define vq_used_add fz_vq_used_add
#define gmem_write fz_gmem_write
#include "vmm/virtio/console.c"
#undef vq_pop
#undef vq_used_add
#undef gmem_write

#define RAM_MAX 16384u

/* One queue as the harness follows it. */
struct fq {
    struct vq q;
    uint16_t size;
    uint64_t features;
    uint64_t desc, avail, used;
    uint32_t max_bytes;
    /* The chain the device has taken and not completed. */
    bool held;
    struct vq_seg seg[VCON_CHAIN_SEGS];
    uint16_t n_seg, n_readable, head;
    uint32_t write_bytes;
    uint16_t cur_i;             /* output (tx) or fill (rx) position */
    uint32_t cur_off;
    uint32_t written;           /* rx: bytes written into it */
    size_t pending_at_pop;      /* rx: input waiting when it was taken */
    unsigned pops;              /* chains taken in the current call */
};

static struct vcon con;
static struct fq txq, rxq;
static struct gmem g;
static uint8_t *ram;
static uint8_t shadow[RAM_MAX];         /* RAM as the driver last left it */
static uint32_t allowed[RAM_MAX];       /* == call_gen: the current call may write it */
static uint32_t call_gen;
static enum { CALL_NONE, CALL_TX, CALL_RX } in_call;
static uint64_t call_out, total_out;
static bool wrote_avail;                /* the call wrote into its own available ring */
/* The input as the host gave it: what the device must deliver, in order. */
static uint8_t model[VCON_IN_MAX];
static size_t model_head, model_len;
static uint64_t model_dropped, model_delivered, driver_errors;

static struct fq *fq_of(const struct vq *q)
{
    struct fq *f = q == &txq.q ? &txq : q == &rxq.q ? &rxq : NULL;
    FUZZ_CHECK(f, "call on an unknown queue");
    return f;
}

static void allow(uint64_t gpa, uint64_t len)
{
    for (uint64_t i = gpa; i < gpa + len && i < g.size; i++)
        allowed[i] = call_gen;
}

/* ---- the wrappers console.c calls -------------------------------------------------- */

static enum vq_error fz_vq_pop(struct vq *q, const struct gmem *gm, struct vq_chain *out)
{
    struct fq *f = fq_of(q);
    FUZZ_CHECK(in_call == (f == &txq ? CALL_TX : CALL_RX), "pop on the other queue's call");
    FUZZ_CHECK(!f->held, "pop with chain %u still in flight", f->head);
    FUZZ_CHECK(f == &txq || model_len > 0, "receive buffer taken with no input waiting");
    FUZZ_CHECK(f->pops < VCON_BATCH_CHAINS, "more than %u chains in one call", VCON_BATCH_CHAINS);
    enum vq_error e = vq_pop(q, gm, out);
    if (e != VQ_OK)
        return e;
    FUZZ_CHECK(out->n_seg <= VCON_CHAIN_SEGS, "%u segments", out->n_seg);
    for (unsigned i = 0; i < out->n_seg; i++)
        FUZZ_CHECK(gmem_contains(gm, out->seg[i].gpa, out->seg[i].len), "segment outside RAM");
    f->pops++;
    f->held = true;
    memcpy(f->seg, out->seg, out->n_seg * sizeof out->seg[0]);
    f->n_seg = out->n_seg;
    f->n_readable = out->n_readable;
    f->head = out->head;
    f->write_bytes = out->write_bytes;
    f->cur_i = 0;
    f->cur_off = 0;
    f->written = 0;
    f->pending_at_pop = model_len;
    return e;
}

static enum vq_error fz_vq_used_add(struct vq *q, const struct gmem *gm, uint16_t head, uint32_t len)
{
    struct fq *f = fq_of(q);
    FUZZ_CHECK(f->held && head == f->head, "completed %u, in flight %s %u", head, f->held ? "" : "none",
               f->head);
    if (f == &txq) {
        FUZZ_CHECK(len == 0, "transmit chain completed with %u bytes written", len);
        if (f->n_readable == f->n_seg)
            FUZZ_CHECK(f->cur_i == f->n_seg, "chain completed at segment %u of %u", f->cur_i, f->n_seg);
        else
            FUZZ_CHECK(f->cur_i == 0 && f->cur_off == 0, "output from a chain with writable buffers");
    } else {
        bool good = f->n_readable == 0 && f->write_bytes > 0;
        size_t want = good ? (f->write_bytes < f->pending_at_pop ? f->write_bytes : f->pending_at_pop) : 0;
        FUZZ_CHECK(len == f->written && len == want, "receive chain completed with %u, wrote %u, fits %zu", len,
                   f->written, want);
    }
    /* The device forgets the chain whatever the engine says. */
    f->held = false;
    return vq_used_add(q, gm, head, len);
}

static bool fz_gmem_write(const struct gmem *gm, uint64_t gpa, const void *buf, uint64_t len)
{
    FUZZ_CHECK(in_call == CALL_RX && rxq.held, "device write outside a receive chain");
    struct fq *f = &rxq;
    FUZZ_CHECK(f->n_readable == 0, "write into a chain with readable buffers");
    while (f->cur_i < f->n_seg && f->cur_off == f->seg[f->cur_i].len) {
        f->cur_i++;
        f->cur_off = 0;
    }
    FUZZ_CHECK(f->cur_i < f->n_seg, "write past the chain's buffers");
    const struct vq_seg *s = &f->seg[f->cur_i];
    FUZZ_CHECK(gpa == s->gpa + f->cur_off && len && len <= s->len - f->cur_off,
               "write %#lx+%lu, expected at %#lx (%u left)", (unsigned long)gpa, (unsigned long)len,
               (unsigned long)(s->gpa + f->cur_off), s->len - f->cur_off);
    FUZZ_CHECK(len <= model_len, "wrote %lu bytes, %zu waiting", (unsigned long)len, model_len);
    const uint8_t *b = buf;
    for (uint64_t i = 0; i < len; i++)
        FUZZ_CHECK(b[i] == model[(model_head + i) % VCON_IN_MAX], "input byte %lu out of order",
                   (unsigned long)i);
    model_head = (model_head + len) % VCON_IN_MAX;
    model_len -= len;
    model_delivered += len;
    f->cur_off += (uint32_t)len;
    f->written += (uint32_t)len;
    allow(gpa, len);
    /* A receive buffer laid over the queue's own available ring changes its idx:
     * the device may then find "new" chains when it re-enables kicks and take
     * them in a second round of the same call. */
    if (gpa < f->avail + VQ_AVAIL_BYTES(f->size) && f->avail < gpa + len)
        wrote_avail = true;
    return gmem_write(gm, gpa, buf, len);
}

static void sink(void *ctx, const uint8_t *b, size_t n)
{
    struct fq *f = &txq;
    FUZZ_CHECK(ctx == &txq && in_call == CALL_TX, "output outside vcon_tx");
    FUZZ_CHECK(n >= 1 && n <= VCON_TX_PIECE, "piece of %zu bytes", n);
    FUZZ_CHECK(f->held && f->n_readable == f->n_seg, "output without a transmit chain in flight");
    size_t done = 0;
    while (done < n) {
        FUZZ_CHECK(f->cur_i < f->n_seg, "output past the chain's end");
        const struct vq_seg *s = &f->seg[f->cur_i];
        size_t k = s->len - f->cur_off;
        if (k > n - done)
            k = n - done;
        FUZZ_CHECK(memcmp(b + done, ram + s->gpa + f->cur_off, k) == 0, "output is not the chain's bytes");
        done += k;
        f->cur_off += (uint32_t)k;
        if (f->cur_off == s->len) {
            f->cur_i++;
            f->cur_off = 0;
        }
    }
    call_out += n;
    total_out += n;
}

/* ---- the harness's side ------------------------------------------------------------ */

static void driver_wrote(void)
{
    memcpy(shadow, ram, g.size);
}

static void check_writes(void)
{
    for (uint64_t blk = 0; blk < g.size; blk += 256) {
        uint64_t n = g.size - blk < 256 ? g.size - blk : 256;
        if (!memcmp(ram + blk, shadow + blk, n))
            continue;
        for (uint64_t i = blk; i < blk + n; i++)
            FUZZ_CHECK(ram[i] == shadow[i] || allowed[i] == call_gen, "device wrote %#lx", (unsigned long)i);
        memcpy(shadow + blk, ram + blk, n);
    }
}

/* Opens a call: nothing allowed yet. */
static void new_call(void)
{
    if (++call_gen == 0) {
        memset(allowed, 0, sizeof allowed);
        call_gen = 1;
    }
}

static void check_counts(void)
{
    FUZZ_CHECK(vcon_input_pending(&con) == model_len, "%zu waiting, model %zu", vcon_input_pending(&con), model_len);
    FUZZ_CHECK(con.stats.rx_bytes == model_delivered && con.stats.rx_dropped == model_dropped,
               "rx %lu/%lu dropped %lu/%lu", (unsigned long)con.stats.rx_bytes, (unsigned long)model_delivered,
               (unsigned long)con.stats.rx_dropped, (unsigned long)model_dropped);
    FUZZ_CHECK(con.stats.tx_bytes == total_out, "tx_bytes %lu, sink %lu", (unsigned long)con.stats.tx_bytes,
               (unsigned long)total_out);
    FUZZ_CHECK(con.stats.queue_errors == driver_errors, "queue_errors %lu, %lu seen",
               (unsigned long)con.stats.queue_errors, (unsigned long)driver_errors);
}

static void setup_queue(struct fq *f)
{
    vq_reset(&f->q);
    vq_set_features(&f->q, f->features);
    enum vq_error e = vq_set_addrs(&f->q, &g, f->size, f->desc, f->avail, f->used);
    FUZZ_CHECK(e == VQ_OK || (vq_error_is_driver(e) && f->q.broken), "set_addrs %s", vq_error_name(e));
    f->held = false;
    driver_wrote();
}

static bool live(const struct fq *f)
{
    return f->q.enabled && !f->q.broken;
}

/* Kicks as the call left them: enabled (true) or suppressed. */
static bool kicks_enabled(const struct fq *f)
{
    uint16_t v;
    if (f->q.event_idx) {
        FUZZ_CHECK(gmem_read_u16(&g, f->used + 4 + 8ull * f->size, &v), "avail_event");
        return v == f->q.last_avail_idx;
    }
    FUZZ_CHECK(gmem_read_u16(&g, f->used, &v), "used flags");
    return !(v & VIRTQ_USED_F_NO_NOTIFY);
}

static void after_call(struct fq *f, bool was_live, uint64_t pub0, uint64_t notif0, bool notify,
                       enum vq_error e)
{
    uint64_t pubs = f->q.stats.publishes - pub0;
    FUZZ_CHECK(pubs <= 1 || wrote_avail, "%lu used->idx stores in one call", (unsigned long)pubs);
    FUZZ_CHECK(!notify || (pubs >= 1 && f->q.stats.notifies - notif0 == 1), "interrupt without a publish");
    if (vq_error_is_driver(e)) {
        FUZZ_CHECK(was_live && f->q.broken && f->q.error == e, "%s without breaking", vq_error_name(e));
        driver_errors++;
    } else {
        FUZZ_CHECK(e == VQ_OK || e == VQ_EMPTY || e == VQ_ERR_BROKEN || e == VQ_ERR_NOT_READY, "result %d", e);
    }
    if (!was_live)
        FUZZ_CHECK(f->pops == 0 && (f != &txq || call_out == 0), "a dead queue served");
    check_writes();
    check_counts();
}

static void call_tx(bool *more_out)
{
    struct fq *f = &txq;
    bool was_live = live(f);
    uint64_t pub0 = f->q.stats.publishes, notif0 = f->q.stats.notifies, descs0 = f->q.stats.descs;
    new_call();
    if (was_live)
        allow(f->used, VQ_USED_BYTES(f->size));
    f->pops = 0;
    wrote_avail = false;
    call_out = 0;
    bool more = false;
    enum vq_error e = VQ_ERR_SIZE;
    in_call = CALL_TX;
    bool notify = vcon_tx(&con, &f->q, &g, sink, &txq, &more, &e);
    in_call = CALL_NONE;
    FUZZ_CHECK(call_out <= VCON_TX_BUDGET, "%lu bytes out in one call", (unsigned long)call_out);
    FUZZ_CHECK(f->q.stats.descs - descs0 <= (VCON_BATCH_CHAINS + 1ull) * 2 * f->size, "%lu descriptors read",
               (unsigned long)(f->q.stats.descs - descs0));
    FUZZ_CHECK(more == (e == VQ_OK), "more %d with %s", more, vq_error_name(e));
    if (e == VQ_EMPTY) {
        FUZZ_CHECK(!f->held, "drained with a chain in flight");
        FUZZ_CHECK(kicks_enabled(f), "transmitq drained with kicks off");
    } else if (e == VQ_OK) {
        FUZZ_CHECK(!kicks_enabled(f) || f->q.event_idx, "transmitq stopped by its budget with kicks on");
    } else {
        FUZZ_CHECK(!f->held || e == VQ_ERR_NOT_READY || e == VQ_ERR_BROKEN, "chain in flight after %s",
                   vq_error_name(e));
        f->held = false;        /* a dead queue's chain is dropped by the device */
    }
    after_call(f, was_live, pub0, notif0, notify, e);
    if (more_out)
        *more_out = more;
}

static void call_rx(bool *more_out)
{
    struct fq *f = &rxq;
    bool was_live = live(f);
    uint64_t pub0 = f->q.stats.publishes, notif0 = f->q.stats.notifies;
    new_call();
    if (was_live)
        allow(f->used, VQ_USED_BYTES(f->size));
    f->pops = 0;
    wrote_avail = false;
    bool more = false;
    enum vq_error e = VQ_ERR_SIZE;
    in_call = CALL_RX;
    bool notify = vcon_rx(&con, &f->q, &g, &more, &e);
    in_call = CALL_NONE;
    FUZZ_CHECK(!f->held, "receive chain left in flight");
    FUZZ_CHECK(!more || (e == VQ_OK && model_len), "more %d with %s, %zu waiting", more, vq_error_name(e),
               model_len);
    if (e == VQ_OK && !more)
        FUZZ_CHECK(model_len == 0, "stopped with %zu bytes waiting", model_len);
    if (e == VQ_EMPTY) {
        FUZZ_CHECK(model_len > 0, "waiting for buffers with no input");
        FUZZ_CHECK(kicks_enabled(f), "input waits for buffers with kicks off");
    }
    after_call(f, was_live, pub0, notif0, notify, e);
    if (more_out)
        *more_out = more;
}

static void host_input(struct fuzz_in *in)
{
    uint8_t b[VCON_IN_MAX + 64];
    size_t n = fz_u16(in) % sizeof b;
    fz_bytes(in, b, n);
    size_t room = VCON_IN_MAX - model_len;
    size_t want = n < room ? n : room;
    size_t got = vcon_input(&con, b, n);
    FUZZ_CHECK(got == want, "queued %zu of %zu, room %zu", got, n, room);
    for (size_t i = 0; i < got; i++)
        model[(model_head + model_len + i) % VCON_IN_MAX] = b[i];
    model_len += got;
    model_dropped += n - got;
    check_counts();
}

static void device_reset(void)
{
    /* The transport's order: every queue, then the device (ops.reset). */
    vq_reset(&txq.q);
    vq_reset(&rxq.q);
    vcon_reset(&con);
    model_dropped += model_len;
    model_head = model_len = 0;
    txq.held = rxq.held = false;
    check_counts();
}

static void read_queue_params(struct fuzz_in *in, struct fq *f, uint64_t ram_size, uint64_t fixed_base)
{
    uint8_t sel = fz_u8(in);
    /* Mostly the sizes a transport offers (1 .. VCON_QUEUE_MAX), sometimes anything. */
    f->size = sel & 0x80 ? fz_u16(in) : (uint16_t)(1u << (sel & 7));
    f->features = (sel & 0x10 ? 1ull << VIRTIO_F_INDIRECT_DESC : 0) | (sel & 0x20 ? 1ull << VIRTIO_F_EVENT_IDX : 0);
    f->max_bytes = sel & 0x40 ? fz_u32(in) : 0;
    if (sel & 0x08) {
        /* A layout that fits any size up to 128: desc, avail, used in 4 KiB. */
        f->desc = fixed_base;
        f->avail = fixed_base + 0x800;
        f->used = fixed_base + 0xa00;
    } else {
        f->desc = fz_u16(in) % (ram_size + 64);
        f->avail = fz_u16(in) % (ram_size + 64);
        f->used = fz_u16(in) % (ram_size + 64);
    }
    vq_init(&f->q, f->max_bytes);
    setup_queue(f);
}

static struct fq *pick(uint8_t op)
{
    return op & 0x80 ? &rxq : &txq;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = { data, size };
    uint64_t ram_size = 1 + fz_u16(&in) % RAM_MAX;
    ram = calloc(1, ram_size);
    gmem_init(&g, ram, ram_size);
    uint16_t img_off = fz_u16(&in), img_len = fz_u16(&in);
    if (img_off < ram_size) {
        uint64_t n = img_len < ram_size - img_off ? img_len : ram_size - img_off;
        fz_bytes(&in, ram + img_off, n);
    }
    driver_wrote();
    vcon_init(&con);
    model_head = model_len = 0;
    model_dropped = model_delivered = driver_errors = total_out = 0;
    read_queue_params(&in, &txq, ram_size, 0x0000);
    read_queue_params(&in, &rxq, ram_size, 0x1000);
    check_counts();

    while (in.n) {
        uint8_t op = fz_u8(&in);
        struct fq *f = pick(op);
        switch (op % 13) {
        case 0:
        case 1: {
            /* The driver makes a head available: ring entry, then idx. */
            uint16_t head = fz_u16(&in);
            if (f->size && !(op & 0x40))
                head %= f->size;
            uint16_t idx = 0;
            if (f->q.enabled) {
                (void)gmem_read_u16(&g, f->avail + 2, &idx);
                (void)gmem_write_u16(&g, f->avail + 4 + 2ull * (idx & (f->size - 1)), head);
                (void)gmem_write_u16(&g, f->avail + 2, (uint16_t)(idx + 1));
            }
            driver_wrote();
            break;
        }
        case 2: {
            /* The driver builds a chain of up to 16 descriptors from index i and
             * makes it available: all readable, all writable, or mixed. */
            uint16_t i = fz_u16(&in), n = 1 + fz_u8(&in) % 16;
            uint8_t mode = fz_u8(&in);
            if (!f->size || !f->q.enabled)
                break;
            i %= f->size;
            for (uint16_t k = 0; k < n; k++) {
                uint64_t addr = fz_u16(&in) % ram_size;
                uint32_t len = fz_u16(&in) % (uint32_t)(ram_size - addr + 1);
                bool w = mode % 3 == 0 ? false : mode % 3 == 1 ? true : fz_bool(&in);
                uint16_t at = (uint16_t)((i + k) % f->size), next = (uint16_t)((i + k + 1) % f->size);
                uint8_t d[16];
                uint16_t flags = (uint16_t)((w ? VIRTQ_DESC_F_WRITE : 0) | (k + 1 < n ? VIRTQ_DESC_F_NEXT : 0));
                memcpy(d, &addr, 8);
                memcpy(d + 8, &len, 4);
                memcpy(d + 12, &flags, 2);
                memcpy(d + 14, &next, 2);
                (void)gmem_write(&g, f->desc + 16ull * at, d, 16);
            }
            uint16_t idx = 0;
            (void)gmem_read_u16(&g, f->avail + 2, &idx);
            (void)gmem_write_u16(&g, f->avail + 4 + 2ull * (idx & (f->size - 1)), i);
            (void)gmem_write_u16(&g, f->avail + 2, (uint16_t)(idx + 1));
            driver_wrote();
            break;
        }
        case 3: {
            /* The driver rewrites one descriptor, any flags (INDIRECT too). */
            uint16_t i = fz_u16(&in);
            uint8_t d[16];
            uint64_t addr = fz_u32(&in) % (ram_size + 64);
            if (op & 0x40)
                addr = fz_u64(&in);
            memcpy(d, &addr, 8);
            fz_bytes(&in, d + 8, 8);
            if (f->size)
                (void)gmem_write(&g, f->desc + 16ull * (i % f->size), d, 16);
            driver_wrote();
            break;
        }
        case 4: {
            /* Anything anywhere: rings, flags, used_event, used->idx. */
            uint16_t v = fz_u16(&in);
            (void)gmem_write_u16(&g, fz_u16(&in) % ram_size, v);
            driver_wrote();
            break;
        }
        case 5: {
            /* A run of data bytes (what the guest writes to the console). */
            uint64_t at = fz_u16(&in) % ram_size;
            size_t n = fz_u8(&in) % 64;
            if (n > ram_size - at)
                n = ram_size - at;
            fz_bytes(&in, ram + at, n);
            driver_wrote();
            break;
        }
        case 6:
            host_input(&in);
            break;
        case 7:
        case 8:
            call_tx(NULL);
            break;
        case 9:
        case 10:
            call_rx(NULL);
            break;
        case 11:
            device_reset();
            if (op & 0x40) {
                txq.features ^= 1ull << VIRTIO_F_EVENT_IDX;
                rxq.features ^= 1ull << VIRTIO_F_INDIRECT_DESC;
            }
            setup_queue(&txq);
            setup_queue(&rxq);
            break;
        default:
            /* A queue reset the device is not told of (§2.6.1 without ops). */
            setup_queue(f);
            break;
        }
    }
    /* The device comes back while asked to, a bounded number of times. */
    bool more = true;
    for (unsigned k = 0; k < 8 && more; k++)
        call_tx(&more);
    more = true;
    for (unsigned k = 0; k < 8 && more; k++)
        call_rx(&more);
    free(ram);
    ram = NULL;
    return 0;
}
