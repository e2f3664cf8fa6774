/* Firmware-provided data, validated (see efi_firmware.h). */
#include "boot/efi/efi_firmware.h"

static uint8_t efi_sum(const uint8_t *p, size_t n)
{
    uint8_t s = 0;
    while (n--)
        s = (uint8_t)(s + *p++);
    return s;
}

/* RSDP layout, ACPI 6.5 §5.2.5.3: Signature[8], Checksum (over bytes 0..19),
 * OEMID[6], Revision at 15, RsdtAddress; from revision 2 Length at 20, XsdtAddress,
 * Extended Checksum (over Length bytes). */
uint32_t efi_rsdp_len(const uint8_t *r)
{
    static const char sig[8] = { 'R', 'S', 'D', ' ', 'P', 'T', 'R', ' ' };
    if (!r)
        return 0;
    for (size_t i = 0; i < 8; i++)
        if (r[i] != (uint8_t)sig[i])
            return 0;
    if (efi_sum(r, 20) != 0)
        return 0;
    if (r[15] < 2)
        return 20;
    uint32_t len = (uint32_t)r[20] | (uint32_t)r[21] << 8 | (uint32_t)r[22] << 16 |
                   (uint32_t)r[23] << 24;
    if (len < 36 || len > EFI_RSDP_MAX_LEN || efi_sum(r, len) != 0)
        return 0;
    return 36;
}

uint8_t efi_mask_pos(uint32_t mask)
{
    uint8_t p = 0;
    if (!mask)
        return 0;
    while (!(mask & 1)) {
        mask >>= 1;
        p++;
    }
    return p;
}

uint8_t efi_mask_size(uint32_t mask)
{
    uint8_t n = 0;
    mask >>= efi_mask_pos(mask);
    while (mask & 1) {
        mask >>= 1;
        n++;
    }
    return n;
}

uint32_t efi_mask_bpp(uint32_t all_masks)
{
    uint32_t top = 0;
    for (uint32_t b = 0; b < 32; b++)
        if (all_masks & (1u << b))
            top = b + 1;
    return top <= 8 ? 8 : top <= 16 ? 16 : top <= 24 ? 24 : 32;
}

size_t efi_cmdline_from_options(const uint16_t *opt, size_t opt_bytes, char *out,
                                size_t out_size)
{
    size_t n = opt ? opt_bytes / 2 : 0, len = 0;

    if (out_size == 0)
        return 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && opt[i]; i++)
        if (opt[i] < 0x20 || opt[i] > 0x7e)
            return 0;
    size_t i = 0;
    while (i < n && opt[i] == ' ')
        i++;
    size_t w = i;
    while (w < n && opt[w] && opt[w] != ' ')
        w++;
    if (w - i >= 4 && opt[w - 4] == '.' && (opt[w - 3] | 0x20) == 'e' &&
        (opt[w - 2] | 0x20) == 'f' && (opt[w - 1] | 0x20) == 'i')
        i = w;
    while (i < n && opt[i] == ' ')
        i++;
    for (; i < n && opt[i] && len + 1 < out_size; i++)
        out[len++] = (char)opt[i];
    while (len && out[len - 1] == ' ')
        len--;
    out[len] = '\0';
    return len;
}
