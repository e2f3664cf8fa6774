/* vCPU objects and the register/event calls of the core API.  A vCPU's backend
 * object is created on the CPU it will run on (a VMCS is tied to the CPU that loads
 * it), so state given before the first run is kept here and applied then. */
#include "kernel/vcpu.h"
#include "kernel/fmt.h"
#include "kernel/vm.h"
#include "kernel/sched.h"
#include "kernel/log.h"
#include "kernel/smp.h"
#include "kernel/string.h"
#include "kernel/time.h"
#include "arch/x86_64/hvm.h"

static struct vcpu vcpus[CORE_MAX_VCPUS];
static struct spinlock vcpus_lock = SPINLOCK_INIT;

struct vcpu *vcpu_get(core_vcpu_t h)
{
    if (h < 0 || h >= CORE_MAX_VCPUS || !vcpus[h].used)
        return NULL;
    return &vcpus[h];
}

core_vcpu_t core_vcpu_create(core_vm_t vm, uint64_t cpu_mask, const struct vmm_vcpu_ops *ops, void *ctx)
{
    if (!vm_get(vm))
        return -1;
    int cpu = sched_choose_cpu(cpu_mask);
    if (cpu < 0) {
        log_error("vcpu: none of the CPUs in mask %#lx is online and able to run guests",
                  (unsigned long)cpu_mask);
        return -1;
    }
    if (!vm_vcpu_hold(vm)) {
        log_error("vcpu: VM %d is being destroyed; it gets no new vCPU", vm);
        return -1;
    }
    uint64_t flags = spin_lock_irqsave(&vcpus_lock);
    core_vcpu_t h = -1;
    for (int i = 0; i < CORE_MAX_VCPUS; i++)
        if (!vcpus[i].used) {
            vcpus[i] = (struct vcpu){ .used = true, .vm = vm, .cpu = (uint32_t)cpu, .ops = ops, .ctx = ctx,
                                      .state = VCPU_BLOCKED, .lock = SPINLOCK_INIT };
            h = i;
            break;
        }
    spin_unlock_irqrestore(&vcpus_lock, flags);
    if (h < 0) {
        log_error("vcpu: more than %d vCPUs in all", CORE_MAX_VCPUS);
        vm_vcpu_release(vm);
        return -1;
    }
    if (sched_add(h, (uint32_t)cpu) != 0) {
        flags = spin_lock_irqsave(&vcpus_lock);
        vcpus[h].used = false;
        spin_unlock_irqrestore(&vcpus_lock, flags);
        vm_vcpu_release(vm);
        return -1;
    }
    return h;
}

void core_vcpu_destroy(core_vcpu_t h)
{
    struct vcpu *v = vcpu_get(h);
    if (!v || v->destroying)
        return;
    uint64_t flags = spin_lock_irqsave(&v->lock);
    v->state = VCPU_STOPPED;
    v->destroying = true;
    spin_unlock_irqrestore(&v->lock, flags);
    /* Its CPU may be running it right now (another vCPU of the VM, or another CPU,
     * destroyed it): only that CPU, back in its scheduler, can free it. */
    sched_reap(v->cpu);
}

void vcpu_free(core_vcpu_t h)
{
    struct vcpu *v = vcpu_get(h);
    if (!v)
        return;
    if (v->hw)
        hvm_backend()->vcpu_destroy(v->hw);
    core_vm_t vm = v->vm;
    uint64_t flags = spin_lock_irqsave(&vcpus_lock);
    *v = (struct vcpu){ 0 };
    spin_unlock_irqrestore(&vcpus_lock, flags);
    vm_vcpu_release(vm);
}

void core_vcpu_kick(core_vcpu_t h)
{
    struct vcpu *v = vcpu_get(h);
    if (!v)
        return;
    uint64_t flags = spin_lock_irqsave(&v->lock);
    v->started = true;
    bool woke = v->state == VCPU_BLOCKED;
    if (woke) {
        v->state = VCPU_RUNNABLE;
        vcpu_woken(v, time_since_boot_ns());
    }
    else if (v->state == VCPU_RUNNABLE)
        v->wake_pending = true;
    spin_unlock_irqrestore(&v->lock, flags);
    /* A vCPU that was blocked is new work for its CPU's scheduler, even this CPU's
     * (sched_woken); a running one (a self-IPI) only needs pre_entry to look again. */
    if (woke)
        sched_woken(v->cpu);
    else
        sched_poke(v->cpu);
}

void core_vcpu_set_deadline(core_vcpu_t h, uint64_t deadline_ns)
{
    struct vcpu *v = vcpu_get(h);
    if (!v)
        return;
    __atomic_store_n(&v->deadline, deadline_ns, __ATOMIC_RELEASE);
    /* Its CPU may be idle with a later wake-up armed: make it look again. */
    if (v->cpu != this_cpu()->index)
        sched_poke(v->cpu);
}

void core_vcpu_stop(core_vcpu_t h)
{
    struct vcpu *v = vcpu_get(h);
    if (!v)
        return;
    uint64_t flags = spin_lock_irqsave(&v->lock);
    v->state = VCPU_STOPPED;
    spin_unlock_irqrestore(&v->lock, flags);
    sched_poke(v->cpu);
}

int core_vcpu_revive(core_vcpu_t h)
{
    struct vcpu *v = vcpu_get(h);
    if (!v || v->destroying)
        return -1;
    uint64_t flags = spin_lock_irqsave(&v->lock);
    int rc = 0;
    if (__atomic_load_n(&v->in_run, __ATOMIC_ACQUIRE))
        rc = -1;
    else if (v->state == VCPU_STOPPED) {
        v->state = VCPU_BLOCKED;
        v->wake_pending = false;
        v->deadline = 0;
        v->blocked_at = time_since_boot_ns();
    }
    spin_unlock_irqrestore(&v->lock, flags);
    return rc;
}

void core_vcpu_block(core_vcpu_t h)
{
    struct vcpu *v = vcpu_get(h);
    /* Only its own CPU reads it, right after pre_entry returns (sched.c run_vcpu). */
    if (v)
        v->block_requested = true;
}

bool core_vcpu_stopped(core_vcpu_t h)
{
    struct vcpu *v = vcpu_get(h);
    return !v || v->state == VCPU_STOPPED;
}

unsigned core_vcpu_cpu(core_vcpu_t h)
{
    struct vcpu *v = vcpu_get(h);
    return v ? v->cpu : 0;
}

void core_vcpu_exit_counts(core_vcpu_t h, uint64_t counts[HVM_EXIT_REASON_COUNT])
{
    struct vcpu *v = vcpu_get(h);
    for (int i = 0; i < HVM_EXIT_REASON_COUNT; i++)
        counts[i] = v ? v->exits[i] : 0;
}

void core_vcpu_get_state(core_vcpu_t h, struct hvm_state *s)
{
    struct vcpu *v = vcpu_get(h);
    if (!v) {
        memset(s, 0, sizeof *s);
        return;
    }
    if (v->hw)
        hvm_backend()->get_state(v->hw, s);
    else
        *s = v->initial;
}

void core_vcpu_set_state(core_vcpu_t h, const struct hvm_state *s)
{
    struct vcpu *v = vcpu_get(h);
    if (!v)
        return;
    if (v->hw) {
        hvm_backend()->set_state(v->hw, s);
    } else {
        v->initial = *s;
        v->have_initial = true;
    }
}

uint64_t core_vcpu_get_gpr(core_vcpu_t h, enum hvm_gpr r)
{
    struct vcpu *v = vcpu_get(h);
    if (!v || (unsigned)r >= HVM_GPR_COUNT)
        return 0;
    return v->hw ? hvm_backend()->get_gpr(v->hw, r) : v->initial.gpr[r];
}

void core_vcpu_set_gpr(core_vcpu_t h, enum hvm_gpr r, uint64_t value)
{
    struct vcpu *v = vcpu_get(h);
    if (!v || (unsigned)r >= HVM_GPR_COUNT)
        return;
    if (v->hw)
        hvm_backend()->set_gpr(v->hw, r, value);
    else
        v->initial.gpr[r] = value;
}

uint64_t core_vcpu_get_rip(core_vcpu_t h)
{
    struct vcpu *v = vcpu_get(h);
    if (!v)
        return 0;
    return v->hw ? hvm_backend()->get_rip(v->hw) : v->initial.rip;
}

uint64_t core_vcpu_get_cr4(core_vcpu_t h)
{
    struct vcpu *v = vcpu_get(h);
    if (!v)
        return 0;
    return v->hw ? hvm_backend()->get_cr4(v->hw) : v->initial.cr4;
}

void core_vcpu_finish_cpuid(core_vcpu_t h, const uint32_t r[4], uint8_t len)
{
    struct vcpu *v = vcpu_get(h);
    if (!v || !v->hw)
        return;
    hvm_backend()->finish_cpuid(v->hw, r, len);
}

void core_vcpu_cache_cpuid(core_vcpu_t h, uint32_t leaf, uint32_t subleaf, const uint32_t r[4])
{
    struct vcpu *v = vcpu_get(h);
    if (!v)
        return;
    struct vcpu_cpuid *e = vcpu_cpuid_slot(v, leaf, subleaf);
    *e = (struct vcpu_cpuid){ .valid = true, .leaf = leaf, .subleaf = subleaf,
                              .r = { r[0], r[1], r[2], r[3] } };
}

void core_vcpu_skip_insn(core_vcpu_t h, uint8_t len)
{
    struct vcpu *v = vcpu_get(h);
    if (v && v->hw)
        hvm_backend()->skip_insn(v->hw, len);
}

void core_vcpu_debug_trap(core_vcpu_t h, uint32_t dr6_bits)
{
    struct vcpu *v = vcpu_get(h);
    if (v && v->hw)
        hvm_backend()->debug_trap(v->hw, dr6_bits);
}

void core_vcpu_get_dr0_3(core_vcpu_t h, uint64_t dr[4])
{
    struct vcpu *v = vcpu_get(h);
    if (v && v->hw) {
        hvm_backend()->get_dr0_3(v->hw, dr);
        return;
    }
    dr[0] = dr[1] = dr[2] = dr[3] = 0;
}

void core_vcpu_set_pdptes(core_vcpu_t h, const uint64_t pdpte[4])
{
    struct vcpu *v = vcpu_get(h);
    if (v && v->hw)
        hvm_backend()->set_pdptes(v->hw, pdpte);
}

bool core_vcpu_inject(core_vcpu_t h, const struct hvm_event *e)
{
    struct vcpu *v = vcpu_get(h);
    /* What a monitor asks for is checked here, where it could become a system call:
     * a known event type, exceptions only on the 32 exception vectors. */
    if ((unsigned)e->type > HVM_EVENT_SOFTINT || (e->type == HVM_EVENT_EXCEPTION && e->vector >= 32))
        return false;
    return v && v->hw && hvm_backend()->inject(v->hw, e);
}

bool core_vcpu_can_inject(core_vcpu_t h, enum hvm_event_type t)
{
    struct vcpu *v = vcpu_get(h);
    return v && v->hw && hvm_backend()->can_inject(v->hw, t);
}

void core_vcpu_request_window(core_vcpu_t h, unsigned windows)
{
    struct vcpu *v = vcpu_get(h);
    if (v && v->hw)
        hvm_backend()->request_window(v->hw, windows);
}

void core_vcpu_set_tsc_offset(core_vcpu_t h, int64_t offset)
{
    struct vcpu *v = vcpu_get(h);
    if (!v)
        return;
    v->tsc_offset = offset;
    if (v->hw)
        hvm_backend()->set_tsc_offset(v->hw, offset);
}

void core_vcpu_save_extra(core_vcpu_t h, struct hvm_extra *x)
{
    struct vcpu *v = vcpu_get(h);
    if (v && v->hw)
        hvm_backend()->save_extra(v->hw, x);
    else
        memset(x, 0, sizeof *x);
}

int core_vcpu_load_extra(core_vcpu_t h, const struct hvm_extra *x, char *why, size_t len)
{
    struct vcpu *v = vcpu_get(h);
    const char *reason = "the vCPU has not run yet";
    if (v && v->hw && hvm_backend()->load_extra(v->hw, x, &reason))
        return 0;
    fmt_snprintf(why, len, "%s", reason);
    return -1;
}

void core_vcpu_dump(core_vcpu_t h)
{
    struct vcpu *v = vcpu_get(h);
    if (v && v->hw)
        hvm_backend()->dump(v->hw);
}

bool core_vcpu_set_xcr0(core_vcpu_t h, uint64_t xcr0)
{
    struct vcpu *v = vcpu_get(h);
    return v && v->hw && hvm_backend()->set_xcr0(v->hw, xcr0);
}

void core_vcpu_reset_private(core_vcpu_t h)
{
    struct vcpu *v = vcpu_get(h);
    /* Before its first run the backend state is fresh: nothing to reset. */
    if (v && v->hw)
        hvm_backend()->reset_private(v->hw);
}

void core_vcpu_set_tsc_aux(core_vcpu_t h, uint32_t value)
{
    struct vcpu *v = vcpu_get(h);
    if (v && v->hw)
        hvm_backend()->set_tsc_aux(v->hw, value);
}

unsigned vcpu_of_vm(core_vm_t vm, core_vcpu_t *out, unsigned max)
{
    unsigned n = 0;
    for (int i = 0; i < CORE_MAX_VCPUS && n < max; i++)
        if (vcpus[i].used && !vcpus[i].destroying && vcpus[i].vm == vm)
            out[n++] = i;
    return n;
}

uint64_t vcpu_total_exits(const struct vcpu *v)
{
    uint64_t t = 0;
    for (int r = 0; r < HVM_EXIT_REASON_COUNT; r++)
        t += v->exits[r];
    return t;
}

void vcpu_sample(void)
{
    /* Read while the vCPUs run on other CPUs: each counter is one aligned 64-bit
     * word, so a read sees an old or a new value, and a second's figure is off by
     * at most what one run adds. */
    for (int i = 0; i < CORE_MAX_VCPUS; i++) {
        struct vcpu *v = &vcpus[i];
        if (!v->used)
            continue;
        uint64_t ns = __atomic_load_n(&v->cpu_ns, __ATOMIC_RELAXED);
        uint64_t ex = vcpu_total_exits(v);
        v->sec_cpu_ns = ns - v->sample_cpu_ns;
        v->sec_exits = ex - v->sample_exits;
        v->sample_cpu_ns = ns;
        v->sample_exits = ex;
    }
}
