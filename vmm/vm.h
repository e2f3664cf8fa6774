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
#include "vmm/platform.h"
#include "vmm/console.h"
#include "vmm/stats.h"

#define VMM_MAX_VCPUS 8
#define VMM_LINE_MAX  160
#define VMM_MSR_WARN_MAX 32

struct vmm_vm;
struct vmm_pci;
struct vmm_disk;
struct vmm_vcon;
struct vmm_nic;

struct vmm_vcpu {
    struct vmm_vm *vm;
    unsigned index;
    core_vcpu_t h;
    /* MSRs the monitor keeps per vCPU (vmm/msr.c). */
    uint64_t mtrr_def, mtrr_var[16], mtrr_fixed[11];
    uint64_t apic_base;
    int64_t  tsc_offset;                  /* guest TSC = host TSC + offset */
    uint64_t pvclock_msr;                 /* the pvclock's time-info MSR (vmm/pvclock) */
    uint64_t misc_enable;                 /* IA32_MISC_ENABLE (Intel) */
    uint64_t perf_ctl[4], perf_ctr[4];    /* AMD's legacy counters, never counting (vmm/pmu.c) */
    struct vlapic lapic;
    /* Guards lapic and the delivery state below: the vCPU itself (APIC page, MSRs,
     * pre_entry, HLT) and whoever delivers to it (another vCPU's IPI, the IOAPIC)
     * take it.  Lock order: a device's lock -> the platform lock -> this; nothing
     * is taken under it (vmm/lapic.c defers the APIC's callbacks until it is
     * dropped). */
    struct spinlock lapic_lock;
    bool     nmi_pending;
    bool     init_pending;
    bool     sipi_pending;
    uint8_t  sipi_vector;
    bool     wait_sipi;                   /* after INIT: runs only after a SIPI (SDM Vol. 3A §9.4.2) */
    /* What the APIC model sent while lapic_lock was held, acted on after
     * (touched by the vCPU itself only). */
    bool     out_ipi_valid;
    struct vlapic_ipi out_ipi;
    int      out_eoi;                     /* a level-triggered vector's EOI, or -1 */
    /* VM reset (vm.c): park asks this vCPU to stop entering the guest; parked
     * says it has; epoch is the VM boot whose state it has applied. */
    bool     park;
    bool     parked;
    unsigned epoch;
    volatile bool halted_for_good;        /* HLT with interrupts off; cleared when it runs again */
    /* A restore put new state in place: the vCPU loads its own CPU state from the
     * snapshot before it next enters (vmm/snapshot.c). */
    bool     restore_pending;
};

enum vmm_vm_state { VMM_VM_RUNNING, VMM_VM_STOPPED };

/* What the VM's parked vCPUs are waiting for (vm.c): the last to park does it. */
enum vmm_job { VMM_JOB_NONE, VMM_JOB_REBOOT, VMM_JOB_SNAPSHOT, VMM_JOB_RESTORE };

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
    bool     stop_logged;                 /* its stop line and exit counts are out */
    struct io_bus io;
    struct mmio_bus mmio;
    struct spinlock uart_lock;            /* the UART model; taken before lock */
    struct uart16550 uart;
    struct vmm_platform platform;         /* PIC, PIT, RTC, IOAPIC, reset/ACPI PM */
    struct vmm_pci *pci;                  /* its PCI bus (vmm/pci.c), NULL without ACPI */
    unsigned disk_count;
    struct vmm_disk *disks[CONFIG_MAX_DISKS];
    struct vmm_vcon *vcon;                /* console = virtio (vmm/vconsole.c), else NULL */
    struct vmm_nic *nic;                  /* net = NAME (vmm/nic.c), else NULL */
    char     line[VMM_LINE_MAX];
    size_t   line_len;
    uint64_t warned_msr[VMM_MSR_WARN_MAX];  /* msr << 1 | is_write */
    unsigned warned_msr_count;
    uint64_t unlogged_msr;                /* accesses past the first VMM_MSR_WARN_MAX MSRs */
    bool     warned_ipi;                  /* an IPI to a missing vCPU was logged */
    /* (Re)boots: each one's number, vCPU 0's entry state and the TSC offset every
     * vCPU applies from its own context before it next enters (vm.c). */
    unsigned epoch;
    struct hvm_state boot_state;
    int64_t  tsc_offset;
    bool     resetting;                   /* a job is under way: vCPUs park for it */
    enum vmm_job job;
    unsigned parked;                      /* how many have */
    unsigned restarts;
    unsigned quick_crashes;               /* crashes in a row, each soon after its start */
    uint64_t restart_delay_ns;            /* this restart's back-off */
    struct vmm_vcpu *rebooter;            /* the last vCPU to park: it reboots the VM */
    uint64_t clear_done;                  /* bytes of RAM it has cleared so far */
    uint64_t reboot_at;                   /* core_time_ns() at which it boots the VM */
    uint64_t emulated;                    /* instructions emulated on device memory */
    uint64_t started_ns;
    uint64_t pvclock_wall_msr;            /* the pvclock's wall-clock MSR */
    uint64_t tx_tat;                      /* console pacing (vm.c console_pace), under lock */
    uint64_t tx_paced_until;              /* 0, or when its vCPUs may run again */
    /* Console input (vm.c): the core has bytes for it; taken ones the UART has not. */
    bool     input_waiting;
    char     in_buf[VMM_CONSOLE_BUF];
    unsigned in_head, in_count;           /* under uart_lock */
    /* For the shell: why it stopped, whether the shell stopped it, and counters. */
    char     stop_reason[96];
    bool     stopped_by_shell;
    uint64_t injected;                    /* interrupts and NMIs injected */
    unsigned snapshots, restores;         /* taken and restored (vmm/snapshot.c) */
    struct stage *stage;                  /* the snapshot being taken or restored */
    struct vmm_counters port_exits, mmio_exits;
};

/* The vCPU's TSC as the guest reads it (RDTSC and MSR 0x10): host TSC + its offset. */
static inline uint64_t vmm_guest_tsc(const struct vmm_vcpu *c)
{
    return core_tsc() + (uint64_t)c->tsc_offset;
}

/* One line of the guest's console output (no newline), from the UART or hvc0: to
 * plinth's console, tagged, and counted against the VM's share of the serial
 * line (vm.c, console_pace). */
void vmm_console_line(struct vmm_vm *m, const char *s, size_t n);

/* Stops the VM (all its vCPUs) with a reason, logs "vm <name>: stopped (<reason>)"
 * and its exit counts, and restarts it if it crashed and its config says so.
 * Returns what the calling vCPU's handler should tell the core. */
enum vmm_action vmm_vm_stop(struct vmm_vcpu *c, bool crashed, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The guest reset its machine (0xCF9, port 0x92, the i8042, an INIT to vCPU 0):
 * every vCPU is parked, the VM boots again, vCPU 0 from its entry and the others
 * back to waiting for a start-up IPI.  Not a crash: it always restarts, unless it
 * keeps resetting soon after each start.  Returns what the calling vCPU's handler
 * should tell the core. */
enum vmm_action vmm_vm_reset(struct vmm_vcpu *c, const char *why);
/* Before each entry (vmm_lapic_pre_entry): parks the vCPU while its VM resets and
 * applies a new boot's state.  False: the vCPU must not enter (it was told to
 * block, core_vcpu_block). */
bool vmm_vm_pre_entry(struct vmm_vcpu *c);
/* vCPU c executed HLT with interrupts disabled at rip: only an NMI, INIT or SIPI
 * wakes it.  With every other vCPU of the VM halted so too (or waiting for a SIPI)
 * the guest has ended and the VM stops; until then c sleeps (an OS parks its other
 * CPUs this way before a reset or poweroff).  For exit_hlt. */
enum vmm_action vmm_vm_halted(struct vmm_vcpu *c, uint64_t rip);
/* vCPU c (an AP) has just been sent to wait for a SIPI by an INIT: if every other
 * vCPU is halted with interrupts off (or waiting so too), the guest has ended as
 * above, and the VM stops (true; c must not enter again).  For vmm_lapic_pre_entry:
 * without it a VM whose last running vCPU INITs an AP and then halts would sleep
 * for ever, the halt having looked while the AP still ran. */
bool vmm_vm_ended_at_init(struct vmm_vcpu *c);

/* Jobs done with every vCPU parked (vmm/snapshot.c uses these).  claim: the VM is
 * running and no job is under way, so this one is now (false otherwise);
 * claim_stopped likewise for a stopped VM (false with msg).  unclaim gives a claim
 * back unused; park_all asks every vCPU to park, the last one then does the job. */
bool vmm_vm_claim(struct vmm_vm *m, enum vmm_job job);
bool vmm_vm_claim_stopped(struct vmm_vm *m, char *msg, size_t len);
void vmm_vm_unclaim(struct vmm_vm *m);
void vmm_vm_park_all(struct vmm_vm *m);
/* A claimed, stopped VM's vCPUs run again, into job (0, or -1 with msg). */
int  vmm_vm_revive(struct vmm_vm *m, enum vmm_job job, char *msg, size_t len);
/* From the job's vCPU c: the VM stops (its state is lost half-way). */
void vmm_vm_stop_parked(struct vmm_vcpu *c, const char *reason);
const char *vmm_vm_job_name(const struct vmm_vm *m);

/* The event every exception injection uses. */
void vmm_inject_exception(struct vmm_vcpu *c, uint8_t vector, bool has_error, uint32_t error);

#endif
