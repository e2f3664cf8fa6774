/* The guest-visible MC146818 RTC/CMOS model: time registers in every mode, setting
 * the clock, UIP timing, the three interrupts and register C, CMOS storage. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/dev/mc146818.c"
#include "vmm/io.c"
#include "vmm/snap.c"
#include "snap_test.h"

/* 2026-11-22 21:06:30 UTC, a Sunday. */
#define T_SUNDAY_EVENING 1795381590ull
#define T_LEAP_EVE       1709164799ull /* 2024-02-28 23:59:59 */
#define T_2100_FEB_28    4107542399ull /* 2100-02-28 23:59:59 */
#define T_2026_NOON      1767268800ull /* 2026-01-01 12:00:00 */
#define T_2026_MIDNIGHT  1767225600ull

struct clock {
    uint64_t sec;
    uint32_t nsec;
    int irq_changes;
    bool level;
};

static struct clock clk;
static struct mc146818 rtc;

static void fake_now(void *ctx, uint64_t *sec, uint32_t *nsec)
{
    struct clock *c = ctx;
    *sec = c->sec;
    *nsec = c->nsec;
}

static void fake_irq(void *ctx, bool level)
{
    struct clock *c = ctx;
    c->irq_changes++;
    c->level = level;
}

static void advance_ns(uint64_t ns)
{
    ns += clk.nsec;
    clk.sec += ns / NSEC_PER_SEC;
    clk.nsec = (uint32_t)(ns % NSEC_PER_SEC);
}

static void at(uint64_t sec, uint32_t nsec)
{
    clk.sec = sec;
    clk.nsec = nsec;
}

static uint8_t rd(unsigned index)
{
    mc146818_write(&rtc, MC146818_PORT_INDEX, (uint8_t)index);
    return mc146818_read(&rtc, MC146818_PORT_DATA);
}

static void wr(unsigned index, uint8_t value)
{
    mc146818_write(&rtc, MC146818_PORT_INDEX, (uint8_t)index);
    mc146818_write(&rtc, MC146818_PORT_DATA, value);
}

static int setup(void **state)
{
    (void)state;
    memset(&clk, 0, sizeof clk);
    at(T_SUNDAY_EVENING, 0);
    mc146818_init(&rtc, fake_now, fake_irq, &clk);
    return 0;
}

static void test_power_on_state(void **state)
{
    (void)state;
    assert_int_equal(rd(REG_A), 0x26);
    assert_int_equal(rd(REG_B), B_24H);
    assert_int_equal(rd(REG_C), 0);
    assert_int_equal(rd(REG_D), D_VRT);
    assert_int_equal(rd(MC146818_CMOS_EQUIPMENT), 0x02);
    assert_int_equal(mc146818_read(&rtc, MC146818_PORT_INDEX), 0xff);
    assert_int_equal(mc146818_read(&rtc, 0x72), 0xff); /* not this part's port */
    mc146818_write(&rtc, 0x72, 0x12);
    assert_false(clk.level);
    assert_int_equal(clk.irq_changes, 0);
}

static void test_bcd_24h_from_host_clock(void **state)
{
    (void)state;
    assert_int_equal(rd(REG_SECONDS), 0x30);
    assert_int_equal(rd(REG_MINUTES), 0x06);
    assert_int_equal(rd(REG_HOURS), 0x21);
    assert_int_equal(rd(REG_WEEKDAY), 1); /* Sunday */
    assert_int_equal(rd(REG_DAY), 0x22);
    assert_int_equal(rd(REG_MONTH), 0x11);
    assert_int_equal(rd(REG_YEAR), 0x26);
    assert_int_equal(rd(MC146818_CMOS_CENTURY), 0x20);
    advance_ns(29500000000ull);
    assert_int_equal(rd(REG_SECONDS), 0x59);
    advance_ns(500000000);
    assert_int_equal(rd(REG_SECONDS), 0x00);
    assert_int_equal(rd(REG_MINUTES), 0x07);
}

static void test_binary_mode(void **state)
{
    (void)state;
    wr(REG_B, B_24H | B_DM);
    assert_int_equal(rd(REG_SECONDS), 30);
    assert_int_equal(rd(REG_MINUTES), 6);
    assert_int_equal(rd(REG_HOURS), 21);
    assert_int_equal(rd(REG_DAY), 22);
    assert_int_equal(rd(REG_MONTH), 11);
    assert_int_equal(rd(REG_YEAR), 26);
    assert_int_equal(rd(MC146818_CMOS_CENTURY), 20);
}

static void test_12_hour_mode(void **state)
{
    (void)state;
    wr(REG_B, 0);                       /* BCD, 12-hour */
    assert_int_equal(rd(REG_HOURS), 0x80 | 0x09); /* 9 PM */
    wr(REG_B, B_DM);                    /* binary, 12-hour */
    assert_int_equal(rd(REG_HOURS), 0x80 | 9);
    at(T_2026_MIDNIGHT, 0);
    wr(REG_B, 0);
    assert_int_equal(rd(REG_HOURS), 0x12); /* 12 AM */
    at(T_2026_NOON, 0);
    assert_int_equal(rd(REG_HOURS), 0x92); /* 12 PM */
    at(T_2026_NOON - 1, 0);
    assert_int_equal(rd(REG_HOURS), 0x11); /* 11 AM */
}

static void test_calendar_rollovers(void **state)
{
    (void)state;
    at(T_LEAP_EVE, 0);
    assert_int_equal(rd(REG_DAY), 0x28);
    advance_ns(NSEC_PER_SEC);
    assert_int_equal(rd(REG_DAY), 0x29);
    assert_int_equal(rd(REG_MONTH), 0x02);
    assert_int_equal(rd(REG_WEEKDAY), 5); /* 2024-02-29 was a Thursday */
    at(T_2100_FEB_28 + 1, 0);              /* 2100 is no leap year */
    assert_int_equal(rd(REG_DAY), 0x01);
    assert_int_equal(rd(REG_MONTH), 0x03);
    assert_int_equal(rd(REG_YEAR), 0x00);
    assert_int_equal(rd(MC146818_CMOS_CENTURY), 0x21);
}

/* Linux's sequence: SET, write every field, clear SET. */
static void set_time_bcd(uint8_t cent, uint8_t year, uint8_t mon, uint8_t day,
                         uint8_t hour, uint8_t min, uint8_t sec)
{
    wr(REG_B, rd(REG_B) | B_SET);
    wr(REG_SECONDS, sec);
    wr(REG_MINUTES, min);
    wr(REG_HOURS, hour);
    wr(REG_DAY, day);
    wr(REG_MONTH, mon);
    wr(REG_YEAR, year);
    wr(MC146818_CMOS_CENTURY, cent);
    wr(REG_B, rd(REG_B) & (uint8_t)~B_SET);
}

static void test_set_bit_holds_and_sets_time(void **state)
{
    (void)state;
    wr(REG_B, B_24H | B_SET);
    advance_ns(5 * (uint64_t)NSEC_PER_SEC);
    assert_int_equal(rd(REG_SECONDS), 0x30); /* held */
    assert_int_equal(rd(REG_A) & A_UIP, 0);  /* no update while SET */
    wr(REG_B, B_24H);
    assert_int_equal(rd(REG_SECONDS), 0x30); /* resumes from the held time */
    advance_ns(NSEC_PER_SEC);
    assert_int_equal(rd(REG_SECONDS), 0x31);

    set_time_bcd(0x19, 0x99, 0x12, 0x31, 0x23, 0x59, 0x58);
    assert_int_equal(rd(REG_SECONDS), 0x58);
    assert_int_equal(rd(MC146818_CMOS_CENTURY), 0x19);
    advance_ns(2 * (uint64_t)NSEC_PER_SEC);
    assert_int_equal(rd(REG_SECONDS), 0x00);
    assert_int_equal(rd(REG_HOURS), 0x00);
    assert_int_equal(rd(REG_DAY), 0x01);
    assert_int_equal(rd(REG_MONTH), 0x01);
    assert_int_equal(rd(REG_YEAR), 0x00);
    assert_int_equal(rd(MC146818_CMOS_CENTURY), 0x20);
    assert_int_equal(rd(REG_WEEKDAY), 7); /* 2000-01-01 was a Saturday */
}

static void test_set_keeps_divider_phase(void **state)
{
    (void)state;
    at(T_SUNDAY_EVENING, 300000000);
    set_time_bcd(0x20, 0x30, 0x06, 0x15, 0x08, 0x00, 0x00);
    advance_ns(699999999);
    assert_int_equal(rd(REG_SECONDS), 0x00);
    advance_ns(1);
    assert_int_equal(rd(REG_SECONDS), 0x01);
}

static void test_set_in_binary_12h(void **state)
{
    (void)state;
    wr(REG_B, B_DM | B_SET);                  /* binary, 12-hour */
    wr(REG_HOURS, 0x80 | 11);                 /* 11 PM */
    wr(REG_MINUTES, 59);
    wr(REG_SECONDS, 59);
    wr(REG_DAY, 28);
    wr(REG_MONTH, 2);
    wr(REG_YEAR, 23);
    wr(MC146818_CMOS_CENTURY, 20);
    wr(REG_B, B_DM);
    advance_ns(NSEC_PER_SEC);
    assert_int_equal(rd(REG_HOURS), 12);      /* 12 AM */
    assert_int_equal(rd(REG_DAY), 1);
    assert_int_equal(rd(REG_MONTH), 3);
    wr(REG_B, B_DM | B_24H);
    assert_int_equal(rd(REG_HOURS), 0);
}

static void test_write_one_field_while_running(void **state)
{
    (void)state;
    wr(REG_MINUTES, 0x45);
    assert_int_equal(rd(REG_MINUTES), 0x45);
    assert_int_equal(rd(REG_SECONDS), 0x30);
    assert_int_equal(rd(REG_HOURS), 0x21);
    advance_ns(NSEC_PER_SEC);
    assert_int_equal(rd(REG_SECONDS), 0x31);
}

static void test_invalid_date_holds_until_valid(void **state)
{
    (void)state;
    wr(REG_MONTH, 0x13);                  /* no such month */
    advance_ns(3 * (uint64_t)NSEC_PER_SEC);
    assert_int_equal(rd(REG_MONTH), 0x13); /* reads back as written */
    assert_int_equal(rd(REG_SECONDS), 0x30); /* and the clock does not run */
    wr(REG_MONTH, 0x1a);                  /* a bad BCD digit is no better */
    assert_int_equal(rd(REG_SECONDS), 0x30);
    wr(REG_DAY, 0x31);
    wr(REG_MONTH, 0x11);                  /* 31 November: still no date */
    advance_ns(NSEC_PER_SEC);
    assert_int_equal(rd(REG_SECONDS), 0x30);
    wr(REG_DAY, 0x30);
    advance_ns(NSEC_PER_SEC);
    assert_int_equal(rd(REG_SECONDS), 0x31);
    assert_int_equal(rd(REG_DAY), 0x30);
}

/* Linux's set sequence: SET, the divider held in reset, the fields, B restored
 * (the clock still held by the divider), A restored (the clock runs, first update
 * half a second later). */
static void test_linux_set_sequence(void **state)
{
    (void)state;
    at(T_SUNDAY_EVENING, 123456789);
    uint8_t b = rd(REG_B), a = rd(REG_A);
    wr(REG_B, b | B_SET);
    wr(REG_A, a | 0x70);
    wr(REG_YEAR, 0x27);
    wr(REG_MONTH, 0x03);
    wr(REG_DAY, 0x04);
    wr(REG_HOURS, 0x05);
    wr(REG_MINUTES, 0x06);
    wr(REG_SECONDS, 0x07);
    wr(MC146818_CMOS_CENTURY, 0x20);
    advance_ns(2 * (uint64_t)NSEC_PER_SEC);
    wr(REG_B, b);
    advance_ns(NSEC_PER_SEC);
    assert_int_equal(rd(REG_SECONDS), 0x07); /* still held by the divider */
    wr(REG_A, a);
    assert_int_equal(rd(REG_A), 0x26);
    advance_ns(499999999);
    assert_int_equal(rd(REG_SECONDS), 0x07);
    advance_ns(1);
    assert_int_equal(rd(REG_SECONDS), 0x08);
    assert_int_equal(rd(REG_DAY), 0x04);
    assert_int_equal(rd(REG_MONTH), 0x03);
    assert_int_equal(rd(REG_YEAR), 0x27);
    assert_int_equal(rd(REG_WEEKDAY), 5); /* 2027-03-04 is a Thursday */
}

static void test_divider_reset_release_half_second(void **state)
{
    (void)state;
    at(T_SUNDAY_EVENING, 900000000);
    wr(REG_A, 0x70);                      /* divider in reset */
    advance_ns(10 * (uint64_t)NSEC_PER_SEC);
    assert_int_equal(rd(REG_SECONDS), 0x30);
    wr(REG_SECONDS, 0x10);
    wr(REG_A, 0x26);
    advance_ns(499000000);
    assert_int_equal(rd(REG_SECONDS), 0x10);
    advance_ns(1000000);
    assert_int_equal(rd(REG_SECONDS), 0x11);
}

/* tBUC, 244 us (8 cycles of 32.768 kHz, rounded up to whole ns), spelled out
 * here rather than taken from the model. */
#define TBUC_NS 244141u

static void test_uip_window(void **state)
{
    (void)state;
    at(T_SUNDAY_EVENING, NSEC_PER_SEC - TBUC_NS - 1);
    assert_int_equal(rd(REG_A), 0x26);
    advance_ns(1);
    assert_int_equal(rd(REG_A), 0x26 | A_UIP);
    assert_int_equal(rd(REG_SECONDS), 0x30); /* the update has not happened yet */
    advance_ns(TBUC_NS - 1);
    assert_int_equal(rd(REG_A), 0x26 | A_UIP);
    advance_ns(1);
    assert_int_equal(rd(REG_A), 0x26);
    assert_int_equal(rd(REG_SECONDS), 0x31);
    wr(REG_A, 0x26 | A_UIP);                   /* UIP is read-only */
    assert_int_equal(rd(REG_A), 0x26);
    at(T_SUNDAY_EVENING + 5, NSEC_PER_SEC - 1000);
    wr(REG_B, B_24H | B_SET);
    assert_int_equal(rd(REG_A) & A_UIP, 0);    /* SET stops the updates */
    wr(REG_A, 0x70);
    wr(REG_B, B_24H);
    assert_int_equal(rd(REG_A) & A_UIP, 0);    /* and so does the divider reset */
}

static void test_nmi_mask_on_index_writes(void **state)
{
    (void)state;
    assert_false(mc146818_nmi_masked(&rtc));
    mc146818_write(&rtc, MC146818_PORT_INDEX, INDEX_NMI_MASK | REG_A);
    assert_true(mc146818_nmi_masked(&rtc));
    assert_int_equal(mc146818_read(&rtc, MC146818_PORT_DATA), 0x26); /* index without bit 7 */
    mc146818_write(&rtc, MC146818_PORT_INDEX, REG_D);
    assert_false(mc146818_nmi_masked(&rtc));
    assert_int_equal(mc146818_read(&rtc, MC146818_PORT_DATA), D_VRT);
}

static void test_cmos_storage_and_bounds(void **state)
{
    (void)state;
    wr(0x40, 0xa5);
    wr(0x7f, 0x5a);
    assert_int_equal(rd(0x40), 0xa5);
    assert_int_equal(rd(0x7f), 0x5a);
    /* Index 0xff is index 0x7f with NMI masked: there is no byte past 0x7f. */
    mc146818_write(&rtc, MC146818_PORT_INDEX, 0xff);
    assert_int_equal(mc146818_read(&rtc, MC146818_PORT_DATA), 0x5a);
    /* The alarm bytes are plain storage too, and do not disturb the clock. */
    wr(REG_SECONDS_ALARM, 0x77);
    assert_int_equal(rd(REG_SECONDS_ALARM), 0x77);
    assert_int_equal(rd(REG_SECONDS), 0x30);

    assert_false(mc146818_cmos_set(&rtc, MC146818_CMOS_SIZE, 1));
    assert_false(mc146818_cmos_set(&rtc, 1000, 1));
    assert_false(mc146818_cmos_set(&rtc, REG_B, 1));
    assert_false(mc146818_cmos_set(&rtc, MC146818_CMOS_CENTURY, 1));
    assert_int_equal(rd(REG_B), B_24H);
    assert_true(mc146818_cmos_set(&rtc, 0x7f, 0x11));
    assert_int_equal(rd(0x7f), 0x11);
}

static uint8_t bus_read(void *ctx, uint16_t port)
{
    return mc146818_read(ctx, port);
}

static void bus_write(void *ctx, uint16_t port, uint8_t v)
{
    mc146818_write(ctx, port, v);
}

/* Wider accesses reach the two byte registers split by the bus: a 16-bit write at
 * 0x70 selects the index and writes the data in one go; one at 0x71 runs past the
 * part onto the empty bus. */
static void test_wide_accesses_through_the_bus(void **state)
{
    (void)state;
    struct io_bus bus = { 0 };
    assert_true(io_bus_claim(&bus, MC146818_PORT_INDEX, MC146818_PORT_DATA, bus_read, bus_write, &rtc));
    io_bus_write(&bus, MC146818_PORT_INDEX, 2, 0x5a00 | 0x41);
    assert_int_equal(rd(0x41), 0x5a);
    assert_false(mc146818_nmi_masked(&rtc));
    assert_int_equal(io_bus_read(&bus, MC146818_PORT_INDEX, 2), 0x5aff); /* index reads 0xff */
    assert_int_equal(io_bus_read(&bus, MC146818_PORT_DATA, 2), 0xff5a);  /* 0x72 floats */
    io_bus_write(&bus, MC146818_PORT_DATA, 4, 0xffffff77);
    assert_int_equal(rd(0x41), 0x77);
    mc146818_write(&rtc, MC146818_PORT_INDEX, INDEX_NMI_MASK | REG_SECONDS);
    assert_int_equal(io_bus_read(&bus, MC146818_PORT_DATA, 1), 0x30);
}

static void test_read_only_registers(void **state)
{
    (void)state;
    wr(REG_D, 0x00);
    assert_int_equal(rd(REG_D), D_VRT);
    wr(REG_C, 0xff);
    assert_int_equal(rd(REG_C), 0);
    assert_false(clk.level);
}

static unsigned checksum(void)
{
    unsigned sum = 0;
    for (unsigned i = 0x10; i <= 0x2d; i++)
        sum += rtc.cmos[i];
    return sum & 0xffff;
}

static void test_memory_size_bytes(void **state)
{
    (void)state;
    mc146818_set_memory(&rtc, 512ull << 20);
    assert_int_equal(rd(0x15) | rd(0x16) << 8, 640);
    assert_int_equal(rd(0x17) | rd(0x18) << 8, 0xffff); /* 511 MiB does not fit */
    assert_int_equal(rd(0x30) | rd(0x31) << 8, 0xffff);
    assert_int_equal(rd(0x34) | rd(0x35) << 8, (512 - 16) * 16);
    assert_int_equal(rd(0x2e) << 8 | rd(0x2f), checksum());

    mc146818_set_memory(&rtc, 8ull << 20);
    assert_int_equal(rd(0x17) | rd(0x18) << 8, 7 * 1024);
    assert_int_equal(rd(0x34) | rd(0x35) << 8, 0);

    mc146818_set_memory(&rtc, 8ull << 30);
    assert_int_equal(rd(0x34) | rd(0x35) << 8, 0xffff);

    mc146818_set_memory(&rtc, 512 * 1024);
    assert_int_equal(rd(0x15) | rd(0x16) << 8, 512);
    assert_int_equal(rd(0x17) | rd(0x18) << 8, 0);

    assert_true(mc146818_cmos_set(&rtc, 0x20, 0x99));
    assert_int_equal(rd(0x2e) << 8 | rd(0x2f), checksum());
}

static void test_periodic_interrupt_and_register_c(void **state)
{
    (void)state;
    wr(REG_B, B_24H | B_PIE);             /* 1024 Hz from register A's power-on value */
    assert_false(clk.level);
    assert_int_equal(mc146818_next_event_ns(&rtc), 976563); /* 1/1024 s, rounded up */
    advance_ns(976562);
    mc146818_tick(&rtc);
    assert_false(clk.level);
    advance_ns(1);
    mc146818_tick(&rtc);
    assert_true(clk.level);
    assert_int_equal(mc146818_next_event_ns(&rtc), MC146818_NO_EVENT); /* line already high */
    assert_int_equal(rd(REG_C), C_IRQF | C_PF);
    assert_false(clk.level);
    assert_int_equal(rd(REG_C), 0);
    assert_int_equal(mc146818_next_event_ns(&rtc), 1953125 - 976563); /* the second edge, at 2/1024 s */
}

static void test_periodic_rates(void **state)
{
    (void)state;
    static const struct { uint8_t rs; uint64_t ns; } rate[] = {
        { 1, 3906250 }, { 2, 7812500 }, { 3, 122071 }, { 6, 976563 },
        { 13, 125000000 }, { 15, 500000000 },
    };
    wr(REG_B, B_24H | B_PIE);
    for (size_t i = 0; i < sizeof rate / sizeof rate[0]; i++) {
        at(T_SUNDAY_EVENING, 0);
        wr(REG_A, (uint8_t)(A_DV_32K | rate[i].rs));
        rd(REG_C);
        assert_int_equal(mc146818_next_event_ns(&rtc), rate[i].ns);
    }
    /* Rate 0 turns the periodic interrupt off; so does the divider reset. */
    wr(REG_A, A_DV_32K);
    assert_int_equal(mc146818_next_event_ns(&rtc), MC146818_NO_EVENT);
    advance_ns(NSEC_PER_SEC);
    assert_int_equal(rd(REG_C), C_UF);
    wr(REG_A, A_DV_RESET | 0x06);
    assert_int_equal(mc146818_next_event_ns(&rtc), MC146818_NO_EVENT);
    advance_ns(NSEC_PER_SEC);
    assert_int_equal(rd(REG_C), 0);

    /* 2 Hz over 3 s: an edge every half second, counted on each tick. */
    at(T_SUNDAY_EVENING + 100, 0);
    wr(REG_A, A_DV_32K | 15);
    int edges = 0;
    for (int ms = 0; ms < 3000; ms++) {
        advance_ns(1000000);
        mc146818_tick(&rtc);
        if (clk.level) {
            edges++;
            rd(REG_C);
        }
    }
    assert_int_equal(edges, 6);
}

static void test_flags_rise_without_enables(void **state)
{
    (void)state;
    advance_ns(NSEC_PER_SEC);
    assert_false(clk.level);
    wr(REG_B, B_24H | B_PIE);            /* PF already set: the line rises at once */
    assert_true(clk.level);
    assert_int_equal(rd(REG_C), C_IRQF | C_PF | C_UF);
    assert_false(clk.level);
    advance_ns(NSEC_PER_SEC);
    wr(REG_B, B_24H);
    assert_int_equal(rd(REG_C), C_PF | C_UF); /* no IRQF when nothing enabled */
}

static void test_update_ended_interrupt(void **state)
{
    (void)state;
    at(T_SUNDAY_EVENING, 250000000);
    wr(REG_A, A_DV_32K);                 /* no periodic interrupt */
    assert_int_equal(rd(REG_C), C_PF);   /* the quarter second at 1024 Hz before */
    wr(REG_B, B_24H | B_UIE);
    assert_int_equal(mc146818_next_event_ns(&rtc), 750000000);
    advance_ns(749999999);
    mc146818_tick(&rtc);
    assert_false(clk.level);
    advance_ns(1);
    mc146818_tick(&rtc);
    assert_true(clk.level);
    assert_int_equal(rd(REG_C), C_IRQF | C_UF);
    assert_int_equal(mc146818_next_event_ns(&rtc), NSEC_PER_SEC);
}

static void test_set_clears_uie_and_stops_updates(void **state)
{
    (void)state;
    wr(REG_A, A_DV_32K);
    wr(REG_B, B_24H | B_UIE);
    wr(REG_B, B_24H | B_UIE | B_SET);
    assert_int_equal(rd(REG_B), B_24H | B_SET);
    wr(REG_B, B_24H | B_UIE | B_SET);    /* UIE may be set again while SET stays high */
    assert_int_equal(rd(REG_B), B_24H | B_UIE | B_SET);
    assert_int_equal(mc146818_next_event_ns(&rtc), MC146818_NO_EVENT);
    advance_ns(3 * (uint64_t)NSEC_PER_SEC);
    assert_int_equal(rd(REG_C), 0);
}

static void test_alarm_interrupt(void **state)
{
    (void)state;
    wr(REG_A, A_DV_32K);
    at(T_SUNDAY_EVENING, 100000000);      /* 21:06:30.1 */
    wr(REG_HOURS_ALARM, 0x21);
    wr(REG_MINUTES_ALARM, 0x07);
    wr(REG_SECONDS_ALARM, 0x00);
    wr(REG_B, B_24H | B_AIE);
    assert_int_equal(mc146818_next_event_ns(&rtc), 29900000000ull);
    advance_ns(29899999999ull);
    mc146818_tick(&rtc);
    assert_false(clk.level);
    advance_ns(1);
    mc146818_tick(&rtc);
    assert_true(clk.level);
    assert_int_equal(rd(REG_C), C_IRQF | C_AF | C_UF);
    /* The same time tomorrow. */
    assert_int_equal(mc146818_next_event_ns(&rtc), 86400ull * NSEC_PER_SEC);
}

static void test_alarm_dont_care(void **state)
{
    (void)state;
    wr(REG_A, A_DV_32K);
    wr(REG_B, B_24H | B_AIE);
    /* Every minute at second 0x15. */
    wr(REG_HOURS_ALARM, 0xc0);
    wr(REG_MINUTES_ALARM, 0xff);
    wr(REG_SECONDS_ALARM, 0x15);
    assert_int_equal(mc146818_next_event_ns(&rtc), 45ull * NSEC_PER_SEC);
    /* Every second. */
    wr(REG_SECONDS_ALARM, 0xc0);
    assert_int_equal(mc146818_next_event_ns(&rtc), NSEC_PER_SEC);
    /* Every hour at 00:00 (next at 22:00:00). */
    wr(REG_MINUTES_ALARM, 0x00);
    wr(REG_SECONDS_ALARM, 0x00);
    assert_int_equal(mc146818_next_event_ns(&rtc), (53ull * 60 + 30) * NSEC_PER_SEC);
    /* At 21:xx:45 in any minute: this hour. */
    wr(REG_HOURS_ALARM, 0x21);
    wr(REG_MINUTES_ALARM, 0xc0);
    wr(REG_SECONDS_ALARM, 0x45);
    assert_int_equal(mc146818_next_event_ns(&rtc), 15ull * NSEC_PER_SEC);
}

static void test_alarm_12_hour_mode(void **state)
{
    (void)state;
    wr(REG_A, A_DV_32K);
    wr(REG_B, B_AIE);                    /* BCD, 12-hour */
    wr(REG_HOURS_ALARM, 0x80 | 0x09);    /* 9 PM */
    wr(REG_MINUTES_ALARM, 0x10);
    wr(REG_SECONDS_ALARM, 0x00);
    assert_int_equal(mc146818_next_event_ns(&rtc), (3ull * 60 + 30) * NSEC_PER_SEC);
    wr(REG_HOURS_ALARM, 0x09);           /* 9 AM: tomorrow */
    assert_int_equal(mc146818_next_event_ns(&rtc),
                     ((12ull * 60 + 3) * 60 + 30) * NSEC_PER_SEC);
}

static void test_alarm_impossible_values(void **state)
{
    (void)state;
    wr(REG_A, A_DV_32K);
    wr(REG_B, B_24H | B_AIE);
    wr(REG_HOURS_ALARM, 0xc0);
    wr(REG_MINUTES_ALARM, 0xc0);
    wr(REG_SECONDS_ALARM, 0x60);         /* no second 60 */
    assert_int_equal(mc146818_next_event_ns(&rtc), MC146818_NO_EVENT);
    wr(REG_SECONDS_ALARM, 0x3a);         /* not BCD */
    assert_int_equal(mc146818_next_event_ns(&rtc), MC146818_NO_EVENT);
    wr(REG_SECONDS_ALARM, 0x00);
    wr(REG_HOURS_ALARM, 0x24);           /* no hour 24 */
    assert_int_equal(mc146818_next_event_ns(&rtc), MC146818_NO_EVENT);
    advance_ns(2 * 86400ull * NSEC_PER_SEC);
    assert_int_equal(rd(REG_C) & C_AF, 0);
}

static void test_alarm_missed_while_idle_still_flags(void **state)
{
    (void)state;
    wr(REG_A, A_DV_32K);
    wr(REG_HOURS_ALARM, 0x03);           /* 03:00:00, hours away */
    wr(REG_MINUTES_ALARM, 0x00);
    wr(REG_SECONDS_ALARM, 0x00);
    advance_ns(5ull * 3600 * NSEC_PER_SEC);
    assert_int_equal(rd(REG_C), C_UF);   /* 02:06:30: not yet */
    advance_ns(3600ull * NSEC_PER_SEC);
    assert_int_equal(rd(REG_C), C_AF | C_UF);
    wr(REG_B, B_24H | B_SET);            /* no alarm while SET holds the clock */
    advance_ns(86400ull * NSEC_PER_SEC);
    assert_int_equal(rd(REG_C), 0);
}

static void test_reset_pin(void **state)
{
    (void)state;
    wr(0x50, 0x42);
    wr(REG_B, B_24H | B_DM | B_PIE | B_AIE | B_UIE | B_SQWE);
    advance_ns(NSEC_PER_SEC);
    mc146818_tick(&rtc);
    assert_true(clk.level);
    mc146818_reset(&rtc);
    assert_false(clk.level);
    assert_int_equal(rd(REG_B), B_24H | B_DM);
    assert_int_equal(rd(REG_C), 0);
    assert_int_equal(rd(0x50), 0x42);
    assert_int_equal(rd(REG_SECONDS), 31);
}

static void test_host_clock_stepping_back(void **state)
{
    (void)state;
    wr(REG_B, B_24H | B_UIE);
    at(T_SUNDAY_EVENING - 3600, 0);
    mc146818_tick(&rtc);
    assert_false(clk.level);             /* time going back is no update */
    assert_int_equal(rd(REG_HOURS), 0x20);
    at(T_SUNDAY_EVENING - 3599, 0);
    mc146818_tick(&rtc);
    assert_true(clk.level);
}

/* ---- snapshots ---- */

static size_t save_rtc(const struct mc146818 *r, uint8_t *buf)
{
    struct snap st;
    snap_save_begin(&st, buf, SNAP_TEST_BUF);
    assert_true(mc146818_save(r, &st, clk.sec, clk.nsec));
    size_t n = snap_save_end(&st);
    assert_true(n > SNAP_HEADER_BYTES);
    return n;
}

/* Loads at the fake host clock's now. */
static bool load_rtc(void *model, struct snap *st)
{
    return mc146818_load(model, st, clk.sec, clk.nsec);
}

static void load_rtc_ok(struct mc146818 *r, const uint8_t *buf, size_t n, uint64_t sec, uint32_t nsec)
{
    struct snap st;
    assert_true(snap_load_begin(&st, buf, n));
    assert_true(mc146818_load(r, &st, sec, nsec));
    assert_true(snap_load_end(&st));
}

static uint8_t rd_on(struct mc146818 *r, unsigned index)
{
    mc146818_write(r, MC146818_PORT_INDEX, (uint8_t)index);
    return mc146818_read(r, MC146818_PORT_DATA);
}

/* The guest set its own time (2031-05-17 08:15:42, 12-hour BCD, keeping the
 * divider's phase), 0.7 s into the second; a 2 Hz periodic interrupt has raised
 * the line, an alarm is due at 08:15:50, a CMOS byte is the guest's, the index
 * points at it with NMI masked. */
static void busy_rtc(void)
{
    at(T_SUNDAY_EVENING, 250000000);
    wr(REG_B, B_SET);
    wr(REG_SECONDS, 0x42);
    wr(REG_MINUTES, 0x15);
    wr(REG_HOURS, 0x08);
    wr(REG_DAY, 0x17);
    wr(REG_MONTH, 0x05);
    wr(REG_YEAR, 0x31);
    wr(MC146818_CMOS_CENTURY, 0x20);
    wr(REG_SECONDS_ALARM, 0x50);
    wr(REG_MINUTES_ALARM, 0x15);
    wr(REG_HOURS_ALARM, 0x08);
    wr(REG_A, A_DV_32K | 0x0f);
    wr(REG_B, B_PIE | B_AIE);
    assert_true(mc146818_cmos_set(&rtc, 0x40, 0xab));
    advance_ns(450000000);                 /* guest 08:15:42.7: past the 2 Hz edge at .5 */
    mc146818_tick(&rtc);
    assert_true(clk.level);
    mc146818_write(&rtc, MC146818_PORT_INDEX, 0x80 | 0x40);
    assert_true(rtc.running);
}

/* What the guest reads from now on, and when the monitor would next wake it. */
static void observe_rtc(struct mc146818 *r, struct clock *c, uint64_t out[24])
{
    unsigned n = 0;
    out[n++] = mc146818_read(r, MC146818_PORT_DATA);   /* the index the guest left */
    out[n++] = mc146818_nmi_masked(r);
    static const uint8_t regs[] = { REG_SECONDS, REG_MINUTES, REG_HOURS, REG_WEEKDAY, REG_DAY,
                                    REG_MONTH, REG_YEAR, MC146818_CMOS_CENTURY, REG_A, REG_B };
    for (unsigned i = 0; i < sizeof regs; i++)
        out[n++] = rd_on(r, regs[i]);
    out[n++] = rd_on(r, REG_C);                         /* PF waiting, IRQF: the line */
    out[n++] = mc146818_next_event_ns(r);
    uint64_t ns = c->nsec + 7299999999ull;              /* to 08:15:49.999999999 */
    c->sec += ns / NSEC_PER_SEC;
    c->nsec = (uint32_t)(ns % NSEC_PER_SEC);
    mc146818_tick(r);
    out[n++] = rd_on(r, REG_C);                         /* PF and UF, no alarm yet */
    out[n++] = mc146818_next_event_ns(r);
    c->nsec += 1;
    if (c->nsec == NSEC_PER_SEC) {
        c->nsec = 0;
        c->sec++;
    }
    mc146818_tick(r);
    out[n++] = c->level;
    out[n++] = rd_on(r, REG_C);                         /* the alarm */
    out[n++] = rd_on(r, REG_SECONDS);
    out[23] = n;
}

static void test_snapshot_round_trip(void **state)
{
    (void)state;
    busy_rtc();
    uint8_t a[SNAP_TEST_BUF], b[SNAP_TEST_BUF];
    size_t n = save_rtc(&rtc, a);

    struct clock c2 = clk;
    c2.irq_changes = 0;
    c2.level = false;
    struct mc146818 q;
    mc146818_init(&q, fake_now, fake_irq, &c2);
    load_rtc_ok(&q, a, n, clk.sec, clk.nsec);
    assert_int_equal(save_rtc(&q, b), n);
    assert_memory_equal(a, b, n);

    /* Three days and a fraction later on the host, the guest's clock reads what it
     * read at the save, and its flags, alarm and periodic phase go on from there. */
    struct clock c3 = { .sec = clk.sec + 3 * 86400, .nsec = clk.nsec + 123456789 };
    struct mc146818 r;
    mc146818_init(&r, fake_now, fake_irq, &c3);
    load_rtc_ok(&r, a, n, c3.sec, c3.nsec);
    assert_int_equal(c3.irq_changes, 0);        /* the caller drives the line */
    assert_true(r.irq_level);
    c3.level = true;
    assert_ptr_equal(r.ctx, &c3);

    uint64_t want[24] = { 0 }, got[24] = { 0 };
    observe_rtc(&rtc, &clk, want);
    observe_rtc(&r, &c3, got);
    assert_memory_equal(want, got, sizeof want);
    assert_int_equal(want[2], 0x42);
    assert_int_equal(want[3], 0x15);
    assert_int_equal(want[4], 0x08);
    assert_int_equal(want[12], C_IRQF | C_PF);
    assert_int_equal(want[13], 300000000);      /* the next 2 Hz edge, at 08:15:43.0 */
    assert_int_equal(want[14], C_IRQF | C_PF | C_UF);
    assert_int_equal(want[15], 1);              /* the alarm, one ns on */
    assert_int_equal(want[17], C_IRQF | C_PF | C_AF | C_UF);   /* 08:15:50.0 */
    assert_int_equal(want[18], 0x50);
}

/* A guest clock stopped with SET is held across a load as well, and runs on from
 * the same phase when the guest clears SET; a load at a host time long before the
 * save's (the host clock stepped back) shifts in the same way. */
static void test_snapshot_stopped_clock_and_host_in_the_past(void **state)
{
    (void)state;
    busy_rtc();
    wr(REG_B, B_SET);
    wr(REG_MINUTES, 0x59);
    uint8_t a[SNAP_TEST_BUF];
    size_t n = save_rtc(&rtc, a);
    struct clock c2 = { .sec = 86400 * 365, .nsec = 999999999 };
    struct mc146818 q;
    mc146818_init(&q, fake_now, fake_irq, &c2);
    load_rtc_ok(&q, a, n, c2.sec, c2.nsec);
    assert_false(q.running);
    assert_int_equal(rd_on(&q, REG_MINUTES), 0x59);
    assert_int_equal(rd_on(&q, REG_SECONDS), 0x42);
    wr(REG_B, 0);
    mc146818_write(&q, MC146818_PORT_INDEX, REG_B);
    mc146818_write(&q, MC146818_PORT_DATA, 0);
    advance_ns(2500000000ull);
    c2.sec += 3;
    c2.nsec -= 500000000;
    assert_int_equal(rd(REG_SECONDS), 0x45);     /* 42.7 + 2.5 s */
    assert_int_equal(rd_on(&q, REG_SECONDS), 0x45);
    assert_int_equal(rd_on(&q, REG_MINUTES), 0x59);
    assert_int_equal(rd_on(&q, REG_HOURS), 0x08);
}

static void test_snapshot_truncated(void **state)
{
    (void)state;
    busy_rtc();
    uint8_t a[SNAP_TEST_BUF];
    size_t n = save_rtc(&rtc, a);
    struct clock c2 = clk;
    struct mc146818 q;
    mc146818_init(&q, fake_now, fake_irq, &c2);
    c2.irq_changes = 0;
    snap_test_truncations(a, n, load_rtc, &q, sizeof q);
    snap_test_extended(a, n, load_rtc, &q, sizeof q);
    assert_int_equal(c2.irq_changes, 0);
}

static void refuse_rtc(const struct mc146818 *bad, const char *why)
{
    uint8_t a[SNAP_TEST_BUF];
    size_t n = save_rtc(bad, a);
    struct mc146818 q;
    mc146818_init(&q, fake_now, NULL, &clk);
    assert_true(mc146818_cmos_set(&q, 0x50, 0x5a));
    snap_test_refused(a, n, load_rtc, &q, sizeof q, why);
}

static void test_snapshot_tampered(void **state)
{
    (void)state;
    busy_rtc();
    uint8_t a[SNAP_TEST_BUF];
    size_t n = save_rtc(&rtc, a);
    snap_test_flips(a, n);

    struct mc146818 bad = rtc;
    bad.index = MC146818_CMOS_SIZE;
    refuse_rtc(&bad, "rtc: index past the CMOS RAM");
    bad = rtc;
    bad.index = 0xff;
    refuse_rtc(&bad, "rtc: index past the CMOS RAM");
    bad = rtc;
    bad.flags = C_IRQF;
    refuse_rtc(&bad, "rtc: register C flags the part does not have");
    bad = rtc;
    bad.cmos[REG_A] |= A_UIP;
    refuse_rtc(&bad, "rtc: UIP stored in register A");
    bad = rtc;
    bad.cmos[REG_A] = A_DV_RESET | 0x06;
    refuse_rtc(&bad, "rtc: the clock runs with its divider off or SET on");
    bad = rtc;
    bad.cmos[REG_B] |= B_SET;
    refuse_rtc(&bad, "rtc: the clock runs with its divider off or SET on");
    bad = rtc;
    bad.offset_nsec = 2500000000u;              /* a guest reading past its second */
    refuse_rtc(&bad, "rtc: nanoseconds past a second");
    bad = rtc;
    bad.offset_sec = 1ll << 41;
    refuse_rtc(&bad, "rtc: a guest time beyond any calendar");
    bad = rtc;
    bad.offset_sec = -(1ll << 41);
    refuse_rtc(&bad, "rtc: a guest time beyond any calendar");
    bad = rtc;
    bad.last_sec = clk.sec + (1ull << 41);
    refuse_rtc(&bad, "rtc: a catch-up beyond any calendar");
}

static uint64_t rnd_state = 0x2545f4914f6cdd1dull;

static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

/* Every state the guest can drive the clock into is one a load takes back
 * unchanged, including invalid dates, stopped dividers and 12-hour binary. */
static void test_snapshot_every_reachable_state_loads(void **state)
{
    (void)state;
    static const uint8_t a_values[] = { 0x26, 0x2f, 0x20, 0x23, 0x66, 0x76, 0x06, 0x21, 0xa6 };
    uint8_t a[SNAP_TEST_BUF], b[SNAP_TEST_BUF];
    for (unsigned step = 0; step < 20000; step++) {
        uint64_t r = rnd();
        unsigned index = (r >> 8) % 4 ? (unsigned)((r >> 16) % 14) : (unsigned)((r >> 16) % 128);
        uint8_t v = (uint8_t)(r >> 32);
        if (index == REG_A)
            v = a_values[(r >> 40) % sizeof a_values];
        switch (r % 4) {
        case 0:
            wr(index, v);
            break;
        case 1:
            (void)rd(index);
            break;
        case 2:
            advance_ns((r >> 40) % 3 ? (r >> 24) % 2000000000ull : (r >> 24) % (100000ull * NSEC_PER_SEC));
            mc146818_tick(&rtc);
            break;
        default:
            (void)mc146818_next_event_ns(&rtc);
            break;
        }
        if (step % 5)
            continue;
        size_t n = save_rtc(&rtc, a);
        struct mc146818 q;
        mc146818_init(&q, fake_now, NULL, &clk);
        load_rtc_ok(&q, a, n, clk.sec, clk.nsec);
        assert_int_equal(save_rtc(&q, b), n);
        assert_memory_equal(a, b, n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_power_on_state, setup),
        cmocka_unit_test_setup(test_bcd_24h_from_host_clock, setup),
        cmocka_unit_test_setup(test_binary_mode, setup),
        cmocka_unit_test_setup(test_12_hour_mode, setup),
        cmocka_unit_test_setup(test_calendar_rollovers, setup),
        cmocka_unit_test_setup(test_set_bit_holds_and_sets_time, setup),
        cmocka_unit_test_setup(test_set_keeps_divider_phase, setup),
        cmocka_unit_test_setup(test_set_in_binary_12h, setup),
        cmocka_unit_test_setup(test_write_one_field_while_running, setup),
        cmocka_unit_test_setup(test_invalid_date_holds_until_valid, setup),
        cmocka_unit_test_setup(test_linux_set_sequence, setup),
        cmocka_unit_test_setup(test_divider_reset_release_half_second, setup),
        cmocka_unit_test_setup(test_uip_window, setup),
        cmocka_unit_test_setup(test_nmi_mask_on_index_writes, setup),
        cmocka_unit_test_setup(test_cmos_storage_and_bounds, setup),
        cmocka_unit_test_setup(test_wide_accesses_through_the_bus, setup),
        cmocka_unit_test_setup(test_read_only_registers, setup),
        cmocka_unit_test_setup(test_memory_size_bytes, setup),
        cmocka_unit_test_setup(test_periodic_interrupt_and_register_c, setup),
        cmocka_unit_test_setup(test_periodic_rates, setup),
        cmocka_unit_test_setup(test_flags_rise_without_enables, setup),
        cmocka_unit_test_setup(test_update_ended_interrupt, setup),
        cmocka_unit_test_setup(test_set_clears_uie_and_stops_updates, setup),
        cmocka_unit_test_setup(test_alarm_interrupt, setup),
        cmocka_unit_test_setup(test_alarm_dont_care, setup),
        cmocka_unit_test_setup(test_alarm_12_hour_mode, setup),
        cmocka_unit_test_setup(test_alarm_impossible_values, setup),
        cmocka_unit_test_setup(test_alarm_missed_while_idle_still_flags, setup),
        cmocka_unit_test_setup(test_reset_pin, setup),
        cmocka_unit_test_setup(test_host_clock_stepping_back, setup),
        cmocka_unit_test_setup(test_snapshot_round_trip, setup),
        cmocka_unit_test_setup(test_snapshot_stopped_clock_and_host_in_the_past, setup),
        cmocka_unit_test_setup(test_snapshot_truncated, setup),
        cmocka_unit_test_setup(test_snapshot_tampered, setup),
        cmocka_unit_test_setup(test_snapshot_every_reachable_state_loads, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
