/* A PCI host bridge behind configuration mechanism #1 (PCI Local Bus 3.0
 * §3.2.2.3.2): CONFIG_ADDRESS at 0xcf8, a whole dword only, and CONFIG_DATA at
 * 0xcfc-0xcff, any width within it, offset by the port's low bits.  Bus 0 holds
 * one device, the bridge itself (device 0, function 0, an i440FX-like host bridge,
 * class 0x060000, header type 0, no BARs); every other function of every bus is
 * absent: reads return all ones (a master abort) and writes are dropped.
 *
 * All other accesses to 0xcf8-0xcfb are ordinary I/O cycles the bridge does not
 * claim, so pci_host_io() declines them and the I/O bus delivers them byte by byte
 * to whoever decodes those ports: the byte at 0xcf9 is the reset control register
 * (vmm/dev/pc_misc).  Wire it with io_bus_claim_wide() over PCI_HOST_PORT_FIRST..
 * PCI_HOST_PORT_LAST, and claim 0xcf9 for pc_misc as an ordinary byte range.
 *
 * The model has no lock: the caller serialises every call on one instance (the
 * address latch is shared by all of a VM's vCPUs, as on the real bridge). */
#ifndef PLINTH_VMM_DEV_PCI_HOST_H
#define PLINTH_VMM_DEV_PCI_HOST_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/snap.h"

#define PCI_HOST_PORT_ADDRESS 0xcf8
#define PCI_HOST_PORT_DATA    0xcfc
#define PCI_HOST_PORT_FIRST   0xcf8
#define PCI_HOST_PORT_LAST    0xcff

/* The identity the bridge reports: Intel 82441FX PMC (i440FX), which guests know
 * as a plain host bridge, class 06h/00h ("host bridge", PCI Code and ID
 * Assignment Specification). */
#define PCI_HOST_VENDOR_ID    0x8086
#define PCI_HOST_DEVICE_ID    0x1237
#define PCI_HOST_REVISION     0x02
#define PCI_HOST_CLASS        0x060000

/* CONFIG_ADDRESS: enable bit 31, bus 23:16, device 15:11, function 10:8, register
 * 7:2; bits 30:24 and 1:0 are read-only 0. */
#define PCI_HOST_ADDRESS_ENABLE 0x80000000u
#define PCI_HOST_ADDRESS_MASK   0x80fffffcu

struct pci_host {
    uint32_t address;         /* CONFIG_ADDRESS as latched */
    /* The bridge's read/write header registers that hold a value without acting on
     * it (PCI Local Bus 3.0 §6.2.4). */
    uint8_t  cache_line_size;
    uint8_t  latency_timer;
    uint8_t  interrupt_line;
};

/* The bridge after a PCI reset: CONFIG_ADDRESS and the header registers zero. */
void     pci_host_init(struct pci_host *h);
/* One access to the ports 0xcf8-0xcff, as an io_wide_fn sees it (vmm/io.h): true
 * if the bridge took it (*value filled for a read), false to leave it to the
 * byte-wide ranges. */
bool     pci_host_io(struct pci_host *h, uint16_t port, unsigned size, bool write, uint32_t *value);
/* The same for a bridge with other functions behind it (the VM's PCI bus,
 * vmm/pci): a CONFIG_DATA access to bus 0 aimed at any function but the bridge's
 * own 00.0 is not served here but described in *fwd (forward true) for the caller
 * to run against the bus, after it has dropped whatever lock serialises the
 * bridge.  fwd->forward false: the bridge took or declined the access itself. */
struct pci_host_cycle {
    bool     forward;
    uint8_t  devfn;
    unsigned offset;          /* register, 0-255 */
};
bool     pci_host_io_fwd(struct pci_host *h, uint16_t port, unsigned size, bool write, uint32_t *value,
                         struct pci_host_cycle *fwd);
/* Configuration space of (bus, device, function) at offset (0-255), size 1, 2 or 4
 * bytes within one dword; what CONFIG_DATA reaches.  All ones for an absent
 * function or a bad offset or size. */
uint32_t pci_host_config_read(struct pci_host *h, uint8_t bus, uint8_t dev, uint8_t fn,
                              unsigned offset, unsigned size);
void     pci_host_config_write(struct pci_host *h, uint8_t bus, uint8_t dev, uint8_t fn,
                               unsigned offset, unsigned size, uint32_t value);

/* Snapshot record "pcihost" (vmm/snap.h): CONFIG_ADDRESS as latched and the
 * header registers that hold a value.  No time arguments and no callbacks.  A
 * refused load (CONFIG_ADDRESS with its read-only bits set) leaves *h as it
 * was. */
bool     pci_host_save(const struct pci_host *h, struct snap *s);
bool     pci_host_load(struct pci_host *h, struct snap *s);

#endif
