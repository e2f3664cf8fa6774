/* Boot page tables (see efi_pagetable.h).  4-level paging, Intel SDM Vol. 3A §4.5:
 * PML4 (bits 47:39) -> PDPT (38:30) -> PD (29:21) whose entries map 2 MiB pages
 * (PS = 1).  No NX bit is set anywhere, so the tables work whatever EFER.NXE the
 * firmware left (a set XD bit with NXE clear is a reserved-bit fault, §4.5). */
#include "boot/efi/efi_pagetable.h"

#include <stdbool.h>

static uint64_t efi_pt_phys(const void *p)
{
    return (uint64_t)(uintptr_t)p;
}

static uint64_t *efi_pt_table(uint64_t entry)
{
    return (uint64_t *)(uintptr_t)(entry & EFI_PT_ADDR_MASK);
}

static bool efi_pt_canonical(uint64_t va)
{
    uint64_t high = va >> 47;
    return high == 0 || high == 0x1FFFF;
}

static uint64_t *efi_pt_alloc(struct efi_pt *pt)
{
    if (pt->used == pt->pool_pages)
        return NULL;
    uint64_t *t = pt->pool + pt->used * (EFI_PT_PAGE / 8);
    pt->used++;
    for (unsigned i = 0; i < 512; i++)
        t[i] = 0;
    return t;
}

size_t efi_pt_pages_needed(uint64_t identity_top, uint64_t kernel_size)
{
    uint64_t gib = (identity_top + EFI_PT_GIB - 1) / EFI_PT_GIB;
    if (gib < 4)
        gib = 4;
    /* PML4, one PDPT per 512 GiB and one PD per GiB of the identity map; for the
     * kernel one PDPT and one PD per GiB it touches (+1 for straddling). */
    return (size_t)(1 + (gib + 511) / 512 + gib + 1 + kernel_size / EFI_PT_GIB + 2);
}

enum efi_pt_status efi_pt_init(struct efi_pt *pt, void *pool, size_t pool_pages)
{
    pt->pool = pool;
    pt->pool_pages = pool_pages;
    pt->used = 0;
    pt->pml4 = NULL;
    if (efi_pt_phys(pool) & (EFI_PT_PAGE - 1))
        return EFI_PT_ERR_ALIGN;
    pt->pml4 = efi_pt_alloc(pt);
    return pt->pml4 ? EFI_PT_OK : EFI_PT_ERR_POOL;
}

/* The next-level table under *entry, made if absent. */
static uint64_t *efi_pt_next(struct efi_pt *pt, uint64_t *entry, enum efi_pt_status *st)
{
    if (*entry & EFI_PT_P) {
        if (*entry & EFI_PT_PS) {
            *st = EFI_PT_ERR_CONFLICT;
            return NULL;
        }
        return efi_pt_table(*entry);
    }
    uint64_t *t = efi_pt_alloc(pt);
    if (!t) {
        *st = EFI_PT_ERR_POOL;
        return NULL;
    }
    *entry = efi_pt_phys(t) | EFI_PT_P | EFI_PT_RW;
    return t;
}

enum efi_pt_status efi_pt_map(struct efi_pt *pt, uint64_t virt, uint64_t phys,
                              uint64_t size)
{
    enum efi_pt_status st = EFI_PT_OK;

    if ((virt | phys) & (EFI_PT_LARGE - 1))
        return EFI_PT_ERR_ALIGN;
    if (size > UINT64_MAX - (EFI_PT_LARGE - 1))
        return EFI_PT_ERR_RANGE;
    size = (size + EFI_PT_LARGE - 1) & ~(EFI_PT_LARGE - 1);
    if (size == 0)
        return EFI_PT_OK;
    if (virt > UINT64_MAX - (size - 1) || phys > UINT64_MAX - (size - 1) ||
        !efi_pt_canonical(virt) || !efi_pt_canonical(virt + size - 1) ||
        ((virt ^ (virt + size - 1)) >> 47) != 0 ||
        (phys + size - 1) > EFI_PT_ADDR_MASK)
        return EFI_PT_ERR_RANGE;

    for (uint64_t off = 0; off < size; off += EFI_PT_LARGE) {
        uint64_t va = virt + off, pa = phys + off;
        uint64_t *pdpt = efi_pt_next(pt, &pt->pml4[(va >> 39) & 511], &st);
        if (!pdpt)
            return st;
        uint64_t *pd = efi_pt_next(pt, &pdpt[(va >> 30) & 511], &st);
        if (!pd)
            return st;
        uint64_t *pde = &pd[(va >> 21) & 511];
        uint64_t want = pa | EFI_PT_P | EFI_PT_RW | EFI_PT_PS;
        if ((*pde & EFI_PT_P) && *pde != want)
            return EFI_PT_ERR_CONFLICT;
        *pde = want;
    }
    return EFI_PT_OK;
}

enum efi_pt_status efi_pt_build(struct efi_pt *pt, uint64_t identity_top,
                                uint64_t kernel_virt, uint64_t kernel_phys,
                                uint64_t kernel_size)
{
    if (identity_top > UINT64_MAX - EFI_PT_GIB)
        return EFI_PT_ERR_RANGE;
    uint64_t top = (identity_top + EFI_PT_GIB - 1) & ~(EFI_PT_GIB - 1);
    if (top < 4 * EFI_PT_GIB)
        top = 4 * EFI_PT_GIB;
    enum efi_pt_status st = efi_pt_map(pt, 0, 0, top);
    if (st != EFI_PT_OK)
        return st;
    return efi_pt_map(pt, kernel_virt, kernel_phys, kernel_size);
}

uint64_t efi_pt_lookup(const struct efi_pt *pt, uint64_t virt)
{
    uint64_t e = pt->pml4[(virt >> 39) & 511];
    if (!(e & EFI_PT_P))
        return UINT64_MAX;
    e = efi_pt_table(e)[(virt >> 30) & 511];
    if (!(e & EFI_PT_P))
        return UINT64_MAX;
    e = efi_pt_table(e)[(virt >> 21) & 511];
    if (!(e & EFI_PT_P) || !(e & EFI_PT_PS))
        return UINT64_MAX;
    return (e & EFI_PT_ADDR_MASK & ~(EFI_PT_LARGE - 1)) | (virt & (EFI_PT_LARGE - 1));
}
