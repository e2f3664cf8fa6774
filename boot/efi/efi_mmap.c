/* UEFI memory map conversion (see efi_mmap.h). */
#include "boot/efi/efi_mmap.h"

/* EFI_MEMORY_TYPE values, UEFI 2.10 §7.2.1 (AllocatePages). */
#define UEFI_LOADER_CODE           1
#define UEFI_LOADER_DATA           2
#define UEFI_BOOT_SERVICES_CODE    3
#define UEFI_BOOT_SERVICES_DATA    4
#define UEFI_CONVENTIONAL_MEMORY   7
#define UEFI_UNUSABLE_MEMORY       8
#define UEFI_ACPI_RECLAIM_MEMORY   9
#define UEFI_ACPI_MEMORY_NVS       10

#define UEFI_PAGE_SHIFT            12

/* Descriptor field offsets (EFI_MEMORY_DESCRIPTOR, §7.2.3). */
#define DESC_TYPE    0
#define DESC_PHYS    8
#define DESC_PAGES   24

uint32_t efi_mmap_type(uint32_t efi_type)
{
    switch (efi_type) {
    case UEFI_CONVENTIONAL_MEMORY:
    case UEFI_BOOT_SERVICES_CODE:
    case UEFI_BOOT_SERVICES_DATA:
        return BOOTINFO_MEM_USABLE;
    case UEFI_LOADER_CODE:
    case UEFI_LOADER_DATA:
        return BOOTINFO_MEM_BOOTLOADER;
    case UEFI_ACPI_RECLAIM_MEMORY:
        return BOOTINFO_MEM_ACPI;
    case UEFI_ACPI_MEMORY_NVS:
        return BOOTINFO_MEM_NVS;
    case UEFI_UNUSABLE_MEMORY:
        return BOOTINFO_MEM_BAD;
    default:
        /* Runtime services code/data, MMIO, reserved, PAL code, persistent,
         * unaccepted and types from later specifications. */
        return BOOTINFO_MEM_RESERVED;
    }
}

static uint64_t efi_mmap_rd(const uint8_t *p, unsigned bytes)
{
    uint64_t v = 0;
    for (unsigned i = bytes; i-- > 0;)
        v = (v << 8) | p[i];
    return v;
}

static void efi_mmap_remove(struct bootinfo *bi, uint32_t i)
{
    for (uint32_t j = i; j + 1 < bi->mmap_count; j++)
        bi->mmap[j] = bi->mmap[j + 1];
    bi->mmap_count--;
}

/* Inserts [base, base + len) in base order, merging with a neighbour of the same
 * type that it touches. */
static void efi_mmap_add(struct bootinfo *bi, uint64_t base, uint64_t len, uint32_t type)
{
    uint32_t i = 0;
    while (i < bi->mmap_count && bi->mmap[i].base <= base)
        i++;
    struct bootinfo_mmap_entry *prev = i > 0 ? &bi->mmap[i - 1] : NULL;
    struct bootinfo_mmap_entry *next = i < bi->mmap_count ? &bi->mmap[i] : NULL;

    if (prev && prev->type == type && prev->base + prev->length == base) {
        prev->length += len;
        if (next && next->type == type && base + len == next->base) {
            prev->length += next->length;
            efi_mmap_remove(bi, i);
        }
        return;
    }
    if (next && next->type == type && base + len == next->base) {
        next->base = base;
        next->length += len;
        return;
    }
    if (bi->mmap_count == BOOTINFO_MAX_MMAP) {
        bi->flags |= BOOTINFO_F_MMAP_TRUNCATED;
        return;
    }
    for (uint32_t j = bi->mmap_count; j > i; j--)
        bi->mmap[j] = bi->mmap[j - 1];
    bi->mmap[i] = (struct bootinfo_mmap_entry){ .base = base, .length = len, .type = type };
    bi->mmap_count++;
}

unsigned efi_mmap_convert(const void *map, size_t map_size, size_t desc_size,
                          struct bootinfo *bi)
{
    const uint8_t *m = map;
    unsigned dropped = 0;

    bi->mmap_count = 0;
    if (!m || desc_size < EFI_MMAP_DESC_MIN)
        return 0;
    for (size_t off = 0; off < map_size && map_size - off >= desc_size; off += desc_size) {
        uint32_t type = (uint32_t)efi_mmap_rd(m + off + DESC_TYPE, 4);
        uint64_t base = efi_mmap_rd(m + off + DESC_PHYS, 8);
        uint64_t pages = efi_mmap_rd(m + off + DESC_PAGES, 8);
        if (pages == 0 || pages > (UINT64_MAX >> UEFI_PAGE_SHIFT) ||
            base > UINT64_MAX - (pages << UEFI_PAGE_SHIFT)) {
            dropped++;
            continue;
        }
        efi_mmap_add(bi, base, pages << UEFI_PAGE_SHIFT, efi_mmap_type(type));
    }
    return dropped;
}

uint64_t efi_mmap_top(const void *map, size_t map_size, size_t desc_size)
{
    const uint8_t *m = map;
    uint64_t top = 0;

    if (!m || desc_size < EFI_MMAP_DESC_MIN)
        return 0;
    for (size_t off = 0; off < map_size && map_size - off >= desc_size; off += desc_size) {
        uint64_t base = efi_mmap_rd(m + off + DESC_PHYS, 8);
        uint64_t pages = efi_mmap_rd(m + off + DESC_PAGES, 8);
        if (pages == 0 || pages > (UINT64_MAX >> UEFI_PAGE_SHIFT) ||
            base > UINT64_MAX - (pages << UEFI_PAGE_SHIFT))
            continue;
        if (base + (pages << UEFI_PAGE_SHIFT) > top)
            top = base + (pages << UEFI_PAGE_SHIFT);
    }
    return top;
}
