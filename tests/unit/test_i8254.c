/* The guest-visible 8254: counting in modes 0-5 against an injected clock, the
 * read/write flip-flops, latch and read-back, BCD, port 0x61 (gate 2, OUT2,
 * refresh), and the OUT0 edges the monitor turns into IRQ 0. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/dev/i8254.c"
#include "vmm/snap.c"
#include "snap_test.h"

struct irq_sink {
    int  pulses;     /* false-then-true pairs */
    int  calls;
    bool level;
};

static uint64_t now_ns;
static struct irq_sink sink;
static struct i8254 pit;

static uint64_t fake_clock(void *ctx)
{
    (void)ctx;
    return now_ns;
}

static void sink_irq(void *ctx, bool level)
{
    struct irq_sink *s = ctx;
    if (level && s->calls > 0 && !s->level)
        s->pulses++;
    s->calls++;
    s->level = level;
}

/* A non-zero epoch so that no code can get away with treating ticks as relative. */
#define EPOCH_TICK 5000000ull

static void at_tick(uint64_t t)
{
    now_ns = ns_of_tick(EPOCH_TICK + t);
}

static int setup(void **state)
{
    (void)state;
    memset(&sink, 0, sizeof sink);
    at_tick(0);
    i8254_init(&pit, fake_clock, NULL, sink_irq, &sink);
    return 0;
}

static void program(uint16_t data_port, uint8_t cw, uint16_t count)
{
    i8254_write(&pit, I8254_CONTROL, cw);
    i8254_write(&pit, data_port, (uint8_t)count);
    i8254_write(&pit, data_port, (uint8_t)(count >> 8));
}

static uint16_t latched_count(unsigned channel)
{
    i8254_write(&pit, I8254_CONTROL, (uint8_t)(channel << 6));
    uint8_t lo = i8254_read(&pit, (uint16_t)(I8254_COUNTER0 + channel));
    uint8_t hi = i8254_read(&pit, (uint16_t)(I8254_COUNTER0 + channel));
    return (uint16_t)(hi << 8 | lo);
}

static uint8_t status(unsigned channel)
{
    i8254_write(&pit, I8254_CONTROL, (uint8_t)(0xc0 | RB_NOT_COUNT | (RB_CNT0 << channel)));
    return i8254_read(&pit, (uint16_t)(I8254_COUNTER0 + channel));
}

static bool out0(void)
{
    return status(0) & STATUS_OUT;
}

static bool out2(void)
{
    return i8254_read(&pit, I8254_PORT_B) & PORTB_OUT2;
}

static uint64_t next_tick(void)
{
    uint64_t ns = i8254_next_event_ns(&pit);
    if (ns == I8254_NO_EVENT)
        return NO_TICK;
    uint64_t t = ticks_of_ns(ns);
    assert_true(t >= EPOCH_TICK);
    return t - EPOCH_TICK;
}

static void test_tick_conversion(void **state)
{
    (void)state;
    static const uint64_t ticks[] = { 0, 1, 2, 1193181, 1193182, 1193183, 11932,
                                      123456789012ull, 18000000000000ull };
    for (size_t i = 0; i < sizeof ticks / sizeof ticks[0]; i++) {
        uint64_t ns = ns_of_tick(ticks[i]);
        assert_int_equal(ticks_of_ns(ns), ticks[i]);
        if (ticks[i])
            assert_int_equal(ticks_of_ns(ns - 1), ticks[i] - 1);
    }
    assert_int_equal(ticks_of_ns(1000000000ull), I8254_HZ);
    assert_int_equal(ns_of_tick(UINT64_MAX - 5), I8254_NO_EVENT);
}

static void test_power_on_and_bad_ports(void **state)
{
    (void)state;
    for (uint16_t p = I8254_COUNTER0; p <= I8254_CONTROL; p++)
        assert_int_equal(i8254_read(&pit, p), 0xff); /* nothing programmed; 0x43 write-only */
    assert_int_equal(i8254_read(&pit, 0x44), 0xff);
    assert_int_equal(i8254_read(&pit, 0x60), 0xff);
    i8254_write(&pit, 0x44, 0x34);
    i8254_write(&pit, 0x62, 0x01);
    i8254_write(&pit, I8254_COUNTER0, 0x12); /* no control word yet: ignored */
    assert_int_equal(i8254_read(&pit, I8254_PORT_B) & ~PORTB_REFRESH, 0);
    assert_int_equal(i8254_next_event_ns(&pit), I8254_NO_EVENT);
    at_tick(1000000);
    i8254_update(&pit);
    assert_int_equal(sink.calls, 0);
    /* The bus-shaped entry points reach the same registers. */
    i8254_io_write(&pit, I8254_PORT_B, 0x03);
    assert_int_equal(i8254_io_read(&pit, I8254_PORT_B) & PORTB_WRITABLE, 0x03);
}

static void test_mode0_one_shot(void **state)
{
    (void)state;
    at_tick(100);
    program(I8254_COUNTER0, 0x30, 1000);
    assert_false(out0());
    assert_int_equal(status(0) & STATUS_NULL, STATUS_NULL); /* not loaded until the next clock */
    at_tick(101);
    assert_int_equal(status(0) & STATUS_NULL, 0);
    assert_int_equal(latched_count(0), 1000);
    at_tick(101 + 999);
    assert_int_equal(latched_count(0), 1);
    assert_false(out0());
    assert_int_equal(next_tick(), 1101);   /* N+1 clocks after the write */
    i8254_update(&pit);
    assert_int_equal(sink.calls, 0);
    at_tick(1101);
    assert_true(out0());
    assert_int_equal(latched_count(0), 0);
    i8254_update(&pit);
    assert_int_equal(sink.pulses, 1);
    assert_true(sink.level);
    /* OUT stays high, the count wraps, no further edges. */
    at_tick(1102);
    assert_int_equal(latched_count(0), 0xffff);
    assert_int_equal(next_tick(), NO_TICK);
    at_tick(500000);
    i8254_update(&pit);
    assert_int_equal(sink.pulses, 1);
    assert_true(out0());
}

static void test_mode0_first_byte_stops(void **state)
{
    (void)state;
    program(I8254_COUNTER0, 0x30, 100);
    at_tick(150);
    i8254_update(&pit);
    assert_int_equal(sink.pulses, 1);
    i8254_write(&pit, I8254_COUNTER0, 50);   /* LSB: counting stops, OUT drops */
    assert_false(out0());
    uint16_t held = latched_count(0);
    at_tick(400);
    assert_int_equal(latched_count(0), held);
    assert_int_equal(next_tick(), NO_TICK);
    i8254_write(&pit, I8254_COUNTER0, 0);    /* MSB: 50 loaded on the next clock */
    assert_int_equal(next_tick(), 451);
    at_tick(451);
    i8254_update(&pit);
    assert_int_equal(sink.pulses, 2);
}

/* Linux's periodic clockevent: 0x34 (counter 0, LSB/MSB, mode 2), LATCH for HZ. */
static void test_mode2_periodic_hz(void **state)
{
    (void)state;
    const uint16_t latch = (I8254_HZ + 100 / 2) / 100; /* HZ=100: 11932 */
    at_tick(7);
    program(I8254_COUNTER0, 0x34, latch);
    assert_true(out0());                      /* high after the control word */
    uint64_t first = 8 + latch;
    uint64_t prev_ns = 0;
    for (unsigned k = 0; k < 100; k++) {
        uint64_t edge = first + (uint64_t)k * latch;
        assert_int_equal(next_tick(), edge);
        uint64_t ns = i8254_next_event_ns(&pit);
        if (k) {
            /* 11932 clocks at 1193182 Hz: 10.00015 ms, give or take the rounding. */
            uint64_t period_ns = (uint64_t)latch * NS_PER_S / I8254_HZ;
            assert_true(ns - prev_ns >= period_ns && ns - prev_ns <= period_ns + 1);
        }
        prev_ns = ns;
        /* OUT low for exactly the clock before the reload. */
        at_tick(edge - 2);
        assert_true(out0());
        assert_int_equal(latched_count(0), 2);
        at_tick(edge - 1);
        assert_false(out0());
        assert_int_equal(latched_count(0), 1);
        i8254_update(&pit);
        assert_int_equal(sink.pulses, (int)k);
        now_ns = ns;
        assert_true(out0());
        assert_int_equal(latched_count(0), latch);
        i8254_update(&pit);
        assert_int_equal(sink.pulses, (int)k + 1);
        i8254_update(&pit);
        assert_int_equal(sink.pulses, (int)k + 1);
    }
}

static void test_late_timer_coalesces(void **state)
{
    (void)state;
    program(I8254_COUNTER0, 0x34, 1000);
    at_tick(1 + 5 * 1000 + 300);
    assert_int_equal(next_tick(), 1001); /* overdue: fire at once */
    i8254_update(&pit);
    assert_int_equal(sink.pulses, 1);
    assert_int_equal(next_tick(), 6001);
    at_tick(6001);
    i8254_update(&pit);
    assert_int_equal(sink.pulses, 2);
}

static void test_mode2_new_count_at_period_end(void **state)
{
    (void)state;
    program(I8254_COUNTER0, 0x34, 1000);
    at_tick(2500);                  /* in the third period, started at 2001 */
    i8254_update(&pit);
    assert_int_equal(sink.pulses, 1);
    i8254_write(&pit, I8254_COUNTER0, 0xf4);
    i8254_write(&pit, I8254_COUNTER0, 0x01);  /* 500 */
    assert_int_equal(status(0) & STATUS_NULL, STATUS_NULL);
    assert_int_equal(latched_count(0), 1000 - 499);
    assert_int_equal(next_tick(), 3001);
    at_tick(3001);
    assert_int_equal(latched_count(0), 500);
    assert_int_equal(status(0) & STATUS_NULL, 0);
    i8254_update(&pit);
    assert_int_equal(sink.pulses, 2);
    assert_int_equal(next_tick(), 3501);
    /* An edge at a boundary found only by a read still reaches the IRQ. */
    at_tick(3502);
    assert_int_equal(latched_count(0), 499);
    i8254_update(&pit);
    assert_int_equal(sink.pulses, 3);
}

static void test_mode3_square_wave(void **state)
{
    (void)state;
    /* Even count: two clocks high, two low; the count falls by two. */
    program(I8254_COUNTER0, 0x36, 4);
    static const bool even_out[] = { 1, 1, 0, 0, 1, 1, 0, 0 };
    static const uint16_t even_count[] = { 4, 2, 4, 2, 4, 2, 4, 2 };
    for (unsigned i = 0; i < 8; i++) {
        at_tick(1 + i);
        assert_int_equal(out0(), even_out[i]);
        assert_int_equal(latched_count(0), even_count[i]);
    }
    assert_int_equal(next_tick(), 5);
    /* Odd count: (N+1)/2 high, (N-1)/2 low; N-1 loaded, one extra clock at 0. */
    at_tick(100);
    i8254_update(&pit);
    program(I8254_COUNTER0, 0x36, 5);
    assert_int_equal(next_tick(), 106);
    static const bool odd_out[] = { 1, 1, 1, 0, 0, 1, 1, 1, 0, 0 };
    static const uint16_t odd_count[] = { 4, 2, 0, 4, 2, 4, 2, 0, 4, 2 };
    for (unsigned i = 0; i < 10; i++) {
        at_tick(101 + i);
        assert_int_equal(out0(), odd_out[i]);
        assert_int_equal(latched_count(0), odd_count[i]);
    }
    /* The rising edges are the period boundaries: 106 and 111 have passed. */
    sink.pulses = 0;
    assert_int_equal(next_tick(), 106);
    i8254_update(&pit);
    assert_int_equal(sink.pulses, 1);
    assert_int_equal(next_tick(), 111);
    /* The BIOS's 18.2 Hz tick: a count of 0 is 65536. */
    program(I8254_COUNTER0, 0x36, 0);
    assert_int_equal(next_tick(), 111 + 65536);
    at_tick(111 + 32767);
    assert_true(out0());
    at_tick(111 + 32768);
    assert_false(out0());
}

/* Linux's one-shot clockevent: 0x38 (counter 0, LSB/MSB, mode 4). */
static void test_mode4_strobe(void **state)
{
    (void)state;
    i8254_write(&pit, I8254_CONTROL, 0x38);
    assert_true(out0());
    assert_int_equal(next_tick(), NO_TICK);
    at_tick(10);
    i8254_write(&pit, I8254_COUNTER0, 100);
    i8254_write(&pit, I8254_COUNTER0, 0);
    at_tick(11 + 99);
    assert_true(out0());
    assert_int_equal(latched_count(0), 1);
    at_tick(11 + 100);
    assert_false(out0());       /* one clock low at terminal count */
    assert_int_equal(latched_count(0), 0);
    assert_int_equal(next_tick(), 112);
    at_tick(112);
    assert_true(out0());
    i8254_update(&pit);
    assert_int_equal(sink.pulses, 1);
    assert_int_equal(next_tick(), NO_TICK);
    at_tick(112 + 70000);
    assert_true(out0());
    /* Re-arming: the next count written is the next shot. */
    i8254_write(&pit, I8254_COUNTER0, 50);
    i8254_write(&pit, I8254_COUNTER0, 0);
    assert_int_equal(next_tick(), 112 + 70000 + 1 + 50 + 1);
}

/* Linux's pit_calibrate_tsc(): gate 2 on, speaker off; 0xb0 (counter 2, LSB/MSB,
 * mode 0); a 10 ms count; poll port 0x61 bit 5 until OUT2 rises. */
static void test_linux_calibration_via_port_61(void **state)
{
    (void)state;
    const uint16_t latch = I8254_HZ / (1000 / 10);
    at_tick(40);
    i8254_write(&pit, I8254_PORT_B, (uint8_t)((i8254_read(&pit, I8254_PORT_B) & ~0x02) | 0x01));
    i8254_write(&pit, I8254_CONTROL, 0xb0);
    i8254_write(&pit, I8254_COUNTER2, (uint8_t)latch);
    i8254_write(&pit, I8254_COUNTER2, (uint8_t)(latch >> 8));
    uint64_t t = 40;
    while (!out2() && t < 2u * latch)   /* bounded: a broken model fails, not hangs */
        at_tick(++t);
    assert_int_equal(t, 41 + latch);
    /* Counter 2 never touches IRQ 0. */
    i8254_update(&pit);
    assert_int_equal(sink.calls, 0);
    assert_int_equal(next_tick(), NO_TICK);
}

/* quick_pit_calibrate(): counter 2 mode 0 from 0xffff; reads LSB then MSB straight
 * from port 0x42, no latch, and watches the MSB step down every 256 clocks. */
static void test_linux_quick_calibration_msb_reads(void **state)
{
    (void)state;
    i8254_write(&pit, I8254_PORT_B, 0x01);
    program(I8254_COUNTER2, 0xb0, 0xffff);
    for (unsigned step = 1; step < 200; step++) {
        at_tick(1 + 256u * step);
        (void)i8254_read(&pit, I8254_COUNTER2);           /* LSB */
        assert_int_equal(i8254_read(&pit, I8254_COUNTER2), 0xff - step);
        at_tick(1 + 256u * step + 255);
        assert_int_equal(i8254_read(&pit, I8254_COUNTER2), 0x00); /* LSB */
        assert_int_equal(i8254_read(&pit, I8254_COUNTER2), 0xff - step);
    }
}

static void test_gate2(void **state)
{
    (void)state;
    /* Mode 0 written with the gate low: loaded, but not counting. */
    program(I8254_COUNTER2, 0xb0, 100);
    at_tick(500);
    assert_int_equal(latched_count(2), 100);
    assert_false(out2());
    i8254_write(&pit, I8254_PORT_B, 0x01);
    at_tick(540);
    assert_int_equal(latched_count(2), 60);
    i8254_write(&pit, I8254_PORT_B, 0x00);  /* suspends; OUT holds */
    at_tick(1000);
    assert_int_equal(latched_count(2), 60);
    assert_false(out2());
    i8254_write(&pit, I8254_PORT_B, 0x01);
    at_tick(1059);
    assert_false(out2());
    at_tick(1060);
    assert_true(out2());

    /* Mode 2: gate low forces OUT high and stops; rising gate restarts the period. */
    program(I8254_COUNTER2, 0xb4, 10);
    at_tick(1070);
    assert_int_equal(latched_count(2), 1);
    assert_false(out2());
    i8254_write(&pit, I8254_PORT_B, 0x00);
    assert_true(out2());
    at_tick(1100);
    assert_int_equal(latched_count(2), 1);
    i8254_write(&pit, I8254_PORT_B, 0x01);
    at_tick(1101);
    assert_int_equal(latched_count(2), 10);
    at_tick(1110);
    assert_false(out2());
    /* The speaker bit does not touch the gate: the period carries on. */
    i8254_write(&pit, I8254_PORT_B, 0x03);
    at_tick(1111);
    assert_int_equal(latched_count(2), 10);
    assert_true(out2());
    assert_int_equal(i8254_read(&pit, I8254_PORT_B) & 0x03, 0x03);

    /* Half a count written in mode 0: a gate pulse does not restart counting. */
    program(I8254_COUNTER2, 0xb0, 30);
    i8254_write(&pit, I8254_COUNTER2, 0x05);
    i8254_write(&pit, I8254_PORT_B, 0x02);
    i8254_write(&pit, I8254_PORT_B, 0x03);
    at_tick(1120);
    assert_int_equal(latched_count(2), 30);
    assert_false(out2());
    i8254_write(&pit, I8254_COUNTER2, 0x00);
    at_tick(1125);
    assert_false(out2());
    at_tick(1126);
    assert_true(out2());
}

static void test_modes_1_and_5_triggered_by_gate(void **state)
{
    (void)state;
    program(I8254_COUNTER2, 0xb2, 20);          /* mode 1 */
    at_tick(100);
    assert_true(out2());                       /* waiting for a trigger */
    assert_int_equal(status(2) & STATUS_NULL, STATUS_NULL);
    i8254_write(&pit, I8254_PORT_B, 0x01);
    at_tick(101);
    assert_false(out2());
    at_tick(120);
    assert_false(out2());
    at_tick(121);
    assert_true(out2());
    /* Retrigger: a new gate edge starts the one-shot over. */
    i8254_write(&pit, I8254_PORT_B, 0x00);
    at_tick(130);
    i8254_write(&pit, I8254_PORT_B, 0x01);
    at_tick(140);
    assert_false(out2());
    assert_int_equal(latched_count(2), 11);

    program(I8254_COUNTER2, 0xba, 5);           /* mode 5 */
    assert_true(out2());
    i8254_write(&pit, I8254_PORT_B, 0x00);
    at_tick(200);
    i8254_write(&pit, I8254_PORT_B, 0x01);
    at_tick(206);
    assert_false(out2());
    at_tick(207);
    assert_true(out2());
}

static void test_latch_and_flip_flops(void **state)
{
    (void)state;
    program(I8254_COUNTER1, 0x74, 0x1234);       /* counter 1, mode 2 */
    at_tick(1 + 0x10);
    i8254_write(&pit, I8254_CONTROL, 0x40);      /* latch counter 1 */
    at_tick(1 + 0x20);
    i8254_write(&pit, I8254_CONTROL, 0x40);      /* ignored: first latch unread */
    assert_int_equal(i8254_read(&pit, I8254_COUNTER1), 0x24);
    at_tick(1 + 0x30);
    assert_int_equal(i8254_read(&pit, I8254_COUNTER1), 0x12); /* still the latch */
    /* Released: reads follow the counter again. */
    assert_int_equal(i8254_read(&pit, I8254_COUNTER1), 0x04);
    assert_int_equal(i8254_read(&pit, I8254_COUNTER1), 0x12);

    /* LSB-only and MSB-only access. */
    at_tick(1000);
    i8254_write(&pit, I8254_CONTROL, 0x50);      /* LSB only, mode 0 */
    i8254_write(&pit, I8254_COUNTER1, 0x80);
    at_tick(1001 + 0x10);
    assert_int_equal(i8254_read(&pit, I8254_COUNTER1), 0x70);
    assert_int_equal(i8254_read(&pit, I8254_COUNTER1), 0x70);
    i8254_write(&pit, I8254_CONTROL, 0x60);      /* MSB only, mode 0 */
    i8254_write(&pit, I8254_COUNTER1, 0x02);     /* 0x200 */
    at_tick(1001 + 0x10 + 1 + 0x100);
    assert_int_equal(i8254_read(&pit, I8254_COUNTER1), 0x01);
    i8254_write(&pit, I8254_CONTROL, 0x40);
    at_tick(1001 + 0x10 + 1 + 0x180);
    assert_int_equal(i8254_read(&pit, I8254_COUNTER1), 0x01);
    assert_int_equal(i8254_read(&pit, I8254_COUNTER1), 0x00); /* one read released it */
}

static void test_read_back(void **state)
{
    (void)state;
    at_tick(3);
    i8254_write(&pit, I8254_CONTROL, 0x34);
    assert_int_equal(status(0), STATUS_OUT | STATUS_NULL | 0x34);
    i8254_write(&pit, I8254_COUNTER0, 0x00);
    i8254_write(&pit, I8254_COUNTER0, 0x01);   /* 256 */
    i8254_write(&pit, I8254_PORT_B, 0x01);
    program(I8254_COUNTER2, 0xb0, 0x300);
    at_tick(4 + 6);
    /* Both counters, status and count: each reads status, then LSB, MSB. */
    i8254_write(&pit, I8254_CONTROL, 0xc0 | RB_CNT0 | (RB_CNT0 << 2));
    at_tick(50);
    assert_int_equal(i8254_read(&pit, I8254_COUNTER0), STATUS_OUT | 0x34);
    assert_int_equal(i8254_read(&pit, I8254_COUNTER0), 250);
    assert_int_equal(i8254_read(&pit, I8254_COUNTER0), 0);
    assert_int_equal(i8254_read(&pit, I8254_COUNTER2), 0x30);
    assert_int_equal(i8254_read(&pit, I8254_COUNTER2), 0xfa);
    assert_int_equal(i8254_read(&pit, I8254_COUNTER2), 0x02);
    /* Count only; counter 1 untouched by a command not selecting it. */
    i8254_write(&pit, I8254_CONTROL, 0xc0 | RB_NOT_STATUS | RB_CNT0);
    assert_int_equal(i8254_read(&pit, I8254_COUNTER0), 256 - 46);
    assert_int_equal(i8254_read(&pit, I8254_COUNTER0), 0);
    assert_int_equal(i8254_read(&pit, I8254_COUNTER1), 0xff);
    /* Mode 6 and 7 are modes 2 and 3, reported as written. */
    i8254_write(&pit, I8254_CONTROL, 0x3c);
    assert_int_equal(status(0) & 0x3f, 0x3c);
    assert_int_equal(pit.ch[0].mode, 2);
    i8254_write(&pit, I8254_CONTROL, 0x3e);
    assert_int_equal(pit.ch[0].mode, 3);
}

static void test_bcd(void **state)
{
    (void)state;
    program(I8254_COUNTER1, 0x71, 0x1000);      /* mode 0, BCD 1000 */
    at_tick(2);
    assert_int_equal(latched_count(1), 0x0999);
    at_tick(1001);
    assert_int_equal(latched_count(1), 0x0000);
    at_tick(1002);
    assert_int_equal(latched_count(1), 0x9999); /* wraps at 10^4 */
    program(I8254_COUNTER1, 0x75, 0);           /* mode 2, BCD 0 = 10000 */
    assert_int_equal(pit.ch[1].reload, 10000);
    program(I8254_COUNTER1, 0x75, 0xffff);      /* invalid digits: still a count */
    assert_true(pit.ch[1].reload >= 1 && pit.ch[1].reload <= 10000);
}

static void test_port_b(void **state)
{
    (void)state;
    i8254_write(&pit, I8254_PORT_B, 0xff);
    uint8_t v = i8254_read(&pit, I8254_PORT_B);
    assert_int_equal(v & 0xcf, 0x0f);           /* bits 6, 7 read 0 here */
    /* The refresh bit toggles every 18 clocks. */
    uint64_t base = 18 - EPOCH_TICK % 18 + 18 * 100;
    at_tick(base);
    bool r0 = i8254_read(&pit, I8254_PORT_B) & PORTB_REFRESH;
    at_tick(base + 17);
    assert_int_equal((bool)(i8254_read(&pit, I8254_PORT_B) & PORTB_REFRESH), r0);
    at_tick(base + 18);
    assert_int_equal((bool)(i8254_read(&pit, I8254_PORT_B) & PORTB_REFRESH), !r0);
    at_tick(base + 36);
    assert_int_equal((bool)(i8254_read(&pit, I8254_PORT_B) & PORTB_REFRESH), r0);
}

static void test_reprogram_delivers_old_edge(void **state)
{
    (void)state;
    program(I8254_COUNTER0, 0x34, 100);
    at_tick(150);                        /* the timer has not fired yet */
    i8254_write(&pit, I8254_CONTROL, 0x30);
    assert_int_equal(sink.pulses, 1);
    assert_int_equal(next_tick(), NO_TICK);
    assert_false(out0());
    i8254_write(&pit, I8254_COUNTER0, 10);
    i8254_write(&pit, I8254_COUNTER0, 0);
    assert_int_equal(next_tick(), 161);
}

/* Linux's clockevent shutdown: 0x30 (mode 0) stops the waveform with OUT low; with
 * i8253_clear_counter_on_shutdown it also writes a count of 0, which on the part
 * is 65536 and fires once more, 55 ms later. */
static void test_linux_shutdown(void **state)
{
    (void)state;
    program(I8254_COUNTER0, 0x34, 11932);
    at_tick(20000);
    i8254_write(&pit, I8254_CONTROL, 0x30);
    assert_int_equal(sink.pulses, 1);           /* the edge at 11933 */
    assert_false(out0());
    assert_int_equal(next_tick(), NO_TICK);
    i8254_write(&pit, I8254_COUNTER0, 0);
    i8254_write(&pit, I8254_COUNTER0, 0);
    assert_int_equal(next_tick(), 20001 + 65536);
}

/* A mode-4 shot whose timer has not run yet when the guest writes the next count
 * (Linux re-arming from another interrupt): the write delivers it first. */
static void test_rearm_delivers_unreported_shot(void **state)
{
    (void)state;
    program(I8254_COUNTER0, 0x38, 100);
    at_tick(200);
    i8254_write(&pit, I8254_COUNTER0, 50);
    assert_int_equal(sink.pulses, 1);
    i8254_write(&pit, I8254_COUNTER0, 0);
    assert_int_equal(sink.pulses, 1);
    assert_int_equal(next_tick(), 201 + 50 + 1);
}

/* A count written in the first period: the boundary it takes over at is an edge
 * even when a read, not the timer, is what first passes it. */
static void test_mode2_pending_boundary_seen_by_read(void **state)
{
    (void)state;
    program(I8254_COUNTER0, 0x34, 1000);
    at_tick(500);
    i8254_write(&pit, I8254_COUNTER0, 0x2c);
    i8254_write(&pit, I8254_COUNTER0, 0x01);   /* 300 */
    at_tick(1002);
    assert_int_equal(latched_count(0), 299);
    i8254_update(&pit);
    assert_int_equal(sink.pulses, 1);
    assert_int_equal(next_tick(), 1301);
}

static void test_clock_backwards_and_far_epoch(void **state)
{
    (void)state;
    now_ns = 30ull * 86400 * NS_PER_S;   /* a monitor up for 30 days */
    uint64_t base = ticks_of_ns(now_ns);
    program(I8254_COUNTER0, 0x34, 11932);
    assert_int_equal(ticks_of_ns(i8254_next_event_ns(&pit)), base + 1 + 11932);
    now_ns = ns_of_tick(base + 101);
    assert_int_equal(latched_count(0), 11932 - 100);
    now_ns = ns_of_tick(base + 51);       /* a clock that steps back is held */
    assert_int_equal(latched_count(0), 11932 - 100);
    now_ns = i8254_next_event_ns(&pit);
    i8254_update(&pit);
    assert_int_equal(sink.pulses, 1);
}

/* ---- snapshots ---- */

static size_t save_pit(const struct i8254 *p, uint8_t *buf, uint64_t ns)
{
    struct snap st;
    snap_save_begin(&st, buf, SNAP_TEST_BUF);
    assert_true(i8254_save(p, &st, ns));
    size_t n = snap_save_end(&st);
    assert_true(n > SNAP_HEADER_BYTES);
    return n;
}

/* Loads at the fake clock's now, as the monitor would pass its clock's reading. */
static bool load_pit(void *model, struct snap *st)
{
    return i8254_load(model, st, now_ns);
}

static void load_pit_ok(struct i8254 *p, const uint8_t *buf, size_t n, uint64_t ns)
{
    struct snap st;
    assert_true(snap_load_begin(&st, buf, n));
    assert_true(i8254_load(p, &st, ns));
    assert_true(snap_load_end(&st));
}

#define SNAP_TICK 2200

/* Counter 0 periodic (mode 2), reprogrammed mid-period, with the edge at the
 * period's end (2101) due but not yet delivered; counter 2 one-shot behind an
 * open gate with its count latched and half read; counter 1 halfway through a
 * two-byte count, its status latched. */
static void busy_pit(void)
{
    at_tick(100);
    program(I8254_COUNTER0, 0x34, 1000);
    i8254_write(&pit, I8254_PORT_B, PORTB_GATE2 | PORTB_SPEAKER);
    program(I8254_COUNTER2, 0xb0, 30000);
    i8254_write(&pit, I8254_CONTROL, 0x74);
    i8254_write(&pit, I8254_COUNTER1, 0x34);
    at_tick(1500);
    i8254_write(&pit, I8254_COUNTER0, 0xf4);  /* 500, from the period's end at 2101 */
    i8254_write(&pit, I8254_COUNTER0, 0x01);
    assert_true(pit.ch[0].pending);
    assert_int_equal(sink.pulses, 1);         /* the write delivered the edge at 1101 */
    at_tick(SNAP_TICK);
    i8254_write(&pit, I8254_CONTROL, 0xc0 | RB_NOT_COUNT | (RB_CNT0 << 1));
    i8254_write(&pit, I8254_CONTROL, 0x80);
    (void)i8254_read(&pit, I8254_COUNTER2);
    assert_int_equal(sink.pulses, 1);
    assert_true(pit.ch[2].read_msb && pit.ch[2].count_latched);
    assert_true(pit.ch[1].write_msb && pit.ch[1].status_latched);
}

/* What the guest and the monitor see from base on, times relative to base. */
static void observe_pit(struct i8254 *p, struct irq_sink *k, uint64_t base, uint64_t out[16])
{
    unsigned n = 0;
    at_tick(base);
    out[n++] = i8254_read(p, I8254_COUNTER2);          /* the latched MSB */
    out[n++] = i8254_read(p, I8254_COUNTER1);          /* the latched status */
    out[n++] = i8254_read(p, I8254_PORT_B) & ~PORTB_REFRESH;
    i8254_write(p, I8254_CONTROL, 0x00);
    out[n++] = i8254_read(p, I8254_COUNTER0);
    out[n++] = i8254_read(p, I8254_COUNTER0);
    out[n++] = ticks_of_ns(i8254_next_event_ns(p)) - EPOCH_TICK - base;
    at_tick(base + 2999);
    i8254_update(p);
    out[n++] = (uint64_t)k->pulses;
    i8254_write(p, I8254_CONTROL, 0x80);
    out[n++] = i8254_read(p, I8254_COUNTER2);
    out[n++] = i8254_read(p, I8254_COUNTER2);
    out[n++] = ticks_of_ns(i8254_next_event_ns(p)) - EPOCH_TICK - base;
    i8254_write(p, I8254_COUNTER1, 0x12);              /* the MSB: counter 1 starts */
    at_tick(base + 40000);
    i8254_update(p);
    out[n++] = (uint64_t)k->pulses;
    out[n++] = i8254_read(p, I8254_PORT_B) & PORTB_OUT2;
    i8254_write(p, I8254_CONTROL, 0x40);
    out[n++] = i8254_read(p, I8254_COUNTER1);
    out[n++] = i8254_read(p, I8254_COUNTER1);
    out[n++] = (uint64_t)k->calls;
    out[15] = n;
}

static void test_snapshot_round_trip(void **state)
{
    (void)state;
    busy_pit();
    uint64_t t_save = now_ns;
    uint8_t a[SNAP_TEST_BUF], b[SNAP_TEST_BUF];
    size_t n = save_pit(&pit, a, t_save);

    struct irq_sink s2 = { 0 }, s3 = { 0 };
    struct i8254 q, r;
    i8254_init(&q, fake_clock, NULL, sink_irq, &s2);
    load_pit_ok(&q, a, n, t_save);
    assert_int_equal(save_pit(&q, b, t_save), n);
    assert_memory_equal(a, b, n);

    /* Counters read on after a load 10^7 ticks (8.4 s) later as they would have
     * without the gap; the edge that was due comes first. */
    uint64_t want[16], got[16];
    sink = (struct irq_sink){ 0 };            /* both sinks count from here */
    observe_pit(&pit, &sink, SNAP_TICK, want);
    const uint64_t gap = 10000000;
    at_tick(SNAP_TICK + 40000 + gap);
    i8254_init(&r, fake_clock, NULL, sink_irq, &s3);
    at_tick(SNAP_TICK + gap);
    load_pit_ok(&r, a, n, now_ns);
    assert_int_equal(s3.calls, 0);             /* the load calls no callback */
    assert_ptr_equal(r.irq_ctx, &s3);
    observe_pit(&r, &s3, SNAP_TICK + gap, got);
    assert_memory_equal(want, got, sizeof want);
    /* Counter 0 at the save: 99 into the new 500 period (from 2101), 401 left;
     * the edge of 2101 still due, then one every 500. */
    assert_int_equal(want[3] | want[4] << 8, 401);
    assert_int_equal(want[5], (uint64_t)(2101 - SNAP_TICK)); /* in the past: due now */
    assert_int_equal(want[6], 1);
    assert_int_equal(want[9], (uint64_t)(2101 + 7 * 500 - SNAP_TICK));
    assert_int_equal(want[10], 2);
    assert_int_equal(want[11], PORTB_OUT2);   /* counter 2's one-shot has ended */
}

static void test_snapshot_truncated(void **state)
{
    (void)state;
    busy_pit();
    uint8_t a[SNAP_TEST_BUF];
    size_t n = save_pit(&pit, a, now_ns);
    struct irq_sink s2 = { 0 };
    struct i8254 q;
    i8254_init(&q, fake_clock, NULL, sink_irq, &s2);
    program(I8254_COUNTER0, 0x36, 77);
    snap_test_truncations(a, n, load_pit, &q, sizeof q);
    snap_test_extended(a, n, load_pit, &q, sizeof q);
    assert_int_equal(s2.calls, 0);
}

static void refuse_pit(const struct i8254 *bad, const char *why)
{
    uint8_t a[SNAP_TEST_BUF];
    size_t n = save_pit(bad, a, now_ns);
    struct i8254 q;
    i8254_init(&q, fake_clock, NULL, NULL, NULL);
    i8254_write(&q, I8254_CONTROL, 0x34);
    snap_test_refused(a, n, load_pit, &q, sizeof q, why);
}

static void test_snapshot_tampered(void **state)
{
    (void)state;
    busy_pit();
    uint8_t a[SNAP_TEST_BUF];
    size_t n = save_pit(&pit, a, now_ns);
    snap_test_flips(a, n);

    struct i8254 bad = pit;
    bad.ch[0].mode = 6;
    refuse_pit(&bad, "i8254: a mode past 5");
    bad = pit;
    bad.ch[1].rw = 4;
    refuse_pit(&bad, "i8254: a read/write mode past 3");
    bad = pit;
    bad.ch[0].mode = 3;                        /* the control word says 2 */
    refuse_pit(&bad, "i8254: mode, rw or BCD not as the control word says");
    bad = pit;
    bad.ch[2].bcd = true;
    refuse_pit(&bad, "i8254: mode, rw or BCD not as the control word says");
    bad = pit;
    bad.ch[0].control = 0x74;
    refuse_pit(&bad, "i8254: mode, rw or BCD not as the control word says");
    bad = pit;
    bad.ch[0].reload = 0;
    refuse_pit(&bad, "i8254: count register out of 1..65536");
    bad = pit;
    bad.ch[2].reload = 65537;
    refuse_pit(&bad, "i8254: count register out of 1..65536");
    bad = pit;
    bad.ch[0].start_count = 0;                 /* channel_out() would divide by it */
    refuse_pit(&bad, "i8254: counting element out of 1..65536");
    bad = pit;
    bad.ch[0].pending_reload = 0;
    refuse_pit(&bad, "i8254: a pending count outside modes 2 and 3, or out of 1..65536");
    bad = pit;
    bad.ch[2].pending = true;
    bad.ch[2].pending_reload = 5;
    refuse_pit(&bad, "i8254: a pending count outside modes 2 and 3, or out of 1..65536");
    bad = pit;
    bad.ch[1].armed = false;
    bad.ch[1].running = true;
    refuse_pit(&bad, "i8254: counting without a count");
    bad = pit;
    bad.ch[1] = (struct i8254_channel){ .gate = true, .armed = true, .reload = 5, .load_tick = NO_TICK };
    refuse_pit(&bad, "i8254: a counter never programmed is counting");
    bad = pit;
    bad.ch[0].write_msb = true;
    bad.ch[0].control = 0x14;                  /* LSB only */
    bad.ch[0].rw = 1;
    refuse_pit(&bad, "i8254: a byte flip-flop outside LSB-then-MSB mode");
    bad = pit;
    bad.ch[0].gate = false;
    refuse_pit(&bad, "i8254: a gate not wired as on the PC");
    bad = pit;
    bad.ch[2].gate = false;                    /* port 0x61 says open */
    refuse_pit(&bad, "i8254: a gate not wired as on the PC");
    bad = pit;
    bad.port_b = 0x13;
    refuse_pit(&bad, "i8254: port 0x61 bits the model does not keep");
}

/* A deterministic stand-in for the fuzzer: xorshift64. */
static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

/* Every state the guest can drive the timer into is one a load takes, and the
 * stream comes back unchanged: the checks refuse only what the model cannot hold. */
static void test_snapshot_every_reachable_state_loads(void **state)
{
    (void)state;
    static const uint16_t ports[] = { 0x40, 0x41, 0x42, 0x43, 0x61 };
    static const uint8_t cws[] = { 0x30, 0x34, 0x36, 0x32, 0x38, 0x3a, 0x31, 0x35, 0x70, 0x74, 0x76,
                                   0x72, 0x7a, 0xb0, 0xb4, 0xb6, 0xb2, 0xb8, 0xba, 0x10, 0x20, 0x90,
                                   0x00, 0x40, 0x80, 0xc2, 0xe4, 0xd8, 0xce, 0xfe, 0xa1, 0xbf };
    uint64_t tick = 0;
    uint8_t a[SNAP_TEST_BUF], b[SNAP_TEST_BUF];
    for (unsigned step = 0; step < 20000; step++) {
        uint64_t r = rnd();
        uint16_t port = ports[r % 5];
        switch ((r >> 8) % 4) {
        case 0:
            i8254_write(&pit, port, port == 0x43 ? cws[(r >> 16) % sizeof cws] : (uint8_t)(r >> 16));
            break;
        case 1:
            (void)i8254_read(&pit, port);
            break;
        case 2:
            tick += (r >> 24) % 64 == 0 ? (r >> 32) % 1000000 : (r >> 24) % 300;
            at_tick(tick);
            i8254_update(&pit);
            break;
        default:
            (void)i8254_next_event_ns(&pit);
            break;
        }
        if (step % 5)
            continue;
        size_t n = save_pit(&pit, a, now_ns);
        struct i8254 q;
        i8254_init(&q, fake_clock, NULL, NULL, NULL);
        load_pit_ok(&q, a, n, now_ns);
        assert_int_equal(save_pit(&q, b, now_ns), n);
        assert_memory_equal(a, b, n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_tick_conversion, setup),
        cmocka_unit_test_setup(test_power_on_and_bad_ports, setup),
        cmocka_unit_test_setup(test_mode0_one_shot, setup),
        cmocka_unit_test_setup(test_mode0_first_byte_stops, setup),
        cmocka_unit_test_setup(test_mode2_periodic_hz, setup),
        cmocka_unit_test_setup(test_late_timer_coalesces, setup),
        cmocka_unit_test_setup(test_mode2_new_count_at_period_end, setup),
        cmocka_unit_test_setup(test_mode3_square_wave, setup),
        cmocka_unit_test_setup(test_mode4_strobe, setup),
        cmocka_unit_test_setup(test_linux_calibration_via_port_61, setup),
        cmocka_unit_test_setup(test_linux_quick_calibration_msb_reads, setup),
        cmocka_unit_test_setup(test_gate2, setup),
        cmocka_unit_test_setup(test_modes_1_and_5_triggered_by_gate, setup),
        cmocka_unit_test_setup(test_latch_and_flip_flops, setup),
        cmocka_unit_test_setup(test_read_back, setup),
        cmocka_unit_test_setup(test_bcd, setup),
        cmocka_unit_test_setup(test_port_b, setup),
        cmocka_unit_test_setup(test_reprogram_delivers_old_edge, setup),
        cmocka_unit_test_setup(test_linux_shutdown, setup),
        cmocka_unit_test_setup(test_rearm_delivers_unreported_shot, setup),
        cmocka_unit_test_setup(test_mode2_pending_boundary_seen_by_read, setup),
        cmocka_unit_test_setup(test_clock_backwards_and_far_epoch, setup),
        cmocka_unit_test_setup(test_snapshot_round_trip, setup),
        cmocka_unit_test_setup(test_snapshot_truncated, setup),
        cmocka_unit_test_setup(test_snapshot_tampered, setup),
        cmocka_unit_test_setup(test_snapshot_every_reachable_state_loads, setup),
    };
    return cmocka_run_group_tests_name("i8254", tests, NULL, NULL);
}
