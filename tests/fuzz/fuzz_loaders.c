/* Every guest loader (vmm/loader/: ELF32/64, Multiboot 1 and 2, Linux bzImage and PVH
 * vmlinux, flat and real-mode images) on any image bytes, with modules, an initrd
 * and a command line: nothing is written outside the VM's RAM (a heap block of
 * exactly its size, so ASan sees a byte past it), and an accepted image starts inside
 * RAM with its boot structures (Multiboot information, boot_params/start_info, ELF64
 * page tables) inside RAM too; a refused one says why. */
#include "fuzz.h"
#include "kernel/fmt.c"
#include "boot/elf64.c"
#include "boot/multiboot2/mb2_parse.c"
#include "vmm/loader/loader_common.c"
#include "vmm/loader/elf_guest.c"
#include "vmm/loader/multiboot.c"
#include "vmm/loader/flat.c"
#include "vmm/loader/linux.c"

#define RAM_SIZE (8u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t *ram_block;
    if (!ram_block)
        ram_block = malloc(RAM_SIZE);
    struct fuzz_in in = { data, size };
    uint8_t which = fz_u8(&in);
    /* RAM from 1 MiB to all of the block. */
    struct guest_ram ram = { ram_block, (1u << 20) + ((uint64_t)fz_u16(&in) << 8) % (RAM_SIZE - (1u << 20) + 1) };
    char cmdline[300];
    size_t cl = fz_below(&in, sizeof cmdline);
    fz_bytes(&in, cmdline, cl);
    cmdline[cl] = 0;
    uint8_t mod_bytes[64];
    fz_bytes(&in, mod_bytes, sizeof mod_bytes);
    struct loader_file mods[2] = { { "m0", mod_bytes, fz_below(&in, 65) }, { "m1", mod_bytes + 3, fz_below(&in, 62) } };
    /* The image: the rest, in a block of its own exact size. */
    size_t n = in.n;
    uint8_t *img = malloc(n ? n : 1);
    fz_bytes(&in, img, n);
    struct loader_file k = { "kernel", img, n };
    struct loader_entry entry;
    struct loader_error err = { .message = "" };
    bool ok;
    switch (which % 5) {
    case 0:
        ok = loader_elf(&ram, &k, &entry, &err);
        break;
    case 1:
        ok = loader_multiboot(&ram, &k, mods, (which >> 6) % 3, cmdline, &entry, &err);
        break;
    case 2:
        ok = loader_linux(&ram, &k, (which & 0x40) ? &mods[0] : NULL, cmdline, (which & 0x80) ? 0xe0000 : 0,
                          &entry, &err);
        break;
    case 3:
        ok = loader_flat(&ram, &k, (uint64_t)which << 12, (uint64_t)which << 12 | 0x10, false, &entry, &err);
        break;
    default:
        ok = loader_flat(&ram, &k, 0x7c00, 0x7c00, true, &entry, &err);
        break;
    }
    if (ok) {
        uint64_t ip = entry.mode == LOADER_MODE_REAL ? (uint64_t)entry.cs * 16 + entry.rip : entry.rip;
        FUZZ_CHECK(ip < ram.size, "entry %#lx outside %lu bytes of RAM", (unsigned long)ip, (unsigned long)ram.size);
        if (which % 5 == 1 || which % 5 == 2)
            FUZZ_CHECK((entry.rbx | entry.rsi) < ram.size, "boot structure at %#lx/%#lx outside RAM",
                       (unsigned long)entry.rbx, (unsigned long)entry.rsi);
        if (entry.mode == LOADER_MODE_LONG64)
            FUZZ_CHECK(entry.cr3 % 4096 == 0 && entry.cr3 + LOADER_PAGETABLE_SIZE <= ram.size, "page tables at %#lx",
                       (unsigned long)entry.cr3);
    } else {
        FUZZ_CHECK(err.message[0], "refused without a message");
    }
    free(img);
    return 0;
}
