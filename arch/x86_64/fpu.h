/* Guest floating-point, SSE and AVX registers and XCR0: they live in the real CPU
 * while a guest runs and plinth's own code never touches them (-mgeneral-regs-only),
 * so they only need saving when a CPU switches from one vCPU to another. */
#ifndef PLINTH_ARCH_FPU_H
#define PLINTH_ARCH_FPU_H

#include <stdbool.h>
#include <stdint.h>

struct fpu_state {
    void    *area;        /* XSAVE (or FXSAVE) image, 64-byte aligned */
    uint64_t xcr0;
};

/* On each CPU before guests run: CR4.OSFXSR/OSXMMEXCPT/OSXSAVE and the host XCR0. */
void fpu_cpu_init(void);
/* A fresh state: the architectural init state, XCR0 = x87 only.  False when out of memory. */
bool fpu_state_init(struct fpu_state *f);
void fpu_state_free(struct fpu_state *f);
/* Back to the power-on state (registers in init state, XCR0 = x87|SSE); the caller
 * loads it if the state is live on this CPU. */
void fpu_state_reset(struct fpu_state *f);
/* Saves the registers into from (if any) and loads to's. */
void fpu_switch(struct fpu_state *from, struct fpu_state *to);
/* Validates a guest XCR0 (SDM Vol. 1 §13.3) against what this CPU supports and
 * plinth allows; on success loads it (the guest's state is live on this CPU). */
bool fpu_set_guest_xcr0(struct fpu_state *f, uint64_t xcr0);
/* For snapshots.  The size of a state's area on this CPU. */
uint32_t fpu_area_bytes(void);
/* Copies the registers of a state live on this CPU into its area, leaving them
 * (and the guest's XCR0) loaded. */
void fpu_state_sync(struct fpu_state *f);
/* Replaces the state with an image of fpu_area_bytes() and its XCR0, after checking
 * that XRSTOR (or FXRSTOR) and XSETBV will take them (SDM Vol. 1 §13.8.1, §10.5.1):
 * false, with why, and the state unchanged, if not.  live: the state is live on this
 * CPU, so load it now. */
bool fpu_state_import(struct fpu_state *f, const void *area, uint32_t len, uint64_t xcr0, bool live,
                      const char **why);
/* The XCR0 bits guests may enable (for the monitor's CPUID leaf 0xD view). */
uint64_t fpu_guest_xcr0_mask(void);

#endif
