/* rel_crashloop: a guest that triple-faults right after every boot, run with
 * on_crash = restart.  Each boot checks that the last boot's marks in RAM (at its
 * bottom, middle and last word) were cleared, then leaves new ones and crashes.
 * plinth must restart it with a growing back-off and stop it after its
 * fifth crash in a row; the boot test reads the restart lines' timestamps. */
#include "hostile.h"

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic;
    guest_name = "rel_crashloop";
    gprintf("INFO rel_crashloop: boot\n");
    uint32_t top = mb1_ram_top(mbi);
    if (top < 0x300000) {
        fail("rel-crashloop-ram-cleared", "RAM ends at %#x; give the VM 4 MiB", top);
        return;
    }
    volatile uint32_t *marks[3] = { (uint32_t *)0x200000, (uint32_t *)(top / 2 & ~3u), (uint32_t *)(top - 4) };
    uint32_t left = 0;
    for (int i = 0; i < 3; i++)
        left += *marks[i] == 0x5ca1ab1eu;
    check(left == 0, "rel-crashloop-ram-cleared", "%u of 3 marks of the last boot were still in RAM", left);
    for (int i = 0; i < 3; i++)
        *marks[i] = 0x5ca1ab1eu;
    /* An empty IDT: the #UD cannot be delivered, nor the #DF: a triple fault. */
    struct { uint16_t limit; uint32_t base; } __attribute__((packed)) empty = { 0, 0 };
    __asm__ volatile("lidt %0\n\tud2" : : "m"(empty) : "memory");
    fail("rel-crashloop-crashed", "execution continued after the triple fault");
}
