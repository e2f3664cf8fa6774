/* Linux guests, two ways in:
 *  - a bzImage through the x86 boot protocol (Linux Documentation/arch/x86/boot.rst,
 *    zero-page.rst), entered at its 32-bit entry with a boot_params we build;
 *  - an uncompressed vmlinux through PVH direct boot (Xen public header
 *    arch-x86/hvm/start_info.h, the XEN_ELFNOTE_PHYS32_ENTRY note of elfnote.h),
 *    which skips the decompressor: most of a bzImage boot under emulation.
 * Both images are hostile: every header field is checked before it places anything. */
#include "vmm/loader/loader.h"
#include "vmm/loader/elf_guest.h"

/* ---- bzImage setup header (boot.rst, "The real-mode kernel header"): offsets in
 * the file, which are also their offsets in boot_params ---- */
#define BZ_SETUP_SECTS         0x1f1
#define BZ_SYSSIZE             0x1f4
#define BZ_BOOT_FLAG           0x1fe
#define BZ_JUMP_OFFSET         0x201   /* the header ends at 0x202 + this byte */
#define BZ_HEADER              0x202
#define BZ_VERSION             0x206
#define BZ_TYPE_OF_LOADER      0x210
#define BZ_LOADFLAGS           0x211
#define BZ_CODE32_START        0x214
#define BZ_RAMDISK_IMAGE       0x218
#define BZ_RAMDISK_SIZE        0x21c
#define BZ_HEAP_END_PTR        0x224
#define BZ_EXT_LOADER_VER      0x226
#define BZ_EXT_LOADER_TYPE     0x227
#define BZ_CMD_LINE_PTR        0x228
#define BZ_INITRD_ADDR_MAX     0x22c
#define BZ_KERNEL_ALIGNMENT    0x230
#define BZ_RELOCATABLE_KERNEL  0x234
#define BZ_CMDLINE_SIZE        0x238
#define BZ_HARDWARE_SUBARCH    0x23c
#define BZ_HARDWARE_SUBARCH_DATA 0x240
#define BZ_SETUP_DATA          0x250
#define BZ_PREF_ADDRESS        0x258
#define BZ_INIT_SIZE           0x260
#define BZ_HEADER_MIN_END      0x264   /* init_size, the last field used, ends here */

#define BZ_HDRS_MAGIC          0x53726448u  /* "HdrS" */
#define BZ_BOOT_FLAG_MAGIC     0xaa55u
/* Fields used here date from 2.03 (initrd_addr_max), 2.06 (cmdline_size) and 2.10
 * (pref_address, init_size); 2.12 (Linux 3.8) is the floor plinth tests against. */
#define BZ_MIN_VERSION         0x020c
#define BZ_VERSION_RSDP        0x020e  /* acpi_rsdp_addr (zero-page.rst) from 2.14 */
#define BZ_LOADED_HIGH         0x01
#define BZ_CAN_USE_HEAP        0x80
#define BZ_TYPE_UNDEFINED      0xff    /* a boot loader without an assigned ID */
/* An alignment or init_size past these is not a kernel's, it is a corrupt header. */
#define BZ_MAX_ALIGNMENT       (1ull << 30)
#define BZ_MIN_ALIGNMENT       0x1000ull

/* ---- boot_params, "the zero page" (zero-page.rst) ---- */
#define BP_SIZE                0x1000
#define BP_ACPI_RSDP_ADDR      0x070
#define BP_EXT_RAMDISK_IMAGE   0x0c0
#define BP_EXT_RAMDISK_SIZE    0x0c4
#define BP_EXT_CMD_LINE_PTR    0x0c8
#define BP_E820_ENTRIES        0x1e8
#define BP_HEADER_LIMIT        0x290   /* edd_mbr_sig_buffer: the header copy stops before */
#define BP_E820_TABLE          0x2d0
#define BP_E820_ENTRY_SIZE     20
#define BP_E820_MAX            128

/* Where this loader puts its boot structures, inside the loaders' info area. */
#define LINUX_BOOT_PARAMS_GPA  LOADER_INFO_GPA
#define LINUX_BZ_CMDLINE_GPA   (LOADER_INFO_GPA + BP_SIZE)

/* ---- PVH (start_info.h; elfnote.h) ---- */
#define PVH_NOTE_PHYS32_ENTRY  18      /* XEN_ELFNOTE_PHYS32_ENTRY */
#define PVH_START_MAGIC        0x336ec578u
#define PVH_START_VERSION      1       /* the first with memmap_paddr/memmap_entries */
#define PVH_START_INFO_SIZE    56
#define PVH_MODLIST_ENTRY_SIZE 32
#define PVH_MEMMAP_ENTRY_SIZE  24
#define PVH_START_INFO_GPA     LOADER_INFO_GPA
#define PVH_MODLIST_GPA        (PVH_START_INFO_GPA + 0x40)
#define PVH_MEMMAP_GPA         (PVH_MODLIST_GPA + 0x40)
#define PVH_CMDLINE_GPA        (PVH_MEMMAP_GPA + 0x80)
#define ELF_PT_LOAD            1   /* gABI, "Program header table" */
#define ELF_PT_NOTE            4

#define LINUX_PAGE             0x1000ull
#define LINUX_4G               0x100000000ull

_Static_assert(PVH_MEMMAP_GPA - PVH_MODLIST_GPA >= PVH_MODLIST_ENTRY_SIZE, "modlist room");
_Static_assert(PVH_CMDLINE_GPA - PVH_MEMMAP_GPA >= LOADER_MAX_E820 * PVH_MEMMAP_ENTRY_SIZE, "memmap room");
_Static_assert(LINUX_BZ_CMDLINE_GPA < LOADER_INFO_END, "command line room");

static uint64_t lx_rd(const uint8_t *p, unsigned bytes)
{
    uint64_t v = 0;
    for (unsigned i = bytes; i-- > 0;)
        v = (v << 8) | p[i];
    return v;
}

/* Callers check the whole structure's range first; these then cannot fail. */
static void lx_put(const struct guest_ram *ram, uint64_t gpa, uint64_t v, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i++)
        ram->hva[gpa + i] = (uint8_t)(v >> (8 * i));
}

static size_t lx_strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

static bool lx_overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a < b + blen && b < a + alen;
}

/* Copies the command line (NUL included) to gpa, within [gpa, limit). */
static bool put_cmdline(const struct guest_ram *ram, const struct loader_file *kernel,
                        const char *cmdline, uint64_t gpa, uint64_t limit, uint64_t kernel_max,
                        struct loader_error *err)
{
    uint64_t len = lx_strlen(cmdline) + 1;
    if (len > limit - gpa || len > kernel_max) {
        loader_fail(err, "%s: the command line is %llu bytes, but this kernel takes at most %llu; "
                    "shorten it", kernel->name, (unsigned long long)(len - 1),
                    (unsigned long long)((limit - gpa < kernel_max ? limit - gpa : kernel_max) - 1));
        return false;
    }
    loader_write(ram, gpa, cmdline, len);
    return true;
}

/* The initrd goes page-aligned as high as the kernel allows, clear of [floor, ...):
 * kernels look for room to decompress or relocate below it, and placing it last
 * leaves them the most. */
static bool place_initrd(const struct guest_ram *ram, const struct loader_file *initrd,
                         uint64_t floor, uint64_t limit, uint64_t *gpa, struct loader_error *err)
{
    uint64_t top = ram->size < limit ? ram->size : limit;
    if (initrd->size == 0) {
        loader_fail(err, "initrd %s is empty; give a cpio archive or drop the initrd line", initrd->name);
        return false;
    }
    if (initrd->size > top || ((top - initrd->size) & ~(LINUX_PAGE - 1)) < floor) {
        loader_fail(err, "initrd %s (%llu KiB) does not fit between the kernel's end at %#llx and "
                    "%#llx (the end of RAM or of what the kernel can address); give the VM more "
                    "memory", initrd->name, (unsigned long long)(initrd->size >> 10),
                    (unsigned long long)floor, (unsigned long long)top);
        return false;
    }
    *gpa = (top - initrd->size) & ~(LINUX_PAGE - 1);
    return true;
}

/* ---------------------------------------------------------------- PVH ---- */

/* The value of the PVH entry note, if the ELF carries one: scans every PT_NOTE.
 * Returns false with err set only for a malformed file or note. */
static bool pvh_find_entry(const struct loader_file *f, bool *found, uint64_t *entry,
                           struct loader_error *err)
{
    const uint8_t *d = f->data;
    bool is64 = d[4] == 2;
    if (f->size < (is64 ? 64u : 52u)) {
        loader_fail(err, "%s: truncated ELF header", f->name);
        return false;
    }
    uint64_t phoff = is64 ? lx_rd(d + 32, 8) : lx_rd(d + 28, 4);
    uint64_t phentsize = lx_rd(d + (is64 ? 54 : 42), 2);
    uint64_t phnum = lx_rd(d + (is64 ? 56 : 44), 2);
    if (phentsize != (is64 ? 56u : 32u) || phoff > f->size || phnum * phentsize > f->size - phoff) {
        loader_fail(err, "%s: the ELF program header table is malformed or runs past the end "
                    "of the file", f->name);
        return false;
    }
    *found = false;
    unsigned loads = 0;
    for (uint64_t i = 0; i < phnum; i++) {
        const uint8_t *ph = d + phoff + i * phentsize;
        uint32_t type = (uint32_t)lx_rd(ph, 4);
        if (type == ELF_PT_LOAD && lx_rd(ph + (is64 ? 40 : 20), is64 ? 8 : 4) != 0)
            loads++;
        if (type != ELF_PT_NOTE)
            continue;
        uint64_t off = is64 ? lx_rd(ph + 8, 8) : lx_rd(ph + 4, 4);
        uint64_t len = is64 ? lx_rd(ph + 32, 8) : lx_rd(ph + 16, 4);
        if (off > f->size || len > f->size - off) {
            loader_fail(err, "%s: note segment %llu runs past the end of the file", f->name,
                        (unsigned long long)i);
            return false;
        }
        /* Notes: namesz, descsz, type, then name and descriptor, each padded to 4
         * bytes, the layout Linux and Xen use for ELF64 too. */
        uint64_t pos = 0;
        while (len - pos >= 12) {
            const uint8_t *n = d + off + pos;
            uint64_t namesz = lx_rd(n, 4), descsz = lx_rd(n + 4, 4);
            uint32_t ntype = (uint32_t)lx_rd(n + 8, 4);
            uint64_t name_pad = (namesz + 3) & ~3ull, desc_pad = (descsz + 3) & ~3ull;
            if (name_pad + desc_pad > len - pos - 12) {
                loader_fail(err, "%s: a note in note segment %llu runs past its segment", f->name,
                            (unsigned long long)i);
                return false;
            }
            const uint8_t *name = n + 12, *desc = n + 12 + name_pad;
            pos += 12 + name_pad + desc_pad;
            if (ntype != PVH_NOTE_PHYS32_ENTRY || namesz != 4 || name[0] != 'X' || name[1] != 'e' ||
                name[2] != 'n' || name[3] != 0)
                continue;
            if (descsz != 4 && descsz != 8) {
                loader_fail(err, "%s: the PVH entry note has a %llu-byte value; expected a 4- or "
                            "8-byte address", f->name, (unsigned long long)descsz);
                return false;
            }
            *entry = lx_rd(desc, (unsigned)descsz);
            *found = true;
        }
    }
    if (*found && loads > ELF_GUEST_MAX_SEGMENTS) {
        loader_fail(err, "%s: %u loadable segments; plinth loads at most %d", f->name, loads,
                    ELF_GUEST_MAX_SEGMENTS);
        return false;
    }
    return true;
}

/* A segment must lie in RAM the guest's memory map calls usable and clear of the
 * boot structures written after it. */
static bool pvh_segment_ok(const struct guest_ram *ram, const struct loader_file *kernel,
                           const struct elf_guest_segment *s, struct loader_error *err)
{
    struct loader_e820 map[LOADER_MAX_E820];
    unsigned n = loader_guest_e820(ram->size, map);
    bool usable = false;
    for (unsigned i = 0; i < n; i++)
        if (map[i].type == 1 && s->paddr >= map[i].base && s->paddr - map[i].base <= map[i].length &&
            s->memsz <= map[i].length - (s->paddr - map[i].base))
            usable = true;
    if (!usable) {
        loader_fail(err, "%s: segment %u at %#llx (+%#llx bytes) is not inside the VM's usable RAM "
                    "(%llu MiB, with %#llx-%#llx reserved for the BIOS area and ACPI tables); give "
                    "the VM more memory", kernel->name, s->index, (unsigned long long)s->paddr,
                    (unsigned long long)s->memsz, (unsigned long long)(ram->size >> 20),
                    LOADER_LOW_RAM_END, LOADER_HIGH_RAM_START);
        return false;
    }
    if (lx_overlaps(s->paddr, s->memsz, LOADER_PAGETABLE_GPA, LOADER_INFO_END - LOADER_PAGETABLE_GPA)) {
        loader_fail(err, "%s: segment %u at %#llx overlaps guest-physical %#llx-%#llx, where plinth "
                    "puts the boot information; link the kernel at 1 MiB or above", kernel->name,
                    s->index, (unsigned long long)s->paddr, LOADER_PAGETABLE_GPA, LOADER_INFO_END);
        return false;
    }
    return true;
}

static bool linux_pvh(const struct guest_ram *ram, const struct loader_file *kernel,
                      const struct loader_file *initrd, const char *cmdline, uint64_t rsdp_gpa,
                      uint64_t entry_addr, struct loader_entry *entry, struct loader_error *err)
{
    struct elf_guest elf;
    if (!elf_guest_parse(kernel, &elf, err))
        return false;
    bool entry_loaded = false;
    for (unsigned i = 0; i < elf.count; i++) {
        if (!pvh_segment_ok(ram, kernel, &elf.seg[i], err))
            return false;
        if (entry_addr >= elf.seg[i].paddr && entry_addr - elf.seg[i].paddr < elf.seg[i].filesz)
            entry_loaded = true;
    }
    /* The note holds a 32-bit physical address (start_info.h: entered in 32-bit
     * protected mode with paging off), so it must be inside what is loaded. */
    if (!entry_loaded || entry_addr >= LINUX_4G) {
        loader_fail(err, "%s: the PVH entry %#llx is not inside any loaded segment", kernel->name,
                    (unsigned long long)entry_addr);
        return false;
    }
    if (!loader_range_ok(ram, 0, LOADER_INFO_END)) {
        loader_fail(err, "%s: the VM's memory is too small for the boot information", kernel->name);
        return false;
    }
    uint64_t initrd_gpa = 0;
    if (initrd) {
        uint64_t floor = elf.end > LOADER_HIGH_RAM_START ? elf.end : LOADER_HIGH_RAM_START;
        floor = (floor + LINUX_PAGE - 1) & ~(LINUX_PAGE - 1);
        if (!place_initrd(ram, initrd, floor, LINUX_4G, &initrd_gpa, err))
            return false;
    }
    loader_zero(ram, LOADER_INFO_GPA, LOADER_INFO_END - LOADER_INFO_GPA);
    if (!put_cmdline(ram, kernel, cmdline, PVH_CMDLINE_GPA, LOADER_INFO_END, UINT64_MAX, err))
        return false;
    if (!elf_guest_load(ram, kernel, &elf, err))
        return false;
    if (initrd)
        loader_write(ram, initrd_gpa, initrd->data, initrd->size);
    struct loader_e820 map[LOADER_MAX_E820];
    unsigned n = loader_guest_e820(ram->size, map);
    for (unsigned i = 0; i < n; i++) {
        uint64_t e = PVH_MEMMAP_GPA + i * PVH_MEMMAP_ENTRY_SIZE;
        lx_put(ram, e, map[i].base, 8);
        lx_put(ram, e + 8, map[i].length, 8);
        lx_put(ram, e + 16, map[i].type, 4);   /* E820 types, as start_info.h says */
    }
    if (initrd) {
        lx_put(ram, PVH_MODLIST_GPA, initrd_gpa, 8);
        lx_put(ram, PVH_MODLIST_GPA + 8, initrd->size, 8);
    }
    const uint64_t si = PVH_START_INFO_GPA;
    lx_put(ram, si + 0, PVH_START_MAGIC, 4);
    lx_put(ram, si + 4, PVH_START_VERSION, 4);
    lx_put(ram, si + 8, 0, 4);                           /* flags: no SIF_* applies */
    lx_put(ram, si + 12, initrd ? 1 : 0, 4);             /* nr_modules */
    lx_put(ram, si + 16, initrd ? PVH_MODLIST_GPA : 0, 8);
    lx_put(ram, si + 24, PVH_CMDLINE_GPA, 8);
    lx_put(ram, si + 32, rsdp_gpa, 8);                   /* 0: not present */
    lx_put(ram, si + 40, PVH_MEMMAP_GPA, 8);
    lx_put(ram, si + 48, n, 4);
    *entry = (struct loader_entry){ .mode = LOADER_MODE_PROT32, .rip = entry_addr, .rbx = si };
    return true;
}

/* ------------------------------------------------------------- bzImage ---- */

struct bz_layout {
    uint64_t load;         /* where the protected-mode kernel's bytes go (code32_start) */
    uint64_t payload;      /* their size: syssize * 16 */
    uint64_t reserve_lo;   /* what the kernel may use while it decompresses and starts */
    uint64_t reserve_hi;
};

/* Tries one load address: the kernel's init_size from there must be RAM. */
static bool bz_fits(const struct guest_ram *ram, uint64_t base, uint64_t init_size)
{
    return base >= LOADER_HIGH_RAM_START && loader_range_ok(ram, base, init_size);
}

static bool linux_bzimage(const struct guest_ram *ram, const struct loader_file *kernel,
                          const struct loader_file *initrd, const char *cmdline, uint64_t rsdp_gpa,
                          struct loader_entry *entry, struct loader_error *err)
{
    const uint8_t *d = kernel->data;
    if (kernel->size < BZ_HEADER_MIN_END) {
        loader_fail(err, "%s: truncated bzImage: %llu bytes, shorter than its setup header (%#x)",
                    kernel->name, (unsigned long long)kernel->size, BZ_HEADER_MIN_END);
        return false;
    }
    uint64_t hdr_end = BZ_HEADER + (uint64_t)d[BZ_JUMP_OFFSET];
    uint16_t version = (uint16_t)lx_rd(d + BZ_VERSION, 2);
    if (version < BZ_MIN_VERSION) {
        loader_fail(err, "%s: boot protocol %u.%02u is too old; plinth needs 2.12 or later (Linux 3.8+)",
                    kernel->name, version >> 8, version & 0xff);
        return false;
    }
    if (hdr_end < BZ_HEADER_MIN_END || hdr_end > BP_HEADER_LIMIT || hdr_end > kernel->size ||
        lx_rd(d + BZ_BOOT_FLAG, 2) != BZ_BOOT_FLAG_MAGIC) {
        loader_fail(err, "%s: malformed setup header (boot_flag %#llx, header end %#llx; expected "
                    "0xaa55 and %#x-%#x)", kernel->name, (unsigned long long)lx_rd(d + BZ_BOOT_FLAG, 2),
                    (unsigned long long)hdr_end, BZ_HEADER_MIN_END, BP_HEADER_LIMIT);
        return false;
    }
    uint8_t loadflags = d[BZ_LOADFLAGS];
    if (!(loadflags & BZ_LOADED_HIGH)) {
        loader_fail(err, "%s: a zImage (loadflags bit LOADED_HIGH clear) loads below 1 MiB; plinth "
                    "loads bzImages only: build with `make bzImage`", kernel->name);
        return false;
    }
    /* boot.rst: setup_sects 0 means 4; the boot sector is one more. */
    uint64_t setup_sects = d[BZ_SETUP_SECTS] ? d[BZ_SETUP_SECTS] : 4;
    uint64_t setup_size = (setup_sects + 1) * 512;
    struct bz_layout l = { .payload = lx_rd(d + BZ_SYSSIZE, 4) * 16 };
    if (l.payload == 0 || setup_size + l.payload > kernel->size) {
        loader_fail(err, "%s: truncated bzImage: its header says %llu bytes (%llu of setup, %llu of "
                    "kernel), the file has %llu", kernel->name,
                    (unsigned long long)(setup_size + l.payload), (unsigned long long)setup_size,
                    (unsigned long long)l.payload, (unsigned long long)kernel->size);
        return false;
    }
    uint64_t align = lx_rd(d + BZ_KERNEL_ALIGNMENT, 4);
    bool relocatable = d[BZ_RELOCATABLE_KERNEL] != 0;
    uint64_t pref = lx_rd(d + BZ_PREF_ADDRESS, 8);
    uint64_t init_size = lx_rd(d + BZ_INIT_SIZE, 4);
    uint64_t initrd_max = lx_rd(d + BZ_INITRD_ADDR_MAX, 4);
    uint64_t cmdline_size = lx_rd(d + BZ_CMDLINE_SIZE, 4);
    if (relocatable && (align < BZ_MIN_ALIGNMENT || align > BZ_MAX_ALIGNMENT || (align & (align - 1)))) {
        loader_fail(err, "%s: kernel_alignment %#llx is not a power of two between 4 KiB and 1 GiB; "
                    "the header is corrupt", kernel->name, (unsigned long long)align);
        return false;
    }
    if (init_size < l.payload) {
        loader_fail(err, "%s: init_size %#llx is smaller than the kernel itself (%#llx bytes); the "
                    "header is corrupt", kernel->name, (unsigned long long)init_size,
                    (unsigned long long)l.payload);
        return false;
    }
    if (!loader_range_ok(ram, 0, LOADER_INFO_END)) {
        loader_fail(err, "%s: the VM's memory is too small for the boot information", kernel->name);
        return false;
    }

    /* boot.rst, "Loading the rest of the kernel": a relocatable kernel runs where it
     * is loaded, at a kernel_alignment multiple, best at pref_address; any other
     * loads at 1 MiB and moves itself to pref_address.  Either way init_size bytes
     * from where it runs are its own until it has started. */
    uint64_t initrd_limit = initrd_max + 1 < LINUX_4G ? initrd_max + 1 : LINUX_4G;
    uint64_t initrd_gpa = 0;
    if (relocatable) {
        uint64_t low = (LOADER_HIGH_RAM_START + align - 1) & ~(align - 1);
        uint64_t candidates[2] = { pref, low };
        bool placed = false, kernel_fits = false;
        for (unsigned i = 0; i < 2 && !placed; i++) {
            uint64_t base = candidates[i];
            if ((base & (align - 1)) || !bz_fits(ram, base, init_size))
                continue;
            kernel_fits = true;
            /* A lower address leaves more room above for the initrd. */
            if (initrd && !place_initrd(ram, initrd, base + init_size, initrd_limit, &initrd_gpa, err))
                continue;
            l.load = l.reserve_lo = base;
            l.reserve_hi = base + init_size;
            placed = true;
        }
        if (!placed) {
            if (kernel_fits)
                return false;   /* err says why the initrd does not fit */
            loader_fail(err, "%s: the kernel needs %llu MiB (init_size) from a %#llx-aligned address "
                        "at or above 1 MiB; the VM's %llu MiB cannot hold it: give it more memory",
                        kernel->name, (unsigned long long)((init_size + 0xfffff) >> 20),
                        (unsigned long long)align, (unsigned long long)(ram->size >> 20));
            return false;
        }
    } else {
        uint64_t run = pref ? pref : LOADER_HIGH_RAM_START;
        l.load = LOADER_HIGH_RAM_START;
        l.reserve_lo = run < l.load ? run : l.load;
        if (!bz_fits(ram, run, init_size) || !loader_range_ok(ram, l.load, l.payload)) {
            loader_fail(err, "%s: this non-relocatable kernel runs at %#llx and needs %llu MiB (init_size) "
                        "from there; the VM's %llu MiB cannot hold it: give it more memory",
                        kernel->name, (unsigned long long)run,
                        (unsigned long long)((init_size + 0xfffff) >> 20),
                        (unsigned long long)(ram->size >> 20));
            return false;
        }
        l.reserve_hi = run + init_size > l.load + l.payload ? run + init_size : l.load + l.payload;
        if (initrd && !place_initrd(ram, initrd, l.reserve_hi, initrd_limit, &initrd_gpa, err))
            return false;
    }
    if (initrd && initrd->size > UINT32_MAX) {
        loader_fail(err, "initrd %s is larger than 4 GiB", initrd->name);
        return false;
    }

    /* boot_params: zeroed (so its sentinel is 0 and Linux trusts every field), then
     * the file's own setup header at its offsets, then what the loader fills in. */
    const uint64_t bp = LINUX_BOOT_PARAMS_GPA;
    loader_zero(ram, LOADER_INFO_GPA, LOADER_INFO_END - LOADER_INFO_GPA);
    /* cmdline_size counts the characters without the terminating NUL (boot.rst). */
    if (!put_cmdline(ram, kernel, cmdline, LINUX_BZ_CMDLINE_GPA, LOADER_INFO_END, cmdline_size + 1, err))
        return false;
    loader_write(ram, l.load, d + setup_size, l.payload);
    if (initrd)
        loader_write(ram, initrd_gpa, initrd->data, initrd->size);
    loader_write(ram, bp + BZ_SETUP_SECTS, d + BZ_SETUP_SECTS, hdr_end - BZ_SETUP_SECTS);
    lx_put(ram, bp + BZ_TYPE_OF_LOADER, BZ_TYPE_UNDEFINED, 1);
    /* No heap: the real-mode setup code that would use it never runs. */
    lx_put(ram, bp + BZ_LOADFLAGS, loadflags & ~BZ_CAN_USE_HEAP, 1);
    lx_put(ram, bp + BZ_HEAP_END_PTR, 0, 2);
    lx_put(ram, bp + BZ_EXT_LOADER_VER, 0, 1);
    lx_put(ram, bp + BZ_EXT_LOADER_TYPE, 0, 1);
    lx_put(ram, bp + BZ_CODE32_START, l.load, 4);
    lx_put(ram, bp + BZ_RAMDISK_IMAGE, initrd_gpa, 4);
    lx_put(ram, bp + BZ_RAMDISK_SIZE, initrd ? initrd->size : 0, 4);
    lx_put(ram, bp + BZ_CMD_LINE_PTR, LINUX_BZ_CMDLINE_GPA, 4);
    lx_put(ram, bp + BZ_HARDWARE_SUBARCH, 0, 4);          /* a normal PC */
    lx_put(ram, bp + BZ_HARDWARE_SUBARCH_DATA, 0, 8);
    lx_put(ram, bp + BZ_SETUP_DATA, 0, 8);                /* no setup_data list */
    lx_put(ram, bp + BP_EXT_RAMDISK_IMAGE, 0, 4);
    lx_put(ram, bp + BP_EXT_RAMDISK_SIZE, 0, 4);
    lx_put(ram, bp + BP_EXT_CMD_LINE_PTR, 0, 4);
    /* Older kernels find the RSDP by scanning 0xe0000-0xfffff, where it is anyway. */
    if (version >= BZ_VERSION_RSDP)
        lx_put(ram, bp + BP_ACPI_RSDP_ADDR, rsdp_gpa, 8);
    struct loader_e820 map[LOADER_MAX_E820];
    unsigned n = loader_guest_e820(ram->size, map);
    _Static_assert(LOADER_MAX_E820 <= BP_E820_MAX, "e820 table room");
    for (unsigned i = 0; i < n; i++) {
        uint64_t e = bp + BP_E820_TABLE + i * BP_E820_ENTRY_SIZE;
        lx_put(ram, e, map[i].base, 8);
        lx_put(ram, e + 8, map[i].length, 8);
        lx_put(ram, e + 16, map[i].type, 4);
    }
    lx_put(ram, bp + BP_E820_ENTRIES, n, 1);
    /* boot.rst, "32-bit boot protocol": flat 4 GiB segments, paging and interrupts
     * off, %esi = boot_params, %ebp/%edi/%ebx zero; the kernel loads its own GDT
     * before it reloads a segment register. */
    *entry = (struct loader_entry){ .mode = LOADER_MODE_PROT32, .rip = l.load, .rsi = bp };
    return true;
}

bool loader_linux(const struct guest_ram *ram, const struct loader_file *kernel,
                  const struct loader_file *initrd, const char *cmdline, uint64_t rsdp_gpa,
                  struct loader_entry *entry, struct loader_error *err)
{
    const uint8_t *d = kernel->data;
    if (rsdp_gpa != 0 && !loader_range_ok(ram, rsdp_gpa, 1)) {
        loader_fail(err, "%s: the ACPI RSDP at %#llx is outside the VM's memory", kernel->name,
                    (unsigned long long)rsdp_gpa);
        return false;
    }
    if (kernel->size >= 4 && d[0] == 0x7f && d[1] == 'E' && d[2] == 'L' && d[3] == 'F') {
        bool found = false;
        uint64_t pvh_entry = 0;
        if (kernel->size < 5 || (d[4] != 1 && d[4] != 2)) {
            loader_fail(err, "%s: an ELF file of unknown class; give the kernel's bzImage, or the "
                        "vmlinux extracted from it", kernel->name);
            return false;
        }
        if (!pvh_find_entry(kernel, &found, &pvh_entry, err))
            return false;
        if (!found) {
            loader_fail(err, "%s: an ELF without the PVH entry note (Xen note type 18): a kernel "
                        "built without CONFIG_PVH; give its bzImage instead", kernel->name);
            return false;
        }
        return linux_pvh(ram, kernel, initrd, cmdline, rsdp_gpa, pvh_entry, entry, err);
    }
    if (kernel->size >= BZ_HEADER + 4 && lx_rd(d + BZ_HEADER, 4) == BZ_HDRS_MAGIC)
        return linux_bzimage(ram, kernel, initrd, cmdline, rsdp_gpa, entry, err);
    loader_fail(err, "%s: not a bzImage (no HdrS at 0x202) and not a vmlinux with a PVH entry note "
                "(found a %llu-byte file starting %02x %02x %02x %02x): give the kernel's bzImage, "
                "or the vmlinux extracted from it", kernel->name, (unsigned long long)kernel->size,
                kernel->size > 0 ? d[0] : 0, kernel->size > 1 ? d[1] : 0,
                kernel->size > 2 ? d[2] : 0, kernel->size > 3 ? d[3] : 0);
    return false;
}
