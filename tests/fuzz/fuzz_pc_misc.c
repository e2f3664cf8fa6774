/* The i8042, port 0x92, reset control and ACPI PM block (vmm/dev/pc_misc.c) under
 * any byte accesses to every port it decodes and some it does not, with the clock
 * moving on: undecoded ports read all ones, and the reset and poweroff actions come
 * only from the writes that ask for them. */
#include "fuzz.h"
#include "vmm/dev/pc_misc.c"
#include "vmm/snap.c"

static uint64_t now;
static int resets, poweroffs;
static uint64_t now_ns(void *ctx) { (void)ctx; return now; }
static void reset(void *ctx) { (void)ctx; resets++; }
static void poweroff(void *ctx) { (void)ctx; poweroffs++; }
static void line(void *ctx, bool level) { (void)ctx; (void)level; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = { data, size };
    static const uint16_t ports[] = { 0x60, 0x64, 0x92, 0xcf9, 0x600, 0x601, 0x602, 0x603, 0x604,
                                      0x605, 0x606, 0x607, 0x608, 0x609, 0x60a, 0x60b, 0x61, 0x3ff };
    struct pc_misc m;
    struct pc_misc_config cfg = { .pm_base = 0x600, .s5_slp_typ = 5, .pm_timer_32bit = fz_bool(&in),
                                  .now_ns = now_ns, .reset = reset, .poweroff = poweroff, .sci = line,
                                  .kbd_irq = line, .aux_irq = line };
    now = 0;
    resets = poweroffs = 0;
    FUZZ_CHECK(pc_misc_init(&m, &cfg), "a sound configuration refused");
    while (in.n) {
        uint8_t op = fz_u8(&in);
        uint16_t port = ports[(op >> 2) % (sizeof ports / sizeof ports[0])];
        int r0 = resets, p0 = poweroffs;
        switch (op & 3) {
        case 0: case 1:
            pc_misc_write(&m, port, fz_u8(&in));
            break;
        case 2: {
            uint8_t v = pc_misc_read(&m, port);
            FUZZ_CHECK(pc_misc_decodes(&m, port) || v == 0xff, "undecoded port %#x read %#x", port, v);
            break;
        }
        default:
            now += fz_u32(&in);
            pc_misc_tick(&m);
            (void)pc_misc_next_event_ns(&m);
            if (fz_u8(&in) == 0x42)
                pc_misc_power_button(&m);
            break;
        }
        if ((op & 3) > 1)
            FUZZ_CHECK(resets == r0 && poweroffs == p0, "a read or the clock reset or powered off");
    }
    return 0;
}
