/* filler (isolation, guest A): fills all of its RAM above the kernel with a marker,
 * pass after pass, while checker (guest B) scans its own RAM for it; then writes
 * just past its RAM, which must stop it: no write of A reaches memory it was not
 * given.  Command line: passes=N (default 4). */
#include "guest.h"
#include "marker.h"

extern char filler_store[];

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic;
    guest_name = "filler";
    uint32_t top = mb1_ram_top(mbi);
    uint32_t start = (uint32_t)guest_image_end;
    uint32_t passes = cmdline_number(mbi, "passes", 4);
    if (top <= start) {
        fail("filler-setup", "no RAM above the kernel (top %#x)", top);
        return;
    }
    uint64_t m = marker_value();
    uint32_t lo = (uint32_t)m, hi = (uint32_t)(m >> 32);
    for (uint32_t p = 1; p <= passes; p++) {
        for (volatile uint32_t *q = (volatile uint32_t *)start; (uint32_t)q < top; q += 2) {
            q[0] = lo;
            q[1] = hi;
        }
        gprintf("INFO filler: pass %u filled %#x-%#x\n", p, start, top);
    }
    /* Spot-check that the marker is really there. */
    volatile uint32_t *mid = (volatile uint32_t *)((start + (top - start) / 2) & ~7u);
    check(mid[0] == lo && mid[1] == hi, "filler-marker-written", "%#x holds %#x %#x", (uint32_t)mid, mid[0], mid[1]);

    gprintf("INFO filler: writing past its RAM at %#x, rip %#x\n", top, (uint32_t)filler_store);
    __asm__ volatile(".globl filler_store\nfiller_store: movl %0, (%1)\n\tmovl %2, 4(%1)"
                     : : "r"(lo), "r"(top), "r"(hi) : "memory");
    fail("filler-write-past-ram", "the write to %#x returned; the guest kept running", top);
}
