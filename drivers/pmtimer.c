/* ACPI PM timer (ACPI 6.5 §4.8.3.3): read-only, free-running, 3.579545 MHz; 24 bits
 * unless the FADT sets TMR_VAL_EXT, then 32. */
#include "drivers/pmtimer.h"
#include "arch/x86_64/cpu/cpu.h"
#include "kernel/log.h"

static uint16_t pmtimer_port;
static uint32_t pmtimer_width_mask;

bool pmtimer_init(uint32_t port, bool is32)
{
    if (!port || port > 0xFFFC) {
        log_warn("pmtimer: port %#x is not a usable I/O port; PM timer not used", port);
        return false;
    }
    uint32_t mask = is32 ? 0xFFFFFFFFu : 0xFFFFFFu;
    uint32_t raw = inl((uint16_t)port);
    /* A port nothing decodes reads as all ones; a 24-bit timer's top byte is 0. */
    if (!is32 && (raw >> 24) == 0xFF) {
        log_warn("pmtimer: port %#x reads %#x, a floating bus; PM timer not used", port, raw);
        return false;
    }
    uint32_t first = raw & mask;
    bool moved = false;
    for (uint32_t i = 0; i < 1000000 && !moved; i++)
        moved = (inl((uint16_t)port) & mask) != first;
    if (!moved) {
        log_warn("pmtimer: the count at port %#x does not advance; PM timer not used", port);
        return false;
    }
    pmtimer_port = (uint16_t)port;
    pmtimer_width_mask = mask;
    return true;
}

bool pmtimer_ready(void)
{
    return pmtimer_port != 0;
}

uint32_t pmtimer_read(void)
{
    return pmtimer_port ? inl(pmtimer_port) & pmtimer_width_mask : 0;
}

uint32_t pmtimer_mask(void)
{
    return pmtimer_width_mask;
}

bool pmtimer_delay_us(uint64_t us)
{
    if (!pmtimer_port)
        return false;
    uint64_t need = us * PMTIMER_HZ / 1000000, elapsed = 0;
    uint32_t last = pmtimer_read(), stuck = 0;
    while (elapsed < need) {
        uint32_t now = pmtimer_read();
        if (now == last) {
            /* A timer that stops must not hang the caller: one tick is ~280 ns, so
             * millions of identical reads mean it is not running. */
            if (++stuck > 10000000)
                return false;
            cpu_relax();
            continue;
        }
        stuck = 0;
        elapsed += (now - last) & pmtimer_width_mask;
        last = now;
    }
    return true;
}
