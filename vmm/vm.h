/* The monitor's per-VM and per-vCPU state. */
#ifndef PLINTH_VMM_VM_H
#define PLINTH_VMM_VM_H

#include "kernel/core_api.h"
#include "kernel/spinlock.h"
#include "vmm/config.h"
#include "vmm/dev/uart16550.h"
#include "vmm/io.h"
#include "vmm/mmio.h"
#include "vmm/dev/vlapic.h"

#define VMM_MAX_VCPUS 8
#define VMM_LINE_MAX  160
#define VMM_MSR_WARN_MAX 32

struct vmm_vm;

struct vmm_vcpu {
    struct vmm_vm *vm;
    unsigned index;
    core_vcpu_t h;
    /* MSRs the monitor keeps per vCPU (vmm/msr.c). */
    uint64_t mtrr_def, mtrr_var[16], mtrr_fixed[11];
    uint64_t apic_base;
    int64_t  tsc_offset;                  /* guest TSC = host TSC + offset */
    struct vlapic lapic;
};

enum vmm_vm_state { VMM_VM_RUNNING, VMM_VM_STOPPED };

struct vmm_vm {
    bool     used;
    struct config_vm conf;
    core_vm_t vm;
    uint8_t *ram;
    uint64_t ram_size;
    unsigned vcpu_count;
    struct vmm_vcpu vcpus[VMM_MAX_VCPUS];
    struct spinlock lock;                 /* state, console line, warnings */
    volatile enum vmm_vm_state state;
    struct io_bus io;
    struct mmio_bus mmio;
    struct spinlock uart_lock;            /* the UART model; taken before lock */
    struct uart16550 uart;
    char     line[VMM_LINE_MAX];
    size_t   line_len;
    uint64_t warned_msr[VMM_MSR_WARN_MAX];  /* msr << 1 | is_write */
    unsigned warned_msr_count;
    bool     warned_ipi;                  /* an IPI to a missing vCPU was logged */
    unsigned restarts;
    unsigned quick_crashes;               /* crashes in a row, each soon after its start */
    uint64_t emulated;                    /* instructions emulated on device memory */
    uint64_t started_ns;
};

/* The vCPU's TSC as the guest reads it (RDTSC and MSR 0x10): host TSC + its offset. */
static inline uint64_t vmm_guest_tsc(const struct vmm_vcpu *c)
{
    return core_tsc() + (uint64_t)c->tsc_offset;
}

/* Stops the VM (all its vCPUs) with a reason, logs "vm <name>: stopped (<reason>)"
 * and its exit counts, and restarts it if it crashed and its config says so.
 * Returns what the calling vCPU's handler should tell the core. */
enum vmm_action vmm_vm_stop(struct vmm_vcpu *c, bool crashed, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The event every exception injection uses. */
void vmm_inject_exception(struct vmm_vcpu *c, uint8_t vector, bool has_error, uint32_t error);

#endif
