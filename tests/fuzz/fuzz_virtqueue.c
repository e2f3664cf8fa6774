/* The split virtqueue engine (vmm/virtio/virtqueue.c) over a guest RAM image and
 * queue parameters made of the fuzzer's bytes, then a hostile driver's actions
 * (offering heads, rewriting descriptors and ring fields, scribbling anywhere) mixed
 * with a device's pops, pushes, batched flushes and notification calls.  Guest RAM
 * is a heap block of exactly its size, so ASan stops any access outside it.
 * Invariants: every segment a chain yields lies wholly in RAM, is non-empty and
 * comes in readable-then-writable order; a chain's totals add up and stay under the
 * queue's limit and its list; a walk reads at most size + size descriptors; a drain
 * takes at most size chains; the device writes only inside the used ring, and what
 * it publishes there is exactly its own shadow index; a driver error breaks the
 * queue and a broken queue yields nothing and writes nothing until reset.
 *
 * Input: size selector, features, chain limit, list capacity, RAM size, a start
 * index, the three ring addresses, the RAM image, then one byte per action. */
#include "fuzz.h"
#include "vmm/virtio/guest_mem.c"
#include "vmm/virtio/virtqueue.c"

#define RAM_MAX    16384u
#define SEG_MAX    256u

struct params {
    uint16_t size;
    uint64_t features;
    uint16_t start;
    uint64_t desc, avail, used;
};

static struct vq q;
static struct gmem g;
static uint8_t *ram;
static uint8_t shadow[RAM_MAX];         /* RAM as the driver last left it */
static struct vq_seg segs[SEG_MAX];
static struct vq_chain chain;
static uint16_t inflight[VQ_SIZE_MAX];  /* heads taken, not yet returned, FIFO */
static uint32_t inflight_writable[VQ_SIZE_MAX];
static unsigned n_inflight, inflight_first;
static struct params p;

static void check_writes(void);

static void setup_queue(void)
{
    vq_reset(&q);
    vq_set_features(&q, p.features);
    enum vq_error e = vq_set_addrs(&q, &g, p.size, p.desc, p.avail, p.used);
    FUZZ_CHECK(e == VQ_OK || (vq_error_is_driver(e) && q.broken && !q.enabled), "set_addrs %s",
               vq_error_name(e));
    if (e == VQ_OK) {
        FUZZ_CHECK(p.size && !(p.size & (p.size - 1)) && p.size <= VQ_SIZE_MAX, "size %u accepted", p.size);
        FUZZ_CHECK(gmem_contains(&g, p.desc, VQ_DESC_TABLE_BYTES(p.size)) &&
                   gmem_contains(&g, p.avail, VQ_AVAIL_BYTES(p.size)) &&
                   gmem_contains(&g, p.used, VQ_USED_BYTES(p.size)), "rings outside RAM accepted");
        /* A queue that has been running a while, so that the 16-bit indices wrap. */
        q.last_avail_idx = q.used_idx = q.used_published = q.signalled_used = p.start;
    }
    /* vq_set_addrs writes used->flags (and avail_event): in the used ring, if it
     * accepted the rings; nowhere if not. */
    check_writes();
    n_inflight = inflight_first = 0;
}

/* The device may have written only inside the used ring since the last check; a
 * broken or disabled queue not even there.  What it wrote becomes the baseline. */
static void check_writes(void)
{
    uint64_t lo = 0, hi = 0;
    if (q.enabled && !q.broken) {
        lo = q.used_gpa;
        hi = q.used_gpa + VQ_USED_BYTES(q.size);
    }
    if (memcmp(ram, shadow, lo) || memcmp(ram + hi, shadow + hi, g.size - hi)) {
        uint64_t i = 0;
        while (ram[i] == shadow[i] || (i >= lo && i < hi))
            i++;
        FUZZ_CHECK(false, "device wrote %#lx outside the used ring [%#lx, %#lx)", (unsigned long)i,
                   (unsigned long)lo, (unsigned long)hi);
    }
    memcpy(shadow + lo, ram + lo, hi - lo);
}

static void driver_wrote(void)
{
    memcpy(shadow, ram, g.size);
}

static void check_chain(void)
{
    FUZZ_CHECK(chain.n_seg <= chain.seg_cap && chain.n_readable <= chain.n_seg, "%u segs (%u readable), cap %u",
               chain.n_seg, chain.n_readable, chain.seg_cap);
    FUZZ_CHECK(chain.head < q.size, "head %u of %u", chain.head, q.size);
    uint64_t rd = 0, wr = 0;
    for (unsigned i = 0; i < chain.n_seg; i++) {
        const struct vq_seg *s = &chain.seg[i];
        FUZZ_CHECK(s->len > 0, "empty segment %u", i);
        FUZZ_CHECK(s->gpa < g.size && s->len <= g.size - s->gpa, "segment %#lx+%u outside RAM of %#lx",
                   (unsigned long)s->gpa, s->len, (unsigned long)g.size);
        if (i < chain.n_readable)
            rd += s->len;
        else
            wr += s->len;
    }
    FUZZ_CHECK(rd == chain.read_bytes && wr == chain.write_bytes, "totals %lu/%lu vs %u/%u", (unsigned long)rd,
               (unsigned long)wr, chain.read_bytes, chain.write_bytes);
    FUZZ_CHECK(rd + wr <= q.max_chain_bytes, "chain of %lu bytes past %u", (unsigned long)(rd + wr),
               q.max_chain_bytes);
}

/* One vq_pop, checked.  Returns its result. */
static enum vq_error pop(void)
{
    bool was_broken = q.broken;
    uint64_t descs = q.stats.descs;
    uint16_t last = q.last_avail_idx;
    enum vq_error e = vq_pop(&q, &g, &chain);
    uint64_t walked = q.stats.descs - descs;
    FUZZ_CHECK(walked <= 2ull * q.size, "walk read %lu descriptors, queue of %u", (unsigned long)walked, q.size);
    if (was_broken)
        FUZZ_CHECK(e == VQ_ERR_BROKEN && walked == 0, "broken queue popped: %s", vq_error_name(e));
    switch (e) {
    case VQ_OK:
        check_chain();
        FUZZ_CHECK(q.last_avail_idx == (uint16_t)(last + 1), "last_avail_idx %u -> %u", last, q.last_avail_idx);
        FUZZ_CHECK(n_inflight < q.size, "%u chains in flight, queue of %u", n_inflight + 1, q.size);
        inflight[(inflight_first + n_inflight) % VQ_SIZE_MAX] = chain.head;
        inflight_writable[(inflight_first + n_inflight) % VQ_SIZE_MAX] = chain.write_bytes;
        n_inflight++;
        break;
    case VQ_EMPTY:
    case VQ_ERR_NOT_READY:
    case VQ_ERR_BROKEN:
        FUZZ_CHECK(q.last_avail_idx == last, "index moved on %s", vq_error_name(e));
        break;
    default:
        FUZZ_CHECK(vq_error_is_driver(e) && q.broken && q.error == e, "%s without breaking", vq_error_name(e));
        FUZZ_CHECK(vq_device_status(&q) == VIRTIO_STATUS_DEVICE_NEEDS_RESET, "no NEEDS_RESET");
        FUZZ_CHECK(vq_pop(&q, &g, &chain) == VQ_ERR_BROKEN, "broken queue pops again");
        break;
    }
    check_writes();
    return e;
}

/* Returns the oldest chain in flight; deferred leaves used->idx for a flush. */
static void push(uint32_t written, bool deferred)
{
    if (!n_inflight) {
        enum vq_error e = vq_used_add(&q, &g, 0, 0);
        FUZZ_CHECK(e != VQ_OK, "push with nothing in flight");
        check_writes();
        return;
    }
    uint16_t head = inflight[inflight_first];
    uint32_t cap = inflight_writable[inflight_first];
    written = written < cap ? written : cap;
    uint16_t slot = q.used_idx & (q.size - 1);
    bool broken = q.broken;
    enum vq_error e = deferred ? vq_used_add(&q, &g, head, written) : vq_push(&q, &g, head, written);
    if (broken) {
        FUZZ_CHECK(e == VQ_ERR_BROKEN, "broken queue took a push: %s", vq_error_name(e));
    } else {
        FUZZ_CHECK(e == VQ_OK, "push of in-flight head %u: %s", head, vq_error_name(e));
        uint32_t elem[2];
        memcpy(elem, ram + q.used_gpa + 4 + 8ull * slot, 8);
        FUZZ_CHECK(elem[0] == head && elem[1] == written, "used elem %u/%u, pushed %u/%u", elem[0], elem[1], head,
                   written);
        if (!deferred) {
            uint16_t idx;
            memcpy(&idx, ram + q.used_gpa + 2, 2);
            FUZZ_CHECK(idx == q.used_idx && q.used_published == q.used_idx, "used->idx %u, shadow %u", idx,
                       q.used_idx);
        }
    }
    inflight_first = (inflight_first + 1) % VQ_SIZE_MAX;
    n_inflight--;
    check_writes();
}

/* A device draining the queue after a kick: the driver does nothing meanwhile, so
 * at most size chains can be taken. */
static void drain(void)
{
    unsigned taken = 0;
    while (pop() == VQ_OK) {
        taken++;
        FUZZ_CHECK(taken <= q.size, "drain took %u chains from a queue of %u", taken, q.size);
        push(UINT32_MAX, true);
    }
    vq_used_flush(&q, &g);
    check_writes();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = { data, size };
    uint8_t sel = fz_u8(&in);
    p.size = sel & 0x80 ? fz_u16(&in) : (uint16_t)(1u << (sel & 15));
    uint8_t feat = fz_u8(&in);
    p.features = (feat & 1 ? 1ull << VIRTIO_F_INDIRECT_DESC : 0) | (feat & 2 ? 1ull << VIRTIO_F_EVENT_IDX : 0);
    uint32_t max_bytes = fz_u32(&in);
    chain = (struct vq_chain){ .seg = segs, .seg_cap = (uint16_t)(1 + fz_u8(&in)) };
    uint64_t ram_size = 1 + fz_u16(&in) % RAM_MAX;
    p.start = fz_u16(&in);
    p.desc = fz_u64(&in);
    p.avail = fz_u64(&in);
    p.used = fz_u64(&in);

    ram = malloc(ram_size);
    fz_bytes(&in, ram, ram_size);
    gmem_init(&g, ram, ram_size);
    driver_wrote();
    vq_init(&q, max_bytes);
    setup_queue();
    drain();

    while (in.n) {
        uint8_t op = fz_u8(&in);
        switch (op % 12) {
        case 0:
            (void)pop();
            break;
        case 1:
            push(fz_u32(&in), false);
            break;
        case 2:
            push(fz_u32(&in), true);
            break;
        case 3: {
            uint16_t published = q.used_published;
            bool live = q.enabled && !q.broken;
            vq_used_flush(&q, &g);
            if (live) {
                uint16_t idx;
                memcpy(&idx, ram + q.used_gpa + 2, 2);
                FUZZ_CHECK(q.used_published == q.used_idx && (idx == q.used_idx || published == q.used_idx),
                           "flush published %u, shadow %u", idx, q.used_idx);
            }
            check_writes();
            break;
        }
        case 4:
            (void)vq_should_notify(&q, &g);
            check_writes();
            break;
        case 5:
            vq_disable_notify(&q, &g);
            check_writes();
            break;
        case 6:
            (void)vq_enable_notify(&q, &g);
            check_writes();
            break;
        case 7: {
            /* The driver offers a head: ring entry, then idx (§2.7.13). */
            uint16_t head = fz_u16(&in);
            uint16_t idx = 0;
            if (q.size && q.enabled) {
                (void)gmem_read_u16(&g, q.avail_gpa + 2, &idx);
                (void)gmem_write_u16(&g, q.avail_gpa + 4 + 2ull * (idx & (q.size - 1)), head);
                (void)gmem_write_u16(&g, q.avail_gpa + 2, (uint16_t)(idx + 1));
            }
            driver_wrote();
            break;
        }
        case 8: {
            /* The driver rewrites a descriptor of the table. */
            uint16_t i = fz_u16(&in);
            uint8_t d[16];
            uint64_t addr = fz_u32(&in) % (ram_size + 64);    /* mostly in RAM */
            if (op & 0x80)
                addr = fz_u64(&in);
            memcpy(d, &addr, 8);
            fz_bytes(&in, d + 8, 8);
            if (q.size)
                (void)gmem_write(&g, q.desc_gpa + 16ull * (i % q.size), d, 16);
            driver_wrote();
            break;
        }
        case 9: {
            /* Anything anywhere, rings and used->idx included. */
            uint16_t v = fz_u16(&in);
            (void)gmem_write_u16(&g, fz_u16(&in) % ram_size, v);
            driver_wrote();
            break;
        }
        case 10:
            drain();
            break;
        default:
            if (op & 0x10) {
                p.features ^= 1ull << VIRTIO_F_EVENT_IDX;
                setup_queue();
            } else {
                setup_queue();
            }
            FUZZ_CHECK(!q.broken || !q.enabled, "reset left a broken queue enabled");
            driver_wrote();
            break;
        }
    }
    drain();
    free(ram);
    ram = NULL;
    return 0;
}
