/* The monitor's glue around each vCPU's local APIC model, and the interrupt messages
 * between a VM's vCPUs. */
#ifndef PLINTH_VMM_LAPIC_H
#define PLINTH_VMM_LAPIC_H

#include "vmm/vm.h"

#define MSR_TSC_DEADLINE 0x6e0

/* The APIC at power-up (ID = the vCPU's index), no interrupt, INIT or SIPI pending,
 * running (not waiting for a SIPI). */
void vmm_lapic_reset(struct vmm_vcpu *c);
/* After vmm_lapic_reset: the vCPU waits for a start-up IPI, as an AP does at boot. */
void vmm_lapic_wait_for_sipi(struct vmm_vcpu *c);
/* Claims the APIC page (per vCPU) in the VM's MMIO space. */
bool vmm_lapic_attach(struct vmm_vm *m);
/* x2APIC registers and IA32_TSC_DEADLINE: *handled false for other MSRs; the return
 * value says whether the access is valid (false: #GP). */
bool vmm_lapic_msr_read(struct vmm_vcpu *c, uint32_t msr, uint64_t *v, bool *handled);
bool vmm_lapic_msr_write(struct vmm_vcpu *c, uint32_t msr, uint64_t v, bool *handled);
/* IA32_APIC_BASE's EN and EXTD (vlapic_set_base_mode under the APIC's lock). */
bool vmm_lapic_set_base_mode(struct vmm_vcpu *c, bool enabled, bool x2apic);
/* Before each entry: parks the vCPU during a VM reset and applies a new boot
 * (vmm_vm_pre_entry), acts on INIT and SIPI, moves the timer on, injects a pending
 * NMI or the highest ready interrupt (or asks for a window), and tells the core when
 * the timer next fires.  False: the vCPU does not enter now (parked, or waiting for
 * a SIPI; core_vcpu_block was called), so nothing else should be injected. */
bool vmm_lapic_pre_entry(struct vmm_vcpu *c);
/* At HLT: whether an interrupt, NMI, INIT or SIPI is ready now (then the vCPU does
 * not sleep). */
bool vmm_lapic_can_wake(struct vmm_vcpu *c);
/* The same with the guest's interrupts disabled: only an NMI, INIT or SIPI (or a VM
 * reset) ends such a halt. */
bool vmm_lapic_can_wake_masked(struct vmm_vcpu *c);

/* An interrupt message (from the IOAPIC or an IPI) to the vCPUs of m it names:
 * physical (APIC ID == dest, 0xff or 0xffffffff for all) or logical (each APIC's
 * LDR, flat or cluster per its DFR; x2APIC cluster and bit); lowest priority goes to
 * one of them.  Modes fixed and lowest priority (vector, level: its trigger mode),
 * NMI, INIT and SIPI (vector: the start page); ExtINT is the PIC's own path.  Each
 * receiver is kicked.  Safe from any vCPU's context on any CPU; takes each target's
 * lapic_lock in turn (so: after the platform lock, never under another vlapic's). */
void vmm_lapic_deliver(struct vmm_vm *m, uint8_t vector, enum vlapic_delivery mode, bool logical,
                       uint32_t dest, bool level);

#endif
