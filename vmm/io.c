#include "vmm/io.h"

bool io_bus_claim(struct io_bus *bus, uint16_t first, uint16_t last, io_read_fn r, io_write_fn w, void *ctx)
{
    if (bus->count == IO_BUS_MAX || last < first)
        return false;
    for (unsigned i = 0; i < bus->count; i++)
        if (first <= bus->ranges[i].last && bus->ranges[i].first <= last)
            return false;
    bus->ranges[bus->count++] = (struct io_range){ first, last, r, w, ctx };
    return true;
}

bool io_bus_claim_wide(struct io_bus *bus, uint16_t first, uint16_t last, io_wide_fn fn, void *ctx)
{
    if (bus->wide_count == IO_BUS_WIDE_MAX || last < first || !fn)
        return false;
    for (unsigned i = 0; i < bus->wide_count; i++)
        if (first <= bus->wide[i].last && bus->wide[i].first <= last)
            return false;
    bus->wide[bus->wide_count++] = (struct io_wide_range){ first, last, fn, ctx };
    return true;
}

static const struct io_wide_range *find_wide(const struct io_bus *bus, uint16_t port)
{
    for (unsigned i = 0; i < bus->wide_count; i++)
        if (port >= bus->wide[i].first && port <= bus->wide[i].last)
            return &bus->wide[i];
    return 0;
}

static const struct io_range *find(const struct io_bus *bus, uint16_t port)
{
    for (unsigned i = 0; i < bus->count; i++)
        if (port >= bus->ranges[i].first && port <= bus->ranges[i].last)
            return &bus->ranges[i];
    return 0;
}

static uint32_t width_mask(unsigned size)
{
    return size >= 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
}

/* Wider accesses reach byte-wide devices one port at a time, as an 8-bit ISA
 * device sees a 16-bit access split by the bus. */
uint32_t io_bus_read(struct io_bus *bus, uint16_t port, unsigned size)
{
    uint32_t v = 0;
    const struct io_wide_range *w = find_wide(bus, port);
    if (w && w->fn(w->ctx, port, size, false, &v))
        return v & width_mask(size);
    v = 0;
    for (unsigned i = 0; i < size; i++) {
        uint16_t p = (uint16_t)(port + i);
        const struct io_range *r = find(bus, p);
        uint8_t b = r && r->read ? r->read(r->ctx, p) : 0xff;
        v |= (uint32_t)b << (8 * i);
    }
    return v;
}

void io_bus_write(struct io_bus *bus, uint16_t port, unsigned size, uint32_t value)
{
    const struct io_wide_range *w = find_wide(bus, port);
    uint32_t v = value & width_mask(size);
    if (w && w->fn(w->ctx, port, size, true, &v))
        return;
    for (unsigned i = 0; i < size; i++) {
        uint16_t p = (uint16_t)(port + i);
        const struct io_range *r = find(bus, p);
        if (r && r->write)
            r->write(r->ctx, p, (uint8_t)(value >> (8 * i)));
    }
}
