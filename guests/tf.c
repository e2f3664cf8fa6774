/* tf: a triple fault (SDM Vol. 3A §6.15, interrupt 8: a fault while delivering #DF
 * shuts the CPU down).  With an empty IDT, UD2's #UD becomes #GP, then #DF, then
 * shutdown.  At every boot it checks that the word it left in RAM before the
 * previous crash is gone: plinth clears a restarted VM's RAM. */
#include "guest.h"

#define LEFTOVER_ADDR 0x800000u      /* above the kernel, below any VM's 16 MiB */
#define LEFTOVER      0x7e57ab1eu

extern char tf_fault[];

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic;
    guest_name = "tf";
    volatile uint32_t *left = (volatile uint32_t *)LEFTOVER_ADDR;
    gprintf("INFO tf: boot\n");
    if (mb1_ram_top(mbi) <= LEFTOVER_ADDR + 4) {
        fail("tf-setup", "RAM ends at %#x; give this VM at least 16 MiB", mb1_ram_top(mbi));
        return;
    }
    check(*left != LEFTOVER, "tf-ram-clear-at-boot", "%#x still holds %#x from before the crash", LEFTOVER_ADDR,
          *left);
    *left = LEFTOVER;
    gprintf("INFO tf: loading an empty IDT and executing UD2 at rip %#x\n", (uint32_t)tf_fault);
    struct { uint16_t limit; uint32_t base; } __attribute__((packed)) empty = { 0, 0 };
    __asm__ volatile("lidt %0\n\t.globl tf_fault\ntf_fault: ud2" : : "m"(empty) : "memory");
    fail("tf-triple-fault", "execution continued after the triple fault");
}
