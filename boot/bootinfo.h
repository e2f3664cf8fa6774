/* The one hand-off from a boot path (UEFI loader or Multiboot2) to the core.
 *
 * Entry contract of the core's 64-bit entry point (kernel_entry64):
 *   long mode, paging on, interrupts off; the kernel's link addresses
 *   (KERNEL_VMA + load address) mapped to where it was loaded, and physical memory
 *   identity-mapped at least up to 4 GiB;
 *   rdi = BOOTINFO_MAGIC_MB2     and rsi = physical address of the Multiboot2 info, or
 *   rdi = BOOTINFO_MAGIC_PLINTH  and rsi = physical address of a struct bootinfo;
 *   rdx = physical address the image's first byte (link address KERNEL_LMA) was loaded at.
 * The core copies what it needs first thing, so the structure may live in any memory
 * the boot path reports as reserved (EFI loader data). */
#ifndef PLINTH_BOOT_BOOTINFO_H
#define PLINTH_BOOT_BOOTINFO_H

#include <stdint.h>

#define BOOTINFO_MAGIC_MB2     0x36d76289u /* what a Multiboot2 loader leaves in eax */
#define BOOTINFO_MAGIC_PLINTH  0x4f42544e4c50ull /* "PLNTBO" */

#define KERNEL_LMA   0x200000ull
#define KERNEL_VMA   0xFFFFFFFF80000000ull

#define BOOTINFO_MAX_MMAP      512
#define BOOTINFO_MAX_MODULES   32
#define BOOTINFO_NAME_MAX      64
#define BOOTINFO_CMDLINE_MAX   256

/* Memory types, with the meaning of the e820 types of the same number. */
enum bootinfo_mem_type {
    BOOTINFO_MEM_USABLE      = 1,
    BOOTINFO_MEM_RESERVED    = 2,
    BOOTINFO_MEM_ACPI        = 3, /* ACPI reclaimable: tables plinth still reads */
    BOOTINFO_MEM_NVS         = 4,
    BOOTINFO_MEM_BAD         = 5,
    BOOTINFO_MEM_BOOTLOADER  = 0x1000, /* in use by the boot path: image, files, hand-off */
};

struct bootinfo_mmap_entry {
    uint64_t base;
    uint64_t length;
    uint32_t type;       /* enum bootinfo_mem_type */
    uint32_t reserved;
};

/* A file handed over by the boot path: plinth.cfg and the guest images it names. */
struct bootinfo_module {
    uint64_t phys;
    uint64_t size;
    char     name[BOOTINFO_NAME_MAX]; /* path on the boot medium, e.g. "plinth.cfg" */
};

struct bootinfo_framebuffer {
    uint64_t phys;        /* 0: no framebuffer */
    uint32_t width, height;
    uint32_t pitch;       /* bytes per scan line */
    uint8_t  bpp;         /* bits per pixel; only 32 is drawn on */
    uint8_t  red_pos, red_size, green_pos, green_size, blue_pos, blue_size;
    uint8_t  pad;
};

enum bootinfo_method {
    BOOTINFO_METHOD_MULTIBOOT2 = 1,
    BOOTINFO_METHOD_UEFI       = 2,
};

struct bootinfo {
    uint64_t magic;                   /* BOOTINFO_MAGIC_PLINTH */
    uint32_t method;                  /* enum bootinfo_method */
    uint32_t mmap_count;
    uint32_t module_count;
    uint32_t flags;                   /* BOOTINFO_F_* */
    uint32_t rsdp_len;                /* 0: no RSDP found; 20 (ACPI 1.0) or 36 */
    uint32_t pad0;
    uint8_t  rsdp[40];                /* a copy: Multiboot2 hands over bytes, not an address */
    uint64_t kernel_phys;             /* where KERNEL_LMA was loaded */
    uint64_t kernel_size;             /* bytes from kernel_phys the image occupies */
    struct bootinfo_framebuffer fb;
    char     cmdline[BOOTINFO_CMDLINE_MAX];
    char     loader_name[BOOTINFO_NAME_MAX];
    struct bootinfo_mmap_entry mmap[BOOTINFO_MAX_MMAP];
    struct bootinfo_module modules[BOOTINFO_MAX_MODULES];
};

#define BOOTINFO_F_MMAP_TRUNCATED    (1u << 0)
#define BOOTINFO_F_MODULES_TRUNCATED (1u << 1)

/* Found by the UEFI loader in the first 64 KiB of the loaded image: where to enter
 * in 64-bit mode.  Lives in .plinth_header, next to the Multiboot2 header. */
#define PLINTH_HEADER_MAGIC 0x5244484e544e4c50ull /* "PLNTNHDR" */
struct plinth_header {
    uint64_t magic;
    uint64_t entry64;    /* link (virtual) address of kernel_entry64 */
    uint64_t kernel_vma; /* KERNEL_VMA */
    uint64_t kernel_lma; /* KERNEL_LMA: the link-time load address */
};

#endif
