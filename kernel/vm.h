/* The core's VM object: a guest-physical address space (RAM + nested tables). */
#ifndef PLINTH_KERNEL_VM_H
#define PLINTH_KERNEL_VM_H

#include "arch/x86_64/gpt.h"
#include "kernel/core_api.h"

#define CORE_MAX_VMS 16

struct vm {
    bool     used;
    uint64_t ram_phys;
    uint64_t ram_size;
    struct gpt nested;
};

/* The VM behind a handle, or NULL for a bad handle. */
struct vm *vm_get(core_vm_t h);

#endif
