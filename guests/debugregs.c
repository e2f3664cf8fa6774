/* debugregs: a VM's debug registers are its own.  DR0-DR3 must read 0 and DR6 its
 * reset value 0xffff0ff0 at start (SDM Vol. 3A Table 10-1), and the addresses it puts
 * in DR0-DR3 (breakpoints disabled in DR7) must still be there after other VMs ran on
 * its CPU.  Two of these with different seeds on one CPU see each other's values if
 * plinth neither intercepts nor switches DR0-DR3.  CR2 likewise: VM exits and
 * entries do not switch it (SDM Vol. 3C §28.3, §28.5), the hypervisor must.
 * Command line: seed=N, rounds=N (default 6). */
#include "guest.h"

#define READ_DR(n) ({ uint32_t v_; __asm__ volatile("mov %%db" #n ", %0" : "=r"(v_)); v_; })
#define WRITE_DR(n, v) __asm__ volatile("mov %0, %%db" #n : : "r"((uint32_t)(v)))

static void read_all(uint32_t d[5])
{
    d[0] = READ_DR(0);
    d[1] = READ_DR(1);
    d[2] = READ_DR(2);
    d[3] = READ_DR(3);
    d[4] = READ_DR(6);
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic;
    guest_name = "debugregs";
    uint32_t seed = cmdline_number(mbi, "seed", 1);
    uint32_t rounds = cmdline_number(mbi, "rounds", 6);
    uint32_t d[5];

    read_all(d);
    check(d[0] == 0 && d[1] == 0 && d[2] == 0 && d[3] == 0 && (d[4] & 0xffffefffu) == 0xffff0ff0u,
          "debugregs-reset-at-start", "DR0-3 = %#x %#x %#x %#x, DR6 = %#x", d[0], d[1], d[2], d[3], d[4]);

    /* DR7 keeps every breakpoint disabled: the values are only data. */
    uint32_t mine[4];
    for (int i = 0; i < 4; i++)
        mine[i] = 0x10000000u * seed + 0x1000u * (uint32_t)(i + 1);
    WRITE_DR(0, mine[0]);
    WRITE_DR(1, mine[1]);
    WRITE_DR(2, mine[2]);
    WRITE_DR(3, mine[3]);

    uint32_t cr2;
    __asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
    check(cr2 == 0, "cr2-zero-at-start", "CR2 = %#x", cr2);
    uint32_t my_cr2 = 0x0c000000u * seed + 0xc2c2c0u;
    __asm__ volatile("mov %0, %%cr2" : : "r"(my_cr2));
    uint32_t cr2_bad = 0, cr2_seen = 0;

    uint32_t bad = 0, bad_at = 0;
    uint32_t seen[4] = { 0 };
    for (uint32_t r = 1; r <= rounds; r++) {
        for (volatile uint32_t spin = 0; spin < 2000000; spin++)
            ;
        __asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
        if (cr2 != my_cr2 && !cr2_bad++)
            cr2_seen = cr2;
        read_all(d);
        bool ok = d[0] == mine[0] && d[1] == mine[1] && d[2] == mine[2] && d[3] == mine[3];
        if (!ok && !bad++) {
            bad_at = r;
            memcpy(seen, d, sizeof seen);
        }
        gprintf("INFO debugregs: round %u of %u, DR0 = %#x\n", r, rounds, d[0]);
    }
    check(bad == 0, "debugregs-kept", "round %u: DR0-3 = %#x %#x %#x %#x, not %#x %#x %#x %#x (%u of %u rounds)",
          bad_at, seen[0], seen[1], seen[2], seen[3], mine[0], mine[1], mine[2], mine[3], bad, rounds);
    check(cr2_bad == 0, "cr2-kept", "CR2 = %#x, not %#x (%u of %u rounds)", cr2_seen, my_cr2, cr2_bad, rounds);
}
