/* Every exit the core passes up is handled here, through one table: a reader finds
 * what plinth does with any exit in one hop. */
#include "vmm/exit.h"
#include "vmm/lapic.h"
#include "vmm/platform.h"
#include "kernel/log.h"
#include "kernel/string.h"
#include "vmm/emulate/decode.h"
#include "vmm/emulate/pagewalk.h"

/* Exception vectors injected by the monitor (SDM Vol. 3A Table 6-1). */
#define VEC_UD 6
#define VEC_GP 13

typedef enum vmm_action (*exit_fn)(struct vmm_vcpu *c, const struct hvm_exit *x);

int vmm_read_guest_phys(void *vm, uint64_t gpa, void *buf, size_t len)
{
    const struct vmm_vm *m = vm;
    if (gpa > m->ram_size || len > m->ram_size - gpa)
        return -1;
    memcpy(buf, m->ram + gpa, len);
    return 0;
}

void vmm_guest_paging(const struct hvm_state *s, struct x86_paging *pg)
{
    *pg = (struct x86_paging){ s->cr0, s->cr3, s->cr4, s->efer, vmm_guest_maxphyaddr() };
}

int vmm_fetch_insn(struct vmm_vcpu *c, const struct hvm_state *s, struct x86_insn *insn,
                   struct vmm_fetched *f)
{
    struct x86_paging pg;
    vmm_guest_paging(s, &pg);
    bool cs_l = s->seg[HVM_CS].ar & (1u << 13), cs_d = s->seg[HVM_CS].ar & (1u << 14);
    enum x86_mode mode = x86_mode_of(s->cr0, s->efer, s->rflags, cs_l, cs_d);
    uint64_t at = mode == X86_MODE_LONG64 ? s->rip : s->seg[HVM_CS].base + s->rip;
    uint32_t pf = 0;
    f->got = 0;
    /* A fetch at CPL 3 is a user-mode access: as a supervisor fetch, SMEP would fault
     * it on the user page it came from (SDM Vol. 3A §4.6). */
    unsigned cpl = (s->seg[HVM_SS].ar >> 5) & 3;
    unsigned access = X86_WALK_FETCH | (cpl == 3 ? X86_WALK_USER : 0);
    f->walk = x86_read_linear(&pg, at, access, vmm_read_guest_phys, c->vm, f->bytes,
                              sizeof f->bytes, &f->got, &pf);
    f->linear = at;
    f->pf_error = pf;
    return x86_decode(f->bytes, f->got, mode, insn);
}

static int decode_at_rip(struct vmm_vcpu *c, struct x86_insn *insn, int *walk, size_t *got, uint64_t *rip)
{
    struct hvm_state s;
    struct vmm_fetched f;
    core_vcpu_get_state(c->h, &s);
    int st = vmm_fetch_insn(c, &s, insn, &f);
    *walk = f.walk;
    *got = f.got;
    *rip = s.rip;
    return st;
}

bool vmm_decode_at_rip(struct vmm_vcpu *c, struct x86_insn *insn)
{
    int walk;
    size_t got;
    uint64_t rip;
    int st = decode_at_rip(c, insn, &walk, &got, &rip);
    if (st != X86_OK)
        log_error("vm %s: cannot decode the instruction at rip %#lx (%zu bytes read: %s): %s",
                  c->vm->conf.name, (unsigned long)rip, got, x86_walk_status_name(walk), x86_status_name(st));
    return st == X86_OK;
}

uint8_t vmm_insn_len(struct vmm_vcpu *c, const struct hvm_exit *x)
{
    /* VT-x and AMD-V with nRIP-save report it.  AMD-V without nRIP-save (QEMU's TCG)
     * does not: the instruction at RIP is fetched through the guest's own page tables
     * and decoded.  Never trust the exit code for it: TCG reports RDTSCP as RDTSC. */
    if (x->insn_len)
        return x->insn_len;
    struct x86_insn insn;
    int walk;
    size_t got;
    uint64_t rip;
    int st = decode_at_rip(c, &insn, &walk, &got, &rip);
    if (st == X86_OK)
        return insn.length;
    /* The instruction just ran to its exit, so it is readable and decodable: failing
     * here is plinth's bug or a guest rewriting its code from another vCPU.  Skipping
     * nothing would re-run it forever, so the VM stops (or restarts, per on_crash):
     * the instruction exits again and vmm_handle_exit ends the stopped vCPU. */
    vmm_vm_stop(c, true, "cannot decode the %s exit's instruction at rip %#lx (%zu bytes read: %s): %s",
                hvm_exit_reason_name(x->reason), (unsigned long)rip, got,
                x86_walk_status_name(walk), x86_status_name(st));
    return 0;
}

static enum vmm_action exit_skip(struct vmm_vcpu *c, const struct hvm_exit *x)
{
    core_vcpu_skip_insn(c->h, vmm_insn_len(c, x));
    return VMM_CONTINUE;
}

static enum vmm_action exit_continue(struct vmm_vcpu *c, const struct hvm_exit *x)
{
    (void)c;
    (void)x;
    return VMM_CONTINUE;
}

/* Instructions guests may not use: VMX/SVM (plinth offers no nesting) and
 * MONITOR/MWAIT (hidden in CPUID: plinth does not treat MWAIT as HLT) fault as on a
 * CPU without them. */
static enum vmm_action exit_ud(struct vmm_vcpu *c, const struct hvm_exit *x)
{
    (void)x;
    vmm_inject_exception(c, VEC_UD, false, 0);
    return VMM_CONTINUE;
}

/* VMCALL / VMMCALL: plinth has no hypercall interface (its CPUID leaves advertise
 * none), so the guest sees what a CPU without virtualization gives it, #UD (SDM Vol.
 * 2C VMCALL outside VMX non-root operation; APM Vol. 3 VMMCALL without SVM), whatever
 * its registers say, and no register changes. */
static enum vmm_action exit_hypercall(struct vmm_vcpu *c, const struct hvm_exit *x)
{
    return exit_ud(c, x);
}

uint8_t vmm_event_insn_len(void *ctx, core_vcpu_t v)
{
    struct vmm_vcpu *c = ctx;
    (void)v;
    struct x86_insn insn;
    int walk;
    size_t got;
    uint64_t rip;
    /* INTn, INT3, INTO: their delivery was interrupted; the bytes are still there. */
    return decode_at_rip(c, &insn, &walk, &got, &rip) == X86_OK ? insn.length : 0;
}

static enum vmm_action exit_hlt(struct vmm_vcpu *c, const struct hvm_exit *x)
{
    core_vcpu_skip_insn(c->h, vmm_insn_len(c, x));
    struct hvm_state s;
    core_vcpu_get_state(c->h, &s);
    /* With interrupts off only an NMI, INIT or SIPI wakes it: once every vCPU of the
     * VM is so, the guest has ended (the test guests end so; a real OS does it when
     * it has died, or parks its other CPUs so before it powers off). */
    if (!(s.rflags & (1u << 9)))
        return vmm_vm_halted(c, s.rip);
    /* An interrupt already waiting ends the halt at once; else sleep until the core
     * wakes the vCPU (its APIC timer's deadline, or a device). */
    return vmm_lapic_can_wake(c) || vmm_platform_can_wake(c) ? VMM_CONTINUE : VMM_BLOCK;
}

static enum vmm_action exit_xsetbv(struct vmm_vcpu *c, const struct hvm_exit *x)
{
    uint32_t index = (uint32_t)core_vcpu_get_gpr(c->h, HVM_RCX);
    uint64_t value = (core_vcpu_get_gpr(c->h, HVM_RDX) << 32) | (uint32_t)core_vcpu_get_gpr(c->h, HVM_RAX);
    /* Only XCR0 exists; a bad value faults (SDM Vol. 2D, XSETBV). */
    if (index != 0 || !core_vcpu_set_xcr0(c->h, value)) {
        vmm_inject_exception(c, VEC_GP, true, 0);
        return VMM_CONTINUE;
    }
    return exit_skip(c, x);
}

/* The write may have been a reset or an S5 request: the VM acts on it now that the
 * access is complete. */
enum vmm_action vmm_io_after_write(struct vmm_vcpu *c)
{
    switch (vmm_platform_take_request(c->vm)) {
    case PLATFORM_REQ_RESET:
        return vmm_vm_reset(c, "the guest reset its machine");
    case PLATFORM_REQ_POWEROFF:
        return vmm_vm_stop(c, false, "the guest powered off (ACPI S5)");
    case PLATFORM_REQ_NONE:
        break;
    }
    return VMM_CONTINUE;
}

static enum vmm_action exit_io(struct vmm_vcpu *c, const struct hvm_exit *x)
{
    vmm_count(&c->vm->port_exits, x->io.port);
    if (x->io.string)
        return vmm_exit_string_io(c, x);
    struct io_bus *bus = &c->vm->io;
    if (x->io.in) {
        uint32_t v = io_bus_read(bus, x->io.port, x->io.size);
        uint64_t rax = core_vcpu_get_gpr(c->h, HVM_RAX);
        /* IN writes AL/AX/EAX; a 32-bit IN zero-extends into RAX like any 32-bit write. */
        if (x->io.size == 1)
            rax = (rax & ~0xffull) | (v & 0xff);
        else if (x->io.size == 2)
            rax = (rax & ~0xffffull) | (v & 0xffff);
        else
            rax = v;
        core_vcpu_set_gpr(c->h, HVM_RAX, rax);
    } else {
        io_bus_write(bus, x->io.port, x->io.size, (uint32_t)core_vcpu_get_gpr(c->h, HVM_RAX));
        enum vmm_action a = vmm_io_after_write(c);
        if (a != VMM_CONTINUE)
            return a;
    }
    return exit_skip(c, x);
}

static enum vmm_action exit_triple_fault(struct vmm_vcpu *c, const struct hvm_exit *x)
{
    (void)x;
    return vmm_vm_stop(c, true, "triple fault at rip %#lx", (unsigned long)core_vcpu_get_rip(c->h));
}

static enum vmm_action exit_entry_failed(struct vmm_vcpu *c, const struct hvm_exit *x)
{
    (void)x;
    return vmm_vm_stop(c, true, "the CPU refused to enter it; see the diagnosis above");
}

static enum vmm_action exit_unexpected(struct vmm_vcpu *c, const struct hvm_exit *x)
{
    core_vcpu_dump(c->h);
    return vmm_vm_stop(c, true, "unexpected exit %s (hardware reason %u)",
                       hvm_exit_reason_name(x->reason), x->raw_reason);
}

/* VT-x exits on every hardware task switch (SDM Vol. 3C §26.4.2) and leaves it to
 * the monitor; AMD-V performs them in the CPU.  plinth does not emulate one: the VM
 * stops with what it attempted, as it would on a fatal error, rather than running on
 * with a half-made switch.  (32-bit OSes that use task gates, e.g. for #DF, stop here
 * on VT-x when that path is taken.) */
static enum vmm_action exit_task_switch(struct vmm_vcpu *c, const struct hvm_exit *x)
{
    static const char *const how[] = { "a CALL", "an IRET", "a JMP", "an IDT task gate" };
    return vmm_vm_stop(c, true, "hardware task switch to TSS selector %#x by %s at rip %#lx: plinth does "
                       "not emulate task switches on VT-x", x->task.selector, how[x->task.source & 3],
                       (unsigned long)core_vcpu_get_rip(c->h));
}

static enum vmm_action exit_exception(struct vmm_vcpu *c, const struct hvm_exit *x)
{
    /* The exception bitmap is empty: any exception exit is unexpected. */
    return exit_unexpected(c, x);
}

static const exit_fn exit_table[HVM_EXIT_REASON_COUNT] = {
    [HVM_EXIT_CPUID]        = vmm_exit_cpuid,
    [HVM_EXIT_RDMSR]        = vmm_exit_rdmsr,
    [HVM_EXIT_WRMSR]        = vmm_exit_wrmsr,
    [HVM_EXIT_IO]           = exit_io,
    [HVM_EXIT_NPF]          = vmm_exit_npf,
    [HVM_EXIT_CR]           = vmm_exit_cr,
    [HVM_EXIT_HLT]          = exit_hlt,
    [HVM_EXIT_XSETBV]       = exit_xsetbv,
    [HVM_EXIT_INVD]         = exit_skip,   /* caches stay coherent: nothing to drop */
    [HVM_EXIT_WBINVD]       = exit_skip,
    [HVM_EXIT_TRIPLE_FAULT] = exit_triple_fault,
    [HVM_EXIT_VIRT_INSN]    = exit_ud,
    [HVM_EXIT_HYPERCALL]    = exit_hypercall,
    [HVM_EXIT_RDPMC]        = vmm_exit_rdpmc,
    [HVM_EXIT_TASK_SWITCH]  = exit_task_switch,
    [HVM_EXIT_MWAIT]        = exit_ud,
    [HVM_EXIT_INTR_WINDOW]  = exit_continue,
    [HVM_EXIT_NMI_WINDOW]   = exit_continue,
    [HVM_EXIT_PAUSE]        = exit_skip,
    [HVM_EXIT_INIT]         = exit_continue,
    [HVM_EXIT_SIPI]         = exit_continue,
    [HVM_EXIT_EXCEPTION]    = exit_exception,
    [HVM_EXIT_ENTRY_FAILED] = exit_entry_failed,
    [HVM_EXIT_UNHANDLED]    = exit_unexpected,
};

void vmm_pre_entry(void *ctx, core_vcpu_t v)
{
    struct vmm_vcpu *c = ctx;
    (void)v;
    /* Devices first: their interrupts reach the local APIC, which then injects the
     * highest one; the PIC's ExtINT comes last, only if nothing else went in. */
    vmm_platform_tick(c);
    if (vmm_lapic_pre_entry(c))
        vmm_platform_extint(c);
}

enum vmm_action vmm_handle_exit(void *ctx, core_vcpu_t v, const struct hvm_exit *x)
{
    struct vmm_vcpu *c = ctx;
    (void)v;
    if (c->vm->state == VMM_VM_STOPPED)
        return VMM_STOP;
    exit_fn fn = (unsigned)x->reason < HVM_EXIT_REASON_COUNT ? exit_table[x->reason] : NULL;
    if (!fn)
        return exit_unexpected(c, x);
    return fn(c, x);
}
