#include "vmm/virtio/virtqueue.h"

#include "kernel/string.h"

/* Field offsets in the ring parts (§2.7.6 available ring, §2.7.8 used ring).
 * used_event follows the available ring's entries and avail_event the used ring's
 * (§2.7.7, §2.7.10). */
#define AVAIL_FLAGS         0
#define AVAIL_IDX           2
#define AVAIL_RING          4
#define USED_FLAGS          0
#define USED_IDX            2
#define USED_RING           4
#define USED_ELEM_BYTES     8

/* struct virtq_desc, §2.7.5: le64 addr, le32 len, le16 flags, le16 next. */
struct desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};
_Static_assert(sizeof(struct desc) == VQ_DESC_SIZE, "virtq_desc is 16 bytes");

static const char *const error_names[] = {
    [VQ_OK]                   = "ok",
    [VQ_EMPTY]                = "no buffer available",
    [VQ_ERR_NOT_READY]        = "queue not enabled",
    [VQ_ERR_BROKEN]           = "queue broken until reset",
    [VQ_ERR_SIZE]             = "queue size not a power of 2 in 1..32768",
    [VQ_ERR_ALIGN]            = "ring misaligned (desc 16, avail 2, used 4)",
    [VQ_ERR_RING_RANGE]       = "ring outside guest RAM",
    [VQ_ERR_RING_OVERLAP]     = "rings overlap",
    [VQ_ERR_AVAIL_IDX]        = "more chains available than the queue holds",
    [VQ_ERR_HEAD_RANGE]       = "chain head outside the descriptor table",
    [VQ_ERR_NEXT_RANGE]       = "next descriptor outside its table",
    [VQ_ERR_CHAIN_LOOP]       = "descriptor chain loops",
    [VQ_ERR_BUF_RANGE]        = "buffer outside guest RAM",
    [VQ_ERR_CHAIN_BYTES]      = "chain longer than the length limit",
    [VQ_ERR_CHAIN_SEGS]       = "chain has more buffers than the device takes",
    [VQ_ERR_ORDER]            = "device-readable buffer after a device-writable one",
    [VQ_ERR_INDIRECT_FEATURE] = "indirect descriptor without VIRTIO_F_INDIRECT_DESC",
    [VQ_ERR_INDIRECT_NEXT]    = "indirect descriptor with NEXT",
    [VQ_ERR_INDIRECT_NESTED]  = "indirect descriptor inside an indirect table",
    [VQ_ERR_INDIRECT_LEN]     = "indirect table length bad",
    [VQ_ERR_INDIRECT_RANGE]   = "indirect table outside guest RAM",
    [VQ_ERR_PUSH_HEAD]        = "device returned a head outside the table",
    [VQ_ERR_PUSH_UNPOPPED]    = "device returned more chains than it took",
};

const char *vq_error_name(enum vq_error e)
{
    if ((unsigned)e < sizeof error_names / sizeof error_names[0] && error_names[e])
        return error_names[e];
    return "unknown virtqueue error";
}

/* The driver broke the protocol.  §2.1.2: the device sets DEVICE_NEEDS_RESET "when
 * it enters an error state that a reset is needed"; from here on the queue takes
 * nothing more from the rings and writes nothing to them, so whatever the driver
 * does next cannot make the device act on memory it no longer trusts. */
static enum vq_error vq_fail(struct vq *vq, enum vq_error e)
{
    if (!vq->broken) {
        vq->broken = true;
        vq->error = e;
    }
    return e;
}

void vq_init(struct vq *vq, uint32_t max_chain_bytes)
{
    memset(vq, 0, sizeof *vq);
    vq->max_chain_bytes = max_chain_bytes ? max_chain_bytes : VQ_CHAIN_BYTES_MAX;
}

void vq_reset(struct vq *vq)
{
    uint32_t max_chain_bytes = vq->max_chain_bytes;
    struct vq_stats stats = vq->stats;
    vq_init(vq, max_chain_bytes);
    vq->stats = stats;
}

void vq_set_features(struct vq *vq, uint64_t features)
{
    vq->indirect = (features >> VIRTIO_F_INDIRECT_DESC) & 1;
    vq->event_idx = (features >> VIRTIO_F_EVENT_IDX) & 1;
}

/* Both ranges lie in RAM (checked first), so neither end can wrap. */
static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a < b + blen && b < a + alen;
}

enum vq_error vq_set_addrs(struct vq *vq, const struct gmem *g, uint16_t size,
                           uint64_t desc_gpa, uint64_t avail_gpa, uint64_t used_gpa)
{
    if (vq->broken)
        return VQ_ERR_BROKEN;
    vq->enabled = false;
    /* §2.7: a power of 2, at most 32768; the free-running 16-bit indices rely on
     * it (an index wraps at 65536, a multiple of every such size). */
    if (size == 0 || size > VQ_SIZE_MAX || (size & (size - 1)))
        return vq_fail(vq, VQ_ERR_SIZE);
    /* §2.7.1: "The driver MUST ensure that the physical address of the first byte
     * of each virtqueue part is a multiple of the specified alignment value". */
    if (desc_gpa % VQ_DESC_ALIGN || avail_gpa % VQ_AVAIL_ALIGN || used_gpa % VQ_USED_ALIGN)
        return vq_fail(vq, VQ_ERR_ALIGN);
    uint64_t desc_len = VQ_DESC_TABLE_BYTES(size);
    uint64_t avail_len = VQ_AVAIL_BYTES(size);
    uint64_t used_len = VQ_USED_BYTES(size);
    /* Checked once here, so that every later ring access is known to stay in RAM
     * (each still goes through gmem, which checks again). */
    if (!gmem_contains(g, desc_gpa, desc_len) || !gmem_contains(g, avail_gpa, avail_len) ||
        !gmem_contains(g, used_gpa, used_len))
        return vq_fail(vq, VQ_ERR_RING_RANGE);
    /* §2.7: each part is written by the driver or by the device, never both.  A
     * used ring laid over the descriptors would have the device rewrite the chains
     * it is about to read; refuse any overlap rather than reason about which. */
    if (ranges_overlap(desc_gpa, desc_len, avail_gpa, avail_len) ||
        ranges_overlap(desc_gpa, desc_len, used_gpa, used_len) ||
        ranges_overlap(avail_gpa, avail_len, used_gpa, used_len))
        return vq_fail(vq, VQ_ERR_RING_OVERLAP);

    vq->size = size;
    vq->desc_gpa = desc_gpa;
    vq->avail_gpa = avail_gpa;
    vq->used_gpa = used_gpa;
    vq->last_avail_idx = 0;
    vq->used_idx = 0;
    vq->used_published = 0;
    vq->signalled_used = 0;
    /* Available buffer notifications start enabled (§2.7.10): used->flags 0, and
     * with EVENT_IDX avail_event 0, "notify me when you make entry 0 available".
     * The driver initialises flags to 0 but nothing initialises avail_event, and a
     * stale one could keep the driver from ever sending the first notification. */
    if (!gmem_write_u16(g, used_gpa + USED_FLAGS, 0) ||
        (vq->event_idx && !gmem_write_u16(g, used_gpa + USED_RING + USED_ELEM_BYTES * size, 0)))
        return vq_fail(vq, VQ_ERR_RING_RANGE);
    vq->enabled = true;
    return VQ_OK;
}

/* Walks the chain from head into out.  Every descriptor is copied out of guest
 * memory once and only the copy is checked and used, so a driver rewriting the
 * table meanwhile changes nothing the checks have passed.
 *
 * Termination: each descriptor read spends one unit of a time-to-live that starts
 * at the number of descriptors in the table being walked (the queue size, or the
 * indirect table's count).  A chain that visits more descriptors than its table
 * holds must have revisited one, i.e. it loops (§2.7.5.2: "loops in the descriptor
 * chain are forbidden"); the walk is at most size + size reads. */
static enum vq_error walk_chain(struct vq *vq, const struct gmem *g, uint16_t head,
                                struct vq_chain *out)
{
    uint64_t table = vq->desc_gpa;
    uint32_t table_n = vq->size;
    uint32_t ttl = vq->size;
    uint32_t i = head;
    bool in_indirect = false;
    bool seen_writable = false;
    uint64_t total = 0;

    out->head = head;
    out->n_seg = 0;
    out->n_readable = 0;
    out->read_bytes = 0;
    out->write_bytes = 0;
    for (;;) {
        struct desc d;
        if (ttl == 0)
            return VQ_ERR_CHAIN_LOOP;
        ttl--;
        /* i < table_n and the table lies in RAM (vq_set_addrs, or checked below for
         * an indirect one), so this read fails only if the caller changed gmem. */
        if (!gmem_read(g, table + (uint64_t)i * VQ_DESC_SIZE, &d, sizeof d))
            return in_indirect ? VQ_ERR_INDIRECT_RANGE : VQ_ERR_RING_RANGE;
        vq->stats.descs++;

        if (d.flags & VIRTQ_DESC_F_INDIRECT) {
            /* §2.7.5.3.1: only with the feature, "only one table per descriptor"
             * (none inside a table), never together with NEXT: the indirect table
             * ends the chain, after zero or more direct descriptors (§2.7.5.3.2).
             * Its WRITE flag means nothing and is ignored (§2.7.5.3.2). */
            if (in_indirect)
                return VQ_ERR_INDIRECT_NESTED;
            if (!vq->indirect)
                return VQ_ERR_INDIRECT_FEATURE;
            if (d.flags & VIRTQ_DESC_F_NEXT)
                return VQ_ERR_INDIRECT_NEXT;
            /* len / 16 descriptors; "A driver MUST NOT create a descriptor chain
             * longer than the Queue Size of the device" (§2.7.5.3.1) bounds it. */
            if (d.len == 0 || d.len % VQ_DESC_SIZE || d.len / VQ_DESC_SIZE > vq->size)
                return VQ_ERR_INDIRECT_LEN;
            if (!gmem_contains(g, d.addr, d.len))
                return VQ_ERR_INDIRECT_RANGE;
            table = d.addr;
            table_n = d.len / VQ_DESC_SIZE;
            ttl = table_n;
            i = 0;              /* §2.7.5.3: the first is at index 0 of the table */
            in_indirect = true;
            continue;
        }

        bool writable = d.flags & VIRTQ_DESC_F_WRITE;
        /* §2.7.4.2: "The driver MUST place any device-writable descriptor elements
         * after any device-readable descriptor elements".  Devices rely on it (a
         * request header read, then data and status written), so a chain that
         * interleaves them is refused, an empty descriptor included. */
        if (!writable && seen_writable)
            return VQ_ERR_ORDER;
        seen_writable |= writable;
        if (d.len) {
            if (!gmem_contains(g, d.addr, d.len))
                return VQ_ERR_BUF_RANGE;
            /* In 64 bits: at most two 32-bit lengths past a limit below 2^32. */
            total += d.len;
            if (total > vq->max_chain_bytes)
                return VQ_ERR_CHAIN_BYTES;
            /* §2.7.4.1: "The device MAY have a reasonable limit of descriptors it
             * will allow in a chain"; the device advertises it (seg_max). */
            if (out->n_seg >= out->seg_cap)
                return VQ_ERR_CHAIN_SEGS;
            out->seg[out->n_seg++] = (struct vq_seg){ .gpa = d.addr, .len = d.len };
            if (writable) {
                out->write_bytes += d.len;
            } else {
                out->read_bytes += d.len;
                out->n_readable++;
            }
        }
        if (!(d.flags & VIRTQ_DESC_F_NEXT))
            return VQ_OK;
        if (d.next >= table_n)
            return VQ_ERR_NEXT_RANGE;
        i = d.next;
    }
}

enum vq_error vq_pop(struct vq *vq, const struct gmem *g, struct vq_chain *out)
{
    if (vq->broken)
        return VQ_ERR_BROKEN;
    if (!vq->enabled)
        return VQ_ERR_NOT_READY;
    uint16_t avail_idx;
    if (!gmem_read_u16(g, vq->avail_gpa + AVAIL_IDX, &avail_idx))
        return vq_fail(vq, VQ_ERR_RING_RANGE);
    uint16_t pending = (uint16_t)(avail_idx - vq->last_avail_idx);
    if (pending == 0)
        return VQ_EMPTY;
    /* Every chain holds at least one of the size descriptors until the driver sees
     * it in the used ring ("at most Queue Size buffers can be queued at any given
     * time", §2.7), so counting from the used idx the device has published, no
     * more than size chains can be outstanding; and idx never moves back
     * (§2.7.6.1).  Past that the driver is reusing descriptors the device still
     * holds (a device that keeps state per head would see one head twice), or idx
     * is garbage. */
    if ((uint16_t)(avail_idx - vq->used_published) > vq->size)
        return vq_fail(vq, VQ_ERR_AVAIL_IDX);
    /* Pairs with the driver's barrier before it stores idx (§2.7.13.3.1): the ring
     * entry and the descriptors are read only after idx said they are there. */
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    uint16_t head;
    if (!gmem_read_u16(g, vq->avail_gpa + AVAIL_RING + 2ull * (vq->last_avail_idx & (vq->size - 1)), &head))
        return vq_fail(vq, VQ_ERR_RING_RANGE);
    if (head >= vq->size)
        return vq_fail(vq, VQ_ERR_HEAD_RANGE);
    enum vq_error e = walk_chain(vq, g, head, out);
    if (e != VQ_OK)
        return vq_fail(vq, e);
    vq->last_avail_idx++;
    vq->stats.chains++;
    return VQ_OK;
}

enum vq_error vq_unpop(struct vq *vq, uint16_t n)
{
    if (vq->broken)
        return VQ_ERR_BROKEN;
    if (!vq->enabled)
        return VQ_ERR_NOT_READY;
    /* last_avail_idx - used_idx is the number taken and not completed; only those
     * can go back, or the device would hand the driver's entries out twice. */
    if (n > (uint16_t)(vq->last_avail_idx - vq->used_idx))
        return VQ_ERR_PUSH_UNPOPPED;
    vq->last_avail_idx = (uint16_t)(vq->last_avail_idx - n);
    vq->stats.chains -= n;
    return VQ_OK;
}

enum vq_error vq_used_add(struct vq *vq, const struct gmem *g, uint16_t head, uint32_t written_len)
{
    if (vq->broken)
        return VQ_ERR_BROKEN;
    if (!vq->enabled)
        return VQ_ERR_NOT_READY;
    if (head >= vq->size)
        return VQ_ERR_PUSH_HEAD;
    /* The used index never passes the available one the device has taken: more
     * completions than chains would hand the driver entries it never offered. */
    if (vq->used_idx == vq->last_avail_idx)
        return VQ_ERR_PUSH_UNPOPPED;
    /* struct virtq_used_elem, §2.7.8: le32 id, le32 len. */
    uint32_t elem[2] = { head, written_len };
    uint64_t slot = vq->used_gpa + USED_RING + USED_ELEM_BYTES * (uint64_t)(vq->used_idx & (vq->size - 1));
    if (!gmem_write(g, slot, elem, sizeof elem))
        return vq_fail(vq, VQ_ERR_RING_RANGE);
    vq->used_idx++;
    vq->stats.used++;
    return VQ_OK;
}

void vq_used_flush(struct vq *vq, const struct gmem *g)
{
    if (vq->broken || !vq->enabled || vq->used_published == vq->used_idx)
        return;
    /* §2.7.8.2: "The device MUST set len prior to updating the used idx", and
     * write the buffers' contents before it too: everything stored so far becomes
     * visible to the driver no later than the new idx. */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    /* The shadow, never a value read back from used->idx: the guest may have
     * written anything there, and it only fools itself. */
    if (!gmem_write_u16(g, vq->used_gpa + USED_IDX, vq->used_idx)) {
        vq_fail(vq, VQ_ERR_RING_RANGE);
        return;
    }
    vq->used_published = vq->used_idx;
    vq->stats.publishes++;
}

enum vq_error vq_push(struct vq *vq, const struct gmem *g, uint16_t head, uint32_t written_len)
{
    enum vq_error e = vq_used_add(vq, g, head, written_len);
    if (e == VQ_OK)
        vq_used_flush(vq, g);
    return e;
}

bool vq_should_notify(struct vq *vq, const struct gmem *g)
{
    if (vq->broken || !vq->enabled)
        return false;
    uint16_t old = vq->signalled_used;
    uint16_t new_idx = vq->used_published;
    vq->signalled_used = new_idx;
    /* Nothing published since the last decision: no interrupt is owed, whatever
     * the driver's flags say. */
    if (new_idx == old)
        return false;
    /* The driver re-enables interrupts (flags or used_event) and then re-reads
     * used->idx (§2.7.14's note); the device stored used->idx and now reads the
     * driver's choice.  Store then load on both sides: without a full barrier
     * (x86 reorders a load before an older store) each can miss the other's write
     * and the interrupt is lost. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    bool notify;
    if (vq->event_idx) {
        /* §2.7.7.2: notify when the used idx passes used_event; the lower bit of
         * flags is ignored. */
        uint16_t used_event;
        if (!gmem_read_u16(g, vq->avail_gpa + AVAIL_RING + 2ull * vq->size, &used_event)) {
            vq_fail(vq, VQ_ERR_RING_RANGE);
            return false;
        }
        notify = vq_need_event(used_event, new_idx, old);
    } else {
        /* §2.7.7.2: flags 1 means SHOULD NOT notify, 0 MUST. */
        uint16_t flags;
        if (!gmem_read_u16(g, vq->avail_gpa + AVAIL_FLAGS, &flags)) {
            vq_fail(vq, VQ_ERR_RING_RANGE);
            return false;
        }
        notify = !(flags & VIRTQ_AVAIL_F_NO_INTERRUPT);
    }
    if (notify)
        vq->stats.notifies++;
    else
        vq->stats.suppressed++;
    return notify;
}

void vq_disable_notify(struct vq *vq, const struct gmem *g)
{
    /* With EVENT_IDX the device "MUST set flags to 0" (§2.7.10.2) and suppresses
     * by leaving avail_event behind: once the driver's idx has passed it, the
     * driver sends nothing until vq_enable_notify moves it again. */
    if (vq->broken || !vq->enabled || vq->event_idx)
        return;
    if (!gmem_write_u16(g, vq->used_gpa + USED_FLAGS, VIRTQ_USED_F_NO_NOTIFY))
        vq_fail(vq, VQ_ERR_RING_RANGE);
}

bool vq_enable_notify(struct vq *vq, const struct gmem *g)
{
    if (vq->broken || !vq->enabled)
        return false;
    bool ok;
    if (vq->event_idx)
        /* §2.7.10.2: notify me once you make entry last_avail_idx available, i.e.
         * for the first chain the device has not taken. */
        ok = gmem_write_u16(g, vq->used_gpa + USED_RING + USED_ELEM_BYTES * (uint64_t)vq->size,
                            vq->last_avail_idx);
    else
        ok = gmem_write_u16(g, vq->used_gpa + USED_FLAGS, 0);
    if (!ok) {
        vq_fail(vq, VQ_ERR_RING_RANGE);
        return false;
    }
    /* The mirror of vq_should_notify's barrier: the driver stores idx then reads
     * our flags/avail_event (§2.7.13.4.1); we store those then re-read idx.  A chain
     * it made available before seeing the re-enabled state is found here. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    uint16_t avail_idx;
    if (!gmem_read_u16(g, vq->avail_gpa + AVAIL_IDX, &avail_idx)) {
        vq_fail(vq, VQ_ERR_RING_RANGE);
        return false;
    }
    return avail_idx != vq->last_avail_idx;
}
