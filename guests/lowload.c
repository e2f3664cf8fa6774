/* lowload: a Multiboot kernel linked at 0x8000, below 1 MiB, as real-mode test
 * kernels are (guests/lib/guest-low.ld).  plinth must load it where it asks and put
 * the boot information (and what it points to) where the kernel is not: the image
 * must be intact (its data reads back as linked) and the information readable,
 * outside it, with the command line and memory map the config gives. */
#include "guest.h"

/* A pattern in .data, well into the image: a loader writing its information over the
 * kernel would break it. */
#define PATTERN_WORDS 2048
static uint32_t pattern[PATTERN_WORDS] = { [0] = 0x10ad10ad, [PATTERN_WORDS - 1] = 0xfeedf00d };

static bool outside_image(uint32_t addr, uint32_t len)
{
    return addr + len <= (uint32_t)guest_image_start || addr >= (uint32_t)guest_image_end;
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    guest_name = "lowload";
    gprintf("INFO lowload: image %#x-%#x, boot information at %#x\n", (uint32_t)guest_image_start,
            (uint32_t)guest_image_end, (uint32_t)mbi);
    check((uint32_t)guest_image_start == 0x8000, "lowload-linked-low", "image starts at %#x",
          (uint32_t)guest_image_start);
    check(magic == MB1_BOOT_MAGIC, "lowload-magic", "EAX = %#x", magic);
    check(pattern[0] == 0x10ad10ad && pattern[PATTERN_WORDS - 1] == 0xfeedf00d, "lowload-image-intact",
          "pattern %#x .. %#x", pattern[0], pattern[PATTERN_WORDS - 1]);
    check(outside_image((uint32_t)mbi, sizeof *mbi), "lowload-info-outside-image", "info at %#x",
          (uint32_t)mbi);
    uint32_t marker = cmdline_number(mbi, "marker", 0);
    check(marker == 4711 && outside_image(mbi->cmdline, 1), "lowload-cmdline", "marker=%u, cmdline at %#x",
          marker, mbi->cmdline);
    bool mmap_ok = (mbi->flags & MB1_INFO_MMAP) && mbi->mmap_length && outside_image(mbi->mmap_addr, mbi->mmap_length);
    uint64_t usable = 0;
    if (mmap_ok)
        for (uint32_t off = 0; off < mbi->mmap_length;) {
            const struct mb1_mmap *e = (const struct mb1_mmap *)(mbi->mmap_addr + off);
            if (e->type == 1)
                usable += e->length;
            off += e->size + 4;
        }
    /* The map's usable RAM is what mem_lower and mem_upper say, as the config gives it. */
    uint64_t want = ((uint64_t)mbi->mem_lower + mbi->mem_upper) * 1024;
    check(mmap_ok && usable == want && usable > 4ull << 20, "lowload-mmap",
          "flags %#x, %llu bytes usable in the map, %llu by mem_lower/mem_upper", mbi->flags, usable, want);
}
