/* The virtual Ethernet switch (kernel/netswitch.c): learning and where frames go,
 * what it refuses and counts, the shares that keep one VM's flood from costing
 * another anything, the ring (order, metadata, frames split by its end), receiving
 * into a short buffer, ports leaving and joining, and the MAC table's bounds. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "kernel/netswitch.c"

#define BIT(p) (1u << (p))

static struct nsw_net net;
static uint8_t storage[NSW_PORTS_MAX][64 * 1024];
static uint8_t frame_buf[NSW_FRAME_MAX + 64];
static uint8_t recv_buf[NSW_FRAME_MAX + 64];

static const uint8_t MAC_A[6] = { 0x02, 0, 0, 0, 0, 0x0a };
static const uint8_t MAC_B[6] = { 0x02, 0, 0, 0, 0, 0x0b };
static const uint8_t MAC_C[6] = { 0x02, 0, 0, 0, 0, 0x0c };
static const uint8_t MAC_D[6] = { 0x02, 0, 0, 0, 0, 0x0d };
static const uint8_t BROADCAST[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
static const uint8_t MULTICAST[6] = { 0x01, 0x00, 0x5e, 0x00, 0x00, 0x01 };

/* A locally administered unicast MAC numbered n. */
static const uint8_t *mac_n(unsigned n)
{
    static uint8_t macs[4][6];
    static unsigned next;
    uint8_t *m = macs[next++ % 4];
    m[0] = 0x02;
    m[1] = 0x10;
    m[2] = 0;
    m[3] = (uint8_t)(n >> 16);
    m[4] = (uint8_t)(n >> 8);
    m[5] = (uint8_t)n;
    return m;
}

static void build(uint8_t *f, const uint8_t *dst, const uint8_t *src, size_t len, uint8_t seed)
{
    uint8_t head[14] = { 0 };
    memcpy(head, dst, 6);
    memcpy(head + 6, src, 6);
    head[12] = 0x88;                /* IEEE 802 local experimental ethertype */
    head[13] = 0xb5;
    memcpy(f, head, len < 14 ? len : 14);
    for (size_t i = 14; i < len; i++)
        f[i] = (uint8_t)(seed + i * 7);
}

static unsigned send_seeded(int port, const uint8_t *dst, const uint8_t *src, size_t len, uint8_t seed)
{
    build(frame_buf, dst, src, len, seed);
    uint8_t meta[NSW_META_BYTES];
    memset(meta, seed, sizeof meta);
    return nsw_send(&net, port, meta, frame_buf, len);
}

static unsigned send(int port, const uint8_t *dst, const uint8_t *src, size_t len)
{
    return send_seeded(port, dst, src, len, 0);
}

static int add(const uint8_t *mac, size_t bytes)
{
    static unsigned next;
    return nsw_port_add(&net, mac, storage[next++ % NSW_PORTS_MAX], bytes);
}

static struct nsw_port_info info(int port)
{
    struct nsw_port_info i;
    assert_true(nsw_port_info(&net, port, &i));
    return i;
}

static uint64_t drops(int port, enum nsw_drop why)
{
    return info(port).stats.drops[why];
}

/* The source MAC of the next frame for port, taking it. */
static const uint8_t *recv_source(int port)
{
    size_t n = nsw_recv(&net, port, NULL, recv_buf, sizeof recv_buf);
    assert_true(n >= NSW_FRAME_MIN);
    return recv_buf + 6;
}

static int setup(void **state)
{
    (void)state;
    nsw_init(&net, "lan0");
    return 0;
}

static void test_learned_unicast_goes_only_to_the_learned_port(void **state)
{
    (void)state;
    int a = add(NULL, 8192), b = add(NULL, 8192), c = add(NULL, 8192);
    assert_int_equal(send(a, MAC_B, MAC_A, 60), BIT(b) | BIT(c));   /* b not known yet */
    assert_int_equal(send(b, MAC_A, MAC_B, 60), BIT(a));            /* a learned */
    assert_int_equal(send(a, MAC_B, MAC_A, 60), BIT(b));            /* b learned */
    assert_int_equal(nsw_pending(&net, a), 1);
    assert_int_equal(nsw_pending(&net, b), 2);
    assert_int_equal(nsw_pending(&net, c), 1);
    assert_int_equal(nsw_stats(&net).unicast, 2);
    assert_int_equal(nsw_stats(&net).flooded, 1);
    assert_string_equal(net.name, "lan0");
}

static void test_broadcast_multicast_and_unknown_flood_to_all_but_the_sender(void **state)
{
    (void)state;
    int a = add(MAC_A, 8192), b = add(MAC_B, 8192), c = add(MAC_C, 8192), d = add(MAC_D, 8192);
    unsigned others = BIT(b) | BIT(c) | BIT(d);
    assert_int_equal(send(a, BROADCAST, MAC_A, 60), others);
    assert_int_equal(send(a, MULTICAST, MAC_A, 60), others);
    assert_int_equal(send(a, mac_n(99), MAC_A, 60), others);
    assert_int_equal(nsw_pending(&net, a), 0);
    assert_int_equal(nsw_pending(&net, b), 3);
    assert_int_equal(nsw_pending(&net, c), 3);
    assert_int_equal(nsw_pending(&net, d), 3);
    assert_int_equal(net.stats.flooded, 3);
}

static void test_runt_too_big_and_bad_sources_are_dropped_and_counted(void **state)
{
    (void)state;
    static uint8_t big[2 * NSW_RECORD_MAX];
    int a = add(MAC_A, 8192);
    int b = nsw_port_add(&net, MAC_B, big, sizeof big);
    static const uint8_t zero[6];
    assert_int_equal(send(a, MAC_B, MAC_A, NSW_FRAME_MIN - 1), 0);
    assert_int_equal(send(a, MAC_B, MAC_A, NSW_FRAME_MAX + 1), 0);
    assert_int_equal(send(a, MAC_B, MULTICAST, 60), 0);
    assert_int_equal(send(a, MAC_B, BROADCAST, 60), 0);
    assert_int_equal(send(a, MAC_B, zero, 60), 0);
    assert_int_equal(drops(a, NSW_DROP_RUNT), 1);
    assert_int_equal(drops(a, NSW_DROP_TOO_BIG), 1);
    assert_int_equal(drops(a, NSW_DROP_BAD_SOURCE), 3);
    assert_int_equal(info(a).stats.tx_frames, 0);
    assert_int_equal(nsw_pending(&net, b), 0);
    /* A refused source is not learned either: frames to it still flood. */
    assert_int_equal(info(a).macs_learned, 0);
    /* The bounds themselves are frames. */
    assert_int_equal(send(a, MAC_B, MAC_A, NSW_FRAME_MIN), BIT(b));
    assert_int_equal(send(a, MAC_B, MAC_A, NSW_FRAME_MAX), BIT(b));
    assert_int_equal(info(a).stats.tx_frames, 2);
    assert_int_equal(nsw_recv(&net, b, NULL, recv_buf, sizeof recv_buf), NSW_FRAME_MIN);
    assert_int_equal(nsw_recv(&net, b, NULL, recv_buf, sizeof recv_buf), NSW_FRAME_MAX);
}

static void test_frame_to_the_senders_own_mac_is_filtered(void **state)
{
    (void)state;
    int a = add(MAC_A, 8192), b = add(MAC_B, 8192);
    assert_int_equal(send(a, MAC_A, MAC_A, 60), 0);           /* its configured MAC */
    assert_int_equal(send(a, mac_n(1), mac_n(1), 60), 0);     /* one it is learned for */
    assert_int_equal(send(a, mac_n(2), mac_n(1), 60), BIT(b));
    assert_int_equal(send(a, mac_n(1), mac_n(2), 60), 0);
    assert_int_equal(drops(a, NSW_DROP_TO_SELF), 3);
    assert_int_equal(info(a).stats.tx_frames, 1);
    assert_int_equal(nsw_pending(&net, a), 0);
    assert_int_equal(nsw_pending(&net, b), 1);
}

static void test_flooder_gets_its_own_frames_dropped_never_another_sources(void **state)
{
    (void)state;
    int a = add(MAC_A, 16384), b = add(MAC_B, 16384), c = add(MAC_C, 16384);
    const size_t len = 200, rec = NSW_RECORD_HEADER + 200;
    /* A floods B, by unicast and by broadcast, long after its share is gone. */
    unsigned sent = 0;
    while (send(a, MAC_B, MAC_A, len) == BIT(b))
        sent++;
    for (int i = 0; i < 100; i++)
        send(a, BROADCAST, MAC_A, len);
    assert_true(sent > 0);
    assert_true(drops(a, NSW_DROP_QUOTA) >= 101);
    uint32_t share = info(b).share;
    assert_int_equal(share, 16384 / 2);
    assert_int_equal(sent, share / rec);
    /* C still finds the whole of its share at B, every frame of it queued. */
    unsigned fits = share / rec;
    for (unsigned i = 0; i < fits; i++)
        assert_int_equal(send_seeded(c, MAC_B, MAC_C, len, (uint8_t)i), BIT(b));
    for (int i = 0; i < 100; i++)
        assert_int_equal(send(a, MAC_B, MAC_A, len), 0);
    assert_int_equal(drops(c, NSW_DROP_QUOTA), 0);
    assert_int_equal(drops(c, NSW_DROP_RESHARE), 0);
    assert_int_equal(info(c).stats.tx_frames, fits);
    /* And B gets all of them, after A's. */
    assert_int_equal(nsw_pending(&net, b), sent + fits);
    for (unsigned i = 0; i < sent; i++)
        assert_memory_equal(recv_source(b), MAC_A, 6);
    for (unsigned i = 0; i < fits; i++)
        assert_memory_equal(recv_source(b), MAC_C, 6);
    assert_int_equal(nsw_pending(&net, b), 0);
}

static void test_fifo_order_and_metadata_round_trip(void **state)
{
    (void)state;
    int a = add(MAC_A, 16384), b = add(MAC_B, 16384);
    static const size_t lens[] = { 14, 15, 60, 61, 1514, 99, 1000, 14, 333, 1518 };
    const size_t count = sizeof lens / sizeof lens[0];
    for (size_t i = 0; i < count; i++) {
        uint8_t meta[NSW_META_BYTES];
        for (unsigned k = 0; k < NSW_META_BYTES; k++)
            meta[k] = (uint8_t)(i * 16 + k);
        build(frame_buf, MAC_B, MAC_A, lens[i], (uint8_t)(i * 3));
        assert_int_equal(nsw_send(&net, a, meta, frame_buf, lens[i]), BIT(b));
    }
    for (size_t i = 0; i < count; i++) {
        uint8_t meta[NSW_META_BYTES], want[NSW_META_BYTES];
        for (unsigned k = 0; k < NSW_META_BYTES; k++)
            want[k] = (uint8_t)(i * 16 + k);
        build(frame_buf, MAC_B, MAC_A, lens[i], (uint8_t)(i * 3));
        assert_int_equal(nsw_recv(&net, b, meta, recv_buf, sizeof recv_buf), lens[i]);
        assert_memory_equal(recv_buf, frame_buf, lens[i]);
        assert_memory_equal(meta, want, NSW_META_BYTES);
    }
    assert_int_equal(nsw_recv(&net, b, NULL, recv_buf, sizeof recv_buf), 0);
    /* No metadata given: zeros come back. */
    build(frame_buf, MAC_B, MAC_A, 60, 1);
    assert_int_equal(nsw_send(&net, a, NULL, frame_buf, 60), BIT(b));
    uint8_t meta[NSW_META_BYTES], zeros[NSW_META_BYTES] = { 0 };
    memset(meta, 0xee, sizeof meta);
    assert_int_equal(nsw_recv(&net, b, meta, recv_buf, sizeof recv_buf), 60);
    assert_memory_equal(meta, zeros, NSW_META_BYTES);
}

static void test_frames_split_by_the_rings_end_arrive_intact(void **state)
{
    (void)state;
    const uint32_t size = 1000;
    int a = add(MAC_A, 8192), b = add(MAC_B, size);
    bool header_split = false, frame_split = false;
    /* One frame always stays queued, so that the ring never starts over at 0 and
     * the writes walk round it, landing across its end in every way. */
    assert_int_equal(send_seeded(a, MAC_B, MAC_A, 100, 0), BIT(b));
    size_t prev_len = 100;
    uint8_t prev_seed = 0;
    for (unsigned i = 1; i < 300; i++) {
        size_t len = 14 + (i * 37) % 400;
        const struct nsw_queue *q = &net.port[b].queue;
        uint32_t at = (q->head + q->used) % size;
        header_split |= at + NSW_RECORD_HEADER > size;
        frame_split |= at + NSW_RECORD_HEADER < size && at + NSW_RECORD_HEADER + len > size;
        assert_int_equal(send_seeded(a, MAC_B, MAC_A, len, (uint8_t)i), BIT(b));
        uint8_t meta[NSW_META_BYTES], want[NSW_META_BYTES];
        memset(want, prev_seed, sizeof want);
        build(frame_buf, MAC_B, MAC_A, prev_len, prev_seed);
        assert_int_equal(nsw_recv(&net, b, meta, recv_buf, sizeof recv_buf), prev_len);
        assert_memory_equal(recv_buf, frame_buf, prev_len);
        assert_memory_equal(meta, want, NSW_META_BYTES);
        prev_len = len;
        prev_seed = (uint8_t)i;
    }
    assert_true(header_split);
    assert_true(frame_split);
}

static void test_recv_into_a_short_buffer_reports_the_length_and_keeps_the_frame(void **state)
{
    (void)state;
    int a = add(MAC_A, 8192), b = add(MAC_B, 8192);
    send_seeded(a, MAC_B, MAC_A, 100, 5);
    assert_int_equal(nsw_recv(&net, b, NULL, NULL, 0), 100);
    memset(recv_buf, 0xee, 100);
    uint8_t meta[NSW_META_BYTES];
    memset(meta, 0xee, sizeof meta);
    assert_int_equal(nsw_recv(&net, b, meta, recv_buf, 99), 100);
    for (int i = 0; i < 100; i++)
        assert_int_equal(recv_buf[i], 0xee);
    assert_int_equal(meta[0], 0xee);
    assert_int_equal(nsw_pending(&net, b), 1);
    assert_int_equal(info(b).stats.rx_frames, 0);
    assert_int_equal(nsw_recv(&net, b, meta, recv_buf, 100), 100);
    build(frame_buf, MAC_B, MAC_A, 100, 5);
    assert_memory_equal(recv_buf, frame_buf, 100);
    assert_int_equal(nsw_pending(&net, b), 0);
    assert_int_equal(info(b).queue_used, 0);
    /* A frame too big for any buffer the caller has can be given up. */
    send_seeded(a, MAC_B, MAC_A, 3000, 1);
    send_seeded(a, MAC_B, MAC_A, 70, 2);
    assert_int_equal(nsw_discard(&net, b), 3000);
    assert_int_equal(nsw_recv(&net, b, NULL, recv_buf, 1500), 70);
    assert_int_equal(nsw_discard(&net, b), 0);
    assert_int_equal(info(b).stats.rx_discarded, 1);
    assert_int_equal(info(b).stats.rx_frames, 2);
}

static void test_port_removal_forgets_its_macs_and_frames_and_gives_its_share_back(void **state)
{
    (void)state;
    const size_t len = 100, rec = NSW_RECORD_HEADER + 100;
    int a = add(MAC_A, 4096), b = add(NULL, 4096), c = add(NULL, 4096);
    assert_int_equal(send(b, BROADCAST, mac_n(7), len), BIT(a) | BIT(c));  /* learns 7 at B */
    assert_int_equal(send(a, mac_n(7), MAC_A, len), BIT(b));
    unsigned sent = 0;
    while (send(b, MAC_A, mac_n(7), len) == BIT(a))
        sent++;
    uint32_t share = info(a).share;
    assert_int_equal(sent, share / rec - 1);       /* the broadcast took one */
    assert_true(nsw_port_remove(&net, b));
    assert_false(nsw_port_remove(&net, b));
    /* What B sent is gone from A and C, with what was queued for it. */
    assert_int_equal(nsw_pending(&net, a), 0);
    assert_int_equal(info(a).queue_used, 0);
    assert_int_equal(nsw_pending(&net, c), 0);
    assert_int_equal(net.stats.removed_dropped, 1 + (sent + 1) + 1);
    /* So is what was learned for it: frames to 7 flood again. */
    assert_int_equal(send(a, mac_n(7), MAC_A, len), BIT(c));
    assert_int_equal(nsw_recv(&net, c, NULL, recv_buf, sizeof recv_buf), len);
    /* A port taking B's index finds its whole share at A, nothing of B's counted
     * against it. */
    int d = add(MAC_D, 4096);
    assert_int_equal(d, b);
    assert_int_equal(info(d).stats.tx_frames, 0);
    assert_int_equal(info(a).share, share);
    unsigned fits = 0;
    while (send(d, MAC_A, MAC_D, len) == BIT(a))
        fits++;
    assert_int_equal(fits, share / rec);
    assert_int_equal(nsw_pending(&net, a), fits);
    assert_int_equal(info(a).queue_used, fits * rec);
    assert_int_equal(net.port[a].queue.used_by[d], fits * rec);
}

static void test_a_joining_port_finds_its_share_at_once(void **state)
{
    (void)state;
    const size_t len = 100, rec = NSW_RECORD_HEADER + 100;
    int a = add(MAC_A, 8192), b = add(MAC_B, 8192);
    unsigned sent = 0;
    while (send_seeded(a, MAC_B, MAC_A, len, (uint8_t)sent) == BIT(b))
        sent++;
    assert_int_equal(sent, 8192 / rec);            /* alone, A's share is all of it */
    int c = add(MAC_C, 8192);
    uint32_t share = info(b).share;
    assert_int_equal(share, 8192 / 2);
    unsigned kept = share / rec;
    assert_int_equal(nsw_pending(&net, b), kept);
    assert_int_equal(drops(a, NSW_DROP_RESHARE), sent - kept);
    for (unsigned i = 0; i < kept; i++)
        assert_int_equal(send(c, MAC_B, MAC_C, len), BIT(b));
    assert_int_equal(drops(c, NSW_DROP_QUOTA), 0);
    /* A keeps its oldest frames, in order; C's come after. */
    for (unsigned i = 0; i < kept; i++) {
        build(frame_buf, MAC_B, MAC_A, len, (uint8_t)i);
        assert_int_equal(nsw_recv(&net, b, NULL, recv_buf, sizeof recv_buf), len);
        assert_memory_equal(recv_buf, frame_buf, len);
    }
    for (unsigned i = 0; i < kept; i++)
        assert_memory_equal(recv_source(b), MAC_C, 6);
}

static void test_trimming_a_wrapped_ring_keeps_frames_intact(void **state)
{
    (void)state;
    /* Wherever the ring's end falls, closing the gaps that a join leaves moves the
     * frames kept across it whole. */
    for (uint32_t h = 40; h + NSW_RECORD_HEADER + 75 <= 1200; h += 30) {
        nsw_init(&net, "lan0");
        int a = add(MAC_A, 8192), c = add(MAC_C, 1200);
        send_seeded(a, MAC_C, MAC_A, h - NSW_RECORD_HEADER, 0xff);
        assert_int_equal(send_seeded(a, MAC_C, MAC_A, 75, 0), BIT(c));
        nsw_discard(&net, c);
        assert_int_equal(net.port[c].queue.head, h);
        int b = add(MAC_B, 8192);
        for (uint8_t i = 1; i <= 5; i++)
            assert_int_equal(send_seeded(a, MAC_C, MAC_A, 80, i), BIT(c));
        for (uint8_t i = 0; i < 6; i++)
            assert_int_equal(send_seeded(b, MAC_C, MAC_B, 80, (uint8_t)(100 + i)), BIT(c));
        add(MAC_D, 8192);                     /* the shares at C: 600 down to 400 */
        assert_int_equal(drops(a, NSW_DROP_RESHARE), 2);
        assert_int_equal(drops(b, NSW_DROP_RESHARE), 2);
        assert_int_equal(nsw_pending(&net, c), 8);
        static const uint8_t seeds[8] = { 0, 1, 2, 3, 100, 101, 102, 103 };
        for (int i = 0; i < 8; i++) {
            size_t len = i ? 80 : 75;
            build(frame_buf, MAC_C, i < 4 ? MAC_A : MAC_B, len, seeds[i]);
            assert_int_equal(nsw_recv(&net, c, NULL, recv_buf, sizeof recv_buf), len);
            assert_memory_equal(recv_buf, frame_buf, len);
        }
    }
}

static void test_mac_table_is_bounded_per_port(void **state)
{
    (void)state;
    int a = add(MAC_A, 65536), b = add(MAC_B, 65536), c = add(MAC_C, 65536);
    for (unsigned i = 0; i < 5; i++)
        send(b, BROADCAST, mac_n(1000 + i), 60);
    /* A sends from 100 made-up MACs, coming back to 0 now and then. */
    for (unsigned i = 0; i < 100; i++) {
        send(a, BROADCAST, mac_n(i), 60);
        send(a, BROADCAST, mac_n(0), 60);
    }
    assert_int_equal(info(a).macs_learned, NSW_MACS_PER_PORT);
    assert_int_equal(info(b).macs_learned, 5);
    assert_int_equal(net.stats.macs_replaced, 100 - NSW_MACS_PER_PORT);
    /* B's entries all stand: frames to them go to B alone. */
    for (unsigned i = 0; i < 5; i++)
        assert_int_equal(send(c, mac_n(1000 + i), MAC_C, 60), BIT(b));
    /* A kept the MACs it sent from last, and 0, which it kept using. */
    assert_int_equal(send(c, mac_n(0), MAC_C, 60), BIT(a));
    for (unsigned i = 100 - (NSW_MACS_PER_PORT - 1); i < 100; i++)
        assert_int_equal(send(c, mac_n(i), MAC_C, 60), BIT(a));
    assert_int_equal(send(c, mac_n(100 - NSW_MACS_PER_PORT), MAC_C, 60), BIT(a) | BIT(b));
    uint8_t macs[NSW_MACS_PER_PORT][NSW_MAC_BYTES];
    assert_int_equal(nsw_port_macs(&net, b, macs, NSW_MACS_PER_PORT), 5);
    assert_int_equal(nsw_port_macs(&net, a, macs, 3), 3);
}

static void test_a_mac_moving_to_another_port_is_relearned(void **state)
{
    (void)state;
    int a = add(NULL, 8192), b = add(NULL, 8192), c = add(NULL, 8192);
    send(a, BROADCAST, mac_n(5), 60);
    assert_int_equal(send(c, mac_n(5), MAC_C, 60), BIT(a));
    send(b, BROADCAST, mac_n(5), 60);
    assert_int_equal(send(c, mac_n(5), MAC_C, 60), BIT(b));
    assert_int_equal(info(a).macs_learned, 0);
    assert_int_equal(info(b).macs_learned, 1);
    assert_int_equal(net.stats.macs_moved, 1);
}

static void test_a_ports_configured_mac_cannot_be_taken(void **state)
{
    (void)state;
    int a = add(MAC_A, 8192), b = add(MAC_B, 8192), c = add(NULL, 8192);
    assert_int_equal(send(c, MAC_A, MAC_B, 60), 0);
    assert_int_equal(drops(c, NSW_DROP_BAD_SOURCE), 1);
    assert_int_equal(send(a, MAC_B, MAC_A, 60), BIT(b));
    /* Another port configured with it, or a group MAC, is refused. */
    assert_int_equal(add(MAC_B, 8192), -1);
    assert_int_equal(add(MULTICAST, 8192), -1);
    /* A port configured with a MAC learned elsewhere takes it over. */
    send(c, BROADCAST, MAC_D, 60);
    assert_int_equal(send(a, MAC_D, MAC_A, 60), BIT(c));
    int d = add(MAC_D, 8192);
    assert_true(d >= 0);
    assert_int_equal(info(c).macs_learned, 0);
    assert_int_equal(send(a, MAC_D, MAC_A, 60), BIT(d));
    assert_int_equal(send(c, BROADCAST, MAC_D, 60), 0);
}

static void test_ports_are_bounded_and_their_indexes_reused(void **state)
{
    (void)state;
    uint8_t tiny[NSW_STORAGE_MIN];
    assert_int_equal(nsw_port_add(&net, NULL, tiny, sizeof tiny - 1), -1);
    assert_int_equal(nsw_port_add(&net, NULL, NULL, 8192), -1);
    for (int i = 0; i < NSW_PORTS_MAX; i++)
        assert_int_equal(add(mac_n((unsigned)i), 4096), i);
    assert_int_equal(add(NULL, 4096), -1);
    assert_true(nsw_port_remove(&net, 3));
    assert_int_equal(nsw_port_add(&net, mac_n(3), tiny, sizeof tiny), 3);
    /* Split seven ways, the smallest queue has no share that holds a frame. */
    assert_int_equal(send(0, mac_n(3), mac_n(0), NSW_FRAME_MIN), 0);
    assert_int_equal(drops(0, NSW_DROP_QUOTA), 1);
    assert_true(nsw_port_remove(&net, 1));
    assert_false(nsw_port_remove(&net, -1));
    assert_false(nsw_port_remove(&net, NSW_PORTS_MAX));
    assert_int_equal(nsw_send(&net, 1, NULL, frame_buf, 60), 0);
    assert_int_equal(nsw_recv(&net, 1, NULL, recv_buf, sizeof recv_buf), 0);
}

static void test_counters_add_up(void **state)
{
    (void)state;
    int a = add(MAC_A, 8192), b = add(MAC_B, 8192);
    send(a, MAC_B, MAC_A, 100);
    send(a, MAC_B, MAC_A, 200);
    send(a, MAC_B, MAC_A, 300);
    send(a, MAC_B, MAC_A, 10);
    assert_int_equal(info(a).stats.tx_frames, 3);
    assert_int_equal(info(a).stats.tx_bytes, 600);
    nsw_recv(&net, b, NULL, recv_buf, sizeof recv_buf);
    nsw_recv(&net, b, NULL, recv_buf, sizeof recv_buf);
    assert_int_equal(info(b).stats.rx_frames, 2);
    assert_int_equal(info(b).stats.rx_bytes, 300);
    assert_int_equal(info(b).queue_frames, 1);
    assert_int_equal(info(b).queue_used, NSW_RECORD_HEADER + 300);
    assert_string_equal(nsw_drop_name(NSW_DROP_QUOTA), "quota");
    assert_string_equal(nsw_drop_name(NSW_DROP_REASONS), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_learned_unicast_goes_only_to_the_learned_port, setup),
        cmocka_unit_test_setup(test_broadcast_multicast_and_unknown_flood_to_all_but_the_sender, setup),
        cmocka_unit_test_setup(test_runt_too_big_and_bad_sources_are_dropped_and_counted, setup),
        cmocka_unit_test_setup(test_frame_to_the_senders_own_mac_is_filtered, setup),
        cmocka_unit_test_setup(test_flooder_gets_its_own_frames_dropped_never_another_sources, setup),
        cmocka_unit_test_setup(test_fifo_order_and_metadata_round_trip, setup),
        cmocka_unit_test_setup(test_frames_split_by_the_rings_end_arrive_intact, setup),
        cmocka_unit_test_setup(test_recv_into_a_short_buffer_reports_the_length_and_keeps_the_frame, setup),
        cmocka_unit_test_setup(test_port_removal_forgets_its_macs_and_frames_and_gives_its_share_back, setup),
        cmocka_unit_test_setup(test_a_joining_port_finds_its_share_at_once, setup),
        cmocka_unit_test_setup(test_trimming_a_wrapped_ring_keeps_frames_intact, setup),
        cmocka_unit_test_setup(test_mac_table_is_bounded_per_port, setup),
        cmocka_unit_test_setup(test_a_mac_moving_to_another_port_is_relearned, setup),
        cmocka_unit_test_setup(test_a_ports_configured_mac_cannot_be_taken, setup),
        cmocka_unit_test_setup(test_ports_are_bounded_and_their_indexes_reused, setup),
        cmocka_unit_test_setup(test_counters_add_up, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
