/* Multiboot2 information tag types (Multiboot2 spec §3.6): read by plinth's own
 * entry (mb2_parse) and written by its guest loader (vmm/loader/multiboot). */
#ifndef PLINTH_BOOT_MB2_SPEC_H
#define PLINTH_BOOT_MB2_SPEC_H

enum {
    MB2_TAG_END = 0, MB2_TAG_CMDLINE = 1, MB2_TAG_LOADER_NAME = 2, MB2_TAG_MODULE = 3,
    MB2_TAG_MEMINFO = 4, MB2_TAG_MMAP = 6, MB2_TAG_FRAMEBUFFER = 8, MB2_TAG_ACPI_OLD = 14,
    MB2_TAG_ACPI_NEW = 15,
};

#endif
