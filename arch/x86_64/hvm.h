/* The hardware-virtualization backend interface that vmx/ and svm/ implement; code
 * above arch/ sees only this.  This part: which backend the CPU has and what it can
 * do, in backend-neutral terms.  Creating and running vCPUs comes next. */
#ifndef PLINTH_ARCH_HVM_H
#define PLINTH_ARCH_HVM_H

#include <stdbool.h>
#include <stdint.h>

enum hvm_vendor { HVM_NONE, HVM_VMX, HVM_SVM };

struct hvm_caps {
    bool nested_paging;     /* EPT / NPT */
    bool large_pages_2m;    /* 2 MiB pages in the nested tables */
    bool large_pages_1g;    /* 1 GiB pages in the nested tables */
    bool tagged_tlb;        /* VPID / ASID: no TLB flush on every world switch */
    bool real_mode_guests;  /* guests may run with paging or protection off (UG / SVM) */
    bool preemption_timer;  /* VMX preemption timer */
    bool nrip;              /* the CPU reports the next instruction's address on exits */
    bool decode_assists;    /* the CPU decodes the exiting instruction's operands */
};

struct hvm_info {
    enum hvm_vendor vendor;
    struct hvm_caps caps;
    /* HVM_NONE: why, and how to fix it (one sentence for the "virt: none:" line). */
    const char *reason;
    /* The feature words of the "virt:" line, e.g. "vmx ept vpid ug". */
    char features[96];
};

/* Detects the backend on the calling CPU (the BSP, first); the result is computed once
 * and kept.  On VT-x with IA32_FEATURE_CONTROL still unlocked, enables VMX outside SMX
 * and locks it on this CPU; the other CPUs do the same as they come up. */
const struct hvm_info *hvm_detect(void);
/* Logs "virt: <features>" or "virt: none: <reason>". */
void virt_log(void);

#endif
