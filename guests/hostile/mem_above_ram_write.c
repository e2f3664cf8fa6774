/* mem_above_ram_write: writes the first dword past the end of its RAM, where the VM has
 * nothing: plinth stops the VM, naming the address; nothing lands anywhere. */
#include "hostile.h"

extern char above_ram_store[];

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic;
    guest_name = "mem_above_ram_write";
    uint32_t top = mb1_ram_top(mbi);
    gprintf("INFO mem_above_ram_write: RAM ends at %#x; writing it at rip %#x\n", top,
            (uint32_t)(uintptr_t)above_ram_store);
    __asm__ volatile(".globl above_ram_store\nabove_ram_store: movl %0, (%1)"
                     : : "r"(0xbadc0deu), "r"(top) : "memory");
    fail("above-ram-write", "the write at %#x returned; the guest kept running", top);
}
