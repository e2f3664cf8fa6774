/* vmm/vconsole.c: `console = virtio`, a virtio console on the VM's PCI bus driven
 * the way Linux's virtio_console drives hvc0, through exits against the fake core:
 * output becomes whole tagged lines (cut at newlines, carriage returns dropped,
 * unprintable bytes replaced) with one notification per buffer, held back while
 * the VM is over its share of the serial line and sent on by vCPU 0 later; typed
 * input goes to the receive queue once the driver runs, to the UART before; a
 * broken ring stops the device with one warning, not the VM. */
#define FAKE_CORE_HAS_VCON
#include "fake_core.h"
#include "vmm/virtio/guest_mem.c"
#include "vmm/virtio/virtqueue.c"
#include "vmm/virtio/console.c"
#include "vmm/virtio/pci.c"
#include "vmm/vconsole.c"

#define RAM_SIZE  (4u << 20)
#define QSIZE     8
#define RXQ       0x10000u      /* receive queue rings: desc, avail at +0x1000, used at +0x2000 */
#define TXQ       0x14000u
#define RXBUF     0x20000u
#define TXBUF     0x30000u
#define VECTOR    0x41

static struct vmm_vm vm;
static uint8_t *ram;
static uint16_t avail_idx[2];

/* ---- what vm.c and the core would do ---- */

static char lines[16][VMM_VCON_LINE_MAX + 1];
static unsigned line_count;

void vmm_console_line(struct vmm_vm *m, const char *s, size_t n)
{
    assert_ptr_equal(m, &vm);
    assert_true(n <= VMM_VCON_LINE_MAX);
    if (line_count < 16) {
        memcpy(lines[line_count], s, n);
        lines[line_count][n] = 0;
    }
    line_count++;
}

static const char *typed;
static size_t typed_len;

size_t core_vm_console_read(core_vm_t v, char *buf, size_t max)
{
    (void)v;
    size_t n = typed_len < max ? typed_len : max;
    memcpy(buf, typed, n);
    typed += n;
    typed_len -= n;
    return n;
}

static struct vmm_vcpu *bsp(void) { return &vm.vcpus[0]; }

#include "guest_access.h"

static struct vpci_dev *vdev(void) { return &vm.vcon->vpci; }

#include "virtio_driver.h"

static void make_vm(void)
{
    fake_core_reset();
    if (!ram)
        ram = malloc(RAM_SIZE);
    memset(ram, 0, RAM_SIZE);
    memset(&vm, 0, sizeof vm);
    memset(lines, 0, sizeof lines);
    line_count = 0;
    memset(avail_idx, 0, sizeof avail_idx);
    typed = "";
    typed_len = 0;
    strcpy(vm.conf.name, "t");
    vm.conf.virtio_console = true;
    vm_bus_up(RAM_SIZE);
    assert_true(vmm_vcon_attach(&vm));
    vm_boot_up();
}

static int setup(void **state)
{
    (void)state;
    make_vm();
    return 0;
}

/* The guest writes s to hvc0 as one buffer. */
static void hvc_write(uint16_t slot, const char *s)
{
    size_t n = strlen(s);
    memcpy(ram + TXBUF + 0x100 * slot, s, n);
    put_desc(TXQ, slot, TXBUF + 0x100 * slot, (uint32_t)n, 0, 0);
    make_avail(1, TXQ, slot);
    notify(VCON_QUEUE_TX);
}

/* ---- tests ---- */

static void test_on_the_bus_as_a_console(void **state)
{
    (void)state;
    unsigned d = vdev()->pci->devfn;
    assert_int_equal(d, PCI_DEVFN(1, 0));
    assert_int_equal(conf1_read(d, 0, 4), (uint32_t)(VPCI_DEVICE_ID_BASE + VIRTIO_ID_CONSOLE) << 16 | 0x1af4u);
    assert_int_equal(mmio_read(bar0() + VPCI_COMMON_NUMQ, 2), 0xffff);   /* not decoding yet */
    conf1_write(d, PCI_CFG_COMMAND, 2, PCI_COMMAND_MEMORY);
    assert_int_equal(mmio_read(bar0() + VPCI_COMMON_NUMQ, 2), VCON_NUM_QUEUES);
}

static void test_output_becomes_whole_lines(void **state)
{
    (void)state;
    driver_init(0);
    hvc_write(0, "hello\r\nwor");
    assert_int_equal(used_idx(TXQ), 1);
    assert_int_equal(line_count, 1);
    assert_string_equal(lines[0], "hello");
    /* The rest of the line waits for its end, across buffers. */
    hvc_write(1, "ld\x01\n");
    assert_int_equal(used_idx(TXQ), 2);
    assert_int_equal(line_count, 2);
    assert_string_equal(lines[1], "world?");
    /* One notification per buffer; the used buffers were signalled by MSI-X. */
    assert_int_equal(vm.vcon->notifies, 2);
    assert_int_equal(vlapic_pending(&bsp()->lapic), VECTOR + 1);
    assert_int_equal(vm.vcon->con.stats.tx_bytes, 14);
    /* A line longer than a console line is cut, not lost. */
    char big[VMM_VCON_LINE_MAX + 11];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    hvc_write(2, big);
    hvc_write(3, "\n");
    assert_int_equal(line_count, 4);
    assert_int_equal(strlen(lines[2]), VMM_VCON_LINE_MAX);
    assert_int_equal(strlen(lines[3]), 10);
}

static void test_output_waits_while_the_vm_is_over_its_share(void **state)
{
    (void)state;
    driver_init(0);
    vm.tx_paced_until = now_ns + 1000000;
    int k = kicks;
    hvc_write(0, "later\n");
    /* Nothing out, the buffer not completed: the guest waits as behind a slow line. */
    assert_int_equal(line_count, 0);
    assert_int_equal(used_idx(TXQ), 0);
    assert_true(kicks > k);
    assert_true(vmm_vcon_poll(&vm) >= vm.tx_paced_until);
    assert_int_equal(line_count, 0);
    /* Its share is back: vCPU 0's next entry sends it on. */
    now_ns += 2000000;
    vmm_vcon_poll(&vm);
    assert_int_equal(line_count, 1);
    assert_string_equal(lines[0], "later");
    assert_int_equal(used_idx(TXQ), 1);
    assert_int_equal(vmm_vcon_poll(&vm), 0);
}

static void test_input_goes_to_hvc0_once_its_driver_runs(void **state)
{
    (void)state;
    /* Before the driver: the UART's (vm.c) and no work here. */
    assert_false(vmm_vcon_takes_input(&vm));
    vm.input_waiting = true;
    typed = "ls\n";
    typed_len = 3;
    assert_int_equal(vmm_vcon_poll(&vm), 0);
    assert_int_equal(typed_len, 3);
    driver_init(0);
    assert_true(vmm_vcon_takes_input(&vm));
    /* No receive buffer yet: the bytes wait in the device, not lost. */
    vmm_vcon_poll(&vm);
    assert_int_equal(typed_len, 0);
    assert_int_equal(vcon_input_pending(&vm.vcon->con), 3);
    assert_int_equal(used_idx(RXQ), 0);
    /* The driver gives a buffer and kicks: the input arrives, interrupt sent. */
    put_desc(RXQ, 0, RXBUF, 64, VIRTQ_DESC_F_WRITE, 0);
    make_avail(0, RXQ, 0);
    notify(VCON_QUEUE_RX);
    assert_int_equal(used_idx(RXQ), 1);
    uint32_t len;
    memcpy(&len, ram + RXQ + 0x2000 + 8, 4);
    assert_int_equal(len, 3);
    assert_memory_equal(ram + RXBUF, "ls\n", 3);
    assert_int_equal(vlapic_pending(&bsp()->lapic), VECTOR);
    /* Typed with a buffer ready: straight in at vCPU 0's next entry. */
    put_desc(RXQ, 1, RXBUF + 0x100, 64, VIRTQ_DESC_F_WRITE, 0);
    make_avail(0, RXQ, 1);
    notify(VCON_QUEUE_RX);
    vm.input_waiting = true;
    typed = "pwd\n";
    typed_len = 4;
    vmm_vcon_poll(&vm);
    assert_int_equal(used_idx(RXQ), 2);
    assert_memory_equal(ram + RXBUF + 0x100, "pwd\n", 4);
}

static void test_broken_ring_stops_the_device_not_the_vm(void **state)
{
    (void)state;
    driver_init(0);
    int w = warnings;
    /* A chain that loops on itself. */
    put_desc(TXQ, 0, TXBUF, 4, VIRTQ_DESC_F_NEXT, 0);
    make_avail(1, TXQ, 0);
    notify(VCON_QUEUE_TX);
    assert_int_equal(stops, 0);
    assert_int_equal(warnings, w + 1);
    assert_true(vpci_status(&vm.vcon->vpci) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
    /* Kicked again: no second warning, nothing out. */
    notify(VCON_QUEUE_TX);
    assert_int_equal(warnings, w + 1);
    assert_int_equal(line_count, 0);
    /* The driver resets it and starts again: it works. */
    memset(avail_idx, 0, sizeof avail_idx);
    memset(ram + RXQ, 0, 0x3000);
    memset(ram + TXQ, 0, 0x3000);
    driver_init(0);
    hvc_write(0, "again\n");
    assert_int_equal(line_count, 1);
    assert_string_equal(lines[0], "again");
    assert_false(vpci_status(&vm.vcon->vpci) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
}

static void test_reboot_resets_the_console(void **state)
{
    (void)state;
    driver_init(0);
    hvc_write(0, "half a li");
    vmm_pci_boot(&vm);
    /* The partial line of the last boot is out, whole; the device is reset. */
    assert_int_equal(line_count, 1);
    assert_string_equal(lines[0], "half a li");
    assert_int_equal(vpci_status(&vm.vcon->vpci), 0);
    assert_false(vmm_vcon_takes_input(&vm));
    memset(avail_idx, 0, sizeof avail_idx);
    memset(ram + TXQ, 0, 0x3000);
    driver_init(0);
    hvc_write(0, "new\n");
    assert_int_equal(line_count, 2);
    assert_string_equal(lines[1], "new");
}

/* A snapshot holds the transport, the queues' indices, input not yet delivered and
 * the partial line; a restore after the driver reset the device brings all back. */
static void test_snapshot_round_trip(void **state)
{
    (void)state;
    driver_init(0);
    hvc_write(0, "one\nhal");
    assert_int_equal(line_count, 1);
    vm.input_waiting = true;
    typed = "xy";
    typed_len = 2;
    vmm_vcon_poll(&vm);
    assert_int_equal(vcon_input_pending(&vm.vcon->con), 2);
    static uint8_t buf[64 << 10];
    struct snap s;
    snap_save_begin(&s, buf, sizeof buf);
    vmm_pci_save(&vm, &s);
    size_t len = snap_save_end(&s);
    assert_true(len > 0);

    /* The run goes on: the driver resets the device (the partial line goes out). */
    common_write(VPCI_COMMON_STATUS, 1, 0);
    assert_int_equal(line_count, 2);
    assert_false(vmm_vcon_takes_input(&vm));

    /* A stream of another device is refused, and nothing changes. */
    static uint8_t bad[64 << 10];
    memcpy(bad, buf, len);
    assert_true(snap_load_begin(&s, bad, len));
    vm.vcon->vpci.device_type = VIRTIO_ID_NET;
    assert_false(vmm_pci_load(&vm, &s));
    vm.vcon->vpci.device_type = VIRTIO_ID_CONSOLE;
    assert_int_equal(vpci_status(&vm.vcon->vpci), 0);

    assert_true(snap_load_begin(&s, buf, len));
    assert_true(vmm_pci_load(&vm, &s));
    assert_true(snap_load_end(&s));
    vmm_pci_commit(&vm);
    assert_true(vpci_status(&vm.vcon->vpci) & VIRTIO_STATUS_DRIVER_OK);
    assert_true(vmm_vcon_takes_input(&vm));
    /* The queue goes on from its indices; the line from where it was. */
    hvc_write(1, "f\n");
    assert_int_equal(used_idx(TXQ), 2);
    assert_string_equal(lines[line_count - 1], "half");
    /* The input that waited then is delivered. */
    uint64_t irqs = vm.vcon->interrupts;
    put_desc(RXQ, 0, RXBUF, 64, VIRTQ_DESC_F_WRITE, 0);
    make_avail(0, RXQ, 0);
    notify(VCON_QUEUE_RX);
    assert_int_equal(used_idx(RXQ), 1);
    assert_memory_equal(ram + RXBUF, "xy", 2);
    /* The restored MSI-X table still routes the interrupts (both vectors). */
    assert_int_equal(vm.vcon->interrupts, irqs + 1);
    assert_int_equal(vlapic_pending(&bsp()->lapic), VECTOR + 1);
}

static void test_needs_a_pci_bus(void **state)
{
    (void)state;
    struct vmm_vm small = { .conf = { .name = "s", .virtio_console = true } };
    assert_false(vmm_vcon_attach(&small));
    small.conf.virtio_console = false;
    assert_true(vmm_vcon_attach(&small));
    assert_null(small.vcon);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_on_the_bus_as_a_console, setup),
        cmocka_unit_test_setup(test_output_becomes_whole_lines, setup),
        cmocka_unit_test_setup(test_output_waits_while_the_vm_is_over_its_share, setup),
        cmocka_unit_test_setup(test_input_goes_to_hvc0_once_its_driver_runs, setup),
        cmocka_unit_test_setup(test_broken_ring_stops_the_device_not_the_vm, setup),
        cmocka_unit_test_setup(test_reboot_resets_the_console, setup),
        cmocka_unit_test_setup(test_snapshot_round_trip, setup),
        cmocka_unit_test_setup(test_needs_a_pci_bus, setup),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    free(ram);
    fake_free_allocs();
    return r;
}
