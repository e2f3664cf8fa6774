/* Physical pages for arch code (page tables, VMCS/VMCB, FPU save areas, host save
 * areas): the kernel's allocator, handed down once at boot (arch_page_alloc_init), so
 * that arch code never calls up into the kernel for them. */
#ifndef PLINTH_ARCH_PAGE_ALLOC_H
#define PLINTH_ARCH_PAGE_ALLOC_H

#include <stddef.h>
#include <stdint.h>

#define PAGE_SIZE 4096ull

struct arch_page_ops {
    /* npages contiguous zeroed pages aligned to align bytes (a power of two >= 4096),
     * as a physical address; 0 when none is left. */
    uint64_t (*alloc)(size_t npages, uint64_t align);
    void     (*free)(uint64_t phys, size_t npages);
};

void arch_page_alloc_init(const struct arch_page_ops *ops);
uint64_t arch_alloc_pages(size_t npages, uint64_t align);
static inline uint64_t arch_alloc_page(void) { return arch_alloc_pages(1, 4096); }
void arch_free_pages(uint64_t phys, size_t npages);

#endif
