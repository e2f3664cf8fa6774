/* The UEFI memory map (GetMemoryMap, UEFI 2.10 §7.2.3) -> the bootinfo memory map.
 * Pure: no UEFI headers, so the host unit tests run it. */
#ifndef PLINTH_BOOT_EFI_MMAP_H
#define PLINTH_BOOT_EFI_MMAP_H

#include "boot/bootinfo.h"
#include <stddef.h>
#include <stdint.h>

/* Smallest EFI_MEMORY_DESCRIPTOR: Type, pad, PhysicalStart, VirtualStart,
 * NumberOfPages, Attribute.  Firmware may report a larger stride. */
#define EFI_MMAP_DESC_MIN 40

/* The bootinfo type for a UEFI memory type: free-after-exit memory is usable,
 * the loader's own allocations (image, files, hand-off, page tables) are
 * BOOTINFO_MEM_BOOTLOADER, runtime services and everything unknown reserved. */
uint32_t efi_mmap_type(uint32_t efi_type);

/* Fills bi->mmap / mmap_count from the map (map_size bytes, stride desc_size),
 * sorted by base, adjacent same-type ranges merged.  Descriptors that are empty or
 * wrap around 2^64 are dropped and counted in the return value; overflow of the
 * 512 slots sets BOOTINFO_F_MMAP_TRUNCATED.  desc_size < EFI_MMAP_DESC_MIN gives an
 * empty map. */
unsigned efi_mmap_convert(const void *map, size_t map_size, size_t desc_size,
                          struct bootinfo *bi);

/* The highest end address of any descriptor (0 for none): how far the loader's
 * identity map must reach. */
uint64_t efi_mmap_top(const void *map, size_t map_size, size_t desc_size);

#endif
