/* plinth's own address space: the image W^X at its link address, a direct map of
 * physical memory at DIRECT_MAP_BASE, uncached MMIO windows, guard-paged stacks. */
#ifndef PLINTH_ARCH_PAGING_H
#define PLINTH_ARCH_PAGING_H

#include "boot/bootinfo.h"
#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>

#define DIRECT_MAP_BASE 0xFFFF800000000000ull

/* Builds the page tables from the memory map and switches to them; before this the
 * boot path's identity map is in force.  Sets EFER.NXE and CR0.WP. */
/* Builds and loads plinth's page tables from the boot hand-off, which must stay valid
 * for the whole run (virt_to_phys of image addresses reads it); pages come from
 * arch_alloc_pages (arch_page_alloc_init first). */
void  paging_init(const struct bootinfo *bi);
/* Physical -> core virtual (direct map; identity before paging_init). */
void *phys_to_virt(uint64_t phys);
/* Core virtual (image or direct map) -> physical. */
uint64_t virt_to_phys(const void *virt);
/* An uncached mapping of a device's registers (4 KiB pages, PCD|PWT, NX), keeping
 * phys's page offset; NULL when out of address space.  A range wholly inside the
 * direct map's RAM (ACPI tables, the BIOS area) comes back through the direct map
 * instead: one page must not have two memory types. */
void *mmio_map(uint64_t phys, size_t size);
/* A kernel stack of size bytes (multiple of 4096) with an unmapped guard page below
 * it; returns its top (initial rsp), or 0 on failure. */
uint64_t stack_alloc(size_t size);
/* Identity-maps [phys, phys+size) executable, for the AP trampoline's mode switch. */
int   paging_identity_map(uint64_t phys, size_t size);
/* Physical address of the core's top-level table (for APs' CR3); below 4 GiB, so a
 * 32-bit trampoline can load it. */
uint64_t paging_kernel_cr3(void);

/* The core's virtual layout (one PML4 slot = 512 GiB). */
#define DIRECT_MAP_SIZE    (1ull << 46)             /* 64 TiB: PML4 slots 256..383 */
#define STACK_WINDOW_BASE  0xFFFFFE0000000000ull    /* stack_alloc: PML4 slot 508 */
#define MMIO_WINDOW_BASE   0xFFFFFF0000000000ull    /* mmio_map: PML4 slot 510 */
#define PAGING_WINDOW_SIZE (1ull << 39)

/* EFER bits besides LME that the core's tables need before a CPU loads
 * paging_kernel_cr3(): EFER_NXE when the tables use NX (0 otherwise).  An AP's
 * trampoline must set them before enabling paging, or NX bits fault as reserved. */
uint64_t paging_required_efer(void);
/* Per-CPU paging state for an AP already on paging_kernel_cr3(): EFER.NXE, CR0.WP,
 * CR4.PGE, the power-up PAT. */
void  paging_cpu_init(void);
/* True when phys_to_virt(phys) is valid for size bytes (write-back RAM). */
bool  paging_is_direct_mapped(uint64_t phys, uint64_t size);

#endif
