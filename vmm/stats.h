/* Per-VM counters for the shell's `stats`: exits by I/O port and by MMIO region.
 * A small fixed table per kind, filled lock-free by every vCPU of the VM; keys past
 * its capacity are counted together as "other", never lost from the total. */
#ifndef PLINTH_VMM_STATS_H
#define PLINTH_VMM_STATS_H

#include <stddef.h>
#include <stdint.h>

#define VMM_COUNTER_KEYS 32

struct vmm_counters {
    uint64_t key[VMM_COUNTER_KEYS];    /* key + 1; 0: a free slot */
    uint64_t count[VMM_COUNTER_KEYS];
    uint64_t other;
};

void     vmm_count(struct vmm_counters *t, uint64_t key);
/* The n keys with the highest counts, highest first, into keys/counts: how many. */
unsigned vmm_count_top(const struct vmm_counters *t, unsigned n, uint64_t *keys, uint64_t *counts);

#endif
