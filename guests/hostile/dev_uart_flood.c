/* dev_uart_flood: floods its UART with REP OUTSB of 4 KiB at a time (numbered lines,
 * "F nnnnnn ..."), trying to write 256 KiB, for at most 6 RTC seconds.  plinth paces
 * each VM's console to its share of the serial line after a 16 KiB burst
 * (vmm/vm.c, console_pace), holding the flooding vCPU back rather than dropping
 * bytes: so the flood gets through its burst and then its share (at most the whole
 * line, 11520 bytes/s), its own lines all arrive in order, and the neighbour's lines
 * keep arriving, all of them, in order, during the flood (the boot test checks the
 * log for both). */
#include "hostile.h"

#define CHUNK 4096u
#define LINE  128u
#define CAP   (256u << 10)
#define SECONDS 6u
#define BURST 16384u
#define LINE_BPS 11520u

static char chunk[CHUNK];

static void number(char *p, uint32_t v)
{
    for (int i = 5; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic; (void)mbi;
    guest_name = "dev_uart_flood";
    for (unsigned l = 0; l < CHUNK / LINE; l++) {
        char *p = chunk + l * LINE;
        p[0] = 'F';
        p[1] = ' ';
        for (unsigned i = 8; i < LINE - 1; i++)
            p[i] = (char)('a' + i % 26);
        p[7] = ' ';
        p[LINE - 1] = '\n';
    }
    gprintf("INFO dev_uart_flood: flooding\n");
    uint32_t sent = 0, line = 0;
    unsigned ticks = 0;
    uint8_t last = rtc_seconds();
    while (sent < CAP && ticks < SECONDS) {
        for (unsigned l = 0; l < CHUNK / LINE; l++)
            number(chunk + l * LINE + 2, line++);
        const char *s = chunk;
        uint32_t n = CHUNK;
        __asm__ volatile("cld; rep outsb" : "+S"(s), "+c"(n) : "d"(0x3f8) : "memory");
        sent += CHUNK;
        uint8_t now = rtc_seconds();
        ticks += now != last;
        last = now;
    }
    gprintf("INFO dev_uart_flood: sent %u bytes (%u lines) in %u RTC second ticks\n", sent, line, ticks);
    /* Through the burst, then no faster than the whole line's rate. */
    uint32_t most = BURST + LINE_BPS * (ticks + 1) + CHUNK;
    check(sent > BURST && sent <= most, "dev-uart-flood-paced",
          "%u bytes in %u RTC second ticks: want more than the %u-byte burst and at most %u", sent, ticks, BURST,
          most);
}
