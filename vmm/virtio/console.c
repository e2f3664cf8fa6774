#include "vmm/virtio/console.h"

#include "kernel/string.h"

_Static_assert((VCON_IN_MAX & (VCON_IN_MAX - 1)) == 0 && VCON_IN_MAX <= UINT16_MAX,
               "the input ring is indexed by masking a 16-bit position");
_Static_assert(VCON_CHAIN_SEGS <= UINT16_MAX, "vq_chain.seg_cap is 16 bits");

/* ---- set-up ---------------------------------------------------------------------- */

void vcon_init(struct vcon *c)
{
    memset(c, 0, sizeof *c);
}

void vcon_reset(struct vcon *c)
{
    /* §2.4: after a reset the device is back in its initial state.  The chain in
     * progress belonged to a queue the transport has just reset, so it is neither
     * finished nor completed: the new driver never offered it. */
    c->tx_busy = false;
    c->stats.rx_dropped += c->in_len;
    c->in_head = 0;
    c->in_len = 0;
}

uint64_t vcon_features(void)
{
    return 0;
}

size_t vcon_config(void *buf, size_t cap)
{
    /* §5.3.4: the dimensions are valid only with F_SIZE, max_nr_ports only with
     * F_MULTIPORT, emerg_wr only with F_EMERG_WRITE; none is offered. */
    uint8_t cfg[VCON_CONFIG_BYTES];
    memset(cfg, 0, sizeof cfg);
    size_t n = cap < sizeof cfg ? cap : sizeof cfg;
    memcpy(buf, cfg, n);
    return n;
}

/* ---- transmitq ------------------------------------------------------------------ */

/* Whether the chain held from an earlier call is still the queue's: the transmitq
 * completes its chains in order and holds at most one, so right after taking it
 * last_avail_idx was one past used_idx, and nothing has moved either since.  A
 * queue reset (and set-up again) restarts both indices at 0, which no held chain
 * matches; so does a queue that broke or was disabled meanwhile. */
static bool tx_held_valid(const struct vcon *c, const struct vq *q)
{
    return q->enabled && !q->broken && c->tx_head < q->size &&
           q->last_avail_idx == c->tx_avail_idx && (uint16_t)(q->used_idx + 1) == q->last_avail_idx;
}

/* Hands the held chain's bytes to out until it ends or the call's byte budget
 * runs out; true when the chain is done.  Guest bytes are copied through gmem into
 * the device's own buffer, so the sink never sees guest memory the guest may be
 * rewriting. */
static bool tx_output(struct vcon *c, const struct gmem *g, vcon_out_fn *out, void *ctx,
                      uint32_t *budget)
{
    while (c->tx_seg_i < c->tx_n_seg) {
        const struct vq_seg *s = &c->tx_seg[c->tx_seg_i];
        while (c->tx_off < s->len) {
            if (*budget == 0)
                return false;
            uint32_t k = s->len - c->tx_off;
            if (k > VCON_TX_PIECE)
                k = VCON_TX_PIECE;
            if (k > *budget)
                k = *budget;
            /* The segment lay in RAM when vq_pop took it; gmem checks again. */
            if (!gmem_read(g, s->gpa + c->tx_off, c->tx_buf, k)) {
                c->stats.io_errors++;
                c->tx_seg_i = c->tx_n_seg;
                return true;
            }
            if (out)
                out(ctx, c->tx_buf, k);
            c->tx_off += k;
            *budget -= k;
            c->stats.tx_bytes += k;
        }
        c->tx_seg_i++;
        c->tx_off = 0;
    }
    return true;
}

/* Takes and outputs chains until the queue is empty (VQ_EMPTY), a budget runs out
 * (VQ_OK) or the engine fails. */
static enum vq_error tx_batch(struct vcon *c, struct vq *q, const struct gmem *g, vcon_out_fn *out,
                              void *ctx, unsigned *chains, uint32_t *budget)
{
    for (;;) {
        if (!c->tx_busy) {
            if (*chains >= VCON_BATCH_CHAINS || *budget == 0)
                return VQ_OK;
            struct vq_chain ch = { .seg = c->tx_seg, .seg_cap = VCON_CHAIN_SEGS };
            enum vq_error e = vq_pop(q, g, &ch);
            if (e != VQ_OK)
                return e;
            (*chains)++;
            /* §5.3.6.1: transmit buffers are device-readable only.  A chain with a
             * writable buffer is not the driver's output as the spec defines it:
             * nothing of it is output, nothing written. */
            if (ch.n_readable != ch.n_seg) {
                c->stats.tx_bad++;
                e = vq_used_add(q, g, ch.head, 0);
                if (e != VQ_OK)
                    return e;
                continue;
            }
            c->tx_busy = true;
            c->tx_head = ch.head;
            c->tx_n_seg = ch.n_seg;
            c->tx_seg_i = 0;
            c->tx_off = 0;
            c->tx_avail_idx = q->last_avail_idx;
        }
        if (!tx_output(c, g, out, ctx, budget))
            return VQ_OK;
        /* The device wrote nothing into a transmit buffer, so the used length is
         * 0 (§2.7.8: len is the number of bytes written). */
        c->tx_busy = false;
        c->stats.tx_chains++;
        enum vq_error e = vq_used_add(q, g, c->tx_head, 0);
        if (e != VQ_OK)
            return e;
    }
}

bool vcon_tx(struct vcon *c, struct vq *q, const struct gmem *g, vcon_out_fn *out, void *ctx,
             bool *more, enum vq_error *err)
{
    unsigned chains = 0;
    uint32_t budget = VCON_TX_BUDGET;
    enum vq_error e;
    if (c->tx_busy && !tx_held_valid(c, q))
        c->tx_busy = false;
    for (unsigned round = 0;; round++) {
        /* No kicks while draining (§2.7.10); one used->idx store for the batch
         * (§2.7.8). */
        vq_disable_notify(q, g);
        e = tx_batch(c, q, g, out, ctx, &chains, &budget);
        vq_used_flush(q, g);
        /* A driver moving avail->idx to and fro makes every re-enable find work
         * that is none: after VCON_NOTIFY_ROUNDS the call ends as on its budget. */
        if (e == VQ_EMPTY && round + 1 == VCON_NOTIFY_ROUNDS) {
            e = VQ_OK;
            break;
        }
        /* Re-enabling may find chains made available meanwhile: take them now,
         * the driver may not kick for them.  A call stopped by its budget leaves
         * kicks disabled: the caller comes back anyway. */
        if (e != VQ_EMPTY || !vq_enable_notify(q, g))
            break;
    }
    if (vq_error_is_driver(e))
        c->stats.queue_errors++;
    if (more)
        *more = e == VQ_OK;
    if (err)
        *err = e;
    return vq_should_notify(q, g);
}

/* ---- input and receiveq ------------------------------------------------------------ */

size_t vcon_input(struct vcon *c, const uint8_t *b, size_t n)
{
    size_t room = VCON_IN_MAX - c->in_len;
    size_t k = n < room ? n : room;
    for (size_t i = 0; i < k; i++)
        c->in_buf[(c->in_head + c->in_len + i) & (VCON_IN_MAX - 1)] = b[i];
    c->in_len = (uint16_t)(c->in_len + k);
    c->stats.rx_dropped += n - k;
    return k;
}

/* Fills one receive chain from the waiting input; returns the bytes written. */
static uint32_t rx_fill(struct vcon *c, const struct gmem *g, const struct vq_chain *ch)
{
    /* §5.3.6.1: receive buffers are device-writable only.  A chain with a
     * readable buffer, or with no byte to write into, takes nothing. */
    if (ch->n_readable || ch->write_bytes == 0) {
        c->stats.rx_bad++;
        return 0;
    }
    uint32_t done = 0;
    /* §2.7.4: the buffers are one stream, however the driver split it. */
    for (uint16_t i = 0; i < ch->n_seg && c->in_len; i++) {
        const struct vq_seg *s = &ch->seg[i];
        uint32_t off = 0;
        while (off < s->len && c->in_len) {
            uint32_t k = c->in_len;
            if (k > VCON_IN_MAX - c->in_head)
                k = VCON_IN_MAX - c->in_head;      /* up to the ring's end */
            if (k > s->len - off)
                k = s->len - off;
            if (!gmem_write(g, s->gpa + off, c->in_buf + c->in_head, k)) {
                c->stats.io_errors++;
                goto stop;
            }
            off += k;
            done += k;
            c->in_head = (uint16_t)((c->in_head + k) & (VCON_IN_MAX - 1));
            c->in_len = (uint16_t)(c->in_len - k);
        }
    }
stop:
    c->stats.rx_chains++;
    c->stats.rx_bytes += done;
    return done;
}

bool vcon_rx(struct vcon *c, struct vq *q, const struct gmem *g, bool *more, enum vq_error *err)
{
    unsigned chains = 0;
    enum vq_error e;
    for (unsigned round = 0;; round++) {
        /* Kicks matter only while input waits for a buffer (below); the driver
         * refilling the queue otherwise costs it no exit. */
        vq_disable_notify(q, g);
        e = VQ_OK;
        while (c->in_len && chains < VCON_BATCH_CHAINS) {
            struct vq_chain ch = { .seg = c->rx_seg, .seg_cap = VCON_CHAIN_SEGS };
            e = vq_pop(q, g, &ch);
            if (e != VQ_OK)
                break;
            chains++;
            e = vq_used_add(q, g, ch.head, rx_fill(c, g, &ch));
            if (e != VQ_OK)
                break;
        }
        vq_used_flush(q, g);
        /* Input waits and the driver has no buffer: ask for a kick when it adds
         * one, and take any it added before seeing the request (§2.7.10); a
         * bounded number of times, as on the transmitq. */
        if (e != VQ_EMPTY || !vq_enable_notify(q, g) || round + 1 == VCON_NOTIFY_ROUNDS)
            break;
    }
    if (vq_error_is_driver(e))
        c->stats.queue_errors++;
    if (more)
        *more = e == VQ_OK && c->in_len;
    if (err)
        *err = e;
    return vq_should_notify(q, g);
}
