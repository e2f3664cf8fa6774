/* The emulated PCI bus (vmm/dev/pci_bus.c) under any configuration accesses
 * (conf1 offsets and ECAM), MSI-X table and PBA accesses of every size and
 * offset, interrupts, window assignments and resets: the IDs never change, the
 * capability list stays in bounds, each map report starts where the previous one
 * ended and matches the BAR's decode, every MSI-X message is either a notify
 * delivered at once or a pending bit given up, the INTx lines follow interrupt
 * disable and MSI-X, and a refused assignment changes nothing. */
#include "fuzz.h"
#include "vmm/snap.c"
#include "vmm/dev/pci_bus.c"

static struct pci_bus bus;
static unsigned messages;
static bool line[PCI_BUS_DEVFNS];

struct bar_seen {
    bool on;
    uint64_t base;
};

struct fn {
    unsigned devfn;
    struct pci_dev *dev;
    struct bar_seen seen[PCI_BARS];
    uint32_t ids[4];               /* dwords 0x00, 0x08, 0x2c and the pin at 0x3d */
};

static struct fn fns[4];
static unsigned nfns;

static void on_map(void *ctx, unsigned bar, uint64_t old_base, uint64_t new_base, bool enabled)
{
    struct fn *f = ctx;
    FUZZ_CHECK(bar < PCI_BARS && f->dev->bar[bar].type != PCI_BAR_NONE, "map of slot %u", bar);
    FUZZ_CHECK(old_base == f->seen[bar].base, "map old %#llx, last said %#llx",
               (unsigned long long)old_base, (unsigned long long)f->seen[bar].base);
    FUZZ_CHECK(!(new_base & (f->dev->bar[bar].size - 1)), "BAR %u at %#llx not aligned", bar,
               (unsigned long long)new_base);
    FUZZ_CHECK(new_base + (f->dev->bar[bar].size - 1) >= new_base, "BAR %u wraps", bar);
    f->seen[bar].on = enabled;
    f->seen[bar].base = new_base;
}

static void on_deliver(void *ctx, uint64_t addr, uint32_t data)
{
    (void)ctx;
    (void)data;
    FUZZ_CHECK(!(addr & 3), "message address %#llx", (unsigned long long)addr);
    messages++;
}

static void on_intx(void *ctx, unsigned devfn, unsigned pin, bool level)
{
    (void)ctx;
    FUZZ_CHECK(devfn < PCI_BUS_DEVFNS && pin >= 1 && pin <= 4, "intx %u pin %u", devfn, pin);
    FUZZ_CHECK(line[devfn] != level, "intx %u reported without a change", devfn);
    line[devfn] = level;
}

static const struct pci_bus_ops ops = { on_deliver, on_intx, NULL };

static void add(unsigned devfn, const struct pci_dev_desc *desc)
{
    struct fn *f = &fns[nfns++];
    *f = (struct fn){ .devfn = devfn };
    struct pci_dev_desc d = *desc;
    d.map = on_map;
    d.ctx = f;
    f->dev = pci_bus_add(&bus, devfn, &d);
    FUZZ_CHECK(f->dev, "add %#x", devfn);
}

static void setup(void)
{
    static const struct pci_dev_desc bridge = {
        .vendor_id = 0x8086, .device_id = 0x1237, .class_code = 0x060000, .revision = 2,
        .command_fixed = PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER,
    };
    static const struct pci_dev_desc a = {
        .vendor_id = 0x1af4, .device_id = 0x1042, .class_code = 0x010000, .interrupt_pin = 1,
        .bar = { [0] = { PCI_BAR_IO, false, 32 }, [1] = { PCI_BAR_MEM32, false, 256 },
                 [2] = { PCI_BAR_MEM64, true, 16384 } },
    };
    static const struct pci_dev_desc b = {
        .vendor_id = 0x1af4, .device_id = 0x1041, .class_code = 0x020000, .interrupt_pin = 2,
        .bar = { [0] = { PCI_BAR_MEM32, false, 4096 }, [1] = { PCI_BAR_MEM64, false, 8ull << 30 } },
    };
    pci_bus_init(&bus, &ops);
    memset(line, 0, sizeof line);
    messages = 0;
    nfns = 0;
    add(0, &bridge);
    add(PCI_DEVFN(3, 0), &a);
    add(PCI_DEVFN(4, 0), &b);
    add(PCI_DEVFN(4, 1), &b);
    struct pci_dev *da = fns[1].dev, *db = fns[2].dev;
    unsigned c = pci_dev_add_vendor_cap(da, 16);
    pci_dev_cfg_wmask(da, c + 4, 4, 0x00ff00ffu);
    FUZZ_CHECK(pci_dev_add_msix(da, 70, 2, 0, 2, 0x2000), "msix a");
    FUZZ_CHECK(pci_dev_add_msix(db, 3, 0, 0x100, 0, 0x800), "msix b");
    for (unsigned i = 0; i < nfns; i++) {
        struct pci_dev *d = fns[i].dev;
        fns[i].ids[0] = pci_dev_cfg_get(d, 0x00, 4);
        fns[i].ids[1] = pci_dev_cfg_get(d, 0x08, 4);
        fns[i].ids[2] = pci_dev_cfg_get(d, 0x2c, 4);
        fns[i].ids[3] = pci_dev_cfg_get(d, 0x3d, 1);
    }
}

static unsigned pending_total(void)
{
    unsigned n = 0;
    for (unsigned i = 0; i < PCI_BUS_MSIX_VECTORS / 64; i++)
        n += (unsigned)__builtin_popcountll(bus.msix_pending[i]);
    return n;
}

static unsigned pick_devfn(struct fuzz_in *in)
{
    static const unsigned devfns[] = { 0, PCI_DEVFN(3, 0), PCI_DEVFN(4, 0), PCI_DEVFN(4, 1), PCI_DEVFN(4, 2),
                                       PCI_DEVFN(31, 7), 256 };
    uint8_t k = fz_u8(in);
    return k < 0xf0 ? devfns[k % 7] : k;
}

static const unsigned sizes[] = { 1, 2, 4, 8, 3, 0, 16, 4 };

static bool footprint_ok(const struct pci_bar_desc *b, uint64_t base)
{
    uint64_t fp = b->type == PCI_BAR_IO || b->size >= 0x1000 ? b->size : 0x1000;
    return !(base & (fp - 1));
}

static void check(void)
{
    for (unsigned i = 0; i < nfns; i++) {
        struct fn *f = &fns[i];
        struct pci_dev *d = f->dev;
        FUZZ_CHECK(pci_dev_cfg_get(d, 0x00, 4) == f->ids[0] && pci_dev_cfg_get(d, 0x08, 4) == f->ids[1] &&
                   pci_dev_cfg_get(d, 0x2c, 4) == f->ids[2] && pci_dev_cfg_get(d, 0x3d, 1) == f->ids[3],
                   "IDs of %#x changed", f->devfn);
        /* The map reports agree with the registers. */
        for (unsigned b = 0; b < PCI_BARS; b++) {
            uint64_t base = 0;
            bool on = pci_dev_bar(d, b, &base);
            if (d->bar[b].type == PCI_BAR_NONE)
                continue;
            FUZZ_CHECK(on == f->seen[b].on && base == f->seen[b].base, "%#x BAR %u decodes %d at %#llx, map said %d at %#llx",
                       f->devfn, b, on, (unsigned long long)base, f->seen[b].on, (unsigned long long)f->seen[b].base);
            if (d->bar[b].type == PCI_BAR_IO)
                FUZZ_CHECK(base + d->bar[b].size - 1 <= 0xffff, "I/O BAR past 64 KiB");
        }
        /* Only implemented command bits, the fixed ones always. */
        uint16_t cmd = pci_dev_command(d);
        FUZZ_CHECK(!(cmd & ~(PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE)),
                   "command %#x", cmd);
        /* The capability list: in bounds, DWORD aligned, ascending, finite. */
        unsigned ptr = pci_dev_cfg_get(d, PCI_CFG_CAP_PTR, 1), steps = 0;
        FUZZ_CHECK(!ptr || (pci_dev_cfg_get(d, PCI_CFG_STATUS, 2) & PCI_STATUS_CAP_LIST), "list without status bit");
        while (ptr) {
            FUZZ_CHECK(ptr >= 0x40 && ptr <= 0xfc && !(ptr & 3) && steps++ < 48, "capability at %#x", ptr);
            unsigned next = pci_dev_cfg_get(d, ptr + 1, 1);
            FUZZ_CHECK(!next || next > ptr, "capability loop at %#x", ptr);
            ptr = next;
        }
        /* INTx: the line is the condition, gated by interrupt disable and MSI-X. */
        if (d->config[PCI_CFG_INTERRUPT_PIN]) {
            bool want = d->intx_level && !(cmd & PCI_COMMAND_INTX_DISABLE) && !pci_msix_enabled(d);
            FUZZ_CHECK(line[f->devfn] == want, "INTx of %#x is %d", f->devfn, line[f->devfn]);
            FUZZ_CHECK(!!(pci_dev_cfg_get(d, PCI_CFG_STATUS, 2) & PCI_STATUS_INTERRUPT) == d->intx_level,
                       "interrupt status of %#x", f->devfn);
        }
        /* MSI-X entries keep their reserved bits clear. */
        for (unsigned v = 0; v < d->msix_count; v++) {
            const struct pci_msix_entry *e = &bus.msix[d->msix_first + v];
            FUZZ_CHECK(!(e->addr_lo & 3) && !(e->ctrl & ~1u), "MSI-X entry %u", v);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = { data, size };
    setup();
    static uint8_t before[4][PCI_CONFIG_SIZE];
    while (in.n) {
        uint8_t op = fz_u8(&in);
        unsigned pend = pending_total(), sent = messages;
        bool delivered = false, notified = false;
        struct fn *f = &fns[1 + (op >> 4) % 3];   /* a function with MSI-X or a pin */
        switch (op & 0xf) {
        case 0: case 1: case 2: {
            unsigned devfn = pick_devfn(&in);
            unsigned off = fz_u16(&in) & 0x1fff;
            if (op & 1)
                off &= 0x7f;              /* mostly the header */
            pci_bus_config_write(&bus, devfn, off, sizes[fz_u8(&in) & 7], fz_u32(&in));
            break;
        }
        case 3: {
            unsigned devfn = pick_devfn(&in);
            unsigned off = fz_u16(&in) & 0x1fff, sz = sizes[fz_u8(&in) & 7];
            uint32_t v = pci_bus_config_read(&bus, devfn, off, sz);
            bool good = (sz == 1 || sz == 2 || sz == 4) && off < 4096 && (off & 3) + sz <= 4;
            if (!good)
                FUZZ_CHECK(v == 0xffffffffu, "bad access read %#x", v);
            else if (!pci_bus_dev(&bus, devfn))
                FUZZ_CHECK(v == ones(sz), "absent %#x read %#x", devfn, v);
            break;
        }
        case 4: case 5: {
            unsigned bar = fz_u8(&in) & 7;
            uint64_t off = fz_u16(&in) & 0x3fff;
            uint64_t v = fz_u64(&in);
            uint64_t pba_before[2];
            for (unsigned q = 0; q < 2; q++)
                pba_before[q] = pba_qword(f->dev, q);
            bool pba_write = f->dev->msix_pba_bar == bar &&
                             overlaps(off, 8, f->dev->msix_pba_offset, pba_bytes(f->dev->msix_count));
            (void)pci_msix_write(f->dev, bar, off, sizes[fz_u8(&in) & 7], v);
            if (pba_write)
                for (unsigned q = 0; q < 2; q++)
                    FUZZ_CHECK(pba_qword(f->dev, q) == pba_before[q], "a PBA write set bits");
            break;
        }
        case 6: {
            uint64_t v = 0;
            unsigned bar = fz_u8(&in) & 7;
            (void)pci_msix_read(f->dev, bar, fz_u16(&in) & 0x3fff, sizes[fz_u8(&in) & 7], &v);
            break;
        }
        case 7: case 8: {
            unsigned vector = fz_u8(&in) % 80;
            struct pci_dev *d = f->dev;
            bool masked = vector < d->msix_count &&
                          ((msix_control(d) & PCI_MSIX_CTRL_FUNCTION_MASK) ||
                           (bus.msix[d->msix_first + vector].ctrl & PCI_MSIX_ENTRY_MASKED));
            enum pci_msix_result r = pci_msix_notify(d, vector);
            delivered = r == PCI_MSIX_DELIVERED;
            if (delivered)
                FUZZ_CHECK(pci_msix_enabled(d) && !masked && (pci_dev_command(d) & PCI_COMMAND_MASTER),
                           "vector %u delivered masked, disabled or without bus mastering", vector);
            if (r == PCI_MSIX_PENDING)
                FUZZ_CHECK(masked && pending(d, vector), "vector %u pending unmasked", vector);
            notified = true;
            break;
        }
        case 9:
            pci_dev_set_intx(f->dev, fz_bool(&in));
            break;
        case 10: {
            uint64_t off = fz_u32(&in) & 0x1fffff;
            unsigned sz = sizes[fz_u8(&in) & 7];
            if (op & 0x10)
                pci_bus_ecam_write(&bus, off, sz, fz_u32(&in));
            else
                (void)pci_bus_ecam_read(&bus, off, sz);
            break;
        }
        case 11: {
            /* Arbitrary windows, or ones of plausible shape (bases near where
             * a monitor puts them, sizes around what these BARs need). */
            uint64_t w[6];
            if (op & 0x10) {
                for (unsigned i = 0; i < 6; i++)
                    w[i] = fz_u64(&in);
            } else {
                w[0] = (uint64_t)fz_u16(&in) << 16;
                w[1] = w[0] + (fz_u32(&in) & 0x3ffffff);
                w[2] = (uint64_t)fz_u8(&in) << 32;
                w[3] = w[2] + (fz_u64(&in) & 0x7ffffffffull);
                w[4] = fz_u16(&in) & 0xfff0;
                w[5] = w[4] + (fz_u16(&in) & 0x1ff);
            }
            for (unsigned i = 0; i < nfns; i++)
                memcpy(before[i], fns[i].dev->config, PCI_CONFIG_SIZE);
            bool ok = pci_bus_assign(&bus, w[0], w[1], w[2], w[3], w[4], w[5]);
            for (unsigned i = 0; i < nfns; i++) {
                struct pci_dev *d = fns[i].dev;
                if (!ok) {
                    FUZZ_CHECK(!memcmp(before[i], d->config, PCI_CONFIG_SIZE), "refused assign changed %#x",
                               fns[i].devfn);
                    continue;
                }
                for (unsigned b = 0; b < PCI_BARS; b++) {
                    uint64_t base;
                    if (d->bar[b].type == PCI_BAR_NONE)
                        continue;
                    (void)pci_dev_bar(d, b, &base);
                    uint64_t last = base + d->bar[b].size - 1;
                    FUZZ_CHECK(footprint_ok(&d->bar[b], base), "assigned BAR not aligned");
                    if (d->bar[b].type == PCI_BAR_IO)
                        FUZZ_CHECK(base >= w[4] && last <= w[5], "I/O BAR outside its window");
                    else if (d->bar[b].type == PCI_BAR_MEM64 && w[3] > w[2])
                        FUZZ_CHECK(base >= w[2] && last <= w[3], "64-bit BAR outside its window");
                    else
                        FUZZ_CHECK(base >= w[0] && last <= w[1] && last <= 0xffffffffull,
                                   "32-bit BAR outside its window");
                }
            }
            break;
        }
        case 12:
            pci_bus_reset(&bus);
            FUZZ_CHECK(pending_total() == 0, "pending after reset");
            break;
        default: {
            /* A write to one of the registers that matter most, with a value of
             * the kind drivers write. */
            static const unsigned regs[] = { 0x04, 0x10, 0x14, 0x18, 0x1c, 0x06, 0x4a, 0x4c, 0x5a, 0x5e };
            unsigned r = regs[fz_u8(&in) % 10];
            if (r == 0x4a || r == 0x5a || r == 0x5e)   /* MSI-X message control of a, b */
                r = f->dev->msix_cap + 2;
            pci_bus_config_write(&bus, f->devfn, r, r & 2 ? 2 : 4, fz_u8(&in) & 1 ? 0xffffffffu : fz_u32(&in));
            break;
        }
        }
        /* A message goes out for a notify delivered at once, or for a pending
         * bit given up: never otherwise, and never twice. */
        unsigned now = pending_total();
        if (notified)
            FUZZ_CHECK(messages - sent == (delivered ? 1u : 0u) && now >= pend && now <= pend + 1,
                       "notify sent %u, pending %u -> %u", messages - sent, pend, now);
        else if ((op & 0xf) == 12)
            FUZZ_CHECK(messages == sent, "reset sent %u", messages - sent);
        else
            FUZZ_CHECK(now <= pend && messages - sent == pend - now, "%u messages, pending %u -> %u",
                       messages - sent, pend, now);
        check();
    }
    return 0;
}
