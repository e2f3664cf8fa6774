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

bool loader_in_hole(uint64_t gpa, uint64_t len)
{
    return len && gpa < LOADER_HIGH_RAM_START && gpa + len > LOADER_LOW_RAM_END;
}

static bool place_ok(const struct guest_ram *ram, const struct loader_range *used, unsigned n,
                     uint64_t at, uint64_t size)
{
    if (at < 0x1000 || at + size < at || at + size > 0x100000000ull || !loader_range_ok(ram, at, size) ||
        loader_in_hole(at, size))
        return false;
    for (unsigned i = 0; i < n; i++)
        if (at < used[i].end && used[i].start < at + size)
            return false;
    return true;
}

bool loader_place(const struct guest_ram *ram, const struct loader_range *used, unsigned n, uint64_t want,
                  uint64_t size, uint64_t align, uint64_t *at)
{
    if (place_ok(ram, used, n, want, size)) {
        *at = want;
        return true;
    }
    /* The candidates: the bottom of each zone and the end of each used range; the
     * lowest that fits wins. */
    uint64_t best = UINT64_MAX;
    for (unsigned i = 0; i <= n + 1; i++) {
        uint64_t c = i == n ? 0x1000 : i == n + 1 ? LOADER_HIGH_RAM_START : used[i].end;
        c = (c + align - 1) & ~(align - 1);
        if (c < best && place_ok(ram, used, n, c, size))
            best = c;
    }
    if (best == UINT64_MAX)
        return false;
    *at = best;
    return true;
}
