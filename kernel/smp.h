/* Every CPU ACPI lists: bring-up, per-CPU data, cross-CPU calls. */
#ifndef PLINTH_KERNEL_SMP_H
#define PLINTH_KERNEL_SMP_H

#include "arch/x86_64/cpu/percpu.h"

#include <stdint.h>
#include <stdbool.h>

#define SMP_MAX_CPUS PERCPU_MAX_CPUS

/* Begins with arch's struct percpu_head (self, index), which arch code reads. */
struct cpu {
    struct cpu *self;        /* at %gs:0, so this_cpu() is one load */
    uint32_t index;          /* 0 = the boot CPU */
    uint32_t apic_id;
    uint64_t stack_top;
    volatile bool online;
};

/* Starts every enabled CPU of the MADT (INIT-SIPI-SIPI) and waits for each to report. */
void smp_init(void);
uint32_t smp_cpus_online(void);
struct cpu *this_cpu(void);
struct cpu *smp_cpu(uint32_t index);
/* NMI to every other CPU, which then halts: for panic.  Safe from any context. */
void smp_stop_other_cpus(void);

/* Fixed interrupt vector (32..255) to CPU cpu_index, which must be online.  Returns 0,
 * or -1 for a bad CPU or vector, or an IPI the local APIC did not accept. */
int  smp_send_ipi(uint32_t cpu_index, uint8_t vector);
/* True once smp_stop_other_cpus has been called: an idle CPU halts for good. */
bool smp_stopping(void);
/* Hands every AP from its idle loop to fn (e.g. the scheduler's per-CPU loop, which
 * never returns); APs that come online later go there directly.  Call on the boot
 * CPU after smp_init, once. */
void smp_release_aps(void (*fn)(void));
/* The trampoline's C entry on each AP (arch/x86_64/cpu/ap_trampoline.asm). */
void smp_ap_entry(uint32_t index);

#endif
