/* Guest-physical faults: device MMIO emulated through the decoder, anything else
 * outside RAM stops the VM with a diagnostic naming the address, rip and bytes. */
#include "vmm/mmio.h"
#include "vmm/exit.h"
#include "vmm/emulate/decode.h"
#include "vmm/emulate/emulate.h"
#include "vmm/emulate/pagewalk.h"
#include "vmm/emulate/debugreg.h"
#include "kernel/fmt.h"
#include "kernel/string.h"

bool mmio_bus_claim(struct mmio_bus *bus, uint64_t base, uint64_t size, mmio_read_fn r,
                    mmio_write_fn w, void *ctx)
{
    if (bus->count == MMIO_BUS_MAX || size == 0 || base + size < base)
        return false;
    for (unsigned i = 0; i < bus->count; i++)
        if (base < bus->regions[i].base + bus->regions[i].size && bus->regions[i].base < base + size)
            return false;
    bus->regions[bus->count++] = (struct mmio_region){ base, size, r, w, ctx };
    return true;
}

const struct mmio_region *mmio_bus_find(const struct mmio_bus *bus, uint64_t gpa)
{
    for (unsigned i = 0; i < bus->count; i++)
        if (gpa >= bus->regions[i].base && gpa - bus->regions[i].base < bus->regions[i].size)
            return &bus->regions[i];
    return 0;
}

struct npf_ctx {
    struct vmm_vcpu *c;
    struct x86_paging paging;
    bool user;                  /* CPL 3: the walk checks the U/S bits */
    /* The RAM side's page walk failed with a page fault the guest must get. */
    bool pf;
    uint64_t pf_linear;
    uint32_t pf_error;
    struct vmm_dbp dbp;
};

static int dev_read(void *ctx, uint64_t gpa, unsigned size, uint64_t *val)
{
    struct npf_ctx *n = ctx;
    const struct mmio_region *r = mmio_bus_find(&n->c->vm->mmio, gpa);
    /* An access straddling the region's end is refused, not split. */
    if (!r || gpa - r->base + size > r->size || !r->read)
        return -1;
    return r->read(r->ctx ? r->ctx : n->c, gpa - r->base, size, val);
}

static int dev_write(void *ctx, uint64_t gpa, unsigned size, uint64_t val)
{
    struct npf_ctx *n = ctx;
    const struct mmio_region *r = mmio_bus_find(&n->c->vm->mmio, gpa);
    if (!r || gpa - r->base + size > r->size || !r->write)
        return -1;
    return r->write(r->ctx ? r->ctx : n->c, gpa - r->base, size, val);
}

/* One page's piece of a RAM access: its guest-physical address, or -1 (the walk's
 * page fault recorded in n, as the CPU would raise it on that access: SDM Vol. 3A
 * §4.7). */
static int mem_translate(struct npf_ctx *n, uint64_t linear, unsigned size, bool write, uint64_t *gpa)
{
    uint32_t pf;
    unsigned access = (write ? X86_WALK_WRITE : 0) | (n->user ? X86_WALK_USER : 0);
    int rc = x86_walk(&n->paging, linear, access, vmm_read_guest_phys, n->c->vm, gpa, &pf);
    if (rc == X86_WALK_PAGE_FAULT) {
        n->pf = true;
        n->pf_linear = linear;
        n->pf_error = pf;
        return -1;
    }
    struct vmm_vm *m = n->c->vm;
    if (rc != X86_WALK_OK || *gpa > m->ram_size || size > m->ram_size - *gpa)
        return -1;
    return 0;
}

/* The RAM side of MOVS between RAM and a device, by guest-linear address.  An element
 * that crosses a page boundary is two pieces, each translated on its own, both before
 * any byte moves: a fault on the second page leaves memory as it was, as on the CPU. */
static int mem_access(struct npf_ctx *n, uint64_t linear, unsigned size, uint64_t *val, bool write)
{
    unsigned first = (unsigned)(0x1000 - (linear & 0xfff));
    if (first > size)
        first = size;
    uint64_t gpa[2];
    if (mem_translate(n, linear, first, write, &gpa[0]) ||
        (first < size && mem_translate(n, linear + first, size - first, write, &gpa[1])))
        return -1;
    uint8_t *bytes = (uint8_t *)val;
    uint8_t *ram = n->c->vm->ram;
    if (!write)
        *val = 0;
    for (unsigned part = 0, done = 0; done < size; part++) {
        unsigned len = part ? size - first : first;
        if (write)
            memcpy(ram + gpa[part], bytes + done, len);
        else
            memcpy(bytes + done, ram + gpa[part], len);
        done += len;
    }
    return 0;
}

static int mem_read(void *ctx, uint64_t linear, unsigned size, uint64_t *val)
{
    return mem_access(ctx, linear, size, val, false);
}

static int mem_write(void *ctx, uint64_t linear, unsigned size, uint64_t val)
{
    return mem_access(ctx, linear, size, &val, true);
}

void vmm_dbp_access(struct vmm_dbp *d, uint64_t linear, unsigned size, bool read, bool write)
{
    if (!(d->dr7 & X86_DR7_ENABLES))
        return;
    if (!d->have_dr) {
        core_vcpu_get_dr0_3(d->c->h, d->dr);
        d->have_dr = true;
    }
    d->hits |= x86_data_breakpoints(d->dr7, d->dr, linear, size, read, write);
}

static void accessed(void *ctx, uint64_t linear, unsigned size, bool read, bool write)
{
    struct npf_ctx *n = ctx;
    vmm_dbp_access(&n->dbp, linear, size, read, write);
}

/* The guest's page fault: CR2 = the faulting linear address, then #PF. */
static void inject_page_fault(struct vmm_vcpu *c, struct hvm_state *s, uint64_t linear, uint32_t error)
{
    s->cr2 = linear;
    core_vcpu_set_state(c->h, s);
    vmm_inject_exception(c, 14, true, error);
}

enum vmm_action vmm_exit_npf(struct vmm_vcpu *c, const struct hvm_exit *x)
{
    struct hvm_state s;
    core_vcpu_get_state(c->h, &s);
    const char *what = x->npf.fetch ? "instruction fetch" : x->npf.write ? "write" : "read";
    const struct mmio_region *r = mmio_bus_find(&c->vm->mmio, x->npf.gpa);
    vmm_count(&c->vm->mmio_exits, r ? r->base : x->npf.gpa & ~0xfffull);
    if (!r || x->npf.fetch)
        return vmm_vm_stop(c, true, "%s of guest-physical %#lx outside its memory at rip %#lx",
                           what, (unsigned long)x->npf.gpa, (unsigned long)s.rip);
    /* The access was an event delivery's (its IDT, GDT, TSS or stack in device
     * memory), not the instruction's at RIP: emulating that instruction would run it
     * against the device although it never ran, and plinth does not emulate event
     * delivery.  The VM stops, as KVM reports such a delivery as an internal error. */
    if (x->delivering)
        return vmm_vm_stop(c, true, "the delivery of vector %u at rip %#lx made a %s of device memory %#lx "
                           "(an IDT, GDT, TSS or stack there): plinth does not emulate event delivery",
                           x->delivering_vector, (unsigned long)s.rip, what, (unsigned long)x->npf.gpa);

    struct npf_ctx n = { .c = c, .user = ((s.seg[HVM_SS].ar >> 5) & 3) == 3,
                         .dbp = { .c = c, .dr7 = s.dr7 } };
    vmm_guest_paging(&s, &n.paging);
    struct x86_insn insn;
    struct vmm_fetched f;
    int st = vmm_fetch_insn(c, &s, &insn, &f);
    if (f.walk == X86_WALK_PAGE_FAULT && st != X86_OK) {
        /* The instruction's page went away under it (another vCPU changed the page
         * tables): the fetch's own page fault, as the CPU would raise it now. */
        inject_page_fault(c, &s, f.linear + f.got, f.pf_error);
        return VMM_CONTINUE;
    }
    if (st == X86_ERR_TOO_LONG) {
        /* Past 15 bytes: #GP(0) before any access (SDM Vol. 2A §2.3.11), as above. */
        vmm_inject_exception(c, 13, true, 0);
        return VMM_CONTINUE;
    }
    if (st == X86_OK) {
        struct x86_regs regs;
        memcpy(regs.gpr, s.gpr, sizeof regs.gpr);
        regs.rip = s.rip;
        regs.rflags = s.rflags;
        for (int i = 0; i < 6; i++)
            regs.seg_base[i] = s.seg[i].base;
        struct x86_emu_ops ops = {
            .mmio_gpa = x->npf.gpa, .mmio_is_write = x->npf.write,
            .mmio_read = dev_read, .mmio_write = dev_write, .mem_read = mem_read, .mem_write = mem_write,
            .accessed = accessed,
        };
        st = x86_emulate_mmio(&insn, &regs, &ops, &n);
        if (st == X86_ERR_ACCESS && n.pf) {
            /* A REP MOVS keeps the elements done before the faulting one (RCX, RSI,
             * RDI as they were then); the instruction itself does not complete. */
            memcpy(s.gpr, regs.gpr, sizeof s.gpr);
            inject_page_fault(c, &s, n.pf_linear, n.pf_error);
            return VMM_CONTINUE;
        }
        if (st == X86_ERR_LOCK) {
            /* The CPU raises this #UD before any access; an NPF that reached us anyway
             * (an emulator's CPU, or another vCPU rewriting the bytes) gets it now. */
            vmm_inject_exception(c, 6, false, 0);
            return VMM_CONTINUE;
        }
        if (st == X86_OK) {
            uint64_t len = regs.rip - s.rip;
            memcpy(s.gpr, regs.gpr, sizeof s.gpr);
            s.rflags = regs.rflags;
            core_vcpu_set_state(c->h, &s);
            /* Completed (not a REP cut short): past it, with its single-step trap. */
            if (len)
                core_vcpu_skip_insn(c->h, (uint8_t)len);
            if (n.dbp.hits)
                core_vcpu_debug_trap(c->h, n.dbp.hits);
            __atomic_fetch_add(&c->vm->emulated, 1, __ATOMIC_RELAXED);
            return VMM_CONTINUE;
        }
    }
    char hex[3 * X86_MAX_INSN_LEN + 1] = "";
    for (size_t i = 0, o = 0; i < f.got && i < 8; i++)
        o += (size_t)fmt_snprintf(hex + o, sizeof hex - o, "%s%02x", i ? " " : "", f.bytes[i]);
    return vmm_vm_stop(c, true, "cannot emulate the %s of device memory %#lx at rip %#lx (bytes %s; fetch: "
                       "%s): %s", what, (unsigned long)x->npf.gpa, (unsigned long)s.rip, hex,
                       x86_walk_status_name(f.walk), x86_status_name(st));
}
