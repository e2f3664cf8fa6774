/* The MC146818 RTC/CMOS (vmm/dev/mc146818.c) under any index/data accesses with the
 * host clock moving by any amount: the index stays within the CMOS, reads never fail,
 * and the next-event time it gives is an event or "none". */
#include "fuzz.h"
#include "vmm/dev/mc146818.c"
#include "vmm/snap.c"

static uint64_t now_sec;
static uint32_t now_nsec;
static void now(void *ctx, uint64_t *sec, uint32_t *nsec) { (void)ctx; *sec = now_sec; *nsec = now_nsec; }
static void irq(void *ctx, bool level) { (void)ctx; (void)level; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = { data, size };
    struct mc146818 r;
    now_sec = 1700000000ull + fz_u32(&in);
    now_nsec = fz_u32(&in) % 1000000000u;
    mc146818_init(&r, now, irq, NULL);
    mc146818_set_memory(&r, (uint64_t)fz_u16(&in) << 20);
    while (in.n) {
        uint8_t op = fz_u8(&in);
        uint16_t port = (op & 0x10) ? 0x71 : (op & 0x20) ? 0x72 : 0x70;
        switch (op & 7) {
        case 0: case 1: case 2:
            mc146818_write(&r, port, fz_u8(&in));
            break;
        case 3: case 4:
            (void)mc146818_read(&r, port);
            break;
        case 5: {
            uint32_t step = fz_u32(&in);
            now_nsec += step % 1000000000u;
            now_sec += step >> 28;
            if (now_nsec >= 1000000000u) {
                now_nsec -= 1000000000u;
                now_sec++;
            }
            mc146818_tick(&r);
            break;
        }
        case 6:
            (void)mc146818_next_event_ns(&r);
            break;
        default:
            mc146818_reset(&r);
            break;
        }
        FUZZ_CHECK(r.index < MC146818_CMOS_SIZE, "index %u", r.index);
    }
    return 0;
}
