/* BOOTX64.EFI: plinth's UEFI boot path (gnu-efi).  Loads plinth.elf, plinth.cfg and
 * the files the config names from its own volume, collects the ACPI RSDP and the GOP
 * framebuffer, builds the core's page tables, exits boot services and enters
 * kernel_entry64 with the hand-off of boot/bootinfo.h.
 *
 * Every failure before ExitBootServices prints "plinth: <what>: <why>. <fix>" on the
 * console (OVMF mirrors it to the serial port) and waits for a key; nothing jumps
 * into an image that has not been validated. */
#include <efi.h>
#include <efilib.h>

#include "boot/bootinfo.h"
#include "boot/elf64.h"
#include "boot/efi/efi_cfg.h"
#include "boot/efi/efi_firmware.h"
#include "boot/efi/efi_mmap.h"
#include "boot/efi/efi_pagetable.h"

#define LOADER_NAME        "plinth BOOTX64.EFI"
#define LOADER_ELF_PATH    "plinth.elf"
#define LOADER_CFG_PATH    "plinth.cfg"
#define LOADER_REBUILD     "Rebuild the USB image with `make` (tools/mkusb) and write it again"
/* The core is linked in the top 2 GiB (-mcmodel=kernel); 1 GiB is far more than
 * it needs and keeps KERNEL_VMA + KERNEL_LMA + span clear of the top. */
#define LOADER_KERNEL_MAX  (1ull << 30)
#define LOADER_HEADER_SCAN (64u << 10)
#define LOADER_BELOW_4G    0xFFFFFFFFull
#define LOADER_PATH_MAX    (BOOTINFO_NAME_MAX + 2)

/* CR4.LA57, Intel SDM Vol. 3A §2.5: 5-level paging, which the tables here are not. */
#define LOADER_CR4_LA57    (1ull << 12)
/* COM1's transmit-holding and line-status registers (16550 datasheet), for the one
 * message that can come after boot services are gone. */
#define LOADER_COM1        0x3F8
#define LOADER_COM1_LSR    (LOADER_COM1 + 5)
#define LOADER_LSR_THRE    0x20

struct loader {
    EFI_HANDLE         image;
    EFI_LOADED_IMAGE  *loaded_image;
    EFI_FILE_HANDLE    root;
    struct bootinfo   *bi;
    UINT64             kernel_phys;    /* where link address KERNEL_LMA was loaded */
    UINT64             kernel_span;    /* bytes of the image from kernel_phys */
    UINT64             entry64;        /* link address of kernel_entry64 */
    UINT64             gdt_phys;       /* the GDT the core starts on */
    struct efi_pt      pt;
};

/* ---- failure reporting ------------------------------------------------------ */

/* Waits for a key (or forever without a console) and hands st back to return to
 * the firmware, which then tries its next boot option. */
static EFI_STATUS loader_wait(EFI_STATUS st)
{
    Print(L"plinth: press any key to return to the firmware.\n");
    if (ST->ConIn) {
        EFI_INPUT_KEY key;
        WaitForSingleEvent(ST->ConIn->WaitForKey, 0);
        ST->ConIn->ReadKeyStroke(ST->ConIn, &key);
    } else {
        for (;;)
            BS->Stall(1000000);
    }
    return st;
}

#define LOADER_FAIL(st, fmt, ...) \
    (Print(L"plinth: " fmt L"\n", ##__VA_ARGS__), loader_wait(st))

static void loader_com1_puts(const char *s)
{
    for (; *s; s++) {
        UINT8 lsr;
        do
            __asm__ volatile("inb %1, %0" : "=a"(lsr) : "Nd"((UINT16)LOADER_COM1_LSR));
        while (!(lsr & LOADER_LSR_THRE));
        __asm__ volatile("outb %0, %1" : : "a"((UINT8)*s), "Nd"((UINT16)LOADER_COM1));
    }
}

static void __attribute__((noreturn)) loader_halt(void)
{
    for (;;)
        __asm__ volatile("cli; hlt");
}

/* ---- small helpers ---------------------------------------------------------- */

static void loader_strcpy(char *dst, const char *src, UINTN size)
{
    UINTN i = 0;
    for (; src[i] && i + 1 < size; i++)
        dst[i] = src[i];
    dst[i] = '\0';
}

static BOOLEAN loader_streq(const char *a, const char *b)
{
    while (*a && *a == *b) {
        a++;
        b++;
    }
    return *a == *b;
}

static BOOLEAN loader_guid_eq(const EFI_GUID *a, const EFI_GUID *b)
{
    const UINT8 *x = (const UINT8 *)a, *y = (const UINT8 *)b;
    for (UINTN i = 0; i < sizeof(EFI_GUID); i++)
        if (x[i] != y[i])
            return FALSE;
    return TRUE;
}

static UINT64 loader_pages(UINT64 bytes)
{
    return (bytes + EFI_PAGE_SIZE - 1) / EFI_PAGE_SIZE;
}

/* EfiLoaderData pages, below 4 GiB where possible (the core's first page tables
 * may reach no further), anywhere otherwise. */
static EFI_STATUS loader_alloc(UINT64 bytes, UINT64 *phys)
{
    UINTN pages = loader_pages(bytes ? bytes : 1);
    EFI_PHYSICAL_ADDRESS a = LOADER_BELOW_4G;
    EFI_STATUS st = BS->AllocatePages(AllocateMaxAddress, EfiLoaderData, pages, &a);
    if (EFI_ERROR(st))
        st = BS->AllocatePages(AllocateAnyPages, EfiLoaderData, pages, &a);
    if (!EFI_ERROR(st))
        *phys = a;
    return st;
}

/* ---- files on our own volume ------------------------------------------------- */

static EFI_STATUS loader_open_volume(struct loader *l)
{
    EFI_SIMPLE_FILE_SYSTEM_PROTOCOL *fs;
    EFI_STATUS st = BS->HandleProtocol(l->image, &LoadedImageProtocol,
                                       (void **)&l->loaded_image);
    if (EFI_ERROR(st))
        return LOADER_FAIL(st, L"cannot find which volume BOOTX64.EFI was started from: "
                           L"LoadedImage protocol: %r. The firmware is not UEFI-conformant; "
                           L"start plinth through GRUB (plinth.iso) instead", st);
    st = BS->HandleProtocol(l->loaded_image->DeviceHandle, &FileSystemProtocol, (void **)&fs);
    if (EFI_ERROR(st))
        return LOADER_FAIL(st, L"cannot read the boot volume: no FAT file system on it "
                           L"(%r). %a", st, LOADER_REBUILD);
    st = fs->OpenVolume(fs, &l->root);
    if (EFI_ERROR(st))
        return LOADER_FAIL(st, L"cannot open the boot volume's root directory: %r. %a",
                           st, LOADER_REBUILD);
    return EFI_SUCCESS;
}

/* Reads path (relative to the volume root, '/' separators) into fresh EfiLoaderData
 * pages.  On failure prints nothing and returns the status, with *why set to a
 * reason for the caller's message. */
static EFI_STATUS loader_read_file(struct loader *l, const char *path, UINT64 *phys,
                                   UINT64 *size, const char **why)
{
    CHAR16 path16[LOADER_PATH_MAX];
    UINTN n = 0;
    path16[n++] = L'\\';
    for (const char *p = path; *p && n + 1 < LOADER_PATH_MAX; p++)
        path16[n++] = *p == '/' ? L'\\' : (CHAR16)(UINT8)*p;
    path16[n] = 0;

    EFI_FILE_HANDLE fh;
    EFI_STATUS st = l->root->Open(l->root, &fh, path16, EFI_FILE_MODE_READ, 0);
    if (EFI_ERROR(st)) {
        *why = st == EFI_NOT_FOUND ? "not found on the boot volume" : "cannot be opened";
        return st;
    }
    EFI_FILE_INFO *info = LibFileInfo(fh);
    if (!info) {
        fh->Close(fh);
        *why = "its size cannot be read";
        return EFI_DEVICE_ERROR;
    }
    UINT64 file_size = info->FileSize;
    BOOLEAN is_dir = (info->Attribute & EFI_FILE_DIRECTORY) != 0;
    FreePool(info);
    if (is_dir) {
        fh->Close(fh);
        *why = "is a directory, not a file";
        return EFI_INVALID_PARAMETER;
    }

    UINT64 buf;
    st = loader_alloc(file_size, &buf);
    if (EFI_ERROR(st)) {
        fh->Close(fh);
        *why = "there is not enough free memory to hold it";
        return st;
    }
    UINT64 done = 0;
    while (done < file_size) {
        UINTN chunk = file_size - done;
        st = fh->Read(fh, &chunk, (void *)(UINTN)(buf + done));
        if (EFI_ERROR(st) || chunk == 0) {
            BS->FreePages(buf, loader_pages(file_size ? file_size : 1));
            fh->Close(fh);
            *why = EFI_ERROR(st) ? "reading it failed" : "it ended before its stated size";
            return EFI_ERROR(st) ? st : EFI_END_OF_FILE;
        }
        done += chunk;
    }
    fh->Close(fh);
    *phys = buf;
    *size = file_size;
    return EFI_SUCCESS;
}

static EFI_STATUS loader_add_module(struct loader *l, const char *name, UINT64 phys,
                                    UINT64 size)
{
    struct bootinfo *bi = l->bi;
    if (bi->module_count == BOOTINFO_MAX_MODULES)
        return LOADER_FAIL(EFI_OUT_OF_RESOURCES, L"cannot hand over %a: plinth.cfg names "
                           L"more than %d files. Remove some from plinth.cfg",
                           name, BOOTINFO_MAX_MODULES - 1);
    struct bootinfo_module *m = &bi->modules[bi->module_count++];
    m->phys = phys;
    m->size = size;
    loader_strcpy(m->name, name, sizeof m->name);
    return EFI_SUCCESS;
}

/* plinth.cfg (required) and every file it names, as modules named by their path. */
static EFI_STATUS loader_load_config(struct loader *l)
{
    UINT64 phys, size;
    const char *why;
    EFI_STATUS st = loader_read_file(l, LOADER_CFG_PATH, &phys, &size, &why);
    if (EFI_ERROR(st))
        return LOADER_FAIL(st, L"cannot load \\%a: %a (%r). plinth needs its configuration "
                           L"next to plinth.elf; %a", LOADER_CFG_PATH, why, st, LOADER_REBUILD);
    st = loader_add_module(l, LOADER_CFG_PATH, phys, size);
    if (EFI_ERROR(st))
        return st;

    struct efi_cfg_iter it;
    struct efi_cfg_file f;
    enum efi_cfg_status cs;
    efi_cfg_begin(&it, (const char *)(UINTN)phys, size);
    while ((cs = efi_cfg_next_file(&it, &f)) != EFI_CFG_END) {
        if (cs == EFI_CFG_ERR_LONG)
            return LOADER_FAIL(EFI_INVALID_PARAMETER, L"plinth.cfg line %d: the path given "
                               L"for `%a` is longer than %d characters. Move the file to a "
                               L"shorter path", f.line, f.key, BOOTINFO_NAME_MAX - 1);
        if (cs == EFI_CFG_ERR_CHAR)
            return LOADER_FAIL(EFI_INVALID_PARAMETER, L"plinth.cfg line %d: the path given "
                               L"for `%a` holds a character that is not printable ASCII. "
                               L"Rename the file", f.line, f.key);
        BOOLEAN seen = FALSE;
        for (UINT32 i = 0; i < l->bi->module_count; i++)
            if (loader_streq(l->bi->modules[i].name, f.path))
                seen = TRUE;
        if (seen)
            continue;
        UINT64 fphys, fsize;
        st = loader_read_file(l, f.path, &fphys, &fsize, &why);
        if (EFI_ERROR(st))
            return LOADER_FAIL(st, L"cannot load %a, named by plinth.cfg line %d "
                               L"(`%a = %a`): %a (%r). Put the file on the boot volume "
                               L"(tools/mkusb copies every file plinth.cfg names) or fix "
                               L"plinth.cfg", f.path, f.line, f.key, f.path, why, st);
        st = loader_add_module(l, f.path, fphys, fsize);
        if (EFI_ERROR(st))
            return st;
    }
    return EFI_SUCCESS;
}

/* ---- the core image ---------------------------------------------------------- */

static EFI_STATUS loader_bad_kernel(const char *why)
{
    return LOADER_FAIL(EFI_LOAD_ERROR, L"cannot start \\plinth.elf: %a. BOOTX64.EFI and "
                       L"plinth.elf must come from the same build; %a", why, LOADER_REBUILD);
}

/* The plinth_header in the first 64 KiB of the loaded image (8-byte aligned). */
static EFI_STATUS loader_find_header(struct loader *l, const struct elf64_image *elf)
{
    UINT64 scan = l->kernel_span < LOADER_HEADER_SCAN ? l->kernel_span : LOADER_HEADER_SCAN;
    const struct plinth_header *h = NULL;
    for (UINT64 off = 0; off + sizeof *h <= scan; off += 8) {
        const struct plinth_header *c = (const void *)(UINTN)(l->kernel_phys + off);
        if (c->magic == PLINTH_HEADER_MAGIC) {
            h = c;
            break;
        }
    }
    if (!h)
        return loader_bad_kernel("it has no plinth header (PLINTH_HEADER_MAGIC) in its "
                                 "first 64 KiB, so it is not a plinth core");
    if (h->kernel_vma != KERNEL_VMA || h->kernel_lma != KERNEL_LMA)
        return loader_bad_kernel("its plinth header gives a link address other than "
                                 "KERNEL_VMA + KERNEL_LMA");
    struct elf64_segment seg;
    if (!elf64_find_vaddr(elf, h->entry64, &seg) || !(seg.flags & ELF64_PF_X))
        return loader_bad_kernel("its entry point (plinth header entry64) is not inside "
                                 "an executable segment");
    if (h->entry64 - (KERNEL_VMA + KERNEL_LMA) >= l->kernel_span)
        return loader_bad_kernel("its entry point lies outside the loaded image");
    l->entry64 = h->entry64;
    return EFI_SUCCESS;
}

static EFI_STATUS loader_load_kernel(struct loader *l)
{
    UINT64 file_phys, file_size;
    const char *why;
    EFI_STATUS st = loader_read_file(l, LOADER_ELF_PATH, &file_phys, &file_size, &why);
    if (EFI_ERROR(st))
        return LOADER_FAIL(st, L"cannot load \\plinth.elf: %a (%r). %a", why, st,
                           LOADER_REBUILD);

    struct elf64_image elf;
    if (elf64_parse((const void *)(UINTN)file_phys, file_size, LOADER_KERNEL_MAX, &elf)
        != ELF64_OK) {
        char msg[160];
        elf64_format_error(&elf, "plinth.elf", msg, sizeof msg);
        return LOADER_FAIL(EFI_LOAD_ERROR, L"cannot start \\plinth.elf: %a. %a", msg,
                           LOADER_REBUILD);
    }
    if (elf.paddr_lo != KERNEL_LMA)
        return loader_bad_kernel("its lowest load address is not KERNEL_LMA (0x200000)");

    /* 2 MiB aligned, so that the core's link range maps onto it with 2 MiB pages:
     * over-allocate by 2 MiB - 4 KiB and give back the slack on both sides. */
    l->kernel_span = elf.paddr_hi - elf.paddr_lo;
    UINT64 pages = loader_pages(l->kernel_span);
    UINT64 slack = EFI_PT_LARGE / EFI_PAGE_SIZE - 1;
    EFI_PHYSICAL_ADDRESS raw = LOADER_BELOW_4G;
    st = BS->AllocatePages(AllocateMaxAddress, EfiLoaderData, pages + slack, &raw);
    if (EFI_ERROR(st))
        return LOADER_FAIL(st, L"cannot place \\plinth.elf: no %ld KiB of free memory "
                           L"below 4 GiB (%r). Give the machine more memory",
                           (pages + slack) * 4, st);
    UINT64 base = (raw + EFI_PT_LARGE - 1) & ~(EFI_PT_LARGE - 1);
    UINT64 head = (base - raw) / EFI_PAGE_SIZE;
    if (head)
        BS->FreePages(raw, head);
    if (slack - head)
        BS->FreePages(base + pages * EFI_PAGE_SIZE, slack - head);
    l->kernel_phys = base;

    /* Gaps between segments and every bss are zero. */
    SetMem((void *)(UINTN)base, pages * EFI_PAGE_SIZE, 0);
    struct elf64_segment seg;
    unsigned cursor = 0;
    while (elf64_next_load(&elf, &cursor, &seg))
        CopyMem((void *)(UINTN)(base + (seg.paddr - elf.paddr_lo)),
                (const void *)(UINTN)(file_phys + seg.offset), seg.filesz);

    st = loader_find_header(l, &elf);
    BS->FreePages(file_phys, loader_pages(file_size ? file_size : 1));
    return st;
}

/* ---- firmware facts ------------------------------------------------------------ */

static EFI_STATUS loader_find_rsdp(struct loader *l)
{
    static EFI_GUID acpi20 = ACPI_20_TABLE_GUID;
    static EFI_GUID acpi10 = ACPI_TABLE_GUID;
    EFI_GUID *order[2] = { &acpi20, &acpi10 };

    for (UINTN g = 0; g < 2; g++) {
        for (UINTN i = 0; i < ST->NumberOfTableEntries; i++) {
            EFI_CONFIGURATION_TABLE *t = &ST->ConfigurationTable[i];
            if (!loader_guid_eq(&t->VendorGuid, order[g]) || !t->VendorTable)
                continue;
            const UINT8 *r = t->VendorTable;
            UINT32 len = efi_rsdp_len(r);
            if (len == 0)
                continue;
            CopyMem(l->bi->rsdp, (void *)r, len);
            l->bi->rsdp_len = len;
            return EFI_SUCCESS;
        }
    }
    return LOADER_FAIL(EFI_NOT_FOUND, L"no ACPI tables: the firmware's configuration "
                       L"table has no valid ACPI RSDP. plinth needs ACPI to find the CPUs "
                       L"and interrupt controllers; enable ACPI in the firmware setup");
}

/* The current GOP mode, if there is a linear framebuffer; none is fine. */
static void loader_find_framebuffer(struct loader *l)
{
    EFI_GRAPHICS_OUTPUT_PROTOCOL *gop;
    struct bootinfo_framebuffer *fb = &l->bi->fb;

    if (EFI_ERROR(BS->LocateProtocol(&GraphicsOutputProtocol, NULL, (void **)&gop)) ||
        !gop || !gop->Mode || !gop->Mode->Info || !gop->Mode->FrameBufferBase)
        return;
    const EFI_GRAPHICS_OUTPUT_MODE_INFORMATION *info = gop->Mode->Info;
    UINT32 bpp = 32;
    if (info->HorizontalResolution == 0 || info->VerticalResolution == 0 ||
        info->PixelsPerScanLine < info->HorizontalResolution)
        return;
    switch (info->PixelFormat) {
    case PixelRedGreenBlueReserved8BitPerColor:
        fb->red_pos = 0;
        fb->green_pos = 8;
        fb->blue_pos = 16;
        fb->red_size = fb->green_size = fb->blue_size = 8;
        break;
    case PixelBlueGreenRedReserved8BitPerColor:
        fb->blue_pos = 0;
        fb->green_pos = 8;
        fb->red_pos = 16;
        fb->red_size = fb->green_size = fb->blue_size = 8;
        break;
    case PixelBitMask:
        fb->red_pos = efi_mask_pos(info->PixelInformation.RedMask);
        fb->red_size = efi_mask_size(info->PixelInformation.RedMask);
        fb->green_pos = efi_mask_pos(info->PixelInformation.GreenMask);
        fb->green_size = efi_mask_size(info->PixelInformation.GreenMask);
        fb->blue_pos = efi_mask_pos(info->PixelInformation.BlueMask);
        fb->blue_size = efi_mask_size(info->PixelInformation.BlueMask);
        bpp = efi_mask_bpp(info->PixelInformation.RedMask | info->PixelInformation.GreenMask |
                           info->PixelInformation.BlueMask |
                           info->PixelInformation.ReservedMask);
        break;
    default:
        /* PixelBltOnly: no linear framebuffer to hand over. */
        return;
    }
    fb->phys = gop->Mode->FrameBufferBase;
    fb->width = info->HorizontalResolution;
    fb->height = info->VerticalResolution;
    /* The two fixed formats are 32 bits per pixel (UEFI 2.10 §12.9); a bit-mask
     * format is as wide as its highest mask bit. */
    fb->pitch = info->PixelsPerScanLine * (bpp / 8);
    fb->bpp = (UINT8)bpp;
}

/* LoadOptions as the command line, if they are text. */
static void loader_take_cmdline(struct loader *l)
{
    efi_cmdline_from_options(l->loaded_image->LoadOptions,
                             l->loaded_image->LoadOptionsSize, l->bi->cmdline,
                             sizeof l->bi->cmdline);
}

/* ---- leaving the firmware -------------------------------------------------------- */

static EFI_STATUS loader_build_page_tables(struct loader *l)
{
    UINTN map_size = 0, key, desc_size;
    UINT32 desc_ver;
    EFI_MEMORY_DESCRIPTOR *map = LibMemoryMap(&map_size, &key, &desc_size, &desc_ver);
    if (!map)
        return LOADER_FAIL(EFI_OUT_OF_RESOURCES, L"cannot read the firmware's memory map. "
                           L"The firmware is out of memory; give the machine more memory");
    UINT64 top = efi_mmap_top(map, map_size, desc_size);
    FreePool(map);
    const struct bootinfo_framebuffer *fb = &l->bi->fb;
    if (fb->phys && fb->phys + (UINT64)fb->pitch * fb->height > top)
        top = fb->phys + (UINT64)fb->pitch * fb->height;

    UINTN pages = efi_pt_pages_needed(top, l->kernel_span);
    UINT64 pool;
    EFI_STATUS st = loader_alloc(pages * EFI_PAGE_SIZE, &pool);
    if (EFI_ERROR(st))
        return LOADER_FAIL(st, L"cannot allocate %d pages for page tables: %r. Give the "
                           L"machine more memory", (int)pages, st);
    enum efi_pt_status ps = efi_pt_init(&l->pt, (void *)(UINTN)pool, pages);
    if (ps == EFI_PT_OK)
        ps = efi_pt_build(&l->pt, top, KERNEL_VMA + KERNEL_LMA, l->kernel_phys,
                          l->kernel_span);
    if (ps == EFI_PT_ERR_RANGE)
        return LOADER_FAIL(EFI_UNSUPPORTED, L"cannot build page tables: the firmware's "
                           L"memory map reaches 0x%lx, beyond what 4-level paging maps. "
                           L"Remove memory or boot plinth.iso through GRUB", top);
    if (ps != EFI_PT_OK)
        return LOADER_FAIL(EFI_LOAD_ERROR, L"internal error: building page tables up to "
                           L"0x%lx failed (efi_pt status %d). Report this bug", top, (int)ps);
    return EFI_SUCCESS;
}

/* The core runs on the GDT it is handed until cpu_tables_init loads its own, and
 * the firmware's GDT lives in boot-services memory, which the memory map calls
 * usable.  So the core gets one in loader memory: null, 64-bit code (0x08), data
 * (0x10), the layout of the Multiboot2 path (SDM Vol. 3A §3.4.5, §5.2.1). */
static EFI_STATUS loader_make_gdt(struct loader *l)
{
    UINT64 phys;
    EFI_STATUS st = loader_alloc(EFI_PAGE_SIZE, &phys);
    if (EFI_ERROR(st))
        return LOADER_FAIL(st, L"cannot allocate a GDT for the core: %r. Give the "
                           L"machine more memory", st);
    UINT64 *gdt = (UINT64 *)(UINTN)phys;
    gdt[0] = 0;
    gdt[1] = 0x00AF9A000000FFFFull;
    gdt[2] = 0x00CF92000000FFFFull;
    l->gdt_phys = phys;
    return EFI_SUCCESS;
}

static void __attribute__((noreturn)) loader_enter(struct loader *l)
{
    struct __attribute__((packed)) {
        UINT16 limit;
        UINT64 base;
    } gdtr = { 3 * 8 - 1, l->gdt_phys };

    /* rdi/rsi/rdx per boot/bootinfo.h.  The code and stack stay reachable through
     * the identity map across the CR3 load; the far return reloads CS from the new
     * GDT and lands on the entry point in one step. */
    __asm__ volatile("cli\n\t"
                     "lgdt %[gdtr]\n\t"
                     "mov %[cr3], %%cr3\n\t"
                     "mov $0x10, %%eax\n\t"
                     "mov %%eax, %%ds\n\t"
                     "mov %%eax, %%es\n\t"
                     "mov %%eax, %%ss\n\t"
                     "xor %%eax, %%eax\n\t"
                     "mov %%eax, %%fs\n\t"
                     "mov %%eax, %%gs\n\t"
                     "pushq $0x08\n\t"
                     "pushq %[entry]\n\t"
                     "lretq"
                     :
                     : [gdtr] "m"(gdtr), [cr3] "r"((UINT64)(UINTN)l->pt.pml4),
                       [entry] "r"(l->entry64), "D"(BOOTINFO_MAGIC_PLINTH),
                       "S"((UINT64)(UINTN)l->bi), "d"(l->kernel_phys)
                     : "rax", "memory");
    __builtin_unreachable();
}

/* Returns only if it fails before ExitBootServices. */
static EFI_STATUS loader_exit_and_enter(struct loader *l)
{
    /* Room for the map to grow by a few descriptors while we allocate it. */
    UINTN map_size = 0, key, desc_size = 0;
    UINT32 desc_ver;
    EFI_STATUS st = BS->GetMemoryMap(&map_size, NULL, &key, &desc_size, &desc_ver);
    UINTN buf_size = map_size + 16 * (desc_size ? desc_size : 64);
    UINT64 buf;
    if (st != EFI_BUFFER_TOO_SMALL || EFI_ERROR(loader_alloc(buf_size, &buf)))
        return LOADER_FAIL(EFI_OUT_OF_RESOURCES, L"cannot read the firmware's memory map "
                           L"(%r). Give the machine more memory", st);

    /* UEFI 2.10 §7.4.6: a stale map key makes ExitBootServices fail, and then only
     * GetMemoryMap and ExitBootServices may be called; retry once with a fresh map. */
    for (int attempt = 0;; attempt++) {
        map_size = buf_size;
        st = BS->GetMemoryMap(&map_size, (EFI_MEMORY_DESCRIPTOR *)(UINTN)buf, &key,
                              &desc_size, &desc_ver);
        if (!EFI_ERROR(st))
            st = BS->ExitBootServices(l->image, key);
        if (!EFI_ERROR(st))
            break;
        if (attempt == 1) {
            loader_com1_puts("plinth: the firmware refused ExitBootServices twice; cannot "
                             "start plinth. Update the firmware or boot plinth.iso through "
                             "GRUB.\r\n");
            loader_halt();
        }
    }

    /* Boot services are gone: from here on only our own memory and the CPU, and
     * no firmware interrupt handler may run. */
    __asm__ volatile("cli");
    efi_mmap_convert((const void *)(UINTN)buf, map_size, desc_size, l->bi);
    loader_enter(l);
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
    struct loader l = { .image = image };
    EFI_STATUS st;

    InitializeLib(image, systab);
    /* The boot manager arms a 5-minute watchdog (UEFI 2.10 §3.1.2); an error
     * message must stay up until someone reads it. */
    BS->SetWatchdogTimer(0, 0, 0, NULL);
    Print(L"plinth: %a\n", LOADER_NAME);

    UINT64 cr4;
    __asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
    if (cr4 & LOADER_CR4_LA57)
        return LOADER_FAIL(EFI_UNSUPPORTED, L"the firmware runs with 5-level paging, which "
                           L"this loader does not support. Disable 5-level paging in the "
                           L"firmware setup or boot plinth.iso through GRUB");

    UINT64 bi_phys;
    st = loader_alloc(sizeof(struct bootinfo), &bi_phys);
    if (EFI_ERROR(st))
        return LOADER_FAIL(st, L"cannot allocate the boot information: %r. Give the "
                           L"machine more memory", st);
    l.bi = (struct bootinfo *)(UINTN)bi_phys;
    SetMem(l.bi, sizeof *l.bi, 0);
    l.bi->magic = BOOTINFO_MAGIC_PLINTH;
    l.bi->method = BOOTINFO_METHOD_UEFI;
    loader_strcpy(l.bi->loader_name, LOADER_NAME, sizeof l.bi->loader_name);

    static EFI_STATUS (*const steps[])(struct loader *) = {
        loader_open_volume, loader_load_kernel, loader_load_config, loader_find_rsdp,
    };
    for (UINTN i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        st = steps[i](&l);
        if (EFI_ERROR(st))
            return st;
    }
    loader_find_framebuffer(&l);
    loader_take_cmdline(&l);
    l.bi->kernel_phys = l.kernel_phys;
    l.bi->kernel_size = l.kernel_span;
    st = loader_build_page_tables(&l);
    if (EFI_ERROR(st))
        return st;
    st = loader_make_gdt(&l);
    if (EFI_ERROR(st))
        return st;
    /* Self-check before leaving the firmware: the entry point and the hand-off
     * must be reachable through the new tables. */
    if (efi_pt_lookup(&l.pt, l.entry64) != l.kernel_phys + (l.entry64 - KERNEL_VMA - KERNEL_LMA) ||
        efi_pt_lookup(&l.pt, bi_phys) != bi_phys)
        return LOADER_FAIL(EFI_LOAD_ERROR, L"internal error: the new page tables do not "
                           L"map the core's entry point. Report this bug");

    Print(L"plinth: loaded plinth.elf at 0x%lx, %d files; starting the core\n",
          l.kernel_phys, (int)l.bi->module_count);
    return loader_exit_and_enter(&l);
}
