/* mmio: a store to guest-physical memory that is neither RAM nor a device plinth
 * models.  plinth stops the VM there (vmm/exit.c); if the store returns, the guest
 * reports it. */
#include "guest.h"

#define MMIO_UNMAPPED 0xfebf0000u   /* in the PCI hole, where no device of this VM lives */

extern char mmio_store[];

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic;
    (void)mbi;
    guest_name = "mmio";
    gprintf("INFO mmio: writing to unmapped guest-physical %#x at rip %#x\n", MMIO_UNMAPPED, (uint32_t)mmio_store);
    __asm__ volatile(".globl mmio_store\nmmio_store: movl %0, (%1)" : : "r"(0xdeadbeefu), "r"(MMIO_UNMAPPED) : "memory");
    fail("mmio-unmapped-write", "the store to %#x returned; the guest kept running", MMIO_UNMAPPED);
}
