/* plinth's own 4-level page tables (SDM Vol. 3A ch. 4, AMD APM Vol. 2 §5.3).
 *
 * Layout of the upper half: the direct map of RAM at DIRECT_MAP_BASE (write-back,
 * NX), guard-paged stacks at STACK_WINDOW_BASE, uncached device windows at
 * MMIO_WINDOW_BASE, the image at its link address (KERNEL_VMA + KERNEL_LMA + offset)
 * section by section W^X.  The lower half holds only what paging_identity_map adds
 * for the AP trampoline.  All CPUs share one set of tables. */
#include "arch/x86_64/cpu/paging.h"
#include "arch/x86_64/cpu/cpu.h"
#include "arch/x86_64/page_alloc.h"
#include "kernel/spinlock.h"
#include "kernel/log.h"
#include "kernel/panic.h"

/* Paging-structure entry bits, SDM Vol. 3A §4.5 (the 4-level entry format tables). */
#define PTE_P     (1ull << 0)
#define PTE_W     (1ull << 1)
#define PTE_PWT   (1ull << 3)
#define PTE_PCD   (1ull << 4)
#define PTE_PS    (1ull << 7)   /* in a PDPTE or PDE: maps a 1 GiB / 2 MiB page */
#define PTE_G     (1ull << 8)
#define PTE_NX    (1ull << 63)
#define PTE_ADDR  0x000ffffffffff000ull

#define PAGE_2M   (1ull << 21)
#define PAGE_1G   (1ull << 30)

/* Which large pages paging_map_range may use. */
#define PAGING_LARGE_2M 1u
#define PAGING_LARGE_1G 2u

#define PAGING_ENOMEM    (-1)
#define PAGING_ECONFLICT (-2)
#define PAGING_NONE      UINT64_MAX

/* IA32_PAT after power-up: PAT0 WB, PAT1 WT, PAT2 UC-, PAT3 UC, repeated (SDM Vol. 3A,
 * table "Memory Type Setting of PAT Entries Following a Power-up or Reset").  With it PCD|PWT in a leaf
 * selects PAT3 = UC, which mmio_map relies on. */
#define PAT_POWER_UP 0x0007040600070406ull

/* CPUID feature bits: leaf 1 EDX (SDM Vol. 2A, CPUID) and 0x80000001 EDX. */
#define CPUID_1_EDX_PGE          (1u << 13)
#define CPUID_1_EDX_PAT          (1u << 16)
#define CPUID_80000001_EDX_NX    (1u << 20)
#define CPUID_80000001_EDX_1GB   (1u << 26)

extern char __text_start[], __text_end[], __rodata_start[], __rodata_end[];
extern char __data_start[], __data_end[], __ksyms_start[], __ksyms_end[];
extern char __kernel_start[], __kernel_end[];

/* phys_to_virt adds paging_phys_offset; virt_to_phys accepts the result for
 * physical addresses below paging_phys_span.  Boot identity map first (4 GiB). */
static uint64_t paging_phys_offset;
static uint64_t paging_phys_span = 1ull << 32;
static uint64_t paging_pml4;          /* physical; 0 until paging_init builds it */
static bool     paging_active;        /* paging_pml4 is in CR3 */
/* The boot hand-off paging_init was given (where the image lies), kept for
 * virt_to_phys of image addresses; it stays valid for the whole run. */
static const struct bootinfo *paging_bootinfo;
static uint64_t paging_nx;            /* PTE_NX, or 0 on a CPU without NX */
static unsigned paging_large;         /* PAGING_LARGE_* the CPU has */
static bool     paging_pge, paging_pat;
static uint64_t paging_phys_limit = 1ull << 36; /* 2^MAXPHYADDR */
static struct spinlock paging_lock;
static uint64_t paging_stack_next = STACK_WINDOW_BASE;
static uint64_t paging_mmio_next = MMIO_WINDOW_BASE;

/* Physical ranges in the direct map: sorted, disjoint, not touching. */
struct paging_range { uint64_t start, end; };
static struct paging_range paging_direct[BOOTINFO_MAX_MMAP + 1];
static uint32_t paging_direct_count;

/* Device windows handed out so far, so that mapping the same registers twice (ACPI
 * tables, a BAR) reuses one window instead of growing the page tables. */
#define PAGING_MMIO_CACHE 64
static struct { uint64_t start, end, virt; } paging_mmio[PAGING_MMIO_CACHE];
static uint32_t paging_mmio_count;

/* The GDT in force when the tables switch: the boot path's GDT lives in memory the
 * new tables do not map (.boot, or the loader's), and a segment load or an
 * exception reads it.  cpu_tables_init replaces it with the per-CPU one. */
static uint64_t paging_boot_gdt[32] __attribute__((aligned(16)));

void *phys_to_virt(uint64_t phys)
{
    return (void *)(uintptr_t)(phys + paging_phys_offset);
}

static inline uint64_t paging_align_down(uint64_t x) { return x & ~(PAGE_SIZE - 1); }

/* [base, base+length) grown to whole pages, end clamped at 2^64 - 4096; false when
 * empty.  Firmware and caller numbers are not trusted to stay below 2^64. */
static bool paging_span(uint64_t base, uint64_t length, uint64_t *start, uint64_t *end)
{
    if (!length)
        return false;
    uint64_t e = base > UINT64_MAX - length ? UINT64_MAX : base + length;
    *start = paging_align_down(base);
    *end = e > UINT64_MAX - (PAGE_SIZE - 1) ? paging_align_down(UINT64_MAX) : paging_align_down(e + PAGE_SIZE - 1);
    return *start < *end;
}

static inline unsigned paging_index(uint64_t virt, int level)
{
    return (virt >> (12 + 9 * (level - 1))) & 511;
}

/* The entry mapping virt at level (4 = PML4 ... 1 = PT), creating missing tables
 * when create is set; NULL with *err set when memory runs out or a large page
 * already covers virt higher up. */
static uint64_t *paging_entry(uint64_t pml4, uint64_t virt, int level, bool create, int *err)
{
    uint64_t *table = phys_to_virt(pml4);
    for (int l = 4; l > level; l--) {
        uint64_t *e = &table[paging_index(virt, l)];
        if (!(*e & PTE_P)) {
            if (!create)
                return *err = 0, NULL;
            uint64_t t = arch_alloc_page();
            if (!t)
                return *err = PAGING_ENOMEM, NULL;
            /* Permissive above the leaf: the leaf alone decides W and NX (SDM Vol. 3A
             * §4.6: the most restrictive level wins). */
            *e = t | PTE_P | PTE_W;
        } else if (*e & PTE_PS) {
            return *err = PAGING_ECONFLICT, NULL;
        }
        table = phys_to_virt(*e & PTE_ADDR);
    }
    return &table[paging_index(virt, level)];
}

/* Maps [virt, virt+size) onto phys with the leaf bits flags (page-aligned inputs).
 * Takes the largest page large allows whose alignment and the remaining size fit,
 * so a large page never reaches past the end of the range. */
static int paging_map_range(uint64_t pml4, uint64_t virt, uint64_t phys, uint64_t size,
                            uint64_t flags, unsigned large)
{
    while (size) {
        int level = 1;
        uint64_t step = PAGE_SIZE;
        if ((large & PAGING_LARGE_1G) && !((virt | phys) & (PAGE_1G - 1)) && size >= PAGE_1G)
            level = 3, step = PAGE_1G;
        else if ((large & PAGING_LARGE_2M) && !((virt | phys) & (PAGE_2M - 1)) && size >= PAGE_2M)
            level = 2, step = PAGE_2M;
        int err = 0;
        uint64_t *e = paging_entry(pml4, virt, level, true, &err);
        if (!e)
            return err;
        uint64_t old = *e;
        if ((old & PTE_P) && level > 1 && !(old & PTE_PS))
            return PAGING_ECONFLICT; /* a table already sits where the large page goes */
        *e = phys | flags | PTE_P | (level > 1 ? PTE_PS : 0);
        if ((old & PTE_P) && paging_active && pml4 == paging_pml4)
            invlpg(virt);
        virt += step;
        phys += step;
        size -= step;
    }
    return 0;
}

/* Physical address virt maps to under pml4, or PAGING_NONE. */
static uint64_t paging_lookup(uint64_t pml4, uint64_t virt)
{
    uint64_t *table = phys_to_virt(pml4);
    for (int l = 4; l >= 1; l--) {
        uint64_t e = table[paging_index(virt, l)];
        if (!(e & PTE_P))
            return PAGING_NONE;
        if (l == 1 || (l <= 3 && (e & PTE_PS))) {
            uint64_t page = 1ull << (12 + 9 * (l - 1));
            return (e & PTE_ADDR & ~(page - 1)) | (virt & (page - 1));
        }
        table = phys_to_virt(e & PTE_ADDR);
    }
    return PAGING_NONE;
}

static const char *paging_strerror(int err)
{
    return err == PAGING_ENOMEM ? "out of physical memory for page tables"
                                : "overlaps an existing large-page mapping";
}

/* RAM-like memory types the direct map covers.  RESERVED stays out: it may be a
 * device, and a write-back mapping of device registers is wrong. */
static bool paging_direct_type(uint32_t type)
{
    return type == BOOTINFO_MEM_USABLE || type == BOOTINFO_MEM_ACPI ||
           type == BOOTINFO_MEM_NVS || type == BOOTINFO_MEM_BOOTLOADER;
}

static void paging_direct_add(uint64_t start, uint64_t end)
{
    if (end > DIRECT_MAP_SIZE)
        end = DIRECT_MAP_SIZE;
    if (start >= end)
        return;
    paging_direct[paging_direct_count++] = (struct paging_range){ start, end };
}

/* Fills paging_direct from the memory map: the first MiB (real-mode IVT, BDA, EBDA,
 * BIOS tables: ACPI 6.5 §5.2.5.1 has the RSDP there) and every RAM-like entry,
 * grown to whole pages, sorted and merged. */
static void paging_direct_ranges(const struct bootinfo *bi)
{
    paging_direct_count = 0;
    paging_direct_add(0, 0x100000);
    uint32_t n = bi->mmap_count <= BOOTINFO_MAX_MMAP ? bi->mmap_count : BOOTINFO_MAX_MMAP;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t s, e;
        if (paging_direct_type(bi->mmap[i].type) &&
            paging_span(bi->mmap[i].base, bi->mmap[i].length, &s, &e))
            paging_direct_add(s, e);
    }
    for (uint32_t i = 1; i < paging_direct_count; i++) {
        struct paging_range r = paging_direct[i];
        uint32_t j = i;
        for (; j > 0 && paging_direct[j - 1].start > r.start; j--)
            paging_direct[j] = paging_direct[j - 1];
        paging_direct[j] = r;
    }
    uint32_t out = 0;
    for (uint32_t i = 0; i < paging_direct_count; i++) {
        if (out && paging_direct[i].start <= paging_direct[out - 1].end) {
            if (paging_direct[i].end > paging_direct[out - 1].end)
                paging_direct[out - 1].end = paging_direct[i].end;
        } else {
            paging_direct[out++] = paging_direct[i];
        }
    }
    paging_direct_count = out;
}

/* Physical address of the image byte linked at virt.  The image may sit anywhere
 * 2 MiB aligned (the UEFI loader picks), not only at KERNEL_LMA. */
static uint64_t paging_image_phys(const struct bootinfo *bi, uint64_t virt)
{
    return bi->kernel_phys + (virt - KERNEL_VMA - KERNEL_LMA);
}

struct paging_section { uint64_t start, end, flags; const char *name; };

static unsigned paging_image_sections(struct paging_section out[4])
{
    out[0] = (struct paging_section){ (uintptr_t)__text_start, (uintptr_t)__text_end,
                                      PTE_G, ".text" };
    out[1] = (struct paging_section){ (uintptr_t)__rodata_start, (uintptr_t)__rodata_end,
                                      PTE_G | paging_nx, ".rodata" };
    out[2] = (struct paging_section){ (uintptr_t)__data_start, (uintptr_t)__data_end,
                                      PTE_W | PTE_G | paging_nx, ".data/.bss" };
    out[3] = (struct paging_section){ (uintptr_t)__ksyms_start, (uintptr_t)__ksyms_end,
                                      PTE_G | paging_nx, ".ksyms" };
    return 4;
}

/* Maps the direct map into pml4.  The image's read-only sections stay read-only in
 * their direct-map alias too, or W^X would hold at one address and not the other. */
static int paging_build_direct_map(uint64_t pml4, const struct bootinfo *bi)
{
    struct paging_section sec[4];
    unsigned nsec = paging_image_sections(sec);
    uint64_t rw = PTE_W | PTE_G | paging_nx, ro = PTE_G | paging_nx;

    for (uint32_t i = 0; i < paging_direct_count; i++) {
        uint64_t p = paging_direct[i].start, end = paging_direct[i].end;
        while (p < end) {
            /* Next boundary of a read-only image section after p, and whether p is
             * inside one. */
            uint64_t next = end, flags = rw;
            for (unsigned k = 0; k < nsec; k++) {
                if (sec[k].flags & PTE_W || sec[k].start >= sec[k].end)
                    continue;
                uint64_t s = paging_image_phys(bi, sec[k].start), e = paging_image_phys(bi, sec[k].end);
                if (s <= p && p < e) {
                    flags = ro;
                    if (e < next)
                        next = e;
                } else if (s > p && s < next) {
                    next = s;
                }
            }
            int err = paging_map_range(pml4, DIRECT_MAP_BASE + p, p, next - p, flags, paging_large);
            if (err)
                return err;
            p = next;
        }
    }
    return 0;
}

static int paging_build_image(uint64_t pml4, const struct bootinfo *bi)
{
    struct paging_section sec[4];
    unsigned nsec = paging_image_sections(sec);
    for (unsigned k = 0; k < nsec; k++) {
        if (sec[k].start >= sec[k].end)
            continue;
        int err = paging_map_range(pml4, sec[k].start, paging_image_phys(bi, sec[k].start),
                                   sec[k].end - sec[k].start, sec[k].flags, 0);
        if (err)
            return err;
    }
    return 0;
}

static void paging_detect(void)
{
    uint32_t max_ext = cpuid(0x80000000, 0).eax;
    uint32_t ext_edx = max_ext >= 0x80000001 ? cpuid(0x80000001, 0).edx : 0;
    uint32_t std_edx = cpuid(1, 0).edx;
    paging_nx = ext_edx & CPUID_80000001_EDX_NX ? PTE_NX : 0;
    paging_large = PAGING_LARGE_2M | (ext_edx & CPUID_80000001_EDX_1GB ? PAGING_LARGE_1G : 0);
    paging_pge = std_edx & CPUID_1_EDX_PGE;
    paging_pat = std_edx & CPUID_1_EDX_PAT;
    /* MAXPHYADDR: CPUID 0x80000008 EAX[7:0]; 36 when the leaf is absent (SDM Vol. 3A
     * §4.1.4). */
    unsigned bits = max_ext >= 0x80000008 ? (cpuid(0x80000008, 0).eax & 0xff) : 36;
    if (bits < 32 || bits > 52)
        bits = 36;
    paging_phys_limit = 1ull << bits;
}

/* Loads the new tables.  Order matters: EFER.NXE before CR3, or every NX bit is a
 * reserved bit (SDM Vol. 3A §4.5: XD is reserved unless IA32_EFER.NXE = 1) and the
 * first access faults. */
static void paging_switch(void)
{
    struct __attribute__((packed)) { uint16_t limit; uint64_t base; } gdtr;
    __asm__ volatile("sgdt %0" : "=m"(gdtr));
    if ((size_t)gdtr.limit + 1 > sizeof paging_boot_gdt)
        panic("paging: the boot path's GDT has %u bytes, more than the %zu kept while "
              "switching tables; enlarge paging_boot_gdt", gdtr.limit + 1u, sizeof paging_boot_gdt);
    const volatile uint8_t *src = (const volatile uint8_t *)(uintptr_t)gdtr.base;
    volatile uint8_t *dst = (volatile uint8_t *)paging_boot_gdt;
    for (size_t i = 0; i <= gdtr.limit; i++)
        dst[i] = src[i];
    gdtr.base = (uintptr_t)paging_boot_gdt;
    __asm__ volatile("lgdt %0" :: "m"(gdtr) : "memory");

    if (paging_nx)
        wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_NXE);
    /* A changed PAT applies to cached lines only after a flush (SDM Vol. 3A,
     * "Programming the PAT"); firmware normally leaves the power-up value. */
    if (paging_pat && rdmsr(MSR_IA32_PAT) != PAT_POWER_UP) {
        __asm__ volatile("wbinvd" ::: "memory");
        wrmsr(MSR_IA32_PAT, PAT_POWER_UP);
    }
    write_cr3(paging_pml4);
    paging_phys_offset = DIRECT_MAP_BASE;
    paging_phys_span = DIRECT_MAP_SIZE;
    paging_active = true;
    /* CR0.WP: read-only pages bind ring 0 too (SDM Vol. 3A §4.6.1). */
    write_cr0(read_cr0() | CR0_WP);
    if (paging_pge)
        write_cr4(read_cr4() | CR4_PGE);
}

void paging_init(const struct bootinfo *bi)
{
    paging_bootinfo = bi;
    paging_detect();
    if (!paging_nx)
        log_warn("paging: this CPU has no NX (CPUID 0x80000001 EDX[20]); data stays "
                 "executable, W^X holds for writes only");
    if (bi->kernel_phys % PAGE_SIZE)
        panic("paging: the image was loaded at %#lx, not page aligned; the boot path "
              "must load it 2 MiB aligned", (unsigned long)bi->kernel_phys);
    struct paging_section sec[4];
    unsigned nsec = paging_image_sections(sec);
    for (unsigned k = 0; k < nsec; k++)
        if ((sec[k].start | sec[k].end) % PAGE_SIZE)
            panic("paging: image section %s [%#lx, %#lx) is not page aligned; "
                  "linker.ld must align every section boundary to 4096", sec[k].name,
                  (unsigned long)sec[k].start, (unsigned long)sec[k].end);

    paging_direct_ranges(bi);
    for (uint32_t i = 0; i < paging_direct_count; i++)
        if (paging_direct[i].end > paging_phys_limit)
            panic("paging: the memory map lists RAM at %#lx-%#lx, beyond this CPU's "
                  "physical address width (%#lx); the firmware memory map is corrupt",
                  (unsigned long)paging_direct[i].start, (unsigned long)paging_direct[i].end,
                  (unsigned long)paging_phys_limit);

    paging_pml4 = arch_alloc_page();
    if (!paging_pml4)
        panic("paging: no free page below 4 GiB for the top-level table");
    int err = paging_build_image(paging_pml4, bi);
    if (err)
        panic("paging: mapping the image: %s", paging_strerror(err));
    err = paging_build_direct_map(paging_pml4, bi);
    if (err)
        panic("paging: building the direct map: %s", paging_strerror(err));

    paging_switch();

    uint64_t mapped = 0;
    for (uint32_t i = 0; i < paging_direct_count; i++)
        mapped += paging_direct[i].end - paging_direct[i].start;
    log_info("paging: direct map %lu MiB in %u ranges, NX %s, 1 GiB pages %s, global %s",
             (unsigned long)(mapped >> 20), paging_direct_count, paging_nx ? "on" : "absent",
             paging_large & PAGING_LARGE_1G ? "yes" : "no", paging_pge ? "yes" : "no");
}

void paging_cpu_init(void)
{
    if (paging_nx)
        wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_NXE);
    if (paging_pat && rdmsr(MSR_IA32_PAT) != PAT_POWER_UP) {
        __asm__ volatile("wbinvd" ::: "memory");
        wrmsr(MSR_IA32_PAT, PAT_POWER_UP);
        write_cr3(read_cr3());
    }
    write_cr0(read_cr0() | CR0_WP);
    if (paging_pge)
        write_cr4(read_cr4() | CR4_PGE);
}

uint64_t paging_required_efer(void)
{
    return paging_nx ? EFER_NXE : 0;
}

uint64_t paging_kernel_cr3(void)
{
    return paging_pml4;
}

bool paging_is_direct_mapped(uint64_t phys, uint64_t size)
{
    if (!size || phys > UINT64_MAX - size)
        return false;
    if (!paging_active)
        return phys + size <= paging_phys_span;
    for (uint32_t i = 0; i < paging_direct_count; i++)
        if (phys >= paging_direct[i].start && phys + size <= paging_direct[i].end)
            return true;
    return false;
}

uint64_t virt_to_phys(const void *virt)
{
    uint64_t v = (uintptr_t)virt;
    if (v >= (uintptr_t)__kernel_start && v < (uintptr_t)__kernel_end)
        return paging_image_phys(paging_bootinfo, v);
    if (v - paging_phys_offset < paging_phys_span)
        return v - paging_phys_offset;
    if (paging_active) {
        spin_lock(&paging_lock);
        uint64_t p = paging_lookup(paging_pml4, v);
        spin_unlock(&paging_lock);
        if (p != PAGING_NONE)
            return p;
    }
    panic("virt_to_phys(%p): not a mapped core address", virt);
}

void *mmio_map(uint64_t phys, size_t size)
{
    uint64_t s, e;
    if (!paging_span(phys, size, &s, &e) || e > paging_phys_limit) {
        log_error("mmio_map(%#lx, %#lx): not a range this CPU can address (limit %#lx)",
                  (unsigned long)phys, (unsigned long)size, (unsigned long)paging_phys_limit);
        return NULL;
    }
    if (!paging_active) {
        log_error("mmio_map(%#lx): called before paging_init; map devices after it",
                  (unsigned long)phys);
        return NULL;
    }
    /* RAM the direct map covers is returned through it: two mappings of one page
     * with different memory types are undefined (SDM Vol. 3A, "Programming the
     * PAT"). */
    if (paging_is_direct_mapped(s, e - s))
        return phys_to_virt(phys);

    spin_lock(&paging_lock);
    for (uint32_t i = 0; i < paging_mmio_count; i++) {
        if (s >= paging_mmio[i].start && e <= paging_mmio[i].end) {
            uint64_t v = paging_mmio[i].virt + (phys - paging_mmio[i].start);
            spin_unlock(&paging_lock);
            return (void *)(uintptr_t)v;
        }
    }
    if (e - s > MMIO_WINDOW_BASE + PAGING_WINDOW_SIZE - paging_mmio_next) {
        spin_unlock(&paging_lock);
        log_error("mmio_map(%#lx, %#lx): the %lu GiB device window is full",
                  (unsigned long)phys, (unsigned long)size, (unsigned long)(PAGING_WINDOW_SIZE >> 30));
        return NULL;
    }
    uint64_t v = paging_mmio_next;
    paging_mmio_next += e - s;
    int err = paging_map_range(paging_pml4, v, s, e - s, PTE_W | PTE_PCD | PTE_PWT | PTE_G | paging_nx, 0);
    if (!err && paging_mmio_count < PAGING_MMIO_CACHE)
        paging_mmio[paging_mmio_count++] = (typeof(paging_mmio[0])){ s, e, v };
    spin_unlock(&paging_lock);
    if (err) {
        log_error("mmio_map(%#lx, %#lx): %s", (unsigned long)phys, (unsigned long)size,
                  paging_strerror(err));
        return NULL;
    }
    return (void *)(uintptr_t)(v + (phys - s));
}

/* Unmaps and frees the first npages pages of a stack being built.  Lock held. */
static void paging_stack_unwind(uint64_t bottom, uint64_t npages)
{
    for (uint64_t i = 0; i < npages; i++) {
        int err = 0;
        uint64_t va = bottom + i * PAGE_SIZE;
        uint64_t *e = paging_entry(paging_pml4, va, 1, false, &err);
        if (!e || !(*e & PTE_P))
            continue;
        uint64_t phys = *e & PTE_ADDR;
        *e = 0;
        invlpg(va);
        arch_free_pages(phys, 1);
    }
}

uint64_t stack_alloc(size_t size)
{
    if (!size || size % PAGE_SIZE) {
        log_error("stack_alloc(%#lx): the size must be a nonzero multiple of 4096",
                  (unsigned long)size);
        return 0;
    }
    if (!paging_active) {
        log_error("stack_alloc: called before paging_init");
        return 0;
    }
    spin_lock(&paging_lock);
    if (size > STACK_WINDOW_BASE + PAGING_WINDOW_SIZE - paging_stack_next - PAGE_SIZE) {
        spin_unlock(&paging_lock);
        log_error("stack_alloc(%#lx): the stack window is full", (unsigned long)size);
        return 0;
    }
    /* The page at paging_stack_next stays unmapped: an overflow faults there
     * instead of running into the stack below. */
    uint64_t bottom = paging_stack_next + PAGE_SIZE;
    paging_stack_next = bottom + size;
    uint64_t npages = size / PAGE_SIZE;
    for (uint64_t i = 0; i < npages; i++) {
        uint64_t p = arch_alloc_page();
        int err = p ? paging_map_range(paging_pml4, bottom + i * PAGE_SIZE, p, PAGE_SIZE,
                                       PTE_W | PTE_G | paging_nx, 0)
                    : PAGING_ENOMEM;
        if (err) {
            if (p)
                arch_free_pages(p, 1);
            paging_stack_unwind(bottom, i);
            spin_unlock(&paging_lock);
            log_error("stack_alloc(%lu KiB): %s", (unsigned long)(size >> 10), paging_strerror(err));
            return 0;
        }
    }
    spin_unlock(&paging_lock);
    return bottom + size;
}

int paging_identity_map(uint64_t phys, size_t size)
{
    uint64_t s, e;
    /* Identity means virtual = physical, so the range must lie in the lower
     * canonical half (below 2^47) as well as in physical memory. */
    if (!paging_span(phys, size, &s, &e) || e > paging_phys_limit || e > (1ull << 47)) {
        log_error("paging_identity_map(%#lx, %#lx): not an identity-mappable range",
                  (unsigned long)phys, (unsigned long)size);
        return -1;
    }
    if (!paging_pml4) {
        log_error("paging_identity_map: called before paging_init");
        return -1;
    }
    spin_lock(&paging_lock);
    int err = paging_map_range(paging_pml4, s, s, e - s, PTE_W, 0);
    spin_unlock(&paging_lock);
    if (err) {
        log_error("paging_identity_map(%#lx, %#lx): %s", (unsigned long)phys,
                  (unsigned long)size, paging_strerror(err));
        return -1;
    }
    return 0;
}
