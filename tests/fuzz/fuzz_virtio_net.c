/* The virtio-net engine (vmm/virtio/net.c) over the real virtqueue engine, a guest
 * RAM image and two queues (receiveq, transmitq) made of the fuzzer's bytes, random
 * negotiated features and MTU, then a hostile driver's actions (offering heads,
 * building chains, writing headers, rewriting descriptors and ring fields,
 * scribbling anywhere, device and queue resets, renegotiating) mixed with frames
 * from the link and the device's calls.  Guest RAM is a heap block of exactly its
 * size, so ASan stops any access outside it.
 *
 * The harness sees the device's queue and memory traffic: net.c is included with
 * vq_pop, vq_used_add, vq_unpop and gmem_write routed through checking wrappers
 * (the source is unchanged; the wrappers call the real functions).  Invariants:
 *   - transmit: each chain taken is completed (length 0) before the next is
 *     taken; its frame goes out exactly when a model of the rules (written here
 *     from §5.1.6.2, not from net.c) says it is valid, once, as the chain's bytes
 *     after the header, with the header cleaned; a dropped chain bumps exactly one
 *     drop counter; nothing is written to guest memory but the used ring;
 *   - receive: an invalid frame is dropped before any chain is taken; the device
 *     writes only into the writable buffers of chains it holds, the frame's bytes
 *     in order (the checksum completed by the model's own RFC 1071 code when the
 *     driver lacks GUEST_CSUM) from offset 12 of the first, each chain filled
 *     whole before the next, then the header with num_buffers = the chains used;
 *     it completes them in order, then the bad chains among them with 0, or gives
 *     every one back (NO_BUFFERS, kicks re-armed for the entry after them; or a
 *     drop), never some of each; without MRG_RXBUF a frame takes one chain;
 *     vnet_rx publishes nothing, vnet_rx_flush at most once;
 *   - bounded work per call: VNET_TX_BATCH_CHAINS chains and VNET_TX_BUDGET +
 *     VNET_FRAME_MAX bytes on transmit, the queue's size in chains on receive,
 *     and the walks within the queue engine's limit; *more exactly when the
 *     transmit call stopped early;
 *   - a broken queue yields nothing; each driver error is counted once; the
 *     negotiated features are the offered ones the driver accepted, TSO only
 *     with its CSUM.
 *
 * Input: RAM size, an image (offset, length, bytes), MTU and features, each
 * queue's parameters, then one byte per action. */
#include "fuzz.h"
#include "vmm/virtio/guest_mem.c"
#include "vmm/virtio/virtqueue.c"

static enum vq_error fz_vq_pop(struct vq *q, const struct gmem *gm, struct vq_chain *out);
static enum vq_error fz_vq_used_add(struct vq *q, const struct gmem *gm, uint16_t head, uint32_t len);
static enum vq_error fz_vq_unpop(struct vq *q, uint16_t n);
static bool fz_gmem_write(const struct gmem *gm, uint64_t gpa, const void *buf, uint64_t len);
#define vq_pop fz_vq_pop
#define vq_used_add fz_vq_used_add
#define vq_unpop fz_vq_unpop
#define gmem_write fz_gmem_write
#include "vmm/virtio/net.c"
#undef vq_pop
#undef vq_used_add
#undef vq_unpop
#undef gmem_write

#define RAM_MAX   16384u
/* Chains one receive call may hold: the queue's size, which 16 KiB of RAM keeps
 * at or under 512 (descriptor table, rings). */
#define HELD_MAX  1024u
#define F(bit)    (1ull << (bit))

/* A chain the device has taken and not completed or given back. */
struct held {
    uint16_t head;
    uint16_t n_seg, n_readable;
    uint32_t read_bytes, write_bytes;
    bool good;                  /* rx: one the frame may use */
    uint32_t written;           /* rx: bytes written into it */
    struct vq_seg seg[VNET_CHAIN_SEGS];
};

/* One queue as the harness follows it. */
struct fq {
    struct vq q;
    uint16_t size;
    uint64_t features;
    uint64_t desc, avail, used;
    uint32_t max_bytes;
    unsigned n_held;
    unsigned pops_ok, pops_empty, pops_failed;     /* in the current call */
    uint16_t empty_seen;                /* last_avail_idx when a pop last found none */
};

static struct vnet net;
static struct fq txq, rxq;
static struct held held[HELD_MAX];
static struct gmem g;
static uint8_t *ram;
static uint8_t shadow[RAM_MAX];         /* RAM as the driver last left it */
static uint32_t allowed[RAM_MAX];       /* == call_gen: the current call may write it */
static uint32_t call_gen;
static enum { CALL_NONE, CALL_TX, CALL_RX } in_call;
static uint64_t driver_errors;
static uint64_t model_features;
static unsigned mtu;

/* Transmit: whether the held chain went out, and what the model says of it. */
static bool tx_sent;
static uint8_t tx_bytes[VNET_FRAME_MAX];
static uint64_t call_copied;

/* Receive: the frame in flight and the device's progress through it. */
static struct vnet_hdr rx_h;
static uint8_t rx_frame_buf[70000];
static size_t rx_len;
static bool rx_pending;                 /* a frame the link side still holds */
static uint8_t rx_expect[VNET_FRAME_MAX];       /* the frame as the driver must see it */
static struct vnet_hdr rx_expect_hdr;
static size_t rx_pos;                   /* frame bytes written */
static unsigned rx_cur;                 /* held index of the chain being filled */
static uint16_t rx_seg_i;
static uint32_t rx_seg_off;
static unsigned rx_hdr_written;         /* header bytes written (at the end) */
static bool rx_completing;              /* the frame's chains are being completed */
static bool rx_wrote_rings;             /* a receive buffer overlapped a ring */

static struct fq *fq_of(const struct vq *q)
{
    struct fq *f = q == &txq.q ? &txq : q == &rxq.q ? &rxq : NULL;
    FUZZ_CHECK(f, "call on an unknown queue");
    return f;
}

static bool feat_has(uint64_t feat, unsigned bit)
{
    return feat >> bit & 1;
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a < b + blen && b < a + alen;
}

/* ---- the model: what §5.1.6 allows, written apart from net.c ------------------ */

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static struct vnet_hdr parse_hdr(const uint8_t *p)
{
    return (struct vnet_hdr){ .flags = p[0], .gso_type = p[1], .hdr_len = le16(p + 2), .gso_size = le16(p + 4),
                              .csum_start = le16(p + 6), .csum_offset = le16(p + 8), .num_buffers = le16(p + 10) };
}

static bool model_ok(const struct vnet_hdr *h, const uint8_t *f, size_t len, bool tx)
{
    if (len < 14 || len > 65536)
        return false;
    if (tx && (h->flags & 6))
        return false;
    bool needs = h->flags & 1;
    if (needs && tx && !feat_has(model_features, VIRTIO_NET_F_CSUM))
        return false;
    if (needs && (unsigned)h->csum_start + h->csum_offset + 2 > len)
        return false;
    if (h->gso_type == 0) {
        size_t max = mtu + 14u + (f[12] == 0x81 && f[13] == 0x00 ? 4u : 0u);
        return len <= max;
    }
    if (h->gso_type != 1 && h->gso_type != 4)
        return false;
    unsigned bit = tx ? (h->gso_type == 1 ? VIRTIO_NET_F_HOST_TSO4 : VIRTIO_NET_F_HOST_TSO6)
                      : (h->gso_type == 1 ? VIRTIO_NET_F_GUEST_TSO4 : VIRTIO_NET_F_GUEST_TSO6);
    if (!feat_has(model_features, bit) || !needs || h->gso_size == 0 || (tx && h->gso_size > mtu))
        return false;
    return h->hdr_len <= len;
}

static struct vnet_hdr model_clean(const struct vnet_hdr *h)
{
    struct vnet_hdr c = { .flags = h->flags & 1, .gso_type = h->gso_type };
    if (c.flags) {
        c.csum_start = h->csum_start;
        c.csum_offset = h->csum_offset;
    }
    if (c.gso_type) {
        c.hdr_len = h->hdr_len;
        c.gso_size = h->gso_size;
    }
    return c;
}

static uint16_t model_checksum(const uint8_t *p, size_t n)
{
    uint32_t s = 0;
    for (size_t i = 0; i < n; i++) {
        s += i % 2 ? p[i] : (uint32_t)p[i] << 8;
        s = (s & 0xffff) + (s >> 16);
    }
    uint16_t c = (uint16_t)~s;
    return c ? c : 0xffff;
}

/* ---- the wrappers net.c calls ---------------------------------------------------- */

static void allow(uint64_t gpa, uint64_t len)
{
    for (uint64_t i = gpa; i < gpa + len && i < g.size; i++)
        allowed[i] = call_gen;
}

static enum vq_error fz_vq_pop(struct vq *q, const struct gmem *gm, struct vq_chain *out)
{
    struct fq *f = fq_of(q);
    FUZZ_CHECK(in_call == (f == &txq ? CALL_TX : CALL_RX), "pop on the other queue's call");
    FUZZ_CHECK(f == &rxq || f->n_held == 0, "transmit pop with chain %u held", held[0].head);
    FUZZ_CHECK(f == &rxq || f->pops_ok < VNET_TX_BATCH_CHAINS, "more than %u chains in one call",
               VNET_TX_BATCH_CHAINS);
    FUZZ_CHECK(!rx_completing || f == &txq, "receive pop while completing");
    enum vq_error e = vq_pop(q, gm, out);
    if (e == VQ_EMPTY) {
        f->pops_empty++;
        f->empty_seen = q->last_avail_idx;
    }
    if (e != VQ_OK && e != VQ_EMPTY)
        f->pops_failed++;
    if (e != VQ_OK)
        return e;
    f->pops_ok++;
    FUZZ_CHECK(out->n_seg <= VNET_CHAIN_SEGS && f->n_held < HELD_MAX, "%u segments, %u held", out->n_seg,
               f->n_held);
    for (unsigned i = 0; i < out->n_seg; i++)
        FUZZ_CHECK(gmem_contains(gm, out->seg[i].gpa, out->seg[i].len), "segment outside RAM");
    struct held *h = &held[f->n_held++];
    h->head = out->head;
    h->n_seg = out->n_seg;
    h->n_readable = out->n_readable;
    h->read_bytes = out->read_bytes;
    h->write_bytes = out->write_bytes;
    memcpy(h->seg, out->seg, out->n_seg * sizeof out->seg[0]);
    h->written = 0;
    if (f == &txq) {
        tx_sent = false;
        return e;
    }
    /* The engine's rule for a buffer a frame may use (§5.1.6.3.1). */
    bool mrg = feat_has(model_features, VIRTIO_NET_F_MRG_RXBUF);
    bool first = true;
    for (unsigned i = 0; i + 1 < f->n_held; i++)
        first &= !held[i].good;
    h->good = h->n_readable == 0 && h->write_bytes > 0 && !(mrg && first && h->write_bytes < VNET_HDR_BYTES);
    if (h->good) {
        FUZZ_CHECK(rx_pos < rx_len || first, "chain taken after the frame was placed");
        rx_cur = f->n_held - 1;
        rx_seg_i = 0;
        rx_seg_off = 0;
        if (first) {
            /* Data starts after the header's 12 bytes. */
            uint32_t skip = VNET_HDR_BYTES;
            while (rx_seg_i < h->n_seg && skip >= h->seg[rx_seg_i].len)
                skip -= h->seg[rx_seg_i++].len;
            rx_seg_off = skip;
        }
    }
    return e;
}

static void held_remove(struct fq *f, unsigned i)
{
    memmove(&held[i], &held[i + 1], (f->n_held - i - 1) * sizeof held[0]);
    f->n_held--;
    if (rx_cur > i && rx_cur != UINT32_MAX)
        rx_cur--;
}

static enum vq_error fz_vq_used_add(struct vq *q, const struct gmem *gm, uint16_t head, uint32_t len)
{
    struct fq *f = fq_of(q);
    FUZZ_CHECK(f->n_held > 0, "completed %u with nothing held", head);
    if (f == &txq) {
        struct held *h = &held[0];
        FUZZ_CHECK(head == h->head && len == 0, "transmit completion %u/%u, held %u", head, len, h->head);
        bool ok = false;
        if (h->n_readable == h->n_seg && h->read_bytes >= VNET_HDR_BYTES && h->read_bytes <= VNET_FRAME_MAX) {
            uint32_t off = 0;
            for (unsigned i = 0; i < h->n_seg; i++) {
                memcpy(tx_bytes + off, ram + h->seg[i].gpa, h->seg[i].len);
                off += h->seg[i].len;
            }
            struct vnet_hdr hd = parse_hdr(tx_bytes);
            ok = model_ok(&hd, tx_bytes + 12, off - 12, true);
            call_copied += off;
        }
        FUZZ_CHECK(ok == tx_sent, "transmit chain %s, the model says %s", tx_sent ? "sent" : "dropped",
                   ok ? "valid" : "invalid");
        f->n_held = 0;
        return vq_used_add(q, gm, head, len);
    }
    if (!rx_completing && f->n_held == 1 && !held[0].good) {
        /* A bad chain met before the frame's first: completed at once. */
        FUZZ_CHECK(head == held[0].head && len == 0, "bad chain completed %u/%u", head, len);
        held_remove(f, 0);
        return vq_used_add(q, gm, head, len);
    }
    /* The frame's chains in order, then the bad ones among them. */
    FUZZ_CHECK(rx_pos == rx_len && rx_hdr_written == VNET_HDR_BYTES, "completion at %zu of %zu, header %u",
               rx_pos, rx_len, rx_hdr_written);
    rx_completing = true;
    unsigned i = 0;
    while (i < f->n_held && !held[i].good)
        i++;
    if (i == f->n_held)
        i = 0;
    struct held *h = &held[i];
    FUZZ_CHECK(head == h->head && len == h->written, "completed %u/%u, expected %u/%u", head, len, h->head,
               h->written);
    bool more_good = false;
    for (unsigned k = i + 1; k < f->n_held; k++)
        more_good |= held[k].good;
    if (h->good && more_good)
        FUZZ_CHECK(h->written == h->write_bytes, "chain of %u filled with %u before the last", h->write_bytes,
                   h->written);
    held_remove(f, i);
    return vq_used_add(q, gm, head, len);
}

static enum vq_error fz_vq_unpop(struct vq *q, uint16_t n)
{
    struct fq *f = fq_of(q);
    FUZZ_CHECK(f == &rxq && in_call == CALL_RX && !rx_completing, "give back outside a receive");
    FUZZ_CHECK(n == f->n_held, "gave back %u of %u held", n, f->n_held);
    enum vq_error e = vq_unpop(q, n);
    FUZZ_CHECK(e == VQ_OK || q->broken, "unpop %s", vq_error_name(e));
    f->n_held = 0;
    rx_cur = UINT32_MAX;
    rx_pos = 0;
    rx_hdr_written = 0;
    return e;
}

static bool fz_gmem_write(const struct gmem *gm, uint64_t gpa, const void *buf, uint64_t len)
{
    FUZZ_CHECK(in_call == CALL_RX && rx_cur != UINT32_MAX && rx_cur < rxq.n_held, "device write outside a frame");
    FUZZ_CHECK(len > 0, "empty write");
    const uint8_t *b = buf;
    if (rx_pos < rx_len) {
        /* The frame's bytes, in order, at the fill position of the newest chain. */
        struct held *h = &held[rx_cur];
        FUZZ_CHECK(rx_cur == rxq.n_held - 1 && h->good, "write into chain %u of %u (good %d)", rx_cur,
                   rxq.n_held, h->good);
        FUZZ_CHECK(rx_seg_i < h->n_seg, "write past the chain's buffers");
        const struct vq_seg *s = &h->seg[rx_seg_i];
        FUZZ_CHECK(gpa == s->gpa + rx_seg_off && len <= s->len - rx_seg_off && len <= rx_len - rx_pos,
                   "write %#lx+%lu, expected at %#lx", (unsigned long)gpa, (unsigned long)len,
                   (unsigned long)(s->gpa + rx_seg_off));
        FUZZ_CHECK(!memcmp(b, rx_expect + rx_pos, len), "frame bytes at %zu wrong", rx_pos);
        rx_pos += len;
        h->written += (uint32_t)len;
        rx_seg_off += (uint32_t)len;
        if (rx_seg_off == s->len) {
            rx_seg_i++;
            rx_seg_off = 0;
        }
    } else {
        /* Then the header, into the first chain's first 12 bytes. */
        unsigned first = 0;
        while (first < rxq.n_held && !held[first].good)
            first++;
        FUZZ_CHECK(first < rxq.n_held, "header with no chain");
        struct held *h = &held[first];
        uint32_t at = rx_hdr_written, i = 0;
        while (i < h->n_seg && at >= h->seg[i].len)
            at -= h->seg[i++].len;
        FUZZ_CHECK(i < h->n_seg && gpa == h->seg[i].gpa + at && len <= h->seg[i].len - at &&
                   len <= VNET_HDR_BYTES - rx_hdr_written, "header write %#lx+%lu misplaced", (unsigned long)gpa,
                   (unsigned long)len);
        unsigned good = 0;
        for (unsigned k = 0; k < rxq.n_held; k++)
            good += held[k].good;
        rx_expect_hdr.num_buffers = (uint16_t)good;
        uint8_t want[VNET_HDR_BYTES];
        hdr_put(want, &rx_expect_hdr);
        FUZZ_CHECK(!memcmp(b, want + rx_hdr_written, len), "header bytes wrong (num_buffers %u)", good);
        FUZZ_CHECK(good == 1 || feat_has(model_features, VIRTIO_NET_F_MRG_RXBUF), "%u chains without MRG_RXBUF", good);
        if (rx_hdr_written == 0)
            h->written += VNET_HDR_BYTES;
        rx_hdr_written += (unsigned)len;
    }
    allow(gpa, len);
    if (overlaps(gpa, len, rxq.avail, VQ_AVAIL_BYTES(rxq.size)) || overlaps(gpa, len, rxq.used, VQ_USED_BYTES(rxq.size)))
        rx_wrote_rings = true;
    return gmem_write(gm, gpa, buf, len);
}

static void out_fn(void *ctx, const struct vnet_hdr *h, const uint8_t *frame, size_t len)
{
    FUZZ_CHECK(ctx == &txq && in_call == CALL_TX && txq.n_held == 1 && !tx_sent, "output outside a held chain");
    struct held *c = &held[0];
    FUZZ_CHECK(c->n_readable == c->n_seg && c->read_bytes == len + VNET_HDR_BYTES, "frame of %zu from a chain of %u",
               len, c->read_bytes);
    uint32_t off = 0;
    for (unsigned i = 0; i < c->n_seg; i++) {
        memcpy(tx_bytes + off, ram + c->seg[i].gpa, c->seg[i].len);
        off += c->seg[i].len;
    }
    FUZZ_CHECK(!memcmp(frame, tx_bytes + VNET_HDR_BYTES, len), "frame is not the chain's bytes");
    struct vnet_hdr raw = parse_hdr(tx_bytes), want = model_clean(&raw);
    FUZZ_CHECK(!memcmp(h, &want, sizeof want), "header not the chain's, cleaned");
    FUZZ_CHECK(model_ok(h, frame, len, true), "an invalid frame went out");
    tx_sent = true;
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

static void new_call(struct fq *f)
{
    if (++call_gen == 0) {
        memset(allowed, 0, sizeof allowed);
        call_gen = 1;
    }
    if (f->q.enabled && !f->q.broken)
        allow(f->used, VQ_USED_BYTES(f->size));
    f->pops_ok = f->pops_empty = f->pops_failed = 0;
    f->n_held = 0;
}

static uint64_t drop_total(const uint64_t *c)
{
    uint64_t t = 0;
    for (unsigned i = 0; i < VNET_DROP_COUNT; i++)
        t += c[i];
    return t;
}

static void check_result(struct fq *f, bool was_live, enum vq_error e)
{
    if (vq_error_is_driver(e)) {
        FUZZ_CHECK(was_live && f->q.broken && f->q.error == e, "%s without breaking", vq_error_name(e));
        driver_errors++;
    }
    FUZZ_CHECK(net.stats.queue_errors == driver_errors, "queue_errors %lu, %lu seen",
               (unsigned long)net.stats.queue_errors, (unsigned long)driver_errors);
    if (!was_live)
        FUZZ_CHECK(f->pops_ok == 0, "a dead queue served");
    check_writes();
}

static bool live(const struct fq *f)
{
    return f->q.enabled && !f->q.broken;
}

static void call_tx(bool *more_out)
{
    struct fq *f = &txq;
    bool was_live = live(f);
    uint64_t pub0 = f->q.stats.publishes, notif0 = f->q.stats.notifies, descs0 = f->q.stats.descs;
    uint64_t sent0 = net.stats.tx_frames, drops0 = drop_total(net.stats.tx_drop);
    new_call(f);
    call_copied = 0;
    bool more = false;
    enum vq_error e = VQ_ERR_SIZE;
    in_call = CALL_TX;
    bool irq = vnet_tx(&net, &f->q, &g, out_fn, &txq, &more, &e);
    in_call = CALL_NONE;
    FUZZ_CHECK(f->n_held == 0, "transmit chain left held");
    uint64_t sent = net.stats.tx_frames - sent0, dropped = drop_total(net.stats.tx_drop) - drops0;
    FUZZ_CHECK(call_copied <= VNET_TX_BUDGET + VNET_FRAME_MAX, "%lu bytes copied", (unsigned long)call_copied);
    FUZZ_CHECK(sent + dropped == f->pops_ok, "%lu chains, %lu sent, %lu dropped",
               (unsigned long)f->pops_ok, (unsigned long)sent, (unsigned long)dropped);
    FUZZ_CHECK(f->pops_empty <= VNET_NOTIFY_ROUNDS && f->pops_failed <= 1, "%u empty pops, %u failed",
               f->pops_empty, f->pops_failed);
    FUZZ_CHECK(f->q.stats.descs - descs0 <= (uint64_t)(f->pops_ok + f->pops_failed) * 2 * f->size, "%lu descriptors read",
               (unsigned long)(f->q.stats.descs - descs0));
    FUZZ_CHECK(f->q.stats.publishes - pub0 <= VNET_NOTIFY_ROUNDS, "%lu publishes",
               (unsigned long)(f->q.stats.publishes - pub0));
    FUZZ_CHECK(!irq || f->q.stats.notifies - notif0 == 1, "interrupt without a decision");
    FUZZ_CHECK(more == (e == VQ_OK), "more %d with %s", more, vq_error_name(e));
    FUZZ_CHECK(e == VQ_OK || e == VQ_EMPTY || e == VQ_ERR_BROKEN || e == VQ_ERR_NOT_READY || vq_error_is_driver(e),
               "result %d", e);
    if (e == VQ_EMPTY) {
        uint16_t v = 1;
        if (f->q.event_idx) {
            (void)gmem_read_u16(&g, f->used + 4 + 8ull * f->size, &v);
            FUZZ_CHECK(v == f->q.last_avail_idx, "transmitq drained, avail_event %u", v);
        } else {
            (void)gmem_read_u16(&g, f->used, &v);
            FUZZ_CHECK(!(v & VIRTQ_USED_F_NO_NOTIFY), "transmitq drained with kicks off");
        }
    }
    check_result(f, was_live, e);
    if (more_out)
        *more_out = more;
}

/* The frame the model expects the driver to see, and its header. */
static bool rx_prepare(void)
{
    if (!model_ok(&rx_h, rx_frame_buf, rx_len, false))
        return false;
    memcpy(rx_expect, rx_frame_buf, rx_len);
    rx_expect_hdr = model_clean(&rx_h);
    if ((rx_h.flags & 1) && !feat_has(model_features, VIRTIO_NET_F_GUEST_CSUM)) {
        uint16_t c = model_checksum(rx_frame_buf + rx_h.csum_start, rx_len - rx_h.csum_start);
        rx_expect[rx_h.csum_start + rx_h.csum_offset] = (uint8_t)(c >> 8);
        rx_expect[rx_h.csum_start + rx_h.csum_offset + 1] = (uint8_t)c;
        rx_expect_hdr.flags = 0;
        rx_expect_hdr.csum_start = rx_expect_hdr.csum_offset = 0;
    }
    return true;
}

static void call_rx(void)
{
    struct fq *f = &rxq;
    bool was_live = live(f), was_broken = f->q.broken, was_enabled = f->q.enabled;
    uint64_t pub0 = f->q.stats.publishes, dec0 = f->q.stats.notifies + f->q.stats.suppressed;
    uint64_t descs0 = f->q.stats.descs, frames0 = net.stats.rx_frames, drops0 = drop_total(net.stats.rx_drop);
    new_call(f);
    call_copied = 0;
    bool valid = rx_prepare();
    rx_pos = 0;
    rx_cur = UINT32_MAX;
    rx_hdr_written = 0;
    rx_completing = false;
    rx_wrote_rings = false;
    enum vq_error e = VQ_ERR_SIZE;
    in_call = CALL_RX;
    enum vnet_rx_result r = vnet_rx(&net, &f->q, &g, &rx_h, rx_frame_buf, rx_len, &e);
    in_call = CALL_NONE;
    FUZZ_CHECK(f->q.stats.publishes == pub0 && f->q.stats.notifies + f->q.stats.suppressed == dec0,
               "vnet_rx published or decided an interrupt");
    FUZZ_CHECK(f->pops_ok <= f->size || !was_live, "%u chains for one frame, queue of %u", f->pops_ok, f->size);
    FUZZ_CHECK(f->pops_empty <= f->pops_ok + VNET_NOTIFY_ROUNDS + 1 && f->pops_failed <= 1,
               "%u empty pops after %u, %u failed", f->pops_empty, f->pops_ok, f->pops_failed);
    FUZZ_CHECK(f->q.stats.descs - descs0 <= (uint64_t)(f->pops_ok + f->pops_failed) * 2 * f->size, "%lu descriptors read",
               (unsigned long)(f->q.stats.descs - descs0));
    uint64_t dropped = drop_total(net.stats.rx_drop) - drops0;
    FUZZ_CHECK(dropped == (r == VNET_RX_DROPPED), "result %d, %lu drops counted", r, (unsigned long)dropped);
    FUZZ_CHECK(net.stats.rx_frames - frames0 == (r == VNET_RX_DELIVERED), "result %d, frames counted", r);
    if (was_broken)
        FUZZ_CHECK(r == VNET_RX_BROKEN && e == VQ_ERR_BROKEN, "broken queue: %d %s", r, vq_error_name(e));
    else if (!was_enabled)
        FUZZ_CHECK(r == VNET_RX_DROPPED && e == VQ_ERR_NOT_READY, "no queue: %d %s", r, vq_error_name(e));
    else if (!valid)
        FUZZ_CHECK(r == VNET_RX_DROPPED && f->pops_ok == 0 && f->pops_empty == 0, "invalid frame: %d, %u pops", r,
                   f->pops_ok);
    switch (r) {
    case VNET_RX_DELIVERED:
        FUZZ_CHECK(valid && e == VQ_OK && f->n_held == 0 && rx_pos == rx_len && rx_hdr_written == VNET_HDR_BYTES,
                   "delivered with %u held, %zu of %zu", f->n_held, rx_pos, rx_len);
        rx_pending = false;
        break;
    case VNET_RX_NO_BUFFERS:
        FUZZ_CHECK(valid && e == VQ_EMPTY && f->n_held == 0 && f->pops_empty > 0, "no buffers, %u held", f->n_held);
        if (!rx_wrote_rings) {
            uint16_t v = 0;
            if (f->q.event_idx) {
                (void)gmem_read_u16(&g, f->used + 4 + 8ull * f->size, &v);
                FUZZ_CHECK(v == f->empty_seen, "avail_event %u, device saw %u", v, f->empty_seen);
            } else {
                (void)gmem_read_u16(&g, f->used, &v);
                FUZZ_CHECK(!(v & VIRTQ_USED_F_NO_NOTIFY), "waiting for buffers with kicks off");
            }
        }
        break;
    case VNET_RX_DROPPED:
        FUZZ_CHECK(f->n_held == 0, "dropped with %u held", f->n_held);
        FUZZ_CHECK(!was_enabled || !valid || e == VQ_OK, "dropped with %s", vq_error_name(e));
        rx_pending = false;
        break;
    case VNET_RX_BROKEN:
        FUZZ_CHECK(f->q.broken, "broken result on a working queue");
        FUZZ_CHECK(vq_error_is_driver(e) || e == VQ_ERR_BROKEN, "broken with %s", vq_error_name(e));
        rx_pending = false;
        break;
    default:
        FUZZ_CHECK(false, "result %d", r);
    }
    f->n_held = 0;
    check_result(f, was_live, e);
}

static void call_flush(void)
{
    struct fq *f = &rxq;
    bool was_live = live(f);
    uint64_t pub0 = f->q.stats.publishes, notif0 = f->q.stats.notifies;
    new_call(f);
    enum vq_error e = VQ_ERR_SIZE;
    bool irq = vnet_rx_flush(&net, &f->q, &g, &e);
    FUZZ_CHECK(f->q.stats.publishes - pub0 <= 1, "%lu publishes", (unsigned long)(f->q.stats.publishes - pub0));
    FUZZ_CHECK(!irq || (f->q.stats.notifies - notif0 == 1 && f->q.stats.publishes - pub0 <= 1),
               "interrupt without a decision");
    FUZZ_CHECK(e == VQ_OK || vq_error_is_driver(e), "flush %s", vq_error_name(e));
    check_result(f, was_live, e);
}

static void set_features(uint64_t accepted)
{
    vnet_set_features(&net, accepted);
    uint64_t m = accepted & vnet_features();
    if (!feat_has(m, VIRTIO_NET_F_CSUM))
        m &= ~(F(VIRTIO_NET_F_HOST_TSO4) | F(VIRTIO_NET_F_HOST_TSO6));
    if (!feat_has(m, VIRTIO_NET_F_GUEST_CSUM))
        m &= ~(F(VIRTIO_NET_F_GUEST_TSO4) | F(VIRTIO_NET_F_GUEST_TSO6));
    model_features = m;
    FUZZ_CHECK(net.features == m, "features %#lx, model %#lx", (unsigned long)net.features, (unsigned long)m);
}

static void setup_queue(struct fq *f)
{
    vq_reset(&f->q);
    vq_set_features(&f->q, f->features);
    enum vq_error e = vq_set_addrs(&f->q, &g, f->size, f->desc, f->avail, f->used);
    FUZZ_CHECK(e == VQ_OK || (vq_error_is_driver(e) && f->q.broken), "set_addrs %s", vq_error_name(e));
    f->n_held = 0;
    driver_wrote();
}

static void read_queue_params(struct fuzz_in *in, struct fq *f, uint64_t ram_size, uint64_t fixed_base)
{
    uint8_t sel = fz_u8(in);
    f->size = sel & 0x80 ? fz_u16(in) : (uint16_t)(1u << (sel & 7));
    f->features = (sel & 0x10 ? F(VIRTIO_F_INDIRECT_DESC) : 0) | (sel & 0x20 ? F(VIRTIO_F_EVENT_IDX) : 0);
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

/* A header the rules make interesting: mostly the values a driver uses. */
static struct vnet_hdr fuzz_hdr(struct fuzz_in *in)
{
    static const uint8_t types[] = { 0, 0, 0, 1, 4, 1, 3, 5, 0x81, 0x84 };
    uint8_t sel = fz_u8(in);
    struct vnet_hdr h = { 0 };
    h.flags = sel & 1 ? VIRTIO_NET_HDR_F_NEEDS_CSUM : 0;
    if (sel & 2)
        h.flags = fz_u8(in);
    h.gso_type = types[(sel >> 2) % sizeof types];
    if (sel & 0x40)
        h.gso_type = fz_u8(in);
    if (h.flags & 1) {
        h.csum_start = sel & 0x80 ? fz_u16(in) : 14 + fz_u8(in) % 64;
        h.csum_offset = fz_u8(in) % 20;
    }
    if (h.gso_type) {
        h.gso_size = sel & 0x20 ? fz_u16(in) : 536 + fz_u8(in) * 4;
        h.hdr_len = sel & 0x10 ? fz_u16(in) : 54 + fz_u8(in) % 32;
    }
    h.num_buffers = fz_u8(in);
    return h;
}

/* A frame from the link: header, length, bytes. */
static void fuzz_frame(struct fuzz_in *in)
{
    rx_h = fuzz_hdr(in);
    uint8_t sel = fz_u8(in);
    switch (sel % 4) {
    case 0: rx_len = fz_u8(in); break;
    case 1: rx_len = fz_u16(in) % 2048; break;
    case 2: rx_len = fz_u16(in) % 10000; break;
    default: rx_len = fz_u32(in) % sizeof rx_frame_buf; break;
    }
    size_t n = fz_u8(in) % 64;
    if (n > rx_len)
        n = rx_len;
    for (size_t i = 0; i < rx_len; i++)
        rx_frame_buf[i] = (uint8_t)(i * 13 + sel);
    fz_bytes(in, rx_frame_buf, n);
    if (rx_len >= 14 && (sel & 0x10)) {
        rx_frame_buf[12] = 0x81;
        rx_frame_buf[13] = 0x00;
    }
    rx_pending = true;
}

static void device_reset(void)
{
    /* The transport's order: every queue, then the device (ops.reset). */
    vq_reset(&txq.q);
    vq_reset(&rxq.q);
    vnet_reset(&net);
    model_features = 0;
    FUZZ_CHECK(net.features == 0, "features kept across a reset");
    txq.n_held = rxq.n_held = 0;
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
    static const uint8_t mac[6] = { 0x52, 0x54, 0, 1, 2, 3 };
    uint16_t m = fz_u16(&in);
    unsigned want_mtu = m & 0x8000 ? m & 0x7fff : 68 + m % 9000;
    bool init_ok = vnet_init(&net, mac, want_mtu);
    FUZZ_CHECK(init_ok == (want_mtu == 0 || (want_mtu >= 68 && want_mtu <= 65535)), "mtu %u: init %d", want_mtu,
               init_ok);
    if (!init_ok)
        FUZZ_CHECK(vnet_init(&net, mac, 1500), "mtu 1500");
    mtu = net.mtu;
    FUZZ_CHECK(mtu == (want_mtu && init_ok ? want_mtu : 1500), "mtu %u", mtu);
    driver_errors = 0;
    rx_pending = false;
    set_features(fz_u32(&in) | (uint64_t)fz_u8(&in) << 32);
    read_queue_params(&in, &txq, ram_size, 0x0000);
    read_queue_params(&in, &rxq, ram_size, 0x1000);

    while (in.n) {
        uint8_t op = fz_u8(&in);
        struct fq *f = pick(op);
        switch (op % 16) {
        case 0: {
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
        case 1:
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
            /* A transmit header and the start of a frame, at any address. */
            uint64_t at = fz_u16(&in) % ram_size;
            struct vnet_hdr h = fuzz_hdr(&in);
            uint8_t b[VNET_HDR_BYTES + 14];
            hdr_put(b, &h);
            memset(b + 12, 0xff, 6);
            memcpy(b + 18, mac, 6);
            b[24] = op & 0x40 ? 0x81 : 0x08;
            b[25] = 0;
            size_t n = sizeof b < ram_size - at ? sizeof b : ram_size - at;
            memcpy(ram + at, b, n);
            driver_wrote();
            break;
        }
        case 6: {
            /* A run of data bytes. */
            uint64_t at = fz_u16(&in) % ram_size;
            size_t n = fz_u8(&in) % 64;
            if (n > ram_size - at)
                n = ram_size - at;
            fz_bytes(&in, ram + at, n);
            driver_wrote();
            break;
        }
        case 7:
        case 8:
            call_tx(NULL);
            break;
        case 9:
        case 10:
            /* The link side delivers its held frame first, as it must. */
            if (!rx_pending || (op & 0x40))
                fuzz_frame(&in);
            call_rx();
            break;
        case 11:
            call_flush();
            break;
        case 12:
            device_reset();
            if (op & 0x40) {
                txq.features ^= F(VIRTIO_F_EVENT_IDX);
                rxq.features ^= F(VIRTIO_F_INDIRECT_DESC);
            }
            set_features(fz_u32(&in));
            setup_queue(&txq);
            setup_queue(&rxq);
            break;
        case 13:
            /* A queue reset the device is not told of (§2.6.1 without ops), then
             * enabled again or left disabled. */
            if (op & 0x40) {
                vq_reset(&f->q);
                f->n_held = 0;
            } else {
                setup_queue(f);
            }
            break;
        case 14:
            /* Features changed under a running device (the transport forbids it
             * after FEATURES_OK; the engine must not care). */
            set_features(fz_u32(&in));
            break;
        default:
            if (rx_pending)
                call_rx();
            call_flush();
            break;
        }
    }
    /* The device comes back while asked to, a bounded number of times. */
    bool more = true;
    for (unsigned k = 0; k < 8 && more; k++)
        call_tx(&more);
    if (rx_pending)
        call_rx();
    call_flush();
    free(ram);
    ram = NULL;
    return 0;
}
