/* VT-x backend internals shared by its files; outside arch/x86_64/vmx only
 * vmx_backend (through hvm_backend()) is seen. */
#ifndef PLINTH_ARCH_VMX_VMX_H
#define PLINTH_ARCH_VMX_VMX_H

#include "arch/x86_64/hvm_vcpu.h"
#include "arch/x86_64/vmx/vmx_caps.h"

extern const struct hvm_backend vmx_backend;

/* The capabilities of the boot CPU, decoded once by vmx_cpu_enable. */
const struct vmx_caps *vmx_caps(void);

/* Human names for diagnostics (SDM Vol. 3C §31.4 and Appendix C). */
const char *vmx_instruction_error_name(uint32_t err);
const char *vmx_exit_reason_name(uint32_t basic_reason);

/* For a failed VM entry with "invalid guest state": logs the guest-state fields the
 * SDM's checks (Vol. 3C §27.3.1) look at, and every rule this state breaks that
 * plinth can check in software. */
void vmx_diagnose_guest_state(void);
/* Logs the controls, for entries failing with VM-instruction error 7 or 8. */
void vmx_dump_controls(void);

#endif
