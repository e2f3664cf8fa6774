/* virtioblk: a hostile virtio-blk driver.  It finds plinth's virtio-blk function on
 * PCI bus 0 (conf1, vendor 1af4 device 1042), maps its 64-bit BAR 0 (the modern
 * transport's fixed layout, vmm/virtio/pci.h) and runs cases, one result line each:
 *
 *     virtioblk: case NAME: ok (needs reset)          a hostile submission
 *     virtioblk: case NAME: ok (IOERR, ...)           a bad request that is no ring error
 *     virtioblk: case NAME: FAILED <why>
 *
 * then "virtioblk: all N cases ok" (and PASS virtioblk-cases) or "virtioblk: FAILED"
 * (and a FAIL line), and DONE.
 *
 * A hostile case resets the device, initialises it (virtio 1.2 §3.1.1: ACKNOWLEDGE,
 * DRIVER, VERSION_1 and, where the case needs it, INDIRECT_DESC, FEATURES_OK, queue
 * 0 in this VM's RAM with no MSI-X vector, DRIVER_OK), makes one malformed
 * submission and notifies.  The device must then show DEVICE_NEEDS_RESET, leave
 * used->idx where it was, write nothing to this VM's memory (every byte of the
 * ring/buffer arena is compared with a copy taken before the notification; only
 * used->flags, which the device owns, may change) and none to the sentinel areas
 * (a MiB above the arena, the last 64 KiB of RAM), send a configuration change
 * interrupt (ISR bit 1, §2.1.2), and stay broken: a valid request made available
 * afterwards is not served.  After a reset the same device must serve a valid read
 * of sector 0 whose bytes match the image (guests.mk: byte i of virtioblk.img is
 * (i * 7 + (i >> 9)) & 0xff).  Interrupts are never used: avail->flags asks for
 * none and the driver polls used->idx.
 *
 * The VM needs a 64 KiB virtioblk.img as vda, disk_mode = ro, and at least 40 MiB
 * of RAM (the chain-bytes case needs descriptors that add up past 4 GiB, each
 * wholly in RAM, within the device's 128 segments).  Finding the function, BAR 0,
 * the rings, the arena and the sentinels are guests/lib/virtio.c's, shared with
 * virtionet. */
#include "virtio.h"

#define F_BLK_RO       5               /* feature bits, §5.2.3 */

#define T_IN  0                        /* request types and status, §5.2.6 */
#define T_OUT 1
#define BLK_OK    0
#define BLK_IOERR 1

#define IMAGE_BYTES   65536u
#define IMAGE_SECTORS (IMAGE_BYTES / 512)

/* ---- this VM's memory: the rings and buffers, and the sentinels ---- */
#define ARENA      0x200000u
#define ARENA_LEN  0x8000u
#define DESC       (ARENA + 0x0000)    /* 128 descriptors at most: 2 KiB */
#define AVAIL      (ARENA + 0x1000)
#define USED       (ARENA + 0x2000)
#define INDIRECT   (ARENA + 0x3000)
#define HDR        (ARENA + 0x4000)
#define DATA       (ARENA + 0x5000)    /* 4 KiB */
#define STATUS     (ARENA + 0x6000)
#define SENTINEL   0x300000u           /* above the arena, 1 MiB */
#define SENTINEL_LEN 0x100000u
#define TAIL_LEN   0x10000u            /* the last 64 KiB of RAM */
#define QSIZE      16                  /* the cases' queue size */
#define QSIZE_BIG  128                 /* chain-bytes: room for its long chain */
#define CHAIN_SEGS_MAX 120             /* below the device's 128 segments */

static uint32_t ram_top;
static struct vring rq = { .desc = DESC, .avail = AVAIL, .used = USED };
static uint32_t arena_copy[ARENA_LEN / 4];
static const struct arena arena = { ARENA, ARENA_LEN, arena_copy };
static unsigned cases_run, cases_failed;

static uint8_t image_byte(uint32_t i) { return (uint8_t)(i * 7 + (i >> 9)); }

static bool sentinels_ok(void)
{
    return sentinel_ok(SENTINEL, SENTINEL_LEN, "the sentinel MiB") &&
           sentinel_ok(ram_top - TAIL_LEN, TAIL_LEN, "RAM's last 64 KiB");
}

/* used->flags belongs to the device (§2.7.10): it may store it at any time. */
static const struct span used_flags = { USED, 2 };

/* ---- the rings ---- */

/* The request header at HDR, the status byte at STATUS set to 0xff. */
static void put_header(uint32_t type, uint64_t sector)
{
    *mem32(HDR) = type;
    *mem32(HDR + 4) = 0;
    *mem32(HDR + 8) = (uint32_t)sector;
    *mem32(HDR + 12) = (uint32_t)(sector >> 32);
    *mem8(STATUS) = 0xff;
}

/* A well-formed 3-descriptor request at descriptors first..first+2 of table. */
static void put_request(uint32_t table, unsigned first, uint32_t type, uint64_t sector, uint32_t len)
{
    put_header(type, sector);
    put_desc(table, first, HDR, 16, D_NEXT, (uint16_t)(first + 1));
    put_desc(table, first + 1, DATA, len, (uint16_t)(D_NEXT | (type == T_IN ? D_WRITE : 0)), (uint16_t)(first + 2));
    put_desc(table, first + 2, STATUS, 1, D_WRITE, 0);
}

/* ---- the device ---- */

struct setup {
    bool indirect;                     /* also accept INDIRECT_DESC */
    uint16_t size;
    uint64_t desc, avail, used;
};

static const struct setup standard = { .indirect = false, .size = QSIZE, .desc = DESC, .avail = AVAIL, .used = USED };

/* Driver initialisation, §3.1.1 and §4.1.5.1.  The rings parts in RAM are zeroed
 * first (a driver's job); a ring outside RAM is only handed to the device.  false
 * (and the case failed) when the device does not behave as a virtio 1.x one. */
static bool device_init(const struct setup *s)
{
    if (!virtio_reset())
        return false;
    rq.size = s->size;
    rq.avail_idx = 0;
    if (s->desc == DESC)
        memset((void *)DESC, 0, 16u * rq.size);
    if (s->avail == AVAIL)
        memset((void *)AVAIL, 0, 6u + 2u * rq.size);
    if (s->used == USED)
        memset((void *)USED, 0, 6u + 8u * rq.size);
    if (s->avail == AVAIL)
        *mem16(AVAIL) = AVAIL_NO_INTERRUPT;    /* polling: no used-buffer interrupts */
    uint64_t offered = virtio_features_offered();
    if (!(offered >> F_VERSION_1 & 1)) {
        case_fail("the device does not offer VERSION_1: features ", true, offered, NULL);
        return false;
    }
    if (s->indirect && !(offered >> F_INDIRECT & 1)) {
        case_fail("the device does not offer INDIRECT_DESC: features ", true, offered, NULL);
        return false;
    }
    if (!virtio_features_accept(1ull << F_VERSION_1 | (s->indirect ? 1ull << F_INDIRECT : 0)))
        return false;
    if (!vring_setup(&rq, 0, s->size, s->desc, s->avail, s->used))
        return false;
    bar_w8(COMMON_STATUS, S_READY);
    return true;
}

/* A valid read on a working queue: status OK, the used element right, the bytes
 * the image holds, nothing else written. */
static bool valid_read(uint64_t sector, uint32_t len)
{
    uint16_t head = (uint16_t)(3 * (rq.avail_idx % (rq.size / 3)));
    memset((void *)DATA, 0, len);
    put_request(DESC, head, T_IN, sector, len);
    uint16_t want = (uint16_t)(rq.avail_idx + 1);
    vring_make_available(&rq, head);
    arena_snapshot(&arena);
    vring_notify(&rq);
    if (!vring_poll_used(&rq, want)) {
        case_fail("a valid read was not completed: used->idx ", true, vring_used_idx(&rq), NULL);
        return false;
    }
    uint8_t st = bar_r8(COMMON_STATUS);
    if (st != S_READY) {
        case_fail("device_status ", true, st, " after a valid read");
        return false;
    }
    if (*mem8(STATUS) != BLK_OK) {
        case_fail("a valid read's status is ", true, *mem8(STATUS), NULL);
        return false;
    }
    uint32_t slot = USED + 4 + 8 * ((want - 1u) & (rq.size - 1u));
    if (*mem32(slot) != head || *mem32(slot + 4) != len + 1) {
        case_fail("a valid read's used element is id ", true, *mem32(slot), NULL);
        case_why_append(" len ");
        case_why_num(*mem32(slot + 4));
        return false;
    }
    for (uint32_t i = 0; i < len; i++)
        if (*mem8(DATA + i) != image_byte((uint32_t)sector * 512 + i)) {
            case_fail("a valid read returned wrong data at byte ", true, i, NULL);
            return false;
        }
    const struct span allow[] = { used_flags, { USED + 2, 2 }, { slot, 8 }, { DATA, len }, { STATUS, 1 } };
    return arena_unchanged(&arena, allow, 5) && sentinels_ok();
}

/* ---- hostile cases ---- */

struct hostile {
    const char *name;
    struct setup setup;
    bool ring_case;                    /* the fault is in the queue's set-up */
    void (*submit)(void);              /* the malformed submission */
};

/* (1) 0 -> 1 -> 0: both device-readable, so that the walk sees only the loop. */
static void submit_loop(void)
{
    put_header(T_OUT, 0);
    put_desc(DESC, 0, HDR, 16, D_NEXT, 1);
    put_desc(DESC, 1, DATA, 512, D_NEXT, 0);
    vring_make_available(&rq, 0);
}

/* (2) next one past the table. */
static void submit_next_range(void)
{
    put_request(DESC, 0, T_IN, 0, 512);
    put_desc(DESC, 1, DATA, 512, D_NEXT | D_WRITE, rq.size);
    vring_make_available(&rq, 0);
}

/* (3) the data buffer straddles the end of RAM: its first 256 bytes are RAM (the
 * tail sentinel), the rest is not. */
static void submit_buf_outside_ram(void)
{
    put_request(DESC, 0, T_IN, 0, 512);
    put_desc(DESC, 1, ram_top - 256, 512, D_NEXT | D_WRITE, 2);
    vring_make_available(&rq, 0);
}

/* (4) the status byte aimed at the device's own device_status register. */
static void submit_buf_in_bar(void)
{
    put_request(DESC, 0, T_IN, 0, 512);
    put_desc(DESC, 2, (uint64_t)virtio_bar + COMMON_STATUS, 1, D_WRITE, 0);
    vring_make_available(&rq, 0);
}

/* (5a) addr + len wraps past 2^64 to 0x1000, inside RAM. */
static void submit_len_wrap(void)
{
    put_request(DESC, 0, T_IN, 0, 512);
    put_desc(DESC, 1, 0xfffffffffffff000ull, 0x2000, D_NEXT | D_WRITE, 2);
    vring_make_available(&rq, 0);
}

/* (5b) device-readable buffers, each wholly in RAM, whose lengths add up past
 * 2^32 - 1 (the used ring's len could not report them). */
static void submit_chain_bytes(void)
{
    uint32_t len = (ram_top - 0x100000u) & ~0xfffffu;
    unsigned n = 0;
    for (uint64_t total = 16; total <= 0xffffffffull; total += len)
        n++;
    put_header(T_OUT, 0);
    put_desc(DESC, 0, HDR, 16, D_NEXT, 1);
    for (unsigned i = 1; i <= n; i++)
        put_desc(DESC, i, 0x100000u, len, i < n ? D_NEXT : 0, (uint16_t)(i + 1));
    vring_make_available(&rq, 0);
}

/* (6) avail->idx more than the queue size ahead of used->idx; slot 0 holds a
 * valid chain, which must not be served either. */
static void submit_avail_idx(void)
{
    put_request(DESC, 0, T_IN, 0, 512);
    vring_make_available(&rq, 0);
    rq.avail_idx = (uint16_t)(rq.size + 1);
    *mem16(AVAIL + 2) = rq.avail_idx;
    barrier();
}

/* (7) a head one past the table (descriptor 0 holds a valid chain). */
static void submit_head_range(void)
{
    put_request(DESC, 0, T_IN, 0, 512);
    vring_make_available(&rq, rq.size);
}

/* The indirect table: a valid request in three descriptors. */
static void put_indirect_table(void)
{
    put_request(INDIRECT, 0, T_IN, 0, 512);
}

/* (8a) an indirect table whose length is no multiple of 16. */
static void submit_indirect_len(void)
{
    put_indirect_table();
    put_desc(DESC, 0, INDIRECT, 3 * 16 + 8, D_INDIRECT, 0);
    vring_make_available(&rq, 0);
}

/* (8b) INDIRECT and NEXT in one descriptor. */
static void submit_indirect_next(void)
{
    put_indirect_table();
    put_desc(DESC, 0, INDIRECT, 3 * 16, D_INDIRECT | D_NEXT, 1);
    put_desc(DESC, 1, STATUS, 1, D_WRITE, 0);
    vring_make_available(&rq, 0);
}

/* (8c) an indirect descriptor without INDIRECT_DESC negotiated. */
static void submit_indirect_unnegotiated(void)
{
    put_indirect_table();
    put_desc(DESC, 0, INDIRECT, 3 * 16, D_INDIRECT, 0);
    vring_make_available(&rq, 0);
}

/* (9) rings the device must refuse at queue_enable: a valid chain made available
 * in the rings that are RAM, which must not be served. */
static void submit_ring_case(void)
{
    vring_make_available(&rq, 0);
}

/* Runs one hostile case: the submission breaks the queue, nothing is written, the
 * queue stays broken, and after a reset a valid read works. */
static void run_hostile(const struct hostile *h)
{
    case_begin();
    cases_run++;
    arena_fill(&arena, cases_run);
    if (!device_init(&h->setup))
        goto out;
    uint8_t st = bar_r8(COMMON_STATUS);
    if (h->ring_case) {
        /* Enabling must already have broken the queue. */
        if (!(st & S_NEEDS_RESET))
            case_fail("enabling the queue left device_status at ", true, st, " (no DEVICE_NEEDS_RESET)");
    } else if (st != S_READY) {
        case_fail("device_status ", true, st, " after a clean initialisation");
    }
    if (case_failed)
        goto out;
    /* A ring the device refused may still be RAM: it must not be written. */
    if (h->ring_case && h->setup.desc == DESC)
        put_request(DESC, 0, T_IN, 0, 512);
    *mem8(STATUS) = 0xff;
    h->submit();
    uint16_t used_before = vring_used_idx(&rq);
    arena_snapshot(&arena);
    vring_notify(&rq);
    /* What it wrote first (the worst), then what it says. */
    if (!sentinels_ok())
        goto out;
    if (vring_used_idx(&rq) != used_before)
        case_fail("used->idx moved to ", true, vring_used_idx(&rq), " (the malformed chain was served)");
    else if (*mem8(STATUS) != 0xff)
        case_fail("the status byte was written: ", true, *mem8(STATUS), NULL);
    else if (!arena_unchanged(&arena, &used_flags, 1))
        goto out;
    st = bar_r8(COMMON_STATUS);
    if (!(st & S_NEEDS_RESET))
        case_fail("device_status ", true, st, " after the submission: no DEVICE_NEEDS_RESET");
    else if ((st & ~S_NEEDS_RESET) != S_READY)
        case_fail("device_status ", true, st, " after the submission (the driver's bits changed)");
    /* §2.1.2: DEVICE_NEEDS_RESET set while DRIVER_OK is a configuration change
     * notification; without MSI-X that is ISR bit 1 (read-to-clear). */
    uint8_t isr = *(volatile uint8_t *)(uintptr_t)(virtio_bar + ISR_OFF);
    if (!case_failed && !h->ring_case && !(isr & ISR_CONFIG))
        case_fail("no configuration change interrupt after DEVICE_NEEDS_RESET: ISR ", true, isr, NULL);
    if (case_failed)
        goto out;
    /* Broken until reset: a valid request made available now is not served. */
    if (h->setup.desc == DESC && h->setup.avail == AVAIL && h->setup.used == USED) {
        for (unsigned i = 0; i < rq.size; i++)
            *mem16(AVAIL + 4 + 2 * i) = 0;
        put_request(DESC, 0, T_IN, 0, 512);
        vring_make_available(&rq, 0);
        arena_snapshot(&arena);
        vring_notify(&rq);
        if (vring_used_idx(&rq) != used_before)
            case_fail("the broken queue served a request: used->idx ", true, vring_used_idx(&rq), NULL);
        else if (!(bar_r8(COMMON_STATUS) & S_NEEDS_RESET))
            case_fail("DEVICE_NEEDS_RESET went away without a reset: device_status ", true, bar_r8(COMMON_STATUS), NULL);
        else if (arena_unchanged(&arena, &used_flags, 1))
            sentinels_ok();
        if (case_failed)
            goto out;
    }
    /* After a reset the device works again. */
    if (!virtio_reset())
        goto out;
    if (!device_init(&standard))
        goto out;
    valid_read(0, 512);
out:
    if (case_failed) {
        cases_failed++;
        gprintf("virtioblk: case %s: FAILED %s\n", h->name, case_why);
    } else {
        gprintf("virtioblk: case %s: ok (needs reset)\n", h->name);
    }
}

/* One request that must complete with status want, used length 1 (nothing but the
 * status byte written), DEVICE_NEEDS_RESET clear, nothing written but the status
 * byte and the used ring. */
static void expect_request_status(uint32_t type, uint64_t sector, uint32_t len, uint8_t want, const char *what)
{
    if (case_failed)
        return;
    uint16_t head = (uint16_t)(3 * (rq.avail_idx % (rq.size / 3)));
    for (uint32_t i = 0; i < len; i++)
        *mem8(DATA + i) = (uint8_t)(0xaa ^ i);
    put_request(DESC, head, type, sector, len);
    uint16_t want_idx = (uint16_t)(rq.avail_idx + 1);
    vring_make_available(&rq, head);
    arena_snapshot(&arena);
    vring_notify(&rq);
    if (!vring_poll_used(&rq, want_idx)) {
        case_fail("", false, 0, what);
        case_why_append(": not completed, used->idx ");
        case_why_num(vring_used_idx(&rq));
        return;
    }
    uint8_t st = bar_r8(COMMON_STATUS);
    uint32_t slot = USED + 4 + 8 * ((want_idx - 1u) & (rq.size - 1u));
    if (*mem8(STATUS) != want) {
        case_fail("", false, 0, what);
        case_why_append(": status ");
        case_why_num(*mem8(STATUS));
        case_why_append(want == BLK_IOERR ? ", expected IOERR (1)" : ", expected OK (0)");
    } else if (st != S_READY) {
        case_fail("", false, 0, what);
        case_why_append(": device_status ");
        case_why_num(st);
        case_why_append(" (a bad request must not break the queue)");
    } else if (*mem32(slot) != head || *mem32(slot + 4) != 1) {
        case_fail("", false, 0, what);
        case_why_append(": used element id ");
        case_why_num(*mem32(slot));
        case_why_append(" len ");
        case_why_num(*mem32(slot + 4));
        case_why_append(", expected len 1 (the status byte only)");
    } else {
        const struct span allow[] = { used_flags, { USED + 2, 2 }, { slot, 8 }, { STATUS, 1 } };
        if (arena_unchanged(&arena, allow, 4))
            sentinels_ok();
    }
}

/* (10) Reads past the end: IOERR each, and the device goes on serving. */
static void run_past_end(void)
{
    case_begin();
    cases_run++;
    arena_fill(&arena, cases_run);
    if (device_init(&standard)) {
        expect_request_status(T_IN, IMAGE_SECTORS, 512, BLK_IOERR, "a read of the sector past the end");
        expect_request_status(T_IN, IMAGE_SECTORS - 1, 1024, BLK_IOERR, "a read across the end");
        expect_request_status(T_IN, 0xffffffffffffffffull, 512, BLK_IOERR, "a read of sector 2^64-1");
        expect_request_status(T_IN, 0x0080000000000000ull, 512, BLK_IOERR, "a read whose byte offset wraps");
        if (!case_failed)
            valid_read(IMAGE_SECTORS - 1, 512);
    }
    if (case_failed) {
        cases_failed++;
        gprintf("virtioblk: case past-end: FAILED %s\n", case_why);
    } else {
        gprintf("virtioblk: case past-end: ok (IOERR, the device kept working)\n");
    }
}

/* (11) A write to the read-only disk: IOERR, and sector 0 still reads as the image. */
static void run_ro_write(void)
{
    case_begin();
    cases_run++;
    arena_fill(&arena, cases_run);
    if (device_init(&standard)) {
        expect_request_status(T_OUT, 0, 512, BLK_IOERR, "a write of sector 0");
        expect_request_status(T_OUT, 5, 4096, BLK_IOERR, "a write of sectors 5-12");
        if (!case_failed)
            valid_read(0, 512);
        if (!case_failed)
            valid_read(5, 4096);
    }
    if (case_failed) {
        cases_failed++;
        gprintf("virtioblk: case ro-write: FAILED %s\n", case_why);
    } else {
        gprintf("virtioblk: case ro-write: ok (IOERR, the disk unchanged)\n");
    }
}

/* ---- the device, found ---- */

static bool find_device(void)
{
    return virtio_find(PCI_DEVICE_VIRTIO_BLK, "virtioblk", "virtio-blk");
}

/* The device's features and configuration, and a first read. */
static bool baseline(void)
{
    case_begin();
    arena_fill(&arena, 0);
    if (!virtio_reset() || !device_init(&standard))
        goto out;
    bar_w32(COMMON_DFSELECT, 0);
    uint32_t lo = bar_r32(COMMON_DF);
    uint32_t cap_lo = bar_r32(DEVCFG_OFF), cap_hi = bar_r32(DEVCFG_OFF + 4);
    gprintf("INFO virtioblk: features %#x (low word), capacity %u sectors\n", lo, cap_lo);
    if (!(lo & 1u << F_BLK_RO))
        case_fail("VIRTIO_BLK_F_RO not offered for a disk_mode = ro disk", false, 0, NULL);
    else if (cap_lo != IMAGE_SECTORS || cap_hi != 0)
        case_fail("capacity ", true, (uint64_t)cap_hi << 32 | cap_lo, " sectors, expected 128");
    else
        valid_read(0, 512);
out:
    if (case_failed)
        gprintf("virtioblk: FAILED the first read: %s\n", case_why);
    return !case_failed;
}

static const struct hostile hostile_cases[] = {
    { "loop", { false, QSIZE, DESC, AVAIL, USED }, false, submit_loop },
    { "next-range", { false, QSIZE, DESC, AVAIL, USED }, false, submit_next_range },
    { "buf-outside-ram", { false, QSIZE, DESC, AVAIL, USED }, false, submit_buf_outside_ram },
    { "buf-in-bar", { false, QSIZE, DESC, AVAIL, USED }, false, submit_buf_in_bar },
    { "len-wrap", { false, QSIZE, DESC, AVAIL, USED }, false, submit_len_wrap },
    { "chain-bytes", { false, QSIZE_BIG, DESC, AVAIL, USED }, false, submit_chain_bytes },
    { "avail-idx", { false, QSIZE, DESC, AVAIL, USED }, false, submit_avail_idx },
    { "head-range", { false, QSIZE, DESC, AVAIL, USED }, false, submit_head_range },
    { "indirect-len", { true, QSIZE, DESC, AVAIL, USED }, false, submit_indirect_len },
    { "indirect-next", { true, QSIZE, DESC, AVAIL, USED }, false, submit_indirect_next },
    { "indirect-unnegotiated", { false, QSIZE, DESC, AVAIL, USED }, false, submit_indirect_unnegotiated },
    /* Filled in at run time (they depend on RAM's end and on BAR 0). */
    { "ring-outside-ram", { false, QSIZE, 0, AVAIL, USED }, true, submit_ring_case },
    { "ring-in-bar", { false, QSIZE, DESC, AVAIL, 0 }, true, submit_ring_case },
};
#define N_HOSTILE (sizeof hostile_cases / sizeof hostile_cases[0])

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic;
    guest_name = "virtioblk";
    ram_top = mb1_ram_top(mbi);
    if (ram_top < 40u << 20) {
        gprintf("virtioblk: FAILED the VM has %u KiB of RAM; the cases need 40 MiB\n", ram_top >> 10);
        fail("virtioblk-cases", "too little RAM");
        return;
    }
    if ((uint32_t)((ram_top - 0x100000u) & ~0xfffffu) * (uint64_t)(CHAIN_SEGS_MAX - 1) <= 0xffffffffull) {
        gprintf("virtioblk: FAILED RAM too small for the chain-bytes case\n");
        fail("virtioblk-cases", "too little RAM");
        return;
    }
    if (!find_device()) {
        fail("virtioblk-cases", "no usable virtio-blk device");
        return;
    }
    sentinel_fill(SENTINEL, SENTINEL_LEN);
    sentinel_fill(ram_top - TAIL_LEN, TAIL_LEN);
    if (!baseline()) {
        fail("virtioblk-cases", "the device did not serve a first valid read");
        return;
    }
    gprintf("INFO virtioblk: %u hostile cases, then past-end and ro-write\n", (unsigned)N_HOSTILE);
    for (unsigned i = 0; i < N_HOSTILE; i++) {
        struct hostile h = hostile_cases[i];
        if (!h.setup.desc)
            h.setup.desc = ram_top;                 /* the descriptor table past RAM */
        if (!h.setup.used)
            h.setup.used = (uint64_t)virtio_bar + COMMON_STATUS;   /* the used ring on device_status */
        run_hostile(&h);
    }
    run_past_end();
    run_ro_write();
    if (cases_failed) {
        gprintf("virtioblk: FAILED\n");
        fail("virtioblk-cases", "%u of %u cases failed", cases_failed, cases_run);
    } else {
        gprintf("virtioblk: all %u cases ok\n", cases_run);
        pass("virtioblk-cases");
    }
}
