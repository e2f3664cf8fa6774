/* A descriptor chain's buffers as one stream of bytes (virtio 1.2 §2.7.4, message
 * framing: a device must not assume how the driver split a message into buffers),
 * read or written through gmem from some offset on.  For the device engines. */
#ifndef PLINTH_VMM_VIRTIO_SEG_STREAM_H
#define PLINTH_VMM_VIRTIO_SEG_STREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/virtio/guest_mem.h"
#include "vmm/virtio/virtqueue.h"

struct vq_stream {
    const struct vq_seg *seg;
    uint16_t n;
    uint16_t i;                 /* the buffer the stream is in */
    uint32_t off;               /* and how far into it */
};

/* The stream of the n buffers at seg, skip bytes in (at its end if it is shorter). */
static inline void vq_stream_init(struct vq_stream *c, const struct vq_seg *seg, uint16_t n, uint64_t skip)
{
    c->seg = seg;
    c->n = n;
    c->i = 0;
    c->off = 0;
    while (c->i < n && skip >= seg[c->i].len) {
        skip -= seg[c->i].len;
        c->i++;
    }
    if (c->i < n)
        c->off = (uint32_t)skip;
}

/* Copies up to len bytes between buf and the guest at the stream (to_guest: into
 * the guest's buffers), as many as the stream holds, and moves on past them: the
 * bytes copied in *done.  false if a copy failed (then nothing is known of what
 * the guest's buffers hold). */
static inline bool vq_stream_copy(const struct gmem *g, struct vq_stream *c, void *buf, uint64_t len,
                                  bool to_guest, uint64_t *done)
{
    uint8_t *p = buf;
    *done = 0;
    while (len && c->i < c->n) {
        uint32_t a = c->seg[c->i].len - c->off;
        uint32_t k = len < a ? (uint32_t)len : a;
        uint64_t gpa = c->seg[c->i].gpa + c->off;
        if (!(to_guest ? gmem_write(g, gpa, p, k) : gmem_read(g, gpa, p, k)))
            return false;
        p += k;
        len -= k;
        *done += k;
        c->off += k;
        if (c->off == c->seg[c->i].len) {
            c->i++;
            c->off = 0;
        }
    }
    return true;
}

#endif
