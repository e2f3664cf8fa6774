/* checker (isolation, guest B): scans all of its RAM above the kernel for filler's
 * marker, pass after pass, while filler writes it everywhere it can.  Command line:
 * passes=N (default 8). */
#include "guest.h"
#include "marker.h"

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic;
    guest_name = "checker";
    uint32_t top = mb1_ram_top(mbi);
    uint32_t start = (uint32_t)guest_image_end;
    uint32_t passes = cmdline_number(mbi, "passes", 8);
    if (top <= start) {
        fail("checker-setup", "no RAM above the kernel (top %#x)", top);
        return;
    }
    uint64_t m = marker_value();
    uint32_t lo = (uint32_t)m, hi = (uint32_t)(m >> 32);
    uint32_t found = 0, found_at = 0;
    for (uint32_t p = 1; p <= passes; p++) {
        for (volatile uint32_t *q = (volatile uint32_t *)start; (uint32_t)q < top; q += 2) {
            if (q[0] == lo && q[1] == hi) {
                if (!found++)
                    found_at = (uint32_t)q;
            }
        }
        gprintf("INFO checker: pass %u scanned %#x-%#x, marker seen %u times\n", p, start, top, found);
    }
    check(found == 0, "isolation-no-foreign-marker", "filler's marker appeared %u times, first at %#x", found,
          found_at);
}
