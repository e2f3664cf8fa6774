/* The guest local APIC: registers in both modes, priorities and EOI, the timer's
 * three modes, the ICR's IPIs, mode transitions, bad accesses. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/dev/vlapic.c"

static struct vlapic a;
static struct vlapic_ipi ipis[8];
static int nipi;
static int eoi_vec = -1;

static void on_ipi(void *ctx, const struct vlapic_ipi *i) { (void)ctx; if (nipi < 8) ipis[nipi] = *i; nipi++; }
static void on_eoi(void *ctx, uint8_t v) { (void)ctx; eoi_vec = v; }
static const struct vlapic_ops ops = { on_ipi, on_eoi, NULL };

static int setup(void **state)
{
    (void)state;
    nipi = 0;
    eoi_vec = -1;
    vlapic_init(&a, 1, false, 1000000000ull, &ops);
    vlapic_mmio_write(&a, R_SVR, 4, SVR_ENABLE | 0xff, 0);
    return 0;
}

static uint32_t rd(uint32_t off) { return vlapic_mmio_read(&a, off, 4, 0); }
static void wr(uint32_t off, uint32_t v) { vlapic_mmio_write(&a, off, 4, v, 0); }

static void test_identity_and_reset(void **state)
{
    (void)state;
    assert_int_equal(rd(R_ID), 1u << 24);
    assert_int_equal(rd(R_VERSION) & 0xff, 0x14);
    assert_int_equal((rd(R_VERSION) >> 16) & 0xff, 6);
    assert_int_equal(rd(R_LVT_TIMER) & LVT_MASKED, LVT_MASKED);
    assert_int_equal(rd(R_DFR), 0xffffffffu);
    assert_int_equal(vlapic_mmio_read(&a, R_ID, 2, 0), 0);   /* only 32-bit accesses */
    assert_int_equal(vlapic_mmio_read(&a, R_ID + 4, 4, 0), 0);
    wr(R_VERSION, 0);                                         /* read-only */
    assert_int_equal(rd(R_VERSION) & 0xff, 0x14);
}

static void test_priority_and_eoi(void **state)
{
    (void)state;
    vlapic_accept(&a, 0x41, false);
    vlapic_accept(&a, 0x62, true);
    assert_int_equal(vlapic_pending(&a), 0x62);
    vlapic_ack(&a, 0x62);
    assert_int_equal(rd(R_ISR + 0x30) & (1u << 2), 1u << 2);  /* 0x62 = word 3, bit 2 */
    assert_int_equal(rd(R_PPR), 0x60);
    assert_int_equal(vlapic_pending(&a), -1);                 /* 0x41 is below the PPR */
    wr(R_EOI, 0);
    assert_int_equal(eoi_vec, 0x62);                          /* level: the IOAPIC hears of it */
    assert_int_equal(vlapic_pending(&a), 0x41);
    wr(R_TPR, 0x50);
    assert_int_equal(vlapic_pending(&a), -1);                 /* masked by the TPR */
    wr(R_TPR, 0x30);
    vlapic_ack(&a, 0x41);
    eoi_vec = -1;
    wr(R_EOI, 0);
    assert_int_equal(eoi_vec, -1);                            /* edge: no EOI message */
    vlapic_accept(&a, 5, false);                              /* illegal vector */
    assert_int_equal(vlapic_pending(&a), -1);
    wr(R_ESR, 0);
    assert_int_equal(rd(R_ESR) & ESR_ILLEGAL_VECTOR_RECV, ESR_ILLEGAL_VECTOR_RECV);
}

static void test_software_disable(void **state)
{
    (void)state;
    wr(R_LVT_TIMER, 0xec);
    wr(R_SVR, 0xff);                                          /* software-disabled */
    assert_int_equal(rd(R_LVT_TIMER) & LVT_MASKED, LVT_MASKED);
    vlapic_accept(&a, 0x40, false);
    assert_int_equal(vlapic_pending(&a), -1);
    wr(R_LVT_TIMER, 0xec);                                    /* stays masked while disabled */
    assert_int_equal(rd(R_LVT_TIMER) & LVT_MASKED, LVT_MASKED);
}

static void test_timer_oneshot_and_periodic(void **state)
{
    (void)state;
    wr(R_TIMER_DCR, 0x3);                                     /* divide by 16 */
    wr(R_LVT_TIMER, 0xef);                                    /* one-shot, vector 0xef */
    vlapic_mmio_write(&a, R_TIMER_ICR, 4, 1000, 1000);        /* 16 us from t=1000 */
    assert_int_equal(vlapic_next_timer_ns(&a), 1000 + 16000);
    assert_int_equal(vlapic_mmio_read(&a, R_TIMER_CCR, 4, 1000 + 8000), 500);
    vlapic_tick(&a, 1000 + 15999, 0);
    assert_int_equal(vlapic_pending(&a), -1);
    vlapic_tick(&a, 1000 + 16000, 0);
    assert_int_equal(vlapic_pending(&a), 0xef);
    assert_int_equal(vlapic_mmio_read(&a, R_TIMER_CCR, 4, 50000), 0);
    assert_int_equal(vlapic_next_timer_ns(&a), UINT64_MAX);

    vlapic_ack(&a, 0xef);
    wr(R_EOI, 0);
    wr(R_TIMER_DCR, 0xb);                                     /* divide by 1 */
    wr(R_LVT_TIMER, 0xef | (TIMER_PERIODIC << TIMER_MODE_SHIFT));
    vlapic_mmio_write(&a, R_TIMER_ICR, 4, 100, 0);
    vlapic_tick(&a, 100, 0);
    assert_int_equal(vlapic_pending(&a), 0xef);
    assert_int_equal(vlapic_next_timer_ns(&a), 200);
    assert_int_equal(vlapic_mmio_read(&a, R_TIMER_CCR, 4, 150), 50);
    vlapic_tick(&a, 1050, 0);                                 /* late: fires once, realigned */
    assert_int_equal(vlapic_next_timer_ns(&a), 1100);
    wr(R_LVT_TIMER, 0xef);                                    /* mode change disarms */
    assert_int_equal(vlapic_next_timer_ns(&a), UINT64_MAX);
}

static void test_masked_timer_sets_nothing(void **state)
{
    (void)state;
    wr(R_TIMER_DCR, 0xb);
    wr(R_LVT_TIMER, 0x45 | LVT_MASKED | (TIMER_PERIODIC << TIMER_MODE_SHIFT));
    vlapic_mmio_write(&a, R_TIMER_ICR, 4, 100, 0);
    vlapic_tick(&a, 1000, 0);                                 /* ten periods later */
    assert_int_equal(vlapic_pending(&a), -1);
    assert_int_equal(rd(R_IRR + 0x20) & (1u << 5), 0);        /* 0x45 never requested */
    wr(R_LVT_TIMER, 0x45 | (TIMER_PERIODIC << TIMER_MODE_SHIFT));
    vlapic_tick(&a, 1100, 0);                                 /* unmasked: it fires */
    assert_int_equal(vlapic_pending(&a), 0x45);
}

static void test_tsc_deadline(void **state)
{
    (void)state;
    vlapic_set_tsc_deadline(&a, 500);                         /* not in deadline mode: ignored */
    wr(R_LVT_TIMER, 0xd0 | (TIMER_TSC_DEADLINE << TIMER_MODE_SHIFT));
    vlapic_tick(&a, 0, 1000);
    assert_int_equal(vlapic_pending(&a), -1);
    vlapic_set_tsc_deadline(&a, 2000);
    wr(R_TIMER_ICR, 5);                                       /* ignored in deadline mode */
    assert_int_equal(rd(R_TIMER_ICR), 0);
    vlapic_tick(&a, 0, 1999);
    assert_int_equal(vlapic_pending(&a), -1);
    vlapic_tick(&a, 0, 2000);
    assert_int_equal(vlapic_pending(&a), 0xd0);
}

static void test_icr_init_sipi_and_self(void **state)
{
    (void)state;
    wr(R_ICR_HIGH, 2u << 24);
    wr(R_ICR_LOW, (VLAPIC_INIT << 8) | (1u << 14));           /* INIT, assert */
    wr(R_ICR_LOW, (VLAPIC_SIPI << 8) | 0x9a);                 /* SIPI to page 0x9a000 */
    assert_int_equal(nipi, 2);
    assert_int_equal(ipis[0].mode, VLAPIC_INIT);
    assert_int_equal(ipis[0].dest, 2);
    assert_int_equal(ipis[1].mode, VLAPIC_SIPI);
    assert_int_equal(ipis[1].vector, 0x9a);
    assert_int_equal(rd(R_ICR_LOW) & (1u << 12), 0);          /* delivery status idle */
    wr(R_ICR_LOW, (VLAPIC_ALL_BUT_SELF << 18) | 0x80);
    assert_int_equal(ipis[2].shorthand, VLAPIC_ALL_BUT_SELF);
    wr(R_ICR_LOW, (VLAPIC_SELF << 18) | 0x81);                /* self: straight into our IRR */
    assert_int_equal(nipi, 3);
    assert_int_equal(vlapic_pending(&a), 0x81);
    wr(R_ICR_LOW, 0x05);                                      /* fixed vector 5 is illegal */
    assert_int_equal(nipi, 3);
}

static void test_x2apic_mode(void **state)
{
    (void)state;
    uint64_t v;
    assert_false(vlapic_msr_read(&a, 0x802, &v, 0));          /* MSRs #GP in xAPIC mode */
    assert_true(vlapic_set_base_mode(&a, true, true));
    assert_int_equal(vlapic_mmio_read(&a, R_ID, 4, 0), 0);    /* the page is gone */
    assert_true(vlapic_msr_read(&a, 0x802, &v, 0));
    assert_int_equal(v, 1);                                   /* 32-bit ID, not shifted */
    assert_true(vlapic_msr_read(&a, 0x80d, &v, 0));           /* LDR derived from the ID */
    assert_int_equal(v, 1u << 1);
    assert_false(vlapic_msr_write(&a, 0x80d, 5, 0));          /* LDR read-only */
    assert_false(vlapic_msr_read(&a, 0x80b, &v, 0));          /* EOI write-only */
    assert_false(vlapic_msr_write(&a, 0x80b, 1, 0));          /* EOI with a value: #GP */
    assert_true(vlapic_msr_write(&a, 0x830, (uint64_t)7 << 32 | (VLAPIC_FIXED << 8) | 0x55, 0));
    assert_int_equal(ipis[0].dest, 7);                        /* 32-bit destination */
    assert_true(vlapic_msr_write(&a, 0x83f, 0x66, 0));        /* SELF IPI */
    assert_int_equal(vlapic_pending(&a), 0x66);
    assert_false(vlapic_msr_read(&a, 0x8ff, &v, 0));          /* reserved */
    assert_false(vlapic_set_base_mode(&a, true, false));      /* x2APIC -> xAPIC: illegal */
    assert_true(vlapic_set_base_mode(&a, false, false));      /* disable resets */
    assert_false(vlapic_set_base_mode(&a, true, true));       /* disabled -> x2APIC: illegal */
    assert_true(vlapic_set_base_mode(&a, true, false));
    assert_int_equal(vlapic_pending(&a), -1);
    assert_int_equal(rd(R_ID), 1u << 24);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_identity_and_reset, setup),
        cmocka_unit_test_setup(test_priority_and_eoi, setup),
        cmocka_unit_test_setup(test_software_disable, setup),
        cmocka_unit_test_setup(test_timer_oneshot_and_periodic, setup),
        cmocka_unit_test_setup(test_masked_timer_sets_nothing, setup),
        cmocka_unit_test_setup(test_tsc_deadline, setup),
        cmocka_unit_test_setup(test_icr_init_sipi_and_self, setup),
        cmocka_unit_test_setup(test_x2apic_mode, setup),
    };
    return cmocka_run_group_tests_name("vlapic", tests, NULL, NULL);
}
