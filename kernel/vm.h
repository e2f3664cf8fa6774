/* The core's VM object: a guest-physical address space (RAM + nested tables). */
#ifndef PLINTH_KERNEL_VM_H
#define PLINTH_KERNEL_VM_H

#include "arch/x86_64/gpt.h"
#include "kernel/core_api.h"
#include "kernel/spinlock.h"

#define CORE_MAX_VMS 16
#define VM_ALLOCS_MAX 16

struct vm {
    bool     used;
    uint64_t ram_phys;
    uint64_t ram_size;
    struct gpt nested;
    /* vCPUs not yet freed by their CPUs (vcpu_free): the VM's RAM and tables are
     * given back only after the last, since until then a CPU may still hold
     * translations through them.  dying: core_vm_destroy was called. */
    unsigned vcpus;
    bool     dying;
    /* The shell's `pause`: its vCPUs are not scheduled (sched.c pick) until resumed. */
    volatile bool paused;
    /* CPU shares of its vCPUs (core_vm_set_shares, sched.c pick). */
    unsigned weight;               /* 1..1000; 0: CORE_WEIGHT_DEFAULT */
    unsigned cap_pct;              /* 1..100 percent of a CPU per vCPU; 0: none */
    bool     high;                 /* priority = high */
    /* The monitor's own memory for this VM (core_vm_alloc), freed with it. */
    struct { uint64_t phys; size_t pages; } allocs[VM_ALLOCS_MAX];
    unsigned alloc_count;
    struct spinlock alloc_lock;
};

/* The VM behind a handle, or NULL for a bad handle (or a VM already freed). */
struct vm *vm_get(core_vm_t h);
/* A new vCPU of the VM: false if the VM is gone or being destroyed. */
bool vm_vcpu_hold(core_vm_t h);
/* Pauses or resumes the VM's vCPUs (at their next exit); false for a bad handle. */
bool vm_set_paused(core_vm_t h, bool paused);
bool vm_paused(core_vm_t h);
/* Its network ports go with it (kernel/netsvc.c). */
void netsvc_vm_free(core_vm_t h);
/* One of its vCPUs was freed; the last one of a destroyed VM frees the VM. */
void vm_vcpu_release(core_vm_t h);

#endif
