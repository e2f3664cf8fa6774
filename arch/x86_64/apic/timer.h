/* Calibration of the TSC and the local APIC timer against a clock of known frequency:
 * HPET, else the ACPI PM timer, else PIT channel 2. */
#ifndef PLINTH_ARCH_APIC_TIMER_H
#define PLINTH_ARCH_APIC_TIMER_H

#include <stdint.h>
#include <stdbool.h>

/* Needs lapic_init (and acpi_init for HPET and the PM timer).  Logs the source and
 * the frequencies (the kernel's clock takes the TSC's from timer_tsc_hz); panics
 * when no reference clock answers, since nothing later can keep time without one. */
void        timer_calibrate(void);
/* The TSC's frequency in Hz; 0 before calibration. */
uint64_t    timer_tsc_hz(void);
/* The local APIC timer's input clock (divide by 1), in Hz; 0 before calibration. */
uint64_t    timer_lapic_hz(void);
/* "HPET", "PM timer", "PIT", or "none" before calibration. */
const char *timer_source(void);

/* ---- pure arithmetic, unit-tested on the host ---- */

/* Nanoseconds spanned by ref_ticks of a clock with the given period in femtoseconds;
 * 0 when the product would overflow 64 bits. */
uint64_t timer_ref_ns(uint64_t ref_ticks, uint64_t period_fs);
/* Frequency in Hz of a counter that advanced by ticks in ns nanoseconds; 0 when ns is
 * 0 or above TIMER_MAX_WINDOW_NS, or the result would overflow. */
uint64_t timer_hz(uint64_t ticks, uint64_t ns);
#define TIMER_MAX_WINDOW_NS 10000000000ull   /* 10 s */
/* Difference end - start of a counter that wraps at mask + 1 (mask = 2^n - 1). */
uint64_t timer_elapsed(uint64_t start, uint64_t end, uint64_t mask);
/* The middle of three values: one disturbed measurement cannot move it. */
uint64_t timer_median3(uint64_t a, uint64_t b, uint64_t c);

#endif
