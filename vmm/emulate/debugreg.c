#include "vmm/emulate/debugreg.h"

uint32_t x86_data_breakpoints(uint64_t dr7, const uint64_t dr[4], uint64_t linear, unsigned size,
                              bool read, bool write)
{
    static const uint64_t len_of[4] = { 1, 2, 8, 4 };
    uint32_t hits = 0;
    if (!size || !(dr7 & X86_DR7_ENABLES))
        return 0;
    for (unsigned i = 0; i < 4; i++) {
        if (!((dr7 >> (2 * i)) & 3))
            continue;
        unsigned rw = (dr7 >> (16 + 4 * i)) & 3;
        uint64_t len = len_of[(dr7 >> (18 + 4 * i)) & 3];
        if (!((rw == 1 && write) || (rw == 3 && (read || write))))
            continue;
        uint64_t start = dr[i] & ~(len - 1);
        /* [linear, linear + size) meets [start, start + len), wrapping nowhere. */
        if (linear < start + len && start < linear + size)
            hits |= 1u << i;
    }
    return hits;
}
