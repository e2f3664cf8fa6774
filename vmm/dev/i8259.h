/* The PC's pair of 8259A programmable interrupt controllers, as a guest sees them:
 * master at ports 0x20/0x21 (IRQ 0-7), slave at 0xa0/0xa1 (IRQ 8-15) cascaded into
 * the master's IR2, plus the chipset's edge/level control registers (ELCR) at
 * 0x4d0/0x4d1.  A plain state machine: devices drive input lines, the monitor reads
 * the INTR output (or gets it through a callback) and runs the INTA cycle with
 * i8259_acknowledge() when it injects the interrupt.
 *
 * Lines carry levels, as the wires do.  An edge-triggered input latches a request
 * on a rising edge; the request still has to be held high until the acknowledge
 * (8259A data sheet, "Edge and level triggered modes"): a line that drops first
 * withdraws it, and the acknowledge then yields the spurious vector base+7 with
 * no in-service bit.  A device that signals events rather than levels (the PIT
 * model) therefore pulses low-then-high and leaves the line high. */
#ifndef PLINTH_VMM_DEV_I8259_H
#define PLINTH_VMM_DEV_I8259_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/snap.h"

#define I8259_MASTER_COMMAND 0x20
#define I8259_MASTER_DATA    0x21
#define I8259_SLAVE_COMMAND  0xa0
#define I8259_SLAVE_DATA     0xa1
#define I8259_ELCR_MASTER    0x4d0
#define I8259_ELCR_SLAVE     0x4d1
#define I8259_IRQS           16
#define I8259_CASCADE_IRQ    2     /* the slave's INT output, wired to master IR2 */

/* Called, from inside whichever model call changed it, when the INT output to the
 * CPU changes level.  It records or kicks (an interrupt-window exit, a wakeup);
 * it must not call back into the model. */
typedef void (*i8259_intr_fn)(void *ctx, bool level);

struct i8259_chip {
    uint8_t irr, isr, imr;
    uint8_t lines;          /* input levels as driven now */
    uint8_t elcr, elcr_writable;
    uint8_t icw1, icw3, icw4;
    uint8_t vector_base;    /* ICW2 T7-T3 */
    uint8_t lowest;         /* the IR with the lowest priority (rotation) */
    uint8_t init_step;      /* 0: initialized; 2, 3, 4: the ICW the data port expects */
    bool    is_master;
    bool    read_isr;       /* OCW3 RIS: the command port reads ISR instead of IRR */
    bool    poll;           /* OCW3 P: the next read is a poll */
    bool    special_mask;   /* OCW3 SMM */
    bool    rotate_aeoi;    /* OCW2 rotate in automatic EOI mode */
};

struct i8259 {
    struct i8259_chip master, slave;
    bool          intr;     /* the master's INT output, as driven now */
    i8259_intr_fn intr_fn;
    void         *intr_ctx;
};

/* Power-on state: both chips uninitialized and fully masked (the real part's IMR is
 * undefined at reset; masked keeps a request from arriving as vector 0-7, the CPU's
 * exception vectors, before firmware or the OS programs ICW2), lines edge, low. */
void i8259_init(struct i8259 *pic, i8259_intr_fn intr, void *intr_ctx);

/* Drive input line irq (0-15) to level.  False for irq out of range or 2 (the
 * cascade is internal; the ISA bus's IRQ2 pin arrives at IRQ 9 on a PC). */
bool i8259_set_irq(struct i8259 *pic, unsigned irq, bool level);

/* The INTR output to the CPU: an unmasked request of higher priority than what is
 * in service is pending. */
bool i8259_has_interrupt(const struct i8259 *pic);

/* The INTA cycle: moves the highest request from IRR to ISR (through the slave for
 * IRQ 8-15) and returns the vector the CPU takes, 0-255.  With nothing to
 * acknowledge it is the spurious vector master base+7 (IRQ 7), without an ISR bit.
 * (The slave's spurious IRQ 15, a race on the real pair, cannot arise here: the
 * slave's output reaches the master at once.  A slave whose ICW3 ID does not match
 * the master's cascade input leaves the bus floating: vector 0xff.) */
uint8_t i8259_acknowledge(struct i8259 *pic);

/* Byte-wide register access at the ports above; any other port reads 0xff and
 * ignores writes. */
uint8_t i8259_read(struct i8259 *pic, uint16_t port);
void    i8259_write(struct i8259 *pic, uint16_t port, uint8_t value);

/* The same, shaped as io_read_fn / io_write_fn (vmm/io.h) with ctx = the pair, for
 * claiming 0x20-0x21, 0xa0-0xa1 and 0x4d0-0x4d1 on the port bus. */
uint8_t i8259_io_read(void *ctx, uint16_t port);
void    i8259_io_write(void *ctx, uint16_t port, uint8_t value);

/* Snapshot record "i8259" (vmm/snap.h): both chips' registers, where each stands
 * in its initialization sequence, the input lines as driven, ELCR, and intr, the
 * level the INT output is driven to.  The wiring (which chip is the master, the
 * writable ELCR bits) and the callback stay the live pair's.  No time arguments:
 * the pair has no clock.  A load never calls the intr callback: the caller
 * re-syncs the CPU's view from i8259_has_interrupt() and drives the input lines
 * to what the devices hold.  A refused load (an ICW step other than 0, 2, 3, 4,
 * a lowest-priority IR past 7, vector base bits 2:0 set, ELCR bits the chip
 * does not have) leaves *pic as it was. */
bool    i8259_save(const struct i8259 *pic, struct snap *s);
bool    i8259_load(struct i8259 *pic, struct snap *s);

#endif
