/* mem_top4g_read: reads the last dword below 4 GiB, where a PC has its firmware ROM and
 * plinth's VMs have nothing: plinth stops the VM, naming the address. */
#include "hostile.h"

extern char top4g_load[];

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic; (void)mbi;
    guest_name = "mem_top4g_read";
    gprintf("INFO mem_top4g_read: reading guest-physical 0xfffffffc at rip %#x\n", (uint32_t)top4g_load);
    uint32_t v;
    __asm__ volatile(".globl top4g_load\ntop4g_load: movl (%1), %0" : "=r"(v) : "r"(0xfffffffcu) : "memory");
    fail("top4g-read", "the read returned %#x; the guest kept running", v);
}
