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

/* A whole access, for registers that are not byte-wide: the PCI host bridge's
 * CONFIG_ADDRESS latches only a full dword, and every other access to its ports is
 * an ordinary I/O cycle (PCI Local Bus 3.0 §3.2.2.3.2), so it must see the width.
 * port is where the access starts (within the claimed range; it may run past it),
 * size 1, 2 or 4; *value is the data written, or the place for the data read.
 * Returns false to decline: the access then goes to the byte-wide ranges, split,
 * as if the wide range were not there. */
typedef bool (*io_wide_fn)(void *ctx, uint16_t port, unsigned size, bool write, uint32_t *value);

struct io_wide_range {
    uint16_t first, last;
    io_wide_fn fn;
    void *ctx;
};

#define IO_BUS_WIDE_MAX 4

struct io_bus {
    unsigned count;
    struct io_range ranges[IO_BUS_MAX];
    unsigned wide_count;
    struct io_wide_range wide[IO_BUS_WIDE_MAX];
};

/* False if the range overlaps a claimed one or the bus is full. */
bool     io_bus_claim(struct io_bus *bus, uint16_t first, uint16_t last, io_read_fn r, io_write_fn w, void *ctx);
/* A wide range sees each access that starts in it before the byte-wide ranges do,
 * so it may overlap them (0xcf9, the reset register, inside the PCI host bridge's
 * 0xcf8-0xcff).  False if it overlaps another wide range or their table is full. */
bool     io_bus_claim_wide(struct io_bus *bus, uint16_t first, uint16_t last, io_wide_fn fn, void *ctx);
/* size 1, 2 or 4 bytes, little-endian across consecutive ports. */
uint32_t io_bus_read(struct io_bus *bus, uint16_t port, unsigned size);
void     io_bus_write(struct io_bus *bus, uint16_t port, unsigned size, uint32_t value);

#endif
