/* The guest's I/O APIC (Intel 82093AA data sheet; the register layout every PC OS
 * uses): 24 input pins, each routed by a redirection entry to a local APIC message.
 * A plain state machine: MMIO accesses in, interrupt messages out via a callback. */
#ifndef PLINTH_VMM_DEV_IOAPIC_H
#define PLINTH_VMM_DEV_IOAPIC_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/snap.h"

#define IOAPIC_PINS       24
#define IOAPIC_MMIO_SIZE  0x1000

/* An interrupt message for the local APICs (delivery mode as in the redirection
 * entry: 0 fixed, 1 lowest priority, 2 SMI, 4 NMI, 5 INIT, 7 ExtINT). */
struct ioapic_msg {
    uint8_t vector;
    uint8_t delivery_mode;
    bool    logical;          /* destination mode */
    uint8_t dest;             /* APIC ID, or logical destination */
    bool    level;            /* level-triggered: the LAPIC must send an EOI back */
};

typedef void (*ioapic_deliver_fn)(void *ctx, const struct ioapic_msg *m);

struct ioapic {
    uint8_t  id;
    uint32_t ioregsel;
    uint64_t redir[IOAPIC_PINS];
    uint32_t pin_level;       /* the input lines as the devices drive them */
    uint32_t remote_irr;      /* level-triggered pins delivered and not yet EOIed */
    ioapic_deliver_fn deliver;
    void *ctx;
};

void ioapic_init(struct ioapic *io, uint8_t id, ioapic_deliver_fn deliver, void *ctx);
/* MMIO at offset 0x00 (IOREGSEL), 0x10 (IOWIN), 0x40 (EOI, version 0x20 parts);
 * 32-bit accesses only: others read all ones and are ignored. */
uint32_t ioapic_read(struct ioapic *io, uint64_t offset, unsigned size);
void     ioapic_write(struct ioapic *io, uint64_t offset, unsigned size, uint32_t value);
/* A device drives pin to level (edge pins fire on the rising edge). */
void     ioapic_set_irq(struct ioapic *io, unsigned pin, bool level);
/* The local APIC finished a level-triggered vector: clears Remote IRR of every pin
 * routed to it, and redelivers if the line is still asserted. */
void     ioapic_eoi(struct ioapic *io, uint8_t vector);

/* Snapshot record "ioapic" (vmm/snap.h): the ID, IOREGSEL, every redirection
 * entry, the pins' input levels and Remote IRR.  The deliver callback stays the
 * live model's and is not called: a level pin delivered before the save waits
 * for its EOI as it did, and the caller re-drives the input pins from the
 * devices.  No time arguments: the I/O APIC has no clock.  A refused load (an ID
 * past 4 bits, IOREGSEL past 8, read-only or reserved entry bits set, pins past
 * 23, Remote IRR on an edge pin) leaves *io as it was. */
bool     ioapic_save(const struct ioapic *io, struct snap *s);
bool     ioapic_load(struct ioapic *io, struct snap *s);

#endif
