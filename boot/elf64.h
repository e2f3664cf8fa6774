/* ELF64 executables held in a buffer: validation, load span, segment iteration.
 * Pure (no UEFI, no core), so that BOOTX64.EFI, the guest ELF loader and the host
 * unit tests share it.  Field layouts: System V gABI, "ELF-64 Object File Format"
 * 1.5 ("File header", "Program header table"); machine number from the x86-64 psABI. */
#ifndef PLINTH_BOOT_ELF64_H
#define PLINTH_BOOT_ELF64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ELF64_EHDR_SIZE     64
#define ELF64_PHDR_SIZE     56
#define ELF64_ET_EXEC       2
#define ELF64_EM_X86_64     62
#define ELF64_PT_LOAD       1
#define ELF64_PF_X          1
#define ELF64_PF_W          2
#define ELF64_PF_R          4
/* More program headers than any image plinth loads has; bounds the overlap check. */
#define ELF64_MAX_PHDRS     256

enum elf64_status {
    ELF64_OK = 0,
    ELF64_ERR_TOO_SMALL,       /* shorter than an ELF header */
    ELF64_ERR_MAGIC,           /* no \x7fELF */
    ELF64_ERR_CLASS,           /* not ELFCLASS64 */
    ELF64_ERR_DATA,            /* not little-endian */
    ELF64_ERR_VERSION,         /* e_ident version or e_version not 1 */
    ELF64_ERR_TYPE,            /* not ET_EXEC */
    ELF64_ERR_MACHINE,         /* not EM_X86_64 */
    ELF64_ERR_PHENTSIZE,       /* e_phentsize is not 56 */
    ELF64_ERR_NO_PHDRS,        /* e_phnum == 0 */
    ELF64_ERR_TOO_MANY_PHDRS,  /* e_phnum > ELF64_MAX_PHDRS */
    ELF64_ERR_PHDRS_TRUNCATED, /* a program header runs past the end of the file */
    ELF64_ERR_SEG_TRUNCATED,   /* a PT_LOAD's file bytes run past the end of the file */
    ELF64_ERR_SEG_FILESZ,      /* p_filesz > p_memsz */
    ELF64_ERR_SEG_OVERFLOW,    /* offset/address + size wraps around 2^64 */
    ELF64_ERR_SEG_OVERLAP,     /* two PT_LOADs overlap in physical addresses */
    ELF64_ERR_NO_LOAD,         /* no PT_LOAD with memory bytes */
    ELF64_ERR_SPAN,            /* the PT_LOADs span more than the caller allows */
};

struct elf64_image {
    const uint8_t *data;
    size_t   size;
    uint64_t entry;         /* e_entry */
    uint64_t phoff;
    uint16_t phnum;
    uint16_t load_count;    /* PT_LOADs with p_memsz > 0 */
    uint64_t paddr_lo;      /* span of PT_LOAD p_paddr: [paddr_lo, paddr_hi) */
    uint64_t paddr_hi;
    /* Filled on failure, for elf64_format_error. */
    enum elf64_status status;
    uint64_t err_value;     /* the offending field (class, machine, size...) */
    uint16_t err_index;     /* the offending program header */
    uint16_t err_index2;    /* the other one, for overlaps */
};

struct elf64_segment {
    uint16_t index;         /* program header number */
    uint32_t flags;         /* ELF64_PF_* */
    uint64_t offset, vaddr, paddr, filesz, memsz, align;
};

/* Validates the executable in data[0..size): header, program header table, every
 * PT_LOAD (file range inside the file, filesz <= memsz, no wrap-around, no two
 * overlapping in p_paddr) and a PT_LOAD span of at most max_span bytes.  Fills *img
 * (status included) and returns its status. */
enum elf64_status elf64_parse(const void *data, size_t size, uint64_t max_span,
                              struct elf64_image *img);

/* Iterates the PT_LOADs with p_memsz > 0 of a parsed image: start with
 * *cursor = 0; returns false after the last one. */
bool elf64_next_load(const struct elf64_image *img, unsigned *cursor,
                     struct elf64_segment *seg);

/* The PT_LOAD whose virtual range holds vaddr, if any. */
bool elf64_find_vaddr(const struct elf64_image *img, uint64_t vaddr,
                      struct elf64_segment *seg);

const char *elf64_strerror(enum elf64_status s);

/* One line for a person, naming the file: "plinth.elf is truncated: program header
 * 2 runs past the end of the file".  Always NUL-terminates buf (len > 0); returns
 * the length written. */
size_t elf64_format_error(const struct elf64_image *img, const char *name,
                          char *buf, size_t len);

#endif
