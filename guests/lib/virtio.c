/* The hostile virtio drivers' shared side: see virtio.h. */
#include "virtio.h"

uint32_t virtio_bar;
char case_why[160];
bool case_failed;

/* ---- why the current case failed ---- */

void case_begin(void)
{
    case_failed = false;
    case_why[0] = 0;
}

void case_why_append(const char *s)
{
    size_t n = strlen(case_why);
    while (*s && n + 1 < sizeof case_why)
        case_why[n++] = *s++;
    case_why[n] = 0;
}

void case_why_num(uint64_t v)
{
    case_why_append("0x");
    /* Shifts, not a 64-bit division: no libgcc on i386. */
    char b[20];
    int n = 0;
    do {
        b[n++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    char s[2] = { 0, 0 };
    while (n) {
        s[0] = b[--n];
        case_why_append(s);
    }
}

void case_why_dec(uint32_t v)
{
    char b[12];
    int n = 0;
    do {
        b[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    char s[2] = { 0, 0 };
    while (n) {
        s[0] = b[--n];
        case_why_append(s);
    }
}

void case_fail(const char *text, bool has_num, uint64_t num, const char *tail)
{
    if (case_failed)
        return;
    case_failed = true;
    case_why[0] = 0;
    case_why_append(text);
    if (has_num)
        case_why_num(num);
    if (tail)
        case_why_append(tail);
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

bool virtio_find(uint16_t device_id, const char *who, const char *kind)
{
    for (unsigned dev = 0; dev < 32; dev++) {
        uint32_t id = conf_read32(dev, 0);
        if (id != ((uint32_t)device_id << 16 | PCI_VENDOR_VIRTIO))
            continue;
        uint32_t lo = conf_read32(dev, PCI_BAR0), hi = conf_read32(dev, PCI_BAR0 + 4);
        if ((lo & 0x7) != 0x4) {
            gprintf("%s: FAILED BAR 0 of 00:%02x.0 is %#x, not a 64-bit memory BAR\n", who, dev, lo);
            return false;
        }
        uint64_t base = (uint64_t)hi << 32 | (lo & ~0xfu);
        if (!base || base > 0xffff0000ull) {
            gprintf("%s: FAILED BAR 0 of 00:%02x.0 at %#lx: not below 4 GiB\n", who, dev, base);
            return false;
        }
        virtio_bar = (uint32_t)base;
        conf_write16(dev, PCI_COMMAND, conf_read16(dev, PCI_COMMAND) | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
        gprintf("INFO %s: %s at 00:%02x.0, BAR 0 at %#x\n", who, kind, dev, virtio_bar);
        return true;
    }
    gprintf("%s: FAILED no %s function (%04x:%04x) on bus 0\n", who, kind, PCI_VENDOR_VIRTIO, device_id);
    return false;
}

/* ---- initialisation ---- */

bool virtio_reset(void)
{
    bar_w8(COMMON_STATUS, 0);
    for (int i = 0; i < 1000; i++)
        if (bar_r8(COMMON_STATUS) == 0)
            return true;
    case_fail("device_status did not read 0 after the reset", false, 0, NULL);
    return false;
}

uint64_t virtio_features_offered(void)
{
    bar_w8(COMMON_STATUS, S_ACK);
    bar_w8(COMMON_STATUS, S_ACK | S_DRIVER);
    bar_w32(COMMON_DFSELECT, 1);
    uint32_t hi = bar_r32(COMMON_DF);
    bar_w32(COMMON_DFSELECT, 0);
    uint32_t lo = bar_r32(COMMON_DF);
    return (uint64_t)hi << 32 | lo;
}

bool virtio_features_accept(uint64_t accepted)
{
    bar_w32(COMMON_GFSELECT, 1);
    bar_w32(COMMON_GF, (uint32_t)(accepted >> 32));
    bar_w32(COMMON_GFSELECT, 0);
    bar_w32(COMMON_GF, (uint32_t)accepted);
    bar_w8(COMMON_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
    uint8_t st = bar_r8(COMMON_STATUS);
    if (!(st & S_FEATURES_OK)) {
        case_fail("FEATURES_OK did not stick: device_status ", true, st, NULL);
        return false;
    }
    bar_w16(COMMON_MSIX, NO_VECTOR);
    return true;
}

/* ---- rings ---- */

bool vring_setup(struct vring *q, unsigned index, uint16_t size, uint64_t desc, uint64_t avail, uint64_t used)
{
    q->index = (uint16_t)index;
    q->size = size;
    bar_w16(COMMON_Q_SELECT, (uint16_t)index);
    uint16_t max = bar_r16(COMMON_Q_SIZE);
    if (max < size) {
        if (!case_failed) {
            case_fail("queue ", false, 0, NULL);
            case_why_dec(index);
            case_why_append(" holds only ");
            case_why_num(max);
            case_why_append(" entries");
        }
        return false;
    }
    bar_w16(COMMON_Q_SIZE, size);
    bar_w16(COMMON_Q_MSIX, NO_VECTOR);
    q->notify_off = bar_r16(COMMON_Q_NOFF);
    bar_w32(COMMON_Q_DESCLO, (uint32_t)desc);
    bar_w32(COMMON_Q_DESCHI, (uint32_t)(desc >> 32));
    bar_w32(COMMON_Q_AVAILLO, (uint32_t)avail);
    bar_w32(COMMON_Q_AVAILHI, (uint32_t)(avail >> 32));
    bar_w32(COMMON_Q_USEDLO, (uint32_t)used);
    bar_w32(COMMON_Q_USEDHI, (uint32_t)(used >> 32));
    bar_w16(COMMON_Q_ENABLE, 1);
    return true;
}

void put_desc(uint32_t table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    uint32_t e = table + 16 * i;
    *mem32(e) = (uint32_t)addr;
    *mem32(e + 4) = (uint32_t)(addr >> 32);
    *mem32(e + 8) = len;
    *mem16(e + 12) = flags;
    *mem16(e + 14) = next;
}

void vring_make_available(struct vring *q, uint16_t head)
{
    *mem16(q->avail + 4 + 2 * (q->avail_idx & (q->size - 1))) = head;
    barrier();
    q->avail_idx++;
    *mem16(q->avail + 2) = q->avail_idx;
    barrier();
}

uint16_t vring_used_idx(const struct vring *q)
{
    return *mem16(q->used + 2);
}

void vring_notify(const struct vring *q)
{
    barrier();
    bar_w16(NOTIFY_OFF + (uint32_t)q->notify_off * NOTIFY_MULT, q->index);
    barrier();
}

bool vring_poll_used(const struct vring *q, uint16_t want)
{
    for (uint32_t i = 0; i < 100000; i++) {
        if (vring_used_idx(q) == want)
            return true;
        __asm__ volatile("pause");
    }
    return false;
}

/* ---- the arena and the sentinels ---- */

/* The canary patterns: the arena's changes each case, the sentinels' never. */
static uint32_t arena_word(uint32_t i, uint32_t seed) { return (i * 0x9e3779b1u) ^ seed ^ 0xa5a5a5a5u; }
static uint32_t sentinel_word(uint32_t gpa) { return gpa * 0x85ebca6bu ^ 0x5a5aa5a5u; }

void arena_fill(const struct arena *a, uint32_t seed)
{
    for (uint32_t i = 0; i < a->len / 4; i++)
        *mem32(a->base + 4 * i) = arena_word(i, seed);
}

void arena_snapshot(const struct arena *a)
{
    for (uint32_t i = 0; i < a->len / 4; i++)
        a->copy[i] = *mem32(a->base + 4 * i);
}

bool arena_unchanged(const struct arena *a, const struct span *allow, unsigned n)
{
    for (uint32_t i = 0; i < a->len / 4; i++) {
        uint32_t now = *mem32(a->base + 4 * i);
        if (now == a->copy[i])
            continue;
        for (unsigned b = 0; b < 4; b++) {
            uint32_t gpa = a->base + 4 * i + b;
            if (((now ^ a->copy[i]) >> (8 * b)) & 0xff) {
                bool ok = false;
                for (unsigned s = 0; s < n; s++)
                    ok |= gpa >= allow[s].gpa && gpa - allow[s].gpa < allow[s].len;
                if (!ok) {
                    case_fail("the device wrote guest memory at ", true, gpa, " (outside the buffers it may write)");
                    return false;
                }
            }
        }
    }
    return true;
}

void sentinel_fill(uint32_t gpa, uint32_t len)
{
    for (uint32_t a = gpa; a < gpa + len; a += 4)
        *mem32(a) = sentinel_word(a);
}

bool sentinel_ok(uint32_t gpa, uint32_t len, const char *what)
{
    for (uint32_t a = gpa; a < gpa + len; a += 4)
        if (*mem32(a) != sentinel_word(a)) {
            case_fail("memory written in ", false, 0, what);
            case_why_append(" at ");
            case_why_num(a);
            return false;
        }
    return true;
}
