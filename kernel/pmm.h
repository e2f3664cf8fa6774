/* Physical page allocator, built from the boot memory map. */
#ifndef PLINTH_KERNEL_PMM_H
#define PLINTH_KERNEL_PMM_H

#include "boot/bootinfo.h"
#include "arch/x86_64/page_alloc.h"
#include <stdint.h>
#include <stddef.h>

/* Takes usable RAM from bi->mmap, minus the kernel image, the modules, page 0 and
 * anything else the boot path still holds.  Reserved, ACPI, NVS and MMIO ranges are
 * never handed out. */
void     pmm_init(const struct bootinfo *bi);
/* Physical address of a zeroed page, or 0 when memory is exhausted. */
uint64_t pmm_alloc_page(void);
/* npages contiguous zeroed pages aligned to align bytes (a power of two >= 4096),
 * or 0.  For guest RAM, page tables, DMA buffers. */
uint64_t pmm_alloc_contig(size_t npages, uint64_t align);
/* A page below 1 MiB (for the AP start-up trampoline), or 0. */
uint64_t pmm_alloc_low_page(void);
void     pmm_free_pages(uint64_t phys, size_t npages);
uint64_t pmm_total_bytes(void);   /* usable RAM the firmware reported */
uint64_t pmm_free_bytes(void);

/* RAM above this is ignored: the direct map (arch/x86_64/cpu/paging.h) spans 64 TiB. */
#define PMM_MAX_PHYS (1ull << 46)
/* Until the direct map exists only the boot path's identity map (the first 4 GiB)
 * reaches physical memory, so the allocator hands out pages below 4 GiB only; the
 * boot sequence calls this once paging_init's direct map is live. */
void     pmm_allow_above_4g(void);

#endif
