/* The hostile virtio drivers' shared side (guests/virtioblk.c, guests/virtionet.c):
 * finding plinth's virtio function on PCI bus 0 and its 64-bit BAR 0, whose layout
 * is fixed (vmm/virtio/pci.h; virtio 1.2 §4.1.4.3), the steps of driver
 * initialisation (§3.1.1), split rings in guest memory (§2.7), and the bookkeeping
 * of a hostile case: why it failed, the arena of rings and buffers compared with a
 * copy, and sentinel areas the device must never write.
 *
 * One device per guest: BAR 0 is virtio_bar once virtio_find found it.  Every BAR
 * access is one plain MOV of the field's width (§4.1.3.1).  A ring is polled,
 * never interrupted for: a driver here asks for no interrupt and no MSI-X vector. */
#ifndef GUEST_VIRTIO_H
#define GUEST_VIRTIO_H

#include "guest.h"

/* ---- PCI configuration mechanism #1 ---- */
#define CONF1_ADDR 0xcf8
#define CONF1_DATA 0xcfc
#define PCI_VENDOR_VIRTIO 0x1af4
#define PCI_DEVICE_VIRTIO_NET 0x1041   /* 0x1040 + device id, §4.1.2 */
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

#define S_ACK          0x01            /* device_status, §2.1 */
#define S_DRIVER       0x02
#define S_DRIVER_OK    0x04
#define S_FEATURES_OK  0x08
#define S_NEEDS_RESET  0x40
#define S_READY        (S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK)

#define F_INDIRECT     28              /* feature bits, §6 */
#define F_VERSION_1    32
#define NO_VECTOR      0xffff
#define ISR_CONFIG     0x2

#define D_NEXT     1                   /* descriptor flags, §2.7.5 */
#define D_WRITE    2
#define D_INDIRECT 4
#define AVAIL_NO_INTERRUPT 1           /* §2.7.7 */
#define USED_NO_NOTIFY     1           /* §2.7.10 */

/* ---- BAR 0 accesses ---- */
extern uint32_t virtio_bar;            /* below 4 GiB */

static inline uint8_t bar_r8(uint32_t off) { return *(volatile uint8_t *)(uintptr_t)(virtio_bar + off); }
static inline uint16_t bar_r16(uint32_t off) { return *(volatile uint16_t *)(uintptr_t)(virtio_bar + off); }
static inline uint32_t bar_r32(uint32_t off) { return *(volatile uint32_t *)(uintptr_t)(virtio_bar + off); }
static inline void bar_w8(uint32_t off, uint8_t v) { *(volatile uint8_t *)(uintptr_t)(virtio_bar + off) = v; }
static inline void bar_w16(uint32_t off, uint16_t v) { *(volatile uint16_t *)(uintptr_t)(virtio_bar + off) = v; }
static inline void bar_w32(uint32_t off, uint32_t v) { *(volatile uint32_t *)(uintptr_t)(virtio_bar + off) = v; }

static inline void barrier(void) { __asm__ volatile("" : : : "memory"); }

/* ---- guest memory ---- */
static inline volatile uint8_t *mem8(uint32_t gpa) { return (volatile uint8_t *)(uintptr_t)gpa; }
static inline volatile uint16_t *mem16(uint32_t gpa) { return (volatile uint16_t *)(uintptr_t)gpa; }
static inline volatile uint32_t *mem32(uint32_t gpa) { return (volatile uint32_t *)(uintptr_t)gpa; }

/* ---- why the current case failed ---- */
extern char case_why[160];             /* the first reason only */
extern bool case_failed;

/* A new case: no reason yet. */
void case_begin(void);
void case_why_append(const char *s);
void case_why_num(uint64_t v);         /* 0x-prefixed hex */
void case_why_dec(uint32_t v);
/* Records the case's first failure: text, then a number (if has_num), then tail. */
void case_fail(const char *text, bool has_num, uint64_t num, const char *tail);

/* ---- the function on bus 0 ---- */

/* Finds device_id (1af4:device_id) on bus 0, checks that BAR 0 is a 64-bit memory
 * BAR below 4 GiB, sets virtio_bar and turns on memory decoding and bus mastering.
 * Prints "INFO who: kind at 00:SS.0, BAR 0 at ADDR", or a "who: FAILED ..." line
 * and returns false. */
bool virtio_find(uint16_t device_id, const char *who, const char *kind);

/* Device reset (§2.4): device_status 0, read back 0; false (and the case failed)
 * if it does not. */
bool virtio_reset(void);
/* §3.1.1 steps 2-4: ACKNOWLEDGE, DRIVER, then the device's 64 feature bits. */
uint64_t virtio_features_offered(void);
/* §3.1.1 steps 5-6: accepted written, FEATURES_OK set and read back, then no
 * configuration change vector.  false (and the case failed) if it did not stick. */
bool virtio_features_accept(uint64_t accepted);

/* A split virtqueue as the driver uses it: where it writes descriptors and the
 * available ring and reads the used ring (in RAM), the size, the next available
 * index, and the queue's notification offset. */
struct vring {
    uint32_t desc, avail, used;
    uint16_t size;
    uint16_t avail_idx;
    uint16_t notify_off;
    uint16_t index;
};

/* §4.1.5.1.3: queue index selected, size written (false, and the case failed, when
 * queue_size offers fewer), no MSI-X vector, the ring addresses given (which need
 * not be q's: a hostile case hands the device rings outside RAM), enabled.  Sets
 * q->index, q->size and q->notify_off; the rings themselves are the caller's. */
bool vring_setup(struct vring *q, unsigned index, uint16_t size, uint64_t desc, uint64_t avail,
                 uint64_t used);
void put_desc(uint32_t table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next);
/* Makes head available in the next ring slot and publishes the index. */
void vring_make_available(struct vring *q, uint16_t head);
uint16_t vring_used_idx(const struct vring *q);
/* The queue's notification: one 16-bit write (§4.1.4.4). */
void vring_notify(const struct vring *q);
/* Waits (bounded) for used->idx to reach want; the device serves a notification
 * within the exit, so this is short. */
bool vring_poll_used(const struct vring *q, uint16_t want);

/* ---- the arena and the sentinels ---- */

/* The rings and buffers of a case, filled with a pattern that changes each case,
 * and a copy to compare them with after the device had its turn. */
struct arena {
    uint32_t base, len;                /* multiples of 4 */
    uint32_t *copy;                    /* len / 4 words */
};

/* A range of the arena the device may write. */
struct span { uint32_t gpa, len; };

void arena_fill(const struct arena *a, uint32_t seed);
void arena_snapshot(const struct arena *a);
/* Every arena byte outside the allowed spans is as the snapshot had it; false (and
 * the case failed) at the first that is not. */
bool arena_unchanged(const struct arena *a, const struct span *allow, unsigned n);

/* A sentinel area's pattern (a function of the address), and its check; false (and
 * the case failed) at the first word changed. */
void sentinel_fill(uint32_t gpa, uint32_t len);
bool sentinel_ok(uint32_t gpa, uint32_t len, const char *what);

#endif
