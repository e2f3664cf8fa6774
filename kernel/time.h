/* Time since boot, from the TSC once its frequency is known (0 before). */
#ifndef PLINTH_KERNEL_TIME_H
#define PLINTH_KERNEL_TIME_H

#include <stdint.h>

void     time_set_tsc_khz(uint64_t khz);
uint64_t time_tsc_khz(void);
uint64_t time_since_boot_ns(void);
/* Busy-wait; needs the TSC frequency (time_set_tsc_khz) first. */
void     time_delay_us(uint64_t us);
/* Wall-clock time: the host RTC's reading at boot (Unix seconds), carried forward by
 * the TSC.  Before time_set_wall_clock, or without an RTC, it counts from 0. */
void     time_set_wall_clock(uint64_t unix_sec);
void     time_wall_clock(uint64_t *sec, uint32_t *nsec);

#endif
