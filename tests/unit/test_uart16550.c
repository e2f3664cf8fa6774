/* The guest-visible 16550 model: registers, FIFO, interrupts, loopback. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/dev/uart16550.c"

struct sink {
    uint8_t out[64];
    size_t n;
    int irq_changes;
    bool level;
};

static void sink_tx(void *ctx, uint8_t b)
{
    struct sink *s = ctx;
    s->out[s->n++] = b;
}

static void sink_irq(void *ctx, bool level)
{
    struct sink *s = ctx;
    s->irq_changes++;
    s->level = level;
}

static struct uart16550 u;
static struct sink s;

static int setup(void **state)
{
    (void)state;
    memset(&s, 0, sizeof s);
    uart16550_init(&u, sink_tx, &s, sink_irq, &s);
    return 0;
}

static void test_reset_state(void **state)
{
    (void)state;
    assert_int_equal(uart16550_read(&u, REG_LSR), LSR_THRE | LSR_TEMT);
    assert_int_equal(uart16550_read(&u, REG_IIR_FCR), IIR_NONE);
    assert_int_equal(uart16550_read(&u, REG_IER), 0);
    assert_int_equal(uart16550_read(&u, 8), 0xff); /* past the part */
    assert_false(s.level);
}

static void test_transmit_reaches_sink(void **state)
{
    (void)state;
    const char *msg = "hi\n";
    for (const char *p = msg; *p; p++)
        uart16550_write(&u, REG_RBR_THR, (uint8_t)*p);
    assert_int_equal(s.n, 3);
    assert_memory_equal(s.out, msg, 3);
}

static void test_divisor_latch(void **state)
{
    (void)state;
    uart16550_write(&u, REG_LCR, LCR_DLAB | 0x03);
    uart16550_write(&u, REG_RBR_THR, 0x01);
    uart16550_write(&u, REG_IER, 0x00);
    assert_int_equal(uart16550_read(&u, REG_RBR_THR), 0x01);
    assert_int_equal(s.n, 0); /* a divisor write transmits nothing */
    uart16550_write(&u, REG_LCR, 0x03);
    assert_int_equal(uart16550_read(&u, REG_LCR), 0x03);
    assert_int_equal(uart16550_read(&u, REG_IER), 0); /* IER untouched by the DLM write */
}

static void test_receive_fifo_and_overrun(void **state)
{
    (void)state;
    /* FIFO off: one byte holds, the second overruns. */
    assert_true(uart16550_receive(&u, 'a'));
    assert_false(uart16550_receive(&u, 'b'));
    assert_int_equal(uart16550_read(&u, REG_LSR) & (LSR_DR | LSR_OE), LSR_DR | LSR_OE);
    assert_int_equal(uart16550_read(&u, REG_LSR) & LSR_OE, 0); /* cleared by the read */
    assert_int_equal(uart16550_read(&u, REG_RBR_THR), 'a');
    assert_int_equal(uart16550_read(&u, REG_LSR) & LSR_DR, 0);

    uart16550_write(&u, REG_IIR_FCR, FCR_ENABLE);
    for (int i = 0; i < UART16550_FIFO_SIZE; i++)
        assert_true(uart16550_receive(&u, (uint8_t)('A' + i)));
    assert_false(uart16550_receive(&u, '!'));
    for (int i = 0; i < UART16550_FIFO_SIZE; i++)
        assert_int_equal(uart16550_read(&u, REG_RBR_THR), 'A' + i);
    assert_int_equal(uart16550_read(&u, REG_LSR) & LSR_DR, 0);
    assert_int_equal(uart16550_read(&u, REG_IIR_FCR) & IIR_FIFO, IIR_FIFO);
}

static void test_fifo_clear(void **state)
{
    (void)state;
    uart16550_write(&u, REG_IIR_FCR, FCR_ENABLE);
    uart16550_receive(&u, 'x');
    uart16550_write(&u, REG_IIR_FCR, FCR_ENABLE | FCR_CLEAR_RX);
    assert_int_equal(uart16550_read(&u, REG_LSR) & LSR_DR, 0);
}

static void test_rx_interrupt_needs_out2(void **state)
{
    (void)state;
    uart16550_write(&u, REG_IER, IER_RDA);
    uart16550_receive(&u, 'k');
    assert_false(s.level); /* OUT2 low: the PC's interrupt gate is closed */
    assert_int_equal(uart16550_read(&u, REG_IIR_FCR), IIR_RDA);
    uart16550_write(&u, REG_MCR, MCR_OUT2);
    assert_true(s.level);
    uart16550_read(&u, REG_RBR_THR);
    assert_false(s.level);
    assert_int_equal(uart16550_read(&u, REG_IIR_FCR), IIR_NONE);
}

static void test_thre_interrupt_cycle(void **state)
{
    (void)state;
    uart16550_write(&u, REG_MCR, MCR_OUT2);
    uart16550_write(&u, REG_IER, IER_THRE);
    assert_true(s.level); /* enabling with THR empty interrupts at once */
    assert_int_equal(uart16550_read(&u, REG_IIR_FCR), IIR_THRE);
    assert_false(s.level); /* acknowledged by the IIR read */
    assert_int_equal(uart16550_read(&u, REG_IIR_FCR), IIR_NONE);
    uart16550_write(&u, REG_RBR_THR, 'z');
    assert_true(s.level);
    uart16550_write(&u, REG_IER, 0);
    assert_false(s.level);
}

static void test_priority_rda_over_thre(void **state)
{
    (void)state;
    uart16550_write(&u, REG_MCR, MCR_OUT2);
    uart16550_write(&u, REG_IER, IER_THRE | IER_RDA);
    uart16550_receive(&u, '1');
    assert_int_equal(uart16550_read(&u, REG_IIR_FCR), IIR_RDA);
    uart16550_read(&u, REG_RBR_THR);
    assert_int_equal(uart16550_read(&u, REG_IIR_FCR), IIR_THRE);
}

static void test_line_status_interrupt(void **state)
{
    (void)state;
    uart16550_write(&u, REG_IER, IER_RLS | IER_RDA);
    uart16550_receive(&u, '1');
    uart16550_receive(&u, '2'); /* overrun, no FIFO */
    assert_int_equal(uart16550_read(&u, REG_IIR_FCR), IIR_RLS);
    uart16550_read(&u, REG_LSR);
    assert_int_equal(uart16550_read(&u, REG_IIR_FCR), IIR_RDA);
}

static void test_loopback(void **state)
{
    (void)state;
    uart16550_write(&u, REG_MCR, MCR_LOOP | MCR_RTS | MCR_OUT1);
    uint8_t msr = uart16550_read(&u, REG_MSR);
    assert_int_equal(msr & 0xf0, MSR_CTS | MSR_RI);
    uart16550_write(&u, REG_RBR_THR, 0x5a);
    assert_int_equal(s.n, 0); /* looped back, not sent */
    assert_int_equal(uart16550_read(&u, REG_RBR_THR), 0x5a);
    assert_false(uart16550_receive(&u, 'q')); /* outside input is cut off */
    uart16550_write(&u, REG_MCR, 0);
    assert_int_equal(uart16550_read(&u, REG_MSR) & 0xf0, MSR_CTS | MSR_DSR | MSR_DCD);
}

static void test_scratch_and_readonly(void **state)
{
    (void)state;
    uart16550_write(&u, REG_SCR, 0xa5);
    assert_int_equal(uart16550_read(&u, REG_SCR), 0xa5);
    uart16550_write(&u, REG_LSR, 0x00);
    assert_int_equal(uart16550_read(&u, REG_LSR), LSR_THRE | LSR_TEMT);
    uart16550_write(&u, 9, 0x12); /* ignored, no crash */
    uart16550_write(&u, REG_MCR, 0xff);
    assert_int_equal(uart16550_read(&u, REG_MCR), MCR_MASK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_reset_state, setup),
        cmocka_unit_test_setup(test_transmit_reaches_sink, setup),
        cmocka_unit_test_setup(test_divisor_latch, setup),
        cmocka_unit_test_setup(test_receive_fifo_and_overrun, setup),
        cmocka_unit_test_setup(test_fifo_clear, setup),
        cmocka_unit_test_setup(test_rx_interrupt_needs_out2, setup),
        cmocka_unit_test_setup(test_thre_interrupt_cycle, setup),
        cmocka_unit_test_setup(test_priority_rda_over_thre, setup),
        cmocka_unit_test_setup(test_line_status_interrupt, setup),
        cmocka_unit_test_setup(test_loopback, setup),
        cmocka_unit_test_setup(test_scratch_and_readonly, setup),
    };
    return cmocka_run_group_tests_name("uart16550", tests, NULL, NULL);
}
