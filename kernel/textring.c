#include "kernel/textring.h"

#include <stdbool.h>

void textring_init(struct textring *r, char *buf, size_t size)
{
    r->buf = buf;
    r->size = buf ? size : 0;
    r->total = 0;
}

void textring_put(struct textring *r, const char *s, size_t n)
{
    if (!r->size)
        return;
    if (n > r->size) {            /* only the last size bytes can stay */
        r->total += n - r->size;
        s += n - r->size;
        n = r->size;
    }
    size_t at = (size_t)(r->total % r->size);
    for (size_t i = 0; i < n; i++) {
        r->buf[at] = s[i];
        if (++at == r->size)
            at = 0;
    }
    r->total += n;
}

static char at(const struct textring *r, uint64_t pos)
{
    return r->buf[pos % r->size];
}

size_t textring_tail(const struct textring *r, unsigned lines, char *out, size_t max)
{
    if (!r->size || !lines || !max)
        return 0;
    uint64_t oldest = r->total > r->size ? r->total - r->size : 0;
    uint64_t end = r->total;
    /* A last line without its newline yet is not a whole line. */
    while (end > oldest && at(r, end - 1) != '\n')
        end--;
    uint64_t start = end;
    unsigned found = 0;
    /* Walk back: a newline before start (other than the last line's own) means a
     * whole line begins at start. */
    while (start > oldest && end - start < max) {
        if (at(r, start - 1) == '\n' && start != end && ++found == lines)
            break;
        start--;
    }
    /* Begin at a line's start: not inside a line cut by max, nor inside the ring's
     * first line, whose beginning may be lost. */
    bool whole = start > oldest ? at(r, start - 1) == '\n' : oldest == 0;
    if (!whole) {
        while (start < end && at(r, start) != '\n')
            start++;
        if (start < end)
            start++;
    }
    size_t n = 0;
    for (uint64_t p = start; p < end; p++)
        out[n++] = at(r, p);
    return n;
}

uint64_t textring_lost(const struct textring *r)
{
    return r->total > r->size ? r->total - r->size : 0;
}
