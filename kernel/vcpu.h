/* The core's vCPU object: a backend vCPU plus what scheduling needs. */
#ifndef PLINTH_KERNEL_VCPU_H
#define PLINTH_KERNEL_VCPU_H

#include "kernel/core_api.h"
#include "kernel/spinlock.h"

#define CORE_MAX_VCPUS 64

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
    int64_t  tsc_offset;            /* applied when hw is created, and on every change */
    volatile uint64_t deadline;     /* core_time_ns() at which to run it again; 0: none */
    const struct vmm_vcpu_ops *ops;
    void    *ctx;
    uint64_t exits[HVM_EXIT_REASON_COUNT];
};

struct vcpu *vcpu_get(core_vcpu_t h);

#endif
