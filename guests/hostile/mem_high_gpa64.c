/* mem_high_gpa64: in 64-bit mode, a 2 MiB page mapping the top of the guest-physical
 * address space (just below 2^MAXPHYADDR, as CPUID reports it), then a read there:
 * plinth stops the VM, naming the address. */
#include "hostile.h"

static uint64_t pdpt[512] __attribute__((aligned(4096)));
static uint64_t pd[512] __attribute__((aligned(4096)));

extern char high_load[];

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic; (void)mbi;
    guest_name = "mem_high_gpa64";
    uint32_t r[4];
    cpuid(0x80000008u, 0, r);
    unsigned maxphy = r[0] & 0xff;
    uint64_t gpa = (1ull << maxphy) - 0x200000;
    uint64_t cr3;
    __asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
    uint64_t *pml4 = (uint64_t *)(uintptr_t)(cr3 & ~0xfffull);
    pd[0] = gpa | 0x9b;
    pdpt[0] = (uint64_t)(uintptr_t)pd | 3;
    pml4[1] = (uint64_t)(uintptr_t)pdpt | 3;
    __asm__ volatile("mov %0, %%cr3" : : "r"(cr3) : "memory");
    uint64_t linear = 1ull << 39;
    gprintf("INFO mem_high_gpa64: MAXPHYADDR %u; reading guest-physical %#llx (linear %#llx) at rip %#lx\n",
            maxphy, gpa + 0x1ff000, linear, (uint64_t)(uintptr_t)high_load);
    uint32_t v;
    __asm__ volatile(".globl high_load\nhigh_load: movl (%1), %0" : "=r"(v) : "r"(linear + 0x1ff000) : "memory");
    fail("high-gpa", "the read returned %#x; the guest kept running", v);
}
