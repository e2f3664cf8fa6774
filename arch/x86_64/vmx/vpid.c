/* The VPID pool: a bitmap claimed bit by bit with atomic operations, so that vCPUs
 * created on several CPUs at once never share a tag. */
#include "arch/x86_64/vmx/vpid.h"

#include <stdbool.h>

uint16_t vpid_alloc(struct vpid_pool *p)
{
    for (unsigned w = 0; w < VPID_COUNT / 64; w++) {
        uint64_t seen = __atomic_load_n(&p->used[w], __ATOMIC_RELAXED);
        /* Word 0's bit 0 is the host's VPID: it always looks taken. */
        uint64_t reserved = w == 0 ? 1 : 0;
        while ((seen | reserved) != ~0ull) {
            unsigned b = (unsigned)__builtin_ctzll(~(seen | reserved));
            uint64_t bit = 1ull << b;
            uint64_t before = __atomic_fetch_or(&p->used[w], bit, __ATOMIC_ACQ_REL);
            if (!(before & bit))
                return (uint16_t)(w * 64 + b);
            seen = before | bit;   /* another CPU took it first: look again */
        }
    }
    return 0;
}

void vpid_free(struct vpid_pool *p, uint16_t vpid)
{
    if (vpid == 0)
        return;
    __atomic_fetch_and(&p->used[vpid / 64], ~(1ull << (vpid % 64)), __ATOMIC_RELEASE);
}
