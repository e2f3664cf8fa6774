/* vmm/nic.c: `net = NAME`, a virtio-net NIC on the VM's PCI bus and a port of the
 * core's switch (here a fake one), driven as Linux's virtio_net drives eth0 through
 * exits against the fake core: the guest's frames reach the switch with their
 * offload header; frames from the switch reach the receive buffers when the switch
 * wakes the VM, or wait, in order, for the driver's next buffers; a reset forgets
 * what waited; the MAC is the config's or one derived from the VM's name. */
#define FAKE_CORE_HAS_NIC
#include "fake_core.h"
#include "vmm/virtio/guest_mem.c"
#include "vmm/virtio/virtqueue.c"
#include "vmm/virtio/net.c"
#include "vmm/virtio/pci.c"
#include "vmm/nic.c"

#define RAM_SIZE  (4u << 20)
#define QSIZE     8
#define RXQ       0x10000u      /* rings: desc, avail at +0x1000, used at +0x2000 */
#define TXQ       0x14000u
#define RXBUF     0x20000u
#define TXBUF     0x30000u
#define VECTOR    0x41

static struct vmm_vm vm;
static uint8_t *ram;
static uint16_t avail_idx[2];

/* ---- the fake switch: what the VM sent, and frames queued for it ---- */

static struct { uint8_t meta[CORE_NET_META_BYTES]; uint8_t frame[2048]; size_t len; } sent[8], queued[8];
static unsigned sent_count, queued_head, queued_count;
static char attached_net[32];
static uint8_t attached_mac[6];
static core_net_wake_fn *wake_fn;
static void *wake_ctx;

core_port_t core_net_attach(core_vm_t v, const char *net, const uint8_t mac[6], core_net_wake_fn *wake,
                            void *ctx, char *msg, size_t len)
{
    (void)v; (void)msg; (void)len;
    strcpy(attached_net, net);
    memcpy(attached_mac, mac, 6);
    wake_fn = wake;
    wake_ctx = ctx;
    return 3;
}

unsigned core_net_send(core_port_t p, const uint8_t meta[CORE_NET_META_BYTES], const void *frame, size_t len)
{
    assert_int_equal(p, 3);
    assert_true(len <= sizeof sent[0].frame);
    if (sent_count < 8) {
        memcpy(sent[sent_count].meta, meta, CORE_NET_META_BYTES);
        memcpy(sent[sent_count].frame, frame, len);
        sent[sent_count].len = len;
    }
    sent_count++;
    return 1;
}

size_t core_net_recv(core_port_t p, uint8_t meta[CORE_NET_META_BYTES], void *buf, size_t max)
{
    assert_int_equal(p, 3);
    if (!queued_count)
        return 0;
    size_t n = queued[queued_head].len;
    if (n > max)
        return n;
    memcpy(meta, queued[queued_head].meta, CORE_NET_META_BYTES);
    memcpy(buf, queued[queued_head].frame, n);
    queued_head = (queued_head + 1) % 8;
    queued_count--;
    return n;
}

size_t core_net_discard(core_port_t p) { (void)p; return 0; }
size_t core_net_stats(core_port_t p, char *buf, size_t len) { (void)p; (void)buf; (void)len; return 0; }

/* A frame of n bytes from the switch: to our MAC, from 02:00:00:00:00:09, bytes
 * after the header numbered from seed. */
static void switch_queues(size_t n, uint8_t seed)
{
    unsigned i = (queued_head + queued_count++) % 8;
    memset(queued[i].meta, 0, CORE_NET_META_BYTES);
    memcpy(queued[i].frame, attached_mac, 6);
    memcpy(queued[i].frame + 6, "\x02\x00\x00\x00\x00\x09\x08\x00", 8);
    for (size_t k = 14; k < n; k++)
        queued[i].frame[k] = (uint8_t)(seed + k);
    queued[i].len = n;
}

static struct vmm_vcpu *bsp(void) { return &vm.vcpus[0]; }

#include "guest_access.h"

static struct vpci_dev *vdev(void) { return &vm.nic->vpci; }

#include "virtio_driver.h"

static void make_vm(bool have_mac)
{
    fake_core_reset();
    if (!ram)
        ram = malloc(RAM_SIZE);
    memset(ram, 0, RAM_SIZE);
    memset(&vm, 0, sizeof vm);
    memset(avail_idx, 0, sizeof avail_idx);
    sent_count = queued_head = queued_count = 0;
    strcpy(vm.conf.name, "web");
    strcpy(vm.conf.net, "lan0");
    vm.conf.net_mtu = 1500;
    if (have_mac) {
        vm.conf.have_mac = true;
        memcpy(vm.conf.mac, "\x52\x54\x00\x12\x34\x56", 6);
    }
    vm_bus_up(RAM_SIZE);
    assert_true(vmm_nic_attach(&vm));
    vm_boot_up();
}

static int setup(void **state)
{
    (void)state;
    make_vm(false);
    return 0;
}

/* A receive buffer of len bytes at slot. */
static void give_rx(uint16_t slot, uint32_t len)
{
    put_desc(RXQ, slot, RXBUF + 0x1000 * slot, len, VIRTQ_DESC_F_WRITE, 0);
    make_avail(0, RXQ, slot);
}

/* ---- tests ---- */

static void test_on_the_bus_with_its_mac(void **state)
{
    (void)state;
    unsigned d = vdev()->pci->devfn;
    assert_int_equal(conf1_read(d, 0, 4), (uint32_t)(VPCI_DEVICE_ID_BASE + VIRTIO_ID_NET) << 16 | 0x1af4u);
    assert_string_equal(attached_net, "lan0");
    /* Derived from the name: the same for the same name, another for another. */
    uint8_t mac[6], other[6];
    vmm_nic_default_mac("web", mac);
    assert_memory_equal(attached_mac, mac, 6);
    assert_memory_equal(mac, "\x02\x70\x6c", 3);
    vmm_nic_default_mac("web2", other);
    assert_memory_not_equal(mac, other, 6);
    /* The config space holds it. */
    conf1_write(d, PCI_CFG_COMMAND, 2, PCI_COMMAND_MEMORY);
    for (unsigned i = 0; i < 6; i++)
        assert_int_equal(mmio_read(bar0() + VPCI_DEVCFG_OFF + VNET_CFG_MAC + i, 1), mac[i]);
    assert_int_equal(mmio_read(bar0() + VPCI_DEVCFG_OFF + VNET_CFG_MTU, 2), 1500);
    /* mac = ... wins. */
    make_vm(true);
    assert_memory_equal(attached_mac, "\x52\x54\x00\x12\x34\x56", 6);
}

static void test_a_frame_goes_to_the_switch_with_its_header(void **state)
{
    (void)state;
    driver_init(1u << VIRTIO_NET_F_CSUM | 1u << VIRTIO_NET_F_MAC);
    /* Header: NEEDS_CSUM, csum_start 34, csum_offset 16; then a 60-byte frame. */
    uint8_t hdr[VNET_HDR_BYTES] = { VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 0, 0, 0, 34, 0, 16, 0, 0, 0 };
    uint8_t frame[60];
    for (unsigned i = 0; i < sizeof frame; i++)
        frame[i] = (uint8_t)(i * 3);
    memcpy(ram + TXBUF, hdr, sizeof hdr);
    memcpy(ram + TXBUF + 0x100, frame, sizeof frame);
    put_desc(TXQ, 0, TXBUF, sizeof hdr, VIRTQ_DESC_F_NEXT, 1);
    put_desc(TXQ, 1, TXBUF + 0x100, sizeof frame, 0, 0);
    make_avail(1, TXQ, 0);
    notify(VNET_QUEUE_TX);
    assert_int_equal(sent_count, 1);
    assert_int_equal(sent[0].len, sizeof frame);
    assert_memory_equal(sent[0].frame, frame, sizeof frame);
    assert_int_equal(sent[0].meta[0], VIRTIO_NET_HDR_F_NEEDS_CSUM);
    assert_int_equal(sent[0].meta[6] | sent[0].meta[7] << 8, 34);
    assert_int_equal(sent[0].meta[8] | sent[0].meta[9] << 8, 16);
    assert_int_equal(used_idx(TXQ), 1);
    assert_int_equal(vlapic_pending(&bsp()->lapic), VECTOR + 1);
    /* A runt frame is dropped, counted, and the device goes on. */
    put_desc(TXQ, 2, TXBUF, sizeof hdr + 10, 0, 0);
    make_avail(1, TXQ, 2);
    notify(VNET_QUEUE_TX);
    assert_int_equal(sent_count, 1);
    assert_int_equal(used_idx(TXQ), 2);
    assert_int_equal(vm.nic->net.stats.tx_drop[VNET_DROP_RUNT], 1);
    assert_false(vpci_status(&vm.nic->vpci) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
}

static void test_frames_from_the_switch_reach_receive_buffers(void **state)
{
    (void)state;
    driver_init(1u << VIRTIO_NET_F_MAC);
    give_rx(0, 2048);
    give_rx(1, 2048);
    notify(VNET_QUEUE_RX);
    switch_queues(100, 1);
    switch_queues(200, 2);
    int k = kicks;
    wake_fn(wake_ctx);
    assert_true(kicks > k);
    /* Nothing moves until vCPU 0's next entry takes them. */
    assert_int_equal(used_idx(RXQ), 0);
    vmm_nic_poll(&vm);
    assert_int_equal(used_idx(RXQ), 2);
    assert_int_equal(used_len(RXQ, 0), VNET_HDR_BYTES + 100);
    assert_int_equal(used_len(RXQ, 1), VNET_HDR_BYTES + 200);
    assert_memory_equal(ram + RXBUF + VNET_HDR_BYTES, queued[0].frame, 100);
    assert_memory_equal(ram + RXBUF + 0x1000 + VNET_HDR_BYTES, queued[1].frame, 200);
    /* One interrupt for the batch. */
    assert_int_equal(vlapic_pending(&bsp()->lapic), VECTOR);
    assert_int_equal(vm.nic->interrupts, 1);
    assert_int_equal(vmm_nic_poll(&vm), 0);
}

static void test_a_frame_waits_in_order_for_buffers(void **state)
{
    (void)state;
    driver_init(1u << VIRTIO_NET_F_MAC);
    give_rx(0, 2048);
    notify(VNET_QUEUE_RX);
    switch_queues(100, 1);
    switch_queues(300, 2);
    switch_queues(400, 3);
    wake_fn(wake_ctx);
    vmm_nic_poll(&vm);
    /* One buffer: the first frame in it, the second held, the third in the switch. */
    assert_int_equal(used_idx(RXQ), 1);
    assert_true(vm.nic->held);
    assert_int_equal(queued_count, 1);
    /* The driver's next buffers and kick bring both, in order. */
    give_rx(1, 2048);
    give_rx(2, 2048);
    notify(VNET_QUEUE_RX);
    assert_int_equal(used_idx(RXQ), 3);
    assert_int_equal(used_len(RXQ, 1), VNET_HDR_BYTES + 300);
    assert_int_equal(used_len(RXQ, 2), VNET_HDR_BYTES + 400);
    assert_memory_equal(ram + RXBUF + 0x2000 + VNET_HDR_BYTES, queued[2].frame, 400);
    assert_false(vm.nic->held);
}

static void test_reset_forgets_the_held_frame(void **state)
{
    (void)state;
    driver_init(1u << VIRTIO_NET_F_MAC);
    switch_queues(100, 1);
    wake_fn(wake_ctx);
    vmm_nic_poll(&vm);
    assert_true(vm.nic->held);
    common_write(VPCI_COMMON_STATUS, 1, 0);
    assert_false(vm.nic->held);
    /* With no driver, frames are dropped (counted), not piled up. */
    switch_queues(100, 2);
    wake_fn(wake_ctx);
    vmm_nic_poll(&vm);
    assert_int_equal(queued_count, 0);
    assert_int_equal(vm.nic->net.stats.rx_drop[VNET_DROP_NOT_READY], 1);
}

static void test_broken_transmit_ring_stops_the_device_not_the_vm(void **state)
{
    (void)state;
    driver_init(1u << VIRTIO_NET_F_MAC);
    int w = warnings;
    put_desc(TXQ, 0, TXBUF, 64, VIRTQ_DESC_F_NEXT, 0);     /* loops on itself */
    make_avail(1, TXQ, 0);
    notify(VNET_QUEUE_TX);
    assert_int_equal(stops, 0);
    assert_int_equal(warnings, w + 1);
    assert_true(vpci_status(&vm.nic->vpci) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
    notify(VNET_QUEUE_TX);
    assert_int_equal(warnings, w + 1);
    assert_int_equal(sent_count, 0);
}

static void test_needs_a_pci_bus(void **state)
{
    (void)state;
    struct vmm_vm small = { .conf = { .name = "s", .net = "lan0", .net_mtu = 1500 } };
    assert_false(vmm_nic_attach(&small));
    small.conf.net[0] = 0;
    assert_true(vmm_nic_attach(&small));
    assert_null(small.nic);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_on_the_bus_with_its_mac, setup),
        cmocka_unit_test_setup(test_a_frame_goes_to_the_switch_with_its_header, setup),
        cmocka_unit_test_setup(test_frames_from_the_switch_reach_receive_buffers, setup),
        cmocka_unit_test_setup(test_a_frame_waits_in_order_for_buffers, setup),
        cmocka_unit_test_setup(test_reset_forgets_the_held_frame, setup),
        cmocka_unit_test_setup(test_broken_transmit_ring_stops_the_device_not_the_vm, setup),
        cmocka_unit_test_setup(test_needs_a_pci_bus, setup),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    free(ram);
    fake_free_allocs();
    return r;
}
