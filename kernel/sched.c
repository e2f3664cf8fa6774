#include "kernel/sched.h"
#include "kernel/vcpu.h"
#include "kernel/vm.h"
#include "kernel/log.h"
#include "kernel/boot.h"
#include "kernel/cmdline.h"
#include "kernel/string.h"
#include "kernel/time.h"
#include "kernel/smp.h"
#include "arch/x86_64/hvm.h"
#include "arch/x86_64/cpu/cpu.h"
#include "arch/x86_64/cpu/trap.h"
#include "arch/x86_64/apic/lapic.h"
#include "arch/x86_64/apic/lapic_timer.h"

/* The IPI that wakes a halted CPU or pulls it out of a guest so that it looks at
 * its run queue again. */
#define SCHED_KICK_VECTOR 0xf0

enum cpu_guest_state { CPU_UNKNOWN, CPU_READY, CPU_UNABLE };

struct runq {
    struct spinlock lock;
    core_vcpu_t list[CORE_MAX_VCPUS];
    unsigned count;
    unsigned next;                  /* round-robin position, for ties */
    uint64_t vclock;                /* the least virtual run time of the last vCPU chosen */
    volatile enum cpu_guest_state guest_state;
    /* A vCPU of this CPU became runnable from blocked (a kick from this CPU or
     * another: an IPI, an interrupt its monitor routed, a start): the running vCPU's
     * run ends at its next exit and so does its slice, so that pick() sees the new
     * one even when no slice was armed. */
    bool resched;
    /* A vCPU of this CPU was destroyed: free it at the scheduler's next turn. */
    bool reap;
};

static struct runq runqs[SMP_MAX_CPUS];
/* The boot CPU's core service (the console's input and the shell, kernel/vmcon.c):
 * run between vCPU runs, it says when it wants to run next. */
static uint64_t (*service_fn)(uint64_t now);
/* Time slices from the local APIC timer rather than the VMX-preemption timer: forced
 * by plinth.slice=apic, and the only way where the CPU has no preemption timer. */
static bool apic_slices;

static void sched_kick_handler(struct trap_frame *tf)
{
    (void)tf;
    lapic_eoi();
}

/* Turns on VMX/SVM operation on this CPU; vCPUs go only to CPUs where that worked. */
static void enable_this_cpu(void)
{
    uint32_t cpu = this_cpu()->index;
    const struct hvm_backend *be = hvm_backend();
    runqs[cpu].guest_state = be && be->cpu_enable() == 0 ? CPU_READY : CPU_UNABLE;
}

void sched_init(void)
{
    for (int i = 0; i < SMP_MAX_CPUS; i++)
        runqs[i].lock = (struct spinlock)SPINLOCK_INIT;
    trap_register(SCHED_KICK_VECTOR, sched_kick_handler);
    /* The slice timer's interrupt only needs to make the guest exit. */
    trap_register(LAPIC_TIMER_VECTOR, sched_kick_handler);
    char opt[16];
    bool forced = cmdline_option(boot_bootinfo()->cmdline, "plinth.slice", opt, sizeof opt) &&
                  !strcmp(opt, "apic");
    apic_slices = forced || !hvm_detect()->caps.preemption_timer;
    log_info("sched: time slices of %llu ms from the %s", SCHED_SLICE_NS / 1000000,
             apic_slices ? (forced ? "local APIC timer (plinth.slice=apic)" : "local APIC timer")
                         : "VMX-preemption timer");
    enable_this_cpu();
}

int sched_choose_cpu(uint64_t mask)
{
    int best = -1;
    unsigned best_load = ~0u;
    for (uint32_t i = 0; i < SMP_MAX_CPUS && i < 64; i++) {
        if (!(mask & (1ull << i)) || !smp_cpu(i) || !smp_cpu(i)->online)
            continue;
        /* An AP enables its backend as soon as it is online; give it a moment. */
        for (int spin = 0; spin < 1000000 && runqs[i].guest_state == CPU_UNKNOWN; spin++)
            cpu_relax();
        if (runqs[i].guest_state != CPU_READY)
            continue;
        if (runqs[i].count < best_load) {
            best_load = runqs[i].count;
            best = (int)i;
        }
    }
    return best;
}

int sched_add(core_vcpu_t v, uint32_t cpu)
{
    struct runq *q = &runqs[cpu];
    uint64_t flags = spin_lock_irqsave(&q->lock);
    int rc = -1;
    if (q->count < CORE_MAX_VCPUS) {
        q->list[q->count++] = v;
        rc = 0;
    }
    spin_unlock_irqrestore(&q->lock, flags);
    return rc;
}

void sched_set_service(uint64_t (*fn)(uint64_t now))
{
    service_fn = fn;
}

void sched_reap(uint32_t cpu)
{
    __atomic_store_n(&runqs[cpu].reap, true, __ATOMIC_RELEASE);
    sched_woken(cpu);
}

/* Takes the destroyed vCPUs off this CPU's run queue and frees them.  Here, between
 * runs, none of them is in a guest or in a monitor's handler on this CPU. */
static void reap(struct runq *q)
{
    if (!__atomic_exchange_n(&q->reap, false, __ATOMIC_ACQ_REL))
        return;
    for (;;) {
        core_vcpu_t h = -1;
        uint64_t flags = spin_lock_irqsave(&q->lock);
        for (unsigned i = 0; i < q->count; i++) {
            struct vcpu *v = vcpu_get(q->list[i]);
            if (v && v->destroying) {
                h = q->list[i];
                q->list[i] = q->list[--q->count];
                break;
            }
        }
        spin_unlock_irqrestore(&q->lock, flags);
        if (h < 0)
            return;
        vcpu_free(h);
    }
}

void sched_poke(uint32_t cpu)
{
    if (cpu != this_cpu()->index)
        smp_send_ipi(cpu, SCHED_KICK_VECTOR);
}

void sched_woken(uint32_t cpu)
{
    __atomic_store_n(&runqs[cpu].resched, true, __ATOMIC_RELEASE);
    if (cpu != this_cpu()->index)
        smp_send_ipi(cpu, SCHED_KICK_VECTOR);
}

/* Blocked vCPUs whose deadline has come become runnable; whether v did. */
static bool wake_due(struct vcpu *v, uint64_t now)
{
    uint64_t d = __atomic_load_n(&v->deadline, __ATOMIC_ACQUIRE);
    if (!d || d > now || v->state != VCPU_BLOCKED)
        return false;
    bool woke = false;
    uint64_t flags = spin_lock_irqsave(&v->lock);
    if (v->state == VCPU_BLOCKED && v->started) {
        v->state = VCPU_RUNNABLE;
        vcpu_woken(v, now);
        woke = true;
    }
    spin_unlock_irqrestore(&v->lock, flags);
    return woke;
}

/* A capped vCPU's budget period ([vm] cpu_cap: that percentage of each period). */
#define SCHED_CAP_PERIOD_NS 100000000ull

static unsigned weight_of(const struct vm *vm)
{
    return vm && vm->weight ? vm->weight : CORE_WEIGHT_DEFAULT;
}

/* A capped vCPU's CPU time left in its period (rolling the period on when it is
 * over: what it overran the last budget by is owed); UINT64_MAX when uncapped. */
static uint64_t cap_left(struct vcpu *v, const struct vm *vm, uint64_t now)
{
    if (!vm || !vm->cap_pct)
        return UINT64_MAX;
    uint64_t budget = SCHED_CAP_PERIOD_NS / 100 * vm->cap_pct;
    if (now - v->cap_start >= SCHED_CAP_PERIOD_NS) {
        uint64_t periods = (now - v->cap_start) / SCHED_CAP_PERIOD_NS;
        v->cap_start += periods * SCHED_CAP_PERIOD_NS;
        uint64_t paid = periods * budget;
        v->cap_used = v->cap_used > paid ? v->cap_used - paid : 0;
    }
    return v->cap_used < budget ? budget - v->cap_used : 0;
}

/* The vCPU to run next, how many may run, and the earliest time this CPU must look
 * again (UINT64_MAX: none): a blocked vCPU's deadline, or the end of a capped
 * vCPU's period.  Among the vCPUs that may run (runnable, their VM not paused, a
 * capped one within its budget), priority = high ones come first; within a class,
 * keep (or -1), the vCPU whose slice is not over, goes on unless a deadline just
 * woke another (whose timer interrupt is due now); else a boosted vCPU (woken from
 * blocked after sleeping at least as long as it last ran: one that waits for
 * interrupts, not a CPU hog napping) runs first; else the one with the least
 * virtual run time, which grows by the time run scaled by 100 / cpu_weight, so
 * that CPU time goes in proportion to the weights (ties, and vCPUs all of one
 * weight: the next after the last one chosen, a round robin).  Without the boost a vCPU's timer interrupt waited
 * behind every busy sibling's slice. */
static core_vcpu_t pick(struct runq *q, core_vcpu_t keep, unsigned *runnable, uint64_t *earliest)
{
    core_vcpu_t best[2] = { -1, -1 }, boosted[2] = { -1, -1 }, first[2] = { -1, -1 };
    unsigned best_at[2] = { 0, 0 }, first_at[2] = { 0, 0 }, weight[2] = { 0, 0 };
    bool mixed[2] = { false, false };
    bool kept = false, woke = false, keep_high = false;
    *runnable = 0;
    *earliest = UINT64_MAX;
    uint64_t now = time_since_boot_ns();
    uint64_t flags = spin_lock_irqsave(&q->lock);
    for (unsigned n = 0; n < q->count; n++) {
        unsigned i = (q->next + n) % q->count;
        struct vcpu *v = vcpu_get(q->list[i]);
        if (!v || v->destroying || vm_paused(v->vm))
            continue;
        woke |= wake_due(v, now);
        uint64_t d = __atomic_load_n(&v->deadline, __ATOMIC_ACQUIRE);
        /* Only a blocked vCPU's deadline (its timer while it sleeps) ends another's
         * slice early: a runnable one takes its timer at its own next entry, and
         * counting it would cut every slice to SCHED_MIN_RUN_NS once it has passed. */
        if (d && v->state == VCPU_BLOCKED && d < *earliest)
            *earliest = d;
        if (v->state != VCPU_RUNNABLE)
            continue;
        const struct vm *vm = vm_get(v->vm);
        if (!cap_left(v, vm, now)) {
            uint64_t again = v->cap_start + SCHED_CAP_PERIOD_NS;
            if (again < *earliest)
                *earliest = again;
            continue;
        }
        (*runnable)++;
        /* A vCPU that slept keeps at most one slice of credit over the others, so
         * that waking it does not hand it the CPU for as long as it slept. */
        if (v->vruntime + SCHED_SLICE_NS < q->vclock)
            v->vruntime = q->vclock - SCHED_SLICE_NS;
        int c = vm && vm->high ? 1 : 0;
        if (q->list[i] == keep) {
            kept = true;
            keep_high = c;
        }
        if (boosted[c] < 0 && v->boost)
            boosted[c] = q->list[i];
        unsigned w = weight_of(vm);
        if (!weight[c])
            weight[c] = w;
        else if (weight[c] != w)
            mixed[c] = true;
        if (best[c] < 0)
            first[c] = q->list[i], first_at[c] = i;
        if (best[c] < 0 || v->vruntime < vcpu_get(best[c])->vruntime) {
            best[c] = q->list[i];
            best_at[c] = i;
        }
    }
    /* All of one weight: a plain round robin, as before weights existed.  (Bochs
     * 2.7 leaks one guest's virtual-NMI blocking into the next guest it enters,
     * so the order vCPUs share a CPU in decides whether a guest's NMIs get through
     * there; the hostile irq group's order is the round robin's.) */
    for (int k = 0; k < 2; k++)
        if (!mixed[k] && first[k] >= 0) {
            best[k] = first[k];
            best_at[k] = first_at[k];
        }
    int c = best[1] >= 0 ? 1 : 0;
    core_vcpu_t chosen = best[c];
    if (kept && !woke && keep_high == c) {
        chosen = keep;
    } else if (boosted[c] >= 0) {
        chosen = boosted[c];
        vcpu_get(chosen)->boost = false;
    } else if (chosen >= 0) {
        q->next = (best_at[c] + 1) % q->count;
    }
    if (chosen >= 0 && vcpu_get(chosen)->vruntime > q->vclock)
        q->vclock = vcpu_get(chosen)->vruntime;
    spin_unlock_irqrestore(&q->lock, flags);
    return chosen;
}

static bool create_hw(struct vcpu *v)
{
    const struct hvm_backend *be = hvm_backend();
    v->hw = be->vcpu_create(&vm_get(v->vm)->nested);
    if (!v->hw) {
        v->hw_failed = true;
        return false;
    }
    if (v->have_initial)
        be->set_state(v->hw, &v->initial);
    be->set_tsc_offset(v->hw, v->tsc_offset);
    return true;
}

static void set_state_after_exit(struct vcpu *v, enum vmm_action a)
{
    uint64_t flags = spin_lock_irqsave(&v->lock);
    if (a == VMM_STOP)
        v->state = VCPU_STOPPED;
    else if (a == VMM_BLOCK && v->state == VCPU_RUNNABLE) {
        if (v->wake_pending) {
            v->wake_pending = false; /* a kick came while it ran: do not sleep */
        } else {
            v->state = VCPU_BLOCKED;
            v->blocked_at = time_since_boot_ns();
        }
    }
    spin_unlock_irqrestore(&v->lock, flags);
}

/* Runs one vCPU until it blocks, stops, its slice ends or a host interrupt wants
 * the scheduler. */
static void run_vcpu(core_vcpu_t h, uint64_t slice_ns)
{
    struct vcpu *v = vcpu_get(h);
    const struct hvm_backend *be = hvm_backend();
    if (!v->hw && !v->hw_failed && !create_hw(v)) {
        struct hvm_exit x = { .reason = HVM_EXIT_ENTRY_FAILED };
        set_state_after_exit(v, v->ops->exit(v->ctx, h, &x));
        set_state_after_exit(v, VMM_STOP);
        return;
    }
    /* The run ends at the slice's end or the vCPU's own deadline (its virtual timer,
     * which the monitor may set during the run), whichever comes first; recomputed
     * before every entry.  Without a VMX-preemption timer the limit is the local APIC
     * timer's: its interrupt makes the guest exit like any host interrupt. */
    uint64_t slice_end = slice_ns ? time_since_boot_ns() + slice_ns : UINT64_MAX;
    bool apic_armed = false;
    bool resume = false;           /* the last exit was answered with VMM_RESUME */
    bool entered = false;
    for (;;) {
        if (v->state != VCPU_RUNNABLE)
            break;
        /* The slice ends here too, not only at a preemption-timer exit: a guest that
         * exits more often than SCHED_MIN_RUN_NS never lets that timer expire, and
         * would keep the CPU from every other vCPU on it. */
        if (entered && slice_ns && time_since_boot_ns() >= slice_end)
            break;
        /* Another vCPU here became runnable meanwhile: with one runnable, no slice
         * was armed, and this one may spin until it runs (an IPI sender waiting
         * for the answer with interrupts off). */
        if (entered && __atomic_load_n(&runqs[v->cpu].resched, __ATOMIC_ACQUIRE))
            break;   /* left set: the scheduler's loop takes it and ends the slice */
        bool kicked = v->wake_pending;
        v->wake_pending = false;
        uint64_t now = time_since_boot_ns();
        uint64_t d = __atomic_load_n(&v->deadline, __ATOMIC_ACQUIRE);
        /* After VMM_RESUME nothing pre_entry acts on has changed, except what a kick
         * (an interrupt sent from elsewhere) or the deadline (a timer) says. */
        if (!resume || kicked || (d && d <= now)) {
            v->ops->pre_entry(v->ctx, h);
            if (v->block_requested) {
                /* The monitor holds the vCPU back (core_vcpu_block): block it, unless
                 * a kick came meanwhile; then pre_entry looks again. */
                v->block_requested = false;
                set_state_after_exit(v, VMM_BLOCK);
                if (v->state != VCPU_RUNNABLE || smp_stopping())
                    goto out;
                resume = false;
                continue;
            }
            now = time_since_boot_ns();
            d = __atomic_load_n(&v->deadline, __ATOMIC_ACQUIRE);
        }
        resume = false;
        uint64_t end = slice_end;
        if (d && d < end)
            end = d;
        uint64_t limit = end == UINT64_MAX ? 0 : end > now + SCHED_MIN_RUN_NS ? end - now : SCHED_MIN_RUN_NS;
        if (apic_slices) {
            if (limit)
                lapic_timer_oneshot(limit);
            else if (apic_armed)
                lapic_timer_cancel();
            apic_armed = limit != 0;
        }
        struct hvm_exit x;
        /* Capped at 1 s, so that ns * kHz cannot overflow whatever deadline a guest sets. */
        uint64_t limit_tsc = apic_slices || !limit ? 0
                           : (limit > 1000000000ull ? 1000000000ull : limit) * time_tsc_khz() / 1000000;
        be->vcpu_run(v->hw, limit_tsc ? limit_tsc : limit ? 1 : 0, &x);
        entered = true;
        /* Whatever the exit, an interrupted INTn/INT3/INTO goes in again at the next
         * entry past its instruction, whose length only the monitor can decode. */
        if (x.needs_event_len)
            be->set_event_len(v->hw, v->ops->event_insn_len(v->ctx, h));
        v->exits[x.reason < HVM_EXIT_REASON_COUNT ? x.reason : HVM_EXIT_UNHANDLED]++;
        switch (x.reason) {
        case HVM_EXIT_NONE:
            continue;
        case HVM_EXIT_INTERRUPT:
            /* Let the host take the interrupt that caused the exit, then look at the
             * run queue again: the interrupt may have made others runnable. */
            __asm__ volatile("sti; nop; cli" ::: "memory");
            goto out;
        case HVM_EXIT_PREEMPT:
            goto out;
        case HVM_EXIT_CPUID: {
            /* A leaf the monitor left with the core: answered here, and nothing
             * pre_entry acts on has changed (VMM_RESUME). */
            const uint32_t *r = vcpu_cpuid_cached(v, &x);
            if (r) {
                be->finish_cpuid(v->hw, r, x.insn_len);
                resume = true;
                if (smp_stopping())
                    goto out;
                continue;
            }
        }
            /* fall through */
        default: {
            enum vmm_action a = v->ops->exit(v->ctx, h, &x);
            if (a != VMM_CONTINUE && a != VMM_RESUME) {
                set_state_after_exit(v, a);
                goto out;
            }
            resume = a == VMM_RESUME;
            if (smp_stopping())
                goto out;
        }
        }
    }
out:
    if (apic_armed)
        lapic_timer_cancel();
}

void sched_run_cpu(void)
{
    cli();
    uint32_t cpu = this_cpu()->index;
    if (runqs[cpu].guest_state == CPU_UNKNOWN)
        enable_this_cpu();
    struct runq *q = &runqs[cpu];
    /* The vCPU whose slice is under way and when it ends (UINT64_MAX: it was alone).
     * A run that returns for anything but its slice's end, a block or a stop (a host
     * interrupt, the vCPU's own timer deadline) goes on with what is left of the
     * slice: ending it there would hand the CPU to the next vCPU at every timer
     * interrupt a guest takes, and a guest whose timer runs fast would get one
     * interrupt per round of all the vCPUs here. */
    core_vcpu_t cur = -1;
    uint64_t cur_end = 0;
    for (;;) {
        unsigned runnable;
        uint64_t earliest = UINT64_MAX;
        /* pick() sees every vCPU made runnable before this point; a vCPU woken from
         * blocked (sched_woken) ends the slice under way, as before the run. */
        uint64_t service_due = UINT64_MAX;
        if (cpu == 0 && service_fn)
            service_due = service_fn(time_since_boot_ns());
        bool woken = __atomic_exchange_n(&q->resched, false, __ATOMIC_ACQ_REL);
        reap(q);
        uint64_t now = time_since_boot_ns();
        core_vcpu_t keep = !woken && cur >= 0 && now < cur_end ? cur : -1;
        core_vcpu_t h = smp_stopping() ? -1 : pick(q, keep, &runnable, &earliest);
        if (service_due < earliest)
            earliest = service_due;
        if (h < 0) {
            /* Sleep until a kick, or the earliest deadline of a blocked vCPU (the
             * local APIC timer: the host takes it with interrupts on, in hlt). */
            if (earliest != UINT64_MAX)
                lapic_timer_oneshot(earliest > now ? earliest - now : 1);
            /* sti;hlt is atomic against interrupts: a kick between the check and
             * the halt still wakes us. */
            __asm__ volatile("sti; hlt; cli" ::: "memory");
            if (earliest != UINT64_MAX)
                lapic_timer_cancel();
            cur = -1;
            continue;
        }
        uint64_t slice;
        if (h == keep) {
            slice = cur_end == UINT64_MAX ? (runnable > 1 ? SCHED_SLICE_NS : 0) : cur_end - now;
            if (cur_end == UINT64_MAX && slice)
                cur_end = now + slice;   /* another became runnable: a slice starts */
        } else {
            slice = runnable > 1 ? SCHED_SLICE_NS : 0;
            cur = h;
            cur_end = slice ? now + slice : UINT64_MAX;
        }
        /* A deadline (this vCPU's timer, or a blocked one's) ends the slice early. */
        if (earliest != UINT64_MAX) {
            uint64_t until = earliest > now + SCHED_MIN_RUN_NS ? earliest - now : SCHED_MIN_RUN_NS;
            if (!slice || until < slice)
                slice = until;
        }
        struct vcpu *v = vcpu_get(h);
        const struct vm *vm = vm_get(v->vm);
        /* A capped vCPU runs no longer than its budget has left, even alone. */
        uint64_t left = cap_left(v, vm, now);
        if (left != UINT64_MAX) {
            if (left < SCHED_MIN_RUN_NS)
                left = SCHED_MIN_RUN_NS;
            if (!slice || left < slice)
                slice = left;
        }
        __atomic_store_n(&v->in_run, true, __ATOMIC_SEQ_CST);
        run_vcpu(h, slice);
        __atomic_store_n(&v->in_run, false, __ATOMIC_SEQ_CST);
        if (v) {
            uint64_t ran = time_since_boot_ns() - now;
            v->ran_ns += ran;
            v->cap_used += ran;
            v->vruntime += ran * CORE_WEIGHT_DEFAULT / weight_of(vm);
            __atomic_store_n(&v->cpu_ns, v->cpu_ns + ran, __ATOMIC_RELAXED);
        }
    }
}
