/* The virtio 1.x modern PCI transport (vmm/virtio/pci.c) on the emulated bus,
 * driven the way Linux's virtio_pci_modern driver drives it: the capability
 * chain, feature negotiation, the initialisation sequence on a fake guest RAM,
 * the common configuration's guards (addresses while enabled, queue_size,
 * queue_select out of range), notifications, MSI-X routing and the INTx/ISR
 * fallback, device reset and DEVICE_NEEDS_RESET. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/snap.c"
#include "vmm/dev/pci_bus.c"
#include "vmm/virtio/guest_mem.c"
#include "vmm/virtio/virtqueue.c"
#include "vmm/virtio/pci.c"

#define DEVFN     PCI_DEVFN(3, 0)
#define NQ        3
#define QMAX      256
#define CFG_SIZE  8
#define RAM_SIZE  (1u << 20)
#define F_OFFERED ((1ull << VIRTIO_F_EVENT_IDX) | (1ull << 5))
#define F_V1      (1ull << VIRTIO_F_VERSION_1)

static struct pci_bus bus;
static struct vpci_dev vdev;
static uint8_t *ram;
static struct gmem g;

/* ---- the monitor and the device type, as recorders ---- */

static struct { uint64_t addr; uint32_t data; } msgs[32];
static unsigned msg_count;
static bool intx_line;
static unsigned intx_changes;
static unsigned notified[16];
static unsigned notify_count;
static unsigned reset_count;
static uint8_t devcfg[CFG_SIZE];
static unsigned last_cfg_write_off, last_cfg_write_size;
static uint32_t last_cfg_write_val;

static void on_deliver(void *ctx, uint64_t addr, uint32_t data)
{
    (void)ctx;
    assert_true(msg_count < 32);
    msgs[msg_count].addr = addr;
    msgs[msg_count].data = data;
    msg_count++;
}

static void on_intx(void *ctx, unsigned devfn, unsigned pin, bool level)
{
    (void)ctx;
    assert_int_equal(devfn, DEVFN);
    assert_int_equal(pin, 1);
    intx_line = level;
    intx_changes++;
}

static const struct pci_bus_ops bus_ops = { on_deliver, on_intx, NULL };

static void dev_notify(void *ctx, unsigned queue)
{
    assert_ptr_equal(ctx, &vdev);
    assert_true(notify_count < 16);
    notified[notify_count++] = queue;
}

static uint32_t dev_cfg_read(void *ctx, unsigned off, unsigned size)
{
    (void)ctx;
    uint32_t v = 0;
    memcpy(&v, devcfg + off, size);
    return v;
}

static void dev_cfg_write(void *ctx, unsigned off, unsigned size, uint32_t v)
{
    (void)ctx;
    last_cfg_write_off = off;
    last_cfg_write_size = size;
    last_cfg_write_val = v;
}

static void dev_reset(void *ctx)
{
    (void)ctx;
    reset_count++;
}

static const struct vpci_ops dev_ops = {
    .notify = dev_notify,
    .config_read = dev_cfg_read,
    .config_write = dev_cfg_write,
    .reset = dev_reset,
    .ctx = &vdev,
    .gmem = &g,
};

static int setup(void **state)
{
    (void)state;
    ram = calloc(1, RAM_SIZE);
    assert_non_null(ram);
    gmem_init(&g, ram, RAM_SIZE);
    pci_bus_init(&bus, &bus_ops);
    msg_count = intx_changes = notify_count = reset_count = 0;
    intx_line = false;
    /* capacity = 0x1122334455667788 at offset 0, as virtio-blk's le64. */
    uint64_t cap = 0x1122334455667788ull;
    memcpy(devcfg, &cap, 8);
    assert_true(vpci_init(&vdev, &bus, DEVFN, VIRTIO_ID_BLOCK, F_OFFERED, NQ, QMAX, CFG_SIZE, &dev_ops));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(ram);
    return 0;
}

/* ---- the fake driver ---- */

static uint32_t cfg_rd(unsigned off, unsigned size) { return pci_bus_config_read(&bus, DEVFN, off, size); }
static void cfg_wr(unsigned off, unsigned size, uint32_t v) { pci_bus_config_write(&bus, DEVFN, off, size, v); }

static uint64_t bar_rd(uint64_t off, unsigned size)
{
    uint64_t v = 0xdeadbeef;
    assert_true(vpci_bar_read(&vdev, off, size, &v));
    return v;
}

static void bar_wr(uint64_t off, unsigned size, uint64_t v)
{
    assert_true(vpci_bar_write(&vdev, off, size, v));
}

static uint32_t common_rd(unsigned off, unsigned size) { return (uint32_t)bar_rd(VPCI_COMMON_OFF + off, size); }
static void common_wr(unsigned off, unsigned size, uint32_t v) { bar_wr(VPCI_COMMON_OFF + off, size, v); }
static uint8_t status(void) { return (uint8_t)common_rd(VPCI_COMMON_STATUS, 1); }
static void set_status(uint8_t s) { common_wr(VPCI_COMMON_STATUS, 1, s); }

static void write_features(uint64_t f)
{
    common_wr(VPCI_COMMON_GFSELECT, 4, 0);
    common_wr(VPCI_COMMON_GF, 4, (uint32_t)f);
    common_wr(VPCI_COMMON_GFSELECT, 4, 1);
    common_wr(VPCI_COMMON_GF, 4, (uint32_t)(f >> 32));
}

static uint64_t read_device_features(void)
{
    common_wr(VPCI_COMMON_DFSELECT, 4, 0);
    uint64_t lo = common_rd(VPCI_COMMON_DF, 4);
    common_wr(VPCI_COMMON_DFSELECT, 4, 1);
    uint64_t hi = common_rd(VPCI_COMMON_DF, 4);
    return lo | hi << 32;
}

/* Up to FEATURES_OK as Linux's virtio_dev_probe does; true if it was accepted. */
static bool negotiate(uint64_t f)
{
    set_status(0);
    set_status(VIRTIO_STATUS_ACKNOWLEDGE);
    set_status(VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    write_features(f);
    set_status(VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
    return status() & VIRTIO_STATUS_FEATURES_OK;
}

static uint64_t q_desc(unsigned q) { return 0x10000ull + 0x10000ull * q; }
static uint64_t q_avail(unsigned q) { return q_desc(q) + 0x4000; }
static uint64_t q_used(unsigned q) { return q_desc(q) + 0x8000; }

static void set_addr(unsigned lo_off, uint64_t a)
{
    common_wr(lo_off, 4, (uint32_t)a);
    common_wr(lo_off + 4, 4, (uint32_t)(a >> 32));
}

static uint64_t get_addr(unsigned lo_off)
{
    return common_rd(lo_off, 4) | (uint64_t)common_rd(lo_off + 4, 4) << 32;
}

/* vp_modern_setup_vq / vp_active_vq: select, size, addresses, vector, enable. */
static void setup_queue(unsigned q, uint16_t size, uint16_t vector)
{
    common_wr(VPCI_COMMON_Q_SELECT, 2, q);
    assert_int_equal(common_rd(VPCI_COMMON_Q_SIZE, 2), vdev.queue_max);
    assert_int_equal(common_rd(VPCI_COMMON_Q_ENABLE, 2), 0);
    common_wr(VPCI_COMMON_Q_SIZE, 2, size);
    set_addr(VPCI_COMMON_Q_DESCLO, q_desc(q));
    set_addr(VPCI_COMMON_Q_AVAILLO, q_avail(q));
    set_addr(VPCI_COMMON_Q_USEDLO, q_used(q));
    common_wr(VPCI_COMMON_Q_MSIX, 2, vector);
    common_wr(VPCI_COMMON_Q_ENABLE, 2, 1);
}

static void wr16(uint64_t gpa, uint16_t v) { memcpy(ram + gpa, &v, 2); }
static uint16_t rd16(uint64_t gpa) { uint16_t v; memcpy(&v, ram + gpa, 2); return v; }
static uint32_t rd32(uint64_t gpa) { uint32_t v; memcpy(&v, ram + gpa, 4); return v; }

/* Driver side of a one-descriptor chain on queue q (size qsize). */
static void offer_buffer(unsigned q, unsigned qsize, uint16_t head, uint64_t buf, uint32_t len, uint16_t flags)
{
    uint64_t d = q_desc(q) + 16ull * head;
    memcpy(ram + d, &buf, 8);
    memcpy(ram + d + 8, &len, 4);
    wr16(d + 12, flags);
    wr16(d + 14, 0);
    uint16_t idx = rd16(q_avail(q) + 2);
    wr16(q_avail(q) + 4 + 2 * (idx % qsize), head);
    wr16(q_avail(q) + 2, (uint16_t)(idx + 1));
}

static void kick(unsigned q)
{
    bar_wr(VPCI_NOTIFY_OFF + q * VPCI_NOTIFY_MULTIPLIER, 2, q);
}

/* ---- configuration space ---- */

static void test_ids_and_capabilities(void **state)
{
    (void)state;
    assert_int_equal(cfg_rd(PCI_CFG_VENDOR_ID, 2), 0x1af4);
    assert_int_equal(cfg_rd(PCI_CFG_DEVICE_ID, 2), 0x1042);
    assert_int_equal(cfg_rd(PCI_CFG_SUBSYSTEM_VENDOR, 2), 0x1af4);
    assert_int_equal(cfg_rd(PCI_CFG_SUBSYSTEM_ID, 2), VIRTIO_ID_BLOCK);
    assert_int_equal(cfg_rd(PCI_CFG_REVISION, 1), 1);
    assert_int_equal(cfg_rd(PCI_CFG_CLASS, 1) | cfg_rd(PCI_CFG_CLASS + 1, 2) << 8, 0x010000);
    assert_int_equal(cfg_rd(PCI_CFG_INTERRUPT_PIN, 1), 1);
    assert_true(cfg_rd(PCI_CFG_STATUS, 2) & PCI_STATUS_CAP_LIST);
    /* BAR 0 is a 64-bit memory BAR of VPCI_BAR_SIZE: its sizing probe. */
    assert_int_equal(cfg_rd(PCI_CFG_BAR0, 4) & 0x7, 0x4);
    cfg_wr(PCI_CFG_BAR0, 4, 0xffffffff);
    assert_int_equal(cfg_rd(PCI_CFG_BAR0, 4) & ~0xfu, (uint32_t)~(VPCI_BAR_SIZE - 1) & ~0xfu);

    bool seen[6] = { false };
    bool msix = false;
    unsigned hops = 0;
    for (unsigned c = cfg_rd(PCI_CFG_CAP_PTR, 1); c; c = cfg_rd(c + 1, 1)) {
        assert_true(c >= 0x40 && c < 0x100 && !(c & 3));
        assert_true(++hops < 48);
        unsigned id = cfg_rd(c, 1);
        if (id == PCI_CAP_ID_MSIX) {
            msix = true;
            assert_int_equal((cfg_rd(c + 2, 2) & 0x7ff) + 1, NQ + 1);
            uint32_t table = cfg_rd(c + 4, 4), pba = cfg_rd(c + 8, 4);
            assert_int_equal(table & 7, VPCI_BAR);
            assert_int_equal(pba & 7, VPCI_BAR);
            assert_true((table & ~7u) + 16u * (NQ + 1) <= VPCI_BAR_SIZE);
            assert_true((pba & ~7u) + 8 <= VPCI_BAR_SIZE);
            continue;
        }
        assert_int_equal(id, PCI_CAP_ID_VENDOR);
        unsigned len = cfg_rd(c + 2, 1), type = cfg_rd(c + 3, 1);
        assert_true(type >= 1 && type <= 5);
        assert_false(seen[type]);
        seen[type] = true;
        assert_int_equal(cfg_rd(c + 4, 1), VPCI_BAR);
        uint32_t off = cfg_rd(c + 8, 4), length = cfg_rd(c + 12, 4);
        assert_true((uint64_t)off + length <= VPCI_BAR_SIZE);
        switch (type) {
        case VPCI_CAP_COMMON_CFG:
            assert_int_equal(len, 16);
            assert_int_equal(off, VPCI_COMMON_OFF);
            assert_true(length >= 0x38);
            break;
        case VPCI_CAP_NOTIFY_CFG: {
            assert_int_equal(len, 20);
            uint32_t mult = cfg_rd(c + 16, 4);
            assert_int_equal(mult, VPCI_NOTIFY_MULTIPLIER);
            /* §4.1.4.4.1: every queue's notify address + 2 inside the area. */
            for (unsigned q = 0; q < NQ; q++) {
                common_wr(VPCI_COMMON_Q_SELECT, 2, q);
                assert_true(common_rd(VPCI_COMMON_Q_NOFF, 2) * mult + 2 <= length);
            }
            break;
        }
        case VPCI_CAP_ISR_CFG:
            assert_int_equal(off, VPCI_ISR_OFF);
            assert_true(length >= 1);
            break;
        case VPCI_CAP_DEVICE_CFG:
            assert_int_equal(off, VPCI_DEVCFG_OFF);
            assert_int_equal(length, CFG_SIZE);
            break;
        case VPCI_CAP_PCI_CFG:
            assert_int_equal(len, 20);
            break;
        }
    }
    assert_true(msix);
    for (unsigned t = 1; t <= 5; t++)
        assert_true(seen[t]);
}

static void test_init_refuses_bad_arguments(void **state)
{
    (void)state;
    static struct vpci_dev other;
    assert_false(vpci_init(&other, &bus, PCI_DEVFN(4, 0), VIRTIO_ID_NET, 0, 0, 256, 0, &dev_ops));
    assert_false(vpci_init(&other, &bus, PCI_DEVFN(4, 0), VIRTIO_ID_NET, 0, VPCI_QUEUES_MAX + 1, 256, 0, &dev_ops));
    assert_false(vpci_init(&other, &bus, PCI_DEVFN(4, 0), VIRTIO_ID_NET, 0, 2, 100, 0, &dev_ops));
    assert_false(vpci_init(&other, &bus, PCI_DEVFN(4, 0), VIRTIO_ID_NET, 0, 2, 65536, 0, &dev_ops));
    assert_false(vpci_init(&other, &bus, PCI_DEVFN(4, 0), VIRTIO_ID_NET, 0, 2, 256, 0x1001, &dev_ops));
    assert_false(vpci_init(&other, &bus, DEVFN, VIRTIO_ID_NET, 0, 2, 256, 0, &dev_ops));   /* taken */
    /* A net device with no device config: no cfg_type 4 capability, class 02. */
    assert_true(vpci_init(&other, &bus, PCI_DEVFN(4, 0), VIRTIO_ID_NET, 0, 2, 256, 0, &dev_ops));
    assert_int_equal(pci_bus_config_read(&bus, PCI_DEVFN(4, 0), PCI_CFG_CLASS + 2, 1), 0x02);
    for (unsigned c = pci_bus_config_read(&bus, PCI_DEVFN(4, 0), PCI_CFG_CAP_PTR, 1); c;
         c = pci_bus_config_read(&bus, PCI_DEVFN(4, 0), c + 1, 1))
        if (pci_bus_config_read(&bus, PCI_DEVFN(4, 0), c, 1) == PCI_CAP_ID_VENDOR)
            assert_int_not_equal(pci_bus_config_read(&bus, PCI_DEVFN(4, 0), c + 3, 1), VPCI_CAP_DEVICE_CFG);
}

/* ---- feature negotiation ---- */

static void test_feature_negotiation(void **state)
{
    (void)state;
    assert_int_equal(read_device_features(), F_OFFERED | F_V1);
    common_wr(VPCI_COMMON_DFSELECT, 4, 2);
    assert_int_equal(common_rd(VPCI_COMMON_DF, 4), 0);

    /* A feature the device did not offer: FEATURES_OK reads back clear. */
    assert_false(negotiate(F_V1 | (1ull << 7)));
    /* Legacy driver (no VERSION_1): refused too. */
    assert_false(negotiate(F_OFFERED));
    /* A subset with VERSION_1: accepted, and final. */
    assert_true(negotiate(F_V1 | (1ull << VIRTIO_F_EVENT_IDX)));
    assert_int_equal(vpci_features(&vdev), F_V1 | (1ull << VIRTIO_F_EVENT_IDX));
    write_features(F_V1 | F_OFFERED);
    assert_int_equal(vpci_features(&vdev), F_V1 | (1ull << VIRTIO_F_EVENT_IDX));
    common_wr(VPCI_COMMON_GFSELECT, 4, 0);
    assert_int_equal(common_rd(VPCI_COMMON_GF, 4), 1u << VIRTIO_F_EVENT_IDX);
    /* Reset forgets the negotiation. */
    set_status(0);
    assert_int_equal(status(), 0);
    assert_int_equal(vpci_features(&vdev), 0);
    /* Wrong-width accesses to a 32-bit field do nothing and read 0. */
    common_wr(VPCI_COMMON_DFSELECT, 2, 1);
    assert_int_equal(common_rd(VPCI_COMMON_DFSELECT, 4), 0);
    assert_int_equal(common_rd(VPCI_COMMON_DF, 2), 0);
    assert_int_equal(common_rd(VPCI_COMMON_DF + 1, 1), 0);
}

/* ---- the Linux driver's sequence, end to end ---- */

static void test_linux_init_sequence(void **state)
{
    (void)state;
    /* MSI-X as Linux sets it up: bus master, enable, entries programmed. */
    cfg_wr(PCI_CFG_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    cfg_wr(vdev.cap_msix + 2, 2, PCI_MSIX_CTRL_ENABLE);
    for (unsigned v = 0; v < NQ + 1; v++) {
        bar_wr(VPCI_MSIX_TABLE_OFF + 16 * v, 4, 0xfee00000);
        bar_wr(VPCI_MSIX_TABLE_OFF + 16 * v + 4, 4, 0);
        bar_wr(VPCI_MSIX_TABLE_OFF + 16 * v + 8, 4, 0x40 + v);
        bar_wr(VPCI_MSIX_TABLE_OFF + 16 * v + 12, 4, 0);
    }
    assert_true(negotiate(F_V1 | (1ull << VIRTIO_F_EVENT_IDX)));
    assert_int_equal(reset_count, 1);
    assert_int_equal(common_rd(VPCI_COMMON_NUMQ, 2), NQ);
    common_wr(VPCI_COMMON_MSIX, 2, 0);
    assert_int_equal(common_rd(VPCI_COMMON_MSIX, 2), 0);
    for (unsigned q = 0; q < NQ; q++) {
        setup_queue(q, 64, (uint16_t)(q + 1));
        assert_int_equal(common_rd(VPCI_COMMON_Q_ENABLE, 2), 1);
        assert_int_equal(common_rd(VPCI_COMMON_Q_SIZE, 2), 64);
        assert_int_equal(common_rd(VPCI_COMMON_Q_MSIX, 2), q + 1);
        assert_int_equal(get_addr(VPCI_COMMON_Q_DESCLO), q_desc(q));
        assert_int_equal(get_addr(VPCI_COMMON_Q_AVAILLO), q_avail(q));
        assert_int_equal(get_addr(VPCI_COMMON_Q_USEDLO), q_used(q));
        assert_true(vpci_queue_ready(&vdev, q));
        struct vq *vq = vpci_queue(&vdev, q);
        assert_int_equal(vq->size, 64);
        assert_int_equal(vq->desc_gpa, q_desc(q));
        assert_int_equal(vq->avail_gpa, q_avail(q));
        assert_int_equal(vq->used_gpa, q_used(q));
        assert_true(vq->event_idx);         /* the negotiated features reached it */
    }
    set_status(VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
               VIRTIO_STATUS_DRIVER_OK);
    assert_int_equal(status(), 0x0f);

    /* The device config (virtio-blk capacity) through the BAR, as two halves. */
    assert_int_equal(bar_rd(VPCI_DEVCFG_OFF, 4), 0x55667788);
    assert_int_equal(bar_rd(VPCI_DEVCFG_OFF + 4, 4), 0x11223344);
    assert_int_equal(bar_rd(VPCI_DEVCFG_OFF + 2, 2), 0x5566);
    assert_int_equal(bar_rd(VPCI_DEVCFG_OFF + 6, 4), 0);      /* past config_size */
    assert_int_equal(bar_rd(VPCI_DEVCFG_OFF + 1, 2), 0);      /* misaligned */
    bar_wr(VPCI_DEVCFG_OFF + 4, 1, 0xab);
    assert_int_equal(last_cfg_write_off, 4);
    assert_int_equal(last_cfg_write_size, 1);
    assert_int_equal(last_cfg_write_val, 0xab);

    /* One request on queue 1: the kick reaches the device, which completes it
     * through the engine; the interrupt goes to queue 1's vector. */
    offer_buffer(1, 64, 0, 0x80000, 512, VIRTQ_DESC_F_WRITE);
    kick(1);
    assert_int_equal(notify_count, 1);
    assert_int_equal(notified[0], 1);
    struct vq *vq = vpci_queue(&vdev, 1);
    struct vq_seg seg[4];
    struct vq_chain chain = { .seg = seg, .seg_cap = 4 };
    assert_int_equal(vq_pop(vq, &g, &chain), VQ_OK);
    assert_int_equal(chain.n_seg, 1);
    assert_int_equal(seg[0].gpa, 0x80000);
    assert_int_equal(vq_push(vq, &g, chain.head, 512), VQ_OK);
    assert_int_equal(rd16(q_used(1) + 2), 1);
    assert_int_equal(rd32(q_used(1) + 8), 512);
    assert_true(vpci_interrupt_queue(&vdev, 1));
    assert_int_equal(msg_count, 1);
    assert_int_equal(msgs[0].addr, 0xfee00000);
    assert_int_equal(msgs[0].data, 0x42);
    assert_false(intx_line);
}

/* ---- common configuration guards ---- */

static void test_queue_addresses_locked_while_enabled(void **state)
{
    (void)state;
    assert_true(negotiate(F_V1));
    setup_queue(0, 16, VPCI_NO_VECTOR);
    assert_true(vpci_queue_ready(&vdev, 0));
    set_addr(VPCI_COMMON_Q_DESCLO, 0x90000);
    set_addr(VPCI_COMMON_Q_AVAILLO, 0x91000);
    set_addr(VPCI_COMMON_Q_USEDLO, 0x92000);
    common_wr(VPCI_COMMON_Q_SIZE, 2, 8);
    assert_int_equal(get_addr(VPCI_COMMON_Q_DESCLO), q_desc(0));
    assert_int_equal(get_addr(VPCI_COMMON_Q_AVAILLO), q_avail(0));
    assert_int_equal(get_addr(VPCI_COMMON_Q_USEDLO), q_used(0));
    assert_int_equal(common_rd(VPCI_COMMON_Q_SIZE, 2), 16);
    assert_int_equal(vpci_queue(&vdev, 0)->desc_gpa, q_desc(0));
    assert_int_equal(vpci_queue(&vdev, 0)->size, 16);
    /* Writing 0 to queue_enable is forbidden and ignored; a second 1 too. */
    common_wr(VPCI_COMMON_Q_ENABLE, 2, 0);
    assert_int_equal(common_rd(VPCI_COMMON_Q_ENABLE, 2), 1);
    /* A disabled queue takes them, also as one 64-bit access. */
    common_wr(VPCI_COMMON_Q_SELECT, 2, 1);
    bar_wr(VPCI_COMMON_OFF + VPCI_COMMON_Q_DESCLO, 8, 0x123456789000ull);
    assert_int_equal(get_addr(VPCI_COMMON_Q_DESCLO), 0x123456789000ull);
    assert_int_equal(bar_rd(VPCI_COMMON_OFF + VPCI_COMMON_Q_DESCLO, 8), 0x123456789000ull);
    common_wr(VPCI_COMMON_Q_AVAILHI, 4, 0x7);
    assert_int_equal(get_addr(VPCI_COMMON_Q_AVAILLO), 0x700000000ull);
}

static void test_queue_size(void **state)
{
    (void)state;
    common_wr(VPCI_COMMON_Q_SELECT, 2, 2);
    assert_int_equal(common_rd(VPCI_COMMON_Q_SIZE, 2), QMAX);
    common_wr(VPCI_COMMON_Q_SIZE, 2, 32);               /* lowered */
    assert_int_equal(common_rd(VPCI_COMMON_Q_SIZE, 2), 32);
    common_wr(VPCI_COMMON_Q_SIZE, 2, 48);               /* not a power of two */
    assert_int_equal(common_rd(VPCI_COMMON_Q_SIZE, 2), 32);
    common_wr(VPCI_COMMON_Q_SIZE, 2, 0);
    assert_int_equal(common_rd(VPCI_COMMON_Q_SIZE, 2), 32);
    common_wr(VPCI_COMMON_Q_SIZE, 2, 2 * QMAX);         /* over the maximum */
    assert_int_equal(common_rd(VPCI_COMMON_Q_SIZE, 2), 32);
    common_wr(VPCI_COMMON_Q_SIZE, 4, 8);                /* wrong width */
    assert_int_equal(common_rd(VPCI_COMMON_Q_SIZE, 2), 32);
    assert_int_equal(common_rd(VPCI_COMMON_Q_SIZE, 4), 0);
    common_wr(VPCI_COMMON_Q_SIZE, 2, 1);
    assert_int_equal(common_rd(VPCI_COMMON_Q_SIZE, 2), 1);
    /* Only queue 2 changed. */
    common_wr(VPCI_COMMON_Q_SELECT, 2, 0);
    assert_int_equal(common_rd(VPCI_COMMON_Q_SIZE, 2), QMAX);
}

static void test_queue_select_out_of_range(void **state)
{
    (void)state;
    assert_true(negotiate(F_V1));
    static const uint16_t sels[] = { NQ, VPCI_QUEUES_MAX, 0x7fff, 0xffff };
    for (unsigned i = 0; i < sizeof(sels) / sizeof(sels[0]); i++) {
        common_wr(VPCI_COMMON_Q_SELECT, 2, sels[i]);
        assert_int_equal(common_rd(VPCI_COMMON_Q_SELECT, 2), sels[i]);
        common_wr(VPCI_COMMON_Q_SIZE, 2, 8);
        set_addr(VPCI_COMMON_Q_DESCLO, 0x1000);
        common_wr(VPCI_COMMON_Q_MSIX, 2, 1);
        common_wr(VPCI_COMMON_Q_ENABLE, 2, 1);
        for (unsigned off = VPCI_COMMON_Q_SIZE; off < VPCI_COMMON_LEN; off += 2)
            assert_int_equal(common_rd(off, 2), 0);
        assert_int_equal(get_addr(VPCI_COMMON_Q_DESCLO), 0);
    }
    assert_null(vpci_queue(&vdev, NQ));
    assert_false(vpci_interrupt_queue(&vdev, NQ));
    assert_false(vpci_interrupt_queue(&vdev, 0xffff));
    for (unsigned q = 0; q < NQ; q++) {
        common_wr(VPCI_COMMON_Q_SELECT, 2, q);
        assert_int_equal(common_rd(VPCI_COMMON_Q_SIZE, 2), QMAX);
        assert_int_equal(common_rd(VPCI_COMMON_Q_ENABLE, 2), 0);
        assert_int_equal(common_rd(VPCI_COMMON_Q_MSIX, 2), VPCI_NO_VECTOR);
    }
    assert_int_equal(status() & VIRTIO_STATUS_DEVICE_NEEDS_RESET, 0);
    /* Accesses past the BAR or of odd sizes are refused, not served. */
    uint64_t v;
    assert_false(vpci_bar_read(&vdev, VPCI_BAR_SIZE, 4, &v));
    assert_false(vpci_bar_read(&vdev, VPCI_BAR_SIZE - 2, 4, &v));
    assert_false(vpci_bar_read(&vdev, 0, 3, &v));
    assert_false(vpci_bar_write(&vdev, UINT64_MAX - 1, 4, 0));
}

/* ---- notifications ---- */

static void test_notify(void **state)
{
    (void)state;
    assert_true(negotiate(F_V1));
    setup_queue(0, 16, VPCI_NO_VECTOR);
    setup_queue(2, 16, VPCI_NO_VECTOR);
    kick(2);
    kick(0);
    assert_int_equal(notify_count, 2);
    assert_int_equal(notified[0], 2);
    assert_int_equal(notified[1], 0);
    /* A 32-bit write (index in the low half) works too. */
    bar_wr(VPCI_NOTIFY_OFF + 2 * VPCI_NOTIFY_MULTIPLIER, 4, 2);
    assert_int_equal(notify_count, 3);
    assert_int_equal(notified[2], 2);
    /* Disabled queue 1, an index past num_queues, an index that disagrees with
     * the address, a 1-byte write, a write past the area, a read: nothing. */
    kick(1);
    bar_wr(VPCI_NOTIFY_OFF + 0, 2, 7);
    bar_wr(VPCI_NOTIFY_OFF + 0, 2, 2);
    bar_wr(VPCI_NOTIFY_OFF + 0, 1, 0);
    bar_wr(VPCI_NOTIFY_OFF + NQ * VPCI_NOTIFY_MULTIPLIER, 2, NQ);
    assert_int_equal(bar_rd(VPCI_NOTIFY_OFF, 2), 0);
    assert_int_equal(notify_count, 3);
}

/* ---- interrupts ---- */

static void enable_msix(void)
{
    cfg_wr(PCI_CFG_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    cfg_wr(vdev.cap_msix + 2, 2, PCI_MSIX_CTRL_ENABLE);
    for (unsigned v = 0; v < NQ + 1; v++) {
        bar_wr(VPCI_MSIX_TABLE_OFF + 16 * v, 8, 0xfee00000ull + 0x1000 * v);
        bar_wr(VPCI_MSIX_TABLE_OFF + 16 * v + 8, 4, 0x30 + v);
        bar_wr(VPCI_MSIX_TABLE_OFF + 16 * v + 12, 4, 0);
    }
}

static void test_msix_routing(void **state)
{
    (void)state;
    enable_msix();
    assert_true(negotiate(F_V1));
    common_wr(VPCI_COMMON_MSIX, 2, 3);
    setup_queue(0, 16, 2);
    setup_queue(1, 16, 2);                   /* two queues may share a vector */
    setup_queue(2, 16, VPCI_NO_VECTOR);
    assert_true(vpci_interrupt_queue(&vdev, 0));
    assert_true(vpci_interrupt_queue(&vdev, 1));
    assert_false(vpci_interrupt_queue(&vdev, 2));    /* NO_VECTOR: nothing */
    assert_true(vpci_interrupt_config(&vdev));
    assert_int_equal(msg_count, 3);
    assert_int_equal(msgs[0].addr, 0xfee02000);
    assert_int_equal(msgs[0].data, 0x32);
    assert_int_equal(msgs[1].data, 0x32);
    assert_int_equal(msgs[2].addr, 0xfee03000);
    assert_int_equal(msgs[2].data, 0x33);
    /* MSI-X does not touch the ISR or INTx. */
    assert_int_equal(bar_rd(VPCI_ISR_OFF, 1), 0);
    assert_int_equal(intx_changes, 0);

    /* Vectors past the table read back NO_VECTOR. */
    common_wr(VPCI_COMMON_MSIX, 2, NQ + 1);
    assert_int_equal(common_rd(VPCI_COMMON_MSIX, 2), VPCI_NO_VECTOR);
    common_wr(VPCI_COMMON_Q_SELECT, 2, 0);
    common_wr(VPCI_COMMON_Q_MSIX, 2, 0x1234);
    assert_int_equal(common_rd(VPCI_COMMON_Q_MSIX, 2), VPCI_NO_VECTOR);
    assert_false(vpci_interrupt_queue(&vdev, 0));
    assert_false(vpci_interrupt_config(&vdev));
    assert_int_equal(msg_count, 3);

    /* A masked vector is pending, and delivered on unmask. */
    common_wr(VPCI_COMMON_Q_MSIX, 2, 1);
    bar_wr(VPCI_MSIX_TABLE_OFF + 16 * 1 + 12, 4, PCI_MSIX_ENTRY_MASKED);
    assert_true(vpci_interrupt_queue(&vdev, 0));
    assert_int_equal(msg_count, 3);
    assert_int_equal(bar_rd(VPCI_MSIX_PBA_OFF, 8), 1u << 1);
    bar_wr(VPCI_MSIX_TABLE_OFF + 16 * 1 + 12, 4, 0);
    assert_int_equal(msg_count, 4);
    assert_int_equal(msgs[3].data, 0x31);
}

static void test_intx_and_isr(void **state)
{
    (void)state;
    cfg_wr(PCI_CFG_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    assert_true(negotiate(F_V1));
    setup_queue(0, 16, 1);          /* a vector, but MSI-X is off: INTx */
    assert_true(vpci_interrupt_queue(&vdev, 0));
    assert_int_equal(msg_count, 0);
    assert_true(intx_line);
    assert_true(cfg_rd(PCI_CFG_STATUS, 2) & PCI_STATUS_INTERRUPT);
    /* A wrong-size ISR read is no read: the bits stay. */
    assert_int_equal(bar_rd(VPCI_ISR_OFF, 4), 0);
    assert_true(intx_line);
    /* Level: stays high until the ISR is read, which clears it. */
    assert_int_equal(bar_rd(VPCI_ISR_OFF, 1), VPCI_ISR_QUEUE);
    assert_false(intx_line);
    assert_int_equal(bar_rd(VPCI_ISR_OFF, 1), 0);

    /* A configuration change: generation moves, ISR bit 2. */
    uint8_t gen = (uint8_t)common_rd(VPCI_COMMON_CFGGEN, 1);
    vpci_config_changed(&vdev);
    assert_int_equal(common_rd(VPCI_COMMON_CFGGEN, 1), (uint8_t)(gen + 1));
    assert_true(intx_line);
    vpci_interrupt_queue(&vdev, 0);
    assert_int_equal(bar_rd(VPCI_ISR_OFF, 1), VPCI_ISR_QUEUE | VPCI_ISR_CONFIG);
    assert_false(intx_line);
    assert_int_equal(msg_count, 0);

    /* A reset with the line high drops it. */
    vpci_interrupt_queue(&vdev, 0);
    assert_true(intx_line);
    set_status(0);
    assert_false(intx_line);
    assert_int_equal(bar_rd(VPCI_ISR_OFF, 1), 0);
}

/* ---- reset and errors ---- */

static void test_reset_clears_queues(void **state)
{
    (void)state;
    enable_msix();
    assert_true(negotiate(F_V1 | (1ull << VIRTIO_F_EVENT_IDX)));
    common_wr(VPCI_COMMON_MSIX, 2, 0);
    for (unsigned q = 0; q < NQ; q++)
        setup_queue(q, 32, (uint16_t)(q + 1));
    set_status(0x0f);
    offer_buffer(0, 32, 0, 0x80000, 64, 0);
    struct vq_seg seg[4];
    struct vq_chain chain = { .seg = seg, .seg_cap = 4 };
    assert_int_equal(vq_pop(vpci_queue(&vdev, 0), &g, &chain), VQ_OK);
    common_wr(VPCI_COMMON_Q_SELECT, 2, 2);

    set_status(0);
    assert_int_equal(reset_count, 2);
    assert_int_equal(status(), 0);
    assert_int_equal(common_rd(VPCI_COMMON_Q_SELECT, 2), 0);
    assert_int_equal(common_rd(VPCI_COMMON_MSIX, 2), VPCI_NO_VECTOR);
    for (unsigned q = 0; q < NQ; q++) {
        common_wr(VPCI_COMMON_Q_SELECT, 2, q);
        assert_int_equal(common_rd(VPCI_COMMON_Q_ENABLE, 2), 0);
        assert_int_equal(common_rd(VPCI_COMMON_Q_SIZE, 2), QMAX);
        assert_int_equal(common_rd(VPCI_COMMON_Q_MSIX, 2), VPCI_NO_VECTOR);
        assert_int_equal(get_addr(VPCI_COMMON_Q_DESCLO), 0);
        assert_int_equal(get_addr(VPCI_COMMON_Q_AVAILLO), 0);
        assert_int_equal(get_addr(VPCI_COMMON_Q_USEDLO), 0);
        struct vq *vq = vpci_queue(&vdev, q);
        assert_false(vq->enabled);
        assert_false(vq->event_idx);
        assert_int_equal(vq->last_avail_idx, 0);
        assert_false(vpci_queue_ready(&vdev, q));
    }
    /* No kick reaches a reset queue, and no interrupt leaves it. */
    kick(0);
    assert_int_equal(notify_count, 0);
    unsigned before = msg_count;
    assert_false(vpci_interrupt_queue(&vdev, 0));
    assert_int_equal(msg_count, before);
}

static void test_broken_queue_needs_reset(void **state)
{
    (void)state;
    enable_msix();
    assert_true(negotiate(F_V1));
    common_wr(VPCI_COMMON_MSIX, 2, 0);
    /* DEVICE_NEEDS_RESET is the device's bit: a driver writing it sets nothing. */
    set_status(VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
               VIRTIO_STATUS_DEVICE_NEEDS_RESET);
    assert_int_equal(status(), VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
    /* Rings outside the VM's RAM: enabling fails, the device asks for reset. */
    common_wr(VPCI_COMMON_Q_SELECT, 2, 0);
    common_wr(VPCI_COMMON_Q_SIZE, 2, 16);
    set_addr(VPCI_COMMON_Q_DESCLO, RAM_SIZE);
    set_addr(VPCI_COMMON_Q_AVAILLO, q_avail(0));
    set_addr(VPCI_COMMON_Q_USEDLO, q_used(0));
    common_wr(VPCI_COMMON_Q_ENABLE, 2, 1);
    assert_true(status() & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
    assert_false(vpci_queue_ready(&vdev, 0));
    kick(0);
    assert_int_equal(notify_count, 0);
    /* The driver cannot clear it by writing status; a reset does. */
    set_status(VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
    assert_true(status() & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
    assert_true(negotiate(F_V1));
    assert_int_equal(status() & VIRTIO_STATUS_DEVICE_NEEDS_RESET, 0);

    /* A queue that breaks while running (a head past the table): the status
     * shows it, and vpci_device_error sends the config interrupt once. */
    common_wr(VPCI_COMMON_MSIX, 2, 0);
    setup_queue(1, 16, 2);
    set_status(0x0f);
    assert_int_equal(status(), 0x0f);
    offer_buffer(1, 16, 0, 0x80000, 64, 0);
    wr16(q_avail(1) + 4, 99);
    struct vq_seg seg[4];
    struct vq_chain chain = { .seg = seg, .seg_cap = 4 };
    assert_int_equal(vq_pop(vpci_queue(&vdev, 1), &g, &chain), VQ_ERR_HEAD_RANGE);
    assert_int_equal(status(), 0x0f | VIRTIO_STATUS_DEVICE_NEEDS_RESET);
    unsigned before = msg_count;
    vpci_device_error(&vdev);
    vpci_device_error(&vdev);
    assert_int_equal(msg_count, before + 1);
    assert_int_equal(msgs[before].data, 0x30);
    set_status(0);
    assert_int_equal(status(), 0);
}

static void test_queue_reset(void **state)
{
    (void)state;
    /* Without RING_RESET offered, queue_reset is inert. */
    assert_true(negotiate(F_V1));
    setup_queue(0, 16, VPCI_NO_VECTOR);
    common_wr(VPCI_COMMON_Q_RESET, 2, 1);
    assert_int_equal(common_rd(VPCI_COMMON_Q_ENABLE, 2), 1);
    assert_int_equal(common_rd(VPCI_COMMON_Q_RESET, 2), 0);

    static struct pci_bus b2;
    pci_bus_init(&b2, &bus_ops);
    assert_true(vpci_init(&vdev, &b2, DEVFN, VIRTIO_ID_NET, 1ull << VIRTIO_F_RING_RESET, 2, 64, 0, &dev_ops));
    assert_true(negotiate(F_V1 | (1ull << VIRTIO_F_RING_RESET)));
    setup_queue(0, 16, VPCI_NO_VECTOR);
    common_wr(VPCI_COMMON_Q_SELECT, 2, 1);
    common_wr(VPCI_COMMON_Q_SIZE, 2, 16);
    set_addr(VPCI_COMMON_Q_DESCLO, q_desc(1));
    set_addr(VPCI_COMMON_Q_AVAILLO, q_avail(1));
    set_addr(VPCI_COMMON_Q_USEDLO, q_used(1));
    common_wr(VPCI_COMMON_Q_ENABLE, 2, 1);
    common_wr(VPCI_COMMON_Q_SELECT, 2, 0);
    common_wr(VPCI_COMMON_Q_RESET, 2, 1);
    assert_int_equal(common_rd(VPCI_COMMON_Q_RESET, 2), 1);
    assert_int_equal(common_rd(VPCI_COMMON_Q_ENABLE, 2), 0);
    assert_int_equal(common_rd(VPCI_COMMON_Q_SIZE, 2), 64);
    assert_false(vpci_queue_ready(&vdev, 0));
    assert_true(vpci_queue_ready(&vdev, 1));            /* the other queue runs on */
    setup_queue(0, 8, VPCI_NO_VECTOR);
    assert_int_equal(common_rd(VPCI_COMMON_Q_RESET, 2), 0);
    assert_true(vpci_queue_ready(&vdev, 0));
}

/* §4.1.4.9: the configuration-space window onto the BAR. */
static void test_pci_cfg_window(void **state)
{
    (void)state;
    unsigned c = vdev.cap_pci_cfg;
    assert_true(c);
    cfg_wr(c + 4, 1, 0);
    cfg_wr(c + 8, 4, VPCI_COMMON_OFF + VPCI_COMMON_NUMQ);
    cfg_wr(c + 12, 4, 2);
    assert_int_equal(cfg_rd(c + 16, 4) & 0xffff, NQ);
    /* Writes through it: queue_select. */
    cfg_wr(c + 8, 4, VPCI_COMMON_OFF + VPCI_COMMON_Q_SELECT);
    cfg_wr(c + 16, 4, 2);
    assert_int_equal(common_rd(VPCI_COMMON_Q_SELECT, 2), 2);
    /* A bad window (misaligned, other BAR, the MSI-X table) reads 0. */
    cfg_wr(c + 8, 4, VPCI_COMMON_OFF + VPCI_COMMON_NUMQ + 1);
    assert_int_equal(cfg_rd(c + 16, 4), 0);
    cfg_wr(c + 8, 4, VPCI_COMMON_OFF + VPCI_COMMON_NUMQ);
    cfg_wr(c + 4, 1, 2);
    assert_int_equal(cfg_rd(c + 16, 4), 0);
    cfg_wr(c + 4, 1, 0);
    cfg_wr(c + 8, 4, VPCI_MSIX_TABLE_OFF);
    cfg_wr(c + 12, 4, 4);
    assert_int_equal(cfg_rd(c + 16, 4), 0);

    /* A notify through the window waits for vpci_run_deferred (the bus may
     * not be re-entered from its callback), then reaches the device. */
    assert_true(negotiate(F_V1));
    setup_queue(1, 16, VPCI_NO_VECTOR);
    cfg_wr(c + 8, 4, VPCI_NOTIFY_OFF + 1 * VPCI_NOTIFY_MULTIPLIER);
    cfg_wr(c + 12, 4, 2);
    cfg_wr(c + 16, 4, 1);
    assert_int_equal(notify_count, 0);
    vpci_run_deferred(&vdev);
    assert_int_equal(notify_count, 1);
    assert_int_equal(notified[0], 1);
    /* An ISR read through it clears the bits; INTx drops once deferred run. */
    vpci_interrupt_queue(&vdev, 1);
    assert_true(intx_line);
    cfg_wr(c + 8, 4, VPCI_ISR_OFF);
    cfg_wr(c + 12, 4, 1);
    assert_int_equal(cfg_rd(c + 16, 4), VPCI_ISR_QUEUE);
    vpci_run_deferred(&vdev);
    assert_false(intx_line);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ids_and_capabilities, setup, teardown),
        cmocka_unit_test_setup_teardown(test_init_refuses_bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_feature_negotiation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_linux_init_sequence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_addresses_locked_while_enabled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_select_out_of_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_msix_routing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_intx_and_isr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_clears_queues, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broken_queue_needs_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pci_cfg_window, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
