/* The 8259A pair (vmm/dev/i8259.c) under any command/data writes, reads, IRQ line
 * changes and acknowledges: an acknowledge gives a vector of the programmed base
 * (IR7/IR15 when spurious, 0xff from a floating bus), its INT output follows has_interrupt, and the chips'
 * state stays within its ranges. */
#include "fuzz.h"
#include "vmm/dev/i8259.c"
#include "vmm/snap.c"

static bool intr;
static void intr_fn(void *ctx, bool level) { (void)ctx; intr = level; }

static void chip_ok(const struct i8259_chip *c)
{
    FUZZ_CHECK(c->init_step == 0 || (c->init_step >= 2 && c->init_step <= 4), "init step %u", c->init_step);
    FUZZ_CHECK(c->lowest < 8, "lowest %u", c->lowest);
    FUZZ_CHECK((c->vector_base & 7) == 0, "vector base %#x", c->vector_base);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = { data, size };
    static const uint16_t ports[] = { 0x20, 0x21, 0xa0, 0xa1, 0x4d0, 0x4d1, 0x22 };
    struct i8259 pic;
    intr = false;
    i8259_init(&pic, intr_fn, NULL);
    while (in.n) {
        uint8_t op = fz_u8(&in);
        uint16_t port = ports[(op >> 3) % 7];
        switch (op & 7) {
        case 0: case 1: case 2:
            i8259_write(&pic, port, fz_u8(&in));
            break;
        case 3:
            (void)i8259_read(&pic, port);
            break;
        case 4: case 5:
            i8259_set_irq(&pic, fz_u8(&in) % 17, op & 1);   /* 16: past the lines */
            break;
        default:
            if (i8259_has_interrupt(&pic)) {
                uint8_t v = i8259_acknowledge(&pic);
                uint8_t mb = pic.master.vector_base, sb = pic.slave.vector_base;
                /* 0xff: a cascade no slave answers leaves the data bus floating. */
                FUZZ_CHECK((v >= mb && v < mb + 8) || (v >= sb && v < sb + 8) || v == 0xff,
                           "vector %#x (bases %#x %#x)", v, mb, sb);
            }
            break;
        }
        chip_ok(&pic.master);
        chip_ok(&pic.slave);
        FUZZ_CHECK(intr == pic.intr, "INT line %d, model %d", intr, pic.intr);
    }
    return 0;
}
