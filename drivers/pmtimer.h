/* The ACPI power management timer: a free-running 3.579545 MHz counter of 24 or 32
 * bits at an I/O port (ACPI 6.5 §4.8.3.3), a clock source for calibrating the TSC
 * and the local APIC timer when there is no HPET. */
#ifndef PLINTH_DRIVERS_PMTIMER_H
#define PLINTH_DRIVERS_PMTIMER_H

#include <stdint.h>
#include <stdbool.h>

#define PMTIMER_HZ 3579545u

/* port and width from acpi_get()->pm_tmr_port / pm_tmr_32bit.  False, with a warning
 * saying why, when no running timer answers there. */
bool     pmtimer_init(uint32_t port, bool is32);
bool     pmtimer_ready(void);
/* The raw count, masked to the timer's width; 0 before a successful pmtimer_init. */
uint32_t pmtimer_read(void);
/* 0xFFFFFF or 0xFFFFFFFF: differences of two reads are taken modulo mask + 1. */
uint32_t pmtimer_mask(void);
/* Busy-waits us microseconds by the timer; false (and no wait) before pmtimer_init,
 * or if the timer stops counting midway. */
bool     pmtimer_delay_us(uint64_t us);

#endif
