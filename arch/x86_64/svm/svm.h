/* AMD-V backend internals shared by its files; outside arch/x86_64/svm only
 * svm_backend (through hvm_backend()) is seen. */
#ifndef PLINTH_ARCH_SVM_SVM_H
#define PLINTH_ARCH_SVM_SVM_H

#include "arch/x86_64/hvm_vcpu.h"
#include "arch/x86_64/svm/svm_caps.h"
#include "arch/x86_64/svm/vmcb.h"

/* VM_HSAVE_PA: where VMRUN saves the host state (APM Vol. 2 §15.30.4). */
#define MSR_VM_HSAVE_PA 0xc0010117

extern const struct hvm_backend svm_backend;

/* The capabilities of the boot CPU, decoded by the first svm_cpu_enable. */
const struct svm_caps *svm_caps(void);
int svm_cpu_enable(void);
/* The page the calling CPU's host FS/GS/TR/LDTR and SYSCALL MSRs are VMSAVEd to
 * around each VMRUN (physical address). */
uint64_t svm_host_area(void);

const char *svm_exit_name(uint64_t code);
/* For VMEXIT_INVALID: logs the VMCB fields the APM's consistency checks (Vol. 2
 * §15.5.1, "Canonicalization and Consistency Checks") look at, and every rule the
 * state breaks that plinth can check in software. */
void svm_diagnose_vmcb(const struct vmcb *vmcb);

#endif
