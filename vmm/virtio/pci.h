/* The virtio 1.x modern PCI transport (virtio 1.2 §4.1) as a plain state machine:
 * one PCI function on the emulated bus (vmm/dev/pci_bus.h) whose single 64-bit
 * memory BAR holds the common configuration (§4.1.4.3), the notification area
 * (§4.1.4.4), the ISR status byte (§4.1.4.5), the device-specific configuration
 * (§4.1.4.6) and the MSI-X table and PBA; the virtio vendor capabilities
 * (§4.1.4) that point at them are chained in configuration space.
 *
 * The transport owns the device's virtqueues (vmm/virtio/virtqueue.h): the
 * driver's queue_size/queue_desc/queue_driver/queue_device/queue_enable writes
 * become vq_set_features + vq_set_addrs, device and queue resets vq_reset.  The
 * device type (blk, net, console) sees only struct vpci_ops: a queue was
 * notified, its own configuration was read or written, the device was reset.  It
 * takes chains from vpci_queue() and raises interrupts with vpci_interrupt_*.
 *
 * Every value the guest writes is hostile: sizes, indices, vectors, addresses
 * are checked, and a queue_select past num_queues reads 0 and writes nothing.
 *
 * BAR 0 layout (offsets fixed, so a test or the monitor can find each region
 * without walking the capabilities):
 *     0x0000  common configuration, VPCI_COMMON_LEN bytes
 *     0x1000  ISR status, 1 byte
 *     0x2000  device configuration, config_size bytes (at most 0x1000)
 *     0x3000  notifications, VPCI_NOTIFY_MULTIPLIER bytes per queue
 *     0x4000  MSI-X table, 16 bytes per vector (num_queues + 1 vectors)
 *     0x5000  MSI-X PBA
 *
 * Calls on one device are serialised by the caller (the VM's platform lock, as
 * for the bus).  struct vpci_dev is a few KiB: allocate it beside the bus. */
#ifndef PLINTH_VMM_VIRTIO_PCI_H
#define PLINTH_VMM_VIRTIO_PCI_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/dev/pci_bus.h"
#include "vmm/virtio/guest_mem.h"
#include "vmm/virtio/virtqueue.h"

struct snap;

/* PCI IDs, §4.1.2: vendor 1af4, device 1040 + the virtio device ID. */
#define VPCI_VENDOR_ID          0x1af4
#define VPCI_DEVICE_ID_BASE     0x1040

/* Virtio device IDs (§5) the transport knows a class code for. */
#define VIRTIO_ID_NET           1
#define VIRTIO_ID_BLOCK         2
#define VIRTIO_ID_CONSOLE       3

/* device_status bits, §2.1 (DEVICE_NEEDS_RESET is in virtqueue.h). */
#define VIRTIO_STATUS_ACKNOWLEDGE  0x01
#define VIRTIO_STATUS_DRIVER       0x02
#define VIRTIO_STATUS_DRIVER_OK    0x04
#define VIRTIO_STATUS_FEATURES_OK  0x08
#define VIRTIO_STATUS_FAILED       0x80

/* Transport feature bits, §6. */
#define VIRTIO_F_VERSION_1      32
#define VIRTIO_F_RING_RESET     40

/* §4.1.4.3: "NO_VECTOR 0xffff". */
#define VPCI_NO_VECTOR          0xffff

/* virtio_pci_cap cfg_type values, §4.1.4. */
#define VPCI_CAP_COMMON_CFG     1
#define VPCI_CAP_NOTIFY_CFG     2
#define VPCI_CAP_ISR_CFG        3
#define VPCI_CAP_DEVICE_CFG     4
#define VPCI_CAP_PCI_CFG        5
#define VPCI_CAP_LEN            16     /* struct virtio_pci_cap */
#define VPCI_NOTIFY_CAP_LEN     20     /* + notify_off_multiplier */
#define VPCI_PCI_CFG_CAP_LEN    20     /* + pci_cfg_data */

/* Common configuration offsets, §4.1.4.3 (struct virtio_pci_common_cfg). */
#define VPCI_COMMON_DFSELECT    0x00
#define VPCI_COMMON_DF          0x04
#define VPCI_COMMON_GFSELECT    0x08
#define VPCI_COMMON_GF          0x0c
#define VPCI_COMMON_MSIX        0x10
#define VPCI_COMMON_NUMQ        0x12
#define VPCI_COMMON_STATUS      0x14
#define VPCI_COMMON_CFGGEN      0x15
#define VPCI_COMMON_Q_SELECT    0x16
#define VPCI_COMMON_Q_SIZE      0x18
#define VPCI_COMMON_Q_MSIX      0x1a
#define VPCI_COMMON_Q_ENABLE    0x1c
#define VPCI_COMMON_Q_NOFF      0x1e
#define VPCI_COMMON_Q_DESCLO    0x20
#define VPCI_COMMON_Q_DESCHI    0x24
#define VPCI_COMMON_Q_AVAILLO   0x28
#define VPCI_COMMON_Q_AVAILHI   0x2c
#define VPCI_COMMON_Q_USEDLO    0x30
#define VPCI_COMMON_Q_USEDHI    0x34
#define VPCI_COMMON_Q_NDATA     0x38
#define VPCI_COMMON_Q_RESET     0x3a
#define VPCI_COMMON_LEN         0x3c

/* ISR status bits, §4.1.4.5. */
#define VPCI_ISR_QUEUE          0x1
#define VPCI_ISR_CONFIG         0x2

/* BAR 0 layout (see the top of this file). */
#define VPCI_BAR                0
#define VPCI_BAR_SIZE           0x8000
#define VPCI_COMMON_OFF         0x0000
#define VPCI_ISR_OFF            0x1000
#define VPCI_DEVCFG_OFF         0x2000
#define VPCI_DEVCFG_MAX         0x1000
#define VPCI_NOTIFY_OFF         0x3000
#define VPCI_NOTIFY_MULTIPLIER  4
#define VPCI_MSIX_TABLE_OFF     0x4000
#define VPCI_MSIX_PBA_OFF       0x5000

/* Queues per device: 64 keeps the MSI-X table (65 vectors) under 0x1000 bytes
 * and the notify area inside its 0x1000 bytes; multiqueue net needs fewer. */
#define VPCI_QUEUES_MAX         64

/* What the transport asks of the device type.  Any callback may be NULL.  They
 * run inside the BAR access (or config access) that caused them. */
struct vpci_ops {
    /* The driver notified queue (< num_queues, enabled, §4.1.4.4): process it. */
    void     (*notify)(void *ctx, unsigned queue);
    /* The device-specific configuration (§4.1.4.6): offset + size within
     * config_size, size 1, 2 or 4 and naturally aligned.  A NULL config_read
     * reads 0. */
    uint32_t (*config_read)(void *ctx, unsigned offset, unsigned size);
    void     (*config_write)(void *ctx, unsigned offset, unsigned size, uint32_t value);
    /* The driver reset the device (device_status 0, §2.4): drop in-flight
     * requests; the transport has already reset every queue. */
    void     (*reset)(void *ctx);
    /* Enabling queue failed on the driver's ring set-up (e: a driver error of
     * vq_set_addrs, vq_error_name says which); the device is then
     * DEVICE_NEEDS_RESET.  The device logs it: nothing else will. */
    void     (*queue_error)(void *ctx, unsigned queue, enum vq_error e);
    void     *ctx;
    /* The VM's RAM, which every queue's rings must lie in. */
    const struct gmem *gmem;
};

struct vpci_queue {
    struct vq vq;
    uint16_t size;              /* queue_size: queue_max until the driver lowers it */
    uint16_t msix_vector;       /* queue_msix_vector */
    bool     enabled;           /* queue_enable as the driver last wrote it */
    bool     reset_done;        /* queue_reset reads 1 after a queue reset */
    uint64_t desc, driver, device;
};

struct vpci_dev {
    struct pci_dev *pci;
    struct vpci_ops ops;
    uint16_t device_type;
    uint16_t num_queues;
    uint16_t queue_max;
    uint16_t msix_vectors;      /* num_queues + 1 */
    uint32_t config_size;
    uint64_t device_features;   /* offered, VERSION_1 included */
    uint64_t driver_features;
    uint32_t device_feature_select;
    uint32_t driver_feature_select;
    uint16_t config_msix_vector;
    uint16_t queue_select;
    uint8_t  status;            /* as the driver wrote it (FEATURES_OK checked) */
    bool     needs_reset;       /* the device's own DEVICE_NEEDS_RESET */
    uint8_t  config_generation;
    uint8_t  isr;
    /* Configuration space offsets of the capabilities (0: absent). */
    uint16_t cap_common, cap_notify, cap_isr, cap_device, cap_pci_cfg, cap_msix;
    /* §4.1.4.9 window accesses run inside the bus's config callbacks, which
     * must not call back into the bus: what would (an interrupt, the INTx
     * level, a notification) waits here for vpci_run_deferred. */
    bool     in_window;
    bool     defer_intx;
    bool     defer_config_irq;
    uint64_t defer_notify;      /* bit per queue */
    struct vpci_queue queue[VPCI_QUEUES_MAX];
};

/* Registers the function at devfn on bus: IDs from device_type (§4.1.2),
 * device_features plus VERSION_1 offered, num_queues (1-64) queues of at most
 * queue_max (a power of two, 1-32768) entries, config_size (0-4096) bytes of
 * device configuration, MSI-X with num_queues + 1 vectors and INTA# for INTx.
 * ops is copied.  false (and nothing usable) on a bad argument or if the bus
 * refuses the function. */
bool vpci_init(struct vpci_dev *dev, struct pci_bus *bus, unsigned devfn, uint16_t device_type,
               uint64_t device_features, unsigned num_queues, unsigned queue_max,
               unsigned config_size, const struct vpci_ops *ops);

/* An access at offset into BAR 0 by the guest (the monitor's MMIO handler),
 * size 1, 2, 4 or 8.  Accesses the spec does not allow for a field, or that fall
 * on no register, read 0 and write nothing.  vpci_bar_read returns false (and
 * *value 0) when the offset is past the BAR. */
bool vpci_bar_read(struct vpci_dev *dev, uint64_t offset, unsigned size, uint64_t *value);
bool vpci_bar_write(struct vpci_dev *dev, uint64_t offset, unsigned size, uint64_t value);

/* A device reset as if the driver wrote 0 to device_status (§2.4), for a PCI
 * reset of the whole VM (its reboot): queues, features, status, ISR cleared,
 * ops.reset called. */
void vpci_reset(struct vpci_dev *dev);

/* After every configuration space access to this function (conf1 or ECAM): runs
 * what a §4.1.4.9 window access deferred.  Cheap when nothing is pending. */
void vpci_run_deferred(struct vpci_dev *dev);

/* Device side. */
/* The queue's engine state, NULL for queue >= num_queues.  Usable while
 * vpci_queue_ready. */
struct vq *vpci_queue(struct vpci_dev *dev, unsigned queue);
bool vpci_queue_ready(const struct vpci_dev *dev, unsigned queue);
/* The features both sides agreed on (valid once FEATURES_OK reads back set). */
uint64_t vpci_features(const struct vpci_dev *dev);
/* The device status as the driver reads it (DEVICE_NEEDS_RESET included). */
uint8_t vpci_status(const struct vpci_dev *dev);
/* A used buffer notification for queue (§4.1.5.4) / a configuration change
 * notification (§4.1.5.5): the MSI-X vector the driver chose when MSI-X is
 * enabled (none for NO_VECTOR), else the ISR bit and INTx held high until the
 * driver reads the ISR.  true if an interrupt was sent or is pending (masked
 * vector, INTx asserted). */
bool vpci_interrupt_queue(struct vpci_dev *dev, unsigned queue);
bool vpci_interrupt_config(struct vpci_dev *dev);
/* The device changed its configuration: config_generation moves (§4.1.4.3.1)
 * and the driver gets a configuration change notification. */
void vpci_config_changed(struct vpci_dev *dev);
/* The device hit an error it cannot recover from (a queue broke): sets
 * DEVICE_NEEDS_RESET and, once DRIVER_OK, notifies the driver (§2.1.2). */
void vpci_device_error(struct vpci_dev *dev);

/* ---- Snapshots (vmm/snap.h) ----
 * The transport's registers and each queue's set-up and indices (the function's
 * configuration space is pci_dev_save's).  vpci_load reads a record into img,
 * checked against the live device; vpci_restore, once the VM's RAM is the
 * snapshot's, sets the queues up again over it (as at queue_enable), puts the
 * indices back and re-enables the driver's notifications, as between requests. */
struct vpci_image {
    uint64_t driver_features;
    uint32_t device_feature_select, driver_feature_select;
    uint16_t config_msix_vector, queue_select;
    uint8_t  status, config_generation, isr;
    bool     needs_reset;
    struct {
        uint16_t size, msix_vector;
        bool     enabled, reset_done, vq_enabled, vq_broken;
        uint32_t vq_error;
        uint64_t desc, driver, device;
        uint16_t last_avail_idx, used_idx, used_published, signalled_used;
    } q[VPCI_QUEUES_MAX];
};
void vpci_save(struct vpci_dev *dev, struct snap *s);
bool vpci_load(const struct vpci_dev *dev, struct vpci_image *img, struct snap *s);
void vpci_restore(struct vpci_dev *dev, const struct vpci_image *img);

#endif
