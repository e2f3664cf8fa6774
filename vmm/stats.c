#include "vmm/stats.h"

#include <stdbool.h>

void vmm_count(struct vmm_counters *t, uint64_t key)
{
    uint64_t k = key + 1;
    unsigned h = (unsigned)((key * 0x9e3779b97f4a7c15ull) >> 59) % VMM_COUNTER_KEYS;
    for (unsigned i = 0; i < VMM_COUNTER_KEYS; i++) {
        unsigned s = (h + i) % VMM_COUNTER_KEYS;
        uint64_t cur = __atomic_load_n(&t->key[s], __ATOMIC_ACQUIRE);
        if (cur == 0) {
            uint64_t expect = 0;
            /* Two vCPUs may race for a free slot: the loser looks at what won. */
            if (!__atomic_compare_exchange_n(&t->key[s], &expect, k, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
                cur = expect;
            else
                cur = k;
        }
        if (cur == k) {
            __atomic_add_fetch(&t->count[s], 1, __ATOMIC_RELAXED);
            return;
        }
    }
    __atomic_add_fetch(&t->other, 1, __ATOMIC_RELAXED);
}

unsigned vmm_count_top(const struct vmm_counters *t, unsigned n, uint64_t *keys, uint64_t *counts)
{
    unsigned have = 0;
    for (unsigned s = 0; s < VMM_COUNTER_KEYS; s++) {
        uint64_t k = __atomic_load_n(&t->key[s], __ATOMIC_ACQUIRE);
        uint64_t c = __atomic_load_n(&t->count[s], __ATOMIC_RELAXED);
        if (!k || !c)
            continue;
        /* Insertion into the sorted top n. */
        unsigned at = have;
        while (at > 0 && counts[at - 1] < c)
            at--;
        if (at >= n)
            continue;
        unsigned last = have < n ? have : n - 1;
        for (unsigned j = last; j > at; j--) {
            keys[j] = keys[j - 1];
            counts[j] = counts[j - 1];
        }
        keys[at] = k - 1;
        counts[at] = c;
        if (have < n)
            have++;
    }
    return have;
}
