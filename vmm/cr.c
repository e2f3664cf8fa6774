/* Control-register exits: only the bits plinth keeps for itself (CR0.PE/PG and the
 * VMX-fixed bits, CR4.PAE/VMXE) and CR8 exit; everything else the guest owns. */
#include "vmm/exit.h"
#include "vmm/emulate/decode.h"

#define VEC_GP 13

#define CR0_PE (1ull << 0)
#define CR0_ET (1ull << 4)
#define CR0_NW (1ull << 29)
#define CR0_CD (1ull << 30)
#define CR0_PG (1ull << 31)
/* Bits 63:32 and 28:19/17/15:6 (except ET, NE) are reserved (SDM Vol. 3A §2.5). */
#define CR0_RESERVED 0xffffffff1ffaffc0ull
#define CR4_PAE  (1ull << 5)
#define CR4_PCIDE (1ull << 17)
/* CR4 bits every x86_64 CPU has: VME..OSXMMEXCPT (bits 0-10). */
#define CR4_BASE_BITS 0x7ffull
#define EFER_LME (1ull << 8)

static bool set_cr0(struct vmm_vcpu *c, struct hvm_state *s, uint64_t v)
{
    /* #GP cases of MOV to CR0 (SDM Vol. 2B, MOV—Move to/from Control Registers). */
    if ((v & CR0_RESERVED) || ((v & CR0_PG) && !(v & CR0_PE)) || ((v & CR0_NW) && !(v & CR0_CD)))
        return false;
    /* Entering long mode needs PAE first (SDM Vol. 3A §10.8.5). */
    if ((v & CR0_PG) && !(s->cr0 & CR0_PG) && (s->efer & EFER_LME) && !(s->cr4 & CR4_PAE))
        return false;
    (void)c;
    s->cr0 = v | CR0_ET; /* ET is hardwired to 1 */
    return true;
}

/* The CR4 bits this guest may set: those whose feature its CPUID view shows
 * (SDM Vol. 3A §2.5); a bit the CPU lacks would otherwise fail the VM entry. */
static uint64_t cr4_allowed(struct vmm_vcpu *c)
{
    uint32_t l1[4], l7[4];
    vmm_cpuid(c, 1, 0, l1);
    vmm_cpuid(c, 7, 0, l7);
    uint64_t a = CR4_BASE_BITS;
    if (l7[2] & (1u << 2))  a |= 1ull << 11;  /* UMIP */
    if (l7[2] & (1u << 16)) a |= 1ull << 12;  /* LA57 */
    if (l7[1] & (1u << 0))  a |= 1ull << 16;  /* FSGSBASE */
    if (l1[2] & (1u << 17)) a |= CR4_PCIDE;
    if (l1[2] & (1u << 26)) a |= 1ull << 18;  /* OSXSAVE, with XSAVE */
    if (l7[1] & (1u << 7))  a |= 1ull << 20;  /* SMEP */
    if (l7[1] & (1u << 20)) a |= 1ull << 21;  /* SMAP */
    if (l7[2] & (1u << 3))  a |= 1ull << 22;  /* PKE */
    return a;
}

static bool set_cr4(struct vmm_vcpu *c, struct hvm_state *s, uint64_t v)
{
    if (v & ~cr4_allowed(c))
        return false;
    bool long_mode = s->efer & (1ull << 10);
    /* Clearing PAE in long mode is a #GP; so are setting PCIDE outside long mode or
     * with CR3[11:0] nonzero, and changing LA57 in long mode (SDM Vol. 2B, MOV CR). */
    if (!(v & CR4_PAE) && long_mode)
        return false;
    if ((v & CR4_PCIDE) && !(s->cr4 & CR4_PCIDE) && (!long_mode || (s->cr3 & 0xfff)))
        return false;
    if (long_mode && ((v ^ s->cr4) & (1ull << 12)))
        return false;
    s->cr4 = v;
    return true;
}

/* The PAE page-directory-pointer entries of cr3, checked as a MOV to CR0/CR4 that
 * enters or stays in PAE paging checks them (SDM Vol. 3A §4.4.1: reserved bits
 * 63:MAXPHYADDR, 8:5 and 2:1 of a present entry make it #GP), and handed to the core:
 * the CPU would have loaded them at that MOV, and VT-x takes them from the VMCS. */
static bool load_pdptes(struct vmm_vcpu *c, const struct hvm_state *s)
{
    uint64_t p[4];
    if (vmm_read_guest_phys(c->vm, s->cr3 & 0xffffffe0ull, p, sizeof p))
        return false;
    unsigned m = vmm_guest_maxphyaddr();
    uint64_t reserved = ~((1ull << m) - 1) | 0x1e6ull;
    for (int i = 0; i < 4; i++)
        if ((p[i] & 1) && (p[i] & reserved))
            return false;
    core_vcpu_set_pdptes(c->h, p);
    return true;
}

/* PAE paging, not 4-level: with EFER.LME set, paging turned on is IA-32e paging
 * (LMA follows at the entry), whose CR3 holds a PML4, not PDPTEs. */
static bool pae_paging(const struct hvm_state *s)
{
    return (s->cr0 & CR0_PG) && (s->cr4 & CR4_PAE) && !(s->efer & EFER_LME);
}

/* The register of a MOV to or from CRn that the CPU did not name (AMD-V without
 * decode assists): 0F 22 /r and 0F 20 /r, ModRM.reg (with REX.R) the CR, ModRM.rm the
 * register; AMD's LOCK MOV CR0 is CR8 (APM Vol. 3 MOV CRn, CPUID AltMovCr8). */
static bool decode_cr_gpr(struct vmm_vcpu *c, const struct hvm_exit *x, uint8_t *gpr)
{
    struct x86_insn insn;
    if (!vmm_decode_at_rip(c, &insn) || insn.map != X86_MAP_0F ||
        insn.opcode != (x->cr.type == HVM_CR_MOV_TO ? 0x22 : 0x20))
        return false;
    unsigned cr = insn.reg == 0 && (insn.prefixes & X86_PREFIX_LOCK) ? 8 : insn.reg;
    if (cr != x->cr.cr)
        return false;
    *gpr = insn.rm;
    return true;
}

enum vmm_action vmm_exit_cr(struct vmm_vcpu *c, const struct hvm_exit *x)
{
    struct hvm_state s;
    core_vcpu_get_state(c->h, &s);
    bool ok = true;
    uint8_t gpr = x->cr.gpr;
    if ((x->cr.type == HVM_CR_MOV_TO || x->cr.type == HVM_CR_MOV_FROM) && gpr == HVM_CR_GPR_DECODE &&
        !decode_cr_gpr(c, x, &gpr))
        return vmm_vm_stop(c, true, "the CR%u access at rip %#lx is no MOV %s CR%u", x->cr.cr,
                           (unsigned long)s.rip, x->cr.type == HVM_CR_MOV_TO ? "to" : "from", x->cr.cr);
    switch (x->cr.type) {
    case HVM_CR_MOV_TO: {
        uint64_t v = s.gpr[gpr & 15];
        if (x->cr.cr == 0)
            ok = set_cr0(c, &s, v);
        else if (x->cr.cr == 4)
            ok = set_cr4(c, &s, v);
        else if (x->cr.cr == 8) {
            /* CR8 is TPR bits 7:4 (SDM Vol. 3A §12.8.6.1). */
            ok = (v >> 4) == 0;
            if (ok) {
                uint64_t f = spin_lock_irqsave(&c->lapic_lock);
                c->lapic.tpr = (uint32_t)(v & 0xf) << 4;
                spin_unlock_irqrestore(&c->lapic_lock, f);
            }
        }
        else
            ok = false;
        /* A MOV to CR0 or CR4 that leaves PAE paging on loads the PDPTEs. */
        if (ok && (x->cr.cr == 0 || x->cr.cr == 4) && pae_paging(&s))
            ok = load_pdptes(c, &s);
        if (ok && x->cr.cr != 8)
            core_vcpu_set_state(c->h, &s);
        break;
    }
    case HVM_CR_MOV_FROM:
        if (x->cr.cr == 8)
            core_vcpu_set_gpr(c->h, (enum hvm_gpr)(gpr & 15), c->lapic.tpr >> 4);
        else
            ok = false;
        break;
    case HVM_CR_CLTS:
        s.cr0 &= ~(1ull << 3);
        core_vcpu_set_state(c->h, &s);
        break;
    case HVM_CR_LMSW:
        /* LMSW loads CR0 bits 3:0 but can never clear PE (SDM Vol. 2A, LMSW). */
        ok = set_cr0(c, &s, (s.cr0 & ~0xeull) | (x->cr.lmsw_value & 0xf));
        if (ok && pae_paging(&s))
            ok = load_pdptes(c, &s);
        if (ok)
            core_vcpu_set_state(c->h, &s);
        break;
    }
    if (!ok) {
        vmm_inject_exception(c, VEC_GP, true, 0);
        return VMM_CONTINUE;
    }
    core_vcpu_skip_insn(c->h, vmm_insn_len(c, x));
    return VMM_CONTINUE;
}
