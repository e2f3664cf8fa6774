/* The 4-level page tables BOOTX64.EFI hands to the core (contract in
 * boot/bootinfo.h): physical memory identity-mapped, and the kernel's link range
 * mapped onto where it was loaded, all with 2 MiB pages.  Pure: tables are built in
 * a pool the caller provides, whose addresses are taken as physical (the loader runs
 * identity-mapped), so the host unit tests can walk them. */
#ifndef PLINTH_BOOT_EFI_PAGETABLE_H
#define PLINTH_BOOT_EFI_PAGETABLE_H

#include <stddef.h>
#include <stdint.h>

#define EFI_PT_PAGE      4096ull
#define EFI_PT_LARGE     (2ull << 20)
#define EFI_PT_GIB       (1ull << 30)

/* Entry bits, Intel SDM Vol. 3A §4.5, Tables 4-15 to 4-18. */
#define EFI_PT_P         (1ull << 0)
#define EFI_PT_RW        (1ull << 1)
#define EFI_PT_PS        (1ull << 7)
#define EFI_PT_ADDR_MASK 0x000FFFFFFFFFF000ull

enum efi_pt_status {
    EFI_PT_OK = 0,
    EFI_PT_ERR_POOL,        /* the pool ran out of pages */
    EFI_PT_ERR_ALIGN,       /* an address or the pool is not aligned */
    EFI_PT_ERR_RANGE,       /* non-canonical, above 52 bits, or wrapping */
    EFI_PT_ERR_CONFLICT,    /* an address is already mapped elsewhere */
};

struct efi_pt {
    uint64_t *pool;         /* pool_pages zeroed 4 KiB pages, 4 KiB aligned */
    size_t    pool_pages;
    size_t    used;
    uint64_t *pml4;
};

/* Pages the tables for efi_pt_build can need, at most. */
size_t efi_pt_pages_needed(uint64_t identity_top, uint64_t kernel_size);

enum efi_pt_status efi_pt_init(struct efi_pt *pt, void *pool, size_t pool_pages);

/* Maps [virt, virt + size) onto [phys, ...) with 2 MiB pages; all three 2 MiB
 * aligned (size rounded up). */
enum efi_pt_status efi_pt_map(struct efi_pt *pt, uint64_t virt, uint64_t phys,
                              uint64_t size);

/* Identity map of [0, identity_top rounded up to 1 GiB), at least 4 GiB, plus
 * kernel_virt.. onto kernel_phys.. for kernel_size bytes. */
enum efi_pt_status efi_pt_build(struct efi_pt *pt, uint64_t identity_top,
                                uint64_t kernel_virt, uint64_t kernel_phys,
                                uint64_t kernel_size);

/* The physical address mapped at virt, or UINT64_MAX (for tests and self-checks). */
uint64_t efi_pt_lookup(const struct efi_pt *pt, uint64_t virt);

#endif
