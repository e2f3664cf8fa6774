#include "vmm/loader/loader.h"
#include "kernel/fmt.h"

#include <stdarg.h>

bool loader_range_ok(const struct guest_ram *ram, uint64_t gpa, uint64_t len)
{
    return gpa <= ram->size && len <= ram->size - gpa;
}

bool loader_write(const struct guest_ram *ram, uint64_t gpa, const void *src, uint64_t len)
{
    if (!loader_range_ok(ram, gpa, len))
        return false;
    const uint8_t *s = src;
    for (uint64_t i = 0; i < len; i++)
        ram->hva[gpa + i] = s[i];
    return true;
}

bool loader_zero(const struct guest_ram *ram, uint64_t gpa, uint64_t len)
{
    if (!loader_range_ok(ram, gpa, len))
        return false;
    for (uint64_t i = 0; i < len; i++)
        ram->hva[gpa + i] = 0;
    return true;
}

void loader_fail(struct loader_error *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fmt_vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
}

unsigned loader_guest_e820(uint64_t ram_size, struct loader_e820 out[LOADER_MAX_E820])
{
    unsigned n = 0;
    uint64_t low = ram_size < LOADER_LOW_RAM_END ? ram_size : LOADER_LOW_RAM_END;
    out[n++] = (struct loader_e820){ 0, low, 1 };
    /* EBDA, VGA window and BIOS area: reserved as on a PC, so guests that probe them
     * do not take them for RAM. */
    out[n++] = (struct loader_e820){ LOADER_LOW_RAM_END, LOADER_HIGH_RAM_START - LOADER_LOW_RAM_END, 2 };
    if (ram_size > LOADER_HIGH_RAM_START)
        out[n++] = (struct loader_e820){ LOADER_HIGH_RAM_START, ram_size - LOADER_HIGH_RAM_START, 1 };
    return n;
}
