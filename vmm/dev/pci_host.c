#include "vmm/dev/pci_host.h"

/* Type 0 configuration header offsets (PCI Local Bus 3.0 §6.1, figure 6-1). */
#define CFG_VENDOR_ID        0x00
#define CFG_DEVICE_ID        0x02
#define CFG_COMMAND          0x04
#define CFG_REVISION         0x08
#define CFG_CLASS            0x09   /* prog-if, subclass, base class */
#define CFG_CACHE_LINE_SIZE  0x0c
#define CFG_LATENCY_TIMER    0x0d
#define CFG_HEADER_TYPE      0x0e
#define CFG_INTERRUPT_LINE   0x3c
#define CFG_SIZE             256

/* Command: memory space and bus master.  A host bridge always forwards memory
 * cycles and masters the bus on the CPU's behalf, so the bits are hardwired on
 * (§6.2.2 lets a device hardwire a bit it cannot turn off). */
#define PCI_COMMAND_MEMORY   0x0002
#define PCI_COMMAND_MASTER   0x0004

void pci_host_init(struct pci_host *h)
{
    *h = (struct pci_host){ 0 };
}

static bool bridge_present(uint8_t bus, uint8_t dev, uint8_t fn)
{
    return bus == 0 && dev == 0 && fn == 0;
}

/* One byte of the bridge's own configuration space.  Everything not listed is a
 * hardwired 0: status (no capabilities list), header type 0 (single function),
 * BIST, the BARs (none implemented, §6.2.5.1), subsystem IDs, expansion ROM,
 * interrupt pin (none), and the device-specific registers from 0x40, which this
 * bridge does not model (guests see a bridge with no programmable windows). */
static uint8_t bridge_byte(const struct pci_host *h, unsigned off)
{
    switch (off) {
    case CFG_VENDOR_ID:        return (uint8_t)PCI_HOST_VENDOR_ID;
    case CFG_VENDOR_ID + 1:    return (uint8_t)(PCI_HOST_VENDOR_ID >> 8);
    case CFG_DEVICE_ID:        return (uint8_t)PCI_HOST_DEVICE_ID;
    case CFG_DEVICE_ID + 1:    return (uint8_t)(PCI_HOST_DEVICE_ID >> 8);
    case CFG_COMMAND:          return PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
    case CFG_REVISION:         return PCI_HOST_REVISION;
    case CFG_CLASS:            return (uint8_t)PCI_HOST_CLASS;
    case CFG_CLASS + 1:        return (uint8_t)(PCI_HOST_CLASS >> 8);
    case CFG_CLASS + 2:        return (uint8_t)(PCI_HOST_CLASS >> 16);
    case CFG_CACHE_LINE_SIZE:  return h->cache_line_size;
    case CFG_LATENCY_TIMER:    return h->latency_timer;
    case CFG_INTERRUPT_LINE:   return h->interrupt_line;
    default:                   return 0;
    }
}

static bool access_ok(unsigned offset, unsigned size)
{
    return (size == 1 || size == 2 || size == 4) && offset < CFG_SIZE &&
           (offset & 3) + size <= 4;
}

uint32_t pci_host_config_read(struct pci_host *h, uint8_t bus, uint8_t dev, uint8_t fn,
                              unsigned offset, unsigned size)
{
    if (!access_ok(offset, size))
        return 0xffffffffu;
    if (!bridge_present(bus, dev, fn))
        return size == 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
    uint32_t v = 0;
    for (unsigned i = 0; i < size; i++)
        v |= (uint32_t)bridge_byte(h, offset + i) << (8 * i);
    return v;
}

void pci_host_config_write(struct pci_host *h, uint8_t bus, uint8_t dev, uint8_t fn,
                           unsigned offset, unsigned size, uint32_t value)
{
    if (!access_ok(offset, size) || !bridge_present(bus, dev, fn))
        return;
    for (unsigned i = 0; i < size; i++) {
        uint8_t b = (uint8_t)(value >> (8 * i));
        switch (offset + i) {
        case CFG_CACHE_LINE_SIZE: h->cache_line_size = b; break;
        case CFG_LATENCY_TIMER:   h->latency_timer = b; break;
        case CFG_INTERRUPT_LINE:  h->interrupt_line = b; break;
        default:                  break; /* read-only: the write has no effect */
        }
    }
}

bool pci_host_io(struct pci_host *h, uint16_t port, unsigned size, bool write, uint32_t *value)
{
    return pci_host_io_fwd(h, port, size, write, value, 0);
}

bool pci_host_io_fwd(struct pci_host *h, uint16_t port, unsigned size, bool write, uint32_t *value,
                     struct pci_host_cycle *fwd)
{
    if (fwd)
        fwd->forward = false;
    if (size != 1 && size != 2 && size != 4)
        return false;
    if (port == PCI_HOST_PORT_ADDRESS && size == 4) {
        if (write)
            h->address = *value & PCI_HOST_ADDRESS_MASK;
        else
            *value = h->address;
        return true;
    }
    /* CONFIG_DATA: an access that stays within 0xcfc-0xcff.  One that straddles
     * its edge is no configuration cycle; the bus splits it like any other. */
    if (port < PCI_HOST_PORT_DATA || port + size > PCI_HOST_PORT_LAST + 1u)
        return false;
    /* With the enable bit clear, CONFIG_DATA is an ordinary I/O port too. */
    if (!(h->address & PCI_HOST_ADDRESS_ENABLE))
        return false;
    unsigned lane = port - PCI_HOST_PORT_DATA;
    uint8_t bus = (uint8_t)(h->address >> 16);
    uint8_t dev = (uint8_t)((h->address >> 11) & 0x1f);
    uint8_t fn = (uint8_t)((h->address >> 8) & 7);
    unsigned offset = (h->address & 0xfc) + lane;
    if (fwd && bus == 0 && (dev | fn)) {
        *fwd = (struct pci_host_cycle){ .forward = true, .devfn = (uint8_t)(dev << 3 | fn), .offset = offset };
        return true;
    }
    if (write)
        pci_host_config_write(h, bus, dev, fn, offset, size, *value);
    else
        *value = pci_host_config_read(h, bus, dev, fn, offset, size);
    return true;
}

/* ---- snapshot ---- */

static void pci_host_fields(struct pci_host *h, struct snap *s)
{
    snap_record_begin(s, "pcihost", 1);
    snap_u32(s, &h->address);
    snap_u8(s, &h->cache_line_size);
    snap_u8(s, &h->latency_timer);
    snap_u8(s, &h->interrupt_line);
    snap_record_end(s);
}

bool pci_host_save(const struct pci_host *h, struct snap *s)
{
    struct pci_host c = *h;
    pci_host_fields(&c, s);
    return !s->failed;
}

bool pci_host_load(struct pci_host *h, struct snap *s)
{
    struct pci_host c = *h;
    pci_host_fields(&c, s);
    /* CONFIG_ADDRESS writes keep bits 30:24 and 1:0 clear, and a guest reads the
     * register back. */
    if (s->failed || !snap_check(s, !(c.address & ~PCI_HOST_ADDRESS_MASK),
                                 "pcihost: CONFIG_ADDRESS read-only bits set"))
        return false;
    *h = c;
    return true;
}
