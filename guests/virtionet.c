/* virtionet: a hostile virtio-net driver, and the well-behaved ones it needs on the
 * other end of plinth's switch.  One image; the command line's role= says which:
 *
 *   role=bad     on lan0 beside a role=peer VM: breaks its queues and sends frames the
 *                device must drop, one case at a time (below);
 *   role=peer    the bad VM's other end: receives, checks, acknowledges;
 *   role=flood   sends to the sink as fast as it can, until the sink says stop;
 *   role=steady  sends numbered frames to the sink at a slow pace (gap=MS apart);
 *   role=sink    receives both, draining its queue all the while, and judges: every
 *                one of steady's frames arrives, in order, whatever flood does.
 *
 * Each finds plinth's virtio-net function on bus 0 (1af4:1041), drives it as virtio
 * 1.2 §5.1.5 says (VERSION_1 and MAC, no MRG_RXBUF, receiveq 0 and transmitq 1 in
 * its RAM, no interrupts: avail->flags asks for none and it polls used->idx, a
 * receive buffer given back is kicked for unless used->flags says not to), and
 * reads its MAC from the configuration space ("INFO virtionet: eth0 MAC ...").
 *
 * The frames (ethertype 0x88b5, IEEE 802's local experimental one) carry a protocol
 * of their own: "PLNT", a kind (HELLO, START, DATA, ACK, END, ...), the sender's
 * role, a sequence number, two arguments, a flag byte and a pattern that depends on
 * the sequence number.  A frame the device must drop carries "BAD!" and its case's
 * number instead, so that its arrival anywhere is seen for what it is.
 *
 * role=bad, after the peer's HELLO and a START/START_ACK handshake (the peer's ACK
 * to START follows every HELLO it sent, so from then on nothing arrives unasked),
 * runs these kinds of case, each printing one line, each ending with an exchange:
 * a DATA frame to the peer, which acknowledges it saying whether everything it got
 * since the last ACK was in order and none of it a bad frame:
 *
 *   virtionet: case NAME: ok (delivered ...)   valid frames of unusual shapes
 *   virtionet: case NAME: ok (needs reset)     the transmitq broken (as virtioblk's
 *                                              cases: DEVICE_NEEDS_RESET, used->idx
 *                                              unmoved, nothing written in the arena
 *                                              or the sentinels, ISR bit 1, broken
 *                                              until a reset, then working again)
 *   virtionet: case NAME: ok (dropped ...)     a frame the device (or the switch)
 *                                              must drop: completed with length 0,
 *                                              the device still ready, the peer
 *                                              never sees it
 *   virtionet: case NAME: ok (...)             receive buffers: a bad one completed
 *                                              unused, one too small left alone, or
 *                                              one outside RAM breaking the receiveq
 *   virtionet: case NAME: FAILED <why>
 *
 * then "virtionet: all N cases ok" and PASS virtionet-bad, or "virtionet: FAILED"
 * and a FAIL line; and an END to the peer, which prints its verdict ("virtionet:
 * peer: N frames in order, none of the bad ones" and PASS virtionet-peer).  Every
 * exchange checks what the device wrote: the used rings, and the one receive
 * buffer the ACK went to, up to its length; nothing else in the arena.
 *
 * The flood, steady and sink roles share lan1: the sink broadcasts HELLO until
 * both said START; steady sends frames= (default 50) DATA frames gap= ms apart,
 * flood 64-frame rounds of 1514-byte frames until the sink, having had steady's
 * END, says STOP (or rounds= rounds); each then sends END until the sink's END_ACK
 * says how many it got.  The sink checks every frame's bytes, so it drains slower
 * than flood fills: flood goes over its share of the sink's queue in the switch
 * and loses frames, steady never does.  It prints "virtionet: case steady: ..." and
 * "virtionet: case flood: ..." and PASS virtionet-sink.
 *
 * Memory: role=bad needs 20 MiB (the chain-bytes case needs descriptors that add up
 * past 4 GiB, each wholly in RAM, fewer than the queue's 256), the others 8 MiB.
 * Waits are bounded in TSC time (plinth's leaf 0x40000010 gives its kHz). */
#include "virtio.h"

/* ---- virtio-net, §5.1 (vmm/virtio/net.h) ---- */
#define F_CSUM           0
#define F_MAC            5
#define F_HOST_TSO4      11
#define F_CTRL_VQ        17
#define QUEUE_RX         0
#define QUEUE_TX         1
#define NET_HDR          12            /* struct virtio_net_hdr with VERSION_1, §5.1.6 */
#define HDR_F_NEEDS_CSUM 1
#define HDR_F_DATA_VALID 2
#define GSO_NONE         0
#define GSO_TCPV4        1
#define GSO_UDP          3
#define GSO_ECN          0x80
#define CFG_MAC          0             /* struct virtio_net_config, §5.1.4 */
#define CFG_STATUS       6
#define CFG_MTU          10
#define MTU              1500
#define ETH_HLEN         14
#define VLAN_HLEN        4
#define ETH_P_8021Q      0x8100
#define ETH_P_PLINTH     0x88b5

/* ---- the frames' own protocol ---- */
#define P_MAGIC   14                   /* offsets in an untagged frame */
#define P_KIND    18
#define P_ROLE    19
#define P_SEQ     20
#define P_ARG     24
#define P_ARG2    28
#define P_FLAGS   32
#define P_FILL    36
#define P_MIN     P_FILL               /* the shortest protocol frame */
#define DATA_LEN  64                   /* a DATA frame's usual length */
#define ACK_LEN   64
#define FLOOD_LEN 1514

#define K_HELLO     1
#define K_START     2
#define K_START_ACK 3
#define K_DATA      4                  /* arg: its length; arg2: the ACK's length (0: ACK_LEN) */
#define K_ACK       5                  /* seq: the DATA's; arg: a status; arg2: its detail */
#define K_END       6                  /* arg: DATA frames sent */
#define K_END_ACK   7                  /* arg: DATA frames received; arg2: problems */
#define K_STOP      8

#define DF_CSUM   1                    /* DATA flag: the device filled a checksum */
#define CSUM_START P_FILL              /* where a DATA frame's checksummed part starts */
#define CSUM_OFFSET 4

enum role { ROLE_NONE, ROLE_BAD, ROLE_PEER, ROLE_FLOOD, ROLE_STEADY, ROLE_SINK };
static const char *const role_names[] = { "?", "bad", "peer", "flood", "steady", "sink" };

/* What the peer's ACK says about the frames since the previous one. */
enum ack_status {
    ACK_OK,
    ACK_SEQ,            /* a DATA frame out of order; detail: the seq expected */
    ACK_BAD_FRAME,      /* a frame marked BAD!; detail: its case */
    ACK_STRANGE,        /* a frame not of the protocol; detail: its length */
    ACK_CONTENT,        /* a DATA frame's bytes wrong; detail: the offset */
    ACK_CSUM,           /* the checksum the device filled is wrong; detail: the sum */
    ACK_HDR,            /* the virtio_net_hdr; detail: flags | gso_type << 8 | num_buffers << 16 */
    ACK_LENGTH,         /* a DATA frame of another length than it says; detail: its length */
};

/* ---- this VM's memory ---- */
#define ARENA      0x200000u
#define TXQ_DESC   (ARENA + 0x0000)    /* 256 descriptors at most: 4 KiB */
#define TXQ_AVAIL  (ARENA + 0x1000)
#define TXQ_USED   (ARENA + 0x2000)
#define RXQ_DESC   (ARENA + 0x3000)
#define RXQ_AVAIL  (ARENA + 0x4000)
#define RXQ_USED   (ARENA + 0x5000)
#define INDIRECT   (ARENA + 0x6000)
#define SPARE      (ARENA + 0x7000)    /* writable buffers a transmit chain must not see written */
#define TXBUF      (ARENA + 0x8000)    /* transmit slots, 2 KiB each */
#define SLOT       0x800
#define RXBUF      (ARENA + 0x10000)   /* receive buffers, 2 KiB each */
#define RXBUF_LEN  0x800
#define ARENA_LEN  0x18000u            /* 16 transmit slots, 16 receive buffers */
#define SENTINEL   0x300000u           /* above the arena, 1 MiB (role=bad) */
#define SENTINEL_LEN 0x100000u
#define TAIL_LEN   0x10000u            /* the last 64 KiB of RAM (role=bad) */
#define BULK       0x400000u           /* the sink's 256 receive buffers, flood's 64 frames */

#define QSIZE      16
#define QSIZE_BIG  256                 /* chain-bytes; the sink's receiveq */
#define NRX        16
#define NRX_SINK   256
#define FLOOD_BATCH 64                 /* the device's transmit batch (VNET_TX_BATCH_CHAINS) */
#define USED_BYTES(n) (6u + 8u * (n))

static enum role role;
static uint32_t ram_top;
static uint64_t tsc_khz;
static struct vring txq = { .desc = TXQ_DESC, .avail = TXQ_AVAIL, .used = TXQ_USED };
static struct vring rxq = { .desc = RXQ_DESC, .avail = RXQ_AVAIL, .used = RXQ_USED };
static uint16_t rx_seen;               /* rxq's used entries taken */
static uint32_t rx_base;               /* the posted receive buffers */
static uint16_t rx_count;
static uint8_t my_mac[6];
static const uint8_t broadcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
static uint32_t arena_copy[ARENA_LEN / 4];
static const struct arena arena = { ARENA, ARENA_LEN, arena_copy };

/* ---- time ---- */

static void tsc_init(void)
{
    uint32_t r[4];
    cpuid(0x40000000, 0, r);
    if (r[0] >= 0x40000010 && r[0] < 0x50000000) {
        cpuid(0x40000010, 0, r);
        tsc_khz = r[0];
    }
    if (!tsc_khz)
        tsc_khz = 1000000;             /* no leaf: assume 1 GHz */
}

static uint64_t ms_ticks(uint32_t ms) { return (uint64_t)ms * tsc_khz; }

/* ---- bytes of a frame ---- */

static void put16be(uint32_t at, uint16_t v) { *mem8(at) = (uint8_t)(v >> 8); *mem8(at + 1) = (uint8_t)v; }
static uint16_t get16be(uint32_t at) { return (uint16_t)(*mem8(at) << 8 | *mem8(at + 1)); }
static void put32(uint32_t at, uint32_t v) { for (int i = 0; i < 4; i++) *mem8(at + i) = (uint8_t)(v >> (8 * i)); }
static uint32_t get32(uint32_t at)
{
    return *mem8(at) | *mem8(at + 1) << 8 | *mem8(at + 2) << 16 | (uint32_t)*mem8(at + 3) << 24;
}
static void put_mac(uint32_t at, const uint8_t mac[6]) { for (int i = 0; i < 6; i++) *mem8(at + i) = mac[i]; }
static bool mac_is(uint32_t at, const uint8_t mac[6])
{
    for (int i = 0; i < 6; i++)
        if (*mem8(at + i) != mac[i])
            return false;
    return true;
}
static void get_mac(uint32_t at, uint8_t mac[6]) { for (int i = 0; i < 6; i++) mac[i] = *mem8(at + i); }

/* A DATA frame's pattern: flood's the same in every frame (it rewrites only the
 * sequence number), everyone else's a function of the sequence number. */
static uint8_t fill_byte(uint8_t sender, uint32_t seq, uint32_t i)
{
    return (uint8_t)((sender == ROLE_FLOOD ? 0x5a : seq) + i * 7);
}

/* The 12-byte virtio_net_hdr (§5.1.6, little-endian). */
static void hdr_put(uint32_t at, uint8_t flags, uint8_t gso, uint16_t hdr_len, uint16_t gso_size,
                    uint16_t csum_start, uint16_t csum_offset)
{
    const uint16_t w[5] = { hdr_len, gso_size, csum_start, csum_offset, 0 };
    *mem8(at) = flags;
    *mem8(at + 1) = gso;
    for (int i = 0; i < 5; i++) {
        *mem8(at + 2 + 2 * i) = (uint8_t)w[i];
        *mem8(at + 3 + 2 * i) = (uint8_t)(w[i] >> 8);
    }
}

/* A protocol frame of len bytes at at (after its header): Ethernet header, then from
 * P_MAGIC (moved by a tag when tagged) the protocol fields and the pattern. */
static void frame_put(uint32_t at, const uint8_t dst[6], uint8_t kind, uint32_t seq, uint32_t arg,
                      uint32_t arg2, uint32_t len, bool tagged)
{
    put_mac(at, dst);
    put_mac(at + 6, my_mac);
    uint32_t p = at;
    if (tagged) {
        put16be(at + 12, ETH_P_8021Q);
        put16be(at + 14, 0x0005);       /* priority 0, VLAN 5 */
        p += VLAN_HLEN;
    }
    put16be(p + 12, ETH_P_PLINTH);
    memcpy((void *)(uintptr_t)(p + P_MAGIC), "PLNT", 4);
    *mem8(p + P_KIND) = kind;
    *mem8(p + P_ROLE) = (uint8_t)role;
    put32(p + P_SEQ, seq);
    put32(p + P_ARG, arg);
    put32(p + P_ARG2, arg2);
    *mem8(p + P_FLAGS) = 0;
    for (uint32_t i = P_FILL; i + (p - at) < len; i++)
        *mem8(p + i) = fill_byte((uint8_t)role, seq, i);
}

/* RFC 1071: the 16-bit ones' complement sum of big-endian words, folded. */
static uint16_t ones_sum(uint32_t at, uint32_t len)
{
    uint32_t sum = 0;
    uint32_t i = 0;
    for (; i + 1 < len; i += 2)
        sum += get16be(at + i);
    if (i < len)
        sum += (uint32_t)*mem8(at + i) << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)sum;
}

/* ---- the device ---- */

struct net_setup {
    uint64_t features;                 /* accepted besides VERSION_1 and MAC */
    uint16_t tx_size, rx_size;
    uint64_t tx_desc, tx_avail, tx_used;   /* as given to the device; 0: the RAM ones */
};

static void rx_kick(void)
{
    /* §2.7.10: the device says with used->flags when it needs no kick. */
    barrier();
    if (!(*mem16(rxq.used) & USED_NO_NOTIFY))
        vring_notify(&rxq);
}

/* Receive buffers 0..count-1 of RXBUF_LEN at base, one descriptor each, made
 * available and kicked for. */
static void rx_post(uint32_t base, uint16_t count)
{
    rx_base = base;
    rx_count = count;
    for (uint16_t i = 0; i < count; i++) {
        put_desc(RXQ_DESC, i, base + (uint32_t)i * RXBUF_LEN, RXBUF_LEN, D_WRITE, 0);
        vring_make_available(&rxq, i);
    }
    rx_kick();
}

/* Reset, §3.1.1 and §5.1.5 with the case's features and transmitq; the receiveq is
 * always the RAM one and gets no buffers here.  false (and the case failed) when the
 * device does not behave as a virtio-net 1.x one. */
static bool net_init(const struct net_setup *s)
{
    if (!virtio_reset())
        return false;
    uint64_t tx_desc = s->tx_desc ? s->tx_desc : TXQ_DESC;
    uint64_t tx_avail = s->tx_avail ? s->tx_avail : TXQ_AVAIL;
    uint64_t tx_used = s->tx_used ? s->tx_used : TXQ_USED;
    txq.avail_idx = rxq.avail_idx = 0;
    rx_seen = 0;
    rx_count = 0;
    memset((void *)RXQ_DESC, 0, 16u * s->rx_size);
    memset((void *)RXQ_AVAIL, 0, 6u + 2u * s->rx_size);
    memset((void *)RXQ_USED, 0, USED_BYTES(s->rx_size));
    *mem16(RXQ_AVAIL) = AVAIL_NO_INTERRUPT;
    if (tx_desc == TXQ_DESC)
        memset((void *)TXQ_DESC, 0, 16u * s->tx_size);
    if (tx_avail == TXQ_AVAIL) {
        memset((void *)TXQ_AVAIL, 0, 6u + 2u * s->tx_size);
        *mem16(TXQ_AVAIL) = AVAIL_NO_INTERRUPT;
    }
    if (tx_used == TXQ_USED)
        memset((void *)TXQ_USED, 0, USED_BYTES(s->tx_size));
    uint64_t want = 1ull << F_VERSION_1 | 1ull << F_MAC | s->features;
    uint64_t offered = virtio_features_offered();
    if ((offered & want) != want) {
        case_fail("the device does not offer features ", true, want & ~offered, NULL);
        case_why_append(" (it offers ");
        case_why_num(offered);
        case_why_append(")");
        return false;
    }
    if (!virtio_features_accept(want))
        return false;
    if (!vring_setup(&rxq, QUEUE_RX, s->rx_size, RXQ_DESC, RXQ_AVAIL, RXQ_USED) ||
        !vring_setup(&txq, QUEUE_TX, s->tx_size, tx_desc, tx_avail, tx_used))
        return false;
    bar_w8(COMMON_STATUS, S_READY);
    return true;
}

static void read_mac(void)
{
    for (int i = 0; i < 6; i++)
        my_mac[i] = bar_r8(DEVCFG_OFF + CFG_MAC + (uint32_t)i);
}

/* One used receive entry, if the device published one: its head and length. */
struct rx_entry { uint32_t id, len; };

static bool rx_take(struct rx_entry *e)
{
    if (vring_used_idx(&rxq) == rx_seen)
        return false;
    barrier();
    uint32_t slot = RXQ_USED + 4 + 8 * (rx_seen & (rxq.size - 1u));
    e->id = *mem32(slot);
    e->len = *mem32(slot + 4);
    rx_seen++;
    return true;
}

/* A receive buffer given back (its descriptor unchanged); the caller kicks. */
static void rx_give_back(uint32_t id)
{
    vring_make_available(&rxq, (uint16_t)id);
}

/* Sends the chain at descriptor head and waits for its completion: length 0, the
 * device still ready.  false (and the case failed) otherwise.  With snapshot, the
 * arena's copy is taken once the chain is available, just before the notification. */
static bool tx_send(uint16_t head, const char *what, bool snapshot)
{
    uint16_t want = (uint16_t)(txq.avail_idx + 1);
    vring_make_available(&txq, head);
    if (snapshot)
        arena_snapshot(&arena);
    vring_notify(&txq);
    if (!vring_poll_used(&txq, want)) {
        case_fail("", false, 0, what);
        case_why_append(": not completed, used->idx ");
        case_why_num(vring_used_idx(&txq));
        return false;
    }
    uint32_t slot = TXQ_USED + 4 + 8 * ((want - 1u) & (txq.size - 1u));
    uint8_t st = bar_r8(COMMON_STATUS);
    if (*mem32(slot) != head || *mem32(slot + 4) != 0) {
        case_fail("", false, 0, what);
        case_why_append(": used element id ");
        case_why_num(*mem32(slot));
        case_why_append(" len ");
        case_why_num(*mem32(slot + 4));
        case_why_append(", expected len 0 (a transmit buffer is only read)");
        return false;
    }
    if (st != S_READY) {
        case_fail("", false, 0, what);
        case_why_append(": device_status ");
        case_why_num(st);
        return false;
    }
    return true;
}

/* A protocol frame from slot 0, header and frame in one descriptor. */
static bool send_frame(const uint8_t dst[6], uint8_t kind, uint32_t seq, uint32_t arg, uint32_t arg2,
                       uint32_t len)
{
    hdr_put(TXBUF, 0, GSO_NONE, 0, 0, 0, 0);
    frame_put(TXBUF + NET_HDR, dst, kind, seq, arg, arg2, len, false);
    put_desc(TXQ_DESC, 0, TXBUF, NET_HDR + len, 0, 0);
    return tx_send(0, "a protocol frame", false);
}

/* A received frame: where it is and what it says. */
struct rx_frame {
    uint32_t id;                       /* its buffer */
    uint32_t hdr, at, len;             /* its virtio_net_hdr, its bytes */
    uint32_t p;                        /* where its protocol fields are (at, or at + 4) */
    bool proto, bad;                   /* "PLNT" / "BAD!" */
    uint8_t kind, sender;
    uint32_t seq, arg, arg2;
};

/* Takes the next received frame, if any; *f as parsed.  false when none. */
static bool rx_frame_take(struct rx_frame *f)
{
    struct rx_entry e;
    if (!rx_take(&e))
        return false;
    *f = (struct rx_frame){ .id = e.id };
    if (e.id >= rx_count || e.len < NET_HDR || e.len > RXBUF_LEN) {
        f->len = e.len;            /* not a buffer of ours, or a length it cannot have */
        f->at = 0;
        return true;
    }
    f->hdr = rx_base + e.id * RXBUF_LEN;
    f->at = f->hdr + NET_HDR;
    f->len = e.len - NET_HDR;
    f->p = f->at;
    if (f->len >= ETH_HLEN + VLAN_HLEN && get16be(f->at + 12) == ETH_P_8021Q)
        f->p += VLAN_HLEN;
    uint32_t plen = f->len - (f->p - f->at);
    if (f->len < ETH_HLEN || get16be(f->p + 12) != ETH_P_PLINTH || plen < P_MIN)
        return true;
    f->proto = !memcmp((const void *)(uintptr_t)(f->p + P_MAGIC), "PLNT", 4);
    f->bad = !memcmp((const void *)(uintptr_t)(f->p + P_MAGIC), "BAD!", 4);
    f->kind = *mem8(f->p + P_KIND);
    f->sender = *mem8(f->p + P_ROLE);
    f->seq = get32(f->p + P_SEQ);
    f->arg = get32(f->p + P_ARG);
    f->arg2 = get32(f->p + P_ARG2);
    return true;
}

/* Whether the frame's pattern is intact, skipping the checksum field when the
 * device filled one; *off the first wrong byte. */
static bool fill_ok(const struct rx_frame *f, uint32_t *off)
{
    bool csum = *mem8(f->p + P_FLAGS) & DF_CSUM;
    uint32_t end = f->len - (f->p - f->at);
    for (uint32_t i = P_FILL; i < end; i++) {
        if (csum && (i == CSUM_START + CSUM_OFFSET || i == CSUM_START + CSUM_OFFSET + 1))
            continue;
        if (*mem8(f->p + i) != fill_byte(f->sender, f->seq, i)) {
            *off = i;
            return false;
        }
    }
    return true;
}

/* Waits (bounded) for the next received frame. */
static bool rx_wait(struct rx_frame *f, uint32_t ms)
{
    uint64_t t0 = rdtsc(), limit = ms_ticks(ms);
    while (rdtsc() - t0 < limit) {
        if (rx_frame_take(f))
            return true;
        __asm__ volatile("pause");
    }
    return false;
}

static void print_mac(const char *what, const uint8_t m[6])
{
    gprintf("INFO virtionet: %s %02x:%02x:%02x:%02x:%02x:%02x\n", what, m[0], m[1], m[2], m[3], m[4], m[5]);
}

/* The device, found and initialised for a role that is no hostile one; its MAC. */
static bool net_start(uint16_t tx_size, uint16_t rx_size, uint32_t rx_at, uint16_t nrx)
{
    if (!virtio_find(PCI_DEVICE_VIRTIO_NET, "virtionet", "virtio-net"))
        return false;
    case_begin();
    const struct net_setup s = { .tx_size = tx_size, .rx_size = rx_size };
    if (!net_init(&s)) {
        gprintf("virtionet: FAILED initialising the device: %s\n", case_why);
        return false;
    }
    read_mac();
    print_mac("eth0 MAC", my_mac);
    uint16_t mtu = bar_r16(DEVCFG_OFF + CFG_MTU), link = bar_r16(DEVCFG_OFF + CFG_STATUS);
    gprintf("INFO virtionet: mtu %u, link status %#x, TSC %u kHz\n", mtu, link, (uint32_t)tsc_khz);
    if (mtu != MTU) {
        gprintf("virtionet: FAILED the device's mtu is %u, expected %u\n", mtu, MTU);
        return false;
    }
    rx_post(rx_at, nrx);
    return true;
}

/* ======================================================================== */
/* role=peer                                                                */
/* ======================================================================== */

static struct {
    uint32_t expect;                   /* the next DATA seq */
    uint32_t received;                 /* DATA frames in order */
    uint32_t problems;
    enum ack_status status;            /* the first problem since the last ACK */
    uint32_t detail;
} peer;

static void peer_problem(enum ack_status st, uint32_t detail, const char *fmt, uint32_t a, uint32_t b)
{
    peer.problems++;
    if (peer.status == ACK_OK) {
        peer.status = st;
        peer.detail = detail;
    }
    gprintf("virtionet: peer: FAILED ");
    gprintf(fmt, a, b);
    gprintf("\n");
}

/* A DATA frame: in order, its header, length, pattern and checksum right. */
static void peer_data(const struct rx_frame *f)
{
    if (f->seq != peer.expect)
        peer_problem(ACK_SEQ, peer.expect, "DATA seq %u arrived where seq %u was next", f->seq, peer.expect);
    peer.expect = f->seq + 1;
    peer.received++;
    uint8_t flags = *mem8(f->hdr), gso = *mem8(f->hdr + 1);
    uint16_t nbuf = (uint16_t)(*mem8(f->hdr + 10) | *mem8(f->hdr + 11) << 8);
    /* Without GUEST_CSUM or MRG_RXBUF: flags 0 (a partial checksum is completed,
     * §5.1.6.4.1), no GSO, num_buffers 1 (§5.1.6.3.2). */
    if (flags || gso || nbuf != 1)
        peer_problem(ACK_HDR, flags | gso << 8 | (uint32_t)nbuf << 16,
                     "DATA seq %u came with virtio_net_hdr flags/gso/num_buffers %#x", f->seq,
                     flags | gso << 8 | (uint32_t)nbuf << 16);
    uint32_t off;
    if (f->arg != f->len)
        peer_problem(ACK_LENGTH, f->len, "DATA seq %u is %u bytes long, not the length it says", f->seq, f->len);
    else if (!fill_ok(f, &off))
        peer_problem(ACK_CONTENT, off, "DATA seq %u differs at byte %u", f->seq, off);
    else if (*mem8(f->p + P_FLAGS) & DF_CSUM) {
        uint32_t plen = f->len - (f->p - f->at);
        uint16_t sum = ones_sum(f->p + CSUM_START, plen - CSUM_START);
        if (sum != 0xffff)
            peer_problem(ACK_CSUM, sum, "DATA seq %u: the checksum the device filled sums to %#x", f->seq, sum);
    }
}

static bool str_is(const char *a, const char *b)
{
    size_t n = strlen(a);
    return n == strlen(b) && !memcmp(a, b, n);
}

static void role_peer(void)
{
    if (!net_start(QSIZE, QSIZE, RXBUF, NRX)) {
        fail("virtionet-peer", "no usable virtio-net device");
        return;
    }
    uint32_t wait_ms = cmdline_number(guest_mbi, "wait", 60000);
    uint8_t bad_mac[6];
    bool started = false;
    uint64_t t0 = rdtsc(), last_hello = 0;
    /* HELLO, broadcast every 20 ms until the bad VM's START. */
    while (!started) {
        if (rdtsc() - t0 > ms_ticks(wait_ms)) {
            gprintf("virtionet: peer: FAILED no START within %u ms\n", wait_ms);
            fail("virtionet-peer", "the bad VM never started");
            return;
        }
        if (!last_hello || rdtsc() - last_hello > ms_ticks(20)) {
            case_begin();
            if (!send_frame(broadcast, K_HELLO, 0, 0, 0, ACK_LEN)) {
                gprintf("virtionet: peer: FAILED sending HELLO: %s\n", case_why);
                fail("virtionet-peer", "the device does not send");
                return;
            }
            last_hello = rdtsc();
        }
        struct rx_frame f;
        while (rx_frame_take(&f)) {
            if (f.proto && f.kind == K_START) {
                get_mac(f.at + 6, bad_mac);
                started = true;
            }
            rx_give_back(f.id);
        }
        rx_kick();
    }
    print_mac("the bad VM is", bad_mac);
    case_begin();
    send_frame(bad_mac, K_START_ACK, 0, 0, 0, ACK_LEN);
    bool ended = false;
    uint32_t sent = 0;
    uint64_t last = rdtsc();
    while (!ended && !case_failed) {
        struct rx_frame f;
        if (!rx_frame_take(&f)) {
            if (rdtsc() - last > ms_ticks(wait_ms)) {
                gprintf("virtionet: peer: FAILED nothing for %u ms after %u DATA frames\n", wait_ms, peer.received);
                break;
            }
            __asm__ volatile("pause");
            continue;
        }
        last = rdtsc();
        if (!f.at) {
            peer_problem(ACK_STRANGE, f.len, "a used element for buffer %u of length %u", f.id, f.len);
        } else if (f.bad) {
            peer_problem(ACK_BAD_FRAME, get32(f.p + P_KIND),
                         "a frame the device should have dropped arrived: case %u, %u bytes", get32(f.p + P_KIND),
                         f.len);
        } else if (!f.proto) {
            peer_problem(ACK_STRANGE, f.len, "a frame not of the protocol arrived: %u bytes, ethertype %#x", f.len,
                         f.len >= ETH_HLEN ? get16be(f.at + 12) : 0);
        } else if (f.kind == K_DATA) {
            peer_data(&f);
            uint32_t reply = f.arg2 ? f.arg2 : ACK_LEN;
            send_frame(bad_mac, K_ACK, f.seq, peer.status, peer.detail, reply);
            peer.status = ACK_OK;
            peer.detail = 0;
        } else if (f.kind == K_START) {
            send_frame(bad_mac, K_START_ACK, 0, 0, 0, ACK_LEN);
        } else if (f.kind == K_END) {
            sent = f.arg;
            send_frame(bad_mac, K_END_ACK, f.seq, peer.received, peer.problems, ACK_LEN);
            ended = true;
        } else {
            peer_problem(ACK_STRANGE, f.len, "a frame of kind %u arrived (%u bytes)", f.kind, f.len);
        }
        rx_give_back(f.id);
        rx_kick();
    }
    if (case_failed)
        gprintf("virtionet: peer: FAILED %s\n", case_why);
    if (ended && !peer.problems && !case_failed && peer.received == sent) {
        gprintf("virtionet: peer: %u frames in order, none of the bad ones\n", peer.received);
        pass("virtionet-peer");
    } else {
        if (ended && peer.received != sent)
            gprintf("virtionet: peer: FAILED %u DATA frames arrived, the bad VM sent %u\n", peer.received, sent);
        fail("virtionet-peer", "%u problems, %u of %u DATA frames%s", peer.problems, peer.received, sent,
             ended ? "" : ", no END");
    }
}

/* ======================================================================== */
/* role=bad                                                                 */
/* ======================================================================== */

static uint8_t peer_mac[6];
static uint32_t seq;                   /* the next DATA frame's */
static unsigned cases_run, cases_failed, cur_case;

static bool sentinels_ok(void)
{
    return sentinel_ok(SENTINEL, SENTINEL_LEN, "the sentinel MiB") &&
           sentinel_ok(ram_top - TAIL_LEN, TAIL_LEN, "RAM's last 64 KiB");
}

static const struct net_setup standard = { .tx_size = QSIZE, .rx_size = QSIZE };

/* What the device may write while it serves a transmit chain: the used rings of
 * both queues (flags, idx, elements; not avail_event, which is EVENT_IDX's, not
 * negotiated); nothing else. */
static void used_rings(struct span out[2])
{
    out[0] = (struct span){ TXQ_USED, 4 + 8u * txq.size };
    out[1] = (struct span){ RXQ_USED, 4 + 8u * rxq.size };
}
/* What a broken queue's device may still write: used->flags, which it owns (§2.7.10). */
static const struct span used_flags[] = { { TXQ_USED, 2 }, { RXQ_USED, 2 } };

/* A frame the device must not send: "BAD!" and the case's number where the protocol
 * has its magic, a pattern after it; from my MAC to the peer's unless src/dst say. */
static void bad_frame_at(uint32_t at, uint32_t len, const uint8_t *dst, const uint8_t *src)
{
    put_mac(at, dst ? dst : peer_mac);
    put_mac(at + 6, src ? src : my_mac);
    if (len >= 14)
        put16be(at + 12, ETH_P_PLINTH);
    if (len >= P_KIND + 4) {
        memcpy((void *)(uintptr_t)(at + P_MAGIC), "BAD!", 4);
        put32(at + P_KIND, cur_case);
    }
    for (uint32_t i = P_KIND + 4; i < len; i++)
        *mem8(at + i) = (uint8_t)(0xb0 ^ i);
}

/* A BAD! frame with a plain header in slot 0: header then frame, len bytes. */
static void bad_frame(uint32_t len)
{
    hdr_put(TXBUF, 0, GSO_NONE, 0, 0, 0, 0);
    bad_frame_at(TXBUF + NET_HDR, len, NULL, NULL);
}

static const char *const ack_why[] = {
    [ACK_OK] = "ok",
    [ACK_SEQ] = "a DATA frame out of order, expected seq ",
    [ACK_BAD_FRAME] = "a frame the device should have dropped reached it: case ",
    [ACK_STRANGE] = "a frame not of the protocol reached it, length ",
    [ACK_CONTENT] = "a DATA frame's bytes differ at offset ",
    [ACK_CSUM] = "the checksum the device filled is wrong: sum ",
    [ACK_HDR] = "the virtio_net_hdr it got is wrong: ",
    [ACK_LENGTH] = "a DATA frame arrived with another length: ",
};

/* Waits for the peer's ACK to DATA want_seq: it arrives in one of my receive
 * buffers whole, nothing else in the arena changed since the snapshot (but the
 * used rings), and the peer says all it got was right.  The buffer is given back.
 * ack_len is what the DATA frame asked for. */
static bool await_ack(uint32_t want_seq, uint32_t ack_len)
{
    struct rx_frame f;
    if (!rx_wait(&f, 3000)) {
        case_fail("no ACK from the peer within 3 s for DATA seq ", true, want_seq, NULL);
        return false;
    }
    bool ok = false;
    if (!f.at) {
        case_fail("a used receive element names buffer ", true, f.id, NULL);
        case_why_append(" length ");
        case_why_num(f.len);
    } else if (f.len != ack_len) {
        case_fail("the ACK is ", true, f.len, " bytes long");
    } else if (!f.proto || f.kind != K_ACK || f.seq != want_seq || !mac_is(f.at, my_mac) ||
               !mac_is(f.at + 6, peer_mac)) {
        case_fail("another frame than the ACK arrived: kind ", true, f.kind, NULL);
        case_why_append(" seq ");
        case_why_num(f.seq);
    } else if (get32(f.hdr) != 0 || get32(f.hdr + 4) != 0 || get32(f.hdr + 8) != 1u << 16) {
        /* No offload, no GSO, num_buffers 1 (§5.1.6.3.2, §5.1.6.4.1). */
        case_fail("the ACK's virtio_net_hdr is wrong: bytes 8-11 ", true, get32(f.hdr + 8), NULL);
        case_why_append(", 0-3 ");
        case_why_num(get32(f.hdr));
    } else {
        struct span allow[3];
        used_rings(allow);
        allow[2] = (struct span){ f.hdr, NET_HDR + f.len };
        if (!arena_unchanged(&arena, allow, 3)) {
            /* reason given */
        } else if (f.arg != ACK_OK) {
            case_fail("the peer says: ", false, 0, f.arg < sizeof ack_why / sizeof ack_why[0] ? ack_why[f.arg] : "?");
            case_why_num(f.arg2);
        } else {
            ok = true;
        }
    }
    rx_give_back(f.id);
    rx_kick();
    return ok;
}

/* The DATA frame seq in slot 0 at TXBUF (header zeroed), len bytes, asking for an
 * ACK of ack_len (0: ACK_LEN); the caller may change it before it goes. */
static void data_frame(uint32_t len, uint32_t ack_len, bool tagged)
{
    hdr_put(TXBUF, 0, GSO_NONE, 0, 0, 0, 0);
    frame_put(TXBUF + NET_HDR, peer_mac, K_DATA, seq, len, ack_len, len, tagged);
}

/* Sends the chain at head 0 (a DATA frame of seq) and waits for its ACK. */
static bool exchange_chain(uint32_t ack_len)
{
    if (!tx_send(0, "a valid DATA frame", true))
        return false;
    return await_ack(seq++, ack_len ? ack_len : ACK_LEN);
}

/* A plain DATA frame and its ACK: the device works. */
static bool exchange(void)
{
    data_frame(DATA_LEN, 0, false);
    put_desc(TXQ_DESC, 0, TXBUF, NET_HDR + DATA_LEN, 0, 0);
    return exchange_chain(0);
}

static void case_result(const char *name, const char *ok_text)
{
    if (case_failed) {
        cases_failed++;
        gprintf("virtionet: case %s: FAILED %s\n", name, case_why);
    } else {
        gprintf("virtionet: case %s: ok (%s)\n", name, ok_text);
    }
}

/* ---- valid frames of unusual shapes: delivered whole ---- */

/* A DATA frame of exactly mtu + 14 bytes. */
static void shape_mtu_max(void)
{
    data_frame(ETH_HLEN + MTU, 0, false);
    put_desc(TXQ_DESC, 0, TXBUF, NET_HDR + ETH_HLEN + MTU, 0, 0);
}

/* An 802.1Q-tagged one of mtu + 18: the tag's 4 bytes do not count. */
static void shape_vlan_max(void)
{
    data_frame(ETH_HLEN + VLAN_HLEN + MTU, 0, true);
    put_desc(TXQ_DESC, 0, TXBUF, NET_HDR + ETH_HLEN + VLAN_HLEN + MTU, 0, 0);
}

/* The header alone, the frame in three pieces (§2.7.4: any split is the driver's). */
static void shape_split(void)
{
    data_frame(1000, 0, false);
    put_desc(TXQ_DESC, 0, TXBUF, NET_HDR, D_NEXT, 1);
    put_desc(TXQ_DESC, 1, TXBUF + NET_HDR, 7, D_NEXT, 2);
    put_desc(TXQ_DESC, 2, TXBUF + NET_HDR + 7, 300, D_NEXT, 3);
    put_desc(TXQ_DESC, 3, TXBUF + NET_HDR + 307, 1000 - 307, 0, 0);
}

/* The header itself across two descriptors, the second running on into the frame. */
static void shape_hdr_split(void)
{
    data_frame(200, 0, false);
    put_desc(TXQ_DESC, 0, TXBUF, 5, D_NEXT, 1);
    put_desc(TXQ_DESC, 1, TXBUF + 5, NET_HDR - 5 + 200, 0, 0);
}

/* Header and frame through an indirect table (INDIRECT_DESC negotiated). */
static void shape_indirect(void)
{
    data_frame(300, 0, false);
    put_desc(INDIRECT, 0, TXBUF, NET_HDR, D_NEXT, 1);
    put_desc(INDIRECT, 1, TXBUF + NET_HDR, 300, 0, 0);
    put_desc(TXQ_DESC, 0, INDIRECT, 32, D_INDIRECT, 0);
}

/* NEEDS_CSUM with CSUM negotiated: the peer, which has no GUEST_CSUM, must get the
 * checksum computed (§5.1.6.4.1) over the frame from CSUM_START. */
static void shape_csum_fill(void)
{
    data_frame(400, 0, false);
    hdr_put(TXBUF, HDR_F_NEEDS_CSUM, GSO_NONE, 0, 0, CSUM_START, CSUM_OFFSET);
    *mem8(TXBUF + NET_HDR + P_FLAGS) = DF_CSUM;
    /* The field holds the pseudo header's sum (§5.1.6.2); here none: 0. */
    *mem8(TXBUF + NET_HDR + CSUM_START + CSUM_OFFSET) = 0;
    *mem8(TXBUF + NET_HDR + CSUM_START + CSUM_OFFSET + 1) = 0;
    put_desc(TXQ_DESC, 0, TXBUF, NET_HDR + 400, 0, 0);
}

/* ---- the transmitq broken: DEVICE_NEEDS_RESET ---- */

/* (loop) 0 -> 1 -> 0, both device-readable, so that the walk sees only the loop. */
static void submit_loop(void)
{
    bad_frame(100);
    put_desc(TXQ_DESC, 0, TXBUF, NET_HDR, D_NEXT, 1);
    put_desc(TXQ_DESC, 1, TXBUF + NET_HDR, 100, D_NEXT, 0);
    vring_make_available(&txq, 0);
}

/* (next-range) next one past the table. */
static void submit_next_range(void)
{
    bad_frame(100);
    put_desc(TXQ_DESC, 0, TXBUF, NET_HDR, D_NEXT, txq.size);
    vring_make_available(&txq, 0);
}

/* (head-range) a head one past the table; descriptor 0 holds a frame. */
static void submit_head_range(void)
{
    bad_frame(100);
    put_desc(TXQ_DESC, 0, TXBUF, NET_HDR + 100, 0, 0);
    vring_make_available(&txq, txq.size);
}

/* (buf-outside-ram) the frame straddles the end of RAM: its first 256 bytes are
 * RAM (the tail sentinel), the rest is not. */
static void submit_buf_outside_ram(void)
{
    bad_frame(100);
    put_desc(TXQ_DESC, 0, TXBUF, NET_HDR, D_NEXT, 1);
    put_desc(TXQ_DESC, 1, ram_top - 256, 512, 0, 0);
    vring_make_available(&txq, 0);
}

/* (buf-in-bar) the frame is the device's own BAR 0. */
static void submit_buf_in_bar(void)
{
    bad_frame(100);
    put_desc(TXQ_DESC, 0, TXBUF, NET_HDR, D_NEXT, 1);
    put_desc(TXQ_DESC, 1, virtio_bar, 256, 0, 0);
    vring_make_available(&txq, 0);
}

/* (len-wrap) addr + len wraps past 2^64 to 0x1000, inside RAM. */
static void submit_len_wrap(void)
{
    bad_frame(100);
    put_desc(TXQ_DESC, 0, TXBUF, NET_HDR, D_NEXT, 1);
    put_desc(TXQ_DESC, 1, 0xfffffffffffff000ull, 0x2000, 0, 0);
    vring_make_available(&txq, 0);
}

/* (chain-bytes) device-readable buffers, each wholly in RAM, adding up past 2^32 - 1. */
static void submit_chain_bytes(void)
{
    uint32_t len = (ram_top - 0x100000u) & ~0xfffffu;
    unsigned n = 0;
    for (uint64_t total = NET_HDR; total <= 0xffffffffull; total += len)
        n++;
    bad_frame(100);
    put_desc(TXQ_DESC, 0, TXBUF, NET_HDR, D_NEXT, 1);
    for (unsigned i = 1; i <= n; i++)
        put_desc(TXQ_DESC, i, 0x100000u, len, i < n ? D_NEXT : 0, (uint16_t)(i + 1));
    vring_make_available(&txq, 0);
}

/* (order) a device-writable buffer before the frame (§2.7.4.2). */
static void submit_order(void)
{
    bad_frame(100);
    put_desc(TXQ_DESC, 0, SPARE, 64, D_WRITE | D_NEXT, 1);
    put_desc(TXQ_DESC, 1, TXBUF, NET_HDR + 100, 0, 0);
    vring_make_available(&txq, 0);
}

/* (avail-idx) avail->idx more than the queue size ahead; slot 0 holds a frame,
 * which must not go either. */
static void submit_avail_idx(void)
{
    bad_frame(100);
    put_desc(TXQ_DESC, 0, TXBUF, NET_HDR + 100, 0, 0);
    vring_make_available(&txq, 0);
    txq.avail_idx = (uint16_t)(txq.size + 1);
    *mem16(TXQ_AVAIL + 2) = txq.avail_idx;
    barrier();
}

/* An indirect table holding a BAD! frame's header and frame. */
static void put_indirect_table(void)
{
    bad_frame(100);
    put_desc(INDIRECT, 0, TXBUF, NET_HDR, D_NEXT, 1);
    put_desc(INDIRECT, 1, TXBUF + NET_HDR, 100, 0, 0);
}

/* (indirect-len) a table length no multiple of 16. */
static void submit_indirect_len(void)
{
    put_indirect_table();
    put_desc(TXQ_DESC, 0, INDIRECT, 2 * 16 + 8, D_INDIRECT, 0);
    vring_make_available(&txq, 0);
}

/* (indirect-next) INDIRECT and NEXT in one descriptor. */
static void submit_indirect_next(void)
{
    put_indirect_table();
    put_desc(TXQ_DESC, 0, INDIRECT, 2 * 16, D_INDIRECT | D_NEXT, 1);
    put_desc(TXQ_DESC, 1, TXBUF + NET_HDR, 100, 0, 0);
    vring_make_available(&txq, 0);
}

/* (indirect-nested) an indirect descriptor inside the table. */
static void submit_indirect_nested(void)
{
    put_indirect_table();
    put_desc(INDIRECT, 1, INDIRECT + 0x100, 16, D_INDIRECT, 0);
    put_desc(INDIRECT + 0x100, 0, TXBUF + NET_HDR, 100, 0, 0);
    put_desc(TXQ_DESC, 0, INDIRECT, 2 * 16, D_INDIRECT, 0);
    vring_make_available(&txq, 0);
}

/* (indirect-range) the table straddles the end of RAM. */
static void submit_indirect_range(void)
{
    bad_frame(100);
    put_desc(TXQ_DESC, 0, ram_top - 16, 2 * 16, D_INDIRECT, 0);
    vring_make_available(&txq, 0);
}

/* (indirect-unnegotiated) an indirect descriptor without INDIRECT_DESC. */
static void submit_indirect_unnegotiated(void)
{
    put_indirect_table();
    put_desc(TXQ_DESC, 0, INDIRECT, 2 * 16, D_INDIRECT, 0);
    vring_make_available(&txq, 0);
}

/* (ring-*) rings the device must refuse at queue_enable: a frame made available in
 * the RAM rings, which must not go. */
static void submit_ring_case(void)
{
    bad_frame(100);
    put_desc(TXQ_DESC, 0, TXBUF, NET_HDR + 100, 0, 0);
    vring_make_available(&txq, 0);
}

/* ---- frames the device (or the switch) must drop; the device keeps working ---- */

/* (runt) 13 bytes: shorter than an Ethernet header. */
static void drop_runt(void)
{
    bad_frame(13);
    put_desc(TXQ_DESC, 0, TXBUF, NET_HDR + 13, 0, 0);
}

/* (short) 8 bytes: not even the virtio_net_hdr. */
static void drop_short(void)
{
    bad_frame(0);
    put_desc(TXQ_DESC, 0, TXBUF, 8, 0, 0);
}

/* (mtu) mtu + 15 bytes, no GSO. */
static void drop_mtu(void)
{
    bad_frame(ETH_HLEN + MTU + 1);
    put_desc(TXQ_DESC, 0, TXBUF, NET_HDR + ETH_HLEN + MTU + 1, 0, 0);
}

/* (vlan-mtu) tagged, mtu + 19 bytes. */
static void drop_vlan_mtu(void)
{
    uint32_t len = ETH_HLEN + VLAN_HLEN + MTU + 1;
    bad_frame(len);
    put16be(TXBUF + NET_HDR + 12, ETH_P_8021Q);
    put_desc(TXQ_DESC, 0, TXBUF, NET_HDR + len, 0, 0);
}

/* (oversize) 70000 bytes of chain, past what the device reads at all. */
static void drop_oversize(void)
{
    bad_frame(100);
    put_desc(TXQ_DESC, 0, TXBUF, NET_HDR + 100, D_NEXT, 1);
    put_desc(TXQ_DESC, 1, SENTINEL, 70000 - NET_HDR - 100, 0, 0);
}

/* (data-valid) DATA_VALID, which a driver must not set (§5.1.6.2.1). */
static void drop_data_valid(void)
{
    bad_frame(100);
    hdr_put(TXBUF, HDR_F_DATA_VALID, GSO_NONE, 0, 0, 0, 0);
    put_desc(TXQ_DESC, 0, TXBUF, NET_HDR + 100, 0, 0);
}

/* A header asking for a checksum (and GSO) on a 1000-byte frame. */
static void offload_frame(uint8_t flags, uint8_t gso, uint16_t hdr_len, uint16_t gso_size, uint16_t csum_start)
{
    bad_frame(1000);
    hdr_put(TXBUF, flags, gso, hdr_len, gso_size, csum_start, 16);
    put_desc(TXQ_DESC, 0, TXBUF, NET_HDR + 1000, 0, 0);
}

/* (csum-unnegotiated) NEEDS_CSUM without VIRTIO_NET_F_CSUM. */
static void drop_csum_unnegotiated(void) { offload_frame(HDR_F_NEEDS_CSUM, GSO_NONE, 0, 0, 34); }
/* (csum-range) csum_start + csum_offset past the frame. */
static void drop_csum_range(void) { offload_frame(HDR_F_NEEDS_CSUM, GSO_NONE, 0, 0, 1000 - 16 - 1); }
/* (gso-unnegotiated) TCPv4 GSO without HOST_TSO4. */
static void drop_gso_unnegotiated(void) { offload_frame(HDR_F_NEEDS_CSUM, GSO_TCPV4, 54, 500, 34); }
/* (gso-udp) UFO, which is not offered. */
static void drop_gso_udp(void) { offload_frame(HDR_F_NEEDS_CSUM, GSO_UDP, 42, 500, 34); }
/* (gso-ecn) TCPv4 with the ECN bit, HOST_ECN not offered. */
static void drop_gso_ecn(void) { offload_frame(HDR_F_NEEDS_CSUM, GSO_TCPV4 | GSO_ECN, 54, 500, 34); }
/* (gso-no-csum) GSO without NEEDS_CSUM (§5.1.6.2.1). */
static void drop_gso_no_csum(void) { offload_frame(0, GSO_TCPV4, 54, 500, 0); }
/* (gso-size-zero) no MSS. */
static void drop_gso_size_zero(void) { offload_frame(HDR_F_NEEDS_CSUM, GSO_TCPV4, 54, 0, 34); }
/* (gso-size-mtu) an MSS over the MTU. */
static void drop_gso_size_mtu(void) { offload_frame(HDR_F_NEEDS_CSUM, GSO_TCPV4, 54, MTU + 1, 34); }
/* (gso-hdr-len) hdr_len past the frame's end. */
static void drop_gso_hdr_len(void) { offload_frame(HDR_F_NEEDS_CSUM, GSO_TCPV4, 1001, 500, 34); }

/* (tso-without-csum) a valid TCPv4 GSO frame, HOST_TSO4 accepted without CSUM,
 * which it requires (§5.1.3.1): the device takes it for neither, so the frame's
 * NEEDS_CSUM is one without CSUM. */
static void drop_tso_without_csum(void) { offload_frame(HDR_F_NEEDS_CSUM, GSO_TCPV4, 54, 500, 34); }

/* (gso-to-plain) a valid 3000-byte TCPv4 GSO frame: the device sends it, but the
 * peer has no GUEST_TSO4, so its device must drop it. */
static void drop_gso_to_plain(void)
{
    bad_frame(3000);
    hdr_put(TXBUF, HDR_F_NEEDS_CSUM, GSO_TCPV4, 54, 1000, 34, 16);
    put_desc(TXQ_DESC, 0, TXBUF, NET_HDR + 3000, 0, 0);
}

/* (writable) the frame, then a device-writable buffer (§5.1.6.2). */
static void drop_writable(void)
{
    bad_frame(100);
    put_desc(TXQ_DESC, 0, TXBUF, NET_HDR + 100, D_NEXT, 1);
    put_desc(TXQ_DESC, 1, SPARE, 256, D_WRITE, 0);
}

/* (spoof-source) the peer's own MAC as the source, broadcast: the switch refuses a
 * port's configured MAC from any other. */
static void drop_spoof_source(void)
{
    hdr_put(TXBUF, 0, GSO_NONE, 0, 0, 0, 0);
    bad_frame_at(TXBUF + NET_HDR, 100, broadcast, peer_mac);
    put_desc(TXQ_DESC, 0, TXBUF, NET_HDR + 100, 0, 0);
}

/* (group-source) a multicast source MAC. */
static void drop_group_source(void)
{
    static const uint8_t group[6] = { 0x01, 0x00, 0x5e, 0x00, 0x00, 0x01 };
    hdr_put(TXBUF, 0, GSO_NONE, 0, 0, 0, 0);
    bad_frame_at(TXBUF + NET_HDR, 100, NULL, group);
    put_desc(TXQ_DESC, 0, TXBUF, NET_HDR + 100, 0, 0);
}

/* (to-self) to my own MAC: nobody gets it, I least of all. */
static void drop_to_self(void)
{
    hdr_put(TXBUF, 0, GSO_NONE, 0, 0, 0, 0);
    bad_frame_at(TXBUF + NET_HDR, 100, my_mac, NULL);
    put_desc(TXQ_DESC, 0, TXBUF, NET_HDR + 100, 0, 0);
}

/* ---- the cases ---- */

/* PASSES, RING, RING_SETUP and DROP cases give a part to a common flow (run_*);
 * a CUSTOM case's fn is the whole case. */
enum case_kind { PASSES, RING, RING_SETUP, DROP, CUSTOM };

struct net_case {
    const char *name;
    enum case_kind kind;
    uint64_t features;                 /* besides VERSION_1 and MAC */
    void (*fn)(void);
    uint16_t tx_size;                  /* 0: QSIZE */
    uint64_t tx_desc, tx_avail, tx_used;   /* RING_SETUP: the rings given (see setup_rings) */
    const char *ok;                    /* the ok line's text */
};

#define CSUM_F (1ull << F_CSUM)
#define TSO_F  (1ull << F_CSUM | 1ull << F_HOST_TSO4)
#define IND_F  (1ull << F_INDIRECT)

static void features_refused(void);
static void rx_readable(void);
static void rx_hdr_split(void);
static void rx_too_small(void);
static void rx_loop(void);
static void rx_buf_outside_ram(void);
static void rx_buf_in_bar(void);

/* Where a RING_SETUP case puts the transmitq's rings; resolved at run time. */
#define AT_RAM_TOP   1
#define AT_BAR       2
#define AT_MISALIGNED 3
#define AT_OVERLAP   4

static const struct net_case cases[] = {
    { .name = "features-refused", .kind = CUSTOM, .fn = features_refused,
      .ok = "FEATURES_OK refused for a feature not offered and without VERSION_1" },
    { .name = "mtu-max", .kind = PASSES, .fn = shape_mtu_max, .ok = "delivered whole: 1514 bytes" },
    { .name = "vlan-max", .kind = PASSES, .fn = shape_vlan_max,
      .ok = "delivered whole: 1518 bytes with an 802.1Q tag" },
    { .name = "split", .kind = PASSES, .fn = shape_split, .ok = "delivered whole from four descriptors" },
    { .name = "hdr-split", .kind = PASSES, .fn = shape_hdr_split,
      .ok = "delivered whole, the header in two descriptors" },
    { .name = "indirect", .kind = PASSES, .features = IND_F, .fn = shape_indirect,
      .ok = "delivered whole through an indirect table" },
    { .name = "csum-fill", .kind = PASSES, .features = CSUM_F, .fn = shape_csum_fill,
      .ok = "delivered with the checksum filled in" },

    { .name = "loop", .kind = RING, .fn = submit_loop },
    { .name = "next-range", .kind = RING, .fn = submit_next_range },
    { .name = "head-range", .kind = RING, .fn = submit_head_range },
    { .name = "buf-outside-ram", .kind = RING, .fn = submit_buf_outside_ram },
    { .name = "buf-in-bar", .kind = RING, .fn = submit_buf_in_bar },
    { .name = "len-wrap", .kind = RING, .fn = submit_len_wrap },
    { .name = "chain-bytes", .kind = RING, .fn = submit_chain_bytes, .tx_size = QSIZE_BIG },
    { .name = "order", .kind = RING, .fn = submit_order },
    { .name = "avail-idx", .kind = RING, .fn = submit_avail_idx },
    { .name = "indirect-len", .kind = RING, .features = IND_F, .fn = submit_indirect_len },
    { .name = "indirect-next", .kind = RING, .features = IND_F, .fn = submit_indirect_next },
    { .name = "indirect-nested", .kind = RING, .features = IND_F, .fn = submit_indirect_nested },
    { .name = "indirect-range", .kind = RING, .features = IND_F, .fn = submit_indirect_range },
    { .name = "indirect-unnegotiated", .kind = RING, .fn = submit_indirect_unnegotiated },
    { .name = "ring-outside-ram", .kind = RING_SETUP, .fn = submit_ring_case, .tx_desc = AT_RAM_TOP },
    { .name = "ring-in-bar", .kind = RING_SETUP, .fn = submit_ring_case, .tx_used = AT_BAR },
    { .name = "ring-misaligned", .kind = RING_SETUP, .fn = submit_ring_case, .tx_used = AT_MISALIGNED },
    { .name = "ring-overlap", .kind = RING_SETUP, .fn = submit_ring_case, .tx_avail = AT_OVERLAP },

    { .name = "runt", .kind = DROP, .fn = drop_runt, .ok = "dropped: 13 bytes" },
    { .name = "short", .kind = DROP, .fn = drop_short, .ok = "dropped: 8 bytes, shorter than the header" },
    { .name = "mtu", .kind = DROP, .fn = drop_mtu, .ok = "dropped: 1515 bytes" },
    { .name = "vlan-mtu", .kind = DROP, .fn = drop_vlan_mtu, .ok = "dropped: 1519 bytes with an 802.1Q tag" },
    { .name = "oversize", .kind = DROP, .fn = drop_oversize, .ok = "dropped: a 70000-byte chain" },
    { .name = "data-valid", .kind = DROP, .fn = drop_data_valid, .ok = "dropped: DATA_VALID from the driver" },
    { .name = "csum-unnegotiated", .kind = DROP, .fn = drop_csum_unnegotiated,
      .ok = "dropped: NEEDS_CSUM without CSUM" },
    { .name = "csum-range", .kind = DROP, .features = CSUM_F, .fn = drop_csum_range,
      .ok = "dropped: the checksum field past the frame" },
    { .name = "gso-unnegotiated", .kind = DROP, .features = CSUM_F, .fn = drop_gso_unnegotiated,
      .ok = "dropped: TCPv4 GSO without HOST_TSO4" },
    { .name = "gso-udp", .kind = DROP, .features = TSO_F, .fn = drop_gso_udp, .ok = "dropped: gso_type UDP" },
    { .name = "gso-ecn", .kind = DROP, .features = TSO_F, .fn = drop_gso_ecn,
      .ok = "dropped: gso_type TCPv4 with ECN" },
    { .name = "gso-no-csum", .kind = DROP, .features = TSO_F, .fn = drop_gso_no_csum,
      .ok = "dropped: GSO without NEEDS_CSUM" },
    { .name = "gso-size-zero", .kind = DROP, .features = TSO_F, .fn = drop_gso_size_zero, .ok = "dropped: gso_size 0" },
    { .name = "gso-size-mtu", .kind = DROP, .features = TSO_F, .fn = drop_gso_size_mtu,
      .ok = "dropped: gso_size over the MTU" },
    { .name = "gso-hdr-len", .kind = DROP, .features = TSO_F, .fn = drop_gso_hdr_len,
      .ok = "dropped: hdr_len past the frame" },
    { .name = "tso-without-csum", .kind = DROP, .features = 1ull << F_HOST_TSO4, .fn = drop_tso_without_csum,
      .ok = "dropped: HOST_TSO4 accepted without CSUM counts as neither" },
    { .name = "gso-to-plain", .kind = DROP, .features = TSO_F, .fn = drop_gso_to_plain,
      .ok = "dropped at the peer, which has no GUEST_TSO4" },
    { .name = "writable", .kind = DROP, .fn = drop_writable, .ok = "dropped: a device-writable buffer in the chain" },
    { .name = "spoof-source", .kind = DROP, .fn = drop_spoof_source,
      .ok = "dropped by the switch: the peer's MAC as source" },
    { .name = "group-source", .kind = DROP, .fn = drop_group_source,
      .ok = "dropped by the switch: a multicast source" },
    { .name = "to-self", .kind = DROP, .fn = drop_to_self, .ok = "dropped by the switch: to my own MAC" },

    { .name = "rx-readable", .kind = CUSTOM, .fn = rx_readable, .ok = "a readable receive buffer completed unused" },
    { .name = "rx-hdr-split", .kind = CUSTOM, .fn = rx_hdr_split,
      .ok = "delivered whole, the header over twelve one-byte buffers" },
    { .name = "rx-too-small", .kind = CUSTOM, .fn = rx_too_small,
      .ok = "a frame too big for the buffer dropped, the buffer untouched" },
    { .name = "rx-loop", .kind = CUSTOM, .fn = rx_loop, .ok = "needs reset" },
    { .name = "rx-buf-outside-ram", .kind = CUSTOM, .fn = rx_buf_outside_ram, .ok = "needs reset" },
    { .name = "rx-buf-in-bar", .kind = CUSTOM, .fn = rx_buf_in_bar, .ok = "needs reset" },
};
#define N_CASES (sizeof cases / sizeof cases[0])

static struct net_setup case_setup(const struct net_case *c)
{
    struct net_setup s = { .features = c->features, .tx_size = c->tx_size ? c->tx_size : QSIZE, .rx_size = QSIZE };
    if (c->tx_desc == AT_RAM_TOP)
        s.tx_desc = ram_top;                            /* the descriptor table past RAM */
    if (c->tx_used == AT_BAR)
        s.tx_used = (uint64_t)virtio_bar + COMMON_STATUS;   /* the used ring on device_status */
    if (c->tx_used == AT_MISALIGNED)
        s.tx_used = TXQ_USED + 2;                       /* the used ring needs 4 */
    if (c->tx_avail == AT_OVERLAP)
        s.tx_avail = TXQ_DESC + 0x80;                   /* inside the descriptor table */
    return s;
}

/* A working device again after a reset: standard queues, buffers, one exchange. */
static void after_reset(void)
{
    if (case_failed)
        return;
    if (!net_init(&standard))
        return;
    rx_post(RXBUF, NRX);
    exchange();
}

/* A valid frame of some shape: delivered whole, the device ready, the ACK good. */
static void run_passes(const struct net_case *c)
{
    const struct net_setup s = case_setup(c);
    if (!net_init(&s))
        return;
    rx_post(RXBUF, NRX);
    c->fn();
    exchange_chain(0);
}

/* The transmitq broken: needs reset, nothing written, broken until reset, no frame
 * out; then a reset brings it back. */
static void run_ring(const struct net_case *c)
{
    const struct net_setup s = case_setup(c);
    if (!net_init(&s))
        return;
    uint8_t st = bar_r8(COMMON_STATUS);
    bool setup_case = c->kind == RING_SETUP;
    if (setup_case) {
        /* Enabling must already have broken the transmitq. */
        if (!(st & S_NEEDS_RESET))
            case_fail("enabling the queue left device_status at ", true, st, " (no DEVICE_NEEDS_RESET)");
    } else if (st != S_READY) {
        case_fail("device_status ", true, st, " after a clean initialisation");
    }
    if (case_failed)
        return;
    rx_post(RXBUF, NRX);
    c->fn();
    uint16_t used_before = vring_used_idx(&txq), rx_used_before = vring_used_idx(&rxq);
    arena_snapshot(&arena);
    vring_notify(&txq);
    if (!sentinels_ok())
        return;
    if (vring_used_idx(&txq) != used_before)
        case_fail("used->idx moved to ", true, vring_used_idx(&txq), " (the malformed chain was served)");
    else if (vring_used_idx(&rxq) != rx_used_before)
        case_fail("the receiveq's used->idx moved to ", true, vring_used_idx(&rxq), NULL);
    else if (!arena_unchanged(&arena, used_flags, 2))
        return;
    st = bar_r8(COMMON_STATUS);
    if (!(st & S_NEEDS_RESET))
        case_fail("device_status ", true, st, " after the submission: no DEVICE_NEEDS_RESET");
    else if ((st & ~S_NEEDS_RESET) != S_READY)
        case_fail("device_status ", true, st, " after the submission (the driver's bits changed)");
    /* §2.1.2: DEVICE_NEEDS_RESET set while DRIVER_OK is a configuration change
     * notification; without MSI-X that is ISR bit 1 (read-to-clear).  A ring
     * refused at queue_enable broke the device before DRIVER_OK. */
    uint8_t isr = bar_r8(ISR_OFF);
    if (!case_failed && !setup_case && !(isr & ISR_CONFIG))
        case_fail("no configuration change interrupt after DEVICE_NEEDS_RESET: ISR ", true, isr, NULL);
    if (case_failed)
        return;
    /* Broken until reset: a frame made available now does not go (it is BAD!, so
     * the peer would tell). */
    if (!setup_case) {
        for (unsigned i = 0; i < txq.size; i++)
            *mem16(TXQ_AVAIL + 4 + 2 * i) = 0;
        bad_frame(100);
        put_desc(TXQ_DESC, 0, TXBUF, NET_HDR + 100, 0, 0);
        vring_make_available(&txq, 0);
        arena_snapshot(&arena);
        vring_notify(&txq);
        if (vring_used_idx(&txq) != used_before)
            case_fail("the broken queue sent a frame: used->idx ", true, vring_used_idx(&txq), NULL);
        else if (!(bar_r8(COMMON_STATUS) & S_NEEDS_RESET))
            case_fail("DEVICE_NEEDS_RESET went away without a reset: device_status ", true,
                      bar_r8(COMMON_STATUS), NULL);
        else if (arena_unchanged(&arena, used_flags, 2))
            sentinels_ok();
        if (case_failed)
            return;
    }
    after_reset();
}

/* A frame to drop: completed with length 0, the device ready, nothing written but
 * the used ring; the exchange after it shows the peer did not get it. */
static void run_drop(const struct net_case *c)
{
    const struct net_setup s = case_setup(c);
    if (!net_init(&s))
        return;
    rx_post(RXBUF, NRX);
    c->fn();
    if (!tx_send(0, "the frame to drop", true))
        return;
    struct span used[2];
    used_rings(used);
    if (!arena_unchanged(&arena, used, 2) || !sentinels_ok())
        return;
    exchange();
}

/* ---- receive buffers ---- */

/* The receiveq with the buffers the case gives, not the standard ones. */
static bool rx_case_init(void)
{
    if (!net_init(&standard))
        return false;
    rx_base = RXBUF;
    rx_count = NRX;
    return true;
}

/* (features-refused) §3.1.1 step 5-6: FEATURES_OK does not stick for a feature the
 * device did not offer (CTRL_VQ) nor, §6.1, without VERSION_1; the device breaks
 * nothing and works after a reset. */
static void features_refused(void)
{
    static const struct { uint64_t accepted; const char *what; } refused[] = {
        { 1ull << F_VERSION_1 | 1ull << F_MAC | 1ull << F_CTRL_VQ, "CTRL_VQ, not offered" },
        { 1ull << F_MAC, "no VERSION_1" },
    };
    for (unsigned i = 0; i < sizeof refused / sizeof refused[0] && !case_failed; i++) {
        if (!virtio_reset())
            return;
        virtio_features_offered();
        bar_w32(COMMON_GFSELECT, 1);
        bar_w32(COMMON_GF, (uint32_t)(refused[i].accepted >> 32));
        bar_w32(COMMON_GFSELECT, 0);
        bar_w32(COMMON_GF, (uint32_t)refused[i].accepted);
        bar_w8(COMMON_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
        uint8_t st = bar_r8(COMMON_STATUS);
        if (st & S_FEATURES_OK) {
            case_fail("FEATURES_OK stuck with ", false, 0, refused[i].what);
            case_why_append(": device_status ");
            case_why_num(st);
        }
    }
    after_reset();
}

/* (rx-hdr-split) one receive chain of twelve one-byte buffers and the rest: the
 * device writes the header across the twelve (§2.7.4: any split is the driver's),
 * the frame after them, all in the order of the chain. */
static void rx_hdr_split(void)
{
    if (!rx_case_init())
        return;
    for (unsigned i = 0; i < NET_HDR; i++)
        put_desc(RXQ_DESC, i, RXBUF + i, 1, D_WRITE | D_NEXT, (uint16_t)(i + 1));
    put_desc(RXQ_DESC, NET_HDR, RXBUF + NET_HDR, RXBUF_LEN - NET_HDR, D_WRITE, 0);
    vring_make_available(&rxq, 0);
    rx_kick();
    data_frame(DATA_LEN, 0, false);
    put_desc(TXQ_DESC, 0, TXBUF, NET_HDR + DATA_LEN, 0, 0);
    if (!tx_send(0, "a valid DATA frame", true))
        return;
    /* Head 0, so the ACK is where buffer 0 of RXBUF would be. */
    if (await_ack(seq++, ACK_LEN) && bar_r8(COMMON_STATUS) != S_READY)
        case_fail("device_status ", true, bar_r8(COMMON_STATUS), " after the split header");
}

/* (rx-readable) a device-readable buffer first, a good one after it: the first is
 * completed with length 0, untouched, the ACK lands in the second. */
static void rx_readable(void)
{
    if (!rx_case_init())
        return;
    put_desc(RXQ_DESC, 0, RXBUF, RXBUF_LEN, 0, 0);
    put_desc(RXQ_DESC, 1, RXBUF + RXBUF_LEN, RXBUF_LEN, D_WRITE, 0);
    vring_make_available(&rxq, 0);
    vring_make_available(&rxq, 1);
    rx_kick();
    data_frame(DATA_LEN, 0, false);
    put_desc(TXQ_DESC, 0, TXBUF, NET_HDR + DATA_LEN, 0, 0);
    if (!tx_send(0, "a valid DATA frame", true))
        return;
    struct rx_entry e;
    uint64_t t0 = rdtsc();
    while (vring_used_idx(&rxq) == rx_seen && rdtsc() - t0 < ms_ticks(3000))
        __asm__ volatile("pause");
    if (!rx_take(&e)) {
        case_fail("no receive buffer used within 3 s of DATA seq ", true, seq, NULL);
        return;
    }
    if (e.id != 0 || e.len != 0) {
        case_fail("the first used receive element is id ", true, e.id, NULL);
        case_why_append(" len ");
        case_why_num(e.len);
        case_why_append(", expected the readable buffer, 0");
        return;
    }
    /* The ACK: published with it (one flush), in buffer 1. */
    if (!await_ack(seq++, ACK_LEN))
        return;
    if (bar_r8(COMMON_STATUS) != S_READY)
        case_fail("device_status ", true, bar_r8(COMMON_STATUS), " after a readable receive buffer");
    else
        sentinels_ok();
}

/* (rx-too-small) a 64-byte buffer alone: a 200-byte ACK does not fit and is
 * dropped, the buffer staying the driver's; a 40-byte one asked next lands in it. */
static void rx_too_small(void)
{
    if (!rx_case_init())
        return;
    put_desc(RXQ_DESC, 0, RXBUF, 64, D_WRITE, 0);
    vring_make_available(&rxq, 0);
    rx_kick();
    data_frame(DATA_LEN, 200, false);
    put_desc(TXQ_DESC, 0, TXBUF, NET_HDR + DATA_LEN, 0, 0);
    if (!tx_send(0, "a valid DATA frame", false))
        return;
    seq++;
    data_frame(DATA_LEN, 40, false);
    put_desc(TXQ_DESC, 0, TXBUF, NET_HDR + DATA_LEN, 0, 0);
    if (!tx_send(0, "a valid DATA frame", true))
        return;
    if (!await_ack(seq++, 40))
        return;
    if (rx_seen != 1)
        case_fail("receive buffers used: ", true, rx_seen, ", expected only the 40-byte ACK's");
    else if (bar_r8(COMMON_STATUS) != S_READY)
        case_fail("device_status ", true, bar_r8(COMMON_STATUS), " after a frame too big for the buffer");
    else
        sentinels_ok();
}

/* The receiveq's buffer set up to break it: a DATA frame asks the peer for an ACK,
 * which the device cannot place without breaking the queue.  It must set
 * DEVICE_NEEDS_RESET, send a configuration change interrupt, use no buffer, write
 * nothing; then a reset brings it back. */
static void rx_breaks(void)
{
    rx_kick();
    data_frame(DATA_LEN, 0, false);
    put_desc(TXQ_DESC, 0, TXBUF, NET_HDR + DATA_LEN, 0, 0);
    if (!tx_send(0, "a valid DATA frame", true))
        return;
    seq++;
    /* Each read of device_status is an exit, at which the device takes the frames
     * waiting for it. */
    uint64_t t0 = rdtsc();
    uint8_t st;
    struct span used[2];
    while (!((st = bar_r8(COMMON_STATUS)) & S_NEEDS_RESET) && rdtsc() - t0 < ms_ticks(3000))
        __asm__ volatile("pause");
    if (!sentinels_ok())
        return;
    if (!(st & S_NEEDS_RESET)) {
        case_fail("no DEVICE_NEEDS_RESET within 3 s of the ACK asked for: device_status ", true, st, NULL);
        return;
    }
    if (vring_used_idx(&rxq) != 0)
        case_fail("the receiveq's used->idx moved to ", true, vring_used_idx(&rxq), NULL);
    else if (used_rings(used), !arena_unchanged(&arena, used, 2))
        return;
    else if ((st & ~S_NEEDS_RESET) != S_READY)
        case_fail("device_status ", true, st, " (the driver's bits changed)");
    else if (!(bar_r8(ISR_OFF) & ISR_CONFIG))
        case_fail("no configuration change interrupt after DEVICE_NEEDS_RESET", false, 0, NULL);
    after_reset();
}

/* (rx-loop) a receive chain 0 -> 1 -> 0. */
static void rx_loop(void)
{
    if (!rx_case_init())
        return;
    put_desc(RXQ_DESC, 0, RXBUF, 64, D_WRITE | D_NEXT, 1);
    put_desc(RXQ_DESC, 1, RXBUF + RXBUF_LEN, 64, D_WRITE | D_NEXT, 0);
    vring_make_available(&rxq, 0);
    rx_breaks();
}

/* (rx-buf-outside-ram) a receive buffer straddling the end of RAM: its first 256
 * bytes are RAM (the tail sentinel), the rest is not. */
static void rx_buf_outside_ram(void)
{
    if (!rx_case_init())
        return;
    put_desc(RXQ_DESC, 0, ram_top - 256, RXBUF_LEN, D_WRITE, 0);
    vring_make_available(&rxq, 0);
    rx_breaks();
}

/* (rx-buf-in-bar) a receive buffer over the device's common configuration. */
static void rx_buf_in_bar(void)
{
    if (!rx_case_init())
        return;
    put_desc(RXQ_DESC, 0, virtio_bar, 256, D_WRITE, 0);
    vring_make_available(&rxq, 0);
    rx_breaks();
}

static void run_case(unsigned i)
{
    const struct net_case *c = &cases[i];
    case_begin();
    cases_run++;
    cur_case = i + 1;
    /* The device stopped first: nothing reads the rings while they are filled. */
    virtio_reset();
    arena_fill(&arena, cases_run);
    switch (c->kind) {
    case PASSES: run_passes(c); break;
    case RING: case RING_SETUP: run_ring(c); break;
    case DROP: run_drop(c); break;
    case CUSTOM: c->fn(); break;
    }
    case_result(c->name, c->kind == RING || c->kind == RING_SETUP ? "needs reset" : c->ok);
}

/* The peer's HELLO, then START until its START_ACK: the peer's MAC, and from then
 * on a quiet receiveq. */
static bool meet_peer(void)
{
    uint32_t wait_ms = cmdline_number(guest_mbi, "wait", 60000);
    struct rx_frame f;
    bool hello = false;
    uint64_t t0 = rdtsc();
    while (!hello && rdtsc() - t0 < ms_ticks(wait_ms)) {
        if (!rx_frame_take(&f)) {
            __asm__ volatile("pause");
            continue;
        }
        if (f.proto && f.kind == K_HELLO && f.sender == ROLE_PEER) {
            get_mac(f.at + 6, peer_mac);
            hello = true;
        }
        rx_give_back(f.id);
        rx_kick();
    }
    if (!hello) {
        gprintf("virtionet: FAILED no HELLO from the peer within %u ms\n", wait_ms);
        return false;
    }
    print_mac("the peer is", peer_mac);
    case_begin();
    if (!send_frame(peer_mac, K_START, 0, 0, 0, ACK_LEN)) {
        gprintf("virtionet: FAILED sending START: %s\n", case_why);
        return false;
    }
    /* HELLOs sent before the peer saw START come first. */
    while (rx_wait(&f, 3000)) {
        bool ack = f.proto && f.kind == K_START_ACK;
        rx_give_back(f.id);
        rx_kick();
        if (ack)
            return true;
    }
    gprintf("virtionet: FAILED no START_ACK from the peer within 3 s\n");
    return false;
}

static void role_bad(void)
{
    if (ram_top < 20u << 20) {
        gprintf("virtionet: FAILED the VM has %u KiB of RAM; the cases need 20 MiB\n", ram_top >> 10);
        fail("virtionet-bad", "too little RAM");
        return;
    }
    if (!net_start(QSIZE, QSIZE, RXBUF, NRX)) {
        fail("virtionet-bad", "no usable virtio-net device");
        return;
    }
    if (!meet_peer()) {
        fail("virtionet-bad", "the peer did not answer");
        return;
    }
    sentinel_fill(SENTINEL, SENTINEL_LEN);
    sentinel_fill(ram_top - TAIL_LEN, TAIL_LEN);
    case_begin();
    virtio_reset();
    arena_fill(&arena, 0);
    if (!net_init(&standard) || (rx_post(RXBUF, NRX), !exchange())) {
        gprintf("virtionet: FAILED the first exchange: %s\n", case_why);
        fail("virtionet-bad", "the device did not carry a first DATA frame and its ACK");
        return;
    }
    gprintf("INFO virtionet: %u cases\n", (unsigned)N_CASES);
    for (unsigned i = 0; i < N_CASES; i++)
        run_case(i);
    /* END until its END_ACK: how many DATA frames the peer got. */
    case_begin();
    bool ended = false;
    if (net_init(&standard)) {
        rx_post(RXBUF, NRX);
        if (send_frame(peer_mac, K_END, seq, seq, 0, ACK_LEN)) {
            struct rx_frame f;
            while (!ended && rx_wait(&f, 3000)) {
                if (f.proto && f.kind == K_END_ACK) {
                    ended = true;
                    gprintf("INFO virtionet: the peer got %u of %u DATA frames, %u problems\n", f.arg, seq, f.arg2);
                    if (f.arg != seq || f.arg2)
                        case_fail("the peer's count is off", false, 0, NULL);
                }
                rx_give_back(f.id);
            }
        }
    }
    if (!ended && !case_failed)
        case_fail("no END_ACK from the peer within 3 s", false, 0, NULL);
    if (case_failed)
        gprintf("virtionet: FAILED the END: %s\n", case_why);
    if (cases_failed || case_failed) {
        gprintf("virtionet: FAILED\n");
        fail("virtionet-bad", "%u of %u cases failed%s", cases_failed, cases_run, case_failed ? ", the END too" : "");
    } else {
        gprintf("virtionet: all %u cases ok\n", cases_run);
        pass("virtionet-bad");
    }
}

/* ======================================================================== */
/* role=flood, role=steady, role=sink                                       */
/* ======================================================================== */

/* HELLO from the sink: its MAC.  Then START to it. */
static bool meet_sink(uint8_t sink_mac[6])
{
    uint32_t wait_ms = cmdline_number(guest_mbi, "wait", 60000);
    struct rx_frame f;
    uint64_t t0 = rdtsc();
    bool hello = false;
    while (!hello && rdtsc() - t0 < ms_ticks(wait_ms)) {
        if (!rx_frame_take(&f)) {
            __asm__ volatile("pause");
            continue;
        }
        if (f.proto && f.kind == K_HELLO && f.sender == ROLE_SINK) {
            get_mac(f.at + 6, sink_mac);
            hello = true;
        }
        rx_give_back(f.id);
        rx_kick();
    }
    if (!hello) {
        gprintf("virtionet: FAILED no HELLO from the sink within %u ms\n", wait_ms);
        return false;
    }
    print_mac("the sink is", sink_mac);
    case_begin();
    if (!send_frame(sink_mac, K_START, 0, 0, 0, ACK_LEN)) {
        gprintf("virtionet: FAILED sending START: %s\n", case_why);
        return false;
    }
    return true;
}

/* Takes whatever arrived for a sender, giving the buffers back: the sink's STOP
 * sets *stop (when stop is not NULL), its END_ACK *end_ack, *got and *problems. */
static void sender_poll(bool *stop, bool *end_ack, uint32_t *got, uint32_t *problems)
{
    struct rx_frame f;
    bool any = false;
    while (rx_frame_take(&f)) {
        any = true;
        if (f.proto && f.sender == ROLE_SINK && f.kind == K_STOP && stop)
            *stop = true;
        if (f.proto && f.sender == ROLE_SINK && f.kind == K_END_ACK) {
            *end_ack = true;
            *got = f.arg;
            *problems = f.arg2;
        }
        rx_give_back(f.id);
    }
    if (any)
        rx_kick();
}

/* END (arg: frames sent) every 50 ms until the sink's END_ACK. */
static bool sender_end(const uint8_t sink_mac[6], uint32_t sent, uint32_t *got, uint32_t *problems)
{
    bool end_ack = false;
    uint64_t t0 = rdtsc(), last = 0;
    while (!end_ack && rdtsc() - t0 < ms_ticks(30000)) {
        if (!last || rdtsc() - last > ms_ticks(50)) {
            case_begin();
            if (!send_frame(sink_mac, K_END, sent, sent, 0, ACK_LEN))
                return false;
            last = rdtsc();
        }
        sender_poll(NULL, &end_ack, got, problems);
    }
    return end_ack;
}

static void role_flood(void)
{
    if (!net_start(128, QSIZE, RXBUF, NRX)) {
        fail("virtionet-flood", "no usable virtio-net device");
        return;
    }
    uint8_t sink_mac[6];
    if (!meet_sink(sink_mac)) {
        fail("virtionet-flood", "the sink did not answer");
        return;
    }
    uint32_t rounds = cmdline_number(guest_mbi, "rounds", 2000);
    /* FLOOD_BATCH frames, written once; each round rewrites only their seq. */
    for (uint32_t i = 0; i < FLOOD_BATCH; i++) {
        hdr_put(BULK + i * SLOT, 0, GSO_NONE, 0, 0, 0, 0);
        frame_put(BULK + i * SLOT + NET_HDR, sink_mac, K_DATA, 0, FLOOD_LEN, 0, FLOOD_LEN, false);
        put_desc(TXQ_DESC, i, BULK + i * SLOT, NET_HDR + FLOOD_LEN, 0, 0);
    }
    uint32_t sent = 0, r = 0, got = 0, problems = 0;
    bool stop = false, end_ack = false;
    case_begin();
    for (; r < rounds && !stop && !case_failed; r++) {
        for (uint32_t i = 0; i < FLOOD_BATCH; i++) {
            put32(BULK + i * SLOT + NET_HDR + P_SEQ, sent + i);
            vring_make_available(&txq, (uint16_t)i);
        }
        vring_notify(&txq);
        if (!vring_poll_used(&txq, txq.avail_idx))
            case_fail("a round not completed: used->idx ", true, vring_used_idx(&txq), NULL);
        sent += FLOOD_BATCH;
        sender_poll(&stop, &end_ack, &got, &problems);
    }
    if (case_failed) {
        gprintf("virtionet: flood: FAILED %s\n", case_why);
        fail("virtionet-flood", "the device stopped sending");
        return;
    }
    gprintf("INFO virtionet: flood: %s after %u rounds\n", stop ? "STOP" : "no STOP", r);
    if (!sender_end(sink_mac, sent, &got, &problems)) {
        gprintf("virtionet: flood: FAILED no END_ACK from the sink\n");
        fail("virtionet-flood", "the sink did not acknowledge END");
        return;
    }
    gprintf("virtionet: flood: sent %u frames in %u rounds, the sink got %u (%u dropped)\n", sent, r, got,
            sent - got);
    pass("virtionet-flood");
}

static void role_steady(void)
{
    if (!net_start(QSIZE, QSIZE, RXBUF, NRX)) {
        fail("virtionet-steady", "no usable virtio-net device");
        return;
    }
    uint8_t sink_mac[6];
    if (!meet_sink(sink_mac)) {
        fail("virtionet-steady", "the sink did not answer");
        return;
    }
    uint32_t frames = cmdline_number(guest_mbi, "frames", 50), gap = cmdline_number(guest_mbi, "gap", 5);
    uint32_t got = 0, problems = 0;
    bool end_ack = false;
    for (seq = 1; seq <= frames; seq++) {
        case_begin();
        if (!send_frame(sink_mac, K_DATA, seq, DATA_LEN, 0, DATA_LEN)) {
            gprintf("virtionet: steady: FAILED frame %u: %s\n", seq, case_why);
            fail("virtionet-steady", "the device stopped sending");
            return;
        }
        uint64_t t0 = rdtsc();
        while (rdtsc() - t0 < ms_ticks(gap))
            sender_poll(NULL, &end_ack, &got, &problems);
    }
    if (!sender_end(sink_mac, frames, &got, &problems)) {
        gprintf("virtionet: steady: FAILED no END_ACK from the sink\n");
        fail("virtionet-steady", "the sink did not acknowledge END");
        return;
    }
    gprintf("virtionet: steady: sent %u frames, the sink got %u%s\n", frames, got,
            problems ? " with problems" : ", in order");
    check(got == frames && !problems, "virtionet-steady", "the sink got %u of %u frames, %u problems", got, frames,
          problems);
}

static struct {
    uint8_t flood_mac[6], steady_mac[6];
    bool flood_met, steady_met, flood_done, steady_done;
    uint32_t steady_next, steady_got, steady_sent, steady_problems;
    uint32_t flood_got, flood_sent, flood_problems, flood_last;
    uint32_t strange;
} sink;

static void sink_frame(const struct rx_frame *f)
{
    uint32_t off;
    if (!f->at || !f->proto) {
        if (sink.strange++ < 4)
            gprintf("virtionet: sink: FAILED a frame not of the protocol: buffer %u, %u bytes\n", f->id, f->len);
        return;
    }
    if (f->sender == ROLE_STEADY) {
        if (f->kind == K_START) {
            get_mac(f->at + 6, sink.steady_mac);
            sink.steady_met = true;
        } else if (f->kind == K_DATA) {
            if (f->seq != sink.steady_next && sink.steady_problems++ < 4)
                gprintf("virtionet: sink: FAILED steady's frame %u arrived where %u was next\n", f->seq,
                        sink.steady_next);
            if ((f->len != DATA_LEN || !fill_ok(f, &off)) && sink.steady_problems++ < 4)
                gprintf("virtionet: sink: FAILED steady's frame %u arrived changed\n", f->seq);
            sink.steady_next = f->seq + 1;
            sink.steady_got++;
        } else if (f->kind == K_END) {
            sink.steady_sent = f->arg;
            sink.steady_done = true;
            case_begin();
            send_frame(sink.steady_mac, K_END_ACK, 0, sink.steady_got, sink.steady_problems, ACK_LEN);
        }
    } else if (f->sender == ROLE_FLOOD) {
        if (f->kind == K_START) {
            get_mac(f->at + 6, sink.flood_mac);
            sink.flood_met = true;
        } else if (f->kind == K_DATA) {
            /* Gaps are the switch's drops; going back is not. */
            if (sink.flood_got && f->seq <= sink.flood_last && sink.flood_problems++ < 4)
                gprintf("virtionet: sink: FAILED flood's frame %u arrived after %u\n", f->seq, sink.flood_last);
            if ((f->len != FLOOD_LEN || !fill_ok(f, &off)) && sink.flood_problems++ < 4)
                gprintf("virtionet: sink: FAILED flood's frame %u arrived changed\n", f->seq);
            sink.flood_last = f->seq;
            sink.flood_got++;
        } else if (f->kind == K_END && !sink.flood_done) {
            sink.flood_sent = f->arg;
            sink.flood_done = true;
            case_begin();
            send_frame(sink.flood_mac, K_END_ACK, 0, sink.flood_got, sink.flood_problems, ACK_LEN);
        }
    }
}

static void role_sink(void)
{
    if (!net_start(QSIZE, QSIZE_BIG, BULK, NRX_SINK)) {
        fail("virtionet-sink", "no usable virtio-net device");
        return;
    }
    uint32_t wait_ms = cmdline_number(guest_mbi, "wait", 60000);
    uint64_t t0 = rdtsc(), last_hello = 0, last_stop = 0;
    sink.steady_next = 1;                       /* steady counts from 1 */
    while (!(sink.flood_done && sink.steady_done)) {
        /* HELLO every 20 ms until both senders said START; STOP to flood every 50 ms
         * once steady has ended. */
        if (!(sink.flood_met && sink.steady_met) && (!last_hello || rdtsc() - last_hello > ms_ticks(20))) {
            case_begin();
            send_frame(broadcast, K_HELLO, 0, 0, 0, ACK_LEN);
            last_hello = rdtsc();
        }
        if (sink.steady_done && sink.flood_met && !sink.flood_done &&
            (!last_stop || rdtsc() - last_stop > ms_ticks(50))) {
            case_begin();
            send_frame(sink.flood_mac, K_STOP, 0, 0, 0, ACK_LEN);
            last_stop = rdtsc();
        }
        /* Drain what there is, a batch at a time (flood refills it meanwhile), give
         * the buffers back, one kick. */
        struct rx_frame f;
        unsigned n = 0;
        while (n < FLOOD_BATCH && rx_frame_take(&f)) {
            n++;
            sink_frame(&f);
            rx_give_back(f.id);
        }
        if (n)
            rx_kick();
        if (rdtsc() - t0 > ms_ticks(wait_ms)) {
            gprintf("virtionet: sink: FAILED not done after %u ms\n", wait_ms);
            break;
        }
    }
    bool steady_ok = sink.steady_done && sink.steady_got == sink.steady_sent && !sink.steady_problems;
    if (steady_ok)
        gprintf("virtionet: case steady: ok (%u of %u frames, in order)\n", sink.steady_got, sink.steady_sent);
    else
        gprintf("virtionet: case steady: FAILED %u of %u frames arrived, %u problems%s\n", sink.steady_got,
                sink.steady_sent, sink.steady_problems, sink.steady_done ? "" : ", no END");
    bool flood_ok = sink.flood_done && sink.flood_got <= sink.flood_sent && !sink.flood_problems;
    if (flood_ok)
        gprintf("virtionet: case flood: ok (%u of %u frames arrived, %u dropped)\n", sink.flood_got,
                sink.flood_sent, sink.flood_sent - sink.flood_got);
    else
        gprintf("virtionet: case flood: FAILED %u of %u frames arrived, %u problems%s\n", sink.flood_got,
                sink.flood_sent, sink.flood_problems, sink.flood_done ? "" : ", no END");
    check(steady_ok && flood_ok && !sink.strange, "virtionet-sink", "steady %s, flood %s, %u strange frames",
          steady_ok ? "ok" : "failed", flood_ok ? "ok" : "failed", sink.strange);
}

/* ======================================================================== */

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic;
    char word[16];
    cmdline_string(mbi, "role", word, sizeof word);
    for (unsigned r = ROLE_BAD; r <= ROLE_SINK; r++)
        if (str_is(word, role_names[r]))
            role = (enum role)r;
    static char name[32] = "virtionet-";
    memcpy(name + 10, word, strlen(word) + 1);
    guest_name = role ? name : "virtionet";
    ram_top = mb1_ram_top(mbi);
    tsc_init();
    switch (role) {
    case ROLE_BAD: role_bad(); break;
    case ROLE_PEER: role_peer(); break;
    case ROLE_FLOOD: role_flood(); break;
    case ROLE_STEADY: role_steady(); break;
    case ROLE_SINK: role_sink(); break;
    case ROLE_NONE:
        gprintf("virtionet: FAILED role=%s: the roles are bad, peer, flood, steady and sink\n", word);
        fail("virtionet", "no role");
        break;
    }
}
