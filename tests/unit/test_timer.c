/* arch/x86_64/apic/timer.c: the calibration arithmetic (overflow and rounding at the
 * edges), and the measurement itself against simulated clocks.  The simulated
 * reference and local APIC timer are derived from the host's own TSC at fixed ratios,
 * so the frequencies timer.c must find are known exactly; a reference that stops, or
 * wraps within the window, must be refused, and the fallback order HPET -> PM timer
 * -> PIT must hold. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "arch/x86_64/apic/timer.c"

/* ---- simulated hardware ------------------------------------------------------------- */

/* Every clock below is a fixed fraction of the host TSC, so "the TSC frequency" is
 * whatever the reference's period says it is. */
enum ref_kind { REF_BY_TSC, REF_STUCK, REF_STOPS };

struct sim_ref {
    bool present;        /* init succeeds */
    enum ref_kind kind;
    uint64_t tsc_per_tick;
    uint64_t mask;
    uint64_t reads;
    /* Added to the count so that the first read is 50 ticks short of the wrap, and
     * the first window always spans one. */
    uint64_t offset;
    bool anchored;
};

static struct sim_ref sim_hpet, sim_pm, sim_pit;
static uint64_t sim_hpet_period_fs;
static struct acpi_info sim_acpi;
/* The APIC timer's input clock is the TSC times sim_apic_speedup divided by this. */
static uint64_t sim_apic_tsc_ratio = 2;
static uint64_t sim_apic_speedup = 1;
static uint32_t sim_apic_dcr, sim_apic_initial;
static uint64_t sim_apic_start_tsc;
static bool sim_apic_ready = true;
static int sim_panics;
static jmp_buf sim_panic_jmp;

static uint64_t sim_read(struct sim_ref *r)
{
    r->reads++;
    switch (r->kind) {
    case REF_STUCK:
        return 1234;
    case REF_STOPS:
        /* Counts for a few hundred reads, then freezes mid-window. */
        return r->reads < 300 ? r->reads : 300;
    default: {
        uint64_t count = rdtsc() / r->tsc_per_tick;
        if (!r->anchored) {
            r->offset = r->mask - 50 - (count & r->mask);
            r->anchored = true;
        }
        return (count + r->offset) & r->mask;
    }
    }
}

bool hpet_init(uint64_t addr)     { (void)addr; return sim_hpet.present; }
uint64_t hpet_read(void)          { return sim_read(&sim_hpet); }
uint64_t hpet_period_fs(void)     { return sim_hpet_period_fs; }
bool pmtimer_init(uint32_t port, bool is32) { (void)port; (void)is32; return sim_pm.present; }
uint32_t pmtimer_read(void)       { return (uint32_t)sim_read(&sim_pm); }
uint32_t pmtimer_mask(void)       { return (uint32_t)sim_pm.mask; }
bool pit_ch2_start(void)          { return sim_pit.present; }
uint16_t pit_ch2_elapsed(void)    { return (uint16_t)sim_read(&sim_pit); }
void pit_ch2_stop(void)           { }
const struct acpi_info *acpi_get(void) { return &sim_acpi; }
bool lapic_ready(void)            { return sim_apic_ready; }

static uint32_t sim_apic_divisor(void)
{
    /* SDM Vol. 3A Figure 12-10: bits 0, 1 and 3. */
    static const uint32_t div[8] = { 2, 4, 8, 16, 32, 64, 128, 1 };
    return div[(sim_apic_dcr & 3) | ((sim_apic_dcr >> 1) & 4)];
}

void lapic_write(uint32_t reg, uint32_t value)
{
    if (reg == LAPIC_TIMER_DCR)
        sim_apic_dcr = value;
    if (reg == LAPIC_TIMER_ICR) {
        sim_apic_initial = value;
        sim_apic_start_tsc = rdtsc();
    }
}

uint32_t lapic_read(uint32_t reg)
{
    if (reg != LAPIC_TIMER_CCR)
        return 0;
    uint64_t ticks = (rdtsc() - sim_apic_start_tsc) * sim_apic_speedup / sim_apic_tsc_ratio /
                     sim_apic_divisor();
    return ticks >= sim_apic_initial ? 0 : sim_apic_initial - (uint32_t)ticks;
}

void log_printf(enum log_level level, const char *fmt, ...)
{
    (void)level;
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

void panic(const char *fmt, ...)
{
    (void)fmt;
    sim_panics++;
    longjmp(sim_panic_jmp, 1);
}

static int sim_reset(void **state)
{
    (void)state;
    memset(&sim_hpet, 0, sizeof sim_hpet);
    memset(&sim_pm, 0, sizeof sim_pm);
    memset(&sim_pit, 0, sizeof sim_pit);
    memset(&sim_acpi, 0, sizeof sim_acpi);
    sim_hpet_period_fs = 0;
    sim_apic_tsc_ratio = 2;
    sim_apic_speedup = 1;
    sim_apic_ready = true;
    sim_panics = 0;
    timer_tsc = timer_apic = 0;
    timer_src = "none";
    return 0;
}

/* Within 0.5 %: the simulated clocks are exact ratios, so the only error is the
 * latency of a read at either end of a 10 ms window, even under sanitizers. */
static void assert_near(uint64_t got, uint64_t want)
{
    uint64_t diff = got > want ? got - want : want - got;
    if (diff > want / 200)
        fail_msg("measured %lu, expected %lu", (unsigned long)got, (unsigned long)want);
}

/* ---- arithmetic ---------------------------------------------------------------------- */

static void test_ref_ns(void **state)
{
    (void)state;
    /* 14.31818 MHz HPET: 143182 ticks of 69841279 fs are 10.000 ms. */
    assert_int_equal(timer_ref_ns(143182, 69841279), 10000014);
    assert_int_equal(timer_ref_ns(0, 69841279), 0);
    /* PIT: 11932 ticks = 10.0001 ms. */
    assert_int_equal(timer_ref_ns(11932, 838095345), 10000153);
    /* An overflowing product is refused, not wrapped. */
    assert_int_equal(timer_ref_ns(UINT64_MAX / 1000, 1000000), 0);
    assert_int_equal(timer_ref_ns(UINT64_MAX / 1000000, 1000000), UINT64_MAX / 1000000);
}

static void test_hz(void **state)
{
    (void)state;
    assert_int_equal(timer_hz(30000000, 10000000), 3000000000ull);
    /* Rounded to nearest: 2 ticks in 3 ns is 666666666.67 Hz. */
    assert_int_equal(timer_hz(2, 3), 666666667ull);
    assert_int_equal(timer_hz(1, 3), 333333333ull);
    assert_int_equal(timer_hz(5, 0), 0);
    assert_int_equal(timer_hz(5, TIMER_MAX_WINDOW_NS + 1), 0);
    /* Beyond ticks * 1e9 fitting in 64 bits, still exact. */
    assert_int_equal(timer_hz(100000000000ull, 1000000000ull), 100000000000ull);
    assert_int_equal(timer_hz(UINT64_MAX / 2, TIMER_MAX_WINDOW_NS), (UINT64_MAX / 2) / 10 + 1);
    /* A result past 64 bits is refused. */
    assert_int_equal(timer_hz(UINT64_MAX, 1), 0);
}

static void test_elapsed_and_median(void **state)
{
    (void)state;
    assert_int_equal(timer_elapsed(10, 25, UINT64_MAX), 15);
    assert_int_equal(timer_elapsed(0xfff0, 0x0010, 0xffff), 0x20);
    assert_int_equal(timer_elapsed(0xfffff0, 0x10, 0xffffff), 0x20);
    assert_int_equal(timer_elapsed(UINT64_MAX - 1, 3, UINT64_MAX), 5);
    assert_int_equal(timer_median3(1, 2, 3), 2);
    assert_int_equal(timer_median3(3, 1, 2), 2);
    assert_int_equal(timer_median3(2, 3, 1), 2);
    assert_int_equal(timer_median3(9, 9, 1), 9);
    assert_int_equal(timer_median3(UINT64_MAX, 0, 7), 7);
}

/* ---- measurement against simulated clocks --------------------------------------------- */

static void test_hpet_used_first(void **state)
{
    (void)state;
    sim_acpi.hpet_addr = 0xfed00000;
    sim_acpi.pm_tmr_port = 0x608;
    sim_hpet = (struct sim_ref){ .present = true, .tsc_per_tick = 20, .mask = UINT64_MAX };
    sim_hpet_period_fs = 10000000;     /* 100 MHz: the TSC "runs at" 2 GHz */
    sim_pm.present = sim_pit.present = true;
    timer_calibrate();
    assert_string_equal(timer_source(), "HPET");
    assert_near(timer_tsc_hz(), 2000000000ull);
    assert_near(timer_lapic_hz(), 1000000000ull);
    assert_int_equal(sim_pm.reads, 0);
    /* Calibration ran the APIC timer divided by 16 and left it stopped. */
    assert_int_equal(sim_apic_dcr, LAPIC_TIMER_DIV_16);
    assert_int_equal(sim_apic_initial, 0);
}

static void test_pm_timer_when_no_hpet(void **state)
{
    (void)state;
    sim_acpi.pm_tmr_port = 0x608;
    /* 24-bit PM timer ticking every 700 TSC ticks: 2.5057 GHz; the first window
     * spans the counter's wrap. */
    sim_pm = (struct sim_ref){ .present = true, .tsc_per_tick = 700, .mask = 0xffffff };
    sim_pit.present = true;
    sim_apic_tsc_ratio = 25;
    timer_calibrate();
    assert_string_equal(timer_source(), "PM timer");
    assert_near(timer_tsc_hz(), 700ull * PMTIMER_HZ);
    assert_near(timer_lapic_hz(), 700ull * PMTIMER_HZ / 25);
    assert_int_equal(sim_pit.reads, 0);
}

static void test_pit_wraps_16_bits(void **state)
{
    (void)state;
    /* No ACPI timers at all: PIT channel 2, whose 16-bit count wraps in the first
     * window. */
    sim_pit = (struct sim_ref){ .present = true, .tsc_per_tick = 2000, .mask = 0xffff };
    timer_calibrate();
    assert_string_equal(timer_source(), "PIT");
    assert_near(timer_tsc_hz(), 2000ull * PIT_HZ);
    assert_near(timer_lapic_hz(), 1000ull * PIT_HZ);
}

static void test_stuck_reference_falls_through(void **state)
{
    (void)state;
    sim_acpi.hpet_addr = 0xfed00000;
    sim_acpi.pm_tmr_port = 0x608;
    sim_hpet = (struct sim_ref){ .present = true, .kind = REF_STUCK, .mask = UINT64_MAX };
    sim_hpet_period_fs = 69841279;
    sim_pm = (struct sim_ref){ .present = true, .kind = REF_STOPS, .mask = 0xffffff };
    sim_pit = (struct sim_ref){ .present = true, .tsc_per_tick = 3000, .mask = 0xffff };
    timer_calibrate();
    assert_true(sim_hpet.reads >= TIMER_STALL_READS);
    assert_true(sim_pm.reads >= TIMER_STALL_READS);
    assert_string_equal(timer_source(), "PIT");
    assert_near(timer_tsc_hz(), 3000ull * PIT_HZ);
}

static void test_no_reference_panics(void **state)
{
    (void)state;
    sim_acpi.hpet_addr = 0xfed00000;   /* listed, but hpet_init fails */
    if (setjmp(sim_panic_jmp) == 0)
        timer_calibrate();
    assert_int_equal(sim_panics, 1);
    assert_int_equal(timer_tsc_hz(), 0);
    assert_string_equal(timer_source(), "none");
}

static void test_needs_lapic(void **state)
{
    (void)state;
    sim_apic_ready = false;
    sim_pit = (struct sim_ref){ .present = true, .tsc_per_tick = 2000, .mask = 0xffff };
    if (setjmp(sim_panic_jmp) == 0)
        timer_calibrate();
    assert_int_equal(sim_panics, 1);
    assert_int_equal(sim_pit.reads, 0);
}

static void test_apic_timer_running_out_is_refused(void **state)
{
    (void)state;
    /* An APIC timer so fast that 0xffffffff counts (divided by 16) run out inside the
     * window must not be turned into a frequency, whatever the reference. */
    sim_pit = (struct sim_ref){ .present = true, .tsc_per_tick = 2000, .mask = 0xffff };
    sim_apic_speedup = 1000000;
    if (setjmp(sim_panic_jmp) == 0)
        timer_calibrate();
    assert_int_equal(sim_panics, 1);
    assert_int_equal(timer_lapic_hz(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ref_ns),
        cmocka_unit_test(test_hz),
        cmocka_unit_test(test_elapsed_and_median),
        cmocka_unit_test_setup(test_hpet_used_first, sim_reset),
        cmocka_unit_test_setup(test_pm_timer_when_no_hpet, sim_reset),
        cmocka_unit_test_setup(test_pit_wraps_16_bits, sim_reset),
        cmocka_unit_test_setup(test_stuck_reference_falls_through, sim_reset),
        cmocka_unit_test_setup(test_no_reference_panics, sim_reset),
        cmocka_unit_test_setup(test_needs_lapic, sim_reset),
        cmocka_unit_test_setup(test_apic_timer_running_out_is_refused, sim_reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
