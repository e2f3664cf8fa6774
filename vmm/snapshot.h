/* VM snapshots in the monitor.  A snapshot is taken, and put back, with every vCPU
 * of the VM parked at an exit boundary (vm.c's park, as for a reset): each vCPU
 * saves its own state (only it may reach its VMCS or VMCB) as it parks; the last to
 * park copies the RAM into the core's store step by step, then writes the devices'
 * and vCPUs' state as one stream (vmm/snap.h) and hands it over.  A restore reads
 * and checks the whole stream first (a refused one changes nothing), puts the RAM
 * back step by step, then the devices, and each vCPU loads its own state before it
 * next enters.  Time is rebased: the guest's TSC and every timer go on from the
 * moment of the snapshot. */
#ifndef PLINTH_VMM_SNAPSHOT_H
#define PLINTH_VMM_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>

struct vmm_vm;
struct vmm_vcpu;

/* From the shell: 0 once the vCPUs were asked to park for it (the result is
 * logged when it is done), or -1 with one line in msg. */
int  vmm_snapshot_request(struct vmm_vm *m, const char *tag, char *msg, size_t len);
int  vmm_restore_request(struct vmm_vm *m, const char *tag, char *msg, size_t len);
/* The VM stopped while its vCPUs were parking for a snapshot (taken: true) or a
 * restore: what the store held for it is given back. */
void vmm_snapshot_cancel(struct vmm_vm *m, bool taking);
/* A vCPU parking for a snapshot: its own state into the VM's stage. */
void vmm_snapshot_save_vcpu(struct vmm_vcpu *c);
/* The last vCPU to park, one bounded step each call: true once the job is done
 * (or failed, logged); the caller then unparks every vCPU. */
bool vmm_snapshot_step(struct vmm_vcpu *c);
bool vmm_restore_step(struct vmm_vcpu *c);
/* Each vCPU after a restore, from its own pre_entry before it enters: false if the
 * VM had to stop (its state was refused; logged). */
bool vmm_restore_apply_vcpu(struct vmm_vcpu *c);

#endif
