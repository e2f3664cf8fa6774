/* The virtio-net device engine (vmm/virtio/net.c) over the real virtqueue engine
 * and a fake guest RAM whose two rings (receiveq, transmitq) the test lays out
 * itself: frames out of the guest however it splits header and frame, every
 * header a hostile driver can send (each dropped for its own reason, its chain
 * completed, the device working on), frames into single and merged receive
 * buffers, buffers running out part way, checksums completed for a driver that
 * cannot take partial ones (against packets checksummed independently), and
 * interrupt suppression. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "vmm/virtio/guest_mem.c"
#include "vmm/virtio/virtqueue.c"
#include "vmm/virtio/net.c"

#define RAM_SIZE  (1u << 20)
#define QSIZE     VNET_QUEUE_MAX
#define DATA      0x10000ull

#define F(bit)        (1ull << (bit))
#define F_CSUM        F(VIRTIO_NET_F_CSUM)
#define F_GUEST_CSUM  F(VIRTIO_NET_F_GUEST_CSUM)
#define F_GUEST_TSO4  F(VIRTIO_NET_F_GUEST_TSO4)
#define F_GUEST_TSO6  F(VIRTIO_NET_F_GUEST_TSO6)
#define F_HOST_TSO4   F(VIRTIO_NET_F_HOST_TSO4)
#define F_HOST_TSO6   F(VIRTIO_NET_F_HOST_TSO6)
#define F_MRG         F(VIRTIO_NET_F_MRG_RXBUF)

static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
static uint8_t *ram;
static struct gmem g;
static struct vnet net;

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
    uint16_t size;
    uint16_t avail_idx;
    unsigned next_desc;         /* free-running; a test never has size outstanding */
    uint64_t head_gpa[QSIZE];   /* each chain's first buffer, by head */
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
    wr16(d->avail + 4 + 2 * (d->avail_idx % d->size), head);
    d->avail_idx++;
    wr16(d->avail + 2, d->avail_idx);
}

/* Lays out a chain of n buffers and makes it available; returns its head. */
static uint16_t offer(struct drv *d, const struct buf *b, unsigned n)
{
    uint16_t head = (uint16_t)(d->next_desc % d->size);
    for (unsigned i = 0; i < n; i++) {
        uint16_t at = (uint16_t)(d->next_desc % d->size);
        put_desc(d->desc + 16ull * at, &b[i], i + 1 < n, (uint16_t)((d->next_desc + 1) % d->size));
        d->next_desc++;
    }
    d->head_gpa[head] = b[0].gpa;
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
static uint32_t used_id(const struct drv *d, unsigned i) { return rd32(d->used + 4 + 8 * (i % d->size)); }
static uint32_t used_len(const struct drv *d, unsigned i) { return rd32(d->used + 4 + 8 * (i % d->size) + 4); }
static uint64_t used_event_gpa(const struct drv *d) { return d->avail + 4 + 2ull * d->size; }
static uint64_t avail_event_gpa(const struct drv *d) { return d->used + 4 + 8ull * d->size; }

static void set_queue_size(struct drv *d, uint16_t size, uint64_t features)
{
    /* A driver setting a queue up starts from zeroed rings. */
    memset(ram + d->desc, 0, VQ_DESC_TABLE_BYTES(QSIZE));
    memset(ram + d->avail, 0, VQ_AVAIL_BYTES(QSIZE));
    memset(ram + d->used, 0, VQ_USED_BYTES(QSIZE));
    vq_reset(&d->q);
    vq_set_features(&d->q, features);
    assert_int_equal(vq_set_addrs(&d->q, &g, size, d->desc, d->avail, d->used), VQ_OK);
    d->size = size;
    d->avail_idx = 0;
    d->next_desc = 0;
}

static void set_queue(struct drv *d, uint64_t features)
{
    set_queue_size(d, QSIZE, features);
}

/* struct virtio_net_hdr as the guest lays it out (§5.1.6). */
static void put_hdr(uint8_t *p, const struct vnet_hdr *h)
{
    p[0] = h->flags;
    p[1] = h->gso_type;
    memcpy(p + 2, &h->hdr_len, 2);
    memcpy(p + 4, &h->gso_size, 2);
    memcpy(p + 6, &h->csum_start, 2);
    memcpy(p + 8, &h->csum_offset, 2);
    memcpy(p + 10, &h->num_buffers, 2);
}

static struct vnet_hdr get_hdr(const uint8_t *p)
{
    struct vnet_hdr h = { .flags = p[0], .gso_type = p[1] };
    memcpy(&h.hdr_len, p + 2, 2);
    memcpy(&h.gso_size, p + 4, 2);
    memcpy(&h.csum_start, p + 6, 2);
    memcpy(&h.csum_offset, p + 8, 2);
    memcpy(&h.num_buffers, p + 10, 2);
    return h;
}

/* An Ethernet frame of len bytes: broadcast destination, the device's source,
 * the given ethertype, then a pattern from seed. */
static void make_frame(uint8_t *f, size_t len, uint16_t ethertype, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        f[i] = (uint8_t)(seed + i * 7 + (i >> 8));
    if (len >= 14) {
        memset(f, 0xff, 6);
        memcpy(f + 6, mac, 6);
        f[12] = (uint8_t)(ethertype >> 8);
        f[13] = (uint8_t)ethertype;
    }
}

/* ---- the host side --------------------------------------------------------------- */

#define SENT_MAX 128
static struct {
    struct vnet_hdr h;
    size_t len;
    size_t at;
} sent[SENT_MAX];
static unsigned n_sent;
static uint8_t sink[1u << 20];
static size_t sink_len;

static void out_fn(void *ctx, const struct vnet_hdr *h, const uint8_t *frame, size_t len)
{
    assert_ptr_equal(ctx, sink);
    assert_true(len >= VNET_ETH_HLEN && len <= VNET_FRAME_MAX - VNET_HDR_BYTES);
    assert_true(n_sent < SENT_MAX && sink_len + len <= sizeof sink);
    sent[n_sent].h = *h;
    sent[n_sent].len = len;
    sent[n_sent].at = sink_len;
    memcpy(sink + sink_len, frame, len);
    sink_len += len;
    n_sent++;
}

static bool run_tx(enum vq_error want_err, bool want_more)
{
    enum vq_error e = VQ_ERR_NOT_READY;
    bool more = !want_more;
    bool notify = vnet_tx(&net, &txd.q, &g, out_fn, sink, &more, &e);
    assert_int_equal(e, want_err);
    assert_int_equal(more, want_more);
    return notify;
}

static enum vnet_rx_result rx(const struct vnet_hdr *h, const uint8_t *f, size_t len, enum vq_error want_err)
{
    enum vq_error e = VQ_ERR_SIZE;
    enum vnet_rx_result r = vnet_rx(&net, &rxd.q, &g, h, f, len, &e);
    assert_int_equal(e, want_err);
    return r;
}

static bool flush(void)
{
    enum vq_error e = VQ_ERR_SIZE;
    bool irq = vnet_rx_flush(&net, &rxd.q, &g, &e);
    assert_int_equal(e, VQ_OK);
    return irq;
}

/* The frame the driver got, from used entry first on, each chain one buffer:
 * header, frame bytes (into out), and how many used entries it spans. */
static size_t gather_rx(unsigned first, struct vnet_hdr *h, uint8_t *out)
{
    uint32_t len0 = used_len(&rxd, first);
    assert_true(len0 >= VNET_HDR_BYTES);
    *h = get_hdr(ram + rxd.head_gpa[used_id(&rxd, first)]);
    size_t n = 0;
    for (unsigned k = 0; k < h->num_buffers; k++) {
        uint32_t id = used_id(&rxd, first + k), len = used_len(&rxd, first + k);
        uint32_t skip = k == 0 ? VNET_HDR_BYTES : 0;
        memcpy(out + n, ram + rxd.head_gpa[id] + skip, len - skip);
        n += len - skip;
    }
    return n;
}

static uint64_t drops(const uint64_t *counters)
{
    uint64_t t = 0;
    for (unsigned i = 0; i < VNET_DROP_COUNT; i++)
        t += counters[i];
    return t;
}

static uint8_t frame[VNET_FRAME_MAX];
static uint8_t got[VNET_FRAME_MAX];

/* A TCPv4 GSO header as Linux sends one: partial checksum at 34 + 16. */
static const struct vnet_hdr tso4 = {
    .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
    .hdr_len = 66, .gso_size = 1448, .csum_start = 34, .csum_offset = 16,
};

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
    assert_true(vnet_init(&net, mac, 1500));
    n_sent = 0;
    sink_len = 0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(ram);
    return 0;
}

/* ---- features and config ---------------------------------------------------------- */

static void test_features_offered_and_negotiated(void **state)
{
    (void)state;
    assert_int_equal(vnet_features(), F_CSUM | F_GUEST_CSUM | F(VIRTIO_NET_F_MTU) | F(VIRTIO_NET_F_MAC) |
                                          F_GUEST_TSO4 | F_GUEST_TSO6 | F_HOST_TSO4 | F_HOST_TSO6 | F_MRG |
                                          F(VIRTIO_NET_F_STATUS));
    /* Only offered bits are kept (VERSION_1 and the ring features are the
     * transport's and the queue engine's). */
    vnet_set_features(&net, ~0ull);
    assert_int_equal(net.features, vnet_features());
    vnet_set_features(&net, F(VIRTIO_NET_F_MQ) | F(VIRTIO_NET_F_CTRL_VQ) | F(32) | F_MRG);     /* 32: VERSION_1 */
    assert_int_equal(net.features, F_MRG);
    /* §5.1.3.1: TSO without its CSUM counts as not negotiated. */
    vnet_set_features(&net, F_HOST_TSO4 | F_HOST_TSO6 | F_GUEST_TSO4 | F_GUEST_TSO6 | F_GUEST_CSUM);
    assert_int_equal(net.features, F_GUEST_TSO4 | F_GUEST_TSO6 | F_GUEST_CSUM);
    vnet_set_features(&net, F_HOST_TSO4 | F_GUEST_TSO4 | F_CSUM);
    assert_int_equal(net.features, F_HOST_TSO4 | F_CSUM);
}

static void test_config_bytes_fixed_whatever_negotiated(void **state)
{
    (void)state;
    assert_true(vnet_init(&net, mac, 9000));
    uint8_t c[VNET_CONFIG_BYTES + 4];
    const uint8_t want[VNET_CONFIG_BYTES] = {
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56,     /* mac (F_MAC) */
        0x01, 0x00,                             /* status: LINK_UP (F_STATUS) */
        0x01, 0x00,                             /* max_virtqueue_pairs: 1 */
        0x28, 0x23,                             /* mtu 9000 (F_MTU) */
    };
    /* §5.1.4.1: mtu "MUST NOT" change once set; nothing here depends on what a
     * driver accepts. */
    const uint64_t subsets[] = { 0, vnet_features(), F(VIRTIO_NET_F_MAC), F_MRG | F_GUEST_CSUM };
    for (unsigned k = 0; k < 4; k++) {
        vnet_set_features(&net, subsets[k]);
        memset(c, 0xee, sizeof c);
        assert_int_equal(vnet_config(&net, c, sizeof c), VNET_CONFIG_BYTES);
        assert_memory_equal(c, want, VNET_CONFIG_BYTES);
        assert_int_equal(c[VNET_CONFIG_BYTES], 0xee);   /* nothing past the struct */
    }
    memset(c, 0xee, sizeof c);
    assert_int_equal(vnet_config(&net, c, 7), 7);
    assert_memory_equal(c, want, 7);
    assert_int_equal(c[7], 0xee);
    assert_int_equal(vnet_config(&net, c, 0), 0);

    /* MTU: default 1500, §5.1.4.1's 68..65535. */
    assert_true(vnet_init(&net, mac, 0));
    vnet_config(&net, c, sizeof c);
    assert_int_equal(c[VNET_CFG_MTU] | c[VNET_CFG_MTU + 1] << 8, 1500);
    assert_true(vnet_init(&net, mac, 68));
    assert_true(vnet_init(&net, mac, 65535));
    vnet_config(&net, c, sizeof c);
    assert_int_equal(c[VNET_CFG_MTU] | c[VNET_CFG_MTU + 1] << 8, 65535);
    assert_false(vnet_init(&net, mac, 67));
    assert_false(vnet_init(&net, mac, 65536));
}

static void test_drop_names(void **state)
{
    (void)state;
    for (int a = 0; a < VNET_DROP_COUNT; a++) {
        assert_string_not_equal(vnet_drop_name(a), "unknown");
        for (int b = 0; b < a; b++)
            assert_string_not_equal(vnet_drop_name(a), vnet_drop_name(b));
    }
    assert_string_equal(vnet_drop_name(VNET_DROP_COUNT), "unknown");
}

/* ---- transmitq ------------------------------------------------------------------ */

static void test_tx_header_in_its_own_buffer(void **state)
{
    (void)state;
    /* Header alone, then the frame in two buffers apart in memory. */
    struct vnet_hdr h = { 0 };
    put_hdr(ram + DATA, &h);
    make_frame(frame, 1000, 0x0800, 1);
    memcpy(ram + DATA + 0x1000, frame, 600);
    memcpy(ram + DATA + 0x100, frame + 600, 400);
    struct buf b[] = { { DATA, 12, false }, { DATA + 0x1000, 600, false }, { DATA + 0x100, 400, false } };
    uint16_t head = offer(&txd, b, 3);
    uint64_t pub = txd.q.stats.publishes;
    assert_true(run_tx(VQ_EMPTY, false));
    assert_int_equal(txd.q.stats.publishes - pub, 1);
    assert_int_equal(n_sent, 1);
    assert_int_equal(sent[0].len, 1000);
    assert_memory_equal(sink, frame, 1000);
    assert_int_equal(sent[0].h.flags, 0);
    assert_int_equal(sent[0].h.gso_type, VIRTIO_NET_HDR_GSO_NONE);
    assert_int_equal(used_idx(&txd), 1);
    assert_int_equal(used_id(&txd, 0), head);
    assert_int_equal(used_len(&txd, 0), 0);             /* nothing written */
    assert_int_equal(net.stats.tx_frames, 1);
    assert_int_equal(net.stats.tx_bytes, 1000);
    assert_int_equal(used_flags(&txd), 0);              /* kicks back on after the drain */
    /* Nothing more: no publish, no interrupt. */
    assert_false(run_tx(VQ_EMPTY, false));
    assert_int_equal(n_sent, 1);
}

static void test_tx_header_shares_a_buffer(void **state)
{
    (void)state;
    vnet_set_features(&net, F_CSUM | F_HOST_TSO4);
    /* Header and frame in one buffer. */
    make_frame(frame, 60, 0x0800, 2);
    put_hdr(ram + DATA, &(struct vnet_hdr){ 0 });
    memcpy(ram + DATA + 12, frame, 60);
    offer1(&txd, DATA, 72, false);
    /* A GSO frame whose header spans two buffers, the second holding the rest
     * of the header and the start of the frame. */
    uint8_t hb[12];
    put_hdr(hb, &tso4);
    make_frame(frame + 100, 5000, 0x0800, 3);
    memcpy(ram + DATA + 0x1000, hb, 5);
    memcpy(ram + DATA + 0x2000, hb + 5, 7);
    memcpy(ram + DATA + 0x2000 + 7, frame + 100, 5000);
    struct buf b[] = { { DATA + 0x1000, 5, false }, { DATA + 0x2000, 7 + 5000, false } };
    offer(&txd, b, 2);
    assert_true(run_tx(VQ_EMPTY, false));
    assert_int_equal(n_sent, 2);
    assert_int_equal(sent[0].len, 60);
    assert_memory_equal(sink, frame, 60);
    assert_int_equal(sent[1].len, 5000);
    assert_memory_equal(sink + sent[1].at, frame + 100, 5000);
    assert_memory_equal(&sent[1].h, &tso4, sizeof tso4);
    assert_int_equal(drops(net.stats.tx_drop), 0);
}

/* What out_fn gets is the header cleaned of fields the frame does not use, and
 * of flag bits the device does not know (§5.1.6.2.2: "MUST ignore"). */
static void test_tx_header_passed_clean(void **state)
{
    (void)state;
    vnet_set_features(&net, F_CSUM);
    struct vnet_hdr h = { .flags = 0x10, .hdr_len = 77, .gso_size = 99, .csum_start = 5, .csum_offset = 6,
                          .num_buffers = 3 };
    put_hdr(ram + DATA, &h);
    make_frame(ram + DATA + 12, 100, 0x0800, 4);
    offer1(&txd, DATA, 112, false);
    h.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM | 0x80;
    put_hdr(ram + DATA + 0x1000, &h);
    make_frame(ram + DATA + 0x1000 + 12, 100, 0x0800, 4);
    offer1(&txd, DATA + 0x1000, 112, false);
    assert_true(run_tx(VQ_EMPTY, false));
    assert_int_equal(n_sent, 2);
    struct vnet_hdr zero = { 0 };
    assert_memory_equal(&sent[0].h, &zero, sizeof zero);
    struct vnet_hdr csum = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 5, .csum_offset = 6 };
    assert_memory_equal(&sent[1].h, &csum, sizeof csum);
}

struct tx_case {
    const char *what;
    uint64_t features;
    struct vnet_hdr h;
    size_t len;
    uint16_t ethertype;
    int why;                    /* -1: sent */
};

#define NEEDS VIRTIO_NET_HDR_F_NEEDS_CSUM
static const struct tx_case tx_cases[] = {
    { "runt", 0, { 0 }, 13, 0x0800, VNET_DROP_RUNT },
    { "just an Ethernet header", 0, { 0 }, 14, 0x0800, -1 },
    { "over mtu + 14", 0, { 0 }, 1515, 0x0800, VNET_DROP_MTU },
    { "mtu + 14", 0, { 0 }, 1514, 0x0800, -1 },
    { "802.1Q: mtu + 18", 0, { 0 }, 1518, 0x8100, -1 },
    { "802.1Q: over mtu + 18", 0, { 0 }, 1519, 0x8100, VNET_DROP_MTU },
    { "DATA_VALID", F_CSUM, { .flags = VIRTIO_NET_HDR_F_DATA_VALID }, 100, 0x0800, VNET_DROP_FLAGS },
    { "RSC_INFO", F_CSUM, { .flags = VIRTIO_NET_HDR_F_RSC_INFO }, 100, 0x0800, VNET_DROP_FLAGS },
    { "NEEDS_CSUM without CSUM", 0, { .flags = NEEDS, .csum_start = 34, .csum_offset = 6 }, 100, 0x0800,
      VNET_DROP_CSUM_FEATURE },
    { "checksum field past the end", F_CSUM, { .flags = NEEDS, .csum_start = 90, .csum_offset = 9 }, 100, 0x0800,
      VNET_DROP_CSUM_RANGE },
    { "checksum field at the end", F_CSUM, { .flags = NEEDS, .csum_start = 90, .csum_offset = 8 }, 100, 0x0800,
      -1 },
    { "checksum offsets wrapping 16 bits", F_CSUM, { .flags = NEEDS, .csum_start = 0xffff, .csum_offset = 3 },
      100, 0x0800, VNET_DROP_CSUM_RANGE },
    { "GSO UDP", F_CSUM | F_HOST_TSO4 | F_HOST_TSO6,
      { .flags = NEEDS, .gso_type = VIRTIO_NET_HDR_GSO_UDP, .gso_size = 1400, .csum_start = 34, .csum_offset = 6 },
      4000, 0x0800, VNET_DROP_GSO_TYPE },
    { "GSO with ECN", F_CSUM | F_HOST_TSO4,
      { .flags = NEEDS, .gso_type = VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN, .gso_size = 1448,
        .csum_start = 34, .csum_offset = 16 }, 4000, 0x0800, VNET_DROP_GSO_TYPE },
    { "TCPV4 without HOST_TSO4", F_CSUM | F_HOST_TSO6,
      { .flags = NEEDS, .gso_type = VIRTIO_NET_HDR_GSO_TCPV4, .gso_size = 1448, .csum_start = 34,
        .csum_offset = 16 }, 4000, 0x0800, VNET_DROP_GSO_FEATURE },
    { "TCPV6 without HOST_TSO6", F_CSUM | F_HOST_TSO4,
      { .flags = NEEDS, .gso_type = VIRTIO_NET_HDR_GSO_TCPV6, .gso_size = 1428, .csum_start = 54,
        .csum_offset = 16 }, 4000, 0x86dd, VNET_DROP_GSO_FEATURE },
    { "TCPV6", F_CSUM | F_HOST_TSO6,
      { .flags = NEEDS, .gso_type = VIRTIO_NET_HDR_GSO_TCPV6, .gso_size = 1428, .csum_start = 54,
        .csum_offset = 16 }, 4000, 0x86dd, -1 },
    { "GSO without NEEDS_CSUM", F_CSUM | F_HOST_TSO4,
      { .gso_type = VIRTIO_NET_HDR_GSO_TCPV4, .gso_size = 1448 }, 4000, 0x0800, VNET_DROP_GSO_CSUM },
    { "gso_size 0", F_CSUM | F_HOST_TSO4,
      { .flags = NEEDS, .gso_type = VIRTIO_NET_HDR_GSO_TCPV4, .csum_start = 34, .csum_offset = 16 }, 4000,
      0x0800, VNET_DROP_GSO_SIZE },
    { "gso_size over mtu", F_CSUM | F_HOST_TSO4,
      { .flags = NEEDS, .gso_type = VIRTIO_NET_HDR_GSO_TCPV4, .gso_size = 1501, .csum_start = 34,
        .csum_offset = 16 }, 4000, 0x0800, VNET_DROP_GSO_SIZE },
    { "gso_size mtu", F_CSUM | F_HOST_TSO4,
      { .flags = NEEDS, .gso_type = VIRTIO_NET_HDR_GSO_TCPV4, .gso_size = 1500, .csum_start = 34,
        .csum_offset = 16 }, 4000, 0x0800, -1 },
    { "hdr_len past the end", F_CSUM | F_HOST_TSO4,
      { .flags = NEEDS, .gso_type = VIRTIO_NET_HDR_GSO_TCPV4, .gso_size = 1448, .hdr_len = 4001,
        .csum_start = 34, .csum_offset = 16 }, 4000, 0x0800, VNET_DROP_HDR_LEN },
    { "hdr_len the whole frame", F_CSUM | F_HOST_TSO4,
      { .flags = NEEDS, .gso_type = VIRTIO_NET_HDR_GSO_TCPV4, .gso_size = 1448, .hdr_len = 4000,
        .csum_start = 34, .csum_offset = 16 }, 4000, 0x0800, -1 },
    { "GSO of 64 KiB", F_CSUM | F_HOST_TSO4,
      { .flags = NEEDS, .gso_type = VIRTIO_NET_HDR_GSO_TCPV4, .gso_size = 1448, .hdr_len = 66,
        .csum_start = 34, .csum_offset = 16 }, 65536, 0x0800, -1 },
};

/* Each bad header is dropped for its own reason and its chain completed; the
 * good frame behind it still goes out. */
static void test_tx_each_drop_counted(void **state)
{
    (void)state;
    for (unsigned k = 0; k < sizeof tx_cases / sizeof tx_cases[0]; k++) {
        const struct tx_case *c = &tx_cases[k];
        print_message("  %s\n", c->what);
        assert_true(vnet_init(&net, mac, 1500));
        vnet_set_features(&net, c->features);
        set_queue(&txd, 0);
        n_sent = 0;
        sink_len = 0;
        put_hdr(ram + DATA, &c->h);
        make_frame(frame, c->len, c->ethertype, k);
        memcpy(ram + DATA + 12, frame, c->len);
        uint16_t head = offer1(&txd, DATA, (uint32_t)(12 + c->len), false);
        put_hdr(ram + DATA + 0x20000, &(struct vnet_hdr){ 0 });
        make_frame(ram + DATA + 0x20000 + 12, 60, 0x0800, 9);
        offer1(&txd, DATA + 0x20000, 72, false);
        assert_true(run_tx(VQ_EMPTY, false));
        assert_int_equal(used_idx(&txd), 2);
        assert_int_equal(used_id(&txd, 0), head);
        assert_int_equal(used_len(&txd, 0), 0);
        assert_int_equal(used_len(&txd, 1), 0);
        assert_false(txd.q.broken);
        if (c->why < 0) {
            assert_int_equal(drops(net.stats.tx_drop), 0);
            assert_int_equal(n_sent, 2);
            assert_int_equal(sent[0].len, c->len);
            assert_memory_equal(sink, frame, c->len);
        } else {
            assert_int_equal(net.stats.tx_drop[c->why], 1);
            assert_int_equal(drops(net.stats.tx_drop), 1);
            assert_int_equal(n_sent, 1);
            assert_int_equal(sent[0].len, 60);
        }
    }
}

/* The chain's shape alone: a writable buffer, fewer bytes than the header, more
 * than VNET_FRAME_MAX. */
static void test_tx_bad_chains_completed(void **state)
{
    (void)state;
    put_hdr(ram + DATA, &(struct vnet_hdr){ 0 });
    make_frame(ram + DATA + 12, 40000, 0x0800, 5);
    memset(ram + DATA + 0x30000, 0xcc, 64);
    struct buf writable[] = { { DATA, 72, false }, { DATA + 0x30000, 64, true } };
    offer(&txd, writable, 2);
    offer1(&txd, DATA, 11, false);
    /* 12 + 65537 bytes, the buffers overlapping (as good as any). */
    struct buf big[] = { { DATA, 40000, false }, { DATA, 65549 - 40000, false } };
    offer(&txd, big, 2);
    /* Far over: a copy without the check would overrun the engine's buffer
     * (and the object: ASan). */
    struct buf huge[] = { { DATA, 60000, false }, { DATA, 60000, false } };
    offer(&txd, huge, 2);
    /* Exactly VNET_FRAME_MAX passes the size check (and then the MTU one fails:
     * non-GSO), so OVERSIZE is about the chain's length only. */
    struct buf max[] = { { DATA, 40000, false }, { DATA, VNET_FRAME_MAX - 40000, false } };
    offer(&txd, max, 2);
    offer1(&txd, DATA, 72, false);
    assert_true(run_tx(VQ_EMPTY, false));
    assert_int_equal(used_idx(&txd), 6);
    for (unsigned i = 0; i < 6; i++)
        assert_int_equal(used_len(&txd, i), 0);
    for (unsigned i = 0; i < 64; i++)
        assert_int_equal(ram[DATA + 0x30000 + i], 0xcc);    /* never written */
    assert_int_equal(net.stats.tx_drop[VNET_DROP_WRITABLE], 1);
    assert_int_equal(net.stats.tx_drop[VNET_DROP_SHORT], 1);
    assert_int_equal(net.stats.tx_drop[VNET_DROP_OVERSIZE], 2);
    assert_int_equal(net.stats.tx_drop[VNET_DROP_MTU], 1);
    assert_int_equal(drops(net.stats.tx_drop), 5);
    assert_int_equal(n_sent, 1);
    assert_int_equal(sent[0].len, 60);
    assert_false(txd.q.broken);
}

static void test_tx_chain_error_breaks_queue(void **state)
{
    (void)state;
    put_hdr(ram + DATA, &(struct vnet_hdr){ 0 });
    make_frame(ram + DATA + 12, 60, 0x0800, 6);
    offer1(&txd, DATA, 72, false);
    offer1(&txd, RAM_SIZE - 40, 72, false);            /* runs out of RAM */
    offer1(&txd, DATA, 72, false);
    /* The good one went out; a broken queue publishes and signals nothing more
     * (the transport reports DEVICE_NEEDS_RESET instead). */
    assert_false(run_tx(VQ_ERR_BUF_RANGE, false));
    assert_true(txd.q.broken);
    assert_int_equal(vq_device_status(&txd.q), VIRTIO_STATUS_DEVICE_NEEDS_RESET);
    assert_int_equal(n_sent, 1);
    assert_int_equal(used_idx(&txd), 0);
    assert_int_equal(net.stats.queue_errors, 1);
    assert_false(run_tx(VQ_ERR_BROKEN, false));
    assert_int_equal(net.stats.queue_errors, 1);        /* counted once */
    assert_int_equal(n_sent, 1);

    /* A loop. */
    set_queue(&txd, 0);
    put_desc(txd.desc, &(struct buf){ DATA, 72, false }, true, 1);
    put_desc(txd.desc + 16, &(struct buf){ DATA, 72, false }, true, 0);
    make_available(&txd, 0);
    assert_false(run_tx(VQ_ERR_CHAIN_LOOP, false));
    assert_int_equal(net.stats.queue_errors, 2);
    assert_int_equal(n_sent, 1);
    /* Not set up. */
    vq_reset(&txd.q);
    assert_false(run_tx(VQ_ERR_NOT_READY, false));
    assert_int_equal(net.stats.queue_errors, 2);
}

static void test_tx_chain_budget(void **state)
{
    (void)state;
    put_hdr(ram + DATA, &(struct vnet_hdr){ 0 });
    make_frame(ram + DATA + 12, 60, 0x0800, 7);
    for (unsigned i = 0; i < VNET_TX_BATCH_CHAINS + 6; i++)
        offer1(&txd, DATA, 72, false);
    uint64_t pub = txd.q.stats.publishes;
    assert_true(run_tx(VQ_OK, true));
    assert_int_equal(n_sent, VNET_TX_BATCH_CHAINS);
    assert_int_equal(used_idx(&txd), VNET_TX_BATCH_CHAINS);
    assert_int_equal(txd.q.stats.publishes - pub, 1);
    assert_int_equal(used_flags(&txd), VIRTQ_USED_F_NO_NOTIFY);   /* the caller comes back */
    assert_true(run_tx(VQ_EMPTY, false));
    assert_int_equal(n_sent, VNET_TX_BATCH_CHAINS + 6);
    assert_int_equal(used_flags(&txd), 0);
}

static void test_tx_byte_budget(void **state)
{
    (void)state;
    vnet_set_features(&net, F_CSUM | F_HOST_TSO4);
    /* 60012 bytes a chain: the budget is spent by the fifth. */
    put_hdr(ram + DATA, &tso4);
    make_frame(ram + DATA + 12, 60000, 0x0800, 8);
    for (unsigned i = 0; i < 6; i++)
        offer1(&txd, DATA, 60012, false);
    assert_true(run_tx(VQ_OK, true));
    unsigned first = (VNET_TX_BUDGET + 60011) / 60012;
    assert_int_equal(n_sent, first);
    assert_int_equal(used_idx(&txd), first);
    assert_int_equal(txd.q.last_avail_idx, first);      /* the rest not taken */
    assert_true(run_tx(VQ_EMPTY, false));
    assert_int_equal(n_sent, 6);
    assert_int_equal(net.stats.tx_bytes, 6 * 60000);
}

/* ---- receiveq ------------------------------------------------------------------- */

static void test_rx_single_buffer(void **state)
{
    (void)state;
    memset(ram + DATA, 0xcc, 0x1000);
    uint16_t head = offer1(&rxd, DATA, 1526, true);
    make_frame(frame, 100, 0x0800, 10);
    uint64_t pub = rxd.q.stats.publishes;
    assert_int_equal(rx(&(struct vnet_hdr){ 0 }, frame, 100, VQ_OK), VNET_RX_DELIVERED);
    /* Not published until the flush. */
    assert_int_equal(used_idx(&rxd), 0);
    assert_int_equal(rxd.q.stats.publishes, pub);
    assert_true(flush());
    assert_int_equal(rxd.q.stats.publishes - pub, 1);
    assert_int_equal(used_idx(&rxd), 1);
    assert_int_equal(used_id(&rxd, 0), head);
    assert_int_equal(used_len(&rxd, 0), 112);
    struct vnet_hdr want = { .num_buffers = 1 };        /* §5.1.6.4.1: 1 without MRG */
    struct vnet_hdr h = get_hdr(ram + DATA);
    assert_memory_equal(&h, &want, sizeof h);
    assert_memory_equal(ram + DATA + 12, frame, 100);
    assert_int_equal(ram[DATA + 112], 0xcc);           /* only what was written */
    assert_int_equal(net.stats.rx_frames, 1);
    assert_int_equal(net.stats.rx_bytes, 100);
    /* Nothing more: the flush publishes nothing and signals nothing. */
    assert_false(flush());
    assert_int_equal(rxd.q.stats.publishes - pub, 1);
}

/* The header spread over buffers and sharing one with the frame (§2.7.4). */
static void test_rx_header_split_over_buffers(void **state)
{
    (void)state;
    struct buf b[] = { { DATA, 5, true }, { DATA + 0x100, 9, true }, { DATA + 0x200, 1600, true } };
    offer(&rxd, b, 3);
    make_frame(frame, 1514, 0x0800, 11);
    assert_int_equal(rx(&(struct vnet_hdr){ 0 }, frame, 1514, VQ_OK), VNET_RX_DELIVERED);
    assert_true(flush());
    assert_int_equal(used_len(&rxd, 0), 12 + 1514);
    uint8_t hb[12];
    memcpy(hb, ram + DATA, 5);
    memcpy(hb + 5, ram + DATA + 0x100, 7);
    struct vnet_hdr h = get_hdr(hb);
    assert_int_equal(h.num_buffers, 1);
    assert_memory_equal(ram + DATA + 0x100 + 7, frame, 2);
    assert_memory_equal(ram + DATA + 0x200, frame + 2, 1512);
}

/* Without MRG_RXBUF one chain holds it all: a chain too small is left to the
 * driver (the next, smaller frame fits) and the frame is dropped. */
static void test_rx_too_small_without_mrg_dropped(void **state)
{
    (void)state;
    uint16_t head = offer1(&rxd, DATA, 111, true);
    make_frame(frame, 100, 0x0800, 12);
    assert_int_equal(rx(&(struct vnet_hdr){ 0 }, frame, 100, VQ_OK), VNET_RX_DROPPED);
    assert_int_equal(net.stats.rx_drop[VNET_DROP_TOO_SMALL], 1);
    assert_int_equal(rxd.q.last_avail_idx, 0);          /* not consumed */
    assert_false(flush());
    assert_int_equal(used_idx(&rxd), 0);
    assert_int_equal(rx(&(struct vnet_hdr){ 0 }, frame, 99, VQ_OK), VNET_RX_DELIVERED);
    assert_true(flush());
    assert_int_equal(used_id(&rxd, 0), head);
    assert_int_equal(used_len(&rxd, 0), 111);
    assert_memory_equal(ram + DATA + 12, frame, 99);
    assert_int_equal(net.stats.rx_frames, 1);
}

static void test_rx_mrg_spans_chains(void **state)
{
    (void)state;
    assert_true(vnet_init(&net, mac, 9000));        /* jumbo frames, no GSO needed */
    vnet_set_features(&net, F_MRG);
    memset(ram + DATA, 0xcc, 0x10000);
    uint16_t heads[5];
    for (unsigned i = 0; i < 5; i++)
        heads[i] = offer1(&rxd, DATA + 0x1000 * i, 1000, true);
    make_frame(frame, 3500, 0x0800, 13);
    assert_int_equal(rx(&(struct vnet_hdr){ 0 }, frame, 3500, VQ_OK), VNET_RX_DELIVERED);
    assert_true(flush());
    /* 12 + 3500 = 3 * 1000 + 512: four chains, all but the last full. */
    assert_int_equal(used_idx(&rxd), 4);
    const uint32_t lens[] = { 1000, 1000, 1000, 512 };
    for (unsigned i = 0; i < 4; i++) {
        assert_int_equal(used_id(&rxd, i), heads[i]);
        assert_int_equal(used_len(&rxd, i), lens[i]);
    }
    struct vnet_hdr h = get_hdr(ram + DATA);
    assert_int_equal(h.num_buffers, 4);
    assert_int_equal(h.flags, 0);
    assert_memory_equal(ram + DATA + 12, frame, 988);
    assert_memory_equal(ram + DATA + 0x1000, frame + 988, 1000);
    assert_memory_equal(ram + DATA + 0x2000, frame + 1988, 1000);
    assert_memory_equal(ram + DATA + 0x3000, frame + 2988, 512);
    assert_int_equal(ram[DATA + 0x3000 + 512], 0xcc);
    assert_int_equal(rxd.q.last_avail_idx, 4);          /* the fifth untouched */
    assert_int_equal(net.stats.rx_merged, 1);

    /* A small frame in the one chain left: num_buffers 1. */
    assert_int_equal(rx(&(struct vnet_hdr){ 0 }, frame, 60, VQ_OK), VNET_RX_DELIVERED);
    assert_true(flush());
    assert_int_equal(get_hdr(ram + DATA + 0x4000).num_buffers, 1);
    assert_int_equal(used_len(&rxd, 4), 72);
    assert_int_equal(net.stats.rx_merged, 1);
}

/* Nothing posted: nothing consumed, kicks on, and the retry after the driver's
 * kick delivers. */
static void test_rx_no_buffers_then_retry(void **state)
{
    (void)state;
    make_frame(frame, 200, 0x0800, 14);
    wr16(rxd.used, VIRTQ_USED_F_NO_NOTIFY);
    assert_int_equal(rx(&(struct vnet_hdr){ 0 }, frame, 200, VQ_EMPTY), VNET_RX_NO_BUFFERS);
    assert_int_equal(used_flags(&rxd), 0);              /* kick me */
    assert_int_equal(net.stats.rx_no_buffers, 1);
    assert_false(flush());
    assert_int_equal(used_idx(&rxd), 0);
    offer1(&rxd, DATA, 1526, true);
    assert_int_equal(rx(&(struct vnet_hdr){ 0 }, frame, 200, VQ_OK), VNET_RX_DELIVERED);
    assert_int_equal(used_flags(&rxd), VIRTQ_USED_F_NO_NOTIFY);   /* nothing waits */
    assert_true(flush());
    assert_memory_equal(ram + DATA + 12, frame, 200);
    assert_int_equal(drops(net.stats.rx_drop), 0);
}

/* MRG_RXBUF, buffers running out in the middle of a frame: every chain taken for
 * it goes back, none reaches the used ring, and the driver's next buffer (not one
 * of those) is what it is asked to kick for.  The retry places the whole frame. */
static void test_rx_mrg_runs_out_mid_frame(void **state)
{
    (void)state;
    set_queue(&rxd, 1ull << VIRTIO_F_EVENT_IDX);
    assert_true(vnet_init(&net, mac, 9000));
    vnet_set_features(&net, F_MRG);
    memset(ram + DATA, 0xcc, 0x10000);
    make_frame(frame, 3000, 0x0800, 15);
    offer1(&rxd, DATA, 1000, true);
    /* A chain with a readable buffer among them: completed unused, but only
     * with the frame. */
    uint16_t bad = offer1(&rxd, DATA + 0x8000, 64, false);
    offer1(&rxd, DATA + 0x1000, 1000, true);
    wr16(avail_event_gpa(&rxd), 0);
    assert_int_equal(rx(&(struct vnet_hdr){ 0 }, frame, 3000, VQ_EMPTY), VNET_RX_NO_BUFFERS);
    assert_int_equal(rxd.q.last_avail_idx, 0);
    assert_int_equal(rd16(avail_event_gpa(&rxd)), 3);   /* kick me for entry 3 */
    assert_false(flush());
    assert_int_equal(used_idx(&rxd), 0);
    assert_int_equal(rxd.q.stats.used, 0);
    assert_int_equal(net.stats.rx_bad_chains, 0);

    /* Two more: 12 + 3000 = 3012 over four 1000-byte chains. */
    offer1(&rxd, DATA + 0x2000, 1000, true);
    offer1(&rxd, DATA + 0x3000, 1000, true);
    wr16(used_event_gpa(&rxd), 0);
    assert_int_equal(rx(&(struct vnet_hdr){ 0 }, frame, 3000, VQ_OK), VNET_RX_DELIVERED);
    assert_true(flush());
    assert_int_equal(used_idx(&rxd), 5);
    struct vnet_hdr h;
    size_t n = gather_rx(0, &h, got);
    assert_int_equal(h.num_buffers, 4);
    assert_int_equal(n, 3000);
    assert_memory_equal(got, frame, 3000);
    /* The bad chain comes after the frame's four. */
    assert_int_equal(used_id(&rxd, 4), bad);
    assert_int_equal(used_len(&rxd, 4), 0);
    assert_int_equal(used_len(&rxd, 3), 12);
    assert_int_equal(net.stats.rx_bad_chains, 1);
    for (unsigned i = 0; i < 64; i++)
        assert_int_equal(ram[DATA + 0x8000 + i], 0xcc);
}

/* With MRG_RXBUF, chains that can never hold the frame: the queue's every
 * descriptor is in them, so waiting is pointless.  Dropped, nothing consumed. */
static void test_rx_mrg_never_fits_dropped(void **state)
{
    (void)state;
    set_queue_size(&rxd, 4, 0);
    vnet_set_features(&net, F_MRG);
    for (unsigned i = 0; i < 4; i++)
        offer1(&rxd, DATA + 0x1000 * i, 100, true);
    make_frame(frame, 1000, 0x0800, 16);
    assert_int_equal(rx(&(struct vnet_hdr){ 0 }, frame, 1000, VQ_OK), VNET_RX_DROPPED);
    assert_int_equal(net.stats.rx_drop[VNET_DROP_NO_ROOM], 1);
    assert_int_equal(rxd.q.last_avail_idx, 0);
    /* 388 bytes fit the four exactly. */
    assert_int_equal(rx(&(struct vnet_hdr){ 0 }, frame, 388, VQ_OK), VNET_RX_DELIVERED);
    assert_true(flush());
    assert_int_equal(used_idx(&rxd), 4);
    assert_int_equal(get_hdr(ram + DATA).num_buffers, 4);
}

/* Chains no frame can use are completed with length 0 and untouched: a readable
 * buffer, no writable byte, and with MRG_RXBUF fewer than 12 bytes to start on. */
static void test_rx_bad_chains_completed(void **state)
{
    (void)state;
    vnet_set_features(&net, F_MRG);
    memset(ram + DATA, 0xcc, 0x1000);
    offer1(&rxd, DATA, 64, false);
    struct buf mixed[] = { { DATA + 0x100, 4, false }, { DATA + 0x200, 64, true } };
    offer(&rxd, mixed, 2);
    offer1(&rxd, DATA + 0x300, 0, true);
    offer1(&rxd, DATA + 0x400, 11, true);
    uint16_t good = offer1(&rxd, DATA + 0x800, 200, true);
    make_frame(frame, 100, 0x0800, 17);
    assert_int_equal(rx(&(struct vnet_hdr){ 0 }, frame, 100, VQ_OK), VNET_RX_DELIVERED);
    assert_true(flush());
    assert_int_equal(used_idx(&rxd), 5);
    for (unsigned i = 0; i < 4; i++)
        assert_int_equal(used_len(&rxd, i), 0);
    assert_int_equal(used_id(&rxd, 4), good);
    assert_int_equal(used_len(&rxd, 4), 112);
    for (unsigned i = 0; i < 0x800; i++)
        assert_int_equal(ram[DATA + i], 0xcc);
    assert_int_equal(net.stats.rx_bad_chains, 4);
    assert_false(rxd.q.broken);
}

/* Packets checksummed independently of the engine (the test's constants):
 * Ethernet + IPv4 + UDP "hello, checksum!", checksum field holding the pseudo
 * header's sum 0x8398, full checksum 0x57c9; Ethernet + IPv4 + TCP with 19
 * (odd) payload bytes, pseudo header sum 0x1430, full checksum 0xe525. */
static const uint8_t udp_pkt[] = {
    0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef, 0x08, 0x00, 0x45, 0x00,
    0x00, 0x2c, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11, 0xa5, 0x1e, 0xc0, 0xa8, 0x01, 0x0a, 0xc0, 0xa8,
    0x01, 0x14, 0x13, 0x88, 0x00, 0x35, 0x00, 0x18, 0x83, 0x98, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x2c,
    0x20, 0x63, 0x68, 0x65, 0x63, 0x6b, 0x73, 0x75, 0x6d, 0x21,
};
static const uint8_t tcp_pkt[] = {
    0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef, 0x08, 0x00, 0x45, 0x00,
    0x00, 0x3b, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x14, 0x87, 0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00,
    0x00, 0x02, 0x9c, 0x40, 0x00, 0x50, 0x01, 0x02, 0x03, 0x04, 0x0a, 0x0b, 0x0c, 0x0d, 0x50, 0x18,
    0xfa, 0xf0, 0x14, 0x30, 0x00, 0x00, 0x47, 0x45, 0x54, 0x20, 0x2f, 0x78, 0x20, 0x48, 0x54, 0x54,
    0x50, 0x2f, 0x31, 0x2e, 0x30, 0x0d, 0x0a, 0x0d, 0x0a,
};

static void test_rx_checksum_completed_without_guest_csum(void **state)
{
    (void)state;
    const struct vnet_hdr udp_h = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 34, .csum_offset = 6 };
    const struct vnet_hdr tcp_h = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 34, .csum_offset = 16 };
    for (unsigned i = 0; i < 3; i++)
        offer1(&rxd, DATA + 0x1000 * i, 1526, true);
    assert_int_equal(rx(&udp_h, udp_pkt, sizeof udp_pkt, VQ_OK), VNET_RX_DELIVERED);
    assert_int_equal(rx(&tcp_h, tcp_pkt, sizeof tcp_pkt, VQ_OK), VNET_RX_DELIVERED);
    /* A UDP checksum that comes out 0 goes out as 0xffff (RFC 768). */
    uint8_t zero[sizeof udp_pkt];
    memcpy(zero, udp_pkt, 38);
    zero[38] = 0x00;
    zero[39] = 0x10;                                    /* UDP length 16 */
    zero[40] = 0x83;
    zero[41] = 0x90;                                    /* its pseudo header sum */
    memcpy(zero + 42, "zero!!\x5a\xac", 8);             /* makes the sum 0xffff */
    assert_int_equal(rx(&udp_h, zero, 50, VQ_OK), VNET_RX_DELIVERED);
    assert_true(flush());

    struct vnet_hdr want = { .num_buffers = 1 };        /* flags 0 (§5.1.6.4.1) */
    struct vnet_hdr h = get_hdr(ram + DATA);
    assert_memory_equal(&h, &want, sizeof h);
    assert_int_equal(ram[DATA + 12 + 40], 0x57);
    assert_int_equal(ram[DATA + 12 + 41], 0xc9);
    assert_memory_equal(ram + DATA + 12, udp_pkt, 40);  /* the rest as sent */
    assert_memory_equal(ram + DATA + 12 + 42, udp_pkt + 42, sizeof udp_pkt - 42);
    h = get_hdr(ram + DATA + 0x1000);
    assert_memory_equal(&h, &want, sizeof h);
    assert_int_equal(ram[DATA + 0x1000 + 12 + 50], 0xe5);
    assert_int_equal(ram[DATA + 0x1000 + 12 + 51], 0x25);
    assert_int_equal(ram[DATA + 0x2000 + 12 + 40], 0xff);
    assert_int_equal(ram[DATA + 0x2000 + 12 + 41], 0xff);
    assert_int_equal(net.stats.rx_csum_filled, 3);

    /* With GUEST_CSUM the partial checksum is the driver's to finish. */
    vnet_set_features(&net, F_GUEST_CSUM);
    offer1(&rxd, DATA + 0x3000, 1526, true);
    assert_int_equal(rx(&udp_h, udp_pkt, sizeof udp_pkt, VQ_OK), VNET_RX_DELIVERED);
    assert_true(flush());
    h = get_hdr(ram + DATA + 0x3000);
    want = udp_h;
    want.num_buffers = 1;
    assert_memory_equal(&h, &want, sizeof h);
    assert_memory_equal(ram + DATA + 0x3000 + 12, udp_pkt, sizeof udp_pkt);
    assert_int_equal(net.stats.rx_csum_filled, 3);
}

/* Merged buffers and a checksum field that straddles two chains. */
static void test_rx_checksum_across_chains(void **state)
{
    (void)state;
    vnet_set_features(&net, F_MRG);
    /* 12 + 51 bytes in the first chain: the TCP field (50, 51) is split. */
    offer1(&rxd, DATA, 63, true);
    offer1(&rxd, DATA + 0x1000, 100, true);
    const struct vnet_hdr tcp_h = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 34, .csum_offset = 16 };
    assert_int_equal(rx(&tcp_h, tcp_pkt, sizeof tcp_pkt, VQ_OK), VNET_RX_DELIVERED);
    assert_true(flush());
    struct vnet_hdr h;
    assert_int_equal(gather_rx(0, &h, got), sizeof tcp_pkt);
    assert_int_equal(h.num_buffers, 2);
    assert_int_equal(h.flags, 0);
    assert_int_equal(got[50], 0xe5);
    assert_int_equal(got[51], 0x25);
    assert_memory_equal(got, tcp_pkt, 50);
    assert_memory_equal(got + 52, tcp_pkt + 52, sizeof tcp_pkt - 52);
}

static void test_rx_gso_needs_guest_tso(void **state)
{
    (void)state;
    make_frame(frame, 20000, 0x0800, 18);
    offer1(&rxd, DATA, 30000, true);
    /* No GUEST_TSO4: dropped, the buffer kept. */
    vnet_set_features(&net, F_GUEST_CSUM | F_GUEST_TSO6);
    assert_int_equal(rx(&tso4, frame, 20000, VQ_OK), VNET_RX_DROPPED);
    assert_int_equal(net.stats.rx_drop[VNET_DROP_GSO_FEATURE], 1);
    /* TSO4 accepted without GUEST_CSUM does not count (§5.1.3.1). */
    vnet_set_features(&net, F_GUEST_TSO4);
    assert_int_equal(rx(&tso4, frame, 20000, VQ_OK), VNET_RX_DROPPED);
    assert_int_equal(net.stats.rx_drop[VNET_DROP_GSO_FEATURE], 2);
    assert_int_equal(rxd.q.last_avail_idx, 0);
    /* ECN is refused whatever was negotiated. */
    vnet_set_features(&net, F_GUEST_CSUM | F_GUEST_TSO4);
    struct vnet_hdr ecn = tso4;
    ecn.gso_type |= VIRTIO_NET_HDR_GSO_ECN;
    assert_int_equal(rx(&ecn, frame, 20000, VQ_OK), VNET_RX_DROPPED);
    assert_int_equal(net.stats.rx_drop[VNET_DROP_GSO_TYPE], 1);
    /* With it: gso fields and NEEDS_CSUM as sent. */
    assert_int_equal(rx(&tso4, frame, 20000, VQ_OK), VNET_RX_DELIVERED);
    assert_true(flush());
    struct vnet_hdr h = get_hdr(ram + DATA), want = tso4;
    want.num_buffers = 1;
    assert_memory_equal(&h, &want, sizeof h);
    assert_memory_equal(ram + DATA + 12, frame, 20000);
    assert_int_equal(net.stats.rx_csum_filled, 0);
}

static void test_rx_frame_limits(void **state)
{
    (void)state;
    offer1(&rxd, DATA, 2000, true);
    make_frame(frame, 1519, 0x0800, 19);
    assert_int_equal(rx(&(struct vnet_hdr){ 0 }, frame, 13, VQ_OK), VNET_RX_DROPPED);
    assert_int_equal(net.stats.rx_drop[VNET_DROP_RUNT], 1);
    assert_int_equal(rx(&(struct vnet_hdr){ 0 }, frame, 1515, VQ_OK), VNET_RX_DROPPED);
    assert_int_equal(net.stats.rx_drop[VNET_DROP_MTU], 1);
    make_frame(frame, 1519, 0x8100, 19);
    assert_int_equal(rx(&(struct vnet_hdr){ 0 }, frame, 1519, VQ_OK), VNET_RX_DROPPED);
    assert_int_equal(net.stats.rx_drop[VNET_DROP_MTU], 2);
    vnet_set_features(&net, F_GUEST_CSUM | F_GUEST_TSO4);
    assert_int_equal(rx(&tso4, frame, 65537, VQ_OK), VNET_RX_DROPPED);
    assert_int_equal(net.stats.rx_drop[VNET_DROP_OVERSIZE], 1);
    struct vnet_hdr bad = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 1517, .csum_offset = 1 };
    assert_int_equal(rx(&bad, frame, 1518, VQ_OK), VNET_RX_DROPPED);
    assert_int_equal(net.stats.rx_drop[VNET_DROP_CSUM_RANGE], 1);
    assert_int_equal(rxd.q.last_avail_idx, 0);
    /* A tagged frame of mtu + 18 fits; DATA_VALID from the link is never passed
     * on (the engine did not verify anything). */
    struct vnet_hdr dv = { .flags = VIRTIO_NET_HDR_F_DATA_VALID };
    assert_int_equal(rx(&dv, frame, 1518, VQ_OK), VNET_RX_DELIVERED);
    assert_true(flush());
    assert_int_equal(ram[DATA], 0);
    assert_int_equal(used_len(&rxd, 0), 12 + 1518);
}

static void test_rx_interrupt_suppression(void **state)
{
    (void)state;
    for (unsigned i = 0; i < 6; i++)
        offer1(&rxd, DATA + 0x1000 * i, 1526, true);
    make_frame(frame, 60, 0x0800, 20);
    /* avail->flags NO_INTERRUPT: published, not signalled. */
    wr16(rxd.avail, VIRTQ_AVAIL_F_NO_INTERRUPT);
    uint64_t pub = rxd.q.stats.publishes;
    for (unsigned i = 0; i < 3; i++)
        assert_int_equal(rx(&(struct vnet_hdr){ 0 }, frame, 60, VQ_OK), VNET_RX_DELIVERED);
    assert_false(flush());
    assert_int_equal(rxd.q.stats.publishes - pub, 1);  /* one store for three */
    assert_int_equal(used_idx(&rxd), 3);
    wr16(rxd.avail, 0);
    assert_int_equal(rx(&(struct vnet_hdr){ 0 }, frame, 60, VQ_OK), VNET_RX_DELIVERED);
    assert_true(flush());

    /* EVENT_IDX: used_event 5 is passed by 4 -> 6, not by 0 -> 2... */
    set_queue(&rxd, 1ull << VIRTIO_F_EVENT_IDX);
    for (unsigned i = 0; i < 6; i++)
        offer1(&rxd, DATA + 0x1000 * i, 1526, true);
    wr16(used_event_gpa(&rxd), 5);
    for (unsigned k = 0; k < 3; k++) {
        assert_int_equal(rx(&(struct vnet_hdr){ 0 }, frame, 60, VQ_OK), VNET_RX_DELIVERED);
        assert_int_equal(rx(&(struct vnet_hdr){ 0 }, frame, 60, VQ_OK), VNET_RX_DELIVERED);
        assert_int_equal(flush(), k == 2);
        assert_int_equal(used_idx(&rxd), 2 * (k + 1));
    }
}

static void test_rx_chain_error_breaks_queue(void **state)
{
    (void)state;
    vnet_set_features(&net, F_MRG);
    make_frame(frame, 1000, 0x0800, 21);
    /* A good chain, then a loop: the frame needed both. */
    offer1(&rxd, DATA, 600, true);
    put_desc(rxd.desc + 16, &(struct buf){ DATA + 0x1000, 600, true }, true, 2);
    put_desc(rxd.desc + 32, &(struct buf){ DATA + 0x2000, 600, true }, true, 1);
    make_available(&rxd, 1);
    assert_int_equal(rx(&(struct vnet_hdr){ 0 }, frame, 1000, VQ_ERR_CHAIN_LOOP), VNET_RX_BROKEN);
    assert_true(rxd.q.broken);
    assert_int_equal(net.stats.queue_errors, 1);
    assert_int_equal(rx(&(struct vnet_hdr){ 0 }, frame, 1000, VQ_ERR_BROKEN), VNET_RX_BROKEN);
    assert_int_equal(net.stats.queue_errors, 1);        /* counted once */
    assert_false(vnet_rx_flush(&net, &rxd.q, &g, NULL));
    assert_int_equal(used_idx(&rxd), 0);
    /* No receiveq: nobody listening. */
    vq_reset(&rxd.q);
    assert_int_equal(rx(&(struct vnet_hdr){ 0 }, frame, 1000, VQ_ERR_NOT_READY), VNET_RX_DROPPED);
    assert_int_equal(net.stats.rx_drop[VNET_DROP_NOT_READY], 1);
}

/* Reset: what was negotiated is gone, counters stay, the device works again. */
static void test_reset(void **state)
{
    (void)state;
    vnet_set_features(&net, F_CSUM | F_HOST_TSO4 | F_GUEST_CSUM | F_GUEST_TSO4 | F_MRG);
    put_hdr(ram + DATA, &tso4);
    make_frame(ram + DATA + 12, 4000, 0x0800, 22);
    offer1(&txd, DATA, 4012, false);
    assert_true(run_tx(VQ_EMPTY, false));
    assert_int_equal(n_sent, 1);
    offer1(&rxd, DATA + 0x10000, 1000, true);
    make_frame(frame, 4000, 0x0800, 23);
    assert_int_equal(rx(&tso4, frame, 4000, VQ_EMPTY), VNET_RX_NO_BUFFERS);

    /* The transport's order: every queue, then the device. */
    set_queue(&txd, 0);
    set_queue(&rxd, 0);
    vnet_reset(&net);
    assert_int_equal(net.features, 0);
    assert_int_equal(net.stats.tx_frames, 1);
    assert_int_equal(net.stats.rx_no_buffers, 1);
    /* The same frames now break the rules of a driver that negotiated nothing. */
    offer1(&txd, DATA, 4012, false);
    assert_true(run_tx(VQ_EMPTY, false));
    assert_int_equal(n_sent, 1);
    assert_int_equal(net.stats.tx_drop[VNET_DROP_CSUM_FEATURE], 1);
    offer1(&rxd, DATA + 0x10000, 5000, true);
    assert_int_equal(rx(&tso4, frame, 4000, VQ_OK), VNET_RX_DROPPED);
    assert_int_equal(net.stats.rx_drop[VNET_DROP_GSO_FEATURE], 1);
    assert_int_equal(rx(&(struct vnet_hdr){ 0 }, frame, 1000, VQ_OK), VNET_RX_DELIVERED);
    assert_true(flush());
    assert_int_equal(get_hdr(ram + DATA + 0x10000).num_buffers, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_features_offered_and_negotiated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_bytes_fixed_whatever_negotiated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drop_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_header_in_its_own_buffer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_header_shares_a_buffer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_header_passed_clean, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_each_drop_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_bad_chains_completed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_chain_error_breaks_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_chain_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_byte_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_single_buffer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_header_split_over_buffers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_too_small_without_mrg_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_mrg_spans_chains, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_no_buffers_then_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_mrg_runs_out_mid_frame, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_mrg_never_fits_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_bad_chains_completed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_checksum_completed_without_guest_csum, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_checksum_across_chains, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_gso_needs_guest_tso, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_frame_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_interrupt_suppression, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_chain_error_breaks_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
