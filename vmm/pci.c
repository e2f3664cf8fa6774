#include "vmm/pci.h"
#include "vmm/vm.h"
#include "vmm/lapic.h"
#include "vmm/platform.h"
#include "vmm/snap.h"
#include "kernel/log.h"

/* MSI message address and data (Intel SDM Vol. 3A §11.11.1-2): the address's
 * 0xfee prefix names the local APICs, destination ID 19:12, destination mode 2;
 * data: vector 7:0, delivery mode 10:8, trigger mode 15. */
#define MSI_ADDR_PREFIX_MASK  0xfff00000ull
#define MSI_ADDR_PREFIX       0xfee00000ull
#define MSI_ADDR_DEST_SHIFT   12
#define MSI_ADDR_LOGICAL      (1u << 2)
#define MSI_DATA_MODE_SHIFT   8
#define MSI_DATA_LEVEL        (1u << 15)

static uint64_t pci_lock(struct vmm_pci *p)
{
    return spin_lock_irqsave(&p->lock);
}

static void pci_unlock(struct vmm_pci *p, uint64_t f)
{
    spin_unlock_irqrestore(&p->lock, f);
}

/* ---- what leaves the bus (called under the PCI lock) ---- */

static void msi_deliver(void *ctx, uint64_t addr, uint32_t data)
{
    struct vmm_pci *p = ctx;
    unsigned mode = (data >> MSI_DATA_MODE_SHIFT) & 7;
    /* A message aimed anywhere but the APICs is a DMA write the device would have
     * made into memory; plinth does not let a device write guest RAM on a guest
     * driver's say-so, so it is dropped (and said once).  SMI and ExtINT have no
     * meaning here, as for the IOAPIC. */
    if ((addr & MSI_ADDR_PREFIX_MASK) != MSI_ADDR_PREFIX || mode == VLAPIC_SMI || mode == 7 ||
        mode == 3 || mode == VLAPIC_SIPI) {
        p->msi_dropped++;
        if (!p->warned_msi) {
            p->warned_msi = true;
            log_warn("vm %s: PCI: an MSI-X message to %#lx data %#x is not an interrupt plinth delivers; "
                     "dropped (counted in `stats`)", p->vm->conf.name, (unsigned long)addr, data);
        }
        return;
    }
    vmm_lapic_deliver(p->vm, (uint8_t)data, (enum vlapic_delivery)mode, (addr & MSI_ADDR_LOGICAL) != 0,
                      (uint32_t)(addr >> MSI_ADDR_DEST_SHIFT) & 0xff, (data & MSI_DATA_LEVEL) != 0);
}

static void intx(void *ctx, unsigned devfn, unsigned pin, bool level)
{
    struct vmm_pci *p = ctx;
    /* pin 1-4 is INTA#-INTD#; the swizzle the DSDT's _PRT describes. */
    unsigned slot = devfn >> 3;
    vmm_platform_set_gsi(p->vm, VMM_PCI_GSI_BASE + ((slot + pin - 1) & 3), level);
}

/* ---- configuration space ---- */

static struct vmm_pci_fn *fn_at(struct vmm_pci *p, unsigned devfn)
{
    for (unsigned i = 0; i < p->count; i++)
        if (p->fn[i].dev->devfn == devfn)
            return &p->fn[i];
    return 0;
}

static void after_config(struct vmm_pci *p, unsigned devfn)
{
    struct vmm_pci_fn *fn = fn_at(p, devfn);
    if (fn && fn->after_config)
        fn->after_config(fn->ctx);
}

void vmm_pci_config(struct vmm_vm *m, unsigned devfn, unsigned offset, unsigned size, bool write,
                    uint32_t *value)
{
    struct vmm_pci *p = m->pci;
    if (!p) {
        if (!write)
            *value = size == 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
        return;
    }
    uint64_t f = pci_lock(p);
    if (write)
        pci_bus_config_write(&p->bus, devfn, offset, size, *value);
    else
        *value = pci_bus_config_read(&p->bus, devfn, offset, size);
    after_config(p, devfn);
    pci_unlock(p, f);
}

/* ECAM (PCIe Base 4.0 §7.2.2): the host bridge's own function 00.0 lives in the
 * conf1 model (vmm/dev/pci_host), which holds its first 256 bytes; it is
 * conventional PCI, so its extended space reads all ones. */
static int ecam_read(void *ctx, uint64_t offset, unsigned size, uint64_t *val)
{
    struct vmm_pci *p = ctx;
    unsigned devfn = (unsigned)(offset >> 12) & 0xff, reg = (unsigned)offset & 0xfff;
    uint32_t ones = size >= 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
    if (size == 8 || (reg & (size - 1))) {
        /* Not one configuration access (§7.2.2.1: a dword at most, naturally aligned). */
        *val = size == 8 ? ~0ull : ones;
        return 0;
    }
    if (devfn == 0) {
        struct vmm_platform *pl = &p->vm->platform;
        uint64_t f = spin_lock_irqsave(&pl->lock);
        *val = reg < 256 ? pci_host_config_read(&pl->pci, 0, 0, 0, reg, size) : ones;
        spin_unlock_irqrestore(&pl->lock, f);
        return 0;
    }
    uint64_t f = pci_lock(p);
    *val = pci_bus_ecam_read(&p->bus, offset, size);
    after_config(p, devfn);
    pci_unlock(p, f);
    return 0;
}

static int ecam_write(void *ctx, uint64_t offset, unsigned size, uint64_t val)
{
    struct vmm_pci *p = ctx;
    unsigned devfn = (unsigned)(offset >> 12) & 0xff, reg = (unsigned)offset & 0xfff;
    if (size == 8 || (reg & (size - 1)))
        return 0;
    if (devfn == 0) {
        struct vmm_platform *pl = &p->vm->platform;
        uint64_t f = spin_lock_irqsave(&pl->lock);
        if (reg < 256)
            pci_host_config_write(&pl->pci, 0, 0, 0, reg, size, (uint32_t)val);
        spin_unlock_irqrestore(&pl->lock, f);
        return 0;
    }
    uint64_t f = pci_lock(p);
    pci_bus_ecam_write(&p->bus, offset, size, (uint32_t)val);
    after_config(p, devfn);
    pci_unlock(p, f);
    return 0;
}

/* ---- the memory windows ---- */

/* The function whose BAR decodes [gpa, gpa + size): its offset in *off. */
static struct vmm_pci_fn *decoder(struct vmm_pci *p, uint64_t gpa, unsigned size, uint64_t *off)
{
    for (unsigned i = 0; i < p->count; i++) {
        struct vmm_pci_fn *fn = &p->fn[i];
        uint64_t base;
        if (!pci_dev_bar(fn->dev, fn->bar, &base) || !(pci_dev_command(fn->dev) & PCI_COMMAND_MEMORY))
            continue;
        if (gpa >= base && gpa - base < fn->bar_size) {
            *off = gpa - base;
            return *off + size <= fn->bar_size ? fn : 0;
        }
    }
    return 0;
}

static int window_read(struct vmm_pci *p, uint64_t gpa, unsigned size, uint64_t *val)
{
    uint64_t f = pci_lock(p), off;
    struct vmm_pci_fn *fn = decoder(p, gpa, size, &off);
    if (!fn || !fn->read(fn->ctx, off, size, val)) {
        /* A master abort (PCI Local Bus 3.0 §3.3.3.1): all ones. */
        *val = size == 8 ? ~0ull : (1ull << (8 * size)) - 1;
        if (!fn)
            p->master_aborts++;
    }
    pci_unlock(p, f);
    return 0;
}

static int window_write(struct vmm_pci *p, uint64_t gpa, unsigned size, uint64_t val)
{
    uint64_t f = pci_lock(p), off;
    struct vmm_pci_fn *fn = decoder(p, gpa, size, &off);
    if (fn)
        fn->write(fn->ctx, off, size, val);
    else
        p->master_aborts++;
    pci_unlock(p, f);
    return 0;
}

static int mmio32_read(void *ctx, uint64_t offset, unsigned size, uint64_t *val)
{
    return window_read(ctx, VMM_PCI_MMIO32_BASE + offset, size, val);
}

static int mmio32_write(void *ctx, uint64_t offset, unsigned size, uint64_t val)
{
    return window_write(ctx, VMM_PCI_MMIO32_BASE + offset, size, val);
}

static int mmio64_read(void *ctx, uint64_t offset, unsigned size, uint64_t *val)
{
    return window_read(ctx, VMM_PCI_MMIO64_BASE + offset, size, val);
}

static int mmio64_write(void *ctx, uint64_t offset, unsigned size, uint64_t val)
{
    return window_write(ctx, VMM_PCI_MMIO64_BASE + offset, size, val);
}

/* ---- set-up ---- */

bool vmm_pci_attach(struct vmm_vm *m)
{
    char why[96];
    struct vmm_pci *p = core_vm_alloc(m->vm, sizeof *p, why, sizeof why);
    if (!p) {
        log_error("vm %s: no memory for its PCI bus: %s", m->conf.name, why);
        return false;
    }
    p->lock = (struct spinlock)SPINLOCK_INIT;
    p->vm = m;
    const struct pci_bus_ops ops = { .deliver = msi_deliver, .intx = intx, .ctx = p };
    pci_bus_init(&p->bus, &ops);
    if (!mmio_bus_claim(&m->mmio, VMM_PCI_MMIO32_BASE, VMM_PCI_MMIO32_LIMIT - VMM_PCI_MMIO32_BASE + 1,
                        mmio32_read, mmio32_write, p) ||
        !mmio_bus_claim(&m->mmio, VMM_PCI_ECAM_BASE, VMM_PCI_ECAM_SIZE, ecam_read, ecam_write, p) ||
        !mmio_bus_claim(&m->mmio, VMM_PCI_MMIO64_BASE, VMM_PCI_MMIO64_LIMIT - VMM_PCI_MMIO64_BASE + 1,
                        mmio64_read, mmio64_write, p)) {
        log_error("vm %s: the PCI windows overlap another device or the MMIO bus is full (plinth bug)",
                  m->conf.name);
        return false;
    }
    m->pci = p;
    return true;
}

int vmm_pci_free_devfn(struct vmm_vm *m)
{
    for (unsigned dev = 1; dev < 32; dev++)
        if (!pci_bus_dev(&m->pci->bus, PCI_DEVFN(dev, 0)))
            return (int)PCI_DEVFN(dev, 0);
    return -1;
}

bool vmm_pci_add(struct vmm_vm *m, const struct vmm_pci_fn *fn)
{
    struct vmm_pci *p = m->pci;
    if (!p || p->count == VMM_PCI_FUNCTIONS_MAX || !fn->dev || !fn->read || !fn->write)
        return false;
    p->fn[p->count++] = *fn;
    return true;
}

void vmm_pci_boot(struct vmm_vm *m)
{
    struct vmm_pci *p = m->pci;
    if (!p)
        return;
    uint64_t f = pci_lock(p);
    pci_bus_reset(&p->bus);
    for (unsigned i = 0; i < p->count; i++)
        if (p->fn[i].boot)
            p->fn[i].boot(p->fn[i].ctx);
    /* As firmware does before the OS: every BAR at a place in the windows, so
     * that an OS which keeps firmware's assignment (Linux with _CRS) need not
     * find room itself.  64-bit BARs go below 4 GiB for 32-bit-capable guests. */
    if (!pci_bus_assign(&p->bus, VMM_PCI_MMIO32_BASE, VMM_PCI_MMIO32_LIMIT, 0, 0, 0, 0))
        log_warn("vm %s: the PCI devices' BARs do not fit the 32-bit window; the guest must place them",
                 m->conf.name);
    pci_unlock(p, f);
}

/* ---- snapshots ---- */

void vmm_pci_save(struct vmm_vm *m, struct snap *s)
{
    struct vmm_pci *p = m->pci;
    if (!p)
        return;
    uint64_t f = pci_lock(p);
    uint32_t count = p->count;
    snap_record_begin(s, "pcibus", 1);
    snap_u32(s, &count);
    snap_record_end(s);
    for (unsigned i = 0; i < p->count; i++) {
        pci_dev_save(p->fn[i].dev, s);
        if (p->fn[i].save)
            p->fn[i].save(p->fn[i].ctx, s);
    }
    pci_unlock(p, f);
}

bool vmm_pci_load(struct vmm_vm *m, struct snap *s)
{
    struct vmm_pci *p = m->pci;
    if (!p)
        return !s->failed;
    uint32_t count = 0;
    snap_record_begin(s, "pcibus", 1);
    snap_u32(s, &count);
    snap_record_end(s);
    snap_check(s, s->failed || count == p->count, "a PCI bus with other functions");
    uint64_t f = pci_lock(p);
    for (unsigned i = 0; i < p->count && !s->failed; i++) {
        pci_dev_load(p->fn[i].dev, &p->image[i], s);
        if (!s->failed && p->fn[i].load)
            p->fn[i].load(p->fn[i].ctx, s);
    }
    pci_unlock(p, f);
    return !s->failed;
}

void vmm_pci_commit(struct vmm_vm *m)
{
    struct vmm_pci *p = m->pci;
    if (!p)
        return;
    uint64_t f = pci_lock(p);
    for (unsigned i = 0; i < p->count; i++) {
        pci_dev_restore(p->fn[i].dev, &p->image[i]);
        if (p->fn[i].restore)
            p->fn[i].restore(p->fn[i].ctx);
    }
    pci_unlock(p, f);
}
