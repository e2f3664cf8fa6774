/* Per-CPU data, as far as arch code needs it: each CPU's GS base points at its block,
 * whose head (self pointer, CPU index) arch code may read; what follows the head is
 * the kernel's (kernel/smp.h, struct cpu, begins with the same two fields).  So arch
 * code learns which CPU it runs on without calling up into the kernel. */
#ifndef PLINTH_ARCH_CPU_PERCPU_H
#define PLINTH_ARCH_CPU_PERCPU_H

#include <stdbool.h>
#include <stdint.h>

#define PERCPU_MAX_CPUS 64

struct percpu_head {
    void    *self;          /* at %gs:0 */
    uint32_t index;         /* at %gs:8; 0 = the boot CPU */
};

/* Points this CPU's GS base at its block (the kernel's, once per CPU). */
void percpu_install(struct percpu_head *head);

/* The calling CPU's index: 0 until the boot CPU installed its block. */
static inline uint32_t percpu_index(void)
{
    extern bool percpu_ready;
    if (!__atomic_load_n(&percpu_ready, __ATOMIC_ACQUIRE))
        return 0;
    uint32_t i;
    __asm__ volatile("movl %%gs:8, %0" : "=r"(i));
    return i;
}

#endif
