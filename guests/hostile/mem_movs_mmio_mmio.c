/* mem_movs_mmio_mmio: a MOVSD from the local APIC (its version register) to the
 * IOAPIC's window: both sides are device memory, which plinth's emulator does not
 * pair; it stops the VM naming the access rather than touching either device
 * half-way (the IOAPIC's ID stays as it was until then). */
#include "hostile.h"

extern char mmio_movs[];

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic; (void)mbi;
    guest_name = "mem_movs_mmio_mmio";
    *(volatile uint32_t *)IOAPIC = 0;                             /* IOREGSEL: the ID */
    gprintf("INFO mem_movs_mmio_mmio: MOVSD from 0xfee00030 to 0xfec00010 at rip %#x\n",
            (uint32_t)(uintptr_t)mmio_movs);
    __asm__ volatile("cld\n.globl mmio_movs\nmmio_movs: movsl"
                     : : "S"(APIC + 0x30), "D"(IOAPIC + 0x10) : "memory");
    fail("movs-mmio-mmio", "the MOVSD returned; IOAPIC ID now %#x", *(volatile uint32_t *)(IOAPIC + 0x10));
}
