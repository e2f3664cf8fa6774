/* spin: a CPU-bound guest that measures the share of a physical CPU it gets.  It
 * reads the TSC in a tight loop with interrupts off; a step between two readings
 * longer than 1/4096 s (244 us, as measured against the RTC) is time it was not running (the
 * scheduler ran another vCPU, or held it back at its cpu_cap), every other step
 * time it ran.  After seconds=N (default 10) RTC seconds it prints
 * "spin: share S/1000 over N s" and halts.  For the CPU-share tests and benchmark. */
#include "guest.h"

static uint8_t cmos(uint8_t i)
{
    outb(0x70, i);
    return inb(0x71);
}

static uint8_t rtc_seconds(void)
{
    for (int i = 0; i < 100000 && (cmos(0x0a) & 0x80); i++)
        ;
    return cmos(0x00);
}

/* a * 1000 / b without a 64-bit division: both scaled down until b fits in 22 bits. */
static uint32_t per_mille(uint64_t a, uint64_t b)
{
    while (b >> 22) {
        a >>= 1;
        b >>= 1;
    }
    if (!b)
        return 0;
    uint32_t q = 0, n = (uint32_t)a * 1000u, d = (uint32_t)b;
    while (n >= d) {                    /* at most 1000 steps: n <= 1000 * d */
        n -= d;
        q++;
    }
    return q;
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic;
    guest_name = "spin";
    uint32_t seconds = cmdline_number(mbi, "seconds", 10);
    __asm__ volatile("cli");
    /* TSC ticks per second, from one whole RTC second. */
    uint8_t s0 = rtc_seconds();
    while (rtc_seconds() == s0)
        ;
    uint64_t t0 = rdtsc();
    uint8_t s1 = rtc_seconds();
    while (rtc_seconds() == s1)
        ;
    uint64_t start = rdtsc();
    uint64_t per_sec = start - t0;
    uint64_t gap = per_sec >> 12;       /* 244 us: 1/4096 s, a shift (no libgcc here) */
    uint64_t prev = start, ran = 0;
    uint8_t last = rtc_seconds();
    uint32_t elapsed = 0;
    gprintf("spin: measuring %u s\n", seconds);
    while (elapsed < seconds) {
        for (int i = 0; i < 2000; i++) {
            uint64_t now = rdtsc();
            uint64_t d = now - prev;
            if (d < gap)
                ran += d;
            prev = now;
        }
        uint8_t s = rtc_seconds();
        if (s != last) {
            last = s;
            elapsed++;
        }
    }
    uint64_t total = rdtsc() - start;
    gprintf("spin: share %u/1000 over %u s\n", per_mille(ran, total), seconds);
    for (;;)
        __asm__ volatile("cli; hlt");
}
