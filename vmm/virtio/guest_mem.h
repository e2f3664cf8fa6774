/* The one checked accessor over a VM's RAM that every virtio device uses
 * (STYLE.md, "Firecracker / crosvm virtio"): guest-physical 0..size is backed by
 * size bytes at a host base address (vm->ram, vm->ram_size), and nothing else is.
 * Every guest address and length a device takes from a ring comes from the guest
 * and is hostile, so no code outside this file turns one into a host pointer: a
 * range is usable only if [gpa, gpa + len) lies wholly inside RAM, computed so that
 * gpa + len can never wrap past 2^64.  The VM's MMIO window (the PCI BARs, the
 * LAPIC/IOAPIC pages) lies above RAM, outside 0..size, so a buffer aimed at a
 * device's registers is refused here like any other address outside RAM.
 *
 * An empty range (len 0) is refused too: no access needs it, and accepting it
 * would mean handing out a pointer one past the end of RAM.
 *
 * The guest runs on other CPUs while a device reads its rings, so a value read
 * from guest memory may change right after it is read.  Callers copy what they
 * need once (gmem_read) and check the copy, never the guest's memory twice; the
 * 16-bit ring indices have their own single-copy accessors. */
#ifndef PLINTH_VMM_VIRTIO_GUEST_MEM_H
#define PLINTH_VMM_VIRTIO_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gmem {
    uint8_t *base;      /* host address of guest-physical 0 */
    uint64_t size;      /* bytes of RAM; guest-physical 0..size-1 */
};

void gmem_init(struct gmem *g, void *base, uint64_t size);

/* Whether [gpa, gpa + len) lies wholly in RAM; false for len 0. */
bool gmem_contains(const struct gmem *g, uint64_t gpa, uint64_t len);

/* A host pointer to [gpa, gpa + len), or NULL unless the range lies wholly in RAM.
 * For a device that fills or drains a buffer in place (a disk image copy); the
 * pointer is only good for those len bytes. */
void *gmem_ptr(const struct gmem *g, uint64_t gpa, uint64_t len);

/* Copies between guest RAM and the host; false (and nothing copied) unless the
 * whole range lies in RAM. */
bool gmem_read(const struct gmem *g, uint64_t gpa, void *buf, uint64_t len);
bool gmem_write(const struct gmem *g, uint64_t gpa, const void *buf, uint64_t len);

/* One little-endian 16-bit ring field (an index, flags, used_event/avail_event),
 * read or written as a single access so that a guest writing it concurrently is
 * seen either before or after, never half-way (virtio 1.2 §2.7: the rings' 2- and
 * 4-byte alignment makes these naturally aligned).  No ordering: the caller places
 * the fences the ring protocol needs. */
bool gmem_read_u16(const struct gmem *g, uint64_t gpa, uint16_t *out);
bool gmem_write_u16(const struct gmem *g, uint64_t gpa, uint16_t value);

#endif
