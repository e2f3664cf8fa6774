/* ELF32/ELF64 kernels as guests see them: shared by the ELF and Multiboot loaders. */
#ifndef PLINTH_VMM_LOADER_ELF_GUEST_H
#define PLINTH_VMM_LOADER_ELF_GUEST_H

#include "vmm/loader/loader.h"

#define ELF_GUEST_MAX_SEGMENTS 16

struct elf_guest_segment {
    unsigned index;
    uint64_t offset, vaddr, paddr, filesz, memsz;
};

struct elf_guest {
    bool     is64;
    uint64_t entry;        /* e_entry as linked */
    uint64_t entry_phys;   /* the same, translated through the segment holding it */
    uint64_t end;          /* highest guest-physical byte + 1 of any segment */
    unsigned count;
    struct elf_guest_segment seg[ELF_GUEST_MAX_SEGMENTS];
};

bool elf_guest_parse(const struct loader_file *f, struct elf_guest *out, struct loader_error *err);
bool elf_guest_load(const struct guest_ram *ram, const struct loader_file *f,
                    const struct elf_guest *elf, struct loader_error *err);
/* The segments' guest-physical ranges (those with memory), at most max. */
unsigned elf_guest_ranges(const struct elf_guest *elf, struct loader_range *out, unsigned max);

#endif
