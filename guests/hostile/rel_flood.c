/* rel_flood: floods its console, 24 KiB in 128-byte lines as fast as it can write
 * them.  plinth paces each VM's output to its share of the serial line after a
 * 16 KiB burst, so the flood must take several seconds (counted in RTC seconds),
 * while the neighbour's lines, all of them and in order, go on appearing. */
#include "hostile.h"

#define FLOOD_BYTES (24u << 10)
#define LINE 128u

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic; (void)mbi;
    guest_name = "rel_flood";
    char line[LINE];
    for (unsigned i = 0; i < LINE - 1; i++)
        line[i] = (char)('a' + i % 26);
    line[LINE - 1] = 0;
    /* "[rel_flood] " and the newline the console adds make each line LINE + 12 bytes. */
    unsigned ticks = 0;
    uint8_t last = rtc_seconds();
    for (unsigned sent = 0; sent < FLOOD_BYTES; sent += LINE) {
        for (unsigned i = 0; i < LINE - 1; i++)
            serial_putc(line[i]);
        serial_putc('\n');
        uint8_t now = rtc_seconds();
        ticks += now != last;
        last = now;
    }
    gprintf("INFO rel_flood: %u bytes in %u RTC second ticks\n", FLOOD_BYTES, ticks);
    check(ticks >= 2, "rel-flood-paced", "%u bytes of output took %u RTC second ticks: not paced", FLOOD_BYTES, ticks);
}
