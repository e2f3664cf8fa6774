/* Checks and conversions of what the firmware hands BOOTX64.EFI: the ACPI RSDP, a
 * GOP pixel mask, the LoadOptions text.  Pure: no UEFI headers, so the host unit
 * tests run them on hostile input. */
#ifndef PLINTH_BOOT_EFI_FIRMWARE_H
#define PLINTH_BOOT_EFI_FIRMWARE_H

#include <stddef.h>
#include <stdint.h>

/* Largest RSDP Length believed (ACPI 6.5 §5.2.5.3 defines 36). */
#define EFI_RSDP_MAX_LEN 4096

/* The number of bytes of the RSDP at r to hand over: 20 (revision 0/1) or 36
 * (revision 2+), or 0 if the signature or a checksum is wrong.  Reads at most
 * 20 bytes, then, for revision 2+, at most Length (<= EFI_RSDP_MAX_LEN) bytes. */
uint32_t efi_rsdp_len(const uint8_t *r);

/* Position of the lowest set bit of a GOP channel mask, and the length of the run
 * of ones from there (UEFI 2.10 §12.9, EFI_PIXEL_BITMASK). */
uint8_t efi_mask_pos(uint32_t mask);
uint8_t efi_mask_size(uint32_t mask);
/* Bits per pixel of a bit-mask pixel (all four masks or-ed): 8, 16, 24 or 32. */
uint32_t efi_mask_bpp(uint32_t all_masks);

/* LoadOptions (UCS-2, size in bytes) -> an ASCII command line in out[out_size].
 * Options that are not printable ASCII text (a boot manager's binary data) give
 * an empty line; a first word ending in ".efi" (a shell passes the program's own
 * name) is dropped; surrounding blanks are trimmed.  Returns the length. */
size_t efi_cmdline_from_options(const uint16_t *opt, size_t opt_bytes, char *out,
                                size_t out_size);

#endif
