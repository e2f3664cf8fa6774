/* mem_hole_read: reads 0xe8000000, in the hole below 4 GiB between the PCI windows
 * (vmm/pci.h) and the IOAPIC, where no device decodes: plinth stops the VM, naming it. */
#include "hostile.h"

extern char hole_load[];

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic; (void)mbi;
    guest_name = "mem_hole_read";
    gprintf("INFO mem_hole_read: reading guest-physical 0xe8000000 at rip %#x\n", (uint32_t)(uintptr_t)hole_load);
    uint32_t v;
    __asm__ volatile(".globl hole_load\nhole_load: movl (%1), %0" : "=r"(v) : "r"(0xe8000000u) : "memory");
    fail("hole-read", "the read returned %#x; the guest kept running", v);
}
