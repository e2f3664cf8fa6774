/* A VM's memory-mapped devices: guest-physical ranges outside RAM that device models
 * claim.  A guest access there exits (EPT violation / NPT fault); the monitor decodes
 * the instruction and emulates it against the device (vmm/emulate). */
#ifndef PLINTH_VMM_MMIO_H
#define PLINTH_VMM_MMIO_H

#include <stdbool.h>
#include <stdint.h>

#define MMIO_BUS_MAX 8

/* offset from the region's base; size 1, 2, 4 or 8; 0 on success. */
typedef int (*mmio_read_fn)(void *ctx, uint64_t offset, unsigned size, uint64_t *val);
typedef int (*mmio_write_fn)(void *ctx, uint64_t offset, unsigned size, uint64_t val);

struct mmio_region {
    uint64_t base, size;
    mmio_read_fn read;
    mmio_write_fn write;
    void *ctx;                  /* NULL: the callbacks get the accessing vCPU instead */
};

struct mmio_bus {
    unsigned count;
    struct mmio_region regions[MMIO_BUS_MAX];
};

/* ctx NULL makes a per-vCPU device (the local APIC): each access gets the
 * struct vmm_vcpu that made it. */
bool mmio_bus_claim(struct mmio_bus *bus, uint64_t base, uint64_t size, mmio_read_fn r,
                    mmio_write_fn w, void *ctx);
const struct mmio_region *mmio_bus_find(const struct mmio_bus *bus, uint64_t gpa);

#endif
