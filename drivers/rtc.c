#include "drivers/rtc.h"
#ifndef PLINTH_HOST_TEST
#include "arch/x86_64/cpu/cpu.h"
#endif

/* MC146818 registers (data sheet "Address map"; century as ACPI's FADT names it on
 * PCs). */
#define RTC_SEC 0x00
#define RTC_MIN 0x02
#define RTC_HOUR 0x04
#define RTC_DAY 0x07
#define RTC_MONTH 0x08
#define RTC_YEAR 0x09
#define RTC_STATUS_A 0x0a
#define RTC_STATUS_B 0x0b
#define RTC_CENTURY 0x32
#define RTC_A_UIP 0x80
#define RTC_B_24H 0x02
#define RTC_B_BINARY 0x04

static unsigned from_bcd(uint8_t v, bool binary)
{
    return binary ? v : (unsigned)(v >> 4) * 10 + (v & 0xf);
}

bool rtc_decode(const uint8_t regs[10], uint8_t status_b, uint8_t century, struct rtc_time *t)
{
    bool binary = status_b & RTC_B_BINARY;
    t->second = from_bcd(regs[RTC_SEC], binary);
    t->minute = from_bcd(regs[RTC_MIN], binary);
    uint8_t h = regs[RTC_HOUR];
    bool pm = !(status_b & RTC_B_24H) && (h & 0x80);
    t->hour = from_bcd(h & 0x7f, binary);
    if (!(status_b & RTC_B_24H)) {
        /* 12-hour mode: 12 AM is 0, 12 PM is 12. */
        if (t->hour == 12)
            t->hour = 0;
        if (pm)
            t->hour += 12;
    }
    t->day = from_bcd(regs[RTC_DAY], binary);
    t->month = from_bcd(regs[RTC_MONTH], binary);
    unsigned yy = from_bcd(regs[RTC_YEAR], binary);
    unsigned cc = century ? from_bcd(century, binary) : 0;
    /* Without a plausible century byte, a two-digit year is 20yy. */
    t->year = (cc >= 19 && cc <= 99 ? cc : 20) * 100 + yy;
    return t->second < 60 && t->minute < 60 && t->hour < 24 && t->day >= 1 && t->day <= 31 &&
           t->month >= 1 && t->month <= 12 && yy < 100;
}

uint64_t rtc_to_unix(const struct rtc_time *t)
{
    /* Days since 1970 by the civil-from-days inverse (March-based years make the
     * leap day the last of the year). */
    int64_t y = (int64_t)t->year - (t->month <= 2);
    int64_t era = y / 400;
    int64_t yoe = y - era * 400;
    int64_t mp = ((int64_t)t->month + 9) % 12;
    int64_t doy = (153 * mp + 2) / 5 + (int64_t)t->day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = era * 146097 + doe - 719468;
    return (uint64_t)(days * 86400 + (int64_t)t->hour * 3600 + (int64_t)t->minute * 60 + t->second);
}

#ifndef PLINTH_HOST_TEST
static uint8_t cmos(uint8_t index)
{
    /* Bit 7 of the index port masks NMI: keep it clear as firmware leaves it. */
    outb(0x70, index & 0x7f);
    return inb(0x71);
}

static void read_regs(uint8_t regs[10], uint8_t *century)
{
    for (uint8_t i = 0; i < 10; i++)
        regs[i] = cmos(i);
    *century = cmos(RTC_CENTURY);
}

bool rtc_read(struct rtc_time *t)
{
    uint8_t a[10], b[10], ca, cb;
    /* An update takes < 2 ms once UIP is seen; reading twice until both agree
     * guards against the update starting mid-read (data sheet, "Update cycle"). */
    for (int tries = 0; tries < 100000; tries++) {
        if (cmos(RTC_STATUS_A) & RTC_A_UIP)
            continue;
        read_regs(a, &ca);
        if (cmos(RTC_STATUS_A) & RTC_A_UIP)
            continue;
        read_regs(b, &cb);
        bool same = ca == cb;
        for (int i = 0; i < 10 && same; i++)
            same = a[i] == b[i];
        if (same)
            return rtc_decode(b, cmos(RTC_STATUS_B), cb, t);
    }
    return false;
}
#endif
