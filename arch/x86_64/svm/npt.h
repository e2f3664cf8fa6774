/* NPT entry format: ordinary long-mode page-table entries (AMD APM Vol. 2 §15.25.5,
 * "Nested Table Walk"; entry layout §5.4). */
#ifndef PLINTH_ARCH_SVM_NPT_H
#define PLINTH_ARCH_SVM_NPT_H

#include "arch/x86_64/gpt.h"

extern const struct gpt_format npt_format;

/* The value for the VMCB's N_CR3 field. */
uint64_t npt_cr3(const struct gpt *g);

#endif
