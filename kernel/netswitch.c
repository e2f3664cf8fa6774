#include "kernel/netswitch.h"
#include "kernel/string.h"

_Static_assert(NSW_PORTS_MAX <= 8 * sizeof(unsigned), "nsw_send's port mask");

/* A queued frame's record; its frame bytes follow it in the ring. */
struct nsw_record {
    uint32_t len;
    uint8_t  src;                   /* whose share the record counts against */
    uint8_t  pad[3];
    uint8_t  meta[NSW_META_BYTES];
};
_Static_assert(sizeof(struct nsw_record) == NSW_RECORD_HEADER, "record header");

/* ---- MACs ---- */

static bool mac_equal(const uint8_t *a, const uint8_t *b)
{
    return memcmp(a, b, NSW_MAC_BYTES) == 0;
}

/* The I/G bit of an IEEE 802 address, the first on the wire: a group address
 * (multicast, broadcast), never a station's own. */
static bool mac_is_group(const uint8_t *mac)
{
    return mac[0] & 1;
}

static bool mac_is_zero(const uint8_t *mac)
{
    static const uint8_t zero[NSW_MAC_BYTES];
    return mac_equal(mac, zero);
}

static bool port_valid(const struct nsw_net *net, int port)
{
    return port >= 0 && port < NSW_PORTS_MAX && net->port[port].present;
}

/* The port whose configured MAC it is, or -1. */
static int mac_owner_fixed(const struct nsw_net *net, const uint8_t *mac)
{
    for (int p = 0; p < NSW_PORTS_MAX; p++)
        if (net->port[p].present && net->port[p].has_mac && mac_equal(net->port[p].mac, mac))
            return p;
    return -1;
}

/* The learned entry for mac, or NULL; *port set to the port it is learned for.  A
 * MAC is in the table at most once, and never when it is a port's configured one.
 * A plain search: the table is at most NSW_PORTS_MAX * NSW_MACS_PER_PORT entries,
 * and one frame's copy into a queue costs more. */
static struct nsw_mac_entry *mac_learned(struct nsw_net *net, const uint8_t *mac, int *port)
{
    for (int p = 0; p < NSW_PORTS_MAX; p++) {
        if (!net->port[p].present)
            continue;
        for (unsigned i = 0; i < NSW_MACS_PER_PORT; i++) {
            struct nsw_mac_entry *e = &net->port[p].learned[i];
            if (e->used && mac_equal(e->mac, mac)) {
                *port = p;
                return e;
            }
        }
    }
    return NULL;
}

static int mac_port(struct nsw_net *net, const uint8_t *mac)
{
    int p = mac_owner_fixed(net, mac);
    if (p < 0 && !mac_learned(net, mac, &p))
        p = -1;
    return p;
}

/* Called only with a source MAC that is no other port's configured one. */
static void mac_learn(struct nsw_net *net, int port, const uint8_t *mac)
{
    struct nsw_port *sp = &net->port[port];
    if (sp->has_mac && mac_equal(sp->mac, mac))
        return;
    net->tick++;
    int at;
    struct nsw_mac_entry *e = mac_learned(net, mac, &at);
    if (e && at == port) {
        e->seen = net->tick;
        return;
    }
    if (e) {
        e->used = false;
        net->stats.macs_moved++;
    } else {
        net->stats.macs_learned++;
    }
    /* Only this port's own entries are candidates, so that however many MACs a VM
     * makes up, the entries of the others stay. */
    struct nsw_mac_entry *slot = &sp->learned[0];
    for (unsigned i = 0; i < NSW_MACS_PER_PORT; i++) {
        struct nsw_mac_entry *c = &sp->learned[i];
        if (!c->used) {
            slot = c;
            break;
        }
        if (c->seen < slot->seen)
            slot = c;
    }
    if (slot->used)
        net->stats.macs_replaced++;
    slot->used = true;
    memcpy(slot->mac, mac, NSW_MAC_BYTES);
    slot->seen = net->tick;
}

/* ---- the ring ---- */

/* Ring offsets are relative to the oldest record (head), so that a record is
 * where it is in the queue's order, whatever the wrap. */
static uint32_t ring_pos(const struct nsw_queue *q, uint32_t at)
{
    return (uint32_t)(((uint64_t)q->head + at) % q->size);
}

static void ring_write(struct nsw_queue *q, uint32_t at, const void *src, uint32_t n)
{
    uint32_t pos = ring_pos(q, at);
    uint32_t first = n < q->size - pos ? n : q->size - pos;
    memcpy(q->buf + pos, src, first);
    memcpy(q->buf, (const uint8_t *)src + first, n - first);
}

static void ring_read(const struct nsw_queue *q, uint32_t at, void *dst, uint32_t n)
{
    uint32_t pos = ring_pos(q, at);
    uint32_t first = n < q->size - pos ? n : q->size - pos;
    memcpy(dst, q->buf + pos, first);
    memcpy((uint8_t *)dst + first, q->buf, n - first);
}

/* Moves n bytes from ring offset from to the earlier offset to.  Copying in order,
 * each piece contiguous on both sides, never overwrites a byte still to be read:
 * those all lie at offsets after from, past anything written so far. */
static void ring_move_back(struct nsw_queue *q, uint32_t to, uint32_t from, uint32_t n)
{
    while (n) {
        uint32_t s = ring_pos(q, from), d = ring_pos(q, to);
        uint32_t k = n;
        if (k > q->size - s)
            k = q->size - s;
        if (k > q->size - d)
            k = q->size - d;
        memmove(q->buf + d, q->buf + s, k);
        to += k;
        from += k;
        n -= k;
    }
}

static uint32_t record_bytes(const struct nsw_record *r)
{
    return NSW_RECORD_HEADER + r->len;
}

static uint32_t queue_share(const struct nsw_net *net, const struct nsw_queue *q)
{
    return net->ports > 1 ? q->size / (net->ports - 1) : q->size;
}

static bool queue_put(struct nsw_net *net, int dst, int src, const uint8_t *meta, const void *frame,
                      uint32_t len)
{
    struct nsw_queue *q = &net->port[dst].queue;
    uint32_t bytes = NSW_RECORD_HEADER + len;
    /* The second test follows from the first while the shares hold (netswitch.h);
     * it stays so that no slip in them could ever write past the ring. */
    if (q->used_by[src] + bytes > queue_share(net, q) || q->used + bytes > q->size)
        return false;
    struct nsw_record r = { .len = len, .src = (uint8_t)src };
    if (meta)
        memcpy(r.meta, meta, NSW_META_BYTES);
    ring_write(q, q->used, &r, sizeof r);
    ring_write(q, q->used + NSW_RECORD_HEADER, frame, len);
    q->used += bytes;
    q->used_by[src] += bytes;
    q->frames++;
    return true;
}

static void queue_pop(struct nsw_queue *q, const struct nsw_record *r)
{
    uint32_t bytes = record_bytes(r);
    q->head = ring_pos(q, bytes);
    q->used -= bytes;
    q->used_by[r->src] -= bytes;
    q->frames--;
    /* An empty ring starts over at its beginning: fewer frames split by its end. */
    if (!q->used)
        q->head = 0;
}

/* Keeps, oldest first, each source's records while they add up to no more than
 * keep[source]; drops the rest, closing the gaps so that the ring stays one run. */
static void queue_trim(struct nsw_net *net, int dst, const uint32_t keep[NSW_PORTS_MAX])
{
    struct nsw_queue *q = &net->port[dst].queue;
    uint32_t kept[NSW_PORTS_MAX] = { 0 };
    uint32_t from = 0, to = 0, frames = 0;
    while (from < q->used) {
        struct nsw_record r;
        ring_read(q, from, &r, sizeof r);
        uint32_t bytes = record_bytes(&r);
        if (kept[r.src] + bytes <= keep[r.src]) {
            if (to != from)
                ring_move_back(q, to, from, bytes);
            kept[r.src] += bytes;
            to += bytes;
            frames++;
        } else if (net->port[r.src].present) {
            net->port[r.src].stats.drops[NSW_DROP_RESHARE]++;
        } else {
            net->stats.removed_dropped++;
        }
        from += bytes;
    }
    q->used = to;
    q->frames = frames;
    memcpy(q->used_by, kept, sizeof kept);
    if (!q->used)
        q->head = 0;
}

/* ---- the calls ---- */

void nsw_init(struct nsw_net *net, const char *name)
{
    memset(net, 0, sizeof *net);
    if (name)
        memcpy(net->name, name, strnlen(name, NSW_NAME_MAX - 1));
}

int nsw_port_add(struct nsw_net *net, const uint8_t mac[NSW_MAC_BYTES], void *storage, size_t storage_bytes)
{
    if (!storage || storage_bytes < NSW_STORAGE_MIN || storage_bytes > NSW_STORAGE_MAX)
        return -1;
    if (mac && (mac_is_group(mac) || mac_is_zero(mac) || mac_owner_fixed(net, mac) >= 0))
        return -1;
    int p = 0;
    while (p < NSW_PORTS_MAX && net->port[p].present)
        p++;
    if (p == NSW_PORTS_MAX)
        return -1;
    if (mac) {
        /* Learned until now from some port's frames: from here on it is this one's. */
        int at;
        struct nsw_mac_entry *e = mac_learned(net, mac, &at);
        if (e)
            e->used = false;
    }
    struct nsw_port *np = &net->port[p];
    memset(np, 0, sizeof *np);
    np->present = true;
    if (mac) {
        np->has_mac = true;
        memcpy(np->mac, mac, NSW_MAC_BYTES);
    }
    np->queue.buf = storage;
    np->queue.size = (uint32_t)storage_bytes;
    net->ports++;
    /* One more share at every other queue: sources over their new share give up
     * the excess now, so that the newcomer's share is there at once. */
    for (int d = 0; d < NSW_PORTS_MAX; d++) {
        if (d == p || !net->port[d].present)
            continue;
        struct nsw_queue *q = &net->port[d].queue;
        uint32_t share = queue_share(net, q), keep[NSW_PORTS_MAX];
        bool over = false;
        for (int s = 0; s < NSW_PORTS_MAX; s++) {
            keep[s] = share;
            over |= q->used_by[s] > share;
        }
        if (over)
            queue_trim(net, d, keep);
    }
    return p;
}

bool nsw_port_remove(struct nsw_net *net, int port)
{
    if (!port_valid(net, port))
        return false;
    struct nsw_port *gone = &net->port[port];
    net->stats.removed_dropped += gone->queue.frames;
    memset(gone, 0, sizeof *gone);
    net->ports--;
    uint32_t keep[NSW_PORTS_MAX];
    for (int s = 0; s < NSW_PORTS_MAX; s++)
        keep[s] = UINT32_MAX;
    keep[port] = 0;
    for (int d = 0; d < NSW_PORTS_MAX; d++)
        if (net->port[d].present && net->port[d].queue.used_by[port])
            queue_trim(net, d, keep);
    return true;
}

unsigned nsw_send(struct nsw_net *net, int src, const uint8_t meta[NSW_META_BYTES], const void *frame, size_t len)
{
    if (!port_valid(net, src))
        return 0;
    struct nsw_port *sp = &net->port[src];
    if (len < NSW_FRAME_MIN) {
        sp->stats.drops[NSW_DROP_RUNT]++;
        return 0;
    }
    if (len > NSW_FRAME_MAX) {
        sp->stats.drops[NSW_DROP_TOO_BIG]++;
        return 0;
    }
    const uint8_t *dst_mac = frame, *src_mac = dst_mac + NSW_MAC_BYTES;
    int owner = mac_owner_fixed(net, src_mac);
    if (mac_is_group(src_mac) || mac_is_zero(src_mac) || (owner >= 0 && owner != src)) {
        sp->stats.drops[NSW_DROP_BAD_SOURCE]++;
        return 0;
    }
    mac_learn(net, src, src_mac);
    int to = mac_is_group(dst_mac) ? -1 : mac_port(net, dst_mac);
    if (to == src) {
        sp->stats.drops[NSW_DROP_TO_SELF]++;
        return 0;
    }
    sp->stats.tx_frames++;
    sp->stats.tx_bytes += len;
    unsigned targets;
    if (to >= 0) {
        targets = 1u << to;
        net->stats.unicast++;
    } else {
        targets = 0;
        for (int p = 0; p < NSW_PORTS_MAX; p++)
            if (p != src && net->port[p].present)
                targets |= 1u << p;
        net->stats.flooded++;
    }
    unsigned delivered = 0;
    for (int p = 0; p < NSW_PORTS_MAX; p++) {
        if (!(targets & 1u << p))
            continue;
        if (queue_put(net, p, src, meta, frame, (uint32_t)len))
            delivered |= 1u << p;
        else
            sp->stats.drops[NSW_DROP_QUOTA]++;
    }
    return delivered;
}

size_t nsw_recv(struct nsw_net *net, int port, uint8_t meta[NSW_META_BYTES], void *buf, size_t max)
{
    if (!port_valid(net, port) || !net->port[port].queue.frames)
        return 0;
    struct nsw_port *rp = &net->port[port];
    struct nsw_record r;
    ring_read(&rp->queue, 0, &r, sizeof r);
    if (r.len > max)
        return r.len;
    ring_read(&rp->queue, NSW_RECORD_HEADER, buf, r.len);
    if (meta)
        memcpy(meta, r.meta, NSW_META_BYTES);
    queue_pop(&rp->queue, &r);
    rp->stats.rx_frames++;
    rp->stats.rx_bytes += r.len;
    return r.len;
}

size_t nsw_discard(struct nsw_net *net, int port)
{
    if (!port_valid(net, port) || !net->port[port].queue.frames)
        return 0;
    struct nsw_port *rp = &net->port[port];
    struct nsw_record r;
    ring_read(&rp->queue, 0, &r, sizeof r);
    queue_pop(&rp->queue, &r);
    rp->stats.rx_discarded++;
    return r.len;
}

unsigned nsw_pending(const struct nsw_net *net, int port)
{
    return port_valid(net, port) ? net->port[port].queue.frames : 0;
}

bool nsw_port_info(const struct nsw_net *net, int port, struct nsw_port_info *out)
{
    if (!port_valid(net, port))
        return false;
    const struct nsw_port *p = &net->port[port];
    memset(out, 0, sizeof *out);
    out->has_mac = p->has_mac;
    memcpy(out->mac, p->mac, NSW_MAC_BYTES);
    out->queue_bytes = p->queue.size;
    out->queue_used = p->queue.used;
    out->queue_frames = p->queue.frames;
    out->share = queue_share(net, &p->queue);
    for (unsigned i = 0; i < NSW_MACS_PER_PORT; i++)
        out->macs_learned += p->learned[i].used;
    out->stats = p->stats;
    return true;
}

struct nsw_net_stats nsw_stats(const struct nsw_net *net)
{
    return net->stats;
}

unsigned nsw_port_macs(const struct nsw_net *net, int port, uint8_t (*out)[NSW_MAC_BYTES], unsigned max)
{
    if (!port_valid(net, port))
        return 0;
    unsigned n = 0;
    for (unsigned i = 0; i < NSW_MACS_PER_PORT && n < max; i++)
        if (net->port[port].learned[i].used)
            memcpy(out[n++], net->port[port].learned[i].mac, NSW_MAC_BYTES);
    return n;
}

const char *nsw_drop_name(enum nsw_drop reason)
{
    static const char *const names[NSW_DROP_REASONS] = {
        [NSW_DROP_RUNT] = "runt",
        [NSW_DROP_TOO_BIG] = "too big",
        [NSW_DROP_BAD_SOURCE] = "bad source",
        [NSW_DROP_TO_SELF] = "to self",
        [NSW_DROP_QUOTA] = "quota",
        [NSW_DROP_RESHARE] = "reshare",
    };
    return (unsigned)reason < NSW_DROP_REASONS ? names[reason] : "?";
}
