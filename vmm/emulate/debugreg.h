/* Data breakpoints (DR0-DR3 under DR7) matched against the accesses the monitor
 * emulates, which the CPU never performs itself and so never matches.  Pure logic. */
#ifndef PLINTH_VMM_EMULATE_DEBUGREG_H
#define PLINTH_VMM_EMULATE_DEBUGREG_H

#include <stdbool.h>
#include <stdint.h>

/* DR7's enable bits L0-L3 and G0-G3 (SDM Vol. 3A §18.2.4, Figure 18-1). */
#define X86_DR7_ENABLES 0xffull

/* The DR6 B0-B3 bits of the data breakpoints enabled in dr7 that an access of size
 * bytes at guest-linear address linear hits: R/W 01 breaks on writes, 11 on reads or
 * writes (00, instruction, and 10, I/O, never match a data access); LEN 00, 01, 11, 10
 * cover 1, 2, 4 and 8 bytes at the breakpoint address rounded down to that size
 * (§18.2.5). */
uint32_t x86_data_breakpoints(uint64_t dr7, const uint64_t dr[4], uint64_t linear, unsigned size,
                              bool read, bool write);

#endif
