/* The isolation pair's marker (filler writes it, checker looks for it).  Neither
 * image may hold the 64-bit value itself, or the checker would find it in its own
 * code: both derive it at run time from two halves. */
#ifndef GUEST_MARKER_H
#define GUEST_MARKER_H
#include <stdint.h>

static inline uint64_t marker_value(void)
{
    volatile uint32_t key = 0x13579bdfu;
    uint32_t lo = 0x4c50fe23u ^ key, hi = 0x544e4986u ^ key;
    return (uint64_t)hi << 32 | lo;
}
#endif
