/* A 16550A UART as a guest sees it at eight consecutive I/O ports: a plain state
 * machine, fed accesses by the exit dispatch, raising its interrupt line through a
 * callback.  Transmission is instant: a byte written to THR goes to the tx callback
 * (the monitor's console), so the transmitter is always empty again afterwards. */
#ifndef PLINTH_VMM_DEV_UART16550_H
#define PLINTH_VMM_DEV_UART16550_H

#include <stdbool.h>
#include <stdint.h>

#define UART16550_FIFO_SIZE 16
#define UART16550_PORTS     8

typedef void (*uart16550_tx_fn)(void *ctx, uint8_t byte);
typedef void (*uart16550_irq_fn)(void *ctx, bool level);

struct uart16550 {
    uint8_t ier, lcr, mcr, lsr, msr, scr, fcr, dll, dlm;
    bool    thre_pending;         /* THR-empty interrupt armed, not yet acknowledged */
    bool    irq_level;            /* what the line is driven to now */
    uint8_t rx[UART16550_FIFO_SIZE];
    uint8_t rx_head, rx_count;
    uart16550_tx_fn  tx;
    void            *tx_ctx;
    uart16550_irq_fn irq;
    void            *irq_ctx;
};

void    uart16550_init(struct uart16550 *u, uart16550_tx_fn tx, void *tx_ctx,
                       uart16550_irq_fn irq, void *irq_ctx);
/* Register access at offset 0..7 from the base port; byte-wide (the 16550 has no
 * wider registers: the caller splits or rejects wider accesses). */
uint8_t uart16550_read(struct uart16550 *u, unsigned offset);
void    uart16550_write(struct uart16550 *u, unsigned offset, uint8_t value);
/* A byte from the host side (the console).  False if the receive FIFO is full
 * (the byte is lost and the overrun bit set, as on the real part). */
bool    uart16550_receive(struct uart16550 *u, uint8_t byte);

#endif
