#include "vmm/virtio/blk.h"
#include "vmm/virtio/seg_stream.h"

#include "kernel/string.h"

#define COW_NONE UINT32_MAX

/* ---- little-endian fields (§1.4: virtio structures are little-endian) ----------- */

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const uint8_t *p)
{
    return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
    put_le32(p, (uint32_t)v);
    put_le32(p + 4, (uint32_t)(v >> 32));
}

/* ---- set-up ---------------------------------------------------------------------- */

static void init_common(struct vblk_disk *d, const void *image, uint64_t image_bytes,
                        enum vblk_mode mode, const char *serial)
{
    memset(d, 0, sizeof *d);
    d->image = image;
    d->image_bytes = image_bytes;
    /* §5.2.4: capacity is in 512-byte sectors; a trailing partial sector cannot be
     * addressed, so it is simply not part of the disk. */
    d->capacity = image_bytes / VBLK_SECTOR_BYTES;
    d->mode = mode;
    d->cow_free_head = COW_NONE;
    if (serial) {
        /* §5.2.6: the ID is 20 bytes, NUL-padded when shorter, not terminated when
         * exactly 20. */
        size_t n = strnlen(serial, VIRTIO_BLK_ID_BYTES);
        memcpy(d->serial, serial, n);
    }
}

void vblk_init_ro(struct vblk_disk *d, const void *image, uint64_t image_bytes,
                  const char *serial)
{
    init_common(d, image, image_bytes, VBLK_MODE_RO, serial);
}

void vblk_init_rw(struct vblk_disk *d, void *image, uint64_t image_bytes,
                  const char *serial)
{
    init_common(d, image, image_bytes, VBLK_MODE_RW, serial);
    d->image_rw = image;
}

bool vblk_init_snapshot(struct vblk_disk *d, const void *image, uint64_t image_bytes,
                        void *pool, uint64_t pool_blocks,
                        uint32_t *index, uint64_t index_entries, const char *serial)
{
    init_common(d, image, image_bytes, VBLK_MODE_SNAPSHOT, serial);
    /* Slots are stored as slot + 1 in 32 bits and COW_NONE ends the free list. */
    if (pool_blocks >= COW_NONE || index_entries < VBLK_COW_INDEX_ENTRIES(image_bytes))
        return false;
    if (pool_blocks && !pool)
        return false;
    d->cow_pool = pool;
    d->cow_pool_blocks = (uint32_t)pool_blocks;
    d->cow_index = index;
    vblk_snapshot_reset(d);
    return true;
}

void vblk_snapshot_reset(struct vblk_disk *d)
{
    if (d->mode != VBLK_MODE_SNAPSHOT)
        return;
    uint64_t n = VBLK_COW_INDEX_ENTRIES(d->image_bytes);
    if (n)
        memset(d->cow_index, 0, n * sizeof d->cow_index[0]);
    d->cow_bumped = 0;
    d->cow_free_head = COW_NONE;
    d->cow_free_count = 0;
}

uint64_t vblk_features(const struct vblk_disk *d)
{
    /* §5.2.3.  SEG_MAX and BLK_SIZE make the config fields valid; FLUSH because the
     * device handles VIRTIO_BLK_T_FLUSH (there is no cache, so it is a no-op, but
     * without it a driver may assume a write-back cache it cannot flush). */
    uint64_t f = 1ull << VIRTIO_BLK_F_SEG_MAX | 1ull << VIRTIO_BLK_F_BLK_SIZE |
                 1ull << VIRTIO_BLK_F_FLUSH | 1ull << VIRTIO_F_VERSION_1;
    if (d->mode == VBLK_MODE_RO)
        f |= 1ull << VIRTIO_BLK_F_RO;
    else
        f |= 1ull << VIRTIO_BLK_F_DISCARD;   /* a discard is a write of sorts */
    return f;
}

void vblk_set_features(struct vblk_disk *d, uint64_t accepted)
{
    /* §2.2.1: the driver accepts a subset of what was offered; anything else is
     * ignored rather than trusted. */
    d->features = accepted & vblk_features(d);
}

size_t vblk_config(const struct vblk_disk *d, uint16_t max_queue_size, void *buf, size_t cap)
{
    uint8_t c[VBLK_CONFIG_BYTES];
    memset(c, 0, sizeof c);
    put_le64(c + VBLK_CFG_CAPACITY, d->capacity);
    /* seg_max counts data segments only; the header and the status take two more
     * descriptors, and the queue engine refuses an indirect table longer than the
     * queue, so seg_max + 2 must fit the queue (and the device's segment list). */
    uint32_t seg_max = VBLK_SEG_MAX;
    if (max_queue_size < 3)
        seg_max = 1;
    else if ((uint32_t)max_queue_size - 2 < seg_max)
        seg_max = (uint32_t)max_queue_size - 2;
    put_le32(c + VBLK_CFG_SEG_MAX, seg_max);
    put_le32(c + VBLK_CFG_BLK_SIZE, (uint32_t)VBLK_SECTOR_BYTES);
    if (d->mode != VBLK_MODE_RO) {
        /* §5.2.4: valid with VIRTIO_BLK_F_DISCARD.  Aligning discards to the COW
         * block lets a snapshot disk drop whole copied blocks. */
        put_le32(c + VBLK_CFG_MAX_DISCARD_SECTORS, VBLK_MAX_DISCARD_SECTORS);
        put_le32(c + VBLK_CFG_MAX_DISCARD_SEG, VBLK_MAX_DISCARD_SEG);
        put_le32(c + VBLK_CFG_DISCARD_ALIGN, (uint32_t)VBLK_DISCARD_ALIGN_SECTORS);
    }
    size_t n = cap < sizeof c ? cap : sizeof c;
    memcpy(buf, c, n);
    return n;
}

/* ---- walking a chain's buffers as one byte stream --------------------------------- */

/* Copies len host bytes to the guest at the stream, all of them or fails; only
 * through gmem. */
static bool to_guest(const struct gmem *g, struct vq_stream *c, const uint8_t *src, uint64_t len)
{
    uint64_t done;
    return vq_stream_copy(g, c, (void *)src, len, true, &done) && done == len;
}

static bool from_guest(const struct gmem *g, struct vq_stream *c, uint8_t *dst, uint64_t len)
{
    uint64_t done;
    return vq_stream_copy(g, c, dst, len, false, &done) && done == len;
}

/* ---- the disk ------------------------------------------------------------------ */

/* Whether [sector * 512, + len) lies on the disk, computed without wrapping: the
 * sector comes from the guest and may be anything up to 2^64 - 1.  §5.2.6.2 has
 * the device fail such a request with IOERR. */
static bool in_range(const struct vblk_disk *d, uint64_t sector, uint64_t len, uint64_t *pos)
{
    uint64_t disk_bytes = d->capacity * VBLK_SECTOR_BYTES;
    if (sector > d->capacity)
        return false;
    uint64_t p = sector * VBLK_SECTOR_BYTES;     /* no overflow: sector <= capacity */
    if (len > disk_bytes - p)
        return false;
    *pos = p;
    return true;
}

/* Where the current contents of byte pos live: the COW copy first (snapshot). */
static const uint8_t *disk_src(const struct vblk_disk *d, uint64_t pos)
{
    if (d->mode == VBLK_MODE_SNAPSHOT) {
        uint32_t e = d->cow_index[pos / VBLK_COW_BLOCK];
        if (e)
            return d->cow_pool + (uint64_t)(e - 1) * VBLK_COW_BLOCK + pos % VBLK_COW_BLOCK;
    }
    return d->image + pos;
}

static bool disk_read(const struct vblk_disk *d, const struct gmem *g, struct vq_stream *c,
                      uint64_t pos, uint64_t len)
{
    while (len) {
        /* A chunk never crosses a COW block, whose bytes may live elsewhere. */
        uint64_t k = VBLK_COW_BLOCK - pos % VBLK_COW_BLOCK;
        if (k > len)
            k = len;
        if (!to_guest(g, c, disk_src(d, pos), k))
            return false;
        pos += k;
        len -= k;
    }
    return true;
}

static uint8_t *cow_slot(struct vblk_disk *d, uint32_t slot)
{
    return d->cow_pool + (uint64_t)slot * VBLK_COW_BLOCK;
}

/* Takes a pool slot for image block b and fills it with the image's bytes (zeros
 * past the image's end).  The caller has checked that a slot is free. */
static uint8_t *cow_take(struct vblk_disk *d, uint64_t b)
{
    uint32_t slot;
    if (d->cow_free_head != COW_NONE) {
        slot = d->cow_free_head;
        uint32_t next;
        memcpy(&next, cow_slot(d, slot), sizeof next);
        d->cow_free_head = next;
        d->cow_free_count--;
    } else {
        slot = d->cow_bumped++;
    }
    uint8_t *p = cow_slot(d, slot);
    uint64_t off = b * VBLK_COW_BLOCK;
    uint64_t n = d->image_bytes - off;
    if (n > VBLK_COW_BLOCK)
        n = VBLK_COW_BLOCK;
    memcpy(p, d->image + off, n);
    memset(p + n, 0, VBLK_COW_BLOCK - n);
    d->cow_index[b] = slot + 1;
    return p;
}

static void cow_drop(struct vblk_disk *d, uint64_t b)
{
    uint32_t slot = d->cow_index[b] - 1;
    memcpy(cow_slot(d, slot), &d->cow_free_head, sizeof d->cow_free_head);
    d->cow_free_head = slot;
    d->cow_free_count++;
    d->cow_index[b] = 0;
}

static uint8_t disk_write(struct vblk_disk *d, const struct gmem *g, struct vq_stream *c,
                          uint64_t pos, uint64_t len)
{
    if (len == 0)
        return VIRTIO_BLK_S_OK;
    if (d->mode == VBLK_MODE_RW) {
        if (!from_guest(g, c, d->image_rw + pos, len)) {
            d->stats.err_io++;
            return VIRTIO_BLK_S_IOERR;
        }
        return VIRTIO_BLK_S_OK;
    }
    /* Snapshot: count the blocks the write needs before touching any, so that a
     * write the pool cannot hold fails whole and changes nothing (issue 13: a write
     * past the bound gets an I/O error, never a lost earlier write). */
    uint64_t first = pos / VBLK_COW_BLOCK, last = (pos + len - 1) / VBLK_COW_BLOCK;
    uint64_t need = 0;
    for (uint64_t b = first; b <= last; b++)
        need += d->cow_index[b] == 0;
    uint64_t room = (uint64_t)d->cow_free_count + (d->cow_pool_blocks - d->cow_bumped);
    if (need > room) {
        d->stats.err_cow_full++;
        return VIRTIO_BLK_S_IOERR;
    }
    while (len) {
        uint64_t b = pos / VBLK_COW_BLOCK, in = pos % VBLK_COW_BLOCK;
        uint64_t k = VBLK_COW_BLOCK - in;
        if (k > len)
            k = len;
        uint8_t *p = d->cow_index[b] ? cow_slot(d, d->cow_index[b] - 1) : cow_take(d, b);
        if (!from_guest(g, c, p + in, k)) {
            d->stats.err_io++;
            return VIRTIO_BLK_S_IOERR;
        }
        pos += k;
        len -= k;
    }
    return VIRTIO_BLK_S_OK;
}

/* ---- requests ------------------------------------------------------------------ */

static uint8_t fail_range(struct vblk_disk *d)
{
    d->stats.err_range++;
    return VIRTIO_BLK_S_IOERR;
}

static uint8_t fail_direction(struct vblk_disk *d)
{
    d->stats.err_direction++;
    return VIRTIO_BLK_S_IOERR;
}

static uint8_t do_discard(struct vblk_disk *d, const struct gmem *g, const struct vq_chain *ch,
                          uint32_t data_bytes)
{
    /* §5.2.6: the data is an array of struct virtio_blk_discard_write_zeroes, at
     * most max_discard_seg of them.  All are copied and checked before any acts,
     * so a bad range leaves the disk unchanged. */
    uint8_t r[VBLK_MAX_DISCARD_SEG * VBLK_DISCARD_RANGE_BYTES];
    if (data_bytes == 0 || data_bytes % VBLK_DISCARD_RANGE_BYTES ||
        data_bytes / VBLK_DISCARD_RANGE_BYTES > VBLK_MAX_DISCARD_SEG)
        return fail_range(d);
    struct vq_stream c;
    vq_stream_init(&c, ch->seg, ch->n_readable, VBLK_HDR_BYTES);
    if (!from_guest(g, &c, r, data_bytes)) {
        d->stats.err_io++;
        return VIRTIO_BLK_S_IOERR;
    }
    unsigned n = data_bytes / VBLK_DISCARD_RANGE_BYTES;
    for (unsigned i = 0; i < n; i++) {
        const uint8_t *e = r + i * VBLK_DISCARD_RANGE_BYTES;
        uint64_t pos;
        uint32_t flags = get_le32(e + 12);
        /* §5.2.6.2: UNSUPP for a discard with the unmap flag set; other flag bits
         * are reserved. */
        if (flags & VIRTIO_BLK_WZ_F_UNMAP) {
            d->stats.err_unsupp++;
            return VIRTIO_BLK_S_UNSUPP;
        }
        if (flags || get_le32(e + 8) > VBLK_MAX_DISCARD_SECTORS ||
            !in_range(d, get_le64(e), (uint64_t)get_le32(e + 8) * VBLK_SECTOR_BYTES, &pos))
            return fail_range(d);
    }
    /* A discard is a hint (§5.2.6.2 leaves the contents after it unspecified): an
     * RW disk keeps its bytes; a snapshot disk gives back the pool blocks wholly
     * inside a range, which then read as the image again. */
    if (d->mode == VBLK_MODE_SNAPSHOT) {
        for (unsigned i = 0; i < n; i++) {
            const uint8_t *e = r + i * VBLK_DISCARD_RANGE_BYTES;
            uint64_t pos = get_le64(e) * VBLK_SECTOR_BYTES;
            uint64_t end = pos + (uint64_t)get_le32(e + 8) * VBLK_SECTOR_BYTES;
            uint64_t b = (pos + VBLK_COW_BLOCK - 1) / VBLK_COW_BLOCK;
            for (; (b + 1) * VBLK_COW_BLOCK <= end; b++)
                if (d->cow_index[b])
                    cow_drop(d, b);
        }
    }
    d->stats.discards++;
    return VIRTIO_BLK_S_OK;
}

/* One request; *data_out gets the data bytes written to the guest (not counting
 * the status byte).  The chain has at least one writable byte for the status. */
static uint8_t do_request(struct vblk_disk *d, const struct gmem *g, const struct vq_chain *ch,
                          uint32_t *data_out)
{
    *data_out = 0;
    /* §5.2.6: the header is device-readable and comes first. */
    if (ch->read_bytes < VBLK_HDR_BYTES) {
        d->stats.err_header++;
        return VIRTIO_BLK_S_IOERR;
    }
    uint8_t hdr[VBLK_HDR_BYTES];
    struct vq_stream c;
    vq_stream_init(&c, ch->seg, ch->n_readable, 0);
    if (!from_guest(g, &c, hdr, sizeof hdr)) {
        d->stats.err_io++;
        return VIRTIO_BLK_S_IOERR;
    }
    uint32_t type = get_le32(hdr);
    uint64_t sector = get_le64(hdr + 8);
    uint32_t rd = ch->read_bytes - VBLK_HDR_BYTES;    /* readable data after the header */
    uint32_t wr = ch->write_bytes - 1;                 /* writable data before the status */
    const struct vq_seg *wseg = ch->seg + ch->n_readable;
    uint16_t nw = ch->n_seg - ch->n_readable;
    uint64_t pos;

    switch (type) {
    case VIRTIO_BLK_T_IN:
        /* §5.2.6: a read's data is device-writable, a multiple of 512 bytes. */
        if (rd)
            return fail_direction(d);
        if (wr % VBLK_SECTOR_BYTES || !in_range(d, sector, wr, &pos))
            return fail_range(d);
        vq_stream_init(&c, wseg, nw, 0);
        if (!disk_read(d, g, &c, pos, wr)) {
            d->stats.err_io++;
            return VIRTIO_BLK_S_IOERR;
        }
        *data_out = wr;
        d->stats.reads++;
        d->stats.bytes_read += wr;
        return VIRTIO_BLK_S_OK;

    case VIRTIO_BLK_T_OUT: {
        /* §5.2.6.2: a write to a device offering VIRTIO_BLK_F_RO gets IOERR. */
        if (d->mode == VBLK_MODE_RO) {
            d->stats.err_readonly++;
            return VIRTIO_BLK_S_IOERR;
        }
        if (wr)
            return fail_direction(d);
        if (rd % VBLK_SECTOR_BYTES || !in_range(d, sector, rd, &pos))
            return fail_range(d);
        vq_stream_init(&c, ch->seg, ch->n_readable, VBLK_HDR_BYTES);
        uint8_t s = disk_write(d, g, &c, pos, rd);
        if (s == VIRTIO_BLK_S_OK) {
            d->stats.writes++;
            d->stats.bytes_written += rd;
        }
        return s;
    }

    case VIRTIO_BLK_T_FLUSH:
        /* §5.2.6: no data.  The image lives in RAM and nothing is cached in front
         * of it, so every completed write is already as durable as it gets. */
        if (rd || wr)
            return fail_direction(d);
        d->stats.flushes++;
        return VIRTIO_BLK_S_OK;

    case VIRTIO_BLK_T_GET_ID: {
        /* §5.2.6: the ID goes into device-writable data, 20 bytes. */
        if (rd || wr == 0)
            return fail_direction(d);
        uint32_t n = wr < VIRTIO_BLK_ID_BYTES ? wr : VIRTIO_BLK_ID_BYTES;
        vq_stream_init(&c, wseg, nw, 0);
        if (!to_guest(g, &c, (const uint8_t *)d->serial, n)) {
            d->stats.err_io++;
            return VIRTIO_BLK_S_IOERR;
        }
        *data_out = n;
        d->stats.get_ids++;
        return VIRTIO_BLK_S_OK;
    }

    case VIRTIO_BLK_T_DISCARD:
        /* §5.2.6.2: only when VIRTIO_BLK_F_DISCARD was negotiated; its ranges are
         * device-readable. */
        if (!(d->features & 1ull << VIRTIO_BLK_F_DISCARD))
            break;
        if (wr)
            return fail_direction(d);
        return do_discard(d, g, ch, rd);

    default:
        break;
    }
    /* §5.2.6.2: an unknown (or not negotiated) type gets UNSUPP. */
    d->stats.err_unsupp++;
    return VIRTIO_BLK_S_UNSUPP;
}

/* Serves one chain; returns the used length: data written plus the status byte. */
static uint32_t serve(struct vblk_disk *d, const struct gmem *g, const struct vq_chain *ch)
{
    d->stats.requests++;
    /* §5.2.6: the status is the last byte, device-writable.  With no writable byte
     * there is nowhere to report anything: complete with nothing written. */
    if (ch->write_bytes == 0) {
        d->stats.err_no_status++;
        return 0;
    }
    uint32_t data = 0;
    uint8_t status = do_request(d, g, ch, &data);
    struct vq_stream c;
    vq_stream_init(&c, ch->seg + ch->n_readable, ch->n_seg - ch->n_readable, ch->write_bytes - 1u);
    if (!to_guest(g, &c, &status, 1)) {
        d->stats.err_io++;
        return data;
    }
    return data + 1;
}

bool vblk_process(struct vblk_disk *d, struct vq *vq, const struct gmem *g,
                  enum vq_error *err)
{
    enum vq_error e;
    unsigned chains = 0;
    for (unsigned round = 0;; round++) {
        /* No kicks while draining (§2.7.10); every completion of the batch becomes
         * visible with one used->idx store (§2.7.8). */
        vq_disable_notify(vq, g);
        for (;;) {
            /* A driver on other vCPUs may keep adding requests as fast as they are
             * served: the call ends on its budget, kicks still off, and the
             * caller comes back (VQ_OK). */
            if (chains == VBLK_BATCH_CHAINS) {
                e = VQ_OK;
                break;
            }
            struct vq_chain ch = { .seg = d->seg, .seg_cap = VBLK_CHAIN_SEGS };
            e = vq_pop(vq, g, &ch);
            if (e != VQ_OK)
                break;
            chains++;
            uint32_t written = serve(d, g, &ch);
            e = vq_used_add(vq, g, ch.head, written);
            if (e != VQ_OK)
                break;
        }
        vq_used_flush(vq, g);
        if (e != VQ_EMPTY)
            break;
        /* Out of rounds (a driver moving avail->idx to and fro, which makes every
         * re-enable find "work" that is none): the same as the budget. */
        if (round + 1 == VBLK_NOTIFY_ROUNDS) {
            e = VQ_OK;
            break;
        }
        /* Re-enabling may find chains made available meanwhile: take them now,
         * the driver may not kick for them. */
        if (!vq_enable_notify(vq, g))
            break;
    }
    if (vq_error_is_driver(e))
        d->stats.queue_errors++;
    if (err)
        *err = e;
    return vq_should_notify(vq, g);
}
