/* mem_selfref_pt: a self-referencing page directory (its last entry points at itself,
 * the recursive mapping), then device accesses whose translation goes through it, so
 * plinth's page walker meets the loop: the IOAPIC reached through the directory's own
 * 4 MiB entry read as a page-table entry, and a MOVSD from the IOAPIC into the page
 * directory itself, by its recursive address.  Each does what it would natively. */
#include "hostile.h"

static uint32_t pd[1024] __attribute__((aligned(4096)));

#define SELF 1023u
/* Linear address of page j of the recursive window: PDE[j] used as a PTE. */
#define RECURSIVE(j) ((SELF << 22) | ((uint32_t)(j) << 12))

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic; (void)mbi;
    guest_name = "mem_selfref_pt";
    idt_init();
    paging_base(pd);
    pd[SELF] = (uint32_t)(uintptr_t)pd | 3;
    paging_on(pd);

    /* PDE[0x3fb] (the IOAPIC's 4 MiB page) as a PTE maps its first 4 KiB. */
    volatile uint32_t *ioapic = (volatile uint32_t *)RECURSIVE(0xfec00000u >> 22);
    ioapic[0] = 1;
    uint32_t version = ioapic[4];
    check(version == 0x00170020u, "mem-selfref-ioapic-read", "IOAPIC version through the recursive map %#x",
          version);

    /* The directory as data, at RECURSIVE(SELF): a MOVSD from the IOAPIC window
     * into its entry 5 (unused), then the entry read back directly. */
    uint32_t esi = (uint32_t)(uintptr_t)&ioapic[4], edi = RECURSIVE(SELF) + 5 * 4;
    __asm__ volatile("cld; movsl" : "+S"(esi), "+D"(edi) : : "memory");
    uint32_t pde5 = ((volatile uint32_t *)pd)[5];
    check(pde5 == 0x00170020u && edi == RECURSIVE(SELF) + 6 * 4, "mem-selfref-movs-into-directory",
          "PDE 5 %#x after the MOVSD, EDI %#x", pde5, edi);
    pd[5] = 0;
    __asm__ volatile("mov %%cr3, %%eax; mov %%eax, %%cr3" : : : "eax", "memory");
    done();
}
