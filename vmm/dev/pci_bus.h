/* The emulated PCI bus 0 of segment 0: a registry of functions, each with a 4 KiB
 * configuration space (PCI Express extended space, PCIe Base 4.0 §7.2.2) whose
 * read-only and write-1-to-clear bits are enforced by per-byte masks; memory and
 * I/O BARs that the guest sizes and moves (PCI Local Bus 3.0 §6.2.5.1); a
 * capability list (§6.7); MSI-X (§6.8.2, PCIe Base 4.0 §7.7.2) with INTx as the
 * fallback (§6.2.2-6.2.3).  Offsets 0x100-0xfff hold no extended capability: a
 * header of 0 at 0x100 says so (PCIe Base 4.0 §7.6).
 *
 * A plain state machine like every model in vmm/dev: configuration accesses come
 * in by (devfn, offset, size) from conf1 (vmm/dev/pci_host) or ECAM, BAR
 * accesses that fall on an MSI-X table or PBA come in by (BAR, offset, size), and
 * what leaves the bus goes through callbacks: a BAR that moves or starts or stops
 * decoding (the monitor moves its MMIO or port handler), an MSI-X message (the
 * monitor routes it to a local APIC), an INTx line level (the monitor routes it
 * through the _PRT to an IOAPIC pin).
 *
 * The caller serialises every call on one bus (the VM's platform lock), and
 * allocates struct pci_bus where a few hundred KiB fit, never on a stack.
 * Callbacks run inside the call that caused them and must not call back into the
 * bus except to read (pci_dev_bar, pci_dev_cfg_get, pci_bus_config_read). */
#ifndef PLINTH_VMM_DEV_PCI_BUS_H
#define PLINTH_VMM_DEV_PCI_BUS_H

#include <stdbool.h>
#include <stdint.h>

/* devfn = device << 3 | function: 32 devices of 8 functions (§6.1). */
#define PCI_DEVFN(dev, fn)         ((unsigned)(dev) << 3 | (unsigned)(fn))
#define PCI_BUS_DEVFNS             256
#define PCI_CONFIG_SIZE            4096        /* PCIe extended configuration space */
#define PCI_BARS                   6           /* type 0 header, §6.2.5.1 */
/* How many functions one bus holds, and how many MSI-X vectors all of them
 * together: the storage lives in struct pci_bus. */
#define PCI_BUS_FUNCTIONS_MAX      16
#define PCI_BUS_MSIX_VECTORS       2048
#define PCI_MSIX_VECTORS_MAX       2048        /* table size field is 11 bits, §6.8.2.3 */

/* Type 0 header offsets (§6.1, figure 6-1). */
#define PCI_CFG_VENDOR_ID          0x00
#define PCI_CFG_DEVICE_ID          0x02
#define PCI_CFG_COMMAND            0x04
#define PCI_CFG_STATUS             0x06
#define PCI_CFG_REVISION           0x08
#define PCI_CFG_CLASS              0x09
#define PCI_CFG_CACHE_LINE_SIZE    0x0c
#define PCI_CFG_LATENCY_TIMER      0x0d
#define PCI_CFG_HEADER_TYPE        0x0e
#define PCI_CFG_BAR0               0x10
#define PCI_CFG_SUBSYSTEM_VENDOR   0x2c
#define PCI_CFG_SUBSYSTEM_ID       0x2e
#define PCI_CFG_ROM                0x30
#define PCI_CFG_CAP_PTR            0x34
#define PCI_CFG_INTERRUPT_LINE     0x3c
#define PCI_CFG_INTERRUPT_PIN      0x3d
#define PCI_CFG_DEVICE_SPECIFIC    0x40        /* first byte a capability may use */

/* Command register bits (§6.2.2). */
#define PCI_COMMAND_IO             0x0001
#define PCI_COMMAND_MEMORY         0x0002
#define PCI_COMMAND_MASTER         0x0004
#define PCI_COMMAND_INTX_DISABLE   0x0400
/* Status register bits (§6.2.3): interrupt status and capabilities list are
 * read-only; the error bits are write-1-to-clear. */
#define PCI_STATUS_INTERRUPT       0x0008
#define PCI_STATUS_CAP_LIST        0x0010
#define PCI_STATUS_ERRORS          0xf900
#define PCI_HEADER_MULTI_FUNCTION  0x80

/* Capability IDs (PCI Code and ID Assignment Specification). */
#define PCI_CAP_ID_VENDOR          0x09
#define PCI_CAP_ID_MSIX            0x11

/* MSI-X capability structure (§6.8.2): message control at +2, table and PBA
 * offset/BIR at +4 and +8; table entries of 16 bytes (§6.8.2.6-6.8.2.9). */
#define PCI_MSIX_CAP_LEN           12
#define PCI_MSIX_CTRL_ENABLE       0x8000
#define PCI_MSIX_CTRL_FUNCTION_MASK 0x4000
#define PCI_MSIX_ENTRY_SIZE        16
#define PCI_MSIX_ENTRY_MASKED      0x1

enum pci_bar_type { PCI_BAR_NONE, PCI_BAR_IO, PCI_BAR_MEM32, PCI_BAR_MEM64 };

/* One BAR as a device model declares it.  size is a power of two: 4-256 bytes
 * for I/O (§6.2.5.1 caps an I/O BAR at 256 bytes), 16 bytes to 2 GiB for 32-bit
 * memory, 16 bytes to 2^63 for 64-bit memory.  A 64-bit BAR takes its slot and
 * the next, which must be PCI_BAR_NONE. */
struct pci_bar_desc {
    enum pci_bar_type type;
    bool     prefetchable;          /* memory BARs only */
    uint64_t size;
};

/* BAR bar (its lower slot for a 64-bit one) stopped decoding at old_base, if it
 * decoded there, and now decodes [new_base, new_base + size - 1] if enabled (that
 * range never wraps).  Called once per change of the base or of the decode, be
 * it from the guest (a BAR write, a command register write), from
 * pci_bus_assign or from pci_bus_reset; a write that changes neither calls
 * nothing.  The guest chooses new_base: the monitor must refuse to let it cover
 * RAM or another device (by not claiming the range), the model does not know the
 * VM's memory map. */
typedef void (*pci_map_fn)(void *ctx, unsigned bar, uint64_t old_base, uint64_t new_base,
                           bool enabled);
/* Accesses to the device-specific part of configuration space (offset >= 0x40):
 * config_read runs before the bytes are read (the model may refresh them with
 * pci_dev_cfg_set), config_write after the guest's value landed through the write
 * masks; value is what the guest wrote.  Either may be NULL. */
typedef void (*pci_config_read_fn)(void *ctx, unsigned offset, unsigned size);
typedef void (*pci_config_write_fn)(void *ctx, unsigned offset, unsigned size, uint32_t value);

struct pci_dev_desc {
    uint16_t vendor_id, device_id;
    uint16_t subsystem_vendor_id, subsystem_id;
    uint32_t class_code;            /* base class 23:16, subclass 15:8, prog-if 7:0 */
    uint8_t  revision;
    uint8_t  interrupt_pin;         /* 0 none, 1-4 INTA#-INTD# */
    /* Command bits hardwired to 1, as a host bridge's memory space and bus master
     * (§6.2.2 lets a function hardwire what it cannot turn off). */
    uint16_t command_fixed;
    struct pci_bar_desc bar[PCI_BARS];
    pci_map_fn          map;
    pci_config_read_fn  config_read;
    pci_config_write_fn config_write;
    void    *ctx;                   /* passed to the three callbacks above */
};

/* What the bus hands the monitor: an MSI-X message (a DWORD memory write of data
 * to addr, §6.8.2.4), and a change of a function's INTx output. */
struct pci_bus_ops {
    void (*deliver)(void *ctx, uint64_t addr, uint32_t data);
    void (*intx)(void *ctx, unsigned devfn, unsigned pin, bool level);
    void *ctx;
};

struct pci_msix_entry {
    uint32_t addr_lo, addr_hi, data, ctrl;
};

struct pci_bus;
struct snap;

struct pci_dev {
    struct pci_bus *bus;
    uint8_t  devfn;
    uint8_t  config[PCI_CONFIG_SIZE];
    uint8_t  wmask[PCI_CONFIG_SIZE];   /* bits the guest may write */
    uint8_t  w1cmask[PCI_CONFIG_SIZE]; /* bits a guest 1 clears */
    struct pci_bar_desc bar[PCI_BARS];
    uint64_t decoded_base[PCI_BARS];   /* as last reported through map */
    bool     decoded[PCI_BARS];
    uint16_t cap_last;                 /* 0: no capability yet */
    uint16_t cap_free;                 /* first byte no capability uses */
    uint16_t msix_cap;                 /* 0: no MSI-X */
    uint16_t msix_count;
    uint16_t msix_first;               /* its first entry in bus->msix */
    uint8_t  msix_table_bar, msix_pba_bar;
    uint32_t msix_table_offset, msix_pba_offset;
    bool     intx_level;               /* the device's interrupt condition */
    bool     intx_out;                 /* the INTx line as last reported */
    pci_map_fn          map;
    pci_config_read_fn  config_read;
    pci_config_write_fn config_write;
    void    *ctx;
};

struct pci_bus {
    struct pci_dev dev[PCI_BUS_FUNCTIONS_MAX];
    unsigned count;
    uint8_t  slot[PCI_BUS_DEVFNS];     /* devfn -> index in dev + 1; 0 absent */
    struct pci_msix_entry msix[PCI_BUS_MSIX_VECTORS];
    uint64_t msix_pending[PCI_BUS_MSIX_VECTORS / 64];
    unsigned msix_used;
    struct pci_bus_ops ops;
};

/* An empty bus (no function, not even the host bridge). */
void pci_bus_init(struct pci_bus *bus, const struct pci_bus_ops *ops);
/* Registers a function at devfn with a type 0 header from desc (copied), after
 * PCI reset: command, BARs and interrupt line zero.  NULL if devfn is taken or
 * past 255, the bus is full, or desc is malformed (a BAR's type or size, a 64-bit
 * BAR without a free upper slot, an interrupt pin past 4).  Function 0 of a
 * device with several functions reports itself multi-function (§6.2.1). */
struct pci_dev *pci_bus_add(struct pci_bus *bus, unsigned devfn, const struct pci_dev_desc *desc);
struct pci_dev *pci_bus_dev(struct pci_bus *bus, unsigned devfn);
/* PCI reset of every function (a VM reboot): every guest-writable and
 * write-1-to-clear bit back to 0 (command, BARs, interrupt line, MSI-X control,
 * writable capability fields), MSI-X entries masked with no message and nothing
 * pending, INTx low; map and intx report what stopped. */
void pci_bus_reset(struct pci_bus *bus);

/* Configuration space of function devfn at offset (0-4095), size 1, 2 or 4 within
 * one dword.  An absent function reads all ones of the access's size (a master
 * abort); a bad offset or size reads 0xffffffff; writes to either are dropped. */
uint32_t pci_bus_config_read(struct pci_bus *bus, unsigned devfn, unsigned offset, unsigned size);
void     pci_bus_config_write(struct pci_bus *bus, unsigned devfn, unsigned offset, unsigned size,
                              uint32_t value);
/* The same at an offset into the ECAM window (PCIe Base 4.0 §7.2.2: bus 27:20,
 * device 19:15, function 14:12, register 11:0); buses past 0 are absent. */
uint32_t pci_bus_ecam_read(struct pci_bus *bus, uint64_t offset, unsigned size);
void     pci_bus_ecam_write(struct pci_bus *bus, uint64_t offset, unsigned size, uint32_t value);

/* Places every BAR of every function in the windows [base, limit] (limits
 * inclusive; limit <= base means no such window): I/O BARs in the I/O window,
 * 32-bit memory BARs in the 32-bit one, 64-bit memory BARs in the 64-bit one if
 * it exists, else in the 32-bit one.  Each BAR is naturally aligned; a memory BAR
 * also takes at least a 4 KiB page of its own.  BARs go largest first from the
 * base up, which packs without gaps from a base aligned to the largest BAR (below
 * the first alignment the space is left unused otherwise).  false, with no BAR
 * changed, if a window is too small, missing for a BAR that needs it, or out of
 * its space (the 32-bit window past 4 GiB, the I/O window past 64 KiB).  The
 * command registers are left alone: the guest enables decode itself. */
bool pci_bus_assign(struct pci_bus *bus, uint64_t mmio32_base, uint64_t mmio32_limit,
                    uint64_t mmio64_base, uint64_t mmio64_limit, uint64_t io_base, uint64_t io_limit);

/* Where BAR bar of dev sits now (*base, if base is not NULL) and whether the
 * command register lets it decode; false also for a slot that is no BAR. */
bool     pci_dev_bar(const struct pci_dev *dev, unsigned bar, uint64_t *base);
uint16_t pci_dev_command(const struct pci_dev *dev);

/* Appends a capability of len bytes (2-192, its ID and next pointer included) to
 * the list that starts at 0x34 (§6.7), DWORD aligned in 0x40-0xff; sets the status
 * register's capabilities-list bit.  Its body reads 0 and is read-only until the
 * model fills it (pci_dev_cfg_set) or opens bits to the guest (pci_dev_cfg_wmask).
 * Returns its offset, 0 if it does not fit or len is bad. */
unsigned pci_dev_add_cap(struct pci_dev *dev, uint8_t id, unsigned len);
/* A vendor-specific capability (ID 09h): byte 2 holds its length (§6.7; virtio
 * 1.2 §4.1.4 builds its structures on it).  len at least 3. */
unsigned pci_dev_add_vendor_cap(struct pci_dev *dev, unsigned len);
/* The model's own view of its configuration bytes at offset >= 0x40, size 1, 2 or
 * 4 within a dword: set ignores the write masks (what the hardware would latch
 * itself), wmask makes bits guest-writable, get reads what is there.  set and
 * wmask return false (and change nothing) for a bad offset or size; get reads
 * 0xffffffff then. */
bool     pci_dev_cfg_set(struct pci_dev *dev, unsigned offset, unsigned size, uint32_t value);
bool     pci_dev_cfg_wmask(struct pci_dev *dev, unsigned offset, unsigned size, uint32_t mask);
uint32_t pci_dev_cfg_get(const struct pci_dev *dev, unsigned offset, unsigned size);
/* The function signalled an error the status register records (its RW1C bits,
 * PCI_STATUS_ERRORS, e.g. received master abort for a DMA outside the VM's RAM);
 * other bits are ignored. */
void     pci_dev_status_set(struct pci_dev *dev, uint16_t bits);

/* MSI-X with count vectors (1-2048): table and PBA in memory BARs table_bar and
 * pba_bar at 8-byte aligned offsets, each inside its BAR and not overlapping the
 * other.  Returns the capability's offset, 0 if refused (bad arguments, a second
 * MSI-X, no room in the list or in the bus's vector pool). */
unsigned pci_dev_add_msix(struct pci_dev *dev, unsigned count, unsigned table_bar, uint32_t table_offset,
                          unsigned pba_bar, uint32_t pba_offset);
bool     pci_msix_enabled(const struct pci_dev *dev);
/* An access at offset into BAR bar of dev: true if it touches the MSI-X table or
 * PBA, which the bus then serves (naturally aligned 4- and 8-byte accesses; other
 * sizes read 0 and write nothing, §6.8.2 leaves them undefined; the PBA is
 * read-only); false for the device model's own registers. */
bool     pci_msix_read(struct pci_dev *dev, unsigned bar, uint64_t offset, unsigned size, uint64_t *value);
bool     pci_msix_write(struct pci_dev *dev, unsigned bar, uint64_t offset, unsigned size, uint64_t value);

enum pci_msix_result {
    PCI_MSIX_DELIVERED,     /* the message went to ops.deliver */
    PCI_MSIX_PENDING,       /* masked: its PBA bit is set, unmasking delivers it */
    PCI_MSIX_DROPPED,       /* bus mastering is off: no message may leave */
    PCI_MSIX_DISABLED,      /* no MSI-X or not enabled: use INTx */
    PCI_MSIX_NO_VECTOR,     /* vector past the table */
};
enum pci_msix_result pci_msix_notify(struct pci_dev *dev, unsigned vector);

/* The function's INTx condition (its interrupt pin's level): shown in the status
 * register's interrupt-status bit, and driven on the line, through ops.intx,
 * while the command register's interrupt-disable bit is clear and MSI-X is off
 * (§6.2.2-6.2.3, §6.8.2.3).  Nothing for a function without an interrupt pin. */
void     pci_dev_set_intx(struct pci_dev *dev, bool level);

/* ---- Snapshots (vmm/snap.h) ----
 * What the guest programmed into a function: the bits of its configuration space
 * the guest may write (the model's read-only bits stay the model's), its MSI-X
 * table and pending bits, and its INTx condition.  pci_dev_load reads a record into
 * img, checked against the live function d (the same function, the same vector
 * count); pci_dev_restore puts it into d and reports the BARs' decode and the INTx
 * line as they now are (the map and intx callbacks). */
#define PCI_DEV_SNAP_VECTORS 128
struct pci_dev_image {
    uint8_t  config[PCI_CONFIG_SIZE];
    struct pci_msix_entry msix[PCI_DEV_SNAP_VECTORS];
    uint8_t  pending[PCI_DEV_SNAP_VECTORS / 8];
    bool     intx_level;
};
void pci_dev_save(struct pci_dev *d, struct snap *s);
bool pci_dev_load(const struct pci_dev *d, struct pci_dev_image *img, struct snap *s);
void pci_dev_restore(struct pci_dev *d, const struct pci_dev_image *img);

#endif
