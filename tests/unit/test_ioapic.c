/* The guest I/O APIC: register window, redirection entries, edge and level pins,
 * masking, Remote IRR and EOI, bad accesses. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/dev/ioapic.c"
#include "vmm/snap.c"
#include "snap_test.h"

static struct ioapic io;
static struct ioapic_msg sent[16];
static int nsent;

static void deliver(void *ctx, const struct ioapic_msg *m)
{
    (void)ctx;
    if (nsent < 16)
        sent[nsent] = *m;
    nsent++;
}

static int setup(void **state)
{
    (void)state;
    nsent = 0;
    ioapic_init(&io, 2, deliver, NULL);
    return 0;
}

static uint32_t rd(uint32_t reg) { ioapic_write(&io, 0, 4, reg); return ioapic_read(&io, 0x10, 4); }
static void wr(uint32_t reg, uint32_t v) { ioapic_write(&io, 0, 4, reg); ioapic_write(&io, 0x10, 4, v); }
static void route(unsigned pin, uint32_t low, uint8_t dest) { wr(0x11 + 2 * pin, (uint32_t)dest << 24); wr(0x10 + 2 * pin, low); }

static void test_identification(void **state)
{
    (void)state;
    assert_int_equal(rd(0x00), 2u << 24);
    assert_int_equal(rd(0x01) & 0xff, 0x20);
    assert_int_equal((rd(0x01) >> 16) & 0xff, IOAPIC_PINS - 1);
    wr(0x01, 0);                          /* read-only */
    assert_int_equal(rd(0x01) & 0xff, 0x20);
    wr(0x00, 7u << 24);
    assert_int_equal(rd(0x00), 7u << 24);
    assert_int_equal(rd(0x10) & (1u << 16), 1u << 16);  /* masked after reset */
    assert_int_equal(rd(0x50), 0xffffffffu);            /* past the last entry */
    assert_int_equal(ioapic_read(&io, 0x10, 2), 0xffffffffu);
    assert_int_equal(ioapic_read(&io, 0x20, 4), 0xffffffffu);
}

static void test_edge_pin(void **state)
{
    (void)state;
    route(2, 0x30, 1);                    /* vector 0x30, fixed, physical, edge, unmasked */
    ioapic_set_irq(&io, 2, true);
    assert_int_equal(nsent, 1);
    assert_int_equal(sent[0].vector, 0x30);
    assert_int_equal(sent[0].dest, 1);
    assert_false(sent[0].level);
    ioapic_set_irq(&io, 2, true);         /* still high: no new edge */
    assert_int_equal(nsent, 1);
    ioapic_set_irq(&io, 2, false);
    ioapic_set_irq(&io, 2, true);
    assert_int_equal(nsent, 2);
}

static void test_masking(void **state)
{
    (void)state;
    route(4, 0x34 | (1u << 16), 0);       /* masked edge pin: the edge is lost */
    ioapic_set_irq(&io, 4, true);
    assert_int_equal(nsent, 0);
    route(4, 0x34, 0);
    assert_int_equal(nsent, 0);
    ioapic_set_irq(&io, 4, false);
    ioapic_set_irq(&io, 4, true);
    assert_int_equal(nsent, 1);
    /* A masked level pin interrupts once unmasked, while still asserted. */
    route(5, 0x35 | (1u << 15) | (1u << 16), 0);
    ioapic_set_irq(&io, 5, true);
    assert_int_equal(nsent, 1);
    route(5, 0x35 | (1u << 15), 0);
    assert_int_equal(nsent, 2);
    assert_int_equal(sent[1].vector, 0x35);
}

static void test_level_pin_remote_irr(void **state)
{
    (void)state;
    route(9, 0x39 | (1u << 15) | (1u << 13), 0); /* level, active low (the SCI) */
    ioapic_set_irq(&io, 9, true);
    assert_int_equal(nsent, 1);
    assert_true(sent[0].level);
    assert_int_equal(rd(0x10 + 18) & (1u << 14), 1u << 14);  /* Remote IRR */
    ioapic_set_irq(&io, 9, true);          /* no redelivery before EOI */
    assert_int_equal(nsent, 1);
    ioapic_eoi(&io, 0x39);                 /* line still high: again */
    assert_int_equal(nsent, 2);
    ioapic_set_irq(&io, 9, false);
    ioapic_write(&io, 0x40, 4, 0x39);      /* EOI register */
    assert_int_equal(nsent, 2);
    assert_int_equal(rd(0x10 + 18) & (1u << 14), 0);
    ioapic_eoi(&io, 0x55);                 /* unrelated vector: nothing */
    assert_int_equal(nsent, 2);
}

static void test_delivery_fields_and_readonly_bits(void **state)
{
    (void)state;
    route(1, 0x41 | (1u << 8) | (1u << 11), 0x0f); /* lowest priority, logical */
    ioapic_set_irq(&io, 1, true);
    assert_int_equal(sent[0].delivery_mode, 1);
    assert_true(sent[0].logical);
    assert_int_equal(sent[0].dest, 0x0f);
    wr(0x12, 0x41 | (1u << 12) | (1u << 14));      /* Delivery Status / Remote IRR are read-only */
    assert_int_equal(rd(0x12) & ((1u << 12) | (1u << 14)), 0);
    ioapic_set_irq(&io, 30, true);                 /* no such pin: ignored */
    assert_int_equal(nsent, 1);
}

/* ---- snapshots ---- */

static size_t save_io(const struct ioapic *x, uint8_t *buf)
{
    struct snap st;
    snap_save_begin(&st, buf, SNAP_TEST_BUF);
    assert_true(ioapic_save(x, &st));
    size_t n = snap_save_end(&st);
    assert_true(n > SNAP_HEADER_BYTES);
    return n;
}

static bool load_io(void *model, struct snap *st)
{
    return ioapic_load(model, st);
}

/* A new ID, an edge pin routed and high, a level pin delivered and awaiting its
 * EOI, a masked level pin asserted, IOREGSEL left on an entry's high half. */
static void busy_io(void)
{
    wr(0x00, 7u << 24);
    route(2, 0x30, 1);
    ioapic_set_irq(&io, 2, true);
    route(9, 0x39 | (1u << 15) | (1u << 13), 3);
    ioapic_set_irq(&io, 9, true);
    route(5, 0x35 | (1u << 15) | (1u << 16), 0);
    ioapic_set_irq(&io, 5, true);
    ioapic_write(&io, 0, 4, 0x13);
    assert_int_equal(nsent, 2);
    assert_int_equal(io.remote_irr, 1u << 9);
}

/* The guest's next steps, the messages they send counted from nsent = 0. */
static void run_guest(struct ioapic *x, uint32_t out[8])
{
    nsent = 0;
    out[0] = ioapic_read(x, 0x10, 4);          /* pin 1's high half, via IOREGSEL */
    ioapic_write(x, 0, 4, 0x00);
    out[1] = ioapic_read(x, 0x10, 4);
    ioapic_write(x, 0, 4, 0x10 + 18);
    out[2] = ioapic_read(x, 0x10, 4);          /* Remote IRR */
    ioapic_eoi(x, 0x39);                       /* still asserted: again */
    ioapic_set_irq(x, 2, true);                /* still high: no edge */
    ioapic_write(x, 0, 4, 0x10 + 10);
    ioapic_write(x, 0x10, 4, 0x35 | (1u << 15)); /* unmask pin 5: it interrupts */
    out[3] = (uint32_t)nsent;
    out[4] = sent[0].vector | (uint32_t)sent[0].dest << 8 | (uint32_t)sent[0].level << 16;
    out[5] = sent[1].vector;
}

static void test_snapshot_round_trip(void **state)
{
    (void)state;
    busy_io();
    uint8_t a[SNAP_TEST_BUF], b[SNAP_TEST_BUF];
    size_t n = save_io(&io, a);
    struct ioapic q;
    ioapic_init(&q, 0, deliver, NULL);
    struct snap st;
    assert_true(snap_load_begin(&st, a, n));
    assert_true(ioapic_load(&q, &st));
    assert_true(snap_load_end(&st));
    assert_int_equal(nsent, 2);                /* the load sends nothing */
    assert_int_equal(save_io(&q, b), n);
    assert_memory_equal(a, b, n);

    uint32_t want[8] = { 0 }, got[8] = { 0 };
    run_guest(&io, want);
    run_guest(&q, got);
    assert_memory_equal(want, got, sizeof want);
    assert_int_equal(want[1], 7u << 24);
    assert_int_equal(want[2] & (1u << 14), 1u << 14);
    assert_int_equal(want[3], 2);
    assert_int_equal(want[4], 0x39 | 3u << 8 | 1u << 16);
    assert_int_equal(want[5], 0x35);
}

static void test_snapshot_truncated(void **state)
{
    (void)state;
    busy_io();
    uint8_t a[SNAP_TEST_BUF];
    size_t n = save_io(&io, a);
    struct ioapic q;
    ioapic_init(&q, 3, deliver, NULL);
    nsent = 0;
    snap_test_truncations(a, n, load_io, &q, sizeof q);
    snap_test_extended(a, n, load_io, &q, sizeof q);
    assert_int_equal(nsent, 0);
}

static void refuse_io(const struct ioapic *bad, const char *why)
{
    uint8_t a[SNAP_TEST_BUF];
    size_t n = save_io(bad, a);
    struct ioapic q;
    ioapic_init(&q, 3, NULL, NULL);
    snap_test_refused(a, n, load_io, &q, sizeof q, why);
}

static void test_snapshot_tampered(void **state)
{
    (void)state;
    busy_io();
    uint8_t a[SNAP_TEST_BUF];
    size_t n = save_io(&io, a);
    snap_test_flips(a, n);

    struct ioapic bad = io;
    bad.id = 0x10;
    refuse_io(&bad, "ioapic: ID past 4 bits");
    bad = io;
    bad.ioregsel = 0x100;
    refuse_io(&bad, "ioapic: IOREGSEL past 8 bits");
    bad = io;
    bad.redir[23] |= RE_REMOTE_IRR;
    refuse_io(&bad, "ioapic: read-only or reserved bits in a redirection entry");
    bad = io;
    bad.redir[0] |= 1ull << 40;
    refuse_io(&bad, "ioapic: read-only or reserved bits in a redirection entry");
    bad = io;
    bad.pin_level |= 1u << 24;
    refuse_io(&bad, "ioapic: a pin past the last");
    bad = io;
    bad.remote_irr |= 1u << 31;
    refuse_io(&bad, "ioapic: a pin past the last");
    bad = io;
    bad.remote_irr |= 1u << 2;                 /* pin 2 is edge-triggered */
    refuse_io(&bad, "ioapic: Remote IRR on an edge-triggered pin");
}

static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

/* Every state the guest and the devices can drive the I/O APIC into is one a
 * load takes back unchanged. */
static void test_snapshot_every_reachable_state_loads(void **state)
{
    (void)state;
    uint8_t a[SNAP_TEST_BUF], b[SNAP_TEST_BUF];
    for (unsigned step = 0; step < 20000; step++) {
        uint64_t r = rnd();
        uint32_t v = (uint32_t)(r >> 32);
        switch (r % 5) {
        case 0:
            ioapic_write(&io, 0, 4, (r >> 8) % 4 ? 0x10 + (uint32_t)((r >> 16) % 48) : v);
            break;
        case 1:
            ioapic_write(&io, (r >> 8) % 8 ? 0x10 : 0x40, 4, v);
            break;
        case 2:
            (void)ioapic_read(&io, (r >> 8) % 2 ? 0x10 : 0x00, 4);
            break;
        case 3:
            ioapic_set_irq(&io, (unsigned)((r >> 8) % 26), (r >> 16) & 1);
            break;
        default:
            ioapic_eoi(&io, (uint8_t)v);
            break;
        }
        nsent = 0;
        if (step % 5)
            continue;
        size_t n = save_io(&io, a);
        struct ioapic q;
        ioapic_init(&q, 0, NULL, NULL);
        struct snap st;
        assert_true(snap_load_begin(&st, a, n));
        assert_true(ioapic_load(&q, &st));
        assert_true(snap_load_end(&st));
        assert_int_equal(save_io(&q, b), n);
        assert_memory_equal(a, b, n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_identification, setup),
        cmocka_unit_test_setup(test_edge_pin, setup),
        cmocka_unit_test_setup(test_masking, setup),
        cmocka_unit_test_setup(test_level_pin_remote_irr, setup),
        cmocka_unit_test_setup(test_delivery_fields_and_readonly_bits, setup),
        cmocka_unit_test_setup(test_snapshot_round_trip, setup),
        cmocka_unit_test_setup(test_snapshot_truncated, setup),
        cmocka_unit_test_setup(test_snapshot_tampered, setup),
        cmocka_unit_test_setup(test_snapshot_every_reachable_state_loads, setup),
    };
    return cmocka_run_group_tests_name("ioapic", tests, NULL, NULL);
}
