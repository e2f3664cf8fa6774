/* The monitor's glue around each vCPU's local APIC model. */
#ifndef PLINTH_VMM_LAPIC_H
#define PLINTH_VMM_LAPIC_H

#include "vmm/vm.h"

#define MSR_TSC_DEADLINE 0x6e0

void vmm_lapic_reset(struct vmm_vcpu *c);
/* Claims the APIC page (per vCPU) in the VM's MMIO space. */
bool vmm_lapic_attach(struct vmm_vm *m);
/* x2APIC registers and IA32_TSC_DEADLINE: *handled false for other MSRs; the return
 * value says whether the access is valid (false: #GP). */
bool vmm_lapic_msr_read(struct vmm_vcpu *c, uint32_t msr, uint64_t *v, bool *handled);
bool vmm_lapic_msr_write(struct vmm_vcpu *c, uint32_t msr, uint64_t v, bool *handled);
/* Before each entry: moves the timer on, injects the highest ready interrupt (or
 * asks for an interrupt window), and tells the core when the timer next fires. */
void vmm_lapic_pre_entry(struct vmm_vcpu *c);
/* At HLT: whether an interrupt is ready now (then the vCPU does not sleep). */
bool vmm_lapic_can_wake(struct vmm_vcpu *c);

#endif
