/* A VM's I/O port space: device models claim port ranges; the rest reads as all
 * ones and ignores writes, as an empty ISA bus does. */
#ifndef PLINTH_VMM_IO_H
#define PLINTH_VMM_IO_H

#include <stdbool.h>
#include <stdint.h>

#define IO_BUS_MAX 32

/* One byte-wide access at port (within the claimed range). */
typedef uint8_t (*io_read_fn)(void *ctx, uint16_t port);
typedef void    (*io_write_fn)(void *ctx, uint16_t port, uint8_t value);

struct io_range {
    uint16_t first, last;
    io_read_fn read;
    io_write_fn write;
    void *ctx;
};

struct io_bus {
    unsigned count;
    struct io_range ranges[IO_BUS_MAX];
};

/* False if the range overlaps a claimed one or the bus is full. */
bool     io_bus_claim(struct io_bus *bus, uint16_t first, uint16_t last, io_read_fn r, io_write_fn w, void *ctx);
/* size 1, 2 or 4 bytes, little-endian across consecutive ports. */
uint32_t io_bus_read(struct io_bus *bus, uint16_t port, unsigned size);
void     io_bus_write(struct io_bus *bus, uint16_t port, unsigned size, uint32_t value);

#endif
