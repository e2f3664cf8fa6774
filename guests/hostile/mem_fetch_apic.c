/* mem_fetch_apic: jumps into the local APIC's page, executing device memory: plinth
 * emulates data accesses there, never instruction fetches; it stops the VM. */
#include "hostile.h"

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic; (void)mbi;
    guest_name = "mem_fetch_apic";
    gprintf("INFO mem_fetch_apic: jumping to 0xfee00030 (the APIC's version register)\n");
    void (*fn)(void) = (void (*)(void))0xfee00030u;
    fn();
    fail("fetch-apic", "the jump into the APIC page returned");
}
