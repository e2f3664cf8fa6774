#include "vmm/dev/pci_bus.h"

#include "kernel/string.h"
#include "vmm/snap.h"

/* The status register's upper byte: all of its RW1C error bits (§6.2.3). */
#define STATUS_BYTE_HIGH      (PCI_CFG_STATUS + 1)

/* BAR low bits (§6.2.5.1): bit 0 says I/O; memory BARs carry their type in 2:1
 * (00 32-bit, 10 64-bit) and prefetchable in bit 3, all read-only. */
#define BAR_IO                0x1u
#define BAR_MEM64             0x4u
#define BAR_PREFETCH          0x8u
#define BAR_IO_ADDRESS        0x0000fffcu
#define BAR_MEM_ADDRESS       0xfffffff0u

/* A memory BAR gets a 4 KiB page of its own at assignment: EPT and NPT map and
 * trap guest-physical memory by the page, so a BAR sharing a page with another
 * could not be moved to passthrough or mapped on its own later, and the guest's
 * own allocator would do the same (Linux aligns to at least a page for
 * resources it assigns on x86). */
#define PAGE_SIZE             0x1000ull

static bool bus_access_ok(unsigned offset, unsigned size)
{
    return (size == 1 || size == 2 || size == 4) && offset < PCI_CONFIG_SIZE &&
           (offset & 3) + size <= 4;
}

static uint32_t ones(unsigned size)
{
    return size >= 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
}

/* Little-endian fields of a function's configuration bytes (§6.1: every
 * register is little-endian). */
static uint32_t get(const uint8_t *bytes, unsigned offset, unsigned size)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < size; i++)
        v |= (uint32_t)bytes[offset + i] << (8 * i);
    return v;
}

static void cfg_put(uint8_t *bytes, unsigned offset, unsigned size, uint32_t value)
{
    for (unsigned i = 0; i < size; i++)
        bytes[offset + i] = (uint8_t)(value >> (8 * i));
}

static bool is_pow2(uint64_t x)
{
    return x && !(x & (x - 1));
}

/* Whether [a, a + alen) and [b, b + blen) meet, without overflowing for an a the
 * guest chose. */
static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    if (!alen || !blen)
        return false;
    return a >= b ? a - b < blen : b - a < alen;
}

static uint16_t command(const struct pci_dev *d)
{
    return (uint16_t)get(d->config, PCI_CFG_COMMAND, 2);
}

/* ---- registration ---- */

static bool bar_desc_ok(const struct pci_bar_desc *b, unsigned slot, const struct pci_bar_desc *next)
{
    switch (b->type) {
    case PCI_BAR_NONE:
        return true;
    case PCI_BAR_IO:
        return !b->prefetchable && is_pow2(b->size) && b->size >= 4 && b->size <= 256;
    case PCI_BAR_MEM32:
        /* Bits 31:4 are the address: at most 2 GiB, so that one address bit stays
         * writable and the BAR can be placed at all. */
        return is_pow2(b->size) && b->size >= 16 && b->size <= 0x80000000ull;
    case PCI_BAR_MEM64:
        return slot + 1 < PCI_BARS && next->type == PCI_BAR_NONE && is_pow2(b->size) &&
               b->size >= 16 && b->size <= (1ull << 63);
    default:
        return false;
    }
}

static bool desc_ok(const struct pci_dev_desc *desc)
{
    if (desc->interrupt_pin > 4)
        return false;
    if (desc->command_fixed & ~(PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER))
        return false;
    for (unsigned i = 0; i < PCI_BARS; i++) {
        const struct pci_bar_desc *next = i + 1 < PCI_BARS ? &desc->bar[i + 1] : NULL;
        if (!bar_desc_ok(&desc->bar[i], i, next))
            return false;
        if (desc->bar[i].type == PCI_BAR_MEM64)
            i++;   /* the upper half */
    }
    return true;
}

/* The BAR registers after reset (address 0) and which of their bits the guest may
 * write: the address bits above the size.  Writing all ones and reading back thus
 * yields the size mask with the read-only type bits, the sizing protocol of
 * §6.2.5.1. */
static void bars_setup(struct pci_dev *d)
{
    for (unsigned i = 0; i < PCI_BARS; i++) {
        const struct pci_bar_desc *b = &d->bar[i];
        unsigned off = PCI_CFG_BAR0 + 4 * i;
        uint32_t pf = b->prefetchable ? BAR_PREFETCH : 0;
        switch (b->type) {
        case PCI_BAR_IO:
            /* x86 port addresses are 16 bits: bits 31:16 stay 0, so no guest can
             * place the BAR where no port reaches it. */
            cfg_put(d->config, off, 4, BAR_IO);
            cfg_put(d->wmask, off, 4, (uint32_t)~(b->size - 1) & BAR_IO_ADDRESS);
            break;
        case PCI_BAR_MEM32:
            cfg_put(d->config, off, 4, pf);
            cfg_put(d->wmask, off, 4, (uint32_t)~(b->size - 1) & BAR_MEM_ADDRESS);
            break;
        case PCI_BAR_MEM64:
            /* The upper dword is the address's bits 63:32 (§6.2.5.1), sized like
             * the lower one: a BAR of 4 GiB or more has no writable low bits. */
            cfg_put(d->config, off, 4, BAR_MEM64 | pf);
            cfg_put(d->wmask, off, 4, (uint32_t)~(b->size - 1) & BAR_MEM_ADDRESS);
            cfg_put(d->wmask, off + 4, 4, (uint32_t)(~(b->size - 1) >> 32));
            break;
        case PCI_BAR_NONE:
            break;   /* unimplemented: hardwired 0 (§6.2.5.1) */
        }
    }
}

static void dev_setup(struct pci_dev *d, const struct pci_dev_desc *desc)
{
    memset(d, 0, sizeof *d);
    memcpy(d->bar, desc->bar, sizeof d->bar);
    d->map = desc->map;
    d->config_read = desc->config_read;
    d->config_write = desc->config_write;
    d->ctx = desc->ctx;
    d->cap_free = PCI_CFG_DEVICE_SPECIFIC;

    cfg_put(d->config, PCI_CFG_VENDOR_ID, 2, desc->vendor_id);
    cfg_put(d->config, PCI_CFG_DEVICE_ID, 2, desc->device_id);
    cfg_put(d->config, PCI_CFG_REVISION, 1, desc->revision);
    cfg_put(d->config, PCI_CFG_CLASS, 3, desc->class_code);
    cfg_put(d->config, PCI_CFG_SUBSYSTEM_VENDOR, 2, desc->subsystem_vendor_id);
    cfg_put(d->config, PCI_CFG_SUBSYSTEM_ID, 2, desc->subsystem_id);
    cfg_put(d->config, PCI_CFG_INTERRUPT_PIN, 1, desc->interrupt_pin);
    cfg_put(d->config, PCI_CFG_COMMAND, 2, desc->command_fixed);

    /* Command (§6.2.2): a space enable only where a BAR of that space exists,
     * interrupt disable only with a pin; bus master always (virtio DMA, MSI-X).
     * Parity error response and SERR# enable are hardwired 0: an emulated bus
     * has neither parity nor SERR#.  Fixed bits read 1 whatever is written. */
    uint16_t cmd = PCI_COMMAND_MASTER;
    for (unsigned i = 0; i < PCI_BARS; i++) {
        if (d->bar[i].type == PCI_BAR_IO)
            cmd |= PCI_COMMAND_IO;
        else if (d->bar[i].type != PCI_BAR_NONE)
            cmd |= PCI_COMMAND_MEMORY;
    }
    if (desc->interrupt_pin)
        cmd |= PCI_COMMAND_INTX_DISABLE;
    cfg_put(d->wmask, PCI_CFG_COMMAND, 2, cmd & (uint16_t)~desc->command_fixed);
    /* Status (§6.2.3): the error bits are RW1C, the rest read-only. */
    cfg_put(d->w1cmask, PCI_CFG_STATUS, 2, PCI_STATUS_ERRORS);
    /* Registers that hold what software writes without acting on it (§6.2.4).
     * The expansion ROM register stays hardwired 0: no ROM (§6.2.5.2). */
    d->wmask[PCI_CFG_CACHE_LINE_SIZE] = 0xff;
    d->wmask[PCI_CFG_LATENCY_TIMER] = 0xff;
    d->wmask[PCI_CFG_INTERRUPT_LINE] = 0xff;
    bars_setup(d);
}

/* Header type bit 7 (§6.2.1) tells software to scan functions 1-7 of a device;
 * set on every function of a device that has more than one. */
static void multifunction_update(struct pci_bus *bus, unsigned device)
{
    unsigned n = 0;
    for (unsigned fn = 0; fn < 8; fn++)
        n += bus->slot[PCI_DEVFN(device, fn)] != 0;
    for (unsigned fn = 0; fn < 8; fn++) {
        struct pci_dev *d = pci_bus_dev(bus, PCI_DEVFN(device, fn));
        if (!d)
            continue;
        if (n > 1)
            d->config[PCI_CFG_HEADER_TYPE] |= PCI_HEADER_MULTI_FUNCTION;
        else
            d->config[PCI_CFG_HEADER_TYPE] &= (uint8_t)~PCI_HEADER_MULTI_FUNCTION;
    }
}

void pci_bus_init(struct pci_bus *bus, const struct pci_bus_ops *ops)
{
    memset(bus, 0, sizeof *bus);
    if (ops)
        bus->ops = *ops;
}

struct pci_dev *pci_bus_add(struct pci_bus *bus, unsigned devfn, const struct pci_dev_desc *desc)
{
    if (devfn >= PCI_BUS_DEVFNS || bus->slot[devfn] || bus->count >= PCI_BUS_FUNCTIONS_MAX ||
        !desc || !desc_ok(desc))
        return NULL;
    struct pci_dev *d = &bus->dev[bus->count];
    dev_setup(d, desc);
    d->bus = bus;
    d->devfn = (uint8_t)devfn;
    bus->slot[devfn] = (uint8_t)++bus->count;
    multifunction_update(bus, devfn >> 3);
    return d;
}

struct pci_dev *pci_bus_dev(struct pci_bus *bus, unsigned devfn)
{
    if (devfn >= PCI_BUS_DEVFNS || !bus->slot[devfn])
        return NULL;
    return &bus->dev[bus->slot[devfn] - 1];
}

/* ---- BAR decode ---- */

static uint64_t bar_base(const struct pci_dev *d, unsigned i)
{
    uint32_t lo = get(d->config, PCI_CFG_BAR0 + 4 * i, 4);
    switch (d->bar[i].type) {
    case PCI_BAR_IO:
        return lo & BAR_IO_ADDRESS;
    case PCI_BAR_MEM32:
        return lo & BAR_MEM_ADDRESS;
    case PCI_BAR_MEM64:
        return (lo & BAR_MEM_ADDRESS) | (uint64_t)get(d->config, PCI_CFG_BAR0 + 4 * i + 4, 4) << 32;
    default:
        return 0;
    }
}

/* A BAR decodes only while the command register enables its space (§6.2.2). */
static bool bar_enabled(const struct pci_dev *d, unsigned i)
{
    uint16_t cmd = command(d);
    switch (d->bar[i].type) {
    case PCI_BAR_IO:
        return cmd & PCI_COMMAND_IO;
    case PCI_BAR_MEM32:
    case PCI_BAR_MEM64:
        return cmd & PCI_COMMAND_MEMORY;
    default:
        return false;
    }
}

/* Reports each BAR whose base or decode changed since the last report.  A 64-bit
 * BAR is one BAR, both halves combined: each half's write is a change of its own
 * (software disables decode around it, as Linux's pci_std_update_resource does). */
static void bars_update(struct pci_dev *d)
{
    for (unsigned i = 0; i < PCI_BARS; i++) {
        if (d->bar[i].type == PCI_BAR_NONE)
            continue;
        uint64_t base = bar_base(d, i);
        bool on = bar_enabled(d, i);
        if (base == d->decoded_base[i] && on == d->decoded[i])
            continue;
        uint64_t old = d->decoded_base[i];
        d->decoded_base[i] = base;
        d->decoded[i] = on;
        if (d->map)
            d->map(d->ctx, i, old, base, on);
    }
}

bool pci_dev_bar(const struct pci_dev *d, unsigned bar, uint64_t *base)
{
    if (bar >= PCI_BARS || d->bar[bar].type == PCI_BAR_NONE)
        return false;
    if (base)
        *base = bar_base(d, bar);
    return bar_enabled(d, bar);
}

uint16_t pci_dev_command(const struct pci_dev *d)
{
    return command(d);
}

/* ---- MSI-X state ---- */

static uint16_t msix_control(const struct pci_dev *d)
{
    return (uint16_t)get(d->config, d->msix_cap + 2u, 2);
}

bool pci_msix_enabled(const struct pci_dev *d)
{
    return d->msix_cap && (msix_control(d) & PCI_MSIX_CTRL_ENABLE);
}

static struct pci_msix_entry *msix_entry(struct pci_dev *d, unsigned vector)
{
    return &d->bus->msix[d->msix_first + vector];
}

static bool pending(const struct pci_dev *d, unsigned vector)
{
    unsigned i = d->msix_first + vector;
    return (d->bus->msix_pending[i / 64] >> (i % 64)) & 1;
}

static void pending_set(struct pci_dev *d, unsigned vector, bool on)
{
    unsigned i = d->msix_first + vector;
    if (on)
        d->bus->msix_pending[i / 64] |= 1ull << (i % 64);
    else
        d->bus->msix_pending[i / 64] &= ~(1ull << (i % 64));
}

/* A message may leave only with MSI-X enabled, the function unmasked (§6.8.2.3)
 * and bus mastering on: an MSI-X message is a memory write the function masters
 * (PCIe Base 4.0 §7.5.1.1.3, Bus Master Enable). */
static bool msix_can_send(const struct pci_dev *d)
{
    uint16_t ctrl = msix_control(d);
    return d->msix_cap && (ctrl & PCI_MSIX_CTRL_ENABLE) && !(ctrl & PCI_MSIX_CTRL_FUNCTION_MASK) &&
           (command(d) & PCI_COMMAND_MASTER);
}

static void msix_send(struct pci_dev *d, unsigned vector)
{
    const struct pci_msix_entry *e = msix_entry(d, vector);
    const struct pci_bus_ops *ops = &d->bus->ops;
    if (ops->deliver)
        ops->deliver(ops->ctx, (uint64_t)e->addr_hi << 32 | e->addr_lo, e->data);
}

/* A pending vector that becomes deliverable sends its message once and clears
 * its PBA bit (§6.8.2.9, §6.8.2.10). */
static void msix_vector_flush(struct pci_dev *d, unsigned vector)
{
    if (msix_can_send(d) && pending(d, vector) && !(msix_entry(d, vector)->ctrl & PCI_MSIX_ENTRY_MASKED)) {
        pending_set(d, vector, false);
        msix_send(d, vector);
    }
}

static void msix_flush(struct pci_dev *d)
{
    if (!msix_can_send(d))
        return;
    for (unsigned v = 0; v < d->msix_count; v++)
        msix_vector_flush(d, v);
}

/* ---- INTx ---- */

/* The line is driven while the condition holds, interrupt disable is clear
 * (§6.2.2) and MSI-X is off: with MSI-X enabled the function may not use INTx
 * (§6.8.2.3, MSI-X Enable). */
static void intx_update(struct pci_dev *d)
{
    unsigned pin = d->config[PCI_CFG_INTERRUPT_PIN];
    if (!pin)
        return;
    bool out = d->intx_level && !(command(d) & PCI_COMMAND_INTX_DISABLE) && !pci_msix_enabled(d);
    if (out == d->intx_out)
        return;
    d->intx_out = out;
    const struct pci_bus_ops *ops = &d->bus->ops;
    if (ops->intx)
        ops->intx(ops->ctx, d->devfn, pin, out);
}

void pci_dev_set_intx(struct pci_dev *d, bool level)
{
    if (!d->config[PCI_CFG_INTERRUPT_PIN])
        return;
    d->intx_level = level;
    /* Interrupt status follows the condition whatever interrupt disable says
     * (§6.2.3). */
    if (level)
        d->config[PCI_CFG_STATUS] |= PCI_STATUS_INTERRUPT;
    else
        d->config[PCI_CFG_STATUS] &= (uint8_t)~PCI_STATUS_INTERRUPT;
    intx_update(d);
}

/* ---- configuration accesses ---- */

uint32_t pci_bus_config_read(struct pci_bus *bus, unsigned devfn, unsigned offset, unsigned size)
{
    if (!bus_access_ok(offset, size))
        return 0xffffffffu;
    struct pci_dev *d = pci_bus_dev(bus, devfn);
    if (!d)
        return ones(size);
    if (offset >= PCI_CFG_DEVICE_SPECIFIC && d->config_read)
        d->config_read(d->ctx, offset, size);
    return get(d->config, offset, size);
}

void pci_bus_config_write(struct pci_bus *bus, unsigned devfn, unsigned offset, unsigned size,
                          uint32_t value)
{
    if (!bus_access_ok(offset, size))
        return;
    struct pci_dev *d = pci_bus_dev(bus, devfn);
    if (!d)
        return;
    for (unsigned i = 0; i < size; i++) {
        unsigned o = offset + i;
        uint8_t b = (uint8_t)(value >> (8 * i));
        uint8_t v = (uint8_t)((d->config[o] & ~d->wmask[o]) | (b & d->wmask[o]));
        d->config[o] = (uint8_t)(v & ~(b & d->w1cmask[o]));
    }
    if (overlaps(offset, size, PCI_CFG_COMMAND, 2)) {
        bars_update(d);
        intx_update(d);
        msix_flush(d);   /* bus mastering back on */
    } else if (overlaps(offset, size, PCI_CFG_BAR0, 4 * PCI_BARS)) {
        bars_update(d);
    }
    if (d->msix_cap && overlaps(offset, size, d->msix_cap + 2u, 2)) {
        intx_update(d);
        msix_flush(d);
    }
    if (offset >= PCI_CFG_DEVICE_SPECIFIC && d->config_write)
        d->config_write(d->ctx, offset, size, value);
}

/* ECAM: one 4 KiB page per function, 1 MiB per bus (PCIe Base 4.0 §7.2.2,
 * table 7-1).  This bus is bus 0; the rest of the window is absent. */
uint32_t pci_bus_ecam_read(struct pci_bus *bus, uint64_t offset, unsigned size)
{
    unsigned reg = (unsigned)(offset & 0xfff);
    if (!bus_access_ok(reg, size))
        return 0xffffffffu;
    if (offset >> 20)
        return ones(size);
    return pci_bus_config_read(bus, (unsigned)(offset >> 12) & 0xff, reg, size);
}

void pci_bus_ecam_write(struct pci_bus *bus, uint64_t offset, unsigned size, uint32_t value)
{
    if (offset >> 20)
        return;
    pci_bus_config_write(bus, (unsigned)(offset >> 12) & 0xff, (unsigned)(offset & 0xfff), size, value);
}

/* ---- reset ---- */

static void msix_reset(struct pci_dev *d)
{
    /* Vector Control's mask bit resets to 1 (§6.8.2.9); address and data are
     * undefined after reset, 0 here. */
    for (unsigned v = 0; v < d->msix_count; v++) {
        *msix_entry(d, v) = (struct pci_msix_entry){ .ctrl = PCI_MSIX_ENTRY_MASKED };
        pending_set(d, v, false);
    }
}

void pci_bus_reset(struct pci_bus *bus)
{
    for (unsigned n = 0; n < bus->count; n++) {
        struct pci_dev *d = &bus->dev[n];
        for (unsigned o = 0; o < PCI_CONFIG_SIZE; o++)
            d->config[o] &= (uint8_t)~(d->wmask[o] | d->w1cmask[o]);
        d->config[PCI_CFG_STATUS] &= (uint8_t)~PCI_STATUS_INTERRUPT;
        d->intx_level = false;
        msix_reset(d);
        bars_update(d);
        intx_update(d);
    }
}

/* ---- BAR assignment ---- */

enum window { WINDOW_IO, WINDOW_MMIO32, WINDOW_MMIO64, WINDOWS };

struct window_span {
    uint64_t base, limit;
    bool present;
};

static uint64_t bar_footprint(const struct pci_bar_desc *b)
{
    if (b->type == PCI_BAR_IO)
        return b->size;
    return b->size < PAGE_SIZE ? PAGE_SIZE : b->size;
}

static enum window bar_window(const struct pci_bar_desc *b, bool have64)
{
    if (b->type == PCI_BAR_IO)
        return WINDOW_IO;
    if (b->type == PCI_BAR_MEM64 && have64)
        return WINDOW_MMIO64;
    return WINDOW_MMIO32;
}

/* The address bits of a BAR as the hardware latches them, the type bits kept. */
static void bar_place(struct pci_dev *d, unsigned i, uint64_t addr)
{
    unsigned off = PCI_CFG_BAR0 + 4 * i;
    uint32_t mask = get(d->wmask, off, 4);
    cfg_put(d->config, off, 4, (get(d->config, off, 4) & ~mask) | ((uint32_t)addr & mask));
    if (d->bar[i].type == PCI_BAR_MEM64)
        cfg_put(d->config, off + 4, 4, (uint32_t)(addr >> 32));
}

/* Places the BARs of window w largest first: each footprint is a power of two,
 * so aligning each to its own size leaves a gap only before the first.  With
 * commit false it only checks that they fit. */
static bool window_fill(struct pci_bus *bus, enum window w, const struct window_span *span, bool have64,
                        bool commit)
{
    uint64_t cursor = span->base;
    bool full = false;   /* the window ends at 2^64 - 1 and is used up to there */
    for (int shift = 63; shift >= 2; shift--) {
        for (unsigned n = 0; n < bus->count; n++) {
            struct pci_dev *d = &bus->dev[n];
            for (unsigned i = 0; i < PCI_BARS; i++) {
                const struct pci_bar_desc *b = &d->bar[i];
                if (b->type == PCI_BAR_NONE || bar_window(b, have64) != w ||
                    bar_footprint(b) != 1ull << shift)
                    continue;
                uint64_t size = 1ull << shift;
                if (!span->present || full || cursor > UINT64_MAX - (size - 1))
                    return false;
                uint64_t addr = (cursor + size - 1) & ~(size - 1);
                uint64_t last = addr + (size - 1);
                if (last > span->limit)
                    return false;
                if (commit)
                    bar_place(d, i, addr);
                if (last == UINT64_MAX)
                    full = true;
                else
                    cursor = last + 1;
            }
        }
    }
    return true;
}

bool pci_bus_assign(struct pci_bus *bus, uint64_t mmio32_base, uint64_t mmio32_limit,
                    uint64_t mmio64_base, uint64_t mmio64_limit, uint64_t io_base, uint64_t io_limit)
{
    struct window_span span[WINDOWS] = {
        [WINDOW_IO]     = { io_base, io_limit, io_limit > io_base },
        [WINDOW_MMIO32] = { mmio32_base, mmio32_limit, mmio32_limit > mmio32_base },
        [WINDOW_MMIO64] = { mmio64_base, mmio64_limit, mmio64_limit > mmio64_base },
    };
    if (span[WINDOW_IO].present && io_limit > 0xffff)
        return false;
    if (span[WINDOW_MMIO32].present && mmio32_limit > 0xffffffffull)
        return false;
    bool have64 = span[WINDOW_MMIO64].present;
    for (unsigned w = 0; w < WINDOWS; w++)
        if (!window_fill(bus, (enum window)w, &span[w], have64, false))
            return false;
    for (unsigned w = 0; w < WINDOWS; w++)
        (void)window_fill(bus, (enum window)w, &span[w], have64, true);
    for (unsigned n = 0; n < bus->count; n++)
        bars_update(&bus->dev[n]);
    return true;
}

/* ---- capabilities ---- */

unsigned pci_dev_add_cap(struct pci_dev *d, uint8_t id, unsigned len)
{
    /* Capabilities live in 0x40-0xff, each DWORD aligned, linked from 0x34
     * through each one's byte 1, the last one's pointer 0 (§6.7). */
    unsigned off = d->cap_free;
    if (len < 2 || off < PCI_CFG_DEVICE_SPECIFIC || off + len > 0x100)
        return 0;
    memset(d->config + off, 0, len);
    memset(d->wmask + off, 0, len);
    memset(d->w1cmask + off, 0, len);
    d->config[off] = id;
    if (d->cap_last)
        d->config[d->cap_last + 1] = (uint8_t)off;
    else
        d->config[PCI_CFG_CAP_PTR] = (uint8_t)off;
    d->cap_last = (uint16_t)off;
    d->cap_free = (uint16_t)((off + len + 3) & ~3u);
    d->config[PCI_CFG_STATUS] |= PCI_STATUS_CAP_LIST;
    return off;
}

unsigned pci_dev_add_vendor_cap(struct pci_dev *d, unsigned len)
{
    if (len < 3)
        return 0;
    unsigned off = pci_dev_add_cap(d, PCI_CAP_ID_VENDOR, len);
    if (off)
        d->config[off + 2] = (uint8_t)len;
    return off;
}

static bool model_access_ok(unsigned offset, unsigned size)
{
    return offset >= PCI_CFG_DEVICE_SPECIFIC && bus_access_ok(offset, size);
}

bool pci_dev_cfg_set(struct pci_dev *d, unsigned offset, unsigned size, uint32_t value)
{
    if (!model_access_ok(offset, size))
        return false;
    cfg_put(d->config, offset, size, value);
    return true;
}

bool pci_dev_cfg_wmask(struct pci_dev *d, unsigned offset, unsigned size, uint32_t mask)
{
    if (!model_access_ok(offset, size))
        return false;
    cfg_put(d->wmask, offset, size, mask);
    return true;
}

uint32_t pci_dev_cfg_get(const struct pci_dev *d, unsigned offset, unsigned size)
{
    if (!bus_access_ok(offset, size))
        return 0xffffffffu;
    return get(d->config, offset, size);
}

void pci_dev_status_set(struct pci_dev *d, uint16_t bits)
{
    d->config[STATUS_BYTE_HIGH] |= (uint8_t)((bits & PCI_STATUS_ERRORS) >> 8);
}

/* ---- MSI-X ---- */

static uint32_t pba_bytes(unsigned count)
{
    return (count + 63) / 64 * 8;
}

/* The table and PBA sit in a memory BAR (§6.8.2.4-6.8.2.5) at a QWORD aligned
 * offset: the offset registers' low 3 bits are the BIR. */
static bool msix_region_ok(const struct pci_dev *d, unsigned bar, uint32_t offset, uint64_t len)
{
    if (bar >= PCI_BARS || (offset & 7))
        return false;
    const struct pci_bar_desc *b = &d->bar[bar];
    if (b->type != PCI_BAR_MEM32 && b->type != PCI_BAR_MEM64)
        return false;
    return (uint64_t)offset + len <= b->size;
}

unsigned pci_dev_add_msix(struct pci_dev *d, unsigned count, unsigned table_bar, uint32_t table_offset,
                          unsigned pba_bar, uint32_t pba_offset)
{
    if (d->msix_cap || count < 1 || count > PCI_MSIX_VECTORS_MAX)
        return 0;
    uint64_t table_len = (uint64_t)count * PCI_MSIX_ENTRY_SIZE;
    if (!msix_region_ok(d, table_bar, table_offset, table_len) ||
        !msix_region_ok(d, pba_bar, pba_offset, pba_bytes(count)))
        return 0;
    if (table_bar == pba_bar && overlaps(table_offset, table_len, pba_offset, pba_bytes(count)))
        return 0;
    struct pci_bus *bus = d->bus;
    if (bus->msix_used + count > PCI_BUS_MSIX_VECTORS)
        return 0;
    unsigned off = pci_dev_add_cap(d, PCI_CAP_ID_MSIX, PCI_MSIX_CAP_LEN);
    if (!off)
        return 0;
    /* Message control (§6.8.2.3): table size N-1 read-only in 10:0, function
     * mask and MSI-X enable writable; both enables clear after reset. */
    cfg_put(d->config, off + 2, 2, count - 1);
    cfg_put(d->wmask, off + 2, 2, PCI_MSIX_CTRL_ENABLE | PCI_MSIX_CTRL_FUNCTION_MASK);
    cfg_put(d->config, off + 4, 4, table_offset | table_bar);
    cfg_put(d->config, off + 8, 4, pba_offset | pba_bar);
    d->msix_cap = (uint16_t)off;
    d->msix_count = (uint16_t)count;
    d->msix_first = (uint16_t)bus->msix_used;
    d->msix_table_bar = (uint8_t)table_bar;
    d->msix_pba_bar = (uint8_t)pba_bar;
    d->msix_table_offset = table_offset;
    d->msix_pba_offset = pba_offset;
    bus->msix_used += count;
    msix_reset(d);
    return off;
}

/* §6.8.2: software accesses the table and PBA with aligned DWORDs or QWORDs
 * only; anything else is undefined, and here does nothing. */
static bool msix_size_ok(uint64_t offset, unsigned size)
{
    return (size == 4 || size == 8) && !(offset & (size - 1));
}

static uint32_t entry_word(const struct pci_msix_entry *e, unsigned word)
{
    switch (word) {
    case 0:  return e->addr_lo;
    case 1:  return e->addr_hi;
    case 2:  return e->data;
    default: return e->ctrl;
    }
}

static void entry_word_write(struct pci_dev *d, unsigned vector, unsigned word, uint32_t value)
{
    struct pci_msix_entry *e = msix_entry(d, vector);
    switch (word) {
    case 0:
        /* Message address bits 1:0 are 0 for a DWORD aligned write (§6.8.2.6). */
        e->addr_lo = value & ~3u;
        break;
    case 1:
        e->addr_hi = value;
        break;
    case 2:
        e->data = value;
        break;
    default:
        /* Vector control: only the mask bit is defined (§6.8.2.9); unmasking a
         * vector whose PBA bit is set sends its message now. */
        e->ctrl = value & PCI_MSIX_ENTRY_MASKED;
        msix_vector_flush(d, vector);
        break;
    }
}

static uint64_t pba_qword(const struct pci_dev *d, unsigned q)
{
    uint64_t bits = 0;
    for (unsigned i = 0; i < 64; i++) {
        unsigned v = q * 64 + i;
        if (v < d->msix_count && pending(d, v))
            bits |= 1ull << i;
    }
    return bits;
}

bool pci_msix_read(struct pci_dev *d, unsigned bar, uint64_t offset, unsigned size, uint64_t *value)
{
    if (!d->msix_cap)
        return false;
    uint64_t table_len = (uint64_t)d->msix_count * PCI_MSIX_ENTRY_SIZE;
    uint64_t pba_len = pba_bytes(d->msix_count);
    if (bar == d->msix_table_bar && overlaps(offset, size, d->msix_table_offset, table_len)) {
        *value = 0;
        if (!msix_size_ok(offset, size) || offset < d->msix_table_offset)
            return true;
        uint64_t rel = offset - d->msix_table_offset;
        if (rel + size > table_len)
            return true;
        const struct pci_msix_entry *e = msix_entry(d, (unsigned)(rel / PCI_MSIX_ENTRY_SIZE));
        unsigned word = (unsigned)(rel % PCI_MSIX_ENTRY_SIZE) / 4;
        *value = entry_word(e, word);
        if (size == 8)
            *value |= (uint64_t)entry_word(e, word + 1) << 32;
        return true;
    }
    if (bar == d->msix_pba_bar && overlaps(offset, size, d->msix_pba_offset, pba_len)) {
        *value = 0;
        if (!msix_size_ok(offset, size) || offset < d->msix_pba_offset)
            return true;
        uint64_t rel = offset - d->msix_pba_offset;
        if (rel + size > pba_len)
            return true;
        uint64_t bits = pba_qword(d, (unsigned)(rel / 8));
        *value = size == 8 ? bits : (uint32_t)(bits >> (8 * (rel & 4)));
        return true;
    }
    return false;
}

bool pci_msix_write(struct pci_dev *d, unsigned bar, uint64_t offset, unsigned size, uint64_t value)
{
    if (!d->msix_cap)
        return false;
    uint64_t table_len = (uint64_t)d->msix_count * PCI_MSIX_ENTRY_SIZE;
    if (bar == d->msix_table_bar && overlaps(offset, size, d->msix_table_offset, table_len)) {
        if (!msix_size_ok(offset, size) || offset < d->msix_table_offset)
            return true;
        uint64_t rel = offset - d->msix_table_offset;
        if (rel + size > table_len)
            return true;
        unsigned vector = (unsigned)(rel / PCI_MSIX_ENTRY_SIZE);
        unsigned word = (unsigned)(rel % PCI_MSIX_ENTRY_SIZE) / 4;
        /* A QWORD at +8 writes data before vector control, so an unmask in the
         * same write sends the new data. */
        entry_word_write(d, vector, word, (uint32_t)value);
        if (size == 8)
            entry_word_write(d, vector, word + 1, (uint32_t)(value >> 32));
        return true;
    }
    /* The PBA is read-only (§6.8.2.10): its writes are claimed and dropped. */
    return bar == d->msix_pba_bar && overlaps(offset, size, d->msix_pba_offset, pba_bytes(d->msix_count));
}

enum pci_msix_result pci_msix_notify(struct pci_dev *d, unsigned vector)
{
    if (!pci_msix_enabled(d))
        return PCI_MSIX_DISABLED;
    if (vector >= d->msix_count)
        return PCI_MSIX_NO_VECTOR;
    /* A masked vector, or all of them under the function mask, records the
     * message in its PBA bit instead (§6.8.2.3, §6.8.2.9). */
    if ((msix_control(d) & PCI_MSIX_CTRL_FUNCTION_MASK) ||
        (msix_entry(d, vector)->ctrl & PCI_MSIX_ENTRY_MASKED)) {
        pending_set(d, vector, true);
        return PCI_MSIX_PENDING;
    }
    if (!(command(d) & PCI_COMMAND_MASTER))
        return PCI_MSIX_DROPPED;
    msix_send(d, vector);
    return PCI_MSIX_DELIVERED;
}

/* ---- snapshots ---- */

static void dev_fields(struct snap *s, struct pci_dev_image *img, unsigned vectors)
{
    snap_bytes(s, img->config, sizeof img->config);
    for (unsigned v = 0; v < vectors; v++) {
        snap_u32(s, &img->msix[v].addr_lo);
        snap_u32(s, &img->msix[v].addr_hi);
        snap_u32(s, &img->msix[v].data);
        snap_u32(s, &img->msix[v].ctrl);
    }
    snap_bytes(s, img->pending, (vectors + 7) / 8);
    snap_bool(s, &img->intx_level);
}

void pci_dev_save(struct pci_dev *d, struct snap *s)
{
    static struct pci_dev_image img;     /* callers are serialised by the VM's snapshot */
    unsigned vectors = d->msix_count < PCI_DEV_SNAP_VECTORS ? d->msix_count : PCI_DEV_SNAP_VECTORS;
    memcpy(img.config, d->config, sizeof img.config);
    memset(img.pending, 0, sizeof img.pending);
    for (unsigned v = 0; v < vectors; v++) {
        img.msix[v] = d->bus->msix[d->msix_first + v];
        if (pending(d, v))
            img.pending[v / 8] |= (uint8_t)(1u << (v % 8));
    }
    img.intx_level = d->intx_level;
    uint32_t devfn = d->devfn, count = vectors;
    snap_record_begin(s, "pcidev", 1);
    snap_u32(s, &devfn);
    snap_u32(s, &count);
    dev_fields(s, &img, vectors);
    snap_record_end(s);
}

bool pci_dev_load(const struct pci_dev *d, struct pci_dev_image *img, struct snap *s)
{
    unsigned vectors = d->msix_count < PCI_DEV_SNAP_VECTORS ? d->msix_count : PCI_DEV_SNAP_VECTORS;
    uint32_t devfn = 0, count = 0;
    snap_record_begin(s, "pcidev", 1);
    snap_u32(s, &devfn);
    snap_u32(s, &count);
    if (snap_check(s, devfn == d->devfn && count == vectors, "a PCI function of another device or slot"))
        dev_fields(s, img, vectors);
    snap_record_end(s);
    if (s->failed)
        return false;
    /* Only what the guest could have written comes from the stream. */
    for (unsigned i = 0; i < PCI_CONFIG_SIZE; i++) {
        uint8_t guest = d->wmask[i] | d->w1cmask[i];
        img->config[i] = (uint8_t)((d->config[i] & ~guest) | (img->config[i] & guest));
    }
    return true;
}

void pci_dev_restore(struct pci_dev *d, const struct pci_dev_image *img)
{
    unsigned vectors = d->msix_count < PCI_DEV_SNAP_VECTORS ? d->msix_count : PCI_DEV_SNAP_VECTORS;
    memcpy(d->config, img->config, sizeof d->config);
    for (unsigned v = 0; v < vectors; v++) {
        d->bus->msix[d->msix_first + v] = img->msix[v];
        pending_set(d, v, img->pending[v / 8] >> (v % 8) & 1);
    }
    /* What changed against the function's state before the restore is reported
     * as a guest's write would be: the BARs' decode, the INTx line. */
    bars_update(d);
    pci_dev_set_intx(d, img->intx_level);
    intx_update(d);
}
