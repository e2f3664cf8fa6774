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

static const struct io_range *find(const struct io_bus *bus, uint16_t port)
{
    for (unsigned i = 0; i < bus->count; i++)
        if (port >= bus->ranges[i].first && port <= bus->ranges[i].last)
            return &bus->ranges[i];
    return 0;
}

/* Wider accesses reach byte-wide devices one port at a time, as an 8-bit ISA
 * device sees a 16-bit access split by the bus. */
uint32_t io_bus_read(struct io_bus *bus, uint16_t port, unsigned size)
{
    uint32_t v = 0;
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
    for (unsigned i = 0; i < size; i++) {
        uint16_t p = (uint16_t)(port + i);
        const struct io_range *r = find(bus, p);
        if (r && r->write)
            r->write(r->ctx, p, (uint8_t)(value >> (8 * i)));
    }
}
