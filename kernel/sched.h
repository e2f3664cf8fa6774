/* Per-CPU run queues of vCPUs.  Every CPU runs sched_run_cpu forever: it enters the
 * next runnable vCPU, hands its exits to the monitor, time-slices when several
 * vCPUs share the CPU, and halts when none is runnable. */
#ifndef PLINTH_KERNEL_SCHED_H
#define PLINTH_KERNEL_SCHED_H

#include "kernel/core_api.h"

/* The slice a vCPU gets when others wait on the same CPU. */
#define SCHED_SLICE_NS 10000000ull
/* The least a vCPU runs per entry, whatever deadline is due: a guest programming
 * its timer faster than plinth can deliver the interrupts still makes progress. */
#define SCHED_MIN_RUN_NS 50000ull

/* On the boot CPU, once: enables the backend there and the wake-up vector. */
void sched_init(void);
/* The least-loaded CPU of mask that can run guests, or -1. */
int  sched_choose_cpu(uint64_t mask);
int  sched_add(core_vcpu_t v, uint32_t cpu);
/* A vCPU of cpu was destroyed: cpu frees it (vcpu_free) at its scheduler's next turn. */
void sched_reap(uint32_t cpu);
/* Makes cpu look at its run queue again (an IPI, unless it is this CPU). */
void sched_poke(uint32_t cpu);
/* A vCPU of cpu went from blocked to runnable: as sched_poke, and cpu's running
 * vCPU's run and slice end at its next exit so that the scheduler sees the new one. */
void sched_woken(uint32_t cpu);
/* fn runs on the boot CPU between vCPU runs, as soon as it is due: it returns when
 * it is due next (absolute time_since_boot_ns), and vCPU runs there end by then. */
void sched_set_service(uint64_t (*fn)(uint64_t now));
/* Never returns: this CPU's scheduling loop. */
__attribute__((noreturn)) void sched_run_cpu(void);

#endif
