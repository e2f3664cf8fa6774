/* ELF32 and ELF64 guest kernels, loaded at their physical addresses (p_paddr). */
#include "vmm/loader/loader.h"
#include "vmm/loader/elf_guest.h"
#include "boot/elf64.h"

#define EM_386 3

static uint64_t rd(const uint8_t *p, unsigned bytes)
{
    uint64_t v = 0;
    for (unsigned i = bytes; i-- > 0;)
        v = (v << 8) | p[i];
    return v;
}

static bool load_segment(const struct guest_ram *ram, const struct loader_file *f,
                         const struct elf_guest_segment *s, struct loader_error *err)
{
    if (!loader_range_ok(ram, s->paddr, s->memsz)) {
        loader_fail(err, "%s: segment %u at %#lx (+%#lx bytes) lies outside the VM's %lu MiB; "
                    "give the VM more memory or link the kernel lower", f->name, s->index,
                    (unsigned long)s->paddr, (unsigned long)s->memsz, (unsigned long)(ram->size >> 20));
        return false;
    }
    if (s->paddr < 0x1000 || loader_in_hole(s->paddr, s->memsz)) {
        loader_fail(err, "%s: segment %u at %#lx (+%#lx bytes) lies in the first page or in the PC's "
                    "reserved area %#llx-%#llx (BIOS, VGA, ACPI tables); link the kernel elsewhere",
                    f->name, s->index, (unsigned long)s->paddr, (unsigned long)s->memsz,
                    LOADER_LOW_RAM_END, LOADER_HIGH_RAM_START);
        return false;
    }
    loader_write(ram, s->paddr, f->data + s->offset, s->filesz);
    loader_zero(ram, s->paddr + s->filesz, s->memsz - s->filesz);
    return true;
}

/* ELF32 (gABI, 32-bit layout): validated here, segments converted to the common form. */
static bool parse_elf32(const struct loader_file *f, struct elf_guest *out, struct loader_error *err)
{
    const uint8_t *d = f->data;
    if (d[5] != 1 || d[6] != 1 || rd(d + 20, 4) != 1) {
        loader_fail(err, "%s: not a little-endian ELF version 1 file", f->name);
        return false;
    }
    if (rd(d + 16, 2) != 2 || rd(d + 18, 2) != EM_386) {
        loader_fail(err, "%s: not an i386 ELF executable (type %lu, machine %lu)", f->name,
                    (unsigned long)rd(d + 16, 2), (unsigned long)rd(d + 18, 2));
        return false;
    }
    uint64_t phoff = rd(d + 28, 4), phentsize = rd(d + 42, 2), phnum = rd(d + 44, 2);
    if (phentsize != 32 || phnum == 0 || phnum > ELF_GUEST_MAX_SEGMENTS ||
        phoff > f->size || phnum * 32 > f->size - phoff) {
        loader_fail(err, "%s: the program header table is missing, malformed or runs past the "
                    "end of the file", f->name);
        return false;
    }
    out->entry = rd(d + 24, 4);
    for (unsigned i = 0; i < phnum; i++) {
        const uint8_t *ph = d + phoff + i * 32;
        if (rd(ph, 4) != ELF64_PT_LOAD || rd(ph + 20, 4) == 0)
            continue;
        struct elf_guest_segment s = {
            .index = i, .offset = rd(ph + 4, 4), .vaddr = rd(ph + 8, 4), .paddr = rd(ph + 12, 4),
            .filesz = rd(ph + 16, 4), .memsz = rd(ph + 20, 4),
        };
        if (s.filesz > s.memsz || s.offset + s.filesz > f->size) {
            loader_fail(err, "%s: segment %u is truncated or has file size > memory size", f->name, i);
            return false;
        }
        out->seg[out->count++] = s;
    }
    return true;
}

bool elf_guest_parse(const struct loader_file *f, struct elf_guest *out, struct loader_error *err)
{
    *out = (struct elf_guest){ 0 };
    if (f->size < 52 || f->data[0] != 0x7f || f->data[1] != 'E' || f->data[2] != 'L' || f->data[3] != 'F') {
        loader_fail(err, "%s: not an ELF file", f->name);
        return false;
    }
    if (f->data[4] == 1) {
        out->is64 = false;
        if (!parse_elf32(f, out, err))
            return false;
    } else if (f->data[4] == 2) {
        struct elf64_image img;
        if (elf64_parse(f->data, f->size, UINT64_MAX, &img) != ELF64_OK) {
            elf64_format_error(&img, f->name, err->message, sizeof err->message);
            return false;
        }
        out->is64 = true;
        out->entry = img.entry;
        struct elf64_segment s;
        unsigned cursor = 0;
        while (elf64_next_load(&img, &cursor, &s) && out->count < ELF_GUEST_MAX_SEGMENTS)
            out->seg[out->count++] = (struct elf_guest_segment){
                .index = s.index, .offset = s.offset, .vaddr = s.vaddr, .paddr = s.paddr,
                .filesz = s.filesz, .memsz = s.memsz,
            };
    } else {
        loader_fail(err, "%s: unknown ELF class %u", f->name, f->data[4]);
        return false;
    }
    if (out->count == 0) {
        loader_fail(err, "%s: no loadable segment", f->name);
        return false;
    }
    /* The entry point as a physical address: kernels linked high give a virtual
     * e_entry inside a segment whose p_paddr says where it really is. */
    out->entry_phys = out->entry;
    for (unsigned i = 0; i < out->count; i++) {
        const struct elf_guest_segment *s = &out->seg[i];
        if (out->entry >= s->vaddr && out->entry - s->vaddr < s->memsz) {
            out->entry_phys = s->paddr + (out->entry - s->vaddr);
            break;
        }
    }
    out->end = 0;
    for (unsigned i = 0; i < out->count; i++)
        if (out->seg[i].paddr + out->seg[i].memsz > out->end)
            out->end = out->seg[i].paddr + out->seg[i].memsz;
    return true;
}

bool elf_guest_load(const struct guest_ram *ram, const struct loader_file *f,
                    const struct elf_guest *elf, struct loader_error *err)
{
    for (unsigned i = 0; i < elf->count; i++)
        if (!load_segment(ram, f, &elf->seg[i], err))
            return false;
    return true;
}

unsigned elf_guest_ranges(const struct elf_guest *elf, struct loader_range *out, unsigned max)
{
    unsigned n = 0;
    for (unsigned i = 0; i < elf->count && n < max; i++)
        if (elf->seg[i].memsz)
            out[n++] = (struct loader_range){ elf->seg[i].paddr, elf->seg[i].paddr + elf->seg[i].memsz };
    return n;
}

/* Identity map of the first 4 GiB with 2 MiB pages (SDM Vol. 3A §5.5) at pml4: enough
 * for a 64-bit kernel to start; it builds its own tables after. */
static void build_identity_map(const struct guest_ram *ram, uint64_t pml4)
{
    const uint64_t pdpt = pml4 + 0x1000, pd = pml4 + 0x2000;
    loader_zero(ram, pml4, LOADER_PAGETABLE_SIZE);
    uint64_t e = pdpt | 0x3; /* present, writable */
    loader_write(ram, pml4, &e, 8);
    for (uint64_t i = 0; i < 4; i++) {
        e = (pd + i * 0x1000) | 0x3;
        loader_write(ram, pdpt + i * 8, &e, 8);
    }
    for (uint64_t i = 0; i < 4 * 512; i++) {
        e = (i << 21) | 0x83; /* present, writable, 2 MiB page */
        loader_write(ram, pd + i * 8, &e, 8);
    }
}

bool loader_elf(const struct guest_ram *ram, const struct loader_file *kernel,
                struct loader_entry *entry, struct loader_error *err)
{
    struct elf_guest elf;
    if (!elf_guest_parse(kernel, &elf, err) || !elf_guest_load(ram, kernel, &elf, err))
        return false;
    if (!loader_range_ok(ram, elf.entry_phys, 1)) {
        loader_fail(err, "%s: entry point %#lx is outside the VM's memory", kernel->name,
                    (unsigned long)elf.entry);
        return false;
    }
    *entry = (struct loader_entry){ .mode = LOADER_MODE_PROT32, .rip = elf.entry_phys };
    if (elf.is64) {
        struct loader_range used[ELF_GUEST_MAX_SEGMENTS];
        unsigned n = elf_guest_ranges(&elf, used, ELF_GUEST_MAX_SEGMENTS);
        uint64_t tables;
        if (!loader_place(ram, used, n, LOADER_PAGETABLE_GPA, LOADER_PAGETABLE_SIZE, 0x1000, &tables)) {
            loader_fail(err, "%s: no room left in the VM's memory for boot page tables", kernel->name);
            return false;
        }
        build_identity_map(ram, tables);
        entry->mode = LOADER_MODE_LONG64;
        entry->cr3 = tables;
    }
    return true;
}
