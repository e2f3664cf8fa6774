/* msrstate: the MSRs a 64-bit OS programs for SYSCALL and SWAPGS (STAR, LSTAR, CSTAR,
 * SFMASK, KERNEL_GS_BASE; SDM Vol. 4 Table 2-2) and SYSENTER belong to each VM: 0 at
 * start (SDM Vol. 3A Table 10-1), and the values it writes are still there after
 * other VMs ran on its CPU.  Two of these with different seeds on one CPU see each
 * other's values if plinth passes the MSRs through without switching them.
 * Command line: seed=N, rounds=N (default 6). */
#include "guest.h"

static const uint32_t msrs[] = { 0xc0000081u, 0xc0000082u, 0xc0000083u, 0xc0000084u, 0xc0000102u,
                                 0x174, 0x175, 0x176 };
static const char *const names[] = { "STAR", "LSTAR", "CSTAR", "SFMASK", "KERNEL_GS_BASE",
                                     "SYSENTER_CS", "SYSENTER_ESP", "SYSENTER_EIP" };
#define N_MSRS (sizeof msrs / sizeof msrs[0])

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic;
    guest_name = "msrstate";
    uint32_t seed = cmdline_number(mbi, "seed", 1);
    uint32_t rounds = cmdline_number(mbi, "rounds", 6);
    uint64_t v, mine[N_MSRS];

    unsigned nonzero = 0, faulted = 0, first = 0;
    uint64_t first_v = 0;
    for (unsigned i = 0; i < N_MSRS; i++) {
        if (probe_rdmsr(msrs[i], &v) >= 0) {
            faulted++;
            gprintf("INFO msrstate: rdmsr %s (%#x) raised vector %d\n", names[i], msrs[i], probe.vector);
        } else if (v && !nonzero++) {
            first = i;
            first_v = v;
        }
    }
    check(nonzero == 0 && faulted == 0, "msrstate-zero-at-start", "%u not zero (first %s = %#llx), %u faulted",
          nonzero, names[first], first_v, faulted);

    faulted = 0;
    for (unsigned i = 0; i < N_MSRS; i++) {
        /* Canonical, and for STAR valid selectors are not needed: nothing uses them here. */
        mine[i] = (uint64_t)seed << 28 | (uint64_t)(i + 1) << 12;
        if (msrs[i] == 0x174)
            mine[i] = (seed << 4 | (i + 1)) << 3;        /* SYSENTER_CS: a selector */
        if (probe_wrmsr(msrs[i], mine[i]) >= 0) {
            faulted++;
            gprintf("INFO msrstate: wrmsr %s (%#x) raised vector %d\n", names[i], msrs[i], probe.vector);
        }
    }
    check(faulted == 0, "msrstate-writable", "%u of %u writes faulted", faulted, (unsigned)N_MSRS);

    unsigned bad = 0, bad_round = 0, bad_i = 0;
    uint64_t bad_v = 0;
    for (uint32_t r = 1; r <= rounds; r++) {
        for (volatile uint32_t spin = 0; spin < 2000000; spin++)
            ;
        for (unsigned i = 0; i < N_MSRS; i++) {
            if (probe_rdmsr(msrs[i], &v) >= 0 || v != mine[i]) {
                if (!bad++) {
                    bad_round = r;
                    bad_i = i;
                    bad_v = v;
                }
            }
        }
        gprintf("INFO msrstate: round %u of %u\n", r, rounds);
    }
    check(bad == 0, "msrstate-kept", "round %u: %s = %#llx, not %#llx (%u reads wrong)", bad_round, names[bad_i],
          bad_v, mine[bad_i], bad);
}
