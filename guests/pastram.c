/* pastram: the last bytes of RAM work; a read past RAM (at 64 MiB, the VM has less)
 * stops the VM (vmm/exit.c); if the read returns, the guest reports it. */
#include "guest.h"

#define PAST_RAM 0x4000000u

extern char pastram_load[];

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic;
    guest_name = "pastram";
    uint32_t top = mb1_ram_top(mbi);
    if (!top || top > PAST_RAM) {
        fail("pastram-setup", "RAM ends at %#x; give this VM less than 64 MiB", top);
        return;
    }
    volatile uint32_t *last = (volatile uint32_t *)(top - 4);
    *last = 0xc0ffee00u;
    check(*last == 0xc0ffee00u, "pastram-last-word", "RAM's last word at %#x reads %#x", top - 4, *last);

    gprintf("INFO pastram: RAM ends at %#x; reading guest-physical %#x at rip %#x\n", top, PAST_RAM,
            (uint32_t)pastram_load);
    uint32_t v;
    __asm__ volatile(".globl pastram_load\npastram_load: movl (%1), %0" : "=r"(v) : "r"(PAST_RAM) : "memory");
    fail("pastram-read", "the read of %#x returned %#x; the guest kept running", PAST_RAM, v);
}
