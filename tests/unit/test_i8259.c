/* The guest-visible 8259A pair: initialization, masks, priorities, EOI forms,
 * rotation, edge/level and ELCR, spurious IRQ 7, poll, special modes, cascade. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/dev/i8259.c"
#include "vmm/snap.c"
#include "snap_test.h"

struct intr_sink {
    int changes;
    bool level;
};

static void sink_intr(void *ctx, bool level)
{
    struct intr_sink *s = ctx;
    s->changes++;
    s->level = level;
}

static struct i8259 pic;
static struct intr_sink sink;

static int setup(void **state)
{
    (void)state;
    memset(&sink, 0, sizeof sink);
    i8259_init(&pic, sink_intr, &sink);
    return 0;
}

/* Linux's init_8259A(): ICW1 edge/cascade/ICW4, vectors 0x20/0x28, slave on IR2,
 * 8086 mode; all masked; then the masks it keeps (here: only the cascade open). */
static void linux_init(void)
{
    i8259_write(&pic, 0x21, 0xff);
    i8259_write(&pic, 0xa1, 0xff);
    i8259_write(&pic, 0x20, 0x11);
    i8259_write(&pic, 0x21, 0x20);
    i8259_write(&pic, 0x21, 0x04);
    i8259_write(&pic, 0x21, 0x01);
    i8259_write(&pic, 0xa0, 0x11);
    i8259_write(&pic, 0xa1, 0x28);
    i8259_write(&pic, 0xa1, 0x02);
    i8259_write(&pic, 0xa1, 0x01);
    i8259_write(&pic, 0x21, 0xff);
    i8259_write(&pic, 0xa1, 0xff);
}

static void unmask(unsigned irq)
{
    if (irq >= 8) {
        i8259_write(&pic, 0xa1, i8259_read(&pic, 0xa1) & ~(1u << (irq - 8)));
        irq = 2;
    }
    i8259_write(&pic, 0x21, i8259_read(&pic, 0x21) & ~(1u << irq));
}

static uint8_t read_isr(uint16_t cmd)
{
    i8259_write(&pic, cmd, 0x0b);
    uint8_t v = i8259_read(&pic, cmd);
    i8259_write(&pic, cmd, 0x0a);
    return v;
}

static void pulse(unsigned irq)
{
    assert_true(i8259_set_irq(&pic, irq, false));
    assert_true(i8259_set_irq(&pic, irq, true));
}

static void test_power_on(void **state)
{
    (void)state;
    assert_int_equal(i8259_read(&pic, 0x21), 0xff);
    assert_int_equal(i8259_read(&pic, 0xa1), 0xff);
    assert_int_equal(i8259_read(&pic, 0x20), 0);
    assert_int_equal(i8259_read(&pic, 0x4d0), 0);
    i8259_set_irq(&pic, 0, true);
    assert_false(i8259_has_interrupt(&pic)); /* masked until programmed */
    assert_int_equal(i8259_read(&pic, 0x20), 0x01); /* yet visible in IRR */
    assert_int_equal(sink.changes, 0);
}

static void test_bad_lines_and_ports(void **state)
{
    (void)state;
    linux_init();
    assert_false(i8259_set_irq(&pic, 16, true));
    assert_false(i8259_set_irq(&pic, 2, true)); /* the cascade is internal */
    assert_false(i8259_set_irq(&pic, 0xffffffffu, true));
    assert_int_equal(i8259_read(&pic, 0x22), 0xff);
    assert_int_equal(i8259_read(&pic, 0xa2), 0xff);
    assert_int_equal(i8259_read(&pic, 0x4d2), 0xff);
    i8259_write(&pic, 0x22, 0x00);
    i8259_write(&pic, 0x4cf, 0xff);
    assert_int_equal(i8259_read(&pic, 0x21), 0xff);
    assert_int_equal(i8259_read(&pic, 0x4d0), 0);
    assert_false(i8259_has_interrupt(&pic));
    /* Through the bus-shaped entry points as well. */
    i8259_io_write(&pic, 0x21, 0x5a);
    assert_int_equal(i8259_io_read(&pic, 0x21), 0x5a);
}

static void test_linux_init_and_timer_irq(void **state)
{
    (void)state;
    linux_init();
    assert_int_equal(i8259_read(&pic, 0x21), 0xff);
    unmask(0);
    assert_int_equal(i8259_read(&pic, 0x21), 0xfe);
    i8259_set_irq(&pic, 0, true);
    assert_true(i8259_has_interrupt(&pic));
    assert_true(sink.level);
    assert_int_equal(i8259_acknowledge(&pic), 0x20);
    assert_false(i8259_has_interrupt(&pic));
    assert_false(sink.level);
    assert_int_equal(read_isr(0x20), 0x01);
    assert_int_equal(i8259_read(&pic, 0x20), 0); /* IRR: edge latch consumed */
    i8259_write(&pic, 0x20, 0x20);               /* non-specific EOI */
    assert_int_equal(read_isr(0x20), 0);
    assert_false(i8259_has_interrupt(&pic)); /* line still high: no new edge */
    pulse(0);
    assert_true(i8259_has_interrupt(&pic));
    assert_int_equal(i8259_acknowledge(&pic), 0x20);
    assert_int_equal(sink.changes, 4);
}

static void test_seabios_vectors(void **state)
{
    (void)state;
    /* SeaBIOS maps IRQ 0-7 at 0x08 and 8-15 at 0x70, the PC BIOS layout. */
    i8259_write(&pic, 0x20, 0x11);
    i8259_write(&pic, 0x21, 0x08);
    i8259_write(&pic, 0x21, 0x04);
    i8259_write(&pic, 0x21, 0x01);
    i8259_write(&pic, 0xa0, 0x11);
    i8259_write(&pic, 0xa1, 0x70);
    i8259_write(&pic, 0xa1, 0x02);
    i8259_write(&pic, 0xa1, 0x01);
    /* ICW1 cleared the masks. */
    assert_int_equal(i8259_read(&pic, 0x21), 0);
    i8259_set_irq(&pic, 8, true);
    assert_true(i8259_has_interrupt(&pic));
    assert_int_equal(i8259_acknowledge(&pic), 0x70);
    i8259_set_irq(&pic, 1, true);
    /* IR2 (the RTC's path) is in service on the master: IR1 still preempts it. */
    assert_int_equal(i8259_acknowledge(&pic), 0x09);
}

static void test_slave_cascade_and_eoi(void **state)
{
    (void)state;
    linux_init();
    unmask(12);
    i8259_set_irq(&pic, 12, true);
    assert_true(i8259_has_interrupt(&pic));
    assert_int_equal(i8259_read(&pic, 0x20), 0x04); /* master IRR: IR2 */
    assert_int_equal(i8259_acknowledge(&pic), 0x2c);
    assert_int_equal(read_isr(0xa0), 0x10);
    assert_int_equal(read_isr(0x20), 0x04);
    /* Linux's order: specific EOI to the slave, then to the master's IR2. */
    i8259_write(&pic, 0xa0, 0x60 | 4);
    i8259_write(&pic, 0x20, 0x60 | 2);
    assert_int_equal(read_isr(0xa0), 0);
    assert_int_equal(read_isr(0x20), 0);
    assert_false(i8259_has_interrupt(&pic));
}

static void test_two_slave_requests_both_arrive(void **state)
{
    (void)state;
    linux_init();
    unmask(9);
    unmask(12);
    i8259_set_irq(&pic, 12, true);
    i8259_set_irq(&pic, 9, true);
    assert_int_equal(i8259_acknowledge(&pic), 0x29);
    /* Master IR2 in service holds the second one off until its EOI... */
    assert_false(i8259_has_interrupt(&pic));
    i8259_write(&pic, 0xa0, 0x20);
    i8259_write(&pic, 0x20, 0x20);
    /* ...after which the slave's still-raised INT is a request again. */
    assert_true(i8259_has_interrupt(&pic));
    assert_int_equal(i8259_acknowledge(&pic), 0x2c);
}

/* With auto-EOI on both chips nothing stays in service: a second slave request,
 * already pending when the first is acknowledged, must still reach the master. */
static void test_slave_aeoi_back_to_back(void **state)
{
    (void)state;
    i8259_write(&pic, 0x20, 0x11);
    i8259_write(&pic, 0x21, 0x20);
    i8259_write(&pic, 0x21, 0x04);
    i8259_write(&pic, 0x21, 0x03);
    i8259_write(&pic, 0xa0, 0x11);
    i8259_write(&pic, 0xa1, 0x28);
    i8259_write(&pic, 0xa1, 0x02);
    i8259_write(&pic, 0xa1, 0x03);
    i8259_write(&pic, 0x21, 0xfb);
    i8259_write(&pic, 0xa1, 0x00);
    i8259_set_irq(&pic, 12, true);
    i8259_set_irq(&pic, 9, true);
    assert_int_equal(i8259_acknowledge(&pic), 0x29);
    assert_true(i8259_has_interrupt(&pic));
    assert_int_equal(i8259_acknowledge(&pic), 0x2c);
    assert_false(i8259_has_interrupt(&pic));
}

static void test_priority_nesting(void **state)
{
    (void)state;
    linux_init();
    i8259_write(&pic, 0x21, 0x00);
    i8259_set_irq(&pic, 3, true);
    i8259_set_irq(&pic, 1, true);
    assert_int_equal(i8259_acknowledge(&pic), 0x21);
    assert_false(i8259_has_interrupt(&pic)); /* IR3 is below IR1 in service */
    assert_int_equal(i8259_read(&pic, 0x20), 0x08);
    i8259_set_irq(&pic, 0, true);
    assert_true(i8259_has_interrupt(&pic)); /* IR0 preempts */
    assert_int_equal(i8259_acknowledge(&pic), 0x20);
    assert_int_equal(read_isr(0x20), 0x03);
    i8259_write(&pic, 0x20, 0x20);           /* clears IR0, the highest */
    assert_int_equal(read_isr(0x20), 0x02);
    assert_false(i8259_has_interrupt(&pic));
    i8259_write(&pic, 0x20, 0x20);
    assert_true(i8259_has_interrupt(&pic));
    assert_int_equal(i8259_acknowledge(&pic), 0x23);
}

static void test_mask_holds_request(void **state)
{
    (void)state;
    linux_init();
    i8259_set_irq(&pic, 4, true);
    assert_false(i8259_has_interrupt(&pic));
    assert_int_equal(i8259_read(&pic, 0x20), 0x10);
    unmask(4);
    assert_true(i8259_has_interrupt(&pic));
    i8259_write(&pic, 0x21, 0xff);
    assert_false(i8259_has_interrupt(&pic));
    /* An acknowledge with everything masked is spurious. */
    assert_int_equal(i8259_acknowledge(&pic), 0x27);
    assert_int_equal(read_isr(0x20), 0);
}

static void test_spurious_edge_withdrawn(void **state)
{
    (void)state;
    linux_init();
    unmask(5);
    i8259_set_irq(&pic, 5, true);
    assert_true(i8259_has_interrupt(&pic));
    i8259_set_irq(&pic, 5, false);  /* gone before INTA */
    assert_false(i8259_has_interrupt(&pic));
    assert_int_equal(i8259_acknowledge(&pic), 0x27);
    assert_int_equal(read_isr(0x20), 0); /* no ISR bit for a spurious IRQ 7 */
    assert_int_equal(i8259_read(&pic, 0x20), 0);
    /* With nothing at all pending the same. */
    assert_int_equal(i8259_acknowledge(&pic), 0x27);
    /* A real IRQ 7 does set its ISR bit: that is how the OS tells them apart. */
    unmask(7);
    i8259_set_irq(&pic, 7, true);
    assert_int_equal(i8259_acknowledge(&pic), 0x27);
    assert_int_equal(read_isr(0x20), 0x80);
}

static void test_slave_withdrawn_is_spurious(void **state)
{
    (void)state;
    linux_init();
    unmask(11);
    i8259_write(&pic, 0x4d1, 0x08);       /* IRQ 11 level-triggered */
    i8259_set_irq(&pic, 11, true);
    assert_true(i8259_has_interrupt(&pic));
    i8259_set_irq(&pic, 11, false);
    assert_false(i8259_has_interrupt(&pic));
    assert_int_equal(i8259_acknowledge(&pic), 0x27);
    assert_int_equal(read_isr(0x20), 0);
    assert_int_equal(read_isr(0xa0), 0);
}

static void test_elcr_level(void **state)
{
    (void)state;
    linux_init();
    i8259_write(&pic, 0x4d0, 0xff);
    i8259_write(&pic, 0x4d1, 0xff);
    assert_int_equal(i8259_read(&pic, 0x4d0), 0xf8); /* IRQ 0-2 edge-only */
    assert_int_equal(i8259_read(&pic, 0x4d1), 0xde); /* IRQ 8, 13 edge-only */
    i8259_write(&pic, 0x4d1, 0x08);
    unmask(11);
    i8259_set_irq(&pic, 11, true);
    assert_int_equal(i8259_acknowledge(&pic), 0x2b);
    assert_int_equal(i8259_read(&pic, 0xa0), 0x08); /* IRR follows the line */
    i8259_write(&pic, 0xa0, 0x20);
    i8259_write(&pic, 0x20, 0x20);
    /* The device still holds the line: the same interrupt again, no edge needed. */
    assert_true(i8259_has_interrupt(&pic));
    assert_int_equal(i8259_acknowledge(&pic), 0x2b);
    i8259_set_irq(&pic, 11, false);
    i8259_write(&pic, 0xa0, 0x20);
    i8259_write(&pic, 0x20, 0x20);
    assert_false(i8259_has_interrupt(&pic));
    /* Switching a held-high line to level makes it a request at once. */
    i8259_write(&pic, 0x4d1, 0x00);
    unmask(10);
    i8259_set_irq(&pic, 10, true);
    assert_int_equal(i8259_acknowledge(&pic), 0x2a);
    i8259_write(&pic, 0xa0, 0x20);
    i8259_write(&pic, 0x20, 0x20);
    assert_false(i8259_has_interrupt(&pic));
    i8259_write(&pic, 0x4d1, 0x04);
    assert_true(i8259_has_interrupt(&pic));
}

static void test_icw1_ltim_all_level(void **state)
{
    (void)state;
    i8259_write(&pic, 0x20, 0x11 | 0x08);
    i8259_write(&pic, 0x21, 0x20);
    i8259_write(&pic, 0x21, 0x04);
    i8259_write(&pic, 0x21, 0x01);
    i8259_write(&pic, 0x21, 0xfe);
    i8259_set_irq(&pic, 0, true);
    assert_int_equal(i8259_acknowledge(&pic), 0x20);
    i8259_write(&pic, 0x20, 0x20);
    assert_true(i8259_has_interrupt(&pic));
}

static void test_auto_eoi_and_rotation(void **state)
{
    (void)state;
    i8259_write(&pic, 0x20, 0x11);
    i8259_write(&pic, 0x21, 0x20);
    i8259_write(&pic, 0x21, 0x04);
    i8259_write(&pic, 0x21, 0x03);  /* 8086 mode, auto-EOI */
    i8259_write(&pic, 0x21, 0x00);
    i8259_set_irq(&pic, 3, true);
    assert_int_equal(i8259_acknowledge(&pic), 0x23);
    assert_int_equal(read_isr(0x20), 0);
    /* Nothing in service: a lower-priority request goes straight through. */
    i8259_set_irq(&pic, 6, true);
    assert_true(i8259_has_interrupt(&pic));
    assert_int_equal(i8259_acknowledge(&pic), 0x26);

    /* Rotate in auto-EOI mode: the acknowledged level becomes the lowest. */
    i8259_write(&pic, 0x20, 0x80);
    i8259_set_irq(&pic, 0, true);
    assert_int_equal(i8259_acknowledge(&pic), 0x20);
    pulse(0);
    i8259_set_irq(&pic, 1, true);
    assert_int_equal(i8259_acknowledge(&pic), 0x21); /* 1 now outranks 0 */
    assert_int_equal(i8259_acknowledge(&pic), 0x20); /* lowest is 1 now: 0 next */
    /* Clear rotate-in-AEOI: IR0 stays the lowest, as the last rotation left it. */
    i8259_write(&pic, 0x20, 0x00);
    pulse(1);
    pulse(3);
    assert_int_equal(i8259_acknowledge(&pic), 0x21);
    assert_int_equal(i8259_acknowledge(&pic), 0x23);
    pulse(0);
    pulse(7);
    assert_int_equal(i8259_acknowledge(&pic), 0x27);
    assert_int_equal(i8259_acknowledge(&pic), 0x20);
    assert_int_equal(read_isr(0x20), 0);
}

static void test_rotate_on_eoi_and_set_priority(void **state)
{
    (void)state;
    linux_init();
    i8259_write(&pic, 0x21, 0x00);
    i8259_set_irq(&pic, 0, true);
    assert_int_equal(i8259_acknowledge(&pic), 0x20);
    i8259_write(&pic, 0x20, 0xa0);  /* rotate on non-specific EOI: IR0 lowest */
    assert_int_equal(read_isr(0x20), 0);
    pulse(0);
    i8259_set_irq(&pic, 5, true);
    assert_int_equal(i8259_acknowledge(&pic), 0x25);
    /* IR0 is below IR5 now, so IR5 in service holds it off. */
    assert_false(i8259_has_interrupt(&pic));
    i8259_write(&pic, 0x20, 0xe0 | 5);  /* rotate on specific EOI: IR5 lowest */
    assert_int_equal(read_isr(0x20), 0);
    assert_int_equal(i8259_acknowledge(&pic), 0x20);
    i8259_write(&pic, 0x20, 0x60 | 0);  /* specific EOI, no rotation */
    /* Set priority: IR4 lowest, so IR5 the highest. */
    i8259_write(&pic, 0x20, 0xc0 | 4);
    pulse(3);
    pulse(6);
    assert_int_equal(i8259_acknowledge(&pic), 0x26);
    i8259_write(&pic, 0x20, 0x20);
    assert_int_equal(i8259_acknowledge(&pic), 0x23);
    /* OCW2 no-operation and a specific EOI of an idle level change nothing. */
    i8259_write(&pic, 0x20, 0x40);
    i8259_write(&pic, 0x20, 0x60 | 1);
    assert_int_equal(read_isr(0x20), 0x08);
}

static void test_ocw3_reads_and_poll(void **state)
{
    (void)state;
    linux_init();
    i8259_set_irq(&pic, 6, true);
    assert_int_equal(i8259_read(&pic, 0x20), 0x40); /* IRR by default */
    i8259_write(&pic, 0x20, 0x0b);
    assert_int_equal(i8259_read(&pic, 0x20), 0x00); /* ISR */
    i8259_write(&pic, 0x20, 0x08);                  /* RR=0: selection kept */
    assert_int_equal(i8259_read(&pic, 0x20), 0x00);
    i8259_write(&pic, 0x20, 0x0a);
    assert_int_equal(i8259_read(&pic, 0x20), 0x40);
    /* Poll: masked requests do not count; unmasked it is acknowledged by the read. */
    i8259_write(&pic, 0x20, 0x0c);
    assert_int_equal(i8259_read(&pic, 0x21), 0x00);
    unmask(6);
    i8259_write(&pic, 0x20, 0x0c);
    assert_int_equal(i8259_read(&pic, 0x20), 0x86);
    assert_int_equal(read_isr(0x20), 0x40);
    /* The poll is one read only; the data port reads the IMR again. */
    assert_int_equal(i8259_read(&pic, 0x21), 0xbf);
    assert_false(i8259_has_interrupt(&pic));
}

static void test_special_mask_mode(void **state)
{
    (void)state;
    linux_init();
    i8259_write(&pic, 0x21, 0x00);
    i8259_set_irq(&pic, 3, true);
    assert_int_equal(i8259_acknowledge(&pic), 0x23);
    i8259_set_irq(&pic, 5, true);
    assert_false(i8259_has_interrupt(&pic));
    i8259_write(&pic, 0x21, 0x08);  /* mask the level in service */
    assert_false(i8259_has_interrupt(&pic));
    i8259_write(&pic, 0x20, 0x68);  /* ESMM|SMM: set special mask mode */
    assert_true(i8259_has_interrupt(&pic));
    assert_int_equal(i8259_acknowledge(&pic), 0x25);
    /* Non-specific EOI in special mask mode skips the masked IR3. */
    i8259_write(&pic, 0x20, 0x20);
    assert_int_equal(read_isr(0x20), 0x08);
    i8259_write(&pic, 0x20, 0x48);  /* ESMM alone: reset special mask mode */
    i8259_write(&pic, 0x20, 0x28);  /* SMM without ESMM: ignored */
    i8259_set_irq(&pic, 5, false);
    i8259_set_irq(&pic, 5, true);
    assert_false(i8259_has_interrupt(&pic)); /* IR3 blocks again */
    i8259_write(&pic, 0x20, 0x20);
    assert_int_equal(read_isr(0x20), 0);
    assert_true(i8259_has_interrupt(&pic));
}

static void test_special_fully_nested(void **state)
{
    (void)state;
    for (int sfnm = 0; sfnm <= 1; sfnm++) {
        i8259_init(&pic, NULL, NULL);
        linux_init();
        i8259_write(&pic, 0x20, 0x11);
        i8259_write(&pic, 0x21, 0x20);
        i8259_write(&pic, 0x21, 0x04);
        i8259_write(&pic, 0x21, sfnm ? 0x11 : 0x01);
        i8259_write(&pic, 0x21, 0xfb);
        i8259_write(&pic, 0xa1, 0x00);
        i8259_set_irq(&pic, 12, true);
        assert_int_equal(i8259_acknowledge(&pic), 0x2c);
        i8259_set_irq(&pic, 9, true); /* higher priority on the same slave */
        assert_int_equal(i8259_has_interrupt(&pic), sfnm == 1);
        if (sfnm)
            assert_int_equal(i8259_acknowledge(&pic), 0x29);
    }
}

static void test_init_sequence_restart_and_short_forms(void **state)
{
    (void)state;
    linux_init();
    /* Interrupted after ICW2: a new ICW1 starts over, the next data write is ICW2. */
    i8259_write(&pic, 0x20, 0x11);
    i8259_write(&pic, 0x21, 0x40);
    i8259_write(&pic, 0x20, 0x11);
    i8259_write(&pic, 0x21, 0x30);
    i8259_write(&pic, 0x21, 0x04);
    i8259_write(&pic, 0x21, 0x01);
    i8259_write(&pic, 0x21, 0xfe);
    assert_int_equal(i8259_read(&pic, 0x21), 0xfe);
    i8259_set_irq(&pic, 0, true);
    assert_int_equal(i8259_acknowledge(&pic), 0x30);
    /* ICW1 mid-service drops the in-service state and re-arms edges: a held line
     * must rise again. */
    i8259_write(&pic, 0x20, 0x13);  /* single, ICW4 follows: no ICW3 */
    assert_int_equal(read_isr(0x20), 0);
    i8259_write(&pic, 0x21, 0x48);  /* vector low bits ignored */
    i8259_write(&pic, 0x21, 0x01);  /* ICW4 */
    i8259_write(&pic, 0x21, 0xfe);  /* OCW1 */
    assert_int_equal(i8259_read(&pic, 0x21), 0xfe);
    assert_false(i8259_has_interrupt(&pic));
    pulse(0);
    assert_int_equal(i8259_acknowledge(&pic), 0x48);
    /* Single, no ICW4: ICW2 ends the sequence. */
    i8259_write(&pic, 0x20, 0x12);
    i8259_write(&pic, 0x21, 0x50);
    i8259_write(&pic, 0x21, 0x7f);
    assert_int_equal(i8259_read(&pic, 0x21), 0x7f);
    /* Reads during initialization do not disturb the sequence. */
    i8259_write(&pic, 0x20, 0x11);
    assert_int_equal(i8259_read(&pic, 0x21), 0x00);
    i8259_write(&pic, 0x21, 0x60);
    (void)i8259_read(&pic, 0x20);
    i8259_write(&pic, 0x21, 0x04);
    i8259_write(&pic, 0x21, 0x01);
    i8259_write(&pic, 0x21, 0xaa);
    assert_int_equal(i8259_read(&pic, 0x21), 0xaa);
}

static void test_single_mode_master_ignores_slave(void **state)
{
    (void)state;
    i8259_write(&pic, 0x20, 0x13);
    i8259_write(&pic, 0x21, 0x20);
    i8259_write(&pic, 0x21, 0x01);
    i8259_write(&pic, 0x21, 0x00);
    i8259_write(&pic, 0xa0, 0x11);
    i8259_write(&pic, 0xa1, 0x28);
    i8259_write(&pic, 0xa1, 0x02);
    i8259_write(&pic, 0xa1, 0x01);
    i8259_set_irq(&pic, 9, true);
    /* IR2 is an ordinary input of a single master: its own vector. */
    assert_int_equal(i8259_acknowledge(&pic), 0x22);
}

static void test_cascade_id_mismatch_floats(void **state)
{
    (void)state;
    linux_init();
    i8259_write(&pic, 0xa0, 0x11);
    i8259_write(&pic, 0xa1, 0x28);
    i8259_write(&pic, 0xa1, 0x03);  /* wrong slave ID */
    i8259_write(&pic, 0xa1, 0x01);
    unmask(8);
    i8259_set_irq(&pic, 8, true);
    assert_int_equal(i8259_acknowledge(&pic), 0xff);
}

/* ---- snapshots ---- */

static size_t save_pic(const struct i8259 *p, uint8_t *buf)
{
    struct snap st;
    snap_save_begin(&st, buf, SNAP_TEST_BUF);
    assert_true(i8259_save(p, &st));
    size_t n = snap_save_end(&st);
    assert_true(n > SNAP_HEADER_BYTES);
    return n;
}

static bool load_pic(void *model, struct snap *st)
{
    return i8259_load(model, st);
}

/* Linux's programming; IRQ 1 in service, IRQ 0 requested above it (INT high), IRQ 9
 * level-triggered and held high on the slave, the slave reading ISR, the master's
 * priority rotated. */
static void busy_pic(void)
{
    linux_init();
    unmask(0);
    unmask(1);
    unmask(9);
    i8259_write(&pic, 0x4d1, 0x02);
    i8259_write(&pic, 0x20, 0xc6);               /* set priority: IR6 lowest, IR7 highest */
    pulse(1);
    assert_int_equal(i8259_acknowledge(&pic), 0x21);
    pulse(0);
    assert_true(i8259_set_irq(&pic, 9, true));
    i8259_write(&pic, 0xa0, 0x0b);
    assert_true(i8259_has_interrupt(&pic));
    assert_int_equal(pic.master.lowest, 6);
}

/* What the guest sees next, for comparing two pairs step by step. */
static void run_guest(struct i8259 *p, uint8_t out[8])
{
    out[0] = i8259_acknowledge(p);              /* IRQ 0 */
    out[1] = i8259_read(p, 0x20);
    i8259_write(p, 0x20, 0x20);                 /* EOI: IRQ 0 */
    i8259_write(p, 0x20, 0x20);                 /* EOI: IRQ 1 */
    out[2] = i8259_acknowledge(p);              /* IRQ 9, through the cascade */
    out[3] = i8259_read(p, 0xa0);               /* slave ISR */
    i8259_write(p, 0xa0, 0x20);
    i8259_write(p, 0x20, 0x20);
    out[4] = i8259_has_interrupt(p);            /* the level line asks again */
    out[5] = i8259_acknowledge(p);
    out[6] = i8259_read(p, 0x21);
    out[7] = i8259_read(p, 0x4d1);
}

static void test_snapshot_round_trip(void **state)
{
    (void)state;
    busy_pic();
    uint8_t a[SNAP_TEST_BUF], b[SNAP_TEST_BUF];
    size_t n = save_pic(&pic, a);

    struct intr_sink s2 = { 0 };
    struct i8259 q;
    i8259_init(&q, sink_intr, &s2);
    struct snap st;
    assert_true(snap_load_begin(&st, a, n));
    assert_true(i8259_load(&q, &st));
    assert_true(snap_load_end(&st));
    assert_int_equal(s2.changes, 0);            /* the caller re-syncs INTR */
    assert_true(i8259_has_interrupt(&q));
    assert_true(q.master.is_master);
    assert_false(q.slave.is_master);
    assert_int_equal(save_pic(&q, b), n);
    assert_memory_equal(a, b, n);

    uint8_t want[8], got[8];
    run_guest(&pic, want);
    run_guest(&q, got);
    assert_memory_equal(want, got, sizeof want);
    assert_int_equal(want[0], 0x20);
    assert_int_equal(want[2], 0x29);
    assert_int_equal(want[5], 0x29);
}

static void test_snapshot_truncated(void **state)
{
    (void)state;
    busy_pic();
    uint8_t a[SNAP_TEST_BUF];
    size_t n = save_pic(&pic, a);
    struct intr_sink s2 = { 0 };
    struct i8259 q;
    i8259_init(&q, sink_intr, &s2);
    snap_test_truncations(a, n, load_pic, &q, sizeof q);
    snap_test_extended(a, n, load_pic, &q, sizeof q);
    assert_int_equal(s2.changes, 0);
}

static void refuse_pic(const struct i8259 *bad, const char *why)
{
    uint8_t a[SNAP_TEST_BUF];
    size_t n = save_pic(bad, a);
    struct i8259 q;
    i8259_init(&q, NULL, NULL);
    i8259_write(&q, 0x21, 0x5a);
    snap_test_refused(a, n, load_pic, &q, sizeof q, why);
}

static void test_snapshot_tampered(void **state)
{
    (void)state;
    busy_pic();
    uint8_t a[SNAP_TEST_BUF];
    size_t n = save_pic(&pic, a);
    snap_test_flips(a, n);

    static const uint8_t bad_steps[] = { 1, 5, 0xff };
    for (unsigned i = 0; i < sizeof bad_steps; i++) {
        struct i8259 bad = pic;
        bad.master.init_step = bad_steps[i];
        refuse_pic(&bad, "i8259: an initialization step the chip does not have");
        bad = pic;
        bad.slave.init_step = bad_steps[i];
        refuse_pic(&bad, "i8259: an initialization step the chip does not have");
    }
    struct i8259 bad = pic;
    bad.master.lowest = 8;
    refuse_pic(&bad, "i8259: lowest priority past IR7");
    bad = pic;
    bad.slave.lowest = 0xff;
    refuse_pic(&bad, "i8259: lowest priority past IR7");
    bad = pic;
    bad.slave.vector_base = 0x2c;
    refuse_pic(&bad, "i8259: vector base bits 2:0 set");
    bad = pic;
    bad.master.elcr = 0x01;                      /* IRQ 0 is edge-only */
    refuse_pic(&bad, "i8259: ELCR bits the chip does not have");

    /* A chip waiting for ICW3 is a state the guest can leave it in. */
    struct i8259 ok = pic, q;
    i8259_write(&ok, 0xa0, 0x11);
    i8259_write(&ok, 0xa1, 0x28);
    assert_int_equal(ok.slave.init_step, 3);
    n = save_pic(&ok, a);
    i8259_init(&q, NULL, NULL);
    struct snap st;
    assert_true(snap_load_begin(&st, a, n));
    assert_true(i8259_load(&q, &st));
    assert_int_equal(q.slave.init_step, 3);
}

static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

/* Every state the guest and the devices can drive the pair into (half-done
 * initializations, rotations, polls, special modes) is one a load takes back
 * unchanged. */
static void test_snapshot_every_reachable_state_loads(void **state)
{
    (void)state;
    static const uint16_t ports[] = { 0x20, 0x21, 0xa0, 0xa1, 0x4d0, 0x4d1 };
    uint8_t a[SNAP_TEST_BUF], b[SNAP_TEST_BUF];
    for (unsigned step = 0; step < 20000; step++) {
        uint64_t r = rnd();
        uint16_t port = ports[(r >> 8) % 6];
        uint8_t v = (uint8_t)(r >> 16);
        switch (r % 5) {
        case 0:
        case 1:
            i8259_write(&pic, port, v);
            break;
        case 2:
            (void)i8259_read(&pic, port);
            break;
        case 3:
            (void)i8259_set_irq(&pic, (unsigned)((r >> 24) % 16), (r >> 32) & 1);
            break;
        default:
            if (i8259_has_interrupt(&pic))
                (void)i8259_acknowledge(&pic);
            break;
        }
        if (step % 5)
            continue;
        size_t n = save_pic(&pic, a);
        struct i8259 q;
        i8259_init(&q, NULL, NULL);
        struct snap st;
        assert_true(snap_load_begin(&st, a, n));
        assert_true(i8259_load(&q, &st));
        assert_true(snap_load_end(&st));
        assert_int_equal(save_pic(&q, b), n);
        assert_memory_equal(a, b, n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_power_on, setup),
        cmocka_unit_test_setup(test_bad_lines_and_ports, setup),
        cmocka_unit_test_setup(test_linux_init_and_timer_irq, setup),
        cmocka_unit_test_setup(test_seabios_vectors, setup),
        cmocka_unit_test_setup(test_slave_cascade_and_eoi, setup),
        cmocka_unit_test_setup(test_two_slave_requests_both_arrive, setup),
        cmocka_unit_test_setup(test_slave_aeoi_back_to_back, setup),
        cmocka_unit_test_setup(test_priority_nesting, setup),
        cmocka_unit_test_setup(test_mask_holds_request, setup),
        cmocka_unit_test_setup(test_spurious_edge_withdrawn, setup),
        cmocka_unit_test_setup(test_slave_withdrawn_is_spurious, setup),
        cmocka_unit_test_setup(test_elcr_level, setup),
        cmocka_unit_test_setup(test_icw1_ltim_all_level, setup),
        cmocka_unit_test_setup(test_auto_eoi_and_rotation, setup),
        cmocka_unit_test_setup(test_rotate_on_eoi_and_set_priority, setup),
        cmocka_unit_test_setup(test_ocw3_reads_and_poll, setup),
        cmocka_unit_test_setup(test_special_mask_mode, setup),
        cmocka_unit_test_setup(test_special_fully_nested, setup),
        cmocka_unit_test_setup(test_init_sequence_restart_and_short_forms, setup),
        cmocka_unit_test_setup(test_single_mode_master_ignores_slave, setup),
        cmocka_unit_test_setup(test_cascade_id_mismatch_floats, setup),
        cmocka_unit_test_setup(test_snapshot_round_trip, setup),
        cmocka_unit_test_setup(test_snapshot_truncated, setup),
        cmocka_unit_test_setup(test_snapshot_tampered, setup),
        cmocka_unit_test_setup(test_snapshot_every_reachable_state_loads, setup),
    };
    return cmocka_run_group_tests_name("i8259", tests, NULL, NULL);
}
