/* sched_exits: a guest that exits as fast as it can: port writes to the POST port
 * 0x80 (each one a round trip through its monitor) and CPUID of the hypervisor leaf
 * (answered in plinth's core), exits= of each, with interrupts off.  Every exit is
 * short, so it is not a time slice's end that stops it: plinth must still end its
 * run at the slice's end (checked on the clock between exits), and the neighbour
 * prints rounds between this guest's two lines (tests/boot/hostile_sched.py). */
#include "hostile.h"

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic;
    guest_name = "sched_exits";
    uint32_t n = cmdline_number(mbi, "exits", 100000);
    __asm__ volatile("cli");
    gprintf("INFO sched_exits: exiting as fast as it can\n");
    uint64_t t0 = rdtsc();
    uint32_t r[4], sig = 0;
    for (uint32_t i = 0; i < n; i++) {
        outb(0x80, (uint8_t)i);
        cpuid(0x40000000u, 0, r);
        sig |= r[1];
    }
    gprintf("INFO sched_exits: %u port writes and %u CPUIDs in %u Mi TSC ticks\n", n, n,
            (uint32_t)((rdtsc() - t0) >> 20));
    check(sig != 0, "sched-exits-survived", "the hypervisor leaf answered with no signature");
}
