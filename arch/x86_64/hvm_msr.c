#include "arch/x86_64/hvm_msr.h"
#include "arch/x86_64/cpu/cpu.h"

const uint32_t hvm_msr_passthrough[] = {
    MSR_FS_BASE, MSR_GS_BASE, MSR_KERNEL_GS_BASE,
    MSR_IA32_SYSENTER_CS, MSR_IA32_SYSENTER_ESP, MSR_IA32_SYSENTER_EIP,
    MSR_STAR, MSR_LSTAR, MSR_CSTAR, MSR_SFMASK,
};
const size_t hvm_msr_passthrough_count = sizeof hvm_msr_passthrough / sizeof hvm_msr_passthrough[0];

const uint32_t hvm_swapped_msrs[HVM_SWAPPED_MSRS] = {
    MSR_STAR, MSR_LSTAR, MSR_CSTAR, MSR_SFMASK, MSR_KERNEL_GS_BASE,
};
