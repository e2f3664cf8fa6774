/* The one IDT all CPUs share: 256 interrupt gates into arch/x86_64/cpu/isr.asm. */
#ifndef PLINTH_ARCH_IDT_H
#define PLINTH_ARCH_IDT_H

#include <stdint.h>

/* Builds the IDT and loads it (and the boot CPU's GDT) on the calling CPU.  Needs no
 * paging: until cpu_tables_init, exceptions run on the current stack. */
void idt_init(void);
/* Loads the shared IDT on the calling CPU (lidt). */
void idt_load(void);
/* Makes vector switch to IST slot ist (1..7, 0 = none) of the current CPU's TSS.
 * Every CPU must have that slot filled before it loads the IDT. */
void idt_set_ist(uint8_t vector, uint8_t ist);

#endif
