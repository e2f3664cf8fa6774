/* mem_straddle_insn: a 5-byte MOV whose first two bytes are on the last bytes of a RAM
 * page and the rest on the local APIC's page (paging puts them side by side): the
 * fetch runs into device memory, which plinth never executes; it stops the VM,
 * naming the fetch. */
#include "hostile.h"

static uint32_t pd[1024] __attribute__((aligned(4096)));
static uint32_t pt[1024] __attribute__((aligned(4096)));
static uint8_t page[4096] __attribute__((aligned(4096)));

#define WINDOW 0x00800000u                  /* linear: page, then the APIC page */

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic; (void)mbi;
    guest_name = "mem_straddle_insn";
    paging_base(pd);
    pt[0] = (uint32_t)(uintptr_t)page | 3;
    pt[1] = APIC | 0x1b;
    pd[WINDOW >> 22] = (uint32_t)(uintptr_t)pt | 3;
    paging_on(pd);
    /* mov eax, [0xfee00030]: a1 30 00 e0 fe, from page's last two bytes on. */
    page[4094] = 0xa1;
    page[4095] = 0x30;
    gprintf("INFO mem_straddle_insn: running the MOV at rip %#x across into the APIC page\n", WINDOW + 4094);
    void (*fn)(void) = (void (*)(void))(WINDOW + 4094);
    fn();
    fail("straddle-insn", "the straddling instruction returned");
}
