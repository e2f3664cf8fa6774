#include "kernel/ksyms.h"

/* One row of the table, as tools/mksyms lays it out (little-endian, packed). */
struct ksyms_row {
    uint64_t addr;
    uint32_t name_offset;
    uint32_t size;
} __attribute__((packed));

#define KSYMS_HEADER_SIZE 8u

/* The table is read during a panic, perhaps after memory corruption: every count and
 * offset is checked against the table's bounds before use, so a bad table yields
 * "no symbol", never a fault. */
static bool ksyms_table_rows(const uint8_t *t, size_t size, const struct ksyms_row **rows,
                             uint64_t *count, const char **names, size_t *names_size)
{
    if (!t || size < KSYMS_HEADER_SIZE || ((uintptr_t)t & 7))
        return false;
    uint64_t n = *(const uint64_t *)t;
    uint64_t max_rows = (size - KSYMS_HEADER_SIZE) / sizeof(struct ksyms_row);
    if (n == 0 || n > max_rows)
        return false;
    *rows = (const struct ksyms_row *)(t + KSYMS_HEADER_SIZE);
    *count = n;
    *names = (const char *)(t + KSYMS_HEADER_SIZE + n * sizeof(struct ksyms_row));
    *names_size = size - KSYMS_HEADER_SIZE - (size_t)n * sizeof(struct ksyms_row);
    return true;
}

bool ksyms_lookup_table(const void *table, size_t size, uint64_t limit,
                        uint64_t addr, struct ksym *out)
{
    const struct ksyms_row *rows;
    uint64_t n;
    const char *names;
    size_t names_size;
    if (!ksyms_table_rows(table, size, &rows, &n, &names, &names_size))
        return false;

    /* Binary search needs sorted rows; an unsorted table is a corrupt one. */
    for (uint64_t i = 1; i < n; i++)
        if (rows[i].addr < rows[i - 1].addr)
            return false;

    if (addr < rows[0].addr)
        return false;
    /* Last row whose address is <= addr. */
    uint64_t lo = 0, hi = n;
    while (hi - lo > 1) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (rows[mid].addr <= addr)
            lo = mid;
        else
            hi = mid;
    }

    /* Several names may share an address (aliases, an assembly label at a function's
     * start): prefer one whose size covers addr, else a size-0 label, which extends
     * to the next symbol. */
    uint64_t best = n;
    for (uint64_t i = lo + 1; i-- > 0 && rows[i].addr == rows[lo].addr;) {
        if (rows[i].size && addr - rows[i].addr < rows[i].size) {
            best = i;
            break;
        }
        if (!rows[i].size && best == n)
            best = i;
    }
    if (best == n)
        return false;
    if (!rows[best].size && lo + 1 == n && addr >= limit)
        return false;

    uint32_t off = rows[best].name_offset;
    if (off >= names_size)
        return false;
    size_t len = 0;
    size_t max = names_size - off;
    if (max > KSYMS_NAME_MAX)
        max = KSYMS_NAME_MAX;
    while (len < max && names[off + len])
        len++;
    if (len == 0)
        return false;

    out->name = names + off;
    out->name_len = len;
    out->addr = rows[best].addr;
    out->offset = addr - rows[best].addr;
    return true;
}

#ifndef PLINTH_HOST_TEST
/* Linker-script symbols (linker.ld): the .ksyms section, empty in the first link. */
extern const uint8_t __ksyms_start[], __ksyms_end[], __text_end[];

bool ksyms_lookup(uint64_t addr, struct ksym *out)
{
    uintptr_t start = ((uintptr_t)__ksyms_start + 7) & ~(uintptr_t)7;
    uintptr_t end = (uintptr_t)__ksyms_end;
    if (end <= start)
        return false;
    return ksyms_lookup_table((const void *)start, end - start, (uint64_t)(uintptr_t)__text_end,
                              addr, out);
}
#endif
