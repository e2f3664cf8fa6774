/* A bounded ring of text that keeps the latest bytes written to it: plinth's own
 * log (the shell's `log`) and each VM's console output (replayed when the console's
 * focus moves to it).  Pure, no locking: the owner serialises. */
#ifndef PLINTH_KERNEL_TEXTRING_H
#define PLINTH_KERNEL_TEXTRING_H

#include <stddef.h>
#include <stdint.h>

struct textring {
    char    *buf;
    size_t   size;
    uint64_t total;        /* bytes ever written; the ring holds the last size */
};

void     textring_init(struct textring *r, char *buf, size_t size);
void     textring_put(struct textring *r, const char *s, size_t n);
/* The last `lines` whole lines the ring still holds (a line cut by the ring's start
 * is left out), at most max bytes of them (the oldest of those left out first),
 * copied to out; returns the length. */
size_t   textring_tail(const struct textring *r, unsigned lines, char *out, size_t max);
/* Bytes written that the ring no longer holds. */
uint64_t textring_lost(const struct textring *r);

#endif
