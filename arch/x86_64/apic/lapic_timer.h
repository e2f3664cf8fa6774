/* One-shot local APIC timer, for time slices where the CPU has no VMX-preemption
 * timer (SVM, or VT-x without it): the expiry interrupt makes the guest exit. */
#ifndef PLINTH_ARCH_APIC_LAPIC_TIMER_H
#define PLINTH_ARCH_APIC_LAPIC_TIMER_H

#include <stdint.h>

#define LAPIC_TIMER_VECTOR 0xf2

/* Arms the timer to fire once after ns nanoseconds (clamped to what the counter holds). */
void lapic_timer_oneshot(uint64_t ns);
void lapic_timer_cancel(void);

#endif
