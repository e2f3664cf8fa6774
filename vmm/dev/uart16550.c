#include "vmm/dev/uart16550.h"

/* Register offsets and bits: National Semiconductor PC16550D data sheet (June 1995),
 * "Registers"; sections are cited by their titles there. */
enum { REG_RBR_THR = 0, REG_IER = 1, REG_IIR_FCR = 2, REG_LCR = 3, REG_MCR = 4,
       REG_LSR = 5, REG_MSR = 6, REG_SCR = 7 };

#define IER_RDA   0x01   /* received data available (and character timeout) */
#define IER_THRE  0x02   /* transmitter holding register empty */
#define IER_RLS   0x04   /* receiver line status */
#define IER_MS    0x08   /* modem status */
#define IER_MASK  0x0f   /* bits 7:4 are always 0 on the 16550A */

/* IIR bits 3:0 by priority ("Interrupt Identification Register"); bits 5:4 read 0. */
#define IIR_NONE     0x01
#define IIR_MS       0x00
#define IIR_THRE     0x02
#define IIR_RDA      0x04
#define IIR_RLS      0x06
#define IIR_TIMEOUT  0x0c
#define IIR_FIFO     0xc0   /* both set when FCR0 is: what identifies a 16550A */

#define FCR_ENABLE    0x01
#define FCR_CLEAR_RX  0x02
#define FCR_CLEAR_TX  0x04
#define FCR_TRIGGER   0xc0

#define LCR_DLAB  0x80

#define MCR_DTR   0x01
#define MCR_RTS   0x02
#define MCR_OUT1  0x04
#define MCR_OUT2  0x08   /* on a PC, gates the interrupt line to the PIC */
#define MCR_LOOP  0x10
#define MCR_MASK  0x1f   /* bits 7:5 are always 0 */

#define LSR_DR    0x01
#define LSR_OE    0x02
#define LSR_PE    0x04
#define LSR_FE    0x08
#define LSR_BI    0x10
#define LSR_THRE  0x20
#define LSR_TEMT  0x40
#define LSR_ERRORS (LSR_OE | LSR_PE | LSR_FE | LSR_BI)

#define MSR_DCTS  0x01
#define MSR_DDSR  0x02
#define MSR_TERI  0x04
#define MSR_DDCD  0x08
#define MSR_CTS   0x10
#define MSR_DSR   0x20
#define MSR_RI    0x40
#define MSR_DCD   0x80
#define MSR_DELTAS 0x0f

static bool fifo_on(const struct uart16550 *u)
{
    return u->fcr & FCR_ENABLE;
}

/* RCVR FIFO trigger levels for FCR bits 7:6 ("FIFO Control Register"). */
static unsigned rx_trigger(const struct uart16550 *u)
{
    static const uint8_t level[4] = { 1, 4, 8, 14 };
    return level[u->fcr >> 6];
}

/* The highest-priority pending interrupt, as IIR bits 3:0 report it
 * ("Interrupt Identification Register", table of interrupt control functions):
 * line status, then received data or character timeout, then THR empty, then
 * modem status. */
static uint8_t pending_iir(const struct uart16550 *u)
{
    if ((u->ier & IER_RLS) && (u->lsr & LSR_ERRORS))
        return IIR_RLS;
    if ((u->ier & IER_RDA) && u->rx_count) {
        if (fifo_on(u) && u->rx_quiet)
            return IIR_TIMEOUT;
        if (!fifo_on(u) || u->rx_count >= rx_trigger(u))
            return IIR_RDA;
    }
    if ((u->ier & IER_THRE) && u->thre_pending)
        return IIR_THRE;
    if ((u->ier & IER_MS) && (u->msr & MSR_DELTAS))
        return IIR_MS;
    return IIR_NONE;
}

/* On a PC the INTR pin reaches the PIC through a gate driven by the OUT2 output;
 * loopback forces the output pins inactive ("Modem Control Register"), so the
 * line stays low there even though IIR reports the interrupt. */
static void update_irq(struct uart16550 *u)
{
    bool level = pending_iir(u) != IIR_NONE && (u->mcr & (MCR_OUT2 | MCR_LOOP)) == MCR_OUT2;
    if (level != u->irq_level) {
        u->irq_level = level;
        if (u->irq)
            u->irq(u->irq_ctx, level);
    }
}

/* Modem status inputs: a console has no modem, so the lines are asserted as if a
 * null-modem cable were attached; in loopback they follow the MCR outputs (RTS to
 * CTS, DTR to DSR, OUT1 to RI, OUT2 to DCD: "Modem Control Register"). */
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

/* Delta bits latch every change since MSR was last read; TERI only the trailing
 * edge of RI ("Modem Status Register"). */
static void update_msr(struct uart16550 *u)
{
    uint8_t old = u->msr, now = modem_inputs(u);
    uint8_t delta = 0;
    if ((old ^ now) & MSR_CTS) delta |= MSR_DCTS;
    if ((old ^ now) & MSR_DSR) delta |= MSR_DDSR;
    if ((old ^ now) & MSR_DCD) delta |= MSR_DDCD;
    if ((old & MSR_RI) && !(now & MSR_RI)) delta |= MSR_TERI;
    u->msr = now | (old & MSR_DELTAS) | delta;
}

void uart16550_init(struct uart16550 *u, uart16550_tx_fn tx, void *tx_ctx,
                    uart16550_irq_fn irq, void *irq_ctx)
{
    /* Master reset clears IER, IIR, FCR, LCR, MCR and the LSR errors, and leaves the
     * transmitter empty; the divisor latch is not reset, so 9600 baud stands in
     * for whatever firmware would have programmed. */
    *u = (struct uart16550){
        .lsr = LSR_THRE | LSR_TEMT,
        .dll = 12,
        .tx = tx, .tx_ctx = tx_ctx, .irq = irq, .irq_ctx = irq_ctx,
    };
    u->msr = modem_inputs(u);
}

static void rx_clear(struct uart16550 *u)
{
    u->rx_head = u->rx_count = 0;
    u->rx_quiet = false;
    u->lsr &= ~LSR_DR;
}

/* One character into the receiver.  With FIFOs off the holding register takes one
 * and a second one overwrites it; with FIFOs on a character arriving at a full
 * FIFO is lost and the FIFO kept ("Line Status Register", OE).  Either way OE. */
static bool rx_push(struct uart16550 *u, uint8_t byte)
{
    u->rx_quiet = false;
    u->lsr |= LSR_DR;
    if (!fifo_on(u) && u->rx_count) {
        u->rx[u->rx_head] = byte;
        u->lsr |= LSR_OE;
        return false;
    }
    if (u->rx_count == UART16550_FIFO_SIZE) {
        u->lsr |= LSR_OE;
        return false;
    }
    u->rx[(u->rx_head + u->rx_count) % UART16550_FIFO_SIZE] = byte;
    u->rx_count++;
    return true;
}

unsigned uart16550_rx_space(const struct uart16550 *u)
{
    if (u->mcr & MCR_LOOP)
        return 0;
    unsigned cap = fifo_on(u) ? UART16550_FIFO_SIZE : 1;
    return cap - u->rx_count;
}

bool uart16550_receive(struct uart16550 *u, uint8_t byte)
{
    if (u->mcr & MCR_LOOP)
        return false;
    bool ok = rx_push(u, byte);
    update_irq(u);
    return ok;
}

void uart16550_rx_idle(struct uart16550 *u)
{
    if (u->rx_count && fifo_on(u) && !u->rx_quiet) {
        u->rx_quiet = true;
        update_irq(u);
    }
}

bool uart16550_rx_irq_armed(const struct uart16550 *u)
{
    return (u->ier & IER_RDA) && (u->mcr & (MCR_OUT2 | MCR_LOOP)) == MCR_OUT2;
}

static uint8_t rx_pop(struct uart16550 *u)
{
    /* An empty receiver reads as 0: the data sheet leaves it undefined. */
    uint8_t v = 0;
    if (u->rx_count) {
        v = u->rx[u->rx_head];
        u->rx_head = (u->rx_head + 1) % UART16550_FIFO_SIZE;
        u->rx_count--;
    }
    /* A read clears the timeout indication and restarts its timer ("FIFO Interrupt
     * Mode Operation"). */
    u->rx_quiet = false;
    if (!u->rx_count)
        u->lsr &= ~LSR_DR;
    return v;
}

uint8_t uart16550_read(struct uart16550 *u, unsigned offset)
{
    uint8_t v;
    switch (offset) {
    case REG_RBR_THR:
        v = (u->lcr & LCR_DLAB) ? u->dll : rx_pop(u);
        break;
    case REG_IER:
        v = (u->lcr & LCR_DLAB) ? u->dlm : u->ier;
        break;
    case REG_IIR_FCR:
        v = pending_iir(u);
        /* Reading IIR acknowledges a THRE interrupt when it is the one reported. */
        if (v == IIR_THRE)
            u->thre_pending = false;
        if (fifo_on(u))
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
        u->lsr &= ~LSR_ERRORS; /* reading LSR clears the error bits */
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

static void write_fcr(struct uart16550 *u, uint8_t value)
{
    bool was_on = fifo_on(u);
    if (!(value & FCR_ENABLE)) {
        /* Back to character mode: the FIFOs are reset, and the other FCR bits are
         * not programmed without FCR0 ("FIFO Control Register"). */
        if (was_on)
            rx_clear(u);
        u->fcr = 0;
        return;
    }
    if (!was_on || (value & FCR_CLEAR_RX))
        rx_clear(u);
    /* The XMIT FIFO is always empty here, so clearing it changes nothing; entering
     * FIFO mode makes the first transmitter interrupt immediate ("FIFO Interrupt
     * Mode Operation"). */
    if (!was_on && (u->lsr & LSR_THRE))
        u->thre_pending = true;
    u->fcr = value & (FCR_ENABLE | FCR_TRIGGER);
}

void uart16550_write(struct uart16550 *u, unsigned offset, uint8_t value)
{
    switch (offset) {
    case REG_RBR_THR:
        if (u->lcr & LCR_DLAB) {
            u->dll = value;
            break;
        }
        /* In loopback the transmitter output is looped to the receiver input and the
         * serial output held marking: nothing leaves the part. */
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
        /* Enabling ETBEI with the transmitter empty interrupts at once. */
        if (!(u->ier & IER_THRE) && (value & IER_THRE) && (u->lsr & LSR_THRE))
            u->thre_pending = true;
        u->ier = value & IER_MASK;
        break;
    case REG_IIR_FCR:
        write_fcr(u, value);
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
        break; /* the data sheet leaves writes to them for factory test: ignored */
    case REG_SCR:
        u->scr = value;
        break;
    default:
        return;
    }
    update_irq(u);
}

/* ---- snapshot ---- */

static void uart16550_fields(struct uart16550 *u, struct snap *s)
{
    snap_record_begin(s, "uart", 1);
    snap_u8(s, &u->ier);
    snap_u8(s, &u->lcr);
    snap_u8(s, &u->mcr);
    snap_u8(s, &u->lsr);
    snap_u8(s, &u->msr);
    snap_u8(s, &u->scr);
    snap_u8(s, &u->fcr);
    snap_u8(s, &u->dll);
    snap_u8(s, &u->dlm);
    snap_bool(s, &u->thre_pending);
    snap_bool(s, &u->rx_quiet);
    snap_bool(s, &u->irq_level);
    snap_bytes(s, u->rx, sizeof u->rx);
    snap_u8(s, &u->rx_head);
    snap_u8(s, &u->rx_count);
    snap_record_end(s);
}

/* What the rest of the model takes for granted: the FIFO indexes stay inside the
 * array, and with FIFOs off the holding register is one byte (rx_space() would
 * wrap below zero); the register bits the writes mask off stay off. */
static bool uart16550_check(const struct uart16550 *u, struct snap *s)
{
    return snap_check(s, u->rx_head < UART16550_FIFO_SIZE, "uart: RX FIFO head past the FIFO") &&
           snap_check(s, u->rx_count <= UART16550_FIFO_SIZE, "uart: RX FIFO holds more than it can") &&
           snap_check(s, fifo_on(u) || u->rx_count <= 1, "uart: more than one byte held with FIFOs off") &&
           snap_check(s, !(u->fcr & ~(FCR_ENABLE | FCR_TRIGGER)) && (fifo_on(u) || u->fcr == 0),
                      "uart: FCR holds bits the part does not keep") &&
           snap_check(s, !(u->ier & ~IER_MASK), "uart: IER reserved bits set") &&
           snap_check(s, !(u->mcr & ~MCR_MASK), "uart: MCR reserved bits set") &&
           snap_check(s, !(u->lsr & LSR_DR) == !u->rx_count, "uart: LSR.DR does not match the FIFO") &&
           snap_check(s, (u->lsr & (LSR_THRE | LSR_TEMT)) == (LSR_THRE | LSR_TEMT),
                      "uart: transmitter not empty (it always is)");
}

bool uart16550_save(const struct uart16550 *u, struct snap *s)
{
    struct uart16550 c = *u;
    uart16550_fields(&c, s);
    return !s->failed;
}

bool uart16550_load(struct uart16550 *u, struct snap *s)
{
    struct uart16550 c = *u;
    uart16550_fields(&c, s);
    if (s->failed || !uart16550_check(&c, s))
        return false;
    *u = c;
    return true;
}
