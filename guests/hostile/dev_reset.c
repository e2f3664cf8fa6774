/* dev_reset: every way a PC guest resets or powers off its machine, one per boot,
 * counted in CMOS byte 0x50 (CMOS keeps its contents across a reset, as a battery-
 * backed one does; RAM does not): the Reset Control Register (0xcf9 = 0x06), port A
 * bit 0 rising (0x92, by a REP OUTSB of 4 KiB whose second byte resets), the i8042
 * pulse command (0x64 = 0xfe) and its output-port write with the reset line low
 * (0xd1, then 0x60 = 0xfe), each restarting this VM alone (the neighbour runs on);
 * then ACPI S5 (PM1a_CNT SLP_TYP 5 with SLP_EN), which stops it.  Each boot checks
 * that the one before restarted it: RAM cleared (a marker at 3 MiB gone). */
#include "hostile.h"

#define STEP_INDEX 0x50
#define MARKER ((volatile uint32_t *)0x300000)
#define MARK 0x5eb00700u

static const char *const how[] = { "dev-reset-cf9", "dev-reset-port92-rep-outsb", "dev-reset-kbc-pulse",
                                   "dev-reset-kbc-output-port" };

static uint8_t buf[4096];

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic; (void)mbi;
    guest_name = "dev_reset";
    uint8_t step = cmos_read(STEP_INDEX);
    gprintf("INFO dev_reset: boot (step %u)\n", step);
    if (step > 4) {
        fail("dev-reset-steps", "CMOS step %u: not a step this guest takes", step);
        return;
    }
    if (step > 0)
        check(*MARKER != MARK, how[step - 1], "the VM went on with RAM from before the reset");
    *MARKER = MARK;
    cmos_write(STEP_INDEX, (uint8_t)(step + 1));
    switch (step) {
    case 0:
        outb(0xcf9, 0x06);
        break;
    case 1: {
        /* 0x02 (A20 only), then 0x03: bit 0 rises on the second element. */
        for (unsigned i = 0; i < sizeof buf; i++)
            buf[i] = (uint8_t)(i & 1 ? 0x03 : 0x02);
        const uint8_t *s = buf;
        uint32_t n = sizeof buf;
        __asm__ volatile("cld; rep outsb" : "+S"(s), "+c"(n) : "d"(0x92) : "memory");
        break;
    }
    case 2:
        outb(0x64, 0xfe);
        break;
    case 3:
        outb(0x64, 0xd1);
        outb(0x60, 0xfe);
        break;
    case 4:
        outw(0x604, 5u << 10 | 0x2000);
        fail("dev-reset-s5", "the VM went on after entering S5");
        return;
    }
    fail(how[step], "the VM went on after the write");
}
