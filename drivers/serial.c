#include "drivers/serial.h"
#include "arch/x86_64/cpu/cpu.h"
#include "kernel/spinlock.h"

/* 16550 registers (offsets from the base port) and bits, per the 16550 data sheet. */
enum { UART_THR = 0, UART_RBR = 0, UART_DLL = 0, UART_IER = 1, UART_DLM = 1, UART_FCR = 2,
       UART_LCR = 3, UART_MCR = 4, UART_LSR = 5, UART_SCR = 7 };
#define LSR_DR   0x01
#define LSR_THRE 0x20
#define LCR_DLAB 0x80
#define LCR_8N1  0x03

static uint16_t base;
/* Between readers of RBR; writers keep to THR and LSR.THRE, which reading does not
 * disturb. */
static struct spinlock input_lock = SPINLOCK_INIT;

bool serial_init(uint16_t port)
{
    /* Scratch register round trip: a missing UART reads back 0xff. */
    outb(port + UART_SCR, 0x5a);
    if (inb(port + UART_SCR) != 0x5a)
        return false;
    outb(port + UART_IER, 0x00);
    outb(port + UART_LCR, LCR_DLAB);
    outb(port + UART_DLL, 1);          /* 115200 baud: divisor 1 */
    outb(port + UART_DLM, 0);
    outb(port + UART_LCR, LCR_8N1);
    outb(port + UART_FCR, 0x07);       /* enable and clear FIFOs */
    outb(port + UART_MCR, 0x03);       /* DTR, RTS */
    base = port;
    return true;
}

uint16_t serial_port(void)
{
    return base;
}

static void serial_putc(char c)
{
    /* Bounded wait: a wedged UART must not hang plinth forever. */
    for (int i = 0; i < 1000000 && !(inb(base + UART_LSR) & LSR_THRE); i++)
        cpu_relax();
    outb(base + UART_THR, (uint8_t)c);
}

void serial_write(const char *s, size_t n)
{
    if (!base)
        return;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n')
            serial_putc('\r');
        serial_putc(s[i]);
    }
}

int serial_getc(void)
{
    char c;
    return serial_read(&c, 1) ? (unsigned char)c : -1;
}

size_t serial_read(char *buf, size_t max)
{
    if (!base)
        return 0;
    size_t n = 0;
    uint64_t flags = spin_lock_irqsave(&input_lock);
    while (n < max && (inb(base + UART_LSR) & LSR_DR))
        buf[n++] = (char)inb(base + UART_RBR);
    spin_unlock_irqrestore(&input_lock, flags);
    return n;
}
