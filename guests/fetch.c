/* fetch: a jump to guest-physical memory past the VM's RAM.  plinth stops the VM on
 * the instruction fetch (vmm/exit.c); if the jump returns, the guest reports it. */
#include "guest.h"

#define FETCH_TARGET 0x4000000u      /* 64 MiB: past this VM's RAM */

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic;
    guest_name = "fetch";
    uint32_t top = mb1_ram_top(mbi);
    if (!top || top > FETCH_TARGET) {
        fail("fetch-setup", "RAM ends at %#x; give this VM less than 64 MiB", top);
        return;
    }
    gprintf("INFO fetch: RAM ends at %#x; jumping to guest-physical %#x at rip %#x\n", top, FETCH_TARGET,
            FETCH_TARGET);
    __asm__ volatile("jmp *%0" : : "r"(FETCH_TARGET) : "memory");
    fail("fetch-past-ram", "the jump to %#x came back", FETCH_TARGET);
}
