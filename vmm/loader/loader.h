/* Guest image loaders: put a kernel (and its modules) into a VM's RAM and say how
 * its first vCPU starts.  Pure: they see guest RAM as one host buffer and the
 * images as byte arrays, so they run unchanged in unit tests.  Images are hostile:
 * every offset, size and address is checked against the file and the VM's RAM. */
#ifndef PLINTH_VMM_LOADER_H
#define PLINTH_VMM_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A VM's RAM: guest-physical [0, size) backed by host memory at hva. */
struct guest_ram {
    uint8_t *hva;
    uint64_t size;
};

struct loader_file {
    const char    *name;   /* path on the boot medium, for messages and module strings */
    const uint8_t *data;
    size_t         size;
};

enum loader_cpu_mode {
    LOADER_MODE_REAL,      /* 16-bit real mode: cs:ip = entry_cs:rip */
    LOADER_MODE_PROT32,    /* flat 32-bit protected mode, paging off */
    LOADER_MODE_LONG64,    /* 64-bit mode, paging on with cr3, flat segments */
};

/* How the boot vCPU starts: the monitor turns this into backend register state. */
struct loader_entry {
    enum loader_cpu_mode mode;
    uint64_t rip;
    uint16_t cs;           /* real mode only: the code segment */
    uint64_t rax, rbx, rsi;
    uint64_t cr3;          /* long mode only: guest-physical page-table root */
};

struct loader_error {
    char message[200];
};

/* Guest-physical layout every loader keeps to (README, "Guest memory"): where its
 * structures go unless the kernel itself lies there (loader_place). */
#define LOADER_PAGETABLE_GPA  0x1000ull   /* 6 pages: identity map of 4 GiB for ELF64 */
#define LOADER_PAGETABLE_SIZE 0x6000ull
#define LOADER_INFO_GPA       0x7000ull   /* Multiboot information, command line, names */
#define LOADER_INFO_END       0x9000ull
#define LOADER_LOW_RAM_END    0x9fc00ull  /* conventional memory ends; EBDA/VGA/BIOS follow */
#define LOADER_HIGH_RAM_START 0x100000ull
/* The VM's ACPI tables (vmm/acpi), RSDP first, in the BIOS read-only area where
 * guests without boot information search for the RSDP (ACPI 6.5 §5.2.5.1); the
 * e820 map reports it reserved.  Loaders never write here. */
#define LOADER_ACPI_GPA       0xe0000ull
#define LOADER_ACPI_END       0x100000ull

/* The memory map a guest is told about (as e820 / Multiboot types 1 and 2). */
#define LOADER_MAX_E820 4
#define CONFIG_MAX_MODULES_LOADER 8   /* = CONFIG_MAX_MODULES (vmm/config.h) */
struct loader_e820 {
    uint64_t base, length;
    uint32_t type;         /* 1 usable, 2 reserved */
};
unsigned loader_guest_e820(uint64_t ram_size, struct loader_e820 out[LOADER_MAX_E820]);

/* ELF32 (entered in 32-bit protected mode) or ELF64 (entered in 64-bit mode on an
 * identity map of the first 4 GiB built at LOADER_PAGETABLE_GPA). */
bool loader_elf(const struct guest_ram *ram, const struct loader_file *kernel,
                struct loader_entry *entry, struct loader_error *err);

/* Multiboot 1 or 2, whichever header the image carries (2 preferred), with the
 * address tag/fields or else as ELF; modules placed page-aligned after the kernel. */
bool loader_multiboot(const struct guest_ram *ram, const struct loader_file *kernel,
                      const struct loader_file *modules, unsigned module_count,
                      const char *cmdline, struct loader_entry *entry,
                      struct loader_error *err);

/* Raw bytes at load; flat enters 32-bit protected mode at entry, realmode enters
 * real mode at entry = seg << 16 | off. */
bool loader_flat(const struct guest_ram *ram, const struct loader_file *kernel,
                 uint64_t load, uint64_t entry_addr, bool realmode,
                 struct loader_entry *entry, struct loader_error *err);

/* Linux: a bzImage (boot protocol 2.12+, entered at its 32-bit entry with %esi =
 * boot_params) or a vmlinux ELF with the PVH entry note (entered there in 32-bit
 * protected mode with %ebx = hvm_start_info), told the VM's e820 map, command line,
 * initrd (NULL for none) and ACPI RSDP at rsdp_gpa (0 for none).  Both keep their
 * boot structures in LOADER_INFO_GPA..LOADER_INFO_END and everything else at or
 * above 1 MiB; the initrd goes page-aligned as high as the kernel can reach. */
bool loader_linux(const struct guest_ram *ram, const struct loader_file *kernel,
                  const struct loader_file *initrd, const char *cmdline, uint64_t rsdp_gpa,
                  struct loader_entry *entry, struct loader_error *err);

/* Guest-physical [start, end) a loader has filled (kernel segments, modules). */
struct loader_range {
    uint64_t start, end;
};
/* Where a loader's own structures (size bytes, align-aligned) go: at want if that
 * meets none of used[0..n), else the lowest place that does, in conventional memory
 * (from 0x1000 up to LOADER_LOW_RAM_END) or else from 1 MiB up, in RAM and below
 * 4 GiB.  False when nothing fits.  So a kernel linked where plinth would put them
 * (real-mode test kernels live below 1 MiB) still boots. */
bool loader_place(const struct guest_ram *ram, const struct loader_range *used, unsigned n, uint64_t want,
                  uint64_t size, uint64_t align, uint64_t *at);
/* Whether [gpa, gpa + len) touches the PC's reserved hole (EBDA, VGA, BIOS area and
 * the ACPI tables, LOADER_LOW_RAM_END..LOADER_HIGH_RAM_START), where no image may go. */
bool loader_in_hole(uint64_t gpa, uint64_t len);

/* Shared by the loaders: bounds-checked copies into guest RAM. */
bool loader_range_ok(const struct guest_ram *ram, uint64_t gpa, uint64_t len);
bool loader_write(const struct guest_ram *ram, uint64_t gpa, const void *src, uint64_t len);
bool loader_zero(const struct guest_ram *ram, uint64_t gpa, uint64_t len);
void loader_fail(struct loader_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
