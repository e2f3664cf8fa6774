#include "arch/x86_64/page_alloc.h"

static const struct arch_page_ops *page_ops;

void arch_page_alloc_init(const struct arch_page_ops *ops)
{
    page_ops = ops;
}

uint64_t arch_alloc_pages(size_t npages, uint64_t align)
{
    return page_ops ? page_ops->alloc(npages, align) : 0;
}

void arch_free_pages(uint64_t phys, size_t npages)
{
    if (page_ops && phys)
        page_ops->free(phys, npages);
}
