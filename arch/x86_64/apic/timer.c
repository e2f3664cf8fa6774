#include "arch/x86_64/apic/timer.h"
#include "arch/x86_64/apic/lapic.h"
#include "arch/x86_64/cpu/cpu.h"
#include "drivers/acpi.h"
#include "drivers/hpet.h"
#include "drivers/pmtimer.h"
#include "drivers/pit.h"
#include "kernel/log.h"
#include "kernel/panic.h"

#define FS_PER_NS        1000000ull
#define NS_PER_S         1000000000ull

/* ---- pure arithmetic ---- */

uint64_t timer_ref_ns(uint64_t ref_ticks, uint64_t period_fs)
{
    if (period_fs && ref_ticks > UINT64_MAX / period_fs)
        return 0;
    return ref_ticks * period_fs / FS_PER_NS;
}

uint64_t timer_hz(uint64_t ticks, uint64_t ns)
{
    if (ns == 0 || ns > TIMER_MAX_WINDOW_NS)
        return 0;
    /* ticks * 1e9 / ns, rounded, in two parts so the product cannot overflow: the
     * remainder is below ns <= 1e10, so remainder * 1e9 stays below 2^64. */
    uint64_t q = ticks / ns, r = ticks % ns;
    if (q > UINT64_MAX / NS_PER_S)
        return 0;
    uint64_t hz = q * NS_PER_S;
    uint64_t frac = (r * NS_PER_S + ns / 2) / ns;
    if (hz > UINT64_MAX - frac)
        return 0;
    return hz + frac;
}

uint64_t timer_elapsed(uint64_t start, uint64_t end, uint64_t mask)
{
    return (end - start) & mask;
}

uint64_t timer_median3(uint64_t a, uint64_t b, uint64_t c)
{
    if (a > b) { uint64_t t = a; a = b; b = t; }
    if (b > c) { uint64_t t = b; b = c; c = t; }
    if (a > b) { uint64_t t = a; a = b; b = t; }
    return b;
}

/* ---- measurement ---- */

/* Length of one measurement: long enough that a microsecond of read latency at
 * either end is 0.01 %, short enough to keep boot fast under emulators. */
#define TIMER_WINDOW_NS   10000000ull
#define TIMER_RUNS        3
/* Reads of a reference that returns the same value this many times in a row mean
 * it is not counting (absent, or disabled by firmware). */
#define TIMER_STALL_READS 1000000u
/* Plausible ranges; anything outside is a broken reference, not a fast CPU. */
#define TIMER_TSC_MIN_HZ   1000000ull
#define TIMER_TSC_MAX_HZ   100000000000ull
#define TIMER_APIC_MIN_HZ  100000ull
#define TIMER_APIC_MAX_HZ  10000000000ull
/* The APIC timer counts at its input clock divided by this during calibration. */
#define TIMER_APIC_DIVISOR 16

/* A free-running up-counter of known period, wrapping at mask + 1. */
struct timer_ref {
    const char *name;
    uint64_t period_fs;
    uint64_t mask;
    uint64_t (*read)(void);
};

static uint64_t timer_tsc;
static uint64_t timer_apic;
static const char *timer_src = "none";

uint64_t timer_tsc_hz(void)      { return timer_tsc; }
uint64_t timer_lapic_hz(void)    { return timer_apic; }
const char *timer_source(void)   { return timer_src; }

/* Waits for the reference to tick; false if it never does. */
static bool timer_wait_tick(const struct timer_ref *ref, uint64_t *value)
{
    uint64_t first = ref->read();
    for (uint32_t i = 0; i < TIMER_STALL_READS; i++) {
        uint64_t v = ref->read();
        if (v != first) {
            *value = v;
            return true;
        }
    }
    return false;
}

/* One window: TSC and APIC-timer ticks against ref.  Returns false, with *why set,
 * when the reference or the APIC timer misbehaves. */
static bool timer_measure(const struct timer_ref *ref, uint64_t *tsc_hz, uint64_t *apic_hz,
                          const char **why)
{
    uint64_t window = TIMER_WINDOW_NS * FS_PER_NS / ref->period_fs;
    if (window == 0 || window > ref->mask / 2) {
        *why = "its period does not fit the calibration window";
        return false;
    }

    /* One-shot, masked: the count runs but raises nothing (SDM Vol. 3A §12.5.4). */
    lapic_write(LAPIC_LVT_TIMER, LAPIC_LVT_MASKED | LAPIC_SPURIOUS_VECTOR);
    lapic_write(LAPIC_TIMER_DCR, LAPIC_TIMER_DIV_16);
    lapic_write(LAPIC_TIMER_ICR, 0xffffffffu);

    /* Start on a tick edge, so the window is not short by up to one tick. */
    uint64_t start, now, last;
    if (!timer_wait_tick(ref, &start)) {
        *why = "it does not count";
        lapic_write(LAPIC_TIMER_ICR, 0);
        return false;
    }
    uint64_t tsc0 = rdtsc();
    uint32_t apic0 = lapic_read(LAPIC_TIMER_CCR);
    uint64_t elapsed;
    uint32_t same = 0;
    last = start;
    for (;;) {
        now = ref->read();
        elapsed = timer_elapsed(start, now, ref->mask);
        if (elapsed >= window)
            break;
        if (now == last) {
            if (++same >= TIMER_STALL_READS) {
                *why = "it stopped counting";
                lapic_write(LAPIC_TIMER_ICR, 0);
                return false;
            }
        } else {
            same = 0;
            last = now;
        }
    }
    uint64_t tsc1 = rdtsc();
    uint32_t apic1 = lapic_read(LAPIC_TIMER_CCR);
    lapic_write(LAPIC_TIMER_ICR, 0);

    uint64_t ns = timer_ref_ns(elapsed, ref->period_fs);
    if (apic1 == 0 || apic1 > apic0) {
        *why = "the local APIC timer ran out or did not count during the window";
        return false;
    }
    *tsc_hz = timer_hz(tsc1 - tsc0, ns);
    *apic_hz = timer_hz((uint64_t)(apic0 - apic1) * TIMER_APIC_DIVISOR, ns);
    if (*tsc_hz < TIMER_TSC_MIN_HZ || *tsc_hz > TIMER_TSC_MAX_HZ ||
        *apic_hz < TIMER_APIC_MIN_HZ || *apic_hz > TIMER_APIC_MAX_HZ) {
        *why = "the frequencies measured against it are implausible";
        return false;
    }
    return true;
}

/* TIMER_RUNS windows, median of each: a host preempting an emulator, or an SMI,
 * can stretch one window but not two of three. */
static bool timer_try(const struct timer_ref *ref)
{
    uint64_t tsc[TIMER_RUNS], apic[TIMER_RUNS];
    const char *why = "";
    for (int i = 0; i < TIMER_RUNS; i++) {
        if (!timer_measure(ref, &tsc[i], &apic[i], &why)) {
            log_warn("timer: cannot calibrate against the %s: %s; trying the next clock",
                     ref->name, why);
            return false;
        }
    }
    timer_tsc = timer_median3(tsc[0], tsc[1], tsc[2]);
    timer_apic = timer_median3(apic[0], apic[1], apic[2]);
    timer_src = ref->name;
    log_debug("timer: %s runs: tsc %lu %lu %lu Hz, apic %lu %lu %lu Hz", ref->name,
              (unsigned long)tsc[0], (unsigned long)tsc[1], (unsigned long)tsc[2],
              (unsigned long)apic[0], (unsigned long)apic[1], (unsigned long)apic[2]);
    return true;
}

/* ---- the references ---- */

static uint64_t timer_read_hpet(void)    { return hpet_read(); }
static uint64_t timer_read_pmtimer(void) { return pmtimer_read(); }
static uint64_t timer_read_pit(void)     { return pit_ch2_elapsed(); }

/* ACPI PM timer: 3.579545 MHz (ACPI 6.5 §4.8.3.3). */
#define PMTIMER_PERIOD_FS ((1000000000000000ull + PMTIMER_HZ / 2) / PMTIMER_HZ)
#define PIT_PERIOD_FS     ((1000000000000000ull + PIT_HZ / 2) / PIT_HZ)

static bool timer_try_hpet(const struct acpi_info *acpi)
{
    if (!acpi || !acpi->hpet_addr)
        return false;
    /* hpet_init says why when it fails. */
    if (!hpet_init(acpi->hpet_addr))
        return false;
    /* hpet_read extends a 32-bit counter to 64 bits. */
    struct timer_ref ref = {
        .name = "HPET", .period_fs = hpet_period_fs(), .mask = UINT64_MAX,
        .read = timer_read_hpet,
    };
    return timer_try(&ref);
}

static bool timer_try_pmtimer(const struct acpi_info *acpi)
{
    if (!acpi || !acpi->pm_tmr_port)
        return false;
    if (!pmtimer_init(acpi->pm_tmr_port, acpi->pm_tmr_32bit))
        return false;
    struct timer_ref ref = {
        .name = "PM timer", .period_fs = PMTIMER_PERIOD_FS, .mask = pmtimer_mask(),
        .read = timer_read_pmtimer,
    };
    return timer_try(&ref);
}

static bool timer_try_pit(void)
{
    if (!pit_ch2_start()) {
        log_warn("timer: no PIT answers on ports 0x42/0x43");
        return false;
    }
    struct timer_ref ref = {
        .name = "PIT", .period_fs = PIT_PERIOD_FS, .mask = 0xffff, .read = timer_read_pit,
    };
    bool ok = timer_try(&ref);
    pit_ch2_stop();
    return ok;
}

/* CPUID leaves 0x15 (TSC/crystal ratio) and 0x16 (base frequency) describe the TSC on
 * recent Intel CPUs; emulators often fill them with fiction, so they only confirm. */
static void timer_cross_check(void)
{
    uint32_t max = cpuid(0, 0).eax;
    uint64_t cpuid_hz = 0;
    if (max >= 0x15) {
        struct cpuid_regs r = cpuid(0x15, 0);
        if (r.eax && r.ebx && r.ecx)
            cpuid_hz = (uint64_t)r.ecx * r.ebx / r.eax;
    }
    if (!cpuid_hz && max >= 0x16) {
        struct cpuid_regs r = cpuid(0x16, 0);
        cpuid_hz = (uint64_t)(r.eax & 0xffff) * 1000000;
    }
    if (!cpuid_hz)
        return;
    uint64_t diff = cpuid_hz > timer_tsc ? cpuid_hz - timer_tsc : timer_tsc - cpuid_hz;
    if (diff > timer_tsc / 50)
        log_info("timer: CPUID says the TSC runs at %lu MHz; measured %lu MHz, which is used",
                 (unsigned long)(cpuid_hz / 1000000), (unsigned long)(timer_tsc / 1000000));
}

void timer_calibrate(void)
{
    if (!lapic_ready())
        panic("timer: timer_calibrate needs lapic_init first (boot sequence order)");
    const struct acpi_info *acpi = acpi_get();
    if (!timer_try_hpet(acpi) && !timer_try_pmtimer(acpi) && !timer_try_pit())
        panic("timer: no reference clock answered (HPET, ACPI PM timer, PIT); plinth cannot "
              "measure the TSC. Enable the HPET or the legacy timers in firmware");

    log_info("timer: calibrated against %s: tsc %lu MHz, apic timer %lu MHz", timer_src,
             (unsigned long)((timer_tsc + 500000) / 1000000),
             (unsigned long)((timer_apic + 500000) / 1000000));
    /* CPUID.80000007H:EDX[8] (SDM Vol. 3B §19.17.1): without it the TSC may change
     * rate with P-states or stop in deep C-states. */
    if (cpuid(0x80000000, 0).eax < 0x80000007 || !(cpuid(0x80000007, 0).edx & (1u << 8)))
        log_info("timer: the TSC is not invariant (CPUID.80000007H:EDX[8]); time keeping "
                 "assumes it does not change rate");
    timer_cross_check();
}
