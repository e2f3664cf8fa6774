/* The bookkeeping the VT-x and AMD-V backends share (hvm_common.h). */
#include "arch/x86_64/hvm_common.h"
#include "arch/x86_64/cpu/cpu.h"
#include "arch/x86_64/cpu/percpu.h"
#include "kernel/log.h"

#define MSR_TSC_AUX 0xc0000103u

static struct hvm_common *loaded[PERCPU_MAX_CPUS];

bool hvm_tsc_aux_supported(void)
{
    /* RDTSCP: CPUID 0x80000001 EDX bit 27; RDPID: leaf 7 ECX bit 22 (SDM Vol. 2A). */
    static int known = -1;
    if (known < 0) {
        bool rdtscp = cpuid(0x80000000u, 0).eax >= 0x80000001u && (cpuid(0x80000001u, 0).edx & (1u << 27));
        bool rdpid = cpuid(0, 0).eax >= 7 && (cpuid(7, 0).ecx & (1u << 22));
        known = rdtscp || rdpid;
    }
    return known;
}

bool hvm_common_init(struct hvm_common *c)
{
    *c = (struct hvm_common){ .cpu = -1 };
    return fpu_state_init(&c->fpu);
}

void hvm_common_free(struct hvm_common *c)
{
    fpu_state_free(&c->fpu);
}

struct hvm_common *hvm_common_loaded(uint32_t cpu)
{
    return cpu < PERCPU_MAX_CPUS ? loaded[cpu] : NULL;
}

static void regs_save(struct hvm_common *c)
{
    read_dr0_3(c->dr);
    if (hvm_tsc_aux_supported())
        c->tsc_aux = rdmsr(MSR_TSC_AUX);
}

static void regs_load(const struct hvm_common *c)
{
    write_dr0_3(c->dr);
    if (hvm_tsc_aux_supported())
        wrmsr(MSR_TSC_AUX, c->tsc_aux);
}

bool hvm_common_switch(struct hvm_common *c, const char *backend, struct hvm_common **prev)
{
    uint32_t cpu = percpu_index();
    *prev = NULL;
    if (c->cpu >= 0 && c->cpu != (int)cpu) {
        log_error("%s: vCPU moved from CPU %d to CPU %u; vCPUs stay on one CPU", backend, c->cpu, cpu);
        return false;
    }
    struct hvm_common *old = loaded[cpu];
    if (old == c)
        return true;
    if (old)
        regs_save(old);
    regs_load(c);
    fpu_switch(old ? &old->fpu : NULL, &c->fpu);
    loaded[cpu] = c;
    c->cpu = (int)cpu;
    *prev = old;
    return true;
}

void hvm_common_forget(struct hvm_common *c)
{
    if (c->cpu >= 0 && loaded[c->cpu] == c)
        loaded[c->cpu] = NULL;
}

void hvm_common_reset(struct hvm_common *c)
{
    fpu_state_reset(&c->fpu);
    for (int i = 0; i < 4; i++)
        c->dr[i] = 0;
    c->tsc_aux = 0;
    c->have_event = false;
    c->reinject = false;
    c->debug_trap = 0;
    if (c->cpu >= 0 && loaded[c->cpu] == c && c->cpu == (int)percpu_index()) {
        regs_load(c);
        fpu_switch(NULL, &c->fpu);
    }
}

void hvm_common_save(struct hvm_common *c, struct hvm_extra *x)
{
    regs_save(c);
    fpu_state_sync(&c->fpu);
    for (int i = 0; i < 4; i++)
        x->dr[i] = c->dr[i];
    x->tsc_aux = c->tsc_aux;
    x->xcr0 = c->fpu.xcr0;
    x->fpu_len = fpu_area_bytes();
    const uint8_t *a = c->fpu.area;
    for (uint32_t i = 0; i < x->fpu_len && i < HVM_FPU_AREA_MAX; i++)
        x->fpu[i] = a[i];
    x->have_event = c->have_event;
    x->event = c->event;
    x->reinject = c->reinject;
    x->reinject_event = c->reinject_event;
    x->reinject_len = c->reinject_len;
    x->debug_trap = c->debug_trap;
}

static bool event_valid(const struct hvm_event *e)
{
    return e->type <= HVM_EVENT_PRIV_SOFT_EXCEPTION && (e->type != HVM_EVENT_EXCEPTION || e->vector < 32) &&
           (!e->has_error || e->type == HVM_EVENT_EXCEPTION);
}

bool hvm_common_load(struct hvm_common *c, const struct hvm_extra *x, const char **why)
{
    if ((x->have_event && !event_valid(&x->event)) || (x->reinject && !event_valid(&x->reinject_event)) ||
        x->reinject_len > 15 || (x->debug_trap & ~(HVM_DR6_BS | HVM_DR6_B0_3))) {
        *why = "a pending event is not one an entry can deliver";
        return false;
    }
    for (int i = 0; i < 4; i++)
        if (!hvm_canonical(x->dr[i])) {
            /* MOV to DR0-DR3 faults on a non-canonical address (SDM Vol. 3A §18.2.1). */
            *why = "a debug address register holds a non-canonical address";
            return false;
        }
    if (x->tsc_aux >> 32) {
        *why = "its TSC_AUX has bits 63:32 set";
        return false;
    }
    if (x->fpu_len > HVM_FPU_AREA_MAX) {
        *why = "its FPU image is too large";
        return false;
    }
    if (!fpu_state_import(&c->fpu, x->fpu, x->fpu_len, x->xcr0, true, why))
        return false;
    for (int i = 0; i < 4; i++)
        c->dr[i] = x->dr[i];
    c->tsc_aux = x->tsc_aux;
    c->have_event = x->have_event;
    c->event = x->event;
    c->reinject = x->reinject;
    c->reinject_event = x->reinject_event;
    c->reinject_len = x->reinject_len;
    c->debug_trap = x->debug_trap;
    regs_load(c);
    return true;
}

void hvm_common_set_tsc_aux(struct hvm_common *c, uint32_t value)
{
    c->tsc_aux = value;
    if (hvm_tsc_aux_supported())
        wrmsr(MSR_TSC_AUX, value);
}

bool hvm_common_queue(struct hvm_common *c, const struct hvm_event *e)
{
    if (c->have_event)
        return false;
    c->event = *e;
    c->have_event = true;
    return true;
}

void hvm_common_interrupted(struct hvm_common *c, const struct hvm_event *e, uint8_t len)
{
    c->reinject = true;
    c->reinject_event = *e;
    c->reinject_len = len;
}

bool hvm_event_is_soft(const struct hvm_event *e)
{
    return e->type == HVM_EVENT_SOFTINT || e->type == HVM_EVENT_SOFT_EXCEPTION ||
           e->type == HVM_EVENT_PRIV_SOFT_EXCEPTION;
}

bool hvm_event_sets_rf(const struct hvm_event *e)
{
    if (e->type != HVM_EVENT_EXCEPTION)
        return false;
    /* Faults: #DE, #BR, #UD, #NM, #TS, #NP, #SS, #GP, #PF, #MF, #AC, #XM, #VE, #CP.  #DB
     * is a trap but for instruction breakpoints, which plinth never injects. */
    static const uint32_t faults = (1u << 0) | (1u << 5) | (1u << 6) | (1u << 7) | (1u << 10) |
                                   (1u << 11) | (1u << 12) | (1u << 13) | (1u << 14) | (1u << 16) |
                                   (1u << 17) | (1u << 19) | (1u << 20) | (1u << 21);
    return e->vector < 32 && (faults & (1u << e->vector));
}

enum hvm_next hvm_common_next(const struct hvm_common *c, bool event_deliverable)
{
    if (c->reinject)
        return HVM_NEXT_REINJECT;
    if (c->debug_trap)
        return HVM_NEXT_DEBUG_TRAP;
    if (!c->have_event)
        return HVM_NEXT_NONE;
    return event_deliverable ? HVM_NEXT_EVENT : HVM_NEXT_WAIT;
}

void hvm_common_event_taken(struct hvm_common *c)
{
    c->have_event = false;
}
