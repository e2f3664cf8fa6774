/* The boot hand-off parsers, on any bytes: the Multiboot2 information GRUB leaves
 * (boot/multiboot2/mb2_parse.c), the UEFI memory map the loader converts
 * (boot/efi/efi_mmap.c), and the loader's scan of plinth.cfg for the files to load
 * (boot/efi/efi_cfg.c).  None reads past its input (each gets a heap block of exactly
 * its size); each fills the hand-off within its arrays, names NUL-terminated, a
 * memory map sorted with no empty or wrapping entry; the config scan ends. */
#include "fuzz.h"
#include "boot/multiboot2/mb2_parse.c"
#include "boot/efi/efi_mmap.c"
#include "boot/efi/efi_cfg.c"

static bool terminated(const char *s, size_t max) { return memchr(s, 0, max) != NULL; }

static void check_bootinfo(const struct bootinfo *bi)
{
    FUZZ_CHECK(bi->mmap_count <= BOOTINFO_MAX_MMAP, "%u map entries", bi->mmap_count);
    FUZZ_CHECK(bi->module_count <= BOOTINFO_MAX_MODULES, "%u modules", bi->module_count);
    FUZZ_CHECK(terminated(bi->cmdline, sizeof bi->cmdline) && terminated(bi->loader_name, sizeof bi->loader_name),
               "strings not terminated");
    for (uint32_t i = 0; i < bi->module_count; i++)
        FUZZ_CHECK(terminated(bi->modules[i].name, sizeof bi->modules[i].name), "module %u name", i);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = { data, size };
    uint8_t which = fz_u8(&in);
    size_t n = in.n;
    uint8_t *buf = malloc(n ? n : 1);
    fz_bytes(&in, buf, n);
    static struct bootinfo bi;
    memset(&bi, 0, sizeof bi);
    switch (which % 3) {
    case 0:
        (void)mb2_parse(buf, n, &bi);
        check_bootinfo(&bi);
        break;
    case 1: {
        size_t desc = 24 + (which >> 2) * 8;          /* 24..88: strides firmware uses and odd ones */
        (void)efi_mmap_convert(buf, n, desc, &bi);
        (void)efi_mmap_top(buf, n, desc);
        check_bootinfo(&bi);
        /* Sorted; overlaps firmware reports stay (kernel/pmm.c lets the non-usable
         * side of one win), but no entry is empty or wraps. */
        for (uint32_t i = 0; i < bi.mmap_count; i++) {
            FUZZ_CHECK(bi.mmap[i].length && bi.mmap[i].base + bi.mmap[i].length > bi.mmap[i].base, "entry %u", i);
            FUZZ_CHECK(!i || bi.mmap[i - 1].base <= bi.mmap[i].base, "entries %u and %u out of order", i - 1, i);
        }
        break;
    }
    default: {
        struct efi_cfg_iter it;
        struct efi_cfg_file f;
        efi_cfg_begin(&it, (const char *)buf, n);
        unsigned steps = 0;
        enum efi_cfg_status st;
        while ((st = efi_cfg_next_file(&it, &f)) != EFI_CFG_END) {
            FUZZ_CHECK(++steps <= n + 1, "the scan does not end");
            if (st == EFI_CFG_FILE)
                FUZZ_CHECK(terminated(f.path, sizeof f.path) && f.path[0], "path not terminated");
        }
        break;
    }
    }
    free(buf);
    return 0;
}
