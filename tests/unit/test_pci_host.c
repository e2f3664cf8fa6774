/* The PCI host bridge (configuration mechanism #1) on the I/O bus, with the reset
 * control register at 0xcf9 claimed byte-wide beside it as the monitor does; and
 * the I/O bus's width-aware ranges themselves. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/io.c"
#include "vmm/dev/pci_host.c"
#include "vmm/snap.c"
#include "snap_test.h"

static struct io_bus bus;
static struct pci_host host;

/* A stand-in for pc_misc's reset control register: counts what reaches it. */
static struct {
    uint8_t value;
    unsigned reads, writes;
} rcr;

static uint8_t rcr_read(void *ctx, uint16_t port)
{
    (void)ctx;
    assert_int_equal(port, 0xcf9);
    rcr.reads++;
    return rcr.value;
}

static void rcr_write(void *ctx, uint16_t port, uint8_t value)
{
    (void)ctx;
    assert_int_equal(port, 0xcf9);
    rcr.writes++;
    rcr.value = value;
}

static bool host_io(void *ctx, uint16_t port, unsigned size, bool write, uint32_t *value)
{
    return pci_host_io(ctx, port, size, write, value);
}

static int setup(void **state)
{
    (void)state;
    memset(&bus, 0, sizeof bus);
    memset(&rcr, 0, sizeof rcr);
    pci_host_init(&host);
    assert_true(io_bus_claim_wide(&bus, PCI_HOST_PORT_FIRST, PCI_HOST_PORT_LAST, host_io, &host));
    assert_true(io_bus_claim(&bus, 0xcf9, 0xcf9, rcr_read, rcr_write, NULL));
    return 0;
}

static uint32_t cfg_read(uint8_t b, uint8_t d, uint8_t f, unsigned reg, unsigned size)
{
    io_bus_write(&bus, 0xcf8, 4, 0x80000000u | (uint32_t)b << 16 | (uint32_t)d << 11 |
                 (uint32_t)f << 8 | (reg & 0xfc));
    return io_bus_read(&bus, (uint16_t)(0xcfc + (reg & 3)), size);
}

static void cfg_write(uint8_t b, uint8_t d, uint8_t f, unsigned reg, unsigned size, uint32_t v)
{
    io_bus_write(&bus, 0xcf8, 4, 0x80000000u | (uint32_t)b << 16 | (uint32_t)d << 11 |
                 (uint32_t)f << 8 | (reg & 0xfc));
    io_bus_write(&bus, (uint16_t)(0xcfc + (reg & 3)), size, v);
}

static void test_address_register(void **state)
{
    (void)state;
    assert_int_equal(io_bus_read(&bus, 0xcf8, 4), 0);
    io_bus_write(&bus, 0xcf8, 4, 0xffffffffu);
    /* Reserved bits 30:24 and 1:0 read 0. */
    assert_int_equal(io_bus_read(&bus, 0xcf8, 4), PCI_HOST_ADDRESS_MASK);
    io_bus_write(&bus, 0xcf8, 4, 0x80001234u);
    assert_int_equal(io_bus_read(&bus, 0xcf8, 4), 0x80001234u);
    /* The dword never reaches the reset register at 0xcf9. */
    io_bus_write(&bus, 0xcf8, 4, 0x80000600u);
    assert_int_equal(rcr.writes, 0);
    assert_int_equal(rcr.reads, 0);
}

static void test_narrow_accesses_are_io_cycles(void **state)
{
    (void)state;
    io_bus_write(&bus, 0xcf8, 4, 0x80000000u);
    /* A byte at 0xcf9 is the reset register's, and leaves CONFIG_ADDRESS alone. */
    io_bus_write(&bus, 0xcf9, 1, 0x02);
    assert_int_equal(rcr.writes, 1);
    assert_int_equal(rcr.value, 0x02);
    rcr.value = 0x0e;
    assert_int_equal(io_bus_read(&bus, 0xcf9, 1), 0x0e);
    assert_int_equal(rcr.reads, 1);
    /* Bytes and words at 0xcf8/0xcfa/0xcfb are no CONFIG_ADDRESS access: nothing
     * decodes them but 0xcf9's byte lane. */
    io_bus_write(&bus, 0xcfb, 1, 0x01);
    io_bus_write(&bus, 0xcf8, 1, 0x00);
    io_bus_write(&bus, 0xcfa, 2, 0x0000);
    assert_int_equal(io_bus_read(&bus, 0xcf8, 1), 0xff);
    assert_int_equal(io_bus_read(&bus, 0xcfa, 1), 0xff);
    io_bus_write(&bus, 0xcf8, 2, 0x0400);
    assert_int_equal(rcr.writes, 2);
    assert_int_equal(rcr.value, 0x04);
    assert_int_equal(io_bus_read(&bus, 0xcf8, 2), 0x04ff);
    assert_int_equal(io_bus_read(&bus, 0xcf8, 4), 0x80000000u);
}

static void test_bridge_identity(void **state)
{
    (void)state;
    assert_int_equal(cfg_read(0, 0, 0, 0x00, 4), 0x12378086u);
    assert_int_equal(cfg_read(0, 0, 0, 0x00, 2), 0x8086);
    assert_int_equal(cfg_read(0, 0, 0, 0x02, 2), 0x1237);
    assert_int_equal(cfg_read(0, 0, 0, 0x01, 1), 0x80);
    assert_int_equal(cfg_read(0, 0, 0, 0x08, 4), 0x06000002u);
    assert_int_equal(cfg_read(0, 0, 0, 0x0a, 2), 0x0600);   /* host bridge class */
    assert_int_equal(cfg_read(0, 0, 0, 0x0e, 1), 0x00);     /* type 0, one function */
    assert_int_equal(cfg_read(0, 0, 0, 0x04, 2), 0x0006);
    assert_int_equal(cfg_read(0, 0, 0, 0x06, 2), 0x0000);   /* no capabilities */
    for (unsigned bar = 0x10; bar <= 0x24; bar += 4)
        assert_int_equal(cfg_read(0, 0, 0, bar, 4), 0);
    assert_int_equal(cfg_read(0, 0, 0, 0x34, 1), 0);
    assert_int_equal(cfg_read(0, 0, 0, 0x3d, 1), 0);        /* no interrupt pin */
    assert_int_equal(cfg_read(0, 0, 0, 0xfc, 4), 0);
}

static void test_absent_functions(void **state)
{
    (void)state;
    assert_int_equal(cfg_read(0, 1, 0, 0x00, 4), 0xffffffffu);
    assert_int_equal(cfg_read(0, 31, 7, 0x00, 4), 0xffffffffu);
    assert_int_equal(cfg_read(0, 0, 1, 0x00, 4), 0xffffffffu);
    assert_int_equal(cfg_read(1, 0, 0, 0x00, 4), 0xffffffffu);
    assert_int_equal(cfg_read(255, 0, 0, 0x0a, 2), 0xffff);
    assert_int_equal(cfg_read(0, 5, 0, 0x0e, 1), 0xff);
    /* Writes to them go nowhere, and do not land on the bridge. */
    cfg_write(0, 1, 0, 0x3c, 1, 0x0b);
    cfg_write(1, 0, 0, 0x3c, 1, 0x0b);
    assert_int_equal(cfg_read(0, 0, 0, 0x3c, 1), 0);
    assert_int_equal(cfg_read(0, 1, 0, 0x3c, 1), 0xff);
}

static void test_disabled_address_reads_ones(void **state)
{
    (void)state;
    io_bus_write(&bus, 0xcf8, 4, 0x00000000u);  /* enable bit clear */
    assert_int_equal(io_bus_read(&bus, 0xcfc, 4), 0xffffffffu);
    assert_int_equal(io_bus_read(&bus, 0xcfe, 2), 0xffff);
    io_bus_write(&bus, 0xcf8, 4, 0x0000003cu);
    io_bus_write(&bus, 0xcfc, 1, 0x05);
    io_bus_write(&bus, 0xcf8, 4, 0x8000003cu);
    assert_int_equal(io_bus_read(&bus, 0xcfc, 1), 0);
}

static void test_data_lanes_and_writes(void **state)
{
    (void)state;
    /* Linux's read_pci_config_byte/_16: the low address bits select the lane. */
    io_bus_write(&bus, 0xcf8, 4, 0x80000008u);
    assert_int_equal(io_bus_read(&bus, 0xcff, 1), 0x06);
    assert_int_equal(io_bus_read(&bus, 0xcfb, 1), 0xff); /* not a data lane */
    assert_int_equal(io_bus_read(&bus, 0xcfe, 2), 0x0600);
    assert_int_equal(io_bus_read(&bus, 0xcfd, 1), 0x00);
    /* Writable holding registers: cache line size, latency timer, interrupt line. */
    cfg_write(0, 0, 0, 0x0c, 2, 0x4010);
    assert_int_equal(cfg_read(0, 0, 0, 0x0c, 4), 0x00004010u);
    cfg_write(0, 0, 0, 0x3c, 4, 0xffffff0b);
    assert_int_equal(cfg_read(0, 0, 0, 0x3c, 4), 0x0000000bu);
    /* Read-only ones ignore writes. */
    cfg_write(0, 0, 0, 0x00, 4, 0);
    cfg_write(0, 0, 0, 0x04, 2, 0);
    cfg_write(0, 0, 0, 0x0e, 1, 0x80);
    cfg_write(0, 0, 0, 0x10, 4, 0xffffffffu); /* BAR sizing: nothing implemented */
    assert_int_equal(cfg_read(0, 0, 0, 0x00, 4), 0x12378086u);
    assert_int_equal(cfg_read(0, 0, 0, 0x04, 2), 0x0006);
    assert_int_equal(cfg_read(0, 0, 0, 0x0e, 1), 0);
    assert_int_equal(cfg_read(0, 0, 0, 0x10, 4), 0);
    /* Reset state comes back with init. */
    pci_host_init(&host);
    assert_int_equal(io_bus_read(&bus, 0xcf8, 4), 0);
    assert_int_equal(cfg_read(0, 0, 0, 0x3c, 1), 0);
}

static void test_straddling_and_bad_sizes(void **state)
{
    (void)state;
    io_bus_write(&bus, 0xcf8, 4, 0x80000000u);
    /* Past 0xcff, or starting below 0xcfc: no configuration cycle. */
    assert_int_equal(io_bus_read(&bus, 0xcff, 2), 0xffff);
    assert_int_equal(io_bus_read(&bus, 0xcfd, 4), 0xffffffffu);
    assert_int_equal(io_bus_read(&bus, 0xcfe, 4), 0xffffffffu);
    io_bus_write(&bus, 0xcfe, 4, 0);
    io_bus_write(&bus, 0xcfa, 4, 0);   /* CFA, CFB, then data lanes 0-1 as bytes */
    assert_int_equal(rcr.writes, 0);
    assert_int_equal(io_bus_read(&bus, 0xcf8, 4), 0x80000000u);
    /* The model's own calls reject sizes and offsets the hardware cannot produce. */
    uint32_t v = 0;
    assert_false(pci_host_io(&host, 0xcf8, 3, false, &v));
    assert_false(pci_host_io(&host, 0xcfc, 0, false, &v));
    assert_false(pci_host_io(&host, 0xcf9, 4, true, &v));
    assert_int_equal(pci_host_config_read(&host, 0, 0, 0, 256, 1), 0xffffffffu);
    assert_int_equal(pci_host_config_read(&host, 0, 0, 0, 2, 4), 0xffffffffu);
    assert_int_equal(pci_host_config_read(&host, 0, 0, 0, 0, 3), 0xffffffffu);
    pci_host_config_write(&host, 0, 0, 0, 0x3b, 2, 0xffff); /* crosses a dword */
    assert_int_equal(cfg_read(0, 0, 0, 0x3c, 1), 0);
}

/* Linux's pci_check_type1() and pci_sanity_check(), then its type-2 probe, which
 * must fail on a mechanism-#1 bridge. */
static void test_linux_probe(void **state)
{
    (void)state;
    io_bus_write(&bus, 0xcfb, 1, 0x01);
    uint32_t saved = io_bus_read(&bus, 0xcf8, 4);
    io_bus_write(&bus, 0xcf8, 4, 0x80000000u);
    assert_int_equal(io_bus_read(&bus, 0xcf8, 4), 0x80000000u);
    unsigned hosts = 0, found = 0;
    for (unsigned d = 0; d < 32; d++) {
        uint32_t class = cfg_read(0, (uint8_t)d, 0, 0x0a, 2);
        uint32_t vendor = cfg_read(0, (uint8_t)d, 0, 0x00, 2);
        if (vendor != 0xffff)
            found++;
        if (class == 0x0600)
            hosts++;
    }
    assert_int_equal(hosts, 1);
    assert_int_equal(found, 1);
    io_bus_write(&bus, 0xcf8, 4, saved);
    assert_int_equal(io_bus_read(&bus, 0xcf8, 4), saved);

    io_bus_write(&bus, 0xcfb, 1, 0x00);
    io_bus_write(&bus, 0xcf8, 1, 0x00);
    io_bus_write(&bus, 0xcfa, 1, 0x00);
    assert_false(io_bus_read(&bus, 0xcf8, 1) == 0x00 && io_bus_read(&bus, 0xcfa, 1) == 0x00);
    assert_int_equal(rcr.writes, 0);
}

static bool never(void *ctx, uint16_t port, unsigned size, bool write, uint32_t *value)
{
    (void)ctx; (void)port; (void)size; (void)write; (void)value;
    return false;
}

static uint8_t byte_read(void *ctx, uint16_t port)
{
    (void)ctx;
    return (uint8_t)port;
}

static void test_io_bus_wide_claims(void **state)
{
    (void)state;
    struct io_bus b = { 0 };
    /* Wide ranges may overlap byte ranges but not each other. */
    assert_true(io_bus_claim(&b, 0x100, 0x107, byte_read, NULL, NULL));
    assert_true(io_bus_claim_wide(&b, 0x100, 0x103, never, NULL));
    assert_false(io_bus_claim_wide(&b, 0x103, 0x104, never, NULL));
    assert_false(io_bus_claim_wide(&b, 0x20, 0x10, never, NULL));
    assert_false(io_bus_claim_wide(&b, 0x20, 0x20, NULL, NULL));
    for (uint16_t p = 0x200; b.wide_count < IO_BUS_WIDE_MAX; p += 0x10)
        assert_true(io_bus_claim_wide(&b, p, p, never, NULL));
    assert_false(io_bus_claim_wide(&b, 0x300, 0x300, never, NULL));
    /* A declining wide handler leaves the access to the byte ranges, unchanged. */
    assert_int_equal(io_bus_read(&b, 0x100, 4), 0x03020100u);
    assert_int_equal(io_bus_read(&b, 0x106, 4), 0xffff0706u);
    assert_int_equal(io_bus_read(&b, 0x200, 2), 0xffff);
}

/* ---- snapshots ---- */

static size_t save_host(const struct pci_host *x, uint8_t *buf)
{
    struct snap st;
    snap_save_begin(&st, buf, SNAP_TEST_BUF);
    assert_true(pci_host_save(x, &st));
    size_t n = snap_save_end(&st);
    assert_true(n > SNAP_HEADER_BYTES);
    return n;
}

static bool load_host(void *model, struct snap *st)
{
    return pci_host_load(model, st);
}

/* The header registers programmed, and CONFIG_ADDRESS left pointing at the
 * interrupt line register, as between the two halves of a read. */
static void busy_host(void)
{
    cfg_write(0, 0, 0, 0x0c, 2, 0x4010);
    cfg_write(0, 0, 0, 0x3c, 1, 0x0b);
    io_bus_write(&bus, 0xcf8, 4, 0x8000003cu);
}

static void test_snapshot_round_trip(void **state)
{
    (void)state;
    busy_host();
    uint8_t a[SNAP_TEST_BUF], b[SNAP_TEST_BUF];
    size_t n = save_host(&host, a);
    struct pci_host q;
    pci_host_init(&q);
    struct snap st;
    assert_true(snap_load_begin(&st, a, n));
    assert_true(pci_host_load(&q, &st));
    assert_true(snap_load_end(&st));
    assert_int_equal(save_host(&q, b), n);
    assert_memory_equal(a, b, n);
    /* The guest's half-done access goes on: CONFIG_DATA reaches the same register. */
    uint32_t v = 0;
    assert_true(pci_host_io(&q, 0xcfc, 1, false, &v));
    assert_int_equal(v, 0x0b);
    assert_true(pci_host_io(&q, 0xcf8, 4, false, &v));
    assert_int_equal(v, 0x8000003cu);
    assert_int_equal(pci_host_config_read(&q, 0, 0, 0, 0x0c, 2), 0x4010);
}

static void test_snapshot_truncated(void **state)
{
    (void)state;
    busy_host();
    uint8_t a[SNAP_TEST_BUF];
    size_t n = save_host(&host, a);
    struct pci_host q;
    pci_host_init(&q);
    pci_host_config_write(&q, 0, 0, 0, 0x0d, 1, 0x20);
    snap_test_truncations(a, n, load_host, &q, sizeof q);
    snap_test_extended(a, n, load_host, &q, sizeof q);
}

static void test_snapshot_tampered(void **state)
{
    (void)state;
    busy_host();
    uint8_t a[SNAP_TEST_BUF];
    size_t n = save_host(&host, a);
    snap_test_flips(a, n);
    static const uint32_t bad_addresses[] = { 0x8000003du, 0x8100003cu, 0x7f000000u };
    for (unsigned i = 0; i < 3; i++) {
        struct pci_host bad = host, q;
        bad.address = bad_addresses[i];
        n = save_host(&bad, a);
        pci_host_init(&q);
        snap_test_refused(a, n, load_host, &q, sizeof q, "pcihost: CONFIG_ADDRESS read-only bits set");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_address_register, setup),
        cmocka_unit_test_setup(test_narrow_accesses_are_io_cycles, setup),
        cmocka_unit_test_setup(test_bridge_identity, setup),
        cmocka_unit_test_setup(test_absent_functions, setup),
        cmocka_unit_test_setup(test_disabled_address_reads_ones, setup),
        cmocka_unit_test_setup(test_data_lanes_and_writes, setup),
        cmocka_unit_test_setup(test_straddling_and_bad_sizes, setup),
        cmocka_unit_test_setup(test_linux_probe, setup),
        cmocka_unit_test(test_io_bus_wide_claims),
        cmocka_unit_test_setup(test_snapshot_round_trip, setup),
        cmocka_unit_test_setup(test_snapshot_truncated, setup),
        cmocka_unit_test_setup(test_snapshot_tampered, setup),
    };
    return cmocka_run_group_tests_name("pci_host", tests, NULL, NULL);
}
