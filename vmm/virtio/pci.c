/* The virtio 1.x modern PCI transport, virtio 1.2 §4.1: see pci.h. */
#include "vmm/virtio/pci.h"
#include "vmm/snap.h"

#include "kernel/string.h"

static bool vpci_is_pow2(uint32_t x)
{
    return x && !(x & (x - 1));
}

/* §4.1.2.1: the PCI class code follows the device type, so that firmware and
 * lspci show a disk as a mass storage controller; unknown types are "other". */
static uint32_t vpci_class_for(uint16_t type)
{
    switch (type) {
    case VIRTIO_ID_BLOCK:   return 0x010000;
    case VIRTIO_ID_NET:     return 0x020000;
    case VIRTIO_ID_CONSOLE: return 0x078000;
    default:                return 0xff0000;
    }
}

/* ---- interrupts ---- */

/* The INTx level is the OR of the ISR bits (§4.1.4.5.1); inside a §4.1.4.9
 * window access the bus may not be called, so the update waits. */
static void vpci_intx_sync(struct vpci_dev *dev)
{
    if (dev->in_window) {
        dev->defer_intx = true;
        return;
    }
    pci_dev_set_intx(dev->pci, dev->isr != 0);
}

static bool vpci_raise(struct vpci_dev *dev, uint16_t vector, uint8_t isr_bit)
{
    if (pci_msix_enabled(dev->pci)) {
        /* §4.1.5.4/§4.1.5.5: with MSI-X the device uses the vector the driver
         * mapped, and none at all for NO_VECTOR. */
        if (vector == VPCI_NO_VECTOR)
            return false;
        enum pci_msix_result r = pci_msix_notify(dev->pci, vector);
        return r == PCI_MSIX_DELIVERED || r == PCI_MSIX_PENDING;
    }
    /* §4.1.4.5.2: without MSI-X the ISR bit is set before the notification, and
     * INTx stays asserted until the driver's ISR read clears it. */
    dev->isr |= isr_bit;
    vpci_intx_sync(dev);
    return !(pci_dev_command(dev->pci) & PCI_COMMAND_INTX_DISABLE);
}

bool vpci_interrupt_queue(struct vpci_dev *dev, unsigned queue)
{
    if (queue >= dev->num_queues)
        return false;
    return vpci_raise(dev, dev->queue[queue].msix_vector, VPCI_ISR_QUEUE);
}

bool vpci_interrupt_config(struct vpci_dev *dev)
{
    if (dev->in_window) {
        dev->defer_config_irq = true;
        return false;
    }
    return vpci_raise(dev, dev->config_msix_vector, VPCI_ISR_CONFIG);
}

void vpci_config_changed(struct vpci_dev *dev)
{
    /* §4.1.4.3.1: config_generation changes whenever the device configuration
     * may have, so the driver's read loop sees a torn read. */
    dev->config_generation++;
    vpci_interrupt_config(dev);
}

void vpci_device_error(struct vpci_dev *dev)
{
    bool was = dev->needs_reset;
    dev->needs_reset = true;
    /* §2.1.2: after setting DEVICE_NEEDS_RESET with DRIVER_OK set, the device
     * MUST send a configuration change notification. */
    if (!was && (dev->status & VIRTIO_STATUS_DRIVER_OK))
        vpci_interrupt_config(dev);
}

/* ---- queues ---- */

static void vpci_queue_defaults(struct vpci_dev *dev, struct vpci_queue *q)
{
    vq_reset(&q->vq);
    q->size = dev->queue_max;
    q->msix_vector = VPCI_NO_VECTOR;
    q->enabled = false;
    q->reset_done = false;
    q->desc = q->driver = q->device = 0;
}

/* §2.4 device reset: everything the driver negotiated or set up goes back to
 * its initial value; config_generation keeps counting (the driver only
 * compares it across one read sequence). */
static void vpci_device_reset(struct vpci_dev *dev)
{
    for (unsigned i = 0; i < dev->num_queues; i++)
        vpci_queue_defaults(dev, &dev->queue[i]);
    dev->driver_features = 0;
    dev->device_feature_select = 0;
    dev->driver_feature_select = 0;
    dev->config_msix_vector = VPCI_NO_VECTOR;
    dev->queue_select = 0;
    dev->status = 0;
    dev->needs_reset = false;
    dev->isr = 0;
    dev->defer_notify = 0;
    dev->defer_config_irq = false;
    vpci_intx_sync(dev);
    if (dev->ops.reset)
        dev->ops.reset(dev->ops.ctx);
}

void vpci_reset(struct vpci_dev *dev)
{
    vpci_device_reset(dev);
}

struct vq *vpci_queue(struct vpci_dev *dev, unsigned queue)
{
    return queue < dev->num_queues ? &dev->queue[queue].vq : NULL;
}

bool vpci_queue_ready(const struct vpci_dev *dev, unsigned queue)
{
    return queue < dev->num_queues && dev->queue[queue].enabled && dev->queue[queue].vq.enabled &&
           !dev->queue[queue].vq.broken;
}

uint64_t vpci_features(const struct vpci_dev *dev)
{
    return dev->driver_features & dev->device_features;
}

uint8_t vpci_status(const struct vpci_dev *dev)
{
    uint8_t s = dev->status;
    if (dev->needs_reset)
        s |= VIRTIO_STATUS_DEVICE_NEEDS_RESET;
    for (unsigned i = 0; i < dev->num_queues; i++)
        s |= vq_device_status(&dev->queue[i].vq);
    return s;
}

static void vpci_queue_enable(struct vpci_dev *dev, struct vpci_queue *q)
{
    /* §4.1.4.3.2: the driver MUST NOT write 0 to queue_enable (queue_reset
     * disables a queue); enabling twice changes nothing. */
    if (q->enabled)
        return;
    q->enabled = true;
    q->reset_done = false;
    vq_set_features(&q->vq, vpci_features(dev));
    enum vq_error e = dev->ops.gmem ? vq_set_addrs(&q->vq, dev->ops.gmem, q->size, q->desc, q->driver, q->device)
                                    : VQ_ERR_NOT_READY;
    if (e != VQ_OK) {
        /* The device says why, once: no notification will reach it for this
         * queue until the driver resets it. */
        if (dev->ops.queue_error)
            dev->ops.queue_error(dev->ops.ctx, (unsigned)(q - dev->queue), e);
        vpci_device_error(dev);
    }
}

/* ---- common configuration, §4.1.4.3 ---- */

static struct vpci_queue *vpci_selected(struct vpci_dev *dev)
{
    /* queue_select comes from the guest: past num_queues there is no queue,
     * its fields read 0 and writes are dropped (§4.1.4.3.1 has queue_size read
     * 0 for an unavailable queue). */
    return dev->queue_select < dev->num_queues ? &dev->queue[dev->queue_select] : NULL;
}

/* §4.1.3.1: each field is accessed at its own width; the 64-bit ones as two
 * 32-bit halves (or, here, one 64-bit access).  Returns the width the field at
 * offset wants (0 if none starts there). */
static unsigned vpci_field_width(unsigned off)
{
    switch (off) {
    case VPCI_COMMON_DFSELECT: case VPCI_COMMON_DF:
    case VPCI_COMMON_GFSELECT: case VPCI_COMMON_GF:
    case VPCI_COMMON_Q_DESCLO: case VPCI_COMMON_Q_DESCHI:
    case VPCI_COMMON_Q_AVAILLO: case VPCI_COMMON_Q_AVAILHI:
    case VPCI_COMMON_Q_USEDLO: case VPCI_COMMON_Q_USEDHI:
        return 4;
    case VPCI_COMMON_MSIX: case VPCI_COMMON_NUMQ:
    case VPCI_COMMON_Q_SELECT: case VPCI_COMMON_Q_SIZE: case VPCI_COMMON_Q_MSIX:
    case VPCI_COMMON_Q_ENABLE: case VPCI_COMMON_Q_NOFF:
    case VPCI_COMMON_Q_NDATA: case VPCI_COMMON_Q_RESET:
        return 2;
    case VPCI_COMMON_STATUS: case VPCI_COMMON_CFGGEN:
        return 1;
    default:
        return 0;
    }
}

static bool vpci_ring_reset_offered(const struct vpci_dev *dev)
{
    return dev->device_features & (1ull << VIRTIO_F_RING_RESET);
}

static uint32_t vpci_common_read32(struct vpci_dev *dev, unsigned off)
{
    struct vpci_queue *q = vpci_selected(dev);
    switch (off) {
    case VPCI_COMMON_DFSELECT: return dev->device_feature_select;
    case VPCI_COMMON_DF:
        /* §4.1.4.3: feature bits 32 * select .. 32 * select + 31; past bit 63
         * nothing is offered. */
        if (dev->device_feature_select > 1)
            return 0;
        return (uint32_t)(dev->device_features >> (32 * dev->device_feature_select));
    case VPCI_COMMON_GFSELECT: return dev->driver_feature_select;
    case VPCI_COMMON_GF:
        if (dev->driver_feature_select > 1)
            return 0;
        return (uint32_t)(dev->driver_features >> (32 * dev->driver_feature_select));
    case VPCI_COMMON_MSIX:     return dev->config_msix_vector;
    case VPCI_COMMON_NUMQ:     return dev->num_queues;
    case VPCI_COMMON_STATUS:   return vpci_status(dev);
    case VPCI_COMMON_CFGGEN:   return dev->config_generation;
    case VPCI_COMMON_Q_SELECT: return dev->queue_select;
    }
    if (!q)
        return 0;
    switch (off) {
    case VPCI_COMMON_Q_SIZE:    return q->size;
    case VPCI_COMMON_Q_MSIX:    return q->msix_vector;
    case VPCI_COMMON_Q_ENABLE:  return q->enabled;
    /* §4.1.4.4: queue i notifies at i * notify_off_multiplier. */
    case VPCI_COMMON_Q_NOFF:    return dev->queue_select;
    case VPCI_COMMON_Q_DESCLO:  return (uint32_t)q->desc;
    case VPCI_COMMON_Q_DESCHI:  return (uint32_t)(q->desc >> 32);
    case VPCI_COMMON_Q_AVAILLO: return (uint32_t)q->driver;
    case VPCI_COMMON_Q_AVAILHI: return (uint32_t)(q->driver >> 32);
    case VPCI_COMMON_Q_USEDLO:  return (uint32_t)q->device;
    case VPCI_COMMON_Q_USEDHI:  return (uint32_t)(q->device >> 32);
    case VPCI_COMMON_Q_NDATA:   return 0;   /* no VIRTIO_F_NOTIF_CONFIG_DATA */
    case VPCI_COMMON_Q_RESET:   return vpci_ring_reset_offered(dev) ? q->reset_done : 0;
    }
    return 0;
}

static void vpci_set_half(uint64_t *field, bool high, uint32_t v)
{
    if (high)
        *field = (*field & 0xffffffffull) | (uint64_t)v << 32;
    else
        *field = (*field & ~0xffffffffull) | v;
}

static void vpci_status_write(struct vpci_dev *dev, uint8_t v)
{
    if (v == 0) {
        vpci_device_reset(dev);
        return;
    }
    /* DEVICE_NEEDS_RESET is the device's to set (§2.1); the driver's copy of it
     * is ignored. */
    v &= (uint8_t)~VIRTIO_STATUS_DEVICE_NEEDS_RESET;
    if ((v & VIRTIO_STATUS_FEATURES_OK) && !(dev->status & VIRTIO_STATUS_FEATURES_OK)) {
        /* §2.2.2 / §3.1.1: the device refuses FEATURES_OK (it reads back
         * clear) for a feature it did not offer; §6.1: a modern device
         * refuses a driver that did not accept VERSION_1. */
        uint64_t f = dev->driver_features;
        if ((f & ~dev->device_features) || !(f & (1ull << VIRTIO_F_VERSION_1)))
            v &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
    }
    dev->status = v;
}

static void vpci_common_write(struct vpci_dev *dev, unsigned off, uint32_t v)
{
    struct vpci_queue *q = vpci_selected(dev);
    switch (off) {
    case VPCI_COMMON_DFSELECT: dev->device_feature_select = v; return;
    case VPCI_COMMON_GFSELECT: dev->driver_feature_select = v; return;
    case VPCI_COMMON_GF:
        /* Features are final once FEATURES_OK is set (§2.2, §3.1.1 step 5). */
        if (dev->driver_feature_select > 1 || (dev->status & VIRTIO_STATUS_FEATURES_OK))
            return;
        vpci_set_half(&dev->driver_features, dev->driver_feature_select == 1, v);
        return;
    case VPCI_COMMON_MSIX:
        /* §4.1.5.1.2: a vector the table does not have reads back NO_VECTOR. */
        dev->config_msix_vector = v < dev->msix_vectors ? (uint16_t)v : VPCI_NO_VECTOR;
        return;
    case VPCI_COMMON_STATUS: vpci_status_write(dev, (uint8_t)v); return;
    case VPCI_COMMON_Q_SELECT: dev->queue_select = (uint16_t)v; return;
    }
    if (!q)
        return;
    switch (off) {
    case VPCI_COMMON_Q_SIZE:
        /* §4.1.4.3.2: the driver may lower queue_size, to a power of two
         * (§2.7), before enabling; anything else is dropped. */
        if (!q->enabled && vpci_is_pow2(v) && v <= dev->queue_max)
            q->size = (uint16_t)v;
        return;
    case VPCI_COMMON_Q_MSIX:
        q->msix_vector = v < dev->msix_vectors ? (uint16_t)v : VPCI_NO_VECTOR;
        return;
    case VPCI_COMMON_Q_ENABLE:
        if (v == 1)
            vpci_queue_enable(dev, q);
        return;
    /* §4.1.4.3.2: the ring addresses are the driver's to set only while the
     * queue is disabled; once vq_set_addrs took them they stay. */
    case VPCI_COMMON_Q_DESCLO: case VPCI_COMMON_Q_DESCHI:
        if (!q->enabled)
            vpci_set_half(&q->desc, off == VPCI_COMMON_Q_DESCHI, v);
        return;
    case VPCI_COMMON_Q_AVAILLO: case VPCI_COMMON_Q_AVAILHI:
        if (!q->enabled)
            vpci_set_half(&q->driver, off == VPCI_COMMON_Q_AVAILHI, v);
        return;
    case VPCI_COMMON_Q_USEDLO: case VPCI_COMMON_Q_USEDHI:
        if (!q->enabled)
            vpci_set_half(&q->device, off == VPCI_COMMON_Q_USEDHI, v);
        return;
    case VPCI_COMMON_Q_RESET:
        /* §4.1.4.3.2 with VIRTIO_F_RING_RESET: 1 resets this queue alone,
         * which then reads 1 until re-enabled. */
        if (vpci_ring_reset_offered(dev) && v == 1) {
            vpci_queue_defaults(dev, q);
            q->reset_done = true;
        }
        return;
    }
}

static bool vpci_is_64bit_field(unsigned off)
{
    return off == VPCI_COMMON_Q_DESCLO || off == VPCI_COMMON_Q_AVAILLO || off == VPCI_COMMON_Q_USEDLO;
}

static uint64_t vpci_common_read(struct vpci_dev *dev, unsigned off, unsigned size)
{
    if (size == 8 && vpci_is_64bit_field(off))
        return vpci_common_read32(dev, off) | (uint64_t)vpci_common_read32(dev, off + 4) << 32;
    if (vpci_field_width(off) != size)
        return 0;
    return vpci_common_read32(dev, off);
}

static void vpci_common_write_access(struct vpci_dev *dev, unsigned off, unsigned size, uint64_t v)
{
    if (size == 8 && vpci_is_64bit_field(off)) {
        vpci_common_write(dev, off, (uint32_t)v);
        vpci_common_write(dev, off + 4, (uint32_t)(v >> 32));
        return;
    }
    if (vpci_field_width(off) != size)
        return;
    vpci_common_write(dev, off, (uint32_t)v);
}

/* ---- notifications, ISR, device configuration ---- */

static void vpci_notify_write(struct vpci_dev *dev, unsigned off, unsigned size, uint64_t v)
{
    /* §4.1.5.2: the driver writes the 16-bit queue index at the queue's notify
     * address (queue_notify_off * notify_off_multiplier).  An index that is no
     * enabled queue, or disagrees with the address, is dropped. */
    if ((size != 2 && size != 4) || (off % VPCI_NOTIFY_MULTIPLIER))
        return;
    unsigned queue = (unsigned)(v & 0xffff);
    if (queue != off / VPCI_NOTIFY_MULTIPLIER || !vpci_queue_ready(dev, queue))
        return;
    if (dev->in_window) {
        dev->defer_notify |= 1ull << queue;
        return;
    }
    if (dev->ops.notify)
        dev->ops.notify(dev->ops.ctx, queue);
}

static uint64_t vpci_isr_read(struct vpci_dev *dev, unsigned off, unsigned size)
{
    if (off != 0 || size != 1)
        return 0;
    /* §4.1.4.5.1: reading the ISR clears it and de-asserts INTx. */
    uint8_t v = dev->isr;
    dev->isr = 0;
    if (v)
        vpci_intx_sync(dev);
    return v;
}

static bool vpci_devcfg_access_ok(const struct vpci_dev *dev, unsigned off, unsigned size)
{
    /* §4.1.3.1: 8-, 16- and 32-bit naturally aligned accesses (a 64-bit field
     * as two 32-bit ones), wholly inside the device's configuration. */
    if (size != 1 && size != 2 && size != 4)
        return false;
    return !(off & (size - 1)) && (uint64_t)off + size <= dev->config_size;
}

static bool vpci_in_region(uint64_t offset, uint64_t base, uint64_t len)
{
    return offset >= base && offset - base < len;
}

/* The BAR's own registers (not the MSI-X table or PBA). */
static uint64_t vpci_region_read(struct vpci_dev *dev, uint64_t offset, unsigned size)
{
    if (vpci_in_region(offset, VPCI_COMMON_OFF, VPCI_COMMON_LEN))
        return vpci_common_read(dev, (unsigned)(offset - VPCI_COMMON_OFF), size);
    if (vpci_in_region(offset, VPCI_ISR_OFF, 0x1000))
        return vpci_isr_read(dev, (unsigned)(offset - VPCI_ISR_OFF), size);
    if (vpci_in_region(offset, VPCI_DEVCFG_OFF, VPCI_DEVCFG_MAX)) {
        unsigned off = (unsigned)(offset - VPCI_DEVCFG_OFF);
        if (!vpci_devcfg_access_ok(dev, off, size) || !dev->ops.config_read)
            return 0;
        return dev->ops.config_read(dev->ops.ctx, off, size);
    }
    return 0;   /* notify is write-only, the rest is no register */
}

static void vpci_region_write(struct vpci_dev *dev, uint64_t offset, unsigned size, uint64_t v)
{
    if (vpci_in_region(offset, VPCI_COMMON_OFF, VPCI_COMMON_LEN)) {
        vpci_common_write_access(dev, (unsigned)(offset - VPCI_COMMON_OFF), size, v);
    } else if (vpci_in_region(offset, VPCI_DEVCFG_OFF, VPCI_DEVCFG_MAX)) {
        unsigned off = (unsigned)(offset - VPCI_DEVCFG_OFF);
        if (vpci_devcfg_access_ok(dev, off, size) && dev->ops.config_write)
            dev->ops.config_write(dev->ops.ctx, off, size, (uint32_t)v);
    } else if (vpci_in_region(offset, VPCI_NOTIFY_OFF,
                                (uint64_t)dev->num_queues * VPCI_NOTIFY_MULTIPLIER)) {
        vpci_notify_write(dev, (unsigned)(offset - VPCI_NOTIFY_OFF), size, v);
    }
}

static bool vpci_size_ok(unsigned size)
{
    return size == 1 || size == 2 || size == 4 || size == 8;
}

bool vpci_bar_read(struct vpci_dev *dev, uint64_t offset, unsigned size, uint64_t *value)
{
    *value = 0;
    if (offset >= VPCI_BAR_SIZE || !vpci_size_ok(size) || offset + size > VPCI_BAR_SIZE)
        return false;
    if (pci_msix_read(dev->pci, VPCI_BAR, offset, size, value))
        return true;
    *value = vpci_region_read(dev, offset, size);
    return true;
}

bool vpci_bar_write(struct vpci_dev *dev, uint64_t offset, unsigned size, uint64_t value)
{
    if (offset >= VPCI_BAR_SIZE || !vpci_size_ok(size) || offset + size > VPCI_BAR_SIZE)
        return false;
    if (pci_msix_write(dev->pci, VPCI_BAR, offset, size, value))
        return true;
    vpci_region_write(dev, offset, size, value);
    return true;
}

/* ---- the PCI configuration access window, §4.1.4.9 ---- */

/* The window as the driver set it: bar, offset, length in the capability.
 * §4.1.4.9.1: length 1, 2 or 4, offset aligned to it, inside the BAR; the MSI-X
 * table and PBA are not reachable this way (the bus may not be re-entered from
 * its own callback). */
static bool vpci_window(struct vpci_dev *dev, uint64_t *offset, unsigned *len)
{
    unsigned c = dev->cap_pci_cfg;
    uint32_t bar = pci_dev_cfg_get(dev->pci, c + 4, 1);
    uint32_t off = pci_dev_cfg_get(dev->pci, c + 8, 4);
    uint32_t l = pci_dev_cfg_get(dev->pci, c + 12, 4);
    if (bar != VPCI_BAR || (l != 1 && l != 2 && l != 4) || (off & (l - 1)) ||
        (uint64_t)off + l > VPCI_MSIX_TABLE_OFF)
        return false;
    *offset = off;
    *len = l;
    return true;
}

static bool vpci_overlaps_data(const struct vpci_dev *dev, unsigned offset, unsigned size)
{
    unsigned data = dev->cap_pci_cfg + 16u;
    return offset < data + 4 && data < offset + size;
}

static void vpci_on_config_read(void *ctx, unsigned offset, unsigned size)
{
    struct vpci_dev *dev = ctx;
    uint64_t off;
    unsigned len;
    if (!dev->cap_pci_cfg || !vpci_overlaps_data(dev, offset, size))
        return;
    uint64_t v = 0;
    if (vpci_window(dev, &off, &len)) {
        dev->in_window = true;
        v = vpci_region_read(dev, off, len);
        dev->in_window = false;
    }
    pci_dev_cfg_set(dev->pci, dev->cap_pci_cfg + 16u, 4, (uint32_t)v);
}

static void vpci_on_config_write(void *ctx, unsigned offset, unsigned size, uint32_t value)
{
    struct vpci_dev *dev = ctx;
    uint64_t off;
    unsigned len;
    (void)value;
    if (!dev->cap_pci_cfg || !vpci_overlaps_data(dev, offset, size) || !vpci_window(dev, &off, &len))
        return;
    uint32_t v = pci_dev_cfg_get(dev->pci, dev->cap_pci_cfg + 16u, 4);
    dev->in_window = true;
    vpci_region_write(dev, off, len, v);
    dev->in_window = false;
}

void vpci_run_deferred(struct vpci_dev *dev)
{
    if (dev->defer_intx) {
        dev->defer_intx = false;
        vpci_intx_sync(dev);
    }
    if (dev->defer_config_irq) {
        dev->defer_config_irq = false;
        vpci_interrupt_config(dev);
    }
    while (dev->defer_notify) {
        unsigned q = (unsigned)__builtin_ctzll(dev->defer_notify);
        dev->defer_notify &= ~(1ull << q);
        if (vpci_queue_ready(dev, q) && dev->ops.notify)
            dev->ops.notify(dev->ops.ctx, q);
    }
}

/* ---- registration, §4.1.4 ---- */

static unsigned vpci_add_cap(struct pci_dev *pci, unsigned len, uint8_t type, uint32_t offset, uint32_t length)
{
    unsigned c = pci_dev_add_vendor_cap(pci, len);
    if (!c)
        return 0;
    /* struct virtio_pci_cap: cfg_type, bar, id, padding, offset, length. */
    pci_dev_cfg_set(pci, c + 3, 1, type);
    pci_dev_cfg_set(pci, c + 4, 1, VPCI_BAR);
    pci_dev_cfg_set(pci, c + 8, 4, offset);
    pci_dev_cfg_set(pci, c + 12, 4, length);
    return c;
}

bool vpci_init(struct vpci_dev *dev, struct pci_bus *bus, unsigned devfn, uint16_t device_type,
               uint64_t device_features, unsigned num_queues, unsigned queue_max,
               unsigned config_size, const struct vpci_ops *ops)
{
    memset(dev, 0, sizeof(*dev));
    if (!ops || num_queues < 1 || num_queues > VPCI_QUEUES_MAX || !vpci_is_pow2(queue_max) ||
        queue_max > VQ_SIZE_MAX || config_size > VPCI_DEVCFG_MAX || device_type > 0xffff - VPCI_DEVICE_ID_BASE)
        return false;
    dev->ops = *ops;
    dev->device_type = device_type;
    dev->num_queues = (uint16_t)num_queues;
    dev->queue_max = (uint16_t)queue_max;
    dev->msix_vectors = (uint16_t)(num_queues + 1);
    dev->config_size = config_size;
    /* §6.1: a non-transitional device offers VERSION_1. */
    dev->device_features = device_features | 1ull << VIRTIO_F_VERSION_1;

    /* §4.1.2: vendor 1af4, device 1040 + type, revision 1 or more for a
     * modern-only device, subsystem vendor/device free (we use 1af4/type). */
    struct pci_dev_desc d = {
        .vendor_id = VPCI_VENDOR_ID,
        .device_id = (uint16_t)(VPCI_DEVICE_ID_BASE + device_type),
        .subsystem_vendor_id = VPCI_VENDOR_ID,
        .subsystem_id = device_type,
        .class_code = vpci_class_for(device_type),
        .revision = 1,
        .interrupt_pin = 1,
        .bar = { [VPCI_BAR] = { .type = PCI_BAR_MEM64, .size = VPCI_BAR_SIZE } },
        .config_read = vpci_on_config_read,
        .config_write = vpci_on_config_write,
        .ctx = dev,
    };
    struct pci_dev *pci = pci_bus_add(bus, devfn, &d);
    if (!pci)
        return false;
    dev->pci = pci;
    for (unsigned i = 0; i < num_queues; i++)
        vq_init(&dev->queue[i].vq, 0);

    dev->cap_common = (uint16_t)vpci_add_cap(pci, VPCI_CAP_LEN, VPCI_CAP_COMMON_CFG, VPCI_COMMON_OFF,
                                        VPCI_COMMON_LEN);
    /* §4.1.4.4: the notify area must cover queue_notify_off * multiplier + 2
     * for every queue. */
    dev->cap_notify = (uint16_t)vpci_add_cap(pci, VPCI_NOTIFY_CAP_LEN, VPCI_CAP_NOTIFY_CFG, VPCI_NOTIFY_OFF,
                                        num_queues * VPCI_NOTIFY_MULTIPLIER);
    if (dev->cap_notify)
        pci_dev_cfg_set(pci, dev->cap_notify + 16u, 4, VPCI_NOTIFY_MULTIPLIER);
    dev->cap_isr = (uint16_t)vpci_add_cap(pci, VPCI_CAP_LEN, VPCI_CAP_ISR_CFG, VPCI_ISR_OFF, 1);
    /* §4.1.4.6: a device with no device-specific configuration has no such
     * capability. */
    bool devcfg_ok = true;
    if (config_size) {
        dev->cap_device = (uint16_t)vpci_add_cap(pci, VPCI_CAP_LEN, VPCI_CAP_DEVICE_CFG, VPCI_DEVCFG_OFF,
                                            config_size);
        devcfg_ok = dev->cap_device != 0;
    }
    /* §4.1.4.9: the window's bar, offset, length and data are the driver's to
     * write; the rest reads 0 from the bus's defaults. */
    dev->cap_pci_cfg = (uint16_t)vpci_add_cap(pci, VPCI_PCI_CFG_CAP_LEN, VPCI_CAP_PCI_CFG, 0, 0);
    if (dev->cap_pci_cfg) {
        pci_dev_cfg_set(pci, dev->cap_pci_cfg + 4u, 1, 0);
        pci_dev_cfg_wmask(pci, dev->cap_pci_cfg + 4u, 1, 0xff);
        pci_dev_cfg_wmask(pci, dev->cap_pci_cfg + 8u, 4, 0xffffffffu);
        pci_dev_cfg_wmask(pci, dev->cap_pci_cfg + 12u, 4, 0xffffffffu);
        pci_dev_cfg_wmask(pci, dev->cap_pci_cfg + 16u, 4, 0xffffffffu);
    }
    /* §4.1.5.1.2: one vector for configuration changes and one per queue. */
    dev->cap_msix = (uint16_t)pci_dev_add_msix(pci, dev->msix_vectors, VPCI_BAR, VPCI_MSIX_TABLE_OFF,
                                               VPCI_BAR, VPCI_MSIX_PBA_OFF);
    if (!dev->cap_common || !dev->cap_notify || !dev->cap_isr || !devcfg_ok || !dev->cap_pci_cfg ||
        !dev->cap_msix)
        return false;

    dev->in_window = false;
    for (unsigned i = 0; i < num_queues; i++)
        vpci_queue_defaults(dev, &dev->queue[i]);
    dev->config_msix_vector = VPCI_NO_VECTOR;
    return true;
}

/* ---- snapshots ---- */

static void image_fields(struct snap *s, struct vpci_image *img, unsigned queues)
{
    snap_u64(s, &img->driver_features);
    snap_u32(s, &img->device_feature_select);
    snap_u32(s, &img->driver_feature_select);
    snap_u16(s, &img->config_msix_vector);
    snap_u16(s, &img->queue_select);
    snap_u8(s, &img->status);
    snap_u8(s, &img->config_generation);
    snap_u8(s, &img->isr);
    snap_bool(s, &img->needs_reset);
    for (unsigned i = 0; i < queues; i++) {
        snap_u16(s, &img->q[i].size);
        snap_u16(s, &img->q[i].msix_vector);
        snap_bool(s, &img->q[i].enabled);
        snap_bool(s, &img->q[i].reset_done);
        snap_bool(s, &img->q[i].vq_enabled);
        snap_bool(s, &img->q[i].vq_broken);
        snap_u32(s, &img->q[i].vq_error);
        snap_u64(s, &img->q[i].desc);
        snap_u64(s, &img->q[i].driver);
        snap_u64(s, &img->q[i].device);
        snap_u16(s, &img->q[i].last_avail_idx);
        snap_u16(s, &img->q[i].used_idx);
        snap_u16(s, &img->q[i].used_published);
        snap_u16(s, &img->q[i].signalled_used);
    }
}

void vpci_save(struct vpci_dev *dev, struct snap *s)
{
    static struct vpci_image img;        /* callers are serialised by the VM's snapshot */
    img = (struct vpci_image){
        .driver_features = dev->driver_features, .device_feature_select = dev->device_feature_select,
        .driver_feature_select = dev->driver_feature_select, .config_msix_vector = dev->config_msix_vector,
        .queue_select = dev->queue_select, .status = dev->status, .config_generation = dev->config_generation,
        .isr = dev->isr, .needs_reset = dev->needs_reset,
    };
    for (unsigned i = 0; i < dev->num_queues; i++) {
        const struct vpci_queue *q = &dev->queue[i];
        img.q[i].size = q->size;
        img.q[i].msix_vector = q->msix_vector;
        img.q[i].enabled = q->enabled;
        img.q[i].reset_done = q->reset_done;
        img.q[i].vq_enabled = q->vq.enabled;
        img.q[i].vq_broken = q->vq.broken;
        img.q[i].vq_error = (uint32_t)q->vq.error;
        img.q[i].desc = q->desc;
        img.q[i].driver = q->driver;
        img.q[i].device = q->device;
        img.q[i].last_avail_idx = q->vq.last_avail_idx;
        img.q[i].used_idx = q->vq.used_idx;
        img.q[i].used_published = q->vq.used_published;
        img.q[i].signalled_used = q->vq.signalled_used;
    }
    uint32_t type = dev->device_type, queues = dev->num_queues;
    snap_record_begin(s, "virtio", 1);
    snap_u32(s, &type);
    snap_u32(s, &queues);
    image_fields(s, &img, dev->num_queues);
    snap_record_end(s);
}

bool vpci_load(const struct vpci_dev *dev, struct vpci_image *img, struct snap *s)
{
    uint32_t type = 0, queues = 0;
    *img = (struct vpci_image){ 0 };
    snap_record_begin(s, "virtio", 1);
    snap_u32(s, &type);
    snap_u32(s, &queues);
    if (snap_check(s, type == dev->device_type && queues == dev->num_queues, "a virtio device of another type"))
        image_fields(s, img, dev->num_queues);
    snap_record_end(s);
    if (s->failed)
        return false;
    const uint8_t status_bits = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK |
                                VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_FAILED;
    bool ok = !(img->status & ~status_bits) && img->queue_select < VPCI_QUEUES_MAX &&
              !(img->driver_features & ~dev->device_features) &&
              (img->config_msix_vector < dev->msix_vectors || img->config_msix_vector == VPCI_NO_VECTOR);
    for (unsigned i = 0; i < dev->num_queues && ok; i++) {
        uint16_t n = img->q[i].size;
        ok = n && n <= dev->queue_max && !(n & (n - 1)) && img->q[i].vq_error <= VQ_ERR_PUSH_UNPOPPED &&
             (img->q[i].msix_vector < dev->msix_vectors || img->q[i].msix_vector == VPCI_NO_VECTOR) &&
             (img->q[i].enabled || !img->q[i].vq_enabled);
    }
    return snap_check(s, ok, "a virtio device's registers hold values the device never takes");
}

void vpci_restore(struct vpci_dev *dev, const struct vpci_image *img)
{
    dev->driver_features = img->driver_features;
    dev->device_feature_select = img->device_feature_select;
    dev->driver_feature_select = img->driver_feature_select;
    dev->config_msix_vector = img->config_msix_vector;
    dev->queue_select = img->queue_select;
    dev->status = img->status;
    dev->config_generation = img->config_generation;
    dev->isr = img->isr;
    dev->needs_reset = img->needs_reset;
    dev->in_window = dev->defer_intx = dev->defer_config_irq = false;
    dev->defer_notify = 0;
    for (unsigned i = 0; i < dev->num_queues; i++) {
        struct vpci_queue *q = &dev->queue[i];
        vq_reset(&q->vq);
        q->size = img->q[i].size;
        q->msix_vector = img->q[i].msix_vector;
        q->enabled = img->q[i].enabled;
        q->reset_done = img->q[i].reset_done;
        q->desc = img->q[i].desc;
        q->driver = img->q[i].driver;
        q->device = img->q[i].device;
        if (!img->q[i].vq_enabled)
            continue;
        vq_set_features(&q->vq, vpci_features(dev));
        enum vq_error e = dev->ops.gmem ? vq_set_addrs(&q->vq, dev->ops.gmem, q->size, q->desc, q->driver,
                                                       q->device)
                                        : VQ_ERR_NOT_READY;
        if (e != VQ_OK) {
            /* The same RAM as when it was taken: cannot happen, but stop the
             * device rather than trust it. */
            vpci_device_error(dev);
            continue;
        }
        q->vq.last_avail_idx = img->q[i].last_avail_idx;
        q->vq.used_idx = img->q[i].used_idx;
        q->vq.used_published = img->q[i].used_published;
        q->vq.signalled_used = img->q[i].signalled_used;
        if (img->q[i].vq_broken) {
            q->vq.broken = true;
            q->vq.error = (enum vq_error)img->q[i].vq_error;
        } else {
            /* vq_set_addrs asked for a kick at entry 0; between requests the
             * device waits for the next one it has not taken. */
            vq_enable_notify(&q->vq, dev->ops.gmem);
        }
    }
    vpci_intx_sync(dev);
}
