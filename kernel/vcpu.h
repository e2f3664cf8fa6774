/* The core's vCPU object: a backend vCPU plus what scheduling needs. */
#ifndef PLINTH_KERNEL_VCPU_H
#define PLINTH_KERNEL_VCPU_H

#include "kernel/core_api.h"
#include "kernel/spinlock.h"

#define CORE_MAX_VCPUS 64
#define VCPU_CPUID_CACHE 32

enum vcpu_state { VCPU_RUNNABLE, VCPU_BLOCKED, VCPU_STOPPED };

struct vcpu {
    bool     used;
    core_vm_t vm;
    uint32_t cpu;                   /* the physical CPU it always runs on */
    struct hvm_vcpu *hw;            /* NULL until its first run on that CPU */
    bool     hw_failed;
    struct hvm_state initial;       /* state set before hw exists */
    bool     have_initial;
    struct spinlock lock;           /* state and wake_pending */
    volatile enum vcpu_state state;
    volatile bool wake_pending;
    bool     block_requested;       /* by its pre_entry: do not enter (core_vcpu_block) */
    bool     started;               /* kicked at least once */
    volatile bool destroying;       /* core_vcpu_destroy: its CPU frees it (vcpu_free) */
    volatile bool in_run;           /* its CPU is in run_vcpu for it (sched.c) */
    /* Wake-up boost (sched.c pick): a vCPU woken from blocked that slept at least as
     * long as it had run goes before the round robin, once. */
    volatile bool boost;
    uint64_t blocked_at;            /* time_since_boot_ns() when it last blocked */
    uint64_t ran_ns;                /* how long it ran since it was last woken */
    uint64_t cpu_ns;                /* how long it ran in all */
    /* CPU shares (sched.c): virtual run time (ns run x 100 / its VM's cpu_weight),
     * and a capped vCPU's use of its budget in the period that began at cap_start. */
    uint64_t vruntime;
    uint64_t cap_used, cap_start;
    /* The last whole second's CPU time and exits (vcpu_sample), for the shell. */
    uint64_t sec_cpu_ns, sec_exits;
    uint64_t sample_cpu_ns, sample_exits;
    int64_t  tsc_offset;            /* applied when hw is created, and on every change */
    volatile uint64_t deadline;     /* core_time_ns() at which to run it again; 0: none */
    const struct vmm_vcpu_ops *ops;
    void    *ctx;
    uint64_t exits[HVM_EXIT_REASON_COUNT];
    /* CPUID answers the monitor left with the core (core_vcpu_cache_cpuid),
     * direct-mapped by leaf and subleaf. */
    struct vcpu_cpuid {
        bool     valid;
        uint32_t leaf, subleaf, r[4];
    } cpuid_cache[VCPU_CPUID_CACHE];
};

struct vcpu *vcpu_get(core_vcpu_t h);
/* The vCPUs of vm (at most max, in creation order): how many. */
unsigned vcpu_of_vm(core_vm_t vm, core_vcpu_t *out, unsigned max);
/* Once a second, from the shell's CPU: each vCPU's CPU time and exits in the
 * second just past (sec_cpu_ns, sec_exits). */
void vcpu_sample(void);
uint64_t vcpu_total_exits(const struct vcpu *v);
/* v went from blocked to runnable at now (under v->lock): whether it earned a boost. */
static inline void vcpu_woken(struct vcpu *v, uint64_t now)
{
    v->boost = now - v->blocked_at >= v->ran_ns;
    v->ran_ns = 0;
}
/* Frees a vCPU core_vcpu_destroy gave up, on its own CPU (where its VMCS or VMCB was
 * last loaded) and outside any run of it: the backend vCPU, the slot, and the VM's
 * hold on its memory.  Called by the scheduler, after taking it off the run queue. */
void vcpu_free(core_vcpu_t h);
/* The slot of a CPUID leaf in the vCPU's cache (core_vcpu_cache_cpuid). */
static inline struct vcpu_cpuid *vcpu_cpuid_slot(struct vcpu *v, uint32_t leaf, uint32_t subleaf)
{
    return &v->cpuid_cache[(leaf ^ (leaf >> 25) ^ (subleaf * 5)) % VCPU_CPUID_CACHE];
}

/* The monitor's cached answer to a CPUID exit, or NULL: not cached, or the length is
 * not known (it must be decoded, which the monitor does). */
static inline const uint32_t *vcpu_cpuid_cached(struct vcpu *v, const struct hvm_exit *x)
{
    const struct vcpu_cpuid *e = vcpu_cpuid_slot(v, x->cpuid.leaf, x->cpuid.subleaf);
    if (!e->valid || e->leaf != x->cpuid.leaf || e->subleaf != x->cpuid.subleaf || !x->insn_len)
        return NULL;
    return e->r;
}

#endif
