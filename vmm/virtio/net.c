#include "vmm/virtio/net.h"
#include "vmm/virtio/seg_stream.h"

#include "kernel/string.h"

_Static_assert(VNET_CHAIN_SEGS <= UINT16_MAX, "vq_chain.seg_cap is 16 bits");
_Static_assert(VNET_RX_CHAINS <= UINT16_MAX, "num_buffers is 16 bits");
_Static_assert(VNET_FRAME_MAX <= UINT32_MAX, "chain lengths are 32 bits");

/* Rounds of "re-enable kicks, find more, drain again" one call makes.  A driver
 * adding chains as fast as the device drains them makes progress each round and
 * meets the chain budget first; one that moves avail->idx back and forth (idx
 * never moves back, §2.7.6.1) makes none, and this is what stops it. */
#define VNET_NOTIFY_ROUNDS  8

static const uint64_t offered =
    1ull << VIRTIO_NET_F_CSUM | 1ull << VIRTIO_NET_F_GUEST_CSUM | 1ull << VIRTIO_NET_F_MTU |
    1ull << VIRTIO_NET_F_MAC | 1ull << VIRTIO_NET_F_GUEST_TSO4 | 1ull << VIRTIO_NET_F_GUEST_TSO6 |
    1ull << VIRTIO_NET_F_HOST_TSO4 | 1ull << VIRTIO_NET_F_HOST_TSO6 | 1ull << VIRTIO_NET_F_MRG_RXBUF |
    1ull << VIRTIO_NET_F_STATUS;

static const char *const drop_names[VNET_DROP_COUNT] = {
    [VNET_DROP_WRITABLE]     = "writable",
    [VNET_DROP_SHORT]        = "short",
    [VNET_DROP_RUNT]         = "runt",
    [VNET_DROP_OVERSIZE]     = "oversize",
    [VNET_DROP_MTU]          = "mtu",
    [VNET_DROP_FLAGS]        = "flags",
    [VNET_DROP_CSUM_FEATURE] = "csum-feature",
    [VNET_DROP_CSUM_RANGE]   = "csum-range",
    [VNET_DROP_GSO_TYPE]     = "gso-type",
    [VNET_DROP_GSO_FEATURE]  = "gso-feature",
    [VNET_DROP_GSO_CSUM]     = "gso-csum",
    [VNET_DROP_GSO_SIZE]     = "gso-size",
    [VNET_DROP_HDR_LEN]      = "hdr-len",
    [VNET_DROP_NOT_READY]    = "not-ready",
    [VNET_DROP_TOO_SMALL]    = "too-small",
    [VNET_DROP_NO_ROOM]      = "no-room",
    [VNET_DROP_IO]           = "io",
};

const char *vnet_drop_name(enum vnet_drop reason)
{
    if ((unsigned)reason < VNET_DROP_COUNT && drop_names[reason])
        return drop_names[reason];
    return "unknown";
}

/* ---- little-endian fields (§1.4) ------------------------------------------------ */

static uint16_t get_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static void put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void hdr_parse(const uint8_t *p, struct vnet_hdr *h)
{
    h->flags = p[0];
    h->gso_type = p[1];
    h->hdr_len = get_le16(p + 2);
    h->gso_size = get_le16(p + 4);
    h->csum_start = get_le16(p + 6);
    h->csum_offset = get_le16(p + 8);
    h->num_buffers = get_le16(p + 10);
}

static void hdr_put(uint8_t *p, const struct vnet_hdr *h)
{
    p[0] = h->flags;
    p[1] = h->gso_type;
    put_le16(p + 2, h->hdr_len);
    put_le16(p + 4, h->gso_size);
    put_le16(p + 6, h->csum_start);
    put_le16(p + 8, h->csum_offset);
    put_le16(p + 10, h->num_buffers);
}

/* ---- set-up ---------------------------------------------------------------------- */

bool vnet_init(struct vnet *n, const uint8_t mac[6], uint32_t mtu)
{
    memset(n, 0, sizeof *n);
    if (mtu == 0)
        mtu = VNET_MTU_DEFAULT;
    if (mtu < VNET_MTU_MIN || mtu > VNET_MTU_MAX)
        return false;
    memcpy(n->mac, mac, sizeof n->mac);
    n->mtu = (uint16_t)mtu;
    return true;
}

void vnet_reset(struct vnet *n)
{
    /* §2.4: back to the initial state.  No chain is held between calls, so only
     * what the old driver negotiated goes. */
    n->features = 0;
}

uint64_t vnet_features(void)
{
    return offered;
}

static bool has(const struct vnet *n, unsigned bit)
{
    return n->features >> bit & 1;
}

void vnet_set_features(struct vnet *n, uint64_t accepted)
{
    uint64_t f = accepted & offered;
    /* §5.1.3.1: HOST_TSO4/6 require CSUM, GUEST_TSO4/6 require GUEST_CSUM.  A TSO
     * frame always carries NEEDS_CSUM, which the device could neither accept
     * without CSUM nor pass on without GUEST_CSUM; a driver that accepted one
     * without the other gets neither. */
    if (!(f & 1ull << VIRTIO_NET_F_CSUM))
        f &= ~(1ull << VIRTIO_NET_F_HOST_TSO4 | 1ull << VIRTIO_NET_F_HOST_TSO6);
    if (!(f & 1ull << VIRTIO_NET_F_GUEST_CSUM))
        f &= ~(1ull << VIRTIO_NET_F_GUEST_TSO4 | 1ull << VIRTIO_NET_F_GUEST_TSO6);
    n->features = f;
}

size_t vnet_config(const struct vnet *n, void *buf, size_t cap)
{
    uint8_t c[VNET_CONFIG_BYTES];
    memcpy(c + VNET_CFG_MAC, n->mac, 6);
    /* The link is the engine's caller: always up while the device exists. */
    put_le16(c + VNET_CFG_STATUS, VIRTIO_NET_S_LINK_UP);
    /* Valid only with MQ (not offered); 1 is what a driver without it assumes. */
    put_le16(c + VNET_CFG_MAX_PAIRS, 1);
    put_le16(c + VNET_CFG_MTU, n->mtu);
    size_t k = cap < sizeof c ? cap : sizeof c;
    memcpy(buf, c, k);
    return k;
}

/* ---- what a header may say ------------------------------------------------------- */

/* The checks a header and its frame pass in either direction: tx against what the
 * guest negotiated for sending (CSUM, HOST_TSO4/6), rx against what it takes
 * (GUEST_TSO4/6).  Returns the drop reason, or -1 when they pass.  frame is the
 * engine's copy (tx) or the caller's (rx), never guest memory. */
static int frame_check(const struct vnet *n, const struct vnet_hdr *h, const uint8_t *frame, size_t len,
                       bool tx)
{
    if (len < VNET_ETH_HLEN)
        return VNET_DROP_RUNT;
    if (len > VNET_FRAME_MAX - VNET_HDR_BYTES)
        return VNET_DROP_OVERSIZE;
    /* §5.1.6.2.1: "The driver MUST NOT set the VIRTIO_NET_HDR_F_DATA_VALID and
     * VIRTIO_NET_HDR_F_RSC_INFO bits"; §5.1.6.2.2: the device "MUST ignore flag
     * bits that it does not recognize", so any other bit is ignored, not refused.
     * On receive only NEEDS_CSUM means anything to the engine. */
    if (tx && (h->flags & (VIRTIO_NET_HDR_F_DATA_VALID | VIRTIO_NET_HDR_F_RSC_INFO)))
        return VNET_DROP_FLAGS;
    bool csum = h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM;
    if (csum) {
        /* §5.1.6.2.1: without CSUM the driver "MUST set flags to zero". */
        if (tx && !has(n, VIRTIO_NET_F_CSUM))
            return VNET_DROP_CSUM_FEATURE;
        /* The 16-bit field at csum_start + csum_offset lies inside the frame. */
        if ((uint32_t)h->csum_start + h->csum_offset + 2 > len)
            return VNET_DROP_CSUM_RANGE;
    }
    if (h->gso_type == VIRTIO_NET_HDR_GSO_NONE) {
        /* §5.1.4.1: the device forwards frames up to mtu plus the Ethernet header
         * and passes none larger to the driver.  mtu is the link's, so it bounds
         * both ways whether or not the driver negotiated MTU. */
        size_t max = (size_t)n->mtu + VNET_ETH_HLEN;
        if ((frame[12] << 8 | frame[13]) == VNET_ETH_P_8021Q)      /* big-endian ethertype */
            max += VNET_VLAN_HLEN;
        return len > max ? VNET_DROP_MTU : -1;
    }
    /* TCP segmentation only: UDP and UDP_L4 belong to features not offered, and
     * the ECN bit to HOST_ECN/GUEST_ECN, not offered either (§5.1.6.2.1). */
    if (h->gso_type != VIRTIO_NET_HDR_GSO_TCPV4 && h->gso_type != VIRTIO_NET_HDR_GSO_TCPV6)
        return VNET_DROP_GSO_TYPE;
    bool v4 = h->gso_type == VIRTIO_NET_HDR_GSO_TCPV4;
    unsigned need = tx ? (v4 ? VIRTIO_NET_F_HOST_TSO4 : VIRTIO_NET_F_HOST_TSO6)
                       : (v4 ? VIRTIO_NET_F_GUEST_TSO4 : VIRTIO_NET_F_GUEST_TSO6);
    if (!has(n, need))
        return VNET_DROP_GSO_FEATURE;
    /* §5.1.6.2.1: a GSO frame "MUST also set the VIRTIO_NET_HDR_F_NEEDS_CSUM bit
     * ... and MUST set gso_size to indicate the desired MSS". */
    if (!csum)
        return VNET_DROP_GSO_CSUM;
    /* An MSS over the MTU would make segments the link cannot carry.  On receive
     * the sender's link decided it. */
    if (h->gso_size == 0 || (tx && h->gso_size > n->mtu))
        return VNET_DROP_GSO_SIZE;
    /* hdr_len is only a hint (§5.1.6.2.2), but one past the frame's end is no
     * header length at all, and whoever segments must not be handed it. */
    if (h->hdr_len > len)
        return VNET_DROP_HDR_LEN;
    return -1;
}

/* The header as the engine passes it on: the fields the flags and gso_type do not
 * make meaningful are 0, so no garbage from one side reaches the other. */
static struct vnet_hdr hdr_canonical(const struct vnet_hdr *h)
{
    struct vnet_hdr c = { .flags = h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM, .gso_type = h->gso_type };
    if (c.flags) {
        c.csum_start = h->csum_start;
        c.csum_offset = h->csum_offset;
    }
    if (c.gso_type != VIRTIO_NET_HDR_GSO_NONE) {
        c.hdr_len = h->hdr_len;
        c.gso_size = h->gso_size;
    }
    return c;
}

/* vq_used_flush, vq_enable_notify and vq_should_notify return no error: a ring
 * store that fails there (RAM shrank under a queue set up earlier) breaks the
 * queue silently.  Reports such a break as the call's result, so that the caller
 * still logs it once. */
static enum vq_error note_silent_break(const struct vq *q, bool was_broken, enum vq_error e)
{
    if (!was_broken && q->broken && !vq_error_is_driver(e))
        return q->error;
    return e;
}

/* ---- transmitq ------------------------------------------------------------------ */

/* One transmit chain: its frame handed to out, or dropped and counted.  The
 * readable bytes are copied once into tx_buf, header and frame as one stream
 * however the driver split them (§2.7.4: a header sharing a buffer with the frame,
 * or spread over several), and only the copy is checked. */
static void tx_one(struct vnet *n, const struct gmem *g, const struct vq_chain *ch, vnet_out_fn *out,
                   void *ctx, uint32_t *copied)
{
    int why = -1;
    /* §5.1.6.2: the header and packet are device-readable. */
    if (ch->n_readable != ch->n_seg)
        why = VNET_DROP_WRITABLE;
    else if (ch->read_bytes < VNET_HDR_BYTES)
        why = VNET_DROP_SHORT;
    else if (ch->read_bytes > VNET_FRAME_MAX)
        why = VNET_DROP_OVERSIZE;       /* before copying: the buffer holds no more */
    if (why >= 0) {
        n->stats.tx_drop[why]++;
        return;
    }
    uint32_t off = 0;
    for (uint16_t i = 0; i < ch->n_seg; i++) {
        /* The segments lay in RAM when vq_pop took them; gmem checks again. */
        if (!gmem_read(g, ch->seg[i].gpa, n->tx_buf + off, ch->seg[i].len)) {
            n->stats.tx_drop[VNET_DROP_IO]++;
            return;
        }
        off += ch->seg[i].len;
    }
    *copied += off;
    struct vnet_hdr h;
    hdr_parse(n->tx_buf, &h);
    const uint8_t *frame = n->tx_buf + VNET_HDR_BYTES;
    size_t len = off - VNET_HDR_BYTES;
    why = frame_check(n, &h, frame, len, true);
    if (why >= 0) {
        n->stats.tx_drop[why]++;
        return;
    }
    struct vnet_hdr c = hdr_canonical(&h);
    n->stats.tx_frames++;
    n->stats.tx_bytes += len;
    if (out)
        out(ctx, &c, frame, len);
}

/* Takes and sends chains until the queue is empty (VQ_EMPTY), a budget runs out
 * (VQ_OK) or the engine fails. */
static enum vq_error tx_batch(struct vnet *n, struct vq *q, const struct gmem *g, vnet_out_fn *out,
                              void *ctx, unsigned *chains, uint32_t *copied)
{
    for (;;) {
        if (*chains >= VNET_TX_BATCH_CHAINS || *copied >= VNET_TX_BUDGET)
            return VQ_OK;
        struct vq_chain ch = { .seg = n->seg, .seg_cap = VNET_CHAIN_SEGS };
        enum vq_error e = vq_pop(q, g, &ch);
        if (e != VQ_OK)
            return e;
        (*chains)++;
        tx_one(n, g, &ch, out, ctx, copied);
        /* Nothing is written into a transmit buffer, dropped or not (§2.7.8: len
         * is the number of bytes written). */
        e = vq_used_add(q, g, ch.head, 0);
        if (e != VQ_OK)
            return e;
    }
}

bool vnet_tx(struct vnet *n, struct vq *q, const struct gmem *g, vnet_out_fn *out, void *ctx,
             bool *more, enum vq_error *err)
{
    unsigned chains = 0;
    uint32_t copied = 0;
    bool was_broken = q->broken;
    enum vq_error e;
    for (unsigned round = 0;; round++) {
        /* No kicks while draining (§2.7.10); one used->idx store per round
         * (§2.7.8), and a second round only when chains came meanwhile. */
        vq_disable_notify(q, g);
        e = tx_batch(n, q, g, out, ctx, &chains, &copied);
        vq_used_flush(q, g);
        if (e != VQ_EMPTY)
            break;
        /* Out of rounds: kicks stay disabled and the caller comes back. */
        if (round + 1 == VNET_NOTIFY_ROUNDS) {
            e = VQ_OK;
            break;
        }
        /* Re-enabling may find chains made available meanwhile: take them now,
         * the driver may not kick for them. */
        if (!vq_enable_notify(q, g))
            break;
    }
    bool irq = vq_should_notify(q, g);
    e = note_silent_break(q, was_broken, e);
    if (vq_error_is_driver(e))
        n->stats.queue_errors++;
    if (more)
        *more = e == VQ_OK;
    if (err)
        *err = e;
    return irq;
}

/* ---- receiveq ------------------------------------------------------------------- */

/* RFC 1071: the 16-bit ones' complement sum of len bytes as big-endian words, an
 * odd last byte padded with zero, folded to 16 bits. */
static uint16_t ones_sum(const uint8_t *p, size_t len)
{
    uint64_t sum = 0;
    size_t i = 0;
    for (; i + 1 < len; i += 2)
        sum += (uint32_t)p[i] << 8 | p[i + 1];
    if (i < len)
        sum += (uint32_t)p[i] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)sum;
}

/* The bytes written after the header: the frame, with the checksum field replaced
 * when the engine completed it (patch_at < len). */
struct rx_src {
    const uint8_t *frame;
    size_t len;
    size_t patch_at;
    uint8_t patch[2];
};

/* The longest run of source bytes from pos that lies in one place. */
static size_t src_run(const struct rx_src *s, size_t pos, const uint8_t **p)
{
    if (pos < s->patch_at) {
        *p = s->frame + pos;
        return (s->patch_at < s->len ? s->patch_at : s->len) - pos;
    }
    if (pos < s->patch_at + 2) {
        *p = s->patch + (pos - s->patch_at);
        return s->patch_at + 2 - pos;
    }
    *p = s->frame + pos;
    return s->len - pos;
}

/* Writes up to len bytes at the stream, as many as it holds; false if a copy
 * fails (nothing is then known about what was written). */
static bool cur_write(const struct gmem *g, struct vq_stream *c, const uint8_t *src, uint32_t len,
                      uint32_t *done)
{
    uint64_t n = 0;
    bool ok = vq_stream_copy(g, c, (void *)src, len, true, &n);
    *done = (uint32_t)n;
    return ok;
}

/* Gives the frame's chains back to the driver (the ones completed already, bad
 * chains met before the frame's first, stay completed). */
static void rx_give_back(struct vq *q, unsigned n_taken)
{
    /* The chains were taken in this call and none of them completed, so the queue
     * engine cannot refuse; a queue that broke meanwhile needs no giving back. */
    (void)vq_unpop(q, (uint16_t)n_taken);
}

static enum vnet_rx_result rx_dropped(struct vnet *n, enum vnet_drop why)
{
    n->stats.rx_drop[why]++;
    return VNET_RX_DROPPED;
}

/* vnet_rx without the bookkeeping of its result. */
static enum vnet_rx_result rx_frame(struct vnet *n, struct vq *q, const struct gmem *g,
                                    const struct vnet_hdr *h, const uint8_t *frame, size_t len,
                                    enum vq_error *err)
{
    *err = VQ_OK;
    if (q->broken) {
        *err = VQ_ERR_BROKEN;
        return VNET_RX_BROKEN;
    }
    /* No receiveq: a link with nobody listening. */
    if (!q->enabled) {
        *err = VQ_ERR_NOT_READY;
        return rx_dropped(n, VNET_DROP_NOT_READY);
    }
    int why = frame_check(n, h, frame, len, false);
    if (why >= 0)
        return rx_dropped(n, why);

    struct vnet_hdr out = hdr_canonical(h);
    struct rx_src src = { .frame = frame, .len = len, .patch_at = SIZE_MAX };
    if ((out.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && !has(n, VIRTIO_NET_F_GUEST_CSUM)) {
        /* §5.1.6.4.1: without GUEST_CSUM "the device MUST set flags to zero and
         * SHOULD supply a fully checksummed packet".  The field holds the pseudo
         * header's sum (§5.1.6.2), so the ones' complement of the sum from
         * csum_start to the end is the checksum.  A result of 0 goes out as 0xffff,
         * the same value in ones' complement, which UDP needs (RFC 768: 0 means no
         * checksum) and TCP accepts.  A GSO frame never gets here: GUEST_TSO
         * requires GUEST_CSUM (vnet_set_features). */
        uint16_t c = (uint16_t)~ones_sum(frame + out.csum_start, len - out.csum_start);
        if (c == 0)
            c = 0xffff;
        src.patch_at = (size_t)out.csum_start + out.csum_offset;
        src.patch[0] = (uint8_t)(c >> 8);
        src.patch[1] = (uint8_t)c;
        out.flags = 0;
        out.csum_start = 0;
        out.csum_offset = 0;
    }

    bool mrg = has(n, VIRTIO_NET_F_MRG_RXBUF);
    uint32_t need = VNET_HDR_BYTES + (uint32_t)len;
    unsigned n_taken = 0, n_good = 0, n_bad_lead = 0, stale = 0;
    bool enabled_more = false;
    size_t pos = 0;
    /* Kicks only help while a frame waits for buffers (below). */
    vq_disable_notify(q, g);
    while (n_good == 0 || pos < len) {
        /* Every descriptor of the ring is in the chains taken (each holds at least
         * one), or the device's list is full: the driver can add nothing more.
         * The unusable chains completed before the frame's first count too: a
         * driver on another vCPU making bad ones available as fast as they are
         * completed must not keep the device here. */
        if (n_taken == VNET_RX_CHAINS || n_taken + n_bad_lead >= q->size) {
            rx_give_back(q, n_taken);
            return rx_dropped(n, VNET_DROP_NO_ROOM);
        }
        struct vq_chain ch = { .seg = n->seg, .seg_cap = VNET_CHAIN_SEGS };
        enum vq_error e = vq_pop(q, g, &ch);
        if (e == VQ_EMPTY) {
            /* Ask for a kick while the chains are still taken, so that with
             * EVENT_IDX avail_event names the entry after them (§2.7.10): the
             * driver's next buffer, not one it has given already.  A driver that
             * said more came and then had none moved its idx back: it gets its
             * kick request, but no more rounds. */
            if (enabled_more)
                stale++;
            enabled_more = vq_enable_notify(q, g) && stale < VNET_NOTIFY_ROUNDS;
            if (enabled_more)
                continue;
            if (q->broken) {
                *err = q->error;
                return VNET_RX_BROKEN;
            }
            rx_give_back(q, n_taken);
            n->stats.rx_no_buffers++;
            *err = VQ_EMPTY;
            return VNET_RX_NO_BUFFERS;
        }
        if (e != VQ_OK) {
            *err = e;
            return VNET_RX_BROKEN;
        }
        enabled_more = false;
        bool first = n_good == 0;
        /* §5.1.6.3: receive buffers are device-writable; with MRG_RXBUF "each
         * buffer MUST be at least size of struct virtio_net_hdr" (§5.1.6.3.1),
         * which matters for the one that starts a frame.  Such a chain is
         * completed unused, after the frame's chains if it came among them
         * (§5.1.6.4.1: the frame's buffers are used together). */
        bool bad = ch.n_readable > 0 || ch.write_bytes == 0 ||
                   (mrg && first && ch.write_bytes < VNET_HDR_BYTES);
        if (bad && n_taken == 0) {
            n->stats.rx_bad_chains++;
            n_bad_lead++;
            e = vq_used_add(q, g, ch.head, 0);
            if (e != VQ_OK) {
                *err = e;
                return VNET_RX_BROKEN;
            }
            continue;
        }
        if (bad) {
            n->rx_taken[n_taken++] = (struct vnet_rx_taken){ .head = ch.head, .bad = true };
            continue;
        }
        /* §5.1.6.3.2: without MRG_RXBUF "the device MUST use only a single
         * descriptor" (chain).  One too small stays the driver's, for a smaller
         * frame. */
        if (!mrg && ch.write_bytes < need) {
            rx_give_back(q, n_taken + 1);
            return rx_dropped(n, VNET_DROP_TOO_SMALL);
        }
        struct vq_stream c;
        uint32_t wrote = 0;
        if (first) {
            /* The header goes in last, once num_buffers is known: keep where its
             * 12 bytes lie (in at most 12 buffers, none of them empty). */
            n->rx_hdr_n_seg = ch.n_seg < VNET_HDR_BYTES ? ch.n_seg : VNET_HDR_BYTES;
            memcpy(n->rx_hdr_seg, ch.seg, n->rx_hdr_n_seg * sizeof ch.seg[0]);
            wrote = VNET_HDR_BYTES;
        }
        vq_stream_init(&c, ch.seg, ch.n_seg, wrote);
        /* §5.1.6.4.1: every buffer but the last is used "completely up to the full
         * length": fill this one before taking the next. */
        while (pos < len && c.i < c.n) {
            const uint8_t *p;
            size_t run = src_run(&src, pos, &p);
            uint32_t k = run > UINT32_MAX ? UINT32_MAX : (uint32_t)run;
            uint32_t done;
            if (!cur_write(g, &c, p, k, &done)) {
                rx_give_back(q, n_taken + 1);
                return rx_dropped(n, VNET_DROP_IO);
            }
            pos += done;
            wrote += done;
        }
        n->rx_taken[n_taken++] = (struct vnet_rx_taken){ .head = ch.head, .len = wrote };
        n_good++;
    }

    /* §5.1.6.3.2 / §5.1.6.4.1: num_buffers is the count of chains the frame
     * spans, 1 without MRG_RXBUF. */
    out.num_buffers = (uint16_t)n_good;
    uint8_t hdr[VNET_HDR_BYTES];
    hdr_put(hdr, &out);
    struct vq_stream c;
    uint32_t done;
    vq_stream_init(&c, n->rx_hdr_seg, n->rx_hdr_n_seg, 0);
    if (!cur_write(g, &c, hdr, VNET_HDR_BYTES, &done) || done != VNET_HDR_BYTES) {
        rx_give_back(q, n_taken);
        return rx_dropped(n, VNET_DROP_IO);
    }
    /* The frame's chains in order, then the bad ones met among them. */
    for (int pass = 0; pass < 2; pass++)
        for (unsigned i = 0; i < n_taken; i++) {
            const struct vnet_rx_taken *t = &n->rx_taken[i];
            if (t->bad != (pass == 1))
                continue;
            enum vq_error e = vq_used_add(q, g, t->head, t->len);
            if (e != VQ_OK) {
                *err = e;
                return VNET_RX_BROKEN;
            }
            if (t->bad)
                n->stats.rx_bad_chains++;
        }
    n->stats.rx_frames++;
    n->stats.rx_bytes += len;
    if (n_good > 1)
        n->stats.rx_merged++;
    if (src.patch_at != SIZE_MAX)
        n->stats.rx_csum_filled++;
    return VNET_RX_DELIVERED;
}

enum vnet_rx_result vnet_rx(struct vnet *n, struct vq *q, const struct gmem *g, const struct vnet_hdr *h,
                            const uint8_t *frame, size_t len, enum vq_error *err)
{
    bool was_broken = q->broken;
    enum vq_error e;
    enum vnet_rx_result r = rx_frame(n, q, g, h, frame, len, &e);
    e = note_silent_break(q, was_broken, e);
    if (vq_error_is_driver(e)) {
        n->stats.queue_errors++;
        r = VNET_RX_BROKEN;
    }
    if (err)
        *err = e;
    return r;
}

bool vnet_rx_flush(struct vnet *n, struct vq *q, const struct gmem *g, enum vq_error *err)
{
    bool was_broken = q->broken;
    vq_used_flush(q, g);
    bool irq = vq_should_notify(q, g);
    enum vq_error e = note_silent_break(q, was_broken, VQ_OK);
    if (vq_error_is_driver(e))
        n->stats.queue_errors++;
    if (err)
        *err = e;
    return irq;
}
