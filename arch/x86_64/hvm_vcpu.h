/* The backend interface, vCPU part: what vmm/ (through the core) does with a virtual
 * CPU, the same for VT-x and AMD-V.  The backend is chosen once at boot (hvm_detect)
 * and reached through one table of functions; nothing above arch/ names VMX or SVM. */
#ifndef PLINTH_ARCH_HVM_VCPU_H
#define PLINTH_ARCH_HVM_VCPU_H

#include "arch/x86_64/gpt.h"

#include <stdbool.h>
#include <stdint.h>

/* General registers in instruction-encoding order (SDM Vol. 2A Table 2-2), so that a
 * decoded register number indexes gpr[] directly. */
enum hvm_gpr {
    HVM_RAX, HVM_RCX, HVM_RDX, HVM_RBX, HVM_RSP, HVM_RBP, HVM_RSI, HVM_RDI,
    HVM_R8, HVM_R9, HVM_R10, HVM_R11, HVM_R12, HVM_R13, HVM_R14, HVM_R15, HVM_GPR_COUNT
};

/* Segment registers in encoding order, then the system segments. */
enum hvm_sreg { HVM_ES, HVM_CS, HVM_SS, HVM_DS, HVM_FS, HVM_GS, HVM_LDTR, HVM_TR, HVM_SREG_COUNT };

/* Access rights in the VMX layout (SDM Vol. 3C §25.4.1): type 3:0, S 4, DPL 6:5,
 * P 7, AVL 12, L 13, D/B 14, G 15; HVM_AR_UNUSABLE marks a null/unusable register. */
#define HVM_AR_UNUSABLE (1u << 16)

struct hvm_segment {
    uint64_t base;
    uint32_t limit;
    uint32_t ar;
    uint16_t selector;
};

struct hvm_dtable {
    uint64_t base;
    uint16_t limit;
};

/* The architectural state the monitor sets at reset/load and reads for diagnostics. */
struct hvm_state {
    uint64_t gpr[HVM_GPR_COUNT];
    uint64_t rip, rflags;
    uint64_t cr0, cr2, cr3, cr4, efer, pat, dr7;
    struct hvm_segment seg[HVM_SREG_COUNT];
    struct hvm_dtable gdtr, idtr;
    uint64_t sysenter_cs, sysenter_esp, sysenter_eip;
};

enum hvm_exit_reason {
    HVM_EXIT_NONE,           /* the run returned without a guest exit to handle */
    HVM_EXIT_INTERRUPT,      /* a host interrupt arrived: the core handles it, then resumes */
    HVM_EXIT_PREEMPT,        /* the time slice ended */
    HVM_EXIT_CPUID,
    HVM_EXIT_RDMSR,
    HVM_EXIT_WRMSR,
    HVM_EXIT_IO,
    HVM_EXIT_NPF,            /* guest-physical access outside the VM's mapped memory */
    HVM_EXIT_CR,
    HVM_EXIT_HLT,
    HVM_EXIT_XSETBV,
    HVM_EXIT_INVD,
    HVM_EXIT_WBINVD,
    HVM_EXIT_TRIPLE_FAULT,   /* shutdown: the guest cannot continue */
    HVM_EXIT_VIRT_INSN,      /* VMX or SVM instruction: the guest gets #UD */
    HVM_EXIT_HYPERCALL,      /* VMCALL or VMMCALL: no hypercall interface, #UD */
    HVM_EXIT_RDPMC,
    HVM_EXIT_TASK_SWITCH,    /* a hardware task switch (VT-x exits on every one) */
    HVM_EXIT_INTR_WINDOW,
    HVM_EXIT_NMI_WINDOW,
    HVM_EXIT_EXCEPTION,      /* an intercepted exception (see the exception bitmap) */
    HVM_EXIT_INIT,
    HVM_EXIT_SIPI,
    HVM_EXIT_RDTSC,          /* RDTSC/RDTSCP when intercepted (insn_len tells which) */
    HVM_EXIT_PAUSE,
    HVM_EXIT_MWAIT,          /* MONITOR/MWAIT: hidden from guests, answered with #UD */
    HVM_EXIT_ENTRY_FAILED,   /* the CPU refused the guest state: diagnosed, VM stopped */
    HVM_EXIT_UNHANDLED,      /* a hardware exit plinth does not expect: VM stopped */
    HVM_EXIT_REASON_COUNT
};

enum hvm_cr_access { HVM_CR_MOV_TO, HVM_CR_MOV_FROM, HVM_CR_CLTS, HVM_CR_LMSW };
/* cr.gpr when the CPU does not say which register a MOV CR used (AMD-V without
 * decode assists): the monitor decodes the instruction. */
#define HVM_CR_GPR_DECODE 0xff

struct hvm_exit {
    enum hvm_exit_reason reason;
    uint32_t raw_reason;     /* the backend's own code, for diagnostics */
    uint8_t  insn_len;       /* 0: not reported (SVM without nRIP-save): decode it */
    union {
        struct { uint16_t port; uint8_t size; bool in, string, rep; } io;
        struct { uint32_t msr; } msr;
        struct { uint64_t gpa, gla; bool gla_valid, read, write, fetch; } npf;
        struct { uint8_t cr, gpr; enum hvm_cr_access type; uint16_t lmsw_value; } cr;
        struct { uint8_t vector; bool has_error; uint32_t error_code; uint64_t cr2; } exception;
        struct { uint8_t vector; } sipi;
        struct { uint32_t leaf, subleaf; } cpuid;   /* EAX and ECX at the exit */
        /* The new task's TSS selector and how the switch came (SDM Vol. 3C Table
         * 28-2): CALL, IRET, JMP, or an IDT task gate (then the vectoring event
         * names what was being delivered). */
        struct { uint16_t selector; uint8_t source; } task;
    };
    /* The exit interrupted the delivery of a software event (INTn, INT3, INTO) and
     * the CPU did not report its instruction's length (AMD-V): the core must have it
     * (vmm_vcpu_ops.event_insn_len) to re-inject the event rather than re-run it. */
    bool needs_event_len;
    /* The exit came in the middle of an event's delivery (the backend re-injects it):
     * its access was the delivery's own (IDT, GDT, TSS, stack), not the instruction's
     * at RIP, which did not run.  The vector being delivered. */
    bool delivering;
    uint8_t delivering_vector;
};

enum hvm_task_source { HVM_TASK_CALL, HVM_TASK_IRET, HVM_TASK_JMP, HVM_TASK_IDT };

/* Events a backend delivers.  The monitor injects the first four; the last two are
 * only ever re-injected, after an exit interrupted their delivery: INT3 and INTO
 * (software exceptions) and INT1/ICEBP (the privileged one). */
enum hvm_event_type { HVM_EVENT_EXTINT, HVM_EVENT_NMI, HVM_EVENT_EXCEPTION, HVM_EVENT_SOFTINT,
                      HVM_EVENT_SOFT_EXCEPTION, HVM_EVENT_PRIV_SOFT_EXCEPTION };

struct hvm_event {
    enum hvm_event_type type;
    uint8_t  vector;
    bool     has_error;
    uint32_t error_code;
};

/* The rest of a vCPU's state, beside struct hvm_state, for a snapshot: what the
 * backend keeps in its VMCS or VMCB and beside it.  Taken and put back at an exit
 * boundary, from the vCPU's own pre_entry handler. */
#define HVM_FPU_AREA_MAX 4096          /* XSAVE image of x87, SSE and AVX, with room */
#define HVM_BACKEND_EXTRA 64
/* Interruptibility (SDM Vol. 3C §25.4.2; APM Vol. 2 §15.21.5): the STI and MOV SS
 * shadows, and NMI blocking (an NMI's handler has not executed IRET yet). */
#define HVM_INTR_STI   (1u << 0)
#define HVM_INTR_MOVSS (1u << 1)
#define HVM_INTR_NMI   (1u << 3)
struct hvm_extra {
    uint64_t dr[4], dr6;
    uint64_t xcr0;
    uint64_t tsc_aux;
    uint64_t syscall_msr[5];           /* STAR, LSTAR, CSTAR, SFMASK, KERNEL_GS_BASE */
    uint32_t interruptibility;
    uint64_t pending_dbg;              /* VT-x's pending debug exceptions; 0 on AMD-V */
    uint64_t pdpte[4];                 /* VT-x with EPT in PAE paging; 0 on AMD-V */
    /* Events the next entry owes the guest (hvm_common.h). */
    bool     have_event;
    struct hvm_event event;
    bool     reinject;
    struct hvm_event reinject_event;
    uint8_t  reinject_len;
    uint32_t debug_trap;
    /* The backend's own bits (AMD-V: NMI blocking kept in software, an IRET being
     * single-stepped, a software event re-injected past its instruction). */
    uint8_t  backend[HVM_BACKEND_EXTRA];
    uint32_t fpu_len;                  /* bytes of fpu[] in use: this CPU's XSAVE area */
    uint8_t  fpu[HVM_FPU_AREA_MAX];
};

#define HVM_WINDOW_INTR (1u << 0)
#define HVM_WINDOW_NMI  (1u << 1)

struct hvm_vcpu;   /* the backend's: VMCS or VMCB and everything around it */

struct hvm_backend {
    const char *name;                                   /* "vmx" or "svm" */
    const struct gpt_format *nested_format;
    /* Per physical CPU, once: VMXON / EFER.SVME and the host save area. */
    int  (*cpu_enable)(void);
    /* A vCPU on the given nested tables; NULL with a logged reason on failure. */
    struct hvm_vcpu *(*vcpu_create)(const struct gpt *nested);
    void (*vcpu_destroy)(struct hvm_vcpu *v);
    /* Enters the guest (interrupts off) until an exit, or until preempt_tsc TSC ticks
     * have passed (HVM_EXIT_PREEMPT; 0 = no limit, or no preemption timer here). */
    void (*vcpu_run)(struct hvm_vcpu *v, uint64_t preempt_tsc, struct hvm_exit *exit);
    void (*get_state)(struct hvm_vcpu *v, struct hvm_state *s);
    void (*set_state)(struct hvm_vcpu *v, const struct hvm_state *s);
    uint64_t (*get_gpr)(struct hvm_vcpu *v, enum hvm_gpr r);
    void (*set_gpr)(struct hvm_vcpu *v, enum hvm_gpr r, uint64_t value);
    uint64_t (*get_rip)(struct hvm_vcpu *v);
    /* CR4 as the guest sees it (VT-x: the read shadow for host-owned bits). */
    uint64_t (*get_cr4)(struct hvm_vcpu *v);
    /* Moves past the exiting instruction: rip += len, and clears the STI / MOV SS
     * interrupt shadow as completing an instruction would; with RFLAGS.TF set the
     * single-step #DB (DR6.BS) follows, as after any instruction (SDM Vol. 3A
     * §18.3.1.4). */
    void (*skip_insn)(struct hvm_vcpu *v, uint8_t len);
    /* A #DB trap with these DR6 bits (B0-B3: data breakpoints an emulated access hit,
     * BS) is owed after the instruction just completed: delivered before any other
     * event at the next entry. */
    void (*debug_trap)(struct hvm_vcpu *v, uint32_t dr6_bits);
    /* DR0-DR3 as the guest has them now. */
    void (*get_dr0_3)(struct hvm_vcpu *v, uint64_t dr[4]);
    /* The length of the software event's instruction whose re-injection an exit left
     * pending (hvm_exit.needs_event_len); 0: not known, the instruction runs again. */
    void (*set_event_len)(struct hvm_vcpu *v, uint8_t len);
    /* The four PAE page-directory-pointer entries for the guest's CR3, which the
     * monitor reads from guest memory when it has emulated a CR0/CR4 write that enters
     * or stays in PAE paging: VT-x with EPT takes them from the VMCS at entry (SDM Vol.
     * 3C §27.3.2.4, §29.4.1), as the CPU would have loaded them itself. */
    void (*set_pdptes)(struct hvm_vcpu *v, const uint64_t pdpte[4]);
    /* The guest's WRMSR to IA32_TSC_AUX, its reserved bits 63:32 already refused by
     * the monitor (reads reach the switched MSR without an exit). */
    void (*set_tsc_aux)(struct hvm_vcpu *v, uint32_t value);
    /* Completes a CPUID: EAX..EDX = r[0..3] zero-extended, then skip_insn(len). */
    void (*finish_cpuid)(struct hvm_vcpu *v, const uint32_t r[4], uint8_t len);
    /* Queues an event for the next entry.  False if one is queued already. */
    bool (*inject)(struct hvm_vcpu *v, const struct hvm_event *e);
    /* Whether an external interrupt (or NMI) could be delivered right now. */
    bool (*can_inject)(struct hvm_vcpu *v, enum hvm_event_type t);
    void (*request_window)(struct hvm_vcpu *v, unsigned windows);
    /* After the VM's nested tables changed: drop stale translations. */
    void (*nested_flush)(struct hvm_vcpu *v);
    /* Puts the state the VMCS/VMCB does not hold back to power-on values: FPU, SSE
     * and AVX registers and XCR0, DR0-DR3 and DR6, the SYSCALL-family MSRs.  For a
     * (re)boot: nothing of an earlier run may survive into the next. */
    void (*reset_private)(struct hvm_vcpu *v);
    /* The guest's XSETBV: false if the value is invalid (the guest gets #GP).  The
     * backend keeps XCR0 and the extended register state per vCPU. */
    bool (*set_xcr0)(struct hvm_vcpu *v, uint64_t xcr0);
    /* The state outside hvm_state (struct hvm_extra), taken from or put back into
     * the vCPU from its own context.  load_extra checks first and changes nothing
     * when it refuses (false, *why says what was wrong). */
    void (*save_extra)(struct hvm_vcpu *v, struct hvm_extra *x);
    bool (*load_extra)(struct hvm_vcpu *v, const struct hvm_extra *x, const char **why);
    /* Guest TSC = host TSC + offset. */
    void (*set_tsc_offset)(struct hvm_vcpu *v, int64_t offset);
    /* Whether guests may use RDTSCP/RDPID (IA32_TSC_AUX switched per vCPU) and
     * XSAVES/XRSTORS (with IA32_XSS held at 0: no supervisor state). */
    bool (*guest_has_rdtscp)(void);
    bool (*guest_has_xsaves)(void);
    /* Logs everything useful about a failed entry or an unexpected exit. */
    void (*dump)(struct hvm_vcpu *v);
};

/* The backend the boot CPU detected; NULL when the machine has neither VT-x nor
 * AMD-V (the reason is in hvm_detect()->reason). */
const struct hvm_backend *hvm_backend(void);

const char *hvm_exit_reason_name(enum hvm_exit_reason r);
/* "io 12, hlt 3" (or "none") into buf for the non-zero counts: the length. */
size_t hvm_exit_counts_text(const uint64_t counts[HVM_EXIT_REASON_COUNT], char *buf, size_t len);

#endif
