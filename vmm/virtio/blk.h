/* The virtio-blk request engine (virtio 1.2 §5.2, block device): a disk image in
 * the monitor's memory, served to one request queue through the virtqueue engine
 * (virtqueue.h).  Not tied to a VM or to a transport: the transport hands it the
 * queue and the VM's gmem on a notification, and copies the configuration space
 * (vblk_config) into its device-specific config window.
 *
 * Three modes, from the VM's `disk_mode`:
 *   RO        the image is never written; VIRTIO_BLK_F_RO is offered (§5.2.3) and
 *             writes get VIRTIO_BLK_S_IOERR (§5.2.6.2).
 *   RW        writes go into the image in RAM (a separate non-const pointer).
 *   SNAPSHOT  writes go into a copy-on-write store of 4 KiB blocks taken from a
 *             pool the caller supplies (no allocation here); reads see copied
 *             blocks first.  When the pool cannot hold a write, that write fails
 *             with IOERR before anything is changed, so no earlier write is lost.
 *
 * The image may be any number of bytes; capacity is counted in whole 512-byte
 * sectors (§5.2.4), so a trailing partial sector is unreachable.
 *
 * Every request comes from the guest and is hostile.  A malformed request (short
 * header, wrong data direction, out-of-range sector, ...) completes with an error
 * status and the device keeps working; only the queue engine's chain errors (a
 * loop, a buffer outside RAM, ...) break the queue (DEVICE_NEEDS_RESET). */
#ifndef PLINTH_VMM_VIRTIO_BLK_H
#define PLINTH_VMM_VIRTIO_BLK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/virtio/guest_mem.h"
#include "vmm/virtio/virtqueue.h"

/* Feature bits, §5.2.3 and §6 (VERSION_1). */
#define VIRTIO_BLK_F_SIZE_MAX       1
#define VIRTIO_BLK_F_SEG_MAX        2
#define VIRTIO_BLK_F_GEOMETRY       4
#define VIRTIO_BLK_F_RO             5
#define VIRTIO_BLK_F_BLK_SIZE       6
#define VIRTIO_BLK_F_FLUSH          9
#define VIRTIO_BLK_F_TOPOLOGY       10
#define VIRTIO_BLK_F_CONFIG_WCE     11
#define VIRTIO_BLK_F_MQ             12
#define VIRTIO_BLK_F_DISCARD        13
#define VIRTIO_BLK_F_WRITE_ZEROES   14
#define VIRTIO_F_VERSION_1          32

/* Request types, §5.2.6. */
#define VIRTIO_BLK_T_IN             0
#define VIRTIO_BLK_T_OUT            1
#define VIRTIO_BLK_T_FLUSH          4
#define VIRTIO_BLK_T_GET_ID         8
#define VIRTIO_BLK_T_DISCARD        11
#define VIRTIO_BLK_T_WRITE_ZEROES   13

/* Status byte values, §5.2.6. */
#define VIRTIO_BLK_S_OK             0
#define VIRTIO_BLK_S_IOERR          1
#define VIRTIO_BLK_S_UNSUPP         2

/* §5.2.6: the request header is le32 type, le32 reserved, le64 sector. */
#define VBLK_HDR_BYTES              16
/* §5.2.4 / §5.2.6: sector numbers always count 512-byte units. */
#define VBLK_SECTOR_BYTES           512ull
/* §5.2.6: GET_ID returns 20 bytes (NUL-padded when shorter). */
#define VIRTIO_BLK_ID_BYTES         20
/* The snapshot store's granule. */
#define VBLK_COW_BLOCK              4096ull
/* §5.2.6: struct virtio_blk_discard_write_zeroes is le64 sector, le32
 * num_sectors, le32 flags; bit 0 of flags is "unmap". */
#define VBLK_DISCARD_RANGE_BYTES    16
#define VIRTIO_BLK_WZ_F_UNMAP       1u

/* The data segments a request may carry (seg_max, §5.2.4), before the queue size
 * bounds it further (vblk_config): two more for the header and the status. */
#define VBLK_SEG_MAX                126
#define VBLK_CHAIN_SEGS             (VBLK_SEG_MAX + 2)
/* Discard limits advertised in the config space (§5.2.4).  The per-range bound
 * keeps the work per request small (a discard walks its COW blocks). */
#define VBLK_MAX_DISCARD_SECTORS    (1u << 16)
#define VBLK_MAX_DISCARD_SEG        16
#define VBLK_DISCARD_ALIGN_SECTORS  (VBLK_COW_BLOCK / VBLK_SECTOR_BYTES)

/* struct virtio_blk_config (§5.2.4) up to and including the secure-erase fields:
 * the bytes vblk_config writes, little-endian, at their spec offsets. */
#define VBLK_CONFIG_BYTES           72
#define VBLK_CFG_CAPACITY           0
#define VBLK_CFG_SIZE_MAX           8
#define VBLK_CFG_SEG_MAX            12
#define VBLK_CFG_BLK_SIZE           20
#define VBLK_CFG_MAX_DISCARD_SECTORS 36
#define VBLK_CFG_MAX_DISCARD_SEG    40
#define VBLK_CFG_DISCARD_ALIGN      44

/* Index entries a SNAPSHOT disk of image_bytes needs: one per 4 KiB block. */
#define VBLK_COW_INDEX_ENTRIES(image_bytes) \
    (((uint64_t)(image_bytes) + VBLK_COW_BLOCK - 1) / VBLK_COW_BLOCK)

enum vblk_mode {
    VBLK_MODE_RO,
    VBLK_MODE_RW,
    VBLK_MODE_SNAPSHOT,
};

/* What the shell shows for a disk. */
struct vblk_stats {
    uint64_t requests;          /* requests completed (any status) */
    uint64_t reads, writes, flushes, get_ids, discards;   /* completed OK */
    uint64_t bytes_read;        /* data bytes copied to the guest */
    uint64_t bytes_written;     /* data bytes taken from the guest into the disk */
    /* Requests that completed with an error, by kind. */
    uint64_t err_no_status;     /* no writable status byte: completed, len 0 */
    uint64_t err_header;        /* readable part shorter than the header */
    uint64_t err_direction;     /* data readable/writable against the type */
    uint64_t err_range;         /* sector overflow, past the end, length not a sector multiple */
    uint64_t err_readonly;      /* write to a RO disk */
    uint64_t err_cow_full;      /* snapshot pool cannot hold the write */
    uint64_t err_unsupp;        /* unknown or not negotiated type, UNSUPP */
    uint64_t err_io;            /* a copy that failed (not expected) */
    uint64_t queue_errors;      /* engine errors that broke the queue */
};

struct vblk_disk {
    const uint8_t *image;       /* the image bytes; what reads see */
    uint8_t *image_rw;          /* same bytes, writable: RW only, else NULL */
    uint64_t image_bytes;
    uint64_t capacity;          /* whole 512-byte sectors */
    enum vblk_mode mode;

    /* SNAPSHOT: pool of cow_pool_blocks 4 KiB blocks; cow_index[b] is 0 for an
     * image block b not copied, else its pool slot + 1.  Freed slots (discard)
     * form a list threaded through the first 4 bytes of each free block. */
    uint8_t *cow_pool;
    uint32_t cow_pool_blocks;
    uint32_t cow_bumped;        /* slots ever taken from the pool's unused tail */
    uint32_t cow_free_head;     /* first freed slot, or UINT32_MAX */
    uint32_t cow_free_count;
    uint32_t *cow_index;

    char serial[VIRTIO_BLK_ID_BYTES];
    uint64_t features;          /* what the driver accepted (vblk_set_features) */

    struct vq_seg seg[VBLK_CHAIN_SEGS];   /* one chain's buffers, reused */
    struct vblk_stats stats;
};

/* A read-only disk over image_bytes at image.  serial: up to 20 bytes for GET_ID
 * (NULL for none). */
void vblk_init_ro(struct vblk_disk *d, const void *image, uint64_t image_bytes,
                  const char *serial);

/* A disk whose writes go into image itself. */
void vblk_init_rw(struct vblk_disk *d, void *image, uint64_t image_bytes,
                  const char *serial);

/* A snapshot disk over a read-only image: pool is pool_blocks * 4096 bytes, index
 * has index_entries entries and must hold VBLK_COW_INDEX_ENTRIES(image_bytes).
 * False (and *d unusable) when the index is too small or pool_blocks is
 * UINT32_MAX or more. */
bool vblk_init_snapshot(struct vblk_disk *d, const void *image, uint64_t image_bytes,
                        void *pool, uint64_t pool_blocks,
                        uint32_t *index, uint64_t index_entries, const char *serial);

/* Drops every copied block: the snapshot is pristine again (VM restart). */
void vblk_snapshot_reset(struct vblk_disk *d);

/* Device features to offer (§5.2.3): SEG_MAX, BLK_SIZE, FLUSH, VERSION_1, RO on a
 * RO disk, DISCARD on a writable one.  The transport adds the ring features the
 * queue engine implements (INDIRECT_DESC, EVENT_IDX). */
uint64_t vblk_features(const struct vblk_disk *d);

/* The features the driver accepted (FEATURES_OK); only offered ones are kept. */
void vblk_set_features(struct vblk_disk *d, uint64_t accepted);

/* Writes the configuration space (§5.2.4) into buf: min(cap, VBLK_CONFIG_BYTES)
 * bytes, returned.  max_queue_size is the largest queue size the transport
 * allows; seg_max is kept below it. */
size_t vblk_config(const struct vblk_disk *d, uint16_t max_queue_size, void *buf, size_t cap);

/* Per call: at most VBLK_BATCH_CHAINS requests and VBLK_NOTIFY_ROUNDS re-enables
 * of the driver's kicks, so that no driver keeps a vCPU in the device for long. */
#define VBLK_BATCH_CHAINS   512
#define VBLK_NOTIFY_ROUNDS  8

/* Serves the requests available on vq: completes each with its status, publishes
 * the batch with one used-index update, and returns whether the driver must be
 * interrupted.  *err (if not NULL) gets the engine's last result: VQ_EMPTY when the
 * queue drained, VQ_OK when a budget above stopped it (kicks stay off: the caller
 * must call again), a driver error when a chain broke the queue (log it once), or
 * VQ_ERR_BROKEN / VQ_ERR_NOT_READY. */
bool vblk_process(struct vblk_disk *d, struct vq *vq, const struct gmem *g,
                  enum vq_error *err);

#endif
