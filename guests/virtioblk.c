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
 * wholly in RAM, within the device's 128 segments). */
#include "guest.h"

/* ---- PCI configuration mechanism #1 ---- */
#define CONF1_ADDR 0xcf8
#define CONF1_DATA 0xcfc
#define PCI_VENDOR_VIRTIO 0x1af4
#define PCI_DEVICE_VIRTIO_BLK 0x1042
#define PCI_COMMAND 0x04
#define PCI_COMMAND_MEMORY 0x2
#define PCI_COMMAND_MASTER 0x4
#define PCI_BAR0 0x10

/* ---- BAR 0 (vmm/virtio/pci.h; virtio 1.2 §4.1.4.3) ---- */
#define COMMON_DFSELECT 0x00
#define COMMON_DF       0x04
#define COMMON_GFSELECT 0x08
#define COMMON_GF       0x0c
#define COMMON_MSIX     0x10
#define COMMON_STATUS   0x14
#define COMMON_Q_SELECT 0x16
#define COMMON_Q_SIZE   0x18
#define COMMON_Q_MSIX   0x1a
#define COMMON_Q_ENABLE 0x1c
#define COMMON_Q_NOFF   0x1e
#define COMMON_Q_DESCLO 0x20
#define COMMON_Q_DESCHI 0x24
#define COMMON_Q_AVAILLO 0x28
#define COMMON_Q_AVAILHI 0x2c
#define COMMON_Q_USEDLO 0x30
#define COMMON_Q_USEDHI 0x34
#define ISR_OFF         0x1000
#define DEVCFG_OFF      0x2000
#define NOTIFY_OFF      0x3000
#define NOTIFY_MULT     4

#define S_ACK          0x01
#define S_DRIVER       0x02
#define S_DRIVER_OK    0x04
#define S_FEATURES_OK  0x08
#define S_NEEDS_RESET  0x40
#define S_READY        (S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK)

#define F_BLK_RO       5               /* feature bits, §5.2.3, §6 */
#define F_INDIRECT     28
#define F_VERSION_1    32
#define NO_VECTOR      0xffff
#define ISR_CONFIG     0x2

#define D_NEXT     1                   /* descriptor flags, §2.7.5 */
#define D_WRITE    2
#define D_INDIRECT 4
#define AVAIL_NO_INTERRUPT 1

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

static uint32_t bar;                   /* BAR 0, below 4 GiB */
static uint32_t ram_top;
static uint16_t notify_off;
static uint16_t qsize;
static uint16_t avail_idx;
static uint32_t arena_copy[ARENA_LEN / 4];
static unsigned cases_run, cases_failed;

/* Why the current case failed (the first reason only). */
static char why[160];
static bool failed;

static void why_append(const char *s)
{
    size_t n = strlen(why);
    while (*s && n + 1 < sizeof why)
        why[n++] = *s++;
    why[n] = 0;
}

static void why_num(uint64_t v)
{
    char b[20];
    int n = 0;
    why_append("0x");
    do {
        b[n++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    char s[2] = { 0, 0 };
    while (n) {
        s[0] = b[--n];
        why_append(s);
    }
}

/* Records the case's first failure: text, then a number (if has_num), then tail. */
static void bad(const char *text, bool has_num, uint64_t num, const char *tail)
{
    if (failed)
        return;
    failed = true;
    why[0] = 0;
    why_append(text);
    if (has_num)
        why_num(num);
    if (tail)
        why_append(tail);
}

/* ---- PCI ---- */

static uint32_t conf1_addr(unsigned dev, unsigned off)
{
    return 0x80000000u | dev << 11 | (off & 0xfc);
}

static uint32_t conf_read32(unsigned dev, unsigned off)
{
    outl(CONF1_ADDR, conf1_addr(dev, off));
    return inl(CONF1_DATA);
}

static uint16_t conf_read16(unsigned dev, unsigned off)
{
    outl(CONF1_ADDR, conf1_addr(dev, off));
    return inw((uint16_t)(CONF1_DATA + (off & 2)));
}

static void conf_write16(unsigned dev, unsigned off, uint16_t v)
{
    outl(CONF1_ADDR, conf1_addr(dev, off));
    outw((uint16_t)(CONF1_DATA + (off & 2)), v);
}

/* ---- BAR 0 accesses, each one plain MOV of its width ---- */

static uint8_t r8(uint32_t off) { return *(volatile uint8_t *)(uintptr_t)(bar + off); }
static uint16_t r16(uint32_t off) { return *(volatile uint16_t *)(uintptr_t)(bar + off); }
static uint32_t r32(uint32_t off) { return *(volatile uint32_t *)(uintptr_t)(bar + off); }
static void w8(uint32_t off, uint8_t v) { *(volatile uint8_t *)(uintptr_t)(bar + off) = v; }
static void w16(uint32_t off, uint16_t v) { *(volatile uint16_t *)(uintptr_t)(bar + off) = v; }
static void w32(uint32_t off, uint32_t v) { *(volatile uint32_t *)(uintptr_t)(bar + off) = v; }

static void barrier(void) { __asm__ volatile("" : : : "memory"); }

/* ---- guest memory helpers ---- */

static volatile uint8_t *mem8(uint32_t gpa) { return (volatile uint8_t *)(uintptr_t)gpa; }
static volatile uint16_t *mem16(uint32_t gpa) { return (volatile uint16_t *)(uintptr_t)gpa; }
static volatile uint32_t *mem32(uint32_t gpa) { return (volatile uint32_t *)(uintptr_t)gpa; }

static uint8_t image_byte(uint32_t i) { return (uint8_t)(i * 7 + (i >> 9)); }

/* The canary patterns: the arena's changes each case, the sentinels' never. */
static uint32_t arena_word(uint32_t i, uint32_t seed) { return (i * 0x9e3779b1u) ^ seed ^ 0xa5a5a5a5u; }
static uint32_t sentinel_word(uint32_t gpa) { return gpa * 0x85ebca6bu ^ 0x5a5aa5a5u; }

static void fill_words(uint32_t gpa, uint32_t len)
{
    for (uint32_t a = gpa; a < gpa + len; a += 4)
        *mem32(a) = sentinel_word(a);
}

/* Checks a sentinel range; false (and the case failed) at the first changed word. */
static bool sentinel_ok(uint32_t gpa, uint32_t len, const char *what)
{
    for (uint32_t a = gpa; a < gpa + len; a += 4)
        if (*mem32(a) != sentinel_word(a)) {
            bad("memory written in ", false, 0, what);
            why_append(" at ");
            why_num(a);
            return false;
        }
    return true;
}

static bool sentinels_ok(void)
{
    return sentinel_ok(SENTINEL, SENTINEL_LEN, "the sentinel MiB") &&
           sentinel_ok(ram_top - TAIL_LEN, TAIL_LEN, "RAM's last 64 KiB");
}

static void arena_fill(uint32_t seed)
{
    for (uint32_t i = 0; i < ARENA_LEN / 4; i++)
        *mem32(ARENA + 4 * i) = arena_word(i, seed);
}

static void arena_snapshot(void)
{
    for (uint32_t i = 0; i < ARENA_LEN / 4; i++)
        arena_copy[i] = *mem32(ARENA + 4 * i);
}

/* A range of the arena the device may write. */
struct span { uint32_t gpa, len; };

/* Every arena byte outside the allowed spans is as the snapshot had it. */
static bool arena_unchanged(const struct span *allow, unsigned n)
{
    for (uint32_t i = 0; i < ARENA_LEN / 4; i++) {
        uint32_t now = *mem32(ARENA + 4 * i);
        if (now == arena_copy[i])
            continue;
        for (unsigned b = 0; b < 4; b++) {
            uint32_t gpa = ARENA + 4 * i + b;
            if (((now ^ arena_copy[i]) >> (8 * b)) & 0xff) {
                bool ok = false;
                for (unsigned s = 0; s < n; s++)
                    ok |= gpa >= allow[s].gpa && gpa - allow[s].gpa < allow[s].len;
                if (!ok) {
                    bad("the device wrote guest memory at ", true, gpa, " (outside the buffers it may write)");
                    return false;
                }
            }
        }
    }
    return true;
}

/* used->flags belongs to the device (§2.7.10): it may store it at any time. */
static const struct span used_flags = { USED, 2 };

/* ---- the rings ---- */

static void put_desc(uint32_t table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    uint32_t e = table + 16 * i;
    *mem32(e) = (uint32_t)addr;
    *mem32(e + 4) = (uint32_t)(addr >> 32);
    *mem32(e + 8) = len;
    *mem16(e + 12) = flags;
    *mem16(e + 14) = next;
}

/* Makes head available in the next ring slot and publishes the index. */
static void make_available(uint16_t head)
{
    *mem16(AVAIL + 4 + 2 * (avail_idx & (qsize - 1))) = head;
    barrier();
    avail_idx++;
    *mem16(AVAIL + 2) = avail_idx;
    barrier();
}

static uint16_t used_idx(void) { return *mem16(USED + 2); }

static void notify(void)
{
    barrier();
    w16(NOTIFY_OFF + (uint32_t)notify_off * NOTIFY_MULT, 0);
    barrier();
}

/* Waits (bounded) for used->idx to reach want; the device serves a notification
 * within the exit, so this is short. */
static bool poll_used(uint16_t want)
{
    for (uint32_t i = 0; i < 100000; i++) {
        if (used_idx() == want)
            return true;
        __asm__ volatile("pause");
    }
    return false;
}

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

static bool device_reset(void)
{
    w8(COMMON_STATUS, 0);
    for (int i = 0; i < 1000; i++)
        if (r8(COMMON_STATUS) == 0)
            return true;
    bad("device_status did not read 0 after the reset", false, 0, NULL);
    return false;
}

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
    if (!device_reset())
        return false;
    qsize = s->size;
    avail_idx = 0;
    if (s->desc == DESC)
        memset((void *)DESC, 0, 16u * qsize);
    if (s->avail == AVAIL)
        memset((void *)AVAIL, 0, 6u + 2u * qsize);
    if (s->used == USED)
        memset((void *)USED, 0, 6u + 8u * qsize);
    if (s->avail == AVAIL)
        *mem16(AVAIL) = AVAIL_NO_INTERRUPT;    /* polling: no used-buffer interrupts */
    w8(COMMON_STATUS, S_ACK);
    w8(COMMON_STATUS, S_ACK | S_DRIVER);
    w32(COMMON_DFSELECT, 1);
    uint32_t hi = r32(COMMON_DF);
    w32(COMMON_DFSELECT, 0);
    uint32_t lo = r32(COMMON_DF);
    if (!(hi & 1u << (F_VERSION_1 - 32))) {
        bad("the device does not offer VERSION_1: features ", true, (uint64_t)hi << 32 | lo, NULL);
        return false;
    }
    if (s->indirect && !(lo & 1u << F_INDIRECT)) {
        bad("the device does not offer INDIRECT_DESC: features ", true, (uint64_t)hi << 32 | lo, NULL);
        return false;
    }
    w32(COMMON_GFSELECT, 1);
    w32(COMMON_GF, 1u << (F_VERSION_1 - 32));
    w32(COMMON_GFSELECT, 0);
    w32(COMMON_GF, s->indirect ? 1u << F_INDIRECT : 0);
    w8(COMMON_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
    uint8_t st = r8(COMMON_STATUS);
    if (!(st & S_FEATURES_OK)) {
        bad("FEATURES_OK did not stick: device_status ", true, st, NULL);
        return false;
    }
    w16(COMMON_MSIX, NO_VECTOR);
    w16(COMMON_Q_SELECT, 0);
    uint16_t max = r16(COMMON_Q_SIZE);
    if (max < s->size) {
        bad("queue 0 holds only ", true, max, " entries");
        return false;
    }
    w16(COMMON_Q_SIZE, s->size);
    w16(COMMON_Q_MSIX, NO_VECTOR);
    notify_off = r16(COMMON_Q_NOFF);
    w32(COMMON_Q_DESCLO, (uint32_t)s->desc);
    w32(COMMON_Q_DESCHI, (uint32_t)(s->desc >> 32));
    w32(COMMON_Q_AVAILLO, (uint32_t)s->avail);
    w32(COMMON_Q_AVAILHI, (uint32_t)(s->avail >> 32));
    w32(COMMON_Q_USEDLO, (uint32_t)s->used);
    w32(COMMON_Q_USEDHI, (uint32_t)(s->used >> 32));
    w16(COMMON_Q_ENABLE, 1);
    w8(COMMON_STATUS, S_READY);
    return true;
}

/* A valid read on a working queue: status OK, the used element right, the bytes
 * the image holds, nothing else written. */
static bool valid_read(uint64_t sector, uint32_t len)
{
    uint16_t head = (uint16_t)(3 * (avail_idx % (qsize / 3)));
    memset((void *)DATA, 0, len);
    put_request(DESC, head, T_IN, sector, len);
    uint16_t want = (uint16_t)(avail_idx + 1);
    make_available(head);
    arena_snapshot();
    notify();
    if (!poll_used(want)) {
        bad("a valid read was not completed: used->idx ", true, used_idx(), NULL);
        return false;
    }
    uint8_t st = r8(COMMON_STATUS);
    if (st != S_READY) {
        bad("device_status ", true, st, " after a valid read");
        return false;
    }
    if (*mem8(STATUS) != BLK_OK) {
        bad("a valid read's status is ", true, *mem8(STATUS), NULL);
        return false;
    }
    uint32_t slot = USED + 4 + 8 * ((want - 1u) & (qsize - 1u));
    if (*mem32(slot) != head || *mem32(slot + 4) != len + 1) {
        bad("a valid read's used element is id ", true, *mem32(slot), NULL);
        why_append(" len ");
        why_num(*mem32(slot + 4));
        return false;
    }
    for (uint32_t i = 0; i < len; i++)
        if (*mem8(DATA + i) != image_byte((uint32_t)sector * 512 + i)) {
            bad("a valid read returned wrong data at byte ", true, i, NULL);
            return false;
        }
    const struct span allow[] = { used_flags, { USED + 2, 2 }, { slot, 8 }, { DATA, len }, { STATUS, 1 } };
    return arena_unchanged(allow, 5) && sentinels_ok();
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
    make_available(0);
}

/* (2) next one past the table. */
static void submit_next_range(void)
{
    put_request(DESC, 0, T_IN, 0, 512);
    put_desc(DESC, 1, DATA, 512, D_NEXT | D_WRITE, qsize);
    make_available(0);
}

/* (3) the data buffer straddles the end of RAM: its first 256 bytes are RAM (the
 * tail sentinel), the rest is not. */
static void submit_buf_outside_ram(void)
{
    put_request(DESC, 0, T_IN, 0, 512);
    put_desc(DESC, 1, ram_top - 256, 512, D_NEXT | D_WRITE, 2);
    make_available(0);
}

/* (4) the status byte aimed at the device's own device_status register. */
static void submit_buf_in_bar(void)
{
    put_request(DESC, 0, T_IN, 0, 512);
    put_desc(DESC, 2, (uint64_t)bar + COMMON_STATUS, 1, D_WRITE, 0);
    make_available(0);
}

/* (5a) addr + len wraps past 2^64 to 0x1000, inside RAM. */
static void submit_len_wrap(void)
{
    put_request(DESC, 0, T_IN, 0, 512);
    put_desc(DESC, 1, 0xfffffffffffff000ull, 0x2000, D_NEXT | D_WRITE, 2);
    make_available(0);
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
    make_available(0);
}

/* (6) avail->idx more than the queue size ahead of used->idx; slot 0 holds a
 * valid chain, which must not be served either. */
static void submit_avail_idx(void)
{
    put_request(DESC, 0, T_IN, 0, 512);
    make_available(0);
    avail_idx = (uint16_t)(qsize + 1);
    *mem16(AVAIL + 2) = avail_idx;
    barrier();
}

/* (7) a head one past the table (descriptor 0 holds a valid chain). */
static void submit_head_range(void)
{
    put_request(DESC, 0, T_IN, 0, 512);
    make_available(qsize);
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
    make_available(0);
}

/* (8b) INDIRECT and NEXT in one descriptor. */
static void submit_indirect_next(void)
{
    put_indirect_table();
    put_desc(DESC, 0, INDIRECT, 3 * 16, D_INDIRECT | D_NEXT, 1);
    put_desc(DESC, 1, STATUS, 1, D_WRITE, 0);
    make_available(0);
}

/* (8c) an indirect descriptor without INDIRECT_DESC negotiated. */
static void submit_indirect_unnegotiated(void)
{
    put_indirect_table();
    put_desc(DESC, 0, INDIRECT, 3 * 16, D_INDIRECT, 0);
    make_available(0);
}

/* (9) rings the device must refuse at queue_enable: a valid chain made available
 * in the rings that are RAM, which must not be served. */
static void submit_ring_case(void)
{
    make_available(0);
}

/* Runs one hostile case: the submission breaks the queue, nothing is written, the
 * queue stays broken, and after a reset a valid read works. */
static void run_hostile(const struct hostile *h)
{
    failed = false;
    why[0] = 0;
    cases_run++;
    arena_fill(cases_run);
    if (!device_init(&h->setup))
        goto out;
    uint8_t st = r8(COMMON_STATUS);
    if (h->ring_case) {
        /* Enabling must already have broken the queue. */
        if (!(st & S_NEEDS_RESET))
            bad("enabling the queue left device_status at ", true, st, " (no DEVICE_NEEDS_RESET)");
    } else if (st != S_READY) {
        bad("device_status ", true, st, " after a clean initialisation");
    }
    if (failed)
        goto out;
    /* A ring the device refused may still be RAM: it must not be written. */
    if (h->ring_case && h->setup.desc == DESC)
        put_request(DESC, 0, T_IN, 0, 512);
    *mem8(STATUS) = 0xff;
    h->submit();
    uint16_t used_before = used_idx();
    arena_snapshot();
    notify();
    /* What it wrote first (the worst), then what it says. */
    if (!sentinels_ok())
        goto out;
    if (used_idx() != used_before)
        bad("used->idx moved to ", true, used_idx(), " (the malformed chain was served)");
    else if (*mem8(STATUS) != 0xff)
        bad("the status byte was written: ", true, *mem8(STATUS), NULL);
    else if (!arena_unchanged(&used_flags, 1))
        goto out;
    st = r8(COMMON_STATUS);
    if (!(st & S_NEEDS_RESET))
        bad("device_status ", true, st, " after the submission: no DEVICE_NEEDS_RESET");
    else if ((st & ~S_NEEDS_RESET) != S_READY)
        bad("device_status ", true, st, " after the submission (the driver's bits changed)");
    /* §2.1.2: DEVICE_NEEDS_RESET set while DRIVER_OK is a configuration change
     * notification; without MSI-X that is ISR bit 1 (read-to-clear). */
    uint8_t isr = *(volatile uint8_t *)(uintptr_t)(bar + ISR_OFF);
    if (!failed && !h->ring_case && !(isr & ISR_CONFIG))
        bad("no configuration change interrupt after DEVICE_NEEDS_RESET: ISR ", true, isr, NULL);
    if (failed)
        goto out;
    /* Broken until reset: a valid request made available now is not served. */
    if (h->setup.desc == DESC && h->setup.avail == AVAIL && h->setup.used == USED) {
        for (unsigned i = 0; i < qsize; i++)
            *mem16(AVAIL + 4 + 2 * i) = 0;
        put_request(DESC, 0, T_IN, 0, 512);
        make_available(0);
        arena_snapshot();
        notify();
        if (used_idx() != used_before)
            bad("the broken queue served a request: used->idx ", true, used_idx(), NULL);
        else if (!(r8(COMMON_STATUS) & S_NEEDS_RESET))
            bad("DEVICE_NEEDS_RESET went away without a reset: device_status ", true, r8(COMMON_STATUS), NULL);
        else if (arena_unchanged(&used_flags, 1))
            sentinels_ok();
        if (failed)
            goto out;
    }
    /* After a reset the device works again. */
    if (!device_reset())
        goto out;
    if (!device_init(&standard))
        goto out;
    valid_read(0, 512);
out:
    if (failed) {
        cases_failed++;
        gprintf("virtioblk: case %s: FAILED %s\n", h->name, why);
    } else {
        gprintf("virtioblk: case %s: ok (needs reset)\n", h->name);
    }
}

/* One request that must complete with status want, used length 1 (nothing but the
 * status byte written), DEVICE_NEEDS_RESET clear, nothing written but the status
 * byte and the used ring. */
static void expect_request_status(uint32_t type, uint64_t sector, uint32_t len, uint8_t want, const char *what)
{
    if (failed)
        return;
    uint16_t head = (uint16_t)(3 * (avail_idx % (qsize / 3)));
    for (uint32_t i = 0; i < len; i++)
        *mem8(DATA + i) = (uint8_t)(0xaa ^ i);
    put_request(DESC, head, type, sector, len);
    uint16_t want_idx = (uint16_t)(avail_idx + 1);
    make_available(head);
    arena_snapshot();
    notify();
    if (!poll_used(want_idx)) {
        bad("", false, 0, what);
        why_append(": not completed, used->idx ");
        why_num(used_idx());
        return;
    }
    uint8_t st = r8(COMMON_STATUS);
    uint32_t slot = USED + 4 + 8 * ((want_idx - 1u) & (qsize - 1u));
    if (*mem8(STATUS) != want) {
        bad("", false, 0, what);
        why_append(": status ");
        why_num(*mem8(STATUS));
        why_append(want == BLK_IOERR ? ", expected IOERR (1)" : ", expected OK (0)");
    } else if (st != S_READY) {
        bad("", false, 0, what);
        why_append(": device_status ");
        why_num(st);
        why_append(" (a bad request must not break the queue)");
    } else if (*mem32(slot) != head || *mem32(slot + 4) != 1) {
        bad("", false, 0, what);
        why_append(": used element id ");
        why_num(*mem32(slot));
        why_append(" len ");
        why_num(*mem32(slot + 4));
        why_append(", expected len 1 (the status byte only)");
    } else {
        const struct span allow[] = { used_flags, { USED + 2, 2 }, { slot, 8 }, { STATUS, 1 } };
        if (arena_unchanged(allow, 4))
            sentinels_ok();
    }
}

/* (10) Reads past the end: IOERR each, and the device goes on serving. */
static void run_past_end(void)
{
    failed = false;
    why[0] = 0;
    cases_run++;
    arena_fill(cases_run);
    if (device_init(&standard)) {
        expect_request_status(T_IN, IMAGE_SECTORS, 512, BLK_IOERR, "a read of the sector past the end");
        expect_request_status(T_IN, IMAGE_SECTORS - 1, 1024, BLK_IOERR, "a read across the end");
        expect_request_status(T_IN, 0xffffffffffffffffull, 512, BLK_IOERR, "a read of sector 2^64-1");
        expect_request_status(T_IN, 0x0080000000000000ull, 512, BLK_IOERR, "a read whose byte offset wraps");
        if (!failed)
            valid_read(IMAGE_SECTORS - 1, 512);
    }
    if (failed) {
        cases_failed++;
        gprintf("virtioblk: case past-end: FAILED %s\n", why);
    } else {
        gprintf("virtioblk: case past-end: ok (IOERR, the device kept working)\n");
    }
}

/* (11) A write to the read-only disk: IOERR, and sector 0 still reads as the image. */
static void run_ro_write(void)
{
    failed = false;
    why[0] = 0;
    cases_run++;
    arena_fill(cases_run);
    if (device_init(&standard)) {
        expect_request_status(T_OUT, 0, 512, BLK_IOERR, "a write of sector 0");
        expect_request_status(T_OUT, 5, 4096, BLK_IOERR, "a write of sectors 5-12");
        if (!failed)
            valid_read(0, 512);
        if (!failed)
            valid_read(5, 4096);
    }
    if (failed) {
        cases_failed++;
        gprintf("virtioblk: case ro-write: FAILED %s\n", why);
    } else {
        gprintf("virtioblk: case ro-write: ok (IOERR, the disk unchanged)\n");
    }
}

/* ---- the device, found ---- */

static bool find_device(void)
{
    for (unsigned dev = 0; dev < 32; dev++) {
        uint32_t id = conf_read32(dev, 0);
        if (id != ((uint32_t)PCI_DEVICE_VIRTIO_BLK << 16 | PCI_VENDOR_VIRTIO))
            continue;
        uint32_t lo = conf_read32(dev, PCI_BAR0), hi = conf_read32(dev, PCI_BAR0 + 4);
        if ((lo & 0x7) != 0x4) {
            gprintf("virtioblk: FAILED BAR 0 of 00:%02x.0 is %#x, not a 64-bit memory BAR\n", dev, lo);
            return false;
        }
        uint64_t base = (uint64_t)hi << 32 | (lo & ~0xfu);
        if (!base || base > 0xffff0000ull) {
            gprintf("virtioblk: FAILED BAR 0 of 00:%02x.0 at %#lx: not below 4 GiB\n", dev, base);
            return false;
        }
        bar = (uint32_t)base;
        conf_write16(dev, PCI_COMMAND, conf_read16(dev, PCI_COMMAND) | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
        gprintf("INFO virtioblk: virtio-blk at 00:%02x.0, BAR 0 at %#x\n", dev, bar);
        return true;
    }
    gprintf("virtioblk: FAILED no virtio-blk function (1af4:1042) on bus 0\n");
    return false;
}

/* The device's features and configuration, and a first read. */
static bool baseline(void)
{
    failed = false;
    why[0] = 0;
    arena_fill(0);
    if (!device_reset() || !device_init(&standard))
        goto out;
    w32(COMMON_DFSELECT, 0);
    uint32_t lo = r32(COMMON_DF);
    uint32_t cap_lo = r32(DEVCFG_OFF), cap_hi = r32(DEVCFG_OFF + 4);
    gprintf("INFO virtioblk: features %#x (low word), capacity %u sectors\n", lo, cap_lo);
    if (!(lo & 1u << F_BLK_RO))
        bad("VIRTIO_BLK_F_RO not offered for a disk_mode = ro disk", false, 0, NULL);
    else if (cap_lo != IMAGE_SECTORS || cap_hi != 0)
        bad("capacity ", true, (uint64_t)cap_hi << 32 | cap_lo, " sectors, expected 128");
    else
        valid_read(0, 512);
out:
    if (failed)
        gprintf("virtioblk: FAILED the first read: %s\n", why);
    return !failed;
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
    fill_words(SENTINEL, SENTINEL_LEN);
    fill_words(ram_top - TAIL_LEN, TAIL_LEN);
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
            h.setup.used = (uint64_t)bar + COMMON_STATUS;   /* the used ring on device_status */
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
