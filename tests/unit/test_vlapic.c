/* The guest local APIC: registers in both modes, priorities and EOI, the timer's
 * three modes, the ICR's IPIs, mode transitions, bad accesses. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/dev/vlapic.c"
#include "vmm/snap.c"
#include "snap_test.h"

static struct vlapic a;
static struct vlapic_ipi ipis[8];
static int nipi;
static int eoi_vec = -1;

static void on_ipi(void *ctx, const struct vlapic_ipi *i) { (void)ctx; if (nipi < 8) ipis[nipi] = *i; nipi++; }
static void on_eoi(void *ctx, uint8_t v) { (void)ctx; eoi_vec = v; }
static const struct vlapic_ops ops = { on_ipi, on_eoi, NULL };

static int setup(void **state)
{
    (void)state;
    nipi = 0;
    eoi_vec = -1;
    vlapic_init(&a, 1, false, 1000000000ull, &ops);
    vlapic_mmio_write(&a, R_SVR, 4, SVR_ENABLE | 0xff, 0);
    return 0;
}

static uint32_t rd(uint32_t off) { return vlapic_mmio_read(&a, off, 4, 0); }
static void wr(uint32_t off, uint32_t v) { vlapic_mmio_write(&a, off, 4, v, 0); }

static void test_identity_and_reset(void **state)
{
    (void)state;
    assert_int_equal(rd(R_ID), 1u << 24);
    assert_int_equal(rd(R_VERSION) & 0xff, 0x14);
    assert_int_equal((rd(R_VERSION) >> 16) & 0xff, 6);
    assert_int_equal(rd(R_LVT_TIMER) & LVT_MASKED, LVT_MASKED);
    assert_int_equal(rd(R_DFR), 0xffffffffu);
    assert_int_equal(vlapic_mmio_read(&a, R_ID, 2, 0), 0);   /* only 32-bit accesses */
    assert_int_equal(vlapic_mmio_read(&a, R_ID + 4, 4, 0), 0);
    wr(R_VERSION, 0);                                         /* read-only */
    assert_int_equal(rd(R_VERSION) & 0xff, 0x14);
}

static void test_priority_and_eoi(void **state)
{
    (void)state;
    vlapic_accept(&a, 0x41, false);
    vlapic_accept(&a, 0x62, true);
    assert_int_equal(vlapic_pending(&a), 0x62);
    vlapic_ack(&a, 0x62);
    assert_int_equal(rd(R_ISR + 0x30) & (1u << 2), 1u << 2);  /* 0x62 = word 3, bit 2 */
    assert_int_equal(rd(R_PPR), 0x60);
    assert_int_equal(vlapic_pending(&a), -1);                 /* 0x41 is below the PPR */
    wr(R_EOI, 0);
    assert_int_equal(eoi_vec, 0x62);                          /* level: the IOAPIC hears of it */
    assert_int_equal(vlapic_pending(&a), 0x41);
    wr(R_TPR, 0x50);
    assert_int_equal(vlapic_pending(&a), -1);                 /* masked by the TPR */
    wr(R_TPR, 0x30);
    vlapic_ack(&a, 0x41);
    eoi_vec = -1;
    wr(R_EOI, 0);
    assert_int_equal(eoi_vec, -1);                            /* edge: no EOI message */
    vlapic_accept(&a, 5, false);                              /* illegal vector */
    assert_int_equal(vlapic_pending(&a), -1);
    wr(R_ESR, 0);
    assert_int_equal(rd(R_ESR) & ESR_ILLEGAL_VECTOR_RECV, ESR_ILLEGAL_VECTOR_RECV);
}

static void test_software_disable(void **state)
{
    (void)state;
    wr(R_LVT_TIMER, 0xec);
    wr(R_SVR, 0xff);                                          /* software-disabled */
    assert_int_equal(rd(R_LVT_TIMER) & LVT_MASKED, LVT_MASKED);
    vlapic_accept(&a, 0x40, false);
    assert_int_equal(vlapic_pending(&a), -1);
    wr(R_LVT_TIMER, 0xec);                                    /* stays masked while disabled */
    assert_int_equal(rd(R_LVT_TIMER) & LVT_MASKED, LVT_MASKED);
}

static void test_timer_oneshot_and_periodic(void **state)
{
    (void)state;
    wr(R_TIMER_DCR, 0x3);                                     /* divide by 16 */
    wr(R_LVT_TIMER, 0xef);                                    /* one-shot, vector 0xef */
    vlapic_mmio_write(&a, R_TIMER_ICR, 4, 1000, 1000);        /* 16 us from t=1000 */
    assert_int_equal(vlapic_next_timer_ns(&a), 1000 + 16000);
    assert_int_equal(vlapic_mmio_read(&a, R_TIMER_CCR, 4, 1000 + 8000), 500);
    vlapic_tick(&a, 1000 + 15999, 0);
    assert_int_equal(vlapic_pending(&a), -1);
    vlapic_tick(&a, 1000 + 16000, 0);
    assert_int_equal(vlapic_pending(&a), 0xef);
    assert_int_equal(vlapic_mmio_read(&a, R_TIMER_CCR, 4, 50000), 0);
    assert_int_equal(vlapic_next_timer_ns(&a), UINT64_MAX);

    vlapic_ack(&a, 0xef);
    wr(R_EOI, 0);
    wr(R_TIMER_DCR, 0xb);                                     /* divide by 1 */
    wr(R_LVT_TIMER, 0xef | (TIMER_PERIODIC << TIMER_MODE_SHIFT));
    vlapic_mmio_write(&a, R_TIMER_ICR, 4, 100, 0);
    vlapic_tick(&a, 100, 0);
    assert_int_equal(vlapic_pending(&a), 0xef);
    assert_int_equal(vlapic_next_timer_ns(&a), 200);
    assert_int_equal(vlapic_mmio_read(&a, R_TIMER_CCR, 4, 150), 50);
    vlapic_tick(&a, 1050, 0);                                 /* late: fires once, realigned */
    assert_int_equal(vlapic_next_timer_ns(&a), 1100);
    wr(R_LVT_TIMER, 0xef);                                    /* mode change disarms */
    assert_int_equal(vlapic_next_timer_ns(&a), UINT64_MAX);
}

static void test_masked_timer_sets_nothing(void **state)
{
    (void)state;
    wr(R_TIMER_DCR, 0xb);
    wr(R_LVT_TIMER, 0x45 | LVT_MASKED | (TIMER_PERIODIC << TIMER_MODE_SHIFT));
    vlapic_mmio_write(&a, R_TIMER_ICR, 4, 100, 0);
    vlapic_tick(&a, 1000, 0);                                 /* ten periods later */
    assert_int_equal(vlapic_pending(&a), -1);
    assert_int_equal(rd(R_IRR + 0x20) & (1u << 5), 0);        /* 0x45 never requested */
    wr(R_LVT_TIMER, 0x45 | (TIMER_PERIODIC << TIMER_MODE_SHIFT));
    vlapic_tick(&a, 1100, 0);                                 /* unmasked: it fires */
    assert_int_equal(vlapic_pending(&a), 0x45);
}

static void test_tsc_deadline(void **state)
{
    (void)state;
    vlapic_set_tsc_deadline(&a, 500);                         /* not in deadline mode: ignored */
    wr(R_LVT_TIMER, 0xd0 | (TIMER_TSC_DEADLINE << TIMER_MODE_SHIFT));
    vlapic_tick(&a, 0, 1000);
    assert_int_equal(vlapic_pending(&a), -1);
    vlapic_set_tsc_deadline(&a, 2000);
    wr(R_TIMER_ICR, 5);                                       /* ignored in deadline mode */
    assert_int_equal(rd(R_TIMER_ICR), 0);
    vlapic_tick(&a, 0, 1999);
    assert_int_equal(vlapic_pending(&a), -1);
    vlapic_tick(&a, 0, 2000);
    assert_int_equal(vlapic_pending(&a), 0xd0);
}

static void test_icr_init_sipi_and_self(void **state)
{
    (void)state;
    wr(R_ICR_HIGH, 2u << 24);
    wr(R_ICR_LOW, (VLAPIC_INIT << 8) | (1u << 14));           /* INIT, assert */
    wr(R_ICR_LOW, (VLAPIC_SIPI << 8) | 0x9a);                 /* SIPI to page 0x9a000 */
    assert_int_equal(nipi, 2);
    assert_int_equal(ipis[0].mode, VLAPIC_INIT);
    assert_int_equal(ipis[0].dest, 2);
    assert_int_equal(ipis[1].mode, VLAPIC_SIPI);
    assert_int_equal(ipis[1].vector, 0x9a);
    assert_int_equal(rd(R_ICR_LOW) & (1u << 12), 0);          /* delivery status idle */
    wr(R_ICR_LOW, (VLAPIC_ALL_BUT_SELF << 18) | 0x80);
    assert_int_equal(ipis[2].shorthand, VLAPIC_ALL_BUT_SELF);
    wr(R_ICR_LOW, (VLAPIC_SELF << 18) | 0x81);                /* self: straight into our IRR */
    assert_int_equal(nipi, 3);
    assert_int_equal(vlapic_pending(&a), 0x81);
    wr(R_ICR_LOW, 0x05);                                      /* fixed vector 5 is illegal */
    assert_int_equal(nipi, 3);
}

static void test_x2apic_mode(void **state)
{
    (void)state;
    uint64_t v;
    assert_false(vlapic_msr_read(&a, 0x802, &v, 0));          /* MSRs #GP in xAPIC mode */
    assert_true(vlapic_set_base_mode(&a, true, true));
    assert_int_equal(vlapic_mmio_read(&a, R_ID, 4, 0), 0);    /* the page is gone */
    assert_true(vlapic_msr_read(&a, 0x802, &v, 0));
    assert_int_equal(v, 1);                                   /* 32-bit ID, not shifted */
    assert_true(vlapic_msr_read(&a, 0x80d, &v, 0));           /* LDR derived from the ID */
    assert_int_equal(v, 1u << 1);
    assert_false(vlapic_msr_write(&a, 0x80d, 5, 0));          /* LDR read-only */
    assert_false(vlapic_msr_read(&a, 0x80b, &v, 0));          /* EOI write-only */
    assert_false(vlapic_msr_write(&a, 0x80b, 1, 0));          /* EOI with a value: #GP */
    assert_true(vlapic_msr_write(&a, 0x830, (uint64_t)7 << 32 | (VLAPIC_FIXED << 8) | 0x55, 0));
    assert_int_equal(ipis[0].dest, 7);                        /* 32-bit destination */
    assert_true(vlapic_msr_write(&a, 0x83f, 0x66, 0));        /* SELF IPI */
    assert_int_equal(vlapic_pending(&a), 0x66);
    assert_false(vlapic_msr_read(&a, 0x8ff, &v, 0));          /* reserved */
    assert_false(vlapic_set_base_mode(&a, true, false));      /* x2APIC -> xAPIC: illegal */
    assert_true(vlapic_set_base_mode(&a, false, false));      /* disable resets */
    assert_false(vlapic_set_base_mode(&a, true, true));       /* disabled -> x2APIC: illegal */
    assert_true(vlapic_set_base_mode(&a, true, false));
    assert_int_equal(vlapic_pending(&a), -1);
    assert_int_equal(rd(R_ID), 1u << 24);
}

/* ---- snapshots ---- */

/* Non-zero, so that a time kept absolute rather than relative shows. */
#define SNAP_T0 1000000000000ull

static uint64_t snap_now;

static size_t save_apic(const struct vlapic *x, uint8_t *buf, uint64_t now)
{
    struct snap st;
    snap_save_begin(&st, buf, SNAP_TEST_BUF);
    assert_true(vlapic_save(x, &st, now));
    size_t n = snap_save_end(&st);
    assert_true(n > SNAP_HEADER_BYTES);
    return n;
}

static bool load_apic(void *model, struct snap *st)
{
    return vlapic_load(model, st, snap_now);
}

static void load_apic_ok(struct vlapic *x, const uint8_t *buf, size_t n, uint64_t now)
{
    struct snap st;
    assert_true(snap_load_begin(&st, buf, n));
    assert_true(vlapic_load(x, &st, now));
    assert_true(snap_load_end(&st));
}

static void wr_at(struct vlapic *x, uint32_t off, uint32_t v, uint64_t now)
{
    vlapic_mmio_write(x, off, 4, v, now);
}

/* A 100 MHz timer clock divided by 4, periodic, 12345 ns into a 40 us period; a
 * level vector in service, one requested below the PPR and one above it; an
 * error not yet latched; a flat logical destination and an ICR written. */
static void busy_apic(void)
{
    vlapic_init(&a, 3, false, 100000000ull, &ops);
    uint64_t t = SNAP_T0;
    wr_at(&a, R_SVR, SVR_ENABLE | 0xff, t);
    wr_at(&a, R_TPR, 0x20, t);
    wr_at(&a, R_LDR, 0x01000000u, t);
    vlapic_accept(&a, 0x62, true);
    vlapic_ack(&a, 0x62);
    vlapic_accept(&a, 0x41, true);
    vlapic_accept(&a, 0x91, false);
    wr_at(&a, R_ICR_HIGH, 5u << 24, t);
    wr_at(&a, R_ICR_LOW, 0x05, t);                     /* fixed vector 5: illegal */
    wr_at(&a, R_TIMER_DCR, 0x1, t);
    wr_at(&a, R_LVT_TIMER, 0xef | (TIMER_PERIODIC << TIMER_MODE_SHIFT), t);
    wr_at(&a, R_TIMER_ICR, 1000, t);
    snap_now = SNAP_T0 + 12345;
    assert_int_equal(vlapic_pending(&a), 0x91);
    assert_int_not_equal(a.esr_pending, 0);
}

/* What the guest and the monitor see from now on (times relative to now). */
static void run_guest(struct vlapic *x, uint64_t now, uint64_t out[16])
{
    unsigned n = 0;
    out[n++] = vlapic_mmio_read(x, R_TIMER_CCR, 4, now);
    uint64_t next = vlapic_next_timer_ns(x);
    out[n++] = next - now;
    out[n++] = (uint64_t)vlapic_pending(x);
    out[n++] = vlapic_mmio_read(x, R_PPR, 4, now);
    vlapic_tick(x, next - 1, 0);
    out[n++] = vlapic_mmio_read(x, R_IRR + 0x70, 4, now);  /* 0xef not yet */
    vlapic_tick(x, next, 0);
    out[n++] = vlapic_mmio_read(x, R_IRR + 0x70, 4, now);  /* now it is */
    out[n++] = vlapic_next_timer_ns(x) - now;
    out[n++] = vlapic_mmio_read(x, R_TIMER_CCR, 4, next + 10000);
    eoi_vec = -1;
    wr_at(x, R_EOI, 0, next);
    out[n++] = (uint64_t)eoi_vec;                          /* 0x62 was level */
    wr_at(x, R_ESR, 0, next);
    out[n++] = vlapic_mmio_read(x, R_ESR, 4, next);
    out[n++] = vlapic_mmio_read(x, R_ICR_HIGH, 4, next);
    out[n++] = vlapic_mmio_read(x, R_LDR, 4, next);
    out[n++] = vlapic_mmio_read(x, R_ID, 4, next);
    out[15] = n;
}

static void test_snapshot_round_trip(void **state)
{
    (void)state;
    busy_apic();
    uint8_t buf_a[SNAP_TEST_BUF], buf_b[SNAP_TEST_BUF];
    size_t n = save_apic(&a, buf_a, snap_now);

    struct vlapic q, r;
    vlapic_init(&q, 0, false, 0, &ops);
    load_apic_ok(&q, buf_a, n, snap_now);
    assert_int_equal(save_apic(&q, buf_b, snap_now), n);
    assert_memory_equal(buf_a, buf_b, n);

    /* Five seconds later the timer reads on from the save: same count, same
     * distance to the next expiry; the saved clock rate came along. */
    const uint64_t later = snap_now + 5000000000ull;
    nipi = 0;
    vlapic_init(&r, 9, false, 0, &ops);
    load_apic_ok(&r, buf_a, n, later);
    assert_int_equal(nipi, 0);
    assert_int_equal(eoi_vec, -1);
    assert_int_equal(r.timer_hz, 100000000ull);
    uint64_t want[16] = { 0 }, got[16] = { 0 };
    run_guest(&a, snap_now, want);
    run_guest(&r, later, got);
    assert_memory_equal(want, got, sizeof want);
    assert_int_equal(want[0], 1000 - 12345 / 40);          /* 40 ns a count, rounded up */
    assert_int_equal(want[1], 40000 - 12345);
    assert_int_equal(want[2], 0x91);
    assert_int_equal(want[5], 1u << 15);                   /* 0xef: word 7, bit 15 */
    assert_int_equal(want[6], 80000 - 12345);
    assert_int_equal(want[8], 0x62);
    assert_int_equal(want[9], ESR_ILLEGAL_VECTOR_SENT);
    assert_int_equal(want[12], 3u << 24);
}

/* TSC-deadline mode: the deadline is a guest TSC value and comes back as it was,
 * whatever the load's now; x2APIC mode and its 32-bit ICR destination too. */
static void test_snapshot_tsc_deadline_and_x2apic(void **state)
{
    (void)state;
    assert_true(vlapic_set_base_mode(&a, true, true));
    assert_true(vlapic_msr_write(&a, 0x832, 0xd0 | (TIMER_TSC_DEADLINE << TIMER_MODE_SHIFT), SNAP_T0));
    vlapic_set_tsc_deadline(&a, 123456789);
    assert_true(vlapic_msr_write(&a, 0x830, (uint64_t)0x12345 << 32 | (VLAPIC_NMI << 8), SNAP_T0));
    uint8_t buf[SNAP_TEST_BUF];
    size_t n = save_apic(&a, buf, SNAP_T0);
    struct vlapic q;
    vlapic_init(&q, 0, false, 0, &ops);
    load_apic_ok(&q, buf, n, 7);
    assert_int_equal(q.tsc_deadline, 123456789);
    assert_true(q.x2apic);
    uint64_t v = 0;
    assert_true(vlapic_msr_read(&q, 0x830, &v, 7));
    assert_int_equal(v >> 32, 0x12345);
    assert_true(vlapic_msr_read(&q, 0x802, &v, 7));
    assert_int_equal(v, 1);                                /* the ID, x2APIC form */
    vlapic_tick(&q, 7, 123456788);
    assert_int_equal(vlapic_pending(&q), -1);
    vlapic_tick(&q, 7, 123456789);
    assert_int_equal(vlapic_pending(&q), 0xd0);
}

static void test_snapshot_truncated(void **state)
{
    (void)state;
    busy_apic();
    uint8_t buf[SNAP_TEST_BUF];
    size_t n = save_apic(&a, buf, snap_now);
    struct vlapic q;
    vlapic_init(&q, 4, true, 0, &ops);
    nipi = 0;
    snap_test_truncations(buf, n, load_apic, &q, sizeof q);
    snap_test_extended(buf, n, load_apic, &q, sizeof q);
    assert_int_equal(nipi, 0);
}

static void refuse_apic(const struct vlapic *bad, const char *why)
{
    uint8_t buf[SNAP_TEST_BUF];
    size_t n = save_apic(bad, buf, snap_now);
    struct vlapic q;
    vlapic_init(&q, 4, false, 0, &ops);
    vlapic_accept(&q, 0x33, false);
    snap_test_refused(buf, n, load_apic, &q, sizeof q, why);
}

static void test_snapshot_tampered(void **state)
{
    (void)state;
    busy_apic();
    uint8_t buf[SNAP_TEST_BUF];
    size_t n = save_apic(&a, buf, snap_now);
    snap_test_flips(buf, n);

    struct vlapic bad = a;
    bad.x2apic = true;
    bad.hw_enabled = false;
    refuse_apic(&bad, "vlapic: x2APIC mode without EN");
    /* 20 and 500 divide 1 GHz but are below 1 kHz, where the period math overflows. */
    static const uint64_t bad_hz[] = { 0, 3, 20, 500, 2000000000ull, 1000000001ull, UINT64_MAX };
    for (unsigned i = 0; i < sizeof bad_hz / sizeof bad_hz[0]; i++) {
        bad = a;
        bad.timer_hz = bad_hz[i];
        refuse_apic(&bad, "vlapic: a timer clock below 1 kHz or not dividing 1 GHz");
    }
    bad = a;
    bad.tpr = 0x100;
    refuse_apic(&bad, "vlapic: TPR or SVR reserved bits set");
    bad = a;
    bad.svr |= 0x2000;
    refuse_apic(&bad, "vlapic: TPR or SVR reserved bits set");
    bad = a;
    bad.ldr |= 1;
    refuse_apic(&bad, "vlapic: LDR or DFR reserved bits set");
    bad = a;
    bad.dfr = 0xf0000000u;
    refuse_apic(&bad, "vlapic: LDR or DFR reserved bits set");
    bad = a;
    bad.icr_low |= 1u << 13;
    refuse_apic(&bad, "vlapic: ICR reserved bits set");
    bad = a;
    bad.icr_high |= 1;                         /* xAPIC: destination in 31:24 only */
    refuse_apic(&bad, "vlapic: ICR reserved bits set");
    bad = a;
    bad.lvt[LVT_TIMER] |= 1u << 19;
    refuse_apic(&bad, "vlapic: LVT reserved bits set");
    bad = a;
    bad.lvt[LVT_ERROR] |= 0x700;               /* no delivery mode in the error LVT */
    refuse_apic(&bad, "vlapic: LVT reserved bits set");
    bad = a;
    bad.svr &= ~SVR_ENABLE;                    /* the timer LVT is unmasked */
    refuse_apic(&bad, "vlapic: an LVT unmasked while software-disabled");
    bad = a;
    bad.timer_dcr = 0x4;
    refuse_apic(&bad, "vlapic: DCR reserved bits set");
    bad = a;
    bad.timer_icr = 0;
    refuse_apic(&bad, "vlapic: the timer armed with no count");
    bad = a;
    bad.tsc_deadline = 5;                      /* periodic mode */
    refuse_apic(&bad, "vlapic: a TSC deadline outside TSC-deadline mode");
}

static uint64_t rnd_state = 0xd1b54a32d192ed03ull;

static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

/* Every state the guest can drive its APIC into (both modes, mode changes,
 * disabling, any register value) is one a load takes back unchanged. */
static void test_snapshot_every_reachable_state_loads(void **state)
{
    (void)state;
    static const uint32_t offs[] = { R_ID, R_TPR, R_EOI, R_LDR, R_DFR, R_SVR, R_ESR, R_LVT_CMCI, R_ICR_LOW,
                                     R_ICR_HIGH, R_LVT_TIMER, R_LVT_THERMAL, R_LVT_PERF, R_LVT_LINT0,
                                     R_LVT_LINT1, R_LVT_ERROR, R_TIMER_ICR, R_TIMER_DCR, R_SELF_IPI, 0x3c0 };
    uint64_t now = SNAP_T0;
    uint8_t buf_a[SNAP_TEST_BUF], buf_b[SNAP_TEST_BUF];
    for (unsigned step = 0; step < 20000; step++) {
        uint64_t r = rnd();
        uint32_t off = offs[(r >> 8) % (sizeof offs / sizeof offs[0])];
        uint32_t v = (uint32_t)(r >> 32);
        if ((r >> 16) % 2)
            v &= 0xfff000ffu;                  /* small vectors and modes more often */
        switch (r % 8) {
        case 0:
        case 1:
            wr_at(&a, off, v, now);
            break;
        case 2:
            (void)vlapic_msr_write(&a, 0x800 + off / 16, v, now);
            break;
        case 3:
            (void)vlapic_set_base_mode(&a, (r >> 40) % 4 != 0, (r >> 42) % 2);
            break;
        case 4:
            vlapic_accept(&a, (uint8_t)v, (r >> 40) & 1);
            if (vlapic_pending(&a) >= 0)
                vlapic_ack(&a, (uint8_t)vlapic_pending(&a));
            break;
        case 5:
            vlapic_set_tsc_deadline(&a, v);
            break;
        default:
            now += (r >> 40) % 100000;
            vlapic_tick(&a, now, now);
            break;
        }
        if (step % 5)
            continue;
        size_t n = save_apic(&a, buf_a, now);
        struct vlapic q;
        vlapic_init(&q, 0, false, 0, &ops);
        load_apic_ok(&q, buf_a, n, now);
        assert_int_equal(save_apic(&q, buf_b, now), n);
        assert_memory_equal(buf_a, buf_b, n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_identity_and_reset, setup),
        cmocka_unit_test_setup(test_priority_and_eoi, setup),
        cmocka_unit_test_setup(test_software_disable, setup),
        cmocka_unit_test_setup(test_timer_oneshot_and_periodic, setup),
        cmocka_unit_test_setup(test_masked_timer_sets_nothing, setup),
        cmocka_unit_test_setup(test_tsc_deadline, setup),
        cmocka_unit_test_setup(test_icr_init_sipi_and_self, setup),
        cmocka_unit_test_setup(test_x2apic_mode, setup),
        cmocka_unit_test_setup(test_snapshot_round_trip, setup),
        cmocka_unit_test_setup(test_snapshot_tsc_deadline_and_x2apic, setup),
        cmocka_unit_test_setup(test_snapshot_truncated, setup),
        cmocka_unit_test_setup(test_snapshot_tampered, setup),
        cmocka_unit_test_setup(test_snapshot_every_reachable_state_loads, setup),
    };
    return cmocka_run_group_tests_name("vlapic", tests, NULL, NULL);
}
