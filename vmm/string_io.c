/* String I/O: INS and OUTS, with and without REP (SDM Vol. 2B INS, OUTS, REP), which
 * firmware and stock kernels use on the UART and the PCI configuration ports.  The
 * exit gives the port and element size; the instruction at RIP, decoded, gives the
 * address size, the segment of OUTS and the REP prefix.  Each element is one access to
 * the port bus, exactly as a single IN or OUT would make it, and one access to guest
 * memory through the guest's own page tables: a page fault there is the guest's, with
 * the elements before it done.  A long REP is cut into bounded pieces (RIP stays on
 * the instruction, as after an interrupt between iterations), so one guest's REP
 * cannot hold its CPU. */
#include "vmm/exit.h"
#include "vmm/emulate/decode.h"
#include "vmm/emulate/pagewalk.h"
#include "kernel/string.h"

/* Elements per exit at most: a page of bytes, or less of a larger element. */
#define STRING_IO_MAX_ELEMENTS 4096u
#define VEC_PF 14
#define RFLAGS_DF (1ull << 10)

static uint64_t mask_of(unsigned size)
{
    return size >= 8 ? ~0ull : (1ull << (8 * size)) - 1;
}

/* A register written at the address size: 32-bit writes zero-extend, 16-bit ones keep
 * the upper bits (SDM Vol. 1 §3.4.1.1). */
static uint64_t reg_at_size(uint64_t old, uint64_t v, unsigned size)
{
    if (size == 2)
        return (old & ~0xffffull) | (v & 0xffff);
    return v & mask_of(size);
}

/* Guest-linear address of seg:offset (64-bit mode: only FS and GS have a base). */
static uint64_t linear_of(const struct x86_insn *insn, const struct hvm_state *s, int seg, uint64_t offset)
{
    offset &= mask_of(insn->addr_size);
    if (insn->mode == X86_MODE_LONG64)
        return (seg == X86_SEG_FS || seg == X86_SEG_GS) ? offset + s->seg[seg].base : offset;
    return (s->seg[seg].base + offset) & 0xffffffffull;
}

/* Guest memory at gpa for one element: RAM only; false outside it. */
static uint8_t *ram_at(struct vmm_vm *m, uint64_t gpa, unsigned size)
{
    if (gpa >= m->ram_size || size > m->ram_size - gpa)
        return NULL;
    return m->ram + gpa;
}

enum vmm_action vmm_exit_string_io(struct vmm_vcpu *c, const struct hvm_exit *x)
{
    struct hvm_state s;
    core_vcpu_get_state(c->h, &s);
    struct x86_insn insn;
    struct vmm_fetched f;
    int st = vmm_fetch_insn(c, &s, &insn, &f);
    uint8_t op = insn.opcode;
    if (st != X86_OK || insn.map != X86_MAP_ONE || (x->io.in ? (op != 0x6c && op != 0x6d) : (op != 0x6e && op != 0x6f)))
        return vmm_vm_stop(c, true, "the string I/O exit at rip %#lx (port %#x) is no %s (%s)",
                           (unsigned long)s.rip, x->io.port, x->io.in ? "INS" : "OUTS",
                           st == X86_OK ? "another instruction" : x86_status_name(st));
    unsigned size = x->io.size;
    bool rep = insn.prefixes & (X86_PREFIX_REP | X86_PREFIX_REPNE);
    unsigned asz = insn.addr_size;
    uint64_t count = rep ? s.gpr[HVM_RCX] & mask_of(asz) : 1;
    int seg = x->io.in ? X86_SEG_ES : insn.seg_override != X86_SEG_NONE ? insn.seg_override : X86_SEG_DS;
    enum hvm_gpr idx = x->io.in ? HVM_RDI : HVM_RSI;
    int64_t step = (s.rflags & RFLAGS_DF) ? -(int64_t)size : (int64_t)size;

    struct x86_paging pg;
    vmm_guest_paging(&s, &pg);
    bool user = ((s.seg[HVM_SS].ar >> 5) & 3) == 3;
    unsigned access = (x->io.in ? X86_WALK_WRITE : 0) | (user ? X86_WALK_USER : 0);
    struct vmm_dbp dbp = { .c = c, .dr7 = s.dr7 };
    struct io_bus *bus = &c->vm->io;
    enum vmm_action after = VMM_CONTINUE;
    uint64_t done = 0;

    while (done < count && done < STRING_IO_MAX_ELEMENTS && after == VMM_CONTINUE) {
        uint64_t lin = linear_of(&insn, &s, seg, s.gpr[idx]);
        uint8_t buf[4] = { 0 };
        /* An element across a page boundary: each byte by its own translation. */
        for (unsigned b = 0; b < size; b++) {
            uint64_t gpa;
            uint32_t pf;
            int rc = x86_walk(&pg, lin + b, access, vmm_read_guest_phys, c->vm, &gpa, &pf);
            if (rc == X86_WALK_PAGE_FAULT) {
                s.cr2 = lin + b;
                core_vcpu_set_state(c->h, &s);
                vmm_inject_exception(c, VEC_PF, true, pf);
                return VMM_CONTINUE;
            }
            uint8_t *p = rc == X86_WALK_OK ? ram_at(c->vm, gpa, 1) : NULL;
            if (!p)
                return vmm_vm_stop(c, true, "%s at rip %#lx: guest-linear %#lx (%s) is not in its RAM",
                                   x->io.in ? "INS" : "OUTS", (unsigned long)s.rip, (unsigned long)(lin + b),
                                   rc == X86_WALK_OK ? "guest-physical outside RAM" : x86_walk_status_name(rc));
            if (x->io.in)
                continue;
            buf[b] = *p;
        }
        if (x->io.in) {
            uint32_t v = io_bus_read(bus, x->io.port, size);
            for (unsigned b = 0; b < size; b++) {
                uint64_t gpa;
                uint32_t pf;
                x86_walk(&pg, lin + b, access, vmm_read_guest_phys, c->vm, &gpa, &pf);
                *ram_at(c->vm, gpa, 1) = (uint8_t)(v >> (8 * b));
            }
        } else {
            uint32_t v = buf[0] | (uint32_t)buf[1] << 8 | (uint32_t)buf[2] << 16 | (uint32_t)buf[3] << 24;
            io_bus_write(bus, x->io.port, size, v);
            after = vmm_io_after_write(c);
        }
        vmm_dbp_access(&dbp, lin, size, !x->io.in, x->io.in);
        s.gpr[idx] = reg_at_size(s.gpr[idx], s.gpr[idx] + (uint64_t)step, asz);
        if (rep)
            s.gpr[HVM_RCX] = reg_at_size(s.gpr[HVM_RCX], s.gpr[HVM_RCX] - 1, asz);
        done++;
    }
    core_vcpu_set_state(c->h, &s);
    if (after != VMM_CONTINUE)
        return after;
    /* Unfinished REP: RIP stays, the guest carries on with it after this exit. */
    if (done == count) {
        core_vcpu_skip_insn(c->h, insn.length);
        if (dbp.hits)
            core_vcpu_debug_trap(c->h, dbp.hits);
    }
    return VMM_CONTINUE;
}
