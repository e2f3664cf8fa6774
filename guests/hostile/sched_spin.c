/* sched_spin: a guest that never exits.  It spins with interrupts off on RDTSC (not
 * intercepted) and no PAUSE, for spin_mi= Mi TSC ticks: nothing it does gives the
 * CPU back.  plinth's time slice (the VMX-preemption timer or the local APIC timer,
 * whose interrupt exits whatever IF says) must take the CPU from it, so the
 * neighbour sharing its CPU prints rounds between this guest's two lines
 * (tests/boot/hostile_sched.py checks that). */
#include "hostile.h"

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic;
    guest_name = "sched_spin";
    uint64_t ticks = (uint64_t)cmdline_number(mbi, "spin_mi", 200) << 20;
    __asm__ volatile("cli");
    gprintf("INFO sched_spin: spinning with interrupts off\n");
    uint64_t t0 = rdtsc();
    while (rdtsc() - t0 < ticks)
        ;
    gprintf("INFO sched_spin: spun %u Mi TSC ticks without an exit\n", (uint32_t)(ticks >> 20));
    pass("sched-spin-survived");
}
