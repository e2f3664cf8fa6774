/* The guest-visible 16550A model: registers, FIFO, trigger levels, character
 * timeout, interrupt priorities and the PC's OUT2 gate, loopback, modem status, and
 * the probe and start-up sequences Linux's 8250 driver runs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/dev/uart16550.c"
#include "vmm/snap.c"
#include "snap_test.h"

struct sink {
    uint8_t out[64];
    size_t n;
    int irq_changes;
    bool level;
};

static void sink_tx(void *ctx, uint8_t b)
{
    struct sink *s = ctx;
    assert_true(s->n < sizeof s->out);
    s->out[s->n++] = b;
}

static void sink_irq(void *ctx, bool level)
{
    struct sink *s = ctx;
    /* The model reports changes only. */
    assert_true(level != s->level);
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

static uint8_t iir(void)
{
    return uart16550_read(&u, REG_IIR_FCR);
}

static void test_reset_state(void **state)
{
    (void)state;
    assert_int_equal(uart16550_read(&u, REG_LSR), LSR_THRE | LSR_TEMT);
    assert_int_equal(iir(), IIR_NONE);
    assert_int_equal(uart16550_read(&u, REG_IER), 0);
    assert_int_equal(uart16550_read(&u, REG_LCR), 0);
    assert_int_equal(uart16550_read(&u, REG_MCR), 0);
    assert_int_equal(uart16550_read(&u, REG_MSR), MSR_CTS | MSR_DSR | MSR_DCD);
    assert_int_equal(uart16550_rx_space(&u), 1);
    assert_false(s.level);
}

static void test_bad_offsets(void **state)
{
    (void)state;
    assert_int_equal(uart16550_read(&u, 8), 0xff);
    assert_int_equal(uart16550_read(&u, 0xffff), 0xff);
    assert_int_equal(uart16550_read(&u, (unsigned)-1), 0xff);
    uart16550_write(&u, 8, 0x12);
    uart16550_write(&u, (unsigned)-1, 0x12);
    assert_int_equal(s.n, 0);
    assert_int_equal(uart16550_read(&u, REG_SCR), 0);
    assert_int_equal(uart16550_read(&u, REG_LSR), LSR_THRE | LSR_TEMT);
}

static void test_transmit_reaches_sink(void **state)
{
    (void)state;
    const char *msg = "hi\n";
    for (const char *p = msg; *p; p++)
        uart16550_write(&u, REG_RBR_THR, (uint8_t)*p);
    assert_int_equal(s.n, 3);
    assert_memory_equal(s.out, msg, 3);
    assert_int_equal(uart16550_read(&u, REG_LSR) & (LSR_THRE | LSR_TEMT), LSR_THRE | LSR_TEMT);
}

static void test_divisor_latch(void **state)
{
    (void)state;
    uart16550_write(&u, REG_LCR, LCR_DLAB | 0x03);
    uart16550_write(&u, REG_RBR_THR, 0x01);
    uart16550_write(&u, REG_IER, 0x00);
    assert_int_equal(uart16550_read(&u, REG_RBR_THR), 0x01);
    assert_int_equal(uart16550_read(&u, REG_IER), 0x00);
    assert_int_equal(s.n, 0); /* a divisor write transmits nothing */
    /* IIR and FCR do not depend on DLAB. */
    uart16550_write(&u, REG_IIR_FCR, FCR_ENABLE);
    assert_int_equal(iir(), IIR_FIFO | IIR_NONE);
    uart16550_write(&u, REG_LCR, 0x03);
    assert_int_equal(uart16550_read(&u, REG_LCR), 0x03);
    assert_int_equal(uart16550_read(&u, REG_IER), 0); /* IER untouched by the DLM write */
    assert_int_equal(u.dll, 0x01);
}

static void test_receive_without_fifo(void **state)
{
    (void)state;
    assert_true(uart16550_receive(&u, 'a'));
    assert_int_equal(uart16550_rx_space(&u), 0);
    /* The holding register is overwritten by the next character, with OE. */
    assert_false(uart16550_receive(&u, 'b'));
    assert_int_equal(uart16550_read(&u, REG_LSR) & (LSR_DR | LSR_OE), LSR_DR | LSR_OE);
    assert_int_equal(uart16550_read(&u, REG_LSR) & LSR_OE, 0); /* cleared by the read */
    assert_int_equal(uart16550_read(&u, REG_RBR_THR), 'b');
    assert_int_equal(uart16550_read(&u, REG_LSR) & LSR_DR, 0);
    assert_int_equal(uart16550_read(&u, REG_RBR_THR), 0); /* empty: reads 0 */
    assert_int_equal(uart16550_rx_space(&u), 1);
}

static void test_receive_fifo_and_overrun(void **state)
{
    (void)state;
    uart16550_write(&u, REG_IIR_FCR, FCR_ENABLE);
    assert_int_equal(uart16550_rx_space(&u), UART16550_FIFO_SIZE);
    for (int i = 0; i < UART16550_FIFO_SIZE; i++)
        assert_true(uart16550_receive(&u, (uint8_t)('A' + i)));
    assert_int_equal(uart16550_rx_space(&u), 0);
    assert_false(uart16550_receive(&u, '!')); /* lost; the FIFO is kept */
    assert_int_equal(uart16550_read(&u, REG_LSR) & (LSR_DR | LSR_OE), LSR_DR | LSR_OE);
    for (int i = 0; i < UART16550_FIFO_SIZE; i++)
        assert_int_equal(uart16550_read(&u, REG_RBR_THR), 'A' + i);
    assert_int_equal(uart16550_read(&u, REG_LSR) & LSR_DR, 0);
    assert_int_equal(iir() & IIR_FIFO, IIR_FIFO);
}

static void test_fifo_control(void **state)
{
    (void)state;
    uart16550_write(&u, REG_IIR_FCR, FCR_ENABLE);
    uart16550_receive(&u, 'x');
    uart16550_write(&u, REG_IIR_FCR, FCR_ENABLE | FCR_CLEAR_RX | FCR_CLEAR_TX);
    assert_int_equal(uart16550_read(&u, REG_LSR), LSR_THRE | LSR_TEMT);
    assert_int_equal(uart16550_rx_space(&u), UART16550_FIFO_SIZE);
    /* Rewriting FCR0 without the clear bit keeps the data. */
    uart16550_receive(&u, 'y');
    uart16550_write(&u, REG_IIR_FCR, FCR_ENABLE | 0x80);
    assert_int_equal(uart16550_read(&u, REG_LSR) & LSR_DR, LSR_DR);
    assert_int_equal(rx_trigger(&u), 8);
    /* Leaving FIFO mode resets the FIFO; trigger bits need FCR0 to be programmed. */
    uart16550_write(&u, REG_IIR_FCR, 0xc0);
    assert_int_equal(uart16550_read(&u, REG_LSR) & LSR_DR, 0);
    assert_int_equal(iir(), IIR_NONE);
    assert_int_equal(rx_trigger(&u), 1);
    assert_int_equal(uart16550_rx_space(&u), 1);
    /* DMA mode and the reserved bits are not reflected anywhere. */
    uart16550_write(&u, REG_IIR_FCR, FCR_ENABLE | 0x38);
    assert_int_equal(iir(), IIR_FIFO | IIR_NONE);
}

static void test_trigger_levels(void **state)
{
    (void)state;
    static const struct { uint8_t fcr; unsigned level; } cases[] = {
        { 0x00, 1 }, { 0x40, 4 }, { 0x80, 8 }, { 0xc0, 14 },
    };
    for (unsigned c = 0; c < 4; c++) {
        setup(NULL);
        uart16550_write(&u, REG_MCR, MCR_OUT2);
        uart16550_write(&u, REG_IER, IER_RDA);
        uart16550_write(&u, REG_IIR_FCR, FCR_ENABLE | cases[c].fcr);
        for (unsigned i = 0; i + 1 < cases[c].level; i++)
            uart16550_receive(&u, (uint8_t)i);
        assert_int_equal(iir(), IIR_FIFO | IIR_NONE);
        assert_false(s.level);
        uart16550_receive(&u, 0xaa);
        assert_int_equal(iir(), IIR_FIFO | IIR_RDA);
        assert_true(s.level);
        /* Falling below the trigger level clears it. */
        uart16550_read(&u, REG_RBR_THR);
        assert_false(s.level);
        assert_int_equal(iir(), IIR_FIFO | IIR_NONE);
    }
}

static void test_character_timeout(void **state)
{
    (void)state;
    uart16550_write(&u, REG_MCR, MCR_OUT2);
    uart16550_write(&u, REG_IER, IER_RDA);
    uart16550_write(&u, REG_IIR_FCR, FCR_ENABLE | 0x80); /* trigger at 8 */
    uart16550_rx_idle(&u);                               /* nothing waiting: nothing */
    assert_int_equal(iir(), IIR_FIFO | IIR_NONE);
    uart16550_receive(&u, 'a');
    uart16550_receive(&u, 'b');
    assert_false(s.level);
    uart16550_rx_idle(&u);
    assert_true(s.level);
    assert_int_equal(iir(), IIR_FIFO | IIR_TIMEOUT);
    assert_int_equal(iir(), IIR_FIFO | IIR_TIMEOUT); /* an IIR read does not clear it */
    /* A read of the FIFO clears it and restarts the timer. */
    assert_int_equal(uart16550_read(&u, REG_RBR_THR), 'a');
    assert_false(s.level);
    assert_int_equal(iir(), IIR_FIFO | IIR_NONE);
    uart16550_rx_idle(&u);
    assert_int_equal(iir(), IIR_FIFO | IIR_TIMEOUT);
    /* A new character restarts the timer as well. */
    uart16550_receive(&u, 'c');
    assert_int_equal(iir(), IIR_FIFO | IIR_NONE);
    assert_int_equal(uart16550_read(&u, REG_RBR_THR), 'b');
    assert_int_equal(uart16550_read(&u, REG_RBR_THR), 'c');
    uart16550_rx_idle(&u);
    assert_int_equal(iir(), IIR_FIFO | IIR_NONE);
    /* Without FIFOs there is no timeout: the single byte interrupts at once. */
    uart16550_write(&u, REG_IIR_FCR, 0);
    uart16550_receive(&u, 'd');
    uart16550_rx_idle(&u);
    assert_int_equal(iir(), IIR_RDA);
    /* The timeout needs IER.ERBFI like the data interrupt. */
    setup(NULL);
    uart16550_write(&u, REG_MCR, MCR_OUT2);
    uart16550_write(&u, REG_IIR_FCR, FCR_ENABLE | 0xc0);
    uart16550_receive(&u, 'e');
    uart16550_rx_idle(&u);
    assert_false(s.level);
    assert_int_equal(iir(), IIR_FIFO | IIR_NONE);
    uart16550_write(&u, REG_IER, IER_RDA);
    assert_true(s.level);
}

static void test_rx_interrupt_needs_out2(void **state)
{
    (void)state;
    uart16550_write(&u, REG_IER, IER_RDA);
    uart16550_receive(&u, 'k');
    assert_false(s.level); /* OUT2 low: the PC's interrupt gate is closed */
    assert_int_equal(iir(), IIR_RDA);
    uart16550_write(&u, REG_MCR, MCR_OUT2);
    assert_true(s.level);
    uart16550_read(&u, REG_RBR_THR);
    assert_false(s.level);
    assert_int_equal(iir(), IIR_NONE);
}

static void test_rx_irq_armed(void **state)
{
    (void)state;
    assert_false(uart16550_rx_irq_armed(&u));
    uart16550_write(&u, REG_IER, IER_RDA);
    assert_false(uart16550_rx_irq_armed(&u));            /* OUT2 low */
    uart16550_write(&u, REG_MCR, MCR_OUT2);
    assert_true(uart16550_rx_irq_armed(&u));
    uart16550_write(&u, REG_MCR, MCR_OUT2 | MCR_LOOP);
    assert_false(uart16550_rx_irq_armed(&u));            /* loopback */
    uart16550_write(&u, REG_MCR, MCR_OUT2);
    uart16550_write(&u, REG_IER, IER_THRE | IER_RLS);
    assert_false(uart16550_rx_irq_armed(&u));            /* ERBFI clear */
    uart16550_write(&u, REG_LCR, LCR_DLAB);
    uart16550_write(&u, REG_IER, IER_RDA);                /* that was DLM */
    assert_false(uart16550_rx_irq_armed(&u));
}

static void test_thre_interrupt_cycle(void **state)
{
    (void)state;
    uart16550_write(&u, REG_MCR, MCR_OUT2);
    uart16550_write(&u, REG_IER, IER_THRE);
    assert_true(s.level); /* enabling with THR empty interrupts at once */
    assert_int_equal(iir(), IIR_THRE);
    assert_false(s.level); /* acknowledged by the IIR read */
    assert_int_equal(iir(), IIR_NONE);
    /* Rewriting IER with ETBEI already set does not re-arm it. */
    uart16550_write(&u, REG_IER, IER_THRE);
    assert_false(s.level);
    uart16550_write(&u, REG_RBR_THR, 'z');
    assert_true(s.level);
    uart16550_write(&u, REG_IER, 0);
    assert_false(s.level);
    /* Re-enabling re-arms it: the transmitter is still empty. */
    uart16550_write(&u, REG_IER, IER_THRE);
    assert_true(s.level);
}

static void test_fifo_enable_interrupts_thre(void **state)
{
    (void)state;
    uart16550_write(&u, REG_MCR, MCR_OUT2);
    uart16550_write(&u, REG_IER, IER_THRE);
    assert_int_equal(iir(), IIR_THRE);
    assert_false(s.level);
    uart16550_write(&u, REG_IIR_FCR, FCR_ENABLE);
    assert_true(s.level);
    assert_int_equal(iir(), IIR_FIFO | IIR_THRE);
    /* Rewriting FCR with FIFOs already on does not. */
    uart16550_write(&u, REG_IIR_FCR, FCR_ENABLE | FCR_CLEAR_TX);
    assert_false(s.level);
}

static void test_priorities(void **state)
{
    (void)state;
    uart16550_write(&u, REG_MCR, MCR_OUT2 | MCR_LOOP);
    uart16550_write(&u, REG_IER, IER_RLS | IER_RDA | IER_THRE | IER_MS);
    /* Loopback with MCR changes: a modem status delta; THRE armed by IER. */
    uart16550_write(&u, REG_MCR, MCR_OUT2 | MCR_LOOP | MCR_RTS);
    assert_int_equal(u.msr & MSR_DCTS, MSR_DCTS);
    uart16550_write(&u, REG_RBR_THR, '1');
    uart16550_write(&u, REG_RBR_THR, '2'); /* overrun, no FIFO */
    assert_int_equal(iir(), IIR_RLS);
    uart16550_read(&u, REG_LSR);
    assert_int_equal(iir(), IIR_RDA);
    uart16550_read(&u, REG_RBR_THR);
    assert_int_equal(iir(), IIR_THRE);
    assert_int_equal(iir(), IIR_MS);
    uart16550_read(&u, REG_MSR);
    assert_int_equal(iir(), IIR_NONE);
}

static void test_line_status_needs_elsi(void **state)
{
    (void)state;
    uart16550_write(&u, REG_IER, IER_RDA);
    uart16550_receive(&u, '1');
    uart16550_receive(&u, '2');
    assert_int_equal(iir(), IIR_RDA);
    assert_int_equal(uart16550_read(&u, REG_LSR), LSR_THRE | LSR_TEMT | LSR_OE | LSR_DR);
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
    assert_int_equal(uart16550_rx_space(&u), 0);
    assert_false(uart16550_receive(&u, 'q')); /* outside input is cut off */
    assert_int_equal(uart16550_read(&u, REG_LSR) & (LSR_DR | LSR_OE), 0);
    uart16550_write(&u, REG_MCR, 0);
    assert_int_equal(uart16550_read(&u, REG_MSR) & 0xf0, MSR_CTS | MSR_DSR | MSR_DCD);
    assert_int_equal(uart16550_rx_space(&u), 1);
}

static void test_loopback_gates_irq(void **state)
{
    (void)state;
    uart16550_write(&u, REG_IER, IER_RDA);
    uart16550_write(&u, REG_MCR, MCR_LOOP | MCR_OUT2);
    uart16550_write(&u, REG_RBR_THR, 0x33);
    /* IIR reports it, but the OUT2 pin is forced inactive in loopback. */
    assert_int_equal(iir(), IIR_RDA);
    assert_false(s.level);
    uart16550_write(&u, REG_MCR, MCR_OUT2);
    assert_true(s.level);
    assert_int_equal(uart16550_read(&u, REG_RBR_THR), 0x33);
    assert_false(s.level);
}

static void test_modem_status_deltas(void **state)
{
    (void)state;
    uart16550_write(&u, REG_MCR, MCR_OUT2);
    uart16550_write(&u, REG_IER, IER_MS);
    assert_false(s.level);
    /* Entering loopback drops CTS, DSR and DCD (all MCR outputs but OUT2 off). */
    uart16550_write(&u, REG_MCR, MCR_LOOP | MCR_OUT2);
    assert_int_equal(uart16550_read(&u, REG_MSR), MSR_DCTS | MSR_DDSR | MSR_DCD);
    assert_int_equal(uart16550_read(&u, REG_MSR), MSR_DCD); /* deltas cleared by the read */
    /* RI: only the trailing edge sets TERI. */
    uart16550_write(&u, REG_MCR, MCR_LOOP | MCR_OUT2 | MCR_OUT1);
    assert_int_equal(uart16550_read(&u, REG_MSR), MSR_RI | MSR_DCD);
    uart16550_write(&u, REG_MCR, MCR_LOOP | MCR_OUT2);
    assert_int_equal(iir(), IIR_MS);
    assert_int_equal(uart16550_read(&u, REG_MSR), MSR_TERI | MSR_DCD);
    /* Deltas accumulate until read. */
    uart16550_write(&u, REG_MCR, MCR_LOOP | MCR_OUT2 | MCR_DTR);
    uart16550_write(&u, REG_MCR, MCR_LOOP | MCR_OUT2);
    assert_int_equal(uart16550_read(&u, REG_MSR), MSR_DDSR | MSR_DCD);
    /* Leaving loopback: the null-modem inputs come back, and the line interrupts. */
    uart16550_write(&u, REG_MCR, MCR_OUT2);
    assert_true(s.level);
    assert_int_equal(uart16550_read(&u, REG_MSR), MSR_DCTS | MSR_DDSR | MSR_CTS | MSR_DSR | MSR_DCD);
    assert_false(s.level);
}

static void test_scratch_and_readonly(void **state)
{
    (void)state;
    uart16550_write(&u, REG_SCR, 0xa5);
    assert_int_equal(uart16550_read(&u, REG_SCR), 0xa5);
    uart16550_write(&u, REG_LSR, 0x00);
    assert_int_equal(uart16550_read(&u, REG_LSR), LSR_THRE | LSR_TEMT);
    uart16550_write(&u, REG_MSR, 0x00);
    assert_int_equal(uart16550_read(&u, REG_MSR), MSR_CTS | MSR_DSR | MSR_DCD);
    uart16550_write(&u, REG_MCR, 0xff & ~MCR_LOOP);
    assert_int_equal(uart16550_read(&u, REG_MCR), MCR_MASK & ~MCR_LOOP);
    uart16550_write(&u, REG_IER, 0xff);
    assert_int_equal(uart16550_read(&u, REG_IER), IER_MASK); /* no UUE or sleep bits */
    uart16550_write(&u, REG_LCR, 0x7f);
    assert_int_equal(uart16550_read(&u, REG_LCR), 0x7f);
}

/* What Linux's 8250 driver does to find the part's type (autoconfig) and where each
 * answer leads: a 16550A, with a 16-byte FIFO. */
static void test_linux_autoconfig_finds_16550a(void **state)
{
    (void)state;
    /* IER round trip: 0, then 0x0f. */
    uart16550_write(&u, REG_IER, 0);
    assert_int_equal(uart16550_read(&u, REG_IER), 0);
    uart16550_write(&u, REG_IER, 0x0f);
    assert_int_equal(uart16550_read(&u, REG_IER) & 0x0f, 0x0f);
    uart16550_write(&u, REG_IER, 0);
    /* Loopback test: MCR = LOOP | OUT2 | RTS must read back CTS | DCD. */
    uart16550_write(&u, REG_MCR, MCR_LOOP | 0x0a);
    assert_int_equal(uart16550_read(&u, REG_MSR) & 0xf0, 0x90);
    uart16550_write(&u, REG_MCR, 0);
    /* LCR 0xbf, EFR write then FIFO on: IIR bits 7:6 = 11. */
    uart16550_write(&u, REG_LCR, 0xbf);
    uart16550_write(&u, REG_IIR_FCR, 0);
    uart16550_write(&u, REG_LCR, 0);
    uart16550_write(&u, REG_IIR_FCR, FCR_ENABLE);
    assert_int_equal(iir() >> 6, 3);
    /* No EFR: offset 2 under LCR 0xbf is IIR, never 0. */
    uart16550_write(&u, REG_LCR, 0xbf);
    assert_int_not_equal(uart16550_read(&u, REG_IIR_FCR), 0);
    /* Not a National SuperIO: offset 2 under LCR 0xe0 does not follow MCR.LOOP. */
    uart16550_write(&u, REG_LCR, 0);
    uint8_t mcr = uart16550_read(&u, REG_MCR);
    uart16550_write(&u, REG_LCR, 0xe0);
    uint8_t a = uart16550_read(&u, REG_IIR_FCR);
    uart16550_write(&u, REG_LCR, 0);
    uart16550_write(&u, REG_MCR, mcr ^ MCR_LOOP);
    uart16550_write(&u, REG_LCR, 0xe0);
    uint8_t b = uart16550_read(&u, REG_IIR_FCR);
    uart16550_write(&u, REG_LCR, 0);
    uart16550_write(&u, REG_MCR, mcr);
    assert_int_equal((a ^ b) & MCR_LOOP, 0);
    assert_int_equal(a & MCR_LOOP, 0);
    /* IER bit 6 (UUE) cannot be set: not an XScale. */
    uart16550_write(&u, REG_IER, 0x40);
    assert_int_equal(uart16550_read(&u, REG_IER) & 0x40, 0);
    uart16550_write(&u, REG_IER, 0);
    /* Not a 16750: FCR bit 5 does not show in IIR bit 5, with or without DLAB. */
    uart16550_write(&u, REG_LCR, 0x80);
    uart16550_write(&u, REG_IIR_FCR, FCR_ENABLE | 0x20);
    assert_int_equal(iir() >> 5, 6);
    uart16550_write(&u, REG_LCR, 0);
    uart16550_write(&u, REG_IIR_FCR, FCR_ENABLE | 0x20);
    assert_int_equal(iir() >> 5, 6);
    /* The scratch register round trip. */
    uart16550_write(&u, REG_SCR, 0xa5);
    assert_int_equal(uart16550_read(&u, REG_SCR), 0xa5);
    uart16550_write(&u, REG_SCR, 0x5a);
    assert_int_equal(uart16550_read(&u, REG_SCR), 0x5a);
}

/* serial8250_do_startup's checks: LSR is not 0xff, THRE is re-asserted each time
 * ETBEI is enabled (else UART_BUG_THRE), and enabling ETBEI with the transmitter
 * empty shows an interrupt in IIR (else UART_BUG_TXEN). */
static void test_linux_startup_thre_tests(void **state)
{
    (void)state;
    uart16550_write(&u, REG_IIR_FCR, FCR_ENABLE | FCR_CLEAR_RX | FCR_CLEAR_TX);
    uart16550_write(&u, REG_IIR_FCR, 0);
    uart16550_read(&u, REG_LSR);
    uart16550_read(&u, REG_RBR_THR);
    uart16550_read(&u, REG_IIR_FCR);
    uart16550_read(&u, REG_MSR);
    uart16550_write(&u, REG_LCR, 0x03);
    assert_int_not_equal(uart16550_read(&u, REG_LSR), 0xff);

    uart16550_write(&u, REG_IER, IER_THRE);
    uint8_t iir1 = iir();
    uart16550_write(&u, REG_IER, 0);
    uart16550_write(&u, REG_IER, IER_THRE);
    uint8_t iir2 = iir();
    uart16550_write(&u, REG_IER, 0);
    assert_int_equal(iir1 & IIR_NONE, 0);
    assert_int_equal(iir2 & IIR_NONE, 0);

    uart16550_write(&u, REG_MCR, MCR_DTR | MCR_RTS | MCR_OUT2);
    uart16550_write(&u, REG_IER, IER_THRE);
    uint8_t lsr = uart16550_read(&u, REG_LSR);
    uint8_t iir3 = iir();
    uart16550_write(&u, REG_IER, 0);
    assert_true(lsr & LSR_TEMT);
    assert_int_equal(iir3 & IIR_NONE, 0);

    /* Then the driver's interrupt-driven transmit: enable ETBEI, take the
     * interrupt, write bytes until done, disable ETBEI: the line ends low. */
    uart16550_write(&u, REG_IIR_FCR, FCR_ENABLE | 0x80);
    uart16550_write(&u, REG_IER, IER_RDA | IER_RLS);
    assert_false(s.level);
    uart16550_write(&u, REG_IER, IER_RDA | IER_RLS | IER_THRE);
    assert_true(s.level);
    unsigned rounds = 0;
    while (!(iir() & IIR_NONE)) {
        assert_true(++rounds < 10);
        if (uart16550_read(&u, REG_LSR) & LSR_THRE) {
            if (s.n < 20) {
                for (int i = 0; i < UART16550_FIFO_SIZE && s.n < 20; i++)
                    uart16550_write(&u, REG_RBR_THR, 'x');
            } else {
                uart16550_write(&u, REG_IER, IER_RDA | IER_RLS);
            }
        }
    }
    assert_int_equal(s.n, 20);
    assert_false(s.level);
}

static void test_init_resets_everything(void **state)
{
    (void)state;
    uart16550_write(&u, REG_MCR, MCR_LOOP | MCR_OUT2);
    uart16550_write(&u, REG_IIR_FCR, FCR_ENABLE | 0xc0);
    uart16550_write(&u, REG_LCR, LCR_DLAB);
    uart16550_write(&u, REG_IER, 0x07);
    uart16550_write(&u, REG_LCR, 0);
    uart16550_write(&u, REG_IER, 0x07);
    uart16550_write(&u, REG_RBR_THR, 1);
    uart16550_init(&u, sink_tx, &s, sink_irq, &s);
    assert_int_equal(uart16550_read(&u, REG_MCR), 0);
    assert_int_equal(uart16550_read(&u, REG_LSR), LSR_THRE | LSR_TEMT);
    assert_int_equal(iir(), IIR_NONE);
    assert_int_equal(uart16550_rx_space(&u), 1);
}

/* ---- snapshots ---- */

static size_t save_uart(const struct uart16550 *x, uint8_t *buf)
{
    struct snap st;
    snap_save_begin(&st, buf, SNAP_TEST_BUF);
    assert_true(uart16550_save(x, &st));
    size_t n = snap_save_end(&st);
    assert_true(n > SNAP_HEADER_BYTES);
    return n;
}

static bool load_uart(void *model, struct snap *st)
{
    return uart16550_load(model, st);
}

/* FIFOs on (trigger 4), three bytes waiting past a wrapped head, the timeout
 * raised, the divisor and scratch programmed, the line high through OUT2. */
static void busy_uart(void)
{
    uart16550_write(&u, REG_LCR, LCR_DLAB | 0x03);
    uart16550_write(&u, REG_RBR_THR, 0x01);
    uart16550_write(&u, REG_IER, 0x00);
    uart16550_write(&u, REG_LCR, 0x03);
    uart16550_write(&u, REG_IIR_FCR, FCR_ENABLE | 0x40);
    uart16550_write(&u, REG_MCR, MCR_OUT2 | MCR_DTR | MCR_RTS);
    uart16550_write(&u, REG_SCR, 0x5a);
    for (unsigned i = 0; i < 14; i++)
        assert_true(uart16550_receive(&u, (uint8_t)(0x30 + i)));
    for (unsigned i = 0; i < 14; i++)
        (void)uart16550_read(&u, REG_RBR_THR);
    for (unsigned i = 0; i < 3; i++)
        assert_true(uart16550_receive(&u, (uint8_t)(0x61 + i)));
    uart16550_write(&u, REG_IER, IER_RDA | IER_THRE | IER_RLS);
    uart16550_rx_idle(&u);
    assert_int_equal(u.rx_count, 3);
    assert_int_equal(u.rx_head, 14);
    assert_true(u.irq_level);
}

static void test_snapshot_round_trip(void **state)
{
    (void)state;
    busy_uart();
    uint8_t a[SNAP_TEST_BUF], b[SNAP_TEST_BUF];
    size_t n = save_uart(&u, a);

    struct sink s2 = { 0 };
    struct uart16550 v;
    uart16550_init(&v, sink_tx, &s2, sink_irq, &s2);
    struct snap st;
    assert_true(snap_load_begin(&st, a, n));
    assert_true(uart16550_load(&v, &st));
    assert_true(snap_load_end(&st));
    /* The load leaves the line to the caller; the model's callbacks stay its own. */
    assert_int_equal(s2.irq_changes, 0);
    assert_true(v.irq_level);
    assert_ptr_equal(v.irq_ctx, &s2);
    assert_int_equal(save_uart(&v, b), n);
    assert_memory_equal(a, b, n);

    /* The guest goes on where it was: the timeout pending, then the bytes in order. */
    s2.level = true;
    assert_int_equal(uart16550_read(&v, REG_IIR_FCR), IIR_TIMEOUT | IIR_FIFO);
    assert_int_equal(uart16550_read(&v, REG_SCR), 0x5a);
    uart16550_write(&v, REG_LCR, LCR_DLAB | 0x03);
    assert_int_equal(uart16550_read(&v, REG_RBR_THR), 0x01);
    uart16550_write(&v, REG_LCR, 0x03);
    assert_int_equal(uart16550_read(&v, REG_RBR_THR), 0x61);
    assert_int_equal(uart16550_read(&v, REG_RBR_THR), 0x62);
    assert_int_equal(uart16550_read(&v, REG_RBR_THR), 0x63);
    assert_int_equal(uart16550_read(&v, REG_LSR) & LSR_DR, 0);
    assert_int_equal(uart16550_rx_space(&v), UART16550_FIFO_SIZE);
}

static void test_snapshot_truncated(void **state)
{
    (void)state;
    busy_uart();
    uint8_t a[SNAP_TEST_BUF];
    size_t n = save_uart(&u, a);
    struct sink s2 = { 0 };
    struct uart16550 v;
    uart16550_init(&v, sink_tx, &s2, sink_irq, &s2);
    snap_test_truncations(a, n, load_uart, &v, sizeof v);
    snap_test_extended(a, n, load_uart, &v, sizeof v);
    assert_int_equal(s2.irq_changes, 0);
}

/* A stream whose one field the model must not take, sealed as a good one. */
static void refuse_uart(const struct uart16550 *bad, const char *why)
{
    uint8_t a[SNAP_TEST_BUF];
    size_t n = save_uart(bad, a);
    struct uart16550 v;
    uart16550_init(&v, NULL, NULL, NULL, NULL);
    uart16550_write(&v, REG_SCR, 0x77);
    snap_test_refused(a, n, load_uart, &v, sizeof v, why);
}

static void test_snapshot_tampered(void **state)
{
    (void)state;
    busy_uart();
    uint8_t a[SNAP_TEST_BUF];
    size_t n = save_uart(&u, a);
    snap_test_flips(a, n);

    struct uart16550 bad = u;
    bad.rx_head = UART16550_FIFO_SIZE;
    refuse_uart(&bad, "uart: RX FIFO head past the FIFO");
    bad = u;
    bad.rx_head = 0xff;
    refuse_uart(&bad, "uart: RX FIFO head past the FIFO");
    bad = u;
    bad.rx_count = UART16550_FIFO_SIZE + 1;
    refuse_uart(&bad, "uart: RX FIFO holds more than it can");
    bad = u;
    bad.fcr = 0;
    refuse_uart(&bad, "uart: more than one byte held with FIFOs off");
    bad = u;
    bad.fcr = FCR_ENABLE | FCR_CLEAR_RX;
    refuse_uart(&bad, "uart: FCR holds bits the part does not keep");
    bad = u;
    bad.fcr = 0xc0;
    bad.rx_count = 1;
    refuse_uart(&bad, "uart: FCR holds bits the part does not keep");
    bad = u;
    bad.ier = 0x10;
    refuse_uart(&bad, "uart: IER reserved bits set");
    bad = u;
    bad.mcr = 0x20;
    refuse_uart(&bad, "uart: MCR reserved bits set");
    bad = u;
    bad.lsr &= (uint8_t)~LSR_DR;
    refuse_uart(&bad, "uart: LSR.DR does not match the FIFO");
    bad = u;
    bad.lsr &= (uint8_t)~LSR_TEMT;
    refuse_uart(&bad, "uart: transmitter not empty (it always is)");

    /* The limits themselves are states the part reaches: a full FIFO, one byte
     * held with FIFOs off. */
    struct uart16550 ok = u, v;
    ok.rx_count = UART16550_FIFO_SIZE;
    ok.rx_head = UART16550_FIFO_SIZE - 1;
    n = save_uart(&ok, a);
    uart16550_init(&v, NULL, NULL, NULL, NULL);
    struct snap st;
    assert_true(snap_load_begin(&st, a, n));
    assert_true(uart16550_load(&v, &st));
    assert_int_equal(uart16550_rx_space(&v), 0);
}

static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

/* Every state the guest and the host side can drive the UART into is one a load
 * takes back unchanged: the checks refuse only what the part cannot hold. */
static void test_snapshot_every_reachable_state_loads(void **state)
{
    (void)state;
    uint8_t a[SNAP_TEST_BUF], b[SNAP_TEST_BUF];
    for (unsigned step = 0; step < 20000; step++) {
        uint64_t r = rnd();
        unsigned off = (unsigned)((r >> 8) % 8);
        uint8_t v = (uint8_t)(r >> 16);
        switch (r % 6) {
        case 0:
        case 1:
            uart16550_write(&u, off, v);
            break;
        case 2:
            (void)uart16550_read(&u, off);
            break;
        case 3:
            (void)uart16550_receive(&u, v);
            break;
        case 4:
            uart16550_rx_idle(&u);
            break;
        default:
            s.n = 0;                           /* the sink only keeps the last bytes */
            break;
        }
        if (step % 5)
            continue;
        size_t n = save_uart(&u, a);
        struct uart16550 v2;
        uart16550_init(&v2, NULL, NULL, NULL, NULL);
        struct snap st;
        assert_true(snap_load_begin(&st, a, n));
        assert_true(uart16550_load(&v2, &st));
        assert_true(snap_load_end(&st));
        assert_int_equal(save_uart(&v2, b), n);
        assert_memory_equal(a, b, n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_reset_state, setup),
        cmocka_unit_test_setup(test_bad_offsets, setup),
        cmocka_unit_test_setup(test_transmit_reaches_sink, setup),
        cmocka_unit_test_setup(test_divisor_latch, setup),
        cmocka_unit_test_setup(test_receive_without_fifo, setup),
        cmocka_unit_test_setup(test_receive_fifo_and_overrun, setup),
        cmocka_unit_test_setup(test_fifo_control, setup),
        cmocka_unit_test_setup(test_trigger_levels, setup),
        cmocka_unit_test_setup(test_character_timeout, setup),
        cmocka_unit_test_setup(test_rx_interrupt_needs_out2, setup),
        cmocka_unit_test_setup(test_rx_irq_armed, setup),
        cmocka_unit_test_setup(test_thre_interrupt_cycle, setup),
        cmocka_unit_test_setup(test_fifo_enable_interrupts_thre, setup),
        cmocka_unit_test_setup(test_priorities, setup),
        cmocka_unit_test_setup(test_line_status_needs_elsi, setup),
        cmocka_unit_test_setup(test_loopback, setup),
        cmocka_unit_test_setup(test_loopback_gates_irq, setup),
        cmocka_unit_test_setup(test_modem_status_deltas, setup),
        cmocka_unit_test_setup(test_scratch_and_readonly, setup),
        cmocka_unit_test_setup(test_linux_autoconfig_finds_16550a, setup),
        cmocka_unit_test_setup(test_linux_startup_thre_tests, setup),
        cmocka_unit_test_setup(test_init_resets_everything, setup),
        cmocka_unit_test_setup(test_snapshot_round_trip, setup),
        cmocka_unit_test_setup(test_snapshot_truncated, setup),
        cmocka_unit_test_setup(test_snapshot_tampered, setup),
        cmocka_unit_test_setup(test_snapshot_every_reachable_state_loads, setup),
    };
    return cmocka_run_group_tests_name("uart16550", tests, NULL, NULL);
}
