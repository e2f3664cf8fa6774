/* The guest I/O APIC: register window, redirection entries, edge and level pins,
 * masking, Remote IRR and EOI, bad accesses. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/dev/ioapic.c"

static struct ioapic io;
static struct ioapic_msg sent[16];
static int nsent;

static void deliver(void *ctx, const struct ioapic_msg *m)
{
    (void)ctx;
    if (nsent < 16)
        sent[nsent] = *m;
    nsent++;
}

static int setup(void **state)
{
    (void)state;
    nsent = 0;
    ioapic_init(&io, 2, deliver, NULL);
    return 0;
}

static uint32_t rd(uint32_t reg) { ioapic_write(&io, 0, 4, reg); return ioapic_read(&io, 0x10, 4); }
static void wr(uint32_t reg, uint32_t v) { ioapic_write(&io, 0, 4, reg); ioapic_write(&io, 0x10, 4, v); }
static void route(unsigned pin, uint32_t low, uint8_t dest) { wr(0x11 + 2 * pin, (uint32_t)dest << 24); wr(0x10 + 2 * pin, low); }

static void test_identification(void **state)
{
    (void)state;
    assert_int_equal(rd(0x00), 2u << 24);
    assert_int_equal(rd(0x01) & 0xff, 0x20);
    assert_int_equal((rd(0x01) >> 16) & 0xff, IOAPIC_PINS - 1);
    wr(0x01, 0);                          /* read-only */
    assert_int_equal(rd(0x01) & 0xff, 0x20);
    wr(0x00, 7u << 24);
    assert_int_equal(rd(0x00), 7u << 24);
    assert_int_equal(rd(0x10) & (1u << 16), 1u << 16);  /* masked after reset */
    assert_int_equal(rd(0x50), 0xffffffffu);            /* past the last entry */
    assert_int_equal(ioapic_read(&io, 0x10, 2), 0xffffffffu);
    assert_int_equal(ioapic_read(&io, 0x20, 4), 0xffffffffu);
}

static void test_edge_pin(void **state)
{
    (void)state;
    route(2, 0x30, 1);                    /* vector 0x30, fixed, physical, edge, unmasked */
    ioapic_set_irq(&io, 2, true);
    assert_int_equal(nsent, 1);
    assert_int_equal(sent[0].vector, 0x30);
    assert_int_equal(sent[0].dest, 1);
    assert_false(sent[0].level);
    ioapic_set_irq(&io, 2, true);         /* still high: no new edge */
    assert_int_equal(nsent, 1);
    ioapic_set_irq(&io, 2, false);
    ioapic_set_irq(&io, 2, true);
    assert_int_equal(nsent, 2);
}

static void test_masking(void **state)
{
    (void)state;
    route(4, 0x34 | (1u << 16), 0);       /* masked edge pin: the edge is lost */
    ioapic_set_irq(&io, 4, true);
    assert_int_equal(nsent, 0);
    route(4, 0x34, 0);
    assert_int_equal(nsent, 0);
    ioapic_set_irq(&io, 4, false);
    ioapic_set_irq(&io, 4, true);
    assert_int_equal(nsent, 1);
    /* A masked level pin interrupts once unmasked, while still asserted. */
    route(5, 0x35 | (1u << 15) | (1u << 16), 0);
    ioapic_set_irq(&io, 5, true);
    assert_int_equal(nsent, 1);
    route(5, 0x35 | (1u << 15), 0);
    assert_int_equal(nsent, 2);
    assert_int_equal(sent[1].vector, 0x35);
}

static void test_level_pin_remote_irr(void **state)
{
    (void)state;
    route(9, 0x39 | (1u << 15) | (1u << 13), 0); /* level, active low (the SCI) */
    ioapic_set_irq(&io, 9, true);
    assert_int_equal(nsent, 1);
    assert_true(sent[0].level);
    assert_int_equal(rd(0x10 + 18) & (1u << 14), 1u << 14);  /* Remote IRR */
    ioapic_set_irq(&io, 9, true);          /* no redelivery before EOI */
    assert_int_equal(nsent, 1);
    ioapic_eoi(&io, 0x39);                 /* line still high: again */
    assert_int_equal(nsent, 2);
    ioapic_set_irq(&io, 9, false);
    ioapic_write(&io, 0x40, 4, 0x39);      /* EOI register */
    assert_int_equal(nsent, 2);
    assert_int_equal(rd(0x10 + 18) & (1u << 14), 0);
    ioapic_eoi(&io, 0x55);                 /* unrelated vector: nothing */
    assert_int_equal(nsent, 2);
}

static void test_delivery_fields_and_readonly_bits(void **state)
{
    (void)state;
    route(1, 0x41 | (1u << 8) | (1u << 11), 0x0f); /* lowest priority, logical */
    ioapic_set_irq(&io, 1, true);
    assert_int_equal(sent[0].delivery_mode, 1);
    assert_true(sent[0].logical);
    assert_int_equal(sent[0].dest, 0x0f);
    wr(0x12, 0x41 | (1u << 12) | (1u << 14));      /* Delivery Status / Remote IRR are read-only */
    assert_int_equal(rd(0x12) & ((1u << 12) | (1u << 14)), 0);
    ioapic_set_irq(&io, 30, true);                 /* no such pin: ignored */
    assert_int_equal(nsent, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_identification, setup),
        cmocka_unit_test_setup(test_edge_pin, setup),
        cmocka_unit_test_setup(test_masking, setup),
        cmocka_unit_test_setup(test_level_pin_remote_irr, setup),
        cmocka_unit_test_setup(test_delivery_fields_and_readonly_bits, setup),
    };
    return cmocka_run_group_tests_name("ioapic", tests, NULL, NULL);
}
