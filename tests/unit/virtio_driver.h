/* A virtio driver's side of a two-queue device on the VM's PCI bus (vmm/nic.c,
 * vmm/vconsole.c) for the monitor's unit tests, through guest_access.h's exits: the
 * device's BAR, its init with receive queue 0 at RXQ and transmit queue 1 at TXQ
 * (each rings: descriptors, available ring at +0x1000, used ring at +0x2000), and
 * the rings.  The including test defines vdev() (the device under test), QSIZE,
 * VECTOR, RXQ, TXQ and avail_idx[2], after guest_access.h. */
#ifndef PLINTH_TESTS_VIRTIO_DRIVER_H
#define PLINTH_TESTS_VIRTIO_DRIVER_H

static uint64_t bar0(void)
{
    unsigned d = vdev()->pci->devfn;
    return (uint64_t)conf1_read(d, 0x14, 4) << 32 | (conf1_read(d, 0x10, 4) & ~0xfull);
}

static void common_write(unsigned off, unsigned size, uint64_t v)
{
    mmio_write(bar0() + VPCI_COMMON_OFF + off, size, v);
}

static void queue_init(unsigned q, uint64_t rings, uint16_t vector)
{
    common_write(VPCI_COMMON_Q_SELECT, 2, q);
    common_write(VPCI_COMMON_Q_SIZE, 2, QSIZE);
    common_write(VPCI_COMMON_Q_MSIX, 2, vector);
    common_write(VPCI_COMMON_Q_DESCLO, 4, rings);
    common_write(VPCI_COMMON_Q_AVAILLO, 4, rings + 0x1000);
    common_write(VPCI_COMMON_Q_USEDLO, 4, rings + 0x2000);
    common_write(VPCI_COMMON_Q_ENABLE, 2, 1);
}

/* §3.1.1 with both queues, the given device features (low 32 bits), MSI-X vector 1
 * (receive) and 2 (transmit) to APIC 0 at VECTOR and VECTOR + 1. */
static void driver_init(uint32_t features)
{
    unsigned d = vdev()->pci->devfn;
    conf1_write(d, PCI_CFG_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    common_write(VPCI_COMMON_STATUS, 1, 0);
    common_write(VPCI_COMMON_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    common_write(VPCI_COMMON_GFSELECT, 4, 1);
    common_write(VPCI_COMMON_GF, 4, 1);
    common_write(VPCI_COMMON_GFSELECT, 4, 0);
    common_write(VPCI_COMMON_GF, 4, features);
    common_write(VPCI_COMMON_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                                        VIRTIO_STATUS_FEATURES_OK);
    mmio_write(0xfee000f0, 4, 0x1ff);
    conf1_write(d, vdev()->cap_msix + 2, 2, PCI_MSIX_CTRL_ENABLE);
    for (unsigned e = 1; e <= 2; e++) {
        uint64_t t = bar0() + VPCI_MSIX_TABLE_OFF + 16 * e;
        mmio_write(t, 4, 0xfee00000u);
        mmio_write(t + 4, 4, 0);
        mmio_write(t + 8, 4, VECTOR + e - 1);
        mmio_write(t + 12, 4, 0);
    }
    queue_init(0, RXQ, 1);
    queue_init(1, TXQ, 2);
    common_write(VPCI_COMMON_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                                        VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
}

static void put_desc(uint64_t rings, unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    uint8_t *e = ram + rings + 16 * i;
    memcpy(e, &addr, 8);
    memcpy(e + 8, &len, 4);
    memcpy(e + 12, &flags, 2);
    memcpy(e + 14, &next, 2);
}

static void make_avail(unsigned q, uint64_t rings, uint16_t head)
{
    memcpy(ram + rings + 0x1000 + 4 + 2 * (avail_idx[q] % QSIZE), &head, 2);
    avail_idx[q]++;
    memcpy(ram + rings + 0x1000 + 2, &avail_idx[q], 2);
}

static void notify(unsigned q)
{
    mmio_write(bar0() + VPCI_NOTIFY_OFF + VPCI_NOTIFY_MULTIPLIER * q, 2, q);
}

static uint16_t used_idx(uint64_t rings)
{
    uint16_t u;
    memcpy(&u, ram + rings + 0x2000 + 2, 2);
    return u;
}

static uint32_t used_len(uint64_t rings, unsigned i)
{
    uint32_t len;
    memcpy(&len, ram + rings + 0x2000 + 4 + 8 * i + 4, 4);
    return len;
}

#endif
