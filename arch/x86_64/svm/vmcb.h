/* The Virtual Machine Control Block: one 4 KiB page per vCPU, a control area at 0
 * and the guest state save area at 0x400 (AMD APM Vol. 2 Appendix B, Tables B-1 and
 * B-2).  Offsets are asserted below: the CPU reads this page by those offsets. */
#ifndef PLINTH_ARCH_SVM_VMCB_H
#define PLINTH_ARCH_SVM_VMCB_H

#include "arch/x86_64/hvm_vcpu.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* CR intercepts (offset 0x00): reads bit n, writes bit 16 + n for CRn. */
#define VMCB_I_CR_READ(n)  (1u << (n))
#define VMCB_I_CR_WRITE(n) (1u << (16 + (n)))
/* EXITINFO1 of a MOV CR exit with decode assists: bit 63 valid, 3:0 the GPR (APM
 * Vol. 2, "Decode Assists"). */
#define SVM_CR_INFO_MOV      (1ull << 63)

/* Intercept vector 3 (control area offset 0x0c), APM Table B-1. */
#define VMCB_I_INTR      (1u << 0)
#define VMCB_I_NMI       (1u << 1)
#define VMCB_I_VINTR     (1u << 4)
#define VMCB_I_RDPMC     (1u << 15)
#define VMCB_I_CPUID     (1u << 18)
#define VMCB_I_IRET      (1u << 20)
#define VMCB_I_INVD      (1u << 22)
#define VMCB_I_HLT       (1u << 24)
#define VMCB_I_INVLPGA   (1u << 26)
#define VMCB_I_IOIO_PROT (1u << 27)
#define VMCB_I_MSR_PROT  (1u << 28)
#define VMCB_I_SHUTDOWN  (1u << 31)
/* Intercept vector 4 (offset 0x10). */
#define VMCB_I2_VMRUN    (1u << 0)
#define VMCB_I2_VMMCALL  (1u << 1)
#define VMCB_I2_VMLOAD   (1u << 2)
#define VMCB_I2_VMSAVE   (1u << 3)
#define VMCB_I2_STGI     (1u << 4)
#define VMCB_I2_CLGI     (1u << 5)
#define VMCB_I2_SKINIT   (1u << 6)
#define VMCB_I2_WBINVD   (1u << 9)
#define VMCB_I2_MONITOR  (1u << 10)
#define VMCB_I2_MWAIT    (1u << 11)
#define VMCB_I2_MWAIT_ARMED (1u << 12)
#define VMCB_I2_XSETBV   (1u << 13)

/* TLB_CONTROL (offset 0x5c), APM §15.16.1. */
#define VMCB_TLB_NOTHING     0
#define VMCB_TLB_FLUSH_ALL   1
#define VMCB_TLB_FLUSH_ASID  3

/* V_INTR fields (offset 0x60), APM §15.21.4. */
#define VMCB_V_TPR_MASK      0xffull
#define VMCB_V_IRQ           (1ull << 8)
#define VMCB_V_INTR_PRIO_SHIFT 16
#define VMCB_V_IGN_TPR       (1ull << 20)
#define VMCB_V_INTR_MASKING  (1ull << 24)

#define VMCB_INT_SHADOW      (1ull << 0)
#define VMCB_NP_ENABLE       (1ull << 0)

/* EVENTINJ and EXITINTINFO (APM §15.20, Figure 15-3). */
#define SVM_EVT_VECTOR_MASK  0xffu
#define SVM_EVT_TYPE_SHIFT   8
#define SVM_EVT_TYPE_MASK    (7u << 8)
#define SVM_EVT_TYPE_INTR    0
#define SVM_EVT_TYPE_NMI     2
#define SVM_EVT_TYPE_EXCEPT  3
#define SVM_EVT_TYPE_SOFTINT 4
#define SVM_EVT_EV           (1u << 11)
#define SVM_EVT_VALID        (1u << 31)

/* Exit codes (APM Appendix C). */
#define SVM_EXIT_CR0_READ     0x000
#define SVM_EXIT_CR0_WRITE    0x010
#define SVM_EXIT_CR4_WRITE    0x014
#define SVM_EXIT_CR8_READ     0x008
#define SVM_EXIT_CR8_WRITE    0x018
#define SVM_EXIT_EXCP_BASE    0x040
#define SVM_EXIT_INTR         0x060
#define SVM_EXIT_NMI          0x061
#define SVM_EXIT_SMI          0x062
#define SVM_EXIT_INIT         0x063
#define SVM_EXIT_VINTR        0x064
#define SVM_EXIT_RDTSC        0x06e
#define SVM_EXIT_RDPMC        0x06f
#define SVM_EXIT_CPUID        0x072
#define SVM_EXIT_IRET         0x074
#define SVM_EXIT_INVD         0x076
#define SVM_EXIT_PAUSE        0x077
#define SVM_EXIT_HLT          0x078
#define SVM_EXIT_INVLPGA      0x07a
#define SVM_EXIT_IOIO         0x07b
#define SVM_EXIT_MSR          0x07c
#define SVM_EXIT_TASK_SWITCH  0x07d
#define SVM_EXIT_SHUTDOWN     0x07f
#define SVM_EXIT_VMRUN        0x080
#define SVM_EXIT_VMMCALL      0x081
#define SVM_EXIT_VMLOAD       0x082
#define SVM_EXIT_VMSAVE       0x083
#define SVM_EXIT_STGI         0x084
#define SVM_EXIT_CLGI         0x085
#define SVM_EXIT_SKINIT       0x086
#define SVM_EXIT_RDTSCP       0x087
#define SVM_EXIT_WBINVD       0x089
#define SVM_EXIT_MONITOR      0x08a
#define SVM_EXIT_MWAIT        0x08b
#define SVM_EXIT_MWAIT_COND   0x08c
#define SVM_EXIT_XSETBV       0x08d
#define SVM_EXIT_NPF          0x400
#define SVM_EXIT_INVALID      0xffffffffffffffffull

/* IOIO EXITINFO1 (APM §15.10.2, Figure 15-2). */
#define SVM_IOIO_IN          (1u << 0)
#define SVM_IOIO_STR         (1u << 2)
#define SVM_IOIO_REP         (1u << 3)
#define SVM_IOIO_SZ8         (1u << 4)
#define SVM_IOIO_SZ16        (1u << 5)
#define SVM_IOIO_SZ32        (1u << 6)

/* NPF EXITINFO1: a #PF-style error code (APM §15.25.6). */
#define SVM_NPF_PRESENT      (1ull << 0)
#define SVM_NPF_WRITE        (1ull << 1)
#define SVM_NPF_FETCH        (1ull << 4)

struct vmcb_seg {
    uint16_t selector;
    uint16_t attrib;   /* type 3:0, S 4, DPL 6:5, P 7, AVL 8, L 9, D/B 10, G 11 */
    uint32_t limit;
    uint64_t base;
};

struct vmcb_control {
    uint32_t intercept_cr;          /* 0x000: reads 15:0, writes 31:16 */
    uint32_t intercept_dr;          /* 0x004 */
    uint32_t intercept_exceptions;  /* 0x008 */
    uint32_t intercept_misc1;       /* 0x00c */
    uint32_t intercept_misc2;       /* 0x010 */
    uint32_t intercept_misc3;       /* 0x014 */
    uint8_t  reserved1[0x3c - 0x18];
    uint16_t pause_filter_threshold;
    uint16_t pause_filter_count;
    uint64_t iopm_base_pa;          /* 0x040 */
    uint64_t msrpm_base_pa;         /* 0x048 */
    uint64_t tsc_offset;            /* 0x050 */
    uint32_t guest_asid;            /* 0x058 */
    uint8_t  tlb_control;           /* 0x05c */
    uint8_t  reserved2[3];
    uint64_t vintr;                 /* 0x060 */
    uint64_t interrupt_shadow;      /* 0x068 */
    uint64_t exitcode;              /* 0x070 */
    uint64_t exitinfo1;             /* 0x078 */
    uint64_t exitinfo2;             /* 0x080 */
    uint64_t exitintinfo;           /* 0x088 */
    uint64_t np_control;            /* 0x090 */
    uint64_t avic_apic_bar;         /* 0x098 */
    uint64_t ghcb_pa;               /* 0x0a0 */
    uint64_t eventinj;              /* 0x0a8 */
    uint64_t n_cr3;                 /* 0x0b0 */
    uint64_t lbr_virt;              /* 0x0b8 */
    uint32_t clean_bits;            /* 0x0c0 */
    uint32_t reserved3;
    uint64_t nrip;                  /* 0x0c8 */
    uint8_t  insn_fetched;          /* 0x0d0 */
    uint8_t  insn_bytes[15];
    uint8_t  reserved4[0x400 - 0xe0];
};

struct vmcb_save {
    struct vmcb_seg es, cs, ss, ds, fs, gs, gdtr, ldtr, idtr, tr; /* 0x400 */
    uint8_t  reserved1[0x4cb - 0x4a0];
    uint8_t  cpl;                   /* 0x4cb */
    uint32_t reserved2;
    uint64_t efer;                  /* 0x4d0 */
    uint8_t  reserved3[0x548 - 0x4d8];
    uint64_t cr4, cr3, cr0, dr7, dr6, rflags, rip; /* 0x548 */
    uint8_t  reserved4[0x5d8 - 0x580];
    uint64_t rsp;                   /* 0x5d8 */
    uint64_t s_cet, ssp, isst_addr;
    uint64_t rax;                   /* 0x5f8 */
    uint64_t star, lstar, cstar, sfmask, kernel_gs_base; /* 0x600 */
    uint64_t sysenter_cs, sysenter_esp, sysenter_eip;
    uint64_t cr2;                   /* 0x640 */
    uint8_t  reserved5[0x668 - 0x648];
    uint64_t g_pat;                 /* 0x668 */
    uint64_t dbgctl;
    uint8_t  reserved6[0x1000 - 0x678];
};

struct vmcb {
    struct vmcb_control control;
    struct vmcb_save save;
};

_Static_assert(offsetof(struct vmcb_control, pause_filter_threshold) == 0x3c, "VMCB layout");
_Static_assert(offsetof(struct vmcb_control, guest_asid) == 0x58, "VMCB layout");
_Static_assert(offsetof(struct vmcb_control, eventinj) == 0xa8, "VMCB layout");
_Static_assert(offsetof(struct vmcb_control, nrip) == 0xc8, "VMCB layout");
_Static_assert(offsetof(struct vmcb, save) == 0x400, "VMCB layout");
_Static_assert(offsetof(struct vmcb, save.cpl) == 0x4cb, "VMCB layout");
_Static_assert(offsetof(struct vmcb, save.efer) == 0x4d0, "VMCB layout");
_Static_assert(offsetof(struct vmcb, save.cr4) == 0x548, "VMCB layout");
_Static_assert(offsetof(struct vmcb, save.rip) == 0x578, "VMCB layout");
_Static_assert(offsetof(struct vmcb, save.rsp) == 0x5d8, "VMCB layout");
_Static_assert(offsetof(struct vmcb, save.rax) == 0x5f8, "VMCB layout");
_Static_assert(offsetof(struct vmcb, save.cr2) == 0x640, "VMCB layout");
_Static_assert(offsetof(struct vmcb, save.g_pat) == 0x668, "VMCB layout");
_Static_assert(sizeof(struct vmcb) == 0x1000, "VMCB layout");

/* vmcb.c: the pure encodings, unit-tested. */
/* Clears the read and write intercept bits of msr: two bits per MSR, read then write,
 * in three 2 KiB ranges (APM §15.11, Table 15-5); others stay intercepted. */
void svm_msrpm_allow(uint8_t *pm, uint32_t msr);
/* Only the read intercept: writes still exit. */
void svm_msrpm_allow_read(uint8_t *pm, uint32_t msr);
/* Segment attributes: the VMCB packs descriptor bits 8-15 and 20-23 into 12 bits
 * (APM §15.5.1); hvm_state uses the VMX layout, where P = 0 reads as unusable. */
uint32_t svm_ar_from_attrib(uint16_t attrib);
uint16_t svm_attrib_from_ar(uint32_t ar);
uint64_t svm_event_inj(const struct hvm_event *e);
/* The event EXITINTINFO reports, whose delivery the exit interrupted and which must be
 * delivered again at the next VMRUN; false when there is none.  INT3 and INTO come as
 * exceptions 3 and 4 and INTn as a software interrupt: all three as software events,
 * re-injected past their instruction (APM Vol. 2 §15.7.2, §15.20). */
bool svm_interrupted_event(uint64_t exitintinfo, uint64_t exitcode, struct hvm_event *e);
/* IOIO exit information (APM §15.10.2); insn_len from EXITINFO2, the next RIP. */
void svm_decode_ioio(uint64_t info1, uint64_t info2, uint64_t rip, struct hvm_exit *x);
/* NPF: EXITINFO1 a #PF-style error code, EXITINFO2 the guest-physical address (§15.25.6). */
void svm_decode_npf(uint64_t info1, uint64_t info2, struct hvm_exit *x);

#endif
