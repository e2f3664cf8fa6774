/* A 16550A UART as a guest sees it at eight consecutive I/O ports: a plain state
 * machine, fed accesses by the exit dispatch, raising its interrupt line through a
 * callback.  Transmission is instant: a byte written to THR goes to the tx callback
 * (the monitor's console), so the transmitter is always empty again afterwards.
 *
 * Reception comes from the host side: the monitor asks how much the receiver takes
 * (uart16550_rx_space), hands over that many bytes (uart16550_receive), and tells the
 * part when its input has been quiet for a while (uart16550_rx_idle), which is what
 * raises the FIFO's character timeout indication for data below the trigger level.
 *
 * The model has no lock: the caller serialises every call on one instance. */
#ifndef PLINTH_VMM_DEV_UART16550_H
#define PLINTH_VMM_DEV_UART16550_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/snap.h"

#define UART16550_FIFO_SIZE 16
#define UART16550_PORTS     8

typedef void (*uart16550_tx_fn)(void *ctx, uint8_t byte);
/* The part's interrupt as a PC wires it: the INTR output gated by MCR.OUT2. */
typedef void (*uart16550_irq_fn)(void *ctx, bool level);

struct uart16550 {
    uint8_t ier, lcr, mcr, lsr, msr, scr, fcr, dll, dlm;
    bool    thre_pending;         /* THR-empty interrupt armed, not yet acknowledged */
    bool    rx_quiet;             /* no byte in or out of the RX FIFO for 4 character times */
    bool    irq_level;            /* what the line is driven to now */
    uint8_t rx[UART16550_FIFO_SIZE];
    uint8_t rx_head, rx_count;
    uart16550_tx_fn  tx;
    void            *tx_ctx;
    uart16550_irq_fn irq;
    void            *irq_ctx;
};

/* The part after a master reset (data sheet, "UART Reset Configuration"), line low. */
void     uart16550_init(struct uart16550 *u, uart16550_tx_fn tx, void *tx_ctx,
                        uart16550_irq_fn irq, void *irq_ctx);
/* Register access at offset 0..7 from the base port; byte-wide (the 16550 has no
 * wider registers: the I/O bus splits wider accesses).  Other offsets read 0xff and
 * ignore writes. */
uint8_t  uart16550_read(struct uart16550 *u, unsigned offset);
void     uart16550_write(struct uart16550 *u, unsigned offset, uint8_t value);
/* How many bytes the receiver takes now without an overrun: the FIFO's free room,
 * or the holding register's with FIFOs off; 0 in loopback, where the serial input
 * is disconnected.  A host that keeps to it never loses a byte. */
unsigned uart16550_rx_space(const struct uart16550 *u);
/* A byte from the host side.  False if it was lost: loopback (input disconnected)
 * or no room, which sets the overrun error as the real part does. */
bool     uart16550_receive(struct uart16550 *u, uint8_t byte);
/* The serial input has been quiet for at least four character times (the caller's
 * poll interval): with FIFOs on and data waiting, the character timeout indication
 * is raised, as the part does for data below the trigger level. */
void     uart16550_rx_idle(struct uart16550 *u);
/* Whether received data would interrupt: ERBFI enabled and the line reaching the
 * PIC (OUT2 set, not in loopback).  A guest with it clear reads the UART by polling,
 * so its monitor need not wake it for input. */
bool     uart16550_rx_irq_armed(const struct uart16550 *u);

/* Snapshot record "uart" (vmm/snap.h): the registers, the divisor latch, the RX
 * FIFO with its bytes, the pending THRE and timeout state, and irq_level, the
 * level the line is driven to.  The callbacks stay the live model's.  The model
 * has no clock (the caller's poll interval stands in for character times), so
 * there are no time arguments.  A load never calls the irq callback: the caller
 * drives the line to irq_level afterwards.  A refused load (FIFO index or count
 * out of range, reserved register bits set, LSR.DR not matching the FIFO) leaves
 * *u as it was. */
bool     uart16550_save(const struct uart16550 *u, struct snap *s);
bool     uart16550_load(struct uart16550 *u, struct snap *s);

#endif
