/* The local APIC model (vmm/dev/vlapic.c) under any MMIO and x2APIC MSR accesses,
 * mode changes, arriving vectors, acknowledges and timer ticks with time moving on:
 * a pending vector is a real one (16-255) that is in the IRR, an acknowledge moves it
 * to the ISR, IPIs go out only through the callback, and the timer never asks to
 * fire in the past. */
#include "fuzz.h"
#include "vmm/dev/vlapic.c"
#include "vmm/snap.c"

static int ipis;
static void ipi(void *ctx, const struct vlapic_ipi *m) { (void)ctx; (void)m; ipis++; }
static void eoi_level(void *ctx, uint8_t v) { (void)ctx; (void)v; }

static bool bit(const uint32_t *a, unsigned v) { return a[v / 32] & (1u << (v % 32)); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = { data, size };
    struct vlapic_ops ops = { ipi, eoi_level, NULL };
    struct vlapic a;
    uint64_t now = 1000, tsc = 0;
    vlapic_init(&a, fz_u8(&in), fz_bool(&in), 1000000000ull, &ops);
    while (in.n) {
        uint8_t op = fz_u8(&in);
        switch (op & 7) {
        case 0:
            vlapic_mmio_write(&a, fz_u16(&in) & 0xfff, 1u << (op >> 6), fz_u32(&in), now);
            break;
        case 1:
            (void)vlapic_mmio_read(&a, fz_u16(&in) & 0xfff, 1u << (op >> 6), now);
            break;
        case 2: {
            uint64_t v = fz_u64(&in);
            (void)vlapic_msr_write(&a, 0x800 + fz_u8(&in), v, now);
            break;
        }
        case 3: {
            uint64_t v;
            (void)vlapic_msr_read(&a, 0x800 + fz_u8(&in), &v, now);
            break;
        }
        case 4:
            (void)vlapic_set_base_mode(&a, fz_bool(&in), fz_bool(&in));
            break;
        case 5:
            vlapic_accept(&a, fz_u8(&in), fz_bool(&in));
            break;
        case 6: {
            int v = vlapic_pending(&a);
            FUZZ_CHECK(v == -1 || (v >= 16 && v <= 255 && bit(a.irr, (unsigned)v)), "pending %d", v);
            if (v >= 0) {
                vlapic_ack(&a, (uint8_t)v);
                FUZZ_CHECK(bit(a.isr, (unsigned)v), "acknowledged %d not in ISR", v);
            }
            break;
        }
        default: {
            uint32_t step = fz_u32(&in);
            now += step;
            tsc += step;
            if (fz_bool(&in))
                vlapic_set_tsc_deadline(&a, tsc + fz_u16(&in));
            vlapic_tick(&a, now, tsc);
            uint64_t next = vlapic_next_timer_ns(&a);
            (void)next;
            break;
        }
        }
        FUZZ_CHECK((a.tpr & ~0xffu) == 0, "TPR %#x", a.tpr);
    }
    return 0;
}
