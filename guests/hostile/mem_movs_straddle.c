/* mem_movs_straddle: MOVSD from the IOAPIC's window to a RAM dword that straddles a
 * page boundary, so plinth's emulator must write the element in two pieces: once with
 * both pages present (the dword lands whole), once with the second page not present
 * (a #PF for that page's first byte, CR2 on it, EDI unchanged, neither half written,
 * as the CPU does). */
#include "hostile.h"

static uint32_t pd[1024] __attribute__((aligned(4096)));
static uint32_t pt[1024] __attribute__((aligned(4096)));
static uint8_t area[3][4096] __attribute__((aligned(4096)));

static uint32_t read_cr2(void) { uint32_t v; __asm__ volatile("mov %%cr2, %0" : "=r"(v)); return v; }

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic; (void)mbi;
    guest_name = "mem_movs_straddle";
    idt_init();
    paging_base(pd);
    for (unsigned i = 0; i < 1024; i++)
        pt[i] = (i << 12) | 3;
    uint32_t hole = (uint32_t)(uintptr_t)area[2];
    pt[hole >> 12] = 0;
    pd[0] = (uint32_t)(uintptr_t)pt | 3;
    paging_on(pd);
    *(volatile uint32_t *)IOAPIC = 1;                             /* IOREGSEL: the version */

    uint32_t esi = IOAPIC + 0x10, edi = (uint32_t)(uintptr_t)area[1] - 2;
    memset(area[0], 0xee, sizeof area[0]);
    memset(area[1], 0xee, sizeof area[1]);
    __asm__ volatile("cld; movsl" : "+S"(esi), "+D"(edi) : : "memory");
    uint32_t got;
    memcpy(&got, area[1] - 2, 4);
    check(got == 0x00170020u && edi == (uint32_t)(uintptr_t)area[1] + 2 && area[0][4093] == 0xee &&
          area[1][2] == 0xee, "mem-movs-straddle-lands", "dword across the pages %#x, EDI %#x, neighbours %#x %#x",
          got, edi, area[0][4093], area[1][2]);

    esi = IOAPIC + 0x10;
    edi = hole - 2;
    PROBE_ASM("cld; movsl", : "+S"(esi), "+D"(edi) : : "memory");
    uint32_t cr2 = read_cr2();
    check(probe.vector == 14 && (probe.error & 3) == 2 && cr2 == hole && edi == hole - 2 && esi == IOAPIC + 0x10,
          "mem-movs-straddle-faults", "vector %d error %#x CR2 %#x (want %#x) EDI %#x ESI %#x", probe.vector,
          probe.error, cr2, hole, edi, esi);
    check(area[1][4094] == 0xee && area[1][4095] == 0xee, "mem-movs-straddle-nothing-written",
          "the bytes before the hole read %#x %#x", area[1][4094], area[1][4095]);
    done();
}
