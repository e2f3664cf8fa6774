/* Which guest MSR accesses reach the hardware without an exit: the same short list
 * on VT-x and AMD-V.  Everything else exits to the monitor, which emulates a
 * known set and answers the rest with #GP (deny by default). */
#ifndef PLINTH_ARCH_HVM_MSR_H
#define PLINTH_ARCH_HVM_MSR_H

#include <stddef.h>
#include <stdint.h>

/* Each of these is either part of the state the hardware switches on every world
 * switch (FS/GS base, SYSENTER: VMCS guest fields / VMCB save area) or one the
 * backend swaps itself when a CPU changes vCPU (the SYSCALL family and
 * KERNEL_GS_BASE, which plinth's own code never uses), so the guest may read and
 * write them freely and they reach no other guest or plinth. */
#define MSR_IA32_SYSENTER_CS   0x174
#define MSR_IA32_SYSENTER_ESP  0x175
#define MSR_IA32_SYSENTER_EIP  0x176
#define MSR_STAR               0xc0000081
#define MSR_LSTAR              0xc0000082
#define MSR_CSTAR              0xc0000083
#define MSR_SFMASK             0xc0000084

extern const uint32_t hvm_msr_passthrough[];
extern const size_t hvm_msr_passthrough_count;

/* The SYSCALL-family MSRs a backend swaps when a CPU switches vCPU. */
#define HVM_SWAPPED_MSRS 5
extern const uint32_t hvm_swapped_msrs[HVM_SWAPPED_MSRS];

#endif
