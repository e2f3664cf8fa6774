#include "boot/multiboot2/mb2_parse.h"
#include "boot/multiboot2/mb2_spec.h"

#include <stdbool.h>
#include <stdint.h>

static uint32_t mb2_rd32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t mb2_rd64(const uint8_t *p) { return mb2_rd32(p) | (uint64_t)mb2_rd32(p + 4) << 32; }

/* Copies a NUL-terminated string of at most avail bytes; always terminates dst. */
static void copy_str(char *dst, size_t dstsize, const uint8_t *src, size_t avail)
{
    size_t i = 0;
    for (; i + 1 < dstsize && i < avail && src[i]; i++)
        dst[i] = (char)src[i];
    dst[i] = '\0';
}

static void zero(void *p, size_t n)
{
    uint8_t *b = p;
    while (n--)
        *b++ = 0;
}

static void parse_mmap(const uint8_t *t, uint32_t size, struct bootinfo *out)
{
    if (size < 16)
        return;
    uint32_t esize = mb2_rd32(t + 8);
    if (esize < 24)
        return;
    /* As differences, so that no entry_size can wrap the sum past 2^32. */
    for (uint32_t off = 16; off <= size && esize <= size - off; off += esize) {
        if (out->mmap_count == BOOTINFO_MAX_MMAP) {
            out->flags |= BOOTINFO_F_MMAP_TRUNCATED;
            return;
        }
        const uint8_t *e = t + off;
        uint32_t type = mb2_rd32(e + 16);
        /* Multiboot2 types 1..5 match e820; anything else is reserved. */
        if (type < BOOTINFO_MEM_USABLE || type > BOOTINFO_MEM_BAD)
            type = BOOTINFO_MEM_RESERVED;
        out->mmap[out->mmap_count++] = (struct bootinfo_mmap_entry){
            .base = mb2_rd64(e), .length = mb2_rd64(e + 8), .type = type,
        };
    }
}

static void parse_framebuffer(const uint8_t *t, uint32_t size, struct bootinfo *out)
{
    /* Direct RGB colour (type 1) only: the colour info follows the common part. */
    /* Common part: addr 8, pitch 16, width 20, height 24, bpp 28, type 29, a
     * 16-bit reserved field 30; the RGB field positions and sizes follow at 32. */
    if (size < 38 || t[29] != 1)
        return;
    struct bootinfo_framebuffer *fb = &out->fb;
    fb->phys = mb2_rd64(t + 8);
    fb->pitch = mb2_rd32(t + 16);
    fb->width = mb2_rd32(t + 20);
    fb->height = mb2_rd32(t + 24);
    fb->bpp = t[28];
    fb->red_pos = t[32]; fb->red_size = t[33];
    fb->green_pos = t[34]; fb->green_size = t[35];
    fb->blue_pos = t[36]; fb->blue_size = t[37];
}

enum mb2_parse_status mb2_parse(const void *mbi, size_t max_size, struct bootinfo *out)
{
    zero(out, sizeof *out);
    out->magic = BOOTINFO_MAGIC_PLINTH;
    out->method = BOOTINFO_METHOD_MULTIBOOT2;
    if (!mbi)
        return MB2_ERR_NULL;
    const uint8_t *base = mbi;
    if (max_size < 8)
        return MB2_ERR_SIZE;
    uint32_t total = mb2_rd32(base);
    if (total < 16 || total > max_size)
        return MB2_ERR_SIZE;

    bool have_mmap = false, have_new_rsdp = false;
    for (uint32_t off = 8;;) {
        if (off + 8 > total)
            return MB2_ERR_NO_END;
        const uint8_t *t = base + off;
        uint32_t type = mb2_rd32(t), size = mb2_rd32(t + 4);
        if (size < 8 || size > total - off)
            return MB2_ERR_TAG;
        switch (type) {
        case MB2_TAG_END:
            if (!have_mmap)
                return MB2_ERR_NO_MMAP;
            return MB2_OK;
        case MB2_TAG_CMDLINE:
            copy_str(out->cmdline, sizeof out->cmdline, t + 8, size - 8);
            break;
        case MB2_TAG_LOADER_NAME:
            copy_str(out->loader_name, sizeof out->loader_name, t + 8, size - 8);
            break;
        case MB2_TAG_MODULE:
            if (size < 16)
                return MB2_ERR_TAG;
            if (out->module_count == BOOTINFO_MAX_MODULES) {
                out->flags |= BOOTINFO_F_MODULES_TRUNCATED;
                break;
            } else {
                uint32_t start = mb2_rd32(t + 8), end = mb2_rd32(t + 12);
                if (end < start)
                    return MB2_ERR_TAG;
                struct bootinfo_module *m = &out->modules[out->module_count++];
                m->phys = start;
                m->size = end - start;
                copy_str(m->name, sizeof m->name, t + 16, size - 16);
            }
            break;
        case MB2_TAG_MMAP:
            have_mmap = true;
            parse_mmap(t, size, out);
            break;
        case MB2_TAG_FRAMEBUFFER:
            parse_framebuffer(t, size, out);
            break;
        case MB2_TAG_ACPI_OLD:
        case MB2_TAG_ACPI_NEW: {
            /* Prefer the ACPI 2.0+ RSDP (XSDT) when both are given. */
            if (type == MB2_TAG_ACPI_OLD && have_new_rsdp)
                break;
            uint32_t n = size - 8;
            if (n > sizeof out->rsdp)
                n = sizeof out->rsdp;
            for (uint32_t i = 0; i < n; i++)
                out->rsdp[i] = t[8 + i];
            out->rsdp_len = n;
            if (type == MB2_TAG_ACPI_NEW)
                have_new_rsdp = true;
            break;
        }
        default:
            break; /* tags plinth does not use */
        }
        off += (size + 7) & ~7u;
    }
}

const char *mb2_parse_strerror(enum mb2_parse_status s)
{
    switch (s) {
    case MB2_OK: return "ok";
    case MB2_ERR_NULL: return "no boot information (was plinth started by a Multiboot2 loader?)";
    case MB2_ERR_SIZE: return "boot information has an impossible total size";
    case MB2_ERR_TAG: return "boot information has a malformed tag";
    case MB2_ERR_NO_END: return "boot information has no end tag";
    case MB2_ERR_NO_MMAP: return "boot information has no memory map";
    }
    return "unknown error";
}
