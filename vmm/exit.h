/* The monitor's exit dispatch: one table indexed by the generic exit reason. */
#ifndef PLINTH_VMM_EXIT_H
#define PLINTH_VMM_EXIT_H

#include "vmm/vm.h"
#include "vmm/emulate/decode.h"

void vmm_pre_entry(void *ctx, core_vcpu_t v);
enum vmm_action vmm_handle_exit(void *ctx, core_vcpu_t v, const struct hvm_exit *x);
/* vmm_vcpu_ops.event_insn_len: the length of the instruction at RIP, decoded. */
uint8_t vmm_event_insn_len(void *ctx, core_vcpu_t v);

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
    uint64_t linear;              /* where the fetch began */
    uint32_t pf_error;            /* walk == X86_WALK_PAGE_FAULT: at linear + got */
};
struct x86_paging;
/* The guest's paging state for a walk by plinth (its MAXPHYADDR included). */
void vmm_guest_paging(const struct hvm_state *s, struct x86_paging *pg);
/* Fetches and decodes; returns the decoder's status (X86_OK on success). */
int vmm_fetch_insn(struct vmm_vcpu *c, const struct hvm_state *s, struct x86_insn *insn,
                   struct vmm_fetched *f);
/* Guest-physical reads from the VM's RAM (vm: its struct vmm_vm), for page walks. */
int vmm_read_guest_phys(void *vm, uint64_t gpa, void *buf, size_t len);

/* vmm/cpuid.c */
void vmm_cpuid(struct vmm_vcpu *c, uint32_t leaf, uint32_t subleaf, uint32_t out[4]);
/* The guest's MAXPHYADDR, the host's (CPUID 0x80000008 EAX[7:0], 36 without it), and
 * its CPU vendor's family rules: AMD (and Hygon) or Intel. */
unsigned vmm_guest_maxphyaddr(void);
bool vmm_guest_is_amd(void);
enum vmm_action vmm_exit_cpuid(struct vmm_vcpu *c, const struct hvm_exit *x);
/* vmm/msr.c */
enum vmm_action vmm_exit_rdmsr(struct vmm_vcpu *c, const struct hvm_exit *x);
enum vmm_action vmm_exit_wrmsr(struct vmm_vcpu *c, const struct hvm_exit *x);
void vmm_vcpu_reset_msrs(struct vmm_vcpu *c);
/* vmm/mmio.c */
enum vmm_action vmm_exit_npf(struct vmm_vcpu *c, const struct hvm_exit *x);
/* vmm/string_io.c: INS and OUTS */
enum vmm_action vmm_exit_string_io(struct vmm_vcpu *c, const struct hvm_exit *x);
/* After a port write (exit.c): a reset or poweroff the write asked for. */
enum vmm_action vmm_io_after_write(struct vmm_vcpu *c);
/* vmm/pmu.c: RDPMC and the AMD performance counter MSRs */
enum vmm_action vmm_exit_rdpmc(struct vmm_vcpu *c, const struct hvm_exit *x);
bool vmm_pmu_msr_read(struct vmm_vcpu *c, uint32_t msr, uint64_t *v, bool *handled);
bool vmm_pmu_msr_write(struct vmm_vcpu *c, uint32_t msr, uint64_t v, bool *handled);
/* Data breakpoints an emulated access at guest-linear address linear hit, owed to the
 * guest as a #DB after the instruction (vmm/mmio.c, vmm/string_io.c). */
struct vmm_dbp {
    struct vmm_vcpu *c;
    uint64_t dr7;
    bool     have_dr;
    uint64_t dr[4];
    uint32_t hits;
};
void vmm_dbp_access(struct vmm_dbp *d, uint64_t linear, unsigned size, bool read, bool write);
/* vmm/cr.c */
enum vmm_action vmm_exit_cr(struct vmm_vcpu *c, const struct hvm_exit *x);

#endif
