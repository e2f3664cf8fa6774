/* The host's legacy 8259A PIC pair.  plinth takes interrupts through the local APIC
 * (and IOAPIC), so the PICs are only moved off the exception vectors and masked. */
#ifndef PLINTH_DRIVERS_I8259_H
#define PLINTH_DRIVERS_I8259_H

/* Vectors the PICs' spurious IRQ 7 / 15 would arrive on after remapping. */
#define I8259_VECTOR_BASE 0x20

/* Remaps both PICs to I8259_VECTOR_BASE.. and masks every line.  Must run before
 * interrupts are first enabled: the firmware leaves the master at vector 8, where
 * its timer interrupt would be taken for a double fault. */
void i8259_disable(void);

#endif
