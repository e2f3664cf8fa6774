/* A VM's PCI bus 0 as the guest reaches it: the bus model (vmm/dev/pci_bus) behind
 * the host bridge's conf1 ports and behind ECAM, the memory windows the bridge's
 * _CRS describes (BAR accesses there go to the function whose BAR decodes the
 * address), MSI-X messages to the local APICs and INTx through the _PRT's swizzle
 * to IOAPIC pins 16-23.  Device models (virtio, vmm/disk.c) put their functions on
 * the bus and register the BAR they serve.
 *
 * Guest-physical layout, above the VM's RAM (at most 3 GiB) and below the IOAPIC:
 *     0xc0000000-0xdfffffff  32-bit memory window (firmware places BARs here)
 *     0xe0000000-0xe00fffff  ECAM of bus 0
 *     64-bit window          VMM_PCI_MMIO64_BASE .. VMM_PCI_MMIO64_LIMIT
 * An access in a window that no BAR decodes is a master abort: reads all ones,
 * writes dropped; the VM goes on.
 *
 * Locking: one lock per VM guards the bus and every function on it; it is taken
 * before the platform lock (INTx) and the local APICs' locks (MSI-X), never under
 * them.  A function's callbacks run under it. */
#ifndef PLINTH_VMM_PCI_H
#define PLINTH_VMM_PCI_H

#include <stdbool.h>
#include <stdint.h>

#include "kernel/spinlock.h"
#include "vmm/dev/pci_bus.h"

struct vmm_vm;
struct snap;

#define VMM_PCI_MMIO32_BASE   0xc0000000ull
#define VMM_PCI_MMIO32_LIMIT  0xdfffffffull
#define VMM_PCI_ECAM_BASE     0xe0000000ull
#define VMM_PCI_ECAM_SIZE     (1ull << 20)          /* bus 0 only */
#define VMM_PCI_MMIO64_BASE   (64ull << 30)
#define VMM_PCI_MMIO64_LIMIT  ((128ull << 30) - 1)
/* INTA#-INTD# of slot s, pin p (0 = A) reach IOAPIC pin GSI_BASE + ((s + p) & 3). */
#define VMM_PCI_GSI_BASE      16
#define VMM_PCI_FUNCTIONS_MAX 8

/* A function's BAR accesses (offset into the BAR, size 1, 2, 4 or 8): false for
 * an access the function refuses, which then reads all ones / is dropped. */
typedef bool (*vmm_pci_bar_read_fn)(void *ctx, uint64_t offset, unsigned size, uint64_t *value);
typedef bool (*vmm_pci_bar_write_fn)(void *ctx, uint64_t offset, unsigned size, uint64_t value);

struct vmm_pci_fn {
    struct pci_dev *dev;
    unsigned bar;                       /* the memory BAR it serves */
    uint64_t bar_size;
    vmm_pci_bar_read_fn  read;
    vmm_pci_bar_write_fn write;
    /* After each configuration access to it (virtio's window capability defers
     * work until the bus is free); may be NULL. */
    void   (*after_config)(void *ctx);
    /* Every (re)boot of the VM, after the bus's PCI reset; may be NULL. */
    void   (*boot)(void *ctx);
    /* Snapshots: its device's own state after the function's (vmm_pci_save);
     * load reads it into the device's staging, false if refused; restore puts
     * the staged state live once the VM's RAM is the snapshot's.  NULL: none. */
    void   (*save)(void *ctx, struct snap *s);
    bool   (*load)(void *ctx, struct snap *s);
    void   (*restore)(void *ctx);
    void    *ctx;
};

struct vmm_pci {
    struct spinlock lock;
    struct vmm_vm *vm;
    unsigned count;
    struct vmm_pci_fn fn[VMM_PCI_FUNCTIONS_MAX];
    uint64_t msi_dropped;               /* messages not aimed at the local APICs */
    uint64_t master_aborts;             /* window accesses no BAR decoded */
    bool     warned_msi;
    struct pci_dev_image image[VMM_PCI_FUNCTIONS_MAX];   /* a restore's staging */
    struct pci_bus bus;                 /* large: last */
};

/* The bus, its windows and ECAM on the VM's MMIO bus (once per VM).  false with
 * the log saying why. */
bool vmm_pci_attach(struct vmm_vm *m);
/* The next free device number on bus 0 (function 0 of it), from 1; -1 if none. */
int  vmm_pci_free_devfn(struct vmm_vm *m);
/* Registers the BAR handler of a function already on m->pci->bus; false if full. */
bool vmm_pci_add(struct vmm_vm *m, const struct vmm_pci_fn *fn);
/* Every (re)boot: PCI reset of the bus, each function's boot hook, and every BAR
 * placed in the windows as firmware would (decode left off for the guest). */
void vmm_pci_boot(struct vmm_vm *m);
/* A conf1 cycle the host bridge forwarded (vmm/dev/pci_host.h). */
void vmm_pci_config(struct vmm_vm *m, unsigned devfn, unsigned offset, unsigned size, bool write,
                    uint32_t *value);

/* Snapshots: every function's configuration space, MSI-X state and its device's
 * own state (each function's save hook), in one record per function.  load checks
 * and stages it (false if refused, nothing live changed); commit, with the VM's
 * RAM the snapshot's, puts it live.  Nothing for a VM without a PCI bus. */
void vmm_pci_save(struct vmm_vm *m, struct snap *s);
bool vmm_pci_load(struct vmm_vm *m, struct snap *s);
void vmm_pci_commit(struct vmm_vm *m);

#endif
