/* EPT entry format (Intel SDM Vol. 3C §29.3.2, "EPT Translation Mechanism"). */
#ifndef PLINTH_ARCH_VMX_EPT_H
#define PLINTH_ARCH_VMX_EPT_H

#include "arch/x86_64/gpt.h"

extern const struct gpt_format ept_format;

/* The EPT pointer for the VMCS (SDM Vol. 3C §25.6.11): write-back paging-structure
 * accesses, a 4-level walk, accessed/dirty flags off. */
uint64_t ept_pointer(const struct gpt *g);

#endif
