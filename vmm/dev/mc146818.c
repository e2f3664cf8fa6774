#include "vmm/dev/mc146818.h"

/* Register numbers and bits: Motorola MC146818A data sheet (and the compatible
 * Dallas DS12887, whose data sheet states the SET/UIE and UIP details more fully). */
enum { REG_SECONDS = 0x00, REG_SECONDS_ALARM = 0x01, REG_MINUTES = 0x02,
       REG_MINUTES_ALARM = 0x03, REG_HOURS = 0x04, REG_HOURS_ALARM = 0x05,
       REG_WEEKDAY = 0x06, REG_DAY = 0x07, REG_MONTH = 0x08, REG_YEAR = 0x09,
       REG_A = 0x0a, REG_B = 0x0b, REG_C = 0x0c, REG_D = 0x0d };

#define A_UIP      0x80   /* update in progress (read-only) */
#define A_DV_MASK  0x70
#define A_DV_32K   0x20   /* 010: 32.768 kHz time base, the clock runs */
#define A_DV_RESET 0x60   /* 11x: divider chain held in reset */
#define A_RS_MASK  0x0f

#define B_SET   0x80
#define B_PIE   0x40
#define B_AIE   0x20
#define B_UIE   0x10
#define B_SQWE  0x08
#define B_DM    0x04      /* 1 = binary, 0 = BCD */
#define B_24H   0x02
#define B_DSE   0x01

#define C_IRQF  0x80
#define C_PF    0x40
#define C_AF    0x20
#define C_UF    0x10

#define D_VRT   0x80      /* valid RAM and time: the battery is good */

#define INDEX_NMI_MASK 0x80

/* Alarm registers with both top bits set match any value (data sheet, "alarm"). */
#define ALARM_DONT_CARE 0xc0

#define NSEC_PER_SEC 1000000000u
#define SEC_PER_DAY  86400
/* The RTC's time base: 32.768 kHz, from which the periodic rates are divided. */
#define RTC_HZ 32768u
/* UIP rises this long (tBUC, 8 cycles of the time base) before each update, so a
 * reader that saw it clear has that long to read a consistent time. */
#define UIP_NS 244141u
/* Releasing the divider reset starts the first update half a second later. */
#define DIVIDER_RELEASE_PHASE_NS 500000000u

/* Days from 0000-01-01 to 1970-01-01 in the proleptic Gregorian calendar. */
#define DAYS_0000_TO_1970 719528

/* ---- calendar ---- */

static bool leap_year(uint64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 0000-01-01 to January 1st of year y (leap years 0, 4, ... before y). */
static uint64_t days_before_year(uint64_t y)
{
    return 365 * y + (y + 3) / 4 - (y + 99) / 100 + (y + 399) / 400;
}

static unsigned days_in_month(uint64_t y, unsigned m)
{
    static const uint8_t len[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    return m == 2 && leap_year(y) ? 29 : len[m - 1];
}

struct rtc_date {
    uint64_t year;
    unsigned month, day, hour, minute, second, weekday; /* weekday 0 = Sunday */
};

static struct rtc_date date_from_seconds(uint64_t s)
{
    struct rtc_date d;
    uint64_t days = s / SEC_PER_DAY, tod = s % SEC_PER_DAY;
    d.hour = (unsigned)(tod / 3600);
    d.minute = (unsigned)(tod / 60 % 60);
    d.second = (unsigned)(tod % 60);
    /* 0000-01-01 was a Saturday (day 6 counting from Sunday). */
    d.weekday = (unsigned)((days + 6) % 7);
    /* 146097 days per 400 years: the estimate is at most one year high. */
    uint64_t y = days * 400 / 146097;
    while (y > 0 && days_before_year(y) > days)
        y--;
    while (days_before_year(y + 1) <= days)
        y++;
    unsigned doy = (unsigned)(days - days_before_year(y));
    unsigned m = 1;
    while (doy >= days_in_month(y, m))
        doy -= days_in_month(y, m++);
    d.year = y;
    d.month = m;
    d.day = doy + 1;
    return d;
}

static uint64_t seconds_from_date(const struct rtc_date *d)
{
    uint64_t days = days_before_year(d->year);
    for (unsigned m = 1; m < d->month; m++)
        days += days_in_month(d->year, m);
    days += d->day - 1;
    return days * SEC_PER_DAY + d->hour * 3600u + d->minute * 60u + d->second;
}

/* ---- register encodings ---- */

static uint8_t encode(const struct mc146818 *r, unsigned v)
{
    if (r->cmos[REG_B] & B_DM)
        return (uint8_t)v;
    return (uint8_t)((v / 10) << 4 | v % 10);
}

/* False if the byte is no value in the current mode (a BCD nibble above 9). */
static bool decode(const struct mc146818 *r, uint8_t b, unsigned *v)
{
    if (r->cmos[REG_B] & B_DM) {
        *v = b;
        return true;
    }
    if ((b >> 4) > 9 || (b & 0x0f) > 9)
        return false;
    *v = (b >> 4) * 10u + (b & 0x0fu);
    return true;
}

/* 12-hour mode: 1-12 with bit 7 set for PM (data sheet, "hours" register). */
static uint8_t encode_hour(const struct mc146818 *r, unsigned h)
{
    if (r->cmos[REG_B] & B_24H)
        return encode(r, h);
    unsigned h12 = h % 12 ? h % 12 : 12;
    return (uint8_t)(encode(r, h12) | (h >= 12 ? 0x80 : 0));
}

static bool decode_hour(const struct mc146818 *r, uint8_t b, unsigned *h)
{
    if (r->cmos[REG_B] & B_24H)
        return decode(r, b, h) && *h < 24;
    unsigned h12;
    if (!decode(r, b & 0x7f, &h12) || h12 < 1 || h12 > 12)
        return false;
    *h = h12 % 12 + (b & 0x80 ? 12 : 0);
    return true;
}

/* The bytes the clock advances (the alarm bytes between them are plain storage). */
static bool is_time_register(unsigned index)
{
    switch (index) {
    case REG_SECONDS: case REG_MINUTES: case REG_HOURS: case REG_WEEKDAY:
    case REG_DAY: case REG_MONTH: case REG_YEAR: case MC146818_CMOS_CENTURY:
        return true;
    default:
        return false;
    }
}

static uint8_t time_register(const struct mc146818 *r, const struct rtc_date *d, unsigned index)
{
    switch (index) {
    case REG_SECONDS: return encode(r, d->second);
    case REG_MINUTES: return encode(r, d->minute);
    case REG_HOURS:   return encode_hour(r, d->hour);
    case REG_WEEKDAY: return encode(r, d->weekday + 1);
    case REG_DAY:     return encode(r, d->day);
    case REG_MONTH:   return encode(r, d->month);
    case REG_YEAR:    return encode(r, (unsigned)(d->year % 100));
    case MC146818_CMOS_CENTURY: return encode(r, (unsigned)(d->year / 100 % 100));
    default:          return r->cmos[index]; /* the alarm registers are plain storage */
    }
}

/* The stored time bytes as seconds since 0000-01-01; false if they name no date.
 * The weekday byte is not checked: the part never derives anything from it. */
static bool stored_time(const struct mc146818 *r, uint64_t *s)
{
    struct rtc_date d;
    unsigned year, century;
    if (!decode(r, r->cmos[REG_SECONDS], &d.second) || d.second > 59 ||
        !decode(r, r->cmos[REG_MINUTES], &d.minute) || d.minute > 59 ||
        !decode_hour(r, r->cmos[REG_HOURS], &d.hour) ||
        !decode(r, r->cmos[REG_MONTH], &d.month) || d.month < 1 || d.month > 12 ||
        !decode(r, r->cmos[REG_YEAR], &year) || year > 99 ||
        !decode(r, r->cmos[MC146818_CMOS_CENTURY], &century) || century > 99)
        return false;
    d.year = century * 100u + year;
    if (!decode(r, r->cmos[REG_DAY], &d.day) || d.day < 1 || d.day > days_in_month(d.year, d.month))
        return false;
    *s = seconds_from_date(&d);
    return true;
}

/* ---- time ---- */

struct rtc_time {
    uint64_t sec;    /* since 0000-01-01 */
    uint32_t nsec;
};

static void host_now(const struct mc146818 *r, uint64_t *sec, uint32_t *nsec)
{
    r->now(r->ctx, sec, nsec);
    if (*nsec >= NSEC_PER_SEC) { /* a caller bug; keep the arithmetic sound */
        *sec += *nsec / NSEC_PER_SEC;
        *nsec %= NSEC_PER_SEC;
    }
}

/* Guest (divider) time at a host instant.  Clamped at 0000-01-01 should the host
 * clock step far back from a guest time set near the start of the calendar. */
static struct rtc_time guest_time(const struct mc146818 *r, uint64_t hsec, uint32_t hnsec)
{
    int64_t s = (int64_t)(hsec + (uint64_t)DAYS_0000_TO_1970 * SEC_PER_DAY) + r->offset_sec;
    uint32_t ns = hnsec + r->offset_nsec;
    if (ns >= NSEC_PER_SEC) {
        ns -= NSEC_PER_SEC;
        s++;
    }
    if (s < 0)
        return (struct rtc_time){ 0, 0 };
    return (struct rtc_time){ (uint64_t)s, ns };
}

/* Make guest time equal g at host time (hsec, hnsec). */
static void set_offset(struct mc146818 *r, uint64_t hsec, uint32_t hnsec, uint64_t gsec, uint32_t gnsec)
{
    int64_t s = (int64_t)gsec - (int64_t)(hsec + (uint64_t)DAYS_0000_TO_1970 * SEC_PER_DAY);
    int64_t ns = (int64_t)gnsec - (int64_t)hnsec;
    if (ns < 0) {
        ns += NSEC_PER_SEC;
        s--;
    }
    r->offset_sec = s;
    r->offset_nsec = (uint32_t)ns;
}

static bool divider_running(const struct mc146818 *r)
{
    return (r->cmos[REG_A] & A_DV_MASK) == A_DV_32K;
}

/* Periodic interrupt period in 32.768 kHz cycles; 0 = off.  Rates 1 and 2 repeat
 * 8 and 9 (256 and 128 Hz) on a 32.768 kHz time base (data sheet table 5). */
static unsigned periodic_cycles(const struct mc146818 *r)
{
    unsigned rs = r->cmos[REG_A] & A_RS_MASK;
    if (rs == 0)
        return 0;
    if (rs < 3)
        rs += 7;
    return 1u << (rs - 1);
}

/* Periodic edges since 0000-01-01: the period divides a second exactly. */
static uint64_t periodic_count(struct rtc_time t, unsigned cycles)
{
    uint64_t in_second = (uint64_t)t.nsec * RTC_HZ / NSEC_PER_SEC;
    return t.sec * (RTC_HZ / cycles) + in_second / cycles;
}

static bool alarm_field_matches(uint8_t alarm, uint8_t now)
{
    return alarm >= ALARM_DONT_CARE || alarm == now;
}

/* A field that is not "don't care" and names no time never matches. */
static bool alarm_possible(const struct mc146818 *r)
{
    uint8_t s = r->cmos[REG_SECONDS_ALARM], m = r->cmos[REG_MINUTES_ALARM], h = r->cmos[REG_HOURS_ALARM];
    unsigned v;
    if (s < ALARM_DONT_CARE && (!decode(r, s, &v) || v > 59))
        return false;
    if (m < ALARM_DONT_CARE && (!decode(r, m, &v) || v > 59))
        return false;
    return h >= ALARM_DONT_CARE || decode_hour(r, h, &v);
}

/* The first second after `after` whose time of day the alarm registers match, or
 * UINT64_MAX.  Every possible alarm matches within a day, so at most the rest of
 * this hour and one more hour with a matching hour value are searched. */
static uint64_t alarm_next(const struct mc146818 *r, uint64_t after)
{
    if (!alarm_possible(r))
        return UINT64_MAX;
    uint64_t start = after + 1;
    for (unsigned k = 0; k <= 24; k++) {
        uint64_t hour_base = (start / 3600 + k) * 3600;
        if (!alarm_field_matches(r->cmos[REG_HOURS_ALARM], encode_hour(r, (unsigned)(hour_base / 3600 % 24))))
            continue;
        for (unsigned m = 0; m < 60; m++) {
            uint64_t min_base = hour_base + m * 60;
            if (min_base + 59 < start ||
                !alarm_field_matches(r->cmos[REG_MINUTES_ALARM], encode(r, m)))
                continue;
            for (unsigned s = 0; s < 60; s++)
                if (min_base + s >= start &&
                    alarm_field_matches(r->cmos[REG_SECONDS_ALARM], encode(r, s)))
                    return min_base + s;
        }
    }
    return UINT64_MAX;
}

static void update_irq(struct mc146818 *r)
{
    uint8_t b = r->cmos[REG_B];
    bool level = ((r->flags & C_PF) && (b & B_PIE)) || ((r->flags & C_AF) && (b & B_AIE)) ||
                 ((r->flags & C_UF) && (b & B_UIE));
    if (level != r->irq_level) {
        r->irq_level = level;
        if (r->irq)
            r->irq(r->ctx, level);
    }
}

/* Set the flags for every periodic edge, update and alarm between the last catch-up
 * and host time (hsec, hnsec).  The flags rise whether or not their interrupt is
 * enabled, as on the part. */
static void catch_up(struct mc146818 *r, uint64_t hsec, uint32_t hnsec)
{
    struct rtc_time then = guest_time(r, r->last_sec, r->last_nsec);
    struct rtc_time now = guest_time(r, hsec, hnsec);
    r->last_sec = hsec;
    r->last_nsec = hnsec;
    if (!divider_running(r))
        return;
    unsigned cycles = periodic_cycles(r);
    if (cycles && periodic_count(now, cycles) > periodic_count(then, cycles))
        r->flags |= C_PF;
    if (r->running && now.sec > then.sec) {
        r->flags |= C_UF;
        if (alarm_next(r, then.sec) <= now.sec)
            r->flags |= C_AF;
    }
}

/* Freeze the time registers at the current guest time. */
static void stop_clock(struct mc146818 *r, uint64_t hsec, uint32_t hnsec)
{
    struct rtc_time t = guest_time(r, hsec, hnsec);
    struct rtc_date d = date_from_seconds(t.sec);
    for (unsigned i = 0; i < MC146818_CMOS_SIZE; i++)
        if (is_time_register(i))
            r->cmos[i] = time_register(r, &d, i);
    r->running = false;
}

/* Run the clock from the stored time bytes, keeping the divider's phase within the
 * second (SET stops updates, not the divider).  Stays stopped if the bytes name no
 * date: the guest reads back what it wrote until it writes a valid time. */
static void start_clock(struct mc146818 *r, uint64_t hsec, uint32_t hnsec)
{
    uint64_t s;
    if (!stored_time(r, &s))
        return;
    set_offset(r, hsec, hnsec, s, guest_time(r, hsec, hnsec).nsec);
    r->running = true;
}

static void reconcile(struct mc146818 *r, uint64_t hsec, uint32_t hnsec)
{
    bool want = divider_running(r) && !(r->cmos[REG_B] & B_SET);
    if (r->running && !want)
        stop_clock(r, hsec, hnsec);
    else if (!r->running && want)
        start_clock(r, hsec, hnsec);
}

/* ---- interface ---- */

void mc146818_init(struct mc146818 *r, mc146818_now_fn now, mc146818_irq_fn irq, void *ctx)
{
    *r = (struct mc146818){ .now = now, .irq = irq, .ctx = ctx, .running = true };
    r->cmos[REG_A] = A_DV_32K | 0x06; /* 1024 Hz periodic rate, as a PC BIOS leaves it */
    r->cmos[REG_B] = B_24H;
    r->cmos[REG_D] = D_VRT;
    /* Equipment: a math coprocessor, no floppy drive, EGA/VGA-class display
     * (PC/AT Technical Reference, CMOS byte 0x14). */
    r->cmos[MC146818_CMOS_EQUIPMENT] = 0x02;
    host_now(r, &r->last_sec, &r->last_nsec);
    mc146818_set_memory(r, 0);
}

void mc146818_reset(struct mc146818 *r)
{
    uint64_t hsec;
    uint32_t hnsec;
    host_now(r, &hsec, &hnsec);
    catch_up(r, hsec, hnsec);
    r->cmos[REG_B] &= (uint8_t)~(B_PIE | B_AIE | B_UIE | B_SQWE);
    r->flags = 0;
    update_irq(r);
}

bool mc146818_nmi_masked(const struct mc146818 *r)
{
    return r->nmi_masked;
}

static uint8_t read_register(struct mc146818 *r, unsigned index, uint64_t hsec, uint32_t hnsec)
{
    switch (index) {
    case REG_A: {
        uint8_t a = r->cmos[REG_A] & (uint8_t)~A_UIP;
        if (r->running && guest_time(r, hsec, hnsec).nsec >= NSEC_PER_SEC - UIP_NS)
            a |= A_UIP;
        return a;
    }
    case REG_C: {
        uint8_t c = r->flags;
        if (r->irq_level)
            c |= C_IRQF;
        r->flags = 0;
        update_irq(r);
        return c;
    }
    case REG_D:
        return D_VRT;
    default:
        if (r->running && is_time_register(index)) {
            struct rtc_date d = date_from_seconds(guest_time(r, hsec, hnsec).sec);
            return time_register(r, &d, index);
        }
        return r->cmos[index];
    }
}

static void write_register(struct mc146818 *r, unsigned index, uint8_t value, uint64_t hsec, uint32_t hnsec)
{
    switch (index) {
    case REG_A: {
        bool was_reset = (r->cmos[REG_A] & A_DV_RESET) == A_DV_RESET;
        r->cmos[REG_A] = value & (uint8_t)~A_UIP;
        if (was_reset && divider_running(r)) {
            /* The first update comes half a second after the reset is released. */
            struct rtc_time t = guest_time(r, hsec, hnsec);
            set_offset(r, hsec, hnsec, t.sec, DIVIDER_RELEASE_PHASE_NS);
        }
        break;
    }
    case REG_B:
        /* SET going high clears UIE (DS12887 data sheet, register B). */
        if ((value & B_SET) && !(r->cmos[REG_B] & B_SET))
            value &= (uint8_t)~B_UIE;
        /* Freeze in the old format before a mode change reaches the stored bytes. */
        if ((value & B_SET) && r->running)
            stop_clock(r, hsec, hnsec);
        r->cmos[REG_B] = value;
        break;
    case REG_C:
    case REG_D:
        return; /* read-only */
    default:
        if (is_time_register(index) && r->running) {
            /* Writing one time byte of a running clock sets that field; the rest
             * go on from where they are. */
            stop_clock(r, hsec, hnsec);
            r->cmos[index] = value;
            start_clock(r, hsec, hnsec);
            return;
        }
        r->cmos[index] = value;
        break;
    }
    reconcile(r, hsec, hnsec);
}

uint8_t mc146818_read(struct mc146818 *r, uint16_t port)
{
    if (port == MC146818_PORT_INDEX)
        return 0xff; /* write-only on the PC/AT: the bus floats */
    if (port != MC146818_PORT_DATA)
        return 0xff;
    uint64_t hsec;
    uint32_t hnsec;
    host_now(r, &hsec, &hnsec);
    catch_up(r, hsec, hnsec);
    uint8_t v = read_register(r, r->index, hsec, hnsec);
    update_irq(r);
    return v;
}

void mc146818_write(struct mc146818 *r, uint16_t port, uint8_t value)
{
    if (port == MC146818_PORT_INDEX) {
        r->index = value & (uint8_t)~INDEX_NMI_MASK;
        r->nmi_masked = value & INDEX_NMI_MASK;
        return;
    }
    if (port != MC146818_PORT_DATA)
        return;
    uint64_t hsec;
    uint32_t hnsec;
    host_now(r, &hsec, &hnsec);
    catch_up(r, hsec, hnsec);
    write_register(r, r->index, value, hsec, hnsec);
    update_irq(r);
}

void mc146818_tick(struct mc146818 *r)
{
    uint64_t hsec;
    uint32_t hnsec;
    host_now(r, &hsec, &hnsec);
    catch_up(r, hsec, hnsec);
    update_irq(r);
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

uint64_t mc146818_next_event_ns(struct mc146818 *r)
{
    uint64_t hsec;
    uint32_t hnsec;
    host_now(r, &hsec, &hnsec);
    catch_up(r, hsec, hnsec);
    update_irq(r);
    if (r->irq_level || !divider_running(r))
        return MC146818_NO_EVENT;
    uint8_t b = r->cmos[REG_B];
    struct rtc_time t = guest_time(r, hsec, hnsec);
    uint64_t next = MC146818_NO_EVENT;
    unsigned cycles = periodic_cycles(r);
    if ((b & B_PIE) && cycles) {
        uint64_t in_second = (uint64_t)t.nsec * RTC_HZ / NSEC_PER_SEC;
        uint64_t edge = (in_second / cycles + 1) * cycles;   /* <= RTC_HZ */
        uint64_t edge_ns = (edge * NSEC_PER_SEC + RTC_HZ - 1) / RTC_HZ;
        next = min_u64(next, edge_ns - t.nsec);
    }
    if (r->running && (b & B_UIE))
        next = min_u64(next, NSEC_PER_SEC - t.nsec);
    if (r->running && (b & B_AIE)) {
        uint64_t at = alarm_next(r, t.sec);
        if (at != UINT64_MAX)
            next = min_u64(next, (at - t.sec) * NSEC_PER_SEC - t.nsec);
    }
    return next;
}

/* The AT checksum: the 16-bit sum of bytes 0x10-0x2d, high byte first at 0x2e. */
static void update_checksum(struct mc146818 *r)
{
    uint16_t sum = 0;
    for (unsigned i = 0x10; i < MC146818_CMOS_CHECKSUM_HI; i++)
        sum = (uint16_t)(sum + r->cmos[i]);
    r->cmos[MC146818_CMOS_CHECKSUM_HI] = (uint8_t)(sum >> 8);
    r->cmos[MC146818_CMOS_CHECKSUM_LO] = (uint8_t)sum;
}

/* PC/AT Technical Reference: 0x15-0x16 base memory in KiB (at most 640), 0x17-0x18
 * and their POST copy 0x30-0x31 memory above 1 MiB in KiB (at most 0xffff);
 * 0x34-0x35 memory above 16 MiB in 64 KiB units, as PC BIOSes (and the ACPI-era
 * firmware that reads it back) keep it. */
void mc146818_set_memory(struct mc146818 *r, uint64_t ram_bytes)
{
    uint64_t kib = ram_bytes / 1024;
    uint64_t base = kib < 640 ? kib : 640;
    uint64_t ext = kib > 1024 ? kib - 1024 : 0;
    if (ext > 0xffff)
        ext = 0xffff;
    uint64_t above16 = ram_bytes > (16u << 20) ? (ram_bytes - (16u << 20)) / 65536 : 0;
    if (above16 > 0xffff)
        above16 = 0xffff;
    r->cmos[MC146818_CMOS_BASE_MEM_LO] = (uint8_t)base;
    r->cmos[MC146818_CMOS_BASE_MEM_HI] = (uint8_t)(base >> 8);
    r->cmos[MC146818_CMOS_EXT_MEM_LO] = (uint8_t)ext;
    r->cmos[MC146818_CMOS_EXT_MEM_HI] = (uint8_t)(ext >> 8);
    r->cmos[MC146818_CMOS_EXT_MEM_POST_LO] = (uint8_t)ext;
    r->cmos[MC146818_CMOS_EXT_MEM_POST_HI] = (uint8_t)(ext >> 8);
    r->cmos[MC146818_CMOS_MEM_16M_LO] = (uint8_t)above16;
    r->cmos[MC146818_CMOS_MEM_16M_HI] = (uint8_t)(above16 >> 8);
    update_checksum(r);
}

bool mc146818_cmos_set(struct mc146818 *r, unsigned index, uint8_t value)
{
    if (index >= MC146818_CMOS_SIZE || index <= REG_D || index == MC146818_CMOS_CENTURY)
        return false;
    r->cmos[index] = value;
    if (index >= 0x10 && index < MC146818_CMOS_CHECKSUM_HI)
        update_checksum(r);
    return true;
}

/* ---- snapshot ---- */

/* Far beyond any date the registers name (year 9999 is about 2^38 s from year 0),
 * yet small enough that the offset arithmetic cannot overflow an int64_t. */
#define SNAP_SPAN_SEC (1ll << 40)

/* A signed span of time: sec may be negative, nsec is in [0, 1e9). */
struct rtc_span {
    int64_t  sec;
    uint32_t nsec;
};

static struct rtc_span span_sub(int64_t asec, uint32_t ansec, int64_t bsec, uint32_t bnsec)
{
    struct rtc_span d = { asec - bsec, ansec };
    if (ansec < bnsec) {
        d.sec--;
        d.nsec += NSEC_PER_SEC;
    }
    d.nsec -= bnsec;
    return d;
}

/* Host time as seconds from 0000-01-01, the guest clock's epoch (as guest_time()). */
static int64_t host_epoch_sec(uint64_t hsec)
{
    return (int64_t)(hsec + (uint64_t)DAYS_0000_TO_1970 * SEC_PER_DAY);
}

static void mc146818_fields(struct mc146818 *r, struct snap *s, uint64_t now_sec, uint32_t now_nsec)
{
    if (now_nsec >= NSEC_PER_SEC) {      /* as host_now() takes a caller's slip */
        now_sec += now_nsec / NSEC_PER_SEC;
        now_nsec %= NSEC_PER_SEC;
    }
    int64_t now = host_epoch_sec(now_sec);
    /* The guest's reading at now (not clamped at year 0, so that it comes back as
     * it was), and the last catch-up's distance before now. */
    struct rtc_span guest = { 0, 0 }, lag = { 0, 0 };
    if (!s->load) {
        guest = (struct rtc_span){ now + r->offset_sec, now_nsec + r->offset_nsec };
        if (guest.nsec >= NSEC_PER_SEC) {
            guest.nsec -= NSEC_PER_SEC;
            guest.sec++;
        }
        lag = span_sub(now, now_nsec, host_epoch_sec(r->last_sec), r->last_nsec);
    }
    snap_record_begin(s, "rtc", 1);
    snap_bytes(s, r->cmos, sizeof r->cmos);
    snap_u8(s, &r->index);
    snap_bool(s, &r->nmi_masked);
    snap_u8(s, &r->flags);
    snap_bool(s, &r->irq_level);
    snap_bool(s, &r->running);
    snap_i64(s, &guest.sec);
    snap_u32(s, &guest.nsec);
    snap_i64(s, &lag.sec);
    snap_u32(s, &lag.nsec);
    snap_record_end(s);
    if (!s->load || s->failed)
        return;
    /* Checked here: the arithmetic that rebuilds the offset relies on them. */
    if (!snap_check(s, guest.nsec < NSEC_PER_SEC && lag.nsec < NSEC_PER_SEC, "rtc: nanoseconds past a second") ||
        !snap_check(s, guest.sec > -SNAP_SPAN_SEC && guest.sec < SNAP_SPAN_SEC, "rtc: a guest time beyond any calendar") ||
        !snap_check(s, lag.sec > -SNAP_SPAN_SEC && lag.sec < SNAP_SPAN_SEC, "rtc: a catch-up beyond any calendar"))
        return;
    struct rtc_span off = span_sub(guest.sec, guest.nsec, now, now_nsec);
    r->offset_sec = off.sec;
    r->offset_nsec = off.nsec;
    struct rtc_span last = span_sub(now, now_nsec, lag.sec, lag.nsec);
    last.sec -= (int64_t)DAYS_0000_TO_1970 * SEC_PER_DAY;
    if (last.sec < 0)
        last = (struct rtc_span){ 0, 0 };   /* before the host's epoch: as early as it goes */
    r->last_sec = (uint64_t)last.sec;
    r->last_nsec = last.nsec;
}

/* The writes keep the index below 128 (cmos[] is indexed by it), register C's
 * flags to PF/AF/UF and UIP out of the stored register A; the clock runs only
 * while reconcile() would have it run. */
static bool mc146818_check(const struct mc146818 *r, struct snap *s)
{
    return snap_check(s, r->index < MC146818_CMOS_SIZE, "rtc: index past the CMOS RAM") &&
           snap_check(s, !(r->flags & ~(C_PF | C_AF | C_UF)), "rtc: register C flags the part does not have") &&
           snap_check(s, !(r->cmos[REG_A] & A_UIP), "rtc: UIP stored in register A") &&
           snap_check(s, !r->running || (divider_running(r) && !(r->cmos[REG_B] & B_SET)),
                      "rtc: the clock runs with its divider off or SET on");
}

bool mc146818_save(const struct mc146818 *r, struct snap *s, uint64_t now_sec, uint32_t now_nsec)
{
    struct mc146818 c = *r;
    mc146818_fields(&c, s, now_sec, now_nsec);
    return !s->failed;
}

bool mc146818_load(struct mc146818 *r, struct snap *s, uint64_t now_sec, uint32_t now_nsec)
{
    struct mc146818 c = *r;
    mc146818_fields(&c, s, now_sec, now_nsec);
    if (s->failed || !mc146818_check(&c, s))
        return false;
    *r = c;
    return true;
}
