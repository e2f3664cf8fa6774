/* The core's own function symbols, for naming addresses in stack traces.  The table
 * is built by tools/mksyms after a first link and embedded by the second (Makefile);
 * its format is in that tool's docstring. */
#ifndef PLINTH_KERNEL_KSYMS_H
#define PLINTH_KERNEL_KSYMS_H

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>

/* Longest name ksyms hands out; longer names are cut (still unambiguous enough). */
#define KSYMS_NAME_MAX 128

struct ksym {
    const char *name;    /* not NUL-terminated within name_len: print with %.*s */
    size_t name_len;
    uint64_t addr;       /* where the symbol starts */
    uint64_t offset;     /* looked-up address - addr */
};

/* Looks addr up in a table of the mksyms format held in [table, table+size).
 * A symbol with a size covers [addr, addr+size); one without a size (an assembly
 * label) covers up to the next symbol, or up to limit when it is the last.  Returns
 * false when no symbol covers addr or the table is malformed (rows out of bounds or
 * unsorted, name offsets outside the names). */
bool ksyms_lookup_table(const void *table, size_t size, uint64_t limit,
                        uint64_t addr, struct ksym *out);

#ifndef PLINTH_HOST_TEST
/* Looks addr up in the table embedded in plinth.elf (empty in the first link). */
bool ksyms_lookup(uint64_t addr, struct ksym *out);
#endif

#endif
