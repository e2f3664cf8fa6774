/* The HPET's main counter, as a clock source for calibrating the TSC and the local
 * APIC timer (IA-PC HPET specification 1.0a).  Timers and interrupts are not used. */
#ifndef PLINTH_DRIVERS_HPET_H
#define PLINTH_DRIVERS_HPET_H

#include <stdint.h>
#include <stdbool.h>

/* Maps the register block at addr (from acpi_get()->hpet_addr), checks its
 * capabilities and starts the main counter.  False, with a warning saying why, when
 * there is no usable HPET there. */
bool     hpet_init(uint64_t addr);
/* The main counter; 0 before a successful hpet_init.  A 32-bit counter is extended
 * to 64 bits in software, which holds as long as it is read at least once per wrap
 * (2^32 ticks: about 5 minutes at the usual 14.318 MHz). */
uint64_t hpet_read(void);
/* Femtoseconds per tick (10^15 / frequency); 0 before hpet_init. */
uint64_t hpet_period_fs(void);
/* Ticks per second, rounded; 0 before hpet_init. */
uint64_t hpet_frequency_hz(void);

#endif
