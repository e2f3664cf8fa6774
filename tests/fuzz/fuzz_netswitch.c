/* The virtual Ethernet switch (kernel/netswitch.c) under any sequence of ports
 * joining and leaving, frames sent (any length, any MACs, from any port) and frames
 * received into buffers of any size, checked at every step against a plain model
 * of what netswitch.h promises: each frame goes to exactly the ports the learned
 * table and the shares say; what a port receives is the frames sent to it, whole,
 * in order, with their metadata; no source ever holds more than its share of a
 * queue, so that a source within its share always finds room; a queue's records
 * add up to its counts and never to more than its storage; every frame sent is
 * counted once; a MAC is in the table at most once and a port holds at most
 * NSW_MACS_PER_PORT; a removed port's storage is never written again. */
#include "fuzz.h"
#include "kernel/netswitch.c"

#define POOL_UNICAST 20             /* MACs 0..19; then these three */
#define MAC_BROADCAST 20
#define MAC_MULTICAST 21
#define MAC_ZERO      22
#define POOL          23
#define SENDS_MAX     4096
#define STORAGE_BYTES (160 * 1024)
#define CANARY        0x5a

static void pool_mac(unsigned i, uint8_t out[NSW_MAC_BYTES])
{
    static const uint8_t unicast[NSW_MAC_BYTES] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x00 };
    static const uint8_t multicast[NSW_MAC_BYTES] = { 0x01, 0x00, 0x5e, 0x00, 0x00, 0x07 };
    if (i == MAC_BROADCAST) {
        memset(out, 0xff, NSW_MAC_BYTES);
    } else if (i == MAC_MULTICAST) {
        memcpy(out, multicast, NSW_MAC_BYTES);
    } else if (i == MAC_ZERO) {
        memset(out, 0, NSW_MAC_BYTES);
    } else {
        memcpy(out, unicast, NSW_MAC_BYTES);
        out[5] = (uint8_t)(i + 1);
    }
}

/* Every frame sent, by its number; its bytes follow from these. */
static struct sent {
    int      src;
    uint32_t len;
    unsigned dst_mac, src_mac;
    uint8_t  meta[NSW_META_BYTES];
} sent[SENDS_MAX];

static void frame_of(uint32_t id, uint8_t *f)
{
    const struct sent *s = &sent[id];
    uint8_t head[14];
    pool_mac(s->dst_mac, head);
    pool_mac(s->src_mac, head + 6);
    head[12] = (uint8_t)id;
    head[13] = (uint8_t)(id >> 8);
    memcpy(f, head, s->len < 14 ? s->len : 14);
    for (uint32_t i = 14; i < s->len; i++)
        f[i] = (uint8_t)(id * 31 + i);
}

static uint32_t record_of(uint32_t id)
{
    return NSW_RECORD_HEADER + sent[id].len;
}

/* The model. */
static struct model_port {
    bool     present;
    int      mac;                   /* configured: pool index, or -1 */
    uint32_t size;
    uint32_t queue[SENDS_MAX];      /* frame numbers, oldest at head */
    unsigned head, tail;
    uint32_t used, used_by[NSW_PORTS_MAX];
    uint64_t tx, rx, discarded, drops[NSW_DROP_REASONS];
} model[NSW_PORTS_MAX];
static int      owner[POOL];        /* port a MAC is learned for, or -1 */
static uint64_t seen[POOL], tick, removed_dropped;
static unsigned ports, sends;

static struct nsw_net net_under_test;
static uint8_t  storage[NSW_PORTS_MAX][STORAGE_BYTES];
static uint32_t canary_bytes[NSW_PORTS_MAX];    /* of storage, left to the canary */
static uint8_t  frame[NSW_FRAME_MAX + 128], got[NSW_FRAME_MAX + 128];

static uint32_t share_of(int d)
{
    return ports > 1 ? model[d].size / (ports - 1) : model[d].size;
}

static int configured_owner(unsigned mac)
{
    for (int p = 0; p < NSW_PORTS_MAX; p++)
        if (model[p].present && model[p].mac == (int)mac)
            return p;
    return -1;
}

static unsigned learned_count(int p)
{
    unsigned n = 0;
    for (unsigned m = 0; m < POOL; m++)
        n += owner[m] == p;
    return n;
}

static void model_learn(int p, unsigned mac)
{
    if (model[p].mac == (int)mac)
        return;
    tick++;
    if (owner[mac] != p && learned_count(p) == NSW_MACS_PER_PORT) {
        int oldest = -1;
        for (unsigned m = 0; m < POOL; m++)
            if (owner[m] == p && (oldest < 0 || seen[m] < seen[oldest]))
                oldest = (int)m;
        owner[oldest] = -1;
    }
    owner[mac] = p;
    seen[mac] = tick;
}

static void model_push(int d, uint32_t id)
{
    struct model_port *q = &model[d];
    q->queue[q->tail++] = id;
    q->used += record_of(id);
    q->used_by[sent[id].src] += record_of(id);
}

static uint32_t model_pop(int d)
{
    struct model_port *q = &model[d];
    uint32_t id = q->queue[q->head++];
    q->used -= record_of(id);
    q->used_by[sent[id].src] -= record_of(id);
    return id;
}

/* Keeps each source's oldest frames while within keep, as a joining or leaving
 * port must (netswitch.h, "Fairness"). */
static void model_trim(int d, const uint32_t keep[NSW_PORTS_MAX])
{
    struct model_port *q = &model[d];
    unsigned to = q->head;
    uint32_t kept[NSW_PORTS_MAX] = { 0 };
    for (unsigned i = q->head; i < q->tail; i++) {
        uint32_t id = q->queue[i];
        int s = sent[id].src;
        if (kept[s] + record_of(id) <= keep[s]) {
            kept[s] += record_of(id);
            q->queue[to++] = id;
        } else if (model[s].present) {
            model[s].drops[NSW_DROP_RESHARE]++;
        } else {
            removed_dropped++;
        }
    }
    q->tail = to;
    q->used = 0;
    for (int s = 0; s < NSW_PORTS_MAX; s++) {
        q->used_by[s] = kept[s];
        q->used += kept[s];
    }
}

/* ---- the steps ---- */

static void step_add(struct fuzz_in *in)
{
    unsigned pick = fz_u8(in) % (POOL + 1);
    uint8_t mac[NSW_MAC_BYTES];
    pool_mac(pick, mac);
    uint32_t size;
    switch (fz_u8(in) % 8) {
    case 0:  size = NSW_STORAGE_MIN - 1 + fz_below(in, 3); break;
    case 6:  size = 8192 + fz_below(in, 32768); break;
    case 7:  size = STORAGE_BYTES - fz_below(in, 1024); break;
    default: size = NSW_STORAGE_MIN + fz_below(in, 6000); break;
    }
    int expect = 0;
    while (expect < NSW_PORTS_MAX && model[expect].present)
        expect++;
    bool refused = expect == NSW_PORTS_MAX || size < NSW_STORAGE_MIN ||
                   (pick < POOL && (pick >= POOL_UNICAST || configured_owner(pick) >= 0));
    uint8_t *store = storage[expect < NSW_PORTS_MAX ? expect : 0];
    int p = nsw_port_add(&net_under_test, pick < POOL ? mac : NULL, store, size);
    FUZZ_CHECK(p == (refused ? -1 : expect), "port_add gave %d, the model %d", p, refused ? -1 : expect);
    if (p < 0)
        return;
    for (uint32_t i = 0; i < canary_bytes[p]; i++)
        FUZZ_CHECK(store[i] == CANARY, "storage of a removed port written at %u", i);
    canary_bytes[p] = 0;
    struct model_port *np = &model[p];
    memset(np, 0, sizeof *np);
    np->present = true;
    np->mac = pick < POOL ? (int)pick : -1;
    np->size = size;
    if (pick < POOL)
        owner[pick] = -1;
    ports++;
    for (int d = 0; d < NSW_PORTS_MAX; d++) {
        if (d == p || !model[d].present)
            continue;
        uint32_t keep[NSW_PORTS_MAX];
        for (int s = 0; s < NSW_PORTS_MAX; s++)
            keep[s] = share_of(d);
        model_trim(d, keep);
    }
}

static void step_remove(struct fuzz_in *in)
{
    int p = (int)fz_below(in, NSW_PORTS_MAX + 2) - 1;
    bool present = p >= 0 && p < NSW_PORTS_MAX && model[p].present;
    FUZZ_CHECK(nsw_port_remove(&net_under_test, p) == present, "port_remove(%d)", p);
    if (!present)
        return;
    removed_dropped += model[p].tail - model[p].head;
    memset(storage[p], CANARY, model[p].size);
    canary_bytes[p] = model[p].size;
    memset(&model[p], 0, sizeof model[p]);
    model[p].mac = -1;
    ports--;
    for (unsigned m = 0; m < POOL; m++)
        if (owner[m] == p)
            owner[m] = -1;
    uint32_t keep[NSW_PORTS_MAX];
    for (int s = 0; s < NSW_PORTS_MAX; s++)
        keep[s] = s == p ? 0 : UINT32_MAX;
    for (int d = 0; d < NSW_PORTS_MAX; d++)
        if (model[d].present)
            model_trim(d, keep);
}

static void step_send(struct fuzz_in *in)
{
    if (sends == SENDS_MAX)
        return;
    uint32_t id = sends++;
    struct sent *s = &sent[id];
    s->src = (int)fz_below(in, NSW_PORTS_MAX + 1);
    if (s->src == NSW_PORTS_MAX)
        s->src = -1;
    s->dst_mac = fz_u8(in) % POOL;
    s->src_mac = fz_u8(in) % 8 ? fz_u8(in) % POOL_UNICAST : fz_u8(in) % POOL;
    switch (fz_u8(in) % 16) {
    case 0:  s->len = fz_below(in, NSW_FRAME_MIN); break;
    case 13: s->len = NSW_FRAME_MAX - 2 + fz_below(in, 5); break;
    case 14: s->len = fz_below(in, NSW_FRAME_MAX + 100); break;
    case 10: case 11: case 12: s->len = NSW_FRAME_MIN + fz_below(in, 3000); break;
    default: s->len = NSW_FRAME_MIN + fz_below(in, 200); break;
    }
    fz_bytes(in, s->meta, NSW_META_BYTES);
    frame_of(id, frame);

    /* What the switch must do with it. */
    unsigned expect = 0;
    int src = s->src;
    if (src >= 0 && model[src].present) {
        struct model_port *sp = &model[src];
        int fixed = s->src_mac < POOL_UNICAST ? configured_owner(s->src_mac) : -1;
        int to = -1;
        unsigned targets = 0;
        if (s->len < NSW_FRAME_MIN) {
            sp->drops[NSW_DROP_RUNT]++;
        } else if (s->len > NSW_FRAME_MAX) {
            sp->drops[NSW_DROP_TOO_BIG]++;
        } else if (s->src_mac >= POOL_UNICAST || (fixed >= 0 && fixed != src)) {
            sp->drops[NSW_DROP_BAD_SOURCE]++;
        } else {
            model_learn(src, s->src_mac);
            if (s->dst_mac < POOL_UNICAST) {
                to = configured_owner(s->dst_mac);
                if (to < 0)
                    to = owner[s->dst_mac];
            }
            if (to == src) {
                sp->drops[NSW_DROP_TO_SELF]++;
            } else {
                sp->tx++;
                for (int p = 0; p < NSW_PORTS_MAX; p++)
                    if (model[p].present && p != src && (to < 0 || to == p))
                        targets |= 1u << p;
            }
        }
        for (int d = 0; d < NSW_PORTS_MAX; d++) {
            if (!(targets & 1u << d))
                continue;
            if (model[d].used_by[src] + record_of(id) <= share_of(d)) {
                /* The fairness argument itself: within its share, there is room. */
                FUZZ_CHECK(model[d].used + record_of(id) <= model[d].size, "no room at %d for %d within its share",
                           d, src);
                model_push(d, id);
                expect |= 1u << d;
            } else {
                sp->drops[NSW_DROP_QUOTA]++;
            }
        }
    }
    const uint8_t *meta = fz_u8(in) % 8 ? s->meta : NULL;
    if (!meta)
        memset(s->meta, 0, NSW_META_BYTES);
    unsigned mask = nsw_send(&net_under_test, src, meta, frame, s->len);
    FUZZ_CHECK(mask == expect, "frame %u from %d went to %#x, not %#x", id, src, mask, expect);
}

static void step_recv(struct fuzz_in *in, bool discard)
{
    int p = (int)fz_below(in, NSW_PORTS_MAX + 1);
    size_t max;
    switch (fz_u8(in) % 4) {
    case 0:  max = fz_below(in, 100); break;
    case 1:  max = fz_below(in, 4000); break;
    default: max = sizeof got; break;
    }
    struct model_port *q = p < NSW_PORTS_MAX ? &model[p] : NULL;
    bool empty = !q || !q->present || q->head == q->tail;
    uint32_t id = empty ? 0 : q->queue[q->head];
    size_t want = empty ? 0 : sent[id].len;
    if (discard) {
        size_t n = nsw_discard(&net_under_test, p);
        FUZZ_CHECK(n == want, "discard at %d gave %zu, not %zu", p, n, want);
        if (!empty) {
            model_pop(p);
            q->discarded++;
        }
        return;
    }
    uint8_t meta[NSW_META_BYTES];
    size_t n = nsw_recv(&net_under_test, p, meta, got, max);
    FUZZ_CHECK(n == want, "recv at %d gave %zu, not frame %u's %zu", p, n, id, want);
    if (empty || want > max)
        return;
    frame_of(id, frame);
    FUZZ_CHECK(memcmp(got, frame, n) == 0, "frame %u at %d not as sent", id, p);
    FUZZ_CHECK(memcmp(meta, sent[id].meta, NSW_META_BYTES) == 0, "frame %u's metadata", id);
    model_pop(p);
    q->rx++;
}

/* The switch's own structures against the model and against their invariants. */
static void check(void)
{
    const struct nsw_net *net = &net_under_test;
    FUZZ_CHECK(net->ports == ports, "%u ports, not %u", net->ports, ports);
    FUZZ_CHECK(nsw_stats(net).removed_dropped == removed_dropped, "removed_dropped");
    for (int p = 0; p < NSW_PORTS_MAX; p++) {
        const struct model_port *m = &model[p];
        struct nsw_port_info info;
        FUZZ_CHECK(nsw_port_info(net, p, &info) == m->present, "port %d present", p);
        if (!m->present)
            continue;
        FUZZ_CHECK(info.queue_bytes == m->size && info.share == share_of(p), "port %d sizes", p);
        FUZZ_CHECK(info.queue_used == m->used && info.queue_frames == m->tail - m->head &&
                   nsw_pending(net, p) == info.queue_frames,
                   "port %d holds %u bytes in %u frames, not %u in %u", p, info.queue_used, info.queue_frames,
                   m->used, m->tail - m->head);
        FUZZ_CHECK(info.stats.tx_frames == m->tx && info.stats.rx_frames == m->rx &&
                   info.stats.rx_discarded == m->discarded, "port %d frame counts", p);
        for (int r = 0; r < NSW_DROP_REASONS; r++)
            FUZZ_CHECK(info.stats.drops[r] == m->drops[r], "port %d: %lu drops for %s, not %lu", p,
                       (unsigned long)info.stats.drops[r], nsw_drop_name(r), (unsigned long)m->drops[r]);
        FUZZ_CHECK(info.macs_learned == learned_count(p) && info.macs_learned <= NSW_MACS_PER_PORT,
                   "port %d learned %u MACs, not %u", p, info.macs_learned, learned_count(p));

        /* The ring, record by record. */
        const struct nsw_queue *q = &net->port[p].queue;
        FUZZ_CHECK(q->buf == storage[p] && q->used <= q->size && q->head < q->size, "port %d ring bounds", p);
        uint32_t at = 0, frames = 0, by[NSW_PORTS_MAX] = { 0 };
        while (at < q->used) {
            struct nsw_record r;
            ring_read(q, at, &r, sizeof r);
            FUZZ_CHECK(r.len >= NSW_FRAME_MIN && r.len <= NSW_FRAME_MAX && r.src < NSW_PORTS_MAX &&
                       r.src != p && net->port[r.src].present, "port %d record at %u: %u bytes from %u", p, at,
                       r.len, r.src);
            FUZZ_CHECK(record_bytes(&r) <= q->used - at, "port %d record at %u runs past the used bytes", p, at);
            by[r.src] += record_bytes(&r);
            at += record_bytes(&r);
            frames++;
        }
        FUZZ_CHECK(frames == q->frames, "port %d counts %u frames, holds %u", p, q->frames, frames);
        for (int s = 0; s < NSW_PORTS_MAX; s++) {
            FUZZ_CHECK(by[s] == q->used_by[s] && by[s] == m->used_by[s], "port %d: source %d holds %u, counted %u",
                       p, s, by[s], q->used_by[s]);
            FUZZ_CHECK(by[s] <= share_of(p), "port %d: source %d holds %u, over its share %u", p, s, by[s],
                       share_of(p));
        }
    }
    /* The table: each MAC where the model has it, and at most once.  Only the
     * pool's unicast MACs can be in it, told apart by their last byte. */
    int at[POOL_UNICAST];
    for (unsigned m = 0; m < POOL_UNICAST; m++)
        at[m] = -1;
    for (int q = 0; q < NSW_PORTS_MAX; q++) {
        for (int i = -1; i < NSW_MACS_PER_PORT; i++) {
            const uint8_t *mac = i < 0 ? net->port[q].mac : net->port[q].learned[i].mac;
            if (i < 0 ? !net->port[q].has_mac : !net->port[q].learned[i].used)
                continue;
            unsigned m = mac[5] - 1u;
            uint8_t want[NSW_MAC_BYTES];
            pool_mac(m < POOL_UNICAST ? m : 0, want);
            FUZZ_CHECK(m < POOL_UNICAST && mac_equal(mac, want), "port %d holds a MAC never sent", q);
            FUZZ_CHECK(at[m] < 0, "MAC %u in the table twice", m);
            at[m] = q;
            FUZZ_CHECK(i < 0 ? model[q].mac == (int)m : owner[m] == q, "MAC %u at port %d", m, q);
        }
    }
    for (unsigned m = 0; m < POOL_UNICAST; m++)
        FUZZ_CHECK(at[m] >= 0 || (owner[m] < 0 && configured_owner(m) < 0), "MAC %u lost", m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = { data, size };
    nsw_init(&net_under_test, "fuzz");
    memset(model, 0, sizeof model);
    for (int p = 0; p < NSW_PORTS_MAX; p++)
        model[p].mac = -1;
    for (unsigned m = 0; m < POOL; m++)
        owner[m] = -1;
    memset(canary_bytes, 0, sizeof canary_bytes);
    tick = removed_dropped = 0;
    ports = sends = 0;
    while (in.n) {
        switch (fz_u8(&in) % 10) {
        case 0:  step_add(&in); break;
        case 1:  step_remove(&in); break;
        case 2: case 3: case 4: case 5: step_send(&in); break;
        case 6: case 7: case 8: step_recv(&in, false); break;
        default: step_recv(&in, true); break;
        }
        check();
    }
    return 0;
}
