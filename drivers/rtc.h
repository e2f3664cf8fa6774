/* The host's MC146818-compatible real-time clock (every PC chipset has one at ports
 * 0x70/0x71): read once at boot so the core can give wall-clock time to guests'
 * virtual RTCs. */
#ifndef PLINTH_DRIVERS_RTC_H
#define PLINTH_DRIVERS_RTC_H

#include <stdbool.h>
#include <stdint.h>

/* The broken-down time the RTC registers hold, already decoded from BCD/12-hour. */
struct rtc_time {
    unsigned year, month, day, hour, minute, second;
};

/* Reads the clock (waiting out an update in progress); false if it reads nonsense
 * (no RTC, or a dead battery). */
bool     rtc_read(struct rtc_time *t);
/* Seconds since 1970-01-01 00:00 UTC for a valid date (the RTC is kept in UTC on
 * machines plinth supports; a clock kept in local time shows as an offset). */
uint64_t rtc_to_unix(const struct rtc_time *t);
/* Decodes raw register values (status B's DM and 24/12 bits): the pure part. */
bool     rtc_decode(const uint8_t regs[10], uint8_t status_b, uint8_t century, struct rtc_time *t);

#endif
