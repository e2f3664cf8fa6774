/* rel_wbinvd: WBINVD (and INVD) in a loop.  Run natively, WBINVD writes back and
 * flushes every cache of the machine, stalling every other guest: plinth intercepts
 * it on both backends and does nothing for a VM without passthrough devices.  The
 * boot test checks the exit counts show each one; the guest that it went on. */
#include "hostile.h"

#define ROUNDS 2000

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic; (void)mbi;
    guest_name = "rel_wbinvd";
    idt_init();
    for (int i = 0; i < ROUNDS; i++)
        __asm__ volatile("wbinvd" ::: "memory");
    pass("rel-wbinvd-survived");
}
