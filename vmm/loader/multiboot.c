/* Multiboot 1 (spec 0.6.96) and Multiboot2 (spec 2.0) kernels as guests. */
#include "vmm/loader/loader.h"
#include "vmm/loader/elf_guest.h"
#include "boot/multiboot2/mb2_spec.h"
#include "kernel/spinlock.h"

#define MB1_MAGIC        0x1BADB002u
#define MB1_BOOT_MAGIC   0x2BADB002u
#define MB1_SEARCH       8192
#define MB1_F_PAGE_ALIGN (1u << 0)
#define MB1_F_MEMINFO    (1u << 1)
#define MB1_F_VIDEO      (1u << 2)
#define MB1_F_ADDRESS    (1u << 16)

#define MB2_MAGIC        0xE85250D6u
#define MB2_BOOT_MAGIC   0x36d76289u
#define MB2_SEARCH       32768

/* Header tags (Multiboot2 §3.1.3-3.1.12) and information tags (§3.6). */
enum { MB2_HTAG_END = 0, MB2_HTAG_INFO_REQ = 1, MB2_HTAG_ADDRESS = 2, MB2_HTAG_ENTRY = 3,
       MB2_HTAG_CONSOLE = 4, MB2_HTAG_FRAMEBUFFER = 5, MB2_HTAG_MODALIGN = 6,
       MB2_HTAG_EFI_BS = 7, MB2_HTAG_ENTRY_EFI32 = 8, MB2_HTAG_ENTRY_EFI64 = 9,
       MB2_HTAG_RELOCATABLE = 10 };

static const char loader_name[] = "plinth";

static uint32_t mb_rd32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t mb_rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

/* The address fields both versions share (MB1 flags bit 16; MB2 address tag). */
struct mb_layout {
    bool     have_address;
    uint32_t header_offset;            /* of the header (MB1) or address tag's header (MB2) in the file */
    uint32_t header_addr, load_addr, load_end_addr, bss_end_addr;
    bool     have_entry;
    uint32_t entry_addr;
};

/* Builds the information structure in a scratch buffer, then copies it in once, at
 * base (LOADER_INFO_GPA unless the kernel lies there). */
struct info_buf {
    uint8_t  b[LOADER_INFO_END - LOADER_INFO_GPA];
    uint32_t len;
    bool     overflow;
    uint32_t base;
};

static uint32_t info_put(struct info_buf *ib, const void *src, uint32_t n, uint32_t align)
{
    uint32_t off = (ib->len + align - 1) & ~(align - 1);
    if (off + n > sizeof ib->b) {
        ib->overflow = true;
        return 0;
    }
    for (uint32_t i = ib->len; i < off; i++)
        ib->b[i] = 0;
    const uint8_t *s = src;
    for (uint32_t i = 0; i < n; i++)
        ib->b[off + i] = s ? s[i] : 0;
    ib->len = off + n;
    return off;
}

static uint32_t info_str(struct info_buf *ib, const char *s)
{
    uint32_t n = 0;
    while (s[n])
        n++;
    return ib->base + info_put(ib, s, n + 1, 1);
}

static void wr32(struct info_buf *ib, uint32_t off, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        ib->b[off + i] = (uint8_t)(v >> (8 * i));
}

static void wr64(struct info_buf *ib, uint32_t off, uint64_t v)
{
    wr32(ib, off, (uint32_t)v);
    wr32(ib, off + 4, (uint32_t)(v >> 32));
}

/* Loads the image by its address fields; returns what it occupies. */
static bool load_by_address(const struct guest_ram *ram, const struct loader_file *f,
                            const struct mb_layout *l, struct loader_range *used, struct loader_error *err)
{
    if (l->header_addr < l->load_addr || l->header_addr - l->load_addr > l->header_offset) {
        loader_fail(err, "%s: Multiboot address fields are inconsistent (header_addr %#x, load_addr %#x)",
                    f->name, l->header_addr, l->load_addr);
        return false;
    }
    uint64_t file_off = l->header_offset - (l->header_addr - l->load_addr);
    uint64_t load_end = l->load_end_addr ? l->load_end_addr : l->load_addr + (f->size - file_off);
    if (load_end < l->load_addr || load_end - l->load_addr > f->size - file_off) {
        loader_fail(err, "%s: Multiboot load_end_addr %#x lies past the end of the file", f->name,
                    l->load_end_addr);
        return false;
    }
    uint64_t bss_end = l->bss_end_addr ? l->bss_end_addr : load_end;
    if (bss_end < load_end) {
        loader_fail(err, "%s: Multiboot bss_end_addr %#x is below load_end_addr", f->name, l->bss_end_addr);
        return false;
    }
    if (!loader_range_ok(ram, l->load_addr, bss_end - l->load_addr)) {
        loader_fail(err, "%s: the kernel (%#x-%#lx) does not fit in the VM's %lu MiB; give it more memory",
                    f->name, l->load_addr, (unsigned long)bss_end, (unsigned long)(ram->size >> 20));
        return false;
    }
    if (l->load_addr < 0x1000 || loader_in_hole(l->load_addr, bss_end - l->load_addr)) {
        loader_fail(err, "%s: the kernel (%#x-%#lx) lies in the first page or in the PC's reserved area "
                    "%#llx-%#llx (BIOS, VGA, ACPI tables); load it elsewhere", f->name, l->load_addr,
                    (unsigned long)bss_end, LOADER_LOW_RAM_END, LOADER_HIGH_RAM_START);
        return false;
    }
    loader_write(ram, l->load_addr, f->data + file_off, load_end - l->load_addr);
    loader_zero(ram, load_end, bss_end - load_end);
    *used = (struct loader_range){ l->load_addr, bss_end };
    return true;
}

static bool find_mb1(const struct loader_file *f, struct mb_layout *l, uint32_t *flags)
{
    size_t lim = f->size < MB1_SEARCH ? f->size : MB1_SEARCH;
    for (size_t off = 0; off + 12 <= lim; off += 4) {
        const uint8_t *h = f->data + off;
        if (mb_rd32(h) != MB1_MAGIC || mb_rd32(h) + mb_rd32(h + 4) + mb_rd32(h + 8) != 0)
            continue;
        *flags = mb_rd32(h + 4);
        *l = (struct mb_layout){ .header_offset = (uint32_t)off };
        if ((*flags & MB1_F_ADDRESS) && off + 32 <= f->size) {
            l->have_address = l->have_entry = true;
            l->header_addr = mb_rd32(h + 12);
            l->load_addr = mb_rd32(h + 16);
            l->load_end_addr = mb_rd32(h + 20);
            l->bss_end_addr = mb_rd32(h + 24);
            l->entry_addr = mb_rd32(h + 28);
        }
        return true;
    }
    return false;
}

/* Finds and checks the MB2 header; false with err set when it is there but unusable. */
static bool find_mb2(const struct loader_file *f, struct mb_layout *l, bool *found, struct loader_error *err)
{
    size_t lim = f->size < MB2_SEARCH ? f->size : MB2_SEARCH;
    *found = false;
    for (size_t off = 0; off + 16 <= lim; off += 8) {
        const uint8_t *h = f->data + off;
        uint32_t len = mb_rd32(h + 8);
        if (mb_rd32(h) != MB2_MAGIC || mb_rd32(h) + mb_rd32(h + 4) + len + mb_rd32(h + 12) != 0)
            continue;
        *found = true;
        *l = (struct mb_layout){ 0 };
        if (mb_rd32(h + 4) != 0) {
            loader_fail(err, "%s: Multiboot2 header is for architecture %u; plinth boots i386 (0) kernels",
                        f->name, mb_rd32(h + 4));
            return false;
        }
        if (len < 16 || len > f->size - off) {
            loader_fail(err, "%s: Multiboot2 header length %u runs past the end of the file", f->name, len);
            return false;
        }
        for (uint32_t t = 16; t + 8 <= len;) {
            const uint8_t *tag = h + t;
            uint16_t type = mb_rd16(tag), tflags = mb_rd16(tag + 2);
            uint32_t size = mb_rd32(tag + 4);
            if (size < 8 || size > len - t) {
                loader_fail(err, "%s: Multiboot2 header tag at offset %u is malformed", f->name, t);
                return false;
            }
            bool optional = tflags & 1;
            switch (type) {
            case MB2_HTAG_END:
                return true;
            case MB2_HTAG_ADDRESS:
                if (size < 24)
                    break;
                l->have_address = true;
                l->header_offset = (uint32_t)off;
                l->header_addr = mb_rd32(tag + 8);
                l->load_addr = mb_rd32(tag + 12);
                l->load_end_addr = mb_rd32(tag + 16);
                l->bss_end_addr = mb_rd32(tag + 20);
                break;
            case MB2_HTAG_ENTRY:
                if (size < 12)
                    break;
                l->have_entry = true;
                l->entry_addr = mb_rd32(tag + 8);
                break;
            case MB2_HTAG_INFO_REQ:
                /* Plinth provides command line, loader name, modules, basic memory
                 * information and the memory map; other requests are refused unless
                 * optional (§3.1.4). */
                for (uint32_t i = 8; i + 4 <= size; i += 4) {
                    uint32_t want = mb_rd32(tag + i);
                    bool have = want == MB2_TAG_CMDLINE || want == MB2_TAG_LOADER_NAME || want == MB2_TAG_MODULE ||
                                want == MB2_TAG_MEMINFO || want == MB2_TAG_MMAP || want == MB2_TAG_END;
                    if (!have && !optional) {
                        loader_fail(err, "%s: the kernel requires Multiboot2 information tag %u, which "
                                    "plinth does not provide", f->name, want);
                        return false;
                    }
                }
                break;
            case MB2_HTAG_CONSOLE:
            case MB2_HTAG_MODALIGN:
            case MB2_HTAG_RELOCATABLE:
                break; /* satisfied as is: serial console, page-aligned modules, fixed address */
            default:
                if (!optional) {
                    loader_fail(err, "%s: the kernel requires Multiboot2 header tag %u (e.g. a framebuffer "
                                "or EFI entry), which plinth does not provide", f->name, type);
                    return false;
                }
                break;
            }
            t += (size + 7) & ~7u;
        }
        loader_fail(err, "%s: Multiboot2 header has no end tag", f->name);
        return false;
    }
    return true;
}

/* Places modules page-aligned from start (and never in the PC's hole below 1 MiB,
 * after a kernel linked low); fills each one's start. */
static bool place_modules(const struct guest_ram *ram, uint64_t start, const struct loader_file *mods,
                          unsigned n, uint64_t *mstart, struct loader_error *err)
{
    uint64_t at = (start + 0xfff) & ~0xfffull;
    if (at < LOADER_HIGH_RAM_START)
        at = LOADER_HIGH_RAM_START;
    for (unsigned i = 0; i < n; i++) {
        if (at + mods[i].size > 0xffffffffull || !loader_write(ram, at, mods[i].data, mods[i].size)) {
            loader_fail(err, "module %s (%lu bytes) does not fit in the VM's %lu MiB after the kernel; "
                        "give the VM more memory", mods[i].name, (unsigned long)mods[i].size,
                        (unsigned long)(ram->size >> 20));
            return false;
        }
        mstart[i] = at;
        at = (at + mods[i].size + 0xfff) & ~0xfffull;
    }
    return true;
}

static uint32_t mem_upper_kib(uint64_t ram_size)
{
    uint64_t top = ram_size > 0xffffffffull ? 0xffffffffull : ram_size;
    return top > LOADER_HIGH_RAM_START ? (uint32_t)((top - LOADER_HIGH_RAM_START) >> 10) : 0;
}

static bool build_mbi1(struct info_buf *ib, const struct guest_ram *ram, const struct loader_file *mods,
                       const uint64_t *mstart, unsigned n, const char *cmdline)
{
    /* Multiboot 1 §3.3: the fixed part is 88 bytes (through the VBE fields). */
    uint32_t mbi = info_put(ib, 0, 88, 8);
    uint32_t flags = (1u << 0) | (1u << 2) | (1u << 3) | (1u << 6) | (1u << 9);
    wr32(ib, mbi + 4, (uint32_t)(LOADER_LOW_RAM_END >> 10));
    wr32(ib, mbi + 8, mem_upper_kib(ram->size));
    wr32(ib, mbi + 16, info_str(ib, cmdline ? cmdline : ""));
    wr32(ib, mbi + 64, info_str(ib, loader_name));
    uint32_t names[CONFIG_MAX_MODULES_LOADER];
    for (unsigned i = 0; i < n; i++)
        names[i] = info_str(ib, mods[i].name);
    uint32_t modlist = info_put(ib, 0, 16 * n, 4);
    for (unsigned i = 0; i < n; i++) {
        wr32(ib, modlist + 16 * i, (uint32_t)mstart[i]);
        wr32(ib, modlist + 16 * i + 4, (uint32_t)(mstart[i] + mods[i].size));
        wr32(ib, modlist + 16 * i + 8, names[i]);
    }
    wr32(ib, mbi + 20, n);
    wr32(ib, mbi + 24, ib->base + modlist);
    struct loader_e820 e[LOADER_MAX_E820];
    unsigned ne = loader_guest_e820(ram->size, e);
    uint32_t mmap = info_put(ib, 0, 24 * ne, 4);
    for (unsigned i = 0; i < ne; i++) {
        wr32(ib, mmap + 24 * i, 20); /* size, not counting itself */
        wr64(ib, mmap + 24 * i + 4, e[i].base);
        wr64(ib, mmap + 24 * i + 12, e[i].length);
        wr32(ib, mmap + 24 * i + 20, e[i].type);
    }
    wr32(ib, mbi + 44, 24 * ne);
    wr32(ib, mbi + 48, ib->base + mmap);
    wr32(ib, mbi, flags);
    return !ib->overflow && mbi == 0;
}

static uint32_t tag_begin(struct info_buf *ib, uint32_t type)
{
    uint32_t off = info_put(ib, 0, 8, 8);
    wr32(ib, off, type);
    return off;
}

static void tag_end(struct info_buf *ib, uint32_t off)
{
    if (!ib->overflow)
        wr32(ib, off + 4, ib->len - off);
}

static void tag_string(struct info_buf *ib, uint32_t type, const char *s)
{
    uint32_t t = tag_begin(ib, type);
    uint32_t n = 0;
    while (s[n])
        n++;
    info_put(ib, s, n + 1, 1);
    tag_end(ib, t);
}

static bool build_mbi2(struct info_buf *ib, const struct guest_ram *ram, const struct loader_file *mods,
                       const uint64_t *mstart, unsigned n, const char *cmdline)
{
    uint32_t mbi = info_put(ib, 0, 8, 8);
    tag_string(ib, MB2_TAG_CMDLINE, cmdline ? cmdline : "");
    tag_string(ib, MB2_TAG_LOADER_NAME, loader_name);
    uint32_t t = tag_begin(ib, MB2_TAG_MEMINFO);
    uint32_t v = info_put(ib, 0, 8, 4);
    if (!ib->overflow) {
        wr32(ib, v, (uint32_t)(LOADER_LOW_RAM_END >> 10));
        wr32(ib, v + 4, mem_upper_kib(ram->size));
    }
    tag_end(ib, t);
    struct loader_e820 e[LOADER_MAX_E820];
    unsigned ne = loader_guest_e820(ram->size, e);
    t = tag_begin(ib, MB2_TAG_MMAP);
    uint32_t h = info_put(ib, 0, 8, 4);
    uint32_t ents = info_put(ib, 0, 24 * ne, 4);
    if (!ib->overflow) {
        wr32(ib, h, 24);    /* entry_size */
        wr32(ib, h + 4, 0); /* entry_version */
        for (unsigned i = 0; i < ne; i++) {
            wr64(ib, ents + 24 * i, e[i].base);
            wr64(ib, ents + 24 * i + 8, e[i].length);
            wr32(ib, ents + 24 * i + 16, e[i].type);
        }
    }
    tag_end(ib, t);
    for (unsigned i = 0; i < n; i++) {
        t = tag_begin(ib, MB2_TAG_MODULE);
        uint32_t m = info_put(ib, 0, 8, 4);
        if (!ib->overflow) {
            wr32(ib, m, (uint32_t)mstart[i]);
            wr32(ib, m + 4, (uint32_t)(mstart[i] + mods[i].size));
        }
        uint32_t len = 0;
        while (mods[i].name[len])
            len++;
        info_put(ib, mods[i].name, len + 1, 1);
        tag_end(ib, t);
    }
    t = tag_begin(ib, MB2_TAG_END);
    tag_end(ib, t);
    if (ib->overflow)
        return false;
    wr32(ib, mbi, ib->len);
    wr32(ib, mbi + 4, 0);
    return mbi == 0;
}

bool loader_multiboot(const struct guest_ram *ram, const struct loader_file *kernel,
                      const struct loader_file *modules, unsigned module_count,
                      const char *cmdline, struct loader_entry *entry,
                      struct loader_error *err)
{
    struct mb_layout l;
    uint32_t mb1_flags = 0;
    bool mb2;
    if (module_count > CONFIG_MAX_MODULES_LOADER) {
        loader_fail(err, "%s: more than %d modules", kernel->name, CONFIG_MAX_MODULES_LOADER);
        return false;
    }
    if (!find_mb2(kernel, &l, &mb2, err))
        return false;
    if (!mb2 && !find_mb1(kernel, &l, &mb1_flags)) {
        loader_fail(err, "%s: no Multiboot header (Multiboot2 in the first 32 KiB or Multiboot 1 in "
                    "the first 8 KiB); for a plain ELF kernel use loader = elf", kernel->name);
        return false;
    }
    if (!mb2 && (mb1_flags & 0xffff & ~(MB1_F_PAGE_ALIGN | MB1_F_MEMINFO))) {
        loader_fail(err, "%s: the Multiboot header requires features plinth does not provide "
                    "(flags %#x; e.g. bit 2, a video mode)", kernel->name, mb1_flags);
        return false;
    }
    /* What the kernel and its modules occupy, so that the boot information goes
     * elsewhere (a kernel may be linked at LOADER_INFO_GPA itself). */
    struct loader_range used[ELF_GUEST_MAX_SEGMENTS + CONFIG_MAX_MODULES_LOADER];
    unsigned nused = 0;
    uint64_t end, entry_addr;
    if (l.have_address) {
        if (!load_by_address(ram, kernel, &l, &used[0], err))
            return false;
        nused = 1;
        end = used[0].end;
        entry_addr = l.entry_addr;
        if (!l.have_entry) {
            loader_fail(err, "%s: the Multiboot2 header has an address tag but no entry address tag",
                        kernel->name);
            return false;
        }
    } else {
        struct elf_guest elf;
        if (!elf_guest_parse(kernel, &elf, err) || !elf_guest_load(ram, kernel, &elf, err))
            return false;
        nused = elf_guest_ranges(&elf, used, ELF_GUEST_MAX_SEGMENTS);
        end = elf.end;
        entry_addr = l.have_entry ? l.entry_addr : elf.entry_phys;
    }
    if (!loader_range_ok(ram, entry_addr, 1)) {
        loader_fail(err, "%s: entry point %#lx is outside the VM's memory", kernel->name,
                    (unsigned long)entry_addr);
        return false;
    }

    uint64_t mstart[CONFIG_MAX_MODULES_LOADER];
    if (!place_modules(ram, end, modules, module_count, mstart, err))
        return false;
    for (unsigned i = 0; i < module_count; i++)
        used[nused++] = (struct loader_range){ mstart[i], mstart[i] + modules[i].size };
    uint64_t info_gpa;
    if (!loader_place(ram, used, nused, LOADER_INFO_GPA, LOADER_INFO_END - LOADER_INFO_GPA, 0x1000, &info_gpa)) {
        loader_fail(err, "%s: no room left in the VM's memory for the boot information; give it more memory",
                    kernel->name);
        return false;
    }

    /* 8 KiB: too large for a core stack, so one buffer, which VMs restarting on
     * different CPUs at once take in turn. */
    static struct info_buf ib;
    static struct spinlock ib_lock = SPINLOCK_INIT;
    spin_lock(&ib_lock);
    ib.len = 0;
    ib.overflow = false;
    ib.base = (uint32_t)info_gpa;
    bool ok = mb2 ? build_mbi2(&ib, ram, modules, mstart, module_count, cmdline)
                  : build_mbi1(&ib, ram, modules, mstart, module_count, cmdline);
    if (ok)
        loader_write(ram, info_gpa, ib.b, ib.len);
    spin_unlock(&ib_lock);
    if (!ok) {
        loader_fail(err, "%s: the command line and module names do not fit the %llu bytes of "
                    "boot information; shorten them", kernel->name, LOADER_INFO_END - LOADER_INFO_GPA);
        return false;
    }
    *entry = (struct loader_entry){
        .mode = LOADER_MODE_PROT32, .rip = entry_addr,
        .rax = mb2 ? MB2_BOOT_MAGIC : MB1_BOOT_MAGIC, .rbx = info_gpa,
    };
    return true;
}
