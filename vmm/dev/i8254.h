/* The PC's 8254 programmable interval timer, as a guest sees it: counters 0-2 at
 * ports 0x40-0x42, the control word at 0x43, and port 0x61 (system control port
 * B), where counter 2's gate, the speaker data bit, OUT2 and the refresh toggle
 * live.  Counter 0's OUT drives IRQ 0; counter 2 is what firmware and Linux
 * calibrate the TSC against.
 *
 * No clock inside: the model asks a callback for "now" (monotonic nanoseconds) on
 * every access and computes counts and output levels from it, at the 8254's
 * 1.193182 MHz.  The monitor arms a host timer for i8254_next_event_ns() and calls
 * i8254_update() when it fires; each update that finds one or more rising edges of
 * OUT0 since the last calls the IRQ callback with false then true, a fresh edge
 * that leaves IRQ 0 high.  (A late timer coalesces periods, as the PIC's single
 * IRR bit would; a pulse that dropped again could be lost, see vmm/dev/i8259.h.) */
#ifndef PLINTH_VMM_DEV_I8254_H
#define PLINTH_VMM_DEV_I8254_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/snap.h"

#define I8254_COUNTER0    0x40
#define I8254_COUNTER1    0x41
#define I8254_COUNTER2    0x42
#define I8254_CONTROL     0x43
#define I8254_PORT_B      0x61
#define I8254_HZ          1193182u   /* 14.31818 MHz / 12 */
#define I8254_CHANNELS    3
#define I8254_NO_EVENT    UINT64_MAX

/* Required: the monitor's monotonic clock in ns, the same time base the guest's
 * TSC runs on, or the guest's TSC calibration against counter 2 comes out wrong. */
typedef uint64_t (*i8254_clock_fn)(void *ctx);
/* IRQ 0, driven from inside i8254_update() and from port writes that reprogram
 * counter 0 (edges of the old programming are delivered first).  Typically
 * i8259_set_irq(pic, 0, level); it must not call back into the timer. */
typedef void     (*i8254_irq_fn)(void *ctx, bool level);

struct i8254_channel {
    uint8_t  control;        /* RW1-0, M2-0, BCD as programmed (read-back status) */
    uint8_t  mode;           /* 0-5 (6 and 7 are 2 and 3) */
    uint8_t  rw;             /* 1 LSB, 2 MSB, 3 LSB then MSB */
    bool     bcd;
    bool     gate;
    bool     armed;          /* a count was written since the control word */
    bool     running;        /* the counting element counts from start */
    bool     done;           /* modes 0/1: OUT high for good; 4/5: strobe given */
    bool     start_is_edge;  /* modes 2/3: start is a period boundary (OUT rose) */
    bool     pending;        /* modes 2/3: a new count waits for the period end */
    uint32_t reload;         /* the count register as a count, 1..65536 (10000) */
    uint32_t pending_reload;
    uint64_t start;          /* tick at which the counting element held start_count */
    uint32_t start_count;
    uint64_t load_tick;      /* when the count register reaches the element */
    uint16_t frozen_count;   /* count and OUT while not running */
    bool     frozen_out;
    bool     write_msb;      /* LSB-then-MSB: the LSB is in, the MSB is next */
    uint8_t  write_lsb;
    bool     read_msb;       /* LSB-then-MSB: the next read is the MSB */
    bool     count_latched;
    uint16_t latch;
    bool     status_latched;
    uint8_t  status;
};

struct i8254 {
    struct i8254_channel ch[I8254_CHANNELS];
    uint8_t        port_b;        /* bits 0-3 as written */
    uint64_t       last_tick;     /* the clock never runs backwards for the model */
    uint64_t       irq_checked;   /* OUT0 edges up to this tick were delivered */
    i8254_clock_fn clock;
    void          *clock_ctx;
    i8254_irq_fn   irq0;
    void          *irq_ctx;
};

/* Power-on: no counter programmed (no output edges), counters 0 and 1 gated on (as
 * wired on the PC), counter 2's gate off (port 0x61 bit 0 clear). */
void i8254_init(struct i8254 *pit, i8254_clock_fn clock, void *clock_ctx,
                i8254_irq_fn irq0, void *irq_ctx);

/* Byte-wide access at 0x40-0x43 and 0x61; any other port reads 0xff and ignores
 * writes.  The control word port is write-only and reads 0xff. */
uint8_t i8254_read(struct i8254 *pit, uint16_t port);
void    i8254_write(struct i8254 *pit, uint16_t port, uint8_t value);

/* The same, shaped as io_read_fn / io_write_fn (vmm/io.h) with ctx = the timer. */
uint8_t i8254_io_read(void *ctx, uint16_t port);
void    i8254_io_write(void *ctx, uint16_t port, uint8_t value);

/* Deliver OUT0's rising edges up to now through the IRQ callback. */
void     i8254_update(struct i8254 *pit);
/* When OUT0 next rises (absolute ns of the clock), or I8254_NO_EVENT; a time
 * already past means an edge is waiting for i8254_update().  Guest-programmed: a
 * count of 2 in mode 2 asks for an edge every 1.7 us, so the monitor bounds how
 * often it lets the timer fire. */
uint64_t i8254_next_event_ns(struct i8254 *pit);

/* Snapshot record "i8254" (vmm/snap.h): every counter's programming, count,
 * latches and flip-flops, port 0x61's bits, and which OUT0 edges were delivered.
 * The clock and IRQ callbacks stay the live model's and neither is called.
 *
 * now_ns is what the clock callback returns at the save, and at the load (the
 * model reads no clock here, so a test can name both).  The record keeps the
 * model's points in time in its own 1.193182 MHz ticks, as distances from the
 * tick of now_ns; a load at another now_ns shifts them all by the ticks between,
 * so counts read and edges due go on from where the save left them.  An edge
 * that was due and not yet delivered at the save is due at once after the load.
 *
 * A refused load (a mode past 5, a read/write mode or BCD flag not matching the
 * control word, a count of 0 or past 65536 (10000 in BCD) on a programmed or
 * running counter, a pending count outside modes 2 and 3, a gate not wired as
 * on the PC, port 0x61 bits the model does not keep) leaves *pit as it was. */
bool    i8254_save(const struct i8254 *pit, struct snap *s, uint64_t now_ns);
bool    i8254_load(struct i8254 *pit, struct snap *s, uint64_t now_ns);

#endif
