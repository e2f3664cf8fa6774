/* neighbour: the well-behaved VM beside the hostile ones.  It fills part of its RAM
 * (1 MiB of it) with a pattern, then for every round checks the whole of it against the checksum
 * taken at the start and prints its progress, so that a boot test sees both that it
 * kept running while each attack happened and that nothing reached its memory.
 * Command line: rounds=N (default 40), spin=N (TSC ticks between rounds, default
 * 20000000). */
#include "hostile.h"

static uint32_t sum(volatile const uint32_t *p, uint32_t n)
{
    uint32_t s = 0x12345678;
    for (uint32_t i = 0; i < n; i++)
        s = (s << 5 | s >> 27) ^ p[i];
    return s;
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic;
    guest_name = "neighbour";
    uint32_t rounds = cmdline_number(mbi, "rounds", 40);
    uint32_t spin = cmdline_number(mbi, "spin", 20000000);
    /* 1 MiB from 2 MiB up (the VM needs 4 MiB of RAM). */
    volatile uint32_t *area = (uint32_t *)0x200000;
    uint32_t words = 0x100000 / 4, seed = 7;
    if (mb1_ram_top(mbi) < 0x300000) {
        fail("neighbour-memory-intact", "the VM has less than 3 MiB of RAM");
        return;
    }
    for (uint32_t i = 0; i < words; i++)
        area[i] = lcg(&seed);
    uint32_t want = sum(area, words), bad = 0;
    gprintf("INFO neighbour: %u KiB filled, checksum %08x\n", words / 256, want);
    for (uint32_t r = 1; r <= rounds; r++) {
        spin_tsc(spin);
        uint32_t got = sum(area, words);
        bad += got != want;
        gprintf("INFO neighbour: round %u of %u checksum %08x\n", r, rounds, got);
    }
    check(bad == 0, "neighbour-memory-intact", "%u of %u rounds saw another checksum", bad, rounds);
    pass("neighbour-ran-to-the-end");
}
