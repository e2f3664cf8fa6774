/* sched_rt: timer latency of a vCPU that also computes, beside CPU hogs on one
 * physical CPU.  Each round it works for 2 ms, then sleeps on a 1 ms one-shot APIC
 * timer and measures how late the interrupt arrives.  Having run longer than it
 * slept, it earns no wake-up boost: with priority = normal it waits for the round
 * robin to come back to it past the hogs' time slices (10 ms each); with
 * priority = high it must pre-empt them at once (tests/boot/test_sched.py,
 * `bound_us`). */
#include "irq_smp.h"

#define VEC_ONESHOT 0x50
#define ROUNDS      50u
#define WORK_US     2000u
#define ONESHOT_NS  1000000u

static volatile uint32_t fired;
static volatile uint64_t fired_tsc;

static bool oneshot_hook(struct trap_frame *f)
{
    (void)f;
    fired_tsc = rdtsc();
    fired++;
    apic_write(APIC_EOI, 0);
    return true;
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic;
    guest_name = "sched_rt";
    set_trap_hook(VEC_ONESHOT, oneshot_hook);
    apic_write(APIC_SVR, 0x1ff);
    uint32_t r[4];
    cpuid(0x40000010u, 0, r);
    uint32_t tsc_khz = r[0] ? r[0] : 1000000;
    uint64_t per_us = tsc_khz / 1000 ? tsc_khz / 1000 : 1;
    apic_write(APIC_TIMER_DCR, 0xb);
    uint64_t worst = 0, total = 0;
    unsigned i;
    for (i = 0; i < ROUNDS; i++) {
        spin_tsc(WORK_US * per_us);
        apic_write(APIC_LVT_TIMER, VEC_ONESHOT);
        __asm__ volatile("cli");
        uint64_t t = rdtsc();
        apic_write(APIC_TIMER_ICR, ONESHOT_NS);
        uint32_t want = fired + 1;
        uint64_t t0 = rdtsc();
        while (fired < want && rdtsc() - t0 < WAIT_TICKS)
            __asm__ volatile("sti; hlt; cli" ::: "memory");
        if (fired < want)
            break;
        uint64_t due = t + (uint64_t)(ONESHOT_NS / 1000) * per_us;
        uint64_t late = fired_tsc > due ? fired_tsc - due : 0;
        total += late;
        if (late > worst)
            worst = late;
    }
    uint32_t worst_us = ticks_to_us(worst, tsc_khz), mean_us = ticks_to_us(total, tsc_khz) / ROUNDS;
    gprintf("INFO sched_rt: %u of %u timers arrived, worst %u us late, mean %u us\n", i, ROUNDS, worst_us, mean_us);
    check(i == ROUNDS, "sched-rt-timers-arrive", "timer %u did not arrive", i);
    uint32_t bound_us = cmdline_number(mbi, "bound_us", 0);
    if (bound_us)
        check(worst_us <= bound_us, "sched-rt-bounded", "the latest timer arrived %u us late, more than %u us",
              worst_us, bound_us);
    done();
}
