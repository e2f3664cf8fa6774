/* Per-CPU GDT and TSS.  Every CPU has its own pair (the TSS holds that CPU's
 * interrupt stacks); all CPUs share one IDT (idt.h). */
#ifndef PLINTH_ARCH_GDT_H
#define PLINTH_ARCH_GDT_H

#include <stdint.h>

#define GDT_KERNEL_CODE 0x08
#define GDT_KERNEL_DATA 0x10
#define GDT_TSS         0x18   /* 16 bytes: two GDT slots in long mode */

/* Interrupt Stack Table slots (SDM Vol. 3A 6.14.5): faults that can strike with a
 * broken stack get a stack of their own. */
#define TSS_IST_DF  1   /* double fault: typically a stack overflow into a guard page */
#define TSS_IST_NMI 2   /* NMI: may arrive at any instruction, e.g. mid stack switch */
#define TSS_IST_MC  3   /* machine check: likewise asynchronous */
#define TSS_IST_COUNT 3

#define TSS_IST_STACK_SIZE 16384

/* Builds and loads cpu_index's GDT and TSS, gives it guard-paged IST stacks (from
 * stack_alloc, so paging must be up), and loads the shared IDT.  Safe to call on any
 * CPU, once per CPU; calling it again on the same CPU reloads the same tables. */
void cpu_tables_init(uint32_t cpu_index);

/* Loads cpu_index's GDT and TSS without IST stacks: for idt_init, before paging. */
void gdt_load(uint32_t cpu_index);

/* The index of the CPU running this, from the GDT it has loaded (sgdt), so it works
 * before per-CPU data exists; 0 while the boot path's GDT is still loaded. */
uint32_t gdt_current_cpu(void);

/* Which IST slot of cpu_index's TSS contains rsp (1..3), or 0 for none. */
int gdt_ist_containing(uint32_t cpu_index, uint64_t rsp);

#endif
