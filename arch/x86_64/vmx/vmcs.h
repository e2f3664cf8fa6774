/* VMCS field encodings (Intel SDM Vol. 3C Appendix B) and the VMX instructions.
 * An encoding is (width << 13) | (type << 10) | (index << 1) | high (§25.11.2):
 * width 0 16-bit, 1 64-bit, 2 32-bit, 3 natural; type 0 control, 1 read-only data,
 * 2 guest state, 3 host state. */
#ifndef PLINTH_ARCH_VMX_VMCS_H
#define PLINTH_ARCH_VMX_VMCS_H

#include <stdbool.h>
#include <stdint.h>

/* 16-bit fields */
#define VMCS_VPID                       0x0000
#define VMCS_GUEST_ES_SEL               0x0800
#define VMCS_GUEST_CS_SEL               0x0802
#define VMCS_GUEST_SS_SEL               0x0804
#define VMCS_GUEST_DS_SEL               0x0806
#define VMCS_GUEST_FS_SEL               0x0808
#define VMCS_GUEST_GS_SEL               0x080a
#define VMCS_GUEST_LDTR_SEL             0x080c
#define VMCS_GUEST_TR_SEL               0x080e
#define VMCS_HOST_ES_SEL                0x0c00
#define VMCS_HOST_CS_SEL                0x0c02
#define VMCS_HOST_SS_SEL                0x0c04
#define VMCS_HOST_DS_SEL                0x0c06
#define VMCS_HOST_FS_SEL                0x0c08
#define VMCS_HOST_GS_SEL                0x0c0a
#define VMCS_HOST_TR_SEL                0x0c0c

/* 64-bit fields */
#define VMCS_IO_BITMAP_A                0x2000
#define VMCS_IO_BITMAP_B                0x2002
#define VMCS_MSR_BITMAP                 0x2004
#define VMCS_EXIT_MSR_STORE_ADDR        0x2006
#define VMCS_EXIT_MSR_LOAD_ADDR         0x2008
#define VMCS_ENTRY_MSR_LOAD_ADDR        0x200a
#define VMCS_TSC_OFFSET                 0x2010
#define VMCS_EPT_POINTER                0x201a
#define VMCS_GUEST_PHYSICAL_ADDRESS     0x2400
#define VMCS_LINK_POINTER               0x2800
#define VMCS_GUEST_DEBUGCTL             0x2802
#define VMCS_GUEST_PAT                  0x2804
#define VMCS_GUEST_EFER                 0x2806
#define VMCS_GUEST_PDPTE0               0x280a
#define VMCS_GUEST_PDPTE1               0x280c
#define VMCS_GUEST_PDPTE2               0x280e
#define VMCS_GUEST_PDPTE3               0x2810
#define VMCS_HOST_PAT                   0x2c00
#define VMCS_HOST_EFER                  0x2c02

/* 32-bit fields */
#define VMCS_PIN_CONTROLS               0x4000
#define VMCS_PROC_CONTROLS              0x4002
#define VMCS_EXCEPTION_BITMAP           0x4004
#define VMCS_PF_ERROR_MASK              0x4006
#define VMCS_PF_ERROR_MATCH             0x4008
#define VMCS_CR3_TARGET_COUNT           0x400a
#define VMCS_EXIT_CONTROLS              0x400c
#define VMCS_EXIT_MSR_STORE_COUNT       0x400e
#define VMCS_EXIT_MSR_LOAD_COUNT        0x4010
#define VMCS_ENTRY_CONTROLS             0x4012
#define VMCS_ENTRY_MSR_LOAD_COUNT       0x4014
#define VMCS_ENTRY_INTR_INFO            0x4016
#define VMCS_ENTRY_EXCEPTION_ERROR      0x4018
#define VMCS_ENTRY_INSTRUCTION_LEN      0x401a
#define VMCS_TPR_THRESHOLD              0x401c
#define VMCS_PROC_CONTROLS2             0x401e
#define VMCS_INSTRUCTION_ERROR          0x4400
#define VMCS_EXIT_REASON                0x4402
#define VMCS_EXIT_INTR_INFO             0x4404
#define VMCS_EXIT_INTR_ERROR            0x4406
#define VMCS_IDT_VECTORING_INFO         0x4408
#define VMCS_IDT_VECTORING_ERROR        0x440a
#define VMCS_EXIT_INSTRUCTION_LEN       0x440c
#define VMCS_EXIT_INSTRUCTION_INFO      0x440e
#define VMCS_GUEST_ES_LIMIT             0x4800
#define VMCS_GUEST_CS_LIMIT             0x4802
#define VMCS_GUEST_SS_LIMIT             0x4804
#define VMCS_GUEST_DS_LIMIT             0x4806
#define VMCS_GUEST_FS_LIMIT             0x4808
#define VMCS_GUEST_GS_LIMIT             0x480a
#define VMCS_GUEST_LDTR_LIMIT           0x480c
#define VMCS_GUEST_TR_LIMIT             0x480e
#define VMCS_GUEST_GDTR_LIMIT           0x4810
#define VMCS_GUEST_IDTR_LIMIT           0x4812
#define VMCS_GUEST_ES_AR                0x4814
#define VMCS_GUEST_CS_AR                0x4816
#define VMCS_GUEST_SS_AR                0x4818
#define VMCS_GUEST_DS_AR                0x481a
#define VMCS_GUEST_FS_AR                0x481c
#define VMCS_GUEST_GS_AR                0x481e
#define VMCS_GUEST_LDTR_AR              0x4820
#define VMCS_GUEST_TR_AR                0x4822
#define VMCS_GUEST_INTERRUPTIBILITY     0x4824
#define VMCS_GUEST_ACTIVITY_STATE       0x4826
#define VMCS_GUEST_SYSENTER_CS          0x482a
#define VMCS_PREEMPTION_TIMER_VALUE     0x482e
#define VMCS_HOST_SYSENTER_CS           0x4c00

/* Natural-width fields */
#define VMCS_CR0_MASK                   0x6000
#define VMCS_CR4_MASK                   0x6002
#define VMCS_CR0_READ_SHADOW            0x6004
#define VMCS_CR4_READ_SHADOW            0x6006
#define VMCS_EXIT_QUALIFICATION         0x6400
#define VMCS_GUEST_LINEAR_ADDRESS       0x640a
#define VMCS_GUEST_CR0                  0x6800
#define VMCS_GUEST_CR3                  0x6802
#define VMCS_GUEST_CR4                  0x6804
#define VMCS_GUEST_ES_BASE              0x6806
#define VMCS_GUEST_CS_BASE              0x6808
#define VMCS_GUEST_SS_BASE              0x680a
#define VMCS_GUEST_DS_BASE              0x680c
#define VMCS_GUEST_FS_BASE              0x680e
#define VMCS_GUEST_GS_BASE              0x6810
#define VMCS_GUEST_LDTR_BASE            0x6812
#define VMCS_GUEST_TR_BASE              0x6814
#define VMCS_GUEST_GDTR_BASE            0x6816
#define VMCS_GUEST_IDTR_BASE            0x6818
#define VMCS_GUEST_DR7                  0x681a
#define VMCS_GUEST_RSP                  0x681c
#define VMCS_GUEST_RIP                  0x681e
#define VMCS_GUEST_RFLAGS               0x6820
#define VMCS_GUEST_PENDING_DBG          0x6822
#define VMCS_GUEST_SYSENTER_ESP         0x6824
#define VMCS_GUEST_SYSENTER_EIP         0x6826
#define VMCS_HOST_CR0                   0x6c00
#define VMCS_HOST_CR3                   0x6c02
#define VMCS_HOST_CR4                   0x6c04
#define VMCS_HOST_FS_BASE               0x6c06
#define VMCS_HOST_GS_BASE               0x6c08
#define VMCS_HOST_TR_BASE               0x6c0a
#define VMCS_HOST_GDTR_BASE             0x6c0c
#define VMCS_HOST_IDTR_BASE             0x6c0e
#define VMCS_HOST_SYSENTER_ESP          0x6c10
#define VMCS_HOST_SYSENTER_EIP          0x6c12
#define VMCS_HOST_RSP                   0x6c14
#define VMCS_HOST_RIP                   0x6c16

/* Basic exit reasons (SDM Vol. 3C Appendix C). */
#define VMX_EXIT_EXCEPTION_NMI          0
#define VMX_EXIT_EXTERNAL_INTERRUPT     1
#define VMX_EXIT_TRIPLE_FAULT           2
#define VMX_EXIT_INIT                   3
#define VMX_EXIT_SIPI                   4
#define VMX_EXIT_INTERRUPT_WINDOW       7
#define VMX_EXIT_NMI_WINDOW             8
#define VMX_EXIT_TASK_SWITCH            9
#define VMX_EXIT_CPUID                  10
#define VMX_EXIT_GETSEC                 11
#define VMX_EXIT_HLT                    12
#define VMX_EXIT_INVD                   13
#define VMX_EXIT_INVLPG                 14
#define VMX_EXIT_RDPMC                  15
#define VMX_EXIT_RDTSC                  16
#define VMX_EXIT_RSM                    17
#define VMX_EXIT_VMCALL                 18
#define VMX_EXIT_VMCLEAR                19
#define VMX_EXIT_VMLAUNCH               20
#define VMX_EXIT_VMPTRLD                21
#define VMX_EXIT_VMPTRST                22
#define VMX_EXIT_VMREAD                 23
#define VMX_EXIT_VMRESUME               24
#define VMX_EXIT_VMWRITE                25
#define VMX_EXIT_VMXOFF                 26
#define VMX_EXIT_VMXON                  27
#define VMX_EXIT_CR_ACCESS              28
#define VMX_EXIT_DR_ACCESS              29
#define VMX_EXIT_IO                     30
#define VMX_EXIT_RDMSR                  31
#define VMX_EXIT_WRMSR                  32
#define VMX_EXIT_INVALID_GUEST_STATE    33
#define VMX_EXIT_MSR_LOADING            34
#define VMX_EXIT_MWAIT                  36
#define VMX_EXIT_MTF                    37
#define VMX_EXIT_MONITOR                39
#define VMX_EXIT_PAUSE                  40
#define VMX_EXIT_MACHINE_CHECK          41
#define VMX_EXIT_TPR_BELOW_THRESHOLD    43
#define VMX_EXIT_APIC_ACCESS            44
#define VMX_EXIT_GDTR_IDTR              46
#define VMX_EXIT_LDTR_TR                47
#define VMX_EXIT_EPT_VIOLATION          48
#define VMX_EXIT_EPT_MISCONFIG          49
#define VMX_EXIT_INVEPT                 50
#define VMX_EXIT_RDTSCP                 51
#define VMX_EXIT_PREEMPTION_TIMER       52
#define VMX_EXIT_INVVPID                53
#define VMX_EXIT_WBINVD                 54
#define VMX_EXIT_XSETBV                 55
#define VMX_EXIT_RDRAND                 57
#define VMX_EXIT_INVPCID                58
#define VMX_EXIT_VMFUNC                 59
#define VMX_EXIT_RDSEED                 61
#define VMX_EXIT_XSAVES                 63
#define VMX_EXIT_XRSTORS                64
#define VMX_EXIT_REASON_MAX             65
#define VMX_EXIT_REASON_ENTRY_FAILURE   (1u << 31)

/* Event information format: VM-entry interruption info, VM-exit interruption info
 * and IDT-vectoring info share it (SDM Vol. 3C §25.8.3, §25.9.2). */
#define VMX_INTR_INFO_VECTOR_MASK       0xffu
#define VMX_INTR_INFO_TYPE_SHIFT        8
#define VMX_INTR_INFO_TYPE_MASK         (7u << 8)
#define VMX_INTR_INFO_ERROR_CODE        (1u << 11)
#define VMX_INTR_INFO_NMI_UNBLOCK_IRET  (1u << 12)
#define VMX_INTR_INFO_VALID             (1u << 31)
#define VMX_INTR_TYPE_EXTERNAL          0
#define VMX_INTR_TYPE_NMI               2
#define VMX_INTR_TYPE_HW_EXCEPTION      3
#define VMX_INTR_TYPE_SW_INTERRUPT      4
#define VMX_INTR_TYPE_PRIV_SW_EXCEPTION 5
#define VMX_INTR_TYPE_SW_EXCEPTION      6

/* Guest interruptibility state (§25.4.2, Table 25-3). */
#define VMX_INTERRUPTIBILITY_STI        (1u << 0)
#define VMX_INTERRUPTIBILITY_MOV_SS     (1u << 1)
#define VMX_INTERRUPTIBILITY_NMI        (1u << 3)

/* Segment access rights: bit 16 marks the register unusable (§25.4.1). */
#define VMX_AR_UNUSABLE                 (1u << 16)

/* VMX instructions.  Each returns true on success; VMfailInvalid sets CF,
 * VMfailValid sets ZF (SDM Vol. 3C §31.2). */
static inline bool vmx_on(uint64_t phys)
{
    bool fail;
    __asm__ volatile("vmxon %1; setna %0" : "=q"(fail) : "m"(phys) : "cc", "memory");
    return !fail;
}

static inline void vmx_off(void)
{
    __asm__ volatile("vmxoff" ::: "cc", "memory");
}

static inline bool vmcs_clear(uint64_t phys)
{
    bool fail;
    __asm__ volatile("vmclear %1; setna %0" : "=q"(fail) : "m"(phys) : "cc", "memory");
    return !fail;
}

static inline bool vmcs_load(uint64_t phys)
{
    bool fail;
    __asm__ volatile("vmptrld %1; setna %0" : "=q"(fail) : "m"(phys) : "cc", "memory");
    return !fail;
}

static inline uint64_t vmcs_read(uint32_t field)
{
    uint64_t v;
    __asm__ volatile("vmread %1, %0" : "=rm"(v) : "r"((uint64_t)field) : "cc");
    return v;
}

/* A VMWRITE to a field this CPU lacks fails; callers that write optional fields
 * check the capability first, so failure here is a plinth bug worth stopping on. */
static inline bool vmcs_write(uint32_t field, uint64_t v)
{
    bool fail;
    __asm__ volatile("vmwrite %2, %1; setna %0" : "=q"(fail) : "r"((uint64_t)field), "rm"(v) : "cc");
    return !fail;
}

struct vmx_inv_desc {
    uint64_t a, b;
};

/* INVEPT type 1 (single context) / 2 (all contexts), SDM Vol. 3C §31.3 "INVEPT". */
static inline void vmx_invept(uint64_t type, uint64_t eptp)
{
    struct vmx_inv_desc d = { eptp, 0 };
    __asm__ volatile("invept %0, %1" :: "m"(d), "r"(type) : "cc", "memory");
}

/* INVVPID type 1 (single context) / 2 (all contexts). */
static inline void vmx_invvpid(uint64_t type, uint16_t vpid)
{
    struct vmx_inv_desc d = { vpid, 0 };
    __asm__ volatile("invvpid %0, %1" :: "m"(d), "r"(type) : "cc", "memory");
}

#endif
