/* The monitor's exit dispatch: one table indexed by the generic exit reason. */
#ifndef PLINTH_VMM_EXIT_H
#define PLINTH_VMM_EXIT_H

#include "vmm/vm.h"
#include "vmm/emulate/decode.h"

void vmm_pre_entry(void *ctx, core_vcpu_t v);
enum vmm_action vmm_handle_exit(void *ctx, core_vcpu_t v, const struct hvm_exit *x);

/* The exiting instruction's length: from the hardware, or decoded. */
uint8_t vmm_insn_len(struct vmm_vcpu *c, const struct hvm_exit *x);
struct x86_insn;
/* Fetches the instruction at the guest's RIP through its own page tables and decodes
 * it; false with a logged cause if that fails. */
bool vmm_decode_at_rip(struct vmm_vcpu *c, struct x86_insn *insn);

/* The bytes at the vCPU's RIP (state s), read through its own page tables. */
struct vmm_fetched {
    uint8_t bytes[X86_MAX_INSN_LEN];
    size_t  got;                  /* bytes read before the walk stopped */
    int     walk;                 /* enum x86_walk_status of the read */
};
/* Fetches and decodes; returns the decoder's status (X86_OK on success). */
int vmm_fetch_insn(struct vmm_vcpu *c, const struct hvm_state *s, struct x86_insn *insn,
                   struct vmm_fetched *f);
/* Guest-physical reads from the VM's RAM (vm: its struct vmm_vm), for page walks. */
int vmm_read_guest_phys(void *vm, uint64_t gpa, void *buf, size_t len);

/* vmm/cpuid.c */
void vmm_cpuid(struct vmm_vcpu *c, uint32_t leaf, uint32_t subleaf, uint32_t out[4]);
enum vmm_action vmm_exit_cpuid(struct vmm_vcpu *c, const struct hvm_exit *x);
/* vmm/msr.c */
enum vmm_action vmm_exit_rdmsr(struct vmm_vcpu *c, const struct hvm_exit *x);
enum vmm_action vmm_exit_wrmsr(struct vmm_vcpu *c, const struct hvm_exit *x);
void vmm_vcpu_reset_msrs(struct vmm_vcpu *c);
/* vmm/mmio.c */
enum vmm_action vmm_exit_npf(struct vmm_vcpu *c, const struct hvm_exit *x);
/* vmm/cr.c */
enum vmm_action vmm_exit_cr(struct vmm_vcpu *c, const struct hvm_exit *x);

#endif
