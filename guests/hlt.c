/* hlt: HLT with interrupts disabled ends the guest; plinth stops the VM and names
 * the rip after the HLT (vmm/exit.c).  Nothing after it may run. */
#include "guest.h"

extern char hlt_after[];

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic;
    (void)mbi;
    guest_name = "hlt";
    uint32_t fl = read_eflags();
    check(!(fl & (1u << 9)), "hlt-if-clear", "EFLAGS = %#x", fl);
    gprintf("INFO hlt: halting with interrupts disabled; next rip %#x\n", (uint32_t)hlt_after);
    gprintf("DONE hlt\n");
    __asm__ volatile("cli; hlt\n.globl hlt_after\nhlt_after:" ::: "memory");
    fail("hlt-stays-halted", "execution continued after cli; hlt");
    for (;;)
        __asm__ volatile("cli; hlt");
}
