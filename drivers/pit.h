/* The legacy 8254 PIT, channel 2 only: a free-running count for calibrating the TSC
 * and the local APIC timer when neither HPET nor the ACPI PM timer is there.  Channel
 * 2 is gated from port 0x61 and wired to no interrupt, so nothing else notices. */
#ifndef PLINTH_DRIVERS_PIT_H
#define PLINTH_DRIVERS_PIT_H

#include <stdint.h>
#include <stdbool.h>

#define PIT_HZ 1193182u        /* 14.31818 MHz / 12 */

/* Starts channel 2 counting down from 0xffff (mode 0); false if no PIT answers (the
 * count does not move, or reads back as a floating bus). */
bool     pit_ch2_start(void);
/* Ticks since pit_ch2_start, modulo 65536 (the counter wraps after ~55 ms). */
uint16_t pit_ch2_elapsed(void);
/* Closes the gate and leaves the speaker off. */
void     pit_ch2_stop(void);

#endif
