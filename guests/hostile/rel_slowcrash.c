/* rel_slowcrash: a guest that crashes about three seconds after every boot, run
 * with on_crash = restart: too late for a two-second "crashed soon after starting"
 * window, so a loop guard that only looked that far back restarted it forever.
 * plinth must see the loop and stop it after its fifth crash in a row.  The three
 * seconds are the RTC's: its seconds register changing four times. */
#include "hostile.h"

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic; (void)mbi;
    guest_name = "rel_slowcrash";
    gprintf("INFO rel_slowcrash: boot\n");
    uint8_t last = rtc_seconds();
    for (int ticks = 0; ticks < 4;) {
        spin_tsc(200000);
        uint8_t now = rtc_seconds();
        if (now != last) {
            ticks++;
            last = now;
        }
    }
    struct { uint16_t limit; uint32_t base; } __attribute__((packed)) empty = { 0, 0 };
    __asm__ volatile("lidt %0\n\tud2" : : "m"(empty) : "memory");
    fail("rel-slowcrash-crashed", "execution continued after the triple fault");
}
