/* plinth's own address space: the image W^X at its link address, a direct map of
 * physical memory at DIRECT_MAP_BASE, uncached MMIO windows, guard-paged stacks. */
#ifndef PLINTH_ARCH_PAGING_H
#define PLINTH_ARCH_PAGING_H

#include "boot/bootinfo.h"
#include <stdint.h>
#include <stddef.h>

#define DIRECT_MAP_BASE 0xFFFF800000000000ull

/* Builds the page tables from the memory map and switches to them; before this the
 * boot path's identity map is in force.  Sets EFER.NXE and CR0.WP. */
void  paging_init(const struct bootinfo *bi);
/* Physical -> core virtual (direct map; identity before paging_init). */
void *phys_to_virt(uint64_t phys);
/* Core virtual (image or direct map) -> physical. */
uint64_t virt_to_phys(const void *virt);
/* An uncached mapping of a device's registers; NULL when out of address space. */
void *mmio_map(uint64_t phys, size_t size);
/* A kernel stack of size bytes (multiple of 4096) with an unmapped guard page below
 * it; returns its top (initial rsp), or 0 on failure. */
uint64_t stack_alloc(size_t size);
/* Identity-maps [phys, phys+size) executable, for the AP trampoline's mode switch. */
int   paging_identity_map(uint64_t phys, size_t size);
/* Physical address of the core's top-level table (for APs' CR3). */
uint64_t paging_kernel_cr3(void);

#endif
