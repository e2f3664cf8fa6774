#include "kernel/time.h"
#include "arch/x86_64/cpu/cpu.h"

static uint64_t tsc_khz;
static uint64_t tsc_at_boot;

void time_set_tsc_khz(uint64_t khz)
{
    if (!tsc_at_boot)
        tsc_at_boot = rdtsc();
    tsc_khz = khz;
}

uint64_t time_tsc_khz(void)
{
    return tsc_khz;
}

uint64_t time_since_boot_ns(void)
{
    if (!tsc_khz)
        return 0;
    uint64_t d = rdtsc() - tsc_at_boot;
    /* d * 1e6 / khz without overflowing for days of uptime. */
    return (d / tsc_khz) * 1000000 + (d % tsc_khz) * 1000000 / tsc_khz;
}

void time_delay_us(uint64_t us)
{
    uint64_t khz = tsc_khz ? tsc_khz : 3000000; /* before calibration: assume 3 GHz */
    uint64_t end = rdtsc() + us * khz / 1000;
    while ((int64_t)(rdtsc() - end) < 0)
        cpu_relax();
}

static uint64_t wall_base_sec;
static uint64_t wall_base_ns;    /* time_since_boot_ns() when the RTC was read */

void time_set_wall_clock(uint64_t unix_sec)
{
    wall_base_ns = time_since_boot_ns();
    wall_base_sec = unix_sec;
}

void time_wall_clock(uint64_t *sec, uint32_t *nsec)
{
    uint64_t d = time_since_boot_ns() - wall_base_ns;
    *sec = wall_base_sec + d / 1000000000ull;
    *nsec = (uint32_t)(d % 1000000000ull);
}
