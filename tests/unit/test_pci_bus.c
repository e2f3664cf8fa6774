/* The emulated PCI bus (vmm/dev/pci_bus): configuration space semantics
 * (read-only, RW1C, absent functions), BAR sizing, decode and relocation, the
 * capability list, MSI-X table and PBA, INTx, and the boot-time window
 * allocator; with a stand-in monitor that keeps its BAR handlers where map says. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/snap.c"
#include "vmm/dev/pci_bus.c"

static struct pci_bus bus;

/* ---- what the bus tells the monitor ---- */

struct map_call {
    void *ctx;
    unsigned bar;
    uint64_t old_base, new_base;
    bool enabled;
};

static struct map_call maps[64];
static unsigned map_count;

static void on_map(void *ctx, unsigned bar, uint64_t old_base, uint64_t new_base, bool enabled)
{
    assert_true(map_count < 64);
    maps[map_count++] = (struct map_call){ ctx, bar, old_base, new_base, enabled };
}

static struct { uint64_t addr; uint32_t data; } msgs[64];
static unsigned msg_count;

static void on_deliver(void *ctx, uint64_t addr, uint32_t data)
{
    assert_ptr_equal(ctx, &bus);
    assert_true(msg_count < 64);
    msgs[msg_count].addr = addr;
    msgs[msg_count].data = data;
    msg_count++;
}

static struct { unsigned devfn, pin; bool level; } lines[16];
static unsigned line_count;

static void on_intx(void *ctx, unsigned devfn, unsigned pin, bool level)
{
    assert_ptr_equal(ctx, &bus);
    assert_true(line_count < 16);
    lines[line_count].devfn = devfn;
    lines[line_count].pin = pin;
    lines[line_count].level = level;
    line_count++;
}

static const struct pci_bus_ops ops = { on_deliver, on_intx, &bus };

/* The test device at 00:03.0: an I/O BAR of 32 bytes, a 32-bit BAR of 256 bytes,
 * a prefetchable 64-bit BAR of 16 KiB in slots 2-3 (MSI-X lives there), INTA#. */
#define DEV      PCI_DEVFN(3, 0)
static int dev_ctx;
static const struct pci_dev_desc dev_desc = {
    .vendor_id = 0x1af4, .device_id = 0x1042,
    .subsystem_vendor_id = 0x1af4, .subsystem_id = 0x0002,
    .class_code = 0x010000, .revision = 0x01, .interrupt_pin = 1,
    .bar = {
        [0] = { PCI_BAR_IO, false, 32 },
        [1] = { PCI_BAR_MEM32, false, 256 },
        [2] = { PCI_BAR_MEM64, true, 16384 },
    },
    .map = on_map, .ctx = &dev_ctx,
};

/* The host bridge as vmm/dev/pci_host shows it, registered on the bus. */
static const struct pci_dev_desc bridge_desc = {
    .vendor_id = 0x8086, .device_id = 0x1237, .class_code = 0x060000, .revision = 0x02,
    .command_fixed = PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER,
};

static struct pci_dev *dev;

static int setup(void **state)
{
    (void)state;
    pci_bus_init(&bus, &ops);
    map_count = msg_count = line_count = 0;
    dev = pci_bus_add(&bus, DEV, &dev_desc);
    assert_non_null(dev);
    return 0;
}

static uint32_t rd(unsigned devfn, unsigned off, unsigned size)
{
    return pci_bus_config_read(&bus, devfn, off, size);
}

static void wr(unsigned devfn, unsigned off, unsigned size, uint32_t v)
{
    pci_bus_config_write(&bus, devfn, off, size, v);
}

static uint32_t bar_reg(unsigned i)
{
    return rd(DEV, PCI_CFG_BAR0 + 4 * i, 4);
}

/* ---- header ---- */

static void test_header_read_only(void **state)
{
    (void)state;
    /* Every read-only field, written with ones and with zeros in its own width
     * and as its whole dword. */
    static const struct { unsigned off, size; } ro[] = {
        { 0x00, 4 }, { 0x08, 4 }, { 0x0e, 2 }, { 0x28, 4 }, { 0x2c, 4 }, { 0x30, 4 },
        { 0x34, 4 }, { 0x3d, 1 }, { 0x3e, 2 }, { 0x40, 4 }, { 0x100, 4 }, { 0xffc, 4 },
    };
    enum { N = sizeof ro / sizeof ro[0] };
    uint32_t before[N];
    for (unsigned i = 0; i < N; i++)
        before[i] = rd(DEV, ro[i].off, ro[i].size);
    assert_int_equal(before[0], 0x10421af4u);
    assert_int_equal(before[1], 0x01000001u);
    assert_int_equal(before[4], 0x00021af4u);
    assert_int_equal(before[7], 1);
    for (unsigned i = 0; i < N; i++) {
        wr(DEV, ro[i].off, ro[i].size, 0xffffffffu);
        wr(DEV, ro[i].off & ~3u, 4, 0xffffffffu);
        wr(DEV, ro[i].off, ro[i].size, 0);
        wr(DEV, ro[i].off & ~3u, 1, 0);
    }
    for (unsigned i = 0; i < N; i++)
        assert_int_equal(rd(DEV, ro[i].off, ro[i].size), before[i]);
    /* The registers that hold a value do, beside the read-only ones. */
    wr(DEV, PCI_CFG_CACHE_LINE_SIZE, 4, 0xffffffffu);
    assert_int_equal(rd(DEV, 0x0c, 4), 0x0000ffffu);
    wr(DEV, PCI_CFG_CACHE_LINE_SIZE, 2, 0x4010);
    wr(DEV, PCI_CFG_INTERRUPT_LINE, 4, 0xffffff0b);
    assert_int_equal(rd(DEV, 0x0c, 4), 0x00004010u);
    assert_int_equal(rd(DEV, 0x3c, 4), 0x0000010bu);
    /* No extended capability: the header at 0x100 reads 0. */
    assert_int_equal(rd(DEV, 0x100, 4), 0);
}

static void test_status_w1c(void **state)
{
    (void)state;
    assert_int_equal(rd(DEV, PCI_CFG_STATUS, 2), 0);
    /* The device records a received master abort and a signalled target abort;
     * it cannot fake the read-only bits. */
    pci_dev_status_set(dev, 0x2000 | 0x0800 | PCI_STATUS_CAP_LIST | PCI_STATUS_INTERRUPT);
    assert_int_equal(rd(DEV, PCI_CFG_STATUS, 2), 0x2800);
    /* Writing 0 clears nothing; a 1 clears that bit alone. */
    wr(DEV, PCI_CFG_STATUS, 2, 0);
    assert_int_equal(rd(DEV, PCI_CFG_STATUS, 2), 0x2800);
    wr(DEV, PCI_CFG_STATUS, 2, 0x0800);
    assert_int_equal(rd(DEV, PCI_CFG_STATUS, 2), 0x2000);
    /* All ones clears every error bit and leaves the read-only ones as they are. */
    pci_dev_add_vendor_cap(dev, 4);
    pci_dev_set_intx(dev, true);
    pci_dev_status_set(dev, PCI_STATUS_ERRORS);
    assert_int_equal(rd(DEV, PCI_CFG_STATUS, 2), PCI_STATUS_ERRORS | PCI_STATUS_CAP_LIST | PCI_STATUS_INTERRUPT);
    wr(DEV, PCI_CFG_STATUS, 2, 0xffff);
    assert_int_equal(rd(DEV, PCI_CFG_STATUS, 2), PCI_STATUS_CAP_LIST | PCI_STATUS_INTERRUPT);
    /* A dword write to command clears status bits through its upper half. */
    pci_dev_status_set(dev, 0x8000);
    wr(DEV, PCI_CFG_COMMAND, 4, 0x80000000u);
    assert_int_equal(rd(DEV, PCI_CFG_STATUS, 2), PCI_STATUS_CAP_LIST | PCI_STATUS_INTERRUPT);
}

static void test_absent_and_bad_accesses(void **state)
{
    (void)state;
    assert_int_equal(rd(PCI_DEVFN(0, 0), 0, 4), 0xffffffffu);
    assert_int_equal(rd(PCI_DEVFN(3, 1), 0, 2), 0xffff);
    assert_int_equal(rd(PCI_DEVFN(31, 7), 0x0e, 1), 0xff);
    assert_int_equal(rd(256, 0, 4), 0xffffffffu);
    assert_int_equal(rd(0xffffffffu, 0, 2), 0xffff);
    wr(PCI_DEVFN(3, 1), 0x3c, 1, 0x0b);
    assert_int_equal(rd(PCI_DEVFN(3, 1), 0x3c, 1), 0xff);
    assert_int_equal(rd(DEV, 0x3c, 1), 0);
    /* Sizes and offsets no configuration cycle has. */
    assert_int_equal(rd(DEV, 0, 3), 0xffffffffu);
    assert_int_equal(rd(DEV, 0, 8), 0xffffffffu);
    assert_int_equal(rd(DEV, 0, 0), 0xffffffffu);
    assert_int_equal(rd(DEV, 2, 4), 0xffffffffu);
    assert_int_equal(rd(DEV, 0x3f, 2), 0xffffffffu);
    assert_int_equal(rd(DEV, 4096, 1), 0xffffffffu);
    assert_int_equal(rd(DEV, 0xffffffffu, 1), 0xffffffffu);
    wr(DEV, 0x3b, 2, 0xffff);        /* crosses into the interrupt line's dword */
    wr(DEV, 0x3c, 3, 0xffffff);
    wr(DEV, 4096, 1, 0xff);
    assert_int_equal(rd(DEV, 0x3c, 1), 0);
    /* The last byte of extended space is in bounds. */
    assert_int_equal(rd(DEV, 0xfff, 1), 0);
    /* ECAM: the same functions at bus 0, nothing on other buses. */
    assert_int_equal(pci_bus_ecam_read(&bus, (uint64_t)DEV << 12, 4), 0x10421af4u);
    assert_int_equal(pci_bus_ecam_read(&bus, (uint64_t)DEV << 12 | 0x0a, 2), 0x0100);
    assert_int_equal(pci_bus_ecam_read(&bus, 1ull << 20 | (uint64_t)DEV << 12, 4), 0xffffffffu);
    assert_int_equal(pci_bus_ecam_read(&bus, 1ull << 40, 2), 0xffff);
    assert_int_equal(pci_bus_ecam_read(&bus, (uint64_t)DEV << 12 | 1, 4), 0xffffffffu);
    pci_bus_ecam_write(&bus, (uint64_t)DEV << 12 | 0x3c, 1, 0x0a);
    pci_bus_ecam_write(&bus, 1ull << 20 | (uint64_t)DEV << 12 | 0x3c, 1, 0x0b);
    assert_int_equal(rd(DEV, 0x3c, 1), 0x0a);
}

static void test_host_bridge_and_multifunction(void **state)
{
    (void)state;
    assert_non_null(pci_bus_add(&bus, 0, &bridge_desc));
    assert_int_equal(rd(0, 0x00, 4), 0x12378086u);
    assert_int_equal(rd(0, 0x08, 4), 0x06000002u);
    assert_int_equal(rd(0, 0x04, 2), 0x0006);
    wr(0, 0x04, 2, 0);
    assert_int_equal(rd(0, 0x04, 2), 0x0006);
    wr(0, 0x04, 2, 0xffff);
    assert_int_equal(rd(0, 0x04, 2), 0x0006);
    for (unsigned b = 0x10; b <= 0x24; b += 4) {
        wr(0, b, 4, 0xffffffffu);
        assert_int_equal(rd(0, b, 4), 0);
    }
    assert_int_equal(rd(0, 0x0e, 1), 0);
    assert_int_equal(rd(0, 0x3d, 1), 0);
    assert_int_equal(rd(0, 0x06, 2), 0);
    wr(0, 0x0d, 1, 0x20);
    assert_int_equal(rd(0, 0x0d, 1), 0x20);
    assert_int_equal(map_count, 0);

    /* A second function at device 3 makes both report multi-function, so
     * software scans 3.1-3.7; a device of one function does not. */
    assert_int_equal(rd(DEV, 0x0e, 1), 0);
    assert_non_null(pci_bus_add(&bus, PCI_DEVFN(3, 2), &bridge_desc));
    assert_int_equal(rd(DEV, 0x0e, 1), PCI_HEADER_MULTI_FUNCTION);
    assert_int_equal(rd(PCI_DEVFN(3, 2), 0x0e, 1), PCI_HEADER_MULTI_FUNCTION);
    assert_int_equal(rd(0, 0x0e, 1), 0);
    wr(DEV, 0x0e, 1, 0);
    assert_int_equal(rd(DEV, 0x0e, 1), PCI_HEADER_MULTI_FUNCTION);
}

static void test_add_refusals(void **state)
{
    (void)state;
    assert_null(pci_bus_add(&bus, DEV, &dev_desc));          /* taken */
    assert_null(pci_bus_add(&bus, 256, &dev_desc));
    assert_null(pci_bus_add(&bus, 5, NULL));
    static const struct pci_bar_desc bad[][2] = {
        { { PCI_BAR_IO, false, 2 } },
        { { PCI_BAR_IO, false, 512 } },
        { { PCI_BAR_IO, false, 48 } },
        { { PCI_BAR_IO, true, 16 } },
        { { PCI_BAR_MEM32, false, 8 } },
        { { PCI_BAR_MEM32, false, 0x3000 } },
        { { PCI_BAR_MEM32, false, 0x100000000ull } },
        { { PCI_BAR_MEM32, false, 0 } },
        { { PCI_BAR_MEM64, false, 8 } },
        { { PCI_BAR_MEM64, false, 0x1000 }, { PCI_BAR_MEM32, false, 0x1000 } },
        { { (enum pci_bar_type)7, false, 0x1000 } },
    };
    for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct pci_dev_desc d = { .vendor_id = 1 };
        d.bar[0] = bad[i][0];
        d.bar[1] = bad[i][1];
        assert_null(pci_bus_add(&bus, 8, &d));
    }
    struct pci_dev_desc d = { .vendor_id = 1 };
    d.bar[5] = (struct pci_bar_desc){ PCI_BAR_MEM64, false, 0x1000 };   /* no upper slot */
    assert_null(pci_bus_add(&bus, 8, &d));
    d = (struct pci_dev_desc){ .vendor_id = 1, .interrupt_pin = 5 };
    assert_null(pci_bus_add(&bus, 8, &d));
    d = (struct pci_dev_desc){ .vendor_id = 1, .command_fixed = PCI_COMMAND_INTX_DISABLE };
    assert_null(pci_bus_add(&bus, 8, &d));
    /* Nothing refused took a slot: the bus holds 16 functions in all. */
    d = (struct pci_dev_desc){ .vendor_id = 1 };
    for (unsigned i = 1; i < PCI_BUS_FUNCTIONS_MAX; i++)
        assert_non_null(pci_bus_add(&bus, PCI_DEVFN(8 + i, 0), &d));
    assert_null(pci_bus_add(&bus, PCI_DEVFN(31, 0), &d));
    assert_int_equal(rd(PCI_DEVFN(31, 0), 0, 4), 0xffffffffu);
}

/* ---- BARs ---- */

static void test_bar_sizing(void **state)
{
    (void)state;
    /* Reset values: address 0, type bits read-only. */
    assert_int_equal(bar_reg(0), 0x00000001u);
    assert_int_equal(bar_reg(1), 0x00000000u);
    assert_int_equal(bar_reg(2), 0x0000000cu);   /* 64-bit, prefetchable */
    assert_int_equal(bar_reg(3), 0);
    for (unsigned i = 0; i < PCI_BARS; i++)
        wr(DEV, PCI_CFG_BAR0 + 4 * i, 4, 0xffffffffu);
    assert_int_equal(bar_reg(0), 0x0000ffe1u);   /* 32 bytes of 16-bit port space */
    assert_int_equal(bar_reg(1), 0xffffff00u);   /* 256 bytes */
    assert_int_equal(bar_reg(2), 0xffffc00cu);   /* 16 KiB, type bits kept */
    assert_int_equal(bar_reg(3), 0xffffffffu);   /* the upper half is all address */
    assert_int_equal(bar_reg(4), 0);             /* unimplemented */
    assert_int_equal(bar_reg(5), 0);
    /* No expansion ROM: the register reads 0 however it is probed. */
    wr(DEV, PCI_CFG_ROM, 4, 0xfffff800u);
    assert_int_equal(rd(DEV, PCI_CFG_ROM, 4), 0);
    wr(DEV, PCI_CFG_ROM, 4, 0xffffffffu);
    assert_int_equal(rd(DEV, PCI_CFG_ROM, 4), 0);
    /* Writing 0 leaves only the type bits; byte writes reach single lanes. */
    for (unsigned i = 0; i < PCI_BARS; i++)
        wr(DEV, PCI_CFG_BAR0 + 4 * i, 4, 0);
    assert_int_equal(bar_reg(0), 1);
    assert_int_equal(bar_reg(2), 0xc);
    wr(DEV, PCI_CFG_BAR0 + 4 * 1 + 3, 1, 0xfe);
    assert_int_equal(bar_reg(1), 0xfe000000u);

    /* A BAR of 8 GiB: the low dword has no address bits, the high one sizes. */
    struct pci_dev_desc big = { .vendor_id = 1, .bar = { [0] = { PCI_BAR_MEM64, false, 8ull << 30 } } };
    assert_non_null(pci_bus_add(&bus, PCI_DEVFN(4, 0), &big));
    wr(PCI_DEVFN(4, 0), 0x10, 4, 0xffffffffu);
    wr(PCI_DEVFN(4, 0), 0x14, 4, 0xffffffffu);
    assert_int_equal(rd(PCI_DEVFN(4, 0), 0x10, 4), 0x00000004u);
    assert_int_equal(rd(PCI_DEVFN(4, 0), 0x14, 4), 0xfffffffeu);
    /* The size Linux's __pci_read_base computes from the two halves. */
    uint64_t mask = (uint64_t)rd(PCI_DEVFN(4, 0), 0x14, 4) << 32 | (rd(PCI_DEVFN(4, 0), 0x10, 4) & ~0xfu);
    assert_int_equal(~mask + 1, 8ull << 30);
    /* A 32-bit BAR of 2 GiB keeps one address bit. */
    struct pci_dev_desc two = { .vendor_id = 1, .bar = { [3] = { PCI_BAR_MEM32, true, 0x80000000ull } } };
    assert_non_null(pci_bus_add(&bus, PCI_DEVFN(5, 0), &two));
    wr(PCI_DEVFN(5, 0), 0x1c, 4, 0xffffffffu);
    assert_int_equal(rd(PCI_DEVFN(5, 0), 0x1c, 4), 0x80000008u);
}

static void test_bar_relocation_calls_map(void **state)
{
    (void)state;
    /* Decode off: the move is reported, not enabled. */
    wr(DEV, 0x14, 4, 0xc0000000u);
    assert_int_equal(map_count, 1);
    assert_ptr_equal(maps[0].ctx, &dev_ctx);
    assert_int_equal(maps[0].bar, 1);
    assert_int_equal(maps[0].old_base, 0);
    assert_int_equal(maps[0].new_base, 0xc0000000u);
    assert_false(maps[0].enabled);
    /* The same value again changes nothing and says nothing. */
    wr(DEV, 0x14, 4, 0xc0000000u);
    wr(DEV, 0x14, 4, 0xc0000012u);   /* low bits below the size are not address */
    assert_int_equal(map_count, 1);
    /* Memory decode on: BAR 1 and BAR 2 (at 0) start decoding, BAR 0 (I/O) not. */
    wr(DEV, PCI_CFG_COMMAND, 2, PCI_COMMAND_MEMORY);
    assert_int_equal(map_count, 3);
    assert_int_equal(maps[1].bar, 1);
    assert_int_equal(maps[1].old_base, 0xc0000000u);
    assert_int_equal(maps[1].new_base, 0xc0000000u);
    assert_true(maps[1].enabled);
    assert_int_equal(maps[2].bar, 2);
    assert_true(maps[2].enabled);
    /* Moving an enabled BAR: old and new in one call. */
    wr(DEV, 0x14, 4, 0xc0001000u);
    assert_int_equal(map_count, 4);
    assert_int_equal(maps[3].bar, 1);
    assert_int_equal(maps[3].old_base, 0xc0000000u);
    assert_int_equal(maps[3].new_base, 0xc0001000u);
    assert_true(maps[3].enabled);
    /* 64-bit: each half's write is a change, the base combines both. */
    wr(DEV, 0x18, 4, 0x20000000u);
    wr(DEV, 0x1c, 4, 0x00000004u);
    assert_int_equal(map_count, 6);
    assert_int_equal(maps[4].bar, 2);
    assert_int_equal(maps[4].new_base, 0x20000000u);
    assert_int_equal(maps[5].bar, 2);
    assert_int_equal(maps[5].old_base, 0x20000000u);
    assert_int_equal(maps[5].new_base, 0x420000000ull);
    uint64_t base = 0;
    assert_true(pci_dev_bar(dev, 2, &base));
    assert_int_equal(base, 0x420000000ull);
    /* The upper slot is no BAR of its own. */
    assert_false(pci_dev_bar(dev, 3, &base));
    assert_false(pci_dev_bar(dev, 6, &base));
}

static void test_decode_gated_by_command(void **state)
{
    (void)state;
    wr(DEV, 0x10, 4, 0xc040);
    wr(DEV, 0x14, 4, 0xfe000000u);
    map_count = 0;
    uint64_t base;
    assert_false(pci_dev_bar(dev, 0, &base));
    assert_false(pci_dev_bar(dev, 1, &base));
    /* I/O space enables the I/O BAR alone. */
    wr(DEV, PCI_CFG_COMMAND, 2, PCI_COMMAND_IO);
    assert_true(pci_dev_bar(dev, 0, &base));
    assert_int_equal(base, 0xc040);
    assert_false(pci_dev_bar(dev, 1, &base));
    assert_int_equal(map_count, 1);
    assert_int_equal(maps[0].bar, 0);
    assert_true(maps[0].enabled);
    /* Memory space the memory BARs alone. */
    wr(DEV, PCI_CFG_COMMAND, 2, PCI_COMMAND_MEMORY);
    assert_false(pci_dev_bar(dev, 0, &base));
    assert_true(pci_dev_bar(dev, 1, &base));
    assert_int_equal(base, 0xfe000000u);
    assert_true(pci_dev_bar(dev, 2, &base));
    assert_int_equal(map_count, 4);
    for (unsigned i = 1; i < 4; i++)
        assert_true(maps[i].enabled == (maps[i].bar != 0));
    /* Only the bits this function implements are writable. */
    wr(DEV, PCI_CFG_COMMAND, 2, 0xffff);
    assert_int_equal(rd(DEV, PCI_CFG_COMMAND, 2),
                     PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE);
    map_count = 0;
    wr(DEV, PCI_CFG_COMMAND, 2, 0);
    assert_int_equal(map_count, 3);
    for (unsigned i = 0; i < 3; i++)
        assert_false(maps[i].enabled);
    /* A function without I/O BARs and without a pin has no I/O enable and no
     * interrupt disable. */
    struct pci_dev_desc m = { .vendor_id = 1, .bar = { [0] = { PCI_BAR_MEM32, false, 0x1000 } } };
    assert_non_null(pci_bus_add(&bus, PCI_DEVFN(4, 0), &m));
    wr(PCI_DEVFN(4, 0), PCI_CFG_COMMAND, 2, 0xffff);
    assert_int_equal(rd(PCI_DEVFN(4, 0), PCI_CFG_COMMAND, 2), PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
}

/* ---- capabilities ---- */

static struct { unsigned reads, writes, offset, size; uint32_t value; } hook;

static void cfg_read_hook(void *ctx, unsigned offset, unsigned size)
{
    hook.reads++;
    hook.offset = offset;
    hook.size = size;
    /* The model refreshes a field as it is read. */
    pci_dev_cfg_set(ctx, 0x4c, 4, 0x11223344u + hook.reads);
}

static void cfg_write_hook(void *ctx, unsigned offset, unsigned size, uint32_t value)
{
    (void)ctx;
    hook.writes++;
    hook.offset = offset;
    hook.size = size;
    hook.value = value;
}

/* Walks the list as Linux's pci_find_capability does, checking each link. */
static unsigned walk(unsigned devfn, uint8_t *ids, unsigned max)
{
    unsigned n = 0, ptr = rd(devfn, PCI_CFG_CAP_PTR, 1);
    if (ptr)
        assert_true(rd(devfn, PCI_CFG_STATUS, 2) & PCI_STATUS_CAP_LIST);
    while (ptr) {
        assert_true(ptr >= 0x40 && ptr <= 0xfc);
        assert_int_equal(ptr & 3, 0);
        assert_true(n < max);
        ids[n++] = (uint8_t)rd(devfn, ptr, 1);
        unsigned next = rd(devfn, ptr + 1, 1);
        assert_true(next == 0 || next > ptr);
        ptr = next;
    }
    return n;
}

static void test_capability_walk(void **state)
{
    (void)state;
    uint8_t ids[64];
    assert_int_equal(walk(DEV, ids, 64), 0);
    assert_int_equal(rd(DEV, PCI_CFG_STATUS, 2) & PCI_STATUS_CAP_LIST, 0);
    unsigned a = pci_dev_add_vendor_cap(dev, 16);
    unsigned b = pci_dev_add_vendor_cap(dev, 5);    /* the next one starts DWORD aligned */
    unsigned x = pci_dev_add_msix(dev, 4, 2, 0, 2, 0x1000);
    assert_int_equal(a, 0x40);
    assert_int_equal(b, 0x50);
    assert_int_equal(x, 0x58);
    assert_int_equal(walk(DEV, ids, 64), 3);
    assert_int_equal(ids[0], PCI_CAP_ID_VENDOR);
    assert_int_equal(ids[1], PCI_CAP_ID_VENDOR);
    assert_int_equal(ids[2], PCI_CAP_ID_MSIX);
    assert_int_equal(rd(DEV, a + 2, 1), 16);        /* vendor capability length */
    assert_int_equal(rd(DEV, b + 2, 1), 5);
    assert_int_equal(rd(DEV, PCI_CFG_STATUS, 2) & PCI_STATUS_CAP_LIST, PCI_STATUS_CAP_LIST);
    /* Bad lengths; then fill the space: the list stays whole and in bounds. */
    assert_int_equal(pci_dev_add_cap(dev, 0x05, 1), 0);
    assert_int_equal(pci_dev_add_vendor_cap(dev, 2), 0);
    assert_int_equal(pci_dev_add_cap(dev, 0x05, 0x100), 0);
    unsigned last = 0, off;
    while ((off = pci_dev_add_cap(dev, 0x05, 10)) != 0) {
        assert_true(off + 10 <= 0x100);
        last = off;
    }
    assert_true(last >= 0xe0);
    assert_true(pci_dev_add_cap(dev, 0x05, 2) == 0 || last < 0xfc);
    unsigned n = walk(DEV, ids, 64);
    assert_true(n > 3);
    assert_int_equal(ids[n - 1], 0x05);
    /* Pointers and IDs are read-only for the guest. */
    wr(DEV, PCI_CFG_CAP_PTR, 1, 0x80);
    wr(DEV, a, 4, 0);
    assert_int_equal(rd(DEV, PCI_CFG_CAP_PTR, 1), 0x40);
    assert_int_equal(rd(DEV, a, 4), 0x00105009u);
    assert_int_equal(walk(DEV, ids, 64), n);
}

static void test_capability_body(void **state)
{
    (void)state;
    struct pci_dev_desc d = dev_desc;
    d.config_read = cfg_read_hook;
    d.config_write = cfg_write_hook;
    memset(&hook, 0, sizeof hook);
    struct pci_dev *v = pci_bus_add(&bus, PCI_DEVFN(4, 0), &d);
    assert_non_null(v);
    v->ctx = v;   /* the hooks' context: the function itself */
    unsigned c = pci_dev_add_vendor_cap(v, 16);
    assert_int_equal(c, 0x40);
    assert_true(pci_dev_cfg_set(v, c + 4, 4, 0xa5a5a5a5u));
    assert_true(pci_dev_cfg_wmask(v, c + 8, 2, 0x00ff));
    assert_false(pci_dev_cfg_set(v, 0x3c, 1, 1));        /* the header is the bus's */
    assert_false(pci_dev_cfg_wmask(v, 0x10, 4, ~0u));
    assert_false(pci_dev_cfg_set(v, c + 6, 4, 0));       /* crosses a dword */
    assert_false(pci_dev_cfg_set(v, 4096, 1, 0));
    /* The body is read-only but where the model opened it. */
    wr(PCI_DEVFN(4, 0), c + 4, 4, 0);
    wr(PCI_DEVFN(4, 0), c + 8, 2, 0x1234);
    assert_int_equal(hook.writes, 2);
    assert_int_equal(hook.offset, c + 8);
    assert_int_equal(hook.size, 2);
    assert_int_equal(hook.value, 0x1234);
    assert_int_equal(pci_dev_cfg_get(v, c + 4, 4), 0xa5a5a5a5u);
    assert_int_equal(pci_dev_cfg_get(v, c + 8, 2), 0x0034);
    assert_int_equal(pci_dev_cfg_get(v, 0, 4), 0x10421af4u);
    assert_int_equal(pci_dev_cfg_get(v, 4096, 1), 0xffffffffu);
    /* A read runs the model's refresh first. */
    unsigned reads = hook.reads;
    assert_int_equal(rd(PCI_DEVFN(4, 0), 0x4c, 4), 0x11223344u + reads + 1);
    assert_int_equal(hook.offset, 0x4c);
    /* Header accesses are the bus's alone: no hook. */
    rd(PCI_DEVFN(4, 0), 0x00, 4);
    wr(PCI_DEVFN(4, 0), 0x3c, 1, 5);
    assert_int_equal(hook.reads, reads + 1);
    assert_int_equal(hook.writes, 2);
}

/* ---- MSI-X ---- */

#define MSIX_BAR       2
#define MSIX_VECTORS   70          /* two PBA qwords */
#define MSIX_TABLE     0x0000
#define MSIX_PBA       0x2000

static unsigned msix_cap;

static void msix_setup(void)
{
    msix_cap = pci_dev_add_msix(dev, MSIX_VECTORS, MSIX_BAR, MSIX_TABLE, MSIX_BAR, MSIX_PBA);
    assert_int_not_equal(msix_cap, 0);
}

static uint64_t mrd(uint64_t off, unsigned size)
{
    uint64_t v = 0xdeadbeef;
    assert_true(pci_msix_read(dev, MSIX_BAR, off, size, &v));
    return v;
}

static void mwr(uint64_t off, unsigned size, uint64_t v)
{
    assert_true(pci_msix_write(dev, MSIX_BAR, off, size, v));
}

static void entry_program(unsigned vector, uint64_t addr, uint32_t data)
{
    mwr(MSIX_TABLE + 16 * vector, 8, addr);
    mwr(MSIX_TABLE + 16 * vector + 8, 4, data);
}

static void msix_enable(uint16_t extra)
{
    wr(DEV, PCI_CFG_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    wr(DEV, msix_cap + 2, 2, PCI_MSIX_CTRL_ENABLE | extra);
}

static void test_msix_capability(void **state)
{
    (void)state;
    msix_setup();
    assert_int_equal(rd(DEV, msix_cap, 1), PCI_CAP_ID_MSIX);
    assert_int_equal(rd(DEV, msix_cap + 2, 2), MSIX_VECTORS - 1);
    assert_int_equal(rd(DEV, msix_cap + 4, 4), MSIX_TABLE | MSIX_BAR);
    assert_int_equal(rd(DEV, msix_cap + 8, 4), MSIX_PBA | MSIX_BAR);
    /* Table size and offsets are read-only; enable and function mask are not. */
    wr(DEV, msix_cap, 4, 0xffffffffu);
    wr(DEV, msix_cap + 4, 4, 0);
    wr(DEV, msix_cap + 8, 4, 0);
    assert_int_equal(rd(DEV, msix_cap + 2, 2), 0xc000 | (MSIX_VECTORS - 1));
    assert_int_equal(rd(DEV, msix_cap + 4, 4), MSIX_TABLE | MSIX_BAR);
    assert_int_equal(rd(DEV, msix_cap + 8, 4), MSIX_PBA | MSIX_BAR);
    assert_true(pci_msix_enabled(dev));
    wr(DEV, msix_cap + 3, 1, 0);
    assert_false(pci_msix_enabled(dev));
    /* After reset every vector is masked, with no message. */
    for (unsigned v = 0; v < MSIX_VECTORS; v++) {
        assert_int_equal(mrd(MSIX_TABLE + 16 * v, 8), 0);
        assert_int_equal(mrd(MSIX_TABLE + 16 * v + 8, 8), (uint64_t)PCI_MSIX_ENTRY_MASKED << 32);
    }
}

static void test_msix_add_refusals(void **state)
{
    (void)state;
    assert_int_equal(pci_dev_add_msix(dev, 0, 2, 0, 2, 0x1000), 0);
    assert_int_equal(pci_dev_add_msix(dev, 2049, 2, 0, 2, 0x3000), 0);
    assert_int_equal(pci_dev_add_msix(dev, 4, 0, 0, 2, 0x1000), 0);        /* I/O BAR */
    assert_int_equal(pci_dev_add_msix(dev, 4, 3, 0, 2, 0x1000), 0);        /* upper half */
    assert_int_equal(pci_dev_add_msix(dev, 4, 4, 0, 2, 0x1000), 0);        /* no BAR */
    assert_int_equal(pci_dev_add_msix(dev, 4, 6, 0, 2, 0x1000), 0);
    assert_int_equal(pci_dev_add_msix(dev, 4, 2, 4, 2, 0x1000), 0);        /* not QWORD aligned */
    assert_int_equal(pci_dev_add_msix(dev, 4, 2, 0, 2, 0x1004), 0);
    assert_int_equal(pci_dev_add_msix(dev, 4, 2, 0x3fc8, 2, 0), 0);        /* past the BAR */
    assert_int_equal(pci_dev_add_msix(dev, 4, 2, 0, 2, 0x4000), 0);
    assert_int_equal(pci_dev_add_msix(dev, 20, 1, 0, 2, 0), 0);            /* 320 bytes in 256 */
    assert_int_equal(pci_dev_add_msix(dev, 4, 2, 0, 2, 0x38), 0);          /* overlaps the table */
    assert_int_equal(pci_dev_add_msix(dev, 4, 2, 0, 2, 0xfffffff8u), 0);
    assert_int_equal(rd(DEV, PCI_CFG_CAP_PTR, 1), 0);                      /* nothing half-built */
    assert_int_not_equal(pci_dev_add_msix(dev, 4, 2, 0, 2, 0x40), 0);      /* just after the table */
    assert_int_equal(pci_dev_add_msix(dev, 4, 2, 0x100, 2, 0x200), 0);     /* a second one */
    /* The bus's pool: 2048 vectors in all. */
    struct pci_dev_desc big = { .vendor_id = 1, .bar = { [0] = { PCI_BAR_MEM32, false, 0x10000 } } };
    struct pci_dev *a = pci_bus_add(&bus, PCI_DEVFN(4, 0), &big);
    struct pci_dev *b = pci_bus_add(&bus, PCI_DEVFN(5, 0), &big);
    assert_int_equal(pci_dev_add_msix(a, 2048, 0, 0, 0, 0x8000), 0);       /* 4 already used */
    assert_int_not_equal(pci_dev_add_msix(a, 2044, 0, 0, 0, 0x8000), 0);
    assert_int_equal(pci_dev_add_msix(b, 1, 0, 0, 0, 0x8000), 0);
}

static void test_msix_table_accesses(void **state)
{
    (void)state;
    msix_setup();
    /* DWORD writes of each field; a QWORD read of the address. */
    mwr(MSIX_TABLE + 16 * 5 + 0, 4, 0xfee01003u);   /* bits 1:0 read 0 */
    mwr(MSIX_TABLE + 16 * 5 + 4, 4, 0x00000001u);
    mwr(MSIX_TABLE + 16 * 5 + 8, 4, 0x00004041u);
    mwr(MSIX_TABLE + 16 * 5 + 12, 4, 0xfffffffeu);  /* reserved bits read 0 */
    assert_int_equal(mrd(MSIX_TABLE + 16 * 5, 8), 0x1fee01000ull);
    assert_int_equal(mrd(MSIX_TABLE + 16 * 5 + 4, 4), 1);
    assert_int_equal(mrd(MSIX_TABLE + 16 * 5 + 8, 8), 0x00004041ull);
    assert_int_equal(mrd(MSIX_TABLE + 16 * 5 + 12, 4), 0);
    /* A QWORD at +8 sets data and vector control. */
    mwr(MSIX_TABLE + 16 * 5 + 8, 8, 0x0000000100004042ull);
    assert_int_equal(mrd(MSIX_TABLE + 16 * 5 + 8, 4), 0x4042);
    assert_int_equal(mrd(MSIX_TABLE + 16 * 5 + 12, 4), 1);
    /* Sizes and alignments §6.8.2 does not define: claimed, ignored, read 0. */
    static const struct { unsigned off, size; } bad[] = {
        { 16 * 5, 1 }, { 16 * 5 + 8, 2 }, { 16 * 5 + 2, 4 }, { 16 * 5 + 4, 8 }, { 16 * 5, 3 },
        { 16 * 5, 16 },
    };
    for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mwr(MSIX_TABLE + bad[i].off, bad[i].size, 0);
        assert_int_equal(mrd(MSIX_TABLE + bad[i].off, bad[i].size), 0);
    }
    assert_int_equal(mrd(MSIX_TABLE + 16 * 5, 8), 0x1fee01000ull);
    assert_int_equal(mrd(MSIX_TABLE + 16 * 5 + 8, 8), 0x0000000100004042ull);
    /* The last entry is in reach, the byte after the table is not the table's. */
    mwr(MSIX_TABLE + 16 * (MSIX_VECTORS - 1) + 8, 4, 0x77);
    assert_int_equal(mrd(MSIX_TABLE + 16 * (MSIX_VECTORS - 1) + 8, 4), 0x77);
    uint64_t v = 0;
    assert_false(pci_msix_read(dev, MSIX_BAR, MSIX_TABLE + 16 * MSIX_VECTORS, 4, &v));
    assert_false(pci_msix_write(dev, MSIX_BAR, 0x1000, 4, 0));
    assert_false(pci_msix_read(dev, 1, MSIX_TABLE, 4, &v));        /* another BAR */
    assert_false(pci_msix_read(dev, MSIX_BAR, UINT64_MAX - 3, 4, &v));
    assert_false(pci_msix_read(dev, MSIX_BAR, MSIX_PBA + 16, 8, &v));
    /* A wide access that starts before the PBA and runs into it is claimed and
     * ignored. */
    assert_true(pci_msix_read(dev, MSIX_BAR, MSIX_PBA - 4, 8, &v));
    assert_int_equal(v, 0);
    /* A function without MSI-X claims nothing. */
    struct pci_dev *plain = pci_bus_add(&bus, PCI_DEVFN(4, 0), &dev_desc);
    assert_false(pci_msix_read(plain, MSIX_BAR, 0, 4, &v));
    assert_false(pci_msix_write(plain, MSIX_BAR, 0, 4, 0));
    assert_int_equal(pci_msix_notify(plain, 0), PCI_MSIX_DISABLED);
}

static void test_msix_pending_and_unmask(void **state)
{
    (void)state;
    msix_setup();
    entry_program(0, 0xfee00000u, 0x30);
    entry_program(65, 0xfee01000u, 0x41);
    /* Disabled: the device is told to use INTx. */
    assert_int_equal(pci_msix_notify(dev, 0), PCI_MSIX_DISABLED);
    msix_enable(0);
    /* Vector 0 is masked: it pends, and the PBA shows it. */
    assert_int_equal(pci_msix_notify(dev, 0), PCI_MSIX_PENDING);
    assert_int_equal(pci_msix_notify(dev, 65), PCI_MSIX_PENDING);
    assert_int_equal(msg_count, 0);
    assert_int_equal(mrd(MSIX_PBA, 8), 1);
    assert_int_equal(mrd(MSIX_PBA + 8, 8), 2);
    assert_int_equal(mrd(MSIX_PBA + 8, 4), 2);
    assert_int_equal(mrd(MSIX_PBA + 12, 4), 0);
    /* The PBA is read-only. */
    mwr(MSIX_PBA, 8, 0);
    mwr(MSIX_PBA + 8, 4, 0xffffffffu);
    mwr(MSIX_PBA, 4, 0xffffffffu);
    assert_int_equal(mrd(MSIX_PBA, 8), 1);
    assert_int_equal(mrd(MSIX_PBA + 8, 8), 2);
    /* Unmasking delivers once, with the entry's message, and clears the bit. */
    mwr(MSIX_TABLE + 12, 4, 0);
    assert_int_equal(msg_count, 1);
    assert_int_equal(msgs[0].addr, 0xfee00000u);
    assert_int_equal(msgs[0].data, 0x30);
    assert_int_equal(mrd(MSIX_PBA, 8), 0);
    mwr(MSIX_TABLE + 12, 4, 0);
    assert_int_equal(msg_count, 1);
    /* Unmasked now: straight through. */
    assert_int_equal(pci_msix_notify(dev, 0), PCI_MSIX_DELIVERED);
    assert_int_equal(msg_count, 2);
    assert_int_equal(mrd(MSIX_PBA, 8), 0);
    /* An unmask by QWORD with new data sends the new data. */
    mwr(MSIX_TABLE + 16 * 65 + 8, 8, 0x42);
    assert_int_equal(msg_count, 3);
    assert_int_equal(msgs[2].addr, 0xfee01000u);
    assert_int_equal(msgs[2].data, 0x42);
    assert_int_equal(mrd(MSIX_PBA + 8, 8), 0);
    /* Past the table: no such vector. */
    assert_int_equal(pci_msix_notify(dev, MSIX_VECTORS), PCI_MSIX_NO_VECTOR);
    assert_int_equal(pci_msix_notify(dev, 0xffff), PCI_MSIX_NO_VECTOR);
    assert_int_equal(msg_count, 3);
}

static void test_msix_function_mask(void **state)
{
    (void)state;
    msix_setup();
    entry_program(1, 0xfee00000u, 0x51);
    entry_program(2, 0xfee00000u, 0x52);
    mwr(MSIX_TABLE + 16 * 1 + 12, 4, 0);
    mwr(MSIX_TABLE + 16 * 2 + 12, 4, 0);
    msix_enable(PCI_MSIX_CTRL_FUNCTION_MASK);
    /* Every vector is masked under the function mask, whatever its own bit. */
    assert_int_equal(pci_msix_notify(dev, 1), PCI_MSIX_PENDING);
    assert_int_equal(pci_msix_notify(dev, 2), PCI_MSIX_PENDING);
    assert_int_equal(pci_msix_notify(dev, 3), PCI_MSIX_PENDING);   /* masked itself too */
    assert_int_equal(msg_count, 0);
    assert_int_equal(mrd(MSIX_PBA, 8), 0xe);
    /* Unmasking a vector under the function mask sends nothing yet. */
    mwr(MSIX_TABLE + 16 * 3 + 12, 4, 0);
    assert_int_equal(msg_count, 0);
    assert_int_equal(mrd(MSIX_PBA, 8), 0xe);
    mwr(MSIX_TABLE + 16 * 3 + 12, 4, PCI_MSIX_ENTRY_MASKED);
    /* Lifting it sends the unmasked pending vectors, in order; 3 stays pending. */
    wr(DEV, msix_cap + 2, 2, PCI_MSIX_CTRL_ENABLE);
    assert_int_equal(msg_count, 2);
    assert_int_equal(msgs[0].data, 0x51);
    assert_int_equal(msgs[1].data, 0x52);
    assert_int_equal(mrd(MSIX_PBA, 8), 0x8);
    /* Bus mastering off: nothing may leave; the message is not kept. */
    wr(DEV, PCI_CFG_COMMAND, 2, PCI_COMMAND_MEMORY);
    assert_int_equal(pci_msix_notify(dev, 1), PCI_MSIX_DROPPED);
    assert_int_equal(msg_count, 2);
    assert_int_equal(mrd(MSIX_PBA, 8), 0x8);
    /* A vector pending from before waits for bus mastering to come back. */
    wr(DEV, msix_cap + 2, 2, PCI_MSIX_CTRL_ENABLE | PCI_MSIX_CTRL_FUNCTION_MASK);
    assert_int_equal(pci_msix_notify(dev, 1), PCI_MSIX_PENDING);
    wr(DEV, msix_cap + 2, 2, PCI_MSIX_CTRL_ENABLE);
    assert_int_equal(msg_count, 2);
    wr(DEV, PCI_CFG_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    assert_int_equal(msg_count, 3);
    assert_int_equal(msgs[2].data, 0x51);
    assert_int_equal(mrd(MSIX_PBA, 8), 0x8);
    /* MSI-X disabled then enabled again: pending bits survive and go out only
     * once deliverable. */
    wr(DEV, msix_cap + 2, 2, 0);
    mwr(MSIX_TABLE + 16 * 3 + 12, 4, 0);
    assert_int_equal(msg_count, 3);
    wr(DEV, msix_cap + 2, 2, PCI_MSIX_CTRL_ENABLE);
    assert_int_equal(msg_count, 4);
    assert_int_equal(mrd(MSIX_PBA, 8), 0);
}

/* ---- INTx ---- */

static void test_intx(void **state)
{
    (void)state;
    pci_dev_set_intx(dev, true);
    assert_int_equal(line_count, 1);
    assert_int_equal(lines[0].devfn, DEV);
    assert_int_equal(lines[0].pin, 1);
    assert_true(lines[0].level);
    assert_true(rd(DEV, PCI_CFG_STATUS, 2) & PCI_STATUS_INTERRUPT);
    pci_dev_set_intx(dev, true);
    assert_int_equal(line_count, 1);
    /* Interrupt disable drops the line, the status bit stays (§6.2.3). */
    wr(DEV, PCI_CFG_COMMAND, 2, PCI_COMMAND_INTX_DISABLE);
    assert_int_equal(line_count, 2);
    assert_false(lines[1].level);
    assert_true(rd(DEV, PCI_CFG_STATUS, 2) & PCI_STATUS_INTERRUPT);
    pci_dev_set_intx(dev, false);
    pci_dev_set_intx(dev, true);
    assert_int_equal(line_count, 2);
    wr(DEV, PCI_CFG_COMMAND, 2, 0);
    assert_int_equal(line_count, 3);
    assert_true(lines[2].level);
    pci_dev_set_intx(dev, false);
    assert_int_equal(line_count, 4);
    assert_false(lines[3].level);
    assert_false(rd(DEV, PCI_CFG_STATUS, 2) & PCI_STATUS_INTERRUPT);
    /* With MSI-X enabled the function may not use INTx. */
    msix_setup();
    pci_dev_set_intx(dev, true);
    assert_int_equal(line_count, 5);
    wr(DEV, msix_cap + 2, 2, PCI_MSIX_CTRL_ENABLE);
    assert_int_equal(line_count, 6);
    assert_false(lines[5].level);
    pci_dev_set_intx(dev, false);
    pci_dev_set_intx(dev, true);
    assert_int_equal(line_count, 6);
    wr(DEV, msix_cap + 2, 2, 0);
    assert_int_equal(line_count, 7);
    assert_true(lines[6].level);
    /* No pin, no line, no status. */
    struct pci_dev *quiet = pci_bus_add(&bus, 0, &bridge_desc);
    pci_dev_set_intx(quiet, true);
    assert_int_equal(line_count, 7);
    assert_int_equal(rd(0, PCI_CFG_STATUS, 2), 0);
    wr(0, PCI_CFG_COMMAND, 2, PCI_COMMAND_INTX_DISABLE);
    assert_int_equal(rd(0, PCI_CFG_COMMAND, 2), 0x0006);
}

/* ---- assignment ---- */

/* A mixed set of functions: dev (I/O 32, mem32 256, mem64 pf 16 KiB) plus these. */
static void add_assign_set(void)
{
    static const struct pci_dev_desc a = { .vendor_id = 1, .bar = {
        [0] = { PCI_BAR_MEM64, false, 1ull << 33 },
        [2] = { PCI_BAR_MEM32, false, 0x100000 },
        [3] = { PCI_BAR_IO, false, 256 },
        [4] = { PCI_BAR_MEM32, true, 16 },
    } };
    static const struct pci_dev_desc b = { .vendor_id = 2, .bar = {
        [1] = { PCI_BAR_MEM64, false, 0x2000 },
        [3] = { PCI_BAR_IO, false, 4 },
        [5] = { PCI_BAR_MEM32, false, 0x10000 },
    } };
    assert_non_null(pci_bus_add(&bus, PCI_DEVFN(1, 0), &bridge_desc));  /* no BARs */
    assert_non_null(pci_bus_add(&bus, PCI_DEVFN(4, 0), &a));
    assert_non_null(pci_bus_add(&bus, PCI_DEVFN(4, 3), &b));
}

struct placed { uint64_t base, size; enum pci_bar_type type; };

static unsigned collect(struct placed *p)
{
    unsigned n = 0;
    for (unsigned f = 0; f < bus.count; f++) {
        struct pci_dev *d = &bus.dev[f];
        for (unsigned i = 0; i < PCI_BARS; i++) {
            if (d->bar[i].type == PCI_BAR_NONE)
                continue;
            assert_false(pci_dev_bar(d, i, &p[n].base));   /* decode left off */
            p[n].size = d->bar[i].size;
            p[n].type = d->bar[i].type;
            n++;
        }
    }
    return n;
}

/* What a BAR takes of its window: its size, at least a page for memory. */
static uint64_t footprint(const struct placed *p)
{
    return p->type == PCI_BAR_IO || p->size >= 0x1000 ? p->size : 0x1000;
}

static void check_placement(const struct placed *p, unsigned n, bool have64)
{
    for (unsigned i = 0; i < n; i++) {
        assert_int_equal(p[i].base & (footprint(&p[i]) - 1), 0);
        uint64_t last = p[i].base + p[i].size - 1;
        if (p[i].type == PCI_BAR_IO)
            assert_true(p[i].base >= 0xc000 && last <= 0xffff);
        else if (p[i].type == PCI_BAR_MEM64 && have64)
            assert_true(p[i].base >= 0x800000000ull && last <= 0xfffffffffull);
        else
            assert_true(p[i].base >= 0x80000000ull && last <= 0xfebfffffull);
        for (unsigned j = 0; j < i; j++)
            if ((p[i].type == PCI_BAR_IO) == (p[j].type == PCI_BAR_IO))
                assert_false(overlaps(p[i].base, footprint(&p[i]), p[j].base, footprint(&p[j])));
    }
}

static void test_assign_alignment(void **state)
{
    (void)state;
    add_assign_set();
    map_count = 0;
    assert_true(pci_bus_assign(&bus, 0x80000000ull, 0xfebfffffull, 0x800000000ull, 0xfffffffffull,
                               0xc000, 0xffff));
    struct placed p[32];
    unsigned n = collect(p);
    assert_int_equal(n, 10);
    check_placement(p, n, true);
    /* Each BAR that moved was reported once, not decoding. */
    for (unsigned i = 0; i < map_count; i++)
        assert_false(maps[i].enabled);
    /* The registers keep their type bits; a 64-bit BAR's high half is there. */
    assert_int_equal(bar_reg(2) & 0xf, 0xc);
    assert_int_not_equal(bar_reg(3), 0);
    assert_int_equal(bar_reg(0) & 3, 1);
}

static void test_assign_without_64bit_window(void **state)
{
    (void)state;
    /* The 64-bit BARs (dev's 16 KiB, b's 8 KiB) go below 4 GiB, high half 0. */
    static const struct pci_dev_desc b = { .vendor_id = 2, .bar = {
        [1] = { PCI_BAR_MEM64, false, 0x2000 },
        [3] = { PCI_BAR_IO, false, 4 },
    } };
    assert_non_null(pci_bus_add(&bus, PCI_DEVFN(4, 0), &b));
    assert_true(pci_bus_assign(&bus, 0x80000000ull, 0xfebfffffull, 0, 0, 0xc000, 0xffff));
    struct placed p[32];
    unsigned n = collect(p);
    assert_int_equal(n, 5);
    check_placement(p, n, false);
    assert_int_equal(bar_reg(3), 0);
    assert_int_equal(rd(PCI_DEVFN(4, 0), 0x18, 4), 0);
    assert_int_not_equal(rd(PCI_DEVFN(4, 0), 0x14, 4), 0);
}

static void test_assign_exact_fit(void **state)
{
    (void)state;
    /* dev alone needs: I/O 32 bytes, mem32 one page, mem64 16 KiB. */
    assert_true(pci_bus_assign(&bus, 0xe0000000u, 0xe0000fffu, 0x100000000ull, 0x100003fffull,
                               0x1000, 0x101f));
    uint64_t base;
    pci_dev_bar(dev, 0, &base);
    assert_int_equal(base, 0x1000);
    pci_dev_bar(dev, 1, &base);
    assert_int_equal(base, 0xe0000000u);
    pci_dev_bar(dev, 2, &base);
    assert_int_equal(base, 0x100000000ull);
    /* An unaligned base is rounded up to each BAR's alignment. */
    assert_true(pci_bus_assign(&bus, 0xe0000001u, 0xe0001fffu, 0x100000001ull, 0x100007fffull,
                               0x1001, 0x103f));
    pci_dev_bar(dev, 0, &base);
    assert_int_equal(base, 0x1020);
    pci_dev_bar(dev, 1, &base);
    assert_int_equal(base, 0xe0001000u);
    pci_dev_bar(dev, 2, &base);
    assert_int_equal(base, 0x100004000ull);
    /* A window that ends at the top of the address space. */
    assert_true(pci_bus_assign(&bus, 0xfffff000u, 0xffffffffu, 0xffffffffffffc000ull, UINT64_MAX,
                               0xffe0, 0xffff));
    pci_dev_bar(dev, 2, &base);
    assert_int_equal(base, 0xffffffffffffc000ull);
    /* Used up to 2^64 - 1, that window takes no further BAR. */
    struct pci_dev_desc more = { .vendor_id = 1, .bar = { [0] = { PCI_BAR_MEM64, false, 0x2000 } } };
    assert_non_null(pci_bus_add(&bus, PCI_DEVFN(4, 0), &more));
    assert_false(pci_bus_assign(&bus, 0xfffff000u, 0xffffffffu, 0xffffffffffffc000ull, UINT64_MAX,
                                0xffe0, 0xffff));
    assert_true(pci_bus_assign(&bus, 0xfffff000u, 0xffffffffu, 0xffffffffffff8000ull, UINT64_MAX,
                               0xffe0, 0xffff));
    pci_dev_bar(dev, 2, &base);
    assert_int_equal(base, 0xffffffffffff8000ull);
    pci_dev_bar(pci_bus_dev(&bus, PCI_DEVFN(4, 0)), 0, &base);
    assert_int_equal(base, 0xffffffffffffc000ull);
}

static void test_assign_refusal(void **state)
{
    (void)state;
    add_assign_set();
    assert_true(pci_bus_assign(&bus, 0x80000000ull, 0xfebfffffull, 0x800000000ull, 0xfffffffffull,
                               0xc000, 0xffff));
    static uint8_t before[PCI_BUS_FUNCTIONS_MAX][PCI_CONFIG_SIZE];
    for (unsigned f = 0; f < bus.count; f++)
        memcpy(before[f], bus.dev[f].config, PCI_CONFIG_SIZE);
    map_count = 0;
    static const uint64_t w[][6] = {
        /* mmio32 too small for 1 MiB + 64 KiB + pages (and 64-bit BARs elsewhere) */
        { 0xfe000000ull, 0xfe0fffffull, 0x800000000ull, 0xfffffffffull, 0xc000, 0xffff },
        /* the 64-bit window too small for 8 GiB */
        { 0x80000000ull, 0xfebfffffull, 0x800000000ull, 0x9ffffffffull, 0xc000, 0xffff },
        /* no 64-bit window: 8 GiB cannot go below 4 GiB */
        { 0x80000000ull, 0xfebfffffull, 0, 0, 0xc000, 0xffff },
        /* I/O window too small, then missing */
        { 0x80000000ull, 0xfebfffffull, 0x800000000ull, 0xfffffffffull, 0xc000, 0xc0ff },
        { 0x80000000ull, 0xfebfffffull, 0x800000000ull, 0xfffffffffull, 0, 0 },
        /* out of their spaces */
        { 0x80000000ull, 0x1ffffffffull, 0x800000000ull, 0xfffffffffull, 0xc000, 0xffff },
        { 0x80000000ull, 0xfebfffffull, 0x800000000ull, 0xfffffffffull, 0xc000, 0x1ffff },
        /* a window whose alignment would run past 2^64 */
        { 0x80000000ull, 0xfebfffffull, 0xfffffffffffff001ull, UINT64_MAX, 0xc000, 0xffff },
    };
    for (unsigned i = 0; i < sizeof w / sizeof w[0]; i++) {
        assert_false(pci_bus_assign(&bus, w[i][0], w[i][1], w[i][2], w[i][3], w[i][4], w[i][5]));
        for (unsigned f = 0; f < bus.count; f++)
            assert_memory_equal(before[f], bus.dev[f].config, PCI_CONFIG_SIZE);
    }
    assert_int_equal(map_count, 0);
}

/* ---- a guest moving a BAR at run time ---- */

/* The monitor's side: one handler per decoding BAR, kept where map says. */
static struct { bool on; uint64_t base; } handler[PCI_BARS];

static void monitor_map(void *ctx, unsigned bar, uint64_t old_base, uint64_t new_base, bool enabled)
{
    (void)ctx;
    assert_true(bar < PCI_BARS);
    if (handler[bar].on)
        assert_int_equal(handler[bar].base, old_base);
    handler[bar].on = enabled;
    handler[bar].base = new_base;
}

/* Which BAR of dev a guest-physical access at addr reaches, -1 for none. */
static int monitor_lookup(uint64_t addr)
{
    for (unsigned i = 1; i < PCI_BARS; i++)
        if (handler[i].on && overlaps(addr, 1, handler[i].base, dev->bar[i].size))
            return (int)i;
    return -1;
}

static void test_guest_moves_bar(void **state)
{
    (void)state;
    memset(handler, 0, sizeof handler);
    dev->map = monitor_map;
    msix_setup();
    assert_true(pci_bus_assign(&bus, 0xc0000000u, 0xfebfffffu, 0x800000000ull, 0xfffffffffull, 0xc000, 0xffff));
    uint64_t boot_base;
    pci_dev_bar(dev, 2, &boot_base);
    assert_true(boot_base >= 0x800000000ull);
    /* The guest's driver: decode on, program vector 0, enable MSI-X. */
    wr(DEV, PCI_CFG_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    assert_int_equal(monitor_lookup(boot_base + MSIX_TABLE), 2);
    entry_program(0, 0xfee00000u, 0x61);
    mwr(MSIX_TABLE + 12, 4, 0);
    wr(DEV, msix_cap + 2, 2, PCI_MSIX_CTRL_ENABLE);

    /* Linux's rescan of the BAR and its move below 4 GiB: decode off, size the
     * BAR, write the new address half by half, decode on. */
    wr(DEV, PCI_CFG_COMMAND, 2, PCI_COMMAND_MASTER);
    assert_int_equal(monitor_lookup(boot_base), -1);
    uint32_t lo = bar_reg(2), hi = bar_reg(3);
    wr(DEV, 0x18, 4, 0xffffffffu);
    wr(DEV, 0x1c, 4, 0xffffffffu);
    uint64_t mask = (uint64_t)bar_reg(3) << 32 | (bar_reg(2) & ~0xfu);
    assert_int_equal(~mask + 1, 16384);
    wr(DEV, 0x18, 4, lo);
    wr(DEV, 0x1c, 4, hi);
    for (unsigned i = 0; i < PCI_BARS; i++)
        assert_false(handler[i].on);   /* nothing decoded while sizing */
    wr(DEV, 0x18, 4, 0xd0004000u);
    wr(DEV, 0x1c, 4, 0);
    wr(DEV, PCI_CFG_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    assert_int_equal(monitor_lookup(0xd0004000u + MSIX_TABLE), 2);
    assert_int_equal(monitor_lookup(boot_base + MSIX_TABLE), -1);
    assert_int_equal(monitor_lookup(0xd0004000u + 16384), -1);
    /* The table moved with the BAR: what the guest programmed is still there and
     * interrupts still reach it. */
    assert_int_equal(mrd(MSIX_TABLE + 8, 4), 0x61);
    assert_int_equal(pci_msix_notify(dev, 0), PCI_MSIX_DELIVERED);
    assert_int_equal(msgs[msg_count - 1].data, 0x61);
    /* And a move with decode on, in one dword, follows at once. */
    wr(DEV, 0x18, 4, 0xd0008000u);
    assert_int_equal(monitor_lookup(0xd0008000u), 2);
    assert_int_equal(monitor_lookup(0xd0004000u), -1);
}

static void test_reset(void **state)
{
    (void)state;
    msix_setup();
    assert_true(pci_bus_assign(&bus, 0xc0000000u, 0xfebfffffu, 0x800000000ull, 0xfffffffffull, 0xc000, 0xffff));
    wr(DEV, PCI_CFG_COMMAND, 2, 0x0007);
    wr(DEV, PCI_CFG_INTERRUPT_LINE, 1, 11);
    entry_program(0, 0xfee00000u, 0x61);
    msix_enable(PCI_MSIX_CTRL_FUNCTION_MASK);
    pci_msix_notify(dev, 0);
    wr(DEV, msix_cap + 2, 2, 0);
    pci_dev_set_intx(dev, true);
    pci_dev_status_set(dev, 0x2000);
    assert_int_equal(line_count, 1);
    map_count = 0;
    pci_bus_reset(&bus);
    assert_int_equal(rd(DEV, PCI_CFG_COMMAND, 4), PCI_STATUS_CAP_LIST << 16);
    assert_int_equal(bar_reg(0), 1);
    assert_int_equal(bar_reg(1), 0);
    assert_int_equal(bar_reg(2), 0xc);
    assert_int_equal(bar_reg(3), 0);
    assert_int_equal(rd(DEV, PCI_CFG_INTERRUPT_LINE, 1), 0);
    assert_int_equal(rd(DEV, 0, 4), 0x10421af4u);
    assert_int_equal(rd(DEV, msix_cap + 2, 2), MSIX_VECTORS - 1);
    assert_int_equal(mrd(MSIX_TABLE, 8), 0);
    assert_int_equal(mrd(MSIX_TABLE + 8, 8), (uint64_t)PCI_MSIX_ENTRY_MASKED << 32);
    assert_int_equal(mrd(MSIX_PBA, 8), 0);
    /* Three BARs stopped decoding and went back to 0; the line dropped. */
    assert_int_equal(map_count, 3);
    for (unsigned i = 0; i < 3; i++) {
        assert_false(maps[i].enabled);
        assert_int_equal(maps[i].new_base, 0);
    }
    assert_int_equal(line_count, 2);
    assert_false(lines[1].level);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_header_read_only, setup),
        cmocka_unit_test_setup(test_status_w1c, setup),
        cmocka_unit_test_setup(test_absent_and_bad_accesses, setup),
        cmocka_unit_test_setup(test_host_bridge_and_multifunction, setup),
        cmocka_unit_test_setup(test_add_refusals, setup),
        cmocka_unit_test_setup(test_bar_sizing, setup),
        cmocka_unit_test_setup(test_bar_relocation_calls_map, setup),
        cmocka_unit_test_setup(test_decode_gated_by_command, setup),
        cmocka_unit_test_setup(test_capability_walk, setup),
        cmocka_unit_test_setup(test_capability_body, setup),
        cmocka_unit_test_setup(test_msix_capability, setup),
        cmocka_unit_test_setup(test_msix_add_refusals, setup),
        cmocka_unit_test_setup(test_msix_table_accesses, setup),
        cmocka_unit_test_setup(test_msix_pending_and_unmask, setup),
        cmocka_unit_test_setup(test_msix_function_mask, setup),
        cmocka_unit_test_setup(test_intx, setup),
        cmocka_unit_test_setup(test_assign_alignment, setup),
        cmocka_unit_test_setup(test_assign_without_64bit_window, setup),
        cmocka_unit_test_setup(test_assign_exact_fit, setup),
        cmocka_unit_test_setup(test_assign_refusal, setup),
        cmocka_unit_test_setup(test_guest_moves_bar, setup),
        cmocka_unit_test_setup(test_reset, setup),
    };
    return cmocka_run_group_tests_name("pci_bus", tests, NULL, NULL);
}
