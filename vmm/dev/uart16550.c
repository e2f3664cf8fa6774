#include "vmm/dev/uart16550.h"

/* Register offsets and bits: 16550A data sheet (National Semiconductor PC16550D). */
enum { REG_RBR_THR = 0, REG_IER = 1, REG_IIR_FCR = 2, REG_LCR = 3, REG_MCR = 4,
       REG_LSR = 5, REG_MSR = 6, REG_SCR = 7 };

#define IER_RDA   0x01   /* received data available */
#define IER_THRE  0x02   /* transmitter holding register empty */
#define IER_RLS   0x04   /* receiver line status */
#define IER_MS    0x08   /* modem status */
#define IER_MASK  0x0f

#define IIR_NONE  0x01
#define IIR_MS    0x00
#define IIR_THRE  0x02
#define IIR_RDA   0x04
#define IIR_RLS   0x06
#define IIR_FIFO  0xc0

#define FCR_ENABLE   0x01
#define FCR_CLEAR_RX 0x02
#define FCR_CLEAR_TX 0x04

#define LCR_DLAB  0x80

#define MCR_DTR   0x01
#define MCR_RTS   0x02
#define MCR_OUT1  0x04
#define MCR_OUT2  0x08   /* on a PC, gates the interrupt line to the PIC */
#define MCR_LOOP  0x10
#define MCR_MASK  0x1f

#define LSR_DR    0x01
#define LSR_OE    0x02
#define LSR_THRE  0x20
#define LSR_TEMT  0x40

#define MSR_DCTS  0x01
#define MSR_DDSR  0x02
#define MSR_TERI  0x04
#define MSR_DDCD  0x08
#define MSR_CTS   0x10
#define MSR_DSR   0x20
#define MSR_RI    0x40
#define MSR_DCD   0x80
#define MSR_DELTAS 0x0f

/* The highest-priority pending interrupt, as IIR reports it (data sheet table 4). */
static uint8_t pending_iir(const struct uart16550 *u)
{
    if ((u->ier & IER_RLS) && (u->lsr & LSR_OE))
        return IIR_RLS;
    if ((u->ier & IER_RDA) && u->rx_count)
        return IIR_RDA;
    if ((u->ier & IER_THRE) && u->thre_pending)
        return IIR_THRE;
    if ((u->ier & IER_MS) && (u->msr & MSR_DELTAS))
        return IIR_MS;
    return IIR_NONE;
}

static void update_irq(struct uart16550 *u)
{
    bool level = pending_iir(u) != IIR_NONE && (u->mcr & MCR_OUT2);
    if (level != u->irq_level) {
        u->irq_level = level;
        if (u->irq)
            u->irq(u->irq_ctx, level);
    }
}

/* Modem status inputs: a console has no modem, so the lines are asserted as if a
 * null-modem cable were attached; in loopback they follow MCR (data sheet §8.6). */
static uint8_t modem_inputs(const struct uart16550 *u)
{
    if (u->mcr & MCR_LOOP) {
        uint8_t m = 0;
        if (u->mcr & MCR_RTS)  m |= MSR_CTS;
        if (u->mcr & MCR_DTR)  m |= MSR_DSR;
        if (u->mcr & MCR_OUT1) m |= MSR_RI;
        if (u->mcr & MCR_OUT2) m |= MSR_DCD;
        return m;
    }
    return MSR_CTS | MSR_DSR | MSR_DCD;
}

static void update_msr(struct uart16550 *u)
{
    uint8_t old = u->msr, now = modem_inputs(u);
    uint8_t delta = 0;
    if ((old ^ now) & MSR_CTS) delta |= MSR_DCTS;
    if ((old ^ now) & MSR_DSR) delta |= MSR_DDSR;
    if ((old ^ now) & MSR_DCD) delta |= MSR_DDCD;
    if ((old & MSR_RI) && !(now & MSR_RI)) delta |= MSR_TERI; /* trailing edge only */
    u->msr = now | (old & MSR_DELTAS) | delta;
}

void uart16550_init(struct uart16550 *u, uart16550_tx_fn tx, void *tx_ctx,
                    uart16550_irq_fn irq, void *irq_ctx)
{
    *u = (struct uart16550){
        .lsr = LSR_THRE | LSR_TEMT,
        .dll = 12, /* 9600 baud after reset, as firmware expects */
        .tx = tx, .tx_ctx = tx_ctx, .irq = irq, .irq_ctx = irq_ctx,
    };
    u->msr = modem_inputs(u);
}

static bool rx_push(struct uart16550 *u, uint8_t byte)
{
    /* Without FIFOs the part holds one byte. */
    unsigned cap = (u->fcr & FCR_ENABLE) ? UART16550_FIFO_SIZE : 1;
    if (u->rx_count >= cap) {
        u->lsr |= LSR_OE;
        return false;
    }
    u->rx[(u->rx_head + u->rx_count) % UART16550_FIFO_SIZE] = byte;
    u->rx_count++;
    u->lsr |= LSR_DR;
    return true;
}

bool uart16550_receive(struct uart16550 *u, uint8_t byte)
{
    /* In loopback the serial input is disconnected from the outside. */
    if (u->mcr & MCR_LOOP)
        return false;
    bool ok = rx_push(u, byte);
    update_irq(u);
    return ok;
}

uint8_t uart16550_read(struct uart16550 *u, unsigned offset)
{
    uint8_t v = 0xff;
    switch (offset) {
    case REG_RBR_THR:
        if (u->lcr & LCR_DLAB) {
            v = u->dll;
            break;
        }
        v = 0;
        if (u->rx_count) {
            v = u->rx[u->rx_head];
            u->rx_head = (u->rx_head + 1) % UART16550_FIFO_SIZE;
            u->rx_count--;
        }
        if (!u->rx_count)
            u->lsr &= ~LSR_DR;
        break;
    case REG_IER:
        v = (u->lcr & LCR_DLAB) ? u->dlm : u->ier;
        break;
    case REG_IIR_FCR:
        v = pending_iir(u);
        /* Reading IIR acknowledges a THRE interrupt when it is the one reported. */
        if (v == IIR_THRE)
            u->thre_pending = false;
        if (u->fcr & FCR_ENABLE)
            v |= IIR_FIFO;
        break;
    case REG_LCR:
        v = u->lcr;
        break;
    case REG_MCR:
        v = u->mcr;
        break;
    case REG_LSR:
        v = u->lsr;
        u->lsr &= ~LSR_OE; /* reading LSR clears the error bits */
        break;
    case REG_MSR:
        v = u->msr;
        u->msr &= ~MSR_DELTAS;
        break;
    case REG_SCR:
        v = u->scr;
        break;
    default:
        return 0xff; /* not a register of this part */
    }
    update_irq(u);
    return v;
}

void uart16550_write(struct uart16550 *u, unsigned offset, uint8_t value)
{
    switch (offset) {
    case REG_RBR_THR:
        if (u->lcr & LCR_DLAB) {
            u->dll = value;
            break;
        }
        if (u->mcr & MCR_LOOP)
            rx_push(u, value);
        else if (u->tx)
            u->tx(u->tx_ctx, value);
        /* Sent at once: the holding register is empty again, which interrupts. */
        u->thre_pending = true;
        break;
    case REG_IER:
        if (u->lcr & LCR_DLAB) {
            u->dlm = value;
            break;
        }
        /* Enabling THRE with the transmitter empty interrupts at once (data sheet). */
        if (!(u->ier & IER_THRE) && (value & IER_THRE) && (u->lsr & LSR_THRE))
            u->thre_pending = true;
        u->ier = value & IER_MASK;
        break;
    case REG_IIR_FCR:
        if ((value & FCR_ENABLE) != (u->fcr & FCR_ENABLE) || (value & FCR_CLEAR_RX)) {
            /* Changing FIFO mode clears both FIFOs, as does the clear bit. */
            u->rx_head = u->rx_count = 0;
            u->lsr &= ~LSR_DR;
        }
        u->fcr = value & (FCR_ENABLE | 0xc0);
        break;
    case REG_LCR:
        u->lcr = value;
        break;
    case REG_MCR:
        u->mcr = value & MCR_MASK;
        update_msr(u);
        break;
    case REG_LSR:
    case REG_MSR:
        break; /* read-only on the 16550A; writes are ignored */
    case REG_SCR:
        u->scr = value;
        break;
    default:
        return;
    }
    update_irq(u);
}
