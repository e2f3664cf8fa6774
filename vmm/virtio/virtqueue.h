/* The device side of one split virtqueue (virtio 1.2 §2.7), written once for every
 * virtio device: it takes descriptor chains the driver made available, hands them
 * to the device as a checked list of guest-physical segments, and returns them
 * through the used ring with the notifications the driver asked for.
 *
 * Everything in the rings comes from the guest and is hostile: indices, flags,
 * addresses, lengths.  The engine reads ring memory only through the guest-memory
 * accessor (guest_mem.h), copies every descriptor once before checking it, never
 * loops longer than the queue allows, and on the first violation stops the queue:
 * vq->broken stays set, nothing more is taken from or written to the rings, and
 * vq_device_status() reports DEVICE_NEEDS_RESET (§2.1.2) for the transport to
 * show in device_status, until vq_reset().  The device logs vq_error_name() once,
 * when a call first returns the error (vq_error_is_driver).
 *
 * Typical device loop, on a queue notification:
 *
 *     for (;;) {
 *         vq_disable_notify(q, g);           (no kicks while draining)
 *         while ((e = vq_pop(q, g, &chain)) == VQ_OK) {
 *             ... read chain.seg[0 .. n_readable), write the rest ...
 *             vq_used_add(q, g, chain.head, written);
 *         }
 *         vq_used_flush(q, g);               (one used->idx update for the batch)
 *         if (e != VQ_EMPTY || !vq_enable_notify(q, g))
 *             break;                         (else more came while re-enabling)
 *     }
 *     if (vq_should_notify(q, g)) raise the queue's interrupt;
 *     if (vq_error_is_driver(e)) log vq_error_name(e): the queue just broke.
 *
 * The engine holds no lock and keeps no pointer into guest memory between calls:
 * the device serialises the calls on one queue, and passes the VM's gmem to each.
 * Nothing here is tied to a transport: virtio-pci's common configuration (size,
 * addresses, enable, reset) maps onto vq_set_features/vq_set_addrs/vq_reset. */
#ifndef PLINTH_VMM_VIRTIO_VIRTQUEUE_H
#define PLINTH_VMM_VIRTIO_VIRTQUEUE_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/virtio/guest_mem.h"

/* Descriptor flags, §2.7.5. */
#define VIRTQ_DESC_F_NEXT       1
#define VIRTQ_DESC_F_WRITE      2
#define VIRTQ_DESC_F_INDIRECT   4
/* Available ring flags, §2.7.6 / §2.7.7. */
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
/* Used ring flags, §2.7.8 / §2.7.10. */
#define VIRTQ_USED_F_NO_NOTIFY  1

/* Reserved feature bits the queue engine implements (§6). */
#define VIRTIO_F_INDIRECT_DESC  28
#define VIRTIO_F_EVENT_IDX      29

/* device_status bit the device sets when it has hit an error it cannot recover
 * from without a reset (§2.1). */
#define VIRTIO_STATUS_DEVICE_NEEDS_RESET 0x40

/* §2.7: "Queue Size value is always a power of 2.  The maximum Queue Size value
 * is 32768." */
#define VQ_SIZE_MAX             32768

/* The ring parts' sizes and alignments, §2.7 (the table at its start).  The sizes
 * include used_event and avail_event whether or not EVENT_IDX is negotiated. */
#define VQ_DESC_SIZE            16
#define VQ_DESC_ALIGN           16
#define VQ_AVAIL_ALIGN          2
#define VQ_USED_ALIGN           4
#define VQ_DESC_TABLE_BYTES(n)  (16ull * (n))
#define VQ_AVAIL_BYTES(n)       (6ull + 2ull * (n))
#define VQ_USED_BYTES(n)        (6ull + 8ull * (n))

/* The default cap on a chain's total length.  §2.7.5.2: "Drivers MUST NOT add a
 * descriptor chain longer than 2^32 bytes in total"; the used ring's len is 32
 * bits, so the engine caps at what it can report. */
#define VQ_CHAIN_BYTES_MAX      0xffffffffu

/* Results.  VQ_OK and VQ_EMPTY are normal; VQ_ERR_NOT_READY and the VQ_ERR_PUSH_*
 * are the device's own mistakes and leave the queue as it was; every other error
 * is the driver's and breaks the queue (VQ_ERR_BROKEN from then on). */
enum vq_error {
    VQ_OK = 0,
    VQ_EMPTY,                   /* no chain available */
    VQ_ERR_NOT_READY,           /* queue not set up (vq_set_addrs) */
    VQ_ERR_BROKEN,              /* an earlier error broke the queue; see vq->error */
    VQ_ERR_FIRST_DRIVER,
    /* The queue's configuration, at vq_set_addrs. */
    VQ_ERR_SIZE = VQ_ERR_FIRST_DRIVER, /* size 0, not a power of 2, or over 32768 */
    VQ_ERR_ALIGN,               /* a ring part misaligned */
    VQ_ERR_RING_RANGE,          /* a ring part not wholly in RAM */
    VQ_ERR_RING_OVERLAP,        /* two ring parts overlap */
    /* The available ring. */
    VQ_ERR_AVAIL_IDX,           /* avail->idx more than size ahead of used->idx */
    VQ_ERR_HEAD_RANGE,          /* a head index outside the descriptor table */
    /* A descriptor chain. */
    VQ_ERR_NEXT_RANGE,          /* next outside the (direct or indirect) table */
    VQ_ERR_CHAIN_LOOP,          /* more descriptors than the table holds: a loop */
    VQ_ERR_BUF_RANGE,           /* a buffer not wholly in RAM */
    VQ_ERR_CHAIN_BYTES,         /* total length past the queue's limit */
    VQ_ERR_CHAIN_SEGS,          /* more buffers than the device's list holds */
    VQ_ERR_ORDER,               /* device-readable after device-writable */
    VQ_ERR_INDIRECT_FEATURE,    /* INDIRECT without VIRTIO_F_INDIRECT_DESC */
    VQ_ERR_INDIRECT_NEXT,       /* INDIRECT and NEXT in one descriptor */
    VQ_ERR_INDIRECT_NESTED,     /* INDIRECT inside an indirect table */
    VQ_ERR_INDIRECT_LEN,        /* table length 0, not a multiple of 16, or > size */
    VQ_ERR_INDIRECT_RANGE,      /* table not wholly in RAM */
    VQ_ERR_LAST_DRIVER = VQ_ERR_INDIRECT_RANGE,
    /* The device's own mistakes at vq_used_add. */
    VQ_ERR_PUSH_HEAD,           /* head outside the descriptor table */
    VQ_ERR_PUSH_UNPOPPED,       /* more completions than chains taken */
};

/* Whether e is a driver error, returned once when it breaks the queue (later calls
 * return VQ_ERR_BROKEN): the moment for the device's one log line. */
static inline bool vq_error_is_driver(enum vq_error e)
{
    return e >= VQ_ERR_FIRST_DRIVER && e <= VQ_ERR_LAST_DRIVER;
}

/* A short phrase for one log line ("virtio-blk: queue 0: <name>"). */
const char *vq_error_name(enum vq_error e);

/* One buffer of a chain: guest-physical, wholly in RAM, never empty. */
struct vq_seg {
    uint64_t gpa;
    uint32_t len;
};

/* A chain taken by vq_pop: seg[0 .. n_readable) are device-readable, seg[n_readable
 * .. n_seg) device-writable (§2.7.4: readable first).  The device gives seg and
 * seg_cap (its bound on buffers per request, the seg_max it advertises plus its
 * headers); vq_pop fills the rest.  Zero-length descriptors are dropped. */
struct vq_chain {
    struct vq_seg *seg;
    uint16_t seg_cap;
    uint16_t n_seg;
    uint16_t n_readable;
    uint16_t head;              /* to give back to vq_used_add */
    uint32_t read_bytes;        /* sum of the readable lengths */
    uint32_t write_bytes;       /* sum of the writable lengths */
};

/* What a device's counters show (exits per request, §"Notification cost" of the
 * virtio issue). */
struct vq_stats {
    uint64_t chains;            /* chains taken (and not given back) */
    uint64_t descs;             /* descriptors read, indirect ones included */
    uint64_t used;              /* used elements written */
    uint64_t publishes;         /* used->idx stores */
    uint64_t notifies;          /* vq_should_notify said yes */
    uint64_t suppressed;        /* ... said no: the driver asked for no interrupt */
};

struct vq {
    /* What the driver set up (§4.1.4.3 queue_size, queue_desc, queue_driver,
     * queue_device); valid while enabled. */
    uint64_t desc_gpa;
    uint64_t avail_gpa;
    uint64_t used_gpa;
    uint16_t size;
    bool     enabled;
    /* Features the driver accepted (vq_set_features, before vq_set_addrs). */
    bool     event_idx;
    bool     indirect;

    /* The device's own free-running indices (§2.7.6, §2.7.8).  The device never
     * reads used->idx back from the guest: it only ever stores its shadow there, so
     * a driver that scribbles on used->idx confuses itself, never the device. */
    uint16_t last_avail_idx;    /* next available ring entry to take */
    uint16_t used_idx;          /* next used ring entry, including unpublished */
    uint16_t used_published;    /* the value last stored to used->idx */
    uint16_t signalled_used;    /* used_published at the last vq_should_notify */

    bool     broken;
    enum vq_error error;        /* what broke it */
    uint32_t max_chain_bytes;   /* cap on a chain's total length */
    struct vq_stats stats;
};

/* A disabled queue; max_chain_bytes caps each chain's total length (0: the
 * default VQ_CHAIN_BYTES_MAX).  The cap survives vq_reset. */
void vq_init(struct vq *vq, uint32_t max_chain_bytes);

/* Back to the state after vq_init (device reset §2.4, queue reset §2.6.1):
 * disabled, not broken, indices 0, features cleared, counters kept. */
void vq_reset(struct vq *vq);

/* The driver's accepted features; only INDIRECT_DESC and EVENT_IDX matter here.
 * Set before vq_set_addrs, as the initialisation order has it (§3.1.1: features
 * are final before queues are set up). */
void vq_set_features(struct vq *vq, uint64_t features);

/* The driver enables the queue (virtio-pci queue_enable): checks the size and the
 * three ring parts (alignment, wholly in RAM, no overlap) and starts the indices at
 * 0.  An error breaks the queue. */
enum vq_error vq_set_addrs(struct vq *vq, const struct gmem *g, uint16_t size,
                           uint64_t desc_gpa, uint64_t avail_gpa, uint64_t used_gpa);

/* Takes the next available chain into *out (out->seg and out->seg_cap set by the
 * caller).  VQ_EMPTY when the driver has made nothing more available. */
enum vq_error vq_pop(struct vq *vq, const struct gmem *g, struct vq_chain *out);

/* Gives back the last n chains vq_pop took, which the device has not completed
 * and will not: the next vq_pop takes them again, from the first, re-reading
 * everything (the driver may have rewritten them meanwhile).  For a device that
 * needs several chains for one request and finds too few (virtio-net's merged
 * receive buffers, §5.1.6.4): the driver still owns nothing it was not given back,
 * and nothing reaches the used ring.  Call vq_enable_notify before this, while
 * last_avail_idx still counts the chains given back, so that the driver's next
 * kick is for a chain beyond them.  VQ_ERR_PUSH_UNPOPPED (queue unchanged) when n
 * is more than the chains taken and not completed. */
enum vq_error vq_unpop(struct vq *vq, uint16_t n);

/* Returns chain head with written_len bytes written to its writable buffers: the
 * used element is written but not yet visible to the driver (used->idx unchanged)
 * until vq_used_flush, so a batch of completions costs one index update. */
enum vq_error vq_used_add(struct vq *vq, const struct gmem *g, uint16_t head, uint32_t written_len);

/* Publishes every used element added since the last flush. */
void vq_used_flush(struct vq *vq, const struct gmem *g);

/* vq_used_add and vq_used_flush in one. */
enum vq_error vq_push(struct vq *vq, const struct gmem *g, uint16_t head, uint32_t written_len);

/* Whether the driver wants a used buffer notification (an interrupt) for what has
 * been published since the last call: VIRTQ_AVAIL_F_NO_INTERRUPT, or with
 * EVENT_IDX the driver's used_event (§2.7.7).  Call after vq_used_flush. */
bool vq_should_notify(struct vq *vq, const struct gmem *g);

/* Available buffer notifications (the driver's kicks, §2.7.10): disable while the
 * device drains the queue, enable when it would wait.  vq_enable_notify returns
 * true when buffers arrived meanwhile, which the device must take now: the driver
 * may have looked at the notification state before it was re-enabled. */
void vq_disable_notify(struct vq *vq, const struct gmem *g);
bool vq_enable_notify(struct vq *vq, const struct gmem *g);

/* What the queue adds to device_status: DEVICE_NEEDS_RESET once broken. */
static inline uint8_t vq_device_status(const struct vq *vq)
{
    return vq->broken ? VIRTIO_STATUS_DEVICE_NEEDS_RESET : 0;
}

/* vring_need_event from the virtio_ring.h the spec reproduces (§2.7.11, appendix
 * "virtio_queue.h"): whether moving an index from old to new_idx passed event,
 * i.e. event lies in [old, new_idx) modulo 2^16.  The device applies it to
 * used_event, the driver to avail_event. */
static inline bool vq_need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
    return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

#endif
