/* protmode: the Multiboot 1 entry state (spec 0.6.96 §3.2) and the VM's RAM as the
 * information structure describes it. */
#include "guest.h"

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    guest_name = "protmode";
    check(magic == MB1_BOOT_MAGIC, "mb1-magic", "EAX was %#x, expected %#x", magic, MB1_BOOT_MAGIC);

    uint32_t cr0 = read_cr0();
    /* §3.2: PE set, PG clear. */
    check((cr0 & 1) && !(cr0 & 0x80000000u), "cr0-protected-no-paging", "CR0 = %#x", cr0);

    uint32_t top = mb1_ram_top(mbi);
    check(top >= 0x200000u && mbi->mem_lower <= 640, "mb1-meminfo",
          "flags %#x mem_lower %u KiB mem_upper %u KiB", mbi->flags, mbi->mem_lower, mbi->mem_upper);
    gprintf("INFO protmode: RAM ends at %#x (mem_lower %u KiB, mem_upper %u KiB)\n", top, mbi->mem_lower,
            mbi->mem_upper);

    /* The memory map (flags bit 6) must list usable RAM covering this kernel. */
    bool covered = false;
    if (mbi->flags & MB1_INFO_MMAP) {
        uint32_t p = mbi->mmap_addr, end = mbi->mmap_addr + mbi->mmap_length;
        while (p < end) {
            const struct mb1_mmap *e = (const struct mb1_mmap *)p;
            gprintf("INFO protmode: mmap %#llx +%#llx type %u\n", e->base, e->length, e->type);
            if (e->type == 1 && e->base <= (uint32_t)guest_image_start &&
                e->base + e->length >= (uint32_t)guest_image_end)
                covered = true;
            p += e->size + 4;
        }
    }
    check(covered, "mb1-mmap", "no usable memory-map entry covers the kernel %#x-%#x (flags %#x)",
          (uint32_t)guest_image_start, (uint32_t)guest_image_end, mbi->flags);

    /* Every MiB of RAM above the kernel holds what is written to it. */
    uint32_t bad = 0, first_bad = 0, tested = 0;
    for (uint32_t a = ((uint32_t)guest_image_end + 0xfffff) & ~0xfffffu; top && a + 8 <= top; a += 0x100000) {
        volatile uint32_t *p = (volatile uint32_t *)a, *q = (volatile uint32_t *)(top - 4 - (a & 0xff0));
        *p = a ^ 0x5a5aa5a5u;
        *q = ~a;
        if (*p != (a ^ 0x5a5aa5a5u) || *q != ~a) {
            if (!bad++)
                first_bad = a;
        }
        tested++;
    }
    check(tested > 0 && bad == 0, "ram-readwrite", "%u of %u MiB failed, first at %#x", bad, tested, first_bad);

    /* Addresses 1 MiB apart are distinct (A20 enabled, §3.2 "A20 gate enabled"). */
    volatile uint32_t *lo = (volatile uint32_t *)0x200000, *hi = (volatile uint32_t *)0x300000;
    *lo = 0x11111111u;
    *hi = 0x22222222u;
    check(top >= 0x400000u && *lo == 0x11111111u, "a20", "0x200000 reads %#x after a write to 0x300000", *lo);

    uint32_t fl = read_eflags();
    check(!(fl & (1u << 17)), "eflags-not-v86", "EFLAGS = %#x", fl);
}
