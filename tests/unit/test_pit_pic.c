/* The 8254 and the 8259A wired as on the PC: OUT0 drives IRQ 0.  Checks the
 * contract between the two models that the monitor relies on: each timer event
 * is one interrupt, a guest that acknowledges late still gets exactly one, and
 * reprogramming never loses or invents one. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/dev/i8254.c"
#include "vmm/dev/i8259.c"
#include "vmm/snap.c"

static uint64_t now_ns;
static struct i8254 pit;
static struct i8259 pic;

static uint64_t fake_clock(void *ctx)
{
    (void)ctx;
    return now_ns;
}

static void irq0(void *ctx, bool level)
{
    assert_true(i8259_set_irq(ctx, 0, level));
}

static int setup(void **state)
{
    (void)state;
    now_ns = 123456789;
    i8259_init(&pic, NULL, NULL);
    i8254_init(&pit, fake_clock, NULL, irq0, &pic);
    /* Linux: PIC at 0x20/0x28, only IRQ 0 open; PIT periodic at HZ=250. */
    static const uint8_t master[] = { 0x11, 0x20, 0x04, 0x01 }, slave[] = { 0x11, 0x28, 0x02, 0x01 };
    i8259_write(&pic, 0x20, master[0]);
    for (int i = 1; i < 4; i++)
        i8259_write(&pic, 0x21, master[i]);
    i8259_write(&pic, 0xa0, slave[0]);
    for (int i = 1; i < 4; i++)
        i8259_write(&pic, 0xa1, slave[i]);
    i8259_write(&pic, 0x21, 0xfe);
    i8259_write(&pic, 0xa1, 0xff);
    return 0;
}

static void start_periodic(uint16_t latch)
{
    i8254_write(&pit, 0x43, 0x34);
    i8254_write(&pit, 0x40, (uint8_t)latch);
    i8254_write(&pit, 0x40, (uint8_t)(latch >> 8));
}

/* The monitor's loop: fire the host timer at the next event, then inject. */
static void fire_timer(void)
{
    uint64_t at = i8254_next_event_ns(&pit);
    assert_true(at != I8254_NO_EVENT);
    if (at > now_ns)
        now_ns = at;
    i8254_update(&pit);
}

static void guest_takes_interrupt(void)
{
    assert_true(i8259_has_interrupt(&pic));
    assert_int_equal(i8259_acknowledge(&pic), 0x20);
    i8259_write(&pic, 0x20, 0x20);
}

static void test_periodic_one_interrupt_per_period(void **state)
{
    (void)state;
    start_periodic(4773);   /* HZ=250 */
    for (int i = 0; i < 250; i++) {
        assert_false(i8259_has_interrupt(&pic));
        fire_timer();
        guest_takes_interrupt();
    }
    assert_false(i8259_has_interrupt(&pic));
}

static void test_late_guest_gets_one(void **state)
{
    (void)state;
    start_periodic(4773);
    fire_timer();
    fire_timer();   /* the guest had interrupts off for three periods */
    fire_timer();
    guest_takes_interrupt();
    assert_false(i8259_has_interrupt(&pic));
    /* In service, not yet EOId, when the next period ends: held, then delivered. */
    fire_timer();
    assert_int_equal(i8259_acknowledge(&pic), 0x20);
    fire_timer();
    assert_false(i8259_has_interrupt(&pic));
    i8259_write(&pic, 0x20, 0x20);
    guest_takes_interrupt();
}

static void test_one_shot_mode4_then_masked(void **state)
{
    (void)state;
    i8254_write(&pit, 0x43, 0x38);
    assert_int_equal(i8254_next_event_ns(&pit), I8254_NO_EVENT);
    for (uint16_t delta = 100; delta < 2000; delta += 300) {
        i8254_write(&pit, 0x40, (uint8_t)delta);
        i8254_write(&pit, 0x40, (uint8_t)(delta >> 8));
        uint64_t before = now_ns;
        fire_timer();
        /* delta + 2 clocks after the write: load, count to 0, one clock low. */
        assert_int_equal(ticks_of_ns(now_ns) - ticks_of_ns(before), delta + 2u);
        guest_takes_interrupt();
        assert_int_equal(i8254_next_event_ns(&pit), I8254_NO_EVENT);
    }
    /* Masked at the PIC: the request waits in IRR. */
    i8259_write(&pic, 0x21, 0xff);
    i8254_write(&pit, 0x40, 50);
    i8254_write(&pit, 0x40, 0);
    fire_timer();
    assert_false(i8259_has_interrupt(&pic));
    assert_int_equal(i8259_read(&pic, 0x20) & 1, 1);
    i8259_write(&pic, 0x21, 0xfe);
    guest_takes_interrupt();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_periodic_one_interrupt_per_period, setup),
        cmocka_unit_test_setup(test_late_guest_gets_one, setup),
        cmocka_unit_test_setup(test_one_shot_mode4_then_masked, setup),
    };
    return cmocka_run_group_tests_name("pit_pic", tests, NULL, NULL);
}
